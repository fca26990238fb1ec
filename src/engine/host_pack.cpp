#include "host_pack.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "errors.h"
#include "half.h"
#include "task_pool.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)  // (as half.cpp)
#include <immintrin.h>
#define RK_PACK_AVX2 1
#endif

namespace rkeops {
namespace {

long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

// Runs fn(t) for the tasks t in [0, tasks) on up to nt threads, handed out one by one (the
// engine's kept workers: task_pool.h).
template <class F>
void parallel_tasks(long long tasks, int nt, const F& fn) {
  run_tasks(tasks, nt, [&fn](long long t) { fn(t); });
}

// Runs fn(r0, r1) over [0, rows) in one range per thread.
template <class F>
void parallel_rows(long long rows, long long work, int nthreads, const F& fn) {
  const int nt = pack_threads(work, nthreads);
  if (nt == 1 || rows < 4LL * nt) {
    fn(0LL, rows);
    return;
  }
  const long long step = ceil_div(rows, nt);
  parallel_tasks(nt, nt, [&](long long t) {
    const long long a = t * step, b = std::min(rows, a + step);
    if (a < b) fn(a, b);
  });
}

// Calls fn(r, len, s, step) for the rows [a, b) of column k of x in runs that are contiguous
// in the source: rows r.. r + len - 1 at s[0], s[step], ... (a plain matrix: one run of step 1).
// A batch view (Input::batch): row r is point i of problem t (r = t n + i) at pos[t] + P i, and
// the problems of one point lie side by side (P apart from the next point's). Runs of up to 64
// points of one problem, the problems inner: the 64 cache lines of a block of points serve the
// next problems from L1 (one problem at a time read one value per cache line, then went on).
template <class F>
void column_runs(const Input& x, long long k, long long a, long long b, const F& fn, long long w0 = 0,
                 long long w1 = -1) {
  if (!x.batch) {
    fn(a, b - a, x.data + a + k * x.stride(), 1LL);
    return;
  }
  const BatchView& v = *x.batch;
  if (a >= b) return;
  constexpr long long kPoints = 64;
  if (w1 < 0) w1 = v.n;
  const long long t0 = a / v.n, t1 = (b - 1) / v.n;  // the problems met
  const long long i0 = std::max(w0, t0 == t1 ? a - t0 * v.n : 0), i1 = std::min(w1, t0 == t1 ? b - t0 * v.n : v.n);
  const double* col = x.data + v.P * v.n * k;
  for (long long ib = i0; ib < i1; ib += kPoints)
    for (long long t = t0; t <= t1; ++t) {
      const long long lo = std::max(a, t * v.n + ib), hi = std::min({b, t * v.n + std::min(ib + kPoints, i1)});
      if (lo < hi) fn(lo, hi - lo, col + v.pos[static_cast<size_t>(t)] + v.P * (lo - t * v.n), v.P);
    }
}

// A batch view's packing goes out in windows of points, each over every problem (so that the
// problems of a point are read together; see column_runs).
constexpr long long kWindowPoints = 512;
long long windows(const Input& x) { return x.batch ? ceil_div(x.batch->n, kWindowPoints) : 1; }

// One run of a column: o[q] = s[q * step] - c as T; with `nrm`, the squares of the converted
// values added to nrm[q] (set, for the first column of a group). The plain loops.
template <class T>
void convert_scalar(T* __restrict o, const double* __restrict s, long long len, long long step, double c,
                    double* __restrict nrm, bool first) {
  if (!nrm) {
    if (step == 1 && c == 0)
      for (long long q = 0; q < len; ++q) o[q] = static_cast<T>(s[q]);
    else
      for (long long q = 0; q < len; ++q) o[q] = static_cast<T>(s[q * step] - c);
    return;
  }
  for (long long q = 0; q < len; ++q) {
    const T v = static_cast<T>(s[q * step] - c);
    o[q] = v;
    const double w = static_cast<double>(v) * static_cast<double>(v);
    nrm[q] = first ? w : nrm[q] + w;
  }
}

#ifdef RK_PACK_AVX2
// ... for a contiguous run converted to float32, eight values an iteration in AVX2 registers,
// stored past the caches (streaming stores: the staging is read by the GPU's copy, not by the
// host; a plain store first reads the line), the norms' squares in double as the plain loop
// does them (bit-identical results). R's compiler flags (-O2, x86-64 baseline) do not
// vectorise the plain loop.
__attribute__((target("avx2"))) void floats_avx2(float* __restrict o, const double* __restrict s, long long len,
                                                 double c, double* __restrict nrm, bool first) {
  // (the plain loop up to a 32-byte aligned o, which streaming stores want)
  const long long q0 = std::min(len, static_cast<long long>((32 - (reinterpret_cast<uintptr_t>(o) & 31)) & 31) / 4);
  convert_scalar(o, s, q0, 1, c, nrm, first);
  long long q = q0;
  const __m256d cc = _mm256_set1_pd(c);
  for (; q + 8 <= len; q += 8) {
    const __m128 a = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_loadu_pd(s + q), cc));
    const __m128 b = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_loadu_pd(s + q + 4), cc));
    _mm256_stream_ps(o + q, _mm256_set_m128(b, a));
    if (nrm) {
      const __m256d da = _mm256_cvtps_pd(a), db = _mm256_cvtps_pd(b);
      __m256d wa = _mm256_mul_pd(da, da), wb = _mm256_mul_pd(db, db);
      if (!first) {
        wa = _mm256_add_pd(_mm256_loadu_pd(nrm + q), wa);
        wb = _mm256_add_pd(_mm256_loadu_pd(nrm + q + 4), wb);
      }
      _mm256_storeu_pd(nrm + q, wa);
      _mm256_storeu_pd(nrm + q + 4, wb);
    }
  }
  convert_scalar(o + q, s + q, len - q, 1, c, nrm ? nrm + q : nullptr, first);
  _mm_sfence();
}
bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}
#endif

// One run of a column, as convert_scalar: halves by the host's fastest rounding, contiguous
// float32 runs in AVX2 where the CPU has it.
template <class T>
void convert_run(T* __restrict o, const double* __restrict s, long long len, long long step, double c,
                 double* __restrict nrm, bool first) {
  if constexpr (std::is_same<T, Half16>::value) {  // (halves: never a pair variable)
    if (!nrm && c == 0) return doubles_to_halves(reinterpret_cast<uint16_t*>(o), 1, s, len, step);
  }
#ifdef RK_PACK_AVX2
  if constexpr (std::is_same<T, float>::value) {
    if (step == 1 && have_avx2()) return floats_avx2(o, s, len, c, nrm, first);
  }
#endif
  convert_scalar(o, s, len, step, c, nrm, first);
}

// Column-major packing of the variables at `offs` (X; Y too in the high-dimension scheme):
// rows r0.. of each input, leading dimension ld. The work goes out as tasks of long runs of
// one column (a thread per range of rows read 784 runs of 5 KB each at D = 784 and converted
// 13 GB/s of the H200 host's 45); a pair variable's norm as partial sums over column groups,
// added at the end.
template <class T>
void pack_cols(const std::vector<Input>& in, const std::vector<int>& offs, const PairPack& pp, long long r0,
               long long rows, long long ld, T* dst, int nthreads) {
  if (rows <= 0) return;
  for (size_t p = 0; p < in.size(); ++p) {
    if (offs[p] < 0) continue;
    const Input& x = in[p];
    const bool pair = static_cast<int>(p) == pp.pos;
    const double* ctr = pair ? pp.center : nullptr;
    const bool norm = pair && pp.norm >= 0;
    if (x.cols == 0) {  // (a resident input: its columns come from the device)
      RK_ASSERT(!norm, "a pair variable's norm without its columns");
      continue;
    }
    const int nt = pack_threads(rows * x.cols, nthreads);
    if (x.batch) {
      RK_ASSERT(!pair, "a batch view in the high-dimension scheme");
      const long long nw = windows(x);
      parallel_tasks(x.cols * nw, nt, [&](long long t) {
        const long long k = t / nw, w = t % nw;
        T* d = dst + (offs[p] + k) * ld;
        column_runs(
            x, k, r0, r0 + rows,
            [&](long long r, long long len, const double* s, long long step) {
              convert_run(d + (r - r0), s, len, step, 0.0, nullptr, false);
            },
            w * kWindowPoints, (w + 1) * kWindowPoints);
      });
      continue;
    }
    // Tasks: column groups x blocks of rows of equal sizes (at most 32768 rows; 2048 when
    // normed: the partial norms stay in L2, and a piece of the ramp makes several tasks a thread,
    // so that a thread that starts late holds it back less: at D = 784 on the H200's host, 9-10
    // ms instead of 9-13 ms for the 440 MB, bench/RESULTS.md).
    const long long G = norm ? norm_groups(rows, x.cols) : x.cols;  // column groups
    const long long nrb = ceil_div(rows, norm ? 2048 : 32768), RB = ceil_div(rows, nrb);
    // (not zeroed: each task sets its rows' partial norms at its group's first column)
    std::unique_ptr<double[]> part(norm ? new double[static_cast<size_t>(G * rows)] : nullptr);
    parallel_tasks(G * nrb, nt, [&](long long t) {
      const long long g = t / nrb, a = (t % nrb) * RB, b = std::min(rows, a + RB);
      const long long k0 = g * x.cols / G, k1 = (g + 1) * x.cols / G;
      double* acc = norm ? part.get() + g * rows : nullptr;
      for (long long k = k0; k < k1; ++k) {
        T* d = dst + (offs[p] + k) * ld;
        const double c = ctr ? ctr[k] : 0.0;
        column_runs(x, k, r0 + a, r0 + b, [&](long long r, long long len, const double* s, long long step) {
          convert_run(d + (r - r0), s, len, step, c, acc ? acc + (r - r0) : nullptr, k == k0);
        });
      }
    });
    if (!norm) continue;
    T* out = dst + pp.norm * ld;
    parallel_tasks(nrb, nt, [&](long long t) {
      const long long a = t * RB, b = std::min(rows, a + RB);
      for (long long r = a; r < b; ++r) {
        double s = part[static_cast<size_t>(r)];
        for (long long g = 1; g < G; ++g) s += part[static_cast<size_t>(g * rows + r)];
        out[r] = static_cast<T>(s);
      }
    });
  }
}

// Row-major packing of the inner variables (the generic scheme's Y): rows j0.. of each input
// at its offset in rows of W values, the padding zeroed.
template <class T>
void pack_inner(const std::vector<Input>& in, const CudaCode& c, long long j0, long long rows, T* dst, int nthreads) {
  int used = 0;
  for (size_t p = 0; p < in.size(); ++p)
    if (c.y_off[p] >= 0) used = std::max<int>(used, c.y_off[p] + static_cast<int>(in[p].cols));
  const long long W = c.wy;
  auto column = [&](const Input& y, size_t p, long long k, long long a, long long b, long long w0, long long w1) {
    T* d = dst + c.y_off[p] + k;
    column_runs(
        y, k, j0 + a, j0 + b,
        [d, W, j0](long long r, long long len, const double* s, long long step) {
          T* o = d + (r - j0) * W;
          if constexpr (std::is_same<T, Half16>::value)
            doubles_to_halves(reinterpret_cast<uint16_t*>(o), W, s, len, step);
          else
            for (long long q = 0; q < len; ++q) o[q * W] = static_cast<T>(s[q * step]);
        },
        w0, w1);
  };
  const int nt = pack_threads(rows * W, nthreads);
  for (size_t p = 0; p < in.size(); ++p) {  // batch views: by windows of points
    if (c.y_off[p] < 0 || !in[p].batch) continue;
    const long long nw = windows(in[p]);
    parallel_tasks(in[p].cols * nw, nt, [&](long long t) {
      column(in[p], p, t / nw, 0, rows, t % nw * kWindowPoints, (t % nw + 1) * kWindowPoints);
    });
  }
  // The others, a transpose: blocks of rows whose packed rows stay in cache while each column
  // is read; then the padding.
  const long long RB = std::max<long long>(16, 16384 / std::max<long long>(W, 1));
  parallel_rows(rows, rows * W, nthreads, [&](long long a, long long b) {
    for (long long r0 = a; r0 < b; r0 += RB) {
      const long long r1 = std::min(b, r0 + RB);
      for (size_t p = 0; p < in.size(); ++p)
        if (c.y_off[p] >= 0 && !in[p].batch)
          for (long long k = 0; k < in[p].cols; ++k) column(in[p], p, k, r0, r1, 0, -1);
      for (long long r = r0; r < r1; ++r)
        for (long long k = used; k < W; ++k) dst[r * W + k] = T(0);
    }
  });
}

template <class T>
void pack_params(const std::vector<Input>& in, const CudaCode& c, T* dst) {
  for (size_t p = 0; p < in.size(); ++p)
    if (c.p_off[p] >= 0)
      for (long long k = 0; k < in[p].rows * in[p].cols; ++k)  // a parameter: one row or one column
        dst[c.p_off[p] + k] = static_cast<T>(in[p].data[in[p].rows == 1 ? k * in[p].stride() : k]);
}

template <class T>
void pack_as(int what, const std::vector<Input>& in, const CudaCode& c, long long r0, long long rows, long long ld,
             const PairPack& pp, T* d, int nthreads) {
  if (what == 0)
    pack_cols(in, c.x_off, pp, r0, rows, ld, d, nthreads);
  else if (what == 1 && c.hd.bm > 0)
    pack_cols(in, c.y_off, pp, r0, rows, ld, d, nthreads);
  else if (what == 1)
    pack_inner(in, c, r0, rows, d, nthreads);
  else
    pack_params(in, c, d);
}

}  // namespace

int pack_threads(long long values, int nthreads) {
  return static_cast<int>(std::max(1LL, std::min<long long>({nthreads, 16, values >> 16})));
}

long long norm_groups(long long rows, long long cols) {
  return std::max(1LL, std::min({cols, 16LL, (1LL << 21) / std::max(1LL, rows)}));
}

// The mean of rows spread over y, a point among the data, so that |x - c|^2 is of the order of
// the distances rather than of |x|^2 (float32 cancellation); non-finite values are skipped.
// The columns on the call's threads (200 000 scattered reads at D = 784: 1.3-3 ms on one).
std::vector<double> pair_center(const Input& y, int nthreads) {
  std::vector<double> c(static_cast<size_t>(y.cols), 0.0);
  const long long n = std::min<long long>(y.rows, 256);
  if (n == 0) return c;
  const long long step = y.rows / n;
  parallel_rows(y.cols, y.cols * n * 16, nthreads, [&](long long k0, long long k1) {
    for (long long k = k0; k < k1; ++k) {
      double sum = 0;
      long long cnt = 0;
      for (long long q = 0; q < n; ++q) {
        const double v = y.data[q * step + k * y.stride()];
        if (v - v == 0) {
          sum += v;
          ++cnt;
        }
      }
      c[static_cast<size_t>(k)] = cnt ? sum / static_cast<double>(cnt) : 0.0;
    }
  });
  return c;
}

void pack(int elem, int what, const std::vector<Input>& in, const CudaCode& c, long long r0, long long rows,
          long long ld, const PairPack& pp, void* dst, int nthreads) {
  if (elem == 2)
    pack_as(what, in, c, r0, rows, ld, pp, static_cast<Half16*>(dst), nthreads);
  else if (elem == 4)
    pack_as(what, in, c, r0, rows, ld, pp, static_cast<float*>(dst), nthreads);
  else
    pack_as(what, in, c, r0, rows, ld, pp, static_cast<double*>(dst), nthreads);
}

void pack_columns(int elem, const std::vector<Input>& in, const std::vector<int>& offs, const PairPack& pp,
                  long long r0, long long rows, long long ld, void* dst, int nthreads) {
  RK_ASSERT(elem == 4 || elem == 8, "column packing of float32 or float64");
  if (elem == 4)
    pack_cols(in, offs, pp, r0, rows, ld, static_cast<float*>(dst), nthreads);
  else
    pack_cols(in, offs, pp, r0, rows, ld, static_cast<double*>(dst), nthreads);
}

}  // namespace rkeops

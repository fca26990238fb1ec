#include "launch_cuda.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <climits>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "cache.h"
#include "codegen_cuda_hd.h"
#include "cuda_driver.h"
#include "errors.h"
#include "half.h"
#include "kernel_store.h"
#include "log.h"
#include "nvrtc.h"
#include "ranges.h"
#include "sha256.h"

namespace rkeops {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }
long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

std::mutex g_stats_mutex;
GpuRunStats g_last_stats;

// ---- host-side packing (float64 R data -> T, in the layouts of codegen_cuda.h; float16:
// halves rounded from the doubles on the host threads, so that half the bytes cross the bus) ----

// Runs fn(r0, r1) over [0, rows) on up to `nthreads` threads when the work is worth it: at
// least 2^16 values a thread (starting a thread costs tens of microseconds, about what
// converting 2^15 values costs; 16 threads for the 7e5 values of a 1e5-point Gaussian sum
// made its conversion 1.9 ms, one thread per 2^18 values 1.1-1.3 ms on the H200's host).
template <class F>
void parallel_rows(long long rows, long long work, int nthreads, const F& fn) {
  const int nt = static_cast<int>(std::max(1LL, std::min<long long>({nthreads, 16, work >> 16})));
  if (nt == 1 || rows < 4LL * nt) {
    fn(0LL, rows);
    return;
  }
  const long long step = ceil_div(rows, nt);
  std::vector<std::thread> th;
  for (int t = 1; t < nt; ++t) {
    long long a = t * step, b = std::min(rows, a + step);
    if (a < b) th.emplace_back([&fn, a, b] { fn(a, b); });
  }
  fn(0LL, std::min(rows, step));
  for (auto& t : th) t.join();
}

// How the high-dimension scheme (codegen_cuda_hd.h) packs input `pos`: shifted by `center`
// (nullptr: not shifted), its squared norm (of the values as converted) in component `norm`.
struct PairPack {
  int pos = -1;
  const double* center = nullptr;
  int norm = -1;
};

// Calls fn(r, len, s, step) for the rows [a, b) of column k of x in runs that are contiguous
// in the source: rows r.. r + len - 1 at s[0], s[step], ... (a plain matrix: one run of step 1;
// a batch view, Input::batch: one run per problem, step P).
template <class F>
void column_runs(const Input& x, long long k, long long a, long long b, const F& fn) {
  if (!x.batch) {
    fn(a, b - a, x.data + a + k * x.stride(), 1LL);
    return;
  }
  const BatchView& v = *x.batch;
  for (long long r = a; r < b;) {
    const long long t = r / v.n, i = r - t * v.n, len = std::min(b - r, v.n - i);
    fn(r, len, x.data + v.pos[static_cast<size_t>(t)] + v.P * i + v.P * v.n * k, v.P);
    r += len;
  }
}

// Column-major packing of the variables at `offs` (X; Y too in the high-dimension scheme):
// rows r0.. of each input, leading dimension ld.
template <class T>
void pack_cols(const std::vector<Input>& in, const std::vector<int>& offs, const PairPack& pp, long long r0,
               long long rows, long long ld, T* dst, int nthreads) {
  for (size_t p = 0; p < in.size(); ++p) {
    if (offs[p] < 0 || static_cast<int>(p) == pp.pos) continue;
    const Input& x = in[p];
    parallel_rows(rows, rows * x.cols, nthreads, [&](long long a, long long b) {
      for (long long k = 0; k < x.cols; ++k) {
        T* d = dst + (offs[p] + k) * ld;
        column_runs(x, k, r0 + a, r0 + b, [d, r0](long long r, long long len, const double* s, long long step) {
          T* o = d + (r - r0);
          if (step == 1)
            for (long long q = 0; q < len; ++q) o[q] = static_cast<T>(s[q]);
          else
            for (long long q = 0; q < len; ++q) o[q] = static_cast<T>(s[q * step]);
        });
      }
    });
  }
  if (pp.pos < 0) return;
  const Input& x = in[pp.pos];
  RK_ASSERT(!x.batch, "a batch view in the high-dimension scheme");
  parallel_rows(rows, rows * x.cols, nthreads, [&](long long a, long long b) {
    constexpr long long RB = 4096;  // rows whose norms are summed in cache while the columns pass
    double nrm[RB];
    for (long long b0 = a; b0 < b; b0 += RB) {
      const long long n = std::min(b - b0, RB);
      std::fill(nrm, nrm + n, 0.0);
      for (long long k = 0; k < x.cols; ++k) {
        const double* s = x.data + r0 + b0 + k * x.stride();
        const double c = pp.center ? pp.center[k] : 0.0;
        T* d = dst + (offs[pp.pos] + k) * ld + b0;
        for (long long r = 0; r < n; ++r) {
          const T v = static_cast<T>(s[r] - c);
          d[r] = v;
          nrm[r] += static_cast<double>(v) * static_cast<double>(v);
        }
      }
      if (pp.norm >= 0)
        for (long long r = 0; r < n; ++r) dst[pp.norm * ld + b0 + r] = static_cast<T>(nrm[r]);
    }
  });
}

// The point the high-dimension scheme subtracts from both sides of its distances: the mean of
// up to 256 finite rows spread over the inner input, a point among the data, so that |x - c|^2
// is of the order of the distances rather than of |x|^2 (float32 cancellation).
std::vector<double> pair_center(const Input& y) {
  std::vector<double> c(static_cast<size_t>(y.cols), 0.0);
  const long long n = std::min<long long>(y.rows, 256);
  if (n == 0) return c;
  const long long step = y.rows / n;
  for (long long k = 0; k < y.cols; ++k) {
    double sum = 0;
    long long cnt = 0;
    for (long long q = 0; q < n; ++q) {
      const double v = y.data[q * step + k * y.stride()];
      if (v - v == 0) {
        sum += v;
        ++cnt;
      }
    }
    c[k] = cnt ? sum / static_cast<double>(cnt) : 0.0;
  }
  return c;
}

template <class T>
void pack_inner(const std::vector<Input>& in, const CudaCode& c, long long j0, long long rows, T* dst, int nthreads) {
  int used = 0;
  for (size_t p = 0; p < in.size(); ++p)
    if (c.y_off[p] >= 0) used = std::max<int>(used, c.y_off[p] + static_cast<int>(in[p].cols));
  const long long W = c.wy;
  // A transpose: blocks of rows whose packed rows stay in cache while each column is read.
  const long long RB = std::max<long long>(16, 16384 / std::max<long long>(W, 1));
  parallel_rows(rows, rows * W, nthreads, [&](long long a, long long b) {
    for (long long r0 = a; r0 < b; r0 += RB) {
      const long long r1 = std::min(b, r0 + RB);
      for (size_t p = 0; p < in.size(); ++p) {
        if (c.y_off[p] < 0) continue;
        const Input& y = in[p];
        for (long long k = 0; k < y.cols; ++k) {
          T* d = dst + c.y_off[p] + k;
          column_runs(y, k, j0 + r0, j0 + r1, [d, W, j0](long long r, long long len, const double* s, long long step) {
            T* o = d + (r - j0) * W;
            for (long long q = 0; q < len; ++q) o[q * W] = static_cast<T>(s[q * step]);
          });
        }
      }
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

// Packs the outer rows (what 0), the inner rows (1) or the parameters (2) as T; ld: the
// leading dimension of column-major layouts.
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
void pack(int elem, int what, const std::vector<Input>& in, const CudaCode& c, long long r0, long long rows,
          long long ld, const PairPack& pp, void* dst, int nthreads) {
  if (elem == 2)
    pack_as(what, in, c, r0, rows, ld, pp, static_cast<Half16*>(dst), nthreads);
  else if (elem == 4)
    pack_as(what, in, c, r0, rows, ld, pp, static_cast<float*>(dst), nthreads);
  else
    pack_as(what, in, c, r0, rows, ld, pp, static_cast<double*>(dst), nthreads);
}

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

}  // namespace

GpuRunStats last_gpu_run() {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  return g_last_stats;
}

LaunchPlan plan_cuda_launch(const CudaCode& code, long long n_in, long long rows, int out_dim, bool states,
                            const DeviceLimits& lim, bool sparse) {
  LaunchPlan p;
  p.sparse = sparse;
  const long long e = code.elem;
  p.hd = code.hd.bm > 0;
  p.hd_bm = code.hd.bm;
  p.states = states;
  // Threads per block: 256, or 128 when more threads are resident that way.
  int block = p.hd ? code.block : 256;
  if (!p.hd && lim.resident_128 * 128 > lim.resident_256 * 256) block = 128;
  p.block = block;
  // outer rows per block: a thread's rows (register blocking) times the rows of its values
  // (2 for float16 pair kernels)
  p.rows_per_block = p.hd ? code.hd.bm
                          : block * static_cast<long long>(code.rows_per_thread) * std::max(1, code.rows);
  const int resident_blocks = p.hd ? lim.resident_hd : block == 256 ? lim.resident_256 : lim.resident_128;
  p.concurrent = std::max(1, resident_blocks) * static_cast<long long>(std::max(1, lim.sm_count));
  const long long tile = code.tile;
  p.tile = tile;
  const long long by = code.wy * e;                  // bytes per inner row
  p.inner_row_bytes = by;
  const long long bx = code.wx * e + out_dim * 8LL;  // bytes per outer row (inputs and results)
  const long long se = code.state_elem;
  const long long sb = code.state_t * se + code.state_i * 4LL + code.state_c * se;  // per row and slot
  // Device memory for our buffers: most of what is free (other CUDA users in the process keep
  // what they hold).
  long long budget = static_cast<long long>(static_cast<double>(lim.available_bytes) * 0.8);
  budget = std::max(budget, 16LL << 10);
  p.budget = budget;

  // Inner rows: resident on the device for the whole call when they fit (copied once), in
  // `nj` pieces of `cj` rows that are converted, copied and reduced one after the other
  // without waiting, so that the host's conversion of a piece overlaps the copy and the
  // kernel of the previous one. Otherwise streamed in chunks through one buffer.
  const long long y_total = n_in * by;
  p.resident = by == 0 || y_total <= std::min(budget / 2, kStagingBytes * 3 / 4);
  long long cj = n_in;
  if (!p.resident) {
    long long cap = std::min(budget / 2, kStagingBytes / 2) / by;
    cj = std::max(tile, cap / tile * tile);
  } else if (y_total > lim.piece_bytes) {
    long long pieces = std::min<long long>(8, ceil_div(y_total, lim.piece_bytes));
    cj = ceil_div(ceil_div(n_in, pieces), tile) * tile;
  }
  cj = std::min(cj, 1LL << 30);
  p.inner_chunk = cj;
  p.inner_pieces = ceil_div(n_in, cj);
  RK_ASSERT(p.inner_pieces <= 8 || !p.resident, "too many resident pieces");
  // Outer rows per chunk: about 1e12 terms per launch (interrupts are polled between chunks),
  // never fewer than fill the GPU, within memory.
  const long long rpb = p.rows_per_block;
  const long long fill = p.concurrent * rpb;
  long long ci = std::min(std::max(1LL, rows),
                          std::max(fill, static_cast<long long>(1e12 / std::max(1.0, static_cast<double>(n_in)))));
  ci = std::min(ci, 1LL << 30);
  p.inner_device_rows = p.resident ? n_in : cj;
  const long long y_dev = p.inner_device_rows * by;
  for (int it = 0; it < 3; ++it) {
    long long per_row = bx + p.slots(ci) * sb;
    long long cap = (budget - y_dev) / std::max(1LL, per_row);
    if (code.wx > 0) cap = std::min(cap, kStagingBytes / 4 / (code.wx * e));
    if (ci <= cap) break;
    if (cap < 1)
      throw UserError("gpu", "not enough GPU memory for this reduction (" + std::to_string(budget >> 20) +
                                 " MiB usable): free GPU memory or use rkeops_use_cpu()");
    ci = cap >= rpb ? cap / rpb * rpb : cap;
  }
  p.outer_chunk = ci;
  p.outer_chunks = ceil_div(rows, ci);
  if (sparse) {  // everything at once (work items index rows and inner rows of the whole call)
    const long long need = y_total + rows * bx;
    const long long staged = y_total + rows * code.wx * e;
    if (need > budget || staged > kStagingBytes)
      throw UserError("gpu", "a block-sparse reduction needs its data on the GPU at once (" +
                                 std::to_string(need >> 20) + " MiB; " + std::to_string(budget >> 20) +
                                 " MiB usable): use rkeops_use_cpu()");
    p.resident = true;
    p.inner_chunk = std::max(1LL, n_in);
    p.inner_pieces = 1;
    p.inner_device_rows = n_in;
    p.outer_chunk = std::max(1LL, rows);
    p.outer_chunks = 1;
  }
  return p;
}

// Splits of the inner range: enough blocks for ~16 waves of resident blocks (few waves lose
// a partial last wave), each split at least 4 tiles long.
long long LaunchPlan::splits(long long rows) const {
  if (sparse) return 1;
  if (hd) return hd_splits(rows, inner_chunk, hd_bm, static_cast<int>(tile), concurrent);
  long long bxs = ceil_div(rows, rows_per_block), want = 16 * concurrent;
  if (bxs >= want) return 1LL;
  long long s = ceil_div(want, bxs);
  s = std::min(s, std::max(1LL, inner_chunk / (4 * tile)));
  return std::max(1LL, std::min(s, 65535LL));
}

long long LaunchPlan::slots(long long rows) const {
  long long s = splits(rows);
  return (inner_pieces == 1 && s == 1 && !states) ? 0LL : inner_pieces * s;  // partial states go through rk_merge
}

void run_cuda_reduction(GpuBackend& dev, const CudaCode& code, const Formula& f, const std::vector<Input>& in,
                        const CallShape& shape, double* out, int nthreads, const std::function<bool()>& interrupted,
                        GpuRunStats* stats, const LaunchPart& part) {
  const auto t_start = Clock::now();
  const int elem = code.elem;
  const long long e = code.elem, se = code.state_elem;
  const long long n_out = shape.out_rows, n_in = f.axis == 1 ? shape.n_j : shape.n_i;
  const long long r0 = part.r0, r1 = part.r1 < 0 ? n_out : part.r1;  // the rows computed here
  RK_ASSERT(0 <= r0 && r0 <= r1 && r1 <= n_out, "bad row range");
  const int out_dim = part.states ? code.state_t + code.state_i + code.state_c : f.out_dim;
  int states_flag = part.states ? 1 : 0;
  long long states_jbase = part.jbase;
  if (code.uses_index && n_in > INT_MAX)
    throw UserError("input",
                    "the GPU backend returns 32-bit indices: reductions with indices over more than 2^31 - 1 "
                    "points need rkeops_use_cpu()");

  // ---- plan: block size, chunks, splits of the inner range ----
  const bool hd = code.hd.bm > 0;  // the high-dimension scheme: its own block and layout
  const long long VL = 16 / e;     // its leading dimensions are multiples of VL
  DeviceLimits lim;
  if (hd) {
    lim.resident_hd = dev.resident_blocks(0, code.block);
  } else {
    lim.resident_256 = dev.resident_blocks(0, 256);
    lim.resident_128 = dev.resident_blocks(0, 128);
  }
  lim.sm_count = dev.sm_count();
  lim.available_bytes = static_cast<long long>(dev.available_bytes());
  lim.piece_bytes = dev.piece_bytes();
  const bool sparse = part.ranges != nullptr;
  if (sparse && hd)
    throw UserError("gpu", "block-sparse reductions (ranges) of inner products or distances of high dimension do "
                           "not run on the GPU: use rkeops_use_cpu()");
  RK_ASSERT(!sparse || (!part.states && r0 == 0 && r1 == n_out), "block-sparse reductions run whole");
  const LaunchPlan plan = plan_cuda_launch(code, n_in, r1 - r0, out_dim, part.states, lim, sparse);
  const int block = plan.block;
  const long long rpb = plan.rows_per_block, by = plan.inner_row_bytes, cj = plan.inner_chunk, nj = plan.inner_pieces;
  const bool resident = plan.resident;
  const long long ci = plan.outer_chunk, nci = plan.outer_chunks, y_dev = plan.inner_device_rows * by;
  // A block-sparse call splits each work item's inner ranges over gridDim.y blocks (partial
  // states merged by rk_merge) when its items cannot fill one wave of blocks, as long as each
  // part keeps about 4 tiles. (Splitting up to 16 waves, as dense calls do, made a batch of 64
  // problems of 2e4 points, 1250 items, slower on the H200: 25 ms instead of 20 ms.)
  long long sparse_split = 1;
  auto splits_for = [&](long long rows) { return sparse ? sparse_split : plan.splits(rows); };
  auto slots_for = [&](long long rows) { return sparse ? (sparse_split > 1 ? sparse_split : 0LL) : plan.slots(rows); };

  // ---- buffers ----
  const long long ci_ld = hd ? ceil_div(ci, VL) * VL : ci;  // leading dimension of X
  const size_t x_bytes = round_up(static_cast<size_t>(std::max(1LL, ci_ld * code.wx * e)), 256);
  const size_t y_bytes = round_up(static_cast<size_t>(std::max(1LL, y_dev + (hd ? VL * by : 0))), 256);
  const size_t p_bytes = round_up(static_cast<size_t>(std::max(1LL, code.np * e)), 256);
  char* host = static_cast<char*>(dev.staging(x_bytes + y_bytes + p_bytes));
  // Device-resident inputs (DeviceMatrix) where the packed layout is column-major (outer rows;
  // inner rows of the high-dimension scheme, not its shifted pair variables): copied device to
  // device into the packed buffers. Inner variables of the generic scheme (row-major packed
  // rows): interleaved on the device by rk_pack_inner. The host packs the others (`host_in`:
  // resident ones with no columns). dev_in[p]: the device copy of input p, or 0.
  std::vector<uint64_t> dev_in(in.size(), 0);
  std::vector<Input> host_in(in);
  bool any_dev = false, dev_inner = false;
  // the high-dimension scheme's pair variables: shifted and normed on the device by rk_pack_pair
  auto hd_pair = [&](size_t p) {
    return hd && (static_cast<int>(p) == code.hd.x_pos || static_cast<int>(p) == code.hd.y_pos);
  };
  for (size_t p = 0; p < in.size(); ++p) {
    const bool inner_packed = !hd && code.y_off[p] >= 0 && dev.packs_inner();
    if (!in[p].device || !(code.x_off[p] >= 0 || (hd && code.y_off[p] >= 0) || inner_packed)) continue;
    if (hd_pair(p) && !dev.packs_inner()) continue;
    if (elem == 2) continue;  // float16: packed from the host copy (device copies are float or double)
    dev_in[p] = dev.resident(in[p], code.elem);
    if (!dev_in[p]) continue;
    host_in[p].cols = 0;
    (code.x_off[p] >= 0 ? any_dev : dev_inner) = true;
  }
  const bool dev_x_pair = hd && dev_in[static_cast<size_t>(code.hd.x_pos)] != 0,
             dev_y_pair = hd && dev_in[static_cast<size_t>(code.hd.y_pos)] != 0;
  // The high-dimension scheme: the common point subtracted from both sides of its distances
  // (on the host while packing, on the device by rk_pack_pair for resident pair variables).
  auto t0 = Clock::now();
  const std::vector<double> center = hd && code.hd.center ? pair_center(in[code.hd.y_pos]) : std::vector<double>();
  double convert_ms = ms_since(t0);
  uint64_t dCenter = 0;
  if ((dev_x_pair || dev_y_pair) && !center.empty()) {
    dCenter = dev.buffer(10, center.size() * sizeof(double));
    dev.h2d(dCenter, center.data(), center.size() * sizeof(double));
  }
  if (hd) any_dev = any_dev || dev_inner;
  // With a resident inner variable in the generic scheme, rk_pack_inner makes the whole packed
  // inner rows on the device: the other inner variables are converted on the host column-major
  // (their own columns only, at up_off[p] in a block of up_cols columns), copied to the device
  // buffer dUp and interleaved from there; the padding is zeroed on the device.
  const bool dev_pack = dev_inner && !hd;
  std::vector<int> up_off(in.size(), -1);
  int up_cols = 0, used_y = 0;
  for (size_t p = 0; p < in.size(); ++p) {
    if (code.y_off[p] < 0) continue;
    used_y = std::max<int>(used_y, code.y_off[p] + static_cast<int>(in[p].cols));
    if (dev_pack && !dev_in[p]) {
      up_off[p] = up_cols;
      up_cols += static_cast<int>(in[p].cols);
    }
  }
  // rk_pack_inner for the inner rows [j0, j0 + n) (device address d): each inner variable into
  // its columns (a resident one from its device copy, the others from dUp), then the padding.
  auto pack_inner_on_device = [&](uint64_t d, uint64_t up, long long j0, long long n) {
    auto run = [&](long long off, uint64_t src, long long src_ld, long long src_j0, int cols) {
      uint64_t dst = d;
      long long off_ = off, ld_ = src_ld, j0_ = src_j0, n_ = n;
      int cols_ = cols;
      void* args[] = {&dst, &off_, &src, &ld_, &j0_, &n_, &cols_};
      const long long total = n * cols;
      if (total > 0) dev.launch(2, static_cast<unsigned>(ceil_div(total, 256)), 1, 256, args);
    };
    for (size_t p = 0; p < in.size(); ++p) {
      if (code.y_off[p] < 0) continue;
      if (dev_in[p])
        run(code.y_off[p], dev_in[p], in[p].rows, j0, static_cast<int>(in[p].cols));
      else
        run(code.y_off[p], up + static_cast<uint64_t>(up_off[p] * n * e), n, 0, static_cast<int>(in[p].cols));
    }
    if (used_y < code.wy) run(used_y, 0, 0, 0, code.wy - used_y);
  };
  // Copies the packed column-major block of rows [a, a + n) (leading dimension ld, columns
  // `offs`, plus column `norm`) from the host staging at `h` to the device at `d`: host-packed
  // columns by transfer, resident ones device to device.
  auto copy_cols = [&](uint64_t d, const char* h, const std::vector<int>& offs, int norm, long long a, long long n,
                       long long ld, long long width) {
    if (!any_dev) {
      dev.h2d(d, h, static_cast<size_t>(ld * width * e));
      return;
    }
    for (size_t p = 0; p < in.size(); ++p) {
      if (offs[p] < 0) continue;
      const uint64_t at = d + static_cast<uint64_t>(offs[p] * ld * e);
      if (!dev_in[p]) {
        dev.h2d(at, h + offs[p] * ld * e, static_cast<size_t>(in[p].cols * ld * e));
        continue;
      }
      if (hd_pair(p)) {
        uint64_t dst = at, src = dev_in[p], ctr = dCenter;
        long long ld_ = ld, src_ld = in[p].rows, a_ = a, n_ = n;
        int norm_ = norm;
        void* args[] = {&dst, &ld_, &src, &src_ld, &a_, &n_, &ctr, &norm_};
        if (n > 0) dev.launch(2, static_cast<unsigned>(ceil_div(n, 256)), 1, 256, args);
        norm = -1;  // written by rk_pack_pair
        continue;
      }
      for (long long k = 0; k < in[p].cols; ++k)
        dev.d2d(at + static_cast<uint64_t>(k * ld * e), dev_in[p] + static_cast<uint64_t>((k * in[p].rows + a) * e),
                static_cast<size_t>(n * e));
    }
    if (norm >= 0) dev.h2d(d + static_cast<uint64_t>(norm * ld * e), h + norm * ld * e, static_cast<size_t>(ld * e));
  };
  char *hx = host, *hy = host + x_bytes, *hp = host + x_bytes + y_bytes;
  const uint64_t dX = dev.buffer(0, x_bytes), dY = dev.buffer(1, y_bytes), dP = dev.buffer(2, p_bytes);
  const uint64_t dOut = dev.buffer(3, static_cast<size_t>(ci * out_dim * 8LL + 8));
  // the host's inner variables when the inner rows are packed on the device: one region per
  // resident piece (as the staging), or one reused by the streamed chunks
  const uint64_t dUp = dev_pack && up_cols > 0 ? dev.buffer(9, static_cast<size_t>(
                                                                    (resident ? plan.inner_device_rows : cj) * up_cols * e + 256))
                                               : 0;
  // A block-sparse reduction: one block per work item (at most `block` rows of one outer range).
  RangeItems items;
  uint64_t dItems = 0, dJr = 0;
  if (sparse) {
    items = plan_range_items(*part.ranges, n_out, n_in, rpb);
    const size_t ib = items.items.size() * sizeof(long long), jb = items.jranges.size() * sizeof(long long);
    dItems = dev.buffer(7, ib + 64);
    dJr = dev.buffer(8, jb + 64);
    if (ib) dev.h2d(dItems, items.items.data(), ib);
    if (jb) dev.h2d(dJr, items.jranges.data(), jb);
    const long long want = plan.concurrent, n_items = std::max(1LL, items.count());
    const double per_row = items.pairs / static_cast<double>(std::max(1LL, n_out));  // inner rows a row meets
    const long long cap = static_cast<long long>(per_row / (4.0 * std::max(1LL, plan.tile)));
    sparse_split = std::max(1LL, std::min({ceil_div(want, n_items), cap, 65535LL}));
  }

  GpuRunStats st;
  st.block = block;
  st.chunks_outer = static_cast<int>(nci);
  st.chunks_inner = static_cast<int>(nj);
  t0 = Clock::now();
  pack(elem, 2, in, code, 0, 0, 0, PairPack(), hp, nthreads);
  PairPack xpp, ypp;  // (resident pair variables: not packed on the host)
  if (hd) {
    xpp = {dev_x_pair ? -1 : code.hd.x_pos, center.empty() ? nullptr : center.data(), code.hd.x_norm};
    ypp = {dev_y_pair ? -1 : code.hd.y_pos, center.empty() ? nullptr : center.data(), code.hd.y_norm};
  }
  convert_ms += ms_since(t0);
  bool y_loaded = false;

  // Timing marks: 0/1 around the copy of the outer rows and parameters; per piece q, 2 + 3q
  // before its copy, 3 + 3q after it, 4 + 3q after its kernel; 27, 28, 29 around the merge
  // and the copy of the results.
  for (long long i0 = r0; i0 < r1; i0 += ci) {
    const long long rows = std::min(ci, r1 - i0);
    const long long nsplit = splits_for(rows), nslots = slots_for(rows);
    st.nsplit = static_cast<int>(nsplit);
    st.grid_x = sparse ? items.count() : ceil_div(rows, rpb);
    const long long ldx = hd ? ceil_div(rows, VL) * VL : rows;
    uint64_t pst = 0, psi = 0, pcp = 0;
    if (nslots > 0) {
      pst = dev.buffer(4, static_cast<size_t>(nslots * rows * code.state_t * se + 16));
      psi = dev.buffer(5, static_cast<size_t>(nslots * rows * code.state_i * 4 + 16));
      pcp = dev.buffer(6, static_cast<size_t>(nslots * rows * code.state_c * se + 16));
    }
    t0 = Clock::now();
    pack(elem, 0, host_in, code, i0, rows, ldx, xpp, hx, nthreads);
    convert_ms += ms_since(t0);
    dev.mark(0);
    if (i0 == r0 && code.np > 0) dev.h2d(dP, hp, static_cast<size_t>(code.np * e));
    if (code.wx > 0) copy_cols(dX, hx, code.x_off, hd ? code.hd.x_norm : -1, i0, rows, ldx, code.wx);
    dev.mark(1);
    std::vector<int> timed;  // the pieces whose marks were recorded in this chunk
    for (long long q = 0; q < nj; ++q) {
      const long long j0 = q * cj, jr = std::min(cj, n_in - j0);
      // resident: piece q has its own staging and device regions; streamed: one region, reused
      // after the previous piece's kernel (sync below).
      const long long off = resident ? j0 * by : 0;
      const int m = 2 + 3 * static_cast<int>(std::min<long long>(q, 7));
      const long long ldy = hd ? ceil_div(jr, VL) * VL : jr;  // rows packed (column-major: its leading dimension)
      dev.mark(m);
      if (!y_loaded && by > 0) {
        if (dev_pack) {  // the host's inner variables column-major into dUp, then rk_pack_inner
          if (up_cols > 0) {
            t0 = Clock::now();
            if (elem == 4)
              pack_cols(host_in, up_off, PairPack(), j0, jr, jr, reinterpret_cast<float*>(hy + off), nthreads);
            else
              pack_cols(host_in, up_off, PairPack(), j0, jr, jr, reinterpret_cast<double*>(hy + off), nthreads);
            convert_ms += ms_since(t0);
            dev.h2d(dUp + static_cast<uint64_t>(off / by * up_cols * e), hy + off, static_cast<size_t>(up_cols * jr * e));
          }
          pack_inner_on_device(dY + static_cast<uint64_t>(off), dUp + static_cast<uint64_t>(off / by * up_cols * e), j0,
                               jr);
        } else {
          t0 = Clock::now();
          pack(elem, 1, host_in, code, j0, jr, ldy, ypp, hy + off, nthreads);
          convert_ms += ms_since(t0);
          if (hd)
            copy_cols(dY + static_cast<uint64_t>(off), hy + off, code.y_off, code.hd.y_norm, j0, jr, ldy, code.wy);
          else
            dev.h2d(dY + static_cast<uint64_t>(off), hy + off, static_cast<size_t>(ldy * by));
        }
      }
      dev.mark(m + 1);
      uint64_t x = dX, y = dY + static_cast<uint64_t>(off), p = dP, o = dOut;
      long long ldx_ = ldx, jbase = j0, jchunk = hd ? hd_jchunk(jr, nsplit, code.tile) : ceil_div(jr, nsplit);
      long long out_ld = rows;
      int n_outer = static_cast<int>(rows), n_inner = static_cast<int>(jr);
      int slot0 = nslots > 0 ? static_cast<int>(q * nsplit) : -1;
      uint64_t d_items = dItems, d_jranges = dJr;
      void* args[] = {&x,   &ldx_, &y,   &p,   &n_outer, &n_inner, &jbase, &jchunk,
                      &o,   &out_ld, &pst, &psi, &pcp,   &slot0,   &d_items, &d_jranges};
      const long long gx = sparse ? items.count() : ceil_div(rows, rpb);
      if (gx > 0)
        dev.launch(0, static_cast<unsigned>(gx), static_cast<unsigned>(nsplit), static_cast<unsigned>(block), args);
      dev.mark(m + 2);
      if (q < 8) timed.push_back(m);
      if (!resident) {  // the staging and device buffers are reused by the next chunk
        dev.sync();
        st.h2d_ms += dev.elapsed_ms(m, m + 1);
        st.kernel_ms += dev.elapsed_ms(m + 1, m + 2);
        timed.clear();
      }
      const bool more = q + 1 < nj || i0 + rows < r1;
      if (more && interrupted && interrupted()) {
        dev.sync();
        throw Interrupted();
      }
    }
    if (resident) y_loaded = true;
    dev.mark(27);
    if (nslots > 0) {
      uint64_t o = dOut;
      int ns = static_cast<int>(nslots), nr = static_cast<int>(rows);
      long long out_ld = rows;
      void* args[] = {&pst, &psi, &pcp, &ns, &nr, &o, &out_ld, &states_flag, &states_jbase};
      dev.launch(1, static_cast<unsigned>(ceil_div(rows, block)), 1, static_cast<unsigned>(block), args);
    }
    dev.mark(28);
    if (rows == n_out) {
      dev.d2h(out, dOut, static_cast<size_t>(n_out * out_dim * 8LL));
    } else {
      for (int k = 0; k < out_dim; ++k)
        dev.d2h(out + i0 + k * n_out, dOut + static_cast<uint64_t>(k * rows * 8), static_cast<size_t>(rows * 8));
    }
    dev.mark(29);
    dev.sync();
    st.h2d_ms += dev.elapsed_ms(0, 1);
    for (int m : timed) {
      st.h2d_ms += dev.elapsed_ms(m, m + 1);
      st.kernel_ms += dev.elapsed_ms(m + 1, m + 2);
    }
    st.merge_ms += dev.elapsed_ms(27, 28);
    st.d2h_ms += dev.elapsed_ms(28, 29);
    if (i0 + rows < r1 && interrupted && interrupted()) throw Interrupted();
  }
  st.convert_ms = convert_ms;
  st.total_ms = ms_since(t_start);
  st.valid = true;
  if (stats) *stats = st;
}

// ==== the CUDA driver side ====
namespace {

// Per GPU, for the session: a stream, timing events, reusable buffers and staging memory.
struct DeviceResources {
  CUstream stream = nullptr;
  CUevent ev[32] = {};
  std::vector<std::pair<CUdeviceptr, size_t>> bufs;
  void* host = nullptr;
  size_t host_bytes = 0;
  std::map<std::pair<void*, int>, int> occupancy;  // resident blocks per SM of (function, block)
  std::mutex occupancy_mutex;
};

DeviceResources& resources(CudaDriver* drv, int dev) {
  static std::map<int, DeviceResources> all;  // entries are never removed: references stay valid
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);  // host threads of several GPUs (MultiGpuKernel)
  DeviceResources& r = all[dev];
  if (!r.stream) {
    drv->check(drv->cuStreamCreate(&r.stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    for (auto& ev : r.ev) drv->check(drv->cuEventCreate(&ev, CU_EVENT_DEFAULT), "cuEventCreate");
  }
  return r;
}

class CudaBackend : public GpuBackend {
 public:
  CudaBackend(CudaDriver* drv, DeviceResources& res, CUfunction reduce, CUfunction merge, CUfunction pack, int sms,
              int ordinal = -1)
      : drv_(drv), r_(res), sms_(sms), ordinal_(ordinal) {
    fn_[0] = reduce;
    fn_[1] = merge;
    fn_[2] = pack;
  }
  size_t available_bytes() override {
    size_t free_b = 0, total_b = 0;
    drv_->check(drv_->cuMemGetInfo(&free_b, &total_b), "cuMemGetInfo");
    size_t held = 0;
    for (auto& b : r_.bufs) held += b.second;
    return free_b + held;
  }
  int sm_count() override { return sms_; }
  int resident_blocks(int fn, int block) override {
    // a property of the compiled function: asked once per (function, block) for the session
    std::lock_guard<std::mutex> lock(r_.occupancy_mutex);
    auto key = std::make_pair(static_cast<void*>(fn_[fn]), block);
    auto it = r_.occupancy.find(key);
    if (it != r_.occupancy.end()) return it->second;
    int n = 0;
    drv_->check(drv_->cuOccupancyMaxActiveBlocksPerMultiprocessor(&n, fn_[fn], block, 0),
                "cuOccupancyMaxActiveBlocksPerMultiprocessor");
    r_.occupancy[key] = n;
    return n;
  }
  uint64_t buffer(int slot, size_t bytes) override {
    if (r_.bufs.size() <= static_cast<size_t>(slot)) r_.bufs.resize(slot + 1, {0, 0});
    auto& b = r_.bufs[slot];
    if (b.second < bytes) {
      if (b.first) drv_->cuMemFree(b.first);
      b = {0, 0};
      size_t n = round_up(bytes, 1 << 20);
      drv_->check(drv_->cuMemAlloc(&b.first, n), "cuMemAlloc (GPU memory for the reduction's data)");
      b.second = n;
    }
    return b.first;
  }
  void* staging(size_t bytes) override {
    if (r_.host_bytes < bytes) {
      if (r_.host) drv_->cuMemFreeHost(r_.host);
      r_.host = nullptr;
      r_.host_bytes = 0;
      size_t n = round_up(bytes, 1 << 20);
      drv_->check(drv_->cuMemAllocHost(&r_.host, n), "cuMemAllocHost (page-locked staging memory)");
      r_.host_bytes = n;
    }
    return r_.host;
  }
  void h2d(uint64_t dst, const void* src, size_t bytes) override {
    drv_->check(drv_->cuMemcpyHtoDAsync(dst, src, bytes, r_.stream), "cuMemcpyHtoDAsync");
  }
  void d2h(void* dst, uint64_t src, size_t bytes) override {
    drv_->check(drv_->cuMemcpyDtoHAsync(dst, src, bytes, r_.stream), "cuMemcpyDtoHAsync");
  }
  void launch(int fn, unsigned gx, unsigned gy, unsigned block, void** args) override {
    drv_->check(drv_->cuLaunchKernel(fn_[fn], gx, gy, 1, block, 1, 1, 0, r_.stream, args, nullptr),
                fn == 0 ? "cuLaunchKernel (rk_reduce)" : fn == 1 ? "cuLaunchKernel (rk_merge)" : "cuLaunchKernel (device packing)");
  }
  uint64_t resident(const Input& x, int elem) override {
    // The whole matrix only (a piece read in place, e.g. by several GPUs, is packed from the host).
    if (!x.device || ordinal_ < 0 || !drv_->cuMemcpyDtoDAsync || x.data != x.device->host() ||
        x.rows != x.device->rows() || x.cols != x.device->cols() || x.stride() != x.device->rows())
      return 0;
    const int nt = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    return x.device->on_device(ordinal_, elem, nt);
  }
  void d2d(uint64_t dst, uint64_t src, size_t bytes) override {
    drv_->check(drv_->cuMemcpyDtoDAsync(dst, src, bytes, r_.stream), "cuMemcpyDtoDAsync");
  }
  bool packs_inner() override { return fn_[2] != nullptr && ordinal_ >= 0; }
  void mark(int k) override { drv_->check(drv_->cuEventRecord(r_.ev[k], r_.stream), "cuEventRecord"); }
  void sync() override { drv_->check(drv_->cuStreamSynchronize(r_.stream), "running the GPU kernel"); }
  double elapsed_ms(int a, int b) override {
    float ms = 0;
    if (!drv_->cuEventElapsedTime || drv_->cuEventElapsedTime(&ms, r_.ev[a], r_.ev[b]) != CUDA_SUCCESS) return 0;
    return ms;
  }

 private:
  CudaDriver* drv_;
  DeviceResources& r_;
  CUfunction fn_[3] = {nullptr, nullptr, nullptr};
  int sms_;
  int ordinal_;  // the GPU, for device-resident inputs
};

class CudaKernel : public Kernel {
 public:
  CudaKernel(Formula f, CudaCode code, int dev, CUmodule mod, int sms)
      : Kernel(std::move(f)), code_(std::move(code)), dev_(dev), sms_(sms) {
    CudaDriver* drv = CudaDriver::get(nullptr);
    drv->check(drv->cuModuleGetFunction(&reduce_, mod, "rk_reduce"), "cuModuleGetFunction(rk_reduce)");
    drv->check(drv->cuModuleGetFunction(&merge_, mod, "rk_merge"), "cuModuleGetFunction(rk_merge)");
    // launch(2): the module's device packing (codegen_cuda.cpp, codegen_cuda_hd.cpp)
    const char* pack_name = code_.hd.bm == 0 ? "rk_pack_inner" : "rk_pack_pair";
    drv->check(drv->cuModuleGetFunction(&pack_, mod, pack_name), (std::string("cuModuleGetFunction(") + pack_name + ")").c_str());
    if (drv->cuFuncGetAttribute) {  // optional: for the log and the run statistics only
      drv->cuFuncGetAttribute(&regs_, CU_FUNC_ATTRIBUTE_NUM_REGS, reduce_);
      drv->cuFuncGetAttribute(&local_, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, reduce_);
      drv->cuFuncGetAttribute(&shared_, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, reduce_);
    }
    log_msg("rkeops: GPU kernel rk_reduce uses " + std::to_string(regs_) + " registers, " + std::to_string(local_) +
            " bytes of local memory (spills), " + std::to_string(shared_) + " bytes of shared memory");
  }
  // The module stays loaded for the session (kernels may be cached in R closures).

  // Partial states have the CPU kernel's layout (the same reduction row: values, indices,
  // compensations), so merging is the CPU kernel's.
  int state_width() const override { return code_.state_t + code_.state_i + code_.state_c; }
  void run_partial(const std::vector<Input>& in, const CallShape& shape, long long jbase, double* states,
                   const EngineOptions& opt, const std::function<bool()>& interrupted) override {
    LaunchPart part;
    part.states = true;
    part.jbase = jbase;
    run_part(in, shape, states, opt, interrupted, part);
  }
  void merge_partials(const std::vector<const double*>& parts, long long rows, double* out, double* states_out,
                      const EngineOptions& opt) override {
    EngineOptions o = opt;
    o.backend = Backend::CPU;
    o.devices.clear();
    // (float16 states are float32 states: the CPU, which has no float16, merges them as such)
    if (o.code.dtype == DType::Float16) o.code.dtype = DType::Float32;
    get_kernel(formula_.text, formula_.aliases, o)->merge_partials(parts, rows, out, states_out, o);
  }
  void run(const std::vector<Input>& in, const CallShape& shape, double* out, const EngineOptions& opt,
           const std::function<bool()>& interrupted) override {
    LaunchPart part;
    part.ranges = opt.ranges.get();
    run_part(in, shape, out, opt, interrupted, part);
  }

  // One part of a call on this kernel's GPU (any host thread: it makes the context current).
  void run_part(const std::vector<Input>& in, const CallShape& shape, double* out, const EngineOptions& opt,
                const std::function<bool()>& interrupted, const LaunchPart& part) {
    CudaDriver* drv = CudaDriver::get(nullptr);
    RK_ASSERT(drv != nullptr, "the CUDA driver went away");
    drv->context(dev_);
    CudaBackend be(drv, resources(drv, dev_), reduce_, merge_, pack_, sms_, dev_);
    GpuRunStats st;
    run_cuda_reduction(be, code_, formula_, in, shape, out, opt.nthreads, interrupted, &st, part);
    st.regs = regs_;
    st.local_bytes = local_;
    st.shared_bytes = shared_;
    st.compile_seconds = compile_seconds;
    {
      std::lock_guard<std::mutex> lock(g_stats_mutex);
      g_last_stats = st;
    }
    if (verbose()) {
      char buf[400];
      std::snprintf(buf, sizeof buf,
                    "rkeops: GPU run %.3f ms: host conversion %.3f, H2D %.3f, kernel %.3f, merge %.3f, D2H %.3f "
                    "(block %d, grid %lld x %d, %d outer x %d inner chunk(s))",
                    st.total_ms, st.convert_ms, st.h2d_ms, st.kernel_ms, st.merge_ms, st.d2h_ms, st.block, st.grid_x,
                    st.nsplit, st.chunks_outer, st.chunks_inner);
      log_msg(buf);
    }
  }

 private:
  CudaCode code_;
  int dev_;
  CUfunction reduce_ = nullptr, merge_ = nullptr, pack_ = nullptr;
  int sms_;
  int regs_ = 0, local_ = 0, shared_ = 0;
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

// Several GPUs of one host: a call is split over them, one host thread per GPU. With enough
// result rows each GPU computes a block of rows; otherwise (few queries against many points)
// each GPU reduces a piece of the reduced index into partial states, merged on the host.
class MultiGpuKernel : public Kernel {
 public:
  MultiGpuKernel(Formula f, std::vector<std::shared_ptr<CudaKernel>> per_device)
      : Kernel(std::move(f)), gpus_(std::move(per_device)) {}

  int state_width() const override { return gpus_[0]->state_width(); }
  void merge_partials(const std::vector<const double*>& parts, long long rows, double* out, double* states_out,
                      const EngineOptions& opt) override {
    gpus_[0]->merge_partials(parts, rows, out, states_out, opt);
  }
  void run(const std::vector<Input>& in, const CallShape& shape, double* out, const EngineOptions& opt,
           const std::function<bool()>& interrupted) override {
    run_split(in, shape, out, opt, interrupted, false, 0);
  }
  void run_partial(const std::vector<Input>& in, const CallShape& shape, long long jbase, double* states,
                   const EngineOptions& opt, const std::function<bool()>& interrupted) override {
    run_split(in, shape, states, opt, interrupted, true, jbase);
  }

  // Result rows per GPU below which the reduced index is split instead.
  static constexpr long long kMinRowsPerGpu = 65536;

 private:
  void run_split(const std::vector<Input>& in, const CallShape& shape, double* out, const EngineOptions& opt,
                 const std::function<bool()>& interrupted, bool states, long long jbase) {
    const Formula& f = formula_;
    const long long n_out = shape.out_rows, n_in = f.axis == 1 ? shape.n_j : shape.n_i;
    const int ng = static_cast<int>(gpus_.size());
    const int inner = f.inner_cat();
    const bool by_rows = states || n_out >= ng * kMinRowsPerGpu || n_in < ng;
    const int width = state_width();
    std::vector<std::vector<double>> parts(by_rows ? 0 : ng);
    std::atomic<bool> stop(false);
    auto poll = [&stop] { return stop.load(); };
    std::vector<std::exception_ptr> errors(ng);
    std::vector<std::thread> threads;
    for (int g = 0; g < ng; ++g) {
      threads.emplace_back([&, g] {
        try {
          if (by_rows) {  // rows [r0, r1) of the result (or of the partial states)
            LaunchPart part;
            part.r0 = n_out * g / ng;
            part.r1 = n_out * (g + 1) / ng;
            part.states = states;
            part.jbase = jbase;
            if (part.r0 < part.r1) gpus_[g]->run_part(in, shape, out, opt, poll, part);
          } else {  // a piece of the reduced index, read in place: partial states
            const long long j0 = n_in * g / ng, j1 = n_in * (g + 1) / ng;
            std::vector<Input> piece = in;
            for (size_t k = 0; k < in.size(); ++k)
              if (f.args[k].cat == inner) {
                piece[k].ld = in[k].stride();
                piece[k].data = in[k].data + j0;
                piece[k].rows = j1 - j0;
              }
            CallShape sh = shape;
            (f.axis == 1 ? sh.n_j : sh.n_i) = j1 - j0;
            parts[g].assign(static_cast<size_t>(n_out * width), 0.0);
            LaunchPart part;
            part.states = true;
            part.jbase = j0;
            gpus_[g]->run_part(piece, sh, parts[g].data(), opt, poll, part);
          }
        } catch (...) {
          errors[g] = std::current_exception();
          stop = true;
        }
      });
    }
    // The R session's interrupts are polled on this (the calling) thread only.
    std::atomic<int> done(0);
    std::thread waiter([&] {
      for (auto& t : threads) t.join();
      done = 1;
    });
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (!stop.load() && interrupted && interrupted()) stop = true;
    }
    waiter.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
    if (stop.load()) throw Interrupted();
    if (!by_rows) {
      std::vector<const double*> ptr;
      for (auto& p : parts) ptr.push_back(p.data());
      merge_partials(ptr, n_out, out, nullptr, opt);
    }
  }

  std::vector<std::shared_ptr<CudaKernel>> gpus_;
};

// Loads a CUBIN or PTX image; false (with the driver's reason) when the driver refuses it.
bool load_module(CudaDriver* drv, const std::string& image, CUmodule* mod, std::string* why) {
  char err[4096] = {0};
  CUjit_option o[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void* v[2] = {err, reinterpret_cast<void*>(static_cast<uintptr_t>(sizeof err - 1))};
  CUresult r = drv->cuModuleLoadDataEx(mod, image.c_str(), 2, o, v);
  if (r == CUDA_SUCCESS) return true;
  *why = drv->error_text(r) + (err[0] ? std::string(": ") + err : std::string());
  return false;
}

// The CUDA driver, or NVRTC, or a "gpu" error saying why it is not usable.
CudaDriver* usable_driver() {
  std::string why;
  CudaDriver* drv = CudaDriver::get(&why);
  if (!drv) throw UserError("gpu", "the GPU backend is not usable: " + why + "; use rkeops_use_cpu()");
  return drv;
}
Nvrtc* usable_nvrtc() {
  std::string why;
  Nvrtc* nv = Nvrtc::get(&why);
  if (!nv) throw UserError("gpu", "the GPU backend is not usable: " + why + "; use rkeops_use_cpu()");
  return nv;
}

}  // namespace

double open_gpu_context(int device) {
  CudaDriver* drv = usable_driver();
  auto t0 = Clock::now();
  drv->context(device);
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::shared_ptr<Kernel> load_cuda_kernel(Formula f, const EngineOptions& opt, const CompileWatch& watch) {
  CudaDriver* drv = usable_driver();
  Nvrtc* nv = usable_nvrtc();
  CudaDriver::DeviceInfo info = drv->info(opt.device);
  drv->context(opt.device);
  CudaCode code = generate_cuda_code(f, opt.code, opt.include_dir);
  const int cc = info.cc_major * 10 + info.cc_minor;
  const int arch = nv->best_arch_for(cc);
  if (arch < 0)
    throw UserError("gpu", "GPU " + std::to_string(opt.device) + " (" + info.name + ", compute capability " +
                               std::to_string(info.cc_major) + "." + std::to_string(info.cc_minor) +
                               ") is older than what NVRTC " + nv->version() + " supports; use rkeops_use_cpu()");
  // A CUBIN runs only on its own major architecture; otherwise PTX, which the driver compiles.
  const bool cubin = arch / 10 == info.cc_major;
  const int amaj = arch / 10, amin = arch % 10;
  const std::vector<std::string> nv_opts = Nvrtc::options(amaj, amin, {}, cubin);
  const std::string ext = cubin ? ".cubin" : ".ptx";
  const std::string key =
      sha256_hex(std::string(kEngineVersion) + "\ncuda abi " + std::to_string(kCudaAbiVersion) + "\nNVRTC " +
                 nv->version() + "\n" + join(nv_opts) + "\n" + ext + "\n" + code.source);
  ArtifactSteps steps;
  steps.key = key;
  steps.what = "GPU kernel";
  steps.canonical = f.canonical();
  CUmodule mod = nullptr;
  steps.load_cached = [&](DiskCache& cache, std::string* why) {
    std::string image;
    return cache.load_bytes(key, ext, &image) && load_module(drv, image, &mod, why);
  };
  steps.build = [&](DiskCache& cache) {
    const auto t0 = Clock::now();
    std::string image, why;
    try {
      // NVRTC compiles in this process and cannot be cancelled: it runs on a worker thread that
      // an interrupt or the time limit abandons (it finishes in the background, its result
      // discarded). The thread owns copies of what it reads; NVRTC stays loaded for the session.
      image = run_on_worker([nv, source = code.source, amaj, amin, cubin] {
        return nv->compile(source, "rkeops_kernel.cu", amaj, amin, {}, cubin);
      }, watch, "NVRTC");
    } catch (const CompileError& e) {
      std::string note, dump = cache.dump_failed(key, ".cu", code.source, &note);
      throw CompileError(std::string(e.what()) + "; " + note + "\n" + e.log, e.log, e.compiler, e.options, dump);
    }
    log_msg("rkeops: compiled a GPU kernel (" + std::string(cubin ? "CUBIN sm_" : "PTX compute_") +
            std::to_string(arch) + ") in " + std::to_string(std::chrono::duration<double>(Clock::now() - t0).count()) +
            " s");
    cache.store_bytes(key, ext, image);
    if (!load_module(drv, image, &mod, &why)) throw UserError("gpu", "the CUDA driver refused the compiled kernel: " + why);
  };
  const ArtifactOutcome got = load_or_build(steps, {opt.cache_dir, opt.fallback_cache_dir}, opt.forbid_compile);
  auto k = std::make_shared<CudaKernel>(std::move(f), std::move(code), opt.device, mod, info.sm_count);
  k->compile_seconds = got.compile_seconds;
  k->from_disk = got.from_disk;
  return k;
}

std::shared_ptr<Kernel> load_multi_gpu_kernel(const std::string& formula, const std::vector<std::string>& aliases,
                                              const EngineOptions& opt, const std::function<bool()>& interrupted) {
  std::vector<std::shared_ptr<CudaKernel>> per;
  double secs = 0;
  for (int d : opt.devices) {
    EngineOptions o = opt;
    o.devices.clear();
    o.device = d;
    auto k = std::dynamic_pointer_cast<CudaKernel>(get_kernel(formula, aliases, o, interrupted));
    RK_ASSERT(k != nullptr, "a GPU kernel was expected");
    secs += k->compile_seconds;
    per.push_back(k);
  }
  auto m = std::make_shared<MultiGpuKernel>(parse_formula(formula, aliases), std::move(per));
  m->compile_seconds = secs;
  return m;
}

GpuStatus gpu_status(bool always_nvrtc) {
  GpuStatus s;
  try {
    std::string why;
    CudaDriver* drv = CudaDriver::get(&why);
    if (!drv) {
      s.driver = why;
    } else {
      int v = drv->driver_version();
      s.driver =
          drv->library_path() + " (CUDA " + std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10) + ")";
      for (int d = 0; d < drv->device_count(); ++d) {
        CudaDriver::DeviceInfo i = drv->info(d);
        GpuStatus::Device dv;
        dv.name = i.name;
        dv.cc_major = i.cc_major;
        dv.cc_minor = i.cc_minor;
        dv.sm_count = i.sm_count;
        dv.memory_gb = static_cast<double>(i.total_mem) / (1024.0 * 1024.0 * 1024.0);
        s.devices.push_back(dv);
      }
    }
    if (s.devices.empty() && !always_nvrtc) {
      s.nvrtc = "not loaded (no GPU)";
      return s;
    }
    Nvrtc* nv = Nvrtc::get(&why);
    s.nvrtc = nv ? "NVRTC " + nv->version() + " (" + nv->library_path() + ")" : why;
    s.usable = drv && !s.devices.empty() && nv;
  } catch (const std::exception& e) {
    s.usable = false;
    if (s.driver.empty()) s.driver = e.what();
  }
  return s;
}

}  // namespace rkeops

#include "batch.h"

#include <algorithm>
#include <memory>
#include <mutex>

#include "errors.h"
#include "task_pool.h"

namespace rkeops {
namespace {

// Runs fn(a, b) over [0, count) on up to `nthreads` threads when `work` (values moved) is
// worth waking them.
template <class F>
void parallel_for(long long count, long long work, int nthreads, const F& fn) {
  const int nt = static_cast<int>(std::max(1LL, std::min<long long>({nthreads, 32, count})));
  if (nt == 1 || work < (1LL << 16)) {
    fn(0LL, count);
    return;
  }
  run_tasks(nt, nt, [&fn, nt, count](long long t) { fn(count * t / nt, count * (t + 1) / nt); });
}

long long prod(const std::vector<int>& v) {
  long long p = 1;
  for (int x : v) p *= x;
  return p;
}

// The position, in an input of batch shape `own` (sizes 1 broadcast), of each problem of the
// batch shape `to` (column-major).
std::vector<long long> positions(const std::vector<int>& own, const std::vector<int>& to) {
  const long long T = prod(to);
  std::vector<long long> pos(static_cast<size_t>(T), 0);
  for (long long t = 0; t < T; ++t) {
    long long rest = t, stride = 1, p = 0;
    for (size_t d = 0; d < to.size(); ++d) {
      const long long digit = rest % to[d];
      rest /= to[d];
      if (own[d] > 1) p += digit * stride;
      stride *= own[d];
    }
    pos[static_cast<size_t>(t)] = p;
  }
  return pos;
}

constexpr long long kRowBlock = 64;  // rows of a problem moved together (their source lines stay in cache)

// Buffers for the stacked inputs and results, kept between calls (up to kKeptBytes in all): a
// fresh allocation of tens of MB costs a page fault per 4 KB page at its first write, as much as
// the gather itself, and batched calls come in loops.
class BufferPool {
 public:
  static constexpr size_t kKeptBytes = size_t(256) << 20;
  struct Buf {
    std::unique_ptr<double[]> p;
    size_t n = 0;
  };
  Buf take(size_t n) {
    {
      std::lock_guard<std::mutex> lock(m_);
      size_t best = free_.size();
      for (size_t k = 0; k < free_.size(); ++k)  // the smallest that fits
        if (free_[k].n >= n && (best == free_.size() || free_[k].n < free_[best].n)) best = k;
      if (best < free_.size()) {
        Buf b = std::move(free_[best]);
        free_.erase(free_.begin() + static_cast<long>(best));
        kept_ -= b.n * sizeof(double);
        return b;
      }
    }
    Buf b;
    b.p.reset(new double[std::max<size_t>(n, 1)]);
    b.n = std::max<size_t>(n, 1);
    return b;
  }
  void give(Buf b) {
    if (!b.p) return;
    std::lock_guard<std::mutex> lock(m_);
    while (!free_.empty() && kept_ + b.n * sizeof(double) > kKeptBytes) {  // the oldest go first
      kept_ -= free_.front().n * sizeof(double);
      free_.erase(free_.begin());
    }
    if (b.n * sizeof(double) > kKeptBytes) return;
    kept_ += b.n * sizeof(double);
    free_.push_back(std::move(b));
  }

 private:
  std::mutex m_;
  std::vector<Buf> free_;
  size_t kept_ = 0;
};
BufferPool& pool() {
  static BufferPool* p = new BufferPool();  // never destroyed: no order problem at exit
  return *p;
}

// The pool's buffers of one call, given back when it ends (also on an error).
struct CallBuffers {
  std::vector<BufferPool::Buf> bufs;
  double* take(long long n) {
    bufs.push_back(pool().take(static_cast<size_t>(n)));
    return bufs.back().p.get();
  }
  ~CallBuffers() {
    for (auto& b : bufs) pool().give(std::move(b));
  }
};

// Rows [r0, r1) of the stacked result (problem-major: row t * n + i, value k at src[row + k * ld])
// into R's array order (row t + B * i of `out`, leading dimension B * n), the index columns
// [idx0, idx1) counted from problem t's first inner point ib[t] * n_in (0 when out of its range).
void scatter_rows(const double* src, long long ld, long long r0, long long r1, long long n, long long B, int cols,
                  int idx0, int idx1, const std::vector<long long>& ib, long long n_in, double* out, int nthreads) {
  if (r1 <= r0) return;
  const long long t0 = r0 / n, t1 = (r1 - 1) / n + 1;  // the problems met
  // rows i of the problems met, in blocks: a block writes whole cache lines of `out` (its
  // problems' values of one row are adjacent there)
  const long long i_lo = t1 - t0 > 1 ? 0 : r0 - t0 * n, i_hi = t1 - t0 > 1 ? n : r1 - t0 * n;
  const long long blocks = (i_hi - i_lo + kRowBlock - 1) / kRowBlock, ldo = B * n;
  parallel_for(blocks * cols, (r1 - r0) * cols, nthreads, [&](long long a, long long b) {
    for (long long w = a; w < b; ++w) {
      const long long c = w / blocks, i0 = i_lo + (w % blocks) * kRowBlock, i1 = std::min(i_hi, i0 + kRowBlock);
      const double* s = src + c * ld;
      double* d = out + c * ldo;
      const bool index = c >= idx0 && c < idx1;
      for (long long t = t0; t < t1; ++t) {
        const long long a_ = std::max(i0, r0 - t * n), b_ = std::min(i1, r1 - t * n);  // rows of t in [r0, r1)
        const double* sb = s + t * n;
        double* db = d + t;
        if (!index) {
          for (long long i = a_; i < b_; ++i) db[i * B] = sb[i];
          continue;
        }
        const double off = static_cast<double>(ib[static_cast<size_t>(t)] * n_in);
        for (long long i = a_; i < b_; ++i) {
          const double v = sb[i] - off;
          db[i * B] = v < 0 || v >= static_cast<double>(n_in) ? 0.0 : v;
        }
      }
    }
  });
}

}  // namespace

void gather_batch(const BatchInput& x, const std::vector<int>& to, double* dst, int nthreads) {
  const long long n = x.in.rows, d = x.in.cols, T = prod(to);
  const bool shared = x.own.empty();
  const long long P = shared ? 1 : prod(x.own);
  // value k of point i of the input's problem p: data[p + step_i * i + step_k * k]
  const long long step_i = shared ? 1 : P, step_k = shared ? x.in.stride() : P * n;
  const std::vector<long long> pos = shared ? std::vector<long long>(static_cast<size_t>(T), 0) : positions(x.own, to);
  const long long blocks = (n + kRowBlock - 1) / kRowBlock, ld = T * n;
  parallel_for(blocks * d, T * n * d, nthreads, [&](long long a, long long b) {
    for (long long w = a; w < b; ++w) {
      const long long k = w / blocks, i0 = (w % blocks) * kRowBlock, i1 = std::min(n, i0 + kRowBlock);
      const double* s = x.in.data + k * step_k;
      double* o = dst + k * ld;
      for (long long t = 0; t < T; ++t) {
        const double* st = s + pos[static_cast<size_t>(t)];
        double* ot = o + t * n;
        for (long long i = i0; i < i1; ++i) ot[i] = st[i * step_i];
      }
    }
  });
}

BatchView batch_view(const BatchInput& x, const std::vector<int>& to) {
  BatchView v;
  v.n = std::max(1LL, x.in.rows);
  if (x.own.empty()) {
    v.pos.assign(static_cast<size_t>(prod(to)), 0);
  } else {
    v.P = prod(x.own);
    v.pos = positions(x.own, to);
  }
  return v;
}

double run_batched(const std::string& formula, const std::vector<std::string>& aliases,
                   const std::vector<BatchInput>& in, const std::vector<int>& shape, const EngineOptions& opt,
                   const std::function<double*(long long rows, int cols)>& alloc,
                   const std::function<bool()>& interrupted) {
  const FormulaInfo info = describe_formula(formula, aliases);
  if (in.size() != info.args.size())
    throw UserError("input", "the formula has " + std::to_string(info.args.size()) + " input(s) but " +
                                 std::to_string(in.size()) + " were given");
  for (int s : shape)
    if (s < 1) throw UserError("dimension", "batch dimensions must be at least 1");
  const int outer = info.axis == 1 ? 0 : 1, inner = 1 - outer;
  // the inner batch shape: the sizes along which some inner input varies (a shared inner
  // input, or one of size 1 along a dimension, is stored once for the problems that share it)
  std::vector<int> ishape(shape.size(), 1);
  long long n_out = -1, n_in = -1;
  int first[2] = {-1, -1};
  for (size_t k = 0; k < in.size(); ++k) {
    const FormulaInfo::Arg& a = info.args[k];
    const BatchInput& x = in[k];
    if (a.cat == 2) {
      if (!x.own.empty()) throw UserError("input", a.label + ": a batched parameter is run problem by problem");
      continue;
    }
    if (!x.own.empty()) {
      if (x.own.size() != shape.size())
        throw UserError("dimension", a.label + " has " + std::to_string(x.own.size()) +
                                         " batch dimension(s) where the batch has " + std::to_string(shape.size()));
      for (size_t d = 0; d < shape.size(); ++d) {
        if (x.own[d] != 1 && x.own[d] != shape[d])
          throw UserError("dimension", a.label + ": batch dimension " + std::to_string(d + 1) + " has size " +
                                           std::to_string(x.own[d]) + " where the batch has " +
                                           std::to_string(shape[d]) + " (sizes must be equal or 1)");
        if (a.cat == inner) ishape[d] = std::max(ishape[d], x.own[d]);
      }
    }
    long long& n = a.cat == outer ? n_out : n_in;
    int& f = first[a.cat == outer ? 0 : 1];
    if (n < 0) {
      n = x.in.rows;
      f = static_cast<int>(k);
    } else if (n != x.in.rows) {
      throw UserError("dimension", "all " + std::string(a.cat == 0 ? "Vi" : "Vj") +
                                       " inputs must have the same number of points per problem: " +
                                       info.args[static_cast<size_t>(f)].label + " has " + std::to_string(n) + ", " +
                                       a.label + " has " + std::to_string(x.in.rows));
    }
  }
  if (n_out < 0) throw UserError("input", "a batched formula without an outer variable is run problem by problem");
  if (n_in < 0) n_in = 1;
  const long long B = prod(shape);

  // the stacked inputs: read in place when one copy serves every problem; on one GPU, views of
  // the arrays that the launcher's packing reads in place (Input::batch); else gathered
  CallBuffers held;
  std::vector<Input> st(in.size());
  const bool views = opt.backend == Backend::GPU && opt.devices.size() <= 1;
  std::vector<BatchView> view(in.size());
  for (size_t k = 0; k < in.size(); ++k) {
    const BatchInput& x = in[k];
    const int cat = info.args[k].cat;
    if (cat == 2) {
      st[k] = x.in;
      continue;
    }
    const std::vector<int>& to = cat == outer ? shape : ishape;
    const long long T = prod(to);
    if (T == 1 && (x.own.empty() || prod(x.own) == 1)) {  // one problem's rows: the data as it is
      st[k] = x.in;
      continue;
    }
    if (views && (!x.own.empty() || x.in.stride() == x.in.rows)) {
      view[k] = batch_view(x, to);
      Input u;
      u.data = x.in.data;
      u.rows = T * x.in.rows;
      u.cols = x.in.cols;
      u.batch = &view[k];
      st[k] = u;
      continue;
    }
    double* buf = held.take(T * x.in.rows * x.in.cols);
    gather_batch(x, to, buf, opt.nthreads);
    Input u;
    u.data = buf;
    u.rows = T * x.in.rows;
    u.cols = x.in.cols;
    st[k] = u;
  }

  // the pattern: outer block b (problem b's rows) meets inner block ib[b]
  const std::vector<long long> ib = positions(ishape, shape);
  auto br = std::make_shared<BlockRanges>();
  br->outer.reserve(static_cast<size_t>(2 * B));
  br->inner.reserve(static_cast<size_t>(2 * B));
  br->slices.reserve(static_cast<size_t>(B));
  if ((B + 1) * std::max(n_out, n_in) > 2147483647LL)
    throw UserError("input", "a batch of " + std::to_string(B * n_out) + " rows is too large for one call");
  for (long long b = 0; b < B; ++b) {
    br->outer.push_back(static_cast<int>(b * n_out));
    br->outer.push_back(static_cast<int>((b + 1) * n_out));
    br->slices.push_back(static_cast<int>(b + 1));
    br->inner.push_back(static_cast<int>(ib[static_cast<size_t>(b)] * n_in));
    br->inner.push_back(static_cast<int>((ib[static_cast<size_t>(b)] + 1) * n_in));
  }
  // R's order (row b + B * i), indices counted from each problem's first inner point: the
  // result rows scattered as they come (a GPU call streams them piece by piece)
  int idx0 = info.out_dim, idx1 = info.out_dim;  // the index columns [idx0, idx1)
  if (info.layout == "values_indices") {
    idx0 = info.d;
  } else if (info.layout == "ranked_values_indices") {
    idx0 = info.K * info.d;
  } else if (info.reduction.rfind("Arg", 0) == 0) {
    idx0 = 0;
  }
  const int cols = info.out_dim;
  double* out = alloc(B * n_out, cols);
  EngineOptions o = opt;
  o.ranges = br;
  o.on_rows = [&](long long r0, long long r1, const double* src, long long ld) {
    scatter_rows(src, ld, r0, r1, n_out, B, cols, idx0, idx1, ib, n_in, out, opt.nthreads);
  };
  const double secs = run_reduction(
      formula, aliases, st, o,
      [&](long long rows, int c) {
        RK_ASSERT(rows == B * n_out && c == cols, "unexpected shape of a batched result");
        return held.take(rows * c);
      },
      interrupted);
  return secs;
}

}  // namespace rkeops

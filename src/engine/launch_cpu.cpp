#include "launch_cpu.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <new>
#include <thread>
#include <vector>

#include "cache.h"
#include "codegen_cpu.h"
#include "dynlib.h"
#include "errors.h"
#include "kernel_store.h"
#include "fork_safety.h"
#include "log.h"
#include "ranges.h"
#include "sha256.h"

namespace rkeops {
namespace {

// Must match the struct in the generated source (codegen_cpu.cpp).
struct RkArgs {
  const void* const* data;
  const long long* ld;
  long long n_outer, n_inner;
  double* out;
  long long out_ld;
  int nthreads;
  long long jbase;
  double* states;
  const long long* items;  // a block-sparse reduction's work items (ranges.h), or null
  long long nitems;
  const long long* jranges;
};

using RunFn = void (*)(const RkArgs*, long long, long long, int, void*);
using MergeFn = void (*)(const double* const*, int, long long, double*, long long, double*, int);

// Sizes chunks of output rows to take about kSeconds each: the first from an estimate of the
// cost of a term (`term_cost`, 1 for a small sum; a k-min reduction, which inserts into a
// sorted list of K, costs more), the next ones from the measured speed. A chunk is a multiple
// of `align` rows (a kernel's row block: results do not depend on the chunks) and at least
// `min_rows`.
class ChunkPacer {
 public:
  static constexpr double kSeconds = 0.5;
  ChunkPacer(long long n_inner, long long min_rows, long long align, double term_cost)
      : min_rows_(std::max<long long>(min_rows, 1)), align_(std::max<long long>(align, 1)) {
    rows_ = fit(1e8 / term_cost / static_cast<double>(std::max<long long>(n_inner, 1)));
  }
  long long rows() const { return rows_; }
  void done(long long rows, double seconds) {
    const double grown = 4.0 * static_cast<double>(rows);
    rows_ = fit(seconds > 0 ? std::min(grown, static_cast<double>(rows) * kSeconds / seconds) : grown);
  }

 private:
  long long fit(double rows) const {
    long long r = static_cast<long long>(std::min(rows, 1e12));
    r = std::max(r, min_rows_);
    return (r + align_ - 1) / align_ * align_;
  }
  long long min_rows_, align_, rows_ = 1;
};

// Kernel libraries stay loaded for the session, even when the kernel is forgotten: unloading
// code that OpenMP threads may still reference is not worth the risk.
std::vector<DynLib>& loaded_libraries() {
  static std::vector<DynLib>* libs = new std::vector<DynLib>();
  return *libs;
}

class CpuKernel : public Kernel {
 public:
  CpuKernel(Formula f, DynLib& lib) : Kernel(std::move(f)) {
    auto abi = reinterpret_cast<int (*)()>(lib.sym("rk_abi_version"));
    run_ = reinterpret_cast<RunFn>(lib.sym("rk_run"));
    auto bytes = reinterpret_cast<long long (*)()>(lib.sym("rk_state_bytes"));
    auto rows = reinterpret_cast<int (*)()>(lib.sym("rk_block_rows"));
    auto width = reinterpret_cast<int (*)()>(lib.sym("rk_state_width"));
    merge_ = reinterpret_cast<MergeFn>(lib.sym("rk_merge_states"));
    if (!abi || !run_ || !bytes || !rows || !width || !merge_ || abi() != kCpuAbiVersion)
      throw InternalError("the kernel library " + lib.path() + " does not have the expected entry points");
    state_bytes_ = bytes();
    block_rows_ = rows();
    state_width_ = width();
    // Kernels of wide formulas keep their arrays in a per-thread workspace (codegen_cpu.cpp).
    auto work = reinterpret_cast<long long (*)()>(lib.sym("rk_work_bytes"));
    work_bytes_ = work ? work() : 0;
  }

  int state_width() const override { return state_width_; }

  void run(const std::vector<Input>& in, const CallShape& shape, double* out, const EngineOptions& opt,
           const std::function<bool()>& interrupted) override {
    if (opt.ranges)
      run_ranges(in, shape, out, *opt.ranges, opt, interrupted);
    else
      run_rows(in, shape, out, 0, nullptr, opt, interrupted);
  }

  void run_partial(const std::vector<Input>& in, const CallShape& shape, long long jbase, double* states,
                   const EngineOptions& opt, const std::function<bool()>& interrupted) override {
    run_rows(in, shape, nullptr, jbase, states, opt, interrupted);
  }

  void merge_partials(const std::vector<const double*>& parts, long long rows, double* out, double* states_out,
                      const EngineOptions& opt) override {
    RK_ASSERT(!parts.empty(), "no partial states to merge");
    const int threads = rows * static_cast<long long>(parts.size()) < 20000 ? 1 : std::max(1, opt.nthreads);
    merge_(parts.data(), static_cast<int>(parts.size()), rows, out, rows, states_out, threads);
  }

 private:
  // The inputs as the kernel reads them: float64 in place, float32 converted once and packed
  // (on up to `nthreads` threads for large inputs).
  struct KernelInputs {
    std::vector<const void*> data;
    std::vector<long long> ld;
    std::vector<std::unique_ptr<float[]>> conv;
    KernelInputs(const std::vector<Input>& in, bool f32, int nthreads)
        : data(in.size()), ld(in.size()), conv(f32 ? in.size() : 0) {
      for (size_t k = 0; k < in.size(); ++k) {
        ld[k] = std::max<long long>(in[k].stride(), 1);
        if (f32) {  // converted once, packed (leading dimension: rows)
          const long long r = in[k].rows, st = in[k].stride(), n = r * in[k].cols;
          conv[k].reset(new float[static_cast<size_t>(std::max<long long>(n, 1))]);
          float* dst = conv[k].get();
          const double* src = in[k].data;
          auto convert = [dst, src, r, st](long long a, long long b) {  // values [a, b) in column-major order
            for (long long v = a; v < b;) {
              const long long c = v / r, t0 = v - c * r, t1 = std::min(r, t0 + (b - v));
              for (long long t = t0; t < t1; ++t) dst[c * r + t] = static_cast<float>(src[c * st + t]);
              v += t1 - t0;
            }
          };
          const int nt = n >= (1LL << 18) ? std::max(1, std::min(threads_allowed(nthreads), 16)) : 1;
          std::vector<std::thread> th;
          for (int t = 1; t < nt; ++t) th.emplace_back(convert, n * t / nt, n * (t + 1) / nt);
          convert(0, n / nt);
          for (auto& t : th) t.join();
          ld[k] = std::max<long long>(r, 1);
          data[k] = dst;
        } else {
          data[k] = in[k].data;
        }
      }
    }
  };

  // A block-sparse reduction: the work items of the kept blocks (ranges.h), run in chunks of
  // about half a second (interrupts polled between them).
  void run_ranges(const std::vector<Input>& in, const CallShape& shape, double* out, const BlockRanges& br,
                  const EngineOptions& opt, const std::function<bool()>& interrupted) {
    const Formula& f = formula_;
    const long long n_out = shape.out_rows, n_in = f.axis == 1 ? shape.n_j : shape.n_i;
    const RangeItems ri = plan_range_items(br, n_out, n_in, block_rows_);
    KernelInputs ki(in, opt.code.dtype == DType::Float32, opt.nthreads);
    const int threads = ri.pairs < 2e5 ? 1 : threads_allowed(opt.nthreads);
    RkArgs a{ki.data.data(), ki.ld.data(), n_out, n_in, out, n_out, threads, 0, nullptr,
             ri.items.data(), 0, ri.jranges.data()};
    std::vector<char> scratch;
    reserve_scratch(scratch, threads, 1, 0);
    int inner_dims = 0;
    for (const ArgInfo& x : f.args)
      if (x.cat == f.inner_cat()) inner_dims += x.dim;
    const double term_cost = 1.0 + static_cast<double>(state_bytes_) / 2048.0 + inner_dims / 16.0;
    // Chunks of about half a second: the first from a cautious estimate of the speed, the next
    // ones from the measured speed (as ChunkPacer does for dense calls: each chunk is a parallel
    // region whose threads meet at its end, so too many short ones cost, most on a busy machine).
    // Results do not depend on the chunks (an item is computed within one).
    double chunk_terms = 5e7 * threads / term_cost;
    const long long n = ri.count();
    for (long long w0 = 0; w0 < n;) {
      long long w1 = w0;
      double terms = 0;
      while (w1 < n && (terms < chunk_terms || w1 - w0 < 4LL * threads)) terms += ri.cost[static_cast<size_t>(w1++)];
      a.items = ri.items.data() + 4 * w0;
      a.nitems = w1 - w0;
      const auto t0 = std::chrono::steady_clock::now();
      run_(&a, 0, n_out, 1, scratch.empty() ? nullptr : scratch.data());
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      chunk_terms = std::min(4 * chunk_terms, secs > 0 ? terms * ChunkPacer::kSeconds / secs : 4 * chunk_terms);
      chunk_terms = std::max(chunk_terms, 1e6);
      w0 = w1;
      if (w0 < n && interrupted && interrupted()) throw Interrupted();
    }
  }

  // Runs over every result row, in chunks: results into `out`, or partial states into `states`.
  void run_rows(const std::vector<Input>& in, const CallShape& shape, double* out, long long jbase, double* states,
                const EngineOptions& opt, const std::function<bool()>& interrupted) {
    const Formula& f = formula_;
    const bool f32 = opt.code.dtype == DType::Float32;
    KernelInputs ki(in, f32, opt.nthreads);
    std::vector<const void*>& data = ki.data;
    std::vector<long long>& ld = ki.ld;
    const long long n_out = shape.out_rows, n_in = f.axis == 1 ? shape.n_j : shape.n_i;
    // Waking other threads costs more than a small problem takes on one.
    const double pairs = static_cast<double>(n_out) * static_cast<double>(n_in);
    // One thread in a forked child of a process with OpenMP threads (fork_safety.h).
    const int threads = pairs < 2e5 ? 1 : threads_allowed(opt.nthreads);
    RkArgs a{data.data(), ld.data(), n_out, n_in, out, n_out, threads, jbase, states, nullptr, 0, nullptr};
    // Split the inner range when there are too few row blocks to keep every thread busy.
    long long blocks = (n_out + block_rows_ - 1) / block_rows_;
    int nsplit = 1;
    if (blocks < 4LL * threads) {
      long long want = (4LL * threads + blocks - 1) / blocks;
      nsplit = static_cast<int>(std::max<long long>(1, std::min<long long>(want, n_in / 512)));
    }
    // Interrupts are polled between chunks of about half a second. The cost of a term, in
    // terms of a small sum: a k-min reduction inserts into a sorted list of K (measured: K =
    // 1000 about 8x on random data), and the inner variables are packed.
    int inner_dims = 0;
    for (const ArgInfo& x : f.args)
      if (x.cat == f.inner_cat()) inner_dims += x.dim;
    const double term_cost = 1.0 + static_cast<double>(state_bytes_) / 2048.0 + inner_dims / 16.0;
    const long long min_rows = static_cast<long long>(block_rows_) * threads * 2;
    const double cost = static_cast<double>(n_out) * static_cast<double>(n_in) * term_cost;
    const double piece_cost = 5e7 * threads;  // about half a second
    if (n_out <= min_rows && cost > 2 * piece_cost) {
      run_pieces(a, n_in, static_cast<long long>(std::ceil(cost / piece_cost)), f32 ? 4 : 8, out, states,
                 interrupted);
      return;
    }
    // Chunks of output rows, the next ones sized from the speed of the last.
    ChunkPacer pace(n_in, min_rows, block_rows_, term_cost);
    // Scratch memory: the threads' workspaces (wide formulas, 64-byte aligned by the kernel),
    // then the partial states of a split inner range.
    std::vector<char> scratch;
    for (long long i0 = 0; i0 < n_out;) {
      const long long i1 = std::min(n_out, i0 + pace.rows());
      reserve_scratch(scratch, threads, nsplit, i1 - i0);
      const auto t0 = std::chrono::steady_clock::now();
      run_(&a, i0, i1, nsplit, scratch.empty() ? nullptr : scratch.data());
      pace.done(i1 - i0, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      i0 = i1;
      if (i0 < n_out && interrupted && interrupted()) throw Interrupted();
    }
  }

  // Few result rows and a long inner range: no chunk of rows is short, so the inner range is
  // cut into `pieces` (sized from the counts alone, so that results never depend on timing)
  // whose partial states are merged as they come. Inputs of the inner range are read in place
  // from each piece's first row (`elem` bytes per value); indices stay global (jbase).
  void run_pieces(RkArgs a, long long n_in, long long pieces, int elem, double* out, double* states,
                  const std::function<bool()>& interrupted) {
    const Formula& f = formula_;
    const long long n_out = a.n_outer, len = std::max<long long>(4096, (n_in + pieces - 1) / pieces);
    const size_t width = static_cast<size_t>(n_out * state_width_);
    std::vector<double> acc(width), part(width), merged(width);
    std::vector<const void*> data(a.data, a.data + f.args.size());
    std::vector<char> scratch;
    const long long blocks = (n_out + block_rows_ - 1) / block_rows_;
    for (long long j0 = 0; j0 < n_in; j0 += len) {
      const long long j1 = std::min(n_in, j0 + len);
      for (size_t k = 0; k < f.args.size(); ++k)
        if (f.args[k].cat == f.inner_cat()) data[k] = static_cast<const char*>(a.data[k]) + j0 * elem;
      RkArgs b = a;
      b.data = data.data();
      b.n_inner = j1 - j0;
      b.jbase = a.jbase + j0;
      b.out = nullptr;
      b.states = j0 == 0 ? acc.data() : part.data();
      const long long want = (4LL * a.nthreads + blocks - 1) / blocks;
      const int nsplit = static_cast<int>(std::max<long long>(1, std::min<long long>(want, b.n_inner / 512)));
      reserve_scratch(scratch, a.nthreads, nsplit, n_out);
      run_(&b, 0, n_out, nsplit, scratch.empty() ? nullptr : scratch.data());
      if (j0 > 0) {  // acc <- merge(acc, part): the earlier piece first, as ties want
        const double* both[2] = {acc.data(), part.data()};
        merge_(both, 2, n_out, nullptr, n_out, merged.data(), a.nthreads);
        acc.swap(merged);
      }
      if (j1 < n_in && interrupted && interrupted()) throw Interrupted();
    }
    const double* one[1] = {acc.data()};
    if (out)
      merge_(one, 1, n_out, out, n_out, nullptr, a.nthreads);
    else
      std::copy(acc.begin(), acc.end(), states);
  }

  // Grows `scratch` to the threads' workspaces (64-byte aligned by the kernel) followed by the
  // partial states of `rows` rows split `nsplit` ways; a clear error when memory is short.
  void reserve_scratch(std::vector<char>& scratch, int threads, int nsplit, long long rows) const {
    const long long work = work_bytes_ > 0 ? 64 + threads * work_bytes_ : 0;
    const long long need = work + (nsplit > 1 ? nsplit * rows * state_bytes_ : 0);
    try {
      if (static_cast<long long>(scratch.size()) < need) scratch.resize(static_cast<size_t>(need));
    } catch (const std::bad_alloc&) {
      throw UserError("memory", "not enough memory for this reduction: it needs " + std::to_string(need >> 20) +
                                    " MiB of scratch memory (" + std::to_string(work_bytes_ >> 20) +
                                    " MiB per thread for its variables of large dimension)");
    }
  }

  RunFn run_ = nullptr;
  MergeFn merge_ = nullptr;
  long long state_bytes_ = 0;
  long long work_bytes_ = 0;  // per thread
  int block_rows_ = 1, state_width_ = 0;
};

}  // namespace

std::shared_ptr<Kernel> load_cpu_kernel(Formula f, const EngineOptions& opt, const CompileWatch& watch) {
  const std::string source = generate_cpu_source(f, opt.code, opt.include_dir);
  ArtifactSteps steps;
  steps.key =
      sha256_hex(std::string(kEngineVersion) + "\ncpu\n" + compiler_identity(opt.compiler, watch) + "\n" + source);
  steps.what = "CPU kernel";
  steps.canonical = f.canonical();
  DynLib lib;
  steps.load_cached = [&](DiskCache& cache, std::string* why) {
    const VerifiedFile file = cache.lookup_file(steps.key, ".so");
    if (!file.ok()) return false;
    lib = DynLib::open_file(file.fd(), file.path());
    if (!lib.ok()) *why = lib.error();
    return lib.ok();
  };
  steps.build = [&](DiskCache& cache) {
    const VerifiedFile file = compile_cpu(source, steps.key, opt.compiler, cache, watch);
    lib = DynLib::open_file(file.fd(), file.path());
    if (!lib.ok()) throw InternalError("cannot load the compiled kernel " + file.path() + ": " + lib.error());
  };
  const ArtifactOutcome got = load_or_build(steps, {opt.cache_dir, opt.fallback_cache_dir}, opt.forbid_compile);
  auto k = std::make_shared<CpuKernel>(std::move(f), lib);
  loaded_libraries().push_back(std::move(lib));
  k->compile_seconds = got.compile_seconds;
  k->from_disk = got.from_disk;
  return k;
}

}  // namespace rkeops

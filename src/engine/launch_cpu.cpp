#include "launch_cpu.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "cache.h"
#include "codegen_cpu.h"
#include "dynlib.h"
#include "errors.h"
#include "kernel_store.h"
#include "log.h"
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
};

using RunFn = void (*)(const RkArgs*, long long, long long, int, void*);
using MergeFn = void (*)(const double* const*, int, long long, double*, long long, double*, int);

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
  }

  int state_width() const override { return state_width_; }

  void run(const std::vector<Input>& in, const CallShape& shape, double* out, const EngineOptions& opt,
           const std::function<bool()>& interrupted) override {
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

  // Runs over every result row, in chunks: results into `out`, or partial states into `states`.
  void run_rows(const std::vector<Input>& in, const CallShape& shape, double* out, long long jbase, double* states,
                const EngineOptions& opt, const std::function<bool()>& interrupted) {
    const Formula& f = formula_;
    const bool f32 = opt.code.dtype == DType::Float32;
    std::vector<const void*> data(in.size());
    std::vector<long long> ld(in.size());
    std::vector<std::vector<float>> conv(f32 ? in.size() : 0);
    for (size_t k = 0; k < in.size(); ++k) {
      ld[k] = std::max<long long>(in[k].stride(), 1);
      if (f32) {  // converted once, packed (leading dimension: rows)
        const long long r = in[k].rows, st = in[k].stride();
        conv[k].resize(static_cast<size_t>(std::max<long long>(r * in[k].cols, 1)));
        for (long long c = 0; c < in[k].cols; ++c)
          for (long long t = 0; t < r; ++t) conv[k][c * r + t] = static_cast<float>(in[k].data[c * st + t]);
        ld[k] = std::max<long long>(r, 1);
        data[k] = conv[k].data();
      } else {
        data[k] = in[k].data;
      }
    }
    const long long n_out = shape.out_rows, n_in = f.axis == 1 ? shape.n_j : shape.n_i;
    // Waking other threads costs more than a small problem takes on one.
    const double pairs = static_cast<double>(n_out) * static_cast<double>(n_in);
    const int threads = pairs < 2e5 ? 1 : std::max(1, opt.nthreads);
    RkArgs a{data.data(), ld.data(), n_out, n_in, out, n_out, threads, jbase, states};
    // Split the inner range when there are too few row blocks to keep every thread busy.
    long long blocks = (n_out + block_rows_ - 1) / block_rows_;
    int nsplit = 1;
    if (blocks < 4LL * threads) {
      long long want = (4LL * threads + blocks - 1) / blocks;
      nsplit = static_cast<int>(std::max<long long>(1, std::min<long long>(want, n_in / 512)));
    }
    // Chunks of output rows of about 2e8 terms, so that interrupts are seen within a second.
    long long chunk = std::max<long long>(static_cast<long long>(block_rows_) * threads * 2,
                                          200000000LL / std::max<long long>(n_in, 1));
    chunk = (chunk + block_rows_ - 1) / block_rows_ * block_rows_;
    std::vector<char> scratch;
    if (nsplit > 1) scratch.resize(static_cast<size_t>(nsplit * std::min(chunk, n_out) * state_bytes_));
    for (long long i0 = 0; i0 < n_out; i0 += chunk) {
      long long i1 = std::min(n_out, i0 + chunk);
      run_(&a, i0, i1, nsplit, scratch.empty() ? nullptr : scratch.data());
      if (i1 < n_out && interrupted && interrupted()) throw Interrupted();
    }
  }

  RunFn run_ = nullptr;
  MergeFn merge_ = nullptr;
  long long state_bytes_ = 0;
  int block_rows_ = 1, state_width_ = 0;
};

}  // namespace

std::shared_ptr<Kernel> load_cpu_kernel(Formula f, const EngineOptions& opt) {
  const std::string source = generate_cpu_source(f, opt.code, opt.include_dir);
  ArtifactSteps steps;
  steps.key = sha256_hex(std::string(kEngineVersion) + "\ncpu\n" + compiler_identity(opt.compiler) + "\n" + source);
  steps.what = "CPU kernel";
  steps.canonical = f.canonical();
  DynLib lib;
  steps.load_cached = [&](DiskCache& cache, std::string* why) {
    const std::string path = cache.lookup_file(steps.key, ".so");
    if (path.empty()) return false;
    lib = DynLib(path);
    if (!lib.ok()) *why = lib.error();
    return lib.ok();
  };
  steps.build = [&](DiskCache& cache) {
    const std::string path = compile_cpu(source, steps.key, opt.compiler, cache);
    lib = DynLib(path);
    if (!lib.ok()) throw InternalError("cannot load the compiled kernel " + path + ": " + lib.error());
  };
  const ArtifactOutcome got = load_or_build(steps, opt.cache_dir, opt.forbid_compile);
  auto k = std::make_shared<CpuKernel>(std::move(f), lib);
  loaded_libraries().push_back(std::move(lib));
  k->compile_seconds = got.compile_seconds;
  k->from_disk = got.from_disk;
  return k;
}

}  // namespace rkeops

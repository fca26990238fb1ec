#include "launch_cpu.h"

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <new>
#include <vector>

#include "cache.h"
#include "errors.h"
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
};

using RunFn = void (*)(const RkArgs*, long long, long long, int, void*);

class CpuKernel : public Kernel {
 public:
  CpuKernel(Formula f, void* handle, const std::string& path) : Kernel(std::move(f)), handle_(handle) {
    auto abi = reinterpret_cast<int (*)()>(dlsym(handle, "rk_abi_version"));
    run_ = reinterpret_cast<RunFn>(dlsym(handle, "rk_run"));
    auto bytes = reinterpret_cast<long long (*)()>(dlsym(handle, "rk_state_bytes"));
    auto rows = reinterpret_cast<int (*)()>(dlsym(handle, "rk_block_rows"));
    if (!abi || !run_ || !bytes || !rows || abi() != kCpuAbiVersion)
      throw InternalError("the kernel library " + path + " does not have the expected entry points");
    state_bytes_ = bytes();
    block_rows_ = rows();
    // Kernels of wide formulas keep their arrays in a per-thread workspace (codegen_cpu.cpp).
    auto work = reinterpret_cast<long long (*)()>(dlsym(handle, "rk_work_bytes"));
    work_bytes_ = work ? work() : 0;
  }
  // The library stays loaded for the session: unloading code that OpenMP threads may still
  // reference is not worth the risk.

  void run(const std::vector<Input>& in, const CallShape& shape, double* out, const EngineOptions& opt,
           const std::function<bool()>& interrupted) override {
    const Formula& f = formula_;
    const bool f32 = opt.code.dtype == DType::Float32;
    std::vector<const void*> data(in.size());
    std::vector<long long> ld(in.size());
    std::vector<std::vector<float>> conv(f32 ? in.size() : 0);
    for (size_t k = 0; k < in.size(); ++k) {
      ld[k] = std::max<long long>(in[k].rows, 1);
      if (f32) {
        long long n = in[k].rows * in[k].cols;
        conv[k].resize(static_cast<size_t>(std::max<long long>(n, 1)));
        for (long long t = 0; t < n; ++t) conv[k][t] = static_cast<float>(in[k].data[t]);
        data[k] = conv[k].data();
      } else {
        data[k] = in[k].data;
      }
    }
    const long long n_out = shape.out_rows, n_in = f.axis == 1 ? shape.n_j : shape.n_i;
    // Waking other threads costs more than a small problem takes on one.
    const double pairs = static_cast<double>(n_out) * static_cast<double>(n_in);
    const int threads = pairs < 2e5 ? 1 : std::max(1, opt.nthreads);
    RkArgs a{data.data(), ld.data(), n_out, n_in, out, n_out, threads};
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
    // Scratch memory: the threads' workspaces, then the partial states of a split inner range.
    std::vector<char> scratch;
    const long long parts = nsplit > 1 ? nsplit * std::min(chunk, n_out) * state_bytes_ : 0;
    const long long bytes = work_bytes_ > 0 ? 64 + threads * work_bytes_ + parts : parts;
    try {
      if (bytes > 0) scratch.resize(static_cast<size_t>(bytes));
    } catch (const std::bad_alloc&) {
      throw UserError("memory", "not enough memory for this reduction: it needs " + std::to_string(bytes >> 20) +
                                    " MiB of scratch memory (" + std::to_string(work_bytes_ >> 20) +
                                    " MiB per thread for its variables of large dimension)");
    }
    for (long long i0 = 0; i0 < n_out; i0 += chunk) {
      long long i1 = std::min(n_out, i0 + chunk);
      run_(&a, i0, i1, nsplit, scratch.empty() ? nullptr : scratch.data());
      if (i1 < n_out && interrupted && interrupted()) throw Interrupted();
    }
  }

 private:
  void* handle_;
  RunFn run_ = nullptr;
  long long state_bytes_ = 0;
  long long work_bytes_ = 0;  // per thread
  int block_rows_ = 1;
};

void* open_library(const std::string& path, std::string* err) {
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = dlerror();
    *err = e ? e : "unknown dlopen error";
  }
  return h;
}

}  // namespace

std::shared_ptr<Kernel> load_cpu_kernel(Formula f, const EngineOptions& opt) {
  std::string source = generate_cpu_source(f, opt.code, opt.include_dir);
  std::string key =
      sha256_hex(std::string(kEngineVersion) + "\ncpu\n" + compiler_identity(opt.compiler) + "\n" + source);
  DiskCache cache(opt.cache_dir);
  std::string path = cache.lookup_file(key, ".so");
  bool from_disk = !path.empty();
  double secs = 0;
  std::string err;
  void* h = from_disk ? open_library(path, &err) : nullptr;
  if (!h) {
    if (from_disk) log_msg("rkeops: cached kernel " + path + " failed to load (" + err + "); rebuilding");
    if (opt.forbid_compile)
      throw UserError("option", "compiling a new kernel is forbidden (RKEOPS_FORBID_COMPILE) for " + f.canonical());
    auto t0 = std::chrono::steady_clock::now();
    path = compile_cpu(source, key, opt.compiler, cache);
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    from_disk = false;
    h = open_library(path, &err);
    if (!h) throw InternalError("cannot load the compiled kernel " + path + ": " + err);
  }
  auto k = std::make_shared<CpuKernel>(std::move(f), h, path);
  k->compile_seconds = secs;
  k->from_disk = from_disk;
  return k;
}

}  // namespace rkeops

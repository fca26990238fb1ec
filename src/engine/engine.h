// The engine's public C++ API: build (or fetch) a compiled kernel for a formula and run it
// on raw column-major buffers. Knows nothing of R.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codegen_cpu.h"
#include "compile_cpu.h"
#include "formula.h"

namespace rkeops {

extern const char* const kEngineVersion;

enum class Backend { CPU, GPU };

// Everything that decides which kernel is built and how it runs.
struct EngineOptions {
  CodeOptions code;
  Backend backend = Backend::CPU;
  int device = 0;           // GPU ordinal
  int nthreads = 1;         // CPU threads
  std::string cache_dir;    // where compiled kernels live
  std::string include_dir;  // inst/include of the package (preludes)
  CompilerConfig compiler;
  bool forbid_compile = false;  // RKEOPS_FORBID_COMPILE: a needed compile is an error
};

// One input: a column-major float64 matrix of `rows` x `cols` (rows = points).
struct Input {
  const double* data = nullptr;
  long long rows = 0, cols = 0;
};

// Sizes of a call, worked out from the inputs (see check_inputs).
struct CallShape {
  long long n_i = 1, n_j = 1;  // number of i and j points
  long long out_rows = 0;      // n_i when reducing over j, n_j otherwise
};

// A compiled reduction, ready to run on any backend.
class Kernel {
 public:
  virtual ~Kernel() = default;
  const Formula& formula() const { return formula_; }
  // Runs on inputs in position order; `out` is column-major out_rows x out_dim.
  // `interrupted` is polled between chunks; when it returns true, Interrupted is thrown.
  virtual void run(const std::vector<Input>& in, const CallShape& shape, double* out, const EngineOptions& opt,
                   const std::function<bool()>& interrupted) = 0;
  double compile_seconds = 0;  // 0 when loaded from the cache
  bool from_disk = false;

 protected:
  explicit Kernel(Formula f) : formula_(std::move(f)) {}
  Formula formula_;
};

// Checks inputs against the formula's arguments (count, dims, row counts, sizes) and
// returns the call's shape. Throws UserError("input"/"dimension") naming the argument.
CallShape check_inputs(const Formula& f, const std::vector<Input>& in);

// The kernel for (formula, aliases, options): from this session's memory, else the disk
// cache, else generated and compiled. Thread-compatible (call from one thread).
std::shared_ptr<Kernel> get_kernel(const std::string& formula, const std::vector<std::string>& aliases,
                                   const EngineOptions& opt);

// Forgets kernels loaded in this session (after the cache directory was cleaned).
void clear_session_kernels();
int session_kernel_count();

}  // namespace rkeops

// A compiled reduction and how the engine finds one (inside the engine: the glue uses the
// facade engine.h). Each backend derives its Kernel (launch_cpu.cpp, launch_cuda.cpp).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine.h"
#include "formula.h"

namespace rkeops {

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
  // Partial states, what lets a call be split over its reduced index (chunks, devices,
  // machines) and merged: doubles per result row (values, indices, compensations).
  virtual int state_width() const = 0;
  // The partial state of each result row over `in`, whose inner inputs may be a piece of the
  // reduced index starting at global index `jbase`: out_rows x state_width(), column-major.
  virtual void run_partial(const std::vector<Input>& in, const CallShape& shape, long long jbase, double* states,
                           const EngineOptions& opt, const std::function<bool()>& interrupted) = 0;
  // Merges the partial states of pieces of the reduced index (in their order: ties go to the
  // earlier piece) and finalises into `out` (rows x out_dim), or, when `states_out` is not null,
  // writes the merged partial state there.
  virtual void merge_partials(const std::vector<const double*>& parts, long long rows, double* out,
                              double* states_out, const EngineOptions& opt) = 0;
  double compile_seconds = 0;  // 0 when loaded from the cache
  bool from_disk = false;

 protected:
  explicit Kernel(Formula f) : formula_(std::move(f)) {}
  Formula formula_;
};

// Checks inputs against the formula's arguments (count, dims, row counts, sizes) and
// returns the call's shape. Throws UserError("input"/"dimension") naming the argument by its
// label (arg_label) and speaking of rows or columns as the caller laid out its data.
CallShape check_inputs(const Formula& f, const std::vector<Input>& in, InputLayout layout = InputLayout::PointsInRows);
// "input 2 ('y', Vj(3))": how errors name the formula's argument k (0-based).
std::string arg_label(const Formula& f, size_t k);

// The kernel for (formula, aliases, options): from this session's memory, else the disk
// cache, else generated and compiled (a compile stops when `interrupted` returns true or after
// opt.compile_timeout seconds). Thread-compatible (call from one thread).
std::shared_ptr<Kernel> get_kernel(const std::string& formula, const std::vector<std::string>& aliases,
                                   const EngineOptions& opt, const std::function<bool()>& interrupted = nullptr);

}  // namespace rkeops

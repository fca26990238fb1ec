// The engine's public C++ API: the one header the R glue includes. Describe a formula or its
// gradient, run a reduction on raw column-major buffers, look at generated sources, manage the
// cache, ask about GPUs. Knows nothing of R; no engine internals (graphs, code generators,
// compilers, the cache's layout) show through it.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "code_options.h"
#include "compile_cpu.h"
#include "device_matrix.h"
#include "errors.h"
#include "gpu_status.h"
#include "log.h"

namespace rkeops {

extern const char* const kEngineVersion;

enum class Backend { CPU, GPU };

// How the caller's matrices were laid out before it handed them over as one row per point: input
// errors speak of rows or columns accordingly (the engine itself always reads one row per point).
enum class InputLayout { PointsInRows, PointsInColumns };

// A block-sparse reduction ("ranges", R's keops_ranges): the kept blocks in the orientation of
// the formula's axis, 0-based half-open ranges as (start, end) pairs. Outer range k (result rows
// [outer[2k], outer[2k+1])) is reduced over the inner ranges s in [slices[k-1], slices[k])
// (slices[-1] = 0): inner rows [inner[2s], inner[2s+1]). Result rows in no outer range, or
// whose list is empty, get the reduction's neutral value. Checked by the engine (ranges.h).
struct BlockRanges {
  std::vector<int> outer, slices, inner;
};

// Everything that decides which kernel is built and how it runs.
// Result rows [r0, r1) handed over, value k of row r at rows[r + k * ld].
using RowSink = std::function<void(long long r0, long long r1, const double* rows, long long ld)>;

struct EngineOptions {
  CodeOptions code;
  Backend backend = Backend::CPU;
  int device = 0;                  // GPU ordinal
  std::vector<int> devices;        // several GPUs: a call is split over them (empty or one: `device`)
  int nthreads = 1;                // CPU threads
  std::string cache_dir;           // where compiled kernels live
  std::string fallback_cache_dir;  // where new kernels go when cache_dir is read-only ("": none)
  std::string include_dir;         // inst/include of the package (preludes)
  CompilerConfig compiler;
  bool forbid_compile = false;                     // RKEOPS_FORBID_COMPILE: a needed compile is an error
  double compile_timeout = 600;                    // seconds a compile may take (0: no limit)
  InputLayout layout = InputLayout::PointsInRows;  // wording of input errors only
  std::shared_ptr<const BlockRanges> ranges;       // a block-sparse reduction (null: dense)
  // Optional: the result rows handed over as they are final (RowSink). A block-sparse call on
  // one GPU streams them piece by piece while the GPU reduces the next pieces (run_batched
  // scatters them into R's order meanwhile); otherwise run_reduction hands over all the rows
  // from `out` once the kernel is done. The ranges cover every result row once, in order.
  RowSink on_rows;
  // GPU block-sparse calls: pieces, and splits of each piece's work items over blocks (0:
  // chosen; benchmarks set them: RKEOPS_SPARSE_PIECES, RKEOPS_SPARSE_SPLITS)
  int sparse_pieces = 0, sparse_splits = 0;
};

// A problem-major view of a batched array (batch.h): row r = t * n + i of the view is point i
// of problem t, its value k at data[pos[t] + P * i + P * n * k] (P: the array's problems).
struct BatchView {
  long long P = 1, n = 1;
  std::vector<long long> pos;
};

// One input: a column-major float64 matrix of `rows` x `cols` (rows = points), with leading
// dimension `ld` (0: rows; larger for a block of rows of a bigger matrix, read in place).
// `device`: the same matrix held on GPUs (rkeops_device() in R), or null; `data` stays valid.
// `batch`: the rows are a view of a batched array (read in place by the GPU launcher's packing
// of a block-sparse call on one GPU only; run_batched() gathers the rows for every other path).
struct Input {
  const double* data = nullptr;
  long long rows = 0, cols = 0, ld = 0;
  std::shared_ptr<DeviceMatrix> device;
  const BatchView* batch = nullptr;
  long long stride() const { return ld > 0 ? ld : rows; }
};

// A formula as its callers see it: its inputs by position, its reduction, its result.
struct FormulaInfo {
  struct Arg {
    std::string name;  // alias name, or "" when written Var(...) in the formula
    int cat = 0;       // 0: Vi, 1: Vj, 2: Pm
    int dim = 0;
    std::string label;  // how errors name it: "input 2 ('y', Vj(3))" (1-based)
  };
  std::vector<Arg> args;
  std::string reduction;  // "Sum" for Sum_Reduction
  int axis = 1, K = 1, d = 1, dw = 0, out_dim = 1;
  std::string layout;  // how a result row is laid out: "values", "values_indices", "ranked", ...
  std::string canonical, formula_text, weight_text;
};
// Throws UserError("formula"/"dimension") for a malformed formula or aliases.
FormulaInfo describe_formula(const std::string& formula, const std::vector<std::string>& aliases);

// The dimension of the operation `op` applied to arguments of dimensions `dims` with the integer
// parameters `params`: the rule of its row in the operation table, asked by callers that build
// formulas piece by piece (R's LazyTensors). Throws UserError("formula") for an unknown operation
// or a wrong number of arguments or parameters, and UserError("dimension") when the dimensions
// break the rule: "dimension mismatch in <where>: <why> (argument dimensions: ...)", `where`
// being how the caller wrote the operation (the operation's name when empty).
int operation_dim(const std::string& op, const std::vector<int>& dims, const std::vector<int>& params,
                  const std::string& where);

// The gradient of the reduction `formula` with respect to its input at position `var`: a Sum
// reduction over `aliases` (the formula's own, then the gradient input `eta`, then `extra`), or
// zero. Each extra input is computed at call time from the operator's inputs: columns [col0,
// col0 + dim) of the reduction `forward`, or (forward empty) the indices 0, 1, ... of the
// points of its category.
struct GradientInfo {
  bool zero = false;
  std::string formula;
  std::vector<std::string> aliases;
  std::string eta;
  int eta_cat = 0, eta_dim = 0;
  struct Extra {
    std::string name, forward;
    int cat = 0, dim = 1, col0 = 0;
  };
  std::vector<Extra> extra;
};
GradientInfo gradient_of(const std::string& formula, const std::vector<std::string>& aliases, int var);

// Runs a reduction on inputs in position order (checked against the formula: count,
// dimensions, row counts; errors name inputs by FormulaInfo::Arg::label and speak of
// opt.layout); `alloc(rows, cols)` returns the column-major result buffer.
// `interrupted` is polled while a kernel compiles and between chunks of the run (Interrupted
// is thrown when it returns true); a compile longer than opt.compile_timeout is stopped
// (UserError "compile_timeout").
// Returns the seconds spent compiling (0 when the kernel was in memory or on disk).
double run_reduction(const std::string& formula, const std::vector<std::string>& aliases,
                     const std::vector<Input>& in, const EngineOptions& opt,
                     const std::function<double*(long long rows, int cols)>& alloc,
                     const std::function<bool()>& interrupted);

// Partial states (design §6): a call split over its reduced index gives, per piece, each result
// row's partial state (state_width doubles: values, indices, compensations); merging the pieces'
// states in order gives the plain call's result (exactly for min/argmin/k-min; within rounding
// for sums). `jbase`: the global index of the first row of the piece's reduced inputs.
int state_width(const std::string& formula, const std::vector<std::string>& aliases, const EngineOptions& opt);
double run_partial(const std::string& formula, const std::vector<std::string>& aliases,
                   const std::vector<Input>& in, const EngineOptions& opt, long long jbase,
                   const std::function<double*(long long rows, int cols)>& alloc,
                   const std::function<bool()>& interrupted);
// Merges `parts` (each rows x state_width, column-major, in the order of their pieces) into the
// result (`final`: rows x out_dim) or the merged partial state.
void merge_partials(const std::string& formula, const std::vector<std::string>& aliases,
                    const std::vector<const double*>& parts, long long rows, const EngineOptions& opt, bool final,
                    const std::function<double*(long long rows, int cols)>& alloc);
// The checks of run_reduction on `in`, without running: the number of result rows.
long long check_call(const std::string& formula, const std::vector<std::string>& aliases, const std::vector<Input>& in,
                     InputLayout layout);

// Makes the device copies of `m` that calls with `opt` use (GPU backend: on opt.device or each
// of opt.devices, in opt's precision); nothing on the CPU backend. Returns the bytes held on GPUs.
long long upload_device_matrix(DeviceMatrix& m, const EngineOptions& opt);

// The generated source of a formula's kernel for opt.backend.
std::string kernel_source(const std::string& formula, const std::vector<std::string>& aliases,
                          const EngineOptions& opt);
// Compiles a CUDA source with NVRTC for architecture `arch` (e.g. 90; no GPU needed): false
// and the log when it does not compile. Throws UserError("gpu") when NVRTC is not there.
bool nvrtc_compiles(const std::string& source, int arch, std::string* log);

// The disk cache (see cache.h): number and bytes of the compiled kernels in `dir`; removing them.
struct CacheStats {
  long long files = 0, bytes = 0;
};
CacheStats cache_stats(const std::string& dir);
// Removes the files rkeops wrote in `dir` (and with `remove_dir` the directory, when rkeops made
// it and nothing else is in it; otherwise UserError "cache" naming what is there). Also forgets
// this session's kernels.
void clean_cache(const std::string& dir, bool remove_dir = false);

// The formula language's operations (names and signatures) and reductions.
struct LanguageInfo {
  std::vector<std::string> ops, signatures, reductions;
};
LanguageInfo language();

}  // namespace rkeops

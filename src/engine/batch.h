// Batch dimensions (R's arrays c(B1, ..., Bk, n, d), R/batch.R): many independent problems in one
// reduction. The problems' rows are stacked per input (problem-major: row b * n + i is point i of
// problem b): gathered on all threads in one pass, or, on one GPU, read in place by the launcher's
// packing through a view of the array (Input::batch). The whole batch runs as one
// block-sparse reduction in which problem b's rows meet only the inner rows of b, and the results
// are scattered back in R's array order (row b + B * i), indices counted from each problem's
// first inner point. No copy is made in R.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine.h"

namespace rkeops {

// One input of a batched call. `in.rows` points of `in.cols` values per problem; `own` is its
// batch shape: empty for an input shared by every problem (a plain matrix, read as `in` says),
// else the data is an array c(own, rows, cols): value k of point i of problem p (0-based,
// column-major over `own`) at data[p + P * i + P * rows * k], P = prod(own). Sizes 1 of `own`
// broadcast. Parameters are never batched here.
struct BatchInput {
  Input in;
  std::vector<int> own;
};

// Runs the reduction on B = prod(shape) problems. The result (alloc(B * n_out, out_dim)) holds
// problem b's row i at row b + B * i: R's array c(shape, n_out, out_dim) in place. Index parts
// (Arg* reductions, the second half of Min_ArgMin, KMin_ArgKMin) are 0-based within each
// problem. Throws UserError("dimension") for an `own` that does not broadcast to `shape` and
// UserError("input") for a batched parameter or a formula without an outer variable (R runs
// those problem by problem). Returns the seconds spent compiling.
double run_batched(const std::string& formula, const std::vector<std::string>& aliases,
                   const std::vector<BatchInput>& in, const std::vector<int>& shape, const EngineOptions& opt,
                   const std::function<double*(long long rows, int cols)>& alloc,
                   const std::function<bool()>& interrupted);

// The view of x's rows for the problems of batch shape `to` (Input::batch: what the GPU
// launcher reads in place where run_batched does not gather).
BatchView batch_view(const BatchInput& x, const std::vector<int>& to);

// The gather of run_batched, exposed for tests: the rows of `x` for the problems of batch shape
// `to` (prod(to) problems, each `x.in.rows` rows), problem-major, column-major with leading
// dimension prod(to) * rows, into `dst`; on up to `nthreads` threads.
void gather_batch(const BatchInput& x, const std::vector<int>& to, double* dst, int nthreads);

}  // namespace rkeops

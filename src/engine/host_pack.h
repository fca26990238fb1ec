// Host-side packing of a GPU call's inputs: R's float64 matrices converted (float32, float64,
// or halves rounded on the host so that half the bytes cross the bus) into the layouts of
// codegen_cuda.h, in the page-locked staging memory, on the call's host threads.
#pragma once

#include <vector>

#include "codegen_cuda.h"
#include "engine.h"

namespace rkeops {

// How the high-dimension scheme (codegen_cuda_hd.h) packs input `pos`: shifted by `center`
// (nullptr: not shifted), its squared norm (of the values as converted) in component `norm`.
struct PairPack {
  int pos = -1;
  const double* center = nullptr;
  int norm = -1;
};

// The point the high-dimension scheme subtracts from both sides of its distances: the mean of
// up to 256 finite rows spread over the inner input (on up to `nthreads` threads).
std::vector<double> pair_center(const Input& y, int nthreads);

// Packs, as elements of `elem` bytes (2, 4, 8), the outer rows (what 0), the inner rows (1)
// or the parameters (2) of a call: rows [r0, r0 + rows), leading dimension `ld` for the
// column-major layouts.
void pack(int elem, int what, const std::vector<Input>& in, const CudaCode& c, long long r0, long long rows,
          long long ld, const PairPack& pp, void* dst, int nthreads);

// Column-major packing of the inputs at `offs` (offs[p] < 0: not packed): rows [r0, r0 + rows)
// of each, leading dimension ld; elem 4 or 8.
void pack_columns(int elem, const std::vector<Input>& in, const std::vector<int>& offs, const PairPack& pp,
                  long long r0, long long rows, long long ld, void* dst, int nthreads);

// The threads a conversion of `values` values uses: one per 2^16 values at least (starting a
// thread costs about what converting 2^15 values costs), at most 16 and `nthreads`.
int pack_threads(long long values, int nthreads);

// The column groups of a pair variable of `rows` x `cols` whose squared norms are summed apart,
// then added: 16 at most, and at most 2^21 partial sums in all; whatever the thread count (so
// that the norms do not depend on it).
long long norm_groups(long long rows, long long cols);

}  // namespace rkeops

// Generates the CUDA source of a reduction kernel (compiled by NVRTC), and describes the
// device-side data layout that launch_cuda.cpp must produce for it.
#pragma once
#include <string>
#include <vector>

#include "code_options.h"
#include "formula.h"

namespace rkeops {

// The ABI between launch_cuda.cpp and a generated CUDA kernel (part of the cache key).
constexpr int kCudaAbiVersion = 8;  // 4: rk_pack_inner in the generic scheme's module; 5: float16 inputs;
                                     // 6: rk_pack_pair in the high-dimension scheme's module;
                                     // 7: per-lane slots of the high-dimension scheme's K family;
                                     // 8: rk_merge of a range of rows (row0, row1)

// A generated CUDA kernel and the layout of its inputs on the device.
//   X: the outer variables (indexed by result rows), column-major, components of all outer
//      variables one after the other, leading dimension passed at launch (coalesced loads).
//   Y: the inner variables (reduced over), row-major: row j holds the components of every
//      inner variable at y_off, padded to `wy` values so rows are 16-byte aligned (one
//      vector copy of a tile into shared memory, vector loads in the sweep).
//   P: the parameters, concatenated.
// Inputs the formula does not use have offset -1 everywhere.
struct CudaCode {
  std::string source;
  int elem = 8;     // bytes of one input value in X, Y and P (TS: 2 for float16)
  int state_elem = 8;  // sizeof(T): bytes of one value of partial states (float16: 4)
  int rows_per_thread = 1;  // 2 for float16 kernels that evaluate in half2 pairs
  int block = 256;  // the kernel's launch bound (threads per block, rows_per_thread outer rows each)
  bool exact_block = false;  // launched with exactly `block` threads (float16 tensor cores), not 128 or 256
  int tile = 256;   // inner rows per shared-memory tile
  int rows = 1;     // generic scheme: outer rows per thread (a block covers block x rows rows)
  int wx = 0, wy = 0, np = 0;
  std::vector<int> x_off, y_off, p_off;  // by input position
  // Partial state of one outer row (what a split of the inner range hands to rk_merge):
  // state_t values of T, state_i int indices, state_c T Kahan compensations.
  int state_t = 0, state_i = 0, state_c = 0;
  bool uses_index = false;  // the reduction returns indices (int32 on the GPU)
  // The high-dimension scheme (codegen_cuda_hd.h) when hd.bm > 0. Its layout differs: Y is
  // column-major like X (leading dimension: the launch's inner rows rounded up to 16 bytes),
  // X's leading dimension is a multiple of 16 bytes too, and the inputs of the pairwise inner
  // products come first (offset 0 in X and Y); `block` threads cover hd.bm outer rows and
  // `tile` inner rows at a time.
  struct Hd {
    int bm = 0;                    // outer rows per block; 0: the generic scheme
    int x_pos = -1, y_pos = -1;    // the outer and inner inputs of the inner products
    bool center = false;           // subtract one common point from both (distances only)
    int x_norm = -1, y_norm = -1;  // component of X (Y) holding |x|^2 (|y|^2), or -1
    // > 1: the threads sharing a row (K-family states) leave one partial state each, in slots
    // (s * lane_slots + lane) for split s: every launch goes through rk_merge
    int lane_slots = 1;
    // rk_reduce called with slot0 + kHdResume continues from the partial states in its slots
    // (those of the same splits of the piece before) instead of starting afresh: the pieces of
    // the inner range share one piece's slots (the K family's lane lists)
    bool resume = false;
  } hd;
};

// The flag added to rk_reduce's slot0 to continue from the slots' states (CudaCode::Hd::resume).
constexpr int kHdResume = 1 << 30;

// Generates the kernels rk_reduce and rk_merge for `f` (and, in the generic scheme,
// rk_pack_inner, which packs device-resident inner variables on the device) (the CUDA prelude from `include_dir`
// pasted in). Same Emitter and reduction table as the CPU.
CudaCode generate_cuda_code(const Formula& f, const CodeOptions& opt, const std::string& include_dir);

// The head of rk_reduce's loop over its inner ranges (jb0, jb1), two loops left open: the
// ranges of a block-sparse work item (jr_, nr_) split over blockIdx.y, or the dense slice
// blockIdx.y of jchunk rows. Shared by the generic scheme and the float16 tensor-core kernel.
std::string cuda_inner_ranges_head();

// rk_merge's signature (CUDA ABI 8) and first lines, for both schemes (`block`: the macro or
// constant of its launch bound): one thread per row i of rows [row0, row1) of the n_rows whose
// slots are laid out (a block-sparse call merges each piece's rows after its kernel).
std::string cuda_merge_head(const char* block);

// The end of rk_merge when it is asked for partial states (`states_`): row i's merged state
// st_ / si_ / cp_ written to out as doubles (the CPU kernel's layout), then return.
std::string cuda_states_out(int S, int SI, int SC, const std::string& loop_prefix = "");

// Places variable `v` in the packed inputs of `cc`: its offset among the parameters (P), the
// outer rows (X) or the inner rows (Y), whose widths grow by its dimension.
void place_cuda_input(CudaCode& cc, const VarUse& v, int outer);

// Just the source (tests, rk_cuda_source()).
inline std::string generate_cuda_source(const Formula& f, const CodeOptions& opt, const std::string& include_dir) {
  return generate_cuda_code(f, opt, include_dir).source;
}

}  // namespace rkeops

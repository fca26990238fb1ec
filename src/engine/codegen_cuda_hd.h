// The CUDA backend's high-dimension scheme: when the part of a formula that depends on both
// indices goes through inner products or distances of high dimension (SqDist(x, y), (x | y),
// SqNorm2(x - y), WeightedSqDist(s, x, y) with a scalar s; x an outer and y an inner variable
// of dimension D), the kernel is a register-blocked matrix product: a block computes a tile of
// bm outer x bn inner rows, each thread tm x tn pairs; the D components pass through shared
// memory in chunks, so each loaded value is used tm or tn times. After the D loop each thread
// holds its pairs' inner products in registers and evaluates the rest of the formula per pair
// with the usual Emitter, accumulating into one reduction state per row.
// Distances are |x|^2 + |y|^2 - 2 <x, y> (clamped at 0), with the squared norms computed on the
// host in float64 after subtracting a common point from x and y (a distance does not change;
// the cancellation in float32 shrinks with the points' spread instead of their norm).
#pragma once
#include <string>
#include <vector>

#include "code_options.h"
#include "codegen_cuda.h"
#include "formula.h"

namespace rkeops {

// Inner products of at least this dimension use the scheme (bench/RESULTS.md: measured on the
// H200 against the generic kernel).
constexpr int kHdMinDim = 32;

// One node of F computed from the register inner product: a distance (SqDist, SqNorm2(x - y),
// WeightedSqDist: the node's value is weight * distance) or an inner product.
struct HdNode {
  int id = -1;
  bool dist = true;
  int weight = -1;  // WeightedSqDist's scalar weight node, else -1
};

// Whether the scheme applies to `f`, and on what.
struct HdPlan {
  bool applies = false;
  int x_pos = -1, y_pos = -1, dim = 0;  // the outer and inner variables, their dimension D
  std::vector<HdNode> nodes;
  bool center = false;  // only distances: x and y may be shifted by a common point
  std::string why;      // why not (tests and verbose logs)
};
// Finds the pairwise nodes of dimension >= min_dim on one (outer, inner) variable pair, and
// checks that those variables are used nowhere else and that the rest of F is cheap per pair
// (or the generic kernel cannot take the inner rows at all).
HdPlan plan_cuda_hd(const Formula& f, const CodeOptions& opt, int min_dim = kHdMinDim);

// The register tile: `threads` threads, (threads / ntx) x ntx; tm x tn pairs per thread; the
// ntx threads of a row group (lanes of one warp) share their rows; bk components per chunk; at
// least `min_blocks` blocks a multiprocessor (__launch_bounds__: registers capped to fit).
// With `mma` (float32, tensor cores): the warps are stacked along the rows, each computes
// mt x nt8 products of 16 x 8 pairs by mma.sync (float32 accuracy from a TF32 head and tail
// of each value: hi * hi on a TF32 instruction, hi * lo + lo * hi on a BF16 one, or on two
// TF32 ones: CodeOptions::cuda_hd_split) and holds them in the instruction's accumulator
// layout: tm = 2 mt rows, tn = 2 nt8 columns per thread, the 4 lanes of a quad sharing rows.
struct HdTile {
  int tm = 8, tn = 8, bk = 8, ntx = 16;
  bool mma = false;
  int threads = 256, min_blocks = 1;
  int bm() const { return threads / ntx * tm; }
  int bn() const { return ntx * tn; }
  // Shared-memory row strides of a chunk: padded for the tensor cores' fragment loads (a
  // stride of 8 modulo 32 banks: the 32 lanes of a fragment load hit 32 banks).
  int lda() const { return bm() + (mma ? 8 : 0); }
  int ldb() const { return bn() + (mma ? 8 : 0); }
};
// The tile for a reduction state of `state_regs` 32-bit registers per row, inner products of
// dimension `dim` and `ncol` other values per inner row (kept in shared memory by tile); its
// shared memory is at most 48 KiB. `mma`: CodeOptions::cuda_hd_mma (float32 only).
HdTile hd_tile(bool f32, int state_regs, int dim, int ncol, int mma = 0);
// Shared memory of a tile's kernel, in bytes.
int hd_shared_bytes(const HdTile& t, bool f32, int ncol);

// The kernels rk_reduce (the scheme above) and rk_merge (as the generic template's) for `f`.
CudaCode generate_cuda_hd_code(const Formula& f, const HdPlan& plan, const CodeOptions& opt,
                               const std::string& include_dir);

// Launch configuration (pure): the number of blocks the inner range of `n_inner` rows is split
// over, for `rows` outer rows, when `concurrent` blocks run at once; minimises the number of
// waves times the tiles each block sweeps (plus one tile's worth of fixed cost per block).
long long hd_splits(long long rows, long long n_inner, int bm, int bn, long long concurrent);
// The inner rows each split sweeps: whole tiles (the last splits may be short or empty).
long long hd_jchunk(long long n_inner, long long nsplit, int bn);

}  // namespace rkeops

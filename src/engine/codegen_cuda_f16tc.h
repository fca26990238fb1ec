// The CUDA backend's float16 Gaussian sums on tensor cores (rkeops_use_float16(), sm_80 and
// later): Sum_Reduction(Exp(h * SqDist(x, y)) * b) with a uniform h < 0 (or Exp(h * -SqDist),
// h > 0; SqNorm2(x - y) too), x an outer and y an inner variable of dimension D <= 15, b an
// inner variable of at most 8 components (or none). Each warp computes blocks of 16 outer x 16
// inner rows with two tensor-core products:
//   1. the exponents e = -s |x - y|^2 (s = -h log2 e > 0) as -s|x|^2 - s|y|^2 + 2s <x, y>:
//      mma.m16n8k8 with halves in and float32 out; the outer rows' halves x exactly as given,
//      the inner rows' 2s y and -s|y|^2 each a head and a tail of halves (22 bits), so that the
//      cancellation costs about 2^-22 of the norms (the fast path runs only where s|x|^2 and
//      s|y|^2 are at most kF16TcNorm);
//   2. K = 2^e (rounded to half), times b: mma.m16n8k16 with float32 accumulation. K comes
//      from the special-function unit (MUFU.EX2, float32 in) for half of the rows and from a
//      half2 polynomial on the FMA pipe for the other half, so that neither unit waits
//      (bench/RESULTS.md: the exponentials are the bound of a Gaussian sum).
// Tiles or blocks of rows outside the fast path's norms, and h >= 0 or not finite, take a
// float32 loop (one row per thread, exp in float32). The kernel keeps the generic scheme's
// ABI, input layout (X column-major halves, Y packed rows of halves), partial states and
// rk_merge; one row per thread, 32 x warps rows per block.
#pragma once
#include <string>

namespace rkeops {

constexpr int kF16TcWarps = 4;       // warps a block (each 2 x 16 rows): threads and rows per block / 32
constexpr int kF16TcUnroll = 32;     // blocks of 16 inner rows a step of the fast path's loop (a whole
                                     // tile; H200, 1e6 points: 202.9 ms against 212.7 for 16, 221.1 for 4)
constexpr int kF16TcTile = 512;      // inner rows per shared-memory tile
constexpr int kF16TcMaxDim = 15;     // D: the exponent's product has 2 D + 2 terms, in k-steps of 8
constexpr int kF16TcMaxOut = 8;      // components of b (the second product's 8 columns)
constexpr double kF16TcNorm = 1024;  // the fast path's bound on s|x|^2 and s|y|^2 (log2 units)

// What the kernel needs from the formula and the generic scheme's layout.
struct F16TcPlan {
  bool applies = false;
  int dim = 0;             // D
  int x_off = 0;           // x's first column in X
  int y_off = 0;           // y's first value in a packed inner row
  int b_off = -1;          // b's first value in a packed inner row; -1: no b (F is the exponential)
  int out_dim = 1;         // components of b (1 without b)
  bool neg = false;        // the pair is -SqDist(x, y): the exponent is h * -|x - y|^2
  std::string scale;       // h, an expression of the hoisted values (half2 pairs: lane 0 read)
  std::string param_code;  // the parameters' loads and the hoisted values (T = rk_h2)
  int warps = kF16TcWarps, unroll = kF16TcUnroll;
  int min_blocks = 0;  // __launch_bounds__'s minimum of blocks a multiprocessor (0: none)
  int k_steps() const { return (2 * dim + 2 + 7) / 8; }
};

// The helpers and rk_reduce of the float16 tensor-core Gaussian sum (the header, rk_merge and
// rk_pack_inner are the generic scheme's).
std::string f16tc_reduce_kernel(const F16TcPlan& p);

}  // namespace rkeops

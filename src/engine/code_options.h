// Options that change generated kernel sources, owned by neither backend: both code generators
// (codegen_cpu.cpp, codegen_cuda.cpp) and the reduction table read them.
#pragma once
#include <string>

namespace rkeops {

// Float16 (GPU only): inputs stored as IEEE half, formulas evaluated in half2 pairs (two
// outer rows per thread) where every operation has a half2 form (OpInfo::half2), in float32
// otherwise; reductions accumulate in float32 (codegen_cuda.cpp).
enum class DType { Float64, Float32, Float16 };
enum class SumScheme { Auto, Direct, Block, Kahan };

// Nodes and arguments wider than this are emitted with loops over their components
// (codegen.h; chosen by measurement, see bench/RESULTS.md).
constexpr int kLoopDim = 32;

struct CodeOptions {
  DType dtype = DType::Float64;
  SumScheme scheme = SumScheme::Auto;
  // Nodes wider than this are emitted with loops over their components (codegen.h); the
  // engine's tests lower it to run every loop emitter at small dimensions.
  int loop_dim = kLoopDim;
  // CPU: wide formulas whose pairwise part is a distance or an inner product of one outer and
  // one inner variable compute it for blocks of rows x tiles by a register-blocked product
  // (codegen_cpu.cpp); tests turn it off to compare.
  bool cpu_hd = true;
  // CUDA, generic scheme: outer rows per thread (register blocking); 0 chooses by the registers
  // a row needs (codegen_cuda.cpp). Benchmarks set it (RKEOPS_CUDA_ROWS) to compare.
  int cuda_rows = 0;
  // CUDA, high-dimension scheme in float32 (codegen_cuda_hd.h): inner products on the tensor
  // cores (3xTF32) when the GPU has them. 0: plain FP32 multiply-adds (benchmarks compare);
  // 1: tensor cores, tile chosen; 100 * m + n: tensor cores, each warp m x n 16 x 8 tiles.
  int cuda_hd_mma = 1;
  // Tensor cores: each value is a TF32 head plus a tail; head * head on a TF32 instruction, and
  // the cross terms head * tail + tail * head on two more TF32 instructions (0: heads rounded
  // to nearest, 1: truncated) or on one BF16 instruction (2: heads truncated); the benchmarks
  // compare (codegen_cuda_hd.cpp).
  int cuda_hd_split = 2;
  // CUDA, generic scheme (float32, float64): a Gaussian-like Exp(h * SqDist(x, y)) with a uniform h < 0
  // runs on coordinates prescaled by sqrt(-h log2 e) (codegen_cuda.cpp: prescaled folds); 2:
  // also in the inner-product form where the norms allow (dot_term). 0: off, 1: prescaled
  // coordinates only (benchmarks compare).
  int cuda_prescale = 2;
  // CUDA, float16: Gaussian sums on tensor cores (codegen_cuda_f16tc.h) where they apply; the
  // launcher turns it off below compute capability 8.0. 0: the generic half2 kernel; 1000 b + 100 w + u:
  // w warps a block, at least b blocks a multiprocessor, the loop unrolled u times (benchmarks).
  int cuda_f16_tc = 1;

  // The options as text, for keys of kernels built with them: every field above is in it.
  std::string key() const {
    return std::to_string(static_cast<int>(dtype)) + "|" + std::to_string(static_cast<int>(scheme)) + "|" +
           std::to_string(loop_dim) + "|" + (cpu_hd ? "hd" : "") + "|" + std::to_string(cuda_rows) + "|" + std::to_string(cuda_hd_mma) +
           "|" + std::to_string(cuda_prescale) + "|" + std::to_string(cuda_hd_split) + "|" + std::to_string(cuda_f16_tc);
  }
};

}  // namespace rkeops

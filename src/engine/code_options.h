// Options that change generated kernel sources, owned by neither backend: both code generators
// (codegen_cpu.cpp, codegen_cuda.cpp) and the reduction table read them.
#pragma once

namespace rkeops {

enum class DType { Float64, Float32 };
enum class SumScheme { Auto, Direct, Block, Kahan };

struct CodeOptions {
  DType dtype = DType::Float64;
  SumScheme scheme = SumScheme::Auto;
};

}  // namespace rkeops

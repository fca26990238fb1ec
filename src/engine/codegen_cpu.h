// Generates the C++ (OpenMP) source of a reduction kernel for the host CPU.
#pragma once
#include <string>

#include "codegen.h"
#include "formula.h"

namespace rkeops {

enum class DType { Float64, Float32 };
enum class SumScheme { Auto, Direct, Block, Kahan };

// Options that change the generated source.
struct CodeOptions {
  DType dtype = DType::Float64;
  SumScheme scheme = SumScheme::Auto;
  // Nodes wider than this are emitted with loops over their components (codegen.h); the
  // engine's tests lower it to run every loop emitter at small dimensions.
  int loop_dim = kLoopDim;
};

// The ABI between launch_cpu.cpp and a generated CPU kernel (checked by rk_abi_version()).
constexpr int kCpuAbiVersion = 1;

// Returns the complete source (the prelude from `include_dir` pasted in).
std::string generate_cpu_source(const Formula& f, const CodeOptions& opt, const std::string& include_dir);

// Reads an rkeops header from `include_dir`, inlining its #include "rkeops/..." lines.
std::string read_prelude(const std::string& include_dir, const std::string& file);

}  // namespace rkeops

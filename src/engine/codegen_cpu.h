// Generates the C++ (OpenMP) source of a reduction kernel for the host CPU.
#pragma once
#include <string>

#include "code_options.h"
#include "formula.h"

namespace rkeops {

// The ABI between launch_cpu.cpp and a generated CPU kernel (checked by rk_abi_version()).
constexpr int kCpuAbiVersion = 3;

// Returns the complete source (the prelude from `include_dir` pasted in).
std::string generate_cpu_source(const Formula& f, const CodeOptions& opt, const std::string& include_dir);

}  // namespace rkeops

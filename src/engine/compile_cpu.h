// Compiles generated CPU sources into shared libraries with the system C++ compiler.
#pragma once
#include <string>

namespace rkeops {

class DiskCache;

// How CPU kernels are compiled: R's C++17 compiler plus our flags (set by the glue from R's
// configuration, or by the engine tests).
struct CompilerConfig {
  std::string cxx = "g++ -std=gnu++17";                   // compiler command (trusted, from R)
  std::string flags = "-O3 -march=native -fPIC -shared";  // optimisation and linking
  std::string openmp = "-fopenmp";                        // empty when OpenMP is unavailable
};

// Text that identifies the compiler and the host CPU (part of every cache key): the
// compiler's --version, the flags, and the CPU model and instruction-set flags.
std::string compiler_identity(const CompilerConfig& cc);

// Compiles `source` to a shared library stored in `cache` under `key`; returns its path.
// On failure dumps the numbered source under cache.failed_dir() and throws CompileError.
std::string compile_cpu(const std::string& source, const std::string& key, const CompilerConfig& cc, DiskCache& cache);

}  // namespace rkeops

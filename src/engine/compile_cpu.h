// Compiles generated CPU sources into shared libraries with the system C++ compiler.
#pragma once
#include <string>

#include "compile_watch.h"

namespace rkeops {

class DiskCache;
class VerifiedFile;

// How CPU kernels are compiled: R's C++17 compiler plus our flags (set by the glue from R's
// configuration, or by the engine tests).
struct CompilerConfig {
  std::string cxx = "g++ -std=gnu++17";                   // compiler command (trusted, from R)
  std::string flags = "-O3 -march=native -fPIC -shared";  // optimisation and linking
  std::string openmp = "-fopenmp";                        // empty when OpenMP is unavailable
};

// Text that identifies the compiler and the host CPU (part of every cache key): the
// compiler's --version, the flags, and the CPU model and instruction-set flags.
std::string compiler_identity(const CompilerConfig& cc, const CompileWatch& watch = {});

// Compiles `source` to a shared library stored in `cache` under `key`; returns it verified and
// open. The compiler runs as a child process that `watch` can stop (Interrupted,
// UserError("compile_timeout")). A full disk is UserError("cache") saying so; any other failure
// dumps the numbered source under cache.failed_dir() and throws CompileError. No temp file is
// left behind on any path.
VerifiedFile compile_cpu(const std::string& source, const std::string& key, const CompilerConfig& cc, DiskCache& cache,
                         const CompileWatch& watch);

}  // namespace rkeops

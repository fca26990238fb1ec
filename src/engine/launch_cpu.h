// Loads generated CPU kernels (dlopen) and runs them in chunks of output rows.
#pragma once
#include <memory>

#include "kernel.h"

namespace rkeops {

// Generates, finds in the disk cache or compiles, and loads the CPU kernel of `f`.
// `watch` can stop the compile.
std::shared_ptr<Kernel> load_cpu_kernel(Formula f, const EngineOptions& opt, const CompileWatch& watch);

}  // namespace rkeops

#include "kernel_store.h"

#include <chrono>

#include "cache.h"
#include "errors.h"
#include "log.h"

namespace rkeops {

ArtifactOutcome load_or_build(const ArtifactSteps& s, const std::string& cache_dir, bool forbid_compile) {
  DiskCache cache(cache_dir);
  ArtifactOutcome r;
  std::string why;
  if (s.load_cached(cache, &why)) {
    r.from_disk = true;
    return r;
  }
  if (!why.empty())
    log_msg("rkeops: cached " + s.what + " " + s.key.substr(0, 16) + " failed to load (" + why + "); rebuilding");
  if (forbid_compile)
    throw UserError("option", "compiling a new kernel is forbidden (RKEOPS_FORBID_COMPILE) for " + s.canonical);
  const auto t0 = std::chrono::steady_clock::now();
  s.build(cache);
  r.compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace rkeops

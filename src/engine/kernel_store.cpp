#include "kernel_store.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <set>

#include "cache.h"
#include "errors.h"
#include "log.h"

namespace rkeops {
namespace {

// Says once per read-only directory and session where new kernels go.
void note_read_only(const DiskCache& cache, const DiskCache& fallback) {
  static std::mutex mu;
  static std::set<std::string> told;
  std::lock_guard<std::mutex> lock(mu);
  if (!verbose() || !told.insert(cache.dir()).second) return;
  log_msg("rkeops: the cache directory " + cache.dir() +
          " is read-only: its kernels are used, new ones are compiled into " + fallback.dir() + " (for this session)");
}

}  // namespace

ArtifactOutcome load_or_build(const ArtifactSteps& s, const CacheDirs& dirs, bool forbid_compile) {
  DiskCache cache(dirs.dir);
  ArtifactOutcome r;
  std::string why;
  if (s.load_cached(cache, &why)) {
    r.from_disk = true;
    return r;
  }
  if (!why.empty())
    log_msg("rkeops: cached " + s.what + " " + s.key.substr(0, 16) + " failed to load (" + why + "); rebuilding");
  DiskCache* target = &cache;
  std::unique_ptr<DiskCache> fallback;
  if (!cache.writable()) {
    if (dirs.fallback_dir.empty())
      throw UserError("cache", "the rkeops cache directory '" + cache.dir() + "' is not writable, and the " + s.what +
                                   " of " + s.canonical + " is not in it");
    fallback.reset(new DiskCache(dirs.fallback_dir));
    if (!fallback->writable())
      throw UserError("cache", "neither the rkeops cache directory '" + cache.dir() + "' nor '" + fallback->dir() +
                                   "' is writable");
    note_read_only(cache, *fallback);
    why.clear();
    if (s.load_cached(*fallback, &why)) {
      r.from_disk = true;
      return r;
    }
    target = fallback.get();
  }
  if (forbid_compile)
    throw UserError("option", "compiling a new kernel is forbidden (RKEOPS_FORBID_COMPILE) for " + s.canonical);
  const auto t0 = std::chrono::steady_clock::now();
  s.build(*target);
  r.compile_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace rkeops

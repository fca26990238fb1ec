// The compile-or-load-from-cache sequence, written once for both backends (design §5): load the
// artifact from the disk cache; when it is absent or fails to load, build it (unless compiling
// is forbidden), store it and load it. A read-only cache is still read: what it lacks is built
// into a second, writable cache (for the session; R gives a folder of tempdir()).
#pragma once
#include <functional>
#include <string>

namespace rkeops {

class DiskCache;

struct ArtifactSteps {
  std::string key;        // the cache key (sha256 of all that decides the binary)
  std::string what;       // "CPU kernel", "GPU kernel": for messages
  std::string canonical;  // the formula, for the error when compiling is forbidden
  // Loads the cached artifact: false when it is absent, or present but failed to load (then
  // *why says why, and it is rebuilt).
  std::function<bool(DiskCache&, std::string* why)> load_cached;
  // Builds the artifact, stores it in the cache and loads it; throws on failure.
  std::function<void(DiskCache&)> build;
};

struct ArtifactOutcome {
  double compile_seconds = 0;  // 0 when loaded from the cache
  bool from_disk = false;
};

// Where artifacts are looked for and stored: `dir`, and `fallback_dir` for new artifacts when
// `dir` is read-only ("" : none, then a read-only cache that lacks one is an error).
struct CacheDirs {
  std::string dir, fallback_dir;
};

ArtifactOutcome load_or_build(const ArtifactSteps& steps, const CacheDirs& dirs, bool forbid_compile);

}  // namespace rkeops

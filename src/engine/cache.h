// The on-disk cache of compiled kernels (design.md §5, style.md item 11).
// Every entry checks itself: a header {magic, format version, key, size, sha256} travels with the
// bytes, files appear only through rename(), and anything that fails to verify is deleted so the
// caller rebuilds it. Several R processes may share one directory at the same time.
#pragma once
#include <string>

namespace rkeops {

// One directory of compiled kernels, named by 64-hex-digit keys (sha256 of all that decides the
// binary).
class DiskCache {
 public:
  // Opens `dir`, creating it and missing parents with mode 0700. Throws UserError("cache", ...)
  // naming the directory if it cannot be created, is not a writable directory, belongs to another
  // user, or is writable by group/others (we dlopen code from it, so nobody else may plant files
  // there).
  explicit DiskCache(std::string dir);

  // The cache directory, without a trailing slash.
  const std::string& dir() const { return dir_; }

  // Path of the verified artifact `<dir>/<key><ext>`, or "" when absent. An artifact whose sidecar
  // `<key><ext>.meta` is missing or damaged, or whose size/sha256 does not match, is deleted.
  std::string lookup_file(const std::string& key, const std::string& ext);

  // Moves the finished file `tmp_path` (from temp_path(), so on the same file system) to
  // `<dir>/<key><ext>` after publishing its sidecar; returns the final path. Replaces any existing
  // entry (the caller rebuilds when a cached file fails to load). Concurrent stores of one key all
  // succeed and leave one matching artifact+sidecar pair.
  std::string store_file(const std::string& key, const std::string& ext, const std::string& tmp_path);

  // Reads the payload stored by store_bytes into `*out`; false when absent or damaged (damaged is
  // deleted).
  bool load_bytes(const std::string& key, const std::string& ext, std::string* out);

  // Stores `bytes` as `<dir>/<key><ext>`, a header line followed by the payload (temp file +
  // rename).
  void store_bytes(const std::string& key, const std::string& ext, const std::string& bytes);

  // A fresh path `<dir>/.tmp-<pid>-<random>-<n><suffix>` for a compiler to write into; nothing is
  // created.
  std::string temp_path(const std::string& suffix);

  // `<dir>/failed`, created on demand: generated sources of failed compiles are dumped there.
  std::string failed_dir();

  // Writes `source` with line numbers to `<dir>/failed/<key prefix><ext>` (for a compile error
  // message) and returns the path.
  std::string dump_failed(const std::string& key, const std::string& ext, const std::string& source);

  // Number and total size of the artifacts (sidecars, temp files and failed/ not counted).
  struct Stats {
    long long files;
    long long bytes;
  };
  Stats stats() const;

  // Removes every artifact and sidecar, temp files older than an hour (younger ones may belong to a
  // compile in progress) and the content of failed/. Keeps the directory. Files it does not
  // recognise are left alone, in case the cache was pointed at a directory that holds other things.
  void clean();

 private:
  std::string entry_path(const std::string& key, const std::string& ext) const;
  std::string dir_;
};

}  // namespace rkeops

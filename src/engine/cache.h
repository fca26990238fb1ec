// The on-disk cache of compiled kernels (design.md §5, style.md item 11).
// Every entry checks itself: a header {magic, format version, key, size, sha256} travels with the
// bytes, files appear only through rename() (a file that a process has loaded is never written
// again), and anything that fails to verify is deleted so the caller rebuilds it. Several R
// processes may share one directory at the same time.
//
// Trust: code is loaded from the cache, so the directory, and every directory above it, must be
// such that no other user can put files in it or swap it for another: each is owned by the user
// or root, the cache itself writable by nobody else, the others writable by nobody else unless
// sticky (as /tmp). An artifact is verified and loaded through one open file descriptor, so
// that what runs is what was checked.
//
// Ownership: a marker file `.rkeops-cache` says that rkeops made the directory (written when
// rkeops creates it, or first stores in a directory that holds nothing else). Cleaning removes
// only files rkeops wrote, recognised by name and content; symbolic links are never followed.
#pragma once
#include <string>

namespace rkeops {

// A cached artifact whose bytes were verified, held open: load it through its descriptor
// (DynLib::open_file) so that the file loaded is the file checked, even if the name is replaced
// meanwhile.
class VerifiedFile {
 public:
  VerifiedFile() = default;
  VerifiedFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~VerifiedFile();
  VerifiedFile(VerifiedFile&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  VerifiedFile& operator=(VerifiedFile&& o) noexcept;
  VerifiedFile(const VerifiedFile&) = delete;
  VerifiedFile& operator=(const VerifiedFile&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Its name in the cache.
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// True for the errno values of a full disk or an exhausted quota.
bool is_disk_full(int err);

// One directory of compiled kernels, named by 64-hex-digit keys (sha256 of all that decides the
// binary).
class DiskCache {
 public:
  // Opens `dir`, creating it and missing parents with mode 0700. Throws UserError("cache", ...)
  // naming the directory if it cannot be created, is not a directory, or cannot be trusted (see
  // above). A directory this process cannot write to is opened read-only: lookups work, stores
  // and cleaning do not (see writable()).
  explicit DiskCache(std::string dir);

  // The cache directory (absolute, symbolic links resolved), without a trailing slash.
  const std::string& dir() const { return dir_; }
  // False for a directory this process cannot write to (kernels are loaded from it, new ones
  // compiled elsewhere: see load_or_build).
  bool writable() const { return writable_; }

  // The verified artifact `<dir>/<key><ext>` (not ok() when absent). An artifact whose sidecar
  // `<key><ext>.meta` is missing or damaged, or whose size/sha256 does not match, is deleted
  // (left alone in a read-only cache).
  VerifiedFile lookup_file(const std::string& key, const std::string& ext);

  // Moves the finished file `tmp_path` (from temp_path(), so on the same file system) to
  // `<dir>/<key><ext>` after publishing its sidecar, and returns it verified. Replaces any
  // existing entry by rename (the caller rebuilds when a cached file fails to load). Concurrent
  // stores of one key all succeed and leave one matching artifact+sidecar pair. `tmp_path` is
  // removed on failure.
  VerifiedFile store_file(const std::string& key, const std::string& ext, const std::string& tmp_path);

  // Reads the payload stored by store_bytes into `*out`; false when absent or damaged (damaged is
  // deleted).
  bool load_bytes(const std::string& key, const std::string& ext, std::string* out);

  // Stores `bytes` as `<dir>/<key><ext>`, a header line followed by the payload (temp file +
  // rename).
  void store_bytes(const std::string& key, const std::string& ext, const std::string& bytes);

  // A fresh path `<dir>/.tmp-<pid>-<16 hex>-<n><suffix>` for a compiler to write into; nothing
  // is created.
  std::string temp_path(const std::string& suffix);
  // Writes `data` to a new temp_path(suffix) and returns the path. On failure nothing is left
  // and UserError("cache") says why (that the disk is full, when it is).
  std::string write_temp(const std::string& suffix, const std::string& data);

  // `<dir>/failed`, created on demand: generated sources of failed compiles are dumped there.
  // Throws UserError("cache") when it cannot be made, or exists but is not a directory of ours
  // (a symbolic link, for instance).
  std::string failed_dir();

  // Writes `source` with line numbers to `<dir>/failed/<key prefix><ext>` (for a compile error
  // message) and returns the path, or "" when it could not be written (a full disk leaves no
  // partial dump). `*note` says which, for the message: "source dumped to <path>", or why not.
  std::string dump_failed(const std::string& key, const std::string& ext, const std::string& source, std::string* note);

  // Number and total size of the artifacts (sidecars, temp files and failed/ not counted).
  struct Stats {
    long long files;
    long long bytes;
  };
  Stats stats() const;

  // Removes what rkeops wrote: artifacts with their sidecars, temp files older than an hour
  // (younger ones may belong to a compile in progress) and the dumps in failed/. Other files
  // stay. With `remove_dir`, then removes the directory itself, provided rkeops made it (the
  // marker) and it holds nothing else; otherwise throws UserError("cache") naming what is in
  // the way. Throws UserError("cache") for a read-only cache.
  void clean(bool remove_dir = false);

 private:
  std::string entry_path(const std::string& key, const std::string& ext) const;
  // Writes the marker if the directory holds nothing but what rkeops writes.
  void ensure_marker();
  std::string dir_;
  bool writable_ = true;
};

}  // namespace rkeops

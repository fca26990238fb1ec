// DiskCache. The protocol, in short:
//  - every file first appears under a `.tmp-*` name and becomes visible only through rename();
//  - a kernel library is described by its sidecar `<name>.meta`, published before the library;
//  - publishing and deleting damaged entries happen under one flock() on `<dir>/.lock`, so two
//    writers never pair one's sidecar with the other's library, and a reader never deletes an
//    entry that a writer has just completed. Lookups that find a good entry take no lock.
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "errors.h"
#include "log.h"
#include "sha256.h"

namespace rkeops {
namespace {

const char kMagic[] = "RKEOPS-CACHE";
const int kFormatVersion = 1;
const size_t kMaxHeader = 256;  // a header line is ~100 bytes; more means garbage
const time_t kStaleTempSeconds = 3600;

std::string errno_text(int err) { return std::strerror(err); }

bool is_hex64(const std::string& s, size_t pos = 0) {
  if (s.size() < pos + 64) return false;
  for (size_t i = pos; i < pos + 64; ++i) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Keys and extensions become file names: refuse anything that could leave the directory or
// be mistaken for a sidecar/temp file. A bad one is a bug in the caller, not the user's doing.
void check_name(const std::string& key, const std::string& ext) {
  RK_ASSERT(key.size() == 64 && is_hex64(key), "cache key must be 64 lowercase hex digits: '" + key + "'");
  bool ok = ext.empty() || ext[0] == '.';
  for (char c : ext)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                c == '-');
  ok = ok && !(ext.size() >= 5 && ext.compare(ext.size() - 5, 5, ".meta") == 0);
  RK_ASSERT(ok, "bad cache file extension: '" + ext + "'");
}

// Names this cache owns: `<64 hex><ext>` (artifacts, sidecars) and `.tmp-...` (temp files).
bool is_entry_name(const std::string& name) { return is_hex64(name) && (name.size() == 64 || name[64] == '.'); }
bool is_sidecar_name(const std::string& name) {
  return name.size() > 5 && name.compare(name.size() - 5, 5, ".meta") == 0;
}
bool is_temp_name(const std::string& name) { return name.rfind(".tmp-", 0) == 0; }

std::string make_header(const std::string& key, size_t size, const std::string& sha) {
  return std::string(kMagic) + " " + std::to_string(kFormatVersion) + " " + key + " " + std::to_string(size) + " " +
         sha + "\n";
}

struct Header {
  std::string key, sha;
  unsigned long long size = 0;
};

// Parses "RKEOPS-CACHE 1 <key> <size> <sha256>\n" at the start of `text`; on success sets
// `*payload_at` to the offset just past the newline. Strict: any deviation is damage.
bool parse_header(const std::string& text, Header* h, size_t* payload_at) {
  size_t nl = text.find('\n');
  if (nl == std::string::npos || nl > kMaxHeader) return false;
  std::vector<std::string> tok;
  size_t start = 0;
  for (size_t i = 0; i <= nl; ++i) {
    if (i == nl || text[i] == ' ') {
      tok.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  if (tok.size() != 5 || tok[0] != kMagic || tok[1] != std::to_string(kFormatVersion)) return false;
  if (tok[2].size() != 64 || !is_hex64(tok[2]) || tok[4].size() != 64 || !is_hex64(tok[4])) return false;
  if (tok[3].empty() || tok[3].size() > 19) return false;
  for (char c : tok[3])
    if (c < '0' || c > '9') return false;
  h->key = tok[2];
  h->size = std::stoull(tok[3]);
  h->sha = tok[4];
  *payload_at = nl + 1;
  return true;
}

// Reads a whole file (at most `limit` bytes, more counts as failure). Returns 0 or an errno value.
int read_file(const std::string& path, std::string* out, size_t limit = size_t(-1)) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  out->clear();
  char buf[65536];
  int err = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      break;
    }
    if (n == 0) break;
    out->append(buf, size_t(n));
    if (out->size() > limit) {
      err = EFBIG;
      break;
    }
  }
  ::close(fd);
  return err;
}

// Size and sha256 of a file, streamed so a large library is never held in memory twice.
bool hash_file(const std::string& path, unsigned long long* size, std::string* sha) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  Sha256 h;
  unsigned long long total = 0;
  char buf[65536];
  bool ok = true;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ok = false;
      break;
    }
    if (n == 0) break;
    h.update(buf, size_t(n));
    total += size_t(n);
  }
  ::close(fd);
  *size = total;
  *sha = h.hex_digest();
  return ok;
}

// Creates `path` holding `data`; fails if it exists (temp names are unique). Returns 0 or errno.
int write_new_file(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno;
  const char* p = data.data();
  size_t left = data.size();
  int err = 0;
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = errno;
      break;
    }
    p += n;
    left -= size_t(n);
  }
  // No fsync: after a crash a renamed file may be empty or short, and verification catches that.
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err) ::unlink(path.c_str());
  return err;
}

// Serialises the steps that must not interleave across processes and threads: publishing an
// entry (sidecar then artifact) and deleting a damaged one (so that a reader never deletes an
// entry a writer has just made good). flock() excludes separate open() calls even within one
// process. If locking is impossible (some network file systems) we go on without it: the entries
// still verify themselves, the worst case is a needless rebuild.
class DirLock {
 public:
  explicit DirLock(const std::string& dir) {
    fd_ = ::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return;
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        ::close(fd_);
        fd_ = -1;
        return;
      }
    }
  }
  ~DirLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

// Checks an artifact against its sidecar. Sets `*absent` when neither file exists.
bool verify_file(const std::string& key, const std::string& path, bool* absent) {
  std::string meta;
  int err = read_file(path + ".meta", &meta, kMaxHeader);
  struct stat st;
  bool have_file = ::stat(path.c_str(), &st) == 0;
  *absent = (err == ENOENT && !have_file);
  if (err || !have_file) return false;
  Header h;
  size_t at;
  if (!parse_header(meta, &h, &at) || at != meta.size() || h.key != key) return false;
  if ((unsigned long long)st.st_size != h.size) return false;  // cheap check before hashing
  unsigned long long size;
  std::string sha;
  return hash_file(path, &size, &sha) && size == h.size && sha == h.sha;
}

// Checks a header+payload file; on success puts the payload in `*payload`.
bool verify_bytes(const std::string& key, const std::string& path, std::string* payload, bool* absent) {
  std::string text;
  int err = read_file(path, &text);
  *absent = (err == ENOENT);
  if (err) return false;
  Header h;
  size_t at;
  if (!parse_header(text, &h, &at) || h.key != key || text.size() - at != h.size) return false;
  if (sha256_hex(text.data() + at, text.size() - at) != h.sha) return false;
  payload->assign(text, at, std::string::npos);
  return true;
}

// mkdir -p with mode 0700; chmod afterwards because the umask may have cleared owner bits.
int make_dirs(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) == 0) {
      ::chmod(prefix.c_str(), 0700);
    } else if (errno != EEXIST) {
      return errno;
    }
  }
  return 0;
}

std::string process_token() {
  // Random per process so two hosts sharing a home directory never pick the same temp name.
  static const unsigned long long token = [] {
    unsigned long long t = (unsigned long long)::time(nullptr) ^ ((unsigned long long)::getpid() << 32);
    try {
      std::random_device rd;
      t ^= ((unsigned long long)rd() << 32) ^ rd();
    } catch (...) {}
    return t;
  }();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", token);
  return buf;
}

// Removes the content of `dir` recursively; remembers the first failure in `*first_err`.
void remove_tree_content(const std::string& dir, std::string* first_err) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const std::string& n : names) {
    std::string p = dir + "/" + n;
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      remove_tree_content(p, first_err);
      if (::rmdir(p.c_str()) != 0 && errno != ENOENT && first_err->empty()) *first_err = p + ": " + errno_text(errno);
    } else if (::unlink(p.c_str()) != 0 && errno != ENOENT && first_err->empty()) {
      *first_err = p + ": " + errno_text(errno);
    }
  }
}

}  // namespace

DiskCache::DiskCache(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  if (dir_.empty()) throw UserError("cache", "the rkeops cache directory is an empty string");
  if (dir_[0] != '/') {
    // Made absolute once: the R session may setwd() while the cache is in use.
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd)) dir_ = std::string(cwd) + "/" + dir_;
  }
  const std::string where = "the rkeops cache directory '" + dir_ + "'";
  if (int err = make_dirs(dir_)) throw UserError("cache", "cannot create " + where + ": " + errno_text(err));
  struct stat st;
  if (::stat(dir_.c_str(), &st) != 0) throw UserError("cache", "cannot open " + where + ": " + errno_text(errno));
  if (!S_ISDIR(st.st_mode)) throw UserError("cache", where + " exists but is not a directory");
  if (st.st_uid != ::geteuid())
    throw UserError("cache", where + " belongs to another user; compiled code is loaded from it, so it must be yours");
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    throw UserError("cache", where +
                                 " is writable by other users; compiled code is loaded from it, "
                                 "so make it private (chmod 700) or choose another directory");
  if (::access(dir_.c_str(), W_OK | X_OK) != 0)
    throw UserError("cache", where + " is not writable: " + errno_text(errno));
}

std::string DiskCache::entry_path(const std::string& key, const std::string& ext) const {
  check_name(key, ext);
  return dir_ + "/" + key + ext;
}

std::string DiskCache::lookup_file(const std::string& key, const std::string& ext) {
  const std::string path = entry_path(key, ext);
  bool absent;
  if (verify_file(key, path, &absent)) return path;
  if (absent) return "";
  // Looked damaged, but a writer may have been between its two renames: look again under the lock.
  DirLock lock(dir_);
  if (verify_file(key, path, &absent)) return path;
  if (!absent) {
    log_msg("rkeops cache: removing damaged entry " + path);
    ::unlink(path.c_str());
    ::unlink((path + ".meta").c_str());
  }
  return "";
}

std::string DiskCache::store_file(const std::string& key, const std::string& ext, const std::string& tmp_path) {
  const std::string path = entry_path(key, ext);
  size_t slash = tmp_path.rfind('/');
  RK_ASSERT(slash != std::string::npos && tmp_path.substr(0, slash) == dir_,
            "store_file needs a temp file inside the cache directory (use temp_path()): " + tmp_path);
  unsigned long long size;
  std::string sha;
  RK_ASSERT(hash_file(tmp_path, &size, &sha), "compiled file to cache cannot be read: " + tmp_path);

  // The sidecar is written in full before anyone can see it; it is published before the artifact
  // so that any visible artifact already has its description.
  const std::string meta_tmp = temp_path(".meta");
  if (int err = write_new_file(meta_tmp, make_header(key, size, sha))) {
    ::unlink(tmp_path.c_str());
    throw UserError("cache", "cannot write to the rkeops cache '" + dir_ + "': " + errno_text(err));
  }
  // Always publish, even over an entry that verifies: the caller rebuilds when a verified file
  // fails to load, and the rebuild must win. Processes that already loaded the old file keep it.
  DirLock lock(dir_);
  if (::rename(meta_tmp.c_str(), (path + ".meta").c_str()) != 0 || ::rename(tmp_path.c_str(), path.c_str()) != 0) {
    int err = errno;
    // Leave no sidecar that describes a library we failed to put in place.
    ::unlink(meta_tmp.c_str());
    ::unlink(tmp_path.c_str());
    ::unlink((path + ".meta").c_str());
    throw UserError("cache", "cannot store " + path + " in the rkeops cache: " + errno_text(err));
  }
  return path;
}

bool DiskCache::load_bytes(const std::string& key, const std::string& ext, std::string* out) {
  const std::string path = entry_path(key, ext);
  bool absent;
  if (verify_bytes(key, path, out, &absent)) return true;
  if (absent) return false;
  DirLock lock(dir_);
  if (verify_bytes(key, path, out, &absent)) return true;
  if (!absent) {
    log_msg("rkeops cache: removing damaged entry " + path);
    ::unlink(path.c_str());
  }
  out->clear();
  return false;
}

void DiskCache::store_bytes(const std::string& key, const std::string& ext, const std::string& bytes) {
  const std::string path = entry_path(key, ext);
  const std::string tmp = temp_path("");
  if (int err = write_new_file(tmp, make_header(key, bytes.size(), sha256_hex(bytes)) + bytes))
    throw UserError("cache", "cannot write to the rkeops cache '" + dir_ + "': " + errno_text(err));
  // Under the lock so that load_bytes' "re-check, then delete" never removes a fresh file.
  DirLock lock(dir_);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw UserError("cache", "cannot store " + path + " in the rkeops cache: " + errno_text(err));
  }
}

std::string DiskCache::temp_path(const std::string& suffix) {
  RK_ASSERT(suffix.find('/') == std::string::npos, "temp file suffix must not contain '/': " + suffix);
  // pid and counter separate processes and threads of one host; the token separates hosts.
  static std::atomic<unsigned long long> counter{0};
  return dir_ + "/.tmp-" + std::to_string(::getpid()) + "-" + process_token() + "-" +
         std::to_string(counter.fetch_add(1)) + suffix;
}

std::string DiskCache::failed_dir() {
  const std::string failed = dir_ + "/failed";
  if (::mkdir(failed.c_str(), 0700) != 0 && errno != EEXIST)
    throw UserError("cache", "cannot create '" + failed + "': " + errno_text(errno));
  return failed;
}

std::string DiskCache::dump_failed(const std::string& key, const std::string& ext, const std::string& source) {
  std::string path = failed_dir() + "/" + key.substr(0, 16) + ext;
  std::FILE* out = std::fopen(path.c_str(), "w");
  if (!out) return path + " (could not be written)";
  int line = 0;
  size_t start = 0;
  while (start < source.size()) {
    size_t end = source.find('\n', start);
    if (end == std::string::npos) end = source.size();
    std::fprintf(out, "%5d| %.*s\n", ++line, static_cast<int>(end - start), source.data() + start);
    start = end + 1;
  }
  std::fclose(out);
  return path;
}

DiskCache::Stats DiskCache::stats() const {
  Stats s{0, 0};
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return s;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (!is_entry_name(name) || is_sidecar_name(name)) continue;
    struct stat st;
    // Entries may vanish under us (another process cleaning): just skip them.
    if (::stat((dir_ + "/" + name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    ++s.files;
    s.bytes += (long long)st.st_size;
  }
  ::closedir(d);
  return s;
}

void DiskCache::clean() {
  DirLock lock(dir_);
  std::string first_err;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) throw UserError("cache", "cannot read the rkeops cache directory '" + dir_ + "': " + errno_text(errno));
  std::vector<std::string> doomed;
  const time_t now = ::time(nullptr);
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    struct stat st;
    if (::lstat((dir_ + "/" + name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (is_entry_name(name) || (is_temp_name(name) && now - st.st_mtime > kStaleTempSeconds)) doomed.push_back(name);
  }
  ::closedir(d);
  for (const std::string& name : doomed) {
    std::string p = dir_ + "/" + name;
    if (::unlink(p.c_str()) != 0 && errno != ENOENT && first_err.empty()) first_err = p + ": " + errno_text(errno);
  }
  remove_tree_content(dir_ + "/failed", &first_err);
  if (!first_err.empty()) throw UserError("cache", "cannot clean the rkeops cache: " + first_err);
}

}  // namespace rkeops

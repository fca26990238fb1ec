// DiskCache. The protocol, in short:
//  - every file first appears under a `.tmp-*` name and becomes visible only through rename();
//  - a kernel library is described by its sidecar `<name>.meta`, published before the library;
//  - publishing and deleting damaged entries happen under one flock() on `<dir>/.lock`, so two
//    writers never pair one's sidecar with the other's library, and a reader never deletes an
//    entry that a writer has just completed. Lookups that find a good entry take no lock.
//  - files are opened with O_NOFOLLOW and directories examined with lstat(): a symbolic link in
//    the cache is never followed.
#include "cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
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
const char kMarker[] = ".rkeops-cache";
const char kMarkerText[] =
    "This directory holds kernels compiled by rkeops (an R package).\n"
    "clean_rkeops() removes the files rkeops wrote here; other files are left alone.\n";
const char kDumpStart[] = "    1| ";  // how a dumped source starts (dump_failed)

std::string errno_text(int err) { return std::strerror(err); }

bool is_hex(const std::string& s, size_t pos, size_t n) {
  if (s.size() < pos + n) return false;
  for (size_t i = pos; i < pos + n; ++i) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}
bool is_hex64(const std::string& s, size_t pos = 0) { return is_hex(s, pos, 64); }

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
size_t digits_at(const std::string& s, size_t pos) {
  size_t n = 0;
  while (pos + n < s.size() && s[pos + n] >= '0' && s[pos + n] <= '9') ++n;
  return n;
}
// `.tmp-<pid>-<16 hex>-<counter><suffix>`, as temp_path() makes them.
bool is_temp_name(const std::string& name) {
  if (name.rfind(".tmp-", 0) != 0) return false;
  size_t p = 5, n = digits_at(name, p);
  if (n == 0 || name.size() < p + n + 1 || name[p + n] != '-') return false;
  p += n + 1;
  if (!is_hex(name, p, 16) || name.size() < p + 17 || name[p + 16] != '-') return false;
  return digits_at(name, p + 17) > 0;
}

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

int open_read(const std::string& path) { return ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC); }

// Reads from `fd` until end of file (at most `limit` bytes, more counts as failure). Returns 0
// or an errno value.
int read_fd(int fd, std::string* out, size_t limit) {
  out->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    out->append(buf, size_t(n));
    if (out->size() > limit) return EFBIG;
  }
}

// Reads a whole file (at most `limit` bytes). Returns 0 or an errno value.
int read_file(const std::string& path, std::string* out, size_t limit = size_t(-1)) {
  int fd = open_read(path);
  if (fd < 0) return errno;
  int err = read_fd(fd, out, limit);
  ::close(fd);
  return err;
}

// The first `n` bytes of a file ("" when it cannot be read).
std::string read_prefix(const std::string& path, size_t n) {
  std::string s;
  int fd = open_read(path);
  if (fd < 0) return s;
  s.resize(n);
  ssize_t got = ::read(fd, &s[0], n);
  ::close(fd);
  s.resize(got > 0 ? size_t(got) : 0);
  return s;
}

// Size and sha256 of an open file, streamed from its start.
bool hash_fd(int fd, unsigned long long* size, std::string* sha) {
  if (::lseek(fd, 0, SEEK_SET) != 0) return false;
  Sha256 h;
  unsigned long long total = 0;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) break;
    h.update(buf, size_t(n));
    total += size_t(n);
  }
  *size = total;
  *sha = h.hex_digest();
  return true;
}

// A file we may load code or data from: a regular file of ours (or root's) that nobody else
// can write.
bool trusted_file(const struct stat& st) {
  return S_ISREG(st.st_mode) && (st.st_uid == ::geteuid() || st.st_uid == 0) && !(st.st_mode & (S_IWGRP | S_IWOTH));
}

// Creates `path` holding `data`; fails if it exists (temp names are unique). Returns 0 or errno;
// on failure nothing is left.
int write_new_file(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
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

// The error for a failed write into the cache directory `dir`.
UserError write_error(const std::string& dir, int err) {
  if (is_disk_full(err))
    return UserError("cache", "the disk holding the rkeops cache '" + dir + "' is full (" + errno_text(err) +
                                  "): free some space, or choose another directory with set_rkeops_cache_dir()");
  return UserError("cache", "cannot write to the rkeops cache '" + dir + "': " + errno_text(err));
}

// Serialises the steps that must not interleave across processes and threads: publishing an
// entry (sidecar then artifact) and deleting a damaged one (so that a reader never deletes an
// entry a writer has just made good). flock() excludes separate open() calls even within one
// process. If locking is impossible (some network file systems, a read-only cache) we go on
// without it: the entries still verify themselves, the worst case is a needless rebuild.
class DirLock {
 public:
  explicit DirLock(const std::string& dir) {
    fd_ = ::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
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

// The sidecar of `key` at `meta_path`, parsed; false when absent or damaged.
bool read_sidecar(const std::string& key, const std::string& meta_path, Header* h, int* err) {
  std::string meta;
  *err = read_file(meta_path, &meta, kMaxHeader);
  size_t at;
  return *err == 0 && parse_header(meta, h, &at) && at == meta.size() && h->key == key;
}

// Checks an artifact against its sidecar; returns an open descriptor on the checked file, or -1.
// Sets `*absent` when neither file exists.
int verify_file(const std::string& key, const std::string& path, bool* absent) {
  Header h;
  int meta_err;
  bool meta_ok = read_sidecar(key, path + ".meta", &h, &meta_err);
  int fd = open_read(path);
  *absent = (meta_err == ENOENT && fd < 0 && errno == ENOENT);
  if (fd < 0) return -1;
  struct stat st;
  unsigned long long size;
  std::string sha;
  if (meta_ok && ::fstat(fd, &st) == 0 && trusted_file(st) && (unsigned long long)st.st_size == h.size &&
      hash_fd(fd, &size, &sha) && size == h.size && sha == h.sha)
    return fd;
  ::close(fd);
  return -1;
}

// Checks a header+payload file; on success puts the payload in `*payload`.
bool verify_bytes(const std::string& key, const std::string& path, std::string* payload, bool* absent) {
  int fd = open_read(path);
  *absent = fd < 0 && errno == ENOENT;
  if (fd < 0) return false;
  struct stat st;
  std::string text;
  bool ok = ::fstat(fd, &st) == 0 && trusted_file(st) && read_fd(fd, &text, size_t(-1)) == 0;
  ::close(fd);
  Header h;
  size_t at;
  if (!ok || !parse_header(text, &h, &at) || h.key != key || text.size() - at != h.size) return false;
  if (sha256_hex(text.data() + at, text.size() - at) != h.sha) return false;
  payload->assign(text, at, std::string::npos);
  return true;
}

// mkdir -p with mode 0700; chmod afterwards because the umask may have cleared owner bits.
// Sets `*created` when the last component was made here.
int make_dirs(const std::string& dir, bool* created) {
  *created = false;
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) == 0) {
      ::chmod(prefix.c_str(), 0700);
      *created = pos == dir.size();
    } else if (errno != EEXIST) {
      int err = errno;
      struct stat st;  // a read-only file system may say EROFS for a directory that exists
      if (::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
      return err;
    }
  }
  return 0;
}

// Refuses (UserError "cache") a cache directory that another user could change or replace:
// `dir` (absolute, no symbolic links) and every directory above it must be owned by us or root;
// `dir` writable by nobody else; the others writable by nobody else unless sticky.
void check_trusted(const std::string& dir) {
  const uid_t me = ::geteuid();
  const std::string cache = "the rkeops cache directory '" + dir + "'";
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    const bool last = pos == dir.size();
    const std::string p = pos == 1 && !last ? "/" : dir.substr(0, pos);
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) throw UserError("cache", "cannot open '" + p + "': " + errno_text(errno));
    if (!S_ISDIR(st.st_mode))
      throw UserError("cache", last ? cache + " exists but is not a directory"
                                    : "'" + p + "', above " + cache + ", is not a directory (it changed meanwhile)");
    const std::string who = last ? cache : "'" + p + "', which holds " + cache + ",";
    if (st.st_uid != me && st.st_uid != 0)
      throw UserError("cache", who + " belongs to another user (uid " + std::to_string(st.st_uid) +
                                   "); compiled code is loaded from the cache, so it and the directories above it "
                                   "must be yours (or root's): choose another directory with set_rkeops_cache_dir()");
    if (!(st.st_mode & (S_IWGRP | S_IWOTH))) continue;
    if (last)
      throw UserError("cache", cache +
                                   " is writable by other users; compiled code is loaded from it, "
                                   "so make it private (chmod 700) or choose another directory");
    if (!(st.st_mode & S_ISVTX))
      throw UserError("cache", who +
                                   " is writable by other users (and not sticky, as /tmp is): they could replace "
                                   "the cache with their own and get their code run; make it private (chmod go-w) or "
                                   "choose another cache directory with set_rkeops_cache_dir()");
  }
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

// A fresh name `.tmp-<pid>-<16 hex>-<n><suffix>`: pid and counter separate the processes and
// threads of one host, the random token separates hosts.
std::string temp_name(const std::string& suffix) {
  RK_ASSERT(suffix.find('/') == std::string::npos, "temp file suffix must not contain '/': " + suffix);
  static std::atomic<unsigned long long> counter{0};
  return ".tmp-" + std::to_string(::getpid()) + "-" + process_token() + "-" + std::to_string(counter.fetch_add(1)) +
         suffix;
}

// What a name in the cache directory is, judged by name and content (never through a link).
enum class Kind { Foreign, Marker, Lock, Temp, Artifact, Sidecar, Bytes, Failed };

Kind classify(const std::string& dir, const std::string& name, const struct stat& st) {
  if (S_ISDIR(st.st_mode)) return name == "failed" ? Kind::Failed : Kind::Foreign;
  if (!S_ISREG(st.st_mode)) return Kind::Foreign;  // links, sockets, ...
  if (name == kMarker) return Kind::Marker;
  if (name == ".lock") return Kind::Lock;
  if (is_temp_name(name)) return Kind::Temp;
  if (!is_entry_name(name)) return Kind::Foreign;
  const std::string key = name.substr(0, 64), path = dir + "/" + name;
  Header h;
  int err;
  if (is_sidecar_name(name)) return read_sidecar(key, path, &h, &err) ? Kind::Sidecar : Kind::Foreign;
  if (read_sidecar(key, path + ".meta", &h, &err)) return Kind::Artifact;
  size_t at;
  if (parse_header(read_prefix(path, kMaxHeader + 1), &h, &at) && h.key == key) return Kind::Bytes;
  return Kind::Foreign;
}

// A source dumped by dump_failed: `<16 hex><ext>`, starting as dumps do.
bool is_dump(const std::string& dir, const std::string& name, const struct stat& st) {
  if (!S_ISREG(st.st_mode) || !is_hex(name, 0, 16) || (name.size() > 16 && name[16] != '.')) return false;
  return st.st_size == 0 || read_prefix(dir + "/" + name, sizeof kDumpStart - 1) == kDumpStart;
}

// The names in `dir` with their lstat() (entries that vanish meanwhile are skipped).
std::vector<std::pair<std::string, struct stat>> list_dir(const std::string& dir, int* err) {
  std::vector<std::pair<std::string, struct stat>> out;
  *err = 0;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    *err = errno;
    return out;
  }
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    struct stat st;
    if (n == "." || n == ".." || ::lstat((dir + "/" + n).c_str(), &st) != 0) continue;
    out.emplace_back(n, st);
  }
  ::closedir(d);
  return out;
}

void remove_file(const std::string& path, std::string* first_err) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT && first_err->empty())
    *first_err = path + ": " + errno_text(errno);
}

}  // namespace

bool is_disk_full(int err) {
#ifdef EDQUOT
  if (err == EDQUOT) return true;
#endif
  return err == ENOSPC;
}

VerifiedFile::~VerifiedFile() {
  if (fd_ >= 0) ::close(fd_);
}

VerifiedFile& VerifiedFile::operator=(VerifiedFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

DiskCache::DiskCache(std::string dir) : dir_(std::move(dir)) {
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  if (dir_.empty()) throw UserError("cache", "the rkeops cache directory is an empty string");
  if (dir_[0] != '/') {
    // Made absolute once: the R session may setwd() while the cache is in use.
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd)) dir_ = std::string(cwd) + "/" + dir_;
  }
  const std::string where = "the rkeops cache directory '" + dir_ + "'";
  bool created = false;
  if (int err = make_dirs(dir_, &created)) throw UserError("cache", "cannot create " + where + ": " + errno_text(err));
  // Checked and used through its real path, so that no link can be swapped in afterwards.
  char real[PATH_MAX];
  if (!::realpath(dir_.c_str(), real)) throw UserError("cache", "cannot open " + where + ": " + errno_text(errno));
  dir_ = real;
  check_trusted(dir_);
  writable_ = ::access(dir_.c_str(), W_OK | X_OK) == 0;
  if (created && writable_) ensure_marker();
}

void DiskCache::ensure_marker() {
  const std::string marker = dir_ + "/" + kMarker;
  struct stat st;
  if (::lstat(marker.c_str(), &st) == 0) return;
  // Only a directory that holds nothing but what rkeops writes is claimed.
  int err;
  for (auto& e : list_dir(dir_, &err))
    if (classify(dir_, e.first, e.second) == Kind::Foreign) return;
  if (err) return;
  const std::string tmp = temp_path("");
  if (write_new_file(tmp, kMarkerText) != 0 || ::rename(tmp.c_str(), marker.c_str()) != 0) ::unlink(tmp.c_str());
}

std::string DiskCache::entry_path(const std::string& key, const std::string& ext) const {
  check_name(key, ext);
  return dir_ + "/" + key + ext;
}

VerifiedFile DiskCache::lookup_file(const std::string& key, const std::string& ext) {
  const std::string path = entry_path(key, ext);
  bool absent;
  int fd = verify_file(key, path, &absent);
  if (fd >= 0) return VerifiedFile(fd, path);
  if (absent) return VerifiedFile();
  // Looked damaged, but a writer may have been between its two renames: look again under the lock.
  DirLock lock(dir_);
  fd = verify_file(key, path, &absent);
  if (fd >= 0) return VerifiedFile(fd, path);
  if (!absent && writable_) {
    log_msg("rkeops cache: removing damaged entry " + path);
    ::unlink(path.c_str());
    ::unlink((path + ".meta").c_str());
  }
  return VerifiedFile();
}

VerifiedFile DiskCache::store_file(const std::string& key, const std::string& ext, const std::string& tmp_path) {
  const std::string path = entry_path(key, ext);
  size_t slash = tmp_path.rfind('/');
  RK_ASSERT(slash != std::string::npos && tmp_path.substr(0, slash) == dir_,
            "store_file needs a temp file inside the cache directory (use temp_path()): " + tmp_path);
  // The descriptor opened now is the file published, hashed and returned: what is loaded later
  // is this file, whatever happens to its name.
  int fd = open_read(tmp_path);
  RK_ASSERT(fd >= 0, "compiled file to cache cannot be read: " + tmp_path);
  VerifiedFile file(fd, path);
  struct stat st;
  unsigned long long size;
  std::string sha;
  // A compiler creates its output with the umask's mode: keep it out of reach of others.
  bool ok =
      ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::fchmod(fd, st.st_mode & 0755) == 0 && hash_fd(fd, &size, &sha);
  if (!ok) ::unlink(tmp_path.c_str());
  RK_ASSERT(ok, "compiled file to cache cannot be read: " + tmp_path);

  // The sidecar is written in full before anyone can see it; it is published before the artifact
  // so that any visible artifact already has its description.
  const std::string meta_tmp = temp_path(".meta");
  if (int err = write_new_file(meta_tmp, make_header(key, size, sha))) {
    ::unlink(tmp_path.c_str());
    throw write_error(dir_, err);
  }
  ensure_marker();
  // Always publish, even over an entry that verifies: the caller rebuilds when a verified file
  // fails to load, and the rebuild must win. Processes that already loaded the old file keep it
  // (rename replaces the name; the old file lives on while mapped).
  DirLock lock(dir_);
  if (::rename(meta_tmp.c_str(), (path + ".meta").c_str()) != 0 || ::rename(tmp_path.c_str(), path.c_str()) != 0) {
    int err = errno;
    // Leave no sidecar that describes a library we failed to put in place.
    ::unlink(meta_tmp.c_str());
    ::unlink(tmp_path.c_str());
    ::unlink((path + ".meta").c_str());
    throw UserError("cache", "cannot store " + path + " in the rkeops cache: " + errno_text(err));
  }
  return file;
}

bool DiskCache::load_bytes(const std::string& key, const std::string& ext, std::string* out) {
  const std::string path = entry_path(key, ext);
  bool absent;
  if (verify_bytes(key, path, out, &absent)) return true;
  if (absent) return false;
  DirLock lock(dir_);
  if (verify_bytes(key, path, out, &absent)) return true;
  if (!absent && writable_) {
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
    throw write_error(dir_, err);
  ensure_marker();
  // Under the lock so that load_bytes' "re-check, then delete" never removes a fresh file.
  DirLock lock(dir_);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw UserError("cache", "cannot store " + path + " in the rkeops cache: " + errno_text(err));
  }
}

std::string DiskCache::temp_path(const std::string& suffix) { return dir_ + "/" + temp_name(suffix); }

std::string DiskCache::write_temp(const std::string& suffix, const std::string& data) {
  const std::string path = temp_path(suffix);
  if (int err = write_new_file(path, data)) throw write_error(dir_, err);
  return path;
}

std::string DiskCache::failed_dir() {
  const std::string failed = dir_ + "/failed";
  if (::mkdir(failed.c_str(), 0700) != 0 && errno != EEXIST)
    throw UserError("cache", "cannot create '" + failed + "': " + errno_text(errno));
  struct stat st;
  if (::lstat(failed.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & (S_IWGRP | S_IWOTH)))
    throw UserError("cache", "'" + failed + "' is not a private directory of yours (a symbolic link?)");
  return failed;
}

std::string DiskCache::dump_failed(const std::string& key, const std::string& ext, const std::string& source,
                                   std::string* note) {
  std::string text;
  text.reserve(source.size() + source.size() / 8);
  int line = 0;
  size_t start = 0;
  char num[16];
  while (start < source.size()) {
    size_t end = source.find('\n', start);
    if (end == std::string::npos) end = source.size();
    std::snprintf(num, sizeof num, "%5d| ", ++line);
    text.append(num).append(source, start, end - start).push_back('\n');
    start = end + 1;
  }
  std::string dir;
  try {
    dir = failed_dir();
  } catch (const UserError& e) {
    *note = std::string("the source could not be dumped: ") + e.what();
    return "";
  }
  // A new file renamed into place, as every write here.
  const std::string path = dir + "/" + key.substr(0, 16) + ext, tmp = dir + "/" + temp_name("");
  int err = write_new_file(tmp, text);
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err == 0) {
    *note = "source dumped to " + path;
    return path;
  }
  ::unlink(tmp.c_str());
  *note =
      "the source could not be dumped to " + path + ": " + (is_disk_full(err) ? "the disk is full" : errno_text(err));
  return "";
}

DiskCache::Stats DiskCache::stats() const {
  Stats s{0, 0};
  int err;
  for (auto& e : list_dir(dir_, &err)) {
    Kind k = classify(dir_, e.first, e.second);
    if (k != Kind::Artifact && k != Kind::Bytes) continue;
    ++s.files;
    s.bytes += (long long)e.second.st_size;
  }
  return s;
}

void DiskCache::clean(bool remove_dir) {
  const std::string where = "the rkeops cache directory '" + dir_ + "'";
  if (!writable_) throw UserError("cache", where + " is read-only: nothing was removed");
  DirLock lock(dir_);
  int err;
  auto entries = list_dir(dir_, &err);
  if (err) throw UserError("cache", "cannot read " + where + ": " + errno_text(err));
  // Judge every name first: removing a sidecar changes what its artifact looks like.
  std::vector<std::string> doomed, foreign;
  bool marked = false;
  const time_t now = ::time(nullptr);
  for (auto& e : entries) {
    const std::string& name = e.first;
    switch (classify(dir_, name, e.second)) {
      case Kind::Artifact:
      case Kind::Sidecar:
      case Kind::Bytes:
        doomed.push_back(name);
        break;
      case Kind::Temp:
        if (remove_dir || now - e.second.st_mtime > kStaleTempSeconds) doomed.push_back(name);
        break;
      case Kind::Failed: {
        const std::string failed = dir_ + "/failed";
        for (auto& f : list_dir(failed, &err)) {
          if (is_dump(failed, f.first, f.second) || (is_temp_name(f.first) && S_ISREG(f.second.st_mode)))
            doomed.push_back("failed/" + f.first);
          else
            foreign.push_back("failed/" + f.first);
        }
        break;
      }
      case Kind::Marker:
        marked = true;
        break;
      case Kind::Lock:
        break;
      case Kind::Foreign:
        foreign.push_back(name);
        break;
    }
  }
  std::string first_err;
  for (const std::string& name : doomed) remove_file(dir_ + "/" + name, &first_err);
  if (!first_err.empty()) throw UserError("cache", "cannot clean the rkeops cache: " + first_err);
  if (!remove_dir) return;
  if (!foreign.empty()) {
    std::string names;
    for (size_t k = 0; k < foreign.size() && k < 5; ++k) names += (k ? ", " : "") + foreign[k];
    if (foreign.size() > 5) names += ", ... (" + std::to_string(foreign.size()) + " in all)";
    throw UserError("cache", "not removing " + where + ": it holds files rkeops did not write (" + names +
                                 "); the kernels were removed, the directory and those files were left in place");
  }
  if (!marked)
    throw UserError("cache", "not removing " + where + ": rkeops did not create it (it has no " + kMarker +
                                 " marker); the kernels were removed, the directory was left in place");
  if (::rmdir((dir_ + "/failed").c_str()) != 0 && errno != ENOENT) first_err = dir_ + "/failed: " + errno_text(errno);
  remove_file(dir_ + "/" + kMarker, &first_err);
  remove_file(dir_ + "/.lock", &first_err);
  if (first_err.empty() && ::rmdir(dir_.c_str()) != 0) first_err = dir_ + ": " + errno_text(errno);
  if (!first_err.empty()) throw UserError("cache", "cannot remove the rkeops cache: " + first_err);
}

}  // namespace rkeops

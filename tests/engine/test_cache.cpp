// DiskCache: entries verify themselves, damage is deleted, and concurrent writers are safe.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "cache.h"
#include "dynlib.h"
#include "errors.h"
#include "kernel_store.h"
#include "sha256.h"

namespace fs = std::filesystem;
using rkeops::DiskCache;
using rkeops::sha256_hex;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

int mode_of(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? int(st.st_mode & 0777) : -1;
}

// Temp files left behind in the cache directory (there should be none after a store).
int count_temps(const std::string& dir) {
  int n = 0;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) ++n;
  return n;
}

// Runs `body` in a child process (to change its mounts, or to be killed) and returns its exit
// status: 0 passed, 77 skipped, anything else a failure (the child prints why).
int in_child(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int rc = 1;
    try {
      rc = body();
    } catch (const std::exception& e) { std::fprintf(stderr, "child: %s\n", e.what()); }
    std::fflush(nullptr);
    ::_exit(rc);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// In a child: mounts of its own (root only), so that what it mounts is seen by nobody else.
bool private_mounts() {
  return ::geteuid() == 0 && ::unshare(CLONE_NEWNS) == 0 &&
         ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}

// In a child: makes `dir` read-only for it (root: a read-only bind mount; others: chmod 555).
bool make_read_only(const std::string& dir) {
  if (::geteuid() != 0) return ::chmod(dir.c_str(), 0555) == 0;
  return private_mounts() && ::mount(dir.c_str(), dir.c_str(), nullptr, MS_BIND, nullptr) == 0 &&
         ::mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) == 0;
}

// The kind and message of the error opening `dir` as a cache throws ({"", ""} when none).
std::pair<std::string, std::string> open_error(const std::string& dir) {
  try {
    DiskCache c(dir);
  } catch (const rkeops::UserError& e) { return {e.kind, e.what()}; }
  return {"", ""};
}

// A tiny shared library whose `which()` returns `n`, built as a temp file of `c` ("" when no C
// compiler is there).
std::string tiny_lib(DiskCache& c, int n) {
  const std::string src = c.temp_path(".c"), so = c.temp_path(".so");
  spit(src, "int which(void) { return " + std::to_string(n) + "; }\n");
  int rc = std::system(("cc -shared -fPIC -o '" + so + "' '" + src + "' 2>/dev/null").c_str());
  fs::remove(src);
  return rc == 0 ? so : "";
}
int which(rkeops::DynLib& lib) {
  auto fn = reinterpret_cast<int (*)()>(lib.sym("which"));
  return fn ? fn() : -1;
}

// The path of the verified entry, or "".
std::string lookup(DiskCache& c, const std::string& key, const std::string& ext) {
  rkeops::VerifiedFile f = c.lookup_file(key, ext);
  return f.ok() ? f.path() : "";
}

// Content with a NUL and high bytes, so text-mode mistakes would show.
std::string payload(const std::string& tag, size_t n = 5000) {
  std::string s =
      "\x7f"
      "ELF" +
      tag + std::string(1, '\0');
  for (size_t i = 0; s.size() < n; ++i) s.push_back(char((i * 37 + tag.size()) & 0xff));
  return s;
}

class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rkeops-cache-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/user/cache";  // parents do not exist yet
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(root_, fs::perms::owner_all, ec);
    for (auto it = fs::recursive_directory_iterator(root_, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_directory() && !it->is_symlink()) fs::permissions(it->path(), fs::perms::owner_all, ec);
    fs::remove_all(root_, ec);
  }
  // Stores `content` under `key` the way a compiler would: write a temp file, then store_file.
  std::string store(DiskCache& c, const std::string& key, const std::string& content, const std::string& ext = ".so") {
    std::string tmp = c.temp_path(ext);
    spit(tmp, content);
    return c.store_file(key, ext, tmp).path();
  }
  std::string root_, dir_;
};

const std::string kKey = sha256_hex("kernel one");
const std::string kKey2 = sha256_hex("kernel two");

TEST_F(CacheTest, CreatesDirectoryAndParentsWithMode0700) {
  mode_t old = ::umask(022);
  DiskCache c(dir_);
  ::umask(old);
  EXPECT_EQ(c.dir(), dir_);
  EXPECT_EQ(mode_of(dir_), 0700);
  EXPECT_EQ(mode_of(root_ + "/user"), 0700);
  EXPECT_EQ(DiskCache(dir_ + "///").dir(), dir_);  // reopening, trailing slashes dropped
}

TEST_F(CacheTest, UncreatableDirectoryIsUserErrorNamingIt) {
  spit(root_ + "/plainfile", "x");
  const std::string bad = root_ + "/plainfile/cache";
  try {
    DiskCache c(bad);
    FAIL() << "no error";
  } catch (const rkeops::UserError& e) {
    EXPECT_EQ(e.kind, "cache");
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

TEST_F(CacheTest, DirectoryWritableByOthersIsRefused) {
  fs::create_directories(dir_);
  ::chmod(dir_.c_str(), 0777);
  EXPECT_THROW(DiskCache c(dir_), rkeops::UserError);
}

TEST_F(CacheTest, StoreLookupRoundtrip) {
  DiskCache c(dir_);
  EXPECT_EQ(lookup(c, kKey, ".so"), "");
  const std::string content = payload("a");
  std::string tmp = c.temp_path(".so");
  spit(tmp, content);
  std::string path = c.store_file(kKey, ".so", tmp).path();
  EXPECT_EQ(path, dir_ + "/" + kKey + ".so");
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(count_temps(dir_), 0);
  EXPECT_EQ(lookup(c, kKey, ".so"), path);
  EXPECT_EQ(slurp(path), content);
  EXPECT_EQ(slurp(path + ".meta").rfind("RKEOPS-CACHE 1 " + kKey + " ", 0), 0u);
  EXPECT_EQ(lookup(c, kKey, ".dll"), "");  // the extension is part of the entry
  EXPECT_EQ(lookup(c, kKey2, ".so"), "");
}

// A verified file that fails to load is rebuilt by the caller: the new build must replace it.
TEST_F(CacheTest, StoreReplacesExistingEntry) {
  DiskCache c(dir_);
  std::string path = store(c, kKey, payload("first"));
  EXPECT_EQ(store(c, kKey, payload("second")), path);
  EXPECT_EQ(lookup(c, kKey, ".so"), path);
  EXPECT_EQ(slurp(path), payload("second"));
  EXPECT_EQ(count_temps(dir_), 0);
}

TEST_F(CacheTest, TruncatedArtifactIsRemoved) {
  DiskCache c(dir_);
  std::string path = store(c, kKey, payload("a"));
  fs::resize_file(path, 100);
  EXPECT_EQ(lookup(c, kKey, ".so"), "");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".meta"));
  // and it can be rebuilt
  EXPECT_EQ(lookup(c, kKey, ".so"), "");
  store(c, kKey, payload("a"));
  EXPECT_EQ(lookup(c, kKey, ".so"), path);
}

TEST_F(CacheTest, SameSizeCorruptionIsRemoved) {
  DiskCache c(dir_);
  std::string path = store(c, kKey, payload("a"));
  std::string bytes = slurp(path);
  bytes[1234] ^= 1;
  spit(path, bytes);
  EXPECT_EQ(lookup(c, kKey, ".so"), "");
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(CacheTest, DamagedOrMissingSidecarRemovesEntry) {
  DiskCache c(dir_);
  const std::string path = dir_ + "/" + kKey + ".so";
  auto damaged = [&](const std::string& what, const std::function<void()>& damage) {
    store(c, kKey, payload("a"));
    ASSERT_EQ(lookup(c, kKey, ".so"), path);
    damage();
    EXPECT_EQ(lookup(c, kKey, ".so"), "") << what;
    EXPECT_FALSE(fs::exists(path)) << what;
    EXPECT_FALSE(fs::exists(path + ".meta")) << what;
  };
  damaged("garbage", [&] { spit(path + ".meta", "not a header\n"); });
  damaged("empty", [&] { spit(path + ".meta", ""); });
  damaged("missing", [&] { fs::remove(path + ".meta"); });
  damaged("wrong magic", [&] {
    std::string m = slurp(path + ".meta");
    m[0] = 'X';
    spit(path + ".meta", m);
  });
  damaged("future version", [&] {
    std::string m = slurp(path + ".meta");
    m.replace(m.find(" 1 "), 3, " 2 ");
    spit(path + ".meta", m);
  });
  damaged("trailing junk", [&] { spit(path + ".meta", slurp(path + ".meta") + "x"); });
  damaged("another key's sidecar", [&] {
    std::string other = store(c, kKey2, payload("a"));  // same bytes, different key
    fs::copy_file(other + ".meta", path + ".meta", fs::copy_options::overwrite_existing);
  });
  damaged("artifact missing", [&] { fs::remove(path); });
}

TEST_F(CacheTest, BytesRoundtrip) {
  DiskCache c(dir_);
  std::string out = "stale";
  EXPECT_FALSE(c.load_bytes(kKey, ".cubin", &out));
  const std::string bytes = payload("cubin", 20000);
  c.store_bytes(kKey, ".cubin", bytes);
  ASSERT_TRUE(c.load_bytes(kKey, ".cubin", &out));
  EXPECT_EQ(out, bytes);
  c.store_bytes(kKey2, ".cubin", "");  // empty payloads are valid
  ASSERT_TRUE(c.load_bytes(kKey2, ".cubin", &out));
  EXPECT_EQ(out, "");
  EXPECT_EQ(count_temps(dir_), 0);
}

TEST_F(CacheTest, DamagedBytesAreRemoved) {
  DiskCache c(dir_);
  const std::string path = dir_ + "/" + kKey + ".cubin";
  const std::string bytes = payload("cubin");
  auto damaged = [&](const std::string& what, const std::function<std::string(std::string)>& damage) {
    c.store_bytes(kKey, ".cubin", bytes);
    spit(path, damage(slurp(path)));
    std::string out;
    EXPECT_FALSE(c.load_bytes(kKey, ".cubin", &out)) << what;
    EXPECT_FALSE(fs::exists(path)) << what;
  };
  damaged("magic", [](std::string s) {
    s[3] = 'x';
    return s;
  });
  damaged("version", [](std::string s) {
    s[13] = '7';
    return s;
  });
  damaged("no newline", [](std::string) { return std::string(300, 'R'); });
  damaged("empty file", [](std::string) { return std::string(); });
  damaged("truncated payload", [](std::string s) { return s.substr(0, s.size() - 1); });
  damaged("extra byte", [](std::string s) { return s + "!"; });
  damaged("flipped payload bit", [](std::string s) {
    s[s.size() - 10] ^= 4;
    return s;
  });
  damaged("other key", [&](std::string) {
    c.store_bytes(kKey2, ".cubin", bytes);
    return slurp(dir_ + "/" + kKey2 + ".cubin");
  });
}

TEST_F(CacheTest, TempPathsAreUniqueAndInside) {
  DiskCache c(dir_);
  std::vector<std::vector<std::string>> got(4);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) got[t].push_back(c.temp_path(".cpp"));
    });
  for (auto& t : ts) t.join();
  std::set<std::string> all;
  for (auto& v : got)
    for (auto& p : v) {
      EXPECT_EQ(p.rfind(dir_ + "/.tmp-", 0), 0u);
      EXPECT_EQ(p.substr(p.size() - 4), ".cpp");
      all.insert(p);
    }
  EXPECT_EQ(all.size(), 4000u);
}

TEST_F(CacheTest, MisuseIsInternalError) {
  DiskCache c(dir_);
  spit(root_ + "/outside.so", "x");
  EXPECT_THROW(c.store_file(kKey, ".so", root_ + "/outside.so"), rkeops::InternalError);
  EXPECT_THROW(lookup(c, "../../etc/passwd", ".so"), rkeops::InternalError);
  EXPECT_THROW(lookup(c, kKey, "/x"), rkeops::InternalError);
  EXPECT_THROW(lookup(c, kKey, ".so.meta"), rkeops::InternalError);
  EXPECT_THROW(c.store_file(kKey, ".so", c.temp_path(".so")),
               rkeops::InternalError);  // never written
}

TEST_F(CacheTest, ThreadsStoringSameKey) {
  DiskCache c(dir_);
  for (int round = 0; round < 40; ++round) {
    const std::string key = sha256_hex("round " + std::to_string(round));
    std::vector<std::string> paths(8);
    std::vector<int> loaded(8, 0);
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t)
      ts.emplace_back([&, t] {
        // Different bytes per writer: compilers need not be deterministic.
        paths[t] = store(c, key, payload("thread" + std::to_string(t)));
        c.store_bytes(key, ".bin", payload("bytes" + std::to_string(t)));
        std::string out;
        loaded[t] = c.load_bytes(key, ".bin", &out) && out.rfind(
                                                           "\x7f"
                                                           "ELFbytes",
                                                           0) == 0;
      });
    for (auto& t : ts) t.join();
    std::string path = lookup(c, key, ".so");
    ASSERT_EQ(path, dir_ + "/" + key + ".so");
    for (int t = 0; t < 8; ++t) {
      EXPECT_EQ(paths[t], path);
      EXPECT_TRUE(loaded[t]);
    }
    EXPECT_EQ(slurp(path).rfind("\x7f"
                                "ELFthread",
                                0),
              0u);
  }
  EXPECT_EQ(count_temps(dir_), 0);
}

TEST_F(CacheTest, ProcessesStoringSameKey) {
  { DiskCache create_before_forking(dir_); }
  const int kProcs = 4, kRounds = 100;
  std::vector<pid_t> kids;
  for (int k = 0; k < kProcs; ++k) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // Child: no gtest assertions here, the exit status is the verdict.
      int bad = 0;
      try {
        DiskCache c(dir_);
        for (int r = 0; r < kRounds; ++r) {
          const std::string key = sha256_hex("proc round " + std::to_string(r));
          std::string path = store(c, key, payload("proc" + std::to_string(k)));
          std::string found = lookup(c, key, ".so");
          if (found != path || slurp(found).rfind("\x7f"
                                                  "ELFproc",
                                                  0) != 0)
            ++bad;
          c.store_bytes(key, ".bin", payload("bytes" + std::to_string(k)));
          std::string out;
          if (!c.load_bytes(key, ".bin", &out) || out.rfind("\x7f"
                                                            "ELFbytes",
                                                            0) != 0)
            ++bad;
        }
      } catch (...) { bad = 100; }
      ::_exit(bad == 0 ? 0 : 1);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child failed, status " << status;
  }
  DiskCache c(dir_);
  for (int r = 0; r < kRounds; ++r) {
    const std::string key = sha256_hex("proc round " + std::to_string(r));
    EXPECT_NE(lookup(c, key, ".so"), "");
    std::string out;
    EXPECT_TRUE(c.load_bytes(key, ".bin", &out));
  }
  EXPECT_EQ(count_temps(dir_), 0);
  EXPECT_EQ(c.stats().files, 2 * kRounds);
}

TEST_F(CacheTest, StatsAndClean) {
  DiskCache c(dir_);
  EXPECT_EQ(c.stats().files, 0);
  store(c, kKey, payload("a", 1000));
  store(c, kKey2, payload("b", 3000));
  c.store_bytes(kKey, ".cubin", "xyz");
  DiskCache::Stats s = c.stats();
  EXPECT_EQ(s.files, 3);
  EXPECT_EQ(s.bytes, 1000 + 3000 + (long long)fs::file_size(dir_ + "/" + kKey + ".cubin"));

  const std::string fresh_tmp = c.temp_path(".so"), old_tmp = c.temp_path(".so");
  spit(fresh_tmp, "compiling");
  spit(old_tmp, "abandoned");
  struct timeval two_hours_ago[2];
  ::gettimeofday(&two_hours_ago[0], nullptr);
  two_hours_ago[0].tv_sec -= 7200;
  two_hours_ago[1] = two_hours_ago[0];
  ASSERT_EQ(::utimes(old_tmp.c_str(), two_hours_ago), 0);
  const std::string failed = c.failed_dir();
  EXPECT_EQ(failed, dir_ + "/failed");
  EXPECT_EQ(mode_of(failed), 0700);
  std::string note;
  const std::string dump = c.dump_failed(kKey, ".cpp", "int main(\n", &note);
  EXPECT_EQ(note, "source dumped to " + dump);
  EXPECT_EQ(dump, failed + "/" + kKey.substr(0, 16) + ".cpp");
  EXPECT_EQ(slurp(dump), "    1| int main(\n");
  spit(failed + "/kernel.cpp", "int main(");  // not a dump: the user's
  fs::create_directories(failed + "/sub");
  spit(failed + "/sub/x.cu", "x");
  spit(dir_ + "/notes.txt", "not ours");
  spit(dir_ + "/" + kKey2, "a file named like a key, without a sidecar");
  EXPECT_EQ(c.stats().files, 3);  // temp files, failed/ and foreign files are not artifacts

  c.clean();
  EXPECT_EQ(c.stats().files, 0);
  EXPECT_EQ(c.stats().bytes, 0);
  EXPECT_TRUE(fs::is_directory(dir_));
  EXPECT_FALSE(fs::exists(dir_ + "/" + kKey + ".so.meta"));
  EXPECT_TRUE(fs::exists(fresh_tmp));
  EXPECT_FALSE(fs::exists(old_tmp));
  EXPECT_FALSE(fs::exists(dump));
  EXPECT_TRUE(fs::exists(failed + "/kernel.cpp"));
  EXPECT_TRUE(fs::exists(failed + "/sub/x.cu"));
  EXPECT_TRUE(fs::exists(dir_ + "/notes.txt"));
  EXPECT_TRUE(fs::exists(dir_ + "/" + kKey2));
  EXPECT_EQ(lookup(c, kKey, ".so"), "");
  store(c, kKey, payload("a"));  // still usable
  EXPECT_NE(lookup(c, kKey, ".so"), "");
}

// ---- issue 16: the trust boundary, data loss, in-place writes, read-only caches, full disks ----

// Another user could replace a cache under a directory they can write to (unless it is sticky).
TEST_F(CacheTest, EnclosingDirectoryOthersCanWriteIsRefusedUnlessSticky) {
  const std::string shared = root_ + "/shared", dir = shared + "/me/cache";
  fs::create_directories(shared);
  for (int mode : {0777, 0770, 0702}) {
    ::chmod(shared.c_str(), mode);
    auto err = open_error(dir);
    EXPECT_EQ(err.first, "cache") << std::oct << mode;
    EXPECT_NE(err.second.find("'" + shared + "', which holds the rkeops cache directory"), std::string::npos)
        << err.second;
    EXPECT_NE(err.second.find("writable by other users"), std::string::npos) << err.second;
  }
  ::chmod(shared.c_str(), 01777);  // as /tmp: others cannot rename or remove what is ours
  EXPECT_EQ(open_error(dir).first, "");
  ::chmod(shared.c_str(), 0755);
  EXPECT_EQ(open_error(dir).first, "");
}

TEST_F(CacheTest, DirectoriesOfAnotherUserAreRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to give a directory to another user";
  const std::string theirs = root_ + "/theirs", dir = theirs + "/cache";
  fs::create_directories(dir);
  ASSERT_EQ(::chown(theirs.c_str(), 65534, 65534), 0);
  auto err = open_error(dir);
  EXPECT_EQ(err.first, "cache");
  EXPECT_NE(err.second.find("'" + theirs + "', which holds"), std::string::npos) << err.second;
  EXPECT_NE(err.second.find("belongs to another user"), std::string::npos) << err.second;
  ASSERT_EQ(::chown(theirs.c_str(), 0, 0), 0);
  EXPECT_EQ(open_error(dir).first, "");
  ASSERT_EQ(::chown(dir.c_str(), 65534, 65534), 0);  // the cache itself
  EXPECT_NE(open_error(dir).second.find("the rkeops cache directory '" + dir + "' belongs to another user"),
            std::string::npos);
}

// A link is judged by where it leads, and the cache is then used through that place.
TEST_F(CacheTest, LinkedCacheIsJudgedWhereItLeads) {
  const std::string shared = root_ + "/shared", good = root_ + "/mine/cache";
  fs::create_directories(shared + "/cache");
  fs::create_directories(good);
  ::chmod(shared.c_str(), 0777);
  fs::create_directory_symlink(shared + "/cache", root_ + "/bad-link");
  fs::create_directory_symlink(good, root_ + "/good-link");
  EXPECT_EQ(open_error(root_ + "/bad-link").first, "cache");
  DiskCache c(root_ + "/good-link");
  EXPECT_EQ(c.dir(), fs::canonical(good).string());
}

// What is loaded is the file whose bytes were verified, even when the name is swapped between
// the check and the load; and two libraries loaded through the same descriptor number in turn
// are two libraries.
TEST_F(CacheTest, LoadsTheFileItVerified) {
  DiskCache c(dir_);
  const std::string a = tiny_lib(c, 1), b = tiny_lib(c, 2), b2 = tiny_lib(c, 3);
  if (a.empty() || b.empty() || b2.empty()) GTEST_SKIP() << "no C compiler (cc)";
  c.store_file(kKey, ".so", a);
  rkeops::VerifiedFile va = c.lookup_file(kKey, ".so");
  ASSERT_TRUE(va.ok());
  fs::rename(b, dir_ + "/" + kKey + ".so");
  rkeops::DynLib la = rkeops::DynLib::open_file(va.fd(), va.path());
  ASSERT_TRUE(la.ok()) << la.error();
  EXPECT_EQ(la.path(), dir_ + "/" + kKey + ".so");
  EXPECT_EQ(which(la), 1);
  const int fd_a = va.fd();
  va = rkeops::VerifiedFile();  // its descriptor number is free again
  rkeops::VerifiedFile vb = c.store_file(kKey2, ".so", b2);
  EXPECT_EQ(vb.fd(), fd_a);  // (not required, but what makes the second half a real test)
  rkeops::DynLib lb = rkeops::DynLib::open_file(vb.fd(), vb.path());
  ASSERT_TRUE(lb.ok()) << lb.error();
  EXPECT_EQ(which(lb), 3);
  EXPECT_EQ(which(la), 1);
}

// A rebuild publishes a new file under the old name: a process that has the old one mapped (as
// the loader maps a library) keeps its bytes.
TEST_F(CacheTest, RebuildReplacesTheNameNeverTheFile) {
  DiskCache c(dir_);
  const std::string path = store(c, kKey, payload("first"));
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  struct stat before;
  ASSERT_EQ(::fstat(fd, &before), 0);
  void* map = ::mmap(nullptr, size_t(before.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  store(c, kKey, payload("first") + "and more");  // bigger: an in-place write would extend the file
  store(c, kKey, payload("second"));
  EXPECT_EQ(std::string(static_cast<char*>(map), size_t(before.st_size)), payload("first"));
  struct stat after;
  ASSERT_EQ(::fstat(fd, &after), 0);
  EXPECT_EQ(after.st_size, before.st_size);
  EXPECT_EQ(slurp(path), payload("second"));
  ::munmap(map, size_t(before.st_size));
  ::close(fd);
  // the same for payloads and dumps
  c.store_bytes(kKey, ".cubin", "one");
  fd = ::open((dir_ + "/" + kKey + ".cubin").c_str(), O_RDONLY);
  c.store_bytes(kKey, ".cubin", "two, longer");
  std::string old;
  char buf[256];
  ssize_t n = ::read(fd, buf, sizeof buf);
  old.assign(buf, n > 0 ? size_t(n) : 0);
  ::close(fd);
  EXPECT_EQ(old.substr(old.find('\n') + 1), "one");
  std::string note;
  const std::string dump = c.dump_failed(kKey, ".cpp", "first\n", &note);
  fd = ::open(dump.c_str(), O_RDONLY);
  c.dump_failed(kKey, ".cpp", "second\n", &note);
  n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  EXPECT_EQ(std::string(buf, n > 0 ? size_t(n) : 0), "    1| first\n");
  EXPECT_EQ(count_temps(dir_), 0);
  EXPECT_EQ(count_temps(dir_ + "/failed"), 0);
}

// Cleaning never follows a link, so nothing outside the cache is ever removed.
TEST_F(CacheTest, CleanNeverFollowsLinks) {
  DiskCache c(dir_);
  const std::string elsewhere = root_ + "/precious";
  fs::create_directories(elsewhere);
  const std::vector<std::string> precious = {elsewhere + "/" + kKey + ".so", elsewhere + "/0123456789abcdef.cpp",
                                             elsewhere + "/notes.txt"};
  spit(precious[0], "named like a kernel");
  spit(precious[1], "    1| named and shaped like a dump");
  spit(precious[2], "notes");
  fs::create_directory_symlink(elsewhere, dir_ + "/failed");
  fs::create_symlink(precious[0], dir_ + "/" + kKey + ".so");
  store(c, kKey2, payload("mine"));
  c.clean();
  for (const std::string& p : precious) EXPECT_TRUE(fs::exists(p)) << p;
  EXPECT_TRUE(fs::is_symlink(dir_ + "/failed"));
  EXPECT_EQ(c.stats().files, 0);
  // nor is a dump written through it
  std::string note;
  EXPECT_EQ(c.dump_failed(kKey, ".cpp", "int x;\n", &note), "");
  EXPECT_NE(note.find("could not be dumped"), std::string::npos) << note;
  EXPECT_EQ(fs::file_size(precious[1]), std::string("    1| named and shaped like a dump").size());
  try {
    c.clean(true);
    FAIL() << "removed a directory holding links";
  } catch (const rkeops::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("failed"), std::string::npos) << e.what();
  }
  for (const std::string& p : precious) EXPECT_TRUE(fs::exists(p)) << p;
}

// The directory goes only when rkeops made it and nothing else is in it.
TEST_F(CacheTest, RemovingTheDirectory) {
  {
    DiskCache c(dir_);  // made here: marked
    EXPECT_TRUE(fs::exists(dir_ + "/.rkeops-cache"));
    store(c, kKey, payload("a"));
    c.store_bytes(kKey2, ".cubin", "x");
    std::string note;
    c.dump_failed(kKey, ".cpp", "int x\n", &note);
    spit(c.temp_path(".so"), "being compiled");
  }
  DiskCache(dir_).clean(true);
  EXPECT_FALSE(fs::exists(dir_));
  EXPECT_TRUE(fs::is_directory(root_ + "/user"));

  // A directory of the user's, with files of theirs: the kernels go, the rest stays.
  const std::string theirs = root_ + "/projects";
  fs::create_directories(theirs);
  spit(theirs + "/thesis.tex", "\\documentclass");
  {
    DiskCache c(theirs);
    store(c, kKey, payload("a"));
    EXPECT_FALSE(fs::exists(theirs + "/.rkeops-cache"));
  }
  try {
    DiskCache(theirs).clean(true);
    FAIL() << "removed a directory holding other files";
  } catch (const rkeops::UserError& e) {
    EXPECT_EQ(e.kind, "cache");
    EXPECT_NE(std::string(e.what()).find("thesis.tex"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::exists(theirs + "/thesis.tex"));
  EXPECT_EQ(DiskCache(theirs).stats().files, 0);
  fs::remove(theirs + "/thesis.tex");
  try {  // still theirs: rkeops did not create it
    DiskCache(theirs).clean(true);
    FAIL() << "removed a directory rkeops did not make";
  } catch (const rkeops::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("did not create"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_directory(theirs));

  // An empty directory that rkeops first stores in becomes a cache.
  const std::string empty = root_ + "/empty";
  fs::create_directories(empty);
  {
    DiskCache c(empty);
    EXPECT_FALSE(fs::exists(empty + "/.rkeops-cache"));
    c.store_bytes(kKey, ".cubin", "x");
    EXPECT_TRUE(fs::exists(empty + "/.rkeops-cache"));
  }
  DiskCache(empty).clean(true);
  EXPECT_FALSE(fs::exists(empty));
}

// A read-only cache is read (nothing deleted, nothing written), and what it lacks is built into
// the fallback directory.
TEST_F(CacheTest, ReadOnlyCacheIsReadNotWritten) {
  std::string good;
  {
    DiskCache c(dir_);
    good = store(c, kKey, payload("a"));
    store(c, kKey2, payload("b"));
    c.store_bytes(kKey, ".bin", "cached");
  }
  fs::resize_file(dir_ + "/" + kKey2 + ".so", 10);  // damaged
  const std::string fallback = root_ + "/fallback";
  int rc = in_child([&] {
    if (!make_read_only(dir_)) return 77;
    DiskCache c(dir_);
    if (c.writable()) return 2;
    if (lookup(c, kKey, ".so") != good) return 3;
    if (lookup(c, kKey2, ".so") != "" || !fs::exists(dir_ + "/" + kKey2 + ".so")) return 4;  // refused, kept
    try {
      c.clean();
      return 5;
    } catch (const rkeops::UserError& e) {
      if (std::string(e.what()).find("read-only") == std::string::npos) return 6;
    }
    int builds = 0;
    std::string built_in;
    rkeops::ArtifactSteps st;
    st.what = "test artifact";
    st.canonical = "F";
    st.load_cached = [&](DiskCache& cc, std::string*) {
      std::string out;
      return cc.load_bytes(st.key, ".bin", &out);
    };
    st.build = [&](DiskCache& cc) {
      ++builds;
      built_in = cc.dir();
      cc.store_bytes(st.key, ".bin", "built");
    };
    st.key = kKey;
    if (!rkeops::load_or_build(st, {dir_, fallback}, false).from_disk || builds != 0) return 7;
    st.key = kKey2;
    if (rkeops::load_or_build(st, {dir_, fallback}, false).from_disk || builds != 1) return 8;
    if (built_in != fallback) return 9;
    if (!rkeops::load_or_build(st, {dir_, fallback}, false).from_disk || builds != 1) return 10;  // found there
    try {  // no fallback: a clear error
      rkeops::load_or_build(st, {dir_, ""}, false);
      return 11;
    } catch (const rkeops::UserError& e) {
      if (e.kind != "cache") return 12;
    }
    return 0;
  });
  if (rc == 77) GTEST_SKIP() << "cannot make a directory read-only here";
  EXPECT_EQ(rc, 0);
}

// A full disk is said as such, and no partial file is left behind.
TEST_F(CacheTest, FullDiskIsSaidAndLeavesNoFile) {
  fs::create_directories(dir_);
  int rc = in_child([&] {
    if (!private_mounts() || ::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=64k,mode=0700") != 0) return 77;
    DiskCache c(dir_);
    const std::string big(1 << 20, 'x');
    auto says_full = [](const std::function<void()>& f) {
      try {
        f();
      } catch (const rkeops::UserError& e) {
        if (e.kind == "cache" && std::string(e.what()).find("is full") != std::string::npos) return true;
        std::fprintf(stderr, "child: %s\n", e.what());
      }
      return false;
    };
    if (!says_full([&] { c.store_bytes(kKey, ".cubin", big); })) return 2;
    if (!says_full([&] { c.write_temp(".cpp", big); })) return 3;
    std::string note;
    if (c.dump_failed(kKey, ".cpp", big, &note) != "" || note.find("the disk is full") == std::string::npos) return 4;
    if (count_temps(dir_) != 0 || !fs::is_empty(dir_ + "/failed")) return 5;
    c.store_bytes(kKey, ".cubin", "small");  // the space was given back
    std::string out;
    return c.load_bytes(kKey, ".cubin", &out) && out == "small" ? 0 : 6;
  });
  if (rc == 77) GTEST_SKIP() << "needs root to mount a small file system";
  EXPECT_EQ(rc, 0);
}

}  // namespace

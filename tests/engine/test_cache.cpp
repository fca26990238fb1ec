// DiskCache: entries verify themselves, damage is deleted, and concurrent writers are safe.
#include <gtest/gtest.h>
#include <stdlib.h>
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
#include "errors.h"
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
    fs::remove_all(root_, ec);
  }
  // Stores `content` under `key` the way a compiler would: write a temp file, then store_file.
  std::string store(DiskCache& c, const std::string& key, const std::string& content, const std::string& ext = ".so") {
    std::string tmp = c.temp_path(ext);
    spit(tmp, content);
    return c.store_file(key, ext, tmp);
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
  EXPECT_EQ(c.lookup_file(kKey, ".so"), "");
  const std::string content = payload("a");
  std::string tmp = c.temp_path(".so");
  spit(tmp, content);
  std::string path = c.store_file(kKey, ".so", tmp);
  EXPECT_EQ(path, dir_ + "/" + kKey + ".so");
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(count_temps(dir_), 0);
  EXPECT_EQ(c.lookup_file(kKey, ".so"), path);
  EXPECT_EQ(slurp(path), content);
  EXPECT_EQ(slurp(path + ".meta").rfind("RKEOPS-CACHE 1 " + kKey + " ", 0), 0u);
  EXPECT_EQ(c.lookup_file(kKey, ".dll"), "");  // the extension is part of the entry
  EXPECT_EQ(c.lookup_file(kKey2, ".so"), "");
}

// A verified file that fails to load is rebuilt by the caller: the new build must replace it.
TEST_F(CacheTest, StoreReplacesExistingEntry) {
  DiskCache c(dir_);
  std::string path = store(c, kKey, payload("first"));
  EXPECT_EQ(store(c, kKey, payload("second")), path);
  EXPECT_EQ(c.lookup_file(kKey, ".so"), path);
  EXPECT_EQ(slurp(path), payload("second"));
  EXPECT_EQ(count_temps(dir_), 0);
}

TEST_F(CacheTest, TruncatedArtifactIsRemoved) {
  DiskCache c(dir_);
  std::string path = store(c, kKey, payload("a"));
  fs::resize_file(path, 100);
  EXPECT_EQ(c.lookup_file(kKey, ".so"), "");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".meta"));
  // and it can be rebuilt
  EXPECT_EQ(c.lookup_file(kKey, ".so"), "");
  store(c, kKey, payload("a"));
  EXPECT_EQ(c.lookup_file(kKey, ".so"), path);
}

TEST_F(CacheTest, SameSizeCorruptionIsRemoved) {
  DiskCache c(dir_);
  std::string path = store(c, kKey, payload("a"));
  std::string bytes = slurp(path);
  bytes[1234] ^= 1;
  spit(path, bytes);
  EXPECT_EQ(c.lookup_file(kKey, ".so"), "");
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(CacheTest, DamagedOrMissingSidecarRemovesEntry) {
  DiskCache c(dir_);
  const std::string path = dir_ + "/" + kKey + ".so";
  auto damaged = [&](const std::string& what, const std::function<void()>& damage) {
    store(c, kKey, payload("a"));
    ASSERT_EQ(c.lookup_file(kKey, ".so"), path);
    damage();
    EXPECT_EQ(c.lookup_file(kKey, ".so"), "") << what;
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
  EXPECT_THROW(c.lookup_file("../../etc/passwd", ".so"), rkeops::InternalError);
  EXPECT_THROW(c.lookup_file(kKey, "/x"), rkeops::InternalError);
  EXPECT_THROW(c.lookup_file(kKey, ".so.meta"), rkeops::InternalError);
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
    std::string path = c.lookup_file(key, ".so");
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
          std::string found = c.lookup_file(key, ".so");
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
    EXPECT_NE(c.lookup_file(key, ".so"), "");
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
  spit(failed + "/kernel.cpp", "int main(");
  fs::create_directories(failed + "/sub");
  spit(failed + "/sub/x.cu", "x");
  spit(dir_ + "/notes.txt", "not ours");
  EXPECT_EQ(c.stats().files, 3);  // temp files, failed/ and foreign files are not artifacts

  c.clean();
  EXPECT_EQ(c.stats().files, 0);
  EXPECT_EQ(c.stats().bytes, 0);
  EXPECT_TRUE(fs::is_directory(dir_));
  EXPECT_FALSE(fs::exists(dir_ + "/" + kKey + ".so.meta"));
  EXPECT_TRUE(fs::exists(fresh_tmp));
  EXPECT_FALSE(fs::exists(old_tmp));
  EXPECT_TRUE(fs::is_empty(failed));
  EXPECT_TRUE(fs::exists(dir_ + "/notes.txt"));
  EXPECT_EQ(c.lookup_file(kKey, ".so"), "");
  store(c, kKey, payload("a"));  // still usable
  EXPECT_NE(c.lookup_file(kKey, ".so"), "");
}

}  // namespace

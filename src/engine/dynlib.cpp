#include "dynlib.h"

#include <sys/stat.h>

#include <mutex>
#include <set>

#ifdef _WIN32
#include <windows.h>
#else
#include <dlfcn.h>
#include <unistd.h>
#endif

namespace rkeops {
namespace {

#ifdef _WIN32
// Windows has no dlerror(): report the error code, which is what the loader gives us.
void* os_open(const std::string& path, std::string* err) {
  HMODULE h = LoadLibraryA(path.c_str());
  if (!h) *err = path + ": LoadLibrary failed with error " + std::to_string(GetLastError());
  return reinterpret_cast<void*>(h);
}
void* os_sym(void* h, const char* name, std::string* err) {
  FARPROC p = GetProcAddress(reinterpret_cast<HMODULE>(h), name);
  if (!p) *err = std::string("symbol ") + name + " not found (error " + std::to_string(GetLastError()) + ")";
  return reinterpret_cast<void*>(p);
}
void os_close(void* h) { FreeLibrary(reinterpret_cast<HMODULE>(h)); }
#else
std::string last_dlerror() {
  const char* e = dlerror();
  return e ? e : "unknown dynamic loader error";
}
void* os_open(const std::string& path, std::string* err) {
  // RTLD_LOCAL: CUDA's symbols must not leak into R's global namespace.
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) *err = last_dlerror();
  return h;
}
void* os_sym(void* h, const char* name, std::string* err) {
  dlerror();  // clear a stale message so the check below is about this lookup
  void* p = dlsym(h, name);
  if (!p) *err = last_dlerror();
  return p;
}
void os_close(void* h) { dlclose(h); }
#endif

// A path (not a bare name left to the loader's search) that names no file.
bool absent_path(const std::string& c) {
  struct stat st;
  return c.find_first_of("/\\") != std::string::npos && stat(c.c_str(), &st) != 0;
}

}  // namespace

DynLib::DynLib(const std::string& path) {
  handle_ = os_open(path, &error_);
  if (handle_) path_ = path;
}

DynLib DynLib::open_first(const std::vector<std::string>& candidates) {
  // Absent files are only listed, so that the loader's text for a file that exists but
  // does not load (wrong architecture, missing dependency) is not lost among "not found"s.
  std::string errors, absent;
  for (const std::string& c : candidates) {
    if (absent_path(c)) {
      absent += (absent.empty() ? "" : ", ") + c;
      continue;
    }
    DynLib lib(c);
    if (lib.ok()) return lib;
    errors += (errors.empty() ? "" : "; ") + lib.error();
  }
  DynLib none;
  none.error_ = errors;
  if (!absent.empty()) none.error_ += (errors.empty() ? "" : "; ") + ("no file " + absent);
  if (candidates.empty()) none.error_ = "no candidate library names";
  return none;
}

DynLib DynLib::open_file(int fd, const std::string& path) {
#ifdef _WIN32
  (void)fd;
  return DynLib(path);
#else
  struct stat want, st;
  if (fstat(fd, &want) != 0) {
    DynLib none;
    none.error_ = path + ": the verified file is not open";
    return none;
  }
#ifdef __linux__
  // The loader knows a library by the name it was opened with: "/proc/self/fd/N" would hand back
  // a library loaded earlier through a descriptor N since closed. So each number is used once
  // per process (copies of `fd` are made until one is new).
  static std::mutex mu;
  static std::set<int> used;
  std::lock_guard<std::mutex> lock(mu);
  std::vector<int> copies;
  int n = fd;
  while (used.count(n) && copies.size() < 4096) {
    n = dup(fd);
    if (n < 0) break;
    copies.push_back(n);
  }
  const std::string self = "/proc/self/fd/" + std::to_string(n);
  DynLib lib;
  if (n >= 0 && !used.count(n) && stat(self.c_str(), &st) == 0 && st.st_dev == want.st_dev &&
      st.st_ino == want.st_ino) {
    lib = DynLib(self);
    if (lib.ok()) used.insert(n);
    lib.path_ = path;
  }
  for (int c : copies) ::close(c);
  if (lib.ok() || !lib.error_.empty()) return lib;
#endif
  // No /proc: load by name, then make sure the name still denotes the verified file.
  DynLib byname(path);
  if (byname.ok() && !(stat(path.c_str(), &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino)) {
    byname.close();
    byname.error_ = path + " was replaced while it was being loaded";
  }
  return byname;
#endif
}

DynLib::~DynLib() { close(); }

DynLib::DynLib(DynLib&& other) noexcept
    : handle_(other.handle_), path_(std::move(other.path_)), error_(std::move(other.error_)) {
  other.handle_ = nullptr;
}

DynLib& DynLib::operator=(DynLib&& other) noexcept {
  if (this != &other) {
    close();
    handle_ = other.handle_;
    path_ = std::move(other.path_);
    error_ = std::move(other.error_);
    other.handle_ = nullptr;
  }
  return *this;
}

void* DynLib::sym(const char* name) {
  if (!handle_) {
    error_ = std::string("symbol ") + name + " requested from a library that is not open";
    return nullptr;
  }
  return os_sym(handle_, name, &error_);
}

void DynLib::close() {
  if (handle_) os_close(handle_);
  handle_ = nullptr;
}

}  // namespace rkeops

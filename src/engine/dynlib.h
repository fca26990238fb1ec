// RAII handle on a shared library opened at run time. CUDA's driver and NVRTC come in
// through here so that rkeops builds and runs (on the CPU) where CUDA is absent.
#pragma once
#include <string>
#include <vector>

namespace rkeops {

// One dlopen()ed library: opened RTLD_NOW | RTLD_LOCAL, closed on destruction; movable only.
class DynLib {
 public:
  DynLib() = default;
  // Opens `path` (a file path or a bare soname searched on the default path).
  explicit DynLib(const std::string& path);
  // Opens the first candidate that loads; if none does, error() lists every dlerror text.
  static DynLib open_first(const std::vector<std::string>& candidates);
  // Opens the library that the open descriptor `fd` refers to (a file verified through it), not
  // whatever `path` names now: on Linux through /proc/self/fd; elsewhere through `path`, then
  // refused (closed, error() set) unless `path` still names that file. path() is `path`.
  static DynLib open_file(int fd, const std::string& path);
  ~DynLib();
  DynLib(DynLib&& other) noexcept;
  DynLib& operator=(DynLib&& other) noexcept;
  DynLib(const DynLib&) = delete;
  DynLib& operator=(const DynLib&) = delete;

  // True when a library is open.
  bool ok() const { return handle_ != nullptr; }
  // The candidate that was opened (empty when none).
  const std::string& path() const { return path_; }
  // The loader's text for the last failed open or sym() (empty when none failed).
  const std::string& error() const { return error_; }
  // Address of `name`, or nullptr (and error() set) when the library lacks it.
  void* sym(const char* name);

 private:
  void close();
  void* handle_ = nullptr;
  std::string path_, error_;
};

}  // namespace rkeops

#include "nvrtc.h"

#include <algorithm>
#include <cstdlib>

#ifndef _WIN32
#include <dlfcn.h>
#endif

#include "errors.h"
#include "log.h"

namespace rkeops {
namespace {

// Directory of the file that defines `addr` ("" when unknown): where libnvrtc really is,
// even when it was found through the loader's search path.
std::string directory_of(void* addr) {
#ifndef _WIN32
  Dl_info info;
  if (addr && dladdr(addr, &info) && info.dli_fname) {
    std::string f = info.dli_fname;
    size_t slash = f.rfind('/');
    if (slash != std::string::npos) return f.substr(0, slash + 1);
  }
#else
  (void)addr;
#endif
  return "";
}

// Destroys the program on every path out of compile().
struct ProgramGuard {
  const Nvrtc* nv;
  nvrtcProgram prog = nullptr;
  ~ProgramGuard() {
    if (prog) nv->nvrtcDestroyProgram(&prog);
  }
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace

std::vector<std::string> Nvrtc::default_candidates() {
  std::vector<std::string> roots;
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"}) {
    const char* v = std::getenv(var);
    if (v && *v) roots.emplace_back(v);
  }
  roots.emplace_back("/usr/local/cuda");
#ifdef _WIN32
  const std::vector<std::string> dirs = {"/bin/x64/", "/bin/"};
  const std::vector<std::string> names = {"nvrtc64_130_0.dll", "nvrtc64_120_0.dll"};
#else
  // lib/ holds the libraries in conda, pip wheels and some CUDA 13 layouts.
  const std::vector<std::string> dirs = {"/lib64/", "/lib/", "/lib/x64/"};
  const std::vector<std::string> names = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
#endif
  std::vector<std::string> out;
  for (std::string root : roots) {
    while (root.size() > 1 && (root.back() == '/' || root.back() == '\\')) root.pop_back();
    for (const std::string& d : dirs)
      for (const std::string& n : names) {
        std::string c = root + d + n;
        if (std::find(out.begin(), out.end(), c) == out.end()) out.push_back(c);
      }
  }
  out.insert(out.end(), names.begin(), names.end());
  return out;
}

Nvrtc* Nvrtc::get(std::string* why_not) {
  static std::string reason;
  // Loaded once, never unloaded (compiled kernels may be in flight in other threads).
  static Nvrtc* instance = load(default_candidates(), &reason).release();
  if (!instance && why_not) *why_not = reason;
  return instance;
}

std::unique_ptr<Nvrtc> Nvrtc::load(const std::vector<std::string>& candidates, std::string* why_not) {
  std::string why;
  try {
    std::unique_ptr<Nvrtc> nv(new Nvrtc());
    nv->lib_ = DynLib::open_first(candidates);
    if (!nv->lib_.ok())
      why =
          "NVRTC (libnvrtc, from the CUDA toolkit 12 or 13) could not be loaded; set "
          "CUDA_HOME to the toolkit's directory. Loader said: " +
          nv->lib_.error();
#define RK_NVRTC_FN(ret, name, symbol, params)                                                               \
  if (why.empty()) {                                                                                         \
    nv->name = reinterpret_cast<decltype(nv->name)>(nv->lib_.sym(symbol));                                   \
    if (!nv->name)                                                                                           \
      why = std::string("NVRTC library ") + nv->lib_.path() + " lacks " + symbol + " (" + nv->lib_.error() + \
            "): it is too old, CUDA 12 or later is needed";                                                  \
  }
#include "nvrtc_functions.def"
#undef RK_NVRTC_FN
    if (why.empty() && nv->nvrtcVersion(&nv->major_, &nv->minor_) != NVRTC_SUCCESS)
      why = "nvrtcVersion failed for " + nv->lib_.path();
    int n = 0;
    if (why.empty() && nv->nvrtcGetNumSupportedArchs(&n) == NVRTC_SUCCESS && n > 0) {
      nv->archs_.resize(n);
      if (nv->nvrtcGetSupportedArchs(nv->archs_.data()) != NVRTC_SUCCESS) nv->archs_.clear();
      std::sort(nv->archs_.begin(), nv->archs_.end());
    }
    if (why.empty() && nv->archs_.empty()) why = "nvrtcGetSupportedArchs failed for " + nv->lib_.path();
    if (why.empty()) {
#ifndef _WIN32
      // libnvrtc opens its builtins by bare soname; one already loaded with that soname is
      // reused, so loading it from libnvrtc's directory covers toolkits outside the search
      // path. Failure is fine: the loader may still find it on its own.
      std::string dir = directory_of(reinterpret_cast<void*>(nv->nvrtcVersion));
      if (!dir.empty()) nv->builtins_ = DynLib(dir + "libnvrtc-builtins.so." + nv->version());
#endif
      log_msg("rkeops: NVRTC " + nv->version() + " from " + nv->lib_.path());
      return nv;
    }
  } catch (const std::exception& e) {  // bad_alloc and the like: report, never throw
    why = std::string("loading NVRTC failed: ") + e.what();
  }
  if (why_not) *why_not = why;
  return nullptr;
}

std::string Nvrtc::version() const { return std::to_string(major_) + "." + std::to_string(minor_); }

int Nvrtc::best_arch_for(int cc) const {
  int best = -1;
  for (int a : archs_)
    if (a <= cc) best = a;
  return best;
}

std::vector<std::string> Nvrtc::options(int cc_major, int cc_minor, const std::vector<std::string>& extra_options,
                                        bool want_cubin) {
  std::string arch = std::to_string(cc_major) + std::to_string(cc_minor);
  // sm_XY makes NVRTC emit a CUBIN (no driver JIT at load); compute_XY only PTX.
  std::vector<std::string> opts = {(want_cubin ? "-arch=sm_" : "-arch=compute_") + arch, "--std=c++17",
                                   "-default-device"};
  opts.insert(opts.end(), extra_options.begin(), extra_options.end());
  return opts;
}

std::string Nvrtc::compile(const std::string& source, const std::string& name, int cc_major, int cc_minor,
                           const std::vector<std::string>& extra_options, bool want_cubin) const {
  const std::vector<std::string> opts = options(cc_major, cc_minor, extra_options, want_cubin);
  const std::string compiler = "NVRTC " + version();
  ProgramGuard g{this};
  nvrtcResult r = nvrtcCreateProgram(&g.prog, source.c_str(), name.c_str(), 0, nullptr, nullptr);
  if (r != NVRTC_SUCCESS) throw InternalError(std::string("nvrtcCreateProgram failed: ") + nvrtcGetErrorString(r));
  std::vector<const char*> argv;
  for (const std::string& o : opts) argv.push_back(o.c_str());
  r = nvrtcCompileProgram(g.prog, static_cast<int>(argv.size()), argv.data());

  // Always read the log: on success it may hold warnings worth showing when verbose.
  std::string log;
  size_t log_size = 0;
  if (nvrtcGetProgramLogSize(g.prog, &log_size) == NVRTC_SUCCESS && log_size > 1) {
    log.resize(log_size);
    if (nvrtcGetProgramLog(g.prog, &log[0]) != NVRTC_SUCCESS) log.clear();
    while (!log.empty() && (log.back() == '\0' || log.back() == '\n')) log.pop_back();
  }
  if (r != NVRTC_SUCCESS)
    throw CompileError(compiler + " could not compile " + name + " (" + opts[0] + "): " + nvrtcGetErrorString(r), log,
                       compiler, join(opts), "");
  if (!log.empty()) log_msg(compiler + " messages for " + name + ":\n" + log);

  size_t size = 0;
  std::string out;
  if (want_cubin) {
    r = nvrtcGetCUBINSize(g.prog, &size);
    if (r == NVRTC_SUCCESS && size > 0) {
      out.resize(size);
      r = nvrtcGetCUBIN(g.prog, &out[0]);
    }
  } else {
    r = nvrtcGetPTXSize(g.prog, &size);
    if (r == NVRTC_SUCCESS && size > 0) {
      out.resize(size);
      r = nvrtcGetPTX(g.prog, &out[0]);
      while (!out.empty() && out.back() == '\0') out.pop_back();  // c_str() adds it back
    }
  }
  if (r != NVRTC_SUCCESS || out.empty())
    throw InternalError(compiler + " compiled " + name + " but returned no " + (want_cubin ? "CUBIN" : "PTX") + ": " +
                        nvrtcGetErrorString(r));
  return out;
}

}  // namespace rkeops

// NVRTC, opened with dlopen at run time (never linked), compiles generated CUDA source.
//
// Verified with NVRTC 13.0 (no #include in the source, no -I option):
// - expf, exp, logf, log, sqrt, rsqrtf, rsqrt, erf, lgammaf, log1p, expm1, pow, powf, atan2,
//   tanh, sinpi, fmaxf, fmax, fminf, fabs, floor, rint, fma, copysign, sincosf, min, max,
//   __expf, isnan, isinf, isfinite, signbit, nanf(""), nan(""), __int_as_float and
//   __longlong_as_double are all declared, for float and double.
// - exp(float), rsqrt(float) etc. pick the float overload (PTX has no f64 instruction).
// - std::exp, INFINITY, NAN, HUGE_VALF, FLT_MAX, CUDART_INF_F, __builtin_huge_valf are NOT
//   defined: write infinities as __int_as_float(0x7f800000) or
//   __longlong_as_double(0x7ff0000000000000LL).
// - "--std=c++17", "-std=c++17" (also c++20) and "-default-device" are accepted.
//   Without -default-device an unannotated function is a host function and is an error.
// - Supported archs: 75 80 86 87 88 89 90 100 103 110 120 121 (sm_70 is rejected with
//   NVRTC_ERROR_INVALID_OPTION and "invalid value for --gpu-architecture (-arch)").
// - The log names errors as "<program name>(<line>): error: ..." followed by the line.
// - libnvrtc dlopen()s libnvrtc-builtins.so.<major>.<minor> by bare name; we preload it
//   from libnvrtc's own directory so a toolkit outside the library path still works.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "cuda_types.h"
#include "dynlib.h"

namespace rkeops {

// The loaded NVRTC library: its entry points (from nvrtc_functions.def) plus compile().
class Nvrtc {
 public:
  // The process-wide NVRTC, loaded once; nullptr with the reason in *why_not when it cannot
  // be found or lacks a symbol. Never throws.
  static Nvrtc* get(std::string* why_not);
  // Loads from an explicit candidate list (tests); never throws.
  static std::unique_ptr<Nvrtc> load(const std::vector<std::string>& candidates, std::string* why_not);
  // Where get() looks: lib64/, lib/ and lib/x64/ under $CUDA_HOME, $CUDA_PATH and
  // /usr/local/cuda (sonames .13, .12, unversioned), then the bare sonames.
  static std::vector<std::string> default_candidates();

  // "13.0", from nvrtcVersion.
  std::string version() const;
  // The file that was opened.
  const std::string& library_path() const { return lib_.path(); }
  // Architectures this NVRTC can target, as 10*major+minor, ascending (e.g. 75, ..., 121).
  const std::vector<int>& supported_archs() const { return archs_; }
  // Highest supported arch <= cc (10*major+minor), or -1 if cc predates all of them.
  // A CUBIN for it runs on the device only when its major equals the device's; otherwise
  // compile PTX (want_cubin = false) and let the driver JIT it.
  int best_arch_for(int cc) const;
  // The full option list compile() passes: -arch, --std=c++17, -default-device, extra.
  // Part of the cache key.
  static std::vector<std::string> options(int cc_major, int cc_minor, const std::vector<std::string>& extra_options,
                                          bool want_cubin);
  // Compiles `source` (named `name` in the log) to a CUBIN for sm_XY, or to PTX for
  // compute_XY when want_cubin is false (text, without its trailing NUL). The log is always
  // fetched (logged when verbose); failure throws CompileError with the log, "NVRTC x.y",
  // the options and an empty source_path (the caller dumps the source).
  std::string compile(const std::string& source, const std::string& name, int cc_major, int cc_minor,
                      const std::vector<std::string>& extra_options, bool want_cubin) const;

#define RK_NVRTC_FN(ret, name, symbol, params) ret(*name) params = nullptr;
#include "nvrtc_functions.def"
#undef RK_NVRTC_FN

 private:
  Nvrtc() = default;
  DynLib lib_, builtins_;
  int major_ = 0, minor_ = 0;
  std::vector<int> archs_;
};

}  // namespace rkeops

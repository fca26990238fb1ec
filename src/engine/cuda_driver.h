// The CUDA driver API, opened with dlopen at run time (never linked): rkeops installs and
// runs on the CPU where no NVIDIA driver exists, and says why the GPU is unavailable.
#pragma once
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_types.h"
#include "dynlib.h"

namespace rkeops {

// The loaded driver library: its entry points (from cuda_functions.def) plus helpers.
class CudaDriver {
 public:
  // The process-wide driver, loaded and cuInit()ed once; nullptr with the reason in
  // *why_not when unusable (no library, missing required symbol, cuInit failure, no device).
  // Never throws.
  static CudaDriver* get(std::string* why_not);
  // Loads from an explicit candidate list, for tests with stub libraries; get() uses
  // libcuda.so.1 then libcuda.so. Never throws.
  static std::unique_ptr<CudaDriver> load(const std::vector<std::string>& candidates, std::string* why_not);

  // Properties of one GPU that kernel launch decisions depend on.
  struct DeviceInfo {
    int ordinal = 0;
    std::string name;
    int cc_major = 0, cc_minor = 0, sm_count = 0, max_threads_per_block = 0;
    int max_shared_per_block = 0, max_shared_per_block_optin = 0, max_regs_per_block = 0;
    int warp_size = 0;
    size_t total_mem = 0;
  };

  // Number of CUDA devices (at least 1 once get() succeeded).
  int device_count() const { return device_count_; }
  // Driver version as cuDriverGetVersion reports it, e.g. 13000 for CUDA 13.0.
  int driver_version() const { return driver_version_; }
  // The file that was opened, e.g. "libcuda.so.1".
  const std::string& library_path() const { return lib_.path(); }
  // Queries device `dev` (0-based); UserError("gpu") when it does not exist.
  DeviceInfo info(int dev);
  // Throws when r is not CUDA_SUCCESS: UserError("gpu") for problems of the machine or the
  // problem size (out of memory, no device, old driver), InternalError otherwise.
  void check(CUresult r, const char* what) const;
  // "CUDA_ERROR_X (driver's description)" for an error code.
  std::string error_text(CUresult r) const;
  // The primary context of `dev`, retained once per process and made current on the
  // calling thread (primary contexts are shared with other CUDA users in the process).
  CUcontext context(int dev);

  // Entry points; an optional one (cuda_functions.def) may be null: check before calling.
#define RK_CUDA_FN(name, symbol, required, params) CUresult(*name) params = nullptr;
#include "cuda_functions.def"
#undef RK_CUDA_FN

 private:
  CudaDriver() = default;
  void check_device(int dev) const;
  DynLib lib_;
  int device_count_ = 0, driver_version_ = 0;
  std::mutex mutex_;                 // guards contexts_
  std::vector<CUcontext> contexts_;  // retained primary contexts, by ordinal
};

}  // namespace rkeops

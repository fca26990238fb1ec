// What the GPU backend reports to its users (check_rkeops(), rkeops_use_gpu(), bench/gpu.R):
// the devices found, opening a context ahead of time, and the time split of the last run.
#pragma once
#include <string>
#include <vector>

namespace rkeops {

// What the GPU path can use (check_rkeops(), rkeops_use_gpu(), the automatic backend).
struct GpuStatus {
  bool usable = false;        // a device and NVRTC are both there
  std::string driver, nvrtc;  // a description, or why it is not usable
  struct Device {
    std::string name;
    int cc_major = 0, cc_minor = 0, sm_count = 0;
    double memory_gb = 0;
  };
  std::vector<Device> devices;
};
// Never throws. NVRTC is loaded only when a GPU is usable, or when `always_nvrtc` (so that a
// machine without a GPU does not pay for loading it when choosing the backend).
GpuStatus gpu_status(bool always_nvrtc = true);

// Creates (or finds) the CUDA context of GPU `device` and returns the seconds it took, so that
// rkeops_use_gpu() pays the per-process context creation rather than the first kernel call.
// Throws UserError("gpu") when the driver or the device is not usable.
double open_gpu_context(int device);

// Time split and resources of the last GPU run (bench/gpu.R reads them via rk_gpu_info()).
struct GpuRunStats {
  double convert_ms = 0, h2d_ms = 0, kernel_ms = 0, merge_ms = 0, d2h_ms = 0, total_ms = 0;
  double first_launch_ms = 0;  // host time from the start to the first launch of rk_reduce
  int regs = 0, local_bytes = 0, shared_bytes = 0;  // of rk_reduce (cuFuncGetAttribute)
  int block = 0, nsplit = 1, chunks_outer = 1, chunks_inner = 1;
  long long grid_x = 0;
  double compile_seconds = 0;
  bool valid = false;
};
GpuRunStats last_gpu_run();

}  // namespace rkeops

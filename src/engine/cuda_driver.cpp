#include "cuda_driver.h"

#include "errors.h"
#include "log.h"

namespace rkeops {
namespace {

std::vector<std::string> default_candidates() {
#ifdef _WIN32
  return {"nvcuda.dll"};
#else
  // The driver is installed with the kernel module, in the system library path: no
  // CUDA_HOME lookup, since a toolkit's stubs/libcuda.so there is not a driver.
  return {"libcuda.so.1", "libcuda.so"};
#endif
}

// Error codes that describe the machine or the size of the problem, not a bug in rkeops.
bool is_user_error(CUresult r) {
  switch (r) {
    case CUDA_ERROR_OUT_OF_MEMORY:
    case CUDA_ERROR_STUB_LIBRARY:
    case CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER:
    case CUDA_ERROR_DEVICE_UNAVAILABLE:
    case CUDA_ERROR_NO_DEVICE:
    case CUDA_ERROR_INVALID_DEVICE:
    case CUDA_ERROR_NO_BINARY_FOR_GPU:
    case CUDA_ERROR_ECC_UNCORRECTABLE:
    case CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
    case CUDA_ERROR_LAUNCH_TIMEOUT:
    case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
    case CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE:
      return true;
    default:
      return false;
  }
}

// What the user can do about an error, appended to the message.
const char* hint(CUresult r) {
  switch (r) {
    case CUDA_ERROR_OUT_OF_MEMORY:
      return "; free GPU memory or process the data in smaller pieces";
    case CUDA_ERROR_UNSUPPORTED_PTX_VERSION:
    case CUDA_ERROR_CALL_REQUIRES_NEWER_DRIVER:
      return "; the NVIDIA driver is older than the NVRTC in use: update the driver";
    case CUDA_ERROR_LAUNCH_TIMEOUT:
      return "; the display watchdog stopped a long kernel: use a GPU without a display";
    default:
      return "";
  }
}

// Names for the codes we classify, for when the driver cannot name them itself (the
// toolkit's stub libcuda answers every call, cuGetErrorName included, with error 34).
const char* known_name(CUresult r) {
  switch (r) {
    case CUDA_ERROR_OUT_OF_MEMORY:
      return "CUDA_ERROR_OUT_OF_MEMORY";
    case CUDA_ERROR_NOT_INITIALIZED:
      return "CUDA_ERROR_NOT_INITIALIZED";
    case CUDA_ERROR_STUB_LIBRARY:
      return "CUDA_ERROR_STUB_LIBRARY (a stub libcuda was loaded instead of the driver)";
    case CUDA_ERROR_NO_DEVICE:
      return "CUDA_ERROR_NO_DEVICE";
    case CUDA_ERROR_INVALID_DEVICE:
      return "CUDA_ERROR_INVALID_DEVICE";
    case CUDA_ERROR_SYSTEM_DRIVER_MISMATCH:
      return "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH";
    default:
      return nullptr;
  }
}

}  // namespace

CudaDriver* CudaDriver::get(std::string* why_not) {
  static std::string reason;
  // Loaded once and never unloaded: closing libcuda in a static destructor races with the
  // driver's own teardown at exit. Function-local static init is thread-safe.
  static CudaDriver* instance = load(default_candidates(), &reason).release();
  if (!instance && why_not) *why_not = reason;
  return instance;
}

std::unique_ptr<CudaDriver> CudaDriver::load(const std::vector<std::string>& candidates, std::string* why_not) {
  std::string why;
  try {
    std::unique_ptr<CudaDriver> d(new CudaDriver());
    d->lib_ = DynLib::open_first(candidates);
    if (!d->lib_.ok()) { why = "the CUDA driver library (libcuda) could not be loaded: " + d->lib_.error(); }
#define RK_CUDA_FN(name, symbol, required, params)                                                                   \
  if (why.empty()) {                                                                                                 \
    d->name = reinterpret_cast<decltype(d->name)>(d->lib_.sym(symbol));                                              \
    if (!d->name && (required))                                                                                      \
      why = std::string("the CUDA driver library ") + d->lib_.path() + " lacks " + symbol + " (" + d->lib_.error() + \
            "): the NVIDIA driver is too old";                                                                       \
  }
#include "cuda_functions.def"
#undef RK_CUDA_FN
    if (why.empty()) {
      CUresult r = d->cuInit(0);
      if (r != CUDA_SUCCESS) why = "cuInit failed: " + d->error_text(r);
    }
    if (why.empty()) {
      CUresult r = d->cuDeviceGetCount(&d->device_count_);
      if (r != CUDA_SUCCESS)
        why = "cuDeviceGetCount failed: " + d->error_text(r);
      else if (d->device_count_ < 1)
        why = "the CUDA driver found no GPU";
    }
    if (why.empty()) {
      if (!d->cuDriverGetVersion || d->cuDriverGetVersion(&d->driver_version_) != CUDA_SUCCESS) d->driver_version_ = 0;
      log_msg("rkeops: CUDA driver " + d->lib_.path() + " (version " + std::to_string(d->driver_version_) + "), " +
              std::to_string(d->device_count_) + " device(s)");
      return d;
    }
  } catch (const std::exception& e) {  // bad_alloc and the like: report, never throw
    why = std::string("loading the CUDA driver failed: ") + e.what();
  }
  if (why_not) *why_not = why;
  return nullptr;
}

std::string CudaDriver::error_text(CUresult r) const {
  const char* name = nullptr;
  const char* desc = nullptr;
  // Both work before cuInit; either may leave the pointer null for an unknown code.
  if (cuGetErrorName && cuGetErrorName(r, &name) != CUDA_SUCCESS) name = nullptr;
  if (cuGetErrorString && cuGetErrorString(r, &desc) != CUDA_SUCCESS) desc = nullptr;
  if (!name) name = known_name(r);
  std::string s = name ? name : "CUDA error " + std::to_string(r);
  if (desc) s += std::string(" (") + desc + ")";
  return s;
}

void CudaDriver::check(CUresult r, const char* what) const {
  if (r == CUDA_SUCCESS) return;
  std::string msg = std::string(what) + " failed: " + error_text(r) + hint(r);
  if (is_user_error(r)) throw UserError("gpu", msg);
  throw InternalError(msg);
}

void CudaDriver::check_device(int dev) const {
  if (dev < 0 || dev >= device_count_)
    throw UserError("gpu", "GPU device " + std::to_string(dev) +
                               " does not exist: devices are "
                               "numbered from 0 and this machine has " +
                               std::to_string(device_count_));
}

CudaDriver::DeviceInfo CudaDriver::info(int dev) {
  check_device(dev);
  CUdevice d = 0;
  check(cuDeviceGet(&d, dev), "cuDeviceGet");
  DeviceInfo out;
  out.ordinal = dev;
  char name[256] = {0};
  check(cuDeviceGetName(name, sizeof(name) - 1, d), "cuDeviceGetName");
  out.name = name;
  auto attr = [&](CUdevice_attribute a, int* v) { check(cuDeviceGetAttribute(v, a, d), "cuDeviceGetAttribute"); };
  attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, &out.cc_major);
  attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, &out.cc_minor);
  attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, &out.sm_count);
  attr(CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK, &out.max_threads_per_block);
  attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, &out.max_shared_per_block);
  attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, &out.max_shared_per_block_optin);
  attr(CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, &out.max_regs_per_block);
  attr(CU_DEVICE_ATTRIBUTE_WARP_SIZE, &out.warp_size);
  check(cuDeviceTotalMem(&out.total_mem, d), "cuDeviceTotalMem");
  return out;
}

CUcontext CudaDriver::context(int dev) {
  check_device(dev);
  CUcontext ctx = nullptr;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (contexts_.empty()) contexts_.assign(device_count_, nullptr);
    if (!contexts_[dev]) {
      CUdevice d = 0;
      check(cuDeviceGet(&d, dev), "cuDeviceGet");
      // Retained for the life of the process: kernels and buffers cached in the session
      // live in it, and releasing at exit would race with the driver's teardown.
      check(cuDevicePrimaryCtxRetain(&contexts_[dev], d), "cuDevicePrimaryCtxRetain");
    }
    ctx = contexts_[dev];
  }
  // Current-context state is per thread, so set it on every call (it is cheap).
  check(cuCtxSetCurrent(ctx), "cuCtxSetCurrent");
  return ctx;
}

}  // namespace rkeops

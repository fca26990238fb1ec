#include "device_matrix.h"

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "cuda_driver.h"
#include "errors.h"

namespace rkeops {

uint64_t DeviceMatrix::on_device(int ordinal, int elem, int nthreads) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = copies_.find({ordinal, elem});
  if (it != copies_.end()) return it->second;
  std::string why;
  CudaDriver* drv = CudaDriver::get(&why);
  if (!drv) throw UserError("gpu", "the GPU backend is not usable: " + why + "; use rkeops_use_cpu()");
  drv->context(ordinal);
  const long long n = rows_ * cols_;
  const size_t bytes = static_cast<size_t>(std::max(1LL, n) * elem);
  CUdeviceptr d = 0;
  drv->check(drv->cuMemAlloc(&d, bytes), "cuMemAlloc (GPU memory for a device matrix)");
  try {
    if (elem == 8) {
      drv->check(drv->cuMemcpyHtoDAsync(d, host_, bytes, nullptr), "cuMemcpyHtoDAsync (device matrix)");
    } else {
      // float32: converted once, on all threads, then copied.
      std::vector<float> tmp(static_cast<size_t>(n));
      const int nt = std::max(1, std::min(nthreads, 16));
      const long long step = (n + nt - 1) / nt;
      std::vector<std::thread> th;
      auto conv = [&](long long a, long long b) {
        for (long long k = a; k < b; ++k) tmp[k] = static_cast<float>(host_[k]);
      };
      for (int t = 1; t < nt && n >= (1LL << 18); ++t)
        if (t * step < n) th.emplace_back(conv, t * step, std::min(n, (t + 1) * step));
      conv(0, th.empty() ? n : std::min(n, step));
      for (auto& t : th) t.join();
      drv->check(drv->cuMemcpyHtoDAsync(d, tmp.data(), bytes, nullptr), "cuMemcpyHtoDAsync (device matrix)");
    }
    // The legacy default stream: the copy is complete before the launcher's stream reads it.
    drv->check(drv->cuStreamSynchronize(nullptr), "copying a device matrix to the GPU");
  } catch (...) {
    drv->cuMemFree(d);
    throw;
  }
  copies_[{ordinal, elem}] = d;
  return d;
}

bool DeviceMatrix::has_copy(int ordinal, int elem) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return copies_.count({ordinal, elem}) > 0;
}

long long DeviceMatrix::device_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  long long b = 0;
  for (auto& c : copies_) b += rows_ * cols_ * c.first.second;
  return b;
}

void DeviceMatrix::release() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (copies_.empty()) return;
  CudaDriver* drv = CudaDriver::get(nullptr);
  if (drv) {
    for (auto& c : copies_) {
      try {
        drv->context(c.first.first);
        drv->cuMemFree(c.second);
      } catch (...) {  // a finalizer must not throw: the memory goes with the process
      }
    }
  }
  copies_.clear();
}

DeviceMatrix::~DeviceMatrix() { release(); }

}  // namespace rkeops

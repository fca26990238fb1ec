// A matrix whose data stays on GPUs across calls (issue 17): R's rkeops_device(). It holds the
// caller's host data (column-major float64, one row per point, not copied: the caller keeps it
// alive and unchanged) and, per (GPU, element size), a device copy made once, at the first
// request, and freed with the object. The CUDA launcher copies the device copy into its packed
// buffers on the GPU (device to device) instead of converting and transferring the host data;
// every other path (the CPU backend, layouts the launcher packs on the host) reads the host data.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

namespace rkeops {

class DeviceMatrix {
 public:
  DeviceMatrix(const double* host, long long rows, long long cols) : host_(host), rows_(rows), cols_(cols) {}
  ~DeviceMatrix();  // frees the device copies (never throws)
  DeviceMatrix(const DeviceMatrix&) = delete;
  DeviceMatrix& operator=(const DeviceMatrix&) = delete;

  const double* host() const { return host_; }
  long long rows() const { return rows_; }
  long long cols() const { return cols_; }

  // The column-major device copy on GPU `ordinal` in elements of `elem` bytes (4: float, 8:
  // double), converted on up to `nthreads` threads and copied at the first request. Throws
  // UserError("gpu") when the GPU is not usable or its memory is short.
  uint64_t on_device(int ordinal, int elem, int nthreads);
  // Whether that copy exists already (no side effect).
  bool has_copy(int ordinal, int elem) const;
  // Bytes held on GPUs, all copies together.
  long long device_bytes() const;
  // Frees the device copies now (the host data stays usable).
  void release();

 private:
  const double* host_;
  long long rows_, cols_;
  mutable std::mutex mutex_;
  std::map<std::pair<int, int>, uint64_t> copies_;  // (ordinal, elem) -> device pointer
};

}  // namespace rkeops

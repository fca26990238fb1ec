// The CUDA backend's host side: compiles generated kernels with NVRTC (disk-cached CUBINs),
// loads them with the driver API, and runs reductions: inputs packed (and converted to float
// for float32) on the host into page-locked buffers, copied once, reduced by rk_reduce (the
// inner range split over blocks when the outer rows cannot fill the GPU), partial states
// merged by rk_merge, results copied back. Inputs larger than the GPU's memory are processed
// in chunks of outer and inner rows; interrupts are polled between chunks.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codegen_cuda.h"
#include "kernel.h"

namespace rkeops {

// Generates, finds in the disk cache or compiles, and loads the CUDA kernel of `f` for GPU
// opt.device. Throws UserError("gpu") when no GPU or no NVRTC is usable. `watch` can stop the
// compile (NVRTC runs on a worker thread, left to finish in the background when stopped).
std::shared_ptr<Kernel> load_cuda_kernel(Formula f, const EngineOptions& opt, const CompileWatch& watch);

// The kernel of a formula on every GPU of opt.devices (each loaded as above): a call is split
// over them (see MultiGpuKernel in launch_cuda.cpp).
std::shared_ptr<Kernel> load_multi_gpu_kernel(const std::string& formula, const std::vector<std::string>& aliases,
                                              const EngineOptions& opt, const std::function<bool()>& interrupted);

// ---- the launch sequence, independent of the CUDA driver (tests drive it on an emulated
// device, tests/engine/test_cuda_emulation.cpp) ----

// The few device operations the launcher needs. Device pointers are plain 64-bit values.
class GpuBackend {
 public:
  virtual ~GpuBackend() = default;
  virtual size_t available_bytes() = 0;  // free device memory plus what buffer() holds
  virtual int sm_count() = 0;
  virtual int resident_blocks(int fn, int block) = 0;  // blocks of `fn` (0 reduce, 1 merge) per SM
  // Device buffer `slot`, reused between calls and grown when smaller than `bytes`.
  virtual uint64_t buffer(int slot, size_t bytes) = 0;
  // Page-locked host memory for staging, reused between calls.
  virtual void* staging(size_t bytes) = 0;
  virtual void h2d(uint64_t dst, const void* src, size_t bytes) = 0;  // ordered on one stream
  virtual void d2h(void* dst, uint64_t src, size_t bytes) = 0;
  virtual void launch(int fn, unsigned grid_x, unsigned grid_y, unsigned block, void** args) = 0;
  virtual void mark(int k) = 0;                 // timing mark k (0..31) on the stream
  virtual void sync() = 0;                      // waits for everything; throws on errors
  virtual double elapsed_ms(int a, int b) = 0;  // between two marks, after sync()
  // Resident inner rows above this size are converted, copied and reduced in pieces (up to 8).
  virtual long long piece_bytes() { return 32LL << 20; }
  // Device-resident inputs (Input::device, device_matrix.h): the column-major device copy of
  // `x` in elements of `elem` bytes, made at the first request; 0 when this backend packs x
  // from the host (no copy possible, or x is a piece of the matrix). Copies on the stream.
  virtual uint64_t resident(const Input& /*x*/, int /*elem*/) { return 0; }
  virtual void d2d(uint64_t /*dst*/, uint64_t /*src*/, size_t /*bytes*/) {}
};

// Which part of a call a launch computes: result rows [r0, r1) (r1 < 0: all), and either the
// results or (states) the rows' partial states, indices offset by jbase.
struct LaunchPart {
  long long r0 = 0, r1 = -1;
  bool states = false;
  long long jbase = 0;
};

// Runs the reduction described by `code` on `dev`: `out` is column-major out_rows x out_dim
// (x state width for partial states; only rows [r0, r1) are written).
void run_cuda_reduction(GpuBackend& dev, const CudaCode& code, const Formula& f, const std::vector<Input>& in,
                        const CallShape& shape, double* out, int nthreads, const std::function<bool()>& interrupted,
                        GpuRunStats* stats, const LaunchPart& part = LaunchPart());

}  // namespace rkeops

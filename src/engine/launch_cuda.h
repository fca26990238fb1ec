// The CUDA backend's host side: compiles generated kernels with NVRTC (disk-cached CUBINs),
// loads them with the driver API, and runs reductions: inputs packed (and converted to float
// for float32) on the host into page-locked buffers, copied once (device-resident inputs,
// device_matrix.h, are copied or packed on the device instead), reduced by rk_reduce (the
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
#include "ranges.h"

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
  // fn 0: rk_reduce, 1: rk_merge, 2: the module's device packing (when packs_inner())
  virtual void launch(int fn, unsigned grid_x, unsigned grid_y, unsigned block, void** args) = 0;
  virtual void mark(int k) = 0;                 // timing mark k (0..39) on the stream
  virtual void sync() = 0;                      // waits for everything; throws on errors
  // Copies to the device ahead of the stream: on a second stream, so that they overlap the
  // kernels queued before them, until join_ahead() makes the stream wait for all of them. The
  // caller keeps their sources and destinations apart from what the queued work uses.
  virtual void h2d_ahead(uint64_t dst, const void* src, size_t bytes) { h2d(dst, src, bytes); }
  virtual void join_ahead() {}
  // A second stream for kernels that may overlap those of the first (disjoint results): after
  // fork_streams() it has waited for the work queued so far; use_stream(s) sends the next
  // copies, launches and marks to stream s (0: the first); join_streams() makes the first wait
  // for the second and selects it again. By default one stream does everything.
  virtual void fork_streams() {}
  virtual void use_stream(int /*s*/) {}
  virtual void join_streams() {}
  virtual bool mark_done(int /*k*/) { return true; }  // whether the stream has passed mark k
  virtual void wait_mark(int /*k*/) {}                // waits for mark k; throws on errors
  virtual double elapsed_ms(int a, int b) = 0;  // between two marks, after sync()
  // Resident inner rows above this size are converted, copied and reduced in pieces (up to 8).
  virtual long long piece_bytes() { return 32LL << 20; }
  // Device-resident inputs (Input::device, device_matrix.h): the column-major device copy of
  // `x` in elements of `elem` bytes, made at the first request; 0 when this backend packs x
  // from the host (no copy possible, or x is a piece of the matrix). Copies on the stream.
  virtual uint64_t resident(const Input& /*x*/, int /*elem*/) { return 0; }
  virtual void d2d(uint64_t /*dst*/, uint64_t /*src*/, size_t /*bytes*/) {}
  // Whether launch(2, ...) runs the module's device packing of device-resident inputs:
  // rk_pack_inner (the generic scheme: inner variables into the packed inner rows) or
  // rk_pack_pair (the high-dimension scheme: a pair variable shifted, with its squared norms).
  virtual bool packs_inner() { return false; }
};

// Which part of a call a launch computes: result rows [r0, r1) (r1 < 0: all), and either the
// results or (states) the rows' partial states, indices offset by jbase.
struct LaunchPart {
  long long r0 = 0, r1 = -1;
  bool states = false;
  long long jbase = 0;
  const BlockRanges* ranges = nullptr;  // a block-sparse reduction (all rows, results only)
  // A block-sparse reduction's results streamed piece by piece (EngineOptions::on_rows), each
  // piece's rows copied back while the GPU reduces the next; null: into `out` at the end.
  const RowSink* sink = nullptr;
  // A block-sparse call's pieces and splits of each piece's work items (0: chosen;
  // EngineOptions::sparse_pieces, sparse_splits)
  int sparse_pieces = 0, sparse_splits = 0;
};

// What the launch plan needs to know of the device: multiprocessors, resident blocks of
// rk_reduce per multiprocessor (at 256 and 128 threads; at the kernel's own block for the
// high-dimension scheme), free memory, and the size above which resident inner rows go in pieces.
struct DeviceLimits {
  int sm_count = 1;
  int resident_256 = 1, resident_128 = 1, resident_hd = 1;
  long long available_bytes = 0;
  long long piece_bytes = 32LL << 20;
};

// Page-locked staging memory a call uses at most.
constexpr long long kStagingBytes = 1LL << 30;

// How a call is launched: block size, chunks of outer rows, pieces of the inner range, splits
// of the inner range over blocks. A plain value computed by plan_cuda_launch.
struct LaunchPlan {
  int block = 256;               // threads per block
  long long rows_per_block = 0;  // outer rows per block
  long long concurrent = 1;      // blocks resident on the whole GPU
  long long tile = 0;            // inner rows per tile (the kernel's)
  long long inner_row_bytes = 0;
  long long budget = 0;  // device bytes for our buffers
  bool resident = true;  // inner rows copied once for the whole call (else streamed in chunks)
  long long inner_chunk = 0, inner_pieces = 1;  // the inner range in pieces of at most inner_chunk rows
  std::vector<long long> piece_rows;              // each piece's rows (all inner_chunk but the last, or a ramp)
  long long inner_device_rows = 0;              // inner rows held on the device at once
  long long outer_chunk = 0, outer_chunks = 1;  // outer rows per launch, and launches
  bool hd = false, states = false, sparse = false;
  int hd_bm = 0;
  int lane_slots = 1;  // partial states per split (CudaCode::Hd::lane_slots)
  bool resume = false;  // the pieces continue from the slots of the piece before (CudaCode::Hd::resume)
  // The first inner row of piece q.
  long long piece_start(long long q) const;
  // Splits of a piece of the inner range over blocks (gridDim.y) for a chunk of `rows` outer rows.
  long long splits(long long rows) const;
  // Partial-state slots for a chunk of `rows` (0: rk_reduce finalises itself).
  long long slots(long long rows) const;
};

// The launch plan of a call: a pure function of the kernel's layout (`code`), the call's sizes
// (inner rows, outer rows computed, result columns, partial states or not) and the device.
// Throws UserError("gpu") when even one outer row does not fit in the device's memory.
// With `sparse` (a block-sparse reduction), everything is on the device at once: one chunk of
// outer rows, the inner rows resident in one piece, no splits (UserError("gpu") when that does
// not fit). With `ramp` (the host packs the inner rows), resident pieces start smaller, a
// tenth of a piece, and grow by three quarters each time up to a piece and a half (as long as
// 8 pieces cover the rest): the first kernel waits only for the first piece's packing, and
// each piece's packing hides behind the kernel of the piece before.
// The high-dimension scheme's inner rows of more than a quarter of a piece ramp up this way
// even when they fit in one piece.
LaunchPlan plan_cuda_launch(const CudaCode& code, long long n_in, long long rows, int out_dim, bool states,
                            const DeviceLimits& lim, bool sparse = false, bool ramp = false);

// Splits of each work item's inner ranges over blocks (gridDim.y) in a block-sparse call (or
// one of its pieces) of `items` work items, `pairs` terms and `n_out` result rows, with the
// plan's `concurrent` resident blocks and `tile` inner rows per tile: enough blocks for 3 waves
// (bench/batch.R on the H200: a piece of 8 of 64 problems of 2e4 points ran its kernels in
// 8.7 ms with 3 waves, 9.4-9.7 ms with one), each split at least 4 tiles of the inner rows a
// result row meets on average; between 1 and 65535.
long long sparse_splits(long long items, double pairs, long long n_out, long long concurrent, long long tile);

// A piece of a block-sparse call: its work items [item0, item1), which cover the result rows
// [row0, row1) and meet no inner row at or past inner_end (a running maximum over the pieces).
struct SparsePiece {
  long long item0 = 0, item1 = 0, row0 = 0, row1 = 0, inner_end = 0;
};

// The pieces a block-sparse call with these work items (ranges.h) over `n_in` inner rows runs
// in, so that the host converts and copies a piece's rows while the GPU reduces the previous
// piece (a batch of problems: groups of problems): `want` pieces of about equal terms, whole
// work items; one piece when the first would need every inner row (nothing to overlap); none
// without items.
std::vector<SparsePiece> sparse_pieces(const RangeItems& items, long long n_in, int want);

// How many pieces a block-sparse call of `bytes` of packed inputs wants: one per eighth of the
// device's piece size (dense calls' inner pieces), 1 to 8.
int sparse_piece_count(long long bytes, long long piece_bytes);

// Runs the reduction described by `code` on `dev`: `out` is column-major out_rows x out_dim
// (x state width for partial states; only rows [r0, r1) are written).
void run_cuda_reduction(GpuBackend& dev, const CudaCode& code, const Formula& f, const std::vector<Input>& in,
                        const CallShape& shape, double* out, int nthreads, const std::function<bool()>& interrupted,
                        GpuRunStats* stats, const LaunchPart& part = LaunchPart());

}  // namespace rkeops

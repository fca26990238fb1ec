#include "launch_cuda.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "cache.h"
#include "codegen_cuda_hd.h"
#include "cuda_driver.h"
#include "errors.h"
#include "host_pack.h"
#include "kernel_store.h"
#include "log.h"
#include "nvrtc.h"
#include "ranges.h"
#include "sha256.h"

namespace rkeops {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }
long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

std::mutex g_stats_mutex;
GpuRunStats g_last_stats;

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

}  // namespace

GpuRunStats last_gpu_run() {
  std::lock_guard<std::mutex> lock(g_stats_mutex);
  return g_last_stats;
}

LaunchPlan plan_cuda_launch(const CudaCode& code, long long n_in, long long rows, int out_dim, bool states,
                            const DeviceLimits& lim, bool sparse, bool ramp) {
  LaunchPlan p;
  p.sparse = sparse;
  const long long e = code.elem;
  p.hd = code.hd.bm > 0;
  p.hd_bm = code.hd.bm;
  p.lane_slots = std::max(1, code.hd.lane_slots);
  p.resume = p.hd && code.hd.resume;
  p.states = states;
  // Threads per block: 256, or 128 when more threads are resident that way; the kernel's own
  // (float16 tensor cores: one row a thread, codegen_cuda_f16tc.h) when it needs exactly that.
  int block = p.hd || code.exact_block ? code.block : 256;
  if (!p.hd && !code.exact_block && lim.resident_128 * 128 > lim.resident_256 * 256) block = 128;
  p.block = block;
  // outer rows per block: a thread's rows (register blocking) times the rows of its values
  // (2 for float16 pair kernels)
  p.rows_per_block = p.hd ? code.hd.bm
                          : block * static_cast<long long>(code.rows_per_thread) * std::max(1, code.rows);
  const int resident_blocks = p.hd ? lim.resident_hd : block == 256 ? lim.resident_256 : lim.resident_128;
  p.concurrent = std::max(1, resident_blocks) * static_cast<long long>(std::max(1, lim.sm_count));
  const long long tile = code.tile;
  p.tile = tile;
  const long long by = code.wy * e;                  // bytes per inner row
  p.inner_row_bytes = by;
  const long long bx = code.wx * e + out_dim * 8LL;  // bytes per outer row (inputs and results)
  const long long se = code.state_elem;
  const long long sb = code.state_t * se + code.state_i * 4LL + code.state_c * se;  // per row and slot
  // Device memory for our buffers: most of what is free (other CUDA users in the process keep
  // what they hold).
  long long budget = static_cast<long long>(static_cast<double>(lim.available_bytes) * 0.8);
  budget = std::max(budget, 16LL << 10);
  p.budget = budget;

  // Inner rows: resident on the device for the whole call when they fit (copied once), in
  // `nj` pieces of `cj` rows that are converted, copied and reduced one after the other
  // without waiting, so that the host's conversion of a piece overlaps the copy and the
  // kernel of the previous one. Otherwise streamed in chunks through one buffer.
  const long long y_total = n_in * by;
  p.resident = by == 0 || y_total <= std::min(budget / 2, kStagingBytes * 3 / 4);
  long long cj = n_in;
  if (!p.resident) {
    long long cap = std::min(budget / 2, kStagingBytes / 2) / by;
    cj = std::max(tile, cap / tile * tile);
  } else if (y_total > lim.piece_bytes) {
    long long pieces = std::min<long long>(8, ceil_div(y_total, lim.piece_bytes));
    cj = ceil_div(ceil_div(n_in, pieces), tile) * tile;
  }
  cj = std::min(cj, 1LL << 30);
  p.inner_chunk = cj;
  p.piece_rows.clear();
  // (the high-dimension scheme ramps up inner rows of more than a quarter of a piece even when
  // they fit in one: at D = 100, 1e4 queries x 6e4 points from R, the first kernel waited
  // 2.4-2.8 ms for the whole 48 MB of doubles, before a 3 ms kernel. From a tenth, x 1.75, at
  // most a piece and a half: at D = 784 the first launch comes at about 2 ms instead of 2.6-3.0,
  // and the last piece, whose kernel waits for its packing when the host is slow, is smaller
  // than without the cap; bench/RESULTS.md, twelfth session)
  const bool ramp_one = p.hd && cj == n_in && y_total > lim.piece_bytes / 4;
  if (ramp && p.resident && (cj < n_in || ramp_one)) {
    const long long most = ceil_div(cj * 3 / 2, tile) * tile;
    for (long long left = n_in, r = std::max(tile, ceil_div(cj / 10, tile) * tile); left > 0;) {
      p.piece_rows.push_back(std::min(left, r));
      left -= p.piece_rows.back();
      r = std::min(most, ceil_div(r * 7 / 4, tile) * tile);
    }
    if (p.piece_rows.size() > 8) p.piece_rows.clear();
  }
  if (p.piece_rows.empty())
    for (long long j = 0; j < n_in; j += cj) p.piece_rows.push_back(std::min(cj, n_in - j));
  p.inner_pieces = static_cast<long long>(p.piece_rows.size());
  RK_ASSERT(p.inner_pieces <= 8 || !p.resident, "too many resident pieces");
  // Outer rows per chunk: about 1e12 terms per launch (interrupts are polled between chunks),
  // never fewer than fill the GPU, within memory.
  const long long rpb = p.rows_per_block;
  const long long fill = p.concurrent * rpb;
  long long ci = std::min(std::max(1LL, rows),
                          std::max(fill, static_cast<long long>(1e12 / std::max(1.0, static_cast<double>(n_in)))));
  ci = std::min(ci, 1LL << 30);
  p.inner_device_rows = p.resident ? n_in : cj;
  const long long y_dev = p.inner_device_rows * by;
  for (int it = 0; it < 3; ++it) {
    long long per_row = bx + p.slots(ci) * sb;
    long long cap = (budget - y_dev) / std::max(1LL, per_row);
    if (code.wx > 0) cap = std::min(cap, kStagingBytes / 4 / (code.wx * e));
    if (ci <= cap) break;
    if (cap < 1)
      throw UserError("gpu", "not enough GPU memory for this reduction (" + std::to_string(budget >> 20) +
                                 " MiB usable): free GPU memory or use rkeops_use_cpu()");
    ci = cap >= rpb ? cap / rpb * rpb : cap;
  }
  p.outer_chunk = ci;
  p.outer_chunks = ceil_div(rows, ci);
  if (sparse) {  // everything at once (work items index rows and inner rows of the whole call)
    const long long need = y_total + rows * bx;
    const long long staged = y_total + rows * code.wx * e;
    if (need > budget || staged > kStagingBytes)
      throw UserError("gpu", "a block-sparse reduction needs its data on the GPU at once (" +
                                 std::to_string(need >> 20) + " MiB; " + std::to_string(budget >> 20) +
                                 " MiB usable): use rkeops_use_cpu()");
    p.resident = true;
    p.inner_chunk = std::max(1LL, n_in);
    p.inner_pieces = 1;
    p.piece_rows.assign(1, n_in);
    p.inner_device_rows = n_in;
    p.outer_chunk = std::max(1LL, rows);
    p.outer_chunks = 1;
  }
  return p;
}

// Splits of the inner range: enough blocks for ~16 waves of resident blocks (few waves lose
// a partial last wave), each split at least 4 tiles long.
long long LaunchPlan::splits(long long rows) const {
  if (sparse) return 1;
  if (hd) return hd_splits(rows, inner_chunk, hd_bm, static_cast<int>(tile), concurrent);
  long long bxs = ceil_div(rows, rows_per_block), want = 16 * concurrent;
  if (bxs >= want) return 1LL;
  long long s = ceil_div(want, bxs);
  s = std::min(s, std::max(1LL, inner_chunk / (4 * tile)));
  return std::max(1LL, std::min(s, 65535LL));
}

long long LaunchPlan::piece_start(long long q) const {
  long long j = 0;
  for (long long k = 0; k < q && k < static_cast<long long>(piece_rows.size()); ++k) j += piece_rows[static_cast<size_t>(k)];
  return j;
}

long long LaunchPlan::slots(long long rows) const {
  long long s = splits(rows);
  // partial states go through rk_merge (always when each lane of a row leaves its own)
  return (inner_pieces == 1 && s == 1 && !states && lane_slots == 1) ? 0LL
                                                                      : (resume ? 1 : inner_pieces) * s * lane_slots;
}

// A block-sparse call splits each work item's inner ranges over gridDim.y blocks (partial
// states merged by rk_merge) when its items cannot fill 3 waves of blocks, as long as each
// part keeps about 4 tiles. (Splitting up to 16 waves, as dense calls do, made a batch of 64
// problems of 2e4 points, 1250 items, slower on the H200: 25 ms instead of 20 ms, when it ran
// whole; in 8 pieces, one wave each was slower than 3.)
long long sparse_splits(long long items, double pairs, long long n_out, long long concurrent, long long tile) {
  const long long n = std::max(1LL, items), C = std::max(1LL, concurrent);
  const double per_row = pairs / static_cast<double>(std::max(1LL, n_out));  // inner rows a row meets
  const long long cap = static_cast<long long>(per_row / (4.0 * std::max(1LL, tile)));
  return std::max(1LL, std::min({ceil_div(3 * C, n), cap, 65535LL}));
}

std::vector<SparsePiece> sparse_pieces(const RangeItems& items, long long n_in, int want) {
  const long long n = items.count();
  std::vector<SparsePiece> out;
  if (n == 0) return out;
  const long long G = std::max(1LL, std::min<long long>(want, n));
  // cuts at equal shares of the terms (of the items when there are none), one item at least
  std::vector<long long> cut = {0};
  double done = 0;
  for (long long k = 0; k < n; ++k) {
    done += items.pairs > 0 ? items.cost[static_cast<size_t>(k)] : 1.0;
    const double total = items.pairs > 0 ? items.pairs : static_cast<double>(n);
    const long long g = static_cast<long long>(cut.size());
    if (g < G && k + 1 < n && done >= total * static_cast<double>(g) / static_cast<double>(G)) cut.push_back(k + 1);
  }
  cut.push_back(n);
  long long end = 0;
  for (size_t g = 0; g + 1 < cut.size(); ++g) {
    SparsePiece p;
    p.item0 = cut[g];
    p.item1 = cut[g + 1];
    p.row0 = items.items[static_cast<size_t>(4 * p.item0)];
    p.row1 = items.items[static_cast<size_t>(4 * p.item1 - 3)];
    for (long long k = p.item0; k < p.item1; ++k)
      for (long long r = items.items[static_cast<size_t>(4 * k + 2)]; r < items.items[static_cast<size_t>(4 * k + 3)]; ++r)
        end = std::max(end, items.jranges[static_cast<size_t>(2 * r + 1)]);
    p.inner_end = end;
    out.push_back(p);
  }
  if (out.size() > 1 && out[0].inner_end >= n_in) {  // the first piece needs everything
    SparsePiece whole = out.back();
    whole.item0 = 0;
    whole.row0 = out[0].row0;
    out.assign(1, whole);
  }
  return out;
}

int sparse_piece_count(long long bytes, long long piece_bytes) {
  const long long unit = std::max(1LL, piece_bytes / 8);
  return static_cast<int>(std::max(1LL, std::min(8LL, ceil_div(std::max(0LL, bytes), unit))));
}

namespace {

// One call of run_cuda_reduction. Its steps are the public methods, called in the order they
// are declared; the members are what the steps share: the call's sizes, the launch plan, the
// device-resident inputs, the host staging and device buffers, and the timings.
class CudaRun {
 public:
  // The call's sizes; UserError("input") when its indices do not fit the GPU's 32-bit ones.
  CudaRun(GpuBackend& dev, const CudaCode& code, const Formula& f, const std::vector<Input>& in, const CallShape& shape,
          double* out, int nthreads, const std::function<bool()>& interrupted, const LaunchPart& part);
  void plan_launch();
  void allocate_staging();
  void find_device_inputs();
  void prepare_pair_variables();
  void lay_out_device_packing();
  void allocate_device_buffers();
  void upload_sparse_work_items();
  void pack_parameters();
  void run_outer_chunks();
  GpuRunStats stats();

 private:
  // A chunk of outer rows: rows [i0, i0 + rows), one launch of rk_reduce per inner piece.
  struct OuterChunk {
    long long i0 = 0, rows = 0;
    long long nsplit = 1, nslots = 0;    // splits of the inner range, partial-state slots
    long long ldx = 0;                   // leading dimension of its packed outer rows
    uint64_t pst = 0, psi = 0, pcp = 0;  // its partial states: values, indices, compensations
    std::vector<int> timed;              // the pieces whose marks were recorded in this chunk
  };
  // Piece q of the inner range: rows [j0, j0 + rows), at byte `off` of the inner rows' staging
  // and device buffers, packed with leading dimension `ld`.
  struct InnerPiece {
    long long q = 0, j0 = 0, rows = 0, off = 0, ld = 0;
  };

  long long splits(long long rows) const;
  long long slots(long long rows) const;
  bool hd_pair(size_t p) const;
  void pack_inner_on_device(uint64_t d, uint64_t up, long long j0, long long n);
  void launch_pack_inner(uint64_t dst, long long n, long long off, uint64_t src, long long src_ld, long long src_j0,
                         int cols);
  void copy_in(uint64_t d, const char* h, size_t bytes, bool ahead);
  void copy_cols(uint64_t d, const char* h, const std::vector<int>& offs, int norm, long long a, long long n,
                 long long ld, long long width, bool ahead = false);
  void run_outer_chunk(long long i0);
  OuterChunk start_outer_chunk(long long i0);
  void load_outer_rows(const OuterChunk& c);
  void run_inner_piece(OuterChunk& c, long long q);
  void run_sparse_pieces(OuterChunk& c);
  void load_inner_piece(const InnerPiece& piece);
  void load_inner_piece_packed_on_device(const InnerPiece& piece);
  void load_inner_piece_packed_on_host(const InnerPiece& piece);
  void launch_reduction(OuterChunk& c, const InnerPiece& piece, long long item0 = 0, long long item1 = -1);
  void launch_merge(OuterChunk& c, long long row0, long long row1);
  void merge_and_copy_out(OuterChunk& c);
  void stream_results(OuterChunk& c, size_t g);
  static int results_mark(size_t g) { return 30 + static_cast<int>(g % 8); }  // (see run_outer_chunks)
  void hand_over(size_t g);
  void gather_chunk_timings(const OuterChunk& c);

  // ---- the call ----
  GpuBackend& dev_;
  const CudaCode& code_;
  const std::vector<Input>& in_;
  double* out_;
  const int nthreads_;
  const std::function<bool()>& interrupted_;
  const LaunchPart& part_;
  const long long e_, se_;  // bytes of an input value, of a partial state's value
  const long long n_out_, n_in_;
  const long long r0_, r1_;  // the rows computed here
  const int out_dim_;
  int states_flag_;  // (rk_merge's arguments)
  long long states_jbase_;
  const bool hd_;       // the high-dimension scheme: its own block and layout
  const long long VL_;  // its leading dimensions are multiples of VL
  const bool sparse_;   // a block-sparse reduction (part.ranges)

  // ---- the plan ----
  LaunchPlan plan_;
  long long y_dev_ = 0;         // bytes of inner rows held on the device at once
  long long sparse_split_ = 1;  // a block-sparse call's splits (sparse_splits)
  std::vector<SparsePiece> pieces_;  // and its pieces (sparse_pieces; one: run whole)

  // ---- device-resident inputs ----
  std::vector<uint64_t> dev_in_;  // the device copy of input p, or 0
  std::vector<Input> host_in_;    // what the host packs (resident inputs: no columns)
  bool any_dev_ = false, dev_inner_ = false;
  bool dev_x_pair_ = false, dev_y_pair_ = false;  // resident pair variables (high-dimension scheme)
  std::vector<double> center_;                    // the high-dimension scheme's common point
  uint64_t dCenter_ = 0;
  PairPack xpp_, ypp_;       // how the host packs the pair variables
  bool dev_pack_ = false;    // the inner rows packed on the device by rk_pack_inner
  std::vector<int> up_off_;  // the host's inner variables' columns in dUp, or -1
  int up_cols_ = 0, used_y_ = 0;

  // ---- buffers ----
  size_t x_bytes_ = 0, y_bytes_ = 0, p_bytes_ = 0;
  char *hx_ = nullptr, *hy_ = nullptr, *hp_ = nullptr;  // host staging
  bool stream_out_ = false;  // a block-sparse call's results streamed piece by piece (part.sink)
  double* ho_ = nullptr;     // their staging: the column-major results, n_out rows
  size_t handed_ = 0;        // the pieces whose rows went to the sink
  uint64_t dX_ = 0, dY_ = 0, dP_ = 0, dOut_ = 0, dUp_ = 0;
  RangeItems items_;
  uint64_t dItems_ = 0, dJr_ = 0;
  bool y_loaded_ = false;  // resident inner rows loaded by an earlier chunk

  // ---- timings ----
  const Clock::time_point t0_ = Clock::now();  // the call's start
  double convert_ms_ = 0;
  GpuRunStats st_;
};

CudaRun::CudaRun(GpuBackend& dev, const CudaCode& code, const Formula& f, const std::vector<Input>& in,
                 const CallShape& shape, double* out, int nthreads, const std::function<bool()>& interrupted,
                 const LaunchPart& part)
    : dev_(dev),
      code_(code),
      in_(in),
      out_(out),
      nthreads_(nthreads),
      interrupted_(interrupted),
      part_(part),
      e_(code.elem),
      se_(code.state_elem),
      n_out_(shape.out_rows),
      n_in_(f.axis == 1 ? shape.n_j : shape.n_i),
      r0_(part.r0),
      r1_(part.r1 < 0 ? n_out_ : part.r1),
      out_dim_(part.states ? code.state_t + code.state_i + code.state_c : f.out_dim),
      states_flag_(part.states ? 1 : 0),
      states_jbase_(part.jbase),
      hd_(code.hd.bm > 0),
      VL_(16 / e_),
      sparse_(part.ranges != nullptr) {
  RK_ASSERT(0 <= r0_ && r0_ <= r1_ && r1_ <= n_out_, "bad row range");
  if (code.uses_index && n_in_ > INT_MAX)
    throw UserError("input",
                    "the GPU backend returns 32-bit indices: reductions with indices over more than 2^31 - 1 "
                    "points need rkeops_use_cpu()");
}

// The plan: block size, chunks, splits of the inner range (plan_cuda_launch, on the device's
// limits).
void CudaRun::plan_launch() {
  DeviceLimits lim;
  if (hd_) {
    lim.resident_hd = dev_.resident_blocks(0, code_.block);
  } else {
    lim.resident_256 = dev_.resident_blocks(0, 256);
    lim.resident_128 = dev_.resident_blocks(0, 128);
  }
  lim.sm_count = dev_.sm_count();
  lim.available_bytes = static_cast<long long>(dev_.available_bytes());
  lim.piece_bytes = dev_.piece_bytes();
  if (sparse_ && hd_)
    throw UserError("gpu", "block-sparse reductions (ranges) of inner products or distances of high dimension do "
                           "not run on the GPU: use rkeops_use_cpu()");
  RK_ASSERT(!sparse_ || (!part_.states && r0_ == 0 && r1_ == n_out_), "block-sparse reductions run whole");
  // (inner rows packed on the host: pieces ramp up; device-resident ones are packed on the GPU)
  bool host_inner = true;
  for (size_t p = 0; p < in_.size(); ++p)
    if (in_[p].device && code_.y_off[p] >= 0) host_inner = false;
  plan_ = plan_cuda_launch(code_, n_in_, r1_ - r0_, out_dim_, part_.states, lim, sparse_, host_inner);
  y_dev_ = plan_.inner_device_rows * plan_.inner_row_bytes;
  st_.block = plan_.block;
  st_.chunks_outer = static_cast<int>(plan_.outer_chunks);
  st_.chunks_inner = static_cast<int>(plan_.inner_pieces);
}

// Splits of the inner range over blocks, and partial-state slots, for a chunk of `rows` outer
// rows: the plan's, or a block-sparse call's own (sparse_splits).
long long CudaRun::splits(long long rows) const { return sparse_ ? sparse_split_ : plan_.splits(rows); }
long long CudaRun::slots(long long rows) const {
  return sparse_ ? (sparse_split_ > 1 ? sparse_split_ : 0LL) : plan_.slots(rows);
}

// Page-locked host staging for a chunk of outer rows, the inner rows held on the device and
// the parameters (the device buffers have the same sizes).
void CudaRun::allocate_staging() {
  const long long ci = plan_.outer_chunk;
  const long long ci_ld = hd_ ? ceil_div(ci, VL_) * VL_ : ci;  // leading dimension of X
  x_bytes_ = round_up(static_cast<size_t>(std::max(1LL, ci_ld * code_.wx * e_)), 256);
  y_bytes_ = round_up(static_cast<size_t>(std::max(1LL, y_dev_ + (hd_ ? VL_ * plan_.inner_row_bytes : 0))), 256);
  p_bytes_ = round_up(static_cast<size_t>(std::max(1LL, code_.np * e_)), 256);
  // a block-sparse call's results streamed out: page-locked too (copies that do not stop the host)
  const long long o_bytes = n_out_ * out_dim_ * 8LL;
  stream_out_ = sparse_ && part_.sink && !part_.states && o_bytes <= kStagingBytes / 4;
  const size_t o_staging = stream_out_ ? round_up(static_cast<size_t>(o_bytes), 256) : 0;
  char* host = static_cast<char*>(dev_.staging(x_bytes_ + y_bytes_ + p_bytes_ + o_staging));
  hx_ = host;
  hy_ = host + x_bytes_;
  hp_ = host + x_bytes_ + y_bytes_;
  if (stream_out_) ho_ = reinterpret_cast<double*>(host + x_bytes_ + y_bytes_ + p_bytes_);
}

// Device-resident inputs (DeviceMatrix) where the packed layout is column-major (outer rows;
// inner rows of the high-dimension scheme, not its shifted pair variables): copied device to
// device into the packed buffers. Inner variables of the generic scheme (row-major packed
// rows): interleaved on the device by rk_pack_inner. The host packs the others (`host_in`:
// resident ones with no columns). dev_in[p]: the device copy of input p, or 0.
void CudaRun::find_device_inputs() {
  dev_in_.assign(in_.size(), 0);
  host_in_ = in_;
  for (size_t p = 0; p < in_.size(); ++p) {
    const bool inner_packed = !hd_ && code_.y_off[p] >= 0 && dev_.packs_inner();
    if (!in_[p].device || !(code_.x_off[p] >= 0 || (hd_ && code_.y_off[p] >= 0) || inner_packed)) continue;
    if (hd_pair(p) && !dev_.packs_inner()) continue;
    if (code_.elem == 2) continue;  // float16: packed from the host copy (device copies are float or double)
    dev_in_[p] = dev_.resident(in_[p], code_.elem);
    if (!dev_in_[p]) continue;
    host_in_[p].cols = 0;
    (code_.x_off[p] >= 0 ? any_dev_ : dev_inner_) = true;
  }
  dev_x_pair_ = hd_ && dev_in_[static_cast<size_t>(code_.hd.x_pos)] != 0;
  dev_y_pair_ = hd_ && dev_in_[static_cast<size_t>(code_.hd.y_pos)] != 0;
  if (hd_) any_dev_ = any_dev_ || dev_inner_;  // (its inner rows go through copy_cols too)
}

// the high-dimension scheme's pair variables: shifted and normed on the device by rk_pack_pair
bool CudaRun::hd_pair(size_t p) const {
  return hd_ && (static_cast<int>(p) == code_.hd.x_pos || static_cast<int>(p) == code_.hd.y_pos);
}

// The high-dimension scheme: the common point subtracted from both sides of its distances
// (on the host while packing, on the device by rk_pack_pair for resident pair variables),
// and how the host packs the pair variables.
void CudaRun::prepare_pair_variables() {
  const auto t0 = Clock::now();
  if (hd_ && code_.hd.center) center_ = pair_center(in_[code_.hd.y_pos], nthreads_);
  convert_ms_ += ms_since(t0);
  if ((dev_x_pair_ || dev_y_pair_) && !center_.empty()) {
    dCenter_ = dev_.buffer(10, center_.size() * sizeof(double));
    dev_.h2d(dCenter_, center_.data(), center_.size() * sizeof(double));
  }
  if (hd_) {  // (resident pair variables: not packed on the host)
    xpp_ = {dev_x_pair_ ? -1 : code_.hd.x_pos, center_.empty() ? nullptr : center_.data(), code_.hd.x_norm};
    ypp_ = {dev_y_pair_ ? -1 : code_.hd.y_pos, center_.empty() ? nullptr : center_.data(), code_.hd.y_norm};
  }
}

// With a resident inner variable in the generic scheme, rk_pack_inner makes the whole packed
// inner rows on the device: the other inner variables are converted on the host column-major
// (their own columns only, at up_off[p] in a block of up_cols columns), copied to the device
// buffer dUp and interleaved from there; the padding is zeroed on the device.
void CudaRun::lay_out_device_packing() {
  dev_pack_ = dev_inner_ && !hd_;
  up_off_.assign(in_.size(), -1);
  for (size_t p = 0; p < in_.size(); ++p) {
    if (code_.y_off[p] < 0) continue;
    used_y_ = std::max<int>(used_y_, code_.y_off[p] + static_cast<int>(in_[p].cols));
    if (dev_pack_ && !dev_in_[p]) {
      up_off_[p] = up_cols_;
      up_cols_ += static_cast<int>(in_[p].cols);
    }
  }
}

// Device buffers: packed outer rows (dX), inner rows (dY), parameters (dP), results (dOut)
// and, with device packing, the host's inner variables (dUp).
void CudaRun::allocate_device_buffers() {
  dX_ = dev_.buffer(0, x_bytes_);
  dY_ = dev_.buffer(1, y_bytes_);
  dP_ = dev_.buffer(2, p_bytes_);
  dOut_ = dev_.buffer(3, static_cast<size_t>(plan_.outer_chunk * out_dim_ * 8LL + 8));
  // the host's inner variables when the inner rows are packed on the device: one region per
  // resident piece (as the staging), or one reused by the streamed chunks
  if (dev_pack_ && up_cols_ > 0)
    dUp_ = dev_.buffer(
        9, static_cast<size_t>((plan_.resident ? plan_.inner_device_rows : plan_.inner_chunk) * up_cols_ * e_ + 256));
}

// A block-sparse reduction: one block per work item (at most `block` rows of one outer range);
// the items and their inner ranges copied to the device, and the splits of the items.
void CudaRun::upload_sparse_work_items() {
  if (!sparse_) return;
  items_ = plan_range_items(*part_.ranges, n_out_, n_in_, plan_.rows_per_block);
  const size_t ib = items_.items.size() * sizeof(long long), jb = items_.jranges.size() * sizeof(long long);
  dItems_ = dev_.buffer(7, ib + 64);
  dJr_ = dev_.buffer(8, jb + 64);
  if (ib) dev_.h2d(dItems_, items_.items.data(), ib);
  if (jb) dev_.h2d(dJr_, items_.jranges.data(), jb);
  // in pieces when the host packs every input (device-resident ones go whole); the splits
  // give a piece's items 3 waves of blocks (sparse_splits)
  int want = sparse_piece_count(n_out_ * code_.wx * e_ + n_in_ * plan_.inner_row_bytes, dev_.piece_bytes());
  if (part_.sparse_pieces > 0) want = part_.sparse_pieces;  // (benchmarks: bench/batch.R)
  if (any_dev_ || dev_inner_) want = 1;
  pieces_ = sparse_pieces(items_, n_in_, want);
  if (pieces_.size() <= 1) stream_out_ = false;  // (one piece: its results copied back at the end)
  const long long per_piece = ceil_div(items_.count(), std::max<long long>(1, static_cast<long long>(pieces_.size())));
  sparse_split_ = sparse_splits(per_piece, items_.pairs, n_out_, plan_.concurrent, plan_.tile);
  if (part_.sparse_splits > 0) sparse_split_ = std::min(65535, part_.sparse_splits);  // (benchmarks)
  st_.chunks_inner = static_cast<int>(std::max<size_t>(1, pieces_.size()));
}

// The parameters packed on the host (copied with the first chunk's outer rows).
void CudaRun::pack_parameters() {
  const auto t0 = Clock::now();
  pack(code_.elem, 2, in_, code_, 0, 0, 0, PairPack(), hp_, nthreads_);
  convert_ms_ += ms_since(t0);
}

// Timing marks: 0/1 around the copy of the outer rows and parameters; per piece q, 2 + 3q
// before its copy, 3 + 3q after it, 4 + 3q after its kernel; 27, 28, 29 around the merge
// and the copy of the results; 30 + g % 8 after piece g's results (streamed, block-sparse).
void CudaRun::run_outer_chunks() {
  for (long long i0 = r0_; i0 < r1_; i0 += plan_.outer_chunk) run_outer_chunk(i0);
}

// One chunk of outer rows: its rows copied, reduced against every piece of the inner range,
// merged and copied back; interrupts polled after it.
void CudaRun::run_outer_chunk(long long i0) {
  OuterChunk c = start_outer_chunk(i0);
  if (pieces_.size() > 1) {
    run_sparse_pieces(c);
  } else {
    load_outer_rows(c);
    for (long long q = 0; q < plan_.inner_pieces; ++q) run_inner_piece(c, q);
  }
  if (plan_.resident) y_loaded_ = true;
  merge_and_copy_out(c);
  dev_.sync();
  gather_chunk_timings(c);
  if (i0 + c.rows < r1_ && interrupted_ && interrupted_()) throw Interrupted();
}

// The chunk of outer rows from i0: its size, its splits of the inner range and its
// partial-state slots (device buffers 4 to 6) when rk_merge finishes the reduction.
CudaRun::OuterChunk CudaRun::start_outer_chunk(long long i0) {
  OuterChunk c;
  c.i0 = i0;
  c.rows = std::min(plan_.outer_chunk, r1_ - i0);
  c.nsplit = splits(c.rows);
  c.nslots = slots(c.rows);
  st_.nsplit = static_cast<int>(c.nsplit);
  st_.grid_x = sparse_ ? items_.count() : ceil_div(c.rows, plan_.rows_per_block);
  c.ldx = hd_ ? ceil_div(c.rows, VL_) * VL_ : c.rows;
  if (c.nslots > 0) {
    c.pst = dev_.buffer(4, static_cast<size_t>(c.nslots * c.rows * code_.state_t * se_ + 16));
    c.psi = dev_.buffer(5, static_cast<size_t>(c.nslots * c.rows * code_.state_i * 4 + 16));
    c.pcp = dev_.buffer(6, static_cast<size_t>(c.nslots * c.rows * code_.state_c * se_ + 16));
  }
  return c;
}

// The chunk's outer rows packed on the host and copied, with the parameters for the first
// chunk (marks 0 and 1).
void CudaRun::load_outer_rows(const OuterChunk& c) {
  const auto t0 = Clock::now();
  pack(code_.elem, 0, host_in_, code_, c.i0, c.rows, c.ldx, xpp_, hx_, nthreads_);
  convert_ms_ += ms_since(t0);
  dev_.mark(0);
  if (c.i0 == r0_ && code_.np > 0) dev_.h2d(dP_, hp_, static_cast<size_t>(code_.np * e_));
  if (code_.wx > 0) copy_cols(dX_, hx_, code_.x_off, hd_ ? code_.hd.x_norm : -1, c.i0, c.rows, c.ldx, code_.wx);
  dev_.mark(1);
}

// Piece q of the inner range against the chunk: loaded (unless resident and loaded for an
// earlier chunk), then reduced; streamed pieces wait for their kernel (their buffers are
// reused). Interrupts are polled between pieces.
void CudaRun::run_inner_piece(OuterChunk& c, long long q) {
  InnerPiece piece;
  piece.q = q;
  piece.j0 = plan_.piece_start(q);
  piece.rows = plan_.piece_rows[static_cast<size_t>(q)];
  // resident: piece q has its own staging and device regions; streamed: one region, reused
  // after the previous piece's kernel (sync below).
  piece.off = plan_.resident ? piece.j0 * plan_.inner_row_bytes : 0;
  const int m = 2 + 3 * static_cast<int>(std::min<long long>(q, 7));
  piece.ld = hd_ ? ceil_div(piece.rows, VL_) * VL_ : piece.rows;  // rows packed (column-major: its leading dimension)
  dev_.mark(m);
  if (!y_loaded_ && plan_.inner_row_bytes > 0) load_inner_piece(piece);
  dev_.join_ahead();
  dev_.mark(m + 1);
  launch_reduction(c, piece);
  dev_.mark(m + 2);
  if (q < 8) c.timed.push_back(m);
  if (!plan_.resident) {  // the staging and device buffers are reused by the next chunk
    dev_.sync();
    st_.h2d_ms += dev_.elapsed_ms(m, m + 1);
    st_.kernel_ms += dev_.elapsed_ms(m + 1, m + 2);
    c.timed.clear();
  }
  const bool more = q + 1 < plan_.inner_pieces || c.i0 + c.rows < r1_;
  if (more && interrupted_ && interrupted_()) {
    dev_.sync();
    throw Interrupted();
  }
}

// A block-sparse call in pieces (sparse_pieces): for each, its outer rows and the inner rows it
// needs beyond those loaded packed at their places in the whole call's staging and copied
// ahead (the stream waits for them between marks 2 + 3g and 3 + 3g), then its work items
// reduced (by mark 4 + 3g). The launches are asynchronous: the host packs piece g + 1 while the
// GPU reduces piece g, and its copies run during that kernel.
void CudaRun::run_sparse_pieces(OuterChunk& c) {
  dev_.mark(0);
  if (code_.np > 0) dev_.h2d(dP_, hp_, static_cast<size_t>(code_.np * e_));
  dev_.mark(1);
  dev_.fork_streams();  // (pieces alternate between two streams: a kernel's tail overlaps the next one)
  const long long by = plan_.inner_row_bytes;
  long long loaded = 0;  // inner rows [0, loaded) are on the device
  InnerPiece whole;
  whole.rows = n_in_;
  for (size_t g = 0; g < pieces_.size(); ++g) {
    const SparsePiece& sp = pieces_[g];
    const long long rows = sp.row1 - sp.row0, nj = by > 0 ? std::max(0LL, sp.inner_end - loaded) : 0;
    const auto t0 = Clock::now();
    if (code_.wx > 0) pack(code_.elem, 0, host_in_, code_, sp.row0, rows, c.ldx, xpp_, hx_ + sp.row0 * e_, nthreads_);
    if (nj > 0) pack(code_.elem, 1, host_in_, code_, loaded, nj, nj, ypp_, hy_ + loaded * by, nthreads_);
    convert_ms_ += ms_since(t0);
    const int m = 2 + 3 * static_cast<int>(std::min<size_t>(g, 7));
    // (the copies overlap the kernels of the pieces before: another stream, other regions of
    // the staging and device buffers; the marks time the wait for them)
    for (long long k = 0; k < code_.wx && rows > 0; ++k) {
      const long long at = (k * c.ldx + sp.row0) * e_;
      dev_.h2d_ahead(dX_ + static_cast<uint64_t>(at), hx_ + at, static_cast<size_t>(rows * e_));
    }
    if (nj > 0)
      dev_.h2d_ahead(dY_ + static_cast<uint64_t>(loaded * by), hy_ + loaded * by, static_cast<size_t>(nj * by));
    loaded += nj;
    dev_.use_stream(static_cast<int>(g % 2));
    dev_.mark(m);
    dev_.join_ahead();
    dev_.mark(m + 1);
    launch_reduction(c, whole, sp.item0, sp.item1);
    dev_.mark(m + 2);
    if (g < 8) c.timed.push_back(m);
    if (stream_out_) stream_results(c, g);
  }
  dev_.join_streams();
  while (stream_out_ && handed_ < pieces_.size()) hand_over(handed_);
  y_loaded_ = true;
}

// Piece g's results (merged, with splits) copied back to the staging after its kernel (by mark
// 30 + g % 8); the pieces the GPU has finished handed over meanwhile, without waiting.
void CudaRun::stream_results(OuterChunk& c, size_t g) {
  const SparsePiece& sp = pieces_[g];
  const long long rows = sp.row1 - sp.row0;
  while (handed_ + 8 <= g) hand_over(handed_);  // (its mark is about to be reused)
  if (c.nslots > 0 && rows > 0) launch_merge(c, sp.row0, sp.row1);
  for (int k = 0; k < out_dim_ && rows > 0; ++k) {
    const long long at = k * n_out_ + sp.row0;
    dev_.d2h(ho_ + at, dOut_ + static_cast<uint64_t>(at * 8), static_cast<size_t>(rows * 8));
  }
  dev_.mark(results_mark(g));
  while (handed_ < g && dev_.mark_done(results_mark(handed_))) hand_over(handed_);
}

// Piece g's rows to the sink, once the GPU has copied them back.
void CudaRun::hand_over(size_t g) {
  dev_.wait_mark(results_mark(g));
  const SparsePiece& sp = pieces_[g];
  (*part_.sink)(sp.row0, sp.row1, ho_, n_out_);
  handed_ = g + 1;
}

// The piece's packed inner rows into dY: made on the device by rk_pack_inner (with a resident
// inner variable in the generic scheme), or packed on the host and copied.
void CudaRun::load_inner_piece(const InnerPiece& piece) {
  if (dev_pack_)
    load_inner_piece_packed_on_device(piece);
  else
    load_inner_piece_packed_on_host(piece);
}

// The host's inner variables column-major into dUp, then rk_pack_inner.
void CudaRun::load_inner_piece_packed_on_device(const InnerPiece& piece) {
  const uint64_t up = dUp_ + static_cast<uint64_t>(piece.off / plan_.inner_row_bytes * up_cols_ * e_);
  if (up_cols_ > 0) {
    const auto t0 = Clock::now();
    char* h = hy_ + piece.off;
    pack_columns(code_.elem, host_in_, up_off_, PairPack(), piece.j0, piece.rows, piece.rows, h, nthreads_);
    convert_ms_ += ms_since(t0);
    dev_.h2d(up, h, static_cast<size_t>(up_cols_ * piece.rows * e_));
  }
  pack_inner_on_device(dY_ + static_cast<uint64_t>(piece.off), up, piece.j0, piece.rows);
}

// The inner rows packed on the host, then copied (in the high-dimension scheme column by
// column, resident ones on the device: copy_cols).
void CudaRun::load_inner_piece_packed_on_host(const InnerPiece& piece) {
  const auto t0 = Clock::now();
  char* h = hy_ + piece.off;
  const uint64_t d = dY_ + static_cast<uint64_t>(piece.off);
  pack(code_.elem, 1, host_in_, code_, piece.j0, piece.rows, piece.ld, ypp_, h, nthreads_);
  convert_ms_ += ms_since(t0);
  // resident pieces have staging and device regions of their own: copied ahead, during the
  // kernels of the pieces before (run_inner_piece joins them before its kernel)
  const bool ahead = plan_.resident;
  if (hd_)
    copy_cols(d, h, code_.y_off, code_.hd.y_norm, piece.j0, piece.rows, piece.ld, code_.wy, ahead);
  else
    copy_in(d, h, static_cast<size_t>(piece.ld * plan_.inner_row_bytes), ahead);
}

// A copy from the host staging to the device: on the stream, or ahead of it (on the second
// stream, joined before the next kernel: GpuBackend::h2d_ahead).
void CudaRun::copy_in(uint64_t d, const char* h, size_t bytes, bool ahead) {
  if (ahead)
    dev_.h2d_ahead(d, h, bytes);
  else
    dev_.h2d(d, h, bytes);
}

// rk_pack_inner for the inner rows [j0, j0 + n) (device address d): each inner variable into
// its columns (a resident one from its device copy, the others from dUp), then the padding.
void CudaRun::pack_inner_on_device(uint64_t d, uint64_t up, long long j0, long long n) {
  for (size_t p = 0; p < in_.size(); ++p) {
    if (code_.y_off[p] < 0) continue;
    const int cols = static_cast<int>(in_[p].cols);
    if (dev_in_[p])
      launch_pack_inner(d, n, code_.y_off[p], dev_in_[p], in_[p].rows, j0, cols);
    else
      launch_pack_inner(d, n, code_.y_off[p], up + static_cast<uint64_t>(up_off_[p] * n * e_), n, 0, cols);
  }
  if (used_y_ < code_.wy) launch_pack_inner(d, n, used_y_, 0, 0, 0, code_.wy - used_y_);
}

// One launch of rk_pack_inner: `cols` columns of the n packed inner rows at dst, from column
// `off`, read from src (leading dimension src_ld, from its row src_j0; 0: zeros).
void CudaRun::launch_pack_inner(uint64_t dst, long long n, long long off, uint64_t src, long long src_ld,
                                long long src_j0, int cols) {
  void* args[] = {&dst, &off, &src, &src_ld, &src_j0, &n, &cols};
  const long long total = n * cols;
  if (total > 0) dev_.launch(2, static_cast<unsigned>(ceil_div(total, 256)), 1, 256, args);
}

// Copies the packed column-major block of rows [a, a + n) (leading dimension ld, columns
// `offs`, plus column `norm`) from the host staging at `h` to the device at `d`: host-packed
// columns by transfer (ahead: see copy_in), resident ones device to device.
void CudaRun::copy_cols(uint64_t d, const char* h, const std::vector<int>& offs, int norm, long long a, long long n,
                        long long ld, long long width, bool ahead) {
  if (!any_dev_) {
    copy_in(d, h, static_cast<size_t>(ld * width * e_), ahead);
    return;
  }
  for (size_t p = 0; p < in_.size(); ++p) {
    if (offs[p] < 0) continue;
    const uint64_t at = d + static_cast<uint64_t>(offs[p] * ld * e_);
    if (!dev_in_[p]) {
      copy_in(at, h + offs[p] * ld * e_, static_cast<size_t>(in_[p].cols * ld * e_), ahead);
      continue;
    }
    if (hd_pair(p)) {
      uint64_t dst = at, src = dev_in_[p], ctr = dCenter_;
      long long ld_ = ld, src_ld = in_[p].rows, a_ = a, n_ = n;
      int norm_ = norm;
      void* args[] = {&dst, &ld_, &src, &src_ld, &a_, &n_, &ctr, &norm_};
      if (n > 0) dev_.launch(2, static_cast<unsigned>(ceil_div(n, 256)), 1, 256, args);
      norm = -1;  // written by rk_pack_pair
      continue;
    }
    for (long long k = 0; k < in_[p].cols; ++k)
      dev_.d2d(at + static_cast<uint64_t>(k * ld * e_), dev_in_[p] + static_cast<uint64_t>((k * in_[p].rows + a) * e_),
               static_cast<size_t>(n * e_));
  }
  if (norm >= 0)
    copy_in(d + static_cast<uint64_t>(norm * ld * e_), h + norm * ld * e_, static_cast<size_t>(ld * e_), ahead);
}

// rk_reduce: the chunk's outer rows against the piece, in blocks of outer rows (block-sparse:
// one per work item, those of [item0, item1) when item1 >= 0) times the splits of the piece
// (their partial states from slot q * nsplit, when there are slots).
void CudaRun::launch_reduction(OuterChunk& c, const InnerPiece& piece, long long item0, long long item1) {
  uint64_t x = dX_, y = dY_ + static_cast<uint64_t>(piece.off), p = dP_, o = dOut_;
  long long ldx = c.ldx, jbase = piece.j0;
  long long jchunk = hd_ ? hd_jchunk(piece.rows, c.nsplit, code_.tile) : ceil_div(piece.rows, c.nsplit);
  long long out_ld = c.rows;
  int n_outer = static_cast<int>(c.rows), n_inner = static_cast<int>(piece.rows);
  // (pieces after the first continue from the slots of the one before, when the kernel can)
  int slot0 = c.nslots <= 0          ? -1
              : plan_.resume         ? (piece.q > 0 ? kHdResume : 0)
                                     : static_cast<int>(piece.q * c.nsplit);
  if (item1 < 0) item1 = items_.count();
  uint64_t d_items = dItems_ ? dItems_ + static_cast<uint64_t>(4 * item0 * sizeof(long long)) : 0, d_jranges = dJr_;
  void* args[] = {&x, &ldx,    &y,     &p,     &n_outer, &n_inner, &jbase,   &jchunk,
                  &o, &out_ld, &c.pst, &c.psi, &c.pcp,   &slot0,   &d_items, &d_jranges};
  const long long gx = sparse_ ? item1 - item0 : ceil_div(c.rows, plan_.rows_per_block);
  if (st_.first_launch_ms == 0) st_.first_launch_ms = ms_since(t0_);
  if (gx > 0)
    dev_.launch(0, static_cast<unsigned>(gx), static_cast<unsigned>(c.nsplit), static_cast<unsigned>(plan_.block),
                args);
}

// rk_merge of the chunk's partial states of rows [row0, row1) into their results.
void CudaRun::launch_merge(OuterChunk& c, long long row0, long long row1) {
  uint64_t o = dOut_;
  int ns = static_cast<int>(c.nslots), nr = static_cast<int>(c.rows);
  int r0 = static_cast<int>(row0), r1 = static_cast<int>(row1);
  long long out_ld = c.rows;
  void* args[] = {&c.pst, &c.psi, &c.pcp, &ns, &nr, &o, &out_ld, &states_flag_, &states_jbase_, &r0, &r1};
  dev_.launch(1, static_cast<unsigned>(ceil_div(row1 - row0, plan_.block)), 1, static_cast<unsigned>(plan_.block), args);
}

// rk_merge of the chunk's partial states into results (when there are slots), between marks
// 27 and 28; the results copied into `out` by mark 29.
void CudaRun::merge_and_copy_out(OuterChunk& c) {
  dev_.mark(27);
  if (stream_out_) {  // (done piece by piece: stream_results)
    dev_.mark(28);
    dev_.mark(29);
    return;
  }
  if (c.nslots > 0) launch_merge(c, 0, c.rows);
  dev_.mark(28);
  if (c.rows == n_out_) {
    dev_.d2h(out_, dOut_, static_cast<size_t>(n_out_ * out_dim_ * 8LL));
  } else {
    for (int k = 0; k < out_dim_; ++k)
      dev_.d2h(out_ + c.i0 + k * n_out_, dOut_ + static_cast<uint64_t>(k * c.rows * 8),
               static_cast<size_t>(c.rows * 8));
  }
  dev_.mark(29);
}

// After the chunk's sync: the copy of its outer rows, the copies and kernels of the pieces
// not timed already (streamed pieces are timed as they go), the merge and the copy back.
// (Block-sparse pieces run on two streams, their kernels overlapping: the kernel time is the
// span from the first one's start to the last end; with streamed results, the copy time is
// what follows the last kernel.)
void CudaRun::gather_chunk_timings(const OuterChunk& c) {
  st_.h2d_ms += dev_.elapsed_ms(0, 1);
  const bool pieces = pieces_.size() > 1 && pieces_.size() <= 8;
  double span = 0;
  for (int m : c.timed) {
    st_.h2d_ms += dev_.elapsed_ms(m, m + 1);
    if (pieces)
      span = std::max(span, dev_.elapsed_ms(3, m + 2));
    else
      st_.kernel_ms += dev_.elapsed_ms(m + 1, m + 2);
  }
  st_.kernel_ms += span;
  st_.merge_ms += dev_.elapsed_ms(27, 28);
  st_.d2h_ms += dev_.elapsed_ms(28, 29);
  if (pieces && stream_out_) {
    const int g = static_cast<int>(pieces_.size()) - 1;
    st_.d2h_ms += dev_.elapsed_ms(4 + 3 * g, results_mark(static_cast<size_t>(g)));
  }
}

// The call's statistics, its total time from its start (t0_).
GpuRunStats CudaRun::stats() {
  st_.convert_ms = convert_ms_;
  st_.total_ms = ms_since(t0_);
  st_.valid = true;
  return st_;
}

}  // namespace

void run_cuda_reduction(GpuBackend& dev, const CudaCode& code, const Formula& f, const std::vector<Input>& in,
                        const CallShape& shape, double* out, int nthreads, const std::function<bool()>& interrupted,
                        GpuRunStats* stats, const LaunchPart& part) {
  CudaRun run(dev, code, f, in, shape, out, nthreads, interrupted, part);
  run.plan_launch();
  run.allocate_staging();
  run.find_device_inputs();
  run.prepare_pair_variables();
  run.lay_out_device_packing();
  run.allocate_device_buffers();
  run.upload_sparse_work_items();
  run.pack_parameters();
  run.run_outer_chunks();
  if (stats) *stats = run.stats();
}

// ==== the CUDA driver side ====
namespace {

// Per GPU, for the session: a stream, timing events, reusable buffers and staging memory.
struct DeviceResources {
  CUstream stream = nullptr;
  CUevent ev[40] = {};
  CUstream copies = nullptr;  // copies ahead of the stream (h2d_ahead), and their last one
  CUevent copied = nullptr;
  CUstream second = nullptr;  // kernels beside the stream's (use_stream), and a fork or join point
  CUevent meet = nullptr;
  std::vector<std::pair<CUdeviceptr, size_t>> bufs;
  void* host = nullptr;
  size_t host_bytes = 0;
  std::map<std::pair<void*, int>, int> occupancy;  // resident blocks per SM of (function, block)
  std::mutex occupancy_mutex;
};

DeviceResources& resources(CudaDriver* drv, int dev) {
  static std::map<int, DeviceResources> all;  // entries are never removed: references stay valid
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);  // host threads of several GPUs (MultiGpuKernel)
  DeviceResources& r = all[dev];
  if (!r.stream) {
    drv->check(drv->cuStreamCreate(&r.stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    for (auto& ev : r.ev) drv->check(drv->cuEventCreate(&ev, CU_EVENT_DEFAULT), "cuEventCreate");
  }
  return r;
}

class CudaBackend : public GpuBackend {
 public:
  CudaBackend(CudaDriver* drv, DeviceResources& res, CUfunction reduce, CUfunction merge, CUfunction pack, int sms,
              int ordinal = -1)
      : drv_(drv), r_(res), sms_(sms), ordinal_(ordinal), cur_(res.stream) {
    fn_[0] = reduce;
    fn_[1] = merge;
    fn_[2] = pack;
  }
  // A call that stopped on an error may leave copies ahead (reading the staging) or kernels on
  // the second stream: they end before the next call reuses the staging and device buffers (a
  // few microseconds when the streams are idle; errors ignored here: the next call meets them).
  ~CudaBackend() override {
    if (r_.copies) drv_->cuStreamSynchronize(r_.copies);
    if (r_.second) drv_->cuStreamSynchronize(r_.second);
  }
  size_t available_bytes() override {
    size_t free_b = 0, total_b = 0;
    drv_->check(drv_->cuMemGetInfo(&free_b, &total_b), "cuMemGetInfo");
    size_t held = 0;
    for (auto& b : r_.bufs) held += b.second;
    return free_b + held;
  }
  int sm_count() override { return sms_; }
  int resident_blocks(int fn, int block) override {
    // a property of the compiled function: asked once per (function, block) for the session
    std::lock_guard<std::mutex> lock(r_.occupancy_mutex);
    auto key = std::make_pair(static_cast<void*>(fn_[fn]), block);
    auto it = r_.occupancy.find(key);
    if (it != r_.occupancy.end()) return it->second;
    int n = 0;
    drv_->check(drv_->cuOccupancyMaxActiveBlocksPerMultiprocessor(&n, fn_[fn], block, 0),
                "cuOccupancyMaxActiveBlocksPerMultiprocessor");
    r_.occupancy[key] = n;
    return n;
  }
  uint64_t buffer(int slot, size_t bytes) override {
    if (r_.bufs.size() <= static_cast<size_t>(slot)) r_.bufs.resize(slot + 1, {0, 0});
    auto& b = r_.bufs[slot];
    if (b.second < bytes) {
      if (b.first) drv_->cuMemFree(b.first);
      b = {0, 0};
      size_t n = round_up(bytes, 1 << 20);
      drv_->check(drv_->cuMemAlloc(&b.first, n), "cuMemAlloc (GPU memory for the reduction's data)");
      b.second = n;
    }
    return b.first;
  }
  void* staging(size_t bytes) override {
    if (r_.host_bytes < bytes) {
      if (r_.host) drv_->cuMemFreeHost(r_.host);
      r_.host = nullptr;
      r_.host_bytes = 0;
      size_t n = round_up(bytes, 1 << 20);
      drv_->check(drv_->cuMemAllocHost(&r_.host, n), "cuMemAllocHost (page-locked staging memory)");
      r_.host_bytes = n;
    }
    return r_.host;
  }
  void h2d(uint64_t dst, const void* src, size_t bytes) override {
    drv_->check(drv_->cuMemcpyHtoDAsync(dst, src, bytes, cur_), "cuMemcpyHtoDAsync");
  }
  void h2d_ahead(uint64_t dst, const void* src, size_t bytes) override {
    if (!drv_->cuStreamWaitEvent) return h2d(dst, src, bytes);
    if (!r_.copies) {
      drv_->check(drv_->cuStreamCreate(&r_.copies, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
      drv_->check(drv_->cuEventCreate(&r_.copied, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    }
    drv_->check(drv_->cuMemcpyHtoDAsync(dst, src, bytes, r_.copies), "cuMemcpyHtoDAsync");
    ahead_ = true;
  }
  void join_ahead() override {
    if (!ahead_) return;
    drv_->check(drv_->cuEventRecord(r_.copied, r_.copies), "cuEventRecord");
    drv_->check(drv_->cuStreamWaitEvent(cur_, r_.copied, 0), "cuStreamWaitEvent");
    ahead_ = false;
  }
  void d2h(void* dst, uint64_t src, size_t bytes) override {
    drv_->check(drv_->cuMemcpyDtoHAsync(dst, src, bytes, cur_), "cuMemcpyDtoHAsync");
  }
  void launch(int fn, unsigned gx, unsigned gy, unsigned block, void** args) override {
    drv_->check(drv_->cuLaunchKernel(fn_[fn], gx, gy, 1, block, 1, 1, 0, cur_, args, nullptr),
                fn == 0 ? "cuLaunchKernel (rk_reduce)" : fn == 1 ? "cuLaunchKernel (rk_merge)" : "cuLaunchKernel (device packing)");
  }
  uint64_t resident(const Input& x, int elem) override {
    // The whole matrix only (a piece read in place, e.g. by several GPUs, is packed from the host).
    if (!x.device || ordinal_ < 0 || !drv_->cuMemcpyDtoDAsync || x.data != x.device->host() ||
        x.rows != x.device->rows() || x.cols != x.device->cols() || x.stride() != x.device->rows())
      return 0;
    const int nt = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    return x.device->on_device(ordinal_, elem, nt);
  }
  void d2d(uint64_t dst, uint64_t src, size_t bytes) override {
    drv_->check(drv_->cuMemcpyDtoDAsync(dst, src, bytes, cur_), "cuMemcpyDtoDAsync");
  }
  bool packs_inner() override { return fn_[2] != nullptr && ordinal_ >= 0; }
  void mark(int k) override { drv_->check(drv_->cuEventRecord(r_.ev[k], cur_), "cuEventRecord"); }
  void sync() override {
    join_streams();
    drv_->check(drv_->cuStreamSynchronize(r_.stream), "running the GPU kernel");
  }
  void fork_streams() override {
    if (!drv_->cuStreamWaitEvent) return;
    if (!r_.second) {
      drv_->check(drv_->cuStreamCreate(&r_.second, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
      drv_->check(drv_->cuEventCreate(&r_.meet, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    }
    drv_->check(drv_->cuEventRecord(r_.meet, r_.stream), "cuEventRecord");
    drv_->check(drv_->cuStreamWaitEvent(r_.second, r_.meet, 0), "cuStreamWaitEvent");
    forked_ = true;
  }
  void use_stream(int s) override { cur_ = s == 1 && forked_ ? r_.second : r_.stream; }
  void join_streams() override {
    cur_ = r_.stream;
    if (!forked_) return;
    drv_->check(drv_->cuEventRecord(r_.meet, r_.second), "cuEventRecord");
    drv_->check(drv_->cuStreamWaitEvent(r_.stream, r_.meet, 0), "cuStreamWaitEvent");
    forked_ = false;
  }
  bool mark_done(int k) override {
    if (!drv_->cuEventQuery) return false;
    const CUresult r = drv_->cuEventQuery(r_.ev[k]);
    if (r == CUDA_ERROR_NOT_READY) return false;
    drv_->check(r, "running the GPU kernel");
    return true;
  }
  void wait_mark(int k) override {
    if (!drv_->cuEventSynchronize) return sync();
    drv_->check(drv_->cuEventSynchronize(r_.ev[k]), "running the GPU kernel");
  }
  double elapsed_ms(int a, int b) override {
    float ms = 0;
    if (!drv_->cuEventElapsedTime || drv_->cuEventElapsedTime(&ms, r_.ev[a], r_.ev[b]) != CUDA_SUCCESS) return 0;
    return ms;
  }

 private:
  CudaDriver* drv_;
  DeviceResources& r_;
  CUfunction fn_[3] = {nullptr, nullptr, nullptr};
  int sms_;
  int ordinal_;  // the GPU, for device-resident inputs
  bool ahead_ = false;  // copies ahead not joined yet
  bool forked_ = false;  // the second stream in use (fork_streams)
  CUstream cur_;         // where copies, launches and marks go (use_stream)
};

class CudaKernel : public Kernel {
 public:
  CudaKernel(Formula f, CudaCode code, int dev, CUmodule mod, int sms)
      : Kernel(std::move(f)), code_(std::move(code)), dev_(dev), sms_(sms) {
    CudaDriver* drv = CudaDriver::get(nullptr);
    drv->check(drv->cuModuleGetFunction(&reduce_, mod, "rk_reduce"), "cuModuleGetFunction(rk_reduce)");
    drv->check(drv->cuModuleGetFunction(&merge_, mod, "rk_merge"), "cuModuleGetFunction(rk_merge)");
    // launch(2): the module's device packing (codegen_cuda.cpp, codegen_cuda_hd.cpp)
    const char* pack_name = code_.hd.bm == 0 ? "rk_pack_inner" : "rk_pack_pair";
    drv->check(drv->cuModuleGetFunction(&pack_, mod, pack_name), (std::string("cuModuleGetFunction(") + pack_name + ")").c_str());
    if (drv->cuFuncGetAttribute) {  // optional: for the log and the run statistics only
      drv->cuFuncGetAttribute(&regs_, CU_FUNC_ATTRIBUTE_NUM_REGS, reduce_);
      drv->cuFuncGetAttribute(&local_, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, reduce_);
      drv->cuFuncGetAttribute(&shared_, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, reduce_);
    }
    log_msg("rkeops: GPU kernel rk_reduce uses " + std::to_string(regs_) + " registers, " + std::to_string(local_) +
            " bytes of local memory (spills), " + std::to_string(shared_) + " bytes of shared memory");
  }
  // The module stays loaded for the session (kernels may be cached in R closures).

  // Partial states have the CPU kernel's layout (the same reduction row: values, indices,
  // compensations), so merging is the CPU kernel's.
  int state_width() const override { return code_.state_t + code_.state_i + code_.state_c; }
  void run_partial(const std::vector<Input>& in, const CallShape& shape, long long jbase, double* states,
                   const EngineOptions& opt, const std::function<bool()>& interrupted) override {
    LaunchPart part;
    part.states = true;
    part.jbase = jbase;
    run_part(in, shape, states, opt, interrupted, part);
  }
  void merge_partials(const std::vector<const double*>& parts, long long rows, double* out, double* states_out,
                      const EngineOptions& opt) override {
    EngineOptions o = opt;
    o.backend = Backend::CPU;
    o.devices.clear();
    // (float16 states are float32 states: the CPU, which has no float16, merges them as such)
    if (o.code.dtype == DType::Float16) o.code.dtype = DType::Float32;
    get_kernel(formula_.text, formula_.aliases, o)->merge_partials(parts, rows, out, states_out, o);
  }
  void run(const std::vector<Input>& in, const CallShape& shape, double* out, const EngineOptions& opt,
           const std::function<bool()>& interrupted) override {
    LaunchPart part;
    part.ranges = opt.ranges.get();
    if (opt.on_rows) part.sink = &opt.on_rows;
    part.sparse_pieces = opt.sparse_pieces;
    part.sparse_splits = opt.sparse_splits;
    run_part(in, shape, out, opt, interrupted, part);
  }

  // One part of a call on this kernel's GPU (any host thread: it makes the context current).
  void run_part(const std::vector<Input>& in, const CallShape& shape, double* out, const EngineOptions& opt,
                const std::function<bool()>& interrupted, const LaunchPart& part) {
    CudaDriver* drv = CudaDriver::get(nullptr);
    RK_ASSERT(drv != nullptr, "the CUDA driver went away");
    drv->context(dev_);
    CudaBackend be(drv, resources(drv, dev_), reduce_, merge_, pack_, sms_, dev_);
    GpuRunStats st;
    run_cuda_reduction(be, code_, formula_, in, shape, out, opt.nthreads, interrupted, &st, part);
    st.regs = regs_;
    st.local_bytes = local_;
    st.shared_bytes = shared_;
    st.compile_seconds = compile_seconds;
    {
      std::lock_guard<std::mutex> lock(g_stats_mutex);
      g_last_stats = st;
    }
    if (verbose()) {
      char buf[400];
      std::snprintf(buf, sizeof buf,
                    "rkeops: GPU run %.3f ms: host conversion %.3f, H2D %.3f, kernel %.3f, merge %.3f, D2H %.3f "
                    "(block %d, grid %lld x %d, %d outer x %d inner chunk(s))",
                    st.total_ms, st.convert_ms, st.h2d_ms, st.kernel_ms, st.merge_ms, st.d2h_ms, st.block, st.grid_x,
                    st.nsplit, st.chunks_outer, st.chunks_inner);
      log_msg(buf);
    }
  }

 private:
  CudaCode code_;
  int dev_;
  CUfunction reduce_ = nullptr, merge_ = nullptr, pack_ = nullptr;
  int sms_;
  int regs_ = 0, local_ = 0, shared_ = 0;
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

// Several GPUs of one host: a call is split over them, one host thread per GPU. With enough
// result rows each GPU computes a block of rows; otherwise (few queries against many points)
// each GPU reduces a piece of the reduced index into partial states, merged on the host.
class MultiGpuKernel : public Kernel {
 public:
  MultiGpuKernel(Formula f, std::vector<std::shared_ptr<CudaKernel>> per_device)
      : Kernel(std::move(f)), gpus_(std::move(per_device)) {}

  int state_width() const override { return gpus_[0]->state_width(); }
  void merge_partials(const std::vector<const double*>& parts, long long rows, double* out, double* states_out,
                      const EngineOptions& opt) override {
    gpus_[0]->merge_partials(parts, rows, out, states_out, opt);
  }
  void run(const std::vector<Input>& in, const CallShape& shape, double* out, const EngineOptions& opt,
           const std::function<bool()>& interrupted) override {
    run_split(in, shape, out, opt, interrupted, false, 0);
  }
  void run_partial(const std::vector<Input>& in, const CallShape& shape, long long jbase, double* states,
                   const EngineOptions& opt, const std::function<bool()>& interrupted) override {
    run_split(in, shape, states, opt, interrupted, true, jbase);
  }

  // Result rows per GPU below which the reduced index is split instead.
  static constexpr long long kMinRowsPerGpu = 65536;

 private:
  void run_split(const std::vector<Input>& in, const CallShape& shape, double* out, const EngineOptions& opt,
                 const std::function<bool()>& interrupted, bool states, long long jbase) {
    const Formula& f = formula_;
    const long long n_out = shape.out_rows, n_in = f.axis == 1 ? shape.n_j : shape.n_i;
    const int ng = static_cast<int>(gpus_.size());
    const int inner = f.inner_cat();
    const bool by_rows = states || n_out >= ng * kMinRowsPerGpu || n_in < ng;
    const int width = state_width();
    std::vector<std::vector<double>> parts(by_rows ? 0 : ng);
    std::atomic<bool> stop(false);
    auto poll = [&stop] { return stop.load(); };
    std::vector<std::exception_ptr> errors(ng);
    std::vector<std::thread> threads;
    for (int g = 0; g < ng; ++g) {
      threads.emplace_back([&, g] {
        try {
          if (by_rows) {  // rows [r0, r1) of the result (or of the partial states)
            LaunchPart part;
            part.r0 = n_out * g / ng;
            part.r1 = n_out * (g + 1) / ng;
            part.states = states;
            part.jbase = jbase;
            if (part.r0 < part.r1) gpus_[g]->run_part(in, shape, out, opt, poll, part);
          } else {  // a piece of the reduced index, read in place: partial states
            const long long j0 = n_in * g / ng, j1 = n_in * (g + 1) / ng;
            std::vector<Input> piece = in;
            for (size_t k = 0; k < in.size(); ++k)
              if (f.args[k].cat == inner) {
                piece[k].ld = in[k].stride();
                piece[k].data = in[k].data + j0;
                piece[k].rows = j1 - j0;
              }
            CallShape sh = shape;
            (f.axis == 1 ? sh.n_j : sh.n_i) = j1 - j0;
            parts[g].assign(static_cast<size_t>(n_out * width), 0.0);
            LaunchPart part;
            part.states = true;
            part.jbase = j0;
            gpus_[g]->run_part(piece, sh, parts[g].data(), opt, poll, part);
          }
        } catch (...) {
          errors[g] = std::current_exception();
          stop = true;
        }
      });
    }
    // The R session's interrupts are polled on this (the calling) thread only.
    std::atomic<int> done(0);
    std::thread waiter([&] {
      for (auto& t : threads) t.join();
      done = 1;
    });
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (!stop.load() && interrupted && interrupted()) stop = true;
    }
    waiter.join();
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
    if (stop.load()) throw Interrupted();
    if (!by_rows) {
      std::vector<const double*> ptr;
      for (auto& p : parts) ptr.push_back(p.data());
      merge_partials(ptr, n_out, out, nullptr, opt);
    }
  }

  std::vector<std::shared_ptr<CudaKernel>> gpus_;
};

// Loads a CUBIN or PTX image; false (with the driver's reason) when the driver refuses it.
bool load_module(CudaDriver* drv, const std::string& image, CUmodule* mod, std::string* why) {
  char err[4096] = {0};
  CUjit_option o[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void* v[2] = {err, reinterpret_cast<void*>(static_cast<uintptr_t>(sizeof err - 1))};
  CUresult r = drv->cuModuleLoadDataEx(mod, image.c_str(), 2, o, v);
  if (r == CUDA_SUCCESS) return true;
  *why = drv->error_text(r) + (err[0] ? std::string(": ") + err : std::string());
  return false;
}

// The CUDA driver, or NVRTC, or a "gpu" error saying why it is not usable.
CudaDriver* usable_driver() {
  std::string why;
  CudaDriver* drv = CudaDriver::get(&why);
  if (!drv) throw UserError("gpu", "the GPU backend is not usable: " + why + "; use rkeops_use_cpu()");
  return drv;
}
Nvrtc* usable_nvrtc() {
  std::string why;
  Nvrtc* nv = Nvrtc::get(&why);
  if (!nv) throw UserError("gpu", "the GPU backend is not usable: " + why + "; use rkeops_use_cpu()");
  return nv;
}

}  // namespace

double open_gpu_context(int device) {
  CudaDriver* drv = usable_driver();
  auto t0 = Clock::now();
  drv->context(device);
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::shared_ptr<Kernel> load_cuda_kernel(Formula f, const EngineOptions& opt, const CompileWatch& watch) {
  CudaDriver* drv = usable_driver();
  Nvrtc* nv = usable_nvrtc();
  CudaDriver::DeviceInfo info = drv->info(opt.device);
  drv->context(opt.device);
  const int cc = info.cc_major * 10 + info.cc_minor;
  CodeOptions co = opt.code;
  if (cc < 80) co.cuda_f16_tc = 0;  // (its conversions and products need sm_80)
  CudaCode code = generate_cuda_code(f, co, opt.include_dir);
  const int arch = nv->best_arch_for(cc);
  if (arch < 0)
    throw UserError("gpu", "GPU " + std::to_string(opt.device) + " (" + info.name + ", compute capability " +
                               std::to_string(info.cc_major) + "." + std::to_string(info.cc_minor) +
                               ") is older than what NVRTC " + nv->version() + " supports; use rkeops_use_cpu()");
  // A CUBIN runs only on its own major architecture; otherwise PTX, which the driver compiles.
  const bool cubin = arch / 10 == info.cc_major;
  const int amaj = arch / 10, amin = arch % 10;
  const std::vector<std::string> nv_opts = Nvrtc::options(amaj, amin, {}, cubin);
  const std::string ext = cubin ? ".cubin" : ".ptx";
  const std::string key =
      sha256_hex(std::string(kEngineVersion) + "\ncuda abi " + std::to_string(kCudaAbiVersion) + "\nNVRTC " +
                 nv->version() + "\n" + join(nv_opts) + "\n" + ext + "\n" + code.source);
  ArtifactSteps steps;
  steps.key = key;
  steps.what = "GPU kernel";
  steps.canonical = f.canonical();
  CUmodule mod = nullptr;
  steps.load_cached = [&](DiskCache& cache, std::string* why) {
    std::string image;
    return cache.load_bytes(key, ext, &image) && load_module(drv, image, &mod, why);
  };
  steps.build = [&](DiskCache& cache) {
    const auto t0 = Clock::now();
    std::string image, why;
    try {
      // NVRTC compiles in this process and cannot be cancelled: it runs on a worker thread that
      // an interrupt or the time limit abandons (it finishes in the background, its result
      // discarded). The thread owns copies of what it reads; NVRTC stays loaded for the session.
      image = run_on_worker([nv, source = code.source, amaj, amin, cubin] {
        return nv->compile(source, "rkeops_kernel.cu", amaj, amin, {}, cubin);
      }, watch, "NVRTC");
    } catch (const CompileError& e) {
      std::string note, dump = cache.dump_failed(key, ".cu", code.source, &note);
      throw CompileError(std::string(e.what()) + "; " + note + "\n" + e.log, e.log, e.compiler, e.options, dump);
    }
    log_msg("rkeops: compiled a GPU kernel (" + std::string(cubin ? "CUBIN sm_" : "PTX compute_") +
            std::to_string(arch) + ") in " + std::to_string(std::chrono::duration<double>(Clock::now() - t0).count()) +
            " s");
    cache.store_bytes(key, ext, image);
    if (!load_module(drv, image, &mod, &why)) throw UserError("gpu", "the CUDA driver refused the compiled kernel: " + why);
  };
  const ArtifactOutcome got = load_or_build(steps, {opt.cache_dir, opt.fallback_cache_dir}, opt.forbid_compile);
  auto k = std::make_shared<CudaKernel>(std::move(f), std::move(code), opt.device, mod, info.sm_count);
  k->compile_seconds = got.compile_seconds;
  k->from_disk = got.from_disk;
  return k;
}

std::shared_ptr<Kernel> load_multi_gpu_kernel(const std::string& formula, const std::vector<std::string>& aliases,
                                              const EngineOptions& opt, const std::function<bool()>& interrupted) {
  std::vector<std::shared_ptr<CudaKernel>> per;
  double secs = 0;
  for (int d : opt.devices) {
    EngineOptions o = opt;
    o.devices.clear();
    o.device = d;
    auto k = std::dynamic_pointer_cast<CudaKernel>(get_kernel(formula, aliases, o, interrupted));
    RK_ASSERT(k != nullptr, "a GPU kernel was expected");
    secs += k->compile_seconds;
    per.push_back(k);
  }
  auto m = std::make_shared<MultiGpuKernel>(parse_formula(formula, aliases), std::move(per));
  m->compile_seconds = secs;
  return m;
}

GpuStatus gpu_status(bool always_nvrtc) {
  GpuStatus s;
  try {
    std::string why;
    CudaDriver* drv = CudaDriver::get(&why);
    if (!drv) {
      s.driver = why;
    } else {
      int v = drv->driver_version();
      s.driver =
          drv->library_path() + " (CUDA " + std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10) + ")";
      for (int d = 0; d < drv->device_count(); ++d) {
        CudaDriver::DeviceInfo i = drv->info(d);
        GpuStatus::Device dv;
        dv.name = i.name;
        dv.cc_major = i.cc_major;
        dv.cc_minor = i.cc_minor;
        dv.sm_count = i.sm_count;
        dv.memory_gb = static_cast<double>(i.total_mem) / (1024.0 * 1024.0 * 1024.0);
        s.devices.push_back(dv);
      }
    }
    if (s.devices.empty() && !always_nvrtc) {
      s.nvrtc = "not loaded (no GPU)";
      return s;
    }
    Nvrtc* nv = Nvrtc::get(&why);
    s.nvrtc = nv ? "NVRTC " + nv->version() + " (" + nv->library_path() + ")" : why;
    s.usable = drv && !s.devices.empty() && nv;
  } catch (const std::exception& e) {
    s.usable = false;
    if (s.driver.empty()) s.driver = e.what();
  }
  return s;
}

}  // namespace rkeops

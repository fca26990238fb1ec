// The CUDA backend's kernels and launch sequence without a GPU: generated CUDA sources are
// compiled by the host C++ compiler with cuda_emulation.h (threads of a block as std::threads)
// and driven by run_cuda_reduction() through an emulated device, then compared with the CPU
// backend. Covers every reduction, both axes, float32 and float64, splits of the inner range
// over blocks and chunks of outer and inner rows (a device with little memory). Float16
// kernels run with software half arithmetic (prelude_cuda_half.h) against float64 on the CPU.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <limits>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "batch.h"
#include "codegen.h"
#include "codegen_cuda.h"
#include "engine.h"
#include "kernel.h"
#include "errors.h"
#include "half.h"
#include "launch_cuda.h"
#include "ranges.h"

using namespace rkeops;

namespace {

// The module's device packing (fn 2), its threads one after the other: rk_pack_inner in the
// generic scheme's modules, rk_pack_pair in the high-dimension scheme's (the call: RK_EMU_PACK).
const char* kPackFooter = R"(
static void rk_emu_pack(unsigned gx, unsigned block, void** a) {
  for (unsigned bx = 0; bx < gx; ++bx)
    for (unsigned t = 0; t < block; ++t) {
      threadIdx.x = t; blockIdx.x = bx;
      RK_EMU_PACK;
    }
}
)";
const char* kPackInner = R"(
#define RK_EMU_PACK rk_pack_inner(*(T**)a[0], *(long long*)a[1], *(const T**)a[2], *(long long*)a[3], \
                                  *(long long*)a[4], *(long long*)a[5], *(int*)a[6])
)";
const char* kPackPair = R"(
#define RK_EMU_PACK rk_pack_pair(*(T**)a[0], *(long long*)a[1], *(const T**)a[2], *(long long*)a[3], \
                                 *(long long*)a[4], *(long long*)a[5], *(const double**)a[6], *(int*)a[7])
)";

const char* kFooter = R"(
extern "C" void rk_emu_launch(int fn, unsigned gx, unsigned gy, unsigned block, void** a) {
  gridDim.x = gx; gridDim.y = gy; blockDim.x = block;
  if (fn == 2) {
    rk_emu_pack(gx, block, a);
    return;
  }
  for (unsigned by = 0; by < gy; ++by)
    for (unsigned bx = 0; bx < gx; ++bx) {
      if (fn == 1) {  // no barrier in rk_merge: its threads run one after the other
        for (unsigned t = 0; t < block; ++t) {
          threadIdx.x = t; blockIdx.x = bx; blockIdx.y = by;
          rk_merge(*(const T**)a[0], *(const int**)a[1], *(const T**)a[2], *(int*)a[3], *(int*)a[4],
                   *(double**)a[5], *(long long*)a[6], *(int*)a[7], *(long long*)a[8], *(int*)a[9], *(int*)a[10]);
        }
        continue;
      }
      RkEmuBarrier bar(block);
      rk_emu_barrier = &bar;
      std::vector<std::thread> th;
      for (unsigned t = 0; t < block; ++t)
        th.emplace_back([=] {
          threadIdx.x = t; blockIdx.x = bx; blockIdx.y = by;
          rk_reduce(*(const TS**)a[0], *(long long*)a[1], *(const TV**)a[2], *(const TS**)a[3], *(int*)a[4],
                    *(int*)a[5], *(long long*)a[6], *(long long*)a[7], *(double**)a[8], *(long long*)a[9],
                    *(T**)a[10], *(int**)a[11], *(T**)a[12], *(int*)a[13], *(const long long**)a[14],
                    *(const long long**)a[15]);
        });
      for (auto& x : th) x.join();
    }
}
)";

std::string temp_dir() {
  static std::string dir = [] {
    char tpl[] = "/tmp/rkeops-emu-XXXXXX";
    const char* d = mkdtemp(tpl);
    return std::string(d ? d : "/tmp");
  }();
  return dir;
}

std::string cxx() {
  const char* c = std::getenv("CXX");
  return c && *c ? c : "c++";
}

// Builds the emulated kernel library of `code`; "" and *err on failure.
std::string build(const CudaCode& code, const std::string& name, std::string* err) {
  std::string base = temp_dir() + "/" + name;
  // RKEOPS_INCLUDE_DIR is <root>/inst/include; this header lives in <root>/tests/engine.
  std::ofstream(base + ".cpp") << "#include \"" << RKEOPS_INCLUDE_DIR << "/../../tests/engine/cuda_emulation.h\"\n"
                               << code.source << (code.hd.bm > 0 ? kPackPair : kPackInner) << kPackFooter << kFooter;
  std::string cmd = cxx() + " -std=c++17 -O1 -shared -fPIC -pthread -w -o " + base + ".so " + base + ".cpp 2>&1";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    *err = "popen failed";
    return "";
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  if (pclose(p) != 0) {
    *err = cmd + "\n" + out;
    return "";
  }
  return base + ".so";
}

using LaunchFn = void (*)(int, unsigned, unsigned, unsigned, void**);

// Builds and loads the emulated kernel library of `code` (file name `name`); its launcher, or
// nullptr with the reason in *err.
LaunchFn load_emulated(const CudaCode& code, const std::string& name, std::string* err) {
  std::string so = build(code, name, err);
  if (so.empty()) {
    *err = "emulated build failed: " + *err;
    return nullptr;
  }
  void* h = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    *err = std::string("dlopen: ") + dlerror();
    return nullptr;
  }
  auto launch = reinterpret_cast<LaunchFn>(dlsym(h, "rk_emu_launch"));
  if (!launch) *err = "no rk_emu_launch";
  return launch;
}

// A GPU made of host memory and CPU threads; `avail` bytes of "device memory".
class EmuBackend : public GpuBackend {
 public:
  EmuBackend(LaunchFn fn, size_t avail) : launch_(fn), avail_(avail) {}
  size_t available_bytes() override { return avail_; }
  int sm_count() override { return sms_; }
  int sms_ = 2;  // more: block-sparse items that cannot fill the "GPU" split over blocks
  int resident_blocks(int, int) override { return 1; }
  uint64_t buffer(int slot, size_t bytes) override {
    if (bufs_.size() <= static_cast<size_t>(slot)) bufs_.resize(slot + 1);
    auto& b = bufs_[slot];
    if (b.size() * sizeof(double) < bytes) {
      b.assign((bytes + 7) / 8, std::nan(""));  // poisoned: reads of unwritten data show
      ++allocations;
    }
    return reinterpret_cast<uint64_t>(b.data());
  }
  void* staging(size_t bytes) override {
    if (host_.size() * sizeof(double) < bytes) host_.assign((bytes + 7) / 8, std::nan(""));
    return host_.data();
  }
  void h2d(uint64_t dst, const void* src, size_t bytes) override {
    std::memcpy(reinterpret_cast<void*>(dst), src, bytes);
    h2d_bytes += bytes;
  }
  void d2h(void* dst, uint64_t src, size_t bytes) override { std::memcpy(dst, reinterpret_cast<void*>(src), bytes); }
  void launch(int fn, unsigned gx, unsigned gy, unsigned block, void** args) override {
    if (fn == 2 && !packs_) throw std::runtime_error("device packing launched where packs_inner() is false");
    launches[fn]++;
    max_grid_y = std::max(max_grid_y, gy);
    launch_(fn, gx, gy, block, args);
  }
  // Device-resident inputs: an emulated device copy (converted like the host packing), made
  // once per matrix, for the whole matrix only (as CudaBackend::resident).
  uint64_t resident(const Input& x, int elem) override {
    if (!x.device || x.data != x.device->host() || x.rows != x.device->rows() || x.stride() != x.device->rows())
      return 0;
    ++resident_hits;
    auto& c = copies_[x.device.get()];
    if (c.empty()) {
      const long long n = x.rows * x.cols;
      c.assign(static_cast<size_t>(n), std::nan(""));
      for (long long k = 0; k < n; ++k) {
        if (elem == 4)
          reinterpret_cast<float*>(c.data())[k] = static_cast<float>(x.data[k]);
        else
          c[k] = x.data[k];
      }
    }
    return reinterpret_cast<uint64_t>(c.data());
  }
  void d2d(uint64_t dst, uint64_t src, size_t bytes) override {
    std::memcpy(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), bytes);
    d2d_bytes += bytes;
  }
  bool packs_inner() override { return packs_; }
  bool packs_ = true;  // every module has its device packing (rk_pack_inner, rk_pack_pair)
  void mark(int) override {}
  void sync() override {}
  double elapsed_ms(int, int) override { return 0; }
  long long piece_bytes() override { return piece_; }
  const std::vector<double>& buffer_of(int slot) const { return bufs_[static_cast<size_t>(slot)]; }
  long long piece_ = 32LL << 20;

  int launches[3] = {0, 0, 0};
  unsigned max_grid_y = 0;
  size_t h2d_bytes = 0, d2d_bytes = 0;
  int allocations = 0, resident_hits = 0;

 private:
  std::map<const DeviceMatrix*, std::vector<double>> copies_;
  LaunchFn launch_;
  size_t avail_;
  std::vector<std::vector<double>> bufs_;
  std::vector<double> host_;
};

struct Case {
  std::string formula;
  std::vector<std::string> aliases;
  DType dtype;
  SumScheme scheme;
  long long ni, nj;
  size_t avail;       // emulated device memory
  bool expect_split;  // expect the inner range split over blocks
  bool hd = false;    // expect the high-dimension scheme (codegen_cuda_hd.h)
  int loop_dim = kLoopDim;  // of the GPU kernel (1: every node with loops); the CPU keeps the default
  bool device = false;      // the i and j inputs are device matrices (DeviceMatrix)
  int hd_mma = 1;           // CodeOptions::cuda_hd_mma (float32 high-dimension scheme)
  int hd_split = 2;         // CodeOptions::cuda_hd_split (its tensor cores)
  bool emu_mma = false;     // emulate its tensor-core instructions (RK_EMU_MMA), not multiply-adds
  long long piece = 0;      // the device's piece size (0: 4 KiB for odd case numbers, else 32 MiB)
  long long expect_pieces = 0;  // the inner pieces a launch plan must have (0: any)
};

std::string cache_dir() {
  const char* d = std::getenv("RKEOPS_CACHE_DIR");
  return d && *d ? d : temp_dir() + "/cache";
}

// Options of the CPU kernels the emulated GPU is compared with: they only need to be right,
// and built fast.
EngineOptions reference_options(const CodeOptions& co, int nthreads) {
  EngineOptions eo;
  eo.code = co;
  eo.nthreads = nthreads;
  eo.cache_dir = cache_dir();
  eo.include_dir = RKEOPS_INCLUDE_DIR;
  eo.compiler.flags = "-O1 -fPIC -shared";
  return eo;
}

// Random inputs for the formula's arguments (rows = points).
std::vector<std::vector<double>> make_inputs(const Formula& f, long long ni, long long nj, std::vector<Input>* in) {
  std::mt19937 gen(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<std::vector<double>> data;
  for (const ArgInfo& a : f.args) {
    long long rows = a.cat == CAT_I ? ni : a.cat == CAT_J ? nj : 1;
    std::vector<double> v(rows * a.dim);
    for (auto& x : v) x = u(gen);
    data.push_back(std::move(v));
  }
  in->clear();
  for (size_t k = 0; k < f.args.size(); ++k) {
    Input x;
    x.data = data[k].data();
    x.rows = f.args[k].cat == CAT_P ? 1 : (f.args[k].cat == CAT_I ? ni : nj);
    x.cols = f.args[k].dim;
    in->push_back(x);
  }
  return data;
}

// A random block-sparse pattern (ranges.h) for n_out result rows and n_in inner rows: clusters
// of random sizes (some empty), rows before the first outer range in none, ~40% of blocks kept.
BlockRanges random_ranges(long long n_out, long long n_in, unsigned seed) {
  std::mt19937 gen(seed);
  auto cuts = [&gen](long long n, int c, long long first) {
    std::vector<long long> v = {first, n};
    for (int k = 1; k < c; ++k) v.push_back(first + static_cast<long long>(gen() % (n - first + 1)));
    std::sort(v.begin(), v.end());
    return v;
  };
  const int co = 2 + static_cast<int>(gen() % 6), ci = 1 + static_cast<int>(gen() % 7);
  const std::vector<long long> o = cuts(n_out, co, n_out > 10 ? 3 : 0), in = cuts(n_in, ci, 0);
  BlockRanges r;
  for (int a = 0; a < co; ++a) {
    r.outer.push_back(static_cast<int>(o[a]));
    r.outer.push_back(static_cast<int>(o[a + 1]));
    for (int b = ci - 1; b >= 0; --b)  // unsorted lists: the engine sorts them
      if (gen() % 10 < 4) {
        r.inner.push_back(static_cast<int>(in[b]));
        r.inner.push_back(static_cast<int>(in[b + 1]));
      }
    r.slices.push_back(static_cast<int>(r.inner.size() / 2));
  }
  return r;
}

// The result (`size` values) computed in `blocks` blocks of result rows, each its own launch
// (what several GPUs compute).
std::vector<double> rows_in_blocks(LaunchFn launch, const CudaCode& code, const Formula& f,
                                   const std::vector<Input>& in, const CallShape& shape, size_t avail, int blocks,
                                   size_t size) {
  std::vector<double> rows(size, -12345.0);
  for (int g = 0; g < blocks; ++g) {
    LaunchPart part;
    part.r0 = shape.out_rows * g / blocks;
    part.r1 = shape.out_rows * (g + 1) / blocks;
    EmuBackend d2(launch, avail);
    run_cuda_reduction(d2, code, f, in, shape, rows.data(), 2, nullptr, nullptr, part);
  }
  return rows;
}

// The partial states (the CPU kernel's layout, W columns per row) of the two halves of the
// reduced index, each run as its own call (what several GPUs or a distributed call hand over).
std::vector<std::vector<double>> states_of_two_pieces(LaunchFn launch, const CudaCode& code, const Formula& f,
                                                      const std::vector<Input>& in, const CallShape& shape,
                                                      size_t avail) {
  const long long n_out = shape.out_rows, n_in = f.axis == 1 ? shape.n_j : shape.n_i;
  const int W = code.state_t + code.state_i + code.state_c;
  std::vector<std::vector<double>> states(2, std::vector<double>(n_out * W, -12345.0));
  for (int g = 0; g < 2; ++g) {
    const long long j0 = n_in * g / 2, j1 = n_in * (g + 1) / 2;
    std::vector<Input> piece = in;
    for (size_t k = 0; k < in.size(); ++k)
      if (f.args[k].cat == f.inner_cat()) {
        piece[k].ld = in[k].stride();
        piece[k].data = in[k].data + j0;
        piece[k].rows = j1 - j0;
      }
    CallShape sh = shape;
    (f.axis == 1 ? sh.n_j : sh.n_i) = j1 - j0;
    LaunchPart part;
    part.states = true;
    part.jbase = j0;
    EmuBackend dev(launch, avail);
    run_cuda_reduction(dev, code, f, piece, sh, states[g].data(), 2, nullptr, nullptr, part);
  }
  return states;
}

// Results are compared entry by entry relative to themselves or to 1e-3 of the largest finite
// entry of the reference (sums of terms of both signs, e.g. gradients, cancel): that floor.
double compare_scale(const std::vector<double>& ref) {
  double scale = 1e-6;
  for (double v : ref)
    if (std::isfinite(v)) scale = std::max(scale, 1e-3 * std::fabs(v));
  return scale;
}
bool agrees(double a, double b, double tol, double scale) {
  return (std::isnan(a) && std::isnan(b)) || a == b || std::fabs(a - b) <= tol * (std::fabs(b) + scale);
}

// `name`: the emulated library's file name, distinct across tests (a library loaded under a
// name stays loaded: a rebuilt file of the same name would not be loaded again).
std::string run_case(const Case& c, size_t id, const std::string& name) {
  Formula f = parse_formula(c.formula, c.aliases);
  CodeOptions co;
  co.dtype = c.dtype;
  co.scheme = c.scheme;
  co.loop_dim = c.loop_dim;
  co.cuda_hd_mma = c.hd_mma;
  co.cuda_hd_split = c.hd_split;
  CudaCode code = generate_cuda_code(f, co, RKEOPS_INCLUDE_DIR);
  if (c.hd != (code.hd.bm > 0)) return c.hd ? "expected the high-dimension scheme" : "unexpected high-dimension scheme";
  if (c.emu_mma) code.source = "#define RK_EMU_MMA 1\n" + code.source;
  std::string err;
  const LaunchFn launch = load_emulated(code, name + std::to_string(id), &err);
  if (!launch) return err;

  std::vector<Input> in;
  auto data = make_inputs(f, c.ni, c.nj, &in);
  if (c.device)
    for (size_t k = 0; k < in.size(); ++k)
      if (f.args[k].cat != CAT_P) in[k].device = std::make_shared<DeviceMatrix>(in[k].data, in[k].rows, in[k].cols);
  CallShape shape = check_inputs(f, in);
  std::vector<double> gpu(shape.out_rows * f.out_dim, -12345.0), cpu(gpu.size(), 0.0);
  EmuBackend dev(launch, c.avail);
  if (id % 2) dev.piece_ = 4096;  // resident inner rows in pieces, pipelined
  if (c.piece > 0) dev.piece_ = c.piece;
  GpuRunStats st;
  run_cuda_reduction(dev, code, f, in, shape, gpu.data(), 2, nullptr, &st);

  static std::mutex cpu_mutex;  // get_kernel() is called from one thread at a time
  std::lock_guard<std::mutex> lock(cpu_mutex);
  EngineOptions eo = reference_options(co, 2);
  eo.code.loop_dim = kLoopDim;
  get_kernel(c.formula, c.aliases, eo)->run(in, shape, cpu.data(), eo, nullptr);

  const double tol = c.dtype == DType::Float64 ? 1e-10 : 2e-5;
  const double scale = compare_scale(cpu);
  for (size_t k = 0; k < gpu.size(); ++k) {
    double a = gpu[k], b = cpu[k];
    if (!agrees(a, b, tol, scale))
      return "entry " + std::to_string(k) + " (row " + std::to_string(k % shape.out_rows) + ", col " +
             std::to_string(k / shape.out_rows) + "): emulated GPU " + std::to_string(a) + ", CPU " + std::to_string(b);
  }
  // A block-sparse pattern (not for the high-dimension scheme, which refuses ranges): the
  // emulated GPU's work items against the CPU kernel's, same ranges.
  if (!c.hd && id % 2 == 0) {
    const long long n_out = shape.out_rows, n_in = f.axis == 1 ? shape.n_j : shape.n_i;
    auto br = std::make_shared<BlockRanges>(random_ranges(n_out, n_in, static_cast<unsigned>(id) + 11));
    std::vector<double> gs(gpu.size(), -12345.0), cs(gpu.size(), 0.0);
    LaunchPart part;
    part.ranges = br.get();
    EmuBackend d3(launch, c.avail > 120000 ? c.avail : 1ull << 30);
    d3.sms_ = 64;
    if (id % 4 == 0) d3.piece_ = 4096;  // in pieces (sparse_pieces) where the pattern allows
    GpuRunStats s3;
    run_cuda_reduction(d3, code, f, in, shape, gs.data(), 2, nullptr, &s3, part);
    if (c.expect_split && code.tile < 128 && s3.nsplit < 2) return "block-sparse: expected the work items split over blocks";
    EngineOptions es = eo;
    es.ranges = br;
    get_kernel(c.formula, c.aliases, es)->run(in, shape, cs.data(), es, nullptr);
    const double sparse_scale = compare_scale(cs);
    for (size_t k = 0; k < gs.size(); ++k) {
      double a = gs[k], b = cs[k];
      if (!agrees(a, b, tol, sparse_scale))
        return "block-sparse: entry " + std::to_string(k) + " (row " + std::to_string(k % n_out) + "): emulated GPU " +
               std::to_string(a) + ", CPU " + std::to_string(b);
    }
  }
  // The parts of a call that several GPUs compute (MultiGpuKernel): blocks of result rows, and
  // partial states over pieces of the reduced index read in place, merged by the CPU kernel.
  if (id % 3 == 0) {
    const std::vector<double> rows = rows_in_blocks(launch, code, f, in, shape, c.avail, 2, gpu.size());
    // (other launch shapes: other summation orders, so within the tolerance, not bit for bit)
    for (size_t k = 0; k < gpu.size(); ++k) {
      double a = rows[k], b = cpu[k];
      if (!agrees(a, b, tol, scale))
        return "row blocks: entry " + std::to_string(k) + ": " + std::to_string(a) + " vs CPU " + std::to_string(b);
    }
    const int W = code.state_t + code.state_i + code.state_c;
    const auto states = states_of_two_pieces(launch, code, f, in, shape, c.avail);
    std::vector<double> merged(gpu.size(), -12345.0);
    {
      static std::mutex merge_mutex;
      std::lock_guard<std::mutex> lock(merge_mutex);
      EngineOptions eo = reference_options(co, 1);
      auto k = get_kernel(c.formula, c.aliases, eo);
      if (k->state_width() != W) return "GPU and CPU partial states differ in width";
      k->merge_partials({states[0].data(), states[1].data()}, shape.out_rows, merged.data(), nullptr, eo);
    }
    for (size_t k = 0; k < gpu.size(); ++k) {
      double a = merged[k], b = cpu[k];
      if (!agrees(a, b, tol, scale))
        return "merged GPU partial states: entry " + std::to_string(k) + ": " + std::to_string(a) + " vs CPU " +
               std::to_string(b);
    }
  }
  if (c.device) {  // every outer input (and inner ones of the high-dimension scheme) copied on the device
    bool any = false, inner = false;
    for (size_t k = 0; k < in.size(); ++k) {
      any = any || code.x_off[k] >= 0 || (code.hd.bm > 0 && code.y_off[k] >= 0);
      inner = inner || (code.hd.bm == 0 && code.y_off[k] >= 0);
    }
    if (any && dev.resident_hits == 0) return "no device-resident input was used";
    if (inner && dev.launches[2] == 0) return "no inner variable was packed on the device";
    if (code.hd.bm > 0 && dev.launches[2] == 0) return "no pair variable was packed on the device";
  }
  if (c.expect_pieces > 0 && st.chunks_inner != c.expect_pieces)
    return "expected " + std::to_string(c.expect_pieces) + " inner pieces, got " + std::to_string(st.chunks_inner);
  const bool pieces = id % 2 && c.piece == 0;  // short pieces: too short to be split over blocks as well
  if (c.expect_split && !pieces && dev.max_grid_y < 2) return "expected a split of the inner range, got none";
  if (c.expect_split && dev.launches[1] < 1) return "expected a merge";
  if (c.avail == 120000 && st.chunks_outer * st.chunks_inner < 2) return "expected chunks with little memory";
  return "";
}

std::vector<Case> cases() {
  std::vector<Case> v;
  const size_t big = 1ull << 34, small = 120000;  // small: chunks of outer and inner rows
  const std::string F1 = "(-SqDist(x, y))", F2 = "Concat(Elem(x, 0) - Elem(y, 0), Elem(x, 1) * Elem(y, 1))";
  struct R {
    std::string red;
    bool d1;
  };
  const std::vector<R> reds = {{"Sum_Reduction(F, A)", false},
                               {"Min_Reduction(F, A)", false},
                               {"ArgMax_Reduction(F, A)", false},
                               {"Min_ArgMin_Reduction(F, A)", true},
                               {"Max_ArgMax_Reduction(F, A)", false},
                               {"KMin_Reduction(F, 3, A)", false},
                               {"ArgKMin_Reduction(F, 5, A)", true},
                               {"KMin_ArgKMin_Reduction(F, 2, A)", true},
                               {"LogSumExp_Reduction(F, A)", true},
                               {"Max_SumShiftExp_Reduction(F, A)", true},
                               {"SumSoftMaxWeight_Reduction(F, w, A)", true},
                               {"LogSumExpWeight_Reduction(F, Elem(w, 0), A)", true},
                               {"Max_ArgMax_Reduction(F, A)", true},
                               {"Max_SumShiftExpWeight_Reduction(F, w, A)", true},
                               {"Max_Reduction(F, A)", false},
                               {"ArgMin_Reduction(F, A)", true},
                               {"KMin_ArgKMin_Reduction(F, 4, A)", false}};
  int n = 0;
  for (const R& r : reds) {
    for (int axis = 0; axis <= 1; ++axis) {
      Case c;
      std::string fml = r.red;
      fml.replace(fml.find('F'), 1, r.d1 ? F1 : F2);
      fml.replace(fml.rfind('A'), 1, std::to_string(axis));
      c.formula = fml;
      c.aliases = {"x=Vi(2)", "y=Vj(2)", axis == 1 ? "w=Vj(2)" : "w=Vi(2)"};
      if (fml.find(" w") == std::string::npos && fml.find("(w") == std::string::npos) c.aliases.pop_back();
      c.dtype = (n % 2) ? DType::Float32 : DType::Float64;
      c.scheme = SumScheme::Auto;
      // outer rows fill 2 blocks; the inner range is long enough to be split over blocks
      c.ni = axis == 1 ? 300 : 4100;
      c.nj = axis == 1 ? 4100 : 300;
      c.avail = (n % 3 == 2) ? small : big;
      c.expect_split = c.avail == big;
      v.push_back(c);
      ++n;
    }
  }
  // Sum schemes and a Gaussian kernel with a parameter, float32 and float64.
  for (SumScheme s : {SumScheme::Block, SumScheme::Kahan, SumScheme::Direct})
    for (DType dt : {DType::Float32, DType::Float64}) {
      Case c{"Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
             {"x=Vi(3)", "y=Vj(3)", "b=Vj(2)", "g=Pm(1)"},
             dt,
             s,
             257,
             3000,
             s == SumScheme::Kahan ? small : big,
             s != SumScheme::Kahan};
      v.push_back(c);
    }
  // no inner variable; no outer variable; a wide inner row read from shared memory in place
  v.push_back({"Sum_Reduction(x * 2, 1)", {"x=Vi(2)"}, DType::Float64, SumScheme::Auto, 300, 1, big, false});
  v.push_back({"Sum_Reduction(y, 1)", {"y=Vj(3)"}, DType::Float32, SumScheme::Auto, 1, 5000, big, true});
  // Every reduction again (one axis each) with every node of dimension > 1 in loops: the
  // looped reduction pieces (states, merges, partial states) and the operations' loops.
  for (size_t k = 0; k < reds.size(); ++k) {
    Case c = v[2 * k + k % 2];
    c.loop_dim = 1;
    v.push_back(c);
  }
  // Wide formulas: F of 40 components (block sums, Kahan sums, K-family insertion in loops),
  // inner rows of 300 and 2000 values (read from global memory, not a shared tile).
  const std::vector<std::string> w40 = {"x=Vi(40)", "y=Vj(40)", "b=Vj(1)", "g=Pm(1)", "e=Vi(1)"};
  v.push_back({"Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, x, e), 1)", w40, DType::Float64, SumScheme::Block, 257,
               3000, big, true});
  v.push_back({"Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, x, e), 1)", w40, DType::Float32, SumScheme::Kahan, 257,
               3000, small, false});
  v.push_back({"KMin_ArgKMin_Reduction(x - y, 2, 0)", {"x=Vi(40)", "y=Vj(40)"}, DType::Float64, SumScheme::Auto, 3000,
               200, big, true});
  v.push_back({"Min_ArgMin_Reduction(Exp(x) * y, 1)", {"x=Vi(40)", "y=Vj(40)"}, DType::Float32, SumScheme::Auto, 200,
               3000, big, true});
  // (x and y used beyond the distance: not the high-dimension scheme)
  v.push_back({"ArgKMin_Reduction(SqDist(x, y) + Sum(Exp(-Abs(x - y))), 4, 1)", {"x=Vi(500)", "y=Vj(500)"},
               DType::Float32, SumScheme::Auto, 200, 3000, big, true});
  v.push_back({"Sum_Reduction(Exp(-SqNorm2(x - y) * g) * Normalize(y - x), 0)",
               {"x=Vi(2000)", "y=Vj(2000)", "g=Pm(1)"}, DType::Float64, SumScheme::Auto, 600, 70, 1ull << 24, false});
  return v;
}

// The high-dimension scheme (codegen_cuda_hd.h); its blocks have 256 threads (128 for the
// float32 tensor-core tiles: 64 rows) and sweep many chunks, so the sizes are small; the cases
// that expect a split of the inner range have one block of outer rows.
std::vector<Case> hd_cases() {
  std::vector<Case> v;
  const size_t big = 1ull << 34, small = 120000;
  // The high-dimension scheme: distances and inner products of dimension >= 32 (not multiples
  // of the chunk of components), every kind of pairwise node, other variables, both axes,
  // uneven sizes, splits, pieces and chunks. Indices in float64 only: float32 distances by
  // |x|^2 + |y|^2 - 2 <x, y> and by differences may order near ties differently.
  const auto F32 = DType::Float32, F64 = DType::Float64;
  const auto A = SumScheme::Auto;
  v.push_back({"ArgKMin_Reduction(SqDist(x, y), 3, 1)", {"x=Vi(40)", "y=Vj(40)"}, F32, A, 200, 1000, big, false, true});
  v.push_back({"ArgKMin_Reduction(SqDist(x, y), 5, 1)", {"x=Vi(45)", "y=Vj(45)"}, F64, A, 131, 1201, big, true, true});
  v.push_back(
      {"KMin_ArgKMin_Reduction(SqNorm2(x - y), 3, 0)", {"x=Vi(33)", "y=Vj(33)"}, F64, A, 1500, 70, small, false, true});
  v.push_back({"KMin_Reduction(Concat(SqDist(y, x), (x | y)), 4, 1)",
               {"x=Vi(34)", "y=Vj(34)"},
               F32,
               A,
               150,
               800,
               big,
               true,
               true});
  v.push_back({"Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 0)",
               {"x=Vi(33)", "y=Vj(33)", "b=Vi(2)", "g=Pm(1)"},
               F32,
               A,
               1000,
               61,
               big,
               true,
               true});
  v.push_back({"Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
               {"x=Vi(50)", "y=Vj(50)", "b=Vj(2)", "g=Pm(1)"},
               F64,
               SumScheme::Kahan,
               90,
               800,
               small,
               false,
               true});
  v.push_back({"LogSumExp_Reduction((x | y) * g - Elem(b, 1), 1)",
               {"x=Vi(64)", "y=Vj(64)", "b=Vj(2)", "g=Pm(1)"},
               F32,
               A,
               45,
               1001,
               big,
               true,
               true});
  v.push_back({"Min_ArgMin_Reduction(WeightedSqDist(s, x, y) + Square(u - Elem(b, 0)), 1)",
               {"x=Vi(40)", "y=Vj(40)", "s=Vi(1)", "u=Vi(1)", "b=Vj(2)"},
               F64,
               A,
               300,
               700,
               big,
               true,
               true});
  v.push_back({"SumSoftMaxWeight_Reduction(-SqDist(x, y) / 40, w, 1)",
               {"x=Vi(40)", "y=Vj(40)", "w=Vj(3)"},
               F32,
               A,
               1,
               1500,
               big,
               true,
               true});
  v.push_back(
      {"Max_SumShiftExp_Reduction((x | y) / 32, 0)", {"x=Vi(32)", "y=Vj(32)"}, F64, A, 1200, 20, big, false, true});
  // float32 on the tensor cores' layout: with the mma instructions emulated (slow: two barriers
  // per instruction, so one block and one tile), and the FP32 register tiles (cuda_hd_mma = 0).
  Case m1{"ArgKMin_Reduction(SqDist(x, y), 3, 1)", {"x=Vi(40)", "y=Vj(40)"}, F32, A, 100, 120, big, false, true};
  m1.emu_mma = true;
  v.push_back(m1);
  Case m2{"Sum_Reduction(Exp(-g * SqDist(x, y)) * b * (x | y), 1)", {"x=Vi(33)", "y=Vj(33)", "b=Vj(2)", "g=Pm(1)"},
          F32, A, 70, 100, big, false, true};
  m2.emu_mma = true;
  v.push_back(m2);
  // (the cross terms on two TF32 instructions, heads truncated and rounded)
  Case m3 = m1, m4 = m2;
  m3.hd_split = 1;
  m4.hd_split = 0;
  v.push_back(m3);
  v.push_back(m4);
  // inner rows (700 x 46 doubles, 258 KB) that fit in one piece of 512 KB but ramp up in 3
  // (the k-NN lists carried from piece to piece in one piece's slots)
  Case r1{"ArgKMin_Reduction(SqDist(x, y), 5, 1)", {"x=Vi(45)", "y=Vj(45)"}, F64, A, 150, 700, big, false, true};
  r1.piece = 512 << 10;
  r1.expect_pieces = 3;
  v.push_back(r1);
  Case f1{"ArgKMin_Reduction(SqDist(x, y), 3, 1)", {"x=Vi(40)", "y=Vj(40)"}, F32, A, 200, 1000, big, false, true};
  f1.hd_mma = 0;
  v.push_back(f1);
  // Not the scheme: the variables are used elsewhere too, or the products are of low dimension.
  v.push_back({"Sum_Reduction(SqDist(x, y) + Elem(x, 0), 1)", {"x=Vi(40)", "y=Vj(40)"}, F64, A, 50, 300, big, false});
  v.push_back({"Sum_Reduction(SqDist(x, y), 1)", {"x=Vi(20)", "y=Vj(20)"}, F64, A, 50, 300, big, false});
  return v;
}

// Device-resident inputs (rkeops_device(), device_matrix.h): copied device to device into the
// packed buffers where their layout is column-major; the same results as host inputs, with
// chunks of outer and inner rows, splits, pieces, both axes, both precisions.
std::vector<Case> device_cases() {
  std::vector<Case> v;
  const size_t big = 1ull << 34, tight = 50000;  // tight: chunks of outer rows
  const auto F32 = DType::Float32, F64 = DType::Float64;
  const auto A = SumScheme::Auto;
  const std::vector<std::string> xyb = {"x=Vi(3)", "y=Vj(3)", "b=Vj(2)"};
  for (auto dt : {F32, F64}) {
    v.push_back({"Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", xyb, dt, A, 1000, 700, tight, false, false, kLoopDim, true});
    v.push_back({"Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", xyb, dt, A, 2000, 300, big, false, false, kLoopDim, true});
    v.push_back({"Sum_Reduction(Exp(-SqDist(x, y)) * Concat(b, x), 0)", xyb, dt, A, 600, 900, big, false, false,
                 kLoopDim, true});
    v.push_back({"ArgMin_Reduction(SqDist(x, c), 1)", {"x=Vi(10)", "c=Vj(10)"}, dt, A, 3001, 37, tight, false, false,
                 kLoopDim, true});
    v.push_back({"Sum_Reduction(Equal(l, k) * Concat(x, IntCst(1)), 0)", {"x=Vi(10)", "l=Vi(1)", "k=Vj(1)"}, dt, A, 1500,
                 20, big, false, false, kLoopDim, true});
    // float32 exponentials of scaled terms (log2(e) folded into the scale) in register-blocked rows
    v.push_back({"Sum_Reduction(Exp(-g * SqDist(x, y)) * b + Exp(SqDist(x, y) / -h), 1)",
                 {"x=Vi(3)", "y=Vj(3)", "b=Vj(2)", "g=Pm(1)", "h=Pm(1)"}, dt, A, 1300, 500, big, false, false, kLoopDim,
                 true});
    // wide inner rows (small tiles): block-sparse work items split over blocks on a "GPU" of 64
    // multiprocessors (one of the two has an even case number, which runs a block-sparse
    // pattern too)
    for (int twice = 0; twice < 2; ++twice)
      v.push_back({"Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(60)"}, dt, A, 300, 4100,
                   big, true, false, kLoopDim, true});
    // float32 log-sum-exps run in log2 units (the scale folded, no test for -Inf per term)
    v.push_back({"LogSumExp_Reduction(-g * SqDist(x, y), 0)", {"x=Vi(3)", "y=Vj(3)", "g=Pm(1)"}, dt, A, 700, 2100, big,
                 false, false, kLoopDim, true});
  }
  v.push_back({"Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 0)", {"x=Vi(33)", "y=Vj(33)", "b=Vi(2)", "g=Pm(1)"}, F32, A,
               1000, 97, big, false, true, kLoopDim, true});
  v.push_back({"Min_ArgMin_Reduction(WeightedSqDist(s, x, y) + Square(u - Elem(b, 0)), 1)",
               {"x=Vi(40)", "y=Vj(40)", "s=Vi(1)", "u=Vi(1)", "b=Vj(2)"}, F64, A, 300, 700, big, false, true,
               kLoopDim, true});
  // high-dimension pair variables only (shifted and normed by rk_pack_pair), in chunks of
  // outer rows too; inner products (not shifted)
  v.push_back({"KMin_ArgKMin_Reduction(SqDist(x, y), 4, 1)", {"x=Vi(37)", "y=Vj(37)"}, F64, A, 300, 150, tight, false,
               true, kLoopDim, true});
  v.push_back({"ArgKMin_Reduction(SqDist(x, y), 3, 0)", {"x=Vi(40)", "y=Vj(40)"}, F32, A, 140, 120, big, false, true,
               kLoopDim, true});
  v.push_back({"LogSumExp_Reduction((x | y) / 40, 1)", {"x=Vi(40)", "y=Vj(40)"}, F32, A, 130, 200, big, false, true,
               kLoopDim, true});
  return v;
}

// rk_pack_inner against the host packing, byte for byte: the packed inner rows on the device
// (buffer slot 1) after a call whose inner variables are device-resident (all, or some: the
// others copied column-major and interleaved on the device too) equal those of the same call on
// host inputs, and so do the results; only the host's own variables are copied.
// `device`: per input position, whether it is device-resident.
std::string packed_rows_case(const std::string& formula, const std::vector<std::string>& aliases, DType dt,
                             long long ni, long long nj, size_t avail, long long piece, const std::vector<bool>& device,
                             const std::string& name) {
  Formula f = parse_formula(formula, aliases);
  CodeOptions co;
  co.dtype = dt;
  CudaCode code = generate_cuda_code(f, co, RKEOPS_INCLUDE_DIR);
  if (code.hd.bm > 0) return "unexpected high-dimension scheme";
  std::string err;
  const LaunchFn launch = load_emulated(code, name, &err);
  if (!launch) return err;
  std::vector<Input> in;
  auto data = make_inputs(f, ni, nj, &in);
  std::vector<Input> din = in;
  for (size_t k = 0; k < in.size(); ++k)
    if (device[k]) din[k].device = std::make_shared<DeviceMatrix>(in[k].data, in[k].rows, in[k].cols);
  const CallShape shape = check_inputs(f, in);
  std::vector<double> a(shape.out_rows * f.out_dim, -1.0), b(a.size(), -2.0);
  EmuBackend host(launch, avail), dev(launch, avail);
  host.piece_ = dev.piece_ = piece;
  GpuRunStats sa, sb;
  run_cuda_reduction(host, code, f, in, shape, a.data(), 2, nullptr, &sa);
  run_cuda_reduction(dev, code, f, din, shape, b.data(), 2, nullptr, &sb);
  if (dev.launches[2] == 0) return "rk_pack_inner was not launched";
  if (host.launches[2] != 0) return "rk_pack_inner launched for host inputs";
  const std::vector<double>&ya = host.buffer_of(1), &yb = dev.buffer_of(1);
  if (ya.size() != yb.size()) return "packed inner buffers of different sizes";
  if (std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(double)) != 0) {
    const unsigned char *p = reinterpret_cast<const unsigned char*>(ya.data()),
                        *q = reinterpret_cast<const unsigned char*>(yb.data());
    size_t k = 0;
    while (p[k] == q[k]) ++k;
    return "packed inner rows differ from byte " + std::to_string(k) + " (value " + std::to_string(k / code.elem) +
           ", row width " + std::to_string(code.wy) + ")";
  }
  if (std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) != 0) return "results differ";
  // only the host's inner variables travel (their own columns, not the packed rows; once when
  // the inner rows are resident)
  if (sb.chunks_outer > 1) return "";
  size_t up = 0;
  for (size_t k = 0; k < in.size(); ++k)
    if (code.y_off[k] >= 0 && !device[k]) up += static_cast<size_t>(in[k].rows * in[k].cols * code.elem);
  size_t outer = 0;
  for (size_t k = 0; k < in.size(); ++k)
    if (code.x_off[k] >= 0) outer += static_cast<size_t>(in[k].rows * in[k].cols * code.elem);
  if (dev.h2d_bytes > up + outer + static_cast<size_t>(code.np * code.elem))
    return "more than the host's variables copied: " + std::to_string(dev.h2d_bytes) + " bytes";
  return "";
}

// Runs the cases on the emulated device, 4 at a time; a failure names the case.
void run_all(const std::vector<Case>& cs, const std::string& name) {
  std::vector<std::string> errors(cs.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next++) < cs.size();) {
      try {
        errors[k] = run_case(cs[k], k, name);
      } catch (const std::exception& e) { errors[k] = std::string("exception: ") + e.what(); }
    }
  };
  // Each case builds its own library and runs on its own threads.
  unsigned nt = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  std::vector<std::thread> th;
  for (unsigned t = 0; t < nt; ++t) th.emplace_back(work);
  for (auto& t : th) t.join();
  for (size_t k = 0; k < cs.size(); ++k)
    EXPECT_TRUE(errors[k].empty()) << cs[k].formula << (cs[k].dtype == DType::Float32 ? " (float32)" : " (float64)")
                                   << ": " << errors[k];
}

bool have_cxx() {
  std::string cmd = cxx() + " --version > /dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// ---- float16 (rkeops_use_float16()) ----
// The emulated float16 kernel against the float64 CPU kernel, at the tolerance the docs state
// (R/options.R, rkeops_use_float16): |gpu - cpu| <= tol (|cpu| + max |cpu|) per column of the
// result for sums (terms of both signs: gradients), tol (|cpu| + 1) for log-sum-exps; for
// Min_ArgMin, the minimum to tol and the index's own value (recomputed here) to tol too.
struct F16Case {
  std::string formula;
  std::vector<std::string> aliases;
  long long ni, nj;
  size_t avail;
  int rows_per_thread;  // 2: half2 pairs, 1: float32 evaluation
  double tol;
};

std::string compare_f16(const std::vector<double>& gpu, const std::vector<double>& cpu, long long rows, double tol,
                        bool log_scale, double* worst) {
  for (size_t c0 = 0; c0 < cpu.size(); c0 += static_cast<size_t>(rows)) {
    double scale = 0;
    for (long long r = 0; r < rows; ++r)
      if (std::isfinite(cpu[c0 + r])) scale = std::max(scale, std::fabs(cpu[c0 + r]));
    for (long long r = 0; r < rows; ++r) {
      const double a = gpu[c0 + r], b = cpu[c0 + r];
      if (a == b || (std::isnan(a) && std::isnan(b))) continue;  // -Inf for empty rows of LogSumExp
      const double err = std::fabs(a - b) / (log_scale ? std::fabs(b) + 1 : std::fabs(b) + scale + 1e-30);
      *worst = std::max(*worst, err);
      if (!(err <= tol))
        return "entry " + std::to_string(c0 + r) + ": emulated float16 " + std::to_string(a) + ", float64 " +
               std::to_string(b) + " (relative error " + std::to_string(err) + ")";
    }
  }
  return "";
}

std::string run_f16_case(const F16Case& c, size_t id, double* worst) {
  Formula f = parse_formula(c.formula, c.aliases);
  CodeOptions co;
  co.dtype = DType::Float16;
  CudaCode code = generate_cuda_code(f, co, RKEOPS_INCLUDE_DIR);
  if (code.rows_per_thread != c.rows_per_thread)
    return "rows per thread " + std::to_string(code.rows_per_thread) + ", expected " + std::to_string(c.rows_per_thread);
  std::string err;
  const LaunchFn launch = load_emulated(code, "f16_" + std::to_string(id), &err);
  if (!launch) return err;
  std::vector<Input> in;
  auto data = make_inputs(f, c.ni, c.nj, &in);
  CallShape shape = check_inputs(f, in);
  const long long n_out = shape.out_rows, n_in = f.axis == 1 ? shape.n_j : shape.n_i;
  std::vector<double> gpu(n_out * f.out_dim, -12345.0), cpu(gpu.size(), 0.0);
  EmuBackend dev(launch, c.avail);
  run_cuda_reduction(dev, code, f, in, shape, gpu.data(), 2, nullptr, nullptr);
  if (dev.h2d_bytes == 0) return "nothing copied";
  static std::mutex cpu_mutex;
  std::lock_guard<std::mutex> lock(cpu_mutex);
  CodeOptions c64;
  c64.dtype = DType::Float64;
  EngineOptions eo = reference_options(c64, 2);
  auto ref = get_kernel(c.formula, c.aliases, eo);
  ref->run(in, shape, cpu.data(), eo, nullptr);
  const bool lse = c.formula.find("LogSumExp") != std::string::npos;
  if (c.formula.find("Min_ArgMin") == 0) {  // [min, index]: the index's value is checked, not the index
    std::vector<double> v(gpu.begin(), gpu.begin() + n_out), w(cpu.begin(), cpu.begin() + n_out), at(n_out);
    const double* x = data[0].data();
    const double* y = data[1].data();
    const int D = f.args[0].dim;
    for (long long i = 0; i < n_out; ++i) {
      const long long j = static_cast<long long>(gpu[n_out + i]);
      if (j < 0 || j >= n_in) return "index out of range at row " + std::to_string(i);
      double s = 0;
      for (int k = 0; k < D; ++k) s += (x[i + k * n_out] - y[j + k * n_in]) * (x[i + k * n_out] - y[j + k * n_in]);
      at[i] = s;
    }
    std::string e = compare_f16(v, w, n_out, c.tol, false, worst);
    if (e.empty()) e = compare_f16(at, w, n_out, c.tol, false, worst);
    return e;
  }
  std::string e = compare_f16(gpu, cpu, n_out, c.tol, lse, worst);
  if (!e.empty()) return e;
  // Block-sparse (work items of up to 2 blocks' rows in pairs) and blocks of result rows that
  // start at odd rows (a pair's second row inactive at the end).
  auto br = std::make_shared<BlockRanges>(random_ranges(n_out, n_in, static_cast<unsigned>(id) + 5));
  std::vector<double> gs(gpu.size(), -12345.0), cs(gpu.size(), 0.0);
  LaunchPart part;
  part.ranges = br.get();
  EmuBackend d3(launch, 1ull << 30);
  run_cuda_reduction(d3, code, f, in, shape, gs.data(), 2, nullptr, nullptr, part);
  EngineOptions es = eo;
  es.ranges = br;
  get_kernel(c.formula, c.aliases, es)->run(in, shape, cs.data(), es, nullptr);
  e = compare_f16(gs, cs, n_out, c.tol, lse, worst);
  if (!e.empty()) return "block-sparse: " + e;
  const std::vector<double> rows = rows_in_blocks(launch, code, f, in, shape, c.avail, 3, gpu.size());
  e = compare_f16(rows, cpu, n_out, c.tol, lse, worst);
  if (!e.empty()) return "row blocks: " + e;
  // Partial states of two pieces of the reduced index (several GPUs, distributed calls),
  // merged on the CPU by the float32 kernel, as CudaKernel::merge_partials does for float16.
  const int W = code.state_t + code.state_i + code.state_c;
  const auto states = states_of_two_pieces(launch, code, f, in, shape, c.avail);
  EngineOptions em = eo;
  em.code.dtype = DType::Float32;
  auto k32 = get_kernel(c.formula, c.aliases, em);
  if (k32->state_width() != W) return "GPU float16 and CPU float32 partial states differ in width";
  std::vector<double> merged(gpu.size(), -12345.0);
  k32->merge_partials({states[0].data(), states[1].data()}, n_out, merged.data(), nullptr, em);
  e = compare_f16(merged, cpu, n_out, c.tol, lse, worst);
  return e.empty() ? "" : "merged partial states: " + e;
}

std::vector<F16Case> f16_cases() {
  const size_t big = 1ull << 34, small = 60000;  // small: chunks of outer and inner rows
  const std::vector<std::string> g3 = {"x=Vi(3)", "y=Vj(3)", "b=Vj(2)", "g=Pm(1)", "e=Vi(2)"};
  const std::vector<std::string> g3t = {"x=Vi(3)", "y=Vj(3)", "b=Vi(2)", "g=Pm(1)", "e=Vj(2)"};
  const double tol = 1e-2;  // the stated tolerance (rkeops_use_float16)
  return {
      // the Gaussian kernel, both axes, splits of the inner range and chunks
      // (on tensor cores, codegen_cuda_f16tc.h: one row a thread)
      {"Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", g3, 1001, 3000, big, 1, tol},
      {"Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", g3, 777, 2000, small, 1, tol},
      {"Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 0)", g3t, 1500, 301, big, 1, tol},
      // tensor cores: D = 1 without b, D = 7 (two k-steps) with b of 8, D = 15 (four); h > 0 and
      // far points: the float32 loop (every tile, or the tiles and rows out of the norms' bound)
      {"Sum_Reduction(Exp(g * -SqDist(x, y)), 1)", {"x=Vi(1)", "y=Vj(1)", "g=Pm(1)"}, 300, 1100, big, 1, tol},
      {"Sum_Reduction(b * Exp(-SqDist(x, y) / g), 1)", {"x=Vi(7)", "y=Vj(7)", "b=Vj(8)", "g=Pm(1)"}, 200, 700, big,
       1, tol},
      {"Sum_Reduction(Exp(-g * SqNorm2(x - y)) * b, 0)", {"x=Vj(15)", "y=Vi(15)", "b=Vi(3)", "g=Pm(1)"}, 150, 530,
       big, 1, tol},
      {"Sum_Reduction(Exp(g * SqDist(x, y)) * b, 1)", g3, 140, 400, big, 1, tol},
      {"Sum_Reduction(Exp(-g * 3000 * SqDist(x, y)) * b, 1)", g3, 300, 900, big, 1, tol},
      // its gradients: formulas like any other
      {"Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * Elem(b, 0), x, Elem(e, 0)), 1)", g3, 513, 2000, big, 2, tol},
      {"Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * Elem(b, 0), y, Elem(e, 0)), 0)", g3t, 2000, 257, big, 2, tol},
      // half2 maths: Sqrt, Rsqrt, Log, Inv, Pow, Powf, Abs, Square, Scalprod, SqNorm2, Normalize
      {"Sum_Reduction(Exp(-Sqrt(g * SqDist(x, y))) * b + Rsqrt(1 + SqNorm2(x - y)) * Log(2 + (x | y)), 1)", g3, 600,
       1500, big, 2, tol},
      {"Sum_Reduction(Inv(1 + g * SqDist(x, y)) * Pow(Abs(x - y), 2) + Square(Elem(b, 1)) * Powf(1 + Sum(y), g), 1)",
       g3, 400, 1200, big, 2, tol},
      {"Sum_Reduction(Normalize(x - y) * Norm2(y) - Elem(b, 0) / (1 + Sum(x)), 1)", g3, 401, 900, big, 2, tol},
      {"LogSumExp_Reduction(-g * SqDist(x, y) * 4, 1)", g3, 301, 2000, big, 2, tol},
      {"Min_ArgMin_Reduction(SqDist(x, y), 1)", {"x=Vi(3)", "y=Vj(3)"}, 333, 1000, big, 2, tol},
      {"KMin_Reduction(SqDist(x, y), 3, 0)", {"x=Vi(3)", "y=Vj(3)"}, 1000, 257, big, 2, tol},
      {"SumSoftMaxWeight_Reduction(-g * SqDist(x, y), b, 1)", g3, 257, 1300, small, 2, tol},  // a weight
      // wide: F of 40 components (loops over the lanes, block-sum arrays), inner rows of 41 halves
      {"Sum_Reduction(Grad(Exp(-g * SqDist(x, y) / 8) * Elem(b, 0), x, Elem(e, 0)), 1)",
       {"x=Vi(40)", "y=Vj(40)", "b=Vj(1)", "g=Pm(1)", "e=Vi(1)"}, 301, 700, big, 2, tol},
      // inner rows of 700 halves read from global memory (no shared tile), a parameter of 80
      // values read where used (rk_hrow2), wide outer rows read in place (rk_hcol2)
      {"Sum_Reduction(Exp(-SqDist(x, y) / 50) * Sum(Extract(s, 0, 700) * x) * Elem(s, 799), 1)",
       {"x=Vi(700)", "y=Vj(700)", "s=Pm(800)"}, 97, 180, big, 2, tol},
      // the same in float32 evaluation (rk_hrowf), F of 40 components
      {"Sum_Reduction(ReLU(Extract(x, 0, 40) - Extract(y, 0, 40)) * Exp(-SqDist(x, y) / 50) * Elem(s, 799), 1)",
       {"x=Vi(700)", "y=Vj(700)", "s=Pm(800)"}, 97, 180, big, 1, tol},
      // no half2 form (ReLU, Sin): the formula in float32 from halves, one row per thread
      {"Sum_Reduction(ReLU(Elem(x, 0) - Elem(y, 0)) * Sin(b), 1)", g3, 333, 1000, big, 1, tol},
      {"Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * Step(Elem(b, 0) - 0.3), x, Elem(e, 0)), 1)", g3, 300, 1000, big, 1,
       tol},
  };
}

}  // namespace

// Float16 kernels (half2 pairs and float32 evaluation from halves) through the whole launch
// sequence, against float64 at the stated tolerance.
TEST(CudaEmulation, Float16MatchesFloat64AtTheStatedTolerance) {
  if (!have_cxx()) GTEST_SKIP() << "no host C++ compiler (" << cxx() << ")";
  const std::vector<F16Case> cs = f16_cases();
  std::vector<std::string> errors(cs.size());
  std::vector<double> worst(cs.size(), 0.0);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t k; (k = next++) < cs.size();) {
      try {
        errors[k] = run_f16_case(cs[k], k, &worst[k]);
      } catch (const std::exception& e) { errors[k] = std::string("exception: ") + e.what(); }
    }
  };
  unsigned nt = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  std::vector<std::thread> th;
  for (unsigned t = 0; t < nt; ++t) th.emplace_back(work);
  for (auto& t : th) t.join();
  for (size_t k = 0; k < cs.size(); ++k) {
    EXPECT_TRUE(errors[k].empty()) << cs[k].formula << " (float16): " << errors[k];
    std::printf("[ float16  ] worst relative error %.2e: %s\n", worst[k], cs[k].formula.c_str());
  }
}

// Host-side rounding to half (half.h): every half round-trips, ties go to even, overflow to Inf.
TEST(CudaEmulation, HostHalfRounding) {
  int bad = 0;
  for (int h = 0; h < 0x7c00; ++h) {
    const double a = half_to_double(static_cast<uint16_t>(h));
    if (double_to_half(a) != h || double_to_half(-a) != (h | 0x8000)) ++bad;
    if (h + 1 < 0x7c00) {
      const double b = half_to_double(static_cast<uint16_t>(h + 1)), mid = (a + b) / 2;
      if (double_to_half(mid) != ((h & 1) ? h + 1 : h)) ++bad;
      if (double_to_half(a + (b - a) * 0.49) != h || double_to_half(a + (b - a) * 0.51) != h + 1) ++bad;
    }
  }
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(double_to_half(65519.0), 0x7bff);
  EXPECT_EQ(double_to_half(65520.0), 0x7c00);
  EXPECT_EQ(double_to_half(1e300), 0x7c00);
  EXPECT_EQ(double_to_half(-1e-30), 0x8000);
  EXPECT_TRUE(std::isnan(half_to_double(double_to_half(std::nan("")))));
}

// The packing's fast rounding (half.cpp: F16C through a float rounded to odd, where the CPU has
// it) gives double_to_half's halves: every half, the midpoints and their neighbours one double
// ulp away (where a float rounded to nearest would round twice), random doubles of every
// magnitude, subnormals, overflows, infinities; NaN stays NaN.
TEST(CudaEmulation, HostHalfRoundingFast) {
  std::vector<double> v;
  for (int h = 0; h < 0x7c00; ++h) {
    const double a = half_to_double(static_cast<uint16_t>(h)), b = half_to_double(static_cast<uint16_t>(h + 1));
    const double mid = (a + b) / 2;
    for (double x : {a, mid, std::nextafter(mid, 0.0), std::nextafter(mid, 1e300), a + (b - a) * 0.49})
      v.insert(v.end(), {x, -x});
  }
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> m(1.0, 2.0);
  std::uniform_int_distribution<int> ex(-1080, 40);
  for (int k = 0; k < 200000; ++k) v.push_back((k % 2 ? -1 : 1) * std::ldexp(m(rng), ex(rng)));
  const double inf = std::numeric_limits<double>::infinity();
  for (double x : {65519.0, 65519.99, 65520.0, 1e300, 1e-320, 5e-324, 0.0, -0.0, inf, -inf}) v.push_back(x);
  std::vector<uint16_t> fast(v.size() * 2, 0xabcd);
  doubles_to_halves(fast.data(), 2, v.data(), static_cast<long long>(v.size()), 1);  // (an output step of 2)
  int bad = 0;
  for (size_t k = 0; k < v.size(); ++k) bad += fast[2 * k] != double_to_half(v[k]) || fast[2 * k + 1] != 0xabcd;
  EXPECT_EQ(bad, 0);
  const double nan = std::nan("");
  uint16_t h = 0;
  doubles_to_halves(&h, 1, &nan, 1, 1);
  EXPECT_TRUE(std::isnan(half_to_double(h)));
}

TEST(CudaEmulation, KernelsAndLaunchSequenceMatchTheCpu) {
  if (!have_cxx()) GTEST_SKIP() << "no host C++ compiler (" << cxx() << ")";
  run_all(cases(), "case");
}

TEST(CudaEmulation, HighDimensionSchemeMatchesTheCpu) {
  if (!have_cxx()) GTEST_SKIP() << "no host C++ compiler (" << cxx() << ")";
  run_all(hd_cases(), "hd");
}

// Gaussian-like folds on prescaled coordinates (codegen_cuda.cpp, find_prescaled_fold): the
// scaled branch (h < 0), the plain one (h >= 0, h = -Inf, NaN), both axes, several rows per
// thread, exponentials and log-sum-exps; formulas whose variables are used elsewhere, or whose
// scale depends on an outer variable, keep the plain fold.
TEST(CudaEmulation, PrescaledGaussianFoldsMatchTheCpu) {
  if (!have_cxx()) GTEST_SKIP() << "no host C++ compiler (" << cxx() << ")";
  struct P {
    std::string formula;
    std::vector<std::string> aliases;
    bool prescaled;
    int rows;  // CodeOptions::cuda_rows
  };
  const std::vector<P> ps = {
      {"Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"}, true, 0},
      {"Sum_Reduction(Exp(-SqNorm2(x - y) / g) * b, 0)", {"x=Vi(2)", "y=Vj(2)", "b=Vi(3)", "g=Pm(1)"}, true, 1},
      {"Sum_Reduction(Exp(SqDist(y, x) * (-g)) * b, 1)", {"x=Vi(5)", "y=Vj(5)", "b=Vj(2)", "g=Pm(1)"}, true, 2},
      {"Sum_Reduction(Exp(-g * SqDist(x, y)) * x, 1)", {"x=Vi(3)", "y=Vj(3)", "g=Pm(1)"}, false, 0},
      {"Sum_Reduction(Exp(-SqDist(x, y) * u) * b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "u=Vi(1)"}, false, 0},
      // (a log2-unit LogSumExp: its F itself)
      {"LogSumExp_Reduction(-g * SqDist(x, y), 1)", {"x=Vi(3)", "y=Vj(3)", "g=Pm(1)"}, true, 0},
      {"LogSumExp_Reduction(SqNorm2(x - y) / g, 0)", {"x=Vi(4)", "y=Vj(4)", "g=Pm(1)"}, true, 2},
  };
  int id = 0;
  for (DType dt : {DType::Float32, DType::Float64})
  for (int mode : {1, 2})  // CodeOptions::cuda_prescale: prescaled coordinates; and the inner-product form
    for (const P& p : ps) {
      const bool f64 = dt == DType::Float64;
      if (f64 && (mode == 1 || p.formula.rfind("LogSumExp", 0) == 0)) continue;  // (no log2-unit LogSumExp in float64)
      SCOPED_TRACE(p.formula + " (cuda_prescale " + std::to_string(mode) + (f64 ? ", float64)" : ")"));
      Formula f = parse_formula(p.formula, p.aliases);
      CodeOptions co;
      co.dtype = dt;
      co.cuda_rows = p.rows;
      co.cuda_prescale = mode;
      const CudaCode code = generate_cuda_code(f, co, RKEOPS_INCLUDE_DIR);
      EXPECT_EQ(code.source.find("psf_") != std::string::npos, p.prescaled);
      EXPECT_EQ(code.source.find("dot_") != std::string::npos, p.prescaled && mode == 2);
      // (sums of the fold times other factors: each row's 2^-|sx|^2 applied at the end)
      const bool sum = p.formula.rfind("Sum_Reduction", 0) == 0;
      EXPECT_EQ(code.source.find("pz_") != std::string::npos, p.prescaled && mode == 2 && sum);
      std::string err;
      const LaunchFn launch = load_emulated(code, "psf" + std::to_string(id++), &err);
      ASSERT_TRUE(launch) << err;
      const EngineOptions eo = reference_options(co, 2);
      // points in [0, 1] (the inner-product form), far from the origin (it, about a common
      // point of each block) and spread 30 times wider (norms too large for it: the direct form)
      for (double shift : {0.0, 1000.0, -1.0})
        for (double gv : {0.7, -0.3, 0.0, std::numeric_limits<double>::infinity(), std::nan("")}) {
          SCOPED_TRACE("g = " + std::to_string(gv) + ", points " + (shift < 0 ? "spread" : "shifted by " + std::to_string(shift)));
          std::vector<Input> in;
          auto data = make_inputs(f, 500, 700, &in);
          for (size_t k = 0; k < f.args.size(); ++k) {
            if (f.args[k].cat == CAT_P) data[k][0] = gv;
            if (f.args[k].cat != CAT_P && f.args[k].name != "b")
              for (double& v : data[k]) v = shift < 0 ? 30 * v : v + shift;
          }
          const CallShape shape = check_inputs(f, in);
          EmuBackend dev(launch, 1ull << 34);
          std::vector<double> gpu(shape.out_rows * f.out_dim, -1.0), cpu(gpu.size(), 0.0);
          run_cuda_reduction(dev, code, f, in, shape, gpu.data(), 2, nullptr, nullptr);
          get_kernel(p.formula, p.aliases, eo)->run(in, shape, cpu.data(), eo, nullptr);
          // (a log-sum-exp is a log: its error is absolute, the sum's relative one)
          const double floor = p.formula.rfind("LogSumExp", 0) == 0 ? 1.0 : 1e-6, tol = f64 ? 1e-12 : 2e-5;
          for (size_t k = 0; k < gpu.size(); ++k) {
            const double a = gpu[k], b = cpu[k];
            ASSERT_TRUE(agrees(a, b, tol, floor))
                << "entry " << k << ": emulated GPU " << a << ", CPU " << b;
          }
        }
    }
}

// The high-dimension scheme's K family leaves one sorted list per lane of a row (lanes see
// interleaved columns) and rk_merge merges them: exact ties (30 inner points, each repeated)
// must come out in index order, as the CPU gives them, with and without splits and pieces.
TEST(CudaEmulation, HighDimensionKMinTiesComeInIndexOrder) {
  if (!have_cxx()) GTEST_SKIP() << "no host C++ compiler (" << cxx() << ")";
  const std::string formula = "KMin_ArgKMin_Reduction(SqDist(x, y), 7, 1)";
  const std::vector<std::string> aliases = {"x=Vi(40)", "y=Vj(40)"};
  int id = 0;
  for (DType dt : {DType::Float64, DType::Float32}) {
    Formula f = parse_formula(formula, aliases);
    CodeOptions co;
    co.dtype = dt;
    co.cuda_hd_mma = 0;  // (float32: the multiply-add layout; the emulated tensor cores are slow)
    const CudaCode code = generate_cuda_code(f, co, RKEOPS_INCLUDE_DIR);
    ASSERT_GT(code.hd.bm, 0);
    EXPECT_GT(code.hd.lane_slots, 1);
    EXPECT_EQ(code.source.find("__shfl_xor_sync"), std::string::npos) << "no merge across lanes in rk_reduce";
    std::string err;
    const LaunchFn launch = load_emulated(code, "ties" + std::to_string(id++), &err);
    ASSERT_TRUE(launch) << err;
    std::vector<Input> in;
    auto data = make_inputs(f, 130, 500, &in);
    for (long long j = 30; j < 500; ++j)  // y_j = y_(j mod 30)
      for (int k = 0; k < 40; ++k) data[1][j + 500 * k] = data[1][j % 30 + 500 * k];
    const CallShape shape = check_inputs(f, in);
    const EngineOptions eo = reference_options(co, 2);
    std::vector<double> cpu(shape.out_rows * f.out_dim, 0.0);
    get_kernel(formula, aliases, eo)->run(in, shape, cpu.data(), eo, nullptr);
    for (long long piece : {32LL << 20, 8192LL}) {
      EmuBackend dev(launch, 1ull << 34);
      dev.piece_ = piece;
      std::vector<double> gpu(cpu.size(), -1.0);
      run_cuda_reduction(dev, code, f, in, shape, gpu.data(), 2, nullptr, nullptr);
      for (long long i = 0; i < shape.out_rows; ++i)
        for (int r = 0; r < 7; ++r) {
          const size_t k = static_cast<size_t>((7 + r) * shape.out_rows + i);  // the indices
          ASSERT_EQ(gpu[k], cpu[k]) << (dt == DType::Float64 ? "f64" : "f32") << ", piece " << piece << ", row " << i
                                    << ", rank " << r;
          ASSERT_EQ(static_cast<long long>(cpu[k]) % 30, static_cast<long long>(cpu[7 * shape.out_rows + i]) % 30);
        }
    }
  }
}

TEST(CudaEmulation, DeviceResidentInputsMatchTheCpu) {
  if (!have_cxx()) GTEST_SKIP() << "no host C++ compiler (" << cxx() << ")";
  run_all(device_cases(), "dev");
}

TEST(CudaEmulation, InnerRowsPackedOnTheDeviceMatchTheHostPackingByteForByte) {
  if (!have_cxx()) GTEST_SKIP() << "no host C++ compiler (" << cxx() << ")";
  const size_t big = 1ull << 34, tight = 60000;  // tight: inner rows streamed in chunks
  const std::string upd = "Sum_Reduction(Equal(l, k) * Concat(x, IntCst(1)), 0)";
  const std::vector<std::string> ua = {"x=Vi(10)", "l=Vi(1)", "k=Vj(1)"};
  const std::string gs = "Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)";
  const std::vector<std::string> ga = {"x=Vi(3)", "y=Vj(3)", "b=Vj(2)", "g=Pm(1)"};
  int n = 0;
  for (DType dt : {DType::Float32, DType::Float64}) {
    const std::string t = dt == DType::Float32 ? " f32" : " f64";
    struct P {
      std::string what, formula;
      std::vector<std::string> aliases;
      long long ni, nj;
      size_t avail;
      long long piece;
      std::vector<bool> device;
    };
    const std::vector<P> ps = {
        {"K-means update, x and l on the device", upd, ua, 3000, 40, big, 32LL << 20, {true, true, false}},
        {"K-means update, x on the device, l from the host", upd, ua, 3000, 40, big, 32LL << 20, {true, false, false}},
        {"K-means update, resident pieces", upd, ua, 5000, 40, big, 4096, {true, true, true}},
        {"Gaussian sum, y and b on the device (padding zeroed on the device)", gs, ga, 300, 2500, big, 32LL << 20,
         {false, true, true, false}},
        {"Gaussian sum, y on the device, streamed inner chunks", gs, ga, 300, 9000, tight, 32LL << 20,
         {true, true, false, false}},
    };
    for (const P& p : ps) {
      const std::string err = packed_rows_case(p.formula, p.aliases, dt, p.ni, p.nj, p.avail, p.piece, p.device,
                                               "pack" + std::to_string(n++));
      EXPECT_TRUE(err.empty()) << p.what << t << ": " << err;
    }
  }
}

// Batches on one GPU (batch.h): the launcher's packing reads the arrays in place through views
// (Input::batch) and must produce the packed rows of the gathered stacked inputs, byte for byte,
// and the same block-sparse results: broadcast and shared inputs, both axes, both precisions.
TEST(CudaEmulation, BatchViewsPackAsTheGatheredRows) {
  if (!have_cxx()) GTEST_SKIP() << "no host C++ compiler (" << cxx() << ")";
  struct C {
    std::string formula;
    std::vector<std::string> aliases;
    std::vector<std::vector<int>> own;
    std::vector<long long> rows;
  };
  const std::vector<int> shape = {3, 2};
  const std::vector<C> cases = {
      {"Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(2)"}, {{3, 2}, {1, 2}, {}}, {70, 50, 50}},
      {"Min_ArgMin_Reduction(SqDist(x, y), 0)", {"x=Vi(2)", "y=Vj(2)"}, {{3, 1}, {3, 2}}, {90, 40}},
      // (more points than one window of the packing: host_pack.cpp)
      {"Sum_Reduction(SqDist(x, y) * b, 1)", {"x=Vi(2)", "y=Vj(2)", "b=Vj(1)"}, {{3, 2}, {3, 1}, {1, 2}}, {300, 1100, 1100}},
  };
  int n = 0;
  for (DType dt : {DType::Float32, DType::Float64})
    for (const C& c : cases) {
      SCOPED_TRACE(c.formula + (dt == DType::Float32 ? " f32" : " f64"));
      Formula f = parse_formula(c.formula, c.aliases);
      CodeOptions co;
      co.dtype = dt;
      CudaCode code = generate_cuda_code(f, co, RKEOPS_INCLUDE_DIR);
      std::string err;
      const LaunchFn launch = load_emulated(code, "bview" + std::to_string(n++), &err);
      ASSERT_NE(launch, nullptr) << err;
      std::mt19937 gen(11);
      std::uniform_real_distribution<double> u(0, 1);
      std::vector<std::vector<double>> data;
      std::vector<BatchInput> bin;
      std::vector<int> ishape(shape.size(), 1);
      for (size_t k = 0; k < f.args.size(); ++k) {
        long long P = 1;
        for (int v : c.own[k]) P *= v;
        data.emplace_back(static_cast<size_t>(P * c.rows[k] * f.args[k].dim));
        for (auto& v : data.back()) v = u(gen);
        BatchInput b;
        b.in.data = data.back().data();
        b.in.rows = c.rows[k];
        b.in.cols = f.args[k].dim;
        b.own = c.own[k];
        bin.push_back(b);
        if (f.args[k].cat == f.inner_cat() && !b.own.empty())
          for (size_t d = 0; d < shape.size(); ++d) ishape[d] = std::max(ishape[d], b.own[d]);
      }
      // the two stackings, and the block-sparse pattern of run_batched
      std::vector<std::vector<double>> gathered(f.args.size());
      std::vector<BatchView> views(f.args.size());
      std::vector<Input> g_in, v_in;
      for (size_t k = 0; k < f.args.size(); ++k) {
        const std::vector<int>& to = f.args[k].cat == f.outer_cat() ? shape : ishape;
        long long T = 1;
        for (int t : to) T *= t;
        gathered[k].resize(static_cast<size_t>(T * bin[k].in.rows * bin[k].in.cols));
        gather_batch(bin[k], to, gathered[k].data(), 2);
        views[k] = batch_view(bin[k], to);
        Input a, b;
        a.data = gathered[k].data();
        b.data = bin[k].in.data;
        a.rows = b.rows = T * bin[k].in.rows;
        a.cols = b.cols = bin[k].in.cols;
        b.batch = &views[k];
        g_in.push_back(a);
        v_in.push_back(b);
      }
      const CallShape sh = check_inputs(f, g_in);
      const long long n_out = f.axis == 1 ? c.rows[0] : c.rows[1], n_in = f.axis == 1 ? c.rows[1] : c.rows[0];
      BatchInput probe;
      probe.own = ishape;
      const std::vector<long long> ib = batch_view(probe, shape).pos;
      BlockRanges br;
      for (size_t b = 0; b < ib.size(); ++b) {
        br.outer.push_back(static_cast<int>(b * n_out));
        br.outer.push_back(static_cast<int>((b + 1) * n_out));
        br.slices.push_back(static_cast<int>(b + 1));
        br.inner.push_back(static_cast<int>(ib[b] * n_in));
        br.inner.push_back(static_cast<int>((ib[b] + 1) * n_in));
      }
      LaunchPart part;
      part.ranges = &br;
      std::vector<double> ga(sh.out_rows * f.out_dim, -1), va(ga.size(), -2), pa(ga.size(), -3);
      EmuBackend dg(launch, 1ull << 30), dv(launch, 1ull << 30), dp(launch, 1ull << 30);
      dp.piece_ = 512;  // views in pieces of problems (sparse_pieces), packed while the last runs
      GpuRunStats sp;
      run_cuda_reduction(dg, code, f, g_in, sh, ga.data(), 2, nullptr, nullptr, part);
      run_cuda_reduction(dv, code, f, v_in, sh, va.data(), 2, nullptr, nullptr, part);
      run_cuda_reduction(dp, code, f, v_in, sh, pa.data(), 2, nullptr, &sp, part);
      EXPECT_EQ(sp.chunks_inner, 6) << "one piece per problem";
      for (int slot : {0, 1}) {
        const auto &a = dg.buffer_of(slot), &b = dv.buffer_of(slot), &p = dp.buffer_of(slot);
        ASSERT_EQ(a.size(), b.size());
        ASSERT_EQ(a.size(), p.size());
        EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)), 0) << "packed buffer " << slot;
        EXPECT_EQ(std::memcmp(a.data(), p.data(), a.size() * sizeof(double)), 0) << "packed buffer in pieces " << slot;
      }
      EXPECT_EQ(std::memcmp(ga.data(), va.data(), ga.size() * sizeof(double)), 0) << "results";
      EXPECT_EQ(std::memcmp(ga.data(), pa.data(), ga.size() * sizeof(double)), 0) << "results in pieces";
      // the results streamed piece by piece (LaunchPart::sink, from EngineOptions::on_rows), each
      // piece's rows merged on their own when the items are split (rk_merge of a range of rows):
      // every row once, in order, as the whole call gives them
      for (int splits : {1, 3}) {
        SCOPED_TRACE("splits " + std::to_string(splits));
        std::vector<double> sa(ga.size(), -4), unused(ga.size(), -5);
        long long next = 0;
        int calls = 0;
        const RowSink sink = [&](long long r0, long long r1, const double* rows, long long ld) {
          EXPECT_EQ(r0, next);
          next = r1;
          ++calls;
          for (int k = 0; k < f.out_dim; ++k)
            for (long long r = r0; r < r1; ++r) sa[r + k * sh.out_rows] = rows[r + k * ld];
        };
        LaunchPart ps = part;
        ps.sink = &sink;
        ps.sparse_splits = splits;  // (EngineOptions::sparse_splits)
        EmuBackend ds(launch, 1ull << 30);
        ds.piece_ = 512;
        GpuRunStats ss;
        run_cuda_reduction(ds, code, f, v_in, sh, unused.data(), 2, nullptr, &ss, ps);
        EXPECT_EQ(ss.nsplit, splits);
        EXPECT_EQ(next, sh.out_rows);
        EXPECT_EQ(calls, 6) << "one hand-over per piece";
        const double tol = dt == DType::Float32 ? 1e-5 : 1e-12;
        for (size_t k = 0; k < ga.size(); ++k)
          ASSERT_NEAR(sa[k], ga[k], tol * (1 + std::fabs(ga[k]))) << "streamed result " << k;
      }
    }
}

// Lets the host C++ compiler build a generated CUDA kernel (tests only): the engine's test
// pastes this header in front of the generated source and rk_emu_launch() after it, so that
// the kernels' logic (tiles, splits, partial states, merges) runs on CPU threads where there
// is no GPU. One block runs at a time, its threads as std::threads meeting at a barrier for
// __syncthreads(); shared memory is function-static storage. Globals have internal linkage
// (never `inline`: GNU unique symbols would be shared by every loaded kernel library).
#include <math.h>

#include <cmath>
#include <condition_variable>
#include <cstring>
#include <utility>
#include <mutex>
#include <thread>
#include <vector>

#define RK_CUDA_EMULATION 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __noinline__
#define __launch_bounds__(...)
#define __shared__ static

struct rk_emu_uint3 {
  unsigned x = 0, y = 0, z = 0;
};
static thread_local rk_emu_uint3 threadIdx, blockIdx;
static rk_emu_uint3 blockDim, gridDim;
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned x, y;
};

inline float __int_as_float(int i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
inline double __longlong_as_double(long long i) {
  double f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
inline int __double2hiint(double d) {
  unsigned long long u;
  std::memcpy(&u, &d, sizeof u);
  return static_cast<int>(static_cast<unsigned>(u >> 32));
}
inline int __double2loint(double d) {
  unsigned long long u;
  std::memcpy(&u, &d, sizeof u);
  return static_cast<int>(static_cast<unsigned>(u & 0xffffffffu));
}
inline double __hiloint2double(int hi, int lo) {
  const unsigned long long u = (static_cast<unsigned long long>(static_cast<unsigned>(hi)) << 32) |
                               static_cast<unsigned>(lo);
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}
inline float __uint_as_float(unsigned i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}
inline float __fdividef(float a, float b) { return a / b; }
inline float rk_emu_exp2(float y) { return std::exp2(y); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }

// A reusable barrier for the threads of one block.
struct RkEmuBarrier {
  explicit RkEmuBarrier(int n) : n_(n) {}
  void wait() {
    std::unique_lock<std::mutex> lock(m_);
    int gen = gen_;
    if (++count_ == n_) {
      count_ = 0;
      ++gen_;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return gen != gen_; });
  }
  std::mutex m_;
  std::condition_variable cv_;
  int n_, count_ = 0, gen_ = 0;
};
static RkEmuBarrier* rk_emu_barrier = nullptr;
inline void __syncthreads() { rk_emu_barrier->wait(); }

// Warp shuffles, through a per-block exchange area between two barriers: every thread of the
// block must make the same shuffle calls (as the kernels that use them do).
static unsigned char rk_emu_shfl[1024 * 8];
template <class V>
V __shfl_xor_sync(unsigned, V v, int lane_mask, int = 32) {
  static_assert(sizeof(V) <= 8, "shuffle of a value wider than 8 bytes");
  const unsigned t = threadIdx.x;
  std::memcpy(rk_emu_shfl + 8 * t, &v, sizeof v);
  __syncthreads();
  V r;
  std::memcpy(&r, rk_emu_shfl + 8 * (t ^ static_cast<unsigned>(lane_mask)), sizeof r);
  __syncthreads();
  return r;
}
inline int __any_sync(unsigned, int pred) {
  const unsigned t = threadIdx.x, w = t & ~31u;
  rk_emu_shfl[8 * t] = pred != 0;
  __syncthreads();
  int any = 0;
  for (unsigned l = w; l < w + 32 && l < blockDim.x; ++l) any |= rk_emu_shfl[8 * l];
  __syncthreads();
  return any;
}

// Any thread of the block (generated loops whose warps must run as often as each other here).
inline int rk_emu_any_in_block(int pred) {
  const unsigned t = threadIdx.x;
  rk_emu_shfl[8 * t] = pred != 0;
  __syncthreads();
  int any = 0;
  for (unsigned l = 0; l < blockDim.x; ++l) any |= rk_emu_shfl[8 * l];
  __syncthreads();
  return any;
}
// Block-wide votes with a barrier (the generated prescaled folds' norm checks).
inline int __syncthreads_or(int pred) { return rk_emu_any_in_block(pred); }
inline int __syncthreads_and(int pred) { return !rk_emu_any_in_block(!pred); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }

// Tensor cores (generated high-dimension kernels compiled with RK_EMU_MMA): each lane puts its
// fragments' values in its row of a per-block area, and after a barrier computes its part of
// the warp's product, c += A B, then a barrier again (every thread makes the same calls).
// A[r][k] and B[k][n] are at the (lane of the warp, slot) that a_at(r, k) and b_at(k, n) give.
static float rk_emu_mma_v[1024][12];
template <class FA, class FB>
inline void rk_emu_mma(float& c0, float& c1, float& c2, float& c3, unsigned K, FA a_at, FB b_at) {
  const unsigned t = threadIdx.x, w = t & ~31u, l = t & 31u, g = l >> 2, q = l & 3u;
  __syncthreads();
  // C[r][n]: register 2 (r >= 8) + n % 2 of lane 4 (r % 8) + n / 2.
  float* c[4] = {&c0, &c1, &c2, &c3};
  float r[4];
  for (unsigned i = 0; i < 4; ++i) {
    const unsigned row = g + 8 * (i >> 1), col = 2 * q + (i & 1);
    float s = 0;
    for (unsigned k = 0; k < K; ++k) {
      const auto a = a_at(row, k), b = b_at(k, col);
      s += rk_emu_mma_v[w + a.first][a.second] * rk_emu_mma_v[w + b.first][b.second];
    }
    r[i] = s;
  }
  __syncthreads();
  for (int i = 0; i < 4; ++i) *c[i] += r[i];
}
// mma.sync.m16n8k8.row.col.f32.tf32.tf32.f32 (operands read as TF32: 13 low bits ignored):
// A[r][k] is register (r >= 8) + 2 (k >= 4) of lane 4 (r % 8) + k % 4; B[k][n]: register
// 4 + (k >= 4) of lane 4 n + k % 4.
inline void rk_emu_mma_tf32(float& c0, float& c1, float& c2, float& c3, const unsigned* a, const unsigned* b) {
  const unsigned t = threadIdx.x;
  for (int k = 0; k < 4; ++k) rk_emu_mma_v[t][k] = __uint_as_float(a[k] & 0xffffe000u);
  for (int k = 0; k < 2; ++k) rk_emu_mma_v[t][4 + k] = __uint_as_float(b[k] & 0xffffe000u);
  rk_emu_mma(
      c0, c1, c2, c3, 8, [](unsigned r, unsigned k) { return std::make_pair(4 * (r % 8) + k % 4, (r >= 8) + 2 * (k >= 4)); },
      [](unsigned k, unsigned n) { return std::make_pair(4 * n + k % 4, 4 + (k >= 4)); });
}
// mma.sync.m16n8k16.row.col.f32.bf16.bf16.f32: register k of a lane holds two bf16 (the first
// element in its low half). A[r][k]: register (r >= 8) + 2 (k >= 8), half k % 2, of lane
// 4 (r % 8) + (k % 8) / 2; B[k][n]: register (k >= 8), half k % 2, of lane 4 n + (k % 8) / 2.
inline void rk_emu_mma_bf16(float& c0, float& c1, float& c2, float& c3, const unsigned* a, const unsigned* b) {
  const unsigned t = threadIdx.x;
  for (int k = 0; k < 6; ++k) {  // slots 2k, 2k + 1: the halves of A's registers, then B's
    const unsigned u = k < 4 ? a[k] : b[k - 4];
    rk_emu_mma_v[t][2 * k] = __uint_as_float(u << 16);
    rk_emu_mma_v[t][2 * k + 1] = __uint_as_float(u & 0xffff0000u);
  }
  rk_emu_mma(
      c0, c1, c2, c3, 16,
      [](unsigned r, unsigned k) { return std::make_pair(4 * (r % 8) + (k % 8) / 2, 2 * ((r >= 8) + 2 * (k >= 8)) + k % 2); },
      [](unsigned k, unsigned n) { return std::make_pair(4 * n + (k % 8) / 2, 8 + 2 * (k >= 8) + k % 2); });
}
// An IEEE half's value (exact)
inline float rk_emu_h2f(unsigned h) {
  const unsigned e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  const float v = e == 0x1fu ? (m ? NAN : INFINITY) : e ? std::ldexp(1.0f + m / 1024.0f, static_cast<int>(e) - 15) : std::ldexp(m / 1024.0f, -14);
  return (h & 0x8000u) ? -v : v;
}
// mma.sync.m16n8k16.row.col.f32.f16.f16.f32: the layout of the BF16 instruction, halves.
inline void rk_emu_mma_f16(float& c0, float& c1, float& c2, float& c3, const unsigned* a, const unsigned* b) {
  const unsigned t = threadIdx.x;
  for (int k = 0; k < 6; ++k) {
    const unsigned u = k < 4 ? a[k] : b[k - 4];
    rk_emu_mma_v[t][2 * k] = rk_emu_h2f(u & 0xffffu);
    rk_emu_mma_v[t][2 * k + 1] = rk_emu_h2f(u >> 16);
  }
  rk_emu_mma(
      c0, c1, c2, c3, 16,
      [](unsigned r, unsigned k) { return std::make_pair(4 * (r % 8) + (k % 8) / 2, 2 * ((r >= 8) + 2 * (k >= 8)) + k % 2); },
      [](unsigned k, unsigned n) { return std::make_pair(4 * n + (k % 8) / 2, 8 + 2 * (k >= 8) + k % 2); });
}
// mma.sync.m16n8k8.row.col.f32.f16.f16.f32: A[r][k] is half k % 2 of register (r >= 8) of lane
// 4 (r % 8) + k / 2; B[k][n]: half k % 2 of the one register of lane 4 n + k / 2.
inline void rk_emu_mma_f16k8(float& c0, float& c1, float& c2, float& c3, const unsigned* a, const unsigned* b) {
  const unsigned t = threadIdx.x;
  for (int k = 0; k < 3; ++k) {
    const unsigned u = k < 2 ? a[k] : b[0];
    rk_emu_mma_v[t][2 * k] = rk_emu_h2f(u & 0xffffu);
    rk_emu_mma_v[t][2 * k + 1] = rk_emu_h2f(u >> 16);
  }
  rk_emu_mma(
      c0, c1, c2, c3, 8, [](unsigned r, unsigned k) { return std::make_pair(4 * (r % 8) + k / 2, 2 * (r >= 8) + k % 2); },
      [](unsigned k, unsigned n) { return std::make_pair(4 * n + k / 2, 4 + k % 2); });
}
// cvt.rn.bf16x2.f32 d, hi, lo: two floats rounded to bf16 (to nearest, ties to even; a NaN stays
// a NaN), `lo` in the low half
inline unsigned rk_emu_bf16x2(float hi, float lo) {
  auto one = [](float x) -> unsigned {
    const unsigned u = __float_as_uint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  };
  return (one(hi) << 16) | one(lo);
}

// rkeops: the CUDA prelude pasted at the top of every generated GPU kernel. Compiled by NVRTC
// with no headers at all (see src/engine/nvrtc.h for what NVRTC declares by itself), so only
// CUDA's built-in maths functions and intrinsics are used here. IEEE semantics for NaN/Inf;
// the float exponential uses the special-function unit (see rk_exp below).
// RK_CUDA_EMULATION is defined only by the engine's CPU emulation of generated kernels
// (tests/engine/cuda_emulation.h): it swaps the one PTX instruction for plain C++.
#define RK_FN static __device__ __forceinline__
// Infinity of the kernel's type T (T is typedef'd after this prelude; macros expand at use).
#define RK_INF (T(__int_as_float(0x7f800000)))

// exp(x) in float: 2^(x log2 e) on the special-function unit (MUFU.EX2, 2 instructions).
// Relative error <= 2^-21 + |x| 2^-24 (about 1e-6 for |x| <= 10); results below 2^-126 flush
// to 0. exp(NaN) = NaN, exp(+Inf) = +Inf, exp(-Inf) = 0. This is the hot instruction of
// Gaussian and softmax kernels: the accurate expf costs 10 instructions more per term.
RK_FN float rk_exp2(float y) {
  float r;
#ifdef RK_CUDA_EMULATION
  r = rk_emu_exp2(y);
#else
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(y));
#endif
  return r;
}
RK_FN float rk_exp(float x) { return rk_exp2(x * 1.4426950408889634f); }
#ifdef RK_EXP_TABLE
// exp(x) in double (kernels that define RK_EXP_TABLE call rk_exp_table_init() first): with
// x = (64 n + j) ln2/64 + r, |r| <= ln2/128, e^x = 2^n 2^(j/64) e^r, 2^(j/64) from a table in
// shared memory and e^r from its degree-5 Taylor polynomial (a relative error below 4e-17):
// 11 double operations where exp() takes about 17 (issue 15: the float64 Gaussian sum). Its
// relative error is below 2^-51 (1.5 2^-52 at worst in tests/engine's
// CudaEmulation.Float64ExpMatchesTheLibrary); |x| >= 708 (results near overflow or
// subnormal), NaN and infinities: exp() itself.
__device__ const double rk_exp_tab_c[64] = {
    0x1.0000000000000p+0, 0x1.02c9a3e778061p+0, 0x1.059b0d3158574p+0, 0x1.0874518759bc8p+0,
    0x1.0b5586cf9890fp+0, 0x1.0e3ec32d3d1a2p+0, 0x1.11301d0125b51p+0, 0x1.1429aaea92de0p+0,
    0x1.172b83c7d517bp+0, 0x1.1a35beb6fcb75p+0, 0x1.1d4873168b9aap+0, 0x1.2063b88628cd6p+0,
    0x1.2387a6e756238p+0, 0x1.26b4565e27cddp+0, 0x1.29e9df51fdee1p+0, 0x1.2d285a6e4030bp+0,
    0x1.306fe0a31b715p+0, 0x1.33c08b26416ffp+0, 0x1.371a7373aa9cbp+0, 0x1.3a7db34e59ff7p+0,
    0x1.3dea64c123422p+0, 0x1.4160a21f72e2ap+0, 0x1.44e086061892dp+0, 0x1.486a2b5c13cd0p+0,
    0x1.4bfdad5362a27p+0, 0x1.4f9b2769d2ca7p+0, 0x1.5342b569d4f82p+0, 0x1.56f4736b527dap+0,
    0x1.5ab07dd485429p+0, 0x1.5e76f15ad2148p+0, 0x1.6247eb03a5585p+0, 0x1.6623882552225p+0,
    0x1.6a09e667f3bcdp+0, 0x1.6dfb23c651a2fp+0, 0x1.71f75e8ec5f74p+0, 0x1.75feb564267c9p+0,
    0x1.7a11473eb0187p+0, 0x1.7e2f336cf4e62p+0, 0x1.82589994cce13p+0, 0x1.868d99b4492edp+0,
    0x1.8ace5422aa0dbp+0, 0x1.8f1ae99157736p+0, 0x1.93737b0cdc5e5p+0, 0x1.97d829fde4e50p+0,
    0x1.9c49182a3f090p+0, 0x1.a0c667b5de565p+0, 0x1.a5503b23e255dp+0, 0x1.a9e6b5579fdbfp+0,
    0x1.ae89f995ad3adp+0, 0x1.b33a2b84f15fbp+0, 0x1.b7f76f2fb5e47p+0, 0x1.bcc1e904bc1d2p+0,
    0x1.c199bdd85529cp+0, 0x1.c67f12e57d14bp+0, 0x1.cb720dcef9069p+0, 0x1.d072d4a07897cp+0,
    0x1.d5818dcfba487p+0, 0x1.da9e603db3285p+0, 0x1.dfc97337b9b5fp+0, 0x1.e502ee78b3ff6p+0,
    0x1.ea4afa2a490dap+0, 0x1.efa1bee615a27p+0, 0x1.f50765b6e4540p+0, 0x1.fa7c1819e90d8p+0,
};
__shared__ double rk_exp_tab[64];
RK_FN void rk_exp_table_init() {
  for (int j = threadIdx.x; j < 64; j += blockDim.x) rk_exp_tab[j] = rk_exp_tab_c[j];
  __syncthreads();
}
RK_FN double rk_exp(double x) {
  if (!(fabs(x) < 708.0)) return exp(x);
  const double t = fma(x, 0x1.71547652b82fep+6, 0x1.8p52);  // 64 x / ln2 rounded, in t's low bits
  const double kd = t - 0x1.8p52;
  const int k = __double2loint(t);
  double r = fma(kd, -0x1.62e42fefa0000p-7, x);  // ln2/64 in two parts: kd times the first is exact
  r = fma(kd, -0x1.cf79abc9e3b3ap-46, r);
  double p = fma(r, 0x1.1111111111111p-7, 0x1.5555555555555p-5);
  p = fma(p, r, 0x1.5555555555555p-3);
  p = fma(p, r, 0.5);
  p = fma(p, r, 1.0);
  p = fma(p, r, 1.0);
  return (rk_exp_tab[k & 63] * __hiloint2double(((k >> 6) + 1023) << 20, 0)) * p;
}
#else
RK_FN double rk_exp(double x) { return exp(x); }
#endif
RK_FN float rk_log(float x) { return logf(x); }
RK_FN double rk_log(double x) { return log(x); }
RK_FN float rk_sqrt(float x) { return sqrtf(x); }
RK_FN double rk_sqrt(double x) { return sqrt(x); }
// Rsqrt(0) = 0, as KeOps (so that Normalize(0) = 0).
RK_FN float rk_rsqrt(float x) { float v = rsqrtf(x); return x == 0.0f ? 0.0f : v; }
RK_FN double rk_rsqrt(double x) { double v = rsqrt(x); return x == 0.0 ? 0.0 : v; }
RK_FN float rk_abs(float x) { return fabsf(x); }
RK_FN double rk_abs(double x) { return fabs(x); }
RK_FN float rk_sin(float x) { return sinf(x); }
RK_FN double rk_sin(double x) { return sin(x); }
RK_FN float rk_cos(float x) { return cosf(x); }
RK_FN double rk_cos(double x) { return cos(x); }
RK_FN float rk_asin(float x) { return asinf(x); }
RK_FN double rk_asin(double x) { return asin(x); }
RK_FN float rk_acos(float x) { return acosf(x); }
RK_FN double rk_acos(double x) { return acos(x); }
RK_FN float rk_atan(float x) { return atanf(x); }
RK_FN double rk_atan(double x) { return atan(x); }
RK_FN float rk_atan2(float y, float x) { return atan2f(y, x); }
RK_FN double rk_atan2(double y, double x) { return atan2(y, x); }
RK_FN float rk_floor(float x) { return floorf(x); }
RK_FN double rk_floor(double x) { return floor(x); }
// Half away from zero, as C's round().
RK_FN float rk_round0(float x) { return roundf(x); }
RK_FN double rk_round0(double x) { return round(x); }
RK_FN float rk_pow(float x, float y) { return powf(x, y); }
RK_FN double rk_pow(double x, double y) { return pow(x, y); }
RK_FN int rk_imin(int a, int b) { return a < b ? a : b; }
RK_FN long long rk_lmin(long long a, long long b) { return a < b ? a : b; }
RK_FN long long rk_lmax(long long a, long long b) { return a > b ? a : b; }
#include "rkeops/prelude_common.h"

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
// 2^y in double (a float64 prescaled Gaussian fold, codegen_cuda.cpp): the library's exp2.
RK_FN double rk_exp2(double y) { return exp2(y); }
// 2^y in double for |y| <= 1000 and y not NaN, the exponent of a float64 Gaussian fold in the
// inner-product form (whose rows' and tile's norms are checked, so |y| <= 64): no tests for
// overflow, underflow or NaN (issue 15). y = n + r with n the nearest integer (the 1.5 2^52
// rounding trick) and |r| <= 1/2; 2^r by a degree-11 Chebyshev fit (relative error 2e-17 with
// these double coefficients; Horner's rounding brings it to under 2 ulp, tests/engine/
// test_cuda_prelude.cpp); 2^n added to the exponent field.
RK_FN double rk_exp2_near(double y) {
  const double s = y + 6755399441055744.0;
  const double r = y - (s - 6755399441055744.0);
  double p = 4.4558179083360645e-10;
  p = fma(p, r, 7.074194297288521e-09);
  p = fma(p, r, 1.0178057087733941e-07);
  p = fma(p, r, 1.3215432535912375e-06);
  p = fma(p, r, 1.5252733841556773e-05);
  p = fma(p, r, 0.00015403530463724353);
  p = fma(p, r, 0.001333355814640647);
  p = fma(p, r, 0.009618129107587256);
  p = fma(p, r, 0.055504108664821625);
  p = fma(p, r, 0.24022650695910158);
  p = fma(p, r, 0.6931471805599453);
  p = fma(p, r, 1.0);
  const unsigned n = static_cast<unsigned>(__double2loint(s));
  return __hiloint2double(__double2hiint(p) + static_cast<int>(n << 20), __double2loint(p));
}
RK_FN float rk_fma(float a, float b, float c) { return fmaf(a, b, c); }
RK_FN double rk_fma(double a, double b, double c) { return fma(a, b, c); }
RK_FN double rk_exp(double x) { return exp(x); }
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

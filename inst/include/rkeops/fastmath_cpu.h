// rkeops — vectorisable exp/log for the generated CPU kernels.
//
// Why this file exists: generated kernels are compiled with
// `-O3 -march=native -fopenmp` but never `-ffast-math` (NaN/Inf must follow
// IEEE, and -ffast-math also flushes subnormals process-wide through
// crtfastmath.o).  Without -ffast-math gcc will not vectorise std::exp inside
// `#pragma omp simd` loops (glibc declares the `omp declare simd` variants of
// exp/log, libmvec's _ZGV*_exp, only when __FAST_MATH__ is defined), so a
// Gaussian kernel calls the scalar exp once per lane.  The functions below use only +,-,*,fma, comparisons,
// selects and integer bit operations, all of which gcc and clang turn into
// vector instructions (AVX2, AVX-512, NEON, SVE) with no call and no branch.
//
// Contract (checked by bench/exp_accuracy.cpp against libm):
//   rk_exp(double): max error < 1 ulp over the whole double range,
//                   exp(NaN)=NaN, exp(+Inf)=+Inf, exp(-Inf)=+0, overflow to
//                   +Inf, gradual underflow to subnormals and then +0.
//   rk_exp(float) : the same in float, max error < 1 ulp.
//   rk_log(double), rk_log(float): max error < 1 ulp; log(x<0)=NaN,
//                   log(+-0)=-Inf, log(+Inf)=+Inf, log(NaN)=NaN,
//                   subnormal arguments handled exactly.
// errno is never set and no floating-point exception flag is promised
// (kernels never read them).
//
// Header-only, C++17, no <cmath>: this file is included by every JIT-compiled
// kernel, so it must cost next to nothing to parse.
//
// Polynomial coefficients come from a Remez (minimax) fit in 60-digit
// arithmetic (mpmath), rounded to the working precision; the fitted
// functions and intervals are named next to each table.

#ifndef RKEOPS_FASTMATH_CPU_H
#define RKEOPS_FASTMATH_CPU_H

#include <cstdint>

#if defined(__GNUC__) || defined(__clang__)
#define RK_FM_INLINE static inline __attribute__((always_inline))
#else
#define RK_FM_INLINE static inline
#endif

namespace rk_fm_detail {

/// Bits of a double (memcpy is the defined-behaviour pun; it compiles to nothing).
RK_FM_INLINE std::uint64_t bits(double x) {
  std::uint64_t u;
  __builtin_memcpy(&u, &x, sizeof u);
  return u;
}
/// Double with the given bits.
RK_FM_INLINE double from_bits(std::uint64_t u) {
  double x;
  __builtin_memcpy(&x, &u, sizeof x);
  return x;
}
/// Bits of a float.
RK_FM_INLINE std::uint32_t bits(float x) {
  std::uint32_t u;
  __builtin_memcpy(&u, &x, sizeof u);
  return u;
}
/// Float with the given bits.
RK_FM_INLINE float from_bits(std::uint32_t u) {
  float x;
  __builtin_memcpy(&x, &u, sizeof x);
  return x;
}

/// a where mask bits are set, b elsewhere (mask all-ones or all-zeros).
// Used instead of ?: where gcc would otherwise turn the select back into a
// branch around floating-point work (see rk_select).
RK_FM_INLINE double blend(std::uint64_t mask, double a, double b) {
  return from_bits((bits(a) & mask) | (bits(b) & ~mask));
}
/// Float version of blend.
RK_FM_INLINE float blend(std::uint32_t mask, float a, float b) {
  return from_bits((bits(a) & mask) | (bits(b) & ~mask));
}

}  // namespace rk_fm_detail

/// c ? a : b with both sides always evaluated; keeps `omp simd` loops vectorised.
// Why: for `c ? 0 : rk_exp(v)` gcc makes the rk_exp arithmetic conditional,
// and under -ftrapping-math (the default) it will not if-convert conditional
// floating-point operations, so the loop stays scalar ("control flow in
// loop"), on AVX-512 as well as AVX2.  A bitwise blend of two computed
// values is not turned back into a branch.  (-fno-trapping-math also lifts
// the restriction without changing any result.)
RK_FM_INLINE double rk_select(bool c, double a, double b) {
  return rk_fm_detail::blend(-std::uint64_t(c), a, b);
}
/// Float c ? a : b with both sides always evaluated (see the double version).
RK_FM_INLINE float rk_select(bool c, float a, float b) {
  return rk_fm_detail::blend(-std::uint32_t(c), a, b);
}

// Under -ffast-math the compiler may reassociate (t + C) - C into t, which
// breaks the round-to-integer trick used below; fast-math also vectorises the
// builtins itself.  So a translation unit compiled that way gets the builtins.
#if defined(__FAST_MATH__)

/// exp(x); -ffast-math build: defer to the compiler's own vector exp.
RK_FM_INLINE double rk_exp(double x) { return __builtin_exp(x); }
/// expf(x); -ffast-math build: defer to the compiler's own vector expf.
RK_FM_INLINE float rk_exp(float x) { return __builtin_expf(x); }
/// log(x); -ffast-math build: defer to the compiler's own vector log.
RK_FM_INLINE double rk_log(double x) { return __builtin_log(x); }
/// logf(x); -ffast-math build: defer to the compiler's own vector logf.
RK_FM_INLINE float rk_log(float x) { return __builtin_logf(x); }

#else

/// e^x in double precision, < 1 ulp, IEEE special cases; vectorises under omp simd.
RK_FM_INLINE double rk_exp(double x) {
  using namespace rk_fm_detail;
  // Below -1075 ln2 = -745.1332... the result rounds to +0.  Those inputs (and
  // -Inf) are replaced by 0 for the arithmetic and the result by +0 at the
  // end, so no lane ever computes a subnormal it does not need (subnormal
  // arithmetic costs ~100 cycles on x86).  [-745.2, -745.13] rounds to 0
  // through the arithmetic itself.
  // (Bitwise blends instead of ?: for the same reason as rk_select: with a
  // ?: gcc threads each case into its own path, e.g. constant-folds the whole
  // computation for x > 710, and the remaining conditional arithmetic cannot
  // be if-converted on SSE2/AVX2 under -ftrapping-math.)
  const std::uint64_t under = -std::uint64_t(x < -745.2);
  double xc = blend(under, 0.0, x);
  // Above ~709.79 the result overflows; clamping at 710 keeps k <= 1024 so the
  // two-step scaling below still produces +Inf by ordinary overflow (and the
  // inputs just under the threshold still round correctly).  NaN fails both
  // comparisons and flows through the arithmetic as the same NaN: every
  // operation has it as an operand and s1, s2 below are never NaN (zero
  // mantissa), so R's NA payload survives.
  xc = blend(-std::uint64_t(xc > 710.0), 710.0, xc);

  // x = k ln2 + r, |r| <= ln2/2.  Adding 1.5*2^52 rounds x/ln2 to the nearest
  // integer and leaves k in the low mantissa bits of t (two's complement).
  const double shift = 0x1.8p52;
  const double t = xc * 0x1.71547652b82fep0 + shift;
  const double kd = t - shift;
  // Cody–Waite: ln2_hi has 21 trailing zero bits, so kd*ln2_hi is exact for
  // |k| <= 2^21 and x - kd*ln2_hi is exact (Sterbenz); only ln2_lo rounds.
  const double hi = xc - kd * 0x1.62e42fee00000p-1;
  const double lo = kd * 0x1.a39ef35793c76p-33;
  const double r = hi - lo;
  // Rounding error of r (exact up to a few ulp of a 1e-10 sized term);
  // folding it back in halves the worst-case error.
  const double rc = (hi - r) - lo;

  // e^r = 1 + r + r^2 Q(r); Q is the degree-9 minimax fit of
  // (e^r - 1 - r)/r^2 on [-0.35, 0.35] (abs error 3.9e-18 = 0.04 ulp).
  const double r2 = r * r;
  double q = 0x1.af8b3887ed669p-26;
  q = q * r + 0x1.28b4497349900p-22;
  q = q * r + 0x1.71dddc3306199p-19;
  q = q * r + 0x1.a0199252ec8c4p-16;
  q = q * r + 0x1.a01a01bc7ed9ap-13;
  q = q * r + 0x1.6c16c18731171p-10;
  q = q * r + 0x1.111111110d175p-7;
  q = q * r + 0x1.555555554f94bp-5;
  q = q * r + 0x1.5555555555562p-3;
  q = q * r + 0x1.000000000000dp-1;
  // e^(r+rc) ~ e^r (1 + rc) ~ e^r + rc (1 + r); the small terms are summed
  // first so that the only large rounding is the final 1 + (...).
  const double p = 1.0 + (r + (r2 * q + (rc + rc * r)));

  // Scale by 2^k as 2^k1 * 2^k2 with k1 = floor(k/2): both factors are
  // normal for k in [-1076, 1024], p*2^k1 is exact, and the single rounding
  // of the second product gives correct overflow and gradual underflow.
  // Unsigned arithmetic wraps, so the bias 2048 keeps the shift logical
  // (AVX2 has no 64-bit arithmetic shift).
  const std::uint64_t k = bits(t) - bits(shift);
  const std::uint64_t k1 = ((k + 2048u) >> 1) - 1024u;
  const std::uint64_t k2 = k - k1;
  const double s1 = from_bits((k1 + 1023u) << 52);
  const double s2 = from_bits((k2 + 1023u) << 52);
  const double y = (p * s1) * s2;
  return blend(under, 0.0, y);
}

/// e^x in single precision, < 1 ulp, IEEE special cases; vectorises under omp simd.
RK_FM_INLINE float rk_exp(float x) {
  using namespace rk_fm_detail;
  // Same scheme as the double version, in float so vectors hold 2x the lanes.
  // -150 ln2 = -103.97: below it the result rounds to +0.
  const std::uint32_t under = -std::uint32_t(x < -104.0f);
  float xc = blend(under, 0.0f, x);
  xc = blend(-std::uint32_t(xc > 89.0f), 89.0f, xc);  // k <= 128: overflow in the scaling

  const float shift = 0x1.8p23f;
  const float t = xc * 0x1.715476p0f + shift;
  const float kd = t - shift;
  // ln2_hi has 15 significant bits: kd*ln2_hi is exact for |k| <= 2^9.
  const float hi = xc - kd * 0x1.62e4p-1f;
  const float lo = kd * 0x1.7f7d1cp-20f;
  const float r = hi - lo;
  const float rc = (hi - r) - lo;  // rounding error of r, as in the double version

  // Q: degree-4 minimax fit of (e^r - 1 - r)/r^2 on [-0.35, 0.35]
  // (abs error 3.3e-9 = 0.03 ulp).
  float q = 0x1.6dbc4ep-10f;
  q = q * r + 0x1.124136p-7f;
  q = q * r + 0x1.555454p-5f;
  q = q * r + 0x1.555488p-3f;
  q = q * r + 0.5f;
  const float p = 1.0f + (r + ((r * r) * q + rc));

  const std::uint32_t k = bits(t) - bits(shift);
  const std::uint32_t k1 = ((k + 256u) >> 1) - 128u;
  const std::uint32_t k2 = k - k1;
  const float s1 = from_bits((k1 + 127u) << 23);
  const float s2 = from_bits((k2 + 127u) << 23);
  const float y = (p * s1) * s2;
  return blend(under, 0.0f, y);
}

/// Natural log in double precision, < 1 ulp, IEEE special cases; vectorises under omp simd.
RK_FM_INLINE double rk_log(double x) {
  using namespace rk_fm_detail;
  // Subnormal (and zero/negative, fixed up at the end) inputs are scaled by
  // 2^54 so that the exponent/mantissa split below sees a normal number.
  //
  // All selects in this function that involve floating-point work are bitwise
  // blends, not ?:.  With ?: gcc threads the two cases into separate paths, so
  // the multiply (and, for the special cases, the whole computation including
  // the division) becomes conditional; with -ftrapping-math (the default) it
  // may not speculate them, and on AVX2 (no masked operations) the loop is
  // then left scalar ("control flow in loop").
  const std::uint64_t sub = -std::uint64_t(x < 0x1p-1022);
  const double xs = blend(sub, x * 0x1p54, x);
  // x = 2^e m with m in [sqrt(1/2), sqrt(2)): adding bits(1) - bits(sqrt(1/2))
  // carries into the exponent field exactly when the mantissa passes
  // sqrt(1/2), so the biased exponent eb comes out of one add and one
  // logical shift (AVX2 has no 64-bit arithmetic shift).
  const std::uint64_t u = bits(xs);
  const std::uint64_t eb = (u + 0x00095f619980c433u) >> 52;
  const double m = from_bits(u - (eb << 52) + (std::uint64_t(1023) << 52));
  // e as a double without an int64->double conversion (AVX2 has none):
  // 1.5*2^52 + eb is exact, so subtracting 1.5*2^52 + 1023 gives eb - 1023.
  const double e = (from_bits(0x4338000000000000u + eb) - (0x1.8p52 + 1023.0)) -
                   from_bits(bits(54.0) & sub);

  // log(m) = log(1+f) = 2 atanh(s), s = f/(2+f), |s| <= 0.1716.  Written as
  // f - f^2/2 + s (f^2/2 + R) with R = z T(z), z = s^2: every term but f is
  // small, so the rounding errors stay well under one ulp (fdlibm's scheme).
  const double f = m - 1.0;  // exact (Sterbenz)
  const double s = f / (2.0 + f);
  const double z = s * s;
  // T: degree-6 minimax fit of (2 atanh(s) - 2s)/s^3 in z on [0, 0.02944]
  // (abs error 3.1e-16; it is multiplied by s^3 <= 0.0051).
  double t = 0x1.2b5fb4d9baaefp-3;
  t = t * z + 0x1.39fdba0cbb75bp-3;
  t = t * z + 0x1.7462ba227c2f9p-3;
  t = t * z + 0x1.c71c62d04f7dap-3;
  t = t * z + 0x1.2492492e03d89p-2;
  t = t * z + 0x1.9999999995224p-2;
  t = t * z + 0x1.5555555555558p-1;
  const double R = z * t;
  const double hfsq = 0.5 * f * f;
  // e ln2 split as in rk_exp: e*ln2_hi is exact for |e| <= 2^21.
  const double y =
      e * 0x1.62e42fee00000p-1 - ((hfsq - (s * (hfsq + R) + e * 0x1.a39ef35793c76p-33)) - f);

  // Special cases: +Inf -> +Inf, +-0 -> -Inf, x < 0 -> NaN, NaN -> the same
  // NaN (keeps R's NA payload).  Selecting among constants and x is fine as ?:.
  const double spec = x == 0.0 ? -__builtin_inf() : (x < 0.0 ? __builtin_nan("") : x);
  const std::uint64_t ok = -std::uint64_t((x > 0.0) & (x < __builtin_inf()));
  return blend(ok, y, spec);
}

/// Natural log in single precision, < 1 ulp, IEEE special cases; vectorises under omp simd.
RK_FM_INLINE float rk_log(float x) {
  using namespace rk_fm_detail;
  // Same scheme as the double version, in float.
  const std::uint32_t sub = -std::uint32_t(x < 0x1p-126f);
  const float xs = blend(sub, x * 0x1p25f, x);
  const std::uint32_t u = bits(xs);
  const std::uint32_t eb = (u + 0x004afb0du) >> 23;  // bits(1) - bits(sqrt(1/2))
  const float m = from_bits(u - (eb << 23) + (127u << 23));
  const float e =
      (from_bits(0x4b400000u + eb) - (0x1.8p23f + 127.0f)) - from_bits(bits(25.0f) & sub);

  const float f = m - 1.0f;
  const float s = f / (2.0f + f);
  const float z = s * s;
  // T: degree-3 minimax fit of (2 atanh(s) - 2s)/s^3 on [0, 0.02944] (1.1e-9).
  float t = 0x1.ddd8d8p-3f;
  t = t * z + 0x1.245c0cp-2f;
  t = t * z + 0x1.9999ecp-2f;
  t = t * z + 0x1.555556p-1f;
  const float R = z * t;
  const float hfsq = 0.5f * f * f;
  const float y = e * 0x1.62e4p-1f - ((hfsq - (s * (hfsq + R) + e * 0x1.7f7d1cp-20f)) - f);

  const float spec = x == 0.0f ? -__builtin_inff() : (x < 0.0f ? __builtin_nanf("") : x);
  const std::uint32_t ok = -std::uint32_t((x > 0.0f) & (x < __builtin_inff()));
  return blend(ok, y, spec);
}

#endif  // __FAST_MATH__

#undef RK_FM_INLINE

#endif  // RKEOPS_FASTMATH_CPU_H

// rkeops: half precision for generated GPU kernels (rkeops_use_float16()), pasted after
// prelude_cuda.h in float16 kernels only. No CUDA header is used (cuda_fp16.h is not there on
// a user's machine without the toolkit): halves are IEEE binary16 bit patterns in
// `unsigned short` (storage) and pairs of them in rk_h2 (one 32-bit register, lane 0 in the
// low 16 bits), computed with the f16x2 instructions of PTX (add/sub/mul/fma.rn.f16x2: sm_53+;
// ex2.approx.f16x2: sm_75+; cvt.rn.f16x2.f32: sm_80+; older devices take the float route).
// Operations with no f16x2 instruction (division, log, square roots, powers) convert the two
// lanes to float, compute there and round back: still one half2 value out.
// Under RK_CUDA_EMULATION (tests/engine/cuda_emulation.h) every f16x2 instruction is replaced by
// its definition: each lane converted to float exactly, computed in float, rounded to half
// (round to nearest even) in software.

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 530
#error "rkeops: float16 (rkeops_use_float16()) needs a GPU of compute capability 5.3 or newer; use rkeops_use_float32()"
#endif

// ---- conversions in software (constants fold at compile time; the emulation uses them) ----
// float -> half bits, rounded to nearest even; overflow gives +-Inf, NaN stays NaN.
RK_FN unsigned short rk_f2h_sw(float f) {
  const unsigned x = __float_as_uint(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) return (unsigned short)(sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (a >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // >= 65520: rounds to Inf
  if (a < 0x33000000u) return (unsigned short)sign;                 // < 2^-25: rounds to 0
  if (a < 0x38800000u) {  // below 2^-14: a subnormal half, in units of 2^-24
    const unsigned e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift = 126u - e;
    unsigned q = m >> shift;
    const unsigned r = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (r > half || (r == half && (q & 1u))) ++q;
    return (unsigned short)(sign | q);
  }
  unsigned h = (a - 0x38000000u) >> 13;  // exponent rebiased 127 -> 15, 10 bits of significand
  const unsigned r = a & 0x1fffu;
  if (r > 0x1000u || (r == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
  return (unsigned short)(sign | h);
}
// half bits -> float (exact).
RK_FN float rk_h2f_sw(unsigned short h) {
  const unsigned sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1fu) return __uint_as_float(sign | 0x7f800000u | (m << 13));
  if (e) return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
  const float f = (float)m * 5.9604644775390625e-8f;  // m 2^-24 (0 too)
  return sign ? -f : f;
}

// ---- conversions on the device ----
#ifdef RK_CUDA_EMULATION
RK_FN float rk_h2f(unsigned short h) { return rk_h2f_sw(h); }
// Two floats rounded to a pair of halves: lo in the low 16 bits.
RK_FN unsigned rk_pack_bits(float lo, float hi) { return rk_f2h_sw(lo) | ((unsigned)rk_f2h_sw(hi) << 16); }
#else
RK_FN float rk_h2f(unsigned short h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}
RK_FN unsigned rk_pack_bits(float lo, float hi) {
  unsigned r;
#if __CUDA_ARCH__ >= 800
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));  // the first source goes high
#else
  unsigned short a, b;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(a) : "f"(lo));
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(b) : "f"(hi));
  r = a | ((unsigned)b << 16);
#endif
  return r;
}
#endif

// ---- pairs ----
// Two halves in one register: lane 0 (low bits) and lane 1. The formula code of a float16
// kernel is the same text as for float or double, with T = rk_h2: constants T(c) convert in
// software (folded), arithmetic is f16x2.
struct rk_h2 {
  unsigned u;
  rk_h2() = default;
  __device__ __forceinline__ rk_h2(double c) : u(0x10001u * rk_f2h_sw((float)c)) {}  // NOLINT: T(0), T(1.5)
};
RK_FN rk_h2 rk_h2_bits(unsigned u) {
  rk_h2 r;
  r.u = u;
  return r;
}
RK_FN rk_h2 rk_pack(float lo, float hi) { return rk_h2_bits(rk_pack_bits(lo, hi)); }
// One half in both lanes (an inner row or a parameter, the same for the thread's two rows).
RK_FN rk_h2 rk_bcast(unsigned short h) { return rk_h2_bits(0x10001u * h); }
// The low or high half of a 32-bit word of a packed row, in both lanes.
RK_FN rk_h2 rk_bc_lo(unsigned w) { return rk_h2_bits(0x10001u * (w & 0xffffu)); }
RK_FN rk_h2 rk_bc_hi(unsigned w) { return rk_h2_bits(0x10001u * (w >> 16)); }
// Four halves of a 16-byte vector (its words x, y for lo4; z, w for hi4) as four broadcast
// pairs: a tile of inner rows is stored so in shared memory, converted once per block.
RK_FN uint4 rk_bc4_lo(uint4 v) {
  uint4 r;
  r.x = rk_bc_lo(v.x).u; r.y = rk_bc_hi(v.x).u; r.z = rk_bc_lo(v.y).u; r.w = rk_bc_hi(v.y).u;
  return r;
}
RK_FN uint4 rk_bc4_hi(uint4 v) {
  uint4 r;
  r.x = rk_bc_lo(v.z).u; r.y = rk_bc_hi(v.z).u; r.z = rk_bc_lo(v.w).u; r.w = rk_bc_hi(v.w).u;
  return r;
}
// The same as floats (float16 kernels that evaluate in float32).
RK_FN float rk_f_lo(unsigned w) { return rk_h2f((unsigned short)(w & 0xffffu)); }
RK_FN float rk_f_hi(unsigned w) { return rk_h2f((unsigned short)(w >> 16)); }
// The two rows of a thread: lane 0 from a, lane 1 from b.
RK_FN rk_h2 rk_pair(unsigned short a, unsigned short b) { return rk_h2_bits(a | ((unsigned)b << 16)); }
// The lanes as floats (the reduction accumulates in float32).
RK_FN float rk_lo(rk_h2 v) { return rk_h2f((unsigned short)(v.u & 0xffffu)); }
RK_FN float rk_hi(rk_h2 v) { return rk_h2f((unsigned short)(v.u >> 16)); }
RK_FN float rk_lo(float v) { return v; }
RK_FN float rk_hi(float v) { return v; }
RK_FN void rk_split(rk_h2 v, float& a, float& b) {
  a = rk_lo(v);
  b = rk_hi(v);
}

// ---- wide rows, read where they are used ----
// Rows of halves too wide for registers (and big parameters) are bound to these accessors:
// `(r + k0)[k]` is component k0 + k converted, as a pointer's would be a half. rk_hrow2: halves
// to broadcast pairs; rk_prow2: a shared tile of pairs; rk_hrowf: halves to floats; rk_hcol2:
// two adjacent rows (i, i + 1) of a column-major input as the lanes of a pair, `k` the offset
// in the column-major array (inactive rows read as 0).
struct rk_hrow2 {
  const unsigned short* p;
  __device__ __forceinline__ rk_h2 operator[](long long k) const { return rk_bcast(p[k]); }
};
struct rk_prow2 {
  const unsigned* p;
  __device__ __forceinline__ rk_h2 operator[](long long k) const { return rk_h2_bits(p[k]); }
};
struct rk_hrowf {
  const unsigned short* p;
  __device__ __forceinline__ float operator[](long long k) const { return rk_h2f(p[k]); }
};
struct rk_hcol2 {
  const unsigned short* p;
  bool a0, a1;
  __device__ __forceinline__ rk_h2 operator[](long long k) const {
    return rk_pair(a0 ? p[k] : (unsigned short)0, a1 ? p[k + 1] : (unsigned short)0);
  }
};
RK_FN rk_hrow2 operator+(rk_hrow2 r, long long k) { r.p += k; return r; }
RK_FN rk_prow2 operator+(rk_prow2 r, long long k) { r.p += k; return r; }
RK_FN rk_hrowf operator+(rk_hrowf r, long long k) { r.p += k; return r; }

// ---- f16x2 arithmetic ----
// add, sub and mul carry no rounding modifier (they round to nearest all the same): the code
// generator may then fuse a multiplication and an addition into one fma.rn.f16x2 (PTX ISA),
// which the operators cannot say themselves.
#ifdef RK_CUDA_EMULATION
RK_FN rk_h2 operator+(rk_h2 a, rk_h2 b) { return rk_pack(rk_lo(a) + rk_lo(b), rk_hi(a) + rk_hi(b)); }
RK_FN rk_h2 operator-(rk_h2 a, rk_h2 b) { return rk_pack(rk_lo(a) - rk_lo(b), rk_hi(a) - rk_hi(b)); }
RK_FN rk_h2 operator*(rk_h2 a, rk_h2 b) { return rk_pack(rk_lo(a) * rk_lo(b), rk_hi(a) * rk_hi(b)); }
RK_FN rk_h2 rk_fma2(rk_h2 a, rk_h2 b, rk_h2 c) {
  return rk_pack(std::fma(rk_lo(a), rk_lo(b), rk_lo(c)), std::fma(rk_hi(a), rk_hi(b), rk_hi(c)));
}
#else
RK_FN rk_h2 operator+(rk_h2 a, rk_h2 b) {
  rk_h2 r;
  asm("add.f16x2 %0, %1, %2;" : "=r"(r.u) : "r"(a.u), "r"(b.u));
  return r;
}
RK_FN rk_h2 operator-(rk_h2 a, rk_h2 b) {
  rk_h2 r;
  asm("sub.f16x2 %0, %1, %2;" : "=r"(r.u) : "r"(a.u), "r"(b.u));
  return r;
}
RK_FN rk_h2 operator*(rk_h2 a, rk_h2 b) {
  rk_h2 r;
  asm("mul.f16x2 %0, %1, %2;" : "=r"(r.u) : "r"(a.u), "r"(b.u));
  return r;
}
RK_FN rk_h2 rk_fma2(rk_h2 a, rk_h2 b, rk_h2 c) {
  rk_h2 r;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(r.u) : "r"(a.u), "r"(b.u), "r"(c.u));
  return r;
}
#endif
// Sign and magnitude are bits: exact, NaN kept.
RK_FN rk_h2 operator-(rk_h2 a) { return rk_h2_bits(a.u ^ 0x80008000u); }
RK_FN rk_h2 rk_abs(rk_h2 a) { return rk_h2_bits(a.u & 0x7fff7fffu); }
// Division in float per lane (no f16x2 divide): one rounding to half, as a correctly rounded
// half division up to the float approximation (2 ulp of float).
RK_FN rk_h2 operator/(rk_h2 a, rk_h2 b) {
  return rk_pack(__fdividef(rk_lo(a), rk_lo(b)), __fdividef(rk_hi(a), rk_hi(b)));
}
RK_FN rk_h2& operator+=(rk_h2& a, rk_h2 b) { return a = a + b; }
RK_FN rk_h2& operator-=(rk_h2& a, rk_h2 b) { return a = a - b; }
RK_FN rk_h2& operator*=(rk_h2& a, rk_h2 b) { return a = a * b; }
RK_FN rk_h2& operator/=(rk_h2& a, rk_h2 b) { return a = a / b; }

// ---- maths ----
// exp(x) = 2^(x log2 e) on the special-function unit, both lanes at once (sm_75+). log2 e is
// split in two halves (hi + lo) so that the product is rounded once, without the bias of a
// rounded constant (2e-4 relative, i.e. exp(-10) off by 0.2%). ex2.approx.f16x2: relative error
// below 2^-9.9 (PTX ISA); in all, about |x| 2^-11 + 1e-3.
RK_FN rk_h2 rk_exp(rk_h2 x) {
  const rk_h2 hi = rk_h2_bits(0x3dc53dc5u), lo = rk_h2_bits(0x0d1e0d1eu);  // 1.4423828 + 3.1233e-4
  const rk_h2 y = rk_fma2(x, hi, x * lo);
#ifdef RK_CUDA_EMULATION
  return rk_pack(std::exp2(rk_lo(y)), std::exp2(rk_hi(y)));
#elif __CUDA_ARCH__ >= 750
  rk_h2 r;
  asm("ex2.approx.f16x2 %0, %1;" : "=r"(r.u) : "r"(y.u));
  return r;
#else
  return rk_pack(exp2f(rk_lo(y)), exp2f(rk_hi(y)));
#endif
}
// No f16x2 form in PTX: per lane in float, one rounding to half.
RK_FN rk_h2 rk_log(rk_h2 x) { return rk_pack(rk_log(rk_lo(x)), rk_log(rk_hi(x))); }
RK_FN rk_h2 rk_sqrt(rk_h2 x) { return rk_pack(rk_sqrt(rk_lo(x)), rk_sqrt(rk_hi(x))); }
RK_FN rk_h2 rk_rsqrt(rk_h2 x) { return rk_pack(rk_rsqrt(rk_lo(x)), rk_rsqrt(rk_hi(x))); }  // Rsqrt(0) = 0
RK_FN rk_h2 rk_pow(rk_h2 x, rk_h2 y) { return rk_pack(rk_pow(rk_lo(x), rk_lo(y)), rk_pow(rk_hi(x), rk_hi(y))); }

// IEEE binary16 ("half") on the host: the float16 GPU backend packs R's doubles into halves
// (launch_cuda.cpp), rounded once to nearest even, straight from the double.
#pragma once
#include <cstdint>
#include <cstring>

namespace rkeops {

// The half nearest to v (ties to even); overflow gives +-Inf, NaN stays NaN.
inline uint16_t double_to_half(double v) {
  uint64_t x;
  std::memcpy(&x, &v, sizeof x);
  const uint16_t sign = static_cast<uint16_t>((x >> 48) & 0x8000u);
  const uint64_t a = x & 0x7fffffffffffffffULL;
  const int e = static_cast<int>(a >> 52);  // biased exponent (1023)
  if (e == 0x7ff) return sign | ((a & 0xfffffffffffffULL) ? 0x7e00u : 0x7c00u);
  // |v| = m 2^(e - 1075) with m the 53-bit significand (subnormal doubles round to 0 below).
  if (e < 1023 - 26) return sign;  // below 2^-26: rounds to 0
  const uint64_t m = (a & 0xfffffffffffffULL) | (1ULL << 52);
  // The half's unit in the last place: 2^-24 for subnormals, 2^(E - 10) for |v| in [2^E, 2^(E+1)).
  const int E = e - 1023;
  const int ulp = E < -14 ? -24 : E - 10;
  const int shift = ulp - (e - 1075);  // m >> shift: |v| in units of the half's ulp
  uint64_t q = m >> shift;
  const uint64_t r = m & ((1ULL << shift) - 1), half = 1ULL << (shift - 1);
  if (r > half || (r == half && (q & 1))) ++q;
  // q: the significand in ulps (with the hidden bit for normals); rebuild the bits.
  if (E < -14) return sign | static_cast<uint16_t>(q);  // subnormal (q = 1024 is the smallest normal: right)
  uint64_t bits = (static_cast<uint64_t>(E + 15) << 10) + (q - 1024);  // q may be 2048: the exponent carries
  if (bits >= 0x7c00u) return sign | 0x7c00u;
  return sign | static_cast<uint16_t>(bits);
}

inline double half_to_double(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v;
  if (e == 0x1f)
    v = m ? __builtin_nan("") : __builtin_inf();
  else if (e == 0)
    v = m * 0x1p-24;
  else
    v = (1024 + m) * (e - 25 >= 0 ? static_cast<double>(1LL << (e - 25)) : 1.0 / static_cast<double>(1LL << (25 - e)));
  return (h & 0x8000u) ? -v : v;
}

// o[q * ostep] = double_to_half(s[q * step]) for q < len; with F16C (x86-64 CPUs that have it)
// through a float rounded to odd, which keeps 13 bits more than a half, so that the float's
// nearest half is the double's (half.cpp): about 5x faster than double_to_half.
void doubles_to_halves(uint16_t* o, long long ostep, const double* s, long long len, long long step);

// A half as a value type for the packing templates (static_cast<Half16>(double) rounds).
struct Half16 {
  uint16_t bits = 0;
  Half16() = default;
  explicit Half16(double v) : bits(double_to_half(v)) {}
  explicit operator double() const { return half_to_double(bits); }
};

}  // namespace rkeops

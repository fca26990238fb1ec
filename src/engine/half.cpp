// Doubles to halves on the host (half.h).
#include "half.h"

#include <cmath>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)  // (clang: no "f16c" for __builtin_cpu_supports)
#include <immintrin.h>
#define RK_HALF_F16C 1
#endif

namespace rkeops {
namespace {

void plain(uint16_t* o, long long ostep, const double* s, long long len, long long step) {
  for (long long q = 0; q < len; ++q) o[q * ostep] = double_to_half(s[q * step]);
}

#ifdef RK_HALF_F16C
// The float nearest to v toward zero, with its last bit set when inexact ("round to odd"), then
// the hardware's rounding to half (to nearest even).
__attribute__((target("f16c"))) void f16c(uint16_t* o, long long ostep, const double* s, long long len,
                                          long long step) {
  for (long long q = 0; q < len; ++q) {
    const double v = s[q * step];
    float f = static_cast<float>(v);
    const double back = f;
    if (back != v && v == v) {
      uint32_t u;
      std::memcpy(&u, &f, sizeof u);
      if (std::fabs(back) > std::fabs(v)) --u;  // (f rounded away from zero; an overflow's Inf too)
      u |= 1u;
      std::memcpy(&f, &u, sizeof f);
    }
    o[q * ostep] = static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
  }
}
bool have_f16c() {
  static const bool yes = __builtin_cpu_supports("f16c");
  return yes;
}
#endif

}  // namespace

void doubles_to_halves(uint16_t* o, long long ostep, const double* s, long long len, long long step) {
#ifdef RK_HALF_F16C
  if (have_f16c()) return f16c(o, ostep, s, len, step);
#endif
  plain(o, ostep, s, len, step);
}

}  // namespace rkeops

// Measures rk_exp and rk_log (inst/include/rkeops/fastmath_cpu.h) against references, for
// tests/engine/test_fastmath.cpp (bounded sweeps, bounds asserted) and bench/exp_accuracy.cpp
// (the long measurement by hand, every float input). Include it from a file compiled as the
// generated kernels are (-O3 -march=native, `omp simd` honoured, no -ffast-math).
//
// Every input goes through a vectorised `omp simd` loop (how kernels call the functions) and a
// non-inlined scalar call: the two must agree bit for bit. A double result is compared with a
// long double reference (x87 expl/logl: 11 more bits), so the error is the true error in ulps
// of the result, not the distance to glibc's rounding; a float result with the double libm
// function. The distance to libm's own result is measured as well.
#pragma once
#include <rkeops/fastmath_cpu.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#ifdef __FAST_MATH__
#error "the fast exp/log checks are meaningless under -ffast-math"
#endif

namespace fastmath_check {

enum class Fn { Exp, Log };
inline const char* fn_name(Fn f) { return f == Fn::Exp ? "rk_exp" : "rk_log"; }

// The reference's type: more precise than the result's.
template <class T>
using Wide = std::conditional_t<std::is_same<T, float>::value, double, long double>;
template <class T>
using Bits = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;

template <class T>
Bits<T> bits(T x) {
  Bits<T> u;
  std::memcpy(&u, &x, sizeof x);
  return u;
}
template <class T>
T from_bits(Bits<T> u) {
  T x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
// The payload of a NaN: its mantissa without the quiet bit (R's NA is a NaN with payload 1954).
template <class T>
Bits<T> payload(T x) {
  return bits(x) & ((Bits<T>(1) << (std::numeric_limits<T>::digits - 2)) - 1);
}

// One call, never inlined: the scalar code path.
template <class T>
__attribute__((noinline)) T scalar(Fn f, T x) {
  return f == Fn::Exp ? rk_exp(x) : rk_log(x);
}
// An array through an `omp simd` loop: the vector code path.
template <class T>
__attribute__((noinline)) void vector(Fn f, const T* x, T* y, long n) {
  if (f == Fn::Exp) {
#pragma omp simd
    for (long i = 0; i < n; ++i) y[i] = rk_exp(x[i]);
  } else {
#pragma omp simd
    for (long i = 0; i < n; ++i) y[i] = rk_log(x[i]);
  }
}

// One ulp of a result of type T whose exact value is `ref`.
template <class T>
Wide<T> ulp(Wide<T> ref) {
  using W = Wide<T>;
  ref = std::fabs(ref);
  if (ref < W(std::numeric_limits<T>::min())) return W(std::numeric_limits<T>::denorm_min());
  int e;
  std::frexp(ref, &e);  // ref = m 2^e, m in [0.5, 1)
  return std::ldexp(W(1), e - std::numeric_limits<T>::digits);
}

// 0: finite non-zero, 1: NaN, 2: +Inf, 3: -Inf, 4: zero.
template <class T>
int special_class(T v) {
  if (v != v) return 1;
  if (v == std::numeric_limits<T>::infinity()) return 2;
  if (v == -std::numeric_limits<T>::infinity()) return 3;
  if (v == 0) return 4;
  return 0;
}

// What a sweep found.
struct Stats {
  long n = 0;
  long special_bad = 0;      // NaN/Inf/zero where the reference is not (or the reverse)
  long vec_scalar_diff = 0;  // vector and scalar results differ in bits
  long payload_lost = 0;     // a NaN input whose payload the result does not carry
  double max_ulp = 0;        // error vs the reference, in ulps, normal results
  double arg_max_ulp = 0;
  double max_ulp_sub = 0;   // the same where the result is subnormal
  double max_rel = 0;       // |y - ref| / |ref|, normal results
  double max_rel_libm = 0;  // relative distance to libm's result
  double max_ulp_libm = 0;  // distance to libm's result, in ulps
  long not_libm = 0;        // results that differ from libm's
  std::string first_bad;    // the first input that failed a bitwise check, described

  void merge(const Stats& o) {
    n += o.n;
    special_bad += o.special_bad;
    vec_scalar_diff += o.vec_scalar_diff;
    payload_lost += o.payload_lost;
    not_libm += o.not_libm;
    if (o.max_ulp > max_ulp) {
      max_ulp = o.max_ulp;
      arg_max_ulp = o.arg_max_ulp;
    }
    max_ulp_sub = std::max(max_ulp_sub, o.max_ulp_sub);
    max_rel = std::max(max_rel, o.max_rel);
    max_rel_libm = std::max(max_rel_libm, o.max_rel_libm);
    max_ulp_libm = std::max(max_ulp_libm, o.max_ulp_libm);
    if (first_bad.empty()) first_bad = o.first_bad;
  }
  std::string summary(const std::string& name) const {
    char buf[640];
    std::snprintf(buf, sizeof buf,
                  "%s: n=%ld max_err=%.3f ulp (at x=%.17g) subnormal-result max_err=%.3f ulp max_rel=%.3g\n"
                  "    vs libm: max_rel=%.3g max_ulp_diff=%.0f differ=%.4f%%  special_mismatch=%ld "
                  "vector!=scalar=%ld NaN_payload_lost=%ld%s%s",
                  name.c_str(), n, max_ulp, arg_max_ulp, max_ulp_sub, max_rel, max_rel_libm, max_ulp_libm,
                  n ? 100.0 * not_libm / n : 0.0, special_bad, vec_scalar_diff, payload_lost,
                  first_bad.empty() ? "" : "\n    first: ", first_bad.c_str());
    return buf;
  }
};

template <class T>
void note_bad(Stats& st, const char* what, T x, T y, Wide<T> ref) {
  if (!st.first_bad.empty()) return;
  char buf[200];
  std::snprintf(buf, sizeof buf, "%s at x=%a: got %a, reference %La", what, double(x), double(y),
                static_cast<long double>(ref));
  st.first_bad = buf;
}

// Checks y (vector path) and ys (scalar path) for the inputs x[0..n).
template <class T>
void check_range(Stats& st, Fn f, const T* x, const T* y, const T* ys, long n) {
  using W = Wide<T>;
  const T tiny = std::numeric_limits<T>::denorm_min(), min_normal = std::numeric_limits<T>::min();
  for (long i = 0; i < n; ++i) {
    ++st.n;
    const T xi = x[i], yi = y[i];
    if (bits(yi) != bits(ys[i]) && !(yi != yi && ys[i] != ys[i])) {
      ++st.vec_scalar_diff;
      note_bad(st, "vector != scalar", xi, yi, W(ys[i]));
    }
    if (xi != xi) {  // NaN in, the same NaN out (R's NA stays NA)
      if (!(yi != yi) || payload(yi) != payload(xi)) {
        ++st.payload_lost;
        note_bad(st, "NaN payload lost", xi, yi, W(xi));
      }
      continue;
    }
    const W ref = f == Fn::Exp ? std::exp(W(xi)) : std::log(W(xi));
    const T lib = f == Fn::Exp ? std::exp(xi) : std::log(xi);
    const T reft = T(ref);  // the correctly rounded result (almost always)
    const int cy = special_class(yi), cr = special_class(reft);
    if (cy || cr) {
      // zero against the smallest subnormal is a question of accuracy, measured below
      const bool tiny_ok = (cy == 4 || cr == 4) && !(cy & 3) && !(cr & 3) && std::fabs(W(yi) - ref) <= W(tiny);
      if (cy != cr && !tiny_ok) {
        ++st.special_bad;
        note_bad(st, "special value", xi, yi, ref);
        continue;
      }
      if (cy == cr && cy != 0 && cy != 4) continue;  // the same NaN or infinity
    }
    const W err = std::fabs(W(yi) - ref);
    const double e_ulp = double(err / ulp<T>(ref));
    if (std::fabs(reft) < min_normal) {
      st.max_ulp_sub = std::max(st.max_ulp_sub, e_ulp);
    } else {
      if (e_ulp > st.max_ulp) {
        st.max_ulp = e_ulp;
        st.arg_max_ulp = double(xi);
      }
      st.max_rel = std::max(st.max_rel, double(err / std::fabs(ref)));
    }
    if (yi != lib) {
      ++st.not_libm;
      st.max_ulp_libm = std::max(st.max_ulp_libm, double(std::fabs(W(yi) - W(lib)) / ulp<T>(W(lib))));
      if (std::fabs(lib) >= min_normal)
        st.max_rel_libm = std::max(st.max_rel_libm, double(std::fabs((W(yi) - W(lib)) / W(lib))));
    }
  }
}

// Evaluates and checks a batch of inputs (in parallel when compiled with -fopenmp).
template <class T>
Stats check(Fn f, const std::vector<T>& x) {
  const long n = static_cast<long>(x.size());
  std::vector<T> y(x.size()), ys(x.size());
  vector(f, x.data(), y.data(), n);
  Stats st;
  const long chunk = 1 << 16;
#pragma omp parallel
  {
    Stats local;
#pragma omp for schedule(dynamic)
    for (long c = 0; c < n; c += chunk) {
      const long m = std::min(chunk, n - c);
      for (long i = c; i < c + m; ++i) ys[i] = scalar(f, x[i]);
      check_range(local, f, x.data() + c, y.data() + c, ys.data() + c, m);
    }
#ifdef _OPENMP
#pragma omp critical
#endif
    st.merge(local);
  }
  return st;
}

// Every `stride`-th bit pattern from `start` (all 2^32 floats with stride 1), in pieces.
inline Stats check_float_patterns(Fn f, std::uint64_t start, std::uint64_t stride) {
  Stats st;
  std::vector<float> x;
  for (std::uint64_t u = start; u < (std::uint64_t(1) << 32);) {
    x.clear();
    for (; u < (std::uint64_t(1) << 32) && x.size() < (1u << 24); u += stride)
      x.push_back(from_bits<float>(static_cast<std::uint32_t>(u)));
    st.merge(check(f, x));
  }
  return st;
}

// Inputs spread uniformly over [lo, hi].
template <class T>
std::vector<T> uniform(std::mt19937_64& g, long n, double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> x(n);
  for (auto& v : x) v = T(d(g));
  return x;
}

// Inputs with random bit patterns: every exponent equally likely, subnormals, infinities
// and NaNs included; `positive` clears the sign.
template <class T>
std::vector<T> random_bits(std::mt19937_64& g, long n, bool positive = false) {
  std::vector<T> x(n);
  for (auto& v : x) {
    Bits<T> u = static_cast<Bits<T>>(g());
    if (positive) u &= ~(Bits<T>(1) << (8 * sizeof(T) - 1));
    v = from_bits<T>(u);
  }
  return x;
}

// Hand-picked inputs: zeros, infinities, NaNs (R's NA among them), subnormals, the extremes,
// and `k` neighbours (in ulps) on each side of the places where the function's code or its
// result changes regime.
template <class T>
std::vector<T> edges(Fn f, int k) {
  using W = Wide<T>;
  using L = std::numeric_limits<T>;
  const bool dbl = sizeof(T) == 8;
  const T na = dbl ? T(from_bits<double>(0x7FF00000000007A2ull)) : from_bits<float>(0x7F8007A2u);
  std::vector<T> x = {T(0),           -T(0),          L::infinity(), -L::infinity(),  L::quiet_NaN(),
                      -L::quiet_NaN(), L::signaling_NaN(), na,       L::denorm_min(), -L::denorm_min(),
                      L::min(),       -L::min(),      L::min() / 3,  L::max(),        -L::max(),
                      T(1),           T(-1),          T(0.5),        T(2),            T(-1000),
                      T(1000)};
  std::vector<W> centres, boundaries;  // k neighbours each side, one neighbour each side
  const W ln2 = std::log(W(2));
  if (f == Fn::Exp) {
    centres = {std::log(W(L::max())),            // overflow
               std::log(W(L::min())),            // results become subnormal
               std::log(W(L::denorm_min()) / 2),  // results round to zero
               ln2 / 2, -ln2 / 2, W(0),          // the reduction's interval
               dbl ? W(-745.2) : W(-104), dbl ? W(710) : W(89)};  // the code's clamps
    const int kmin = L::min_exponent - L::digits - 1, kmax = L::max_exponent;
    for (int kk = kmin; kk <= kmax; ++kk) boundaries.push_back((kk + W(0.5)) * ln2);  // k changes
  } else {
    centres = {W(1), std::sqrt(W(0.5)), std::sqrt(W(2)), W(2), W(0.5), W(L::min()), std::exp(W(1))};
  }
  auto around = [&](W c, int m) {
    T a = T(c), b = T(c);
    x.push_back(a);
    for (int i = 0; i < m; ++i) {
      a = std::nextafter(a, L::infinity());
      b = std::nextafter(b, -L::infinity());
      x.push_back(a);
      x.push_back(b);
    }
  };
  for (W c : centres) around(c, k);
  for (W c : boundaries) around(c, 1);
  return x;
}

}  // namespace fastmath_check

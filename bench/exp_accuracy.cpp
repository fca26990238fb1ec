// Accuracy check of rk_exp / rk_log (inst/include/rkeops/fastmath_cpu.h)
// against libm.  Not a unit test: a measurement, run by hand, e.g.
//   g++ -std=c++17 -O3 -march=native -fopenmp -Iinst/include
//       bench/exp_accuracy.cpp -o /tmp/exp_accuracy && /tmp/exp_accuracy
// Options: `quick` skips the exhaustive float sweeps (2^32 inputs each).
//
// Every input is evaluated twice: through a vectorised `omp simd` loop (the
// way kernels use the functions) and through a non-inlined scalar call; the
// two must agree bit for bit.  Double results are compared with a long double
// reference (x87 expl/logl, 11 extra bits), so the error reported is the true
// error in ulps of the double result, not the distance to glibc's rounding;
// the distance to std::exp is printed as well.  Float results are compared
// with the double libm function, exhaustively over all 2^32 inputs.

#include <rkeops/fastmath_cpu.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#ifdef __FAST_MATH__
#error "this check is meaningless under -ffast-math"
#endif

namespace {

/// Scalar, non-inlined double exp: exercises the non-vector code path.
__attribute__((noinline)) double scalar_exp(double x) { return rk_exp(x); }
/// Scalar, non-inlined float exp.
__attribute__((noinline)) float scalar_expf(float x) { return rk_exp(x); }
/// Scalar, non-inlined double log.
__attribute__((noinline)) double scalar_log(double x) { return rk_log(x); }
/// Scalar, non-inlined float log.
__attribute__((noinline)) float scalar_logf(float x) { return rk_log(x); }

/// Vectorised double exp over an array (the kernel's usage pattern).
__attribute__((noinline)) void vector_exp(const double* x, double* y, long n) {
#pragma omp simd
  for (long i = 0; i < n; ++i) y[i] = rk_exp(x[i]);
}
/// Vectorised float exp over an array.
__attribute__((noinline)) void vector_expf(const float* x, float* y, long n) {
#pragma omp simd
  for (long i = 0; i < n; ++i) y[i] = rk_exp(x[i]);
}
/// Vectorised double log over an array.
__attribute__((noinline)) void vector_log(const double* x, double* y, long n) {
#pragma omp simd
  for (long i = 0; i < n; ++i) y[i] = rk_log(x[i]);
}
/// Vectorised float log over an array.
__attribute__((noinline)) void vector_logf(const float* x, float* y, long n) {
#pragma omp simd
  for (long i = 0; i < n; ++i) y[i] = rk_log(x[i]);
}

/// Bits of a double, for bitwise comparisons and NaN-aware equality.
std::uint64_t dbits(double x) {
  std::uint64_t u;
  std::memcpy(&u, &x, 8);
  return u;
}
/// Bits of a float.
std::uint32_t fbits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}

/// Size of one ulp of a double-precision result whose exact value is `ref`.
long double ulp_double(long double ref) {
  ref = std::fabs(ref);
  if (ref < (long double)DBL_MIN) return std::ldexp(1.0L, -1074);
  int e;
  std::frexp(ref, &e);  // ref = m 2^e, m in [0.5, 1)
  return std::ldexp(1.0L, e - 53);
}
/// Size of one ulp of a float result whose exact value is `ref`.
double ulp_float(double ref) {
  ref = std::fabs(ref);
  if (ref < (double)FLT_MIN) return std::ldexp(1.0, -149);
  int e;
  std::frexp(ref, &e);
  return std::ldexp(1.0, e - 24);
}

/// Running statistics for one function over one input class.
struct Stats {
  std::string name;
  long n = 0;
  long special_bad = 0;     // NaN/Inf/zero class differs from the reference
  long vec_scalar_diff = 0;  // vector and scalar results differ in bits
  double max_ulp = 0;        // vs the extended-precision reference
  double arg_max_ulp = 0;
  double max_rel_libm = 0;   // relative distance to the libm result
  double max_ulp_libm = 0;   // distance to the libm result in ulps (integer)
  long not_libm = 0;         // count of results != libm result
  double max_ulp_sub = 0;    // max ulp error where the result is subnormal
  /// One-line summary.
  void print() const {
    std::printf(
        "%-34s n=%-11ld max_err=%.3f ulp (at x=%.17g)  subnormal-result "
        "max_err=%.3f ulp\n%34s vs libm: max_rel=%.3g  max_ulp_diff=%.0f  "
        "differ=%.4f%%  special_mismatch=%ld  vector!=scalar=%ld\n",
        name.c_str(), n, max_ulp, arg_max_ulp, max_ulp_sub, "", max_rel_libm,
        max_ulp_libm, n ? 100.0 * not_libm / n : 0.0, special_bad,
        vec_scalar_diff);
  }
};

/// Is the value a "special" (NaN, infinite or zero), and which one.
template <class T>
int special_class(T v) {
  if (v != v) return 1;
  if (v == std::numeric_limits<T>::infinity()) return 2;
  if (v == -std::numeric_limits<T>::infinity()) return 3;
  if (v == 0) return 4;
  return 0;
}

/// Compare double results y (vector), ys (scalar) with the references.
void check_double(Stats& st, const std::vector<double>& x,
                  const std::vector<double>& y, const std::vector<double>& ys,
                  long double (*ref_ld)(long double), double (*ref_d)(double)) {
  for (size_t i = 0; i < x.size(); ++i) {
    ++st.n;
    if (dbits(y[i]) != dbits(ys[i]) && !(y[i] != y[i] && ys[i] != ys[i]))
      ++st.vec_scalar_diff;
    const long double ref = ref_ld((long double)x[i]);
    const double lib = ref_d(x[i]);
    const double refd = (double)ref;  // the correctly rounded value (almost always)
    const int cy = special_class(y[i]), cr = special_class(refd);
    if (cy || cr) {
      // zero vs tiny subnormal is an accuracy question, handled below
      const bool tiny_ok = (cy == 4 || cr == 4) && !(cy & 3) && !(cr & 3) &&
                           std::fabs((long double)y[i] - ref) <=
                               std::ldexp(1.0L, -1074);
      if (cy != cr && !tiny_ok) {
        if (st.special_bad < 5)
          std::printf("  special mismatch %s: x=%a got %a want %a\n",
                      st.name.c_str(), x[i], y[i], refd);
        ++st.special_bad;
        continue;
      }
      if (cy == cr && cy != 4 && cy != 0) {
        if (dbits(y[i]) != dbits(lib) && cy != 1) ++st.not_libm;
        continue;
      }
    }
    if (std::isinf(ref) || std::isinf(refd)) continue;
    const double err = (double)(std::fabs((long double)y[i] - ref) / ulp_double(ref));
    if (std::fabs(refd) < DBL_MIN) {
      if (err > st.max_ulp_sub) st.max_ulp_sub = err;
    } else if (err > st.max_ulp) {
      st.max_ulp = err;
      st.arg_max_ulp = x[i];
    }
    if (y[i] != lib) {
      ++st.not_libm;
      const double d = (double)(std::fabs((long double)y[i] - lib) / ulp_double(lib));
      if (d > st.max_ulp_libm) st.max_ulp_libm = d;
      if (std::fabs(lib) >= DBL_MIN) {
        const double rel = std::fabs((y[i] - lib) / lib);
        if (rel > st.max_rel_libm) st.max_rel_libm = rel;
      }
    }
  }
}

/// Evaluate and check one batch of double inputs.
void run_double(Stats& st, const std::vector<double>& x, bool is_exp) {
  std::vector<double> y(x.size()), ys(x.size());
  if (is_exp) {
    vector_exp(x.data(), y.data(), (long)x.size());
    for (size_t i = 0; i < x.size(); ++i) ys[i] = scalar_exp(x[i]);
    check_double(st, x, y, ys, [](long double v) { return std::exp(v); },
                 [](double v) { return std::exp(v); });
  } else {
    vector_log(x.data(), y.data(), (long)x.size());
    for (size_t i = 0; i < x.size(); ++i) ys[i] = scalar_log(x[i]);
    check_double(st, x, y, ys, [](long double v) { return std::log(v); },
                 [](double v) { return std::log(v); });
  }
}

/// Exhaustive float check over all 2^32 bit patterns (in chunks).
Stats run_float_exhaustive(bool is_exp) {
  Stats st;
  st.name = is_exp ? "rk_exp(float) all 2^32 inputs" : "rk_log(float) all 2^32 inputs";
  const long chunk = 1L << 24;
  std::vector<float> x(chunk), y(chunk), ys(chunk);
  for (long base = 0; base < (1L << 32); base += chunk) {
    for (long i = 0; i < chunk; ++i) {
      const std::uint32_t u = (std::uint32_t)(base + i);
      std::memcpy(&x[i], &u, 4);
    }
    if (is_exp) vector_expf(x.data(), y.data(), chunk);
    else vector_logf(x.data(), y.data(), chunk);
    // Per-thread partial results merged at the end (OpenMP over the chunk).
    long n_bad = 0, n_vs = 0, n_diff = 0;
    double mu = 0, amu = 0, mus = 0, mrel = 0, mud = 0;
#pragma omp parallel for reduction(+ : n_bad, n_vs, n_diff) reduction(max : mus, mrel, mud)
    for (long i = 0; i < chunk; ++i) {
      const float xi = x[i];
      const float yi = y[i];
      const float ysi = is_exp ? scalar_expf(xi) : scalar_logf(xi);
      if (fbits(yi) != fbits(ysi) && !(yi != yi && ysi != ysi)) ++n_vs;
      const double ref = is_exp ? std::exp((double)xi) : std::log((double)xi);
      const float lib = is_exp ? std::exp(xi) : std::log(xi);
      const float reff = (float)ref;
      const int cy = special_class(yi), cr = special_class(reff);
      if (cy || cr) {
        const bool tiny_ok = (cy == 4 || cr == 4) && !(cy & 3) && !(cr & 3) &&
                             std::fabs((double)yi - ref) <= std::ldexp(1.0, -149);
        if (cy != cr && !tiny_ok) {
          ++n_bad;
          continue;
        }
        if (cy == cr && cy != 4 && cy != 0) continue;
      }
      if (std::isinf(ref) || std::isinf(reff)) continue;
      const double err = std::fabs((double)yi - ref) / ulp_float(ref);
      if (std::fabs(reff) < FLT_MIN) {
        if (err > mus) mus = err;
      } else if (err > mu) {
#pragma omp critical
        if (err > mu) {
          mu = err;
          amu = xi;
        }
      }
      if (yi != lib) {
        ++n_diff;
        const double d = std::fabs((double)yi - (double)lib) / ulp_float(lib);
        if (d > mud) mud = d;
        if (std::fabs(lib) >= FLT_MIN) {
          const double rel = std::fabs(((double)yi - lib) / lib);
          if (rel > mrel) mrel = rel;
        }
      }
    }
    st.n += chunk;
    st.special_bad += n_bad;
    st.vec_scalar_diff += n_vs;
    st.not_libm += n_diff;
    if (mu > st.max_ulp) {
      st.max_ulp = mu;
      st.arg_max_ulp = amu;
    }
    if (mus > st.max_ulp_sub) st.max_ulp_sub = mus;
    if (mrel > st.max_rel_libm) st.max_rel_libm = mrel;
    if (mud > st.max_ulp_libm) st.max_ulp_libm = mud;
  }
  return st;
}

/// Doubles spread over [lo, hi], uniformly.
std::vector<double> uniform(std::mt19937_64& g, long n, double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<double> x(n);
  for (auto& v : x) v = d(g);
  return x;
}

/// Doubles with random bit patterns (every exponent equally likely, NaNs included).
std::vector<double> random_bits(std::mt19937_64& g, long n) {
  std::vector<double> x(n);
  for (auto& v : x) {
    const std::uint64_t u = g();
    std::memcpy(&v, &u, 8);
  }
  return x;
}

/// Hand-picked edge inputs plus 2000 neighbours (in ulps) of each threshold.
std::vector<double> exp_edges() {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> x = {0.0, -0.0, 1e-300, -1e-300, 4.9e-324, -4.9e-324, 1e-17, -1e-17,
                           1.0, -1.0, 0.5, -0.5, 0.34657359027997264, -0.34657359027997264,
                           709.78271289338397, 709.782712893384, 709.79, 710.0, 711.0,
                           -708.39641853226408, -708.4, -744.44007192138122,
                           -745.13321910194110, -745.13321910194122, -745.2, -746.0,
                           -1000.0, 1000.0, DBL_MAX, -DBL_MAX, inf, -inf,
                           std::numeric_limits<double>::quiet_NaN(),
                           -std::numeric_limits<double>::quiet_NaN(),
                           std::numeric_limits<double>::signaling_NaN()};
  const double centres[] = {709.782712893384, -745.1332191019412, -708.3964185322641,
                            -745.2, 710.0, 0.0, 0.34657359027997264, -0.34657359027997264};
  for (double c : centres) {
    double a = c, b = c;
    for (int i = 0; i < 1000; ++i) {
      a = std::nextafter(a, inf);
      b = std::nextafter(b, -inf);
      x.push_back(a);
      x.push_back(b);
    }
  }
  // k*ln2 +- ln2/2: the places where the reduction switches k.
  for (int k = -1075; k <= 1024; ++k) {
    const double m = (k + 0.5) * 0.69314718055994531;
    x.push_back(m);
    x.push_back(std::nextafter(m, inf));
    x.push_back(std::nextafter(m, -inf));
  }
  return x;
}

/// Hand-picked edge inputs for log.
std::vector<double> log_edges() {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> x = {0.0, -0.0, 4.9e-324, 2 * 4.9e-324, DBL_MIN, DBL_MIN / 3,
                           1.0, -1.0, 2.0, 0.5, 0.7071067811865476, 1.4142135623730951,
                           DBL_MAX, -DBL_MAX, inf, -inf, -4.9e-324,
                           std::numeric_limits<double>::quiet_NaN(),
                           -std::numeric_limits<double>::quiet_NaN()};
  const double centres[] = {1.0, 0.7071067811865476, 1.4142135623730951, 2.0, 0.5,
                            DBL_MIN, 2.718281828459045};
  for (double c : centres) {
    double a = c, b = c;
    for (int i = 0; i < 1000; ++i) {
      a = std::nextafter(a, inf);
      b = std::nextafter(b, -inf);
      x.push_back(a);
      x.push_back(b);
    }
  }
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "quick";
  std::mt19937_64 g(20261122);
  const long N = 1L << 22;  // per batch

  // ---- double exp ----
  {
    Stats all;
    all.name = "rk_exp(double) all";
    struct Batch {
      const char* name;
      std::vector<double> x;
    };
    std::vector<Batch> batches;
    batches.push_back({"edges", exp_edges()});
    batches.push_back({"uniform [-745.2, 709.8]", {}});
    batches.push_back({"uniform [-1, 1]", {}});
    batches.push_back({"uniform [-30, 5] (kernel range)", {}});
    batches.push_back({"uniform [-745.2, -708.4] (subnormal)", {}});
    batches.push_back({"random bit patterns", {}});
    for (auto& b : batches) {
      Stats st;
      st.name = std::string("rk_exp(double) ") + b.name;
      const int reps = b.x.empty() ? 4 : 1;
      for (int rep = 0; rep < reps; ++rep) {
        std::vector<double> x = b.x;
        if (x.empty()) {
          const std::string nm = b.name;
          if (nm == "uniform [-745.2, 709.8]") x = uniform(g, N, -745.2, 709.8);
          else if (nm == "uniform [-1, 1]") x = uniform(g, N, -1, 1);
          else if (nm == "uniform [-30, 5] (kernel range)") x = uniform(g, N, -30, 5);
          else if (nm == "uniform [-745.2, -708.4] (subnormal)") x = uniform(g, N, -745.2, -708.4);
          else x = random_bits(g, N);
        }
        run_double(st, x, true);
      }
      st.print();
    }
  }

  // ---- double log ----
  {
    struct Batch {
      const char* name;
      std::vector<double> x;
    };
    std::vector<Batch> batches;
    batches.push_back({"edges", log_edges()});
    batches.push_back({"uniform [0.5, 2]", {}});
    batches.push_back({"uniform [0, 1e6]", {}});
    batches.push_back({"random bit patterns", {}});
    batches.push_back({"positive random bits (all exps)", {}});
    for (auto& b : batches) {
      Stats st;
      st.name = std::string("rk_log(double) ") + b.name;
      const int reps = b.x.empty() ? 4 : 1;
      for (int rep = 0; rep < reps; ++rep) {
        std::vector<double> x = b.x;
        if (x.empty()) {
          const std::string nm = b.name;
          if (nm == "uniform [0.5, 2]") x = uniform(g, N, 0.5, 2);
          else if (nm == "uniform [0, 1e6]") x = uniform(g, N, 0, 1e6);
          else {
            x = random_bits(g, N);
            if (nm != "random bit patterns")
              for (auto& v : x) v = std::fabs(v);
          }
        }
        run_double(st, x, false);
      }
      st.print();
    }
  }

  // ---- special values, printed so a reader can eyeball them ----
  {
    const double inf = std::numeric_limits<double>::infinity();
    std::uint64_t na_bits = 0x7FF00000000007A2ull;  // R's NA_real_
    double na;
    std::memcpy(&na, &na_bits, 8);
    const double xs[] = {na, std::nan(""), inf, -inf, 0.0, -0.0, -1.0, 1000.0, -1000.0,
                         709.782712893384, 709.7827128933841, -745.1332191019411,
                         -745.1332191019412, 4.9e-324, DBL_MIN};
    std::vector<double> x(std::begin(xs), std::end(xs)), ye(x.size()), yl(x.size());
    vector_exp(x.data(), ye.data(), (long)x.size());
    vector_log(x.data(), yl.data(), (long)x.size());
    long payload_lost = 0;
    std::printf("special values (vector path; scalar path checked above):\n");
    for (size_t i = 0; i < x.size(); ++i) {
      std::printf("  x=%-24a exp=%-24a (libm %-24a) log=%-24a (libm %a)\n", x[i], ye[i],
                  std::exp(x[i]), yl[i], std::log(x[i]));
      if (x[i] != x[i]) {
        // the NaN payload (R's NA marker lives in the low bits) must survive
        const std::uint64_t m = (1ull << 51) - 1;
        if ((dbits(ye[i]) & m) != (dbits(x[i]) & m)) ++payload_lost;
        if ((dbits(yl[i]) & m) != (dbits(x[i]) & m)) ++payload_lost;
        if ((dbits(scalar_exp(x[i])) & m) != (dbits(x[i]) & m)) ++payload_lost;
        if ((dbits(scalar_log(x[i])) & m) != (dbits(x[i]) & m)) ++payload_lost;
      }
    }
    std::printf("  NaN payloads lost (R NA must stay NA): %ld\n", payload_lost);
  }

  // ---- float, exhaustive ----
  if (!quick) {
    run_float_exhaustive(true).print();
    run_float_exhaustive(false).print();
  }
  return 0;
}

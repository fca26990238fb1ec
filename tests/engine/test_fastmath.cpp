// The fast exp/log of the generated CPU kernels (inst/include/rkeops/fastmath_cpu.h) against
// extended-precision references, on bounded sweeps (a few seconds): the contract written at the
// top of that header. Compiled as the kernels are (see the Makefile): vectorised, no fast-math.
// bench/exp_accuracy.cpp runs the same checks on larger samples and on every float input.
//
// Asserted for rk_exp and rk_log, in double and in float, over every sweep:
//   error < 1 ulp of the result against the reference (normal and subnormal results), hence a
//     relative error < 2^-52 (double) or 2^-23 (float) for normal results;
//   within 2 ulps (relative 2 eps) of libm's own result;
//   NaN, infinities and zeros exactly where the reference has them, NaN payloads (R's NA) kept;
//   the vectorised loop and the scalar call give the same bits.
#include <gtest/gtest.h>

#include "fastmath_check.h"

using namespace fastmath_check;

namespace {

template <class T>
void expect_contract(const Stats& st, const std::string& what) {
  const double eps = std::numeric_limits<T>::epsilon();
  SCOPED_TRACE(st.summary(what));
  EXPECT_GT(st.n, 0);
  EXPECT_EQ(st.special_bad, 0);
  EXPECT_EQ(st.payload_lost, 0);
  EXPECT_EQ(st.vec_scalar_diff, 0);
  EXPECT_LT(st.max_ulp, 1.0);
  EXPECT_LT(st.max_ulp_sub, 1.0);
  EXPECT_LT(st.max_rel, eps);
  EXPECT_LE(st.max_rel_libm, 2 * eps);
  EXPECT_LE(st.max_ulp_libm, 2.0);
}

bool long_double_is_wider() { return std::numeric_limits<long double>::digits > std::numeric_limits<double>::digits; }

constexpr long kSample = 1 << 17;  // inputs per random sweep

}  // namespace

TEST(FastMath, ExpDouble) {
  if (!long_double_is_wider()) GTEST_SKIP() << "long double is no wider than double here: no reference";
  std::mt19937_64 g(20261122);
  expect_contract<double>(check(Fn::Exp, edges<double>(Fn::Exp, 300)), "edges");
  expect_contract<double>(check(Fn::Exp, uniform<double>(g, 2 * kSample, -745.2, 709.8)), "[-745.2, 709.8]");
  expect_contract<double>(check(Fn::Exp, uniform<double>(g, kSample, -1, 1)), "[-1, 1]");
  expect_contract<double>(check(Fn::Exp, uniform<double>(g, kSample, -30, 5)), "[-30, 5] (kernels)");
  Stats sub = check(Fn::Exp, uniform<double>(g, kSample, -745.2, -708.4));
  expect_contract<double>(sub, "[-745.2, -708.4] (subnormal results)");
  EXPECT_GT(sub.max_ulp_sub, 0.0);  // the sweep did reach subnormal results
  expect_contract<double>(check(Fn::Exp, random_bits<double>(g, 2 * kSample)), "random bits");
}

TEST(FastMath, LogDouble) {
  if (!long_double_is_wider()) GTEST_SKIP() << "long double is no wider than double here: no reference";
  std::mt19937_64 g(20261123);
  expect_contract<double>(check(Fn::Log, edges<double>(Fn::Log, 1000)), "edges");
  expect_contract<double>(check(Fn::Log, uniform<double>(g, kSample, 0.5, 2)), "[0.5, 2]");
  expect_contract<double>(check(Fn::Log, uniform<double>(g, kSample, 0, 1e6)), "[0, 1e6]");
  expect_contract<double>(check(Fn::Log, random_bits<double>(g, 2 * kSample)), "random bits");
  expect_contract<double>(check(Fn::Log, random_bits<double>(g, 2 * kSample, true)), "positive random bits");
}

// Floats: every 509th bit pattern (8.4 million inputs: all exponents, both signs, the
// subnormals, infinities and NaNs), from a different start for exp and log.
TEST(FastMath, ExpFloat) {
  expect_contract<float>(check(Fn::Exp, edges<float>(Fn::Exp, 1000)), "edges");
  expect_contract<float>(check_float_patterns(Fn::Exp, 3, 509), "every 509th float");
  std::mt19937_64 g(20261124);
  Stats sub = check(Fn::Exp, uniform<float>(g, kSample, -103.9, -87.4));
  expect_contract<float>(sub, "[-103.9, -87.4] (subnormal results)");
  EXPECT_GT(sub.max_ulp_sub, 0.0);
}

TEST(FastMath, LogFloat) {
  expect_contract<float>(check(Fn::Log, edges<float>(Fn::Log, 1000)), "edges");
  expect_contract<float>(check_float_patterns(Fn::Log, 101, 509), "every 509th float");
}

// The special values, exactly (the sweeps compare them by class; here signs and payloads too).
template <class T>
void expect_specials() {
  using L = std::numeric_limits<T>;
  const T inf = L::infinity();
  struct Case {
    Fn f;
    T x, want;
  };
  const Case cases[] = {
      {Fn::Exp, T(0), T(1)},    {Fn::Exp, -T(0), T(1)},          {Fn::Exp, inf, inf},
      {Fn::Exp, -inf, T(0)},    {Fn::Exp, T(1000), inf},         {Fn::Exp, T(-1000), T(0)},
      {Fn::Exp, L::max(), inf}, {Fn::Exp, -L::max(), T(0)},      {Fn::Exp, L::denorm_min(), T(1)},
      {Fn::Log, T(0), -inf},    {Fn::Log, -T(0), -inf},          {Fn::Log, inf, inf},
      {Fn::Log, T(1), T(0)}};
  for (const Case& c : cases) {  // +0 for exp(-Inf), not -0: compared by bits
    T y;
    vector(c.f, &c.x, &y, 1);
    EXPECT_EQ(bits(y), bits(c.want)) << fn_name(c.f) << "(" << c.x << ") = " << y << " (vector)";
    EXPECT_EQ(bits(scalar(c.f, c.x)), bits(c.want)) << fn_name(c.f) << "(" << c.x << ") (scalar)";
  }
  const T na = sizeof(T) == 8 ? T(from_bits<double>(0x7FF00000000007A2ull)) : from_bits<float>(0x7FC007A2u);
  for (Fn f : {Fn::Exp, Fn::Log}) {
    T y;
    vector(f, &na, &y, 1);
    EXPECT_TRUE(std::isnan(y) && payload(y) == payload(na)) << fn_name(f) << ": R's NA must stay NA";
    EXPECT_TRUE(payload(scalar(f, na)) == payload(na)) << fn_name(f);
  }
  for (T x : {T(-1), -inf, -L::denorm_min(), -L::max()}) EXPECT_TRUE(std::isnan(scalar(Fn::Log, x))) << x;
}

TEST(FastMath, SpecialValuesDouble) { expect_specials<double>(); }
TEST(FastMath, SpecialValuesFloat) { expect_specials<float>(); }

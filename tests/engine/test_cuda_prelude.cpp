// Functions of the CUDA prelude (inst/include/rkeops/prelude_cuda.h) checked on the host, through
// the CPU emulation's definitions of the CUDA intrinsics they use (cuda_emulation.h): the code is
// the one NVRTC compiles, so a wrong constant or bit manipulation shows here without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "cuda_emulation.h"
#include "rkeops/prelude_cuda.h"

namespace {

// rk_exp2_near's error in units of the last place of the exact result (long double reference).
double ulp_error(double y) {
  const long double ref = std::exp2(static_cast<long double>(y));
  const double got = rk_exp2_near(y);
  const double ulp = std::ldexp(1.0, std::ilogb(static_cast<double>(ref)) - 52);
  return static_cast<double>(std::fabs(static_cast<long double>(got) - ref) / ulp);
}

}  // namespace

// The float64 Gaussian fold's exponential (inner-product form, |y| <= 64; stated for |y| <= 1000):
// within 2 ulp everywhere, exact at integers, and at the halfway points of the rounding to n.
TEST(CudaPrelude, Exp2NearIsWithinTwoUlpOnItsRange) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> wide(-1000, 1000), narrow(-64, 64), unit(-0.5, 0.5);
  double worst = 0;
  for (int k = 0; k < 200000; ++k) {
    for (double y : {wide(rng), narrow(rng), unit(rng)}) worst = std::max(worst, ulp_error(y));
  }
  for (int n = -1000; n <= 1000; ++n) {
    ASSERT_EQ(rk_exp2_near(n), std::ldexp(1.0, n)) << "2^" << n;
    for (double h : {-0.5, 0.5}) worst = std::max(worst, ulp_error(n + h));
    worst = std::max(worst, ulp_error(std::nextafter(n + 0.5, 0.0)));
  }
  EXPECT_LT(worst, 2.0);
  RecordProperty("max_ulp", std::to_string(worst));
  // (a fault: the exponent added to the wrong field, or a sign lost in the rounding trick)
  for (double y : {-3.25, 17.7, -63.75, 0.3})
    EXPECT_NEAR(rk_exp2_near(y) / std::exp2(y), 1.0, 5e-16) << y;
}

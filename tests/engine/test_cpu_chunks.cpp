// CPU runs are cut so that an interrupt is seen soon (issue 16): a reduction with few result rows
// and a long inner range runs in pieces of the inner range whose partial states are merged;
// the result is the reduction of the whole range (values, and indices counted from 0 over it).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "engine.h"
#include "errors.h"
#include "kernel.h"
#include "test_util.h"

using namespace rkeops;

namespace {

EngineOptions options(DType dtype) {
  EngineOptions o;
  o.include_dir = RKEOPS_INCLUDE_DIR;
  o.cache_dir = rkeops_test::test_cache_dir();
  o.nthreads = 1;  // pieces are sized per thread: one thread makes them long enough to see
  o.code.dtype = dtype;
  return o;
}

// 5 queries against 1e7 points on a line, K = 300: the K nearest, sorted (values, then indices).
class PiecesTest : public ::testing::TestWithParam<DType> {
 protected:
  static constexpr long long N = 5, M = 10000000, K = 300;
  const std::string formula = "KMin_ArgKMin_Reduction(SqDist(x, y), 300, 1)";
  const std::vector<std::string> aliases = {"x=Vi(1)", "y=Vj(1)"};
  void SetUp() override {
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> u(0, 1);
    x.resize(N);
    y.resize(M);
    for (auto& v : x) v = u(rng);
    for (auto& v : y) v = u(rng);
    in = {{x.data(), N, 1}, {y.data(), M, 1}};
  }
  std::vector<double> x, y;
  std::vector<Input> in;
};

TEST_P(PiecesTest, FewRowsLongRangeGivesTheWholeReduction) {
  const EngineOptions o = options(GetParam());
  auto k = get_kernel(formula, aliases, o);
  const CallShape s = check_inputs(k->formula(), in);
  ASSERT_EQ(k->formula().out_dim, 2 * K);
  std::vector<double> out(static_cast<size_t>(N * 2 * K));
  k->run(in, s, out.data(), o, nullptr);
  const bool f32 = GetParam() == DType::Float32;
  std::vector<long long> idx(M);
  for (long long i = 0; i < N; ++i) {
    // the reference: distances as the kernel computes them, K smallest, ties by index
    const auto d = [&](long long j) {
      if (f32) {
        float t = static_cast<float>(x[i]) - static_cast<float>(y[j]);
        return static_cast<double>(t * t);
      }
      return (x[i] - y[j]) * (x[i] - y[j]);
    };
    std::iota(idx.begin(), idx.end(), 0LL);
    std::partial_sort(idx.begin(), idx.begin() + K, idx.end(), [&](long long a, long long b) {
      const double da = d(a), db = d(b);
      return da < db || (da == db && a < b);
    });
    for (long long r = 0; r < K; ++r) {
      ASSERT_EQ(out[i + r * N], d(idx[r])) << "row " << i << ", rank " << r;
      ASSERT_EQ(out[i + (K + r) * N], static_cast<double>(idx[r])) << "row " << i << ", rank " << r;
    }
  }
}

// The run stops between pieces: an interrupt is polled after each, and seen after the first.
TEST_P(PiecesTest, InterruptIsPolledBetweenPieces) {
  const EngineOptions o = options(GetParam());
  auto k = get_kernel(formula, aliases, o);
  const CallShape s = check_inputs(k->formula(), in);
  std::vector<double> out(static_cast<size_t>(N * 2 * K));
  int polls = 0;
  k->run(in, s, out.data(), o, [&] {
    ++polls;
    return false;
  });
  EXPECT_GE(polls, 2);  // 5 x 1e7 terms of a K = 300 list: 3 pieces (float32) or 4
  polls = 0;
  EXPECT_THROW(k->run(in, s, out.data(), o,
                      [&] {
                        ++polls;
                        return true;
                      }),
               Interrupted);
  EXPECT_EQ(polls, 1);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, PiecesTest, ::testing::Values(DType::Float64, DType::Float32),
                         [](const ::testing::TestParamInfo<DType>& p) {
                           return std::string(p.param == DType::Float32 ? "float32" : "float64");
                         });

}  // namespace

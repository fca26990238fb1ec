// Batch dimensions in the engine (batch.h): the gather of the problems' rows against an
// element-by-element reference (broadcast batch dimensions, shared inputs, several threads), and
// run_batched against one run_reduction per problem (values and per-problem indices, both axes).
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "batch.h"
#include "engine.h"
#include "test_util.h"

using namespace rkeops;

namespace {

// Value k of point i of problem t (column-major over `to`) of input x, as the definition says.
double reference(const BatchInput& x, const std::vector<int>& to, long long t, long long i, long long k) {
  if (x.own.empty()) return x.in.data[i + k * x.in.stride()];
  long long rest = t, stride = 1, p = 0, P = 1;
  for (size_t d = 0; d < to.size(); ++d) {
    const long long digit = rest % to[d];
    rest /= to[d];
    p += (x.own[d] == 1 ? 0 : digit) * stride;
    stride *= x.own[d];
  }
  for (int o : x.own) P *= o;
  return x.in.data[p + P * i + P * x.in.rows * k];
}

TEST(Batch, GatherMatchesTheDefinition) {
  std::mt19937 gen(3);
  std::uniform_real_distribution<double> u(-1, 1);
  struct C {
    std::vector<int> own, to;
    long long n, d;
  };
  const std::vector<C> cases = {{{4}, {4}, 7, 3},           {{2, 3}, {2, 3}, 130, 2}, {{1, 3}, {2, 3}, 65, 1},
                                {{2, 1}, {2, 5}, 200, 4},   {{}, {3, 2}, 9, 2},       {{1, 1}, {2, 2}, 5, 3},
                                {{64}, {64}, 3000, 3}};
  for (const C& c : cases) {
    long long P = 1, T = 1;
    for (int o : c.own) P *= o;
    for (int t : c.to) T *= t;
    std::vector<double> data(static_cast<size_t>(P * c.n * c.d));
    for (auto& v : data) v = u(gen);
    BatchInput x;
    x.in.data = data.data();
    x.in.rows = c.n;
    x.in.cols = c.d;
    x.own = c.own;
    for (int threads : {1, 3}) {
      std::vector<double> out(static_cast<size_t>(T * c.n * c.d), -1);
      gather_batch(x, c.to, out.data(), threads);
      for (long long t = 0; t < T; ++t)
        for (long long i = 0; i < c.n; ++i)
          for (long long k = 0; k < c.d; ++k)
            ASSERT_EQ(out[t * c.n + i + T * c.n * k], reference(x, c.to, t, i, k))
                << "problem " << t << " point " << i << " value " << k << " (" << threads << " threads)";
    }
  }
}

EngineOptions options() {
  EngineOptions o;
  o.include_dir = RKEOPS_INCLUDE_DIR;
  o.cache_dir = rkeops_test::test_cache_dir();
  o.nthreads = 2;
  return o;
}

// Problem t's slice of a batched input, as a plain matrix.
std::vector<double> slice(const BatchInput& x, const std::vector<int>& to, long long t) {
  std::vector<double> m(static_cast<size_t>(x.in.rows * x.in.cols));
  for (long long i = 0; i < x.in.rows; ++i)
    for (long long k = 0; k < x.in.cols; ++k) m[i + x.in.rows * k] = reference(x, to, t, i, k);
  return m;
}

TEST(Batch, OneCallMatchesOneReductionPerProblem) {
  std::mt19937 gen(5);
  std::uniform_real_distribution<double> u(0, 1);
  struct C {
    std::string formula;
    std::vector<std::string> aliases;
    std::vector<std::vector<int>> own;  // per input; empty: shared
    std::vector<long long> rows;
  };
  const std::vector<int> shape = {3, 2};
  const std::vector<C> cases = {
      {"Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(2)"}, {{3, 2}, {1, 2}, {}}, {7, 5, 5}},
      {"Min_ArgMin_Reduction(SqDist(x, y), 0)", {"x=Vi(2)", "y=Vj(2)"}, {{3, 1}, {3, 2}}, {9, 4}},
      {"KMin_ArgKMin_Reduction(SqDist(x, y), 2, 1)", {"x=Vi(1)", "y=Vj(1)"}, {{}, {3, 2}}, {6, 8}},
      {"ArgKMin_Reduction(SqDist(x, y), 5, 1)", {"x=Vi(1)", "y=Vj(1)"}, {{3, 2}, {3, 2}}, {4, 3}},  // K > points
  };
  const EngineOptions o = options();
  for (const C& c : cases) {
    const FormulaInfo info = describe_formula(c.formula, c.aliases);
    std::vector<std::vector<double>> data;
    std::vector<BatchInput> in;
    for (size_t k = 0; k < c.aliases.size(); ++k) {
      long long P = 1;
      for (int v : c.own[k]) P *= v;
      data.emplace_back(static_cast<size_t>(P * c.rows[k] * info.args[k].dim));
      for (auto& v : data.back()) v = u(gen);
    }
    for (size_t k = 0; k < c.aliases.size(); ++k) {
      BatchInput b;
      b.in.data = data[k].data();
      b.in.rows = c.rows[k];
      b.in.cols = info.args[k].dim;
      b.own = c.own[k];
      in.push_back(b);
    }
    std::vector<double> got;
    long long rows = 0;
    int cols = 0;
    run_batched(c.formula, c.aliases, in, shape, o,
                [&](long long r, int k) {
                  rows = r;
                  cols = k;
                  got.assign(static_cast<size_t>(r * k), 0);
                  return got.data();
                },
                nullptr);
    const long long B = 6, n_out = rows / B;
    ASSERT_EQ(rows % B, 0);
    for (long long t = 0; t < B; ++t) {
      std::vector<std::vector<double>> sl;
      std::vector<Input> one;
      for (size_t k = 0; k < in.size(); ++k) sl.push_back(slice(in[k], shape, t));
      for (size_t k = 0; k < in.size(); ++k) {
        Input x;
        x.data = sl[k].data();
        x.rows = in[k].in.rows;
        x.cols = in[k].in.cols;
        one.push_back(x);
      }
      std::vector<double> want;
      run_reduction(c.formula, c.aliases, one, o,
                    [&](long long r, int k) {
                      EXPECT_EQ(r, n_out);
                      EXPECT_EQ(k, cols);
                      want.assign(static_cast<size_t>(r * k), 0);
                      return want.data();
                    },
                    nullptr);
      for (long long i = 0; i < n_out; ++i)
        for (int k = 0; k < cols; ++k)
          EXPECT_NEAR(got[t + B * i + B * n_out * k], want[i + n_out * k], 1e-12)
              << c.formula << ": problem " << t << " row " << i << " column " << k;
    }
  }
}

TEST(Batch, BadShapesAreUserErrors) {
  std::vector<double> d(2 * 4 * 2, 0.5);
  BatchInput x, y;
  x.in.data = y.in.data = d.data();
  x.in.rows = y.in.rows = 4;
  x.in.cols = y.in.cols = 2;
  x.own = {2};
  y.own = {3};
  auto run = [&](const std::vector<BatchInput>& in, const std::vector<int>& shape) {
    run_batched("Sum_Reduction(SqDist(x, y), 1)", {"x=Vi(2)", "y=Vj(2)"}, in, shape, options(),
                [](long long, int) -> double* { return nullptr; }, nullptr);
  };
  EXPECT_THROW(run({x, y}, {2}), UserError);  // 3 where the batch has 2
  y.own = {2, 1};
  EXPECT_THROW(run({x, y}, {2}), UserError);  // two batch dimensions where the batch has one
}

}  // namespace

// The CPU's high-dimension path (codegen_cpu.cpp, rk_hd_tile in prelude_cpu.h): wide formulas
// whose pairwise part is a distance or an inner product of one outer and one inner variable
// compute it for blocks of rows x tiles first. The same formulas with the path turned off
// (CodeOptions::cpu_hd) are the reference: results agree within rounding (the sums over the
// components run in another order), k-NN indices exactly on data without ties; sizes that are
// not multiples of the blocks (rows, columns), both axes, several reductions, both precisions.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "codegen_cpu.h"
#include "engine.h"
#include "formula.h"
#include "kernel.h"
#include "test_util.h"

using namespace rkeops;

namespace {

EngineOptions options(DType dtype, bool hd) {
  EngineOptions o;
  o.include_dir = RKEOPS_INCLUDE_DIR;
  o.cache_dir = rkeops_test::test_cache_dir();
  o.nthreads = 2;
  o.code.dtype = dtype;
  o.code.cpu_hd = hd;
  o.compiler.flags = "-O1 -fPIC -shared -fopenmp";
  return o;
}

struct Case {
  std::string formula;
  int D;
  long long n, m;  // outer, inner rows (the formula's axis decides which is which)
};

std::vector<double> run(const Case& c, DType dt, bool hd, const std::vector<double>& x, const std::vector<double>& y,
                        const std::vector<double>& b) {
  const std::string d = std::to_string(c.D);
  const std::vector<std::string> aliases = {"x=Vi(" + d + ")", "y=Vj(" + d + ")", "b=Vj(1)"};
  const EngineOptions o = options(dt, hd);
  auto k = get_kernel(c.formula, aliases, o);
  const long long ni = c.formula.find(", 0)") != std::string::npos ? c.m : c.n;
  const long long nj = ni == c.n ? c.m : c.n;
  std::vector<Input> in = {{x.data(), ni, c.D}, {y.data(), nj, c.D}, {b.data(), nj, 1}};
  const CallShape s = check_inputs(k->formula(), in);
  std::vector<double> out(static_cast<size_t>(s.out_rows * k->formula().out_dim));
  k->run(in, s, out.data(), o, nullptr);
  return out;
}

}  // namespace

TEST(CpuHighDim, SourcesUseThePathOnlyWhereItApplies) {
  CodeOptions o;
  auto src = [&](const std::string& f, int D) {
    const std::string d = std::to_string(D);
    return generate_cpu_source(parse_formula(f, {"x=Vi(" + d + ")", "y=Vj(" + d + ")", "b=Vj(1)"}), o,
                               RKEOPS_INCLUDE_DIR);
  };
  const std::string uses = "rk_hd_tile<T, ";
  EXPECT_NE(src("ArgKMin_Reduction(SqDist(x, y), 10, 1)", 100).find(uses + "true>"), std::string::npos);
  EXPECT_NE(src("Sum_Reduction(Exp((x | y)) * b, 1)", 100).find(uses + "false>"), std::string::npos);
  EXPECT_NE(src("LogSumExp_Reduction(-SqNorm2(x - y), 0)", 64).find(uses + "true>"), std::string::npos);
  // not wide; x used beyond the distance; a weighted distance with a vector weight
  EXPECT_EQ(src("ArgKMin_Reduction(SqDist(x, y), 10, 1)", 16).find(uses), std::string::npos);
  EXPECT_EQ(src("Sum_Reduction(Exp(-SqDist(x, y)) * Sum(x), 1)", 100).find(uses), std::string::npos);
  o.cpu_hd = false;
  EXPECT_EQ(src("ArgKMin_Reduction(SqDist(x, y), 10, 1)", 100).find(uses), std::string::npos);
}

TEST(CpuHighDim, MatchesTheGenericWideCode) {
  const std::vector<Case> cases = {
      {"ArgKMin_Reduction(SqDist(x, y), 7, 1)", 100, 37, 301},
      {"KMin_ArgKMin_Reduction(SqNorm2(x - y), 3, 1)", 257, 10, 130},
      {"Min_ArgMin_Reduction(SqDist(x, y), 0)", 64, 45, 93},
      {"Sum_Reduction(Exp(-SqDist(x, y) / 100) * b, 1)", 300, 53, 211},
      {"Sum_Reduction(Exp((x | y) / 50) * b, 1)", 77, 33, 97},
      {"LogSumExp_Reduction(-SqDist(x, y) / 40 + (x | y) / 40, 1)", 129, 9, 333},
      {"Max_ArgMax_Reduction((x | y), 1)", 1000, 6, 50},
  };
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(-1, 1);
  for (const Case& c : cases)
    for (DType dt : {DType::Float64, DType::Float32}) {
      std::vector<double> x(c.n * c.D + c.m * c.D), y(x.size()), b(c.n + c.m);
      for (auto* v : {&x, &y, &b})
        for (double& t : *v) t = u(rng);
      const std::vector<double> want = run(c, dt, false, x, y, b), got = run(c, dt, true, x, y, b);
      ASSERT_EQ(want.size(), got.size());
      const double tol = dt == DType::Float64 ? 1e-12 : 2e-5;
      int bad = 0;
      for (size_t k = 0; k < want.size(); ++k) {
        const double a = got[k], w = want[k];
        if (!(a == w || std::fabs(a - w) <= tol * (std::fabs(w) + 1)) && bad++ < 3)
          ADD_FAILURE() << c.formula << " D = " << c.D << (dt == DType::Float64 ? " float64" : " float32") << ": entry "
                        << k << ": " << a << " vs " << w;
      }
    }
}

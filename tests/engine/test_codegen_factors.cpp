// with_uniform_factors_first (codegen.h): products of scalars reordered so that the factors that
// do not depend on the inner index are multiplied once per row. Structural checks here; the
// values are checked by every kernel test (CPU and emulated GPU against the CPU, R against
// dense references), since both generators take the rewritten formula.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ast.h"
#include "codegen.h"
#include "codegen_cuda.h"
#include "formula.h"
#include "ops.h"

using namespace rkeops;

namespace {

// The nodes the formula's roots use.
std::vector<int> reachable(const Formula& f) {
  std::vector<char> seen(f.g.size(), 0);
  std::vector<int> stack = {f.root}, out;
  if (f.weight >= 0) stack.push_back(f.weight);
  while (!stack.empty()) {
    const int id = stack.back();
    stack.pop_back();
    if (seen[id]) continue;
    seen[id] = 1;
    out.push_back(id);
    for (int a : f.g[id].args) stack.push_back(a);
  }
  return out;
}

// Multiplies of two scalars that depend on the inner index: each costs one multiply a pair.
int pair_multiplies(const Formula& f) {
  const std::vector<char> inner = depends_on(f.g, f.inner_cat());
  const int mult = find_op("Mult");
  int n = 0;
  for (int id : reachable(f)) {
    const Node& x = f.g[id];
    n += x.kind == NodeKind::Call && x.op == mult && f.g[x.args[0]].dim == 1 && f.g[x.args[1]].dim == 1 && inner[id];
  }
  return n;
}

const std::vector<std::string> kGrad = {"x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)", "e=Vi(1)"};

}  // namespace

// The Gaussian gradient 2 * (((e * b) * Exp(...)) * g): over j, e and g are the row's, so
// ((2 * e) * g) * (b * Exp(...)): two multiplies a pair instead of four; over i, b and g are.
TEST(UniformFactors, GradientProductsMultiplyTheRowsFactorsOnce) {
  for (int axis : {1, 0}) {
    SCOPED_TRACE("axis " + std::to_string(axis));
    const Formula f = parse_formula(
        "Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, x, e), " + std::to_string(axis) + ")", kGrad);
    const Formula h = with_uniform_factors_first(f);
    // (and the exponent's own -g * SqDist(x, y), one multiply a pair either way)
    EXPECT_EQ(pair_multiplies(f), 5);
    EXPECT_EQ(pair_multiplies(h), 3);
    EXPECT_NE(h.g.print(h.root), f.g.print(f.root));
  }
  // the generated GPU source multiplies the hoisted product once per row
  const Formula f = parse_formula("Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, x, e), 1)", kGrad);
  CodeOptions o;
  o.dtype = DType::Float32;
  const std::string src = generate_cuda_code(f, o, RKEOPS_INCLUDE_DIR).source;
  EXPECT_NE(src.find("(T(2) * xo"), std::string::npos);
}

// Nothing to gain, nothing changed: one factor of the row (a Gaussian's scale), none at all, a
// product with no inner factor (hoisted whole already), and vectors (not scalar products).
TEST(UniformFactors, ProductsWithNothingToGainKeepTheirNodes) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"}},
      {"Sum_Reduction(a * b, 1)", {"a=Vj(1)", "b=Vj(1)"}},
      {"Sum_Reduction((a * g) * y, 1)", {"a=Vi(1)", "g=Pm(1)", "y=Vj(2)"}},
      {"Sum_Reduction(x * y, 1)", {"x=Vi(4)", "y=Vj(4)"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.first);
    const Formula f = parse_formula(c.first, c.second);
    const Formula h = with_uniform_factors_first(f);
    EXPECT_EQ(h.root, f.root);
    EXPECT_EQ(h.g.print(h.root), f.g.print(f.root));
  }
}

// A product used twice keeps one node: rewritten once, both uses take the new node; a product
// used twice inside a larger one is a factor of it, not flattened into it.
TEST(UniformFactors, SharedProductsStayShared) {
  const Formula f = parse_formula("Sum_Reduction((a * y * g) * Exp(a * y * g), 1)", {"a=Vi(1)", "y=Vj(1)", "g=Pm(1)"});
  Formula h = with_uniform_factors_first(f);
  const Node top = h.g[h.root];
  ASSERT_EQ(top.op, find_op("Mult"));
  const int shared = top.args[0];
  const Node ex = h.g[top.args[1]];
  ASSERT_EQ(ex.op, find_op("Exp"));
  EXPECT_EQ(ex.args[0], shared);
  // (a * g) * y: one multiply a pair for the shared product, one for the top
  EXPECT_EQ(h.g.print(shared), h.g.print(h.g.call("Mult", {h.g.call("Mult", {h.g.var(CAT_I, 0, 1), h.g.var(CAT_P, 2, 1)}),
                                                            h.g.var(CAT_J, 1, 1)})));
  EXPECT_EQ(pair_multiplies(f), 3);
  EXPECT_EQ(pair_multiplies(h), 2);
}

// Deep formulas: linear time and no recursion (a chain of 20000 products alternating the row's
// factor and the pair's).
TEST(UniformFactors, LongProductChainsNeedNoStack) {
  std::string text = "y";
  for (int k = 0; k < 20000; ++k) text += k % 2 ? " * y" : " * a";
  const Formula f = parse_formula("Sum_Reduction(" + text + ", 1)", {"a=Vi(1)", "y=Vj(1)"});
  const Formula h = with_uniform_factors_first(f);
  EXPECT_EQ(pair_multiplies(f), 20000);
  EXPECT_EQ(pair_multiplies(h), 10001);  // y^10001 a pair, times the row's a^10000
}

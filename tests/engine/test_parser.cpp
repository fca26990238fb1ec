// Parser and dimension checker: accepted syntax, canonical printing, and error messages.
#include <gtest/gtest.h>

#include "errors.h"
#include "formula.h"
#include "test_util.h"

using rkeops::Formula;
using rkeops::parse_formula;
using rkeops::UserError;

namespace {

std::string canon(const std::string& f, std::vector<std::string> a) { return parse_formula(f, a).canonical(); }

using rkeops_test::error_of;

TEST(Parser, CanonicalForms) {
  struct Case {
    const char* formula;
    std::vector<std::string> args;
    const char* canonical;
  };
  const Case cases[] = {
      {"Sum_Reduction(Exp(-SqDist(x,y))*b, 1)",
       {"x=Vi(3)", "y=Vj(3)", "b=Vj(1)"},
       "Sum_Reduction(Mult(Exp(Minus(SqDist(Vi(0,3),Vj(1,3)))),Vj(2,1)),1)"},
      {"Sum_Reduction(x**2 + x^3 + x**0.5 + x**-0.5 + x**1.5, 0)",
       {"x=Vi(1)"},
       "Sum_Reduction(Add(Add(Add(Add(Square(Vi(0,1)),Pow(Vi(0,1),3)),Sqrt(Vi(0,1))),Rsqrt(Vi(0,1))),Powf(Vi(0,1),1.5))"
       ",0)"},
      {"Sum_Reduction((x|y) - 2*x/y, 1)",
       {"x=Vi(0,2)", "y=Vj(1,2)"},
       "Sum_Reduction(Subtract(Scalprod(Vi(0,2),Vj(1,2)),Divide(Mult(IntCst(2),Vi(0,2)),Vj(1,2))),1)"},
      {"KMin_Reduction(Var(0,2,0) - Var(1,2,1), 4, 0)", {}, "KMin_Reduction(Subtract(Vi(0,2),Vj(1,2)),4,0)"},
      {"SumSoftMaxWeight_Reduction(x, y, 1)", {"x=Vi(1)", "y=Vj(2)"}, "SumSoftMaxWeight_Reduction(Vi(0,1),1,Vj(1,2))"},
      {"SumSoftMaxWeight_Reduction(x, 1, y)", {"x=Vi(1)", "y=Vj(2)"}, "SumSoftMaxWeight_Reduction(Vi(0,1),1,Vj(1,2))"},
      {"Sum_Reduction(IntInv(4)*x + 0.25e1 + -3, 1)",
       {"x=Vi(1)"},
       "Sum_Reduction(Add(Add(Mult(0.25,Vi(0,1)),2.5),IntCst(-3)),1)"},
  };
  for (const auto& c : cases) EXPECT_EQ(canon(c.formula, c.args), c.canonical) << c.formula;
}

TEST(Parser, SharedSubexpressionsAreOneNode) {
  Formula f = parse_formula("Sum_Reduction(Exp(SqDist(x,y)) * Exp(SqDist(x,y)), 1)", {"x=Vi(3)", "y=Vj(3)"});
  // Vi, Vj, SqDist, Exp, Mult: five nodes, the repeated Exp(SqDist(...)) counted once.
  EXPECT_EQ(f.g.size(), 5);
}

TEST(Parser, ArgumentsByPosition) {
  Formula f = parse_formula("Sum_Reduction(x*p + y, 1)", {"y=Vj(1,2)", "x=Vi(0,2)", "p=Pm(2,1)"});
  ASSERT_EQ(f.args.size(), 3u);
  EXPECT_EQ(f.args[0].name, "x");
  EXPECT_EQ(f.args[1].name, "y");
  EXPECT_EQ(f.args[2].cat, rkeops::CAT_P);
  EXPECT_EQ(f.out_dim, 2);
}

TEST(Parser, Errors) {
  struct Case {
    const char* formula;
    std::vector<std::string> args;
    const char* kind;
    const char* needle;
  };
  const Case cases[] = {
      {"Sum_Reduction(Exp(x, 1)", {"x=Vi(1)"}, "formula", "column 20"},
      {"Sum_Reduction(Foo(x), 1)", {"x=Vi(1)"}, "formula", "unknown operation 'Foo'"},
      {"Bar_Reduction(x, 1)", {"x=Vi(1)"}, "formula", "unknown reduction"},
      {"Sum_Reduction(z, 1)", {"x=Vi(1)"}, "formula", "undeclared variable 'z'"},
      {"Sum_Reduction(x, 2)", {"x=Vi(1)"}, "formula", "axis"},
      {"Sum_Reduction(x, 1) + 1", {"x=Vi(1)"}, "formula", "after the reduction"},
      {"Sum_Reduction(Sum_Reduction(x, 1), 1)", {"x=Vi(1)"}, "formula", "outermost"},
      {"Exp(x)", {"x=Vi(1)"}, "formula", "must be a reduction"},
      {"Sum_Reduction(x + y, 1)", {"x=Vi(3)", "y=Vj(2)"}, "dimension", "Add(x, y)"},
      {"Sum_Reduction(Elem(x, 3), 1)", {"x=Vi(3)"}, "dimension", "out of range"},
      {"LogSumExp_Reduction(x, 1)", {"x=Vi(2)"}, "dimension", "dimension 1"},
      {"Sum_Reduction(x, 1)", {"x=Vi(3"}, "formula", "alias 1"},
      {"Sum_Reduction(x, 1)", {"x=Vk(3)"}, "formula", "Vi, Vj, Pm or Var"},
      {"Sum_Reduction(x, 1)", {"x=Vi(3)", "x=Vj(3)"}, "formula", "declared twice"},
      {"Sum_Reduction(x, 1)", {"Exp=Vi(3)"}, "formula", "reserved"},
      {"Sum_Reduction(x + Vi(0,2), 1)", {"x=Vi(3)"}, "dimension", "Add(x, Vi(0,2))"},
      {"Sum_Reduction(x + Vj(0,3), 1)", {"x=Vi(3)"}, "dimension", "declared as"},
      {"Sum_Reduction(x $ y, 1)", {"x=Vi(1)", "y=Vj(1)"}, "formula", "unexpected character"},
      {"Sum_Reduction(Var(5,1,0), 1)", {}, "formula", "no variable is declared at position 0"},
      {"KMin_Reduction(x, 0, 1)", {"x=Vi(1)"}, "formula", "K must be at least 1"},
  };
  for (const auto& c : cases) {
    auto [kind, msg] = error_of(c.formula, c.args);
    EXPECT_EQ(kind, c.kind) << c.formula << " -> " << msg;
    EXPECT_NE(msg.find(c.needle), std::string::npos) << c.formula << " -> " << msg;
  }
}

TEST(Parser, DeepNestingIsAnErrorNotACrash) {
  std::string f = "Sum_Reduction(";
  for (int k = 0; k < 5000; ++k) f += "(";
  f += "x";
  for (int k = 0; k < 5000; ++k) f += ")";
  f += ", 1)";
  EXPECT_EQ(error_of(f, {"x=Vi(1)"}).first, "formula");
  EXPECT_EQ(error_of("Sum_Reduction(" + std::string(5000, '-') + "x, 1)", {"x=Vi(1)"}).first, "formula");
}

}  // namespace

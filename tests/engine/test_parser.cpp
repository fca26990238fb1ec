// Parser and dimension checker: accepted syntax, canonical printing, and error messages.
#include <gtest/gtest.h>
#include <pthread.h>

#include <functional>

#include "codegen_cpu.h"
#include "codegen_cuda.h"
#include "engine.h"
#include "errors.h"
#include "formula.h"
#include "kernel.h"
#include "ops.h"
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
      // issue 12: RatCst, infix comparisons (below + and -, above |), [..] tuples, Zero_Reduction
      {"Sum_Reduction(RatCst(1,4)*x + RatCst(-6,3), 1)", {"x=Vi(1)"},
       "Sum_Reduction(Add(Mult(0.25,Vi(0,1)),IntCst(-2)),1)"},
      {"Sum_Reduction((x + 1 > y | x <= y) + (x >= y) * (x == y) - (x != y) + (x < y), 1)",
       {"x=Vi(1)", "y=Vj(1)"},
       "Sum_Reduction(Add(Subtract(Add(Scalprod(LessThan(Vj(1,1),Add(Vi(0,1),IntCst(1))),LessOrEqual(Vi(0,1),Vj(1,1))),"
       "Mult(LessOrEqual(Vj(1,1),Vi(0,1)),Equal(Vi(0,1),Vj(1,1)))),NotEqual(Vi(0,1),Vj(1,1))),LessThan(Vi(0,1),Vj(1,1))),1)"},
      {"Sum_Reduction(TensorDot(a, b, [2,2], [2], [1], [0]), 1)", {"a=Vi(4)", "b=Vj(2)"},
       "Sum_Reduction(TensorDot(Vi(0,4),Vj(1,2),Ind(2,2),Ind(2),Ind(1),Ind(0)),1)"},
      {"Zero_Reduction(3, 0)", {"x=Vi(2)"}, "Zero_Reduction(Zero(3),0)"},
      {"Zero_Reduction(x - 2, 1)", {"x=Vi(2)"}, "Zero_Reduction(Subtract(Vi(0,2),IntCst(2)),1)"},
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
      {"Sum_Reduction(x < x < x, 1)", {"x=Vi(1)"}, "formula", "do not chain"},
      {"Sum_Reduction(x = x, 1)", {"x=Vi(1)"}, "formula", "column 17"},
      {"Sum_Reduction(!x, 1)", {"x=Vi(1)"}, "formula", "unexpected character '!'"},
      {"Sum_Reduction(RatCst(1, 0) * x, 1)", {"x=Vi(1)"}, "formula", "divides by zero"},
      {"Sum_Reduction(x[0], 1)", {"x=Vi(1)"}, "formula", "found '['"},
      {"Sum_Reduction(TensorDot(x, x, [1], [1], [0], [0), 1)", {"x=Vi(1)"}, "formula", "expected ']'"},
      {"Sum_Reduction(TensorDot(x, x, [1], [1], (0), [0]), 1)", {"x=Vi(1)"}, "formula", "tuple"},
      {"Zero_Reduction(0, 1)", {"x=Vi(1)"}, "formula", "between 1 and 100000"},
      {"Zero_Reduction(-1, 1)", {"x=Vi(1)"}, "formula", "between 1 and 100000"},
      {"Sum_Reduction(SoftDTW_SqDist(x, y, y), 1)", {"x=Vi(3)", "y=Vj(2)"}, "dimension", "gamma"},
      {"Sum_Reduction(x, 1)", {"RatCst=Vi(3)"}, "formula", "reserved"},
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

// operation_dim() (what R's LazyTensors ask, one operation at a time) is the rule the parser
// applies: for every operation without tuple parameters, on small dimensions and parameters,
// both accept with the same dimension, or both refuse with a dimension error in the same words.
TEST(Dimensions, OperationDimIsTheParsersRule) {
  const int dim_values[] = {1, 2, 4};
  const int param_values[] = {-1, 0, 1, 3};
  int compared = 0, refused = 0;
  for (int op = 0; op < rkeops::op_count(); ++op) {
    const rkeops::OpInfo& info = rkeops::op_info(op);
    if (info.has_tuples()) continue;
    const size_t nf = info.nargs(), np = info.nparams();
    size_t combos = 1;
    for (size_t k = 0; k < nf; ++k) combos *= 3;
    for (size_t k = 0; k < np; ++k) combos *= 4;
    for (size_t c = 0; c < combos; ++c) {
      std::vector<int> dims, params;
      size_t r = c;
      for (size_t k = 0; k < nf; ++k, r /= 3) dims.push_back(dim_values[r % 3]);
      for (size_t k = 0; k < np; ++k, r /= 4) params.push_back(param_values[r % 4]);
      std::string call = std::string(info.name) + "(";
      std::string sep;
      for (size_t k = 0; k < nf; ++k, sep = ",")
        call += sep + "Var(" + std::to_string(k) + "," + std::to_string(dims[k]) + ",0)";
      for (int p : params) call += sep + std::to_string(p), sep = ",";
      call += ")";
      int parsed = 0, asked = 0;
      std::string parse_error, ask_error;
      try {
        parsed = parse_formula("Sum_Reduction(" + call + ",0)", {}).shape.d;
      } catch (const UserError& e) { parse_error = e.kind + ": " + e.what(); }
      try {
        asked = rkeops::operation_dim(info.name, dims, params, "");
      } catch (const UserError& e) { ask_error = e.kind + ": " + e.what(); }
      ++compared;
      if (ask_error.empty()) {
        EXPECT_EQ(parse_error, "") << call;
        EXPECT_EQ(asked, parsed) << call;
        continue;
      }
      ++refused;
      // "dimension: dimension mismatch in Op: <why> (argument dimensions: ...)"
      const std::string head = "dimension: dimension mismatch in " + std::string(info.name) + ": ";
      ASSERT_EQ(ask_error.compare(0, head.size(), head), 0) << call << " -> " << ask_error;
      EXPECT_EQ(parse_error.compare(0, 11, "dimension: "), 0) << call << " -> " << parse_error;
      EXPECT_NE(parse_error.find(ask_error.substr(head.size())), std::string::npos)
          << call << ": " << parse_error << " vs " << ask_error;
    }
  }
  EXPECT_GT(compared, 500);
  EXPECT_GT(refused, 50);
}

TEST(Dimensions, OperationDimRefusesUnknownOperationsAndWrongArity) {
  EXPECT_EQ(rkeops::operation_dim("SqDist", {3, 3}, {}, "sqdist()"), 1);
  EXPECT_EQ(rkeops::operation_dim("Concat", {3, 2}, {}, ""), 5);
  EXPECT_EQ(rkeops::operation_dim("ComplexAbs", {6}, {}, ""), 3);
  auto error = [](const std::string& op, std::vector<int> dims, std::vector<int> params) {
    try {
      rkeops::operation_dim(op, dims, params, "where()");
    } catch (const UserError& e) { return e.kind + ": " + e.what(); }
    return std::string("no error");
  };
  EXPECT_EQ(error("Foo", {1}, {}), "formula: unknown operation 'Foo'");
  EXPECT_EQ(error("Exp", {1, 1}, {}).substr(0, 25), "formula: Exp takes 1 form");
  EXPECT_EQ(error("Elem", {3}, {}).substr(0, 26), "formula: Elem takes 1 form");
  EXPECT_EQ(error("Exp", {0}, {}).substr(0, 10), "dimension:");
  EXPECT_EQ(error("Add", {3, 2}, {}),
            "dimension: dimension mismatch in where(): operands must have the same dimension or dimension 1 "
            "(argument dimensions: 3, 2)");
}

TEST(Inputs, ErrorsNameTheInputByItsLabelAndSpeakOfTheCallersLayout) {
  using rkeops::Input;
  using rkeops::InputLayout;
  Formula f = parse_formula("Sum_Reduction(SqDist(x,y)*b,1)", {"x=Vi(2)", "y=Vj(2)", "b=Vj(1)"});
  EXPECT_EQ(rkeops::arg_label(f, 1), "input 2 ('y', Vj(2))");
  EXPECT_EQ(rkeops::arg_label(parse_formula("Sum_Reduction(Var(0,2,0),1)", {}), 0), "input 1 (Vi(2))");
  EXPECT_EQ(rkeops::describe_formula("Sum_Reduction(SqDist(x,y)*b,1)", {"x=Vi(2)", "y=Vj(2)", "b=Vj(1)"}).args[2].label,
            "input 3 ('b', Vj(1))");
  std::vector<double> x(6), y(12), b(4);
  auto message = [&](std::vector<Input> in, InputLayout layout) {
    try {
      rkeops::check_inputs(f, in, layout);
    } catch (const UserError& e) { return e.kind + ": " + e.what(); }
    return std::string("no error");
  };
  const std::vector<Input> wide = {{x.data(), 3, 2}, {y.data(), 4, 3}, {b.data(), 4, 1}};
  EXPECT_EQ(message(wide, InputLayout::PointsInRows),
            "dimension: input 2 ('y', Vj(2)) must have 2 column(s) (one row per point), got 3");
  EXPECT_EQ(message(wide, InputLayout::PointsInColumns),
            "dimension: input 2 ('y', Vj(2)) must have 2 row(s) (one column per point), got 3");
  const std::vector<Input> uneven = {{x.data(), 3, 2}, {y.data(), 4, 2}, {b.data(), 3, 1}};
  EXPECT_EQ(message(uneven, InputLayout::PointsInColumns),
            "dimension: all Vj inputs must have the same number of columns (points): input 2 ('y', Vj(2)) has 4, "
            "input 3 ('b', Vj(1)) has 3");
  EXPECT_EQ(message({{x.data(), 3, 2}, {y.data(), 4, 2}, {b.data(), 4, 1}}, InputLayout::PointsInRows), "no error");
}

// Runs fn on a thread with a `kb` KiB stack (far less than R's 8 MiB main thread): a pass
// that recursed once per level of a deep formula would crash the test binary here.
void on_small_stack(size_t kb, const std::function<void()>& fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, kb * 1024);
  struct Ctx {
    const std::function<void()>* fn;
    std::string error;
  } ctx{&fn, ""};
  pthread_t th;
  auto body = [](void* p) -> void* {
    auto* c = static_cast<Ctx*>(p);
    try {
      (*c->fn)();
    } catch (const std::exception& e) { c->error = e.what(); }
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&th, &attr, body, &ctx), 0);
  pthread_join(th, nullptr);
  pthread_attr_destroy(&attr);
  EXPECT_EQ(ctx.error, "");
}

std::string nest(const std::string& open, const std::string& inner, const std::string& close, int n) {
  std::string s;
  for (int k = 0; k < n; ++k) s += open;
  s += inner;
  for (int k = 0; k < n; ++k) s += close;
  return s;
}

// The limit counts levels as written: parentheses, calls, signs and exponents, one each.
TEST(Parser, NestingLimitIsExactAndClassed) {
  const std::vector<std::string> a = {"x=Vi(1)", "y=Vj(1)"};
  struct Form {
    const char *open, *close;
  };
  for (Form w : {Form{"(", ")"}, Form{"Exp(", ")"}, Form{"-", ""}, Form{"Sqrt(x+Log(", "))"}}) {
    int levels = std::string(w.open).find("Log") != std::string::npos ? 500 : 1000;  // two levels each
    std::string ok = "Sum_Reduction(" + nest(w.open, "x*y", w.close, levels) + ", 1)";
    std::string deep = "Sum_Reduction(" + nest(w.open, "x*y", w.close, levels + 1) + ", 1)";
    on_small_stack(2048, [&] { EXPECT_EQ(error_of(ok, a).second, "no error") << w.open; });
    auto [kind, msg] = error_of(deep, a);
    EXPECT_EQ(kind, "formula") << w.open;
    EXPECT_NE(msg.find("the formula is nested too deeply (more than 1000 levels)"), std::string::npos) << msg;
    // a long formula is quoted as an excerpt around the column, with the caret under it
    EXPECT_LT(msg.size(), 600u) << msg;
    size_t l1 = msg.find('\n'), l2 = msg.find('\n', l1 + 1);
    ASSERT_NE(l2, std::string::npos);
    std::string shown = msg.substr(l1 + 1, l2 - l1 - 1), caret = msg.substr(l2 + 1);
    size_t col = std::stoul(msg.substr(msg.find("at column ") + 10)) - 1;
    EXPECT_EQ(shown.substr(caret.size() - 1, 8), deep.substr(col, 8)) << msg;
  }
  std::string pw;
  for (int k = 0; k < 1000; ++k) pw += "x^";
  EXPECT_EQ(error_of("Sum_Reduction(" + pw + "y, 1)", a).second, "no error");
  EXPECT_EQ(error_of("Sum_Reduction(x^" + pw + "y, 1)", a).first, "formula");
}

// Long sums and products are loops in the parser, not levels: a formula of the maximum length
// (100,000 characters) parses, prints and generates CPU and CUDA code on a 1 MiB stack. Its
// DAG is 50,000 nodes deep, and so is its gradient's.
TEST(Parser, LongFlatChainsNeedNoStack) {
  const std::vector<std::string> a = {"x=Vi(2)", "y=Vj(2)", "e=Vi(2)"};
  auto chain_of = [](int n) {
    std::string s;
    for (int k = 0; k < n; ++k) s += (k ? (k % 3 ? "+" : "*") : "") + std::string(k % 2 ? "y" : "x");
    return s;
  };
  std::string chain = chain_of(49990);
  on_small_stack(1024, [&] {
    Formula f = parse_formula("Sum_Reduction(" + chain + ", 0)", a);
    EXPECT_GT(f.g.size(), 33000);  // one node per operator, but products x*y and y*x repeat
    std::string c = f.canonical();
    EXPECT_EQ(c.compare(0, 18, "Sum_Reduction(Add("), 0) << c.substr(0, 40);
    EXPECT_LT(c.size(), 20000u);  // cut with "..." below a depth (printing recurses)
    rkeops::CodeOptions co;
    EXPECT_GT(rkeops::generate_cpu_source(f, co, RKEOPS_INCLUDE_DIR).size(), 49990u * 20);
    EXPECT_GT(rkeops::generate_cuda_source(f, co, RKEOPS_INCLUDE_DIR).size(), 49990u * 20);
    Formula d = parse_formula("Sum_Reduction(Grad(" + chain_of(30000) + ", x, e), 0)", a);
    EXPECT_GT(rkeops::generate_cpu_source(d, co, RKEOPS_INCLUDE_DIR).size(), 20000u * 20);
  });
}

// Nested derivatives multiply the nodes of a formula: past Graph::kMaxNodes it is a formula
// error at the derivative (never an internal error from the template that hit the limit).
TEST(Parser, NestedDerivativesOutgrowingTheGraphAreAFormulaError) {
  std::string f = "Exp(-SqDist(x,y))";
  const std::vector<std::string> a = {"x=Vi(3)", "y=Vj(3)", "e=Vi(3)", "e1=Vi(1)"};
  for (int k = 0; k < 30; ++k) f = "Grad(" + f + ", x, " + (k % 2 ? "e" : "e1") + ")";
  auto [kind, msg] = error_of("Sum_Reduction(" + f + ", 1)", a);
  EXPECT_EQ(kind, "formula");
  EXPECT_NE(msg.find("the formula is too large: more than 100000 distinct operations"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Grad("), std::string::npos) << msg;  // the caret points at a Grad
  std::string g13 = "Exp(-SqDist(x,y))";
  for (int k = 0; k < 13; ++k) g13 = "Grad(" + g13 + ", x, " + (k % 2 ? "e" : "e1") + ")";
  on_small_stack(1024, [&] {
    Formula d = parse_formula("Sum_Reduction(" + g13 + ", 1)", a);
    rkeops::CodeOptions co;
    EXPECT_GT(rkeops::generate_cpu_source(d, co, RKEOPS_INCLUDE_DIR).size(), 100000u);
  });
}

}  // namespace

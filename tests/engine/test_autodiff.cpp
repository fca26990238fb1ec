// Autodiff and the rewrite rules: every derivative row of the op table against central finite
// differences (float64, compiled kernels), second order, every rewrite rule lhs == rhs on
// random inputs, simplify() on random expressions, and the shape of generated gradients.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "autodiff.h"
#include "codegen_cpu.h"
#include "engine.h"
#include "kernel.h"
#include "errors.h"
#include "formula.h"
#include "ops.h"
#include "simplify.h"
#include "test_util.h"

using namespace rkeops;

namespace {

// A column-major matrix, rows = points.
struct Mat {
  long long rows = 0, cols = 0;
  std::vector<double> v;
  Mat() = default;
  Mat(long long r, long long c) : rows(r), cols(c), v(static_cast<size_t>(r * c), 0.0) {}
  double& at(long long i, long long k) { return v[static_cast<size_t>(i + k * rows)]; }
  double at(long long i, long long k) const { return v[static_cast<size_t>(i + k * rows)]; }
};

// Nodes wider than this are emitted with loops (codegen.h); 1 runs every loop emitter.
int g_loop_dim = kLoopDim;

EngineOptions options() {
  EngineOptions o;
  o.code.loop_dim = g_loop_dim;
  o.include_dir = RKEOPS_INCLUDE_DIR;
  o.cache_dir = rkeops_test::test_cache_dir();
  o.nthreads = 2;
  // The test kernels are large (every operation at once, thousands of lines): -O0 compiles
  // them in seconds rather than a minute, with the same IEEE float64 arithmetic.
  o.compiler.flags = "-O0 -fPIC -shared";
  return o;
}

Mat run(const std::string& formula, const std::vector<std::string>& aliases, const std::vector<Mat>& in) {
  EngineOptions o = options();
  auto k = get_kernel(formula, aliases, o);
  static std::set<const Kernel*> seen;
  if (getenv("RKEOPS_TEST_VERBOSE") && seen.insert(k.get()).second)
    printf("compiled in %.1f s: %.60s... (%zu chars)\n", k->compile_seconds, formula.c_str(), formula.size());
  std::vector<Input> inputs;
  for (const Mat& m : in) inputs.push_back({m.v.data(), m.rows, m.cols});
  CallShape s = check_inputs(k->formula(), inputs);
  Mat out(s.out_rows, k->formula().out_dim);
  k->run(inputs, s, out.v.data(), o, [] { return false; });
  return out;
}

Mat random_mat(std::mt19937& rng, long long r, long long c, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  Mat m(r, c);
  for (double& x : m.v) x = u(rng);
  return m;
}

// A formula joining `parts` with Concat as a balanced tree (the parser limits nesting).
std::string concat_all(const std::vector<std::string>& parts, size_t a, size_t b) {
  if (b - a == 1) return parts[a];
  size_t m = (a + b) / 2;
  return "Concat(" + concat_all(parts, a, m) + ", " + concat_all(parts, m, b) + ")";
}
std::string concat_all(const std::vector<std::string>& parts) { return concat_all(parts, 0, parts.size()); }

// ---- every derivative against finite differences ----
// Variables: x, p, u (Vi(6): any, positive, in the unit interval) and y, q, w (Vj(6), likewise).
// Each case is F(one of x/p/u, one of y/q/w); between them they use every operation.
struct Case {
  const char* f;
  const char* xv;  // the i variable it is differentiated in
  const char* yv;  // the j variable
  bool second = true;  // whether F has second derivatives (SoftDTW_SqDist has none)
};
const Case kCases[] = {
    {"x + y", "x", "y"},
    {"x - y", "x", "y"},
    {"x * y", "x", "y"},
    {"p / q", "p", "q"},
    {"-x * y", "x", "y"},
    {"Add(Elem(x, 0), y)", "x", "y"},
    {"Mult(x, Elem(y, 3))", "x", "y"},  // broadcast scalars
    {"Exp(x - y)", "x", "y"},
    {"Log(p * q)", "p", "q"},
    {"Sqrt(p + q)", "p", "q"},
    {"Rsqrt(p + q)", "p", "q"},
    {"Inv(p + q)", "p", "q"},
    {"Square(x - y)", "x", "y"},
    {"Abs(x - y)", "x", "y"},
    {"Sign(x - y)", "x", "y"},
    {"Step(x - y)", "x", "y"},
    {"ReLU(x - y)", "x", "y"},
    {"Sin(x * y)", "x", "y"},
    {"Cos(x * y)", "x", "y"},
    {"Asin(u * w)", "u", "w"},
    {"Acos(u * w)", "u", "w"},
    {"Atan(x - y)", "x", "y"},
    {"Atan2(p, y)", "p", "y"},
    {"Atan2(x, q)", "x", "q"},
    {"Floor(x * 3 - y)", "x", "y"},
    {"Round(x * y, 1)", "x", "y"},
    {"XLogX(p * q)", "p", "q"},
    {"SinXDivX(x - y)", "x", "y"},
    {"Pow(x - y, 3)", "x", "y"},
    {"Pow(p + q, -2)", "p", "q"},
    {"Pow(x * y, 2) + Pow(x, 1)", "x", "y"},
    {"Powf(p, q)", "p", "q"},
    {"Clamp(x - y, -0.5, 0.75)", "x", "y"},
    {"Clamp(x, y - 0.5, y + 0.5)", "x", "y"},
    {"ClampInt(x - y, -1, 1)", "x", "y"},
    {"IfElse(x - y, x * y, Exp(y))", "x", "y"},
    {"Mod(x, q, y)", "x", "q"},
    {"Mod(y, p, x)", "p", "y"},
    {"Equal(x, y) + NotEqual(x, y) + LessThan(x, y) + LessOrEqual(x, y)", "x", "y"},
    {"Sum(x * y)", "x", "y"},
    {"SumT(Sum(x - y), 4)", "x", "y"},
    {"Min(x - y)", "x", "y"},
    {"Max(x * y)", "x", "y"},
    {"ArgMin(x - y) + ArgMax(x - y)", "x", "y"},
    {"SqNorm2(x - y)", "x", "y"},
    {"Norm2(x - y)", "x", "y"},
    {"Normalize(x - y)", "x", "y"},
    {"SqDist(x, y)", "x", "y"},
    {"Scalprod(x, y) + (x * x | y)", "x", "y"},
    {"SqDist(Elem(x, 1), y)", "x", "y"},
    {"WeightedSqNorm(Elem(q, 0), x)", "x", "q"},
    {"WeightedSqNorm(q, x)", "x", "q"},
    {"WeightedSqNorm(Extract(y, 0, 4), Extract(x, 1, 2))", "x", "y"},
    {"WeightedSqDist(Elem(q, 2), x, y)", "x", "y"},
    {"WeightedSqDist(Elem(q, 2), x, y)", "x", "q"},
    {"WeightedSqDist(p, x, y)", "p", "y"},
    {"WeightedSqDist(p, x, y)", "x", "y"},
    {"WeightedSqDist(Extract(y, 2, 4), Extract(x, 0, 2), Extract(q, 1, 2))", "x", "y"},
    {"WeightedSqDist(Extract(y, 2, 4), Extract(x, 0, 2), Extract(q, 1, 2))", "x", "q"},
    {"SqNormIso(Elem(y, 1), x)", "x", "y"},
    {"SqNormDiag(y, x)", "x", "y"},
    {"SymSqNorm(Extract(y, 0, 4), Extract(x, 0, 2))", "x", "y"},
    {"Elem(x, 2) * y", "x", "y"},
    {"ElemT(Elem(x, 0) - Elem(y, 1), 4, 2)", "x", "y"},
    {"Extract(x - y, 1, 2)", "x", "y"},
    {"ExtractT(x * y, 1, 8)", "x", "y"},
    {"Concat(x, y * x)", "x", "y"},
    {"OneHot(Elem(x, 0) - Elem(y, 0) + 6, 13)", "x", "y"},
    {"Zero(6) + x * y", "x", "y"},
    {"MatVecMult(x, Extract(y, 0, 3))", "x", "y"},
    {"VecMatMult(Extract(y, 0, 2), x)", "x", "y"},
    {"TensorProd(Extract(x, 0, 2), Extract(y, 0, 3))", "x", "y"},
    {"TensorDot(x, y, Ind(2,3), Ind(3,2), Ind(1), Ind(0), Ind(1,0))", "x", "y"},
    {"TensorDot(x * p, q, Ind(1,2,3), Ind(2,3), Ind(1,2), Ind(0,1))", "p", "q"},
    {"Kron(Extract(x, 0, 4), Extract(y, 2, 4), Ind(2,2), Ind(2,2))", "x", "y"},
    {"BSpline(Concat(Concat(Concat(IntCst(0), IntCst(1)), Concat(IntCst(2), IntCst(3))), "
     "Concat(IntCst(4), IntCst(5))), 2 + Elem(u, 0) * 1.5 + Elem(w, 1), 3)",
     "u", "w"},
    // complex numbers (dimension 6: three complex components, re and im interleaved)
    {"ComplexAdd(x, y) + ComplexSubtract(Extract(x, 2, 2), y)", "x", "y"},
    {"ComplexSubtract(x, Extract(y, 0, 2)) + ComplexAdd(x * y, Extract(y, 4, 2))", "x", "y"},
    {"ComplexMult(x, y)", "x", "y"},
    {"ComplexMult(Extract(x, 0, 2), y) + ComplexMult(y, Extract(x, 2, 2))", "x", "y"},
    {"ComplexDivide(x, q)", "x", "q"},
    {"ComplexDivide(Extract(x, 0, 2), q) + ComplexDivide(x, Extract(q, 2, 2))", "x", "q"},
    {"ComplexExp(x * 0.5 - y)", "x", "y"},
    {"ComplexExp1j(Extract(x, 0, 3) - Extract(y, 0, 3))", "x", "y"},
    {"ComplexAbs(ComplexMult(p, q))", "p", "q"},
    {"ComplexSquareAbs(x - y)", "x", "y"},
    {"ComplexAngle(ComplexMult(p, q))", "p", "q"},
    {"ComplexReal(ComplexMult(x, y)) + ComplexImag(x - y)", "x", "y"},
    {"Real2Complex(Extract(x, 0, 3)) + Imag2Complex(Extract(y, 0, 3) * Extract(x, 3, 3))", "x", "y"},
    {"Conj(ComplexMult(x, y))", "x", "y"},
    {"ComplexSumT(ComplexSum(ComplexMult(x, y)), 4)", "x", "y"},
    {"ComplexRealScal(Elem(x, 0), y) + ComplexRealScal(x, Elem(y, 1))", "x", "y"},
    {"DiffClampInt(x - y, -1, 1) * x + ClampInt(y * 3, -1, 2) * y", "x", "y"},
    // soft-DTW of two series of 6 (and 4) values, in x, y and gamma (p): no second derivative
    {"SoftDTW_SqDist(x, y, Elem(p, 0))", "x", "y", false},
    {"SoftDTW_SqDist(Extract(x, 1, 4), y, Elem(p, 2) * 0.5) + SoftDTW_SqDist(y, Extract(x, 0, 3), Elem(q, 1))", "p", "q",
     false},
    {"Exp(-SqDist(x, y)) * Elem(y, 0)", "x", "y"},
    {"Log(1 + SqDist(x, y)) * Sin((x | y))", "x", "y"},
};
const int kVarDim = 6;
const char* kAliases[] = {"x=Vi(0,6)", "p=Vi(1,6)", "u=Vi(2,6)", "y=Vj(3,6)", "q=Vj(4,6)", "w=Vj(5,6)"};

struct Batch {
  std::vector<std::string> aliases;
  std::vector<int> fdim, eoff;  // per case: dim of F, offset in the gradient input e
  int edim = 0;
  std::vector<Mat> data;  // x, p, u, y, q, w, e
  long long N = 4, M = 5;
};

Batch make_batch(std::mt19937& rng) {
  Batch b;
  for (const char* a : kAliases) b.aliases.push_back(a);
  std::vector<std::string> al = b.aliases;
  for (const Case& c : kCases) {  // the dimension of each F
    Formula f = parse_formula(std::string("Sum_Reduction(") + c.f + ", 1)", al);
    b.fdim.push_back(f.shape.d);
    b.eoff.push_back(b.edim);
    b.edim += f.shape.d;
  }
  b.aliases.push_back("e=Vi(6," + std::to_string(b.edim) + ")");
  b.data = {random_mat(rng, b.N, kVarDim, -1.5, 1.5), random_mat(rng, b.N, kVarDim, 0.5, 2),
            random_mat(rng, b.N, kVarDim, -0.9, 0.9), random_mat(rng, b.M, kVarDim, -1.5, 1.5),
            random_mat(rng, b.M, kVarDim, 0.5, 2),    random_mat(rng, b.M, kVarDim, -0.9, 0.9),
            random_mat(rng, b.N, b.edim, -1, 1)};
  return b;
}

std::string e_part(const Batch& b, size_t c) {
  return "Extract(e, " + std::to_string(b.eoff[c]) + ", " + std::to_string(b.fdim[c]) + ")";
}
int var_index(const std::string& name) {
  const char* names[] = {"x", "p", "u", "y", "q", "w"};
  for (int k = 0; k < 6; ++k)
    if (name == names[k]) return k;
  return -1;
}

// The worst error max|g - fd| / max(1, max|fd|) of each case.
// `value(axis)` is the kernel whose column c is <F_c, e_c> summed over the other index;
// `grad(axis)` the kernel whose columns 6c..6c+5 are the gradient of case c in its variable.
void check_against_fd(const Batch& b0, const std::string& value_formula_1, const std::string& value_formula_0,
                      const std::string& grad_formula_x, const std::string& grad_formula_y,
                      const std::vector<std::string>& aliases, std::vector<Mat> data, const char* what,
                      double tol = 1e-6, double h = 1e-5) {
  const size_t C = sizeof kCases / sizeof kCases[0];
  for (int side = 0; side < 2; ++side) {  // 0: the i variables (axis 1), 1: the j variables (axis 0)
    Mat g = run(side == 0 ? grad_formula_x : grad_formula_y, aliases, data);
    const std::string& value = side == 0 ? value_formula_1 : value_formula_0;
    std::vector<double> worst(C, 0), scale(C, 1);
    std::vector<Mat> fd(C, Mat(g.rows, kVarDim));
    for (int var = side * 3; var < side * 3 + 3; ++var) {
      for (int k = 0; k < kVarDim; ++k) {  // coordinate k of every point at once: row r only sees its own
        std::vector<Mat> plus = data, minus = data;
        for (long long r = 0; r < data[var].rows; ++r) {
          plus[var].at(r, k) += h;
          minus[var].at(r, k) -= h;
        }
        Mat vp = run(value, aliases, plus), vm = run(value, aliases, minus);
        for (size_t c = 0; c < C; ++c) {
          const char* cv = side == 0 ? kCases[c].xv : kCases[c].yv;
          if (var_index(cv) != var) continue;
          for (long long r = 0; r < g.rows; ++r) fd[c].at(r, k) = (vp.at(r, c) - vm.at(r, c)) / (2 * h);
        }
      }
    }
    for (size_t c = 0; c < C; ++c) {
      for (long long r = 0; r < g.rows; ++r)
        for (int k = 0; k < kVarDim; ++k) {
          scale[c] = std::max(scale[c], std::fabs(fd[c].at(r, k)));
          worst[c] = std::max(worst[c], std::fabs(g.at(r, kVarDim * c + k) - fd[c].at(r, k)));
        }
      EXPECT_LE(worst[c] / scale[c], tol)
          << what << " of " << kCases[c].f << " in " << (side == 0 ? kCases[c].xv : kCases[c].yv);
    }
  }
  (void)b0;
}

// Every case of kCases at once: the values (paired with the gradient inputs e) and the
// gradients in the case's x and y variables, each concatenated into one formula.
struct CaseFormulas {
  std::string values, gx, gy;
};
CaseFormulas case_formulas(const Batch& b) {
  std::vector<std::string> values, gx, gy;
  for (size_t c = 0; c < sizeof kCases / sizeof kCases[0]; ++c) {
    std::string f = std::string("(") + kCases[c].f + ")";
    values.push_back("(" + f + " | " + e_part(b, c) + ")");
    gx.push_back(std::string("Grad(") + f + ", " + kCases[c].xv + ", " + e_part(b, c) + ")");
    gy.push_back(std::string("Grad(") + f + ", " + kCases[c].yv + ", " + e_part(b, c) + ")");
  }
  return {concat_all(values), concat_all(gx), concat_all(gy)};
}

TEST(Autodiff, EveryDerivativeMatchesFiniteDifferences) {
  std::mt19937 rng(20261122);
  Batch b = make_batch(rng);
  const CaseFormulas cf = case_formulas(b);
  const std::string& v = cf.values;
  check_against_fd(b, "Sum_Reduction(" + v + ", 1)", "Sum_Reduction(" + v + ", 0)",
                   "Sum_Reduction(" + cf.gx + ", 1)", "Sum_Reduction(" + cf.gy + ", 0)", b.aliases,
                   b.data, "the gradient");
}

// The same with every node of dimension > 1 emitted with loops over its components (on the
// CPU: tile mode, workspace arrays, loops for the reduction state of the wide gradients).
TEST(Autodiff, EveryDerivativeMatchesFiniteDifferencesWithLoops) {
  g_loop_dim = 1;
  std::mt19937 rng(20261123);
  Batch b = make_batch(rng);
  const CaseFormulas cf = case_formulas(b);
  const std::string& v = cf.values;
  const std::string value = "Sum_Reduction(" + v + ", 1)", grad = "Sum_Reduction(" + cf.gx + ", 1)";
  check_against_fd(b, value, "Sum_Reduction(" + v + ", 0)", grad, "Sum_Reduction(" + cf.gy + ", 0)", b.aliases,
                   b.data, "the gradient (loops)");
  // The loops are there, and they give the values of the straight-line code.
  CodeOptions co;
  co.loop_dim = 1;
  std::string src = generate_cpu_source(parse_formula(grad, b.aliases), co, RKEOPS_INCLUDE_DIR);
  EXPECT_NE(src.find("for (int k0_ = 0; k0_ < 6; ++k0_)"), std::string::npos);
  EXPECT_NE(src.find("T (*v"), std::string::npos);  // tile mode
  for (const std::string& f : {value, grad}) {
    Mat looped = run(f, b.aliases, b.data);
    g_loop_dim = kLoopDim;
    Mat straight = run(f, b.aliases, b.data);
    g_loop_dim = 1;
    double worst = 0, scale = 1;
    for (size_t k = 0; k < straight.v.size(); ++k) {
      worst = std::max(worst, std::fabs(looped.v[k] - straight.v[k]));
      scale = std::max(scale, std::fabs(straight.v[k]));
    }
    EXPECT_LE(worst / scale, 1e-12) << f.substr(0, 60);
  }
  g_loop_dim = kLoopDim;
}

TEST(Autodiff, SecondOrderMatchesFiniteDifferencesOfTheFirstOrderKernel) {
  // d/dv <Grad(F, v, e), s> = Grad(Grad(F, v, e), v, s): the gradient of the first-order
  // kernel, in the same variable (x side) and in the other one (mixed, y side).
  std::mt19937 rng(7);
  Batch b = make_batch(rng);
  const size_t C = sizeof kCases / sizeof kCases[0];
  std::vector<std::string> aliases = b.aliases;
  aliases.push_back("s=Vi(7," + std::to_string(kVarDim * C) + ")");
  std::vector<Mat> data = b.data;
  data.push_back(random_mat(rng, b.N, kVarDim * static_cast<long long>(C), -1, 1));
  std::vector<std::string> values, gxx, gxy;
  for (size_t c = 0; c < C; ++c) {
    std::string f = std::string("(") + kCases[c].f + ")";
    if (!kCases[c].second) {  // no second derivative: a stand-in of F's dimension (1)
      EXPECT_EQ(b.fdim[c], 1) << kCases[c].f;
      f = std::string("(Elem(") + kCases[c].xv + ", 0) * Sin(Elem(" + kCases[c].yv + ", 1)))";
    }
    std::string s = "Extract(s, " + std::to_string(kVarDim * c) + ", " + std::to_string(kVarDim) + ")";
    std::string g1 = std::string("Grad(") + f + ", " + kCases[c].xv + ", " + e_part(b, c) + ")";
    values.push_back("(" + g1 + " | " + s + ")");
    gxx.push_back("Grad(" + g1 + ", " + kCases[c].xv + ", " + s + ")");
    gxy.push_back("Grad(" + g1 + ", " + kCases[c].yv + ", " + s + ")");
  }
  std::string v = concat_all(values);
  check_against_fd(b, "Sum_Reduction(" + v + ", 1)", "Sum_Reduction(" + v + ", 0)",
                   "Sum_Reduction(" + concat_all(gxx) + ", 1)", "Sum_Reduction(" + concat_all(gxy) + ", 0)", aliases,
                   data, "the second derivative");
}

TEST(Autodiff, EveryOperationWithADerivativeIsCovered) {
  std::set<std::string> used;
  std::vector<std::string> al(std::begin(kAliases), std::end(kAliases));
  for (const Case& c : kCases) {
    Formula f = parse_formula(std::string("Sum_Reduction(") + c.f + ", 1)", al);
    for (int id = 0; id < f.g.size(); ++id)
      if (f.g[id].kind == NodeKind::Call) used.insert(op_info(f.g[id].op).name);
  }
  for (int op = 0; op < op_count(); ++op) {
    const OpInfo& info = op_info(op);
    std::string name = info.name;
    if (name == "GradSoftDTW_SqDist") {  // built by SoftDTW_SqDist's derivative; has none itself
      continue;
    } else if (info.deriv.defined()) {
      EXPECT_TRUE(used.count(name)) << name << " has a derivative but no finite-difference case";
    } else {
      ADD_FAILURE() << name << " has no derivative";
    }
  }
}

// Arguments of dimensions that the operation accepts (and parameters), or false.
bool sample_call(Graph& g, int op, int* id) {
  const OpInfo& info = op_info(op);
  const int dims[] = {1, 2, 3, 4, 6};
  const int pvals[] = {1, 0, 2, 3, 4, 6};
  size_t na = info.nargs(), np = info.nparams();
  std::vector<int> tdims, tparams;
  if (rkeops_test::tuple_op_sample(info.name, &tdims, &tparams)) {
    std::vector<int> args;
    for (size_t k = 0; k < na; ++k) args.push_back(g.var(CAT_I, static_cast<int>(k), tdims[k]));
    *id = g.call(op, args, tparams);
    return true;
  }
  // A few combinations: equal dims, then each argument 1 / D / D*D.
  std::vector<std::vector<int>> dimsets;
  for (int d : dims) dimsets.push_back(std::vector<int>(na, d));
  for (int d : {2, 3})
    for (int a : {1, d, d * d})
      for (int c : {1, d, d * d}) {
        std::vector<int> v = {a, c, d};
        v.resize(na, d);
        dimsets.push_back(v);
        dimsets.push_back(std::vector<int>{d, a, c});
        dimsets.back().resize(na, d);
      }
  for (auto& ds : dimsets)
    for (int p0 : pvals)
      for (int p1 : pvals) {
        std::vector<int> args, params;
        for (size_t k = 0; k < na; ++k) args.push_back(g.var(CAT_I, static_cast<int>(k), ds[k]));
        if (np > 0) params.push_back(p0);
        if (np > 1) params.push_back(p1);
        try {
          *id = g.call(op, args, params);
          return true;
        } catch (const UserError&) { g = Graph(); }
      }
  return false;
}

TEST(Autodiff, EveryDerivativeTemplateBuilds) {
  for (int op = 0; op < op_count(); ++op) {
    const OpInfo& info = op_info(op);
    if (!info.deriv.defined()) continue;
    Graph g;
    int id = -1;
    ASSERT_TRUE(sample_call(g, op, &id)) << info.name;
    int go = g.var(CAT_J, 90, g[id].dim);
    for (size_t k = 0; k < info.nargs(); ++k) {
      int c = -1;
      if ((std::string(info.name) == "BSpline" && k == 0) ||  // the knots: no derivative, a clear error
          std::string(info.name) == "GradSoftDTW_SqDist") {      // no second derivative of soft-DTW
        EXPECT_THROW(arg_adjoint(g, id, 0, go), UserError);
        continue;
      }
      EXPECT_NO_THROW(c = arg_adjoint(g, id, static_cast<int>(k), go)) << info.name << " argument " << k;
      if (c >= 0) { EXPECT_EQ(g[c].dim, g[g[id].args[k]].dim) << info.name << " argument " << k; }
    }
  }
}

// ---- rewrite rules ----
// Instantiates a pattern: names are variables of dimension D (x, y, z at positions 0..2 for
// D = 3, 3..5 for D = 1), k-names constants, "_" parameters chosen so the call is valid.
int instantiate(Graph& g, const Pattern& p, int D, std::map<std::string, int>& names, int pchoice) {
  switch (p.kind) {
    case Pattern::Any: {
      auto it = names.find(p.name);
      if (it != names.end()) return it->second;
      int pos = static_cast<int>(names.size()) + (D == 1 ? 3 : 0);
      return names[p.name] = g.var(CAT_I, pos, D);
    }
    case Pattern::AnyConst: {
      auto it = names.find(p.name);
      if (it != names.end()) return it->second;
      return names[p.name] = g.constant(p.name == "k2" ? -2.25 : 1.5, false);
    }
    case Pattern::Number:  // 0 is also Zero(D)
      if (p.value == 0 && D > 1) return g.call("Zero", {}, {D});
      return g.constant(p.value, p.value == std::floor(p.value));
    case Pattern::Call: {
      std::vector<int> args, params;
      for (const Pattern& a : p.args) args.push_back(instantiate(g, a, D, names, pchoice));
      const int choices[][2] = {{1, 0}, {0, 1}, {4, 2}, {D, 0}, {2, 1}, {0, D}};
      for (size_t k = 0; k < p.params.size(); ++k)
        params.push_back(p.params[k] != kAnyParam ? p.params[k] : choices[pchoice][k]);
      return g.call(p.op, args, params);
    }
  }
  return -1;
}

TEST(Simplify, EveryRuleFiresAndKeepsTheValue) {
  const auto& rules = rewrite_rules();
  Graph g;
  std::vector<std::string> parts;
  std::vector<std::string> labels;
  for (size_t r = 0; r < rules.size(); ++r) {
    Pattern p = parse_pattern(rules[r].lhs);
    bool fired_once = false;
    for (int D : {3, 1}) {
      for (int pc = 0; pc < 6; ++pc) {
        std::map<std::string, int> names;
        int lhs;
        try {
          lhs = instantiate(g, p, D, names, pc);
        } catch (const UserError&) {
          continue;  // parameters or dimensions that do not fit
        }
        int fired = -2;
        int rhs = rewrite_once(g, lhs, &fired);
        if (fired != static_cast<int>(r)) continue;
        fired_once = true;
        EXPECT_EQ(g[lhs].dim, g[rhs].dim) << rules[r].lhs;
        parts.push_back(g.print(lhs) + " - " + g.print(rhs));
        labels.push_back(std::string(rules[r].lhs) + " -> " + rules[r].rhs + " (D = " + std::to_string(D) + ")");
        break;
      }
    }
    EXPECT_TRUE(fired_once) << "the rule " << rules[r].lhs << " -> " << rules[r].rhs << " never fires";
  }
  // lhs - rhs on random inputs: every term (there is no j variable) must be 0.
  std::mt19937 rng(3);
  std::vector<Mat> data;
  for (int k = 0; k < 6; ++k) data.push_back(random_mat(rng, 40, k < 3 ? 3 : 1, -2, 2));
  std::vector<std::string> al = {"x=Vi(0,3)", "y=Vi(1,3)", "z=Vi(2,3)", "a=Vi(3,1)", "b=Vi(4,1)", "c=Vi(5,1)"};
  Mat out = run("Sum_Reduction(" + concat_all(parts) + ", 1)", al, data);
  int col = 0;
  for (size_t t = 0; t < parts.size(); ++t) {
    Formula f = parse_formula("Sum_Reduction(" + parts[t] + ", 1)", al);
    double worst = 0;
    for (int k = 0; k < f.shape.d; ++k, ++col)
      for (long long i = 0; i < out.rows; ++i) worst = std::max(worst, std::fabs(out.at(i, col)));
    EXPECT_LE(worst, 1e-12) << labels[t];
  }
}

// Random expressions over x, y and small constants, where the rules have much to do.
int random_expr(Graph& g, std::mt19937& rng, int depth) {
  std::uniform_int_distribution<int> pick(0, 11);
  int k = depth <= 0 ? pick(rng) % 4 : pick(rng);
  const double consts[] = {0, 1, -1, 2};
  switch (k) {
    case 0:
      return g.var(CAT_I, 0, 3);
    case 1:
      return g.var(CAT_I, 1, 3);
    case 2:
      return g.constant(consts[rng() % 4], true);
    case 3:
      return g.var(CAT_I, 2, 1);
    case 4:
      return g.call("Add", {random_expr(g, rng, depth - 1), random_expr(g, rng, depth - 1)});
    case 5:
      return g.call("Subtract", {random_expr(g, rng, depth - 1), random_expr(g, rng, depth - 1)});
    case 6:
    case 7:
      return g.call("Mult", {random_expr(g, rng, depth - 1), random_expr(g, rng, depth - 1)});
    case 8:
      return g.call("Minus", {random_expr(g, rng, depth - 1)});
    case 9:
      return g.call("Zero", {}, {3});
    case 10:
      return g.call("Sum", {random_expr(g, rng, depth - 1)});
    default:
      return g.call("Square", {random_expr(g, rng, depth - 1)});
  }
}

TEST(Simplify, RandomExpressionsKeepTheirValue) {
  std::mt19937 rng(11);
  Graph g;
  std::vector<std::string> parts;
  int smaller = 0;
  for (int t = 0; t < 60; ++t) {
    int e;
    try {
      e = random_expr(g, rng, 4);
    } catch (const UserError&) { continue; }
    int s = simplify(g, e);
    ASSERT_EQ(g[e].dim, g[s].dim);
    smaller += g.print(s).size() < g.print(e).size();
    parts.push_back(g.print(e) + " - " + g.print(s));
  }
  EXPECT_GT(smaller, 10);
  std::mt19937 rng2(5);
  std::vector<Mat> data = {random_mat(rng2, 30, 3, -2, 2), random_mat(rng2, 30, 3, -2, 2),
                           random_mat(rng2, 30, 1, -2, 2)};
  Mat out = run("Sum_Reduction(" + concat_all(parts) + ", 1)", {"x=Vi(0,3)", "y=Vi(1,3)", "z=Vi(2,1)"}, data);
  double worst = 0;
  for (double v : out.v) worst = std::max(worst, std::fabs(v));
  EXPECT_LE(worst, 1e-9);
}

TEST(Simplify, FoldsConstantsAndDropsNeutralElements) {
  Formula f = parse_formula("Sum_Reduction(Grad(x * 1 + 0 * y, x, e), 1)", {"x=Vi(2)", "y=Vj(2)", "e=Vi(2)"});
  EXPECT_EQ(f.canonical(), "Sum_Reduction(Vi(2,2),1)");  // d<x, e>/dx = e
  Graph g;
  int x = g.var(CAT_I, 0, 1);
  int two = g.constant(2, true), three = g.constant(3, true);
  EXPECT_EQ(g.print(simplified_call(g, "Mult", {two, simplified_call(g, "Mult", {three, x})})),
            "Mult(IntCst(6),Vi(0,1))");
  EXPECT_EQ(g.print(simplified_call(g, "Minus", {simplified_call(g, "Minus", {x})})), "Vi(0,1)");
  EXPECT_EQ(g.print(simplified_call(g, "Subtract", {g.constant(0, true), x})), "Minus(Vi(0,1))");
}

// ---- the shape of generated gradients ----
TEST(Autodiff, GaussianGradientIsSmallAndSharesTheForwardExp) {
  std::vector<std::string> al = {"x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "e=Vi(1)"};
  Formula f = parse_formula("Sum_Reduction(Grad(Exp(-SqDist(x, y)) * b, x, e), 1)", al);
  // -(2 * ((e * b) * Exp(-|x - y|^2)) * (x - y)): one exponential, and the x - y that SqDist(x,
  // y) computes too (the GPU kernel computes it once per pair; the sign is free in the sum)
  EXPECT_EQ(f.canonical(),
            "Sum_Reduction(Minus(Mult(Mult(IntCst(2),Mult(Mult(Vi(3,1),Vj(2,1)),Exp(Minus(SqDist(Vi(0,3),Vj(1,3)))))),"
            "Subtract(Vi(0,3),Vj(1,3)))),1)");
  std::string src = generate_cpu_source(f, CodeOptions{}, RKEOPS_INCLUDE_DIR);
  size_t body = src.find("extern \"C\" void rk_run");
  size_t n = 0;
  for (size_t at = src.find("rk_exp(", body); at != std::string::npos; at = src.find("rk_exp(", at + 1)) ++n;
  EXPECT_EQ(n, 1u);
}

TEST(Autodiff, GradientOfAnUnusedVariableIsZero) {
  Formula f = parse_formula("Sum_Reduction(Concat(Grad(Exp(x), y, e), Grad(x, z, e)), 1)",
                            {"x=Vi(1)", "y=Vj(3)", "z=Vi(1)", "e=Vi(1)"});
  EXPECT_EQ(f.canonical(), "Sum_Reduction(Concat(Zero(3),IntCst(0)),1)");
}

using rkeops_test::error_of;

TEST(Autodiff, Errors) {
  std::vector<std::string> al = {"x=Vi(2)", "y=Vj(2)", "e=Vi(1)", "v=Vi(3)"};
  auto e1 = error_of("Sum_Reduction(Grad(Exp(x), 2 * x, e), 1)", al);
  EXPECT_EQ(e1.first, "formula");
  EXPECT_NE(e1.second.find("with respect to a variable"), std::string::npos) << e1.second;
  EXPECT_NE(e1.second.find("column 28"), std::string::npos) << e1.second;
  auto e2 = error_of("Sum_Reduction(Grad(SqDist(x, y), x, v), 1)", al);
  EXPECT_EQ(e2.first, "dimension");
  EXPECT_NE(e2.second.find("gradient input"), std::string::npos) << e2.second;
  auto e3 = error_of("Sum_Reduction(Diff(SqDist(x, y), x, e), 1)", al);
  EXPECT_EQ(e3.first, "dimension");
  auto e4 = error_of("Sum_Reduction(Laplacian(x - y, x), 1)", al);
  EXPECT_EQ(e4.first, "dimension");
  auto e5 = error_of("Sum_Reduction(GradFromPos(Exp(x), 7, e), 1)", al);
  EXPECT_EQ(e5.first, "formula");
  EXPECT_NE(e5.second.find("position 7"), std::string::npos) << e5.second;
  // An operation without a derivative (if any is left): a formula error pointing at Grad.
  for (int op = 0; op < op_count(); ++op) {
    const OpInfo& info = op_info(op);
    if (info.deriv.defined()) continue;
    Graph g;
    int id;
    if (!sample_call(g, op, &id)) continue;
    std::vector<std::string> a = {"x=Vi(0," + std::to_string(g[g[id].args[0]].dim) + ")"};
    std::string call = std::string(info.name) + "(x)";
    if (info.nargs() != 1 || info.nparams() != 0) continue;
    auto e6 = error_of("Sum_Reduction(Grad(" + call + ", x, " + call + "), 1)", a);
    EXPECT_EQ(e6.first, "formula");
    EXPECT_NE(e6.second.find("has no derivative"), std::string::npos) << e6.second;
    EXPECT_NE(e6.second.find("column 15"), std::string::npos) << e6.second;
    break;
  }
}

TEST(Autodiff, LaplacianDivergenceDiffAndGradMatrix) {
  std::vector<std::string> al = {"x=Vi(3)", "y=Vj(3)", "d=Vi(3)"};
  std::mt19937 rng(9);
  std::vector<Mat> data = {random_mat(rng, 5, 3, -1, 1), random_mat(rng, 7, 3, -1, 1), random_mat(rng, 5, 3, -1, 1)};
  // F = exp(-|x - y|^2): Laplacian = (4|x - y|^2 - 2D) F; Divergence(x - y) = D;
  // Diff(F, x, d) = -2 F <x - y, d>; GradMatrix(x * y, x) = diag(y) row-major.
  Mat out =
      run("Sum_Reduction(Concat(Concat(Laplacian(Exp(-SqDist(x, y)), x), Divergence(x * Sum(y), x)), "
          "Concat(Diff(Exp(-SqDist(x, y)), x, d), GradMatrix(x * y, x))), 1)",
          al, data);
  ASSERT_EQ(out.cols, 1 + 1 + 1 + 9);
  for (long long i = 0; i < 5; ++i) {
    double lap = 0, div = 0, diff = 0, gm[9] = {0};
    for (long long j = 0; j < 7; ++j) {
      double r2 = 0, dot = 0, sy = 0;
      for (int k = 0; k < 3; ++k) {
        double t = data[0].at(i, k) - data[1].at(j, k);
        r2 += t * t;
        dot += t * data[2].at(i, k);
        sy += data[1].at(j, k);
        gm[4 * k] += data[1].at(j, k);
      }
      lap += (4 * r2 - 6) * std::exp(-r2);
      div += 3 * sy;
      diff += -2 * std::exp(-r2) * dot;
    }
    EXPECT_NEAR(out.at(i, 0), lap, 1e-12);
    EXPECT_NEAR(out.at(i, 1), div, 1e-12);
    EXPECT_NEAR(out.at(i, 2), diff, 1e-12);
    for (int k = 0; k < 9; ++k) EXPECT_NEAR(out.at(i, 3 + k), gm[k], 1e-12);
  }
}

}  // namespace

// Every reduction carries its derivative in its row, and the plan it gives parses as a formula
// over the operator's inputs, the gradient input and the extra inputs.
TEST(ReductionGradients, EveryReductionHasARuleWhosePlanParses) {
  const std::vector<std::string> al = {"x=Vi(2)", "y=Vj(2)", "w=Vj(3)"};
  for (int r = 0; r < reduction_count(); ++r) {
    const ReductionInfo& red = reduction_info(r);
    ASSERT_NE(red.grad, nullptr) << red.name;
    const bool d1 = red.check && std::string(red.check) == "d1";
    std::string F = d1 ? "-SqDist(x,y)" : "x-y";
    std::string formula = std::string(red.name) + "_Reduction(" + F +
                          (red.extra == Extra::K ? ",2" : red.extra == Extra::Weight ? ",w" : "") + ",1)";
    for (int var = 0; var < 3; ++var) {
      if (var == 2 && red.extra != Extra::Weight) continue;
      GradientInfo g = gradient_of(formula, al, var);
      if (g.zero) {  // the indices of Arg* reductions, and Zero
        EXPECT_TRUE(std::string(red.name).find("Arg") != std::string::npos || std::string(red.name) == "Zero")
            << red.name;
        continue;
      }
      EXPECT_EQ(g.aliases.size(), al.size() + 1 + g.extra.size()) << red.name;
      Formula gf = parse_formula(g.formula, g.aliases);
      EXPECT_STREQ(gf.reduction().name, "Sum") << g.formula;
      EXPECT_EQ(gf.axis, var == 0 ? 1 : 0) << g.formula;  // reduced over the index v does not carry
      for (auto& e : g.extra) {
        if (!e.forward.empty()) {
          EXPECT_NO_THROW(parse_formula(e.forward, al)) << e.forward;
        }
      }
    }
  }
}

// Rewrite rules, one per line: lhs -> rhs [if condition]. A rule applies only when its result
// has the dimension of the node it replaces (so "x + 0 -> x" never turns a vector into a
// scalar). Rules are tried in order on each node as it is built (its arguments are already
// simplified); the result is built through the rules again. Every rule is checked by a
// randomized lhs == rhs test (tests/engine/test_autodiff.cpp).
//
// IEEE caveat: x * 0 -> 0 and x - x -> 0 drop NaN/Inf that x might carry, as every
// algebraic simplifier (and KeOps's) does.
#include "simplify.h"

#include <cmath>

#include "errors.h"
#include "formula.h"
#include "ops.h"

namespace rkeops {
namespace {

using Bindings = std::map<std::string, int>;

bool is_const(const Graph& g, int id) { return g[id].kind == NodeKind::Const; }
int dim(const Graph& g, const Bindings& m, const char* name) { return g[m.at(name)].dim; }

// ---- constant folding: an arithmetic operation on constants is a constant ----
struct Fold {
  const char* op;
  double (*f)(double a, double b);  // unary operations ignore b
  bool keeps_int;                   // integer operands give an integer
};
const Fold kFolds[] = {
    {"Add", [](double a, double b) { return a + b; }, true},
    {"Subtract", [](double a, double b) { return a - b; }, true},
    {"Mult", [](double a, double b) { return a * b; }, true},
    {"Divide", [](double a, double b) { return a / b; }, false},  // not by 0 (see below)
    {"Minus", [](double a, double) { return -a; }, true},
    {"Square", [](double a, double) { return a * a; }, true},
};

// ---- the rules ----
bool scalar_x(const Graph& g, const Bindings& m) { return dim(g, m, "x") == 1; }
bool not_const_x(const Graph& g, const Bindings& m) { return !is_const(g, m.at("x")); }

const std::vector<Rule> kRules = {
    // lhs                       rhs                   condition
    // neutral and absorbing elements
    {"x + 0", "x"},
    {"0 + x", "x"},
    {"x - 0", "x"},
    {"0 - x", "-x"},
    {"x - x", "0"},
    {"x * 1", "x"},
    {"1 * x", "x"},
    {"x * 0", "0"},
    {"0 * x", "0"},
    {"x / 1", "x"},
    {"0 / x", "0"},
    // signs move outwards, where they cancel or turn into subtractions (not into a product's
    // difference: -a * (x - y) stays -(a * (x - y)), whose x - y is the one a SqDist(x, y)
    // computes too, and whose sign the accumulation takes for free)
    {"-(-x)", "x"},
    {"-(x - y)", "y - x"},
    {"x + (-y)", "x - y"},
    {"(-x) + y", "y - x"},
    {"x - (-y)", "x + y"},
    {"(-x) * (-y)", "x * y"},
    {"(-x) * y", "-(x * y)"},
    {"x * (-y)", "-(x * y)"},
    {"(-x) / y", "-(x / y)"},
    {"-1 * x", "-x"},
    // constants first, and gathered
    {"x * k", "k * x", not_const_x},
    {"k1 * (k2 * x)", "(k1 * k2) * x"},
    {"x * (k * y)", "k * (x * y)", not_const_x},
    {"x + x", "2 * x"},
    // powers
    {"Pow(x, 1)", "x"},
    {"Pow(x, 0)", "1", scalar_x},
    {"Pow(x, 2)", "Square(x)"},
    {"Square(-x)", "Square(x)"},
    // reshaping a scalar
    {"Sum(x)", "x", scalar_x},
    {"SumT(x, 1)", "x"},
    // linear operations of zero are zero
    {"Minus(0)", "0"},
    {"Sum(0)", "0"},
    {"SumT(0, _)", "0"},
    {"Elem(0, _)", "0"},
    {"ElemT(0, _, _)", "0"},
    {"Extract(0, _, _)", "0"},
    {"ExtractT(0, _, _)", "0"},
    {"Concat(0, 0)", "0"},
    {"(0 | x)", "0"},
    {"(x | 0)", "0"},
    {"MatVecMult(0, x)", "0"},
    {"MatVecMult(x, 0)", "0"},
    {"VecMatMult(0, x)", "0"},
    {"VecMatMult(x, 0)", "0"},
    {"TensorProd(0, x)", "0"},
    {"TensorProd(x, 0)", "0"},
    {"IfElse(x, 0, 0)", "0"},
};

// The parsed left-hand sides, indexed by the operation at their top.
struct Compiled {
  std::vector<Pattern> lhs;
  std::vector<std::vector<int>> by_op;  // op -> rule indices, in order
};
const Compiled& compiled() {
  static const Compiled c = [] {
    Compiled r;
    r.by_op.resize(op_count());
    for (size_t k = 0; k < kRules.size(); ++k) {
      r.lhs.push_back(parse_pattern(kRules[k].lhs));
      RK_ASSERT(r.lhs.back().kind == Pattern::Call,
                std::string("a rule must start with an operation: ") + kRules[k].lhs);
      r.by_op[r.lhs.back().op].push_back(static_cast<int>(k));
    }
    return r;
  }();
  return c;
}

bool is_zero(const Graph& g, int id) {
  const Node& n = g[id];
  if (n.kind == NodeKind::Const) return n.value == 0;
  return n.kind == NodeKind::Call && std::string(op_info(n.op).name) == "Zero";
}

bool match(const Graph& g, const Pattern& p, int id, Bindings& m) {
  const Node& n = g[id];
  switch (p.kind) {
    case Pattern::Any:
    case Pattern::AnyConst: {
      if (p.kind == Pattern::AnyConst && n.kind != NodeKind::Const) return false;
      auto it = m.find(p.name);
      if (it != m.end()) return it->second == id;  // hash-consing: equal means same id
      m[p.name] = id;
      return true;
    }
    case Pattern::Number:
      return p.value == 0 ? is_zero(g, id) : (n.kind == NodeKind::Const && n.value == p.value);
    case Pattern::Call:
      if (n.kind != NodeKind::Call || n.op != p.op) return false;
      for (size_t k = 0; k < p.params.size(); ++k)
        if (p.params[k] != kAnyParam && p.params[k] != n.params[k]) return false;
      for (size_t k = 0; k < p.args.size(); ++k)
        if (!match(g, p.args[k], n.args[k], m)) return false;
      return true;
  }
  return false;
}

// The zero of dimension d: IntCst(0) or Zero(d).
int zero(Graph& g, int d) { return d == 1 ? g.constant(0, true) : g.call("Zero", {}, {d}); }

int fold(Graph& g, int id) {
  const Node& n = g[id];
  for (int a : n.args)
    if (!is_const(g, a)) return -1;
  std::string name = op_info(n.op).name;
  for (const Fold& f : kFolds) {
    if (name != f.op) continue;
    double a = g[n.args[0]].value, b = n.args.size() > 1 ? g[n.args[1]].value : 0;
    if (name == "Divide" && b == 0) return -1;
    bool ints = f.keeps_int && g[n.args[0]].is_int && (n.args.size() < 2 || g[n.args[1]].is_int);
    double v = f.f(a, b);
    return g.constant(v, ints && std::fabs(v) < 1e15);
  }
  return -1;
}

thread_local int depth = 0;

}  // namespace

const std::vector<Rule>& rewrite_rules() { return kRules; }

int rewrite_once(Graph& g, int id, int* fired) {
  if (fired) *fired = -2;
  if (g[id].kind != NodeKind::Call) return id;
  int c = fold(g, id);
  if (c >= 0) {
    if (fired) *fired = -1;
    return c;
  }
  const Compiled& cr = compiled();
  for (int k : cr.by_op[g[id].op]) {
    Bindings m;
    if (!match(g, cr.lhs[k], id, m)) continue;
    if (kRules[k].cond && !kRules[k].cond(g, m)) continue;
    int d = g[id].dim;
    std::vector<int> params = g[id].params;  // (a copy: building nodes moves the graph's storage)
    int r = std::string(kRules[k].rhs) == "0" ? zero(g, d) : parse_expression(g, kRules[k].rhs, m, params);
    if (g[r].dim != d) continue;
    if (fired) *fired = k;
    return r;
  }
  return id;
}

int simplified_call(Graph& g, int op, std::vector<int> args, std::vector<int> params) {
  struct Guard {
    Guard() { ++depth; }
    ~Guard() { --depth; }
  } guard;
  RK_ASSERT(depth < 500, "the rewrite rules do not terminate");
  int id = g.call(op, std::move(args), std::move(params));
  return rewrite_once(g, id);
}

int simplified_call(Graph& g, const char* op, std::vector<int> args, std::vector<int> params) {
  int k = find_op(op);
  RK_ASSERT(k >= 0, std::string("unknown operation ") + op);
  return simplified_call(g, k, std::move(args), std::move(params));
}

int simplify(Graph& g, int root) {
  // Children have smaller ids than their parents: one pass in id order over what root uses.
  std::vector<char> used(root + 1, 0);
  used[root] = 1;
  for (int id = root; id >= 0; --id)
    if (used[id])
      for (int a : g[id].args) used[a] = 1;
  std::map<int, int> to;
  for (int id = 0; id <= root; ++id) {
    if (!used[id]) continue;
    const Node& n = g[id];
    if (n.kind != NodeKind::Call) {
      to[id] = id;
      continue;
    }
    std::vector<int> args;
    for (int a : n.args) args.push_back(to.at(a));
    std::vector<int> params = n.params;
    to[id] = simplified_call(g, n.op, args, params);
  }
  return to.at(root);
}

}  // namespace rkeops

// Reverse-mode differentiation. One rule per operation, written in terms of the graph
// builder: given the adjoint `go` of the output (out = the node itself), the adjoint of
// argument `k`, or -1 for zero (rules skip zero contributions, which keeps gradients small).
#include "autodiff.h"

#include <map>
#include <string>
#include <vector>

#include "errors.h"
#include "ops.h"

namespace rkeops {
namespace {

// Small builder: folds the trivial cases (x*1, x*0, x+0) as it goes.
struct B {
  Graph& g;
  int c(double v) { return g.constant(v, v == static_cast<int>(v)); }
  bool is_const(int a, double v) const { return g[a].kind == NodeKind::Const && g[a].value == v; }
  int op(const char* name, std::vector<int> a, std::vector<int> p = {}) { return g.call(name, std::move(a), std::move(p)); }
  int add(int a, int b) { return a < 0 ? b : b < 0 ? a : op("Add", {a, b}); }
  int sub(int a, int b) { return b < 0 ? a : a < 0 ? neg(b) : op("Subtract", {a, b}); }
  int neg(int a) {
    if (a < 0) return -1;
    if (g[a].kind == NodeKind::Const) return c(-g[a].value);
    if (g[a].kind == NodeKind::Call && std::string(op_info(g[a].op).name) == "Minus") return g[a].args[0];
    return op("Minus", {a});
  }
  int mul(int a, int b) {
    if (a < 0 || b < 0 || is_const(a, 0) || is_const(b, 0)) return -1;
    if (is_const(a, 1)) return b;
    if (is_const(b, 1)) return a;
    return op("Mult", {a, b});
  }
  int div(int a, int b) { return a < 0 ? -1 : op("Divide", {a, b}); }
  int dim(int a) const { return g[a].dim; }
};

// d<out, go>/d(arg k) for node `id`.
using Rule = int (*)(B& b, int id, int k, int go);

const Node& N(B& b, int id) { return b.g[id]; }
int A(B& b, int id, int k) { return b.g[id].args[k]; }

// Rules by operation name. Math in the comments: out = f(a, b, ...), g = adjoint of out.
const std::map<std::string, Rule>& rules() {
  static const std::map<std::string, Rule> r = {
    // a + b, a - b, -a
    {"Add", [](B&, int, int, int go) { return go; }},
    {"Subtract", [](B& b, int, int k, int go) { return k == 0 ? go : b.neg(go); }},
    {"Minus", [](B& b, int, int, int go) { return b.neg(go); }},
    // d(ab) = b da + a db
    {"Mult", [](B& b, int id, int k, int go) { return b.mul(go, A(b, id, 1 - k)); }},
    // d(a/b) = da/b - (a/b) db/b
    {"Divide", [](B& b, int id, int k, int go) {
       return k == 0 ? b.div(go, A(b, id, 1)) : b.neg(b.div(b.mul(go, id), A(b, id, 1))); }},
    // exp' = exp, log' = 1/a
    {"Exp", [](B& b, int id, int, int go) { return b.mul(go, id); }},
    {"Log", [](B& b, int id, int, int go) { return b.div(go, A(b, id, 0)); }},
    // sqrt' = 1/(2 sqrt a), with Rsqrt(0) = 0 as KeOps
    {"Sqrt", [](B& b, int id, int, int go) { return b.mul(go, b.mul(b.c(0.5), b.op("Rsqrt", {A(b, id, 0)}))); }},
    // (a^-1/2)' = -1/2 a^-3/2 = -out^3 / 2
    {"Rsqrt", [](B& b, int id, int, int go) { return b.mul(go, b.mul(b.c(-0.5), b.op("Pow", {id}, {3}))); }},
    // (1/a)' = -out^2
    {"Inv", [](B& b, int id, int, int go) { return b.neg(b.mul(go, b.op("Square", {id}))); }},
    {"Square", [](B& b, int id, int, int go) { return b.mul(go, b.mul(b.c(2), A(b, id, 0))); }},
    {"Abs", [](B& b, int id, int, int go) { return b.mul(go, b.op("Sign", {A(b, id, 0)})); }},
    {"ReLU", [](B& b, int id, int, int go) { return b.mul(go, b.op("Step", {A(b, id, 0)})); }},
    {"Sin", [](B& b, int id, int, int go) { return b.mul(go, b.op("Cos", {A(b, id, 0)})); }},
    {"Cos", [](B& b, int id, int, int go) { return b.neg(b.mul(go, b.op("Sin", {A(b, id, 0)}))); }},
    // asin' = 1/sqrt(1 - a^2), acos' = -asin', atan' = 1/(1 + a^2)
    {"Asin", [](B& b, int id, int, int go) {
       return b.mul(go, b.op("Rsqrt", {b.sub(b.c(1), b.op("Square", {A(b, id, 0)}))})); }},
    {"Acos", [](B& b, int id, int, int go) {
       return b.neg(b.mul(go, b.op("Rsqrt", {b.sub(b.c(1), b.op("Square", {A(b, id, 0)}))}))); }},
    {"Atan", [](B& b, int id, int, int go) {
       return b.div(go, b.add(b.c(1), b.op("Square", {A(b, id, 0)}))); }},
    // atan2(y, x): dy = x/(x^2+y^2), dx = -y/(x^2+y^2)
    {"Atan2", [](B& b, int id, int k, int go) {
       int y = A(b, id, 0), x = A(b, id, 1);
       int r = b.add(b.op("Square", {x}), b.op("Square", {y}));
       return k == 0 ? b.div(b.mul(go, x), r) : b.neg(b.div(b.mul(go, y), r)); }},
    // (a log a)' = log a + 1
    {"XLogX", [](B& b, int id, int, int go) { return b.mul(go, b.add(b.op("Log", {A(b, id, 0)}), b.c(1))); }},
    // (sin a / a)' = (cos a - sin a / a) / a
    {"SinXDivX", [](B& b, int id, int, int go) {
       int a = A(b, id, 0);
       return b.mul(go, b.div(b.sub(b.op("Cos", {a}), id), a)); }},
    // (a^n)' = n a^(n-1)
    {"Pow", [](B& b, int id, int, int go) {
       int n = N(b, id).params[0];
       int d = n - 1 == 0 ? b.c(1) : n - 1 == 1 ? A(b, id, 0) : b.op("Pow", {A(b, id, 0)}, {n - 1});
       return b.mul(go, b.mul(b.c(n), d)); }},
    // a^e: da = e a^(e-1) = e out / a, de = out log a
    {"Powf", [](B& b, int id, int k, int go) {
       return k == 0 ? b.mul(go, b.div(b.mul(A(b, id, 1), id), A(b, id, 0)))
                     : b.mul(go, b.mul(id, b.op("Log", {A(b, id, 0)}))); }},
    // clamp(x, lo, hi): 1 on [lo, hi] for x, below lo for lo, above hi for hi
    {"Clamp", [](B& b, int id, int k, int go) {
       int x = A(b, id, 0), lo = A(b, id, 1), hi = A(b, id, 2);
       int in_lo = b.op("Step", {b.sub(x, lo)}), in_hi = b.op("Step", {b.sub(hi, x)});
       if (k == 0) return b.mul(go, b.mul(in_lo, in_hi));
       return b.mul(go, b.sub(b.c(1), k == 1 ? in_lo : in_hi)); }},
    {"ClampInt", [](B& b, int id, int, int go) {
       int x = A(b, id, 0);
       int lo = b.c(N(b, id).params[0]), hi = b.c(N(b, id).params[1]);
       return b.mul(go, b.mul(b.op("Step", {b.sub(x, lo)}), b.op("Step", {b.sub(hi, x)}))); }},
    // IfElse(f, a, b): a where f >= 0
    {"IfElse", [](B& b, int id, int k, int go) {
       if (k == 0) return -1;
       int s = b.op("Step", {A(b, id, 0)});
       return b.mul(go, k == 1 ? s : b.sub(b.c(1), s)); }},
    // x - n floor((x - d)/n): dx = 1, dn = -floor((x - d)/n), dd = 0 almost everywhere
    {"Mod", [](B& b, int id, int k, int go) {
       if (k == 0) return go;
       if (k == 2) return -1;
       int x = A(b, id, 0), n = A(b, id, 1), d = A(b, id, 2);
       return b.neg(b.mul(go, b.op("Floor", {b.div(b.sub(x, d), n)}))); }},
    // piecewise constant: zero almost everywhere
    {"Sign", [](B&, int, int, int) { return -1; }},
    {"Step", [](B&, int, int, int) { return -1; }},
    {"Floor", [](B&, int, int, int) { return -1; }},
    {"Round", [](B&, int, int, int) { return -1; }},
    {"Equal", [](B&, int, int, int) { return -1; }},
    {"NotEqual", [](B&, int, int, int) { return -1; }},
    {"LessThan", [](B&, int, int, int) { return -1; }},
    {"LessOrEqual", [](B&, int, int, int) { return -1; }},
    {"ArgMin", [](B&, int, int, int) { return -1; }},
    {"ArgMax", [](B&, int, int, int) { return -1; }},
    {"OneHot", [](B&, int, int, int) { return -1; }},
    // Sum(a) -> SumT(g, dim a); SumT(a, d) -> Sum(g)
    {"Sum", [](B& b, int id, int, int go) { return b.op("SumT", {go}, {b.dim(A(b, id, 0))}); }},
    {"SumT", [](B& b, int, int, int go) { return b.op("Sum", {go}); }},
    // min/max of the entries: g goes to the arg-min/max entry
    {"Min", [](B& b, int id, int, int go) {
       int a = A(b, id, 0);
       return b.mul(go, b.op("OneHot", {b.op("ArgMin", {a})}, {b.dim(a)})); }},
    {"Max", [](B& b, int id, int, int go) {
       int a = A(b, id, 0);
       return b.mul(go, b.op("OneHot", {b.op("ArgMax", {a})}, {b.dim(a)})); }},
    // |a|^2 -> 2 g a; |a| -> g a/|a|
    {"SqNorm2", [](B& b, int id, int, int go) { return b.mul(b.mul(b.c(2), go), A(b, id, 0)); }},
    {"Norm2", [](B& b, int id, int, int go) { return b.mul(go, b.op("Normalize", {A(b, id, 0)})); }},
    // a r with r = |a|^-1: r (g - out <out, g>)
    {"Normalize", [](B& b, int id, int, int go) {
       int r = b.op("Rsqrt", {b.op("SqNorm2", {A(b, id, 0)})});
       return b.mul(r, b.sub(go, b.mul(id, b.op("Scalprod", {id, go})))); }},
    // |a - c|^2: 2 g (a - c), and its opposite for c
    {"SqDist", [](B& b, int id, int k, int go) {
       int d = b.mul(b.mul(b.c(2), go), b.sub(A(b, id, 0), A(b, id, 1)));
       return k == 0 ? d : b.neg(d); }},
    {"Scalprod", [](B& b, int id, int k, int go) { return b.mul(go, A(b, id, 1 - k)); }},
    // <x, S x> for S of dim 1 (s|x|^2), D (sum s_k x_k^2) or D^2 (x^T S x)
    {"WeightedSqNorm", nullptr}, {"SqNormIso", nullptr}, {"SqNormDiag", nullptr}, {"SymSqNorm", nullptr},
    {"WeightedSqDist", nullptr},
    // Elem / ElemT and Extract / ExtractT are each other's adjoint
    {"Elem", [](B& b, int id, int, int go) { return b.op("ElemT", {go}, {b.dim(A(b, id, 0)), N(b, id).params[0]}); }},
    {"ElemT", [](B& b, int id, int, int go) { return b.op("Elem", {go}, {N(b, id).params[1]}); }},
    {"Extract", [](B& b, int id, int, int go) { return b.op("ExtractT", {go}, {N(b, id).params[0], b.dim(A(b, id, 0))}); }},
    {"ExtractT", [](B& b, int id, int, int go) { return b.op("Extract", {go}, {N(b, id).params[0], b.dim(A(b, id, 0))}); }},
    {"Concat", [](B& b, int id, int k, int go) {
       int da = b.dim(A(b, id, 0)), db = b.dim(A(b, id, 1));
       return k == 0 ? b.op("Extract", {go}, {0, da}) : b.op("Extract", {go}, {da, db}); }},
    // out = A v (A: n x m row-major): dA = g v^T, dv = g^T A; and the transposed forms
    {"MatVecMult", [](B& b, int id, int k, int go) {
       return k == 0 ? b.op("TensorProd", {go, A(b, id, 1)}) : b.op("VecMatMult", {go, A(b, id, 0)}); }},
    {"VecMatMult", [](B& b, int id, int k, int go) {
       return k == 0 ? b.op("MatVecMult", {A(b, id, 1), go}) : b.op("TensorProd", {A(b, id, 0), go}); }},
    {"TensorProd", [](B& b, int id, int k, int go) {
       return k == 0 ? b.op("MatVecMult", {go, A(b, id, 1)}) : b.op("VecMatMult", {A(b, id, 0), go}); }},
  };
  return r;
}

// <v, S v> with weight s (dim 1, D or D*D) at argument ks and values v (dim D): adjoints.
int weighted_rule(B& b, int s, int v, bool want_s, int go) {
  int D = b.dim(v), S = b.dim(s);
  if (S == 1 || S == D) {   // s|v|^2 or sum s_k v_k^2
    if (want_s) return S == 1 ? b.mul(go, b.op("SqNorm2", {v})) : b.mul(go, b.op("Square", {v}));
    return b.mul(b.mul(b.c(2), go), b.mul(s, v));
  }
  if (want_s) return b.mul(go, b.op("TensorProd", {v, v}));          // v v^T
  return b.mul(go, b.add(b.op("MatVecMult", {s, v}), b.op("VecMatMult", {v, s})));   // (S + S^T) v
}

// Adjoint of argument k of node id (before broadcasting is undone).
int arg_adjoint(B& b, int id, int k, int go) {
  const Node& n = b.g[id];
  const std::string name = op_info(n.op).name;
  if (name == "WeightedSqNorm" || name == "SqNormIso" || name == "SqNormDiag" || name == "SymSqNorm")
    return weighted_rule(b, n.args[0], n.args[1], k == 0, go);
  if (name == "WeightedSqDist") {   // = WeightedSqNorm(s, x - y)
    int v = b.sub(n.args[1], n.args[2]);
    int d = weighted_rule(b, n.args[0], v, k == 0, go);
    return k == 2 ? b.neg(d) : d;
  }
  auto it = rules().find(name);
  if (it == rules().end() || !it->second)
    throw UserError("formula", "the operation " + name + " has no derivative in rkeops");
  return it->second(b, id, k, go);
}

}  // namespace

int gradient(Graph& g, int f, int v, int gin) {
  RK_ASSERT(g[v].kind == NodeKind::Var, "gradient with respect to a non-variable");
  if (g[gin].dim != g[f].dim && g[gin].dim != 1)
    throw UserError("dimension", "the gradient input of Grad must have the dimension of the formula (" +
                                     std::to_string(g[f].dim) + "), got " + std::to_string(g[gin].dim));
  B b{g};
  std::map<int, int> adj;   // node -> adjoint node; children have smaller ids than parents
  adj[f] = gin;
  int result = -1;
  for (int id = f; id >= 0; --id) {
    auto it = adj.find(id);
    if (it == adj.end() || it->second < 0) continue;
    int go = it->second;
    const Node& n = g[id];
    if (n.kind == NodeKind::Var) {
      if (n.cat == g[v].cat && n.pos == g[v].pos) result = b.add(result, go);
      continue;
    }
    if (n.kind != NodeKind::Call) continue;
    std::vector<int> args = n.args;   // (n may move as nodes are added)
    for (size_t k = 0; k < args.size(); ++k) {
      int a = args[k];
      int c = arg_adjoint(b, id, static_cast<int>(k), go);
      if (c < 0) continue;
      if (g[c].dim != g[a].dim) {   // a broadcast argument of dim 1 receives the sum
        RK_ASSERT(g[a].dim == 1, "adjoint of the wrong dimension");
        c = b.op("Sum", {c});
      }
      auto prev = adj.find(a);
      adj[a] = prev == adj.end() ? c : b.add(prev->second, c);
    }
  }
  if (result < 0) return g.call("Zero", {}, {g[v].dim});
  if (g[result].dim != g[v].dim) result = g.call("SumT", {result}, {g[v].dim});
  return result;
}

namespace {
int next_dummy = 0;
// A placeholder variable that the second differentiation removes again (the first gradient
// is linear in it).
int dummy(Graph& g, int dim) { return g.var(CAT_P, 100000 + (next_dummy++ % 1000), dim); }
}  // namespace

int directional(Graph& g, int f, int v, int dv) {
  int u = dummy(g, g[f].dim);
  int gu = gradient(g, f, v, u);            // <dF/dv, u>, linear in u
  return gradient(g, gu, u, dv);            // d/du <dF/dv^T u, dv> = dF/dv dv
}

int laplacian(Graph& g, int f, int v) {
  if (g[f].dim != 1) throw UserError("dimension", "Laplacian needs a formula of dimension 1");
  int one = g.constant(1, true);
  int grad = gradient(g, f, v, one);
  int s = -1;
  for (int k = 0; k < g[v].dim; ++k) {
    int second = gradient(g, g.call("Elem", {grad}, {k}), v, one);
    int term = g.call("Elem", {second}, {k});
    s = s < 0 ? term : g.call("Add", {s, term});
  }
  return s;
}

int divergence(Graph& g, int f, int v) {
  if (g[f].dim != g[v].dim)
    throw UserError("dimension", "Divergence needs a formula of the dimension of the variable");
  int one = g.constant(1, true);
  int s = -1;
  for (int k = 0; k < g[v].dim; ++k) {
    int term = g.call("Elem", {gradient(g, g.call("Elem", {f}, {k}), v, one)}, {k});
    s = s < 0 ? term : g.call("Add", {s, term});
  }
  return s;
}

}  // namespace rkeops

// Reverse-mode differentiation. The rules themselves are data: the `deriv` column of the
// operation table (ops.cpp), in the formula language. This file only walks the DAG.
#include "autodiff.h"

#include <map>
#include <string>
#include <vector>

#include "errors.h"
#include "formula.h"
#include "ops.h"
#include "simplify.h"

namespace rkeops {
namespace {

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// The per-argument parts of a derivative template ("g / b; -g * out / b").
std::vector<std::string> split_template(const char* tpl) {
  std::vector<std::string> parts;
  std::string s = tpl, cur;
  if (trim(s).empty()) return parts;
  for (char c : s) {
    if (c == ';') {
      parts.push_back(trim(cur));
      cur.clear();
    } else
      cur += c;
  }
  parts.push_back(trim(cur));
  return parts;
}

// Makes the adjoint `c` fit an argument of dimension d: a broadcast scalar gets the sum.
int fit(Graph& g, int c, int d) {
  if (g[c].dim == d) return c;
  if (d == 1) return simplified_call(g, "Sum", {c});
  RK_ASSERT(g[c].dim == 1,
            "an adjoint of dimension " + std::to_string(g[c].dim) + " for dimension " + std::to_string(d));
  return simplified_call(g, "SumT", {c}, {d});
}

int add(Graph& g, int a, int b) { return a < 0 ? b : b < 0 ? a : simplified_call(g, "Add", {a, b}); }

// A variable at a position no node of `g` uses (a placeholder that a second
// differentiation removes again).
int fresh_var(Graph& g, int dim) {
  int pos = 0;
  for (int id = 0; id < g.size(); ++id)
    if (g[id].kind == NodeKind::Var && g[id].pos >= pos) pos = g[id].pos + 1;
  return g.var(CAT_P, pos, dim);
}

}  // namespace

int arg_adjoint(Graph& g, int id, int k, int go) {
  const Node n = g[id];  // a copy: building nodes moves the graph's storage
  const OpInfo& info = op_info(n.op);
  if (!info.deriv.defined())
    throw UserError("formula",
                    std::string("the operation ") + info.name +
                        " has no derivative in rkeops: it cannot be differentiated (Grad, Diff, keops_grad)");
  if (info.deriv.build) {
    int c = info.deriv.build(g, id, k, go);
    return c < 0 ? -1 : fit(g, c, g[n.args[k]].dim);
  }
  std::vector<int> dims;
  for (int a : n.args) dims.push_back(g[a].dim);
  std::vector<std::string> parts = split_template(info.deriv.get(dims));
  RK_ASSERT(parts.size() == n.args.size(),
            std::string("the derivative of ") + info.name + " needs one expression per argument");
  if (parts[k] == "0") return -1;
  static const char* names[] = {"a", "b", "c"};
  std::map<std::string, int> bound = {{"g", go}, {"out", id}};
  for (size_t i = 0; i < n.args.size() && i < 3; ++i) bound[names[i]] = n.args[i];
  int c = parse_expression(g, parts[k], bound, n.params);
  return fit(g, c, g[n.args[k]].dim);
}

int gradient(Graph& g, int f, int v, int gin) {
  RK_ASSERT(g[v].kind == NodeKind::Var, "gradient with respect to a non-variable");
  const int fdim = g[f].dim, vdim = g[v].dim, vcat = g[v].cat, vpos = g[v].pos;
  if (g[gin].dim != fdim && g[gin].dim != 1)
    throw UserError("dimension", "the gradient input of Grad must have the dimension of the formula (" +
                                     std::to_string(fdim) + "), got " + std::to_string(g[gin].dim));
  // Adjoints, visited from F down: children have smaller ids than their parents, so every
  // node's adjoint is complete when it is reached.
  // Which nodes depend on v: adjoints flow only into those (the others' would be dropped, and
  // some operations have no derivative in some arguments, e.g. the knots of a BSpline).
  const std::vector<char> dep = depends_on(g, vcat, vpos);
  std::map<int, int> adj;
  adj[f] = fit(g, gin, fdim);
  int result = -1;
  for (int id = f; id >= 0; --id) {
    auto it = adj.find(id);
    if (it == adj.end()) continue;
    int go = it->second;
    const Node& n = g[id];
    if (n.kind == NodeKind::Var) {
      if (n.cat == vcat && n.pos == vpos) result = add(g, result, go);
      continue;
    }
    if (n.kind != NodeKind::Call) continue;
    std::vector<int> args = n.args;  // (n moves as nodes are added)
    for (size_t k = 0; k < args.size(); ++k) {
      if (!dep[args[k]]) continue;
      int c = arg_adjoint(g, id, static_cast<int>(k), go);
      if (c < 0) continue;
      auto prev = adj.find(args[k]);
      adj[args[k]] = prev == adj.end() ? c : add(g, prev->second, c);
    }
  }
  if (result < 0) return vdim == 1 ? g.constant(0, true) : g.call("Zero", {}, {vdim});
  return fit(g, result, vdim);
}

int directional(Graph& g, int f, int v, int dv) {
  if (g[dv].dim != g[v].dim)
    throw UserError("dimension", "the direction of Diff must have the dimension of the variable (" +
                                     std::to_string(g[v].dim) + "), got " + std::to_string(g[dv].dim));
  // <dF/dv^T u, dv> is linear in the placeholder u; its gradient in u is dF/dv dv.
  int u = fresh_var(g, g[f].dim);
  return gradient(g, gradient(g, f, v, u), u, dv);
}

int laplacian(Graph& g, int f, int v) {
  if (g[f].dim != 1) throw UserError("dimension", "Laplacian needs a formula of dimension 1");
  int one = g.constant(1, true);
  int grad = gradient(g, f, v, one), s = -1;
  for (int k = 0; k < g[v].dim; ++k) {  // sum_k d/dv_k (dF/dv_k)
    int dk = g[v].dim == 1 ? grad : simplified_call(g, "Elem", {grad}, {k});
    int second = gradient(g, dk, v, one);
    s = add(g, s, g[v].dim == 1 ? second : simplified_call(g, "Elem", {second}, {k}));
  }
  return s;
}

int divergence(Graph& g, int f, int v) {
  if (g[f].dim != g[v].dim) throw UserError("dimension", "Divergence needs a formula of the dimension of the variable");
  int one = g.constant(1, true), s = -1;
  for (int k = 0; k < g[v].dim; ++k) {  // sum_k dF_k/dv_k
    int fk = g[f].dim == 1 ? f : simplified_call(g, "Elem", {f}, {k});
    int d = gradient(g, fk, v, one);
    s = add(g, s, g[v].dim == 1 ? d : simplified_call(g, "Elem", {d}, {k}));
  }
  return s;
}

int grad_matrix(Graph& g, int f, int v) {
  int one = g.constant(1, true), m = -1;
  const int D = g[f].dim;
  for (int k = 0; k < D; ++k) {  // row k: the gradient of F_k
    int row = gradient(g, f, v, D == 1 ? one : simplified_call(g, "ElemT", {one}, {D, k}));
    m = m < 0 ? row : simplified_call(g, "Concat", {m, row});
  }
  return m;
}

}  // namespace rkeops

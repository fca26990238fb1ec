// The operation table. One row per operation: name, signature ('f' formula, 'i' integer),
// dimension rule, and either an element-wise C++ template or a vector emitter.
// Helper functions named rk_* in templates live in inst/include/rkeops/prelude_*.h.
#include "ops.h"

#include <cstring>
#include <string>

#include "codegen.h"
#include "errors.h"

namespace rkeops {
namespace {

using Dims = std::vector<int>;
using Params = std::vector<int>;

// ---- dimension rules ----
int same(const Dims& d, const Params&, std::string* why) {  // equal dims, or dim 1 broadcasts
  int m = 1;
  for (int x : d) m = x > m ? x : m;
  for (int x : d)
    if (x != 1 && x != m) { *why = "operands must have the same dimension or dimension 1"; return 0; }
  return m;
}
int first(const Dims& d, const Params&, std::string*) { return d[0]; }
int one(const Dims&, const Params&, std::string*) { return 1; }
int equal2_to1(const Dims& d, const Params&, std::string* why) {  // two equal dims -> scalar
  if (d[0] != d[1]) { *why = "both operands must have the same dimension"; return 0; }
  return 1;
}
int bcast_to1(const Dims& d, const Params& p, std::string* why) { return same(d, p, why) ? 1 : 0; }
int scalar_arg(const Dims& d, const Params&, std::string* why, int i) {
  if (d[i] != 1) { *why = "argument " + std::to_string(i + 1) + " must have dimension 1"; return 0; }
  return 1;
}
int param0_dim(const Dims& d, const Params& p, std::string* why) {  // output dim = params[0] > 0
  if (p[0] <= 0) { *why = "the dimension must be a positive integer"; return 0; }
  if (!d.empty() && d[0] != 1) { *why = "the first argument must have dimension 1"; return 0; }
  return p[0];
}
// Weight s of dim 1 (isotropic), D (diagonal) or D*D (full symmetric matrix) for x of dim D.
int weight_ok(int s, int D) { return s == 1 || s == D || s == D * D; }
int wsqnorm(const Dims& d, const Params&, std::string* why) {
  if (!weight_ok(d[0], d[1])) { *why = "the weight must have dimension 1, D or D*D where D is the dimension of x"; return 0; }
  return 1;
}
int wsqdist(const Dims& d, const Params& p, std::string* why) {
  if (d[1] != d[2]) { *why = "x and y must have the same dimension"; return 0; }
  return wsqnorm({d[0], d[1]}, p, why);
}

// ---- vector emitters ----
void emit_sum(Emitter& e, int) {
  std::vector<std::string> t;
  for (int k = 0; k < e.adim(0); ++k) t.push_back(e.a(0, k));
  e.line(e.o(0) + " = " + sum_terms(e, t) + ";");
}
void emit_sumt(Emitter& e, int) {
  for (int k = 0; k < e.node().dim; ++k) e.line(e.o(k) + " = " + e.a(0, 0) + ";");
}
// Min/Max/ArgMin/ArgMax over the entries of one vector (first index wins ties; NaN is skipped
// unless it comes first, as a plain comparison loop does).
void emit_vec_extreme(Emitter& e, const char* cmp, bool arg) {
  std::string best = e.tmp(), idx = e.tmp();
  e.line("T " + best + " = " + e.a(0, 0) + "; T " + idx + " = T(0);");
  for (int k = 1; k < e.adim(0); ++k)
    e.line("if (" + e.a(0, k) + " " + cmp + " " + best + ") { " + best + " = " + e.a(0, k) +
           "; " + idx + " = T(" + std::to_string(k) + "); }");
  e.line(e.o(0) + " = " + (arg ? idx : best) + ";");
}
void emit_vmin(Emitter& e, int) { emit_vec_extreme(e, "<", false); }
void emit_vmax(Emitter& e, int) { emit_vec_extreme(e, ">", false); }
void emit_vargmin(Emitter& e, int) { emit_vec_extreme(e, "<", true); }
void emit_vargmax(Emitter& e, int) { emit_vec_extreme(e, ">", true); }
std::string sqnorm_expr(Emitter& e, int i) {
  std::vector<std::string> t;
  for (int k = 0; k < e.adim(i); ++k) t.push_back(e.a(i, k) + " * " + e.a(i, k));
  return sum_terms(e, t);
}
void emit_sqnorm2(Emitter& e, int) { e.line(e.o(0) + " = " + sqnorm_expr(e, 0) + ";"); }
void emit_norm2(Emitter& e, int) { e.line(e.o(0) + " = rk_sqrt(" + sqnorm_expr(e, 0) + ");"); }
void emit_normalize(Emitter& e, int) {
  std::string r = e.tmp();
  e.line("T " + r + " = rk_rsqrt(" + sqnorm_expr(e, 0) + ");");
  for (int k = 0; k < e.node().dim; ++k) e.line(e.o(k) + " = " + r + " * " + e.a(0, k) + ";");
}
// Differences x_k - y_k (arguments ix, iy; either may broadcast) as temporaries.
std::vector<std::string> diffs(Emitter& e, int ix, int iy, int D) {
  std::vector<std::string> d;
  for (int k = 0; k < D; ++k) {
    std::string t = e.tmp();
    e.line("T " + t + " = " + e.a(ix, k) + " - " + e.a(iy, k) + ";");
    d.push_back(t);
  }
  return d;
}
void emit_sqdist(Emitter& e, int) {
  int D = e.adim(0) > e.adim(1) ? e.adim(0) : e.adim(1);
  std::vector<std::string> t;
  if (D <= 8) {
    for (auto& d : diffs(e, 0, 1, D)) t.push_back(d + " * " + d);
  } else {  // squares of differences computed inline: one temporary live at a time
    for (int k = 0; k < D; ++k)
      t.push_back("rk_sq(" + e.a(0, k) + " - " + e.a(1, k) + ")");
  }
  e.line(e.o(0) + " = " + sum_terms(e, t) + ";");
}
void emit_scalprod(Emitter& e, int) {
  std::vector<std::string> t;
  for (int k = 0; k < e.adim(0); ++k) t.push_back(e.a(0, k) + " * " + e.a(1, k));
  e.line(e.o(0) + " = " + sum_terms(e, t) + ";");
}
// <v, S v> for a weight of dim 1, D or D*D applied to the values `v` (already computed).
void emit_weighted(Emitter& e, int is, const std::vector<std::string>& v) {
  int D = static_cast<int>(v.size()), S = e.adim(is);
  std::vector<std::string> t;
  if (S == 1 || S == D) {
    for (int k = 0; k < D; ++k) t.push_back(e.a(is, k) + " * " + v[k] + " * " + v[k]);
  } else {
    for (int k = 0; k < D; ++k)
      for (int l = 0; l < D; ++l) t.push_back(v[k] + " * " + e.a(is, k * D + l) + " * " + v[l]);
  }
  e.line(e.o(0) + " = " + sum_terms(e, t) + ";");
}
std::vector<std::string> arg_refs(Emitter& e, int i) {
  std::vector<std::string> v;
  for (int k = 0; k < e.adim(i); ++k) v.push_back(e.a(i, k));
  return v;
}
void emit_wsqnorm(Emitter& e, int) { emit_weighted(e, 0, arg_refs(e, 1)); }
void emit_wsqdist(Emitter& e, int) { emit_weighted(e, 0, diffs(e, 1, 2, e.adim(1))); }
void emit_elem(Emitter& e, int) { e.line(e.o(0) + " = " + e.a(0, e.p(0)) + ";"); }
void emit_elemt(Emitter& e, int) {  // ElemT(x, n, m): dim n, x at position m
  for (int k = 0; k < e.node().dim; ++k)
    e.line(e.o(k) + " = " + (k == e.p(1) ? e.a(0, 0) : std::string("T(0)")) + ";");
}
void emit_extract(Emitter& e, int) {
  for (int k = 0; k < e.node().dim; ++k) e.line(e.o(k) + " = " + e.a(0, e.p(0) + k) + ";");
}
void emit_extractt(Emitter& e, int) {  // ExtractT(x, start, dim)
  int s = e.p(0), n = e.adim(0);
  for (int k = 0; k < e.node().dim; ++k)
    e.line(e.o(k) + " = " + (k >= s && k < s + n ? e.a(0, k - s) : std::string("T(0)")) + ";");
}
void emit_concat(Emitter& e, int) {
  int n = e.adim(0);
  for (int k = 0; k < e.node().dim; ++k)
    e.line(e.o(k) + " = " + (k < n ? e.a(0, k) : e.a(1, k - n)) + ";");
}
void emit_onehot(Emitter& e, int) {
  std::string r = e.tmp();
  e.line("T " + r + " = rk_round0(" + e.a(0, 0) + ");");
  for (int k = 0; k < e.node().dim; ++k)
    e.line(e.o(k) + " = " + r + " == T(" + std::to_string(k) + ") ? T(1) : T(0);");
}
void emit_zero(Emitter& e, int) {
  for (int k = 0; k < e.node().dim; ++k) e.line(e.o(k) + " = T(0);");
}
void emit_matvec(Emitter& e, int) {  // A (n x m, row-major) times v (m)
  int m = e.adim(1), n = e.node().dim;
  for (int r = 0; r < n; ++r) {
    std::vector<std::string> t;
    for (int c = 0; c < m; ++c) t.push_back(e.a(0, r * m + c) + " * " + e.a(1, c));
    e.line(e.o(r) + " = " + sum_terms(e, t) + ";");
  }
}
void emit_vecmat(Emitter& e, int) {  // v (n) times A (n x m, row-major)
  int n = e.adim(0), m = e.node().dim;
  for (int c = 0; c < m; ++c) {
    std::vector<std::string> t;
    for (int r = 0; r < n; ++r) t.push_back(e.a(0, r) + " * " + e.a(1, r * m + c));
    e.line(e.o(c) + " = " + sum_terms(e, t) + ";");
  }
}
void emit_tensorprod(Emitter& e, int) {
  int n = e.adim(0), m = e.adim(1);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < m; ++c)
      e.line(e.o(r * m + c) + " = " + e.a(0, r) + " * " + e.a(1, c) + ";");
}

// ---- the table ----
const OpInfo kOps[] = {
  // name         sig    dimension rule                                   scalar template / emitter
  // arithmetic (dim 1 broadcasts)
  {"Add",         "ff",  same,                                          "($0 + $1)", nullptr},
  {"Subtract",    "ff",  same,                                          "($0 - $1)", nullptr},
  {"Mult",        "ff",  same,                                          "($0 * $1)", nullptr},
  {"Divide",      "ff",  same,                                          "($0 / $1)", nullptr},
  {"Minus",       "f",   first,                                         "(-$0)", nullptr},
  // element-wise maths
  {"Exp",         "f",   first,                                         "rk_exp($0)", nullptr},
  {"Log",         "f",   first,                                         "rk_log($0)", nullptr},
  {"Sqrt",        "f",   first,                                         "rk_sqrt($0)", nullptr},
  {"Rsqrt",       "f",   first,                                         "rk_rsqrt($0)", nullptr},
  {"Inv",         "f",   first,                                         "(T(1) / $0)", nullptr},
  {"Square",      "f",   first,                                         "($0 * $0)", nullptr},
  {"Abs",         "f",   first,                                         "rk_abs($0)", nullptr},
  {"Sign",        "f",   first,                                         "rk_sign($0)", nullptr},
  {"Step",        "f",   first,                                         "rk_step($0)", nullptr},
  {"ReLU",        "f",   first,                                         "rk_relu($0)", nullptr},
  {"Sin",         "f",   first,                                         "rk_sin($0)", nullptr},
  {"Cos",         "f",   first,                                         "rk_cos($0)", nullptr},
  {"Asin",        "f",   first,                                         "rk_asin($0)", nullptr},
  {"Acos",        "f",   first,                                         "rk_acos($0)", nullptr},
  {"Atan",        "f",   first,                                         "rk_atan($0)", nullptr},
  {"Atan2",       "ff",  same,                                          "rk_atan2($0, $1)", nullptr},
  {"Floor",       "f",   first,                                         "rk_floor($0)", nullptr},
  {"Round",       "fi",  first,                                         "rk_round($0, #0)", nullptr},
  {"XLogX",       "f",   first,                                         "rk_xlogx($0)", nullptr},
  {"SinXDivX",    "f",   first,                                         "rk_sinxdivx($0)", nullptr},
  {"Pow",         "fi",  first,                                         "rk_powi($0, #0)", nullptr},
  {"Powf",        "ff",  same,                                          "rk_pow($0, $1)", nullptr},
  {"Clamp",       "fff", same,                                          "rk_clamp($0, $1, $2)", nullptr},
  {"ClampInt",    "fii", first,                                         "rk_clamp($0, T(#0), T(#1))", nullptr},
  {"IfElse",      "fff", same,                                          "($0 >= T(0) ? $1 : $2)", nullptr},
  {"Mod",         "fff", same,                                          "rk_mod($0, $1, $2)", nullptr},
  {"Equal",       "ff",  same,                                          "($0 == $1 ? T(1) : T(0))", nullptr},
  {"NotEqual",    "ff",  same,                                          "($0 != $1 ? T(1) : T(0))", nullptr},
  {"LessThan",    "ff",  same,                                          "($0 < $1 ? T(1) : T(0))", nullptr},
  {"LessOrEqual", "ff",  same,                                          "($0 <= $1 ? T(1) : T(0))", nullptr},
  // vector operations
  {"Sum",         "f",   one,                                           nullptr, emit_sum},
  {"SumT",        "fi",  param0_dim,                                    nullptr, emit_sumt},
  {"Min",         "f",   one,                                           nullptr, emit_vmin},
  {"Max",         "f",   one,                                           nullptr, emit_vmax},
  {"ArgMin",      "f",   one,                                           nullptr, emit_vargmin},
  {"ArgMax",      "f",   one,                                           nullptr, emit_vargmax},
  {"SqNorm2",     "f",   one,                                           nullptr, emit_sqnorm2},
  {"Norm2",       "f",   one,                                           nullptr, emit_norm2},
  {"Normalize",   "f",   first,                                         nullptr, emit_normalize},
  {"SqDist",      "ff",  bcast_to1,                                     nullptr, emit_sqdist},
  {"Scalprod",    "ff",  equal2_to1,                                    nullptr, emit_scalprod},
  {"WeightedSqNorm", "ff", wsqnorm,                                     nullptr, emit_wsqnorm},
  {"WeightedSqDist", "fff", wsqdist,                                    nullptr, emit_wsqdist},
  {"SqNormIso",   "ff",  [](const Dims& d, const Params& p, std::string* w) { return scalar_arg(d, p, w, 0); },
                                                                        nullptr, emit_wsqnorm},
  {"SqNormDiag",  "ff",  [](const Dims& d, const Params&, std::string* w) {
                            if (d[0] != d[1]) { *w = "the weight must have the dimension of x"; return 0; }
                            return 1; },                                nullptr, emit_wsqnorm},
  {"SymSqNorm",   "ff",  [](const Dims& d, const Params&, std::string* w) {
                            if (d[0] != d[1] * d[1]) { *w = "the matrix must have dimension D*D"; return 0; }
                            return 1; },                                nullptr, emit_wsqnorm},
  {"Elem",        "fi",  [](const Dims& d, const Params& p, std::string* w) {
                            if (p[0] < 0 || p[0] >= d[0]) { *w = "index " + std::to_string(p[0]) + " out of range [0, " + std::to_string(d[0]) + ")"; return 0; }
                            return 1; },                                nullptr, emit_elem},
  {"ElemT",       "fii", [](const Dims& d, const Params& p, std::string* w) {
                            if (d[0] != 1) { *w = "the first argument must have dimension 1"; return 0; }
                            if (p[0] <= 0 || p[1] < 0 || p[1] >= p[0]) { *w = "need 0 <= m < n"; return 0; }
                            return p[0]; },                             nullptr, emit_elemt},
  {"Extract",     "fii", [](const Dims& d, const Params& p, std::string* w) {
                            if (p[0] < 0 || p[1] <= 0 || p[0] + p[1] > d[0]) { *w = "range [" + std::to_string(p[0]) + ", " + std::to_string(p[0] + p[1]) + ") out of [0, " + std::to_string(d[0]) + ")"; return 0; }
                            return p[1]; },                             nullptr, emit_extract},
  {"ExtractT",    "fii", [](const Dims& d, const Params& p, std::string* w) {
                            if (p[0] < 0 || p[0] + d[0] > p[1]) { *w = "the argument does not fit at position " + std::to_string(p[0]) + " in dimension " + std::to_string(p[1]); return 0; }
                            return p[1]; },                             nullptr, emit_extractt},
  {"Concat",      "ff",  [](const Dims& d, const Params&, std::string*) { return d[0] + d[1]; },
                                                                        nullptr, emit_concat},
  {"OneHot",      "fi",  param0_dim,                                    nullptr, emit_onehot},
  {"Zero",        "i",   param0_dim,                                    nullptr, emit_zero},
  {"MatVecMult",  "ff",  [](const Dims& d, const Params&, std::string* w) {
                            if (d[0] % d[1] != 0) { *w = "the matrix dimension must be a multiple of the vector dimension"; return 0; }
                            return d[0] / d[1]; },                      nullptr, emit_matvec},
  {"VecMatMult",  "ff",  [](const Dims& d, const Params&, std::string* w) {
                            if (d[1] % d[0] != 0) { *w = "the matrix dimension must be a multiple of the vector dimension"; return 0; }
                            return d[1] / d[0]; },                      nullptr, emit_vecmat},
  {"TensorProd",  "ff",  [](const Dims& d, const Params&, std::string*) { return d[0] * d[1]; },
                                                                        nullptr, emit_tensorprod},
};

size_t count_sig(const char* sig, char c) {
  size_t n = 0;
  for (const char* s = sig; *s; ++s) n += (*s == c);
  return n;
}

}  // namespace

size_t OpInfo::nargs() const { return count_sig(sig, 'f'); }
size_t OpInfo::nparams() const { return count_sig(sig, 'i'); }

// The real-valued table above, then the complex operations (ops_complex.cpp).
constexpr int kRealOpCount = static_cast<int>(sizeof kOps / sizeof kOps[0]);

int op_count() { return kRealOpCount + kComplexOpCount; }

const OpInfo& op_info(int op) {
  RK_ASSERT(op >= 0 && op < op_count(), "bad op index");
  return op < kRealOpCount ? kOps[op] : kComplexOps[op - kRealOpCount];
}

int find_op(const std::string& name) {
  for (int i = 0; i < op_count(); ++i)
    if (name == op_info(i).name) return i;
  return -1;
}

std::vector<std::string> op_names() {
  std::vector<std::string> v;
  for (int i = 0; i < op_count(); ++i) v.push_back(op_info(i).name);
  return v;
}

}  // namespace rkeops

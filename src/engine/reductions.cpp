// The reduction table (see reductions.h). Emitted code uses T (float or double) and RK_INF.
#include "reductions.h"

#include <algorithm>
#include <vector>

#include "ast.h"
#include "errors.h"

namespace rkeops {
namespace {

using S = RedShape;
std::string I(int k) { return std::to_string(k); }
std::string at(const std::string& a, int k) { return a + "[" + I(k) + "]"; }

int dim_d(const S& s) { return s.d; }
int dim_0(const S&) { return 0; }
int dim_kd(const S& s) { return s.K * s.d; }
int dim_2d(const S& s) { return 2 * s.d; }
int dim_2kd(const S& s) { return 2 * s.K * s.d; }

// ---- Sum: st[k] = sum of f(k) ----
void sum_init(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k) c.line(at(c.st, k) + " = T(0);");
}
void sum_acc(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k) c.line(at(c.st, k) + " += " + c.f(k) + ";");
}
void sum_merge(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k) c.line(at(c.st, k) + " += " + at(c.st2, k) + ";");
}
void sum_final(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k) c.line(c.out(I(k)) + " = " + at(c.st, k) + ";");
}

// ---- Zero: zeros of F's dimension (F is not evaluated: KeOps's Zero_Reduction(dim, axis)) ----
void zero_acc(RedCode&, const S&) {}
void zero_final(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k) c.line(c.out(I(k)) + " = 0;");
}

// ---- Min / Max and their arg-indices: value in st, index in si; the first index wins ties ----
template <bool IsMin>
void ext_init(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k)
    c.line(at(c.st, k) + " = " + (IsMin ? "RK_INF" : "-RK_INF") + "; " + at(c.si, k) + " = -1;");
}
template <bool IsMin>
void ext_acc(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k)
    c.line("if (" + c.f(k) + (IsMin ? " < " : " > ") + at(c.st, k) + ") { " + at(c.st, k) + " = " + c.f(k) + "; " +
           at(c.si, k) + " = " + c.j + "; }");
}
template <bool IsMin>
void ext_merge(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k)
    c.line("if (" + at(c.st2, k) + (IsMin ? " < " : " > ") + at(c.st, k) + " || (" + at(c.st2, k) +
           " == " + at(c.st, k) + " && " + at(c.si2, k) + " >= 0 && (" + at(c.si, k) + " < 0 || " + at(c.si2, k) +
           " < " + at(c.si, k) + "))) { " + at(c.st, k) + " = " + at(c.st2, k) + "; " + at(c.si, k) + " = " +
           at(c.si2, k) + "; }");
}
void val_final(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k) c.line(c.out(I(k)) + " = " + at(c.st, k) + ";");
}
void arg_final(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k) c.line(c.out(I(k)) + " = double(" + at(c.si, k) + " < 0 ? 0 : " + at(c.si, k) + ");");
}
void valarg_final(RedCode& c, const S& s) {
  val_final(c, s);
  for (int k = 0; k < s.d; ++k)
    c.line(c.out(I(s.d + k)) + " = double(" + at(c.si, k) + " < 0 ? 0 : " + at(c.si, k) + ");");
}

// ---- KMin family: per coordinate k, the K smallest values sorted, st[k*K + r] ----
void kmin_init(RedCode& c, const S& s) {
  c.line("for (int r_ = 0; r_ < " + I(s.K * s.d) + "; ++r_) { " + c.st + "[r_] = RK_INF; " + c.si + "[r_] = -1; }");
}
// Inserts (value v, index jj) into the sorted list of coordinate k (strictly smaller goes first,
// so among equal values the earlier index stays ahead). An empty slot (index -1; slots fill in
// order) takes any candidate, so +Inf candidates keep their own indices, after the finite ones;
// NaN counts as +Inf (it is stored as +Inf). `by_index`: equal values ordered by index (merging
// lists whose columns interleave, as the GPU's lanes' lists; candidates then are not NaN).
std::string kmin_insert(const RedCode& c, const S& s, int k, const std::string& v, const std::string& jj,
                        bool by_index = false) {
  std::string base = I(k * s.K), last = I(k * s.K + s.K - 1);
  auto before = [&](const std::string& u, const std::string& r) {  // the candidate goes before slot r
    const std::string st = c.st + "[" + r + "]", si = c.si + "[" + r + "]";
    return u + " < " + st + " || " + si + " < 0" + (by_index ? " || (" + u + " == " + st + " && " + jj + " < " + si + ")" : "");
  };
  return "if (" + before(v, last) + ") { const T u_ = " + v + " == " + v + " ? " + v +
         " : RK_INF; int r = " + I(s.K - 1) + "; while (r > 0 && (" + before("u_", base + " + r - 1") + ")) { " +
         c.st + "[" + base + " + r] = " + c.st + "[" + base + " + r - 1]; " + c.si + "[" + base + " + r] = " + c.si +
         "[" + base + " + r - 1]; --r; } " + c.st + "[" + base + " + r] = u_; " + c.si + "[" + base + " + r] = " + jj +
         "; }";
}
void kmin_acc(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k) c.line(kmin_insert(c, s, k, c.f(k), c.j));
}
void kmin_merge(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k)
    c.line("for (int q = 0; q < " + I(s.K) + "; ++q) { T v_ = " + c.st2 + "[" + I(k * s.K) + " + q]; long long jj_ = " +
           c.si2 + "[" + I(k * s.K) + " + q]; if (jj_ < 0) break; " + kmin_insert(c, s, k, "v_", "jj_", true) + " }");
}
// Output layout: for each rank r, the d coordinates (row-major K x d, as KeOps). Up to 64
// values unrolled; beyond, loops (the code's size does not grow with K).
constexpr int kUnrollFinal = 64;
// out(base + r d + k) = value(k K + r), with `value` "st" or an index "si".
void ranked_final(RedCode& c, const S& s, int base, bool index) {
  auto val = [&](const std::string& at_) { return index ? "double(" + at_ + " < 0 ? 0 : " + at_ + ")" : at_; };
  if (s.K * s.d <= kUnrollFinal) {
    for (int r = 0; r < s.K; ++r)
      for (int k = 0; k < s.d; ++k)
        c.line(c.out(I(base + r * s.d + k)) + " = " + val(at(index ? c.si : c.st, k * s.K + r)) + ";");
    return;
  }
  const std::string at_ = std::string(index ? c.si : c.st) + "[k_ * " + I(s.K) + " + r_]";
  const std::string o = c.out("(" + I(base) + " + r_ * " + I(s.d) + " + k_)");
  c.line("for (int r_ = 0; r_ < " + I(s.K) + "; ++r_) for (int k_ = 0; k_ < " + I(s.d) + "; ++k_) " + o + " = " +
         val(at_) + ";");
}
void kmin_final(RedCode& c, const S& s) { ranked_final(c, s, 0, false); }
void argkmin_final(RedCode& c, const S& s) { ranked_final(c, s, 0, true); }
void kminargkmin_final(RedCode& c, const S& s) {
  ranked_final(c, s, 0, false);
  ranked_final(c, s, s.K * s.d, true);
}

// The same insertion with constant indices only (GPU registers): strictly smaller goes first.
void kmin_acc_regs(RedCode& c, const S& s) {
  const int K = s.K;
  if (K > 32) return kmin_acc(c, s);  // the state cannot live in registers anyway
  for (int k = 0; k < s.d; ++k) {
    const int b = k * K;
    auto q = [&](const std::string& a, int r) { return a + "[" + I(b + r) + "]"; };
    c.line("{ const T v_ = " + c.f(k) + ";");
    // an empty slot takes any candidate; NaN is stored as +Inf (see kmin_insert)
    auto less = [&](const char* v, int r) { return std::string("(") + v + " < " + q(c.st, r) + " || " + q(c.si, r) + " < 0)"; };
    c.line("  if " + less("v_", K - 1) + " {");
    c.line("    const T u_ = v_ == v_ ? v_ : RK_INF;");
    for (int r = K - 1; r >= 1; --r)
      c.line("    { const bool a_ = " + less("u_", r - 1) + ", b_ = " + less("u_", r) + "; " + q(c.st, r) +
             " = a_ ? " + q(c.st, r - 1) + " : (b_ ? u_ : " + q(c.st, r) + "); " + q(c.si, r) + " = a_ ? " +
             q(c.si, r - 1) + " : (b_ ? " + c.j + " : " + q(c.si, r) + "); }");
    c.line("    if " + less("u_", 0) + " { " + q(c.st, 0) + " = u_; " + q(c.si, 0) + " = " + c.j + "; }");
    c.line("  }");
    c.line("}");
  }
}

// ---- max-shifted exponential sums: st[0] = m (running max of f), st[1 + k] = sum exp(f - m) w_k ----
// Without a weight, w = 1 and there is one sum.
int nw(const S& s) { return s.dw > 0 ? s.dw : 1; }
std::string wk(const RedCode& c, const S& s, int k) { return s.dw > 0 ? c.w(k) : std::string("T(1)"); }
int dim_shift(const S& s) { return 1 + nw(s); }
void shift_init(RedCode& c, const S& s) {
  c.line(at(c.st, 0) + " = -RK_INF;");
  for (int k = 0; k < nw(s); ++k) c.line(at(c.st, 1 + k) + " = T(0);");
}
void shift_acc(RedCode& c, const S& s) {
  std::string f = c.f(0), m = at(c.st, 0);
  std::string grow = "T sc_ = rk_exp(" + m + " - " + f + "); ";
  for (int k = 0; k < nw(s); ++k) grow += at(c.st, 1 + k) + " = " + at(c.st, 1 + k) + " * sc_ + " + wk(c, s, k) + "; ";
  std::string add = "T e_ = " + m + " == -RK_INF ? T(0) : rk_exp(" + f + " - " + m + "); ";
  for (int k = 0; k < nw(s); ++k) add += at(c.st, 1 + k) + " += " + wk(c, s, k) + " * e_; ";
  c.line("if (" + f + " > " + m + ") { " + grow + m + " = " + f + "; } else { " + add + "}");
}
void shift_merge(RedCode& c, const S& s) {
  std::string m = at(c.st, 0), m2 = at(c.st2, 0);
  std::string grow = "T sc_ = rk_exp(" + m + " - " + m2 + "); ";
  for (int k = 0; k < nw(s); ++k)
    grow += at(c.st, 1 + k) + " = " + at(c.st, 1 + k) + " * sc_ + " + at(c.st2, 1 + k) + "; ";
  std::string add = "T e_ = " + m2 + " == -RK_INF ? T(0) : rk_exp(" + m2 + " - " + m + "); ";
  for (int k = 0; k < nw(s); ++k) add += at(c.st, 1 + k) + " += " + at(c.st2, 1 + k) + " * e_; ";
  c.line("if (" + m2 + " > " + m + ") { " + grow + m + " = " + m2 + "; } else { " + add + "}");
}
void lse_final(RedCode& c, const S& s) {  // log of the (weighted) sum, per weight coordinate
  for (int k = 0; k < nw(s); ++k) c.line(c.out(I(k)) + " = " + at(c.st, 0) + " + rk_log(" + at(c.st, 1 + k) + ");");
}
void shift_final(RedCode& c, const S& s) {  // (m, sums) as they are
  for (int k = 0; k < 1 + nw(s); ++k) c.line(c.out(I(k)) + " = " + at(c.st, k) + ";");
}
int dim_nw(const S& s) { return nw(s); }
int dim_1nw(const S& s) { return 1 + nw(s); }
// SumSoftMaxWeight: sum exp(f) w / sum exp(f). State: m, sum exp(f - m), sum exp(f - m) w.
int dim_ssmw(const S& s) { return 2 + s.dw; }
void ssmw_init(RedCode& c, const S& s) {
  c.line(at(c.st, 0) + " = -RK_INF;");
  for (int k = 0; k < 1 + s.dw; ++k) c.line(at(c.st, 1 + k) + " = T(0);");
}
void ssmw_acc(RedCode& c, const S& s) {
  std::string f = c.f(0), m = at(c.st, 0);
  std::string grow = "T sc_ = rk_exp(" + m + " - " + f + "); " + at(c.st, 1) + " = " + at(c.st, 1) + " * sc_ + T(1); ";
  for (int k = 0; k < s.dw; ++k) grow += at(c.st, 2 + k) + " = " + at(c.st, 2 + k) + " * sc_ + " + c.w(k) + "; ";
  std::string add = "T e_ = " + m + " == -RK_INF ? T(0) : rk_exp(" + f + " - " + m + "); " + at(c.st, 1) + " += e_; ";
  for (int k = 0; k < s.dw; ++k) add += at(c.st, 2 + k) + " += " + c.w(k) + " * e_; ";
  c.line("if (" + f + " > " + m + ") { " + grow + m + " = " + f + "; } else { " + add + "}");
}
void ssmw_merge(RedCode& c, const S& s) {
  std::string m = at(c.st, 0), m2 = at(c.st2, 0);
  std::string grow = "T sc_ = rk_exp(" + m + " - " + m2 + "); ";
  for (int k = 0; k < 1 + s.dw; ++k)
    grow += at(c.st, 1 + k) + " = " + at(c.st, 1 + k) + " * sc_ + " + at(c.st2, 1 + k) + "; ";
  std::string add = "T e_ = " + m2 + " == -RK_INF ? T(0) : rk_exp(" + m2 + " - " + m + "); ";
  for (int k = 0; k < 1 + s.dw; ++k) add += at(c.st, 1 + k) + " += " + at(c.st2, 1 + k) + " * e_; ";
  c.line("if (" + m2 + " > " + m + ") { " + grow + m + " = " + m2 + "; } else { " + add + "}");
}
void ssmw_final(RedCode& c, const S& s) {
  for (int k = 0; k < s.dw; ++k) c.line(c.out(I(k)) + " = " + at(c.st, 2 + k) + " / " + at(c.st, 1) + ";");
}
int dim_dw(const S& s) { return s.dw; }

// The usual term (f <= m, both finite) only adds exp(f - m) (times the weights); the full
// update above, which rescales when f > m and handles infinities, runs when f > m or exp(f - m)
// is NaN (m = f = -Inf, NaN). Same results, one exponential and no nested branch per term.
// `ones`: the plain sum of exp(f - m) comes first (SumSoftMaxWeight).
void shift_acc_regs_impl(RedCode& c, const S& s, bool ones, void (*full)(RedCode&, const S&)) {
  c.line("{ const T f_ = " + c.f(0) + ";");
  c.line("  const T e_ = rk_exp(f_ - " + at(c.st, 0) + ");");
  c.line("  if (f_ > " + at(c.st, 0) + " || e_ != e_) {");
  RedCode slow = c;
  slow.text.clear();
  slow.ind = c.ind + "    ";
  slow.f = [](int) { return std::string("f_"); };
  full(slow, s);
  c.text += slow.text;
  c.line("  } else {");
  if (ones) {
    c.line("    " + at(c.st, 1) + " += e_;");
    for (int k = 0; k < s.dw; ++k) c.line("    " + at(c.st, 2 + k) + " += " + c.w(k) + " * e_;");
  } else {
    for (int k = 0; k < nw(s); ++k)
      c.line("    " + at(c.st, 1 + k) + " += " + (s.dw > 0 ? c.w(k) + " * e_;" : std::string("e_;")));
  }
  c.line("  }");
  c.line("}");
}
void shift_acc_regs(RedCode& c, const S& s) { shift_acc_regs_impl(c, s, false, shift_acc); }
void ssmw_acc_regs(RedCode& c, const S& s) { shift_acc_regs_impl(c, s, true, ssmw_acc); }

// Tile of max-shifted exponential sums: the tile's max m, then sums of exp(f - m) w (f == m
// counts 1, so that +Inf and all -Inf tiles stay exact). `first` is the state index of the
// first sum; with_one adds the plain sum of exp(f - m) first (SumSoftMaxWeight).
void shift_tile_impl(RedCode& c, const S& s, bool with_one) {
  std::string f = c.f(0);
  c.line("T m_ = -RK_INF;");
  c.line("#pragma omp simd reduction(max:m_)");
  c.line("for (long long jj = 0; jj < jn; ++jj) m_ = " + f + " > m_ ? " + f + " : m_;");
  std::vector<std::string> w;
  if (with_one) w.push_back("T(1)");
  for (int k = 0; k < (with_one ? s.dw : nw(s)); ++k) w.push_back(s.dw > 0 ? c.w(k) : std::string("T(1)"));
  std::string names;
  for (size_t k = 0; k < w.size(); ++k) {
    c.line("T q" + I(k) + "_ = T(0);");
    names += (k ? ", q" : "q") + I(k) + "_";
  }
  // A finite max (the usual case): plain vector loop. An infinite one: f == m counts 1
  // (exp(inf - inf) would be NaN), in a scalar loop.
  for (int pass = 0; pass < 2; ++pass) {
    c.line(pass == 0 ? "if (m_ - m_ == T(0)) {" : "} else {");
    if (pass == 0) c.line("  #pragma omp simd reduction(+:" + names + ")");
    c.line("  for (long long jj = 0; jj < jn; ++jj) {");
    c.line(pass == 0 ? "    T e_ = rk_exp(" + f + " - m_);"
                     : "    T e_ = " + f + " == m_ ? T(1) : rk_exp(" + f + " - m_);");
    for (size_t k = 0; k < w.size(); ++k) c.line("    q" + I(k) + "_ += e_ * " + w[k] + ";");
    c.line("  }");
  }
  c.line("}");
  c.line(at(c.st, 0) + " = m_;");
  for (size_t k = 0; k < w.size(); ++k) c.line(at(c.st, 1 + static_cast<int>(k)) + " = q" + I(k) + "_;");
}
void shift_tile(RedCode& c, const S& s) { shift_tile_impl(c, s, false); }
void ssmw_tile(RedCode& c, const S& s) { shift_tile_impl(c, s, true); }


// ---- derivatives (the formulas of keops_grad(); notation: out_i = Reduce_j F_ij, e_i the
// gradient input, G(H, g) = Grad(H, v, g) the per-pair gradient of <H, g>; the gradient is the
// Sum over the index that is not v's of the terms written) ----
std::string fresh(GradContext& c, const std::string& base) {
  std::string name = base;
  for (int i = 1; std::find(c.taken.begin(), c.taken.end(), name) != c.taken.end(); ++i) name = base + I(i);
  c.taken.push_back(name);
  return name;
}
// A new input computed at call time (see GradInput); returns its name.
std::string grad_input(GradContext& c, GradPlan& p, const std::string& base, int cat, int dim,
                       const std::string& forward, int col0) {
  GradInput g;
  g.name = fresh(c, base);
  g.cat = cat;
  g.dim = dim;
  g.pos = c.next_pos++;
  g.forward = forward;
  g.col0 = col0;
  p.extra.push_back(g);
  return g.name;
}
std::string G(const GradContext& c, const std::string& H, const std::string& g) {
  return "Grad(" + H + ", " + c.var + ", " + g + ")";
}
void sum_of(const GradContext& c, GradPlan& p, const std::string& term) {
  p.formula = "Sum_Reduction(" + term + ", " + I(c.new_axis) + ")";
}
std::string red_of(const GradContext& c, const std::string& name, const std::string& opt = "") {
  return name + "_Reduction(" + c.F + ", " + (opt.empty() ? "" : opt + ", ") + I(c.axis) + ")";
}

// out_i = sum_j F_ij: sum_j G(F, e_i)
void sum_grad(GradContext& c, GradPlan& p) { sum_of(c, p, G(c, c.F, c.eta)); }
// Arg* reductions are piecewise constant, Zero constant: zero.
void zero_grad(GradContext&, GradPlan& p) { p.zero = true; }
// Min/Max and the KMin family: d out_i = dF_{i j*(i)} for the selected j*, so the gradient is
// sum_j G(F, e_i [j == j*(i)]) (per coordinate, and per rank for KMin). The selected indices are
// columns [col0, col0 + K d) of the reduction `jstar_red` (the operator itself for *_Arg*).
void select_grad(GradContext& c, GradPlan& p, const std::string& jstar_red, int col0) {
  const int d = c.shape.d, K = c.shape.K;
  const std::string jidx = grad_input(c, p, "jidx", c.in_cat, 1, "", 0);
  const std::string jstar = grad_input(c, p, "jstar", c.out_cat, K * d, jstar_red, col0);
  auto part = [&](const std::string& name, int width, int r) {
    return width == d ? name : "Extract(" + name + ", " + I(r * d) + ", " + I(d) + ")";
  };
  std::string terms;
  for (int r = 0; r < K; ++r)
    terms += (r ? " + " : "") + part(c.eta, c.out_dim, r) + " * Equal(" + jidx + ", " + part(jstar, K * d, r) + ")";
  sum_of(c, p, G(c, c.F, terms));
}
void min_grad(GradContext& c, GradPlan& p) { select_grad(c, p, red_of(c, "ArgMin"), 0); }
void max_grad(GradContext& c, GradPlan& p) { select_grad(c, p, red_of(c, "ArgMax"), 0); }
void valarg_grad(GradContext& c, GradPlan& p) { select_grad(c, p, c.formula, c.shape.d); }  // index part ignored
void kmin_grad(GradContext& c, GradPlan& p) { select_grad(c, p, red_of(c, "ArgKMin", I(c.shape.K)), 0); }
void kminargkmin_grad(GradContext& c, GradPlan& p) { select_grad(c, p, c.formula, c.shape.K * c.shape.d); }
// out_i = log sum_j exp F_ij: sum_j G(F, e_i exp(F_ij - out_i))
void lse_grad(GradContext& c, GradPlan& p) {
  const std::string lse = grad_input(c, p, "lse", c.out_cat, 1, c.formula, 0);
  sum_of(c, p, G(c, c.F, c.eta + " * Exp(" + c.F + " - " + lse + ")"));
}
// out_ik = log sum_j exp(F_ij) W_jk; with a_ijk = e_ik exp(F_ij - out_ik):
// sum_j G(F, <a_ij, W_j>) + G(W, a_ij)
void lsew_grad(GradContext& c, GradPlan& p) {
  const std::string out = grad_input(c, p, "fwd", c.out_cat, c.shape.dw, c.formula, 0);
  const std::string a = "(" + c.eta + " * Exp(" + c.F + " - " + out + "))";
  sum_of(c, p, G(c, c.F, "(" + a + " | " + c.W + ")") + " + " + G(c, c.W, a));
}
// out_i = sum_j p_ij W_j with p_ij = exp(F_ij - lse_i): d out_i = sum_j p_ij (dW_j + (W_j -
// out_i) dF_ij), so sum_j G(F, p_ij <W_j - out_i, e_i>) + G(W, p_ij e_i)
void ssmw_grad(GradContext& c, GradPlan& p) {
  const std::string out = grad_input(c, p, "fwd", c.out_cat, c.shape.dw, c.formula, 0);
  const std::string lse = grad_input(c, p, "lse", c.out_cat, 1, red_of(c, "LogSumExp"), 0);
  const std::string pr = "Exp(" + c.F + " - " + lse + ")";
  sum_of(c, p, G(c, c.F, pr + " * ((" + c.W + " - " + out + ") | " + c.eta + ")") + " + " +
                   G(c, c.W, pr + " * " + c.eta));
}
// out_i = (m_i, s_i) with m_i = max_j F_ij, s_i = sum_j exp(F_ij - m_i) (W_j): d m_i = dF_{i j*},
// d s_i = sum_j exp(F_ij - m_i) (dF_ij - dm_i) (W_j) (+ exp(F_ij - m_i) dW_j), so with e_i =
// (em, es): sum_j G(F, exp(F_ij - m_i) <W_j, es> + (em - <s_i, es>) [j == j*(i)]) + G(W, exp(F_ij -
// m_i) es) (W = 1 and no second term without a weight).
void shift_grad_impl(GradContext& c, GradPlan& p, bool weighted) {
  const int dw = weighted ? c.shape.dw : 1;
  const std::string fw = grad_input(c, p, "fwd", c.out_cat, 1 + dw, c.formula, 0);
  const std::string jidx = grad_input(c, p, "jidx", c.in_cat, 1, "", 0);
  const std::string jstar = grad_input(c, p, "jstar", c.out_cat, 1, red_of(c, "ArgMax"), 0);
  const std::string e = c.eta, pr = "Exp(" + c.F + " - Elem(" + fw + ", 0))";
  const std::string es = weighted ? "Extract(" + e + ", 1, " + I(dw) + ")" : "Elem(" + e + ", 1)";
  const std::string sm = weighted ? "Extract(" + fw + ", 1, " + I(dw) + ")" : "Elem(" + fw + ", 1)";
  const std::string sel = "(Elem(" + e + ", 0) - (" + sm + " | " + es + ")) * Equal(" + jidx + ", " + jstar + ")";
  if (weighted)
    sum_of(c, p, G(c, c.F, pr + " * (" + c.W + " | " + es + ") + " + sel) + " + " + G(c, c.W, pr + " * " + es));
  else
    sum_of(c, p, G(c, c.F, pr + " * " + es + " + " + sel));
}
void shift_grad(GradContext& c, GradPlan& p) { shift_grad_impl(c, p, false); }
void shiftw_grad(GradContext& c, GradPlan& p) { shift_grad_impl(c, p, true); }

// ---- the Kahan sum scheme (Reducer) ----
void kahan_init(RedCode& c, int d) {
  for (int k = 0; k < d; ++k) c.line(at(c.cp, k) + " = T(0);");
}
void kahan_acc(RedCode& c, int d) {
  for (int k = 0; k < d; ++k) {
    const std::string st = at(c.st, k), cp = at(c.cp, k);
    c.line("{ T y_ = " + c.f(k) + " - " + cp + "; T t_ = " + st + " + y_; " + cp + " = (t_ - " + st + ") - y_; " + st +
           " = t_; }");
  }
}
void kahan_merge(RedCode& c, int d) {
  for (int k = 0; k < d; ++k) {
    const std::string st = at(c.st, k), cp = at(c.cp, k);
    c.line(st + " = (" + st + " - " + cp + ") + (" + at(c.st2, k) + " - " + at(c.cp2, k) + "); " + cp + " = T(0);");
  }
}
void kahan_final(RedCode& c, int d) {
  for (int k = 0; k < d; ++k) c.line(at(c.st, k) + " -= " + at(c.cp, k) + ";");
}

using L = Layout;
const ReductionInfo kReductions[] = {
    // name, extra, sum-like, state dim, index-state dim, output dim, check, layout,
    // init, acc, merge, final, derivative, [CPU tile, GPU register acc]
    {"Sum", Extra::None, true, dim_d, dim_0, dim_d, nullptr, L::Values, sum_init, sum_acc, sum_merge, sum_final,
     sum_grad},
    {"Min", Extra::None, false, dim_d, dim_d, dim_d, nullptr, L::Values, ext_init<true>, ext_acc<true>,
     ext_merge<true>, val_final, min_grad},
    {"Max", Extra::None, false, dim_d, dim_d, dim_d, nullptr, L::Values, ext_init<false>, ext_acc<false>,
     ext_merge<false>, val_final, max_grad},
    {"ArgMin", Extra::None, false, dim_d, dim_d, dim_d, nullptr, L::Values, ext_init<true>, ext_acc<true>,
     ext_merge<true>, arg_final, zero_grad},
    {"ArgMax", Extra::None, false, dim_d, dim_d, dim_d, nullptr, L::Values, ext_init<false>, ext_acc<false>,
     ext_merge<false>, arg_final, zero_grad},
    {"Min_ArgMin", Extra::None, false, dim_d, dim_d, dim_2d, nullptr, L::ValuesIndices, ext_init<true>,
     ext_acc<true>, ext_merge<true>, valarg_final, valarg_grad},
    {"Max_ArgMax", Extra::None, false, dim_d, dim_d, dim_2d, nullptr, L::ValuesIndices, ext_init<false>,
     ext_acc<false>, ext_merge<false>, valarg_final, valarg_grad},
    {"KMin", Extra::K, false, dim_kd, dim_kd, dim_kd, nullptr, L::Ranked, kmin_init, kmin_acc, kmin_merge,
     kmin_final, kmin_grad, nullptr, kmin_acc_regs},
    {"ArgKMin", Extra::K, false, dim_kd, dim_kd, dim_kd, nullptr, L::Ranked, kmin_init, kmin_acc, kmin_merge,
     argkmin_final, zero_grad, nullptr, kmin_acc_regs},
    {"KMin_ArgKMin", Extra::K, false, dim_kd, dim_kd, dim_2kd, nullptr, L::RankedValuesIndices, kmin_init,
     kmin_acc, kmin_merge, kminargkmin_final, kminargkmin_grad, nullptr, kmin_acc_regs},
    {"LogSumExp", Extra::None, false, dim_shift, dim_0, dim_nw, "d1", L::Values, shift_init, shift_acc, shift_merge,
     lse_final, lse_grad, shift_tile, shift_acc_regs},
    {"LogSumExpWeight", Extra::Weight, false, dim_shift, dim_0, dim_nw, "d1", L::Values, shift_init, shift_acc,
     shift_merge, lse_final, lsew_grad, shift_tile, shift_acc_regs},
    {"Max_SumShiftExp", Extra::None, false, dim_shift, dim_0, dim_1nw, "d1", L::Values, shift_init, shift_acc,
     shift_merge, shift_final, shift_grad, shift_tile, shift_acc_regs},
    {"Max_SumShiftExpWeight", Extra::Weight, false, dim_shift, dim_0, dim_1nw, "d1", L::Values, shift_init,
     shift_acc, shift_merge, shift_final, shiftw_grad, shift_tile, shift_acc_regs},
    {"Zero", Extra::Dim, false, dim_d, dim_0, dim_d, nullptr, L::Values, sum_init, zero_acc, zero_acc, zero_final,
     zero_grad},
    {"SumSoftMaxWeight", Extra::Weight, false, dim_ssmw, dim_0, dim_dw, "d1", L::Values, ssmw_init, ssmw_acc,
     ssmw_merge, ssmw_final, ssmw_grad, ssmw_tile, ssmw_acc_regs},
};

}  // namespace

int reduction_count() { return static_cast<int>(sizeof kReductions / sizeof kReductions[0]); }

const ReductionInfo& reduction_info(int r) {
  RK_ASSERT(r >= 0 && r < reduction_count(), "bad reduction index");
  return kReductions[r];
}

int find_reduction(const std::string& name) {
  for (int i = 0; i < reduction_count(); ++i)
    if (name == kReductions[i].name) return i;
  return -1;
}

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::Values:
      return "values";
    case Layout::ValuesIndices:
      return "values_indices";
    case Layout::Ranked:
      return "ranked";
    case Layout::RankedValuesIndices:
      return "ranked_values_indices";
  }
  return "values";
}

Reducer::Reducer(const ReductionInfo& red, const RedShape& sh, SumScheme scheme)
    : red_(red), sh_(sh), kahan_(red.sum_like && scheme == SumScheme::Kahan) {}

void Reducer::init(RedCode& c) const {
  red_.init(c, sh_);
  if (kahan_) kahan_init(c, sh_.d);
}
void Reducer::acc(RedCode& c, bool registers) const {
  if (kahan_)
    kahan_acc(c, sh_.d);
  else if (registers && red_.acc_regs)
    red_.acc_regs(c, sh_);
  else
    red_.acc(c, sh_);
}
void Reducer::merge(RedCode& c) const {
  if (kahan_)
    kahan_merge(c, sh_.d);
  else
    red_.merge(c, sh_);
}
void Reducer::final(RedCode& c) const {
  if (kahan_) kahan_final(c, sh_.d);
  red_.final(c, sh_);
}

GradPlan reduction_gradient(const ReductionInfo& red, GradContext& ctx) {
  GradPlan p;
  p.eta = ctx.eta = fresh(ctx, "gradin");  // indexed like the result, at the next position
  p.eta_cat = ctx.out_cat;
  p.eta_dim = ctx.out_dim;
  ++ctx.next_pos;
  red.grad(ctx, p);
  return p;
}

}  // namespace rkeops

// The operation table. One row per operation: name, signature ('f' formula, 'i' integer),
// dimension rule, either an element-wise C++ template or a vector emitter, and the derivative
// in the formula language (see Deriv in ops.h).
// Helper functions named rk_* in templates live in inst/include/rkeops/prelude_*.h.
#include "ops.h"

#include <cstring>
#include <functional>
#include <string>

#include "codegen.h"
#include "errors.h"
#include "ops_tensor.h"

namespace rkeops {
namespace {

using Dims = std::vector<int>;
using Params = std::vector<int>;

// ---- dimension rules ----
int same(const Dims& d, const Params&, std::string* why) {  // equal dims, or dim 1 broadcasts
  int m = 1;
  for (int x : d) m = x > m ? x : m;
  for (int x : d)
    if (x != 1 && x != m) {
      *why = "operands must have the same dimension or dimension 1";
      return 0;
    }
  return m;
}
int first(const Dims& d, const Params&, std::string*) { return d[0]; }
int one(const Dims&, const Params&, std::string*) { return 1; }
int equal2_to1(const Dims& d, const Params&, std::string* why) {  // two equal dims -> scalar
  if (d[0] != d[1]) {
    *why = "both operands must have the same dimension";
    return 0;
  }
  return 1;
}
int bcast_to1(const Dims& d, const Params& p, std::string* why) { return same(d, p, why) ? 1 : 0; }
int scalar_arg(const Dims& d, const Params&, std::string* why, int i) {
  if (d[i] != 1) {
    *why = "argument " + std::to_string(i + 1) + " must have dimension 1";
    return 0;
  }
  return 1;
}
// Output dimensions are capped as variables' are (a dimension n emits n lines of code).
constexpr long long kMaxDim = 100000;
int too_big(long long n, std::string* why) {
  *why = "the result would have dimension " + std::to_string(n) + ", more than " + std::to_string(kMaxDim);
  return 0;
}
int param0_dim(const Dims& d, const Params& p, std::string* why) {  // output dim = params[0] > 0
  if (p[0] <= 0) {
    *why = "the dimension must be a positive integer";
    return 0;
  }
  if (p[0] > kMaxDim) return too_big(p[0], why);
  if (!d.empty() && d[0] != 1) {
    *why = "the first argument must have dimension 1";
    return 0;
  }
  return p[0];
}
// Weight s of dim 1 (isotropic), D (diagonal) or D*D (full symmetric matrix) for x of dim D.
int weight_ok(int s, int D) { return s == 1 || s == D || s == D * D; }
int wsqnorm(const Dims& d, const Params&, std::string* why) {
  if (!weight_ok(d[0], d[1])) {
    *why = "the weight must have dimension 1, D or D*D where D is the dimension of x";
    return 0;
  }
  return 1;
}
int wsqdist(const Dims& d, const Params& p, std::string* why) {
  if (d[1] != d[2]) {
    *why = "x and y must have the same dimension";
    return 0;
  }
  return wsqnorm({d[0], d[1]}, p, why);
}

// ---- vector emitters ----
// Each writes straight-line code for small dimensions and, through the Emitter's helpers
// (for_each, sum, extreme, keep), loops over components for dimensions above its loop_dim
// (codegen.h); the helpers unroll small counts into the same statements as before.
using Term = std::function<std::string(const Ix&)>;
void emit_sum(Emitter& e, int) {
  e.line(e.o(0) + " = " + e.sum(e.adim(0), [&](const Ix& k) { return e.a(0, k); }) + ";");
}
void emit_sumt(Emitter& e, int) {
  e.for_each(e.node().dim, [&](const Ix& k) { e.line(e.o(k) + " = " + e.a(0, 0) + ";"); });
}
// Min/Max/ArgMin/ArgMax over the entries of one vector (first index wins ties; NaN is skipped
// unless it comes first, as a plain comparison loop does).
void emit_vec_extreme(Emitter& e, const char* cmp, bool arg) {
  auto r = e.extreme(e.adim(0), [&](const Ix& k) { return e.a(0, k); }, cmp);
  e.line(e.o(0) + " = " + (arg ? r.second : r.first) + ";");
}
void emit_vmin(Emitter& e, int) { emit_vec_extreme(e, "<", false); }
void emit_vmax(Emitter& e, int) { emit_vec_extreme(e, ">", false); }
void emit_vargmin(Emitter& e, int) { emit_vec_extreme(e, "<", true); }
void emit_vargmax(Emitter& e, int) { emit_vec_extreme(e, ">", true); }
std::string sqnorm_expr(Emitter& e, int i) {
  return e.sum(e.adim(i), [&](const Ix& k) { return e.a(i, k) + " * " + e.a(i, k); });
}
void emit_sqnorm2(Emitter& e, int) { e.line(e.o(0) + " = " + sqnorm_expr(e, 0) + ";"); }
void emit_norm2(Emitter& e, int) { e.line(e.o(0) + " = rk_sqrt(" + sqnorm_expr(e, 0) + ");"); }
void emit_normalize(Emitter& e, int) {
  if (e.wide()) {
    std::string r = e.keep("rk_rsqrt(" + sqnorm_expr(e, 0) + ")");
    e.for_each(e.node().dim, [&](const Ix& k) { e.line(e.o(k) + " = " + r + " * " + e.a(0, k) + ";"); });
    return;
  }
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
  if (D <= 8) {
    std::vector<std::string> t;
    for (auto& d : diffs(e, 0, 1, D)) t.push_back(d + " * " + d);
    e.line(e.o(0) + " = " + sum_terms(e, t) + ";");
    return;
  }  // squares of differences computed inline: one temporary live at a time
  e.line(e.o(0) + " = " + e.sum(D, [&](const Ix& k) { return "rk_sq(" + e.a(0, k) + " - " + e.a(1, k) + ")"; }) + ";");
}
void emit_scalprod(Emitter& e, int) {
  e.line(e.o(0) + " = " + e.sum(e.adim(0), [&](const Ix& k) { return e.a(0, k) + " * " + e.a(1, k); }) + ";");
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
// The same with loops: v(k) the expression of the k-th value, D values. A full matrix gives
// sum_k v_k (sum_l S_kl v_l).
void emit_weighted_wide(Emitter& e, int is, int D, const Term& v) {
  const long long S = e.adim(is);
  if (S == 1 || S == D) {
    e.line(e.o(0) + " = " + e.sum(D, [&](const Ix& k) { return e.a(is, k) + " * rk_sq(" + v(k) + ")"; }) + ";");
    return;
  }
  std::string acc = e.keep("T(0)");
  e.for_each(D, [&](const Ix& k) {
    std::string row = e.sum(D, [&](const Ix& l) { return e.a(is, k * D + l) + " * " + v(l); });
    e.line(acc + " += " + v(k) + " * (" + row + ");");
  });
  e.line(e.o(0) + " = " + acc + ";");
}
std::vector<std::string> arg_refs(Emitter& e, int i) {
  std::vector<std::string> v;
  for (int k = 0; k < e.adim(i); ++k) v.push_back(e.a(i, k));
  return v;
}
void emit_wsqnorm(Emitter& e, int) {
  if (e.wide()) return emit_weighted_wide(e, 0, e.adim(1), [&](const Ix& k) { return e.a(1, k); });
  emit_weighted(e, 0, arg_refs(e, 1));
}
void emit_wsqdist(Emitter& e, int) {
  if (e.wide())
    return emit_weighted_wide(e, 0, e.adim(1), [&](const Ix& k) { return "(" + e.a(1, k) + " - " + e.a(2, k) + ")"; });
  emit_weighted(e, 0, diffs(e, 1, 2, e.adim(1)));
}
void emit_elem(Emitter& e, int) { e.line(e.o(0) + " = " + e.a(0, e.p(0)) + ";"); }
void emit_elemt(Emitter& e, int) {  // ElemT(x, n, m): dim n, x at position m
  if (e.wide()) {
    e.for_each(e.node().dim, [&](const Ix& k) { e.line(e.o(k) + " = T(0);"); });
    e.line(e.o(e.p(1)) + " = " + e.a(0, 0) + ";");
    return;
  }
  for (int k = 0; k < e.node().dim; ++k) e.line(e.o(k) + " = " + (k == e.p(1) ? e.a(0, 0) : std::string("T(0)")) + ";");
}
void emit_extract(Emitter& e, int) {
  e.for_each(e.node().dim, [&](const Ix& k) { e.line(e.o(k) + " = " + e.a(0, k + e.p(0)) + ";"); });
}
void emit_extractt(Emitter& e, int) {  // ExtractT(x, start, dim): zeros, x, zeros
  const int s = e.p(0), n = e.adim(0), D = e.node().dim;
  e.for_each(s, [&](const Ix& k) { e.line(e.o(k) + " = T(0);"); });
  e.for_each(n, [&](const Ix& k) { e.line(e.o(k + s) + " = " + e.a(0, k) + ";"); });
  e.for_each(D - s - n, [&](const Ix& k) { e.line(e.o(k + (s + n)) + " = T(0);"); });
}
void emit_concat(Emitter& e, int) {
  const int n = e.adim(0);
  e.for_each(n, [&](const Ix& k) { e.line(e.o(k) + " = " + e.a(0, k) + ";"); });
  e.for_each(e.adim(1), [&](const Ix& k) { e.line(e.o(k + n) + " = " + e.a(1, k) + ";"); });
}
void emit_onehot(Emitter& e, int) {
  std::string r = e.keep("rk_round0(" + e.a(0, 0) + ")");
  e.for_each(e.node().dim,
             [&](const Ix& k) { e.line(e.o(k) + " = " + r + " == T(" + k.str() + ") ? T(1) : T(0);"); });
}
void emit_zero(Emitter& e, int) {
  e.for_each(e.node().dim, [&](const Ix& k) { e.line(e.o(k) + " = T(0);"); });
}
void emit_matvec(Emitter& e, int) {  // A (n x m, row-major) times v (m)
  const int m = e.adim(1);
  e.for_each(e.node().dim, [&](const Ix& r) {
    e.line(e.o(r) + " = " + e.sum(m, [&](const Ix& c) { return e.a(0, r * m + c) + " * " + e.a(1, c); }) + ";");
  });
}
void emit_vecmat(Emitter& e, int) {  // v (n) times A (n x m, row-major)
  const int n = e.adim(0), m = e.node().dim;
  e.for_each(m, [&](const Ix& c) {
    e.line(e.o(c) + " = " + e.sum(n, [&](const Ix& r) { return e.a(0, r) + " * " + e.a(1, r * m + c); }) + ";");
  });
}
void emit_tensorprod(Emitter& e, int) {
  const int n = e.adim(0), m = e.adim(1);
  e.for_each(n, [&](const Ix& r) {
    e.for_each(m, [&](const Ix& c) { e.line(e.o(r * m + c) + " = " + e.a(0, r) + " * " + e.a(1, c) + ";"); });
  });
}

// ---- derivatives that depend on the argument dimensions ----
// <x, S x> for a weight s of dim 1 (s|x|^2), D (sum_k s_k x_k^2) or D*D (x^T S x, S row-major):
//   ds = g |x|^2 (iso), g x^2 (diag), g x x^T (full);   dx = 2 g s x, or g (S + S^T) x (full).
const char* d_wsqnorm(const Dims& d) {
  if (d[0] == d[1] * d[1] && d[1] > 1) return "g * TensorProd(b, b); g * (MatVecMult(a, b) + VecMatMult(b, a))";
  return "g * Square(b); 2 * g * a * b";  // dim 1: the Square is summed back to g |x|^2
}
// The same with x - y in place of x; the adjoint of y is minus that of x.
const char* d_wsqdist(const Dims& d) {
  if (d[0] == d[1] * d[1] && d[1] > 1)
    return "g * TensorProd(b - c, b - c); g * (MatVecMult(a, b - c) + VecMatMult(b - c, a)); "
           "g * (MatVecMult(a, c - b) + VecMatMult(c - b, a))";
  return "g * Square(b - c); 2 * g * a * (b - c); 2 * g * a * (c - b)";
}

// ---- soft dynamic time warping (SoftDTW_SqDist, as KeOps) ----
// For series x (dim n) and y (dim m) and gamma > 0: R(0, 0) = d(0, 0) with d(i, j) = (x_i -
// y_j)^2; along the first row and column R sums the d's; inside, R(i, j) = d(i, j) +
// softmin(R(i-1, j-1), R(i-1, j), R(i, j-1)), softmin(r) = -gamma log sum_k exp(-r_k / gamma).
// The value is R(n-1, m-1). Columns of R are kept one at a time.
int softdtw_dim(const Dims& d, const Params&, std::string* why) {
  if (d[2] != 1) {
    *why = "gamma (argument 3) must have dimension 1";
    return 0;
  }
  return 1;
}
std::string sq_diff(Emitter& e, const Ix& i, const Ix& j) { return "rk_sq(" + e.a(0, i) + " - " + e.a(1, j) + ")"; }
// The dynamic programmes below are written as loops over the cells (not unrolled) once they have
// more than 16 cells: unrolled, the gradient's n m cells took 35 s to compile at n = m = 10.
struct CellLoops {
  Emitter& e;
  int old;
  CellLoops(Emitter& em, long long cells) : e(em), old(em.loop_dim) {
    if (cells > 16) e.loop_dim = 1;
  }
  ~CellLoops() { e.loop_dim = old; }
};
void emit_softdtw(Emitter& e, int) {
  const int n = e.adim(0), m = e.adim(1);
  CellLoops loops(e, 1LL * n * m);
  const std::string g = e.keep(e.a(2, 0)), col = e.scratch(n), diag = e.keep("T(0)");
  e.line(e.at(col, 0) + " = " + sq_diff(e, 0, 0) + ";");
  e.for_each(n - 1, [&](const Ix& k) {
    e.line(e.at(col, k + 1) + " = " + e.at(col, k) + " + " + sq_diff(e, k + 1, 0) + ";");
  });
  e.for_each(m - 1, [&](const Ix& jm) {  // column j = jm + 1; col holds column j - 1
    const Ix j = jm + 1;
    e.line(diag + " = " + e.at(col, 0) + ";");
    e.line(e.at(col, 0) + " = " + diag + " + " + sq_diff(e, 0, j) + ";");
    e.for_each(n - 1, [&](const Ix& im) {  // row i = im + 1: diag R(i-1, j-1), up R(i, j-1), left R(i-1, j)
      const Ix i = im + 1;
      e.line("{ const T up_ = " + e.at(col, i) + "; " + e.at(col, i) + " = " + sq_diff(e, i, j) +
             " + rk_softmin3(" + diag + ", up_, " + e.at(col, im) + ", " + g + "); " + diag + " = up_; }");
    });
  });
  e.line(e.o(0) + " = " + e.at(col, n - 1) + ";");
}
// The gradient of SoftDTW_SqDist in (x, y, gamma), dim n + m + 1. R and S (the softmin part
// of R, R - d) on an (n+1) x (m+1) grid, cell (i, j) at i + (n+1) j; row n and column m pad
// with S = -inf and E = 0, except the corner (S = R(n-1, m-1), E = 1). Backwards,
// E(i, j) = dR(n-1, m-1)/dR(i, j) = sum over the 3 successors s of E(s) exp((S(s) - R(i, j))
// / gamma) (the softmin weight of R(i, j) in s, 1 along the first row and column), and
// d/dx_i = sum_j E(i, j) 2 (x_i - y_j), d/dy_j = -sum_i E(i, j) 2 (x_i - y_j). Forwards, the
// gamma-derivative Dg of R: Dg(i, j) = (s - sum_k p_k r_k) / gamma + sum_k p_k Dg_k with the
// softmin weights p_k = exp((s - r_k) / gamma) (0 along the first row and column).
int gradsoftdtw_dim(const Dims& d, const Params& p, std::string* why) {
  if (!softdtw_dim(d, p, why)) return 0;
  if (1LL * (d[0] + 1) * (d[1] + 1) > 16384) {
    *why = "series too long for the gradient of SoftDTW_SqDist ((n+1)(m+1) at most 16384)";
    return 0;
  }
  return d[0] + d[1] + 1;
}
void emit_gradsoftdtw(Emitter& e, int) {
  const int n = e.adim(0), m = e.adim(1);
  CellLoops loops(e, 1LL * n * m);
  const long long P = 1LL * (n + 1) * (m + 1);
  const std::string g = e.keep(e.a(2, 0)), R = e.scratch(P), S = e.scratch(P), E = e.scratch(P), Dg = e.scratch(P);
  auto c = [&](const Ix& i, const Ix& j) { return i + j * (n + 1); };
  auto cell = [&](const std::string& arr, const Ix& i, const Ix& j) { return e.at(arr, c(i, j)); };
  // forwards: the first column, the first row, then the inside
  e.line(cell(R, 0, 0) + " = " + sq_diff(e, 0, 0) + "; " + cell(Dg, 0, 0) + " = T(0);");
  e.for_each(n - 1, [&](const Ix& k) {
    e.line(cell(S, k + 1, 0) + " = " + cell(R, k, 0) + "; " + cell(R, k + 1, 0) + " = " + cell(S, k + 1, 0) + " + " +
           sq_diff(e, k + 1, 0) + "; " + cell(Dg, k + 1, 0) + " = T(0);");
  });
  e.for_each(m - 1, [&](const Ix& k) {
    e.line(cell(S, 0, k + 1) + " = " + cell(R, 0, k) + "; " + cell(R, 0, k + 1) + " = " + cell(S, 0, k + 1) + " + " +
           sq_diff(e, 0, k + 1) + "; " + cell(Dg, 0, k + 1) + " = T(0);");
  });
  e.for_each(m - 1, [&](const Ix& jm) {
    e.for_each(n - 1, [&](const Ix& im) {
      const Ix i = im + 1, j = jm + 1;
      const std::string a = cell(R, im, jm), b = cell(R, im, j), cc = cell(R, i, jm);
      e.line("{ const T s_ = rk_softmin3(" + a + ", " + b + ", " + cc + ", " + g + "); const T pa_ = rk_exp((s_ - " +
             a + ") / " + g + "), pb_ = rk_exp((s_ - " + b + ") / " + g + "), pc_ = rk_exp((s_ - " + cc + ") / " + g +
             "); " + cell(S, i, j) + " = s_; " + cell(R, i, j) + " = s_ + " + sq_diff(e, i, j) + "; " + cell(Dg, i, j) +
             " = (s_ - pa_ * " + a + " - pb_ * " + b + " - pc_ * " + cc + ") / " + g + " + pa_ * " + cell(Dg, im, jm) +
             " + pb_ * " + cell(Dg, im, j) + " + pc_ * " + cell(Dg, i, jm) + "; }");
    });
  });
  // the padding row and column, and the corner
  e.for_each(n + 1, [&](const Ix& k) { e.line(cell(S, k, m) + " = -RK_INF; " + cell(E, k, m) + " = T(0);"); });
  e.for_each(m, [&](const Ix& k) { e.line(cell(S, n, k) + " = -RK_INF; " + cell(E, n, k) + " = T(0);"); });
  e.line(cell(S, n, m) + " = " + cell(R, n - 1, m - 1) + "; " + cell(E, n, m) + " = T(1);");
  e.for_each(n + m, [&](const Ix& k) { e.line(e.o(k) + " = T(0);"); });
  // backwards, from the last cell
  e.for_each(m, [&](const Ix& jb) {
    e.for_each(n, [&](const Ix& ib) {
      const Ix i = ib * -1 + (n - 1), j = jb * -1 + (m - 1);
      const std::string r = cell(R, i, j);
      auto w = [&](const Ix& si, const Ix& sj) {
        return cell(E, si, sj) + " * rk_exp((" + cell(S, si, sj) + " - " + r + ") / " + g + ")";
      };
      e.line(cell(E, i, j) + " = " + w(i + 1, j) + " + " + w(i, j + 1) + " + " + w(i + 1, j + 1) + ";");
      e.line("{ const T t_ = T(2) * (" + e.a(0, i) + " - " + e.a(1, j) + ") * " + cell(E, i, j) + "; " + e.o(i) +
             " += t_; " + e.o(j + n) + " -= t_; }");
    });
  });
  e.line(e.o(n + m) + " = " + cell(Dg, n - 1, m - 1) + ";");
}
// Second derivatives of SoftDTW_SqDist are not supported (nor in KeOps).
int gradsoftdtw_adjoint(Graph&, int, int, int) {
  throw UserError("formula", "GradSoftDTW_SqDist (the gradient of SoftDTW_SqDist) cannot be differentiated: "
                             "second derivatives of SoftDTW_SqDist are not supported");
}

// ---- the table ----
// H2 (last column, optional): the row's code also computes on half2 pairs (OpInfo::half2).
constexpr bool H2 = true;
// Derivatives (last column): see Deriv in ops.h. a, b, c = arguments, g = adjoint of the
// output, out = the output; the comment gives the math.
const OpInfo kOps[] = {
  // name         sig    dimension rule  scalar template / emitter          derivative
  // arithmetic (dim 1 broadcasts)
  {"Add",         "ff",  same,   "($0 + $1)", nullptr,                      "g; g", H2},                        // d(a + b) = da + db
  {"Subtract",    "ff",  same,   "($0 - $1)", nullptr,                      "g; -g", H2},                       // d(a - b) = da - db
  {"Mult",        "ff",  same,   "($0 * $1)", nullptr,                      "g * b; g * a", H2},                // d(ab) = b da + a db
  {"Divide",      "ff",  same,   "($0 / $1)", nullptr,                      "g / b; -g * out / b", H2},         // d(a/b) = da/b - (a/b) db/b
  {"Minus",       "f",   first,  "(-$0)", nullptr,                          "-g", H2},                          // d(-a) = -da
  // element-wise maths
  {"Exp",         "f",   first,  "rk_exp($0)", nullptr,                     "g * out", H2},                     // exp' = exp
  {"Log",         "f",   first,  "rk_log($0)", nullptr,                     "g / a", H2},                       // log' = 1/a
  {"Sqrt",        "f",   first,  "rk_sqrt($0)", nullptr,                    "0.5 * g * Rsqrt(a)", H2},          // 1/(2 sqrt a); 0 at a = 0 (Rsqrt(0) = 0), as KeOps
  {"Rsqrt",       "f",   first,  "rk_rsqrt($0)", nullptr,                   "-0.5 * g * Pow(out, 3)", H2},      // -a^(-3/2)/2 = -out^3/2; 0 at 0
  {"Inv",         "f",   first,  "(T(1) / $0)", nullptr,                    "-g * Square(out)", H2},            // -1/a^2
  {"Square",      "f",   first,  "($0 * $0)", nullptr,                      "2 * g * a", H2},                   // (a^2)' = 2a
  {"Abs",         "f",   first,  "rk_abs($0)", nullptr,                     "g * Sign(a)", H2},                 // subgradient 0 at 0
  {"Sign",        "f",   first,  "rk_sign($0)", nullptr,                    "0"},                           // piecewise constant
  {"Step",        "f",   first,  "rk_step($0)", nullptr,                    "0"},
  {"ReLU",        "f",   first,  "rk_relu($0)", nullptr,                    "g * Step(a)"},                 // 1 for a >= 0, as KeOps
  {"Sin",         "f",   first,  "rk_sin($0)", nullptr,                     "g * Cos(a)"},                  // sin' = cos
  {"Cos",         "f",   first,  "rk_cos($0)", nullptr,                     "-g * Sin(a)"},                 // cos' = -sin
  {"Asin",        "f",   first,  "rk_asin($0)", nullptr,                    "g * Rsqrt(1 - Square(a))"},    // 1/sqrt(1 - a^2)
  {"Acos",        "f",   first,  "rk_acos($0)", nullptr,                    "-g * Rsqrt(1 - Square(a))"},   // -1/sqrt(1 - a^2)
  {"Atan",        "f",   first,  "rk_atan($0)", nullptr,                    "g / (1 + Square(a))"},         // 1/(1 + a^2)
  // atan2(y = a, x = b): d/dy = x/(x^2 + y^2), d/dx = -y/(x^2 + y^2)
  {"Atan2",       "ff",  same,   "rk_atan2($0, $1)", nullptr,               "g * b / (Square(a) + Square(b)); -g * a / (Square(a) + Square(b))"},
  {"Floor",       "f",   first,  "rk_floor($0)", nullptr,                   "0"},                           // piecewise constant
  {"Round",       "fi",  first,  "rk_round($0, #0)", nullptr,               "0"},                           // piecewise constant
  {"XLogX",       "f",   first,  "rk_xlogx($0)", nullptr,                   "g * (Log(a) + 1)"},            // (a log a)' = log a + 1
  {"SinXDivX",    "f",   first,  "rk_sinxdivx($0)", nullptr,                "g * (Cos(a) - out) / a"},      // (cos a - sin a / a)/a (NaN at a = 0, as KeOps)
  {"Pow",         "fi",  first,  "rk_powi($0, #0)", nullptr,                "g * #0 * Pow(a, #0 - 1)", H2},     // n a^(n-1)
  {"Powf",        "ff",  same,   "rk_pow($0, $1)", nullptr,                 "g * b * Powf(a, b - 1); g * Log(a) * out", H2},  // a^b: b a^(b-1), log(a) a^b
  // clamp(x = a, lo = b, hi = c) = x < lo ? lo : (x > hi ? hi : x): 1 for the branch taken
  {"Clamp",       "fff", same,   "rk_clamp($0, $1, $2)", nullptr,
                  "g * Step(a - b) * Step(c - a); g * (1 - Step(a - b)); g * Step(a - b) * (1 - Step(c - a))"},
  {"ClampInt",    "fii", first,  "rk_clamp($0, T(#0), T(#1))", nullptr,     "g * Step(a - #0) * Step(#1 - a)"},  // 1 on [lo, hi]
  // IfElse(f, a, b) = a where f >= 0, else b: the adjoint goes to the branch taken
  {"IfElse",      "fff", same,   "($0 >= T(0) ? $1 : $2)", nullptr,         "0; IfElse(a, g, 0); IfElse(a, 0, g)"},
  // Mod(x, n, d) = x - n floor((x - d)/n): dx = 1, dn = -floor((x - d)/n), dd = 0 almost everywhere
  {"Mod",         "fff", same,   "rk_mod($0, $1, $2)", nullptr,             "g; -g * Floor((a - c) / b); 0"},
  {"Equal",       "ff",  same,   "($0 == $1 ? T(1) : T(0))", nullptr,       "0; 0"},                        // comparisons: piecewise constant
  {"NotEqual",    "ff",  same,   "($0 != $1 ? T(1) : T(0))", nullptr,       "0; 0"},
  {"LessThan",    "ff",  same,   "($0 < $1 ? T(1) : T(0))", nullptr,        "0; 0"},
  {"LessOrEqual", "ff",  same,   "($0 <= $1 ? T(1) : T(0))", nullptr,       "0; 0"},
  // DiffClampInt(x, a, b) = 1 on [a, b], else 0: the derivative of ClampInt, as KeOps
  {"DiffClampInt", "fii", first, "(($0 >= T(#0) && $0 <= T(#1)) ? T(1) : T(0))", nullptr, "0"},
  // vector operations
  {"Sum",         "f",   one,    nullptr, emit_sum,                         "SumT(g, @a)", H2},                 // each entry gets g
  {"SumT",        "fi",  param0_dim, nullptr, emit_sumt,                    "Sum(g)", H2},                      // the copies' adjoints add up
  {"Min",         "f",   one,    nullptr, emit_vmin,                        "g * OneHot(ArgMin(a), @a)"},   // g goes to the (first) minimal entry
  {"Max",         "f",   one,    nullptr, emit_vmax,                        "g * OneHot(ArgMax(a), @a)"},
  {"ArgMin",      "f",   one,    nullptr, emit_vargmin,                     "0"},                           // indices: piecewise constant
  {"ArgMax",      "f",   one,    nullptr, emit_vargmax,                     "0"},
  {"SqNorm2",     "f",   one,    nullptr, emit_sqnorm2,                     "2 * g * a", H2},                   // |a|^2: 2a
  {"Norm2",       "f",   one,    nullptr, emit_norm2,                       "g * Normalize(a)", H2},            // a/|a|, 0 at a = 0
  // out = a r with r = |a|^-1: d out = r (da - out <out, da>), a symmetric map
  {"Normalize",   "f",   first,  nullptr, emit_normalize,                   "Rsqrt(SqNorm2(a)) * (g - out * (out | g))", H2},
  {"SqDist",      "ff",  bcast_to1, nullptr, emit_sqdist,                   "2 * g * (a - b); 2 * g * (b - a)", H2},   // |a - b|^2
  {"Scalprod",    "ff",  equal2_to1, nullptr, emit_scalprod,                "g * b; g * a", H2},   // <a, b>
  {"WeightedSqNorm", "ff", wsqnorm, nullptr, emit_wsqnorm,                  d_wsqnorm, H2},
  {"WeightedSqDist", "fff", wsqdist, nullptr, emit_wsqdist,                 d_wsqdist, H2},
  {"SqNormIso",   "ff",  [](const Dims& d, const Params& p, std::string* w) { return scalar_arg(d, p, w, 0); },
                                 nullptr, emit_wsqnorm,                     "g * SqNorm2(b); 2 * g * a * b", H2},          // s |x|^2
  {"SqNormDiag",  "ff",  [](const Dims& d, const Params&, std::string* w) {
                            if (d[0] != d[1]) { *w = "the weight must have the dimension of x"; return 0; }
                            return 1; },
                                 nullptr, emit_wsqnorm,                     "g * Square(b); 2 * g * a * b", H2},           // sum s_k x_k^2
  {"SymSqNorm",   "ff",  [](const Dims& d, const Params&, std::string* w) {
                            if (d[0] != d[1] * d[1]) { *w = "the matrix must have dimension D*D"; return 0; }
                            return 1; },                                    // x^T S x: dS = g x x^T, dx = g (S + S^T) x
                                 nullptr, emit_wsqnorm,                     "g * TensorProd(b, b); g * (MatVecMult(a, b) + VecMatMult(b, a))", H2},
  // Elem/ElemT and Extract/ExtractT are each other's adjoint; Concat splits the adjoint
  {"Elem",        "fi",  [](const Dims& d, const Params& p, std::string* w) {
                            if (p[0] < 0 || p[0] >= d[0]) { *w = "index " + std::to_string(p[0]) + " out of range [0, " + std::to_string(d[0]) + ")"; return 0; }
                            return 1; },
                                 nullptr, emit_elem,                        "ElemT(g, @a, #0)", H2},
  {"ElemT",       "fii", [](const Dims& d, const Params& p, std::string* w) {
                            if (d[0] != 1) { *w = "the first argument must have dimension 1"; return 0; }
                            if (p[0] <= 0 || p[1] < 0 || p[1] >= p[0]) { *w = "need 0 <= m < n"; return 0; }
                            if (p[0] > kMaxDim) return too_big(p[0], w);
                            return p[0]; },
                                 nullptr, emit_elemt,                       "Elem(g, #1)", H2},
  {"Extract",     "fii", [](const Dims& d, const Params& p, std::string* w) {
                            if (p[0] < 0 || p[1] <= 0 || p[0] + p[1] > d[0]) { *w = "range [" + std::to_string(p[0]) + ", " + std::to_string(p[0] + p[1]) + ") out of [0, " + std::to_string(d[0]) + ")"; return 0; }
                            return p[1]; },
                                 nullptr, emit_extract,                     "ExtractT(g, #0, @a)", H2},
  {"ExtractT",    "fii", [](const Dims& d, const Params& p, std::string* w) {
                            if (p[0] < 0 || p[0] + d[0] > p[1]) { *w = "the argument does not fit at position " + std::to_string(p[0]) + " in dimension " + std::to_string(p[1]); return 0; }
                            if (p[1] > kMaxDim) return too_big(p[1], w);
                            return p[1]; },
                                 nullptr, emit_extractt,                    "Extract(g, #0, @a)", H2},
  {"Concat",      "ff",  [](const Dims& d, const Params&, std::string* w) {
                            return d[0] + d[1] > kMaxDim ? too_big(d[0] + d[1], w) : d[0] + d[1]; },
                                 nullptr, emit_concat,                      "Extract(g, 0, @a); Extract(g, @a, @b)", H2},
  {"OneHot",      "fi",  param0_dim, nullptr, emit_onehot,                  "0"},                           // piecewise constant
  {"Zero",        "i",   param0_dim, nullptr, emit_zero,                    "", H2},   // no formula argument
  // out = A v (A: n x m row-major, v: m): dA = g v^T, dv = A^T g; and the transposed forms
  {"MatVecMult",  "ff",  [](const Dims& d, const Params&, std::string* w) {
                            if (d[0] % d[1] != 0) { *w = "the matrix dimension must be a multiple of the vector dimension"; return 0; }
                            return d[0] / d[1]; },
                                 nullptr, emit_matvec,                      "TensorProd(g, b); VecMatMult(g, a)", H2},
  {"VecMatMult",  "ff",  [](const Dims& d, const Params&, std::string* w) {  // out = A^T v: dv = A g, dA = v g^T
                            if (d[1] % d[0] != 0) { *w = "the matrix dimension must be a multiple of the vector dimension"; return 0; }
                            return d[1] / d[0]; },
                                 nullptr, emit_vecmat,                      "MatVecMult(b, g); TensorProd(a, g)", H2},
  // out = a b^T (row-major): da = G b, db = G^T a with G the adjoint as an n x m matrix
  {"TensorProd",  "ff",  [](const Dims& d, const Params&, std::string* w) {
                            long long n = 1LL * d[0] * d[1];
                            return n > kMaxDim ? too_big(n, w) : static_cast<int>(n); },
                                 nullptr, emit_tensorprod,                  "MatVecMult(g, b); VecMatMult(a, g)", H2},
  // TensorDot(a, b, Ind(shape a), Ind(shape b), Ind(axes of a), Ind(axes of b)[, Ind(perm)]):
  // contraction of row-major tensors (ops_tensor.cpp); its adjoints are TensorDots again
  {"TensorDot",   "fftttto", tensordot_dim, nullptr, emit_tensordot,        tensordot_adjoint, H2},
  // BSpline(knots, x, order): the n - order - 1 B-spline basis functions at the scalar x
  {"BSpline",     "ffi", bspline_dim,    nullptr, emit_bspline,             bspline_adjoint},
  // SoftDTW_SqDist(x, y, gamma): soft-DTW of the series x and y (squared differences), as KeOps;
  // its adjoints are parts of GradSoftDTW_SqDist = (d/dx, d/dy, d/dgamma)
  {"SoftDTW_SqDist", "fff", softdtw_dim, nullptr, emit_softdtw,
                  "g * Extract(GradSoftDTW_SqDist(a, b, c), 0, @a); g * Extract(GradSoftDTW_SqDist(a, b, c), @a, @b); "
                  "g * Elem(GradSoftDTW_SqDist(a, b, c), @a + @b)"},
  {"GradSoftDTW_SqDist", "fff", gradsoftdtw_dim, nullptr, emit_gradsoftdtw, gradsoftdtw_adjoint},
};

size_t count_sig(const char* sig, char c) {
  size_t n = 0;
  for (const char* s = sig; *s; ++s) n += (*s == c);
  return n;
}

}  // namespace

size_t OpInfo::nargs() const { return count_sig(sig, 'f'); }
size_t OpInfo::nparams() const { return std::strlen(sig) - nargs(); }
bool OpInfo::has_tuples() const { return count_sig(sig, 't') + count_sig(sig, 'o') > 0; }

bool OpInfo::params_fit(const std::vector<int>& params) const {
  size_t at = 0;
  for (const char* s = sig; *s; ++s) {
    if (*s == 'f') continue;
    if (at >= params.size()) return false;
    if (*s == 'i') {
      ++at;
      continue;
    }
    if (params[at] < 0) return false;
    at += 1 + static_cast<size_t>(params[at]);
  }
  return at == params.size();
}

std::vector<std::vector<int>> split_params(const OpInfo& op, const std::vector<int>& params) {
  RK_ASSERT(op.params_fit(params), std::string("bad parameter layout for ") + op.name);
  std::vector<std::vector<int>> out;
  size_t at = 0;
  for (const char* s = op.sig; *s; ++s) {
    if (*s == 'f') continue;
    size_t n = *s == 'i' ? 1 : static_cast<size_t>(params[at++]);
    out.emplace_back(params.begin() + at, params.begin() + at + n);
    at += n;
  }
  return out;
}

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

int checked_dim(const OpInfo& op, const std::vector<int>& dims, const std::vector<int>& params,
                const std::function<std::string()>& where) {
  std::string why;
  int d = op.dim_rule(dims, params, &why);
  if (d > 0) return d;
  std::string sizes;
  for (size_t k = 0; k < dims.size(); ++k) sizes += (k ? ", " : "") + std::to_string(dims[k]);
  throw UserError("dimension",
                  "dimension mismatch in " + where() + ": " + why + " (argument dimensions: " + sizes + ")");
}

}  // namespace rkeops

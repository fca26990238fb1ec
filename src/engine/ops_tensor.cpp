// The tensor operations with tuple parameters, TensorDot (Kron is parsed into one), and the
// B-spline basis: dimension rules, emitters and the TensorDot adjoints, used by their rows of
// the operation table (ops.cpp).
//
// TensorDot(a, b, Ind(shape of a), Ind(shape of b), Ind(axes of a), Ind(axes of b)[, Ind(perm)])
// reads a and b as row-major tensors, contracts axis ca[k] of a with axis cb[k] of b, and
// returns the remaining ("free") axes of a followed by those of b, row-major; with perm, free
// axis k goes to output position perm[k].
#include "ops_tensor.h"

#include <algorithm>
#include <string>
#include <vector>

#include "ast.h"
#include "codegen.h"
#include "errors.h"
#include "ops.h"
#include "simplify.h"

namespace rkeops {
namespace {

constexpr long long kMaxDim = 100000;     // as the other operations' outputs
constexpr long long kMaxTerms = 1000000;  // products emitted for one TensorDot

// Saturates at 2^40 (shapes hold up to 16 entries of up to 9 digits each: no overflow).
long long product(const std::vector<int>& v) {
  constexpr long long kBig = 1LL << 40;
  long long p = 1;
  for (int x : v) {
    if (x <= 0) return 0;
    p = p > kBig / x ? kBig : p * x;
  }
  return p;
}

// Row-major strides of a shape.
std::vector<long long> strides(const std::vector<int>& shape) {
  std::vector<long long> s(shape.size(), 1);
  for (int k = static_cast<int>(shape.size()) - 2; k >= 0; --k) s[k] = s[k + 1] * shape[k + 1];
  return s;
}

// The axes of a tensor with `n` axes that are not in `contracted`, in increasing order.
std::vector<int> free_axes(int n, const std::vector<int>& contracted) {
  std::vector<int> f;
  for (int k = 0; k < n; ++k)
    if (std::find(contracted.begin(), contracted.end(), k) == contracted.end()) f.push_back(k);
  return f;
}

bool is_permutation_of(const std::vector<int>& p, int n) {
  if (static_cast<int>(p.size()) != n) return false;
  std::vector<char> seen(n, 0);
  for (int x : p) {
    if (x < 0 || x >= n || seen[x]) return false;
    seen[x] = 1;
  }
  return true;
}

// A TensorDot's parameters, decoded and checked.
struct Spec {
  std::vector<int> da, db, ca, cb, perm;  // perm: free axis k -> output position perm[k]
  std::vector<int> fa, fb;                // free axes of a and b
  std::vector<int> out_shape;             // output axes (after perm)
  long long contracted = 1;               // number of terms of each output entry

  // Fails with a reason when the parameters or argument dimensions do not fit.
  bool decode(const std::vector<int>& dims, const std::vector<int>& params, std::string* why) {
    auto parts = split_params(op_info(find_op("TensorDot")), params);
    da = parts[0];
    db = parts[1];
    ca = parts[2];
    cb = parts[3];
    perm = parts[4];
    for (int x : da)
      if (x <= 0) {
        *why = "the shape of a must have positive entries";
        return false;
      }
    for (int x : db)
      if (x <= 0) {
        *why = "the shape of b must have positive entries";
        return false;
      }
    if (product(da) != dims[0]) {
      *why = "the shape of a has " + std::to_string(product(da)) + " entries but a has dimension " +
             std::to_string(dims[0]);
      return false;
    }
    if (product(db) != dims[1]) {
      *why = "the shape of b has " + std::to_string(product(db)) + " entries but b has dimension " +
             std::to_string(dims[1]);
      return false;
    }
    if (ca.size() != cb.size()) {
      *why = "a and b must have as many contracted axes";
      return false;
    }
    std::vector<char> used_a(da.size(), 0), used_b(db.size(), 0);
    for (size_t k = 0; k < ca.size(); ++k) {
      if (ca[k] < 0 || ca[k] >= static_cast<int>(da.size()) || used_a[ca[k]] || cb[k] < 0 ||
          cb[k] >= static_cast<int>(db.size()) || used_b[cb[k]]) {
        *why = "contracted axes must be distinct axes of a and of b";
        return false;
      }
      used_a[ca[k]] = used_b[cb[k]] = 1;
      if (da[ca[k]] != db[cb[k]]) {
        *why = "contracted axes " + std::to_string(ca[k]) + " of a and " + std::to_string(cb[k]) +
               " of b have different sizes";
        return false;
      }
      contracted *= da[ca[k]];
    }
    fa = free_axes(static_cast<int>(da.size()), ca);
    fb = free_axes(static_cast<int>(db.size()), cb);
    const int nfree = static_cast<int>(fa.size() + fb.size());
    if (perm.empty())
      for (int k = 0; k < nfree; ++k) perm.push_back(k);
    if (!is_permutation_of(perm, nfree)) {
      *why = "the permutation must hold each of 0.." + std::to_string(nfree - 1) + " once";
      return false;
    }
    out_shape.assign(nfree, 0);
    for (int k = 0; k < nfree; ++k)
      out_shape[perm[k]] = k < static_cast<int>(fa.size()) ? da[fa[k]] : db[fb[k - fa.size()]];
    return true;
  }
};

// Flat parameters of TensorDot(·, ·, da, db, ca, cb, perm).
std::vector<int> encode(const std::vector<std::vector<int>>& tuples) {
  std::vector<int> p;
  for (auto& t : tuples) {
    p.push_back(static_cast<int>(t.size()));
    p.insert(p.end(), t.begin(), t.end());
  }
  return p;
}

}  // namespace

int tensordot_dim(const std::vector<int>& dims, const std::vector<int>& params, std::string* why) {
  Spec s;
  if (!s.decode(dims, params, why)) return 0;
  long long n = product(s.out_shape);
  if (n > kMaxDim) {
    *why = "the result would have dimension " + std::to_string(n) + ", more than " + std::to_string(kMaxDim);
    return 0;
  }
  if (n * s.contracted > kMaxTerms) {
    *why = "the contraction has more than " + std::to_string(kMaxTerms) + " terms";
    return 0;
  }
  return static_cast<int>(n);
}

void emit_tensordot(Emitter& e, int) {
  Spec s;
  std::string why;
  RK_ASSERT(s.decode({e.adim(0), e.adim(1)}, e.node().params, &why), "TensorDot: " + why);
  const std::vector<long long> sa = strides(s.da), sb = strides(s.db), so = strides(s.out_shape);
  const int nfa = static_cast<int>(s.fa.size()), nfree = static_cast<int>(s.perm.size());
  const long long nout = product(s.out_shape);
  std::vector<int> cshape;
  for (int k : s.ca) cshape.push_back(s.da[k]);
  const std::vector<long long> sc = strides(cshape);
  // Offsets in a and b of output entry o (its free indices) and of contracted index c.
  std::vector<long long> base_a(nout), base_b(nout), off_a(s.contracted), off_b(s.contracted);
  for (long long o = 0; o < nout; ++o) {
    // Free index k of the natural order sits at output axis perm[k].
    for (int k = 0; k < nfree; ++k) {
      long long idx = (o / so[s.perm[k]]) % s.out_shape[s.perm[k]];
      if (k < nfa)
        base_a[o] += idx * sa[s.fa[k]];
      else
        base_b[o] += idx * sb[s.fb[k - nfa]];
    }
  }
  for (long long c = 0; c < s.contracted; ++c)
    for (size_t m = 0; m < cshape.size(); ++m) {
      long long idx = (c / sc[m]) % cshape[m];
      off_a[c] += idx * sa[s.ca[m]];
      off_b[c] += idx * sb[s.cb[m]];
    }
  if (!e.wide()) {
    for (long long o = 0; o < nout; ++o) {
      std::vector<std::string> terms;
      for (long long c = 0; c < s.contracted; ++c)
        terms.push_back(e.a(0, base_a[o] + off_a[c]) + " * " + e.a(1, base_b[o] + off_b[c]));
      e.line(e.o(o) + " = " + sum_terms(e, terms) + ";");
    }
    return;
  }
  // Wide: index maps in tables, read where a loop variable indexes them.
  std::string tba, tbb, toa, tob;
  auto lookup = [&](const std::vector<long long>& v, std::string* name, const Ix& k) {
    if (k.is_const()) return Ix(v[k.value()]);
    if (name->empty()) *name = e.table(v);
    return Ix(*name + "[" + k.str() + "]");
  };
  e.for_each(nout, [&](const Ix& o) {
    Ix ia = lookup(base_a, &tba, o), ib = lookup(base_b, &tbb, o);
    e.line(e.o(o) + " = " + e.sum(s.contracted, [&](const Ix& c) {
      return e.a(0, ia + lookup(off_a, &toa, c)) + " * " + e.a(1, ib + lookup(off_b, &tob, c));
    }) + ";");
  });
}

// The adjoint of argument k (a or b) for the output adjoint g (with the output's shape): g
// contracted with the other argument over the other argument's free axes, then its axes put
// back in the order of the argument's own axes. Both are again TensorDots.
int tensordot_adjoint(Graph& g, int id, int k, int go) {
  const Node n = g[id];
  Spec s;
  std::string why;
  RK_ASSERT(s.decode({g[n.args[0]].dim, g[n.args[1]].dim}, n.params, &why), "TensorDot: " + why);
  const int nfa = static_cast<int>(s.fa.size()), nfree = static_cast<int>(s.perm.size());
  // Side k: its shape, free axes, contracted axes; the other side likewise.
  const std::vector<int>& fk = k == 0 ? s.fa : s.fb;
  const std::vector<int>& ck = k == 0 ? s.ca : s.cb;
  const std::vector<int>& dother = k == 0 ? s.db : s.da;
  const std::vector<int>& fother = k == 0 ? s.fb : s.fa;
  const std::vector<int>& cother = k == 0 ? s.cb : s.ca;
  // Natural free axes of side k and of the other side.
  std::vector<int> nat_k, nat_o;
  for (int q = 0; q < nfree; ++q) ((q < nfa) == (k == 0) ? nat_k : nat_o).push_back(q);
  // Contract g's axes holding the other side's free axes with those axes of the other side.
  std::vector<int> cg, co;
  for (size_t m = 0; m < nat_o.size(); ++m) {
    cg.push_back(s.perm[nat_o[m]]);
    co.push_back(fother[m]);
  }
  // Free axes of the result, in order: g's remaining axes (side k's free axes, by output
  // position), then the other side's remaining axes (its contracted ones, in axis order).
  std::vector<int> gfree = free_axes(nfree, cg);  // output positions, increasing
  std::vector<int> perm;
  for (int pos : gfree) {
    int q = static_cast<int>(std::find(s.perm.begin(), s.perm.end(), pos) - s.perm.begin());
    int m = static_cast<int>(std::find(nat_k.begin(), nat_k.end(), q) - nat_k.begin());
    perm.push_back(fk[m]);
  }
  for (int ax : free_axes(static_cast<int>(dother.size()), co)) {
    int m = static_cast<int>(std::find(cother.begin(), cother.end(), ax) - cother.begin());
    perm.push_back(ck[m]);
  }
  std::vector<int> params = encode({s.out_shape, dother, cg, co, perm});
  return simplified_call(g, "TensorDot", {go, n.args[1 - k]}, params);
}

std::vector<int> kron_params(const std::vector<int>& shape_a, const std::vector<int>& shape_b) {
  const int n = static_cast<int>(shape_a.size());
  std::vector<int> perm;  // free axis k of a goes to 2k, axis k of b to 2k + 1
  for (int k = 0; k < n; ++k) perm.push_back(2 * k);
  for (int k = 0; k < n; ++k) perm.push_back(2 * k + 1);
  return encode({shape_a, shape_b, {}, {}, perm});
}

int bspline_dim(const std::vector<int>& dims, const std::vector<int>& params, std::string* why) {
  const int order = params[0];
  if (order < 0) {
    *why = "the order must be >= 0";
    return 0;
  }
  if (dims[1] != 1) {
    *why = "B-splines are evaluated at a scalar: x must have dimension 1";
    return 0;
  }
  if (dims[0] < order + 2) {
    *why = "B-splines of order " + std::to_string(order) + " need at least " + std::to_string(order + 2) + " knots";
    return 0;
  }
  if (1LL * dims[0] * (order + 1) > kMaxTerms) {
    *why = "too many knots for this order";
    return 0;
  }
  return dims[0] - order - 1;
}

// d/dx of the basis of order p: B'_i = c_i - c_i+1 with c_i = p B_i^(p-1) / (t_i+p - t_i)
// (0 where the knots coincide: B_i^(p-1) is 0 there too). The knots get no derivative.
int bspline_adjoint(Graph& g, int id, int k, int go) {
  const Node n = g[id];
  if (k == 0) throw UserError("formula", "BSpline can be differentiated with respect to x, not to its knots");
  const int p = n.params[0];
  if (p == 0) return -1;                                                      // piecewise constant
  const int knots = n.args[0], x = n.args[1], nk = g[knots].dim, m = nk - p;  // m = dim of order p - 1
  int lower = simplified_call(g, "BSpline", {knots, x}, {p - 1});
  int delta = simplified_call(
      g, "Subtract", {simplified_call(g, "Extract", {knots}, {p, m}), simplified_call(g, "Extract", {knots}, {0, m})});
  int c = simplified_call(
      g, "IfElse",
      {simplified_call(g, "Minus", {delta}), g.constant(0, true),
       simplified_call(g, "Divide", {simplified_call(g, "Mult", {g.constant(p, true), lower}), delta})});
  int d = simplified_call(
      g, "Subtract", {simplified_call(g, "Extract", {c}, {0, m - 1}), simplified_call(g, "Extract", {c}, {1, m - 1})});
  return simplified_call(g, "Scalprod", {go, d});
}

// Cox-de Boor: the order-0 basis (indicators of [t_j, t_j+1)), then `order` rounds of
// B_i <- w_i B_i + (1 - w_i+1) B_i+1 with w_i = (x - t_i) / (t_i+k - t_i) (0 where the knots
// coincide).
void emit_bspline(Emitter& e, int) {
  const int n = e.adim(0), order = e.p(0);
  if (e.wide()) {  // the same recurrence on a scratch array, loops over the knots
    const std::string x = e.keep(e.a(1, 0)), b = e.scratch(n - 1);
    auto t = [&](const Ix& k) { return e.a(0, k); };
    auto ratio = [&](const Ix& i, int k) {
      return "(" + t(i) + " < " + t(i + k) + " ? (" + x + " - " + t(i) + ") / (" + t(i + k) + " - " + t(i) + ") : T(0))";
    };
    e.for_each(n - 1, [&](const Ix& j) {
      e.line(e.at(b, j) + " = (" + t(j) + " <= " + x + " && " + x + " < " + t(j + 1) + ") ? T(1) : T(0);");
    });
    for (int k = 1; k <= order; ++k)  // in increasing i: b[i + 1] is still of order k - 1
      e.for_each(n - 1 - k, [&](const Ix& i) {
        e.line(e.at(b, i) + " = " + ratio(i, k) + " * " + e.at(b, i) + " + (T(1) - " + ratio(i + 1, k) + ") * " +
               e.at(b, i + 1) + ";");
      });
    e.for_each(n - order - 1, [&](const Ix& j) { e.line(e.o(j) + " = " + e.at(b, j) + ";"); });
    return;
  }
  std::string x = e.tmp();
  e.line("T " + x + " = " + e.a(1, 0) + ";");
  std::vector<std::string> b(n - 1);
  for (int j = 0; j < n - 1; ++j) {
    b[j] = e.tmp();
    e.line("T " + b[j] + " = (" + e.a(0, j) + " <= " + x + " && " + x + " < " + e.a(0, j + 1) + ") ? T(1) : T(0);");
  }
  auto ratio = [&](int i, int k) {
    std::string t0 = e.a(0, i), tk = e.a(0, i + k), w = e.tmp();
    e.line("T " + w + " = " + t0 + " < " + tk + " ? (" + x + " - " + t0 + ") / (" + tk + " - " + t0 + ") : T(0);");
    return w;
  };
  for (int k = 1; k <= order; ++k) {
    std::string w_i = ratio(0, k);
    for (int i = 0; i < n - 1 - k; ++i) {
      std::string w_next = ratio(i + 1, k);
      e.line(b[i] + " = " + w_i + " * " + b[i] + " + (T(1) - " + w_next + ") * " + b[i + 1] + ";");
      w_i = w_next;
    }
  }
  for (int j = 0; j < n - order - 1; ++j) e.line(e.o(j) + " = " + b[j] + ";");
}

}  // namespace rkeops

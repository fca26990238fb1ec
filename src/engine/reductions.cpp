// The reduction table (see reductions.h). Emitted code uses T (float or double) and RK_INF.
#include "reductions.h"

#include <vector>

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
  for (int k = 0; k < s.d; ++k) c.line(c.out(k) + " = " + at(c.st, k) + ";");
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
  for (int k = 0; k < s.d; ++k) c.line(c.out(k) + " = " + at(c.st, k) + ";");
}
void arg_final(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k) c.line(c.out(k) + " = double(" + at(c.si, k) + " < 0 ? 0 : " + at(c.si, k) + ");");
}
void valarg_final(RedCode& c, const S& s) {
  val_final(c, s);
  for (int k = 0; k < s.d; ++k)
    c.line(c.out(s.d + k) + " = double(" + at(c.si, k) + " < 0 ? 0 : " + at(c.si, k) + ");");
}

// ---- KMin family: per coordinate k, the K smallest values sorted, st[k*K + r] ----
void kmin_init(RedCode& c, const S& s) {
  c.line("for (int r_ = 0; r_ < " + I(s.K * s.d) + "; ++r_) { " + c.st + "[r_] = RK_INF; " + c.si + "[r_] = -1; }");
}
// Inserts (value v, index jj) into the sorted list of coordinate k (strictly smaller goes first,
// so among equal values the earlier index stays ahead).
std::string kmin_insert(const RedCode& c, const S& s, int k, const std::string& v, const std::string& jj) {
  std::string base = I(k * s.K), last = I(k * s.K + s.K - 1);
  return "if (" + v + " < " + c.st + "[" + last + "]) { int r = " + I(s.K - 1) + "; while (r > 0 && " + v + " < " +
         c.st + "[" + base + " + r - 1]) { " + c.st + "[" + base + " + r] = " + c.st + "[" + base + " + r - 1]; " +
         c.si + "[" + base + " + r] = " + c.si + "[" + base + " + r - 1]; --r; } " + c.st + "[" + base +
         " + r] = " + v + "; " + c.si + "[" + base + " + r] = " + jj + "; }";
}
void kmin_acc(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k) c.line(kmin_insert(c, s, k, c.f(k), c.j));
}
void kmin_merge(RedCode& c, const S& s) {
  for (int k = 0; k < s.d; ++k)
    c.line("for (int q = 0; q < " + I(s.K) + "; ++q) { T v_ = " + c.st2 + "[" + I(k * s.K) + " + q]; long long jj_ = " +
           c.si2 + "[" + I(k * s.K) + " + q]; if (jj_ < 0) break; " + kmin_insert(c, s, k, "v_", "jj_") + " }");
}
// Output layout: for each rank r, the d coordinates (row-major K x d, as KeOps).
void kmin_final(RedCode& c, const S& s) {
  for (int r = 0; r < s.K; ++r)
    for (int k = 0; k < s.d; ++k) c.line(c.out(r * s.d + k) + " = " + at(c.st, k * s.K + r) + ";");
}
void argkmin_final(RedCode& c, const S& s) {
  for (int r = 0; r < s.K; ++r)
    for (int k = 0; k < s.d; ++k)
      c.line(c.out(r * s.d + k) + " = double(" + at(c.si, k * s.K + r) + " < 0 ? 0 : " + at(c.si, k * s.K + r) + ");");
}
void kminargkmin_final(RedCode& c, const S& s) {
  kmin_final(c, s);
  for (int r = 0; r < s.K; ++r)
    for (int k = 0; k < s.d; ++k)
      c.line(c.out(s.K * s.d + r * s.d + k) + " = double(" + at(c.si, k * s.K + r) +
             " < 0 ? 0 : " + at(c.si, k * s.K + r) + ");");
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
  for (int k = 0; k < nw(s); ++k) c.line(c.out(k) + " = " + at(c.st, 0) + " + rk_log(" + at(c.st, 1 + k) + ");");
}
void shift_final(RedCode& c, const S& s) {  // (m, sums) as they are
  for (int k = 0; k < 1 + nw(s); ++k) c.line(c.out(k) + " = " + at(c.st, k) + ";");
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
  for (int k = 0; k < s.dw; ++k) c.line(c.out(k) + " = " + at(c.st, 2 + k) + " / " + at(c.st, 1) + ";");
}
int dim_dw(const S& s) { return s.dw; }

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

const ReductionInfo kReductions[] = {
    // name               extra         sum?   state     istate   out       check  init             acc merge final
    {"Sum", Extra::None, true, dim_d, dim_0, dim_d, nullptr, sum_init, sum_acc, sum_merge, sum_final},
    {"Min", Extra::None, false, dim_d, dim_d, dim_d, nullptr, ext_init<true>, ext_acc<true>, ext_merge<true>,
     val_final},
    {"Max", Extra::None, false, dim_d, dim_d, dim_d, nullptr, ext_init<false>, ext_acc<false>, ext_merge<false>,
     val_final},
    {"ArgMin", Extra::None, false, dim_d, dim_d, dim_d, nullptr, ext_init<true>, ext_acc<true>, ext_merge<true>,
     arg_final},
    {"ArgMax", Extra::None, false, dim_d, dim_d, dim_d, nullptr, ext_init<false>, ext_acc<false>, ext_merge<false>,
     arg_final},
    {"Min_ArgMin", Extra::None, false, dim_d, dim_d, dim_2d, nullptr, ext_init<true>, ext_acc<true>, ext_merge<true>,
     valarg_final},
    {"Max_ArgMax", Extra::None, false, dim_d, dim_d, dim_2d, nullptr, ext_init<false>, ext_acc<false>, ext_merge<false>,
     valarg_final},
    {"KMin", Extra::K, false, dim_kd, dim_kd, dim_kd, nullptr, kmin_init, kmin_acc, kmin_merge, kmin_final},
    {"ArgKMin", Extra::K, false, dim_kd, dim_kd, dim_kd, nullptr, kmin_init, kmin_acc, kmin_merge, argkmin_final},
    {"KMin_ArgKMin", Extra::K, false, dim_kd, dim_kd, dim_2kd, nullptr, kmin_init, kmin_acc, kmin_merge,
     kminargkmin_final},
    {"LogSumExp", Extra::None, false, dim_shift, dim_0, dim_nw, "d1", shift_init, shift_acc, shift_merge, lse_final,
     shift_tile},
    {"LogSumExpWeight", Extra::Weight, false, dim_shift, dim_0, dim_nw, "d1", shift_init, shift_acc, shift_merge,
     lse_final, shift_tile},
    {"Max_SumShiftExp", Extra::None, false, dim_shift, dim_0, dim_1nw, "d1", shift_init, shift_acc, shift_merge,
     shift_final, shift_tile},
    {"Max_SumShiftExpWeight", Extra::Weight, false, dim_shift, dim_0, dim_1nw, "d1", shift_init, shift_acc, shift_merge,
     shift_final, shift_tile},
    {"SumSoftMaxWeight", Extra::Weight, false, dim_ssmw, dim_0, dim_dw, "d1", ssmw_init, ssmw_acc, ssmw_merge,
     ssmw_final, ssmw_tile},
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

}  // namespace rkeops

// Complex-number operations: a complex of dim d is a real vector of dim 2d (re, im
// interleaved). Same row layout as the real table in ops.cpp. As in KeOps, the element-wise
// binary operations broadcast a complex scalar (real dim 2) against a complex vector.
#include <string>
#include <vector>

#include "codegen.h"
#include "errors.h"
#include "ops.h"

namespace rkeops {
namespace {

using Dims = std::vector<int>;
using Params = std::vector<int>;

// ---- dimension rules (real dimensions) ----
bool even(int d, int i, std::string* why) {
  if (d % 2 == 0) return true;
  *why = "argument " + std::to_string(i + 1) +
         " must be complex (an even dimension: re, im interleaved), got dimension " + std::to_string(d);
  return false;
}
int cx_same(const Dims& d, const Params&, std::string* why) {  // equal, or a complex scalar broadcasts
  if (!even(d[0], 0, why) || !even(d[1], 1, why)) return 0;
  if (d[0] == d[1] || d[1] == 2) return d[0];
  if (d[0] == 2) return d[1];
  *why = "complex operands must have the same dimension or complex dimension 1";
  return 0;
}
int cx_keep(const Dims& d, const Params&, std::string* why) { return even(d[0], 0, why) ? d[0] : 0; }
int cx_half(const Dims& d, const Params&, std::string* why) { return even(d[0], 0, why) ? d[0] / 2 : 0; }
int cx_double(const Dims& d, const Params&, std::string*) { return 2 * d[0]; }
int cx_to1(const Dims& d, const Params&, std::string* why) { return even(d[0], 0, why) ? 2 : 0; }
int cx_sumt(const Dims& d, const Params& p, std::string* why) {  // ComplexSumT(f, n): n = real dim
  if (d[0] != 2) {
    *why = "the first argument must be a complex scalar (dimension 2)";
    return 0;
  }
  if (p[0] <= 0 || p[0] % 2) {
    *why = "the output dimension must be a positive even integer";
    return 0;
  }
  return p[0];
}
int cx_realscal(const Dims& d, const Params&, std::string* why) {  // a real scalar and a complex
  if (d[0] == 1 && d[1] % 2 == 0) return d[1];
  if (d[1] == 1 && d[0] % 2 == 0) return d[0];
  *why = "expects a real scalar (dimension 1) and a complex vector (even dimension)";
  return 0;
}

// ---- emitters ----
// Loops over complex components through Emitter::for_each/sum (unrolled for small dimensions).
// Real and imaginary parts of complex component k of argument i (a complex scalar broadcasts).
std::string re(const Emitter& e, int i, const Ix& k) { return e.a(i, e.adim(i) == 2 ? Ix(0) : k * 2); }
std::string im(const Emitter& e, int i, const Ix& k) { return e.a(i, e.adim(i) == 2 ? Ix(1) : k * 2 + 1); }
int ncx(const Emitter& e) { return e.node().dim / 2; }  // complex components of the output

void emit_add(Emitter& e, int) {
  e.for_each(ncx(e), [&](const Ix& k) {
    e.line(e.o(k * 2) + " = " + re(e, 0, k) + " + " + re(e, 1, k) + ";");
    e.line(e.o(k * 2 + 1) + " = " + im(e, 0, k) + " + " + im(e, 1, k) + ";");
  });
}
void emit_sub(Emitter& e, int) {
  e.for_each(ncx(e), [&](const Ix& k) {
    e.line(e.o(k * 2) + " = " + re(e, 0, k) + " - " + re(e, 1, k) + ";");
    e.line(e.o(k * 2 + 1) + " = " + im(e, 0, k) + " - " + im(e, 1, k) + ";");
  });
}
// (a + ib)(c + id) = (ac - bd) + i(ad + bc)
void emit_mult(Emitter& e, int) {
  e.for_each(ncx(e), [&](const Ix& k) {
    std::string a = re(e, 0, k), b = im(e, 0, k), c = re(e, 1, k), d = im(e, 1, k);
    e.line(e.o(k * 2) + " = " + a + " * " + c + " - " + b + " * " + d + ";");
    e.line(e.o(k * 2 + 1) + " = " + a + " * " + d + " + " + b + " * " + c + ";");
  });
}
// (a + ib)/(c + id) = ((ac + bd) + i(bc - ad)) / (c^2 + d^2)
void emit_divide(Emitter& e, int) {
  e.for_each(ncx(e), [&](const Ix& k) {
    std::string a = re(e, 0, k), b = im(e, 0, k), c = re(e, 1, k), d = im(e, 1, k);
    std::string q = e.tmp();
    e.line("T " + q + " = T(1) / (" + c + " * " + c + " + " + d + " * " + d + ");");
    e.line(e.o(k * 2) + " = (" + a + " * " + c + " + " + b + " * " + d + ") * " + q + ";");
    e.line(e.o(k * 2 + 1) + " = (" + b + " * " + c + " - " + a + " * " + d + ") * " + q + ";");
  });
}
// exp(a + ib) = e^a (cos b + i sin b)
void emit_exp(Emitter& e, int) {
  e.for_each(ncx(e), [&](const Ix& k) {
    std::string r = e.tmp();
    e.line("T " + r + " = rk_exp(" + re(e, 0, k) + ");");
    e.line(e.o(k * 2) + " = " + r + " * rk_cos(" + im(e, 0, k) + ");");
    e.line(e.o(k * 2 + 1) + " = " + r + " * rk_sin(" + im(e, 0, k) + ");");
  });
}
// exp(i f) = cos f + i sin f, for a real f
void emit_exp1j(Emitter& e, int) {
  e.for_each(ncx(e), [&](const Ix& k) {
    e.line(e.o(k * 2) + " = rk_cos(" + e.a(0, k) + ");");
    e.line(e.o(k * 2 + 1) + " = rk_sin(" + e.a(0, k) + ");");
  });
}
std::string sqabs(const Emitter& e, const Ix& k) {
  return re(e, 0, k) + " * " + re(e, 0, k) + " + " + im(e, 0, k) + " * " + im(e, 0, k);
}
void emit_abs(Emitter& e, int) {
  e.for_each(e.node().dim, [&](const Ix& k) { e.line(e.o(k) + " = rk_sqrt(" + sqabs(e, k) + ");"); });
}
void emit_sqabs(Emitter& e, int) {
  e.for_each(e.node().dim, [&](const Ix& k) { e.line(e.o(k) + " = " + sqabs(e, k) + ";"); });
}
void emit_angle(Emitter& e, int) {
  e.for_each(e.node().dim,
             [&](const Ix& k) { e.line(e.o(k) + " = rk_atan2(" + im(e, 0, k) + ", " + re(e, 0, k) + ");"); });
}
void emit_real(Emitter& e, int) {
  e.for_each(e.node().dim, [&](const Ix& k) { e.line(e.o(k) + " = " + re(e, 0, k) + ";"); });
}
void emit_imag(Emitter& e, int) {
  e.for_each(e.node().dim, [&](const Ix& k) { e.line(e.o(k) + " = " + im(e, 0, k) + ";"); });
}
void emit_real2complex(Emitter& e, int) {
  e.for_each(ncx(e), [&](const Ix& k) {
    e.line(e.o(k * 2) + " = " + e.a(0, k) + ";");
    e.line(e.o(k * 2 + 1) + " = T(0);");
  });
}
void emit_imag2complex(Emitter& e, int) {
  e.for_each(ncx(e), [&](const Ix& k) {
    e.line(e.o(k * 2) + " = T(0);");
    e.line(e.o(k * 2 + 1) + " = " + e.a(0, k) + ";");
  });
}
void emit_conj(Emitter& e, int) {
  e.for_each(ncx(e), [&](const Ix& k) {
    e.line(e.o(k * 2) + " = " + re(e, 0, k) + ";");
    e.line(e.o(k * 2 + 1) + " = -" + im(e, 0, k) + ";");
  });
}
void emit_csum(Emitter& e, int) {
  const int n = e.adim(0) / 2;
  e.line(e.o(0) + " = " + e.sum(n, [&](const Ix& k) { return re(e, 0, k); }) + ";");
  e.line(e.o(1) + " = " + e.sum(n, [&](const Ix& k) { return im(e, 0, k); }) + ";");
}
void emit_csumt(Emitter& e, int) {
  e.for_each(ncx(e), [&](const Ix& k) {
    e.line(e.o(k * 2) + " = " + e.a(0, 0) + ";");
    e.line(e.o(k * 2 + 1) + " = " + e.a(0, 1) + ";");
  });
}
void emit_realscal(Emitter& e, int) {
  int s = e.adim(0) == 1 ? 0 : 1;  // the real scalar's argument
  e.for_each(e.node().dim, [&](const Ix& k) { e.line(e.o(k) + " = " + e.a(s, 0) + " * " + e.a(1 - s, k) + ";"); });
}

// ---- derivatives ----
// The adjoint of a complex argument is the gradient of the real inner product <out, g> with
// respect to its real and imaginary parts, itself a complex vector: for holomorphic f it is
// g * conj(f'(z)). A complex scalar broadcast against a vector gets the sum of its adjoints.
bool scalar_arg(const Dims& d, int i) { return d[i] == 2 && d[1 - i] > 2; }
const char* d_add(const Dims& d) {
  if (scalar_arg(d, 0)) return "ComplexSum(g); g";
  if (scalar_arg(d, 1)) return "g; ComplexSum(g)";
  return "g; g";
}
const char* d_sub(const Dims& d) {
  if (scalar_arg(d, 0)) return "ComplexSum(g); -g";
  if (scalar_arg(d, 1)) return "g; -ComplexSum(g)";
  return "g; -g";
}
const char* d_mult(const Dims& d) {  // d(ab) = b da + a db
  if (scalar_arg(d, 0)) return "ComplexSum(ComplexMult(g, Conj(b))); ComplexMult(g, Conj(a))";
  if (scalar_arg(d, 1)) return "ComplexMult(g, Conj(b)); ComplexSum(ComplexMult(g, Conj(a)))";
  return "ComplexMult(g, Conj(b)); ComplexMult(g, Conj(a))";
}
const char* d_divide(const Dims& d) {  // d(a/b) = da / b - (a/b) db / b
  if (scalar_arg(d, 0))
    return "ComplexSum(ComplexDivide(g, Conj(b))); -ComplexDivide(ComplexMult(g, Conj(out)), Conj(b))";
  if (scalar_arg(d, 1))
    return "ComplexDivide(g, Conj(b)); -ComplexSum(ComplexDivide(ComplexMult(g, Conj(out)), Conj(b)))";
  return "ComplexDivide(g, Conj(b)); -ComplexDivide(ComplexMult(g, Conj(out)), Conj(b))";
}
const char* d_realscal(const Dims& d) {  // r z: dr = <z, g>, dz = r g
  if (d[0] == 1) return "Scalprod(b, g); ComplexRealScal(a, g)";
  return "ComplexRealScal(b, g); Scalprod(a, g)";
}

}  // namespace

const OpInfo kComplexOps[] = {
    // name              sig   dimension rule  scalar   emitter            derivative
    {"ComplexAdd", "ff", cx_same, nullptr, emit_add, d_add},
    {"ComplexSubtract", "ff", cx_same, nullptr, emit_sub, d_sub},
    {"ComplexMult", "ff", cx_same, nullptr, emit_mult, d_mult},
    {"ComplexDivide", "ff", cx_same, nullptr, emit_divide, d_divide},
    {"ComplexExp", "f", cx_keep, nullptr, emit_exp, "ComplexMult(g, Conj(out))"},
    // real f -> exp(i f)
    {"ComplexExp1j", "f", cx_double, nullptr, emit_exp1j, "ComplexImag(ComplexMult(Conj(out), g))"},
    // complex -> real: |z| (gradient z / |z|), |z|^2 (2 z), arg z in (-pi, pi] (i z / |z|^2), re, im
    {"ComplexAbs", "f", cx_half, nullptr, emit_abs, "ComplexMult(Real2Complex(g / out), a)"},
    {"ComplexSquareAbs", "f", cx_half, nullptr, emit_sqabs, "2 * ComplexMult(Real2Complex(g), a)"},
    {"ComplexAngle", "f", cx_half, nullptr, emit_angle, "ComplexMult(Imag2Complex(g / ComplexSquareAbs(a)), a)"},
    {"ComplexReal", "f", cx_half, nullptr, emit_real, "Real2Complex(g)"},
    {"ComplexImag", "f", cx_half, nullptr, emit_imag, "Imag2Complex(g)"},
    {"Real2Complex", "f", cx_double, nullptr, emit_real2complex, "ComplexReal(g)"},
    {"Imag2Complex", "f", cx_double, nullptr, emit_imag2complex, "ComplexImag(g)"},
    {"Conj", "f", cx_keep, nullptr, emit_conj, "Conj(g)"},
    {"ComplexSum", "f", cx_to1, nullptr, emit_csum, "ComplexSumT(g, @a)"},       // -> complex scalar
    {"ComplexSumT", "fi", cx_sumt, nullptr, emit_csumt, "ComplexSum(g)"},        // scalar -> n/2 copies
    {"ComplexRealScal", "ff", cx_realscal, nullptr, emit_realscal, d_realscal},  // real scalar * complex
};
const int kComplexOpCount = static_cast<int>(sizeof kComplexOps / sizeof kComplexOps[0]);

}  // namespace rkeops

// rkeops: helpers shared by the CPU and CUDA kernels. The backend prelude defines RK_FN
// (function qualifiers) and the basic maths rk_exp, rk_log, rk_sqrt, ... for float and double.

template <class U> RK_FN U rk_sq(U x) { return x * x; }
// Sign(0) = 0, as KeOps.
template <class U> RK_FN U rk_sign(U x) { return x > U(0) ? U(1) : (x < U(0) ? U(-1) : U(0)); }
// Step(x) = 1 for x >= 0, else 0 (NaN gives 0).
template <class U> RK_FN U rk_step(U x) { return x >= U(0) ? U(1) : U(0); }
template <class U> RK_FN U rk_relu(U x) { return x > U(0) ? x : U(0); }
template <class U> RK_FN U rk_clamp(U x, U a, U b) { return x < a ? a : (x > b ? b : x); }
// x log x, with 0 log 0 = 0.
// (Helpers compute first and select after: a call inside ?: keeps a simd loop scalar.)
template <class U> RK_FN U rk_xlogx(U x) { U v = x * rk_log(x); return x == U(0) ? U(0) : v; }
// sin(x)/x, with the limit 1 at 0.
template <class U> RK_FN U rk_sinxdivx(U x) { U v = rk_sin(x) / x; return x == U(0) ? U(1) : v; }
// x^n for an integer n, by repeated squaring (exact for small n, as KeOps's Pow).
template <class U> RK_FN U rk_powi(U x, int n) {
  bool inv = n < 0;
  unsigned m = inv ? 0u - static_cast<unsigned>(n) : static_cast<unsigned>(n);
  U r = U(1), b = x;
  while (m) { if (m & 1u) r *= b; b *= b; m >>= 1; }
  return inv ? U(1) / r : r;
}
// Rounds to d decimal places (half away from zero).
template <class U> RK_FN U rk_round(U x, int d) {
  U s = rk_powi(U(10), d);
  return rk_round0(x * s) / s;
}
// Soft minimum -g log(exp(-a/g) + exp(-b/g) + exp(-c/g)) of three values (g > 0), shifted by
// their minimum (SoftDTW_SqDist).
template <class U> RK_FN U rk_softmin3(U a, U b, U c, U g) {
  U m = a < b ? a : b;
  m = m < c ? m : c;
  return m - g * rk_log(rk_exp((m - a) / g) + rk_exp((m - b) / g) + rk_exp((m - c) / g));
}
// Mod(x, n, d) = x - n * floor((x - d) / n): x taken into [d, d + n).
template <class U> RK_FN U rk_mod(U x, U n, U d) { return x - n * rk_floor((x - d) / n); }

// rkeops: the CPU prelude pasted at the top of every generated CPU kernel. No system headers:
// compilers' builtins only, so that a kernel compiles fast. IEEE semantics (no fast-math).
#define RK_FN static inline
#define RK_INF __builtin_inf()
#include "rkeops/fastmath_cpu.h"
RK_FN double rk_sqrt(double x) { return __builtin_sqrt(x); }
RK_FN float rk_sqrt(float x) { return __builtin_sqrtf(x); }
// Rsqrt(0) = 0, as KeOps (so that Normalize(0) = 0).
RK_FN double rk_rsqrt(double x) { double v = 1.0 / __builtin_sqrt(x); return x == 0.0 ? 0.0 : v; }
RK_FN float rk_rsqrt(float x) { float v = 1.0f / __builtin_sqrtf(x); return x == 0.0f ? 0.0f : v; }
RK_FN double rk_abs(double x) { return __builtin_fabs(x); }
RK_FN float rk_abs(float x) { return __builtin_fabsf(x); }
RK_FN double rk_sin(double x) { return __builtin_sin(x); }
RK_FN float rk_sin(float x) { return __builtin_sinf(x); }
RK_FN double rk_cos(double x) { return __builtin_cos(x); }
RK_FN float rk_cos(float x) { return __builtin_cosf(x); }
RK_FN double rk_asin(double x) { return __builtin_asin(x); }
RK_FN float rk_asin(float x) { return __builtin_asinf(x); }
RK_FN double rk_acos(double x) { return __builtin_acos(x); }
RK_FN float rk_acos(float x) { return __builtin_acosf(x); }
RK_FN double rk_atan(double x) { return __builtin_atan(x); }
RK_FN float rk_atan(float x) { return __builtin_atanf(x); }
RK_FN double rk_atan2(double y, double x) { return __builtin_atan2(y, x); }
RK_FN float rk_atan2(float y, float x) { return __builtin_atan2f(y, x); }
RK_FN double rk_floor(double x) { return __builtin_floor(x); }
RK_FN float rk_floor(float x) { return __builtin_floorf(x); }
RK_FN double rk_round0(double x) { return __builtin_round(x); }
RK_FN float rk_round0(float x) { return __builtin_roundf(x); }
RK_FN double rk_pow(double x, double y) { return __builtin_pow(x, y); }
RK_FN float rk_pow(float x, float y) { return __builtin_powf(x, y); }
#include "rkeops/prelude_common.h"
// High dimensions (codegen_cpu.cpp): the squared distances (DIST) or inner products between
// `rows` packed rows xp[k * ldx + r] and `cols` packed columns yp[k * ldy + c] of dimension D,
// into g[r * ldg + c]. Blocks of 4 rows x two vector registers of columns (16 doubles, 32
// floats) stay in registers while the components go by: each loaded y value serves 4 rows.
// Rows are padded to a multiple of 4 in xp and g, columns up to a multiple of 32 in yp and g
// (values there are computed, not used).
template <typename T, bool DIST>
RK_FN void rk_hd_tile(const T* __restrict__ xp, long long ldx, int rows, const T* __restrict__ yp, long long ldy,
                      long long cols, int D, T* __restrict__ g, long long ldg) {
  constexpr int C = 128 / sizeof(T);
  for (int r0 = 0; r0 < rows; r0 += 4)
    for (long long c0 = 0; c0 < cols; c0 += C) {
      T acc[4][C];
      for (int r = 0; r < 4; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = T(0);
      for (int k = 0; k < D; ++k) {
        const T* y = yp + k * ldy + c0;
        const T* x = xp + k * ldx + r0;
        for (int r = 0; r < 4; ++r) {
          const T a = x[r];
#pragma omp simd
          for (int c = 0; c < C; ++c) {
            if (DIST) {
              const T d = a - y[c];
              acc[r][c] += d * d;
            } else {
              acc[r][c] += a * y[c];
            }
          }
        }
      }
      for (int r = 0; r < 4; ++r)
        for (int c = 0; c < C; ++c) g[(r0 + r) * ldg + c0 + c] = acc[r][c];
    }
}
// Work item w of rk_run (codegen_cpu.cpp): rows [ib0, ib1) and the inner ranges jr[2r, 2r+1)
// for r < nr. Block-sparse (`items`, see ranges.h): item w of the list. Dense: row block
// w / nsplit of [i0, i1) and slice sp = w % nsplit of [0, M), one range (held in jself).
struct RkItem {
  long long ib0, ib1, sp, nr;
  const long long* jr;
  long long jself[2];
};
RK_FN void rk_work_item(RkItem* t, const long long* items, const long long* jranges, long long w, long long nsplit,
                        long long i0, long long i1, long long IB, long long M, long long jchunk) {
  if (items) {
    const long long* it = items + 4 * w;
    t->ib0 = it[0];
    t->ib1 = it[1];
    t->sp = 0;
    t->jr = jranges + 2 * it[2];
    t->nr = it[3] - it[2];
    return;
  }
  t->sp = w % nsplit;
  t->ib0 = i0 + w / nsplit * IB;
  t->ib1 = t->ib0 + IB < i1 ? t->ib0 + IB : i1;
  t->jself[0] = t->sp * jchunk;
  t->jself[1] = t->jself[0] + jchunk < M ? t->jself[0] + jchunk : M;
  t->jr = t->jself;
  t->nr = 1;
}

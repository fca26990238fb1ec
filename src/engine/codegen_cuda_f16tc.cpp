// The float16 Gaussian sum on tensor cores (codegen_cuda_f16tc.h). Reads top to bottom: the
// helpers (the two products, the conversions, the two exponentials), then rk_reduce: the rows'
// fragments, each tile converted once per block into the products' B fragments, the fast path
// over blocks of 16 inner rows, the float32 loop where the fast path does not apply, and the
// sums out through shared memory.
#include "codegen_cuda_f16tc.h"

#include <sstream>

#include "codegen_cuda.h"

namespace rkeops {
namespace {

std::string I(long long k) { return std::to_string(k); }

// Helpers pasted before rk_reduce. Fragments (PTX ISA, mma.m16n8k8 / m16n8k16 with halves):
// lane 4 g + q holds rows g and g + 8 of A and column g of B; register pairs of halves run
// along k (2 q, 2 q + 1; then + 8); C: rows g and g + 8, columns 2 q and 2 q + 1.
const char* const kHelpers = R"(
// ---- float16 Gaussian sums on tensor cores (codegen_cuda_f16tc.h) ----
// d (16 x 8, f32) = a (16 x 8 halves) b (8 x 8 halves) + c
RK_FN void rk_tc_mma8(float* d, unsigned a0, unsigned a1, unsigned b0, float c0, float c1, float c2, float c3) {
#ifdef RK_CUDA_EMULATION
  d[0] = c0; d[1] = c1; d[2] = c2; d[3] = c3;
  const unsigned a[2] = {a0, a1};
  rk_emu_mma_f16k8(d[0], d[1], d[2], d[3], a, &b0);
#else
  asm("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5}, {%6}, {%7, %8, %9, %10};"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a0), "r"(a1), "r"(b0), "f"(c0), "f"(c1), "f"(c2), "f"(c3));
#endif
}
// c (16 x 8, f32) += a (16 x 16 halves) b (16 x 8 halves)
RK_FN void rk_tc_mma16(float* c, unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0, unsigned b1) {
#ifdef RK_CUDA_EMULATION
  const unsigned a[4] = {a0, a1, a2, a3}, b[2] = {b0, b1};
  rk_emu_mma_f16(c[0], c[1], c[2], c[3], a, b);
#else
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#endif
}
// Two floats rounded to halves, negatives to 0 (lo in the low bits)
RK_FN unsigned rk_tc_relu2(float lo, float hi) {
#ifdef RK_CUDA_EMULATION
  return rk_pack_bits(lo > 0.f ? lo : 0.f, hi > 0.f ? hi : 0.f);
#else
  unsigned r;
  asm("cvt.rn.relu.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
#endif
}
// Half k of a packed row of 16-byte vectors; a float rounded to the nearest half's value
RK_FN unsigned short rk_tc_half(const uint4* w, int k) {
  const uint4 v = w[k >> 3];
  const unsigned u = (k & 6) == 0 ? v.x : (k & 6) == 2 ? v.y : (k & 6) == 4 ? v.z : v.w;
  return (unsigned short)(k & 1 ? u >> 16 : u & 0xffffu);
}
RK_FN float rk_tc_round(float f) { return rk_h2f((unsigned short)(rk_pack_bits(f, 0.f) & 0xffffu)); }
// 2^e of two exponents on the special-function unit, rounded to halves
RK_FN unsigned rk_tc_ex2(float lo, float hi) { return rk_pack_bits(rk_exp2(lo), rk_exp2(hi)); }
// 2^(v - 15) of the half2 lanes of v = max(e + 16, 0), on the FMA pipe: v = n + f with n the
// nearest integer (v + 1536, whose ulp is 1, rounds to it), 2^f by a quadratic (minimax on
// [-1/2, 1/2]: relative error 1.7e-3), 2^(n - 15) from the low bits of v + 1536 shifted into
// a half's exponent field (0 when n = 0: e < -15.5 gives 0)
RK_FN unsigned rk_tc_poly(unsigned vb) {
  const rk_h2 v = rk_h2_bits(vb), m = rk_h2_bits(0x66006600u);
  const rk_h2 t = v + m;
  const rk_h2 f = v - (t - m);
  rk_h2 p = rk_fma2(rk_h2_bits(0x33a133a1u), f, rk_h2_bits(0x39a139a1u));  // 0.23840, 0.70361
  p = rk_fma2(p, f, rk_h2_bits(0x3c003c00u));
  return (p * rk_h2_bits((t.u << 10) & 0x7c007c00u)).u;
}
)";

}  // namespace

std::string f16tc_reduce_kernel(const F16TcPlan& p) {
  const int D = p.dim, NK = p.k_steps(), DV = p.out_dim;
  const std::string xoff = I(p.x_off), yoff = I(p.y_off);
  const std::string bval = p.b_off >= 0 ? "rk_h2f(yr_[" + I(p.b_off) + " + n])" : "1.f";
  const std::string bbits = p.b_off >= 0 ? "(unsigned)rk_tc_half(yv, " + I(p.b_off) + " + n)" : "(jl < jn ? 0x3c00u : 0u)";
  std::ostringstream s;
  s << kHelpers;
  s << "\nextern \"C\" __global__ void __launch_bounds__(RK_B" << (p.min_blocks > 0 ? ", " + I(p.min_blocks) : "")
    << ") rk_reduce(\n"
       "    const TS* __restrict__ X, long long ldx, const TV* __restrict__ Y, const TS* __restrict__ P,\n"
       "    int n_outer, int n_inner, long long jbase, long long jchunk, double* __restrict__ out, long long out_ld,\n"
       "    T* __restrict__ pst, int* __restrict__ psi, T* __restrict__ pcp, int slot0,\n"
       "    const long long* __restrict__ items, const long long* __restrict__ jranges) {\n";
  s << "  constexpr int kD = " << D << ", kNK = " << NK << ", kDV = " << DV
    << ", kBW = 64 * kNK + 64;   // D, k-steps of the exponents' product, b's width, B words per 16 inner rows\n";
  s << "  // a tile: per 16 inner rows, the exponents' B (k-step s: [column g][lane q][2 columns' halves: g, g + 8])\n"
       "  // then b's B ([column n][lane q][rows 2 q, 2 q + 1; then + 8])\n"
       "  __shared__ uint4 tkv_[RK_TJ / 16 * kBW / 4];\n"
       "  unsigned* tk_ = (unsigned*)tkv_;\n";
  s << "  int ib0_ = blockIdx.x * RK_B, ib1_ = n_outer, nr_ = 1;\n"
       "  const long long* jr_ = 0;\n"
       "  if (items) {\n"
       "    const long long* it_ = items + 4LL * blockIdx.x;\n"
       "    ib0_ = (int)it_[0]; ib1_ = (int)it_[1]; jr_ = jranges + 2 * it_[2]; nr_ = (int)(it_[3] - it_[2]);\n"
       "  }\n"
       "  const long long nrows = n_outer;\n"
       "  const int lane_ = threadIdx.x & 31, g_ = lane_ >> 2, q_ = lane_ & 3, rw_ = (threadIdx.x >> 5) * 32;\n"
       "  const int i = ib0_ + threadIdx.x;   // the float32 loop's row\n"
       "  const bool active = i < ib1_;\n";
  s << "  float h_;\n  {\n    typedef rk_h2 T;\n" << p.param_code << "    h_ = rk_lo(" << p.scale << ");\n  }\n";
  s << "  const float s_ = " << (p.neg ? "h_" : "-h_")
    << " * 1.4426950408889634f;   // the exponent -s |x - y|^2 in log2 units\n";
  s << "  float xf_[kD], fb_[kDV];\n"
       "  for (int k = 0; k < kD; ++k) xf_[k] = active ? rk_h2f(X[i + (" << xoff << " + k) * ldx]) : 0.f;\n"
       "  for (int n = 0; n < kDV; ++n) fb_[n] = 0.f;\n";
  s << "  // the tensor-core rows: m-tile m, half r: row rw_ + 16 m + 8 r + g_ of the block; A holds\n"
       "  // [x, x, 1, 1, 0...] (k-step s: values 8 s + 2 q_, + 1); an_ -s|x|^2, + 16 in m-tile 0 (whose\n"
       "  // exponentials are rk_tc_poly's)\n"
       "  unsigned a_[2][2][kNK];\n"
       "  float an_[2][2], tot_[2][4];\n"
       "  bool rbad_ = false;\n"
       "  for (int m = 0; m < 2; ++m)\n"
       "    for (int r = 0; r < 2; ++r) {\n"
       "      const int row = ib0_ + rw_ + 16 * m + 8 * r + g_;\n"
       "      const bool act = row < ib1_;\n"
       "      unsigned short xh[kD];\n"
       "      float nx = 0.f;\n"
       "      for (int k = 0; k < kD; ++k) {\n"
       "        xh[k] = act ? X[row + (" << xoff << " + k) * ldx] : (unsigned short)0;\n"
       "        const float v = rk_h2f(xh[k]);\n"
       "        nx += v * v;\n"
       "      }\n"
       "      for (int st = 0; st < kNK; ++st) {\n"
       "        unsigned w = 0;\n"
       "        for (int e = 0; e < 2; ++e) {\n"
       "          const int c = 8 * st + 2 * q_ + e;\n"
       "          const unsigned hv = c < kD ? xh[c] : c < 2 * kD ? xh[c - kD] : c < 2 * kD + 2 ? 0x3c00u : 0u;\n"
       "          w |= hv << (16 * e);\n"
       "        }\n"
       "        a_[m][r][st] = w;\n"
       "      }\n"
       "      an_[m][r] = -s_ * nx + (m == 0 ? 16.f : 0.f);\n"
       "      rbad_ = rbad_ || (act && !(s_ * nx <= " << kF16TcNorm << ".f));\n"
       "      tot_[m][2 * r] = tot_[m][2 * r + 1] = 0.f;\n"
       "    }\n";
  s << "  // b's B columns past kDV stay zero (the tiles write the others)\n"
       "  for (int w = threadIdx.x; w < RK_TJ / 16 * 64; w += RK_B)\n"
       "    if (((w & 63) >> 3) >= kDV) tk_[(w >> 6) * kBW + 64 * kNK + (w & 63)] = 0u;\n";
  s << "  const bool rows_bad_ = __syncthreads_or(rbad_);\n"
       "  const bool tok_ = s_ > 0.f && s_ < 3.0e38f && !rows_bad_;   // the fast path may run\n";
  s << cuda_inner_ranges_head();   // (the generic scheme's dense slices or block-sparse windows)
  s << "  for (int jt = jb0; jt < jb1; jt += RK_TJ) {\n"
       "    const int jn = rk_imin(RK_TJ, jb1 - jt), nb_ = (jn + 15) >> 4;\n"
       "    __syncthreads();\n"
       "    // the tile's B fragments, a pair of inner rows (2 u, 2 u + 1) at a time; rows past jn read\n"
       "    // as zeros (their terms are 2^(-s|x|^2) times b = 0)\n"
       "    bool tbad_ = false;\n"
       "    if (tok_)\n"
       "      for (int u = threadIdx.x; u < nb_ * 8; u += RK_B) {\n"
       "        unsigned* tb = tk_ + (u >> 3) * kBW;\n"
       "        const int jj = (2 * u) & 15, hq = jj >> 3, qq = (jj & 7) >> 1;\n"
       "        unsigned bb[2][kDV];\n"
       "        for (int e = 0; e < 2; ++e) {\n"
       "          const int jl = 2 * u + e;\n"
       "          uint4 yv[RK_WV];\n"
       "          for (int w = 0; w < RK_WV; ++w) yv[w] = jl < jn ? Y[(long long)(jt + jl) * RK_WV + w] : uint4{0u, 0u, 0u, 0u};\n"
       "          // the row's exponent column: heads and tails of 2 s y, then of -s|y|^2, as halves' values\n"
       "          float kf[2 * kD + 2], ny = 0.f;\n"
       "          for (int k = 0; k < kD; ++k) {\n"
       "            const float v = rk_h2f(rk_tc_half(yv, " << yoff << " + k));\n"
       "            ny += v * v;\n"
       "            const float w = 2.f * s_ * v;\n"
       "            kf[k] = rk_tc_round(w);\n"
       "            kf[kD + k] = w - kf[k];\n"
       "            tbad_ = tbad_ || !(fabsf(w) < 65000.f);\n"
       "          }\n"
       "          const float nb = -s_ * ny;\n"
       "          kf[2 * kD] = rk_tc_round(nb);\n"
       "          kf[2 * kD + 1] = nb - kf[2 * kD];\n"
       "          tbad_ = tbad_ || !(s_ * ny <= " << kF16TcNorm << ".f);\n"
       "          const int col = (jj + e) & 7;\n"
       "          for (int st = 0; st < kNK; ++st)\n"
       "            for (int qk = 0; qk < 4; ++qk) {\n"
       "              const int c = 8 * st + 2 * qk;\n"
       "              tb[64 * st + (col * 4 + qk) * 2 + hq] =\n"
       "                  rk_pack_bits(c < 2 * kD + 2 ? kf[c] : 0.f, c + 1 < 2 * kD + 2 ? kf[c + 1] : 0.f);\n"
       "            }\n"
       "          for (int n = 0; n < kDV; ++n) bb[e][n] = " << bbits << ";\n"
       "        }\n"
       "        for (int n = 0; n < kDV; ++n) tb[64 * kNK + (n * 4 + qq) * 2 + hq] = bb[0][n] | (bb[1][n] << 16);\n"
       "      }\n"
       "    const bool fast_ = tok_ && !__syncthreads_or(tbad_);\n";
  // the fast path
  s << "    if (fast_) {\n"
       "      float acc_[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};\n"
       "      #pragma unroll " << p.unroll << "\n"
       "      for (int b = 0; b < nb_; ++b) {\n"
       "        const unsigned* tb = tk_ + b * kBW + (g_ * 4 + q_) * 2;\n"
       "        uint2 y1[kNK];\n"
       "        for (int st = 0; st < kNK; ++st) y1[st] = *(const uint2*)(tb + 64 * st);\n"
       "        const uint2 y2 = *(const uint2*)(tb + 64 * kNK);\n"
       "        #pragma unroll\n"
       "        for (int m = 0; m < 2; ++m) {\n"
       "          float e0[4], e1[4];\n"
       "          rk_tc_mma8(e0, a_[m][0][0], a_[m][1][0], y1[0].x, an_[m][0], an_[m][0], an_[m][1], an_[m][1]);\n"
       "          rk_tc_mma8(e1, a_[m][0][0], a_[m][1][0], y1[0].y, an_[m][0], an_[m][0], an_[m][1], an_[m][1]);\n"
       "          for (int st = 1; st < kNK; ++st) {\n"
       "            rk_tc_mma8(e0, a_[m][0][st], a_[m][1][st], y1[st].x, e0[0], e0[1], e0[2], e0[3]);\n"
       "            rk_tc_mma8(e1, a_[m][0][st], a_[m][1][st], y1[st].y, e1[0], e1[1], e1[2], e1[3]);\n"
       "          }\n"
       "          unsigned k0, k1, k2, k3;\n"
       "          if (m == 0) {\n"
       "            k0 = rk_tc_poly(rk_tc_relu2(e0[0], e0[1])); k1 = rk_tc_poly(rk_tc_relu2(e0[2], e0[3]));\n"
       "            k2 = rk_tc_poly(rk_tc_relu2(e1[0], e1[1])); k3 = rk_tc_poly(rk_tc_relu2(e1[2], e1[3]));\n"
       "          } else {\n"
       "            k0 = rk_tc_ex2(e0[0], e0[1]); k1 = rk_tc_ex2(e0[2], e0[3]);\n"
       "            k2 = rk_tc_ex2(e1[0], e1[1]); k3 = rk_tc_ex2(e1[2], e1[3]);\n"
       "          }\n"
       "          rk_tc_mma16(acc_[m], k0, k1, k2, k3, y2.x, y2.y);\n"
       "        }\n"
       "      }\n"
       "      for (int c = 0; c < 4; ++c) { tot_[0][c] += 0.5f * acc_[0][c]; tot_[1][c] += acc_[1][c]; }\n";
  // the float32 loop
  s << "    } else if (active) {   // float32, from the packed rows in global memory\n"
       "      for (int jl = 0; jl < jn; ++jl) {\n"
       "        const unsigned short* yr_ = (const unsigned short*)(Y + (long long)(jt + jl) * RK_WV);\n"
       "        float d2 = 0.f;\n"
       "        for (int k = 0; k < kD; ++k) { const float dk = xf_[k] - rk_h2f(yr_[" << yoff << " + k]); d2 += dk * dk; }\n"
       "        const float kv = rk_exp(h_ * " << (p.neg ? "-d2" : "d2") << ");\n"
       "        for (int n = 0; n < kDV; ++n) fb_[n] += kv * " << bval << ";\n"
       "      }\n"
       "    }\n"
       "  }\n  }\n";
  // the results
  s << "  // the tensor cores' sums to shared memory, by row; then each thread's row, with its own sums\n"
       "  __syncthreads();\n"
       "  float* ro_ = (float*)tk_;\n"
       "  for (int m = 0; m < 2; ++m)\n"
       "    for (int c = 0; c < 4; ++c) {\n"
       "      const int n = 2 * q_ + (c & 1);\n"
       "      if (n < kDV) ro_[(rw_ + 16 * m + 8 * (c >> 1) + g_) * kDV + n] = tot_[m][c];\n"
       "    }\n"
       "  __syncthreads();\n"
       "  const long long slot = slot0 + (long long)blockIdx.y;\n"
       "  if (active)\n"
       "    for (int n = 0; n < kDV; ++n) {\n"
       "      const float v = ro_[threadIdx.x * kDV + n] + fb_[n];\n"
       "      if (slot0 < 0) out[i + (long long)n * out_ld] = v;\n"
       "      else pst[(slot * kDV + n) * nrows + i] = v;\n"
       "    }\n"
       "}\n";
  return s.str();
}

}  // namespace rkeops

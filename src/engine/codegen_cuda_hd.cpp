// The CUDA high-dimension template (see codegen_cuda_hd.h). rk_reduce reads top to bottom:
//   - block (bx, by) owns outer rows [bx * bm, bx * bm + bm) and the slice `by` of the inner
//     range (split over blocks as in the generic template); HdTile::threads threads (ty, tx),
//     tx < ntx, thread (ty, tx) owns tm rows and tn columns of every bm x bn tile;
//   - the slice is swept in chunks (tile, bk components): a chunk of X (bk x bm) and of Y
//     (bk x bn) is copied to shared memory asynchronously (cp.async, no registers) while the
//     previous chunk, in the other buffer, feeds the tm x tn register products; one barrier
//     per chunk; a tile's first copy also brings the columns' other values and norms;
//   - after a tile's last chunk, the epilogue: per row m and column n, the formula's per-pair
//     code (the Emitter, the inner-product nodes bound to the register scalars) and the
//     reduction's register accumulation into the row's state;
//   - at the end, the ntx threads sharing rows (ntx lanes of a warp) merge their states with
//     warp shuffles (butterfly: each lane ends with the whole merge) and lane m finalises row m
//     or stores its partial state for rk_merge, exactly as the generic template does.
// rk_merge is the generic template's: one thread per row merges the slots, then finalises.
#include "codegen_cuda_hd.h"

#include <algorithm>
#include <functional>
#include <set>
#include <sstream>
#include <string>

#include "codegen.h"
#include "errors.h"
#include "ops.h"

namespace rkeops {
namespace {

std::string I(long long k) { return std::to_string(k); }

// Registers hold the parameters when they are few; otherwise they are read from P (cached).
constexpr int kMaxParamRegs = 64;
// The generic template's limit on an inner row (its shared-memory tile), in bytes.
constexpr int kGenericMaxRowBytes = 49152;
// Beyond these, the rest of F is not cheap per pair: the generic template runs the formula.
constexpr int kMaxOtherDims = 8;   // outer (registers), inner (shared memory) variables other than the pair
constexpr int kMaxStateRegs = 64;  // reduction state per row, 32-bit registers (unless the generic
                                   // template cannot hold the inner rows)

struct Ops {
  int sqdist = find_op("SqDist"), dot = find_op("Scalprod"), wsqdist = find_op("WeightedSqDist"),
      sqnorm = find_op("SqNorm2"), sub = find_op("Subtract");
};
const Ops& ops() {
  static const Ops o;
  return o;
}

int state_regs(const Formula& f, const CodeOptions& opt) {
  const ReductionInfo& red = f.reduction();
  const Reducer rd(red, f.shape, opt.scheme);
  const int w = opt.dtype == DType::Float32 ? 1 : 2;
  return (red.state_dim(f.shape) + rd.comp_dim()) * w + red.istate_dim(f.shape);
}

}  // namespace

HdPlan plan_cuda_hd(const Formula& f, const CodeOptions& opt, int min_dim) {
  HdPlan p;
  const Graph& g = f.g;
  const int outer = f.outer_cat(), inner = f.inner_cat();
  std::vector<int> roots = {f.root};
  if (f.weight >= 0) roots.push_back(f.weight);
  std::vector<char> reach(g.size(), 0);
  for (std::vector<int> st = roots; !st.empty();) {
    int id = st.back();
    st.pop_back();
    if (reach[id]) continue;
    reach[id] = 1;
    for (int a : g[id].args) st.push_back(a);
  }
  // (outer variable node, inner variable node) when a and b are one of each, of one dimension.
  auto pair_of = [&](int a, int b, int* xv, int* yv) {
    if (g[a].kind != NodeKind::Var || g[b].kind != NodeKind::Var || g[a].dim != g[b].dim) return false;
    if (g[a].cat == inner && g[b].cat == outer) std::swap(a, b);
    if (g[a].cat != outer || g[b].cat != inner) return false;
    *xv = a;
    *yv = b;
    return true;
  };
  struct Cand {
    HdNode n;
    int xv, yv, sub;
  };
  std::vector<Cand> cands;
  const Ops& o = ops();
  for (int id = 0; id < g.size(); ++id) {
    const Node& n = g[id];
    if (!reach[id] || n.kind != NodeKind::Call) continue;
    Cand c{{id, true, -1}, -1, -1, -1};
    bool ok = false;
    if (n.op == o.sqdist || n.op == o.dot) {
      ok = pair_of(n.args[0], n.args[1], &c.xv, &c.yv);
      c.n.dist = n.op == o.sqdist;
    } else if (n.op == o.wsqdist && g[n.args[0]].dim == 1) {
      ok = pair_of(n.args[1], n.args[2], &c.xv, &c.yv);
      c.n.weight = n.args[0];
    } else if (n.op == o.sqnorm && g[n.args[0]].kind == NodeKind::Call && g[n.args[0]].op == o.sub) {
      const Node& d = g[n.args[0]];
      ok = pair_of(d.args[0], d.args[1], &c.xv, &c.yv);
      c.sub = n.args[0];
    }
    if (ok && g[c.xv].dim >= min_dim) cands.push_back(c);
  }
  if (cands.empty()) {
    p.why = "no inner product or distance of dimension >= " + I(min_dim) + " between an outer and an inner variable";
    return p;
  }
  const int xv = cands[0].xv, yv = cands[0].yv;
  std::set<int> internal, subs;  // the pairwise nodes; the differences x - y under SqNorm2
  for (const Cand& c : cands) {
    if (c.xv != xv || c.yv != yv) {
      p.why = "inner products of high dimension on several pairs of variables";
      return p;
    }
    internal.insert(c.n.id);
    if (c.sub >= 0) subs.insert(c.sub);
  }
  // x, y and x - y may only be arguments of the pairwise nodes.
  auto is_pair_part = [&](int id) { return id == xv || id == yv || subs.count(id) > 0; };
  for (int r : roots)
    if (is_pair_part(r)) {
      p.why = "the variables of the inner products are used elsewhere";
      return p;
    }
  for (int id = 0; id < g.size(); ++id) {
    if (!reach[id] || internal.count(id) || subs.count(id)) continue;
    for (int a : g[id].args)
      if (is_pair_part(a)) {
        p.why = "the variables of the inner products are used elsewhere";
        return p;
      }
  }
  p.x_pos = g[xv].pos;
  p.y_pos = g[yv].pos;
  p.dim = g[xv].dim;
  p.center = true;
  for (const Cand& c : cands) {
    p.nodes.push_back(c.n);
    p.center = p.center && c.n.dist;
  }
  // Is the rest cheap per pair? Otherwise the generic template, when it can take the rows.
  int other_outer = 0, other_inner = 0, all_inner = 0;
  for (const VarUse& v : collect_vars(g, roots)) {
    if (v.cat == inner) all_inner += v.dim;
    if ((v.cat == outer && v.pos == p.x_pos) || (v.cat == inner && v.pos == p.y_pos)) continue;
    if (v.cat == outer) other_outer += v.dim;
    if (v.cat == inner) other_inner += v.dim;
  }
  const int elem = opt.dtype == DType::Float32 ? 4 : 8, vl = 16 / elem;
  const bool generic_fits = static_cast<long long>((all_inner + vl - 1) / vl * vl) * elem <= kGenericMaxRowBytes;
  if (other_outer > kMaxOtherDims || other_inner > kMaxOtherDims) {
    p.why = "variables other than the inner products' have too many components for the register tiles";
    return p;
  }
  if (generic_fits && state_regs(f, opt) > kMaxStateRegs) {
    p.why = "the reduction state is too large for the register tiles";
    return p;
  }
  p.applies = true;
  return p;
}

int hd_shared_bytes(const HdTile& t, bool f32, int ncol) {
  return (2 * t.bk * (t.lda() + t.ldb()) + 2 * ncol * t.bn()) * (f32 ? 4 : 8);
}

HdTile hd_tile(bool f32, int sregs, int dim, int ncol, int mma) {
  (void)dim;
  HdTile t;
  if (f32 && mma > 0) {
    // Tensor cores: each warp mt x nt8 tiles of 16 x 8 pairs (bench/RESULTS.md).
    int mt = 1, nt8 = sregs <= 24 ? 16 : 8;
    if (mma >= 100) mt = std::min(2, std::max(1, mma / 100)), nt8 = std::min(32, std::max(1, mma % 100));
    t.mma = true;
    // 4 warps a block, 3 blocks a multiprocessor when a warp has one row tile and the state is
    // small (168 registers for the k-NN, none spilled): 12 warps instead of 8 at 193 registers;
    // on the H200 the D = 784 k-NN kernel 16.6 ms instead of 17.1, D = 256 5.9 instead of 6.1,
    // the Gaussian sum at D = 784 21.7 instead of 22.8 (bench/RESULTS.md, tenth session).
    t.threads = 128;
    t.min_blocks = sregs <= 24 && mt == 1 ? 3 : 1;
    t.ntx = 4;
    t.tm = 2 * mt;
    t.tn = 2 * nt8;
    t.bk = 16;
    while (hd_shared_bytes(t, f32, ncol) > 49152 && t.tn > 2) t.tn /= 2;
    while (hd_shared_bytes(t, f32, ncol) > 49152 && t.bk > 8) t.bk /= 2;
    return t;
  }
  // Measured on the H200 (bench/RESULTS.md): small states, 8 x 8 pairs per thread (128 x 128
  // tiles) in chunks of 8 components, two blocks per multiprocessor; K-nearest-neighbour
  // states (20 registers a row for K = 10), 4 x 16 pairs (64 x 256 tiles) in chunks of 16.
  if (f32) {
    if (sregs <= 4) {
      t.tm = 8, t.tn = 8, t.bk = 8;
    } else {
      t.tm = sregs <= 24 ? 4 : sregs <= 64 ? 2 : 1;
      t.tn = 16, t.bk = 16;
    }
  } else {
    t.tm = sregs <= 8 ? 4 : sregs <= 48 ? 2 : 1;
    t.tn = 4, t.bk = 8;
  }
  t.ntx = 16;
  // Within the static shared memory of a block (many values per inner row: narrower tiles).
  while (hd_shared_bytes(t, f32, ncol) > 49152 && t.tn > 2) t.tn /= 2;
  while (hd_shared_bytes(t, f32, ncol) > 49152 && t.bk > 4) t.bk /= 2;
  return t;
}

long long hd_splits(long long rows, long long n_inner, int bm, int bn, long long concurrent) {
  const long long bx = std::max(1LL, (rows + bm - 1) / bm), conc = std::max(1LL, concurrent);
  const long long tiles = std::max(1LL, (n_inner + bn - 1) / bn);
  long long best = 1;
  double best_cost = 0;
  for (long long s = 1; s <= std::min(tiles, 65535LL); ++s) {
    const long long waves = (bx * s + conc - 1) / conc;
    const long long per_block = hd_jchunk(n_inner, s, bn) / bn;
    const double cost = static_cast<double>(waves) * (static_cast<double>(per_block) + 1.0);
    if (s == 1 || cost < best_cost) {
      best = s;
      best_cost = cost;
    }
  }
  return best;
}

long long hd_jchunk(long long n_inner, long long nsplit, int bn) {
  const long long per = (n_inner + nsplit - 1) / std::max(1LL, nsplit);
  return std::max<long long>(bn, (per + bn - 1) / bn * bn);
}

CudaCode generate_cuda_hd_code(const Formula& f, const HdPlan& plan, const CodeOptions& opt,
                               const std::string& include_dir) {
  RK_ASSERT(plan.applies, "the high-dimension CUDA scheme does not apply to this formula");
  const ReductionInfo& red = f.reduction();
  const RedShape& sh = f.shape;
  const Graph& g = f.g;
  const bool f32 = opt.dtype == DType::Float32;
  const Reducer rd(red, sh, opt.scheme);
  const int S = red.state_dim(sh), SI = red.istate_dim(sh), SC = rd.comp_dim();
  const int outer = f.outer_cat(), inner = f.inner_cat();
  const int D = plan.dim;

  CudaCode cc;
  cc.elem = f32 ? 4 : 8;
  const int VL = 16 / cc.elem;
  cc.state_t = S;
  cc.state_i = SI;
  cc.state_c = SC;
  cc.uses_index = SI > 0;

  std::vector<int> roots = {f.root};
  if (f.weight >= 0) roots.push_back(f.weight);
  std::vector<VarUse> vars = collect_vars(g, roots);
  const size_t nargs = f.args.size();
  cc.x_off.assign(nargs, -1);
  cc.y_off.assign(nargs, -1);
  cc.p_off.assign(nargs, -1);
  // The pair first (offset 0: aligned vector loads), then the other variables, then the norms.
  cc.x_off[plan.x_pos] = 0;
  cc.y_off[plan.y_pos] = 0;
  cc.wx = cc.wy = D;
  auto is_pair = [&](const VarUse& v) {
    return (v.cat == outer && v.pos == plan.x_pos) || (v.cat == inner && v.pos == plan.y_pos);
  };
  for (const VarUse& v : vars) {
    RK_ASSERT(v.pos >= 0 && static_cast<size_t>(v.pos) < nargs, "variable position out of range");
    if (is_pair(v)) continue;
    place_cuda_input(cc, v, outer);
  }
  bool any_dist = false;
  for (const HdNode& n : plan.nodes) any_dist = any_dist || n.dist;
  if (any_dist) {
    cc.hd.x_norm = cc.wx++;
    cc.hd.y_norm = cc.wy++;
  }
  const int NCOL = cc.wy - D;  // per inner row, what the epilogue reads besides the products
  const HdTile t = hd_tile(f32, state_regs(f, opt), D, NCOL, f32 ? opt.cuda_hd_mma : 0);
  const int TM = t.tm, TN = t.tn, BK = t.bk, BM = t.bm(), BN = t.bn(), NT = t.threads, NTX = t.ntx;
  const int LA = t.lda(), LB = t.ldb();  // shared-memory strides of a chunk's components
  const bool MMA = t.mma;
  RK_ASSERT(TM <= NTX && NTX <= 32 && (NTX & (NTX - 1)) == 0 && hd_shared_bytes(t, f32, NCOL) <= 49152,
            "bad high-dimension tile");
  cc.block = NT;
  cc.tile = BN;
  cc.hd.bm = BM;
  cc.hd.x_pos = plan.x_pos;
  cc.hd.y_pos = plan.y_pos;
  cc.hd.center = plan.center;
  // The K family's sorted lists: one slot per lane (see the end of rk_reduce).
  const bool lane_lists = red.extra == Extra::K && !rd.kahan();
  cc.hd.lane_slots = lane_lists ? NTX : 1;
  cc.hd.resume = lane_lists;
  const bool params_in_regs = cc.np <= kMaxParamRegs;

  // ---- the formula's code: per kernel, per row, per pair ----
  Emitter e(g);
  for (const VarUse& v : vars) {
    if (is_pair(v)) continue;
    if (v.cat == CAT_P)
      e.bind_var(v.cat, v.pos, params_in_regs ? "pm" + I(v.pos) : "(P + " + I(cc.p_off[v.pos]) + ")");
    else if (v.cat == outer)
      e.bind_var(v.cat, v.pos, "xv" + I(v.pos), "[m]");
    else
      e.bind_var(v.cat, v.pos, "yv" + I(v.pos), "[n]");
  }
  for (const HdNode& n : plan.nodes) {
    if (n.weight >= 0)
      e.bind_node(n.id, "(" + e.ref(n.weight, 0) + " * pd_)");
    else
      e.bind_node(n.id, n.dist ? "pd_" : "acc_[m][n]");
  }
  const std::vector<char> dep_out = depends_on(g, outer), dep_in = depends_on(g, inner);
  // Emits the nodes reachable from the roots that `keep` accepts (and what they need).
  auto emit_level = [&](const std::string& ind, bool (*keep)(bool dout, bool din)) {
    e.indent = ind;
    e.clear_code();
    std::vector<char> seen(g.size(), 0);
    for (std::vector<int> st = roots; !st.empty();) {
      int id = st.back();
      st.pop_back();
      if (seen[id]) continue;
      seen[id] = 1;
      if (g[id].kind == NodeKind::Call && !e.emitted(id) && keep(dep_out[id], dep_in[id]))
        e.emit(id);
      else
        for (int a : g[id].args) st.push_back(a);
    }
    return e.code();
  };
  const std::string per_kernel = emit_level("  ", [](bool dout, bool din) { return !dout && !din; });
  const std::string per_row = emit_level("        ", [](bool, bool din) { return !din; });
  e.indent = "            ";
  e.clear_code();
  for (const HdNode& n : plan.nodes)
    if (n.weight >= 0) e.emit(n.weight);
  for (int r : roots) e.emit(r);
  const std::string per_pair = e.code();

  // ---- reduction pieces (state arrays indexed by the row m) ----
  auto code = [&](const std::string& ind) {
    RedCode c;
    c.st = "st_[m]";
    c.si = "si_[m]";
    c.cp = "cp_[m]";
    c.ind = ind;
    return c;
  };
  RedCode acc = code("            ");
  acc.f = [&](int k) { return e.ref(f.root, k); };
  acc.w = [&](int k) { return e.ref(f.weight, k); };
  acc.j = "j";
  std::string tile_pre, tile_post;
  if (rd.block_sums()) {
    // The tile's terms of a row are added in registers, then to the row's state.
    for (int k = 0; k < sh.d; ++k) {
      tile_pre += "        T s" + I(k) + "_ = T(0);\n";
      acc.line("s" + I(k) + "_ += " + acc.f(k) + ";");
      tile_post += "        st_[m][" + I(k) + "] += s" + I(k) + "_;\n";
    }
  } else {
    rd.acc(acc, true);
  }
  auto init_code = [&](const std::string& ind) {
    RedCode c = code(ind);
    rd.init(c);
    return c.text;
  };
  auto final_code = [&](const std::string& ind) {
    RedCode c = code(ind);
    c.out = [&](const std::string& k) {
      const bool literal = k.find_first_not_of("0123456789") == std::string::npos;
      return "out[i + " + (literal ? k + "LL" : "(long long)" + k) + " * out_ld]";
    };
    rd.final(c);
    return c.text;
  };
  // Merging another state o_ into row m's (the K family does not merge here: see lane_lists).
  auto merge_code = [&](const std::string& ind) {
    RedCode c = code(ind);
    c.st2 = "o_st_";
    c.si2 = "o_si_";
    c.cp2 = "o_cp_";
    rd.merge(c);
    return c.text;
  };

  // Thread (ty, tx): rows ty * G + r of each group of G rows (G = a 16-byte vector of T when tm
  // allows), groups bm / (tm / G) apart, so that a warp's fragment loads are contiguous.
  // With tensor cores (MMA), the accumulator layout of mma.m16n8k8: warp w_ owns rows w_ * kWM..,
  // lane (g_, tx) of it rows g_ and g_ + 8 of each 16-row tile, columns 2 tx and 2 tx + 1 of
  // each 8-column tile (row index m: tile m / 2, half m % 2; column n: tile n / 2, n % 2).
  // Row index `m` and column index `n` (expressions) to their places in the block's tile.
  const int GM = std::min(TM, VL), GN = std::min(TN, VL);
  auto row_of = [&](const std::string& m) {
    if (MMA) return "w_ * kWM + (" + m + " / 2) * 16 + (" + m + " % 2) * 8 + g_";
    return "(" + m + " / " + I(GM) + ") * " + I(BM / (TM / GM)) + " + " + m + " % " + I(GM) + " + ty * " + I(GM);
  };
  auto col_of = [&](const std::string& n) {
    if (MMA) return "(" + n + " / 2) * 8 + " + n + " % 2 + 2 * tx";
    return "(" + n + " / " + I(GN) + ") * " + I(BN / (TN / GN)) + " + " + n + " % " + I(GN) + " + tx * " + I(GN);
  };
  auto row = [&](int a) { return row_of(I(a)); };
  auto col = [&](int b) { return col_of(I(b)); };
  static const char* lane[] = {".x", ".y", ".z", ".w"};
  auto fragment = [&](const char* dst, const char* buf, int W, int n, int G,
                      const std::function<std::string(int)>& pos) {
    std::string s;
    for (int a = 0; a < n; a += G) {
      if (G == VL) {
        s += "        { const TV q_ = *(const TV*)(" + std::string(buf) + " + kk * " + I(W) + " + " + pos(a) + ");";
        for (int l = 0; l < VL; ++l) s += std::string(" ") + dst + "[" + I(a + l) + "] = q_" + lane[l] + ";";
        s += " }\n";
      } else {
        for (int l = 0; l < G; ++l)
          s += std::string("        ") + dst + "[" + I(a + l) + "] = " + buf + "[kk * " + I(W) + " + " + pos(a + l) +
               "];\n";
      }
    }
    return s;
  };
  // Asynchronous copies (cp.async: no registers, issued a chunk ahead) of a chunk into shared
  // memory: W rows (or columns) of BK components from r0, components from kn, in 16-byte
  // vectors; out of range: zeros.
  const int NA = BK * BM / VL, NB = BK * BN / VL;
  auto copy_chunk = [&](const char* dst, const char* src_, const char* ld, int W, int LD, int N, const char* kn,
                        const char* r0) {
    std::string s;
    for (int l = 0; l * NT < N; ++l) {
      s += "      { const int q_ = tid + " + I(l * NT) + ";";
      if ((l + 1) * NT > N) s += " if (q_ < " + I(N) + ")";
      s += " { const int k_ = q_ / " + I(W / VL) + ", r_ = q_ % " + I(W / VL) + " * " + I(VL) + ", kg_ = " + kn +
           " + k_, rg_ = " + r0 + " + r_; const bool ok_ = kg_ < kD && rg_ < " + ld + "; rk_cp16(" + dst + " + k_ * " +
           I(LD) + " + r_, " + src_ + " + (ok_ ? (long long)kg_ * " + ld + " + rg_ : 0LL), ok_); } }\n";
    }
    return s;
  };
  // The columns' data of a tile (Y's components D.. : the other inner variables, then |y|^2).
  auto copy_cols = [&](const char* dst, const char* j0) {
    std::string s;
    const int N = NCOL * BN / VL;
    for (int l = 0; l * NT < N; ++l) {
      s += "        { const int q_ = tid + " + I(l * NT) + ";";
      if ((l + 1) * NT > N) s += " if (q_ < " + I(N) + ")";
      s += " { const int k_ = q_ / " + I(BN / VL) + ", r_ = q_ % " + I(BN / VL) + " * " + I(VL) + ", rg_ = " + j0 +
           " + r_; const bool ok_ = rg_ < ldy; rk_cp16(" + dst + " + k_ * " + I(BN) +
           " + r_, Yc + (ok_ ? (long long)(kD + k_) * ldy + rg_ : 0LL), ok_); } }\n";
    }
    return s;
  };
  // A chunk's products on the tensor cores: per 8 components, each warp loads its A fragments
  // (its rows) and, tile by tile, the B fragments (the columns), splits each value into a TF32
  // head and tail, and accumulates head * head on the TF32 instruction (mma.m16n8k8) and the
  // cross terms head * tail + tail * head either on two more (CodeOptions::cuda_hd_split 0, 1)
  // or on one BF16 instruction of 16 components (2: mma.m16n8k16, as fast as one TF32
  // instruction; bench/RESULTS.md). (cvt.rna.tf32.f32 for the split measured slower, and the
  // BF16 operands of B packed once a chunk for the block instead of by each warp too.)
  // Fragments (PTX ISA): A[g][t], A[g + 8][t], A[g][t + 4], A[g + 8][t + 4]; B[t][g], B[t + 4][g]
  // for lane 4 g + t; the chunk's stride kLA = 8 (mod 32) makes each load hit 32 banks. The
  // BF16 instruction's 16 components of lane 4 g + t are 2t, 2t + 1 (A: the heads of components
  // t and t + 4 of the lane's rows; B: their tails in the lane's column) and 2t + 8, 2t + 9 (A:
  // the tails; B: the heads), so each lane pairs only the values it holds.
  const bool cross_bf16 = MMA && opt.cuda_hd_split >= 2;
  auto mma_chunk = [&]() {
    std::string s;
    s += "    #pragma unroll\n    for (int ks = 0; ks < kBK; ks += 8) {\n";
    s += "      unsigned ah_[kMT][4], al_[kMT][4];\n";
    s += "      #pragma unroll\n      for (int a = 0; a < kMT; ++a) {\n";
    s += "        const T* const p_ = Ab + (ks + tx) * kLA + w_ * kWM + a * 16 + g_;\n";
    s += "        const float x0_ = p_[0], x1_ = p_[8], x2_ = p_[4 * kLA], x3_ = p_[4 * kLA + 8];\n";
    s += "        unsigned l_[4];\n";
    for (int k = 0; k < 4; ++k) s += "        rk_tf32_split(x" + I(k) + "_, ah_[a][" + I(k) + "], l_[" + I(k) + "]);\n";
    if (cross_bf16) {  // (heads: the values rounded to BF16)
      s += "        al_[a][0] = rk_bf16x2(x2_, x0_); al_[a][1] = rk_bf16x2(x3_, x1_);\n";
      s += "        al_[a][2] = rk_bf16x2(__uint_as_float(l_[2]), __uint_as_float(l_[0]));\n";
      s += "        al_[a][3] = rk_bf16x2(__uint_as_float(l_[3]), __uint_as_float(l_[1]));\n";
    } else {
      s += "        for (int k = 0; k < 4; ++k) al_[a][k] = l_[k];\n";
    }
    s += "      }\n";
    s += "      #pragma unroll\n      for (int b = 0; b < kNT8; ++b) {\n";
    s += "        unsigned bh_[2], bl_[2];\n";
    s += "        const T* const q_ = Bb + (ks + tx) * kLB + b * 8 + g_;\n";
    s += "        const float y0_ = q_[0], y1_ = q_[4 * kLB];\n";
    s += "        rk_tf32_split(y0_, bh_[0], bl_[0]);\n";
    s += "        rk_tf32_split(y1_, bh_[1], bl_[1]);\n";
    if (cross_bf16)
      s += "        const unsigned bc_[2] = {rk_bf16x2(__uint_as_float(bl_[1]), __uint_as_float(bl_[0])), "
           "rk_bf16x2(y1_, y0_)};\n";
    s += "        #pragma unroll\n        for (int a = 0; a < kMT; ++a) {\n";
    const std::string c = "acc_[2 * a][2 * b], acc_[2 * a][2 * b + 1], acc_[2 * a + 1][2 * b], acc_[2 * a + 1][2 * b + 1], ";
    if (cross_bf16) {
      s += "          rk_mma_bf16(" + c + "al_[a], bc_);\n";
      s += "          rk_mma_tf32(" + c + "ah_[a], bh_);\n";
    } else {
      for (const char* ab : {"al_[a], bh_", "ah_[a], bl_", "ah_[a], bh_"}) s += "          rk_mma_tf32(" + c + ab + ");\n";
    }
    s += "        }\n      }\n    }\n";
    return s;
  };
  std::ostringstream src;
  src << "// Generated by rkeops: a CUDA kernel (high-dimension scheme) for\n// " << f.canonical() << "\n";
  src << read_prelude(include_dir, "rkeops/prelude_cuda.h");
  src << "typedef " << (f32 ? "float" : "double") << " T;\n";
  src << "typedef " << (f32 ? "float4" : "double2") << " TV;   // 16 bytes of T\n";
  src << "typedef T TS;\n";
  src << "#define RK_ABI " << kCudaAbiVersion << "\n";
  src << "constexpr int kD = " << D << ";        // dimension of the inner products\n";
  src << "constexpr int kBM = " << BM << ", kBN = " << BN << ", kBK = " << BK
      << ";   // tile: outer x inner rows, components per chunk\n";
  src << "constexpr int kTM = " << TM << ", kTN = " << TN << ";   // pairs per thread\n";
  src << "constexpr int kLA = " << LA << ", kLB = " << LB << ";   // shared-memory strides of a chunk's components\n";
  if (MMA)
    src << "constexpr int kWM = " << BM / (NT / 32) << ", kMT = " << TM / 2 << ", kNT8 = " << TN / 2
        << ";   // a warp's rows; its 16 x 8 tensor-core tiles\n";
  src << "constexpr int kNT = " << NT << ", kNTX = " << NTX << ";   // threads; threads sharing rows\n";
  src << "constexpr int kMinBlocks = " << t.min_blocks << ";   // blocks a multiprocessor at least\n";
  src << "constexpr int kNCOL = " << NCOL << ";   // the columns' data: Y's components kD..\n";
  src << "// Whether any lane of the warp has p (the emulation's threads meet at block barriers: there,\n"
         "// any lane of the block, so that a loop on it runs as often in every warp)\n"
         "#ifdef RK_CUDA_EMULATION\n#define rk_any_in_warp(p) rk_emu_any_in_block(p)\n#else\n"
         "#define rk_any_in_warp(p) __any_sync(0xffffffffu, (p))\n#endif\n";
  src << "// |x|^2 + |y|^2 - 2 <x, y>, clamped at 0 (NaN stays NaN)\n";
  src << "RK_FN T rk_hd_dist(T xn, T yn, T dot) { const T d = xn + yn - T(2) * dot; return d < T(0) ? T(0) : d; }\n";
  src << "// 16 bytes from global to shared memory without registers (zeros when !ok); rk_cp_wait(): all\n"
         "// of this thread's copies are done (then a barrier makes them visible to the block)\n"
         "#if defined(RK_CUDA_EMULATION) || __CUDA_ARCH__ < 800\n"
         "RK_FN void rk_cp16(T* dst, const T* src, bool ok) { TV z = {}; *(TV*)dst = ok ? *(const TV*)src : z; }\n"
         "RK_FN void rk_cp_wait() {}\n"
         "#else\n"
         "RK_FN void rk_cp16(T* dst, const T* src, bool ok) {\n"
         "  unsigned a;\n"
         "  asm(\"{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }\" : \"=r\"(a) : \"l\"(dst));\n"
         "  asm volatile(\"cp.async.cg.shared.global [%0], [%1], 16, %2;\" :: \"r\"(a), \"l\"(src), \"r\"(ok ? 16 : 0) "
         ": \"memory\");\n"
         "}\n"
         "RK_FN void rk_cp_wait() { asm volatile(\"cp.async.wait_all;\" ::: \"memory\"); }\n"
         "#endif\n";
  if (MMA)
    src << "// Tensor cores (sm_80 and later; the emulation of the tests: when RK_EMU_MMA is defined, else\n"
           "// the same layout by multiply-adds). x = head + tail, both read as TF32.\n"
           "#if defined(RK_CUDA_EMULATION) ? defined(RK_EMU_MMA) : __CUDA_ARCH__ >= 800\n"
           "#define RK_HD_MMA 1\n"
           << (opt.cuda_hd_split != 0
                   ? "// The head: x truncated to 10 bits of mantissa by a mask (Inf stays Inf, a NaN gives a NaN\n"
                     "// head and tail); the tail x - head is exact in float32, and the instruction reads its 10\n"
                     "// leading bits (an error of at most 2^-20 |x|). Two instructions a value.\n"
                     "RK_FN void rk_tf32_split(float x, unsigned& hi, unsigned& lo) {\n"
                     "  hi = __float_as_uint(x) & 0xffffe000u;\n"
                   : "// The head: x rounded to 10 bits of mantissa by an integer add and a mask (Inf stays Inf, a\n"
                     "// NaN gives a NaN or Inf head and a NaN tail); the tail x - head is exact in float32, and the\n"
                     "// instruction reads its 10 leading bits (an error of at most 2^-21 |x|).\n"
                     "RK_FN void rk_tf32_split(float x, unsigned& hi, unsigned& lo) {\n"
                     "  hi = (__float_as_uint(x) + 0x1000u) & 0xffffe000u;\n")
           << "  lo = __float_as_uint(x - __uint_as_float(hi));\n"
           "}\n"
           << (!cross_bf16 ? ""
                           : "// c (16 x 8, f32) += a (16 x 16) b (16 x 8) in BF16, one warp; rk_bf16x2(h, l): h and l rounded\n"
                             "// to BF16, l in the low half\n"
                             "#ifdef RK_CUDA_EMULATION\n"
                             "RK_FN unsigned rk_bf16x2(float h, float l) { return rk_emu_bf16x2(h, l); }\n"
                             "#else\n"
                             "RK_FN unsigned rk_bf16x2(float h, float l) {\n"
                             "  unsigned d;\n"
                             "  asm(\"cvt.rn.bf16x2.f32 %0, %1, %2;\" : \"=r\"(d) : \"f\"(h), \"f\"(l));\n"
                             "  return d;\n"
                             "}\n"
                             "#endif\n"
                             "RK_FN void rk_mma_bf16(float& c0, float& c1, float& c2, float& c3, const unsigned* a, const unsigned* b) {\n"
                             "#ifdef RK_CUDA_EMULATION\n"
                             "  rk_emu_mma_bf16(c0, c1, c2, c3, a, b);\n"
                             "#else\n"
                             "  asm(\"mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, \"\n"
                             "      \"{%0, %1, %2, %3};\"\n"
                             "      : \"+f\"(c0), \"+f\"(c1), \"+f\"(c2), \"+f\"(c3)\n"
                             "      : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]));\n"
                             "#endif\n"
                             "}\n")
           << "// c (16 x 8, f32) += a (16 x 8) b (8 x 8), one warp\n"
           "RK_FN void rk_mma_tf32(float& c0, float& c1, float& c2, float& c3, const unsigned* a, const unsigned* b) {\n"
           "#ifdef RK_CUDA_EMULATION\n"
           "  rk_emu_mma_tf32(c0, c1, c2, c3, a, b);\n"
           "#else\n"
           "  asm(\"mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, \"\n"
           "      \"{%0, %1, %2, %3};\"\n"
           "      : \"+f\"(c0), \"+f\"(c1), \"+f\"(c2), \"+f\"(c3)\n"
           "      : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"r\"(b[0]), \"r\"(b[1]));\n"
           "#endif\n"
           "}\n"
           "#endif\n";
  src << "\nextern \"C\" __global__ void __launch_bounds__(kNT, kMinBlocks) rk_reduce(\n"
         "    const T* __restrict__ X, long long ldx, const TV* __restrict__ Y, const T* __restrict__ P,\n"
         "    int n_outer, int n_inner, long long jbase, long long jchunk, double* __restrict__ out, long long "
         "out_ld,\n"
         "    T* __restrict__ pst, int* __restrict__ psi, T* __restrict__ pcp, int slot0,\n"
         "    const long long* __restrict__ items, const long long* __restrict__ jranges) {\n";
  src << "  (void)items; (void)jranges;   // block-sparse reductions use the generic scheme\n";
  src << "  __shared__ TV smem_[" << (2 * BK * (LA + LB) + 2 * NCOL * BN) / VL
      << "];   // [2][kBK][kLA], [2][kBK][kLB], [2][columns' data][kBN]\n";
  src << "  T* const As_ = (T*)smem_;\n  T* const Bs_ = As_ + 2 * kBK * kLA;\n";
  if (NCOL) src << "  T* const Cs_ = Bs_ + 2 * kBK * kLB;\n";
  src << "  const T* __restrict__ Yc = (const T*)Y;\n";
  src << "  const long long ldy = ((long long)n_inner + " << VL - 1 << ") / " << VL << " * " << VL << ";\n";
  if (MMA)
    src << "  const int tid = threadIdx.x, w_ = tid / 32, g_ = tid % 32 / 4, tx = tid % 4;   // warp, quad, lane in quad\n";
  else
    src << "  const int tid = threadIdx.x, tx = tid % kNTX, ty = tid / kNTX;\n";
  src << "  const int i0 = blockIdx.x * kBM;\n";
  src << "  const long long nrows = n_outer;\n";
  src << "  const int jb0 = (int)(blockIdx.y * jchunk);\n";
  src << "  const int jb1 = (int)(jb0 + jchunk < n_inner ? jb0 + jchunk : n_inner);\n";
  src << "  const int nchunks = (jb1 > jb0 ? (jb1 - jb0 + kBN - 1) / kBN : 0) * ((kD + kBK - 1) / kBK);\n";
  for (const VarUse& v : vars) {
    if (v.cat != CAT_P || !params_in_regs) continue;
    src << "  T pm" << v.pos << "[" << v.dim << "];";
    for (int k = 0; k < v.dim; ++k) src << " pm" << v.pos << "[" << k << "] = P[" << cc.p_off[v.pos] + k << "];";
    src << "\n";
  }
  src << per_kernel;
  // The rows' other variables and squared norms, in registers for the whole sweep.
  if (any_dist) src << "  T xn_[kTM];\n";
  for (const VarUse& v : vars)
    if (v.cat == outer && !is_pair(v)) src << "  T xv" << v.pos << "[" << v.dim << "][kTM];\n";
  src << "  #pragma unroll\n  for (int m = 0; m < kTM; ++m) {\n";
  src << "    const int r_ = i0 + " << row_of("m") << ";\n";
  src << "    const bool ok_ = r_ < ldx;\n";
  if (any_dist) src << "    xn_[m] = ok_ ? X[" << cc.hd.x_norm << "LL * ldx + r_] : T(0);\n";
  for (const VarUse& v : vars)
    if (v.cat == outer && !is_pair(v))
      for (int k = 0; k < v.dim; ++k)
        src << "    xv" << v.pos << "[" << k << "][m] = ok_ ? X[" << cc.x_off[v.pos] + k << "LL * ldx + r_] : T(0);\n";
  src << "  }\n";
  src << "  T st_[kTM][" << S << "];";
  if (SI) src << " int si_[kTM][" << SI << "];";
  if (SC) src << " T cp_[kTM][" << SC << "];";
  src << "\n  #pragma unroll\n  for (int m = 0; m < kTM; ++m) {\n" << init_code("    ") << "  }\n";
  // Row i's state (row m of this thread) into slot `slot` of the partial states, or (`load`)
  // back from it.
  auto slot_states = [&](const char* ind, bool load) {
    auto one = [&](const char* arr, const char* name, int n) {
      for (int k = 0; k < n; ++k) {
        const std::string in_slot = std::string(arr) + "[(slot * " + std::to_string(n) + "LL + " +
                                    std::to_string(k) + ") * nrows + i]";
        const std::string reg = std::string(name) + "[m][" + std::to_string(k) + "]";
        src << ind << (load ? reg : in_slot) << " = " << (load ? in_slot : reg) << ";\n";
      }
    };
    one("pst", "st_", S);
    one("psi", "si_", SI);
    one("pcp", "cp_", SC);
  };
  // (the K family's lane lists: a slot for each lane of a row)
  const char* lane_slot = "const long long slot = (sbase_ + (long long)blockIdx.y) * kNTX + tx;\n";
  if (lane_lists) {
    // A piece of the inner range after the first continues from the lists its lane left in
    // its slot (slot0 + kHdResume): rk_merge then merges one piece's worth of slots, not all.
    src << "  const bool resume_ = slot0 >= " << kHdResume << ";\n";
    src << "  const int sbase_ = resume_ ? slot0 - " << kHdResume << " : slot0;\n";
    src << "  if (resume_) {\n    " << lane_slot;
    src << "    #pragma unroll\n    for (int m = 0; m < kTM; ++m) {\n";
    src << "      const int i = i0 + " << row_of("m") << ";\n      if (i >= n_outer) continue;\n";
    slot_states("      ", true);
    src << "    }\n  }\n";
  }
  src << "  T acc_[kTM][kTN];\n";
  src << "  #pragma unroll\n  for (int m = 0; m < kTM; ++m)\n    #pragma unroll\n"
         "    for (int n = 0; n < kTN; ++n) acc_[m][n] = T(0);\n";
  // Copies of chunk (jn, kn) into buffer b_, and of the columns' data of the tile at jn.
  auto copies = [&](const char* jn, const char* kn, const char* b_, const char* pc_) {
    std::string s =
        copy_chunk(("As_ + " + std::string(b_) + " * (kBK * kLA)").c_str(), "X", "ldx", BM, LA, NA, kn, "i0") +
        copy_chunk(("Bs_ + " + std::string(b_) + " * (kBK * kLB)").c_str(), "Yc", "ldy", BN, LB, NB, kn, jn);
    if (NCOL) {
      s += "      if (" + std::string(kn) + " == 0) {\n";
      s += copy_cols(("Cs_ + " + std::string(pc_) + " * (kNCOL * kBN)").c_str(), jn);
      s += "      }\n";
    }
    return s;
  };
  src << "  if (nchunks > 0) {   // the first chunk\n" << copies("jb0", "0", "0", "0") << "  }\n";
  src << "  rk_cp_wait();\n  __syncthreads();\n";
  src << "  int jt = jb0, k0 = 0, tl = 0;   // the chunk in shared memory: tile number tl at jt, components k0..\n";
  src << "  for (int c = 0; c < nchunks; ++c) {\n";
  src << "    const T* const Ab = As_ + (c & 1) * (kBK * kLA);\n";
  src << "    const T* const Bb = Bs_ + (c & 1) * (kBK * kLB);\n";
  src << "    int kn = k0 + kBK, jn = jt;\n";
  src << "    if (kn >= kD) { kn = 0; jn += kBN; }\n";
  src << "    if (c + 1 < nchunks) {   // the next chunk, into the other buffer, while this one is used\n"
      << copies("jn", "kn", "((c + 1) & 1)", "((tl + 1) & 1)") << "    }\n";
  if (MMA) src << "#ifdef RK_HD_MMA\n" << mma_chunk() << "#else\n";
  src << "    #pragma unroll\n    for (int kk = 0; kk < kBK; ++kk) {\n      T a_[kTM], b_[kTN];\n";
  if (MMA) {
    src << "      #pragma unroll\n      for (int m = 0; m < kTM; ++m) a_[m] = Ab[kk * kLA + " << row_of("m") << "];\n";
    src << "      #pragma unroll\n      for (int n = 0; n < kTN; ++n) b_[n] = Bb[kk * kLB + " << col_of("n") << "];\n";
  } else {
    src << fragment("a_", "Ab", LA, TM, GM, row) << fragment("b_", "Bb", LB, TN, GN, col);
  }
  src << "      #pragma unroll\n      for (int m = 0; m < kTM; ++m)\n        #pragma unroll\n"
         "        for (int n = 0; n < kTN; ++n) acc_[m][n] += a_[m] * b_[n];\n    }\n";
  if (MMA) src << "#endif\n";
  // The epilogue of a tile.
  src << "    if (kn == 0) {   // the tile's last chunk: F per pair, into the rows' states\n";
  src << "      bool okn_[kTN];\n";
  if (SI) src << "      int jg_[kTN];\n";
  // The columns' data, from shared memory.
  if (any_dist) src << "      T yn_[kTN];\n";
  for (const VarUse& v : vars)
    if (v.cat == inner && !is_pair(v)) src << "      T yv" << v.pos << "[" << v.dim << "][kTN];\n";
  if (NCOL) src << "      const T* const Cb = Cs_ + (tl & 1) * (kNCOL * kBN);\n";
  src << "      #pragma unroll\n      for (int n = 0; n < kTN; ++n) {\n";
  src << "        const int c_ = " << col_of("n") << ", jl_ = jt + c_;\n        okn_[n] = jl_ < jb1;\n";
  if (SI) src << "        jg_[n] = (int)(jbase + jl_);\n";
  if (any_dist) src << "        yn_[n] = Cb[" << cc.hd.y_norm - D << " * kBN + c_];\n";
  for (const VarUse& v : vars)
    if (v.cat == inner && !is_pair(v))
      for (int k = 0; k < v.dim; ++k)
        src << "        yv" << v.pos << "[" << k << "][n] = Cb[" << cc.y_off[v.pos] + k - D << " * kBN + c_];\n";
  src << "      }\n";
  src << "      #pragma unroll\n      for (int m = 0; m < kTM; ++m) {\n" << per_row << tile_pre;
  // The K-family's insertion is rare after the first tiles but long. A scalar one (k-NN): the
  // pairs' values replace their products, the candidates (below the row's K-th value) are marked
  // in a bit mask, and one copy of the insertion takes them in column order, in a loop the warp
  // runs while any lane has one (the kernel's size and compile time do not grow with the pairs
  // per thread). Otherwise a branch per pair that the whole warp skips when no lane has a
  // candidate (else the compiler may predicate the insertion for every pair).
  const bool kskip = red.extra == Extra::K && !rd.kahan();
  const bool kmask = kskip && sh.d == 1 && TN <= 64;
  std::string kloop;
  if (kmask) {
    RedCode ins = code("            ");
    ins.f = [](int) { return std::string("kv_"); };
    ins.j = "j";
    rd.acc(ins, true);
    kloop = "        while (rk_any_in_warp(cand_ != 0ull)) {\n"
            "          if (cand_ == 0ull) continue;\n"
            "          const int n_ = __ffsll((long long)cand_) - 1;\n"
            "          cand_ &= cand_ - 1ull;\n"
            "          T kv_ = acc_[m][0];\n"
            "          #pragma unroll\n"
            "          for (int n = 1; n < kTN; ++n) kv_ = n == n_ ? acc_[m][n] : kv_;\n"
            "          const int j = (int)(jbase + jt + " +
            col_of("n_") + ");\n" + ins.text + "        }\n";
    acc.text = "          acc_[m][n] = " + acc.f(0) + ";\n          if (okn_[n] && acc_[m][n] < st_[m][" + I(sh.K - 1) +
               "]) cand_ |= 1ull << n;\n";
    src << "        unsigned long long cand_ = 0ull;   // the candidates among the row's pairs\n";
  } else if (kskip) {
    std::string any;
    for (int k = 0; k < sh.d; ++k)
      any += std::string(k ? " || " : "") + acc.f(k) + " < st_[m][" + I(k * sh.K + sh.K - 1) + "]";
    acc.text = "            if (__any_sync(0xffffffffu, okn_[n] && (" + any + ")) && okn_[n]) {\n" + acc.text +
               "            }\n";
  }
  src << "        #pragma unroll\n        for (int n = 0; n < kTN; ++n) {\n";
  if (!kskip) src << "          if (!okn_[n]) continue;\n";
  if (SI) src << "          const int j = jg_[n];\n";
  if (any_dist) src << "          const T pd_ = rk_hd_dist(xn_[m], yn_[n], acc_[m][n]);\n";
  src << per_pair << acc.text << "        }\n" << kloop << tile_post << "      }\n";
  src << "      #pragma unroll\n      for (int m = 0; m < kTM; ++m)\n        #pragma unroll\n"
         "        for (int n = 0; n < kTN; ++n) acc_[m][n] = T(0);\n    }\n";
  src << "    rk_cp_wait();\n    __syncthreads();\n    if (kn == 0) ++tl;\n    k0 = kn;\n    jt = jn;\n  }\n";
  if (lane_lists) {
    // Each lane's sorted lists go to a slot of their own, (slot0 + blockIdx.y) * kNTX + tx,
    // and rk_merge merges them with the other splits' (ties ordered by index). Merging two
    // lists here, in registers, for each of a thread's rows took NVRTC about 0.3 s of a 1 s
    // compile (run-time indices into copies of the lists).
    src << "  // every lane's lists, to its own slot (rk_merge merges the kNTX lanes of a row)\n";
    src << "  " << lane_slot;
    src << "  #pragma unroll\n  for (int m = 0; m < kTM; ++m) {\n";
    src << "    const int i = i0 + " << row_of("m") << ";\n";
    src << "    if (i >= n_outer) continue;\n";
    slot_states("    ", false);
    src << "  }\n}\n";
  } else {
    // Merge across the threads of a row group (lanes tx of one warp), then lane m has row m.
    src << "  // the kNTX lanes that share rows merge their states (butterfly: every lane gets the whole)\n";
    src << "  for (int off = kNTX / 2; off > 0; off /= 2) {\n";
    src << "    #pragma unroll\n    for (int m = 0; m < kTM; ++m) {\n";
    src << "      T o_st_[" << S << "];";
    if (SI) src << " int o_si_[" << SI << "];";
    if (SC) src << " T o_cp_[" << SC << "];";
    src << "\n";
    auto shfl = [&](const char* o_, const char* r_, int n) {
      for (int k = 0; k < n; ++k)
        src << "      " << o_ << "[" << k << "] = __shfl_xor_sync(0xffffffffu, " << r_ << "[m][" << k << "], off);\n";
    };
    shfl("o_st_", "st_", S);
    shfl("o_si_", "si_", SI);
    shfl("o_cp_", "cp_", SC);
    src << merge_code("      ") << "    }\n  }\n";
    src << "  #pragma unroll\n  for (int m = 0; m < kTM; ++m) {\n";
    src << "    const int i = i0 + " << row_of("m") << ";\n";
    src << "    if (tx != m || i >= n_outer) continue;\n";
    src << "    if (slot0 < 0) {\n" << final_code("      ") << "    } else {\n";
    src << "      const long long slot = slot0 + (long long)blockIdx.y;\n";
    slot_states("      ", false);
    src << "    }\n  }\n}\n";
  }

  // rk_merge: the generic template's.
  {
    RedCode fc;
    fc.st = "st_";
    fc.si = "si_";
    fc.cp = "cp_";
    fc.ind = "  ";
    fc.out = [&](const std::string& k) {
      const bool literal = k.find_first_not_of("0123456789") == std::string::npos;
      return "out[i + " + (literal ? k + "LL" : "(long long)" + k) + " * out_ld]";
    };
    rd.final(fc);
    RedCode mc;
    mc.st = "st_";
    mc.si = "si_";
    mc.cp = "cp_";
    mc.st2 = "o_st_";
    mc.si2 = "o_si_";
    mc.cp2 = "o_cp_";
    mc.ind = "    ";
    rd.merge(mc);
    auto decl = [&](const std::string& p, const std::string& ind) {
      std::string s = ind + "T " + p + "st_[" + I(S) + "];";
      if (SI) s += " int " + p + "si_[" + I(SI) + "];";
      if (SC) s += " T " + p + "cp_[" + I(SC) + "];";
      return s + "\n";
    };
    auto load = [&](const std::string& p, const std::string& slot, const std::string& ind) {
      std::string s;
      auto one = [&](const char* arr, const char* name, int n) {
        for (int k = 0; k < n; ++k)
          s += ind + p + name + "[" + I(k) + "] = " + arr + "[(" + slot + " * " + I(n) + "LL + " + I(k) +
               ") * nrows + i];\n";
      };
      one("pst", "st_", S);
      one("psi", "si_", SI);
      one("pcp", "cp_", SC);
      return s;
    };
    src << cuda_merge_head("kNT");
    src << decl("", "  ") << load("", "0LL", "  ");
    src << "  for (int s_ = 1; s_ < nslots; ++s_) {\n"
        << decl("o_", "    ") << load("o_", "(long long)s_", "    ") << mc.text << "  }\n";
    src << cuda_states_out(S, SI, SC);  // partial states, as the generic rk_merge writes them
    src << fc.text << "}\n";
  }
  // rk_pack_pair: a device-resident pair variable (its column-major device copy, leading
  // dimension src_ld) into the scheme's layout: rows [a, a + n) shifted by `center` (null: not
  // shifted) as the host packing does, and their squared norms (in double) in column `norm`.
  src << "\nextern \"C\" __global__ void rk_pack_pair(T* __restrict__ dst, long long ld, const T* __restrict__ src,\n"
         "    long long src_ld, long long a, long long n, const double* __restrict__ center, int norm) {\n"
         "  const long long r = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
         "  if (r >= n) return;\n"
         "  double s_ = 0;\n"
         "  for (int k = 0; k < kD; ++k) {\n"
         "    const T v = (T)((double)src[k * src_ld + a + r] - (center ? center[k] : 0.0));\n"
         "    dst[k * ld + r] = v;\n"
         "    s_ += (double)v * (double)v;\n"
         "  }\n"
         "  if (norm >= 0) dst[norm * ld + r] = (T)s_;\n"
         "}\n";
  cc.source = src.str();
  return cc;
}

}  // namespace rkeops

// The CUDA map-reduce template (design §6). Reads top to bottom:
//   rk_reduce: one thread per outer row i keeps its outer variables, everything that does not
//     depend on the inner index, and its reduction state in registers; the block walks its
//     slice of the inner range (blockIdx.y: the inner range split over blocks when the outer
//     rows alone cannot fill the GPU) tile by tile: the tile's packed inner rows are copied to
//     shared memory with 16-byte vector copies, then each thread sweeps the tile (broadcast
//     reads). At the end a thread finalises its row, or stores its partial state in slot
//     `slot0 + blockIdx.y` when the range was split (over blocks or over launches).
//   rk_merge: one thread per row merges the partial states of every slot with the reduction's
//     merge, then finalises.
// The formula's code comes from the same Emitter and reduction table as the CPU kernels.
//
// Float16 (rkeops_use_float16()): X, Y and P hold IEEE halves (TS = unsigned short), and T, the
// type of the reduction's state, is float. When every operation of the formula has a half2
// form (OpInfo::half2), each thread takes two outer rows, i and i + 1, as the two lanes of
// half2 values (rk_h2, prelude_cuda_half.h): the formula's code is the usual text with T =
// rk_h2 in the kernel's body, inner rows and parameters broadcast to both lanes, so that the
// tile loop and the shared memory are those of one row per thread. Each term is split into
// two floats and accumulated per lane in float32 (block sums per tile; every reduction of the
// table, unchanged, in a scope where T is float again). Otherwise the kernel is the float32
// kernel reading halves: one row per thread, the formula in float32.
#include "codegen_cuda.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <sstream>

#include "codegen.h"
#include "codegen_cuda_f16tc.h"
#include "codegen_cuda_hd.h"
#include "errors.h"
#include "ops.h"

namespace rkeops {
namespace {

std::string I(long long k) { return std::to_string(k); }

// Registers hold the parameters when they are few; otherwise they are read from P (cached).
constexpr int kMaxParamRegs = 64;
// Shared-memory budget of one tile: small enough for several blocks per multiprocessor.
constexpr int kTileBytes = 24576;
constexpr int kMaxTileBytes = 49152;  // the static shared-memory limit of a block
// Inner rows of at most this many floats are read into registers with vector loads; wider
// rows are read where they are used (the compiler vectorises what it can).
constexpr int kMaxRowRegs = 32;
// The most bytes of reduction state a thread may keep (K-min lists: K x d values and indices).
constexpr long long kMaxStateBytes = 16384;
// Before loops over the components of wide formulas: NVRTC would unroll loops of ~100
// iterations completely (4.5 s to compile a gradient at D = 100 instead of 0.6 s).
const char* const kLoopPragma = "#pragma unroll 4";

int count_lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// Register blocking: a thread computes R outer rows (i, i + blockDim.x, ...), so that each inner
// row read from shared memory serves R rows. The registers a row needs (its outer variables,
// state, block sums) bound R; measured on the H200 (bench/RESULTS.md, issue 15).
constexpr int kMaxRowsPerThread = 8;
int rows_per_thread(long long row_regs) { return row_regs <= 8 ? 4 : row_regs <= 24 ? 2 : 1; }
// Float32 kernels with a prescaled Gaussian fold (whose 2^x on the special-function unit is
// the bottleneck): rows of 48 values a thread, up to 6 rows, with at most 128 registers (two
// blocks of 256 threads a multiprocessor, kMinBlocksWide). 16 warps a multiprocessor, each with
// more independent work between its shared-memory reads, keep the unit busier than 24 warps of
// 4 rows. Gaussian sums at 3e5 points on the H200, b of dimension 1 / 3 / 4: 24.2 / 30.4 /
// 33.8 ms against 26.3 / 31.8 / 35.0 (6 / 5 / 4 rows against 4 / 2 / 2); at 1e6, 268.7 ms
// against 292.1 (8 rows without the register cap: 326.3). Kernels without such a fold lose
// (a Cauchy sum 63.5 ms against 56.9, SumSoftMaxWeight 84.0 against 67.0) and keep rows_per_thread.
constexpr int kMinBlocksWide = 2;  // __launch_bounds__'s minimum of blocks when R > 4
int rows_per_thread_gaussian(long long row_regs) {
  const long long r = std::min(6LL, 48 / std::max(1LL, row_regs));
  return r >= 4 ? static_cast<int>(r) : 0;  // 0: fewer rows than rows_per_thread would give
}

// The per-row names of the generated code (a row's outer variables, nodes, temporaries,
// state, block sums, index and activity), as suffixed for row r of a register-blocked thread.
bool per_row_name(const std::string& t) {
  static const char* const fixed[] = {"i", "active", "st_", "si_", "cp_", "s_", "lm_", "ts_", "tm_", "pa_", "px_", "pz_"};
  for (const char* f : fixed)
    if (t == f) return true;
  auto digits_from = [&](size_t a, size_t b) {
    if (a >= b) return false;
    for (size_t k = a; k < b; ++k)
      if (!std::isdigit(static_cast<unsigned char>(t[k]))) return false;
    return true;
  };
  for (const char* stem : {"v", "t", "xo", "xg"}) {
    const size_t n = std::char_traits<char>::length(stem);
    if (t.compare(0, n, stem) == 0 && digits_from(n, t.size())) return true;
  }
  for (const char* stem : {"u", "s", "fl", "fx"}) {  // stem, digits, '_'
    const size_t n = std::char_traits<char>::length(stem);
    if (t.size() > n + 1 && t.back() == '_' && t.compare(0, n, stem) == 0 && digits_from(n, t.size() - 1)) return true;
  }
  return false;
}

// `code` with every per-row name suffixed "_r<r>" (identifier tokens only).
std::string for_row(const std::string& code, int r) {
  std::string out, tok;
  out.reserve(code.size() + code.size() / 4);
  const std::string suffix = "_r" + std::to_string(r);
  auto flush = [&] {
    out += tok;
    if (!tok.empty() && per_row_name(tok)) out += suffix;
    tok.clear();
  };
  for (size_t k = 0; k < code.size(); ++k) {
    const char c = code[k];
    const bool ident = std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (ident && (tok.empty() ? !(k > 0 && (std::isalnum(static_cast<unsigned char>(code[k - 1])) || code[k - 1] == '.'))
                              : true)) {
      tok += c;
      continue;
    }
    flush();
    out += c;
  }
  flush();
  return out;
}

}  // namespace

void place_cuda_input(CudaCode& cc, const VarUse& v, int outer) {
  if (v.cat == CAT_P) {
    cc.p_off[v.pos] = cc.np;
    cc.np += v.dim;
  } else if (v.cat == outer) {
    cc.x_off[v.pos] = cc.wx;
    cc.wx += v.dim;
  } else {
    cc.y_off[v.pos] = cc.wy;
    cc.wy += v.dim;
  }
}

// Block-sparse: part blockIdx.y of gridDim.y of the concatenation of the item's ranges (window
// [lo_, hi_) of its inner rows, `off_` rows before range r_); dense: slice blockIdx.y.
std::string cuda_inner_ranges_head() {
  return "  long long lo_ = 0, hi_ = 0, off_ = 0;\n"
         "  if (jr_) {\n    long long len_ = 0;\n    for (int r_ = 0; r_ < nr_; ++r_) len_ += jr_[2 * r_ + 1] - jr_[2 * r_];\n"
         "    lo_ = len_ * blockIdx.y / gridDim.y;\n    hi_ = len_ * (blockIdx.y + 1) / gridDim.y;\n  }\n"
         "  for (int r_ = 0; r_ < nr_; ++r_) {\n"
         "  int jb0, jb1;\n"
         "  if (jr_) {\n"
         "    const long long a_ = jr_[2 * r_], w_ = jr_[2 * r_ + 1] - a_;\n"
         "    jb0 = (int)(a_ + rk_lmin(w_, rk_lmax(0LL, lo_ - off_)));\n"
         "    jb1 = (int)(a_ + rk_lmin(w_, rk_lmax(0LL, hi_ - off_)));\n"
         "    off_ += w_;\n"
         "  } else {\n"
         "    jb0 = (int)(blockIdx.y * jchunk);\n"
         "    jb1 = (int)(blockIdx.y * jchunk + jchunk < n_inner ? blockIdx.y * jchunk + jchunk : n_inner);\n"
         "  }\n";
}

std::string cuda_merge_head(const char* block) {
  return std::string("\nextern \"C\" __global__ void __launch_bounds__(") + block +
         ") rk_merge(\n"
         "    const T* __restrict__ pst, const int* __restrict__ psi, const T* __restrict__ pcp, int nslots, int "
         "n_rows,\n"
         "    double* __restrict__ out, long long out_ld, int states_, long long jbase_, int row0, int row1) {\n"
         "  const int i = row0 + blockIdx.x * blockDim.x + threadIdx.x;\n  if (i >= row1) return;\n"
         "  const long long nrows = n_rows;\n";
}

std::string cuda_states_out(int S, int SI, int SC, const std::string& loop_prefix) {
  std::ostringstream src;
  src << "  if (states_) {\n";
  src << loop_prefix << "    for (int k_ = 0; k_ < " << S << "; ++k_) out[i + k_ * out_ld] = (double)st_[k_];\n";
  if (SI)
    src << loop_prefix << "    for (int k_ = 0; k_ < " << SI << "; ++k_) out[i + (" << S
        << " + k_) * out_ld] = si_[k_] < 0 ? -1.0 : (double)si_[k_] + (double)jbase_;\n";
  if (SC)
    src << loop_prefix << "    for (int k_ = 0; k_ < " << SC << "; ++k_) out[i + (" << S + SI << " + k_) * out_ld] = (double)cp_[k_];\n";
  src << "    return;\n  }\n";
  return src.str();
}

namespace {

// The generator of one CUDA kernel (the generic scheme): the formula's facts and the device
// layout (CudaCode), then named steps that emit the pieces of the source in order.
class CudaSourceGen {
 public:
  CudaSourceGen(const Formula& f, const CodeOptions& opt)
      : f(f), opt(opt), red(f.reduction()), sh(f.shape), g(f.g), d(sh.d), f32(opt.dtype != DType::Float64),
        f16(opt.dtype == DType::Float16),
        rd(red, sh, opt.scheme), block_sum(rd.block_sums()), S(red.state_dim(sh)), SI(red.istate_dim(sh)),
        SC(rd.comp_dim()), outer(f.outer_cat()), inner(f.inner_cat()), L(opt.loop_dim), e(g) {}

  CudaCode generate(const std::string& include_dir) {
    roots = {f.root};
    if (f.weight >= 0) roots.push_back(f.weight);
    // (pairs keep two rows' states: a long state, e.g. a K-min list, keeps one row per thread)
    pair = f16 && formula_has_half2(g, roots) && 2 * state_bytes() <= kMaxStateBytes;
    check_state_size();
    lay_out_inputs();
    choose_tile();
    emit_formula_code();
    plan_f16tc();
    choose_rows();
    emit_accumulation();
    std::ostringstream src;
    emit_header(src, include_dir);
    emit_reduce_kernel(src);
    emit_merge_kernel(src);
    emit_pack_kernel(src);
    cc.source = src.str();
    return cc;
  }

 private:
  // A thread's reduction state lives in registers or local memory: bound it.
  long long state_bytes() const { return (static_cast<long long>(S) + SC) * (f32 ? 4 : 8) + 4LL * SI; }
  void check_state_size() const {
    if (state_bytes() > kMaxStateBytes)
      throw UserError("dimension", "the reduction's state takes " + I(state_bytes()) + " bytes per result row (K = " +
                                       I(sh.K) + ", dimension " + I(d) + "): more than the GPU backend's " +
                                       I(kMaxStateBytes) + "; use rkeops_use_cpu()" +
                                       (f16 ? std::string(" with rkeops_use_float32()") : std::string()));
  }

  // The offsets of the variables in X, Y and P (CudaCode's layout).
  void lay_out_inputs() {
    cc.elem = f16 ? 2 : f32 ? 4 : 8;
    cc.state_elem = f32 ? 4 : 8;
    cc.rows_per_thread = pair ? 2 : 1;
    VL = 16 / cc.elem;  // TS per 16-byte vector
    cc.state_t = S;
    cc.state_i = SI;
    cc.state_c = SC;
    cc.uses_index = SI > 0;
    vars = collect_vars(g, roots);
    const size_t nargs = f.args.size();
    cc.x_off.assign(nargs, -1);
    cc.y_off.assign(nargs, -1);
    cc.p_off.assign(nargs, -1);
    for (auto& v : vars) {
      RK_ASSERT(v.pos >= 0 && static_cast<size_t>(v.pos) < nargs, "variable position out of range");
      place_cuda_input(cc, v, outer);
    }
    cc.wy = (cc.wy + VL - 1) / VL * VL;
  }

  // A wide formula (codegen.h) is emitted with loops over components. When its packed inner
  // rows are too wide for a tile of 16 rows in shared memory (or for one row), the threads
  // read them from global memory where they are used (all threads of a block read the same
  // row: one cached transaction per warp).
  void choose_tile() {
    // (Float16 pairs: the tile holds every half broadcast to a pair, 4 bytes; see the tile loop.)
    const long long row_bytes = static_cast<long long>(cc.wy) * cc.elem * (pair ? 2 : 1);
    wide = has_wide_nodes(g, roots, L);
    rows_global = row_bytes > kMaxTileBytes || (wide && row_bytes * 16 > kTileBytes);
    if (row_bytes == 0 || rows_global) {
      cc.tile = cc.block;
    } else if (row_bytes * 16 <= kTileBytes) {
      cc.tile = static_cast<int>(std::min<long long>(cc.block, kTileBytes / row_bytes / 16 * 16));
    } else {
      cc.tile = static_cast<int>(std::max<long long>(1, kMaxTileBytes / 4 / row_bytes));
    }
    params_in_regs = cc.np <= kMaxParamRegs;
  }

  // Outer rows per thread (register blocking, see kMaxRowsPerThread): narrow formulas whose
  // rows need few registers, more with a float32 prescaled fold (found by emit_formula_code,
  // whose per-row code does not depend on R); opt.cuda_rows > 0 imposes it (benchmarks, tests).
  // (Registers: a double takes two. The float64 Gaussian sum at 1e5 points on the H200: 4 rows
  // a thread, 168 registers, 19.3 ms; 2 rows, 128 registers, 18.1 ms.)
  void choose_rows() {
    const long long values = static_cast<long long>(cc.wx) + S + SI + SC + (block_sum ? d : 0);
    const long long row_regs = f32 ? values : 2 * values;
    const bool fixed = wide || rows_global || f16;  // (float16 pair kernels have their own two rows)
    R = fixed ? 1 : rows_per_thread(row_regs);
    if (!fixed && f32 && psf_ >= 0) R = std::max(R, rows_per_thread_gaussian(row_regs));
    if (opt.cuda_rows > 0 && !fixed) R = std::min(opt.cuda_rows, kMaxRowsPerThread);
    cc.rows = R;
  }
  // The text of `code` for each of the thread's rows (register blocking; as is when R = 1),
  // each wrapped in `open` ... `close`.
  std::string each_row(const std::string& code, const std::string& open = "", const std::string& close = "") const {
    if (R == 1) return open + code + close;
    std::string out;
    for (int r = 0; r < R; ++r) out += for_row(open + code + close, r);
    return out;
  }

  // ---- the formula's code ----
  // Wide outer variables are read in place (column-major, coalesced), not copied to registers.
  // (Float16: through the accessors of prelude_cuda_half.h, which convert.)
  bool outer_in_place(const VarUse& v) const { return v.cat == outer && v.dim > L; }
  // Float16 rows wider than this many halves are read through an accessor, not copied to registers.
  static constexpr int kMaxHalfRowRegs = 32;

  void emit_formula_code() {
    needs_inner_ = depends_on(g, inner);
    e.loop_dim = L;
    e.table_qual = "__device__ const";
    e.loop_pragma = kLoopPragma;
    bind_variables();
    if (wide) e.plan(roots, inner);
    emit_thread_loads();
    // Everything that does not depend on the inner index: once per thread.
    e.indent = "  ";
    emit_hoisted(e, roots, inner);
    lse2 = f32 && !f16 && !wide && std::string(red.name) == "LogSumExp" && sh.dw == 0 && d == 1;
    // (a log2-unit LogSumExp folds its F, not the exponentials inside F)
    std::vector<ExpFold> folds = !f16 && !wide && !lse2 ? find_exp_folds() : std::vector<ExpFold>();
    if (!f32) {  // float64: only a prescaled fold (the others would save nothing: exp2 costs what exp does)
      const int k = opt.cuda_prescale && !rows_global ? find_prescaled_fold(folds, false) : -1;
      folds = k >= 0 ? std::vector<ExpFold>(1, folds[static_cast<size_t>(k)]) : std::vector<ExpFold>();
    }
    const ExpFold plain{f.root, f.root, "T(1)", {}, {}};
    ExpFold root = plain;
    if (lse2 && !split_scale(f.root, root.scale, root.pair, &root)) root = plain;
    for (const ExpFold& x : lse2 ? std::vector<ExpFold>(1, root) : folds)
      e.line("const T fl" + I(x.exp) + "_ = " + x.scale + " * T(1.4426950408889634);");
    hoisted = e.code();
    e.clear_code();
    // The body computed for each inner row of the tile.
    e.indent = "        ";
    // One fold (or a log2-unit LogSumExp's F) may run on prescaled coordinates.
    if (opt.cuda_prescale && !rows_global) {
      if (!lse2)
        psf_ = find_prescaled_fold(folds, false);
      else if (root.pair != f.root)
        psf_ = find_prescaled_fold(std::vector<ExpFold>(1, root), true);
    }
    ps_dot_ = psf_ >= 0 && opt.cuda_prescale >= 2 && ps_x_->dim <= kMaxDotDim;
    ps_factor_ = ps_dot_ && !lse2 && std::string(red.name) == "Sum" && factor_of(f.root, folds[psf_].exp);
    // (a prescaled fold: the body two or three times, from the same emitter state, so with the
    // same names)
    Emitter fast = e, dotm = e;
    enum Mode { kPlain, kPrescaled, kDot };
    auto emit_body = [&](Emitter& em, Mode mode) {
      // x the fold's term h p in log2 units: fl * p, or -p' on prescaled coordinates (p' = -p
      // when p is the negation of the distance), or -|sx - sy|^2 from the inner product
      // (dot_term); the pair itself is not computed then
      auto term = [&](const ExpFold& x, bool ours) {
        if (ours && mode == kDot) return dot_term();
        em.emit(x.pair);
        const std::string pv = em.ref(x.pair, 0);
        if (!ours || mode != kPrescaled) return "fl" + I(x.exp) + "_ * " + pv;
        const std::string t = ps_neg_ ? pv : "-" + pv;
        return ps_factor_ ? "(" + t + " - pz_)" : t;
      };
      if (lse2) {  // F in log2 units (see emit_accumulation)
        em.line("const T fx" + I(f.root) + "_ = " + term(root, psf_ == 0) + ";");
        em.bind_node(f.root, "fx" + I(f.root) + "_");
      }
      for (size_t k = 0; k < folds.size(); ++k) {
        const ExpFold& x = folds[k];
        const bool ours = static_cast<int>(k) == psf_;
        // (float64 in the inner-product form: the exponent is bounded, see rk_exp2_near)
        const char* ex = ours && mode == kDot && !f32 ? "rk_exp2_near(" : "rk_exp2(";
        em.line("const T fx" + I(x.exp) + "_ = " + ex + term(x, ours) + ");");
        em.bind_node(x.exp, "fx" + I(x.exp) + "_");
      }
      for (int r : roots) em.emit(r);
      return em.code();
    };
    body = emit_body(e, kPlain);
    if (psf_ >= 0) body_fast = emit_body(fast, kPrescaled);
    if (ps_dot_) body_dot = emit_body(dotm, kDot);
  }

  // The prescaled fold's -|sx - sy|^2 as -|sx|^2 - |sy|^2 + 2 sx.sy: the row's -|sx|^2 (pa_)
  // plus the tile row's -|sy|^2 (tn_), then one multiply-add per component with the row's 2 sx
  // (px_): 4 instructions a pair instead of 6 at D = 3 (issue 15). Rounding: an absolute error
  // of a few 2^-24 (|sx|^2 + |sy|^2) in the exponent, so the kernel takes this form only where
  // both squared norms are at most kDotNorm (a relative error of about 3e-6 at most), with x and
  // y taken from a point of the block's inner rows (emit_tile_loop).
  // (With ps_factor_, the row's 2^-|sx|^2 multiplies its sum at the end instead: one addition
  // less per pair.)
  std::string dot_term() const {
    std::string t = ps_factor_ ? "tn_[jj]" : "(pa_ + tn_[jj])";
    for (int k = ps_x_->dim - 1; k >= 0; --k)
      t = "rk_fma(px_[" + I(k) + "], yr[" + I(cc.y_off[ps_y_->pos] + k) + "], " + t + ")";
    return t;
  }

  // float32 exponentials of a scaled term, Exp(h * p), Exp(p / h), Exp(-(...)), whose scale h
  // does not depend on the inner index: rk_exp multiplies its argument by log2(e) before the
  // special-function unit's 2^x; folding log2(e) into h (once per thread) saves one multiply
  // per pair. (Rounding: the product h log2(e) is rounded once more, a relative change of
  // 2^-24 in the exponent's argument.)
  struct ExpFold {
    int exp, pair;      // the Exp node and its per-pair factor p
    std::string scale;  // h as an expression of hoisted values
    // split_scale's walk: the nodes from the Exp's argument down to p (p excluded), and the
    // nodes h is made of
    std::vector<int> chain, scales;
  };
  bool is_call(int id, const char* op) const { return g[id].kind == NodeKind::Call && g[id].op == find_op(op); }
  // Splits node `id` (of dimension 1, depending on the inner index) into a scale that does not
  // (an expression of hoisted values) times a per-pair node; false when it has no such form.
  bool split_scale(int id, std::string& scale, int& pair, ExpFold* walk = nullptr) const {
    const Node& n = g[id];
    if (n.dim != 1 || !needs_inner_[id]) return false;
    if (walk) walk->chain.push_back(id);
    if (is_call(id, "Minus")) {
      if (!split_scale(n.args[0], scale, pair, walk)) return false;
      scale = "(-" + scale + ")";
      return true;
    }
    if (!is_call(id, "Mult") && !is_call(id, "Divide")) return false;
    const int a = n.args[0], b = n.args[1];
    if (g[a].dim != 1 || g[b].dim != 1) return false;
    if (is_call(id, "Divide")) {
      if (needs_inner_[b] || !needs_inner_[a]) return false;
      scale = "(T(1) / " + e.ref(b, 0) + ")";
      pair = a;
      if (walk) walk->scales.push_back(b);
      return true;
    }
    if (needs_inner_[a] == needs_inner_[b]) return false;
    scale = "(" + e.ref(needs_inner_[a] ? b : a, 0) + ")";
    pair = needs_inner_[a] ? a : b;
    if (walk) walk->scales.push_back(needs_inner_[a] ? b : a);
    return true;
  }
  std::vector<ExpFold> find_exp_folds() const {
    std::vector<ExpFold> out;
    std::vector<char> seen(g.size(), 0);
    std::vector<int> stack = roots;
    while (!stack.empty()) {
      const int id = stack.back();
      stack.pop_back();
      if (seen[id]) continue;
      seen[id] = 1;
      ExpFold x;
      if (is_call(id, "Exp") && g[id].dim == 1 && split_scale(g[id].args[0], x.scale, x.pair, &x)) {
        x.exp = id;
        out.push_back(x);
        stack.push_back(x.pair);
        continue;
      }
      for (int a : g[id].args) stack.push_back(a);
    }
    return out;
  }

  // Whether node `id` is `target` times other factors (products only).
  bool factor_of(int id, int target) const {
    if (id == target) return true;
    return is_call(id, "Mult") && (factor_of(g[id].args[0], target) || factor_of(g[id].args[1], target));
  }

  // The inner-product form of a prescaled fold: up to this dimension, and norms up to kDotNorm.
  static constexpr int kMaxDotDim = 16;
  static constexpr double kDotNorm = 16.0;

  // One fold may run on prescaled coordinates: Exp(h * SqDist(x, y)) (or SqNorm2(x - y); or
  // Exp(h * -SqDist(x, y)), the sign then in h) whose outer variable x (in registers) and inner
  // variable y (in the tile) appear nowhere else, with h uniform (no outer or inner variable in
  // it). When the exponent's factor -h log2(e) is finite and positive (a Gaussian), x and y are
  // multiplied by s = sqrt(-h log2 e) (both less a common point, emit_tile_loop), x once per
  // thread and y once per tile, and the pair's term is 2^-|sx - sy|^2: one multiply less per
  // pair, 8 instructions instead of 9 for a float32 Gaussian sum (issue 15); where the norms
  // allow, in the inner-product form (dot_term). Other values of h run the plain fold on the
  // coordinates as they are (s = 1), in the other branch of one test per thread. Float32 and
  // float64 (where it is the only fold). Returns the fold's index, or -1. (`whole`: the fold is
  // the formula's F itself, a log2-unit LogSumExp's, whose h * p is the root.)
  int find_prescaled_fold(const std::vector<ExpFold>& folds, bool whole) {
    const std::vector<int> parents = parent_counts(g, roots);  // among the nodes the roots reach
    const std::vector<char> outer_dep = depends_on(g, outer);
    for (size_t k = 0; k < folds.size(); ++k) {
      const ExpFold& x = folds[k];
      // split_scale's chain from the Exp's argument down to the pair used once (the root of a
      // whole F: by nothing else), its scales uniform
      bool ok = true;
      for (int id : x.chain) ok = ok && parents[id] == (whole && id == x.exp ? 0 : 1);
      for (int id : x.scales) ok = ok && !outer_dep[id];
      if (!ok || parents[x.pair] != 1) continue;
      // (the pair may be -SqDist(x, y): then h log2(e) > 0 is the scaled case)
      const bool neg = is_call(x.pair, "Minus");
      const int core = neg ? g[x.pair].args[0] : x.pair;
      if (neg && parents[core] != 1) continue;
      int a = -1, b = -1;
      const Node& pn = g[core];
      if (is_call(core, "SqDist")) {
        a = pn.args[0];
        b = pn.args[1];
      } else if (is_call(core, "SqNorm2") && is_call(pn.args[0], "Subtract") && parents[pn.args[0]] == 1) {
        a = g[pn.args[0]].args[0];
        b = g[pn.args[0]].args[1];
      } else {
        continue;
      }
      if (g[a].kind != NodeKind::Var || g[b].kind != NodeKind::Var || parents[a] != 1 || parents[b] != 1) continue;
      const Node* xv = g[a].cat == outer ? &g[a] : &g[b];
      const Node* yv = g[a].cat == outer ? &g[b] : &g[a];
      if (xv->cat != outer || yv->cat != inner || xv->dim > L) continue;  // (wide x: read in place)
      ps_x_ = xv;
      ps_y_ = yv;
      ps_exp_ = x.exp;
      ps_neg_ = neg;
      return static_cast<int>(k);
    }
    return -1;
  }

  // A float16 Gaussian sum on tensor cores (codegen_cuda_f16tc.h): F is a fold Exp(h *
  // SqDist(x, y)) that find_prescaled_fold accepts, alone or times an inner variable b of at
  // most kF16TcMaxOut components, in a plain Sum; x of dimension at most kF16TcMaxDim. The
  // kernel keeps this scheme's layout, with its own rows per block.
  void plan_f16tc() {
    if (!pair || !opt.cuda_f16_tc || std::string(red.name) != "Sum" || SI || SC || f.weight >= 0 || wide ||
        rows_global || !params_in_regs || d > kF16TcMaxOut)
      return;
    const std::vector<ExpFold> folds = find_exp_folds();
    const int k = find_prescaled_fold(folds, false);
    if (k < 0 || ps_x_->dim > kF16TcMaxDim) return;
    const ExpFold& x = folds[static_cast<size_t>(k)];
    int b = -1;
    if (f.root != x.exp) {
      if (!is_call(f.root, "Mult")) return;
      const Node& r = g[f.root];
      b = r.args[0] == x.exp ? r.args[1] : r.args[1] == x.exp ? r.args[0] : -1;
      if (b < 0 || g[b].kind != NodeKind::Var || g[b].cat != inner || g[b].dim != d) return;
    } else if (d != 1) {
      return;
    }
    tc_.applies = true;
    tc_.dim = ps_x_->dim;
    tc_.x_off = cc.x_off[ps_x_->pos];
    tc_.y_off = cc.y_off[ps_y_->pos];
    tc_.b_off = b >= 0 ? cc.y_off[g[b].pos] : -1;
    tc_.out_dim = d;
    tc_.neg = ps_neg_;
    tc_.scale = x.scale;
    tc_.param_code = param_loads + hoisted;
    if (opt.cuda_f16_tc >= 100) {  // (benchmarks: 1000 min_blocks + 100 warps + unroll)
      tc_.min_blocks = opt.cuda_f16_tc / 1000;
      tc_.warps = std::min(8, std::max(1, opt.cuda_f16_tc / 100 % 10));
      tc_.unroll = std::min(32, std::max(1, opt.cuda_f16_tc % 100));
    }
    cc.block = 32 * tc_.warps;
    cc.exact_block = true;
    cc.tile = kF16TcTile;
    cc.rows_per_thread = 1;
  }

  void bind_variables() {
    for (auto& v : vars) {
      if (v.cat == CAT_P)
        e.bind_var(v.cat, v.pos, params_in_regs ? "pm" + I(v.pos) : std::string(f16 ? "(Ph_ + " : "(P + ") + I(cc.p_off[v.pos]) + ")");
      else if (outer_in_place(v))
        e.bind_var(v.cat, v.pos, "xg" + I(v.pos), "", "ldx");
      else if (v.cat == outer)
        e.bind_var(v.cat, v.pos, "xo" + I(v.pos));
      else
        e.bind_var(v.cat, v.pos, "(yr + " + I(cc.y_off[v.pos]) + ")");
    }
  }

  // A thread's parameters (param_loads) and outer variables (loads, per row), into registers
  // (or pointers to them).
  void emit_thread_loads() {
    if (f16 && !params_in_regs) loads += std::string("  const ") + (pair ? "rk_hrow2" : "rk_hrowf") + " Ph_ = {P};\n";
    for (auto& v : vars) {
      if (v.cat == CAT_P && params_in_regs) {
        param_loads += "  T pm" + I(v.pos) + "[" + I(v.dim) + "];";
        for (int k = 0; k < v.dim; ++k) {
          const std::string pk = "P[" + I(cc.p_off[v.pos] + k) + "]";
          param_loads += " pm" + I(v.pos) + "[" + I(k) + "] = " +
                         (pair ? "rk_bcast(" + pk + ")" : f16 ? "rk_h2f(" + pk + ")" : pk) + ";";
        }
        param_loads += "\n";
      } else if (outer_in_place(v)) {
        const std::string at = "X + (active ? i : 0) + " + I(cc.x_off[v.pos]) + "LL * ldx";
        if (pair)
          loads += "  const rk_hcol2 xg" + I(v.pos) + " = {" + at + ", active, active1};\n";
        else if (f16)
          loads += "  const rk_hrowf xg" + I(v.pos) + " = {" + at + "};\n";
        else
          loads += "  const T* xg" + I(v.pos) + " = " + at + ";\n";
      } else if (v.cat == outer) {
        loads += "  T xo" + I(v.pos) + "[" + I(v.dim) + "];";
        for (int k = 0; k < v.dim; ++k) {
          const std::string col = I(cc.x_off[v.pos] + k) + "LL * ldx]";
          loads += " xo" + I(v.pos) + "[" + I(k) + "] = ";
          if (pair)  // rows i and i + 1 in the two lanes
            loads += "rk_pair(active ? X[i + " + col + " : TS(0), active1 ? X[i + 1 + " + col + " : TS(0));";
          else if (f16)
            loads += "active ? rk_h2f(X[i + " + col + ") : T(0);";
          else
            loads += "active ? X[i + " + col + " : T(0);";
        }
        loads += "\n";
      }
    }
  }

  // ---- reduction pieces ----
  // The state arrays of a thread's row (p: "" or, for the second row of a float16 pair, "l1_").
  static RedCode code(const std::string& p, const std::string& ind) {
    RedCode c;
    c.st = p + "st_";
    c.si = p + "si_";
    c.cp = p + "cp_";
    c.ind = ind;
    return c;
  }
  // Reduction code in a float16 pair kernel sees T = float again (the state's type).
  std::string acc_scope(const std::string& text, const std::string& ind) const {
    return pair ? ind + "{ typedef float T;\n" + text + ind + "}\n" : text;
  }
  // F of many components (wide): loops over them (reduction_piece, codegen.h).
  std::string f_at(const std::string& k) const { return e.ref(f.root, Ix(k)); }
  static std::string no_f(const std::string&) { return std::string(); }
  void looped(const std::function<void(const Reducer&, RedCode&)>& piece, RedCode& c,
              const std::function<std::string(const std::string&)>& fk) const {
    reduction_piece(piece, red, sh, opt.scheme, c, L, fk, kLoopPragma);
  }

  // The accumulation of one term (acc), and what a tile adds before and after its sweep.
  // A float16 pair kernel first splits F (and the weight) into floats per lane (fl0_, fl1_),
  // then runs the accumulation once per lane on that lane's state.
  void emit_accumulation() {
    if (!pair) {
      acc = accumulation("", [this](const std::string& k) { return f_at(k); },
                         [this](int k) { return e.ref(f.weight, k); }, "        ");
      return;
    }
    const int dw = f.weight >= 0 ? g[f.weight].dim : 0;
    std::string split = "        float fl0_[" + I(d) + "], fl1_[" + I(d) + "];";
    if (dw) split += " float fw0_[" + I(dw) + "], fw1_[" + I(dw) + "];";
    split += "\n";
    auto lanes = [&](int id, int n, const char* a, const char* b) {
      if (n > L) {
        split += "        " + std::string(kLoopPragma) + "\n        for (int k_ = 0; k_ < " + I(n) + "; ++k_) rk_split(" +
                 e.ref(id, Ix("k_")) + ", " + a + "[k_], " + b + "[k_]);\n";
        return;
      }
      for (int k = 0; k < n; ++k)
        split += "        rk_split(" + e.ref(id, k) + ", " + a + "[" + I(k) + "], " + b + "[" + I(k) + "]);\n";
    };
    lanes(f.root, d, "fl0_", "fl1_");
    if (dw) lanes(f.weight, dw, "fw0_", "fw1_");
    RedCode a0 = accumulation("", [](const std::string& k) { return "fl0_[" + k + "]"; },
                              [](int k) { return "fw0_[" + I(k) + "]"; }, "          ");
    RedCode a1 = accumulation("l1_", [](const std::string& k) { return "fl1_[" + k + "]"; },
                              [](int k) { return "fw1_[" + I(k) + "]"; }, "          ");
    acc = a0;
    acc.text = split + "        { typedef float T;\n" + a0.text + a1.text + "        }\n";
  }
  // The accumulation of one term into the state of prefix p ("" or "l1_"): F's component k is
  // fk(k), the weight's wk(k). Adds the tile's block-sum registers to tile_pre / tile_post.
  RedCode accumulation(const std::string& p, const std::function<std::string(const std::string&)>& fk,
                       const std::function<std::string(int)>& wk, const std::string& ind) {
    RedCode c = code(p, ind);
    c.f = [fk](int k) { return fk(I(k)); };
    c.w = wk;
    c.j = "j";
    const std::string pragma = std::string(kLoopPragma) + "\n";
    const std::string t = pair ? "float" : "T";  // pair kernels: T is rk_h2 around the tile loop
    if (block_sum && d > L) {
      const std::string loop = "for (int k_ = 0; k_ < " + I(d) + "; ++k_) ";
      tile_pre += "      " + t + " " + p + "s_[" + I(d) + "];\n      " + pragma + "      " + loop + p + "s_[k_] = " + t +
                  "(0);\n";
      c.line(kLoopPragma);
      c.line(loop + p + "s_[k_] += " + fk("k_") + ";");
      tile_post += "      " + pragma + "      " + loop + p + "st_[k_] += " + p + "s_[k_];\n";
    } else if (block_sum) {
      // Block sums: the tile's terms are added in registers, then the tile's sum to the state.
      for (int k = 0; k < d; ++k) {
        const std::string r = p + "s" + I(k) + "_";
        tile_pre += "      " + t + " " + r + " = " + t + "(0);\n";
        c.line(r + " += " + c.f(k) + ";");
        tile_post += "      " + p + "st_[" + I(k) + "] += " + r + ";\n";
      }
    } else if (lse2) {
      // st_[0] is kept as lm_ = m log2(e), the maximum of the tiles before; the lowest float
      // stands for -Inf. A tile's terms 2^(F - lm_) are summed (ts_) while its maximum tm_ is
      // kept: no test per term. After the tile the sum is rescaled to the new maximum; when a
      // term may have overflowed (tm_ > lm_ + 96: terms up to 2^96, a tile's sum below 2^105),
      // the tile is swept again from the new maximum (redo_: each row's first tile, and rare
      // jumps of the maximum). Each term costs a max, one 2^x and an add.
      const std::string fx = "fx" + I(f.root) + "_";
      c.line("tm_ = fmaxf(tm_, " + fx + "); ts_ += rk_exp2(" + fx + " - lm_);");
      tile_pre = "      T ts_, tm_;\n";
      lse2_redo = "      if (tm_ > lm_ + T(96)) { st_[1] *= rk_exp2(lm_ - tm_); lm_ = tm_; redo_ = true; }\n";
      tile_post =
          "      if (lm_ == RK_INF) { st_[1] = T(1); } else if (tm_ > lm_) { st_[1] = (st_[1] + ts_) * rk_exp2(lm_ - tm_); "
          "lm_ = tm_; } else { st_[1] += ts_; }\n";
      lse2_post = "  st_[0] = lm_ == -3.4028234663852886e38f ? -RK_INF : lm_ * T(0.6931471805599453);\n";
    } else {  // the table's register-friendly form where it has one
      looped([](const Reducer& r, RedCode& x) { r.acc(x, true); }, c, fk);
    }
    return c;
  }
  std::string state_decl(const std::string& p, const std::string& ind) const {
    const std::string t = pair ? "float" : "T";
    std::string s = ind + t + " " + p + "st_[" + I(S) + "];";
    if (SI) s += " int " + p + "si_[" + I(SI) + "];";
    if (SC) s += " " + t + " " + p + "cp_[" + I(SC) + "];";
    return s + "\n";
  }
  // Partial states: slot-major, then state component, then row (coalesced).
  std::string state_io(bool store, const std::string& p, const std::string& slot, const std::string& ind,
                       const std::string& row = "i") const {
    std::string s;
    auto one = [&](const char* arr, const char* name, int n) {
      if (n > 64 || (wide && n > L)) {  // long states (K-min lists, wide F): a loop, so the code does not grow
        std::string g_ = std::string(arr) + "[(" + slot + " * " + I(n) + "LL + k_) * nrows + " + row + "]";
        std::string r_ = p + name + "[k_]";
        if (wide) s += ind + kLoopPragma + "\n";
        s += ind + "for (int k_ = 0; k_ < " + I(n) + "; ++k_) " + (store ? g_ + " = " + r_ : r_ + " = " + g_) + ";\n";
        return;
      }
      for (int k = 0; k < n; ++k) {
        std::string g_ = std::string(arr) + "[(" + slot + " * " + I(n) + "LL + " + I(k) + ") * nrows + " + row + "]";
        std::string r_ = p + name + "[" + I(k) + "]";
        s += ind + (store ? g_ + " = " + r_ : r_ + " = " + g_) + ";\n";
      }
    };
    one("pst", "st_", S);
    one("psi", "si_", SI);
    one("pcp", "cp_", SC);
    return s;
  }
  std::string init_code(const std::string& ind, const std::string& p = "") const {
    RedCode c = code(p, ind);
    looped([](const Reducer& r, RedCode& x) { r.init(x); }, c, no_f);
    return acc_scope(c.text, ind);
  }
  // The result of row `row` from the state of prefix p.
  std::string final_code(const std::string& ind, const std::string& p = "", const std::string& row = "i") const {
    RedCode c = code(p, ind);
    c.out = [&](const std::string& k) {
      const bool literal = k.find_first_not_of("0123456789") == std::string::npos;
      return "out[" + row + " + " + (literal ? k + "LL" : "(long long)" + k) + " * out_ld]";
    };
    looped([](const Reducer& r, RedCode& x) { r.final(x); }, c, no_f);
    return acc_scope(c.text, ind);
  }
  std::string merge_code(const std::string& ind) const {
    RedCode c = code("", ind);
    c.st2 = "o_st_";
    c.si2 = "o_si_";
    c.cp2 = "o_cp_";
    looped([](const Reducer& r, RedCode& x) { r.merge(x); }, c, no_f);
    return c.text;
  }

  // Unrolling the sweep hides the loop's overhead for small formulas; big bodies gain nothing.
  // Long states in local memory (K-min lists) gain nothing either, and cost NVRTC minutes.
  // (Wide formulas: loops in the body; unrolling them costs compile time for nothing.)
  int sweep_unroll() const {
    const int body_lines = (count_lines(body) + count_lines(acc.text)) * R;
    return wide || S + SI > 64 ? 1 : body_lines <= 30 ? 8 : body_lines <= 60 ? 4 : body_lines <= 160 ? 2 : 1;
  }

  // ---- the source ----
  void emit_header(std::ostringstream& src, const std::string& include_dir) const {
    src << "// Generated by rkeops: a CUDA kernel for\n// " << f.canonical() << "\n";
    src << read_prelude(include_dir, "rkeops/prelude_cuda.h");
    if (f16) {
      src << read_prelude(include_dir, "rkeops/prelude_cuda_half.h");
      src << "typedef float T;             // the reduction's state: float32\n";
      src << "typedef unsigned short TS;   // the inputs: IEEE halves\n";
      src << "typedef uint4 TV;            // 16 bytes of TS\n";
    } else {
      src << "typedef " << (f32 ? "float" : "double") << " T;\n";
      src << "typedef T TS;   // the inputs\n";
      src << "typedef " << (f32 ? "float4" : "double2") << " TV;   // 16 bytes of T\n";
    }
    src << "#define RK_ABI " << kCudaAbiVersion << "\n#define RK_B " << cc.block << "\n#define RK_TJ " << cc.tile
        << "\n#define RK_WV " << cc.wy / VL << "   // 16-byte vectors per packed inner row\n";
    src << e.globals();
  }

  // rk_reduce: the thread's row, its state, the sweep over the tiles of its block's inner
  // slice, then the result or the partial state.
  void emit_reduce_kernel(std::ostringstream& src) const {
    if (tc_.applies) {
      src << f16tc_reduce_kernel(tc_);
      return;
    }
    src << "\nextern \"C\" __global__ void __launch_bounds__(RK_B"
        << (R > 4 ? ", " + I(kMinBlocksWide) : std::string()) << ") rk_reduce(\n"
           "    const TS* __restrict__ X, long long ldx, const TV* __restrict__ Y, const TS* __restrict__ P,\n"
           "    int n_outer, int n_inner, long long jbase, long long jchunk, double* __restrict__ out, long long "
           "out_ld,\n"
           "    T* __restrict__ pst, int* __restrict__ psi, T* __restrict__ pcp, int slot0,\n"
           "    const long long* __restrict__ items, const long long* __restrict__ jranges) {\n";
    src << "  __shared__ TV tile_v[" << (rows_global ? 1 : std::max(1, cc.tile * cc.wy / VL) * (pair ? 2 : 1)) << "];\n";
    src << "  const T* tile = (const T*)tile_v; (void)tile;\n";
    if (psf_ >= 0) src << "  __shared__ T pc_[" << ps_x_->dim << "];   // the prescaled fold's common point\n";
    if (ps_dot_) src << "  __shared__ T tn_[RK_TJ];   // the tile rows' -|sy|^2 (the inner-product form)\n";
    emit_block_work(src);
    src << "  const long long nrows = n_outer;\n";
    if (pair) src << "  typedef rk_h2 T;   // the formula's values: rows i and i + 1 in the lanes of half2 pairs\n";
    src << param_loads
        << each_row(loads + hoisted + state_decl("", "  ") + init_code("  ") + (lse2 ? "  T lm_ = -3.4028234663852886e38f;\n" : ""));
    if (pair) src << state_decl("l1_", "  ") << init_code("  ", "l1_");
    emit_tile_loop(src);
    if (ps_factor_) {  // the prescaled fold's row factor 2^pz_ (ps_factor_)
      std::string sc = "  if (pz_ != T(0)) {\n    const T f_ = rk_exp2(pz_);\n";
      for (int k = 0; k < S; ++k) sc += "    st_[" + I(k) + "] *= f_;\n";
      for (int k = 0; k < SC; ++k) sc += "    cp_[" + I(k) + "] *= f_;\n";
      src << each_row(sc + "  }\n");
    }
    src << each_row(lse2_post);
    // Each row's result, or its partial state in slot slot0 + blockIdx.y (float16 pairs: and
    // the second lane's row i + 1).
    std::string fin = final_code("      "), store = state_io(true, "", "slot", "      ");
    if (pair) {
      fin += "      if (active1) {\n" + final_code("        ", "l1_", "(i + 1)") + "      }\n";
      store += "      if (active1) {\n" + state_io(true, "l1_", "slot", "        ", "(i + 1)") + "      }\n";
    }
    src << "  const long long slot = slot0 + (long long)blockIdx.y;\n";
    src << each_row("  if (active) {\n    if (slot0 < 0) {\n" + fin + "    } else {\n" + store + "    }\n  }\n");
    src << "}\n";
  }

  // A block's rows and inner ranges. Dense: rows blockIdx.x * blockDim.x + [0, blockDim.x) and
  // slice blockIdx.y of the inner range; block-sparse (items, ranges.h): the rows of work item
  // blockIdx.x and its kept inner ranges.
  // (A float16 pair kernel: rows blockIdx.x * 2 blockDim.x + [0, 2 blockDim.x), two per thread.)
  void emit_block_work(std::ostringstream& src) const {
    src << "  int ib0_ = blockIdx.x * " << (pair ? "(2 * blockDim.x)" : R > 1 ? "blockDim.x * " + I(R) : "blockDim.x")
        << ", ib1_ = n_outer, nr_ = 1;\n";
    src << "  const long long* jr_ = 0;\n";
    src << "  if (items) {\n";
    src << "    const long long* it_ = items + 4LL * blockIdx.x;\n";
    src << "    ib0_ = (int)it_[0]; ib1_ = (int)it_[1]; jr_ = jranges + 2 * it_[2]; nr_ = (int)(it_[3] - it_[2]);\n";
    src << "  }\n";
    if (pair) {
      src << "  const int i = ib0_ + 2 * threadIdx.x;\n";
      src << "  const bool active = i < ib1_, active1 = i + 1 < ib1_;\n";
    }
    for (int r = 0; !pair && r < R; ++r) {
      const std::string sx = R > 1 ? "_r" + I(r) : "";
      src << "  const int i" << sx << " = ib0_ + threadIdx.x" << (r ? " + " + I(r) + " * blockDim.x" : "") << ";\n";
      src << "  const bool active" << sx << " = i" << sx << " < ib1_;\n";
    }
  }

  // The prescaled fold's preamble (find_prescaled_fold): its scale (rows share it: row 0's), the
  // block's common point, x less it and scaled; for the inner-product form, each row's -|sx|^2
  // and 2 sx and whether every row's norm is in range; the row factors (ps_factor_).
  void emit_prescaled_rows(std::ostringstream& src) const {
    const std::string fl = R > 1 ? for_row("fl" + I(ps_exp_) + "_", 0) : "fl" + I(ps_exp_) + "_";
    const std::string h = (ps_neg_ ? "" : "-") + fl;  // > 0 in the scaled case
    src << "  const bool psf_ = " << h << " > T(0) && " << h << " < RK_INF;   // prescaled coordinates\n";
    src << "  const T ps_ = psf_ ? rk_sqrt(" << h << ") : T(1);\n";
    const int D = ps_x_->dim;
    const std::string xo = "xo" + I(ps_x_->pos);
    // x and y less a common point (the block's first inner row, when finite; none without the
    // prescaling): the differences keep their digits far from the origin
    src << "  const long long jc_ = jr_ ? (nr_ > 0 ? jr_[0] : -1LL) : ((long long)blockIdx.y * jchunk < n_inner ? "
           "(long long)blockIdx.y * jchunk : -1LL);\n";
    src << "  for (int k = threadIdx.x; k < " << D << "; k += blockDim.x) {\n";
    src << "    const T c_ = psf_ && jc_ >= 0 ? ((const T*)(Y + jc_ * RK_WV))[" << cc.y_off[ps_y_->pos] << " + k] : T(0);\n";
    src << "    pc_[k] = c_ - c_ == T(0) ? c_ : T(0);\n  }\n  __syncthreads();\n";
    std::string sx;
    for (int k = 0; k < D; ++k) sx += "  " + xo + "[" + I(k) + "] = (" + xo + "[" + I(k) + "] - pc_[" + I(k) + "]) * ps_;\n";
    if (ps_dot_) {
      // the inner-product form: the row's -|sx|^2 and 2 sx, and whether every active row's
      // |sx|^2 is at most kDotNorm (NaN: not)
      src << "  bool pbad_ = false;\n";
      sx += "  T pa_ = T(0), px_[" + I(D) + "];\n";
      for (int k = 0; k < D; ++k) {
        const std::string v = xo + "[" + I(k) + "]";
        sx += "  pa_ = rk_fma(" + v + ", " + v + ", pa_);\n  px_[" + I(k) + "] = T(2) * " + v + ";\n";
      }
      sx += "  pbad_ = pbad_ || (active && !(pa_ <= T(" + std::to_string(static_cast<int>(kDotNorm)) + ")));\n  pa_ = -pa_;\n";
    }
    src << each_row(sx);
    if (ps_dot_) src << "  const bool prow_ = !__syncthreads_or(pbad_);   // every row's norm in range\n";
    if (ps_factor_) src << each_row("  const T pz_ = psf_ && prow_ ? pa_ : T(0);   // the row's factor 2^pz_, applied at the end\n");
  }

  // The inner-product form, after a tile is loaded: its rows' -|sy|^2 (tn_) and whether all
  // are at most kDotNorm (NaN: not), which with the rows' check decides the sweep (dot_).
  void emit_tile_norms(std::ostringstream& src) const {
    const int D = ps_y_->dim;
    src << "    bool tbad_ = false;\n";
    src << "    for (int q = threadIdx.x; q < jn; q += blockDim.x) {\n      const T* yq_ = tile + q * (RK_WV * " << VL
        << ") + " << cc.y_off[ps_y_->pos] << ";\n      T nq_ = T(0);\n";
    for (int k = 0; k < D; ++k) src << "      nq_ = rk_fma(yq_[" << k << "], yq_[" << k << "], nq_);\n";
    src << "      tn_[q] = -nq_;\n      tbad_ = tbad_ || !(nq_ <= T(" << static_cast<int>(kDotNorm) << "));\n    }\n";
    src << "    const bool dot_ = psf_ && prow_ && !__syncthreads_or(tbad_);   // the inner-product form\n";
  }

  // The tiles of each inner range [jb0, jb1): copied to shared memory, then swept by each thread.
  void emit_tile_loop(std::ostringstream& src) const {
    if (psf_ >= 0) emit_prescaled_rows(src);
    src << cuda_inner_ranges_head();
    src << "  for (int jt = jb0; jt < jb1; jt += RK_TJ) {\n";
    src << "    const int jn = rk_imin(RK_TJ, jb1 - jt);\n";
    if (cc.wy > 0 && !rows_global) {
      src << "    __syncthreads();\n";
      if (pair)  // each half broadcast to a pair once per block (not once per thread in the sweep)
        src << "    for (int q = threadIdx.x; q < jn * RK_WV; q += blockDim.x) { const TV w_ = Y[(long long)jt * RK_WV + "
               "q]; tile_v[2 * q] = rk_bc4_lo(w_); tile_v[2 * q + 1] = rk_bc4_hi(w_); }\n";
      else if (psf_ >= 0) {  // the prescaled fold's inner variable, scaled on its way to the tile
        static const char* lane[] = {".x", ".y", ".z", ".w"};
        src << "    for (int q = threadIdx.x; q < jn * RK_WV; q += blockDim.x) {\n";
        src << "      TV w_ = Y[(long long)jt * RK_WV + q];\n      const int c_ = q % RK_WV * " << VL << ";\n";
        for (int l = 0; l < VL; ++l) {
          const std::string comp = "c_ + " + I(l) + " - " + I(cc.y_off[ps_y_->pos]);
          src << "      if ((unsigned)(" << comp << ") < " << ps_y_->dim << "u) w_" << lane[l] << " = (w_" << lane[l]
              << " - pc_[" << comp << "]) * ps_;\n";
        }
        src << "      tile_v[q] = w_;\n    }\n";
      } else
        src << "    for (int q = threadIdx.x; q < jn * RK_WV; q += blockDim.x) tile_v[q] = Y[(long long)jt * RK_WV + q];\n";
      src << "    __syncthreads();\n";
    }
    if (ps_dot_) emit_tile_norms(src);
    src << "    if (active" << (R > 1 ? "_r0" : "") << ") {\n";
    src << each_row(tile_pre);
    if (lse2) src << "      bool redo_;\n      do {\n" << each_row("      ts_ = T(0); tm_ = lm_;\n");
    if (SI) src << "      const int jg_ = (int)(jbase + jt);\n";
    auto sweep = [&](const std::string& b) {
      src << "      #pragma unroll " << sweep_unroll() << "\n";
      src << "      for (int jj = 0; jj < jn; ++jj) {\n";
      emit_row_read(src);
      if (SI) src << "        const int j = jg_ + jj;\n";
      src << each_row(b + acc.text, R > 1 ? "        {\n" : "", R > 1 ? "        }\n" : "") << "      }\n";
    };
    if (ps_dot_) {
      src << "      if (dot_) {\n";
      sweep(body_dot);
      src << "      } else if (psf_) {\n";
      sweep(body_fast);
      src << "      } else {\n";
      sweep(body);
      src << "      }\n";
    } else if (psf_ >= 0) {
      src << "      if (psf_) {\n";
      sweep(body_fast);
      src << "      } else {\n";
      sweep(body);
      src << "      }\n";
    } else {
      sweep(body);
    }
    if (lse2) src << "      redo_ = false;\n" << each_row(lse2_redo) << "      } while (redo_);\n";
    src << each_row(tile_post) << "    }\n  }\n  }\n";
  }

  // How the sweep reads inner row jj of the tile (`yr`).
  void emit_row_read(std::ostringstream& src) const {
    if (f16) {  // halves: 16-byte vector loads, each half converted (pairs: broadcast to both lanes)
      if (cc.wy == 0) return;
      if (cc.wy > kMaxHalfRowRegs) {  // wide rows: an accessor that converts where a component is used
        const std::string row = rows_global ? "Y + (long long)(jt + jj) * RK_WV" : "tile_v + jj * RK_WV";
        if (pair && !rows_global)
          src << "        const rk_prow2 yr = {(const unsigned*)(tile_v + jj * (2 * RK_WV))};\n";
        else
          src << "        const " << (pair ? "rk_hrow2" : "rk_hrowf") << " yr = {(const unsigned short*)(" << row << ")};\n";
        return;
      }
      if (pair && !rows_global) {  // the tile holds the pairs already
        src << "        const TV* yv_ = tile_v + jj * (2 * RK_WV);\n";
        std::string elems;
        for (int q = 0; q < 2 * cc.wy / VL; ++q) {
          src << "        const TV yq" << q << "_ = yv_[" << q << "];\n";
          for (const char* w : {".x", ".y", ".z", ".w"})
            elems += std::string(elems.empty() ? "" : ", ") + "rk_h2_bits(yq" + I(q) + "_" + w + ")";
        }
        src << "        const T yr[" << cc.wy << "] = {" << elems << "};\n";
        return;
      }
      static const char* word[] = {".x", ".y", ".z", ".w"};
      const std::string lo = pair ? "rk_bc_lo(" : "rk_f_lo(", hi = pair ? "rk_bc_hi(" : "rk_f_hi(";
      src << "        const TV* yv_ = " << (rows_global ? "Y + (long long)(jt + jj) * RK_WV" : "tile_v + jj * RK_WV")
          << ";\n";
      std::string elems;
      for (int q = 0; q < cc.wy / VL; ++q) {
        src << "        const TV yq" << q << "_ = yv_[" << q << "];\n";
        for (int w = 0; w < 4; ++w) {
          const std::string v = "yq" + I(q) + "_" + word[w];
          elems += std::string(elems.empty() ? "" : ", ") + lo + v + "), " + hi + v + ")";
        }
      }
      src << "        const T yr[" << cc.wy << "] = {" << elems << "};\n";
      return;
    }
    if (rows_global) {
      src << "        const T* yr = (const T*)(Y + (long long)(jt + jj) * RK_WV);\n";
    } else if (cc.wy > 0 && cc.wy <= kMaxRowRegs * VL / 4) {
      // A narrow row: vector loads into registers (one 16-byte load per 16 bytes of the row).
      static const char* lane[] = {".x", ".y", ".z", ".w"};
      std::string elems;
      for (int q = 0; q < cc.wy / VL; ++q) {
        src << "        const TV yq" << q << "_ = tile_v[jj * RK_WV + " << q << "];\n";
        for (int l = 0; l < VL; ++l) elems += std::string(elems.empty() ? "" : ", ") + "yq" + I(q) + "_" + lane[l];
      }
      src << "        const T yr[" << cc.wy << "] = {" << elems << "};\n";
    } else if (cc.wy > 0) {
      src << "        const T* yr = tile + jj * (RK_WV * " << VL << ");\n";
    }
  }

  // rk_merge: merges the slots of each row, then finalises into out, or (states_) writes the
  // merged partial state as doubles (values, indices + jbase_, compensations: the CPU kernel's
  // layout, see rk_state_width there).
  void emit_merge_kernel(std::ostringstream& src) const {
    src << cuda_merge_head("RK_B");
    src << state_decl("", "  ") << state_io(false, "", "0LL", "  ");
    src << "  for (int s_ = 1; s_ < nslots; ++s_) {\n"
        << state_decl("o_", "    ") << state_io(false, "o_", "(long long)s_", "    ") << merge_code("    ") << "  }\n";
    // wide formulas: the state loops carry the unroll pragma too (see kLoopPragma)
    src << cuda_states_out(S, SI, SC, wide ? std::string("    ") + kLoopPragma + "\n" : "") << final_code("  ")
        << "}\n";
  }

  // rk_pack_inner: the packed inner rows (Y, row-major, cc.wy values per row) made on the
  // device from a device-resident inner variable (rkeops_device(), column-major with src_ld rows):
  // its `cols` components of rows [j0, j0 + n) into the columns [off, off + cols) of rows
  // [0, n) of dst; with no src, zeros (the padding of rows whose variables are all on the
  // device). One thread per value, consecutive threads on consecutive rows of one component
  // (coalesced reads). The launcher's host packing writes the same bytes (launch_cuda.cpp).
  void emit_pack_kernel(std::ostringstream& src) const {
    src << "\nextern \"C\" __global__ void rk_pack_inner(T* __restrict__ dst, long long off, const T* __restrict__ "
           "src,\n    long long src_ld, long long j0, long long n, int cols) {\n"
           "  const long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;\n"
           "  if (e >= n * cols) return;\n"
           "  const long long k = e / n, r = e - k * n;\n"
           "  dst[r * " << cc.wy << "LL + off + k] = src ? src[j0 + r + k * src_ld] : T(0);\n}\n";
  }

  // ---- facts ----
  const Formula& f;
  const CodeOptions& opt;
  const ReductionInfo& red;
  const RedShape& sh;
  const Graph& g;
  const int d;
  const bool f32;  // T is float (float32, and float16's state)
  const bool f16;  // inputs stored as halves
  const Reducer rd;
  // As on the CPU, "direct" sums also add the terms of a tile in registers first: a thread
  // adding 1e6 float32 terms one by one to its total would lose ~1e-4.
  const bool block_sum;
  const int S, SI, SC;
  const int outer, inner;
  const int L;
  CudaCode cc;
  int VL = 2;
  int R = 1;  // outer rows per thread
  std::vector<int> roots;
  std::vector<VarUse> vars;
  bool wide = false, rows_global = false, params_in_regs = true;
  bool pair = false;  // float16 with every operation in half2: two rows per thread
  F16TcPlan tc_;      // float16 Gaussian sums on tensor cores (plan_f16tc)
  // ---- the formula's code ----
  Emitter e;
  std::string param_loads, loads, hoisted, body;
  // A prescaled fold (find_prescaled_fold): its index in the folds, its Exp node, the outer and
  // inner variables scaled; the body on prescaled coordinates.
  int psf_ = -1, ps_exp_ = -1;
  bool ps_dot_ = false;  // with the inner-product form (dot_term) where the norms allow
  // ... in a sum whose F is the fold times other factors: each row's 2^-|sx|^2 (pz_) applied to
  // its sum at the end, each term computed as 2^(|sx|^2 - |sx - sy|^2) <= 2^kDotNorm
  bool ps_factor_ = false;
  bool ps_neg_ = false;  // its pair is -SqDist(x, y)
  const Node* ps_x_ = nullptr;
  const Node* ps_y_ = nullptr;
  std::string body_fast, body_dot;
  // float32 LogSumExp: the running maximum lm_ and F in log2 units (F scaled by log2(e), with
  // the scale folded as for exponentials): each term costs one 2^x and no test for -Inf.
  bool lse2 = false;
  std::vector<char> needs_inner_;  // by node: depends on the inner index
  std::string lse2_post;  // after the sweep: back to the state's natural units
  std::string lse2_redo;  // after a tile: whether it must be swept again
  RedCode acc;
  std::string tile_pre, tile_post;
};

}  // namespace

CudaCode generate_cuda_code(const Formula& f, const CodeOptions& opt, const std::string& include_dir) {
  // Inner products or distances of high dimension: the register-tiled template.
  // (Not in float16: the generic scheme evaluates those in float32 or half2, from halves.)
  const HdPlan hd = plan_cuda_hd(f, opt);
  if (hd.applies && opt.dtype != DType::Float16) return generate_cuda_hd_code(f, hd, opt, include_dir);
  return CudaSourceGen(with_uniform_factors_first(f), opt).generate(include_dir);
}

}  // namespace rkeops

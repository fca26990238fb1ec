// The CPU map-reduce template. Reads top to bottom:
//   parallel over work items (a block of outer rows x a slice of the inner range),
//     for each tile of inner rows (sized for L1),
//       for each outer row of the block: load its variables, compute what does not depend
//       on the inner index once, then sweep the tile with a `#pragma omp simd` loop,
//     then finalise (or store partial states, merged in a second pass when the inner
//     range is split, e.g. k-NN with few queries).
// Inputs are column-major with a leading dimension (R's layout, read in place in float64).
#include "codegen_cpu.h"

#include <algorithm>
#include <functional>
#include <map>
#include <sstream>

#include "codegen.h"
#include "codegen_cuda_hd.h"  // plan_cuda_hd: the pairwise nodes of high dimension (both backends)
#include "errors.h"

namespace rkeops {

namespace {

std::string I(long long k) { return std::to_string(k); }

// Names of the arrays holding variables: X<pos> (outer), Y<pos> (inner), P<pos> (parameter).
std::string var_array(int role, int pos) { return std::string(role == 0 ? "xo" : role == 1 ? "yi" : "pm") + I(pos); }

// The generator of one CPU kernel: the formula's facts and the tile sizes, then named steps
// that emit the pieces of the source in order (generate_cpu_source reads as the list).
class CpuSourceGen {
 public:
  CpuSourceGen(const Formula& f, const CodeOptions& opt)
      : f(f), opt(opt), red(f.reduction()), sh(f.shape), g(f.g), d(sh.d), dw(sh.dw), DF(d + dw),
        f32(opt.dtype == DType::Float32), rd(red, sh, opt.scheme), sum_fast(rd.block_sums()), kahan(rd.kahan()),
        S(red.state_dim(sh)), SI(red.istate_dim(sh)), SC(kahan ? d : 0), W(S + SI + SC), outer(f.outer_cat()),
        inner(f.inner_cat()), L(opt.loop_dim), e(g) {
    roots = {f.root};
    if (f.weight >= 0) roots.push_back(f.weight);
    vars = collect_vars(g, roots);
    for (auto& v : vars)
      if (v.cat == inner) inner_dims += v.dim;
    // A wide formula (a node or variable wider than L = kLoopDim) is emitted with loops over
    // components (codegen.h): the part that depends on the inner index in tile mode, each node
    // computed for the whole tile by loops over its components outside the vector loops over
    // the tile, and its arrays in a per-thread workspace allocated by the caller (rk_work_bytes),
    // never on the stack. Otherwise the straight-line template.
    wide = has_wide_nodes(g, roots, L);
    e.loop_dim = L;
    e.workspace = wide;
    choose_tile_sizes();
    plan_high_dimension();
    // Row states on the stack, unless they are large (long K-min lists): then on the heap.
    const long long state_bytes = (static_cast<long long>(std::max(S, 1)) + (kahan ? d : 1)) * (f32 ? 4 : 8) +
                                  8LL * std::max(SI, 1);
    heap_state = state_bytes * IB > 65536;
  }

  void emit_source(std::ostringstream& src, const std::string& include_dir) {
    emit_header(src, include_dir);
    emit_formula_code();
    emit_run(src);
    emit_merge_states(src);
  }

 private:
  // Inner tile: the inner variables of a tile are packed into a stack buffer of about
  // 128 KiB ([component][j]: constant offsets, unit stride, no pointer per component), which
  // a block of outer rows then sweeps; at least 64 wide so the vector loop amortises
  // reloading an outer row. Wide formulas: about 512 KiB (L2), 16 to 256 rows.
  void choose_tile_sizes() {
    TJ = 16384 / (inner_dims > 0 ? inner_dims : 1);
    if (!sum_fast) TJ = std::min(TJ, 8192 / DF);
    TJ = std::max(64, std::min(TJ, 1024)) / 16 * 16;
    IB = std::max(1, std::min(32, 2048 / std::max(1, S + SI)));
    if (wide) {
      TJ = std::max(16, std::min(256, 65536 / std::max(1, inner_dims))) / 16 * 16;
      const long long row_state = 8LL * (std::max(S, 1) + std::max(SI, 1) + (kahan ? d : 1));
      IB = static_cast<int>(std::max(1LL, std::min(32LL, (1LL << 18) / row_state)));
    }
  }

  // High dimensions: when the part of a wide formula that depends on both indices goes through
  // distances or inner products of one outer and one inner variable (plan_cuda_hd), those are
  // computed first for the block's rows x the tile by a register-blocked product (rk_hd_tile,
  // prelude_cpu.h: each loaded component serves several rows and 16 or 32 columns), then read
  // per pair by the rest of the formula. Distances are sums of squared differences (no
  // cancellation in float32). Rows are padded to multiples of kHdRows, the tile to whole
  // register blocks of columns.
  void plan_high_dimension() {
    if (!wide || !opt.cpu_hd) return;
    hd = plan_cuda_hd(f, opt, L + 1);
    use_hd = !hd.nodes.empty() && IB >= kHdRows;  // (few rows per block: padding would waste the blocks)
    for (const HdNode& n : hd.nodes) {
      use_hd = use_hd && n.weight < 0;
      (n.dist ? hd_dist : hd_dot) = true;
    }
    IBp = (IB + kHdRows - 1) / kHdRows * kHdRows;
    if (use_hd) TJ = std::max(32, TJ / 32 * 32);
  }

  // The prelude, the types and the small entry points describing the kernel.
  void emit_header(std::ostringstream& src, const std::string& include_dir) const {
    src << "// Generated by rkeops: a CPU kernel for\n// " << f.canonical() << "\n";
    src << read_prelude(include_dir, "rkeops/prelude_cpu.h");
    src << "typedef " << (f32 ? "float" : "double") << " T;\n";
    // items/jranges: a block-sparse reduction (ranges.h): work item w covers rows
    // [items[4w], items[4w+1]) and the inner ranges jranges[2s..2s+1] for s in [items[4w+2], items[4w+3]).
    src << "struct RkArgs { const void* const* data; const long long* ld; long long n_outer, n_inner;"
           " double* out; long long out_ld; int nthreads; long long jbase; double* states;"
           " const long long* items; long long nitems; const long long* jranges; };\n";
    src << "struct RkState { T st[" << std::max(S, 1) << "]; long long si[" << std::max(SI, 1) << "]; T cp["
        << (kahan ? d : 1) << "]; };\n";
    src << "extern \"C\" int rk_abi_version(void) { return " << kCpuAbiVersion << "; }\n";
    src << "extern \"C\" long long rk_state_bytes(void) { return sizeof(RkState); }\n";
    src << "extern \"C\" int rk_block_rows(void) { return " << IB << "; }\n";
    // A row's partial state as doubles (values, indices, compensations): what rk_run writes to
    // a->states instead of the result, and rk_merge_states merges.
    src << "extern \"C\" int rk_state_width(void) { return " << W << "; }\n";
    if (wide)
      src << "#ifdef _OPENMP\n#include <omp.h>\n#define RK_TID omp_get_thread_num()\n#else\n#define RK_TID 0\n#endif\n";
  }

  // ---- reduction pieces over a named state; wide F: loops over its components ----
  void looped(const std::function<void(const Reducer&, RedCode&)>& piece, RedCode& c,
              const std::function<std::string(const std::string&)>& f_at) const {
    reduction_piece(piece, red, sh, opt.scheme, c, L, f_at);
  }
  static std::string no_f(const std::string&) { return std::string(); }
  static RedCode red_code(const std::string& s, const std::string& s2) {
    RedCode c;
    c.st = s + ".st";
    c.si = s + ".si";
    c.st2 = s2 + ".st";
    c.si2 = s2 + ".si";
    c.cp = s + ".cp";
    c.cp2 = s2 + ".cp";
    return c;
  }
  std::string init_code(const std::string& s, const std::string& ind) const {
    RedCode c = red_code(s, "");
    c.ind = ind;
    looped([](const Reducer& r, RedCode& x) { r.init(x); }, c, no_f);
    return c.text;
  }
  std::string merge_code(const std::string& s, const std::string& s2, const std::string& ind) const {
    RedCode c = red_code(s, s2);
    c.ind = ind;
    looped([](const Reducer& r, RedCode& x) { r.merge(x); }, c, no_f);
    return c.text;
  }
  std::string final_code(const std::string& s, const std::string& row, const std::string& ind) const {
    RedCode c = red_code(s, "");
    c.ind = ind;
    c.out = [&](const std::string& k) { return "a->out[" + row + " + " + k + " * a->out_ld]"; };
    looped([](const Reducer& r, RedCode& x) { r.final(x); }, c, no_f);
    return c.text;
  }
  // The end of a row: its result, or (a->states) its partial state with global indices.
  std::string finish_code(const std::string& s, const std::string& row, const std::string& ind) const {
    std::string t = ind + "if (a->states) {\n";
    const std::string at = "a->states[" + row + " + (long long)k_ * a->out_ld]";
    t += ind + "  for (int k_ = 0; k_ < " + I(S) + "; ++k_) " + at + " = (double)" + s + ".st[k_];\n";
    if (SI)
      t += ind + "  for (int k_ = 0; k_ < " + I(SI) + "; ++k_) a->states[" + row + " + (long long)(" + I(S) +
           " + k_) * a->out_ld] = " + s + ".si[k_] < 0 ? -1.0 : (double)(" + s + ".si[k_] + a->jbase);\n";
    if (SC)
      t += ind + "  for (int k_ = 0; k_ < " + I(SC) + "; ++k_) a->states[" + row + " + (long long)(" + I(S + SI) +
           " + k_) * a->out_ld] = (double)" + s + ".cp[k_];\n";
    t += ind + "} else {\n" + final_code(s, row, ind + "  ") + ind + "}\n";
    return t;
  }

  // ---- the formula's code (before the template: a wide kernel's workspace depends on it) ----
  void emit_formula_code() {
    allocate_wide_workspace();
    bind_variables();
    if (wide) e.plan(roots, inner);
    emit_outer_row_code();
    emit_inner_body();
    if (wide) emit_wide_accumulation();
  }

  // Wide formulas' workspace (offsets in T, per thread): the tile of F, the tile of the inner
  // variables, wide outer rows, then the Emitter's arrays.
  void allocate_wide_workspace() {
    if (!wide) return;
    if (!sum_fast) off_fbuf = e.alloc(1LL * DF * TJ);
    for (auto& v : vars) {
      if (v.cat == inner) off_var[v.pos] = e.alloc(1LL * v.dim * TJ);
      if (v.cat == outer && v.dim > L) off_var[v.pos] = e.alloc(v.dim);
    }
    if (use_hd) {  // the block's rows packed [component][row], then the pairwise values [row][jj]
      off_hx = e.alloc(1LL * hd.dim * IBp);
      if (hd_dist) off_hdd = e.alloc(1LL * IBp * TJ);
      if (hd_dot) off_hdp = e.alloc(1LL * IBp * TJ);
      for (const HdNode& n : hd.nodes)
        e.bind_node(n.id, std::string(n.dist ? "hdd_" : "hdp_") + "[(i - ib0) * TJ + jj]");
    }
  }

  void bind_variables() {
    for (auto& v : vars) {
      if (v.cat == CAT_P)
        e.bind_var(v.cat, v.pos, var_array(2, v.pos));
      else if (v.cat == outer)
        e.bind_var(v.cat, v.pos, var_array(0, v.pos));
      else
        e.bind_var(v.cat, v.pos, var_array(1, v.pos), "[jj]");  // the packed tile
    }
  }

  // Outer variables and everything that does not depend on the inner index: once per row.
  void emit_outer_row_code() {
    for (auto& v : vars) {
      if (v.cat != outer || (use_hd && v.pos == hd.x_pos)) continue;
      if (v.dim > L) {  // into the workspace
        pre += "        for (int k_ = 0; k_ < " + I(v.dim) + "; ++k_) " + var_array(0, v.pos) + "[k_] = D" +
               I(v.pos) + "[i + k_ * ld" + I(v.pos) + "];\n";
        continue;
      }
      pre += "        T " + var_array(0, v.pos) + "[" + I(v.dim) + "];";
      for (int k = 0; k < v.dim; ++k)
        pre += " " + var_array(0, v.pos) + "[" + I(k) + "] = D" + I(v.pos) + "[i + " + I(k) + " * ld" + I(v.pos) + "];";
      pre += "\n";
    }
    e.indent = "        ";
    emit_hoisted(e, roots, inner);
    pre += e.code();
    e.clear_code();
  }

  // The body computed for each inner index j of the tile (wide: for the whole tile).
  void emit_inner_body() {
    e.indent = wide ? "        " : "          ";
    if (wide) e.begin_tiles(TJ);
    for (int r : roots) e.emit(r);
    e.flush();
    body = e.code();
  }
  std::string F(const Ix& k) const { return e.ref(f.root, k); }
  std::string Fw(const Ix& k) const { return e.ref(f.weight, k); }

  // Wide formulas: the tile's terms into the row's state, a vector loop over the tile per
  // component (a loop over the components when there are many).
  void emit_wide_accumulation() {
    auto components = [&](int n, const std::function<std::string(const Ix&)>& stmt) {
      if (n > L) {
        accum += "        for (int k_ = 0; k_ < " + I(n) + "; ++k_) {\n          #pragma omp simd\n" +
                 "          for (long long jj = 0; jj < jn; ++jj) " + stmt(Ix("k_")) + "\n        }\n";
        return;
      }
      accum += "        #pragma omp simd\n        for (long long jj = 0; jj < jn; ++jj) {";
      for (int k = 0; k < n; ++k) accum += " " + stmt(Ix(k));
      accum += " }\n";
    };
    if (sum_fast && d > L) {  // block sums, component by component
      accum += "        for (int k_ = 0; k_ < " + I(d) + "; ++k_) {\n          T s_ = T(0);\n";
      accum += "          #pragma omp simd reduction(+:s_)\n";
      accum += "          for (long long jj = 0; jj < jn; ++jj) s_ += " + F(Ix("k_")) + ";\n";
      accum += "          S_.st[k_] += s_;\n        }\n";
    } else if (sum_fast) {  // block sums of the d components in one vector loop
      std::string names, inits, adds;
      for (int k = 0; k < d; ++k) {
        names += (k ? ", s" : "s") + I(k);
        inits += "        T s" + I(k) + " = T(0);\n";
        adds += "        S_.st[" + I(k) + "] += s" + I(k) + ";\n";
      }
      accum += inits + "        #pragma omp simd reduction(+:" + names + ")\n";
      accum += "        for (long long jj = 0; jj < jn; ++jj) {";
      for (int k = 0; k < d; ++k) accum += " s" + I(k) + " += " + F(k) + ";";
      accum += " }\n" + adds;
    } else {  // the tile of F, then the reduction's term-by-term or tile code as below
      components(d, [&](const Ix& k) { return "fbuf[" + k.str() + "][jj] = " + F(k) + ";"; });
      if (dw > 0) components(dw, [&](const Ix& k) { return "fbuf[" + (k + d).str() + "][jj] = " + Fw(k) + ";"; });
    }
  }

  // ---- rk_run: parallel over work items (a block of outer rows x a slice of the inner range) ----
  void emit_run(std::ostringstream& src) const {
    src << e.globals();
    const long long WS = e.workspace_size();
    // (the caller adds 64 bytes for the alignment of the first workspace)
    if (wide) src << "extern \"C\" long long rk_work_bytes(void) { return " << WS << "LL * sizeof(T); }\n";
    src << "extern \"C\" void rk_run(const RkArgs* a, long long i0, long long i1, int nsplit, void* scratch) {\n";
    emit_run_prologue(src, WS);
    src << "  #pragma omp parallel for schedule(dynamic, 1) num_threads(a->nthreads)\n";
    src << "  for (long long w = 0; w < (a->items ? a->nitems : nb * nsplit); ++w) {\n";
    if (wide) src << "    T* ws_ = ws0_ + RK_TID * WS;\n";
    emit_work_item(src);
    emit_block_buffers(src);
    src << "    for (long long r_ = 0; r_ < q_.nr; ++r_) {\n";
    src << "    const long long jb0 = q_.jr[2 * r_], jb1 = q_.jr[2 * r_ + 1];\n";
    emit_tile_sweep(src);
    src << "    }\n";
    emit_block_end(src);
    src << "  }\n";
    emit_split_merge(src);
    src << "}\n";
  }

  // A work item: a block of rows and its inner ranges (rk_work_item, prelude_cpu.h). Dense:
  // block w / nsplit of [i0, i1) and slice w % nsplit of the inner range; block-sparse: the
  // item's rows and its kept ranges.
  void emit_work_item(std::ostringstream& src) const {
    src << "    RkItem q_;\n    rk_work_item(&q_, a->items, a->jranges, w, nsplit, i0, i1, IB, M, jchunk);\n";
    src << "    const long long ib0 = q_.ib0, ib1 = q_.ib1, sp = q_.sp;\n";
  }

  // The inputs' pointers and leading dimensions, the sizes, the scratch memory.
  void emit_run_prologue(std::ostringstream& src, long long WS) const {
    src << "  const long long M = a->n_inner;\n";
    for (auto& v : vars) {
      int role = v.cat == CAT_P ? 2 : (v.cat == outer ? 0 : 1);
      std::string base = "D" + I(v.pos);
      src << "  const T* " << base << " = (const T*)a->data[" << v.pos << "]; const long long ld" << v.pos
          << " = a->ld[" << v.pos << "]; (void)ld" << v.pos << ";\n";
      if (role == 2) src << "  const T* " << var_array(2, v.pos) << " = " << base << ";\n";
    }
    src << "  const int IB = " << IB << ";\n  const long long TJ = " << TJ << ";\n";
    src << "  const long long nrows = i1 - i0, nb = (nrows + IB - 1) / IB;\n";
    src << "  const long long jchunk = (M + nsplit - 1) / nsplit;\n";
    if (wide)  // per-thread workspaces (64-byte aligned: vector loads within cache lines), then partial states
      src << "  const long long WS = " << WS << ";\n"
          << "  T* const ws0_ = (T*)((char*)scratch + (64 - (unsigned long long)scratch % 64) % 64);\n"
          << "  RkState* parts = (RkState*)(ws0_ + a->nthreads * WS);\n";
    else
      src << "  RkState* parts = (RkState*)scratch;\n";
  }

  // A work item's row states (initialised) and the buffers of its tiles.
  void emit_block_buffers(std::ostringstream& src) const {
    if (heap_state)
      src << "    RkState* acc = new RkState[" << IB << "];\n";
    else
      src << "    RkState acc[" << IB << "];\n";
    src << "    for (int b_ = 0; b_ < IB; ++b_) {\n" << init_code("acc[b_]", "      ") << "    }\n";
    if (wide) {
      if (!sum_fast) src << "    T (*fbuf)[" << TJ << "] = (T (*)[" << TJ << "])(ws_ + " << off_fbuf << ");\n";
      for (auto& v : vars) {
        if (v.cat == inner)
          src << "    T (*" << var_array(1, v.pos) << ")[" << TJ << "] = (T (*)[" << TJ << "])(ws_ + "
              << off_var.at(v.pos) << ");\n";
        if (v.cat == outer && v.dim > L)
          src << "    T* " << var_array(0, v.pos) << " = ws_ + " << off_var.at(v.pos) << ";\n";
      }
      const std::string& decls = e.decls();
      for (size_t at = 0; at < decls.size();) {
        size_t nl = decls.find('\n', at);
        src << "    " << decls.substr(at, nl - at + 1);
        at = nl + 1;
      }
      if (use_hd) {
        src << "    T* const hx_ = ws_ + " << off_hx << ";\n";
        if (hd_dist) src << "    T* const hdd_ = ws_ + " << off_hdd << ";\n";
        if (hd_dot) src << "    T* const hdp_ = ws_ + " << off_hdp << ";\n";
        src << "    for (int k = 0; k < " << hd.dim << "; ++k)\n      for (int r = 0; r < " << IBp << "; ++r) hx_[k * "
            << IBp << " + r] = ib0 + r < ib1 ? D" << hd.x_pos << "[ib0 + r + k * ld" << hd.x_pos << "] : T(0);\n";
      }
    } else {
      if (!sum_fast) src << "    T fbuf[" << DF << "][" << TJ << "];\n";
      for (auto& v : vars)
        if (v.cat == inner) src << "    T " << var_array(1, v.pos) << "[" << v.dim << "][" << TJ << "];\n";
    }
  }

  // The tiles of the work item's inner slice: packed, then swept by each row of the block.
  void emit_tile_sweep(std::ostringstream& src) const {
    src << "    for (long long jt = jb0; jt < jb1; jt += TJ) {\n";
    src << "      const long long jn = jt + TJ < jb1 ? TJ : jb1 - jt;\n";
    for (auto& v : vars) {
      if (v.cat != inner) continue;
      std::string yb = var_array(1, v.pos), dd = "D" + I(v.pos), ld = "ld" + I(v.pos);
      src << "      for (int k = 0; k < " << v.dim << "; ++k)\n        for (long long jj = 0; jj < jn; ++jj) " << yb
          << "[k][jj] = " << dd << "[jt + jj + k * " << ld << "];\n";
    }
    if (use_hd) {
      const std::string args = "(hx_, " + I(IBp) + ", (int)(ib1 - ib0), " + var_array(1, hd.y_pos) + "[0], TJ, jn, " +
                               I(hd.dim) + ", ";
      if (hd_dist) src << "      rk_hd_tile<T, true>" << args << "hdd_, TJ);\n";
      if (hd_dot) src << "      rk_hd_tile<T, false>" << args << "hdp_, TJ);\n";
    }
    src << "      for (long long i = ib0; i < ib1; ++i) {\n";
    src << "        RkState& S_ = acc[i - ib0];\n";
    src << pre;
    emit_row_terms(src);
    if (!sum_fast) emit_tile_reduction(src);
    src << "      }\n    }\n";
  }

  // One row's terms over the tile: into block sums, or into the tile of F.
  void emit_row_terms(std::ostringstream& src) const {
    if (wide) {
      src << body << accum;
    } else if (sum_fast) {
      // Sums: accumulate in registers over the tile (vectorised), then add the tile's partial
      // sums to the row's state: this is the block-sum scheme.
      std::string names, inits, adds;
      for (int k = 0; k < d; ++k) {
        names += (k ? ", s" : "s") + I(k);
        inits += "        T s" + I(k) + " = T(0);\n";
        adds += "        S_.st[" + I(k) + "] += s" + I(k) + ";\n";
      }
      src << inits;
      src << "        #pragma omp simd reduction(+:" << names << ")\n";
      src << "        for (long long jj = 0; jj < jn; ++jj) {\n          const long long j = jt + jj;\n";
      src << body;
      for (int k = 0; k < d; ++k) src << "          s" << k << " += " << F(k) << ";\n";
      src << "        }\n" << adds;
    } else {
      src << "        #pragma omp simd\n";
      src << "        for (long long jj = 0; jj < jn; ++jj) {\n          const long long j = jt + jj;\n";
      src << body;
      for (int k = 0; k < d; ++k) src << "          fbuf[" << k << "][jj] = " << F(k) << ";\n";
      for (int k = 0; k < dw; ++k) src << "          fbuf[" << d + k << "][jj] = " << Fw(k) << ";\n";
      src << "        }\n";
    }
  }

  // The reduction of the tile of F into the row's state.
  void emit_tile_reduction(std::ostringstream& src) const {
    RedCode c = red_code("S_", "");
    c.f = [&](int k) { return "fbuf[" + I(k) + "][jj]"; };
    c.w = [&](int k) { return "fbuf[" + I(d + k) + "][jj]"; };
    c.j = "j";
    if (red.tile && !kahan) {  // the tile's state in vector loops, then merged
      RedCode t = red_code("T_", "");
      t.f = c.f;
      t.w = c.w;
      t.ind = "        ";
      t.line("RkState T_;");
      red.tile(t, sh);
      src << t.text << merge_code("S_", "T_", "        ");
    } else {  // term by term
      src << "        for (long long jj = 0; jj < jn; ++jj) {\n          const long long j = jt + jj;\n";
      c.ind = "          ";
      looped([](const Reducer& r, RedCode& x) { r.acc(x, false); }, c,
             [](const std::string& k) { return "fbuf[" + k + "][jj]"; });
      src << c.text << "          (void)j;\n        }\n";
    }
  }

  // The end of a work item: its rows finished, or their partial states kept for the merge.
  void emit_block_end(std::ostringstream& src) const {
    src << "    if (nsplit == 1) {\n      for (long long i = ib0; i < ib1; ++i) {\n        RkState& S_ = acc[i - ib0];\n"
        << finish_code("S_", "i", "        ") << "      }\n";
    src << "    } else {\n      for (long long i = ib0; i < ib1; ++i) parts[sp * nrows + (i - i0)] = acc[i - ib0];\n    "
           "}\n";
    if (heap_state) src << "    delete[] acc;\n";
  }

  // A split inner range: the slices' partial states merged, then each row finished.
  void emit_split_merge(std::ostringstream& src) const {
    src << "  if (nsplit > 1) {\n";
    src << "    #pragma omp parallel for num_threads(a->nthreads)\n";
    if (heap_state)  // merged in place (the scratch is not read again)
      src << "    for (long long i = i0; i < i1; ++i) {\n      RkState& S_ = parts[i - i0];\n";
    else
      src << "    for (long long i = i0; i < i1; ++i) {\n      RkState S_ = parts[i - i0];\n";
    src << "      for (int sp = 1; sp < nsplit; ++sp) {\n        const RkState& O_ = parts[sp * nrows + (i - i0)];\n"
        << merge_code("S_", "O_", "        ") << "      }\n"
        << finish_code("S_", "i", "      ") << "    }\n  }\n";
  }

  // rk_merge_states: merges the partial states of `nparts` pieces of the inner range (in
  // order: ties go to the earlier piece) and finalises into out, or writes the merged state to
  // states_out.
  void emit_merge_states(std::ostringstream& src) const {
    src << "extern \"C\" void rk_merge_states(const double* const* parts, int nparts, long long nrows, double* out,"
           " long long out_ld, double* states_out, int nthreads) {\n";
    src << "  const RkArgs A_ = {0, 0, nrows, 0, out, out_ld, nthreads, 0, states_out}; const RkArgs* a = &A_;\n";
    src << "  #pragma omp parallel for num_threads(nthreads)\n";
    src << "  for (long long i = 0; i < nrows; ++i) {\n";
    auto load = [&](const std::string& st, const std::string& part) {
      std::string t =
          "    for (int k_ = 0; k_ < " + I(S) + "; ++k_) " + st + ".st[k_] = (T)" + part + "[i + k_ * nrows];\n";
      if (SI)
        t += "    for (int k_ = 0; k_ < " + I(SI) + "; ++k_) " + st + ".si[k_] = (long long)" + part + "[i + (" +
             I(S) + " + k_) * nrows];\n";
      if (SC)
        t += "    for (int k_ = 0; k_ < " + I(SC) + "; ++k_) " + st + ".cp[k_] = (T)" + part + "[i + (" +
             I(S + SI) + " + k_) * nrows];\n";
      return t;
    };
    if (heap_state)
      src << "    RkState* P_ = new RkState[2]; RkState& S_ = P_[0]; RkState& O_ = P_[1];\n";
    else
      src << "    RkState S_, O_;\n";
    src << load("S_", "parts[0]");
    src << "    for (int p_ = 1; p_ < nparts; ++p_) {\n" << load("O_", "parts[p_]") << merge_code("S_", "O_", "      ")
        << "    }\n";
    src << finish_code("S_", "i", "    ");
    if (heap_state) src << "    delete[] P_;\n";
    src << "  }\n}\n";
  }

  // ---- facts ----
  const Formula& f;
  const CodeOptions& opt;
  const ReductionInfo& red;
  const RedShape& sh;
  const Graph& g;
  const int d, dw, DF;
  const bool f32;
  const Reducer rd;
  const bool sum_fast, kahan;
  const int S, SI, SC, W;
  const int outer, inner;
  const int L;
  std::vector<int> roots;
  std::vector<VarUse> vars;
  int inner_dims = 0;
  bool wide = false;
  int TJ = 0, IB = 0;
  bool heap_state = false;
  static constexpr int kHdRows = 4;
  HdPlan hd;
  bool use_hd = false, hd_dist = false, hd_dot = false;
  int IBp = 0;
  long long off_hx = 0, off_hdd = 0, off_hdp = 0;
  // ---- the formula's code ----
  Emitter e;
  long long off_fbuf = 0;
  std::map<int, long long> off_var;
  std::string pre, body, accum;
};

}  // namespace

std::string generate_cpu_source(const Formula& f, const CodeOptions& opt, const std::string& include_dir) {
  std::ostringstream src;
  CpuSourceGen(with_uniform_factors_first(f), opt).emit_source(src, include_dir);
  return src.str();
}

}  // namespace rkeops

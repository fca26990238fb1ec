// Backend-neutral emission of a formula's code: each DAG node becomes a small array
// `T v<id>[dim]` computed once, in dependency order. The CPU and CUDA templates wrap it.
//
// Nodes of small dimension are straight-line code, one statement per component. A node (or an
// argument) wider than `Emitter::loop_dim` is written with loops over its components, so that
// the source stays small as dimensions grow: element-wise maps become `for` loops, sums over
// components loops with four partial sums (the order of sum_terms), and a wide element-wise
// node used once is not stored at all but computed inside its consumer's loop ("virtual").
// On the CPU the part of a wide formula that depends on the inner index is emitted in tile
// mode: each node is computed for a whole tile of inner rows (`v<id>[k][jj]`) by loops over
// components outside `#pragma omp simd` loops over the tile, and wide arrays live in a
// per-thread workspace (`ws_`) instead of the stack.
#pragma once
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "ast.h"
#include "formula.h"
#include "reductions.h"

namespace rkeops {

// An index into the components of a node, as emitted code: an integer constant, or an affine
// expression of loop variables (or table lookups) plus a constant, e.g. "4 * m0_ + 1".
class Ix {
 public:
  Ix(long long c = 0) : c_(c) {}  // NOLINT: constants convert implicitly
  explicit Ix(const std::string& var, long long coef = 1) { t_.push_back({var, coef}); }
  bool is_const() const { return t_.empty(); }
  long long value() const { return c_; }  // the constant part
  Ix operator+(const Ix& o) const;
  Ix operator+(long long k) const { return *this + Ix(k); }
  Ix operator-(long long k) const { return *this + Ix(-k); }
  Ix operator*(long long m) const;
  std::string str() const;  // a constant prints as itself ("7")

 private:
  long long c_ = 0;
  std::vector<std::pair<std::string, long long>> t_;  // (variable, coefficient)
};

// Emits the statements of the nodes a kernel needs. Ops' emit functions call a(), o(), line(),
// and for wide nodes the loop helpers for_each(), sum(), extreme(), keep().
class Emitter {
 public:
  explicit Emitter(const Graph& g) : g_(g) {}
  // Name of the array holding variable (cat, pos); the backend declares and loads it.
  // Component k of variable (cat, pos) is written name[k] + suffix, e.g. "yb1[k][jj]" for a
  // packed tile (name "yb1", suffix "[jj]"), or name[(k) * stride] + suffix with a stride.
  void bind_var(int cat, int pos, const std::string& name, const std::string& suffix = "",
                const std::string& stride = "") {
    vars_[{cat, pos}] = {name, suffix, stride};
  }
  // Emits node `id` and everything it depends on (once); returns nothing, see ref().
  void emit(int id);
  // Expression for component k of node id (dim-1 nodes broadcast).
  std::string ref(int id, const Ix& k) const;
  const std::string& code() const { return code_; }
  void clear_code() { code_.clear(); }
  // Nodes already emitted are not emitted again (e.g. those hoisted out of the j loop).
  bool emitted(int id) const { return done_.count(id) > 0; }
  void mark_emitted(int id) { done_.insert(id); }
  // Node `id` (of dimension 1) is computed by the template, as `expr`: ref() returns it and
  // emit() emits neither the node nor its arguments (e.g. an inner product in registers).
  void bind_node(int id, const std::string& expr) {
    nodes_[id] = expr;
    done_.insert(id);
  }
  std::string indent = "      ";

  // --- wide nodes ---
  int loop_dim = kLoopDim;
  // Decides which wide element-wise nodes of `roots`' DAG are virtual (see the file comment);
  // `inner` is the category of the inner index. Call before emitting.
  void plan(const std::vector<int>& roots, int inner);
  // Arrays of wide nodes in a per-thread workspace `T* ws_` (CPU) instead of local arrays.
  bool workspace = false;
  long long alloc(long long elems);  // offset of a new workspace array, in T
  long long workspace_size() const { return ws_size_; }
  // Tile mode (CPU): nodes emitted from now on are computed for a tile of `tj` inner rows
  // (`jj < jn`), their arrays declared in decls().
  void begin_tiles(int tj);
  void flush();  // closes the loop over the tile left open for the next node
  const std::string& decls() const { return decls_; }
  // A line put before every loop over components (CUDA: "#pragma unroll 4"; NVRTC unrolls
  // loops of ~100 iterations completely, which costs seconds of compile time for nothing).
  std::string loop_pragma;
  // Integer tables at file scope (TensorDot index maps); `table_qual` declares them.
  std::string table_qual = "static const";
  const std::string& globals() const { return globals_; }

  // --- used by the op table's emitters while node cur() is being emitted ---
  int cur() const { return cur_; }
  const Node& node() const { return g_[cur_]; }
  const Node& arg_node(int i) const { return g_[g_[cur_].args[i]]; }
  int adim(int i) const { return arg_node(i).dim; }
  std::string a(int i, const Ix& k) const { return ref(g_[cur_].args[i], k); }
  std::string o(const Ix& k) const;
  int p(int i) const { return g_[cur_].params[i]; }
  void line(const std::string& s);
  std::string tmp();  // fresh scalar temporary name
  const Graph& graph() const { return g_; }
  // Whether the current node or one of its arguments is wider than loop_dim (its emitter
  // then uses the helpers below; otherwise it writes straight-line code).
  bool wide() const;
  bool loops(long long n) const { return n > loop_dim; }
  // body(k) for k in [0, n): unrolled, or a loop when n > loop_dim.
  void for_each(long long n, const std::function<void(const Ix&)>& body);
  // Sum over k in [0, n) of term(k), an expression; returns the sum's expression. Terms may
  // refer to arguments only (no temporaries of the caller).
  std::string sum(long long n, const std::function<std::string(const Ix&)>& term);
  // First k in [0, n) whose term(k) is smallest (cmp "<") or largest (">"), NaN skipped
  // unless first: returns {value, index as T}.
  std::pair<std::string, std::string> extreme(long long n, const std::function<std::string(const Ix&)>& term,
                                              const char* cmp);
  // Keeps a value for later statements of the node (across loops); returns its expression.
  std::string keep(const std::string& expr);
  // A scratch array of n values for the node: returns its name; refer to it with at().
  std::string scratch(long long n);
  std::string at(const std::string& array, const Ix& k) const;
  // Name of a file-scope integer table holding v.
  std::string table(const std::vector<long long>& v);

 private:
  struct Bound {
    std::string name, suffix, stride;
  };
  std::string expand(int id, const char* tpl, const Ix& k) const;
  void raw(const std::string& s) { code_ += indent + s + "\n"; }
  void open_loop(const std::string& var, long long n, long long step = 1);
  void close_loop();
  void close_tile_loop();
  void declare(int id);
  void emit_node(int id);  // the statements of one node, its arguments emitted
  std::string loop_var(const char* stem) const { return stem + std::to_string(depth_) + "_"; }
  const Graph& g_;
  std::map<std::pair<int, int>, Bound> vars_;
  std::map<int, std::string> nodes_;  // bind_node()
  std::set<int> done_;
  std::set<int> virtual_;  // wide element-wise nodes computed where they are used
  std::set<int> tiled_;    // nodes computed in tile mode: v<id>[k][jj]
  std::set<std::string> tiled_scratch_;
  std::string code_, decls_, globals_;
  int cur_ = -1;
  int ntmp_ = 0;
  int depth_ = 0;            // loops over components open
  int tile_ = 0;             // tile rows in tile mode, else 0
  bool tile_open_ = false;   // a loop over the tile is open
  long long ws_size_ = 0;
};

// Emits a piece of a reduction (`piece` calls the Reducer's init, acc, merge or final) for F
// of dimension d, as a loop over F's components when d > loop_dim: the piece of a reduction of
// one component (shape d = 1), with that component's state at st + k*S1 (S1: the state size of
// one component; likewise si, cp) and its output m at m*d + k. Every reduction whose F may
// have d > 1 lays out its state and result so (the d = 1 ones, LogSumExp..., are never
// looped). `f_at` gives F's component for an index expression.
void reduction_piece(const std::function<void(const Reducer&, RedCode&)>& piece, const ReductionInfo& red,
                     const RedShape& sh, SumScheme scheme, RedCode& c, int loop_dim,
                     const std::function<std::string(const std::string&)>& f_at,
                     const std::string& loop_pragma = "");

// Whether a formula needs loops: a node or variable of `roots`' DAG wider than loop_dim.
bool has_wide_nodes(const Graph& g, const std::vector<int>& roots, int loop_dim);

// Whether every operation of `roots`' DAG has a half2 form (OpInfo::half2): a float16 GPU
// kernel then evaluates the formula in half2 pairs (codegen_cuda.cpp).
bool formula_has_half2(const Graph& g, const std::vector<int>& roots);

// Sum of `terms` as emitted code. Long sums use four interleaved partial sums so that the
// additions do not form one long dependency chain (fixed order: results are deterministic).
std::string sum_terms(Emitter& e, const std::vector<std::string>& terms);

// Emits (into e's code) every node of `roots`' DAG that does not depend on a variable of
// category `inner`: the part of a formula computed once per outer row, outside the inner loop.
void emit_hoisted(Emitter& e, const std::vector<int>& roots, int inner);

// `f` with its products of scalars that depend on the inner index reordered: the factors that
// do not (parameters, outer variables, constants) multiplied together first, so that the row
// computes them once (emit_hoisted) and each pair multiplies once per factor that does. A
// gradient's 2 * (((e * b) * Exp(...)) * g), e an outer variable, b an inner one, g a parameter,
// becomes ((2 * e) * g) * (b * Exp(...)): two multiplies a pair instead of four. Products are
// rewritten only where this saves multiplies a pair, and only through nodes used once (a shared
// product keeps its node). Both code generators take it (the formula's printed form, the
// cache key, is the user's).
Formula with_uniform_factors_first(const Formula& f);

// Reads an rkeops header from `include_dir` (the preludes of both templates), inlining its
// #include "rkeops/..." lines.
std::string read_prelude(const std::string& include_dir, const std::string& file);

}  // namespace rkeops

// Backend-neutral emission of a formula's straight-line code: each DAG node becomes a small
// array `T v<id>[dim]` computed once, in dependency order. The CPU and CUDA templates wrap it.
#pragma once
#include <map>
#include <set>
#include <string>
#include <vector>

#include "ast.h"

namespace rkeops {

// Emits the statements of the nodes a kernel needs. Ops' emit functions call a(), o(), line().
class Emitter {
 public:
  explicit Emitter(const Graph& g) : g_(g) {}
  // Name of the array holding variable (cat, pos); the backend declares and loads it.
  // Component k of variable (cat, pos) is written name[k] + suffix, e.g. "yb1[k][jj]" for a
  // packed tile (name "yb1", suffix "[jj]").
  void bind_var(int cat, int pos, const std::string& name, const std::string& suffix = "") {
    vars_[{cat, pos}] = {name, suffix};
  }
  // Emits node `id` and everything it depends on (once); returns nothing, see ref().
  void emit(int id);
  // Expression for component k of node id (dim-1 nodes broadcast).
  std::string ref(int id, int k) const;
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

  // --- used by the op table's emitters while node cur() is being emitted ---
  int cur() const { return cur_; }
  const Node& node() const { return g_[cur_]; }
  const Node& arg_node(int i) const { return g_[g_[cur_].args[i]]; }
  int adim(int i) const { return arg_node(i).dim; }
  std::string a(int i, int k) const { return ref(g_[cur_].args[i], k); }
  std::string o(int k) const;
  int p(int i) const { return g_[cur_].params[i]; }
  void line(const std::string& s) { code_ += indent + s + "\n"; }
  std::string tmp();  // fresh scalar temporary name
  const Graph& graph() const { return g_; }

 private:
  void emit_node(int id);  // the statements of one node, its arguments emitted
  const Graph& g_;
  std::map<std::pair<int, int>, std::pair<std::string, std::string>> vars_;
  std::map<int, std::string> nodes_;  // bind_node()
  std::set<int> done_;
  std::string code_;
  int cur_ = -1;
  int ntmp_ = 0;
};

// Sum of `terms` as emitted code. Long sums use four interleaved partial sums so that the
// additions do not form one long dependency chain (fixed order: results are deterministic).
std::string sum_terms(Emitter& e, const std::vector<std::string>& terms);

// Emits (into e's code) every node of `roots`' DAG that does not depend on a variable of
// category `inner`: the part of a formula computed once per outer row, outside the inner loop.
void emit_hoisted(Emitter& e, const std::vector<int>& roots, int inner);

// Reads an rkeops header from `include_dir` (the preludes of both templates), inlining its
// #include "rkeops/..." lines.
std::string read_prelude(const std::string& include_dir, const std::string& file);

}  // namespace rkeops

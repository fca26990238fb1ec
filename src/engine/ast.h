// Expression DAG: few closed node kinds (Var, Const, Call); operations are data (see ops.h).
#pragma once
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace rkeops {

enum class NodeKind { Var, Const, Call };

// Variable categories, as KeOps numbers them in Var(pos, dim, cat).
enum VarCat { CAT_I = 0, CAT_J = 1, CAT_P = 2 };

// One node of the DAG. Children are node ids in the owning Graph.
struct Node {
  NodeKind kind;
  int dim = 1;
  int cat = -1, pos = -1;   // Var
  double value = 0;         // Const (always dim 1 unless Zero, which is a Call)
  bool is_int = false;      // Const written as an integer
  int op = -1;              // Call: index into the op table
  std::vector<int> args;    // Call: formula arguments
  std::vector<int> params;  // Call: integer parameters
};

// Owns the nodes; structurally equal nodes are shared (hash-consing), so common
// sub-expressions are emitted once.
class Graph {
 public:
  // More nodes than this is an error (UserError "formula"): the size of what a formula of at
  // most 100,000 characters parses to, and a bound on what nested derivatives build.
  static constexpr size_t kMaxNodes = 100000;
  int var(int cat, int pos, int dim);
  int constant(double value, bool is_int);
  // Builds a call node; checks arity and dimensions, throws UserError("dimension") with
  // the printed sub-expression when they do not fit.
  int call(int op, std::vector<int> args, std::vector<int> params = {});
  int call(const char* opname, std::vector<int> args, std::vector<int> params = {});
  const Node& operator[](int id) const { return nodes_[id]; }
  int size() const { return static_cast<int>(nodes_.size()); }
  // Canonical printing: the cache key of a formula and the text in error messages.
  std::string print(int id) const;
  // The same with the user's alias names for variables (error messages).
  std::string print_named(int id) const;
  void set_var_name(int cat, int pos, int dim, const std::string& name) { names_[{cat, pos}] = {name, dim}; }

 private:
  int intern(Node n);
  std::string print_impl(int id, bool named, long* budget, int depth) const;
  std::vector<Node> nodes_;
  std::unordered_map<std::string, int> index_;
  std::map<std::pair<int, int>, std::pair<std::string, int>> names_;
};

std::string format_double(double v);  // shortest text that reads back as the same double

// For every node of g: whether it depends on a variable of category `cat` (at position `pos`,
// or at any position when pos < 0).
std::vector<char> depends_on(const Graph& g, int cat, int pos = -1);
// For every node of g: how many times it is an argument of the nodes `roots` reach (0 for the
// nodes they do not reach, and for a root that no such node takes).
std::vector<int> parent_counts(const Graph& g, const std::vector<int>& roots);
// Which variables (cat, pos, dim) a sub-graph uses, sorted.
struct VarUse {
  int cat, pos, dim;
};
std::vector<VarUse> collect_vars(const Graph& g, const std::vector<int>& roots);

}  // namespace rkeops

// Algebraic simplification by rewrite rules (one per line in simplify.cpp), applied as nodes
// are built: what keeps generated gradients small. Structurally equal nodes are already
// shared by the Graph (hash-consing), so common sub-expressions are emitted once.
#pragma once
#include <climits>
#include <map>
#include <string>
#include <vector>

#include "ast.h"

namespace rkeops {

// Builds Call(op, args, params) (the args already simplified) and rewrites it with the rules.
int simplified_call(Graph& g, int op, std::vector<int> args, std::vector<int> params = {});
int simplified_call(Graph& g, const char* op, std::vector<int> args, std::vector<int> params = {});
// Rebuilds the expression `root` bottom-up through the rules; returns the new root.
int simplify(Graph& g, int root);

// A rewrite rule: lhs -> rhs when cond holds (and the dimension is unchanged).
//   lhs: a pattern (see Pattern); rhs: a formula-language expression over the names bound by
//   the lhs, "@x" for the dimension of x, or "0" for the zero of the lhs's dimension.
struct Rule {
  const char* lhs;
  const char* rhs;
  bool (*cond)(const Graph& g, const std::map<std::string, int>& m) = nullptr;
};
const std::vector<Rule>& rewrite_rules();

// Tries the rules on node `id` once (no recursion into arguments); returns the rewritten node,
// or `id` when no rule applies. `fired` (when given) receives the index of the rule used, -1
// for constant folding.
int rewrite_once(Graph& g, int id, int* fired = nullptr);

// A pattern of the rule language, parsed by parser.cpp (parse_pattern):
//   x, y, z (any name)   any sub-expression; a name used twice matches the same sub-expression
//   k, k1, k2 (names starting with k)   a constant
//   a number             that constant (0 also matches Zero(n))
//   Op(...), + - * / | and unary -   an operation; "_" in an integer position matches any integer
struct Pattern {
  enum Kind { Any, AnyConst, Number, Call } kind = Any;
  std::string name;           // Any, AnyConst
  double value = 0;           // Number
  int op = -1;                // Call
  std::vector<Pattern> args;  // Call
  std::vector<int> params;    // Call; kAnyParam matches any integer
};
constexpr int kAnyParam = INT_MIN;
Pattern parse_pattern(const std::string& text);

}  // namespace rkeops

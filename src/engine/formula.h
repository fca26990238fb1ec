// A parsed, dimension-checked reduction: the formula F (and optional weight) over
// variables, a reduction, an axis. Built by parse_formula() from user text.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "ast.h"
#include "reductions.h"

namespace rkeops {

// One input of the kernel, in position order.
struct ArgInfo {
  std::string name;  // alias name, or "" when written Var(...) in the formula
  int cat = -1;      // CAT_I, CAT_J, CAT_P
  int dim = 0;
};

// What keops_kernel() compiles.
struct Formula {
  Graph g;
  int root = -1;    // F, the reduced expression
  int weight = -1;  // the weight formula of *Weight reductions, else -1
  int red = -1;     // index into the reduction table
  int axis = 1;     // 1: reduce over j (rows indexed by i); 0: over i
  RedShape shape;
  int out_dim = 0;
  std::vector<ArgInfo> args;  // by position
  std::string text;           // the formula as the user wrote it
  std::string root_text;      // the text of F inside the reduction, as written
  std::string weight_text;    // the text of the weight formula of a weighted reduction, or ""
  std::vector<std::string> aliases;
  const ReductionInfo& reduction() const { return reduction_info(red); }
  // Category of the variables a result row is indexed by (CAT_I when axis == 1).
  int outer_cat() const { return axis == 1 ? CAT_I : CAT_J; }
  int inner_cat() const { return axis == 1 ? CAT_J : CAT_I; }
  std::string canonical() const;  // printed form, used in descriptions
};

// Parses `formula` with `aliases` ("x=Vi(3)", "y=Vj(1,3)", "p=Pm(1)", ...). Throws
// UserError("formula") with the 1-based column and a caret line, or UserError("dimension").
Formula parse_formula(const std::string& formula, const std::vector<std::string>& aliases);

// Builds the formula-language expression `text` (a derivative template of ops.cpp or the
// right-hand side of a rewrite rule of simplify.cpp) into `g`: names stand for the nodes in
// `bound`, "#k" for params[k], "@name" for the dimension of a bound name; nodes are built
// through the rewrite rules. A malformed text is a bug in a table: InternalError.
int parse_expression(Graph& g, const std::string& text, const std::map<std::string, int>& bound,
                     const std::vector<int>& params = {});

}  // namespace rkeops

#include "ast.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <set>

#include "errors.h"
#include "ops.h"

namespace rkeops {

namespace {
// The parameters of a call as written: integers, and tuples as Ind(a,b,...).
std::vector<std::string> params_text(const OpInfo& info, const std::vector<int>& params) {
  std::vector<std::string> out;
  if (!info.has_tuples()) {
    for (int p : params) out.push_back(std::to_string(p));
    return out;
  }
  size_t k = 0;
  auto parts = split_params(info, params);
  for (const char* s = info.sig; *s; ++s) {
    if (*s == 'f') continue;
    const std::vector<int>& v = parts[k++];
    if (*s == 'i') {
      out.push_back(std::to_string(v[0]));
      continue;
    }
    if (*s == 'o' && v.empty()) continue;  // an optional tuple left out
    std::string t = "Ind(";
    for (size_t j = 0; j < v.size(); ++j) t += (j ? "," : "") + std::to_string(v[j]);
    out.push_back(t + ")");
  }
  return out;
}
}  // namespace

std::string format_double(double v) {
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

int Graph::intern(Node n) {
  if (nodes_.size() >= kMaxNodes)
    throw TooLarge("the formula is too large: more than " + std::to_string(kMaxNodes) +
                   " distinct operations (nested derivatives multiply them)");
  // The key holds everything that makes two nodes different; children are already interned.
  std::string key = std::to_string(static_cast<int>(n.kind)) + ":" + std::to_string(n.op) + ":" +
                    std::to_string(n.cat) + ":" + std::to_string(n.pos) + ":" + std::to_string(n.dim) + ":" +
                    format_double(n.value) + (n.is_int ? "i" : "d");
  for (int a : n.args) key += "," + std::to_string(a);
  key += ";";
  for (int p : n.params) key += "," + std::to_string(p);
  auto it = index_.find(key);
  if (it != index_.end()) return it->second;
  nodes_.push_back(std::move(n));
  int id = static_cast<int>(nodes_.size()) - 1;
  index_.emplace(std::move(key), id);
  return id;
}

int Graph::var(int cat, int pos, int dim) {
  Node n;
  n.kind = NodeKind::Var;
  n.cat = cat;
  n.pos = pos;
  n.dim = dim;
  return intern(std::move(n));
}

int Graph::constant(double value, bool is_int) {
  Node n;
  n.kind = NodeKind::Const;
  n.value = value;
  n.is_int = is_int;
  n.dim = 1;
  return intern(std::move(n));
}

int Graph::call(const char* opname, std::vector<int> args, std::vector<int> params) {
  int op = find_op(opname);
  RK_ASSERT(op >= 0, std::string("unknown operation ") + opname);
  return call(op, std::move(args), std::move(params));
}

int Graph::call(int op, std::vector<int> args, std::vector<int> params) {
  const OpInfo& info = op_info(op);
  RK_ASSERT(args.size() == info.nargs() && info.params_fit(params), std::string("wrong arity for ") + info.name);
  std::vector<int> dims;
  for (int a : args) dims.push_back(nodes_[a].dim);
  int d = checked_dim(info, dims, params, [&] {  // the call as written, with alias names
    std::string text = info.name;
    text += "(";
    bool first = true;
    for (int a : args) {
      text += (first ? "" : ", ") + print_named(a);
      first = false;
    }
    for (auto& p : params_text(info, params)) {
      text += (first ? "" : ", ") + p;
      first = false;
    }
    return text + ")";
  });
  Node n;
  n.kind = NodeKind::Call;
  n.op = op;
  n.args = std::move(args);
  n.params = std::move(params);
  n.dim = d;
  return intern(std::move(n));
}

// Printing a DAG as a tree can take exponential space (gradients share a lot): text longer
// than this is cut with "...", and so are sub-expressions nested deeper than kPrintDepth
// (printing recurses; a sum of many terms is a deep DAG).
constexpr size_t kPrintBudget = 4000;
constexpr int kPrintDepth = 256;

std::string Graph::print(int id) const {
  long budget = kPrintBudget;
  return print_impl(id, false, &budget, 0);
}
std::string Graph::print_named(int id) const {
  long budget = kPrintBudget;
  return print_impl(id, true, &budget, 0);
}

std::string Graph::print_impl(int id, bool named, long* budget, int depth) const {
  if (*budget <= 0 || depth > kPrintDepth) return "...";
  const Node& n = nodes_[id];
  switch (n.kind) {
    case NodeKind::Var: {
      auto it = names_.find({n.cat, n.pos});
      if (named && it != names_.end() && it->second.second == n.dim) return it->second.first;
      static const char* names[] = {"Vi", "Vj", "Pm"};
      return std::string(names[n.cat]) + "(" + std::to_string(n.pos) + "," + std::to_string(n.dim) + ")";
    }
    case NodeKind::Const:
      if (n.is_int) return "IntCst(" + format_double(n.value) + ")";
      return format_double(n.value);
    case NodeKind::Call: {
      std::string s = op_info(n.op).name;
      s += "(";
      bool first = true;
      for (int a : n.args) {
        s += (first ? "" : ",") + print_impl(a, named, budget, depth + 1);
        *budget -= static_cast<long>(s.size());
        first = false;
      }
      for (auto& p : params_text(op_info(n.op), n.params)) {
        s += (first ? "" : ",") + p;
        first = false;
      }
      return s + ")";
    }
  }
  return "";
}

std::vector<int> parent_counts(const Graph& g, const std::vector<int>& roots) {
  std::vector<int> parents(static_cast<size_t>(g.size()), 0);
  std::vector<char> seen(static_cast<size_t>(g.size()), 0);
  for (std::vector<int> st = roots; !st.empty();) {
    const int id = st.back();
    st.pop_back();
    if (seen[id]) continue;
    seen[id] = 1;
    for (int a : g[id].args) {
      ++parents[a];
      st.push_back(a);
    }
  }
  return parents;
}

std::vector<char> depends_on(const Graph& g, int cat, int pos) {
  // Children always have smaller ids than their parents, so one forward pass suffices.
  std::vector<char> dep(g.size(), 0);
  for (int id = 0; id < g.size(); ++id) {
    const Node& n = g[id];
    if (n.kind == NodeKind::Var) dep[id] = n.cat == cat && (pos < 0 || n.pos == pos);
    for (int a : n.args) dep[id] |= dep[a];
  }
  return dep;
}

std::vector<VarUse> collect_vars(const Graph& g, const std::vector<int>& roots) {
  std::set<int> seen;
  std::map<std::pair<int, int>, int> found;
  // Depth first, arguments in order (an explicit stack: DAGs can be deep).
  std::vector<int> todo(roots.rbegin(), roots.rend());
  while (!todo.empty()) {
    int id = todo.back();
    todo.pop_back();
    if (!seen.insert(id).second) continue;
    const Node& n = g[id];
    if (n.kind == NodeKind::Var) {
      auto key = std::make_pair(n.cat, n.pos);
      auto it = found.find(key);
      if (it != found.end() && it->second != n.dim)
        throw UserError("dimension", "variable " + g.print(id) + " is used with dimensions " +
                                         std::to_string(it->second) + " and " + std::to_string(n.dim));
      found[key] = n.dim;
    }
    todo.insert(todo.end(), n.args.rbegin(), n.args.rend());
  }
  std::vector<VarUse> out;
  for (auto& kv : found) out.push_back({kv.first.first, kv.first.second, kv.second});
  return out;
}

}  // namespace rkeops

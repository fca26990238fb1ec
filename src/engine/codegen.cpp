#include "codegen.h"

#include <algorithm>
#include <fstream>
#include <functional>

#include "errors.h"
#include "ops.h"

namespace rkeops {

std::string read_prelude(const std::string& include_dir, const std::string& file) {
  std::ifstream in(include_dir + "/" + file);
  if (!in) throw UserError("option", "cannot read the rkeops header " + include_dir + "/" + file);
  std::string out, line;
  while (std::getline(in, line)) {
    const std::string inc = "#include \"rkeops/";
    if (line.compare(0, inc.size(), inc) == 0) {
      std::string name = line.substr(inc.size() - 7);  // "rkeops/xxx.h\""
      name = name.substr(0, name.find('"'));
      out += read_prelude(include_dir, name);
    } else {
      out += line + "\n";
    }
  }
  return out;
}

std::string Emitter::o(int k) const { return "v" + std::to_string(cur_) + "[" + std::to_string(k) + "]"; }

std::string Emitter::tmp() { return "t" + std::to_string(ntmp_++); }

std::string Emitter::ref(int id, int k) const {
  auto bound = nodes_.find(id);
  if (bound != nodes_.end()) return bound->second;
  const Node& n = g_[id];
  if (n.dim == 1) k = 0;
  switch (n.kind) {
    case NodeKind::Const:
      return "T(" + format_double(n.value) + ")";
    case NodeKind::Var: {
      auto it = vars_.find({n.cat, n.pos});
      RK_ASSERT(it != vars_.end(), "unbound variable");
      return it->second.first + "[" + std::to_string(k) + "]" + it->second.second;
    }
    case NodeKind::Call:
      return "v" + std::to_string(id) + "[" + std::to_string(k) + "]";
  }
  return "";
}

// Replaces $i by argument i's component k and #i by integer parameter i.
static std::string expand(const Emitter& e, const char* tpl, int k) {
  std::string s;
  for (const char* c = tpl; *c; ++c) {
    if ((*c == '$' || *c == '#') && c[1] >= '0' && c[1] <= '9') {
      int i = c[1] - '0';
      s += (*c == '$') ? e.a(i, k) : std::to_string(e.p(i));
      ++c;
    } else {
      s += *c;
    }
  }
  return s;
}

void Emitter::emit(int root) {
  // Arguments first, in order, depth first: an explicit stack, as a DAG can be deeper than
  // the C stack allows recursion (a sum of many terms). Entries: (node, next argument).
  std::vector<std::pair<int, size_t>> todo = {{root, 0}};
  while (!todo.empty()) {
    const int id = todo.back().first;
    const Node& n = g_[id];
    if (done_.count(id) || n.kind != NodeKind::Call) {
      done_.insert(id);
      todo.pop_back();
    } else if (todo.back().second < n.args.size()) {
      todo.push_back({n.args[todo.back().second++], 0});
    } else {
      todo.pop_back();
      emit_node(id);
    }
  }
}

void Emitter::emit_node(int id) {
  const Node& n = g_[id];
  cur_ = id;
  line("T v" + std::to_string(id) + "[" + std::to_string(n.dim) + "];");
  const OpInfo& info = op_info(n.op);
  if (info.scalar) {
    for (int k = 0; k < n.dim; ++k) line(o(k) + " = " + expand(*this, info.scalar, k) + ";");
  } else {
    info.emit(*this, id);
  }
  cur_ = -1;
  done_.insert(id);
}

std::string sum_terms(Emitter& e, const std::vector<std::string>& terms) {
  const size_t n = terms.size();
  if (n <= 8) {
    std::string s;
    for (size_t k = 0; k < n; ++k) s += (k ? " + " : "") + terms[k];
    return n ? s : "T(0)";
  }
  std::string p[4];
  for (int q = 0; q < 4; ++q) {
    p[q] = e.tmp();
    e.line("T " + p[q] + " = " + terms[q] + ";");
  }
  for (size_t k = 4; k < n; ++k) e.line(p[k % 4] + " += " + terms[k] + ";");
  return "(" + p[0] + " + " + p[1] + ") + (" + p[2] + " + " + p[3] + ")";
}

void emit_hoisted(Emitter& e, const std::vector<int>& roots, int inner) {
  const Graph& g = e.graph();
  std::vector<char> needs_inner = depends_on(g, inner);
  std::vector<int> stack = roots;
  std::vector<char> seen(g.size(), 0);
  while (!stack.empty()) {
    int id = stack.back();
    stack.pop_back();
    if (seen[id]) continue;
    seen[id] = 1;
    if (g[id].kind == NodeKind::Call && !needs_inner[id])
      e.emit(id);
    else
      for (int a : g[id].args) stack.push_back(a);
  }
}

}  // namespace rkeops

#include "codegen.h"

#include <algorithm>
#include <fstream>
#include <functional>

#include "errors.h"
#include "ops.h"
#include "reductions.h"

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

Ix Ix::operator+(const Ix& o) const {
  Ix r = *this;
  r.c_ += o.c_;
  for (auto& t : o.t_) {
    bool merged = false;
    for (auto& u : r.t_)
      if (u.first == t.first) {
        u.second += t.second;
        merged = true;
      }
    if (!merged) r.t_.push_back(t);
  }
  return r;
}

Ix Ix::operator*(long long m) const {
  Ix r = *this;
  r.c_ *= m;
  for (auto& t : r.t_) t.second *= m;
  return r;
}

std::string Ix::str() const {
  std::string s;
  for (auto& t : t_) {
    if (t.second == 0) continue;
    long long c = t.second < 0 ? -t.second : t.second;
    std::string term = c == 1 ? t.first : std::to_string(c) + " * " + t.first;
    if (s.empty())
      s = (t.second < 0 ? "-" : "") + term;
    else
      s += (t.second < 0 ? " - " : " + ") + term;
  }
  if (s.empty()) return std::to_string(c_);
  if (c_ > 0) s += " + " + std::to_string(c_);
  if (c_ < 0) s += " - " + std::to_string(-c_);
  return s;
}

std::string Emitter::o(const Ix& k) const {
  return "v" + std::to_string(cur_) + "[" + k.str() + "]" + (tiled_.count(cur_) ? "[jj]" : "");
}

std::string Emitter::tmp() { return "t" + std::to_string(ntmp_++); }

std::string Emitter::ref(int id, const Ix& k) const {
  auto bound = nodes_.find(id);
  if (bound != nodes_.end()) return bound->second;
  const Node& n = g_[id];
  const Ix kk = n.dim == 1 ? Ix(0) : k;
  switch (n.kind) {
    case NodeKind::Const:
      return "T(" + format_double(n.value) + ")";
    case NodeKind::Var: {
      auto it = vars_.find({n.cat, n.pos});
      RK_ASSERT(it != vars_.end(), "unbound variable");
      const Bound& b = it->second;
      if (!b.stride.empty()) return b.name + "[(long long)(" + kk.str() + ") * " + b.stride + "]" + b.suffix;
      return b.name + "[" + kk.str() + "]" + b.suffix;
    }
    case NodeKind::Call:
      if (virtual_.count(id)) return expand(id, op_info(n.op).scalar, kk);
      return "v" + std::to_string(id) + "[" + kk.str() + "]" + (tiled_.count(id) ? "[jj]" : "");
  }
  return "";
}

// Replaces $i by argument i's component k and #i by integer parameter i.
std::string Emitter::expand(int id, const char* tpl, const Ix& k) const {
  const Node& n = g_[id];
  std::string s;
  for (const char* c = tpl; *c; ++c) {
    if ((*c == '$' || *c == '#') && c[1] >= '0' && c[1] <= '9') {
      int i = c[1] - '0';
      s += (*c == '$') ? ref(n.args[i], k) : std::to_string(n.params[i]);
      ++c;
    } else {
      s += *c;
    }
  }
  return s;
}

void Emitter::line(const std::string& s) {
  if (tile_ && !tile_open_) {
    raw("#pragma omp simd");
    raw("for (long long jj = 0; jj < jn; ++jj) {");
    indent += "  ";
    tile_open_ = true;
  }
  raw(s);
}

void Emitter::close_tile_loop() {
  if (!tile_open_) return;
  indent.resize(indent.size() - 2);
  raw("}");
  tile_open_ = false;
}

void Emitter::flush() { close_tile_loop(); }

void Emitter::begin_tiles(int tj) { tile_ = tj; }

void Emitter::open_loop(const std::string& var, long long n, long long step) {
  close_tile_loop();
  if (!loop_pragma.empty()) raw(loop_pragma);
  raw("for (int " + var + " = 0; " + var + " < " + std::to_string(n) + "; " +
      (step == 1 ? "++" + var : var + " += " + std::to_string(step)) + ") {");
  indent += "  ";
  ++depth_;
}

void Emitter::close_loop() {
  close_tile_loop();
  indent.resize(indent.size() - 2);
  raw("}");
  --depth_;
}

long long Emitter::alloc(long long elems) {
  long long off = ws_size_;
  ws_size_ += (elems + 15) / 16 * 16;  // 64-byte aligned arrays
  return off;
}

// Tile-mode arrays are rows of the tile: name[k][jj] (declared before the inner loop).
static std::string tile_decl(const std::string& name, int tj, long long off) {
  std::string t = std::to_string(tj);
  return "T (*" + name + ")[" + t + "] = (T (*)[" + t + "])(ws_ + " + std::to_string(off) + ");\n";
}

void Emitter::declare(int id) {
  const Node& n = g_[id];
  const std::string name = "v" + std::to_string(id);
  if (tile_) {
    tiled_.insert(id);
    decls_ += tile_decl(name, tile_, alloc(static_cast<long long>(n.dim) * tile_));
  } else if (workspace && loops(n.dim)) {
    line("T* " + name + " = ws_ + " + std::to_string(alloc(n.dim)) + ";");
  } else {
    line("T " + name + "[" + std::to_string(n.dim) + "];");
  }
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
  if (virtual_.count(id)) {  // computed where it is used
    done_.insert(id);
    return;
  }
  cur_ = id;
  declare(id);
  const OpInfo& info = op_info(n.op);
  if (info.scalar) {
    for_each(n.dim, [&](const Ix& k) { line(o(k) + " = " + expand(id, info.scalar, k) + ";"); });
  } else {
    info.emit(*this, id);
  }
  cur_ = -1;
  done_.insert(id);
}

bool Emitter::wide() const {
  const Node& n = g_[cur_];
  if (loops(n.dim)) return true;
  for (int a : n.args)
    if (loops(g_[a].dim)) return true;
  return false;
}

void Emitter::for_each(long long n, const std::function<void(const Ix&)>& body) {
  if (!loops(n)) {
    for (long long k = 0; k < n; ++k) body(Ix(k));
    return;
  }
  const std::string v = loop_var("k");
  open_loop(v, n);
  body(Ix(v));
  close_loop();
}

std::string Emitter::sum(long long n, const std::function<std::string(const Ix&)>& term) {
  if (!loops(n)) {
    std::vector<std::string> t;
    for (long long k = 0; k < n; ++k) t.push_back(term(Ix(k)));
    return sum_terms(*this, t);
  }
  if (!tile_) {
    // Four partial sums, each term going where sum_terms puts it: the same order.
    std::string p[4];
    for (auto& q : p) q = tmp();
    line("T " + p[0] + " = T(0), " + p[1] + " = T(0), " + p[2] + " = T(0), " + p[3] + " = T(0);");
    const std::string m = loop_var("m");
    const long long q4 = n / 4;
    std::string body;
    for (int q = 0; q < 4; ++q) body += " " + p[q] + " += " + term(Ix(m, 4) + q) + ";";
    if (!loop_pragma.empty()) line(loop_pragma);
    line("for (int " + m + " = 0; " + m + " < " + std::to_string(q4) + "; ++" + m + ") {" + body + " }");
    for (long long k = 4 * q4; k < n; ++k) line(p[k % 4] + " += " + term(Ix(k)) + ";");
    return "(" + p[0] + " + " + p[1] + ") + (" + p[2] + " + " + p[3] + ")";
  }
  // Tile mode: one sum per inner row, the loop over components outside the vector loop over
  // the tile, four components per pass (fewer loads and stores of the sums: k-NN at D = 784
  // then costs per component what it costs at D = 100; bench/RESULTS.md).
  const std::string acc = scratch(1), s = at(acc, 0), v = loop_var("k"), q4 = std::to_string(n / 4 * 4);
  close_tile_loop();
  raw("#pragma omp simd");
  raw("for (long long jj = 0; jj < jn; ++jj) " + s + " = T(0);");
  raw("for (int " + v + " = 0; " + v + " < " + q4 + "; " + v + " += 4) {");
  raw("  #pragma omp simd");
  raw("  for (long long jj = 0; jj < jn; ++jj) " + s + " += (" + term(Ix(v)) + " + " + term(Ix(v) + 1) + ") + (" +
      term(Ix(v) + 2) + " + " + term(Ix(v) + 3) + ");");
  raw("}");
  if (n % 4) {
    std::string rest;
    for (long long k = n / 4 * 4; k < n; ++k) rest += (rest.empty() ? "" : " + ") + term(Ix(k));
    raw("#pragma omp simd");
    raw("for (long long jj = 0; jj < jn; ++jj) " + s + " += " + (n % 4 > 1 ? "(" + rest + ")" : rest) + ";");
  }
  return s;
}

std::pair<std::string, std::string> Emitter::extreme(long long n, const std::function<std::string(const Ix&)>& term,
                                                     const char* cmp) {
  const std::string c = cmp;
  if (!loops(n)) {
    std::string best = tmp(), idx = tmp();
    line("T " + best + " = " + term(Ix(0)) + "; T " + idx + " = T(0);");
    for (long long k = 1; k < n; ++k)
      line("if (" + term(Ix(k)) + " " + c + " " + best + ") { " + best + " = " + term(Ix(k)) + "; " + idx + " = T(" +
           std::to_string(k) + "); }");
    return {best, idx};
  }
  const std::string v = loop_var("k"), last = std::to_string(n);
  if (!tile_) {
    std::string best = tmp(), idx = tmp();
    line("T " + best + " = " + term(Ix(0)) + "; T " + idx + " = T(0);");
    if (!loop_pragma.empty()) line(loop_pragma);
    line("for (int " + v + " = 1; " + v + " < " + last + "; ++" + v + ") { const T c_ = " + term(Ix(v)) + "; if (c_ " +
         c + " " + best + ") { " + best + " = c_; " + idx + " = T(" + v + "); } }");
    return {best, idx};
  }
  const std::string b = scratch(1), x = scratch(1), best = at(b, 0), idx = at(x, 0);
  close_tile_loop();
  raw("#pragma omp simd");
  raw("for (long long jj = 0; jj < jn; ++jj) { " + best + " = " + term(Ix(0)) + "; " + idx + " = T(0); }");
  raw("for (int " + v + " = 1; " + v + " < " + last + "; ++" + v + ") {");
  raw("  #pragma omp simd");
  raw("  for (long long jj = 0; jj < jn; ++jj) { const T c_ = " + term(Ix(v)) + "; if (c_ " + c + " " + best +
      ") { " + best + " = c_; " + idx + " = T(" + v + "); } }");
  raw("}");
  return {best, idx};
}

std::string Emitter::keep(const std::string& expr) {
  if (!tile_) {
    std::string t = tmp();
    line("T " + t + " = " + expr + ";");
    return t;
  }
  const std::string s = at(scratch(1), 0);
  line(s + " = " + expr + ";");
  return s;
}

std::string Emitter::scratch(long long n) {
  const std::string name = "u" + std::to_string(ntmp_++) + "_";
  if (tile_) {
    tiled_scratch_.insert(name);
    decls_ += tile_decl(name, tile_, alloc(n * tile_));
  } else if (workspace) {
    line("T* " + name + " = ws_ + " + std::to_string(alloc(n)) + ";");
  } else {
    line("T " + name + "[" + std::to_string(n) + "];");
  }
  return name;
}

std::string Emitter::at(const std::string& array, const Ix& k) const {
  return array + "[" + k.str() + "]" + (tiled_scratch_.count(array) ? "[jj]" : "");
}

std::string Emitter::table(const std::vector<long long>& v) {
  const std::string name = "tb" + std::to_string(ntmp_++) + "_";
  std::string s = table_qual + " int " + name + "[" + std::to_string(v.size()) + "] = {";
  for (size_t k = 0; k < v.size(); ++k) s += (k ? (k % 16 ? ", " : ",\n  ") : "") + std::to_string(v[k]);
  globals_ += s + "};\n";
  return name;
}

void Emitter::plan(const std::vector<int>& roots, int inner) {
  const std::vector<char> inner_dep = depends_on(g_, inner);
  std::vector<int> order, uses(g_.size(), 0), consumer(g_.size(), -1);
  std::vector<char> seen(g_.size(), 0);
  for (int r : roots) {  // post-order (arguments first), with an explicit stack: DAGs may be deep
    std::vector<std::pair<int, size_t>> todo = {{r, 0}};
    while (!todo.empty()) {
      const int id = todo.back().first;
      if (todo.back().second == 0 && seen[id]) {
        todo.pop_back();
        continue;
      }
      seen[id] = 1;
      if (todo.back().second < g_[id].args.size()) {
        todo.push_back({g_[id].args[todo.back().second++], 0});
      } else {
        order.push_back(id);
        todo.pop_back();
      }
    }
  }
  for (int id : order)
    for (int a : g_[id].args) {
      ++uses[a];
      consumer[a] = id;
    }
  for (int r : roots) {
    ++uses[r];
    consumer[r] = -1;  // the reduction, which runs for every inner index
  }
  // A wide element-wise node used once, in the same region (per outer row, or per pair) as
  // its user, and whose inlined text stays short (templates may use an argument twice).
  constexpr long long kMaxInline = 400;
  std::vector<long long> size(g_.size(), 0);
  for (int id : order) {
    const Node& n = g_[id];
    if (n.kind != NodeKind::Call || !loops(n.dim) || uses[id] != 1) continue;
    const char* tpl = op_info(n.op).scalar;
    if (!tpl) continue;
    const bool user_inner = consumer[id] < 0 ? true : inner_dep[consumer[id]] != 0;
    if ((inner_dep[id] != 0) != user_inner) continue;
    long long sz = 0;
    for (const char* c = tpl; *c; ++c) {
      if (*c == '$' && c[1] >= '0' && c[1] <= '9') {
        int a = n.args[c[1] - '0'];
        sz += virtual_.count(a) ? size[a] : 24;
        ++c;
      } else {
        ++sz;
      }
    }
    if (sz <= kMaxInline) {
      virtual_.insert(id);
      size[id] = sz;
    }
  }
}

void reduction_piece(const std::function<void(const Reducer&, RedCode&)>& piece, const ReductionInfo& red,
                     const RedShape& sh, SumScheme scheme, RedCode& c, int loop_dim,
                     const std::function<std::string(const std::string&)>& f_at, const std::string& loop_pragma) {
  if (sh.d <= loop_dim) {
    piece(Reducer(red, sh, scheme), c);
    return;
  }
  RedShape s1 = sh;
  s1.d = 1;
  const int S1 = red.state_dim(s1), SI1 = red.istate_dim(s1);
  // kc_: the component (the table's own pieces use k_, r_ and q as loop variables)
  auto shift = [](const std::string& a, int n) {
    if (a.empty() || n == 0) return a;
    return "(" + a + " + kc_" + (n == 1 ? std::string() : " * " + std::to_string(n)) + ")";
  };
  RedCode u = c;
  u.text.clear();
  u.ind = c.ind + "  ";
  u.st = shift(c.st, S1);
  u.st2 = shift(c.st2, S1);
  u.si = shift(c.si, SI1);
  u.si2 = shift(c.si2, SI1);
  u.cp = shift(c.cp, 1);
  u.cp2 = shift(c.cp2, 1);
  u.f = [&](int) { return f_at("kc_"); };
  const std::string d = std::to_string(sh.d);
  if (c.out) u.out = [&](const std::string& m) { return c.out("((" + m + ") * " + d + " + kc_)"); };
  piece(Reducer(red, s1, scheme), u);
  if (!loop_pragma.empty()) c.line(loop_pragma);
  c.line("for (int kc_ = 0; kc_ < " + d + "; ++kc_) {");
  c.text += u.text;
  c.line("}");
}

namespace {
// Whether a node of `roots`' DAG satisfies `pred`.
template <class P>
bool any_node(const Graph& g, const std::vector<int>& roots, const P& pred) {
  std::vector<char> seen(g.size(), 0);
  std::vector<int> stack = roots;
  while (!stack.empty()) {
    int id = stack.back();
    stack.pop_back();
    if (seen[id]) continue;
    seen[id] = 1;
    if (pred(g[id])) return true;
    for (int a : g[id].args) stack.push_back(a);
  }
  return false;
}
}  // namespace

bool has_wide_nodes(const Graph& g, const std::vector<int>& roots, int loop_dim) {
  return any_node(g, roots, [loop_dim](const Node& n) { return n.dim > loop_dim; });
}

bool formula_has_half2(const Graph& g, const std::vector<int>& roots) {
  return !any_node(g, roots, [](const Node& n) { return n.kind == NodeKind::Call && !op_info(n.op).half2; });
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

Formula with_uniform_factors_first(const Formula& f) {
  Formula out = f;
  Graph& g = out.g;
  const int n0 = g.size();
  const std::vector<char> inner = depends_on(g, f.inner_cat());
  const int mult = find_op("Mult");
  // uses of each node from the roots (a product used twice keeps its node: flattening it would
  // compute it twice)
  std::vector<int> roots = {f.root};
  if (f.weight >= 0) roots.push_back(f.weight);
  std::vector<int> uses = parent_counts(g, roots);
  for (int r : roots) ++uses[r];
  auto scalar_product = [&](int id) {
    const Node& n = g[id];
    return n.kind == NodeKind::Call && n.op == mult && g[n.args[0]].dim == 1 && g[n.args[1]].dim == 1;
  };
  // (a product used once inside another is flattened with it, not on its own: linear time)
  std::vector<char> absorbed(n0, 0);
  for (int id = 0; id < n0; ++id)
    if (uses[id] > 0 && scalar_product(id))
      for (int a : g[id].args) absorbed[a] = absorbed[a] || (scalar_product(a) && uses[a] == 1);
  // Nodes in id order (a node's arguments come before it), so no recursion: formulas may be
  // deep (Parser.LongFlatChainsNeedNoStack). Only the nodes the roots use.
  std::vector<int> done(n0, -1);
  for (int id = 0; id < n0; ++id) {
    if (uses[id] == 0) continue;
    int result = id;
    if (g[id].kind == NodeKind::Call) {
      bool rewritten = false;
      if (scalar_product(id) && inner[id] && !absorbed[id]) {
        // the product's factors, through the products used once; the multiplies a pair it costs
        std::vector<int> factors, stack = {id};
        int pair_mults = 0;
        while (!stack.empty()) {
          const int p = stack.back();
          stack.pop_back();
          if (p == id || (scalar_product(p) && uses[p] == 1)) {
            pair_mults += inner[p] ? 1 : 0;
            stack.push_back(g[p].args[1]);
            stack.push_back(g[p].args[0]);
          } else {
            factors.push_back(p);
          }
        }
        std::vector<int> uniform, pairwise;
        for (int x : factors) (inner[x] ? pairwise : uniform).push_back(done[x]);
        if (!uniform.empty() && static_cast<int>(pairwise.size()) < pair_mults) {
          auto product = [&](const std::vector<int>& xs) {
            int p = xs[0];
            for (size_t k = 1; k < xs.size(); ++k) p = g.call(mult, {p, xs[k]});
            return p;
          };
          result = g.call(mult, {product(uniform), product(pairwise)});
          rewritten = true;
        }
      }
      if (!rewritten) {
        std::vector<int> args = g[id].args;
        bool changed = false;
        for (int& a : args) {
          changed = changed || done[a] != a;
          a = done[a];
        }
        if (changed) result = g.call(g[id].op, args, g[id].params);
      }
    }
    done[id] = result;
  }
  out.root = done[f.root];
  if (f.weight >= 0) out.weight = done[f.weight];
  return out;
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

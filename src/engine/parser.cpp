// A recursive-descent parser for the formula language (whitelist grammar: unknown names are
// errors, nothing is evaluated). Precedence, lowest first, as KeOps's Python-based syntax:
//   a | b          scalar product (only inside parentheses in practice)
//   a + b, a - b
//   a * b, a / b
//   -a, +a
//   a ** b, a ^ b  (right-associative; integer b gives Pow, 0.5 Sqrt, -0.5 Rsqrt, else Powf)
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>

#include "errors.h"
#include "autodiff.h"
#include "codegen.h"
#include "formula.h"
#include "ops.h"

namespace rkeops {
namespace {

enum class Tok { Ident, Int, Num, Sym, End };

struct Token {
  Tok kind;
  std::string text;
  size_t pos;   // byte offset in the source
};

// Error with the source line and a caret under the 1-based column.
[[noreturn]] void fail(const std::string& what, const std::string& src, size_t pos,
                       const std::string& msg, const std::string& kind = "formula") {
  std::string caret(pos, ' ');
  throw UserError(kind, msg + " at column " + std::to_string(pos + 1) + " of " + what + ":\n  " +
                            src + "\n  " + caret + "^");
}

std::vector<Token> lex(const std::string& s, const std::string& what) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (std::isspace(c)) { ++i; continue; }
    size_t start = i;
    if (std::isalpha(c) || c == '_') {
      while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_' || s[i] == '.')) ++i;
      out.push_back({Tok::Ident, s.substr(start, i - start), start});
    } else if (std::isdigit(c) || (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      bool real = false;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      if (i < s.size() && s[i] == '.') { real = true; ++i; while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i; }
      if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        size_t k = i + 1;
        if (k < s.size() && (s[k] == '+' || s[k] == '-')) ++k;
        if (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k]))) {
          real = true;
          i = k;
          while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
        }
      }
      out.push_back({real ? Tok::Num : Tok::Int, s.substr(start, i - start), start});
    } else if (c == '*' && i + 1 < s.size() && s[i + 1] == '*') {
      out.push_back({Tok::Sym, "**", start});
      i += 2;
    } else if (std::string("()+-*/^|,=").find(static_cast<char>(c)) != std::string::npos) {
      out.push_back({Tok::Sym, std::string(1, static_cast<char>(c)), start});
      ++i;
    } else {
      fail(what, s, start, std::string("unexpected character '") + static_cast<char>(c) + "'");
    }
  }
  out.push_back({Tok::End, "", s.size()});
  return out;
}

struct Alias { int cat, pos, dim; size_t src_index; };

class Parser {
 public:
  Parser(Formula& f, const std::string& src, std::map<std::string, Alias> aliases)
      : f_(f), g_(f.g), src_(src), toks_(lex(src, "the formula")), aliases_(std::move(aliases)) {}

  void parse_top() {
    const Token& t = peek();
    if (t.kind != Tok::Ident || t.text.size() < 11 ||
        t.text.compare(t.text.size() - 10, 10, "_Reduction") != 0)
      error(t, "the formula must be a reduction such as Sum_Reduction(F, 1)");
    std::string name = t.text.substr(0, t.text.size() - 10);
    int r = find_reduction(name);
    if (r < 0) error(t, "unknown reduction '" + t.text + "'");
    next();
    expect("(");
    f_.red = r;
    const ReductionInfo& info = reduction_info(r);
    size_t root_start = peek().pos;
    f_.root = expr();
    f_.root_text = src_.substr(root_start, peek().pos - root_start);
    expect(",");
    if (info.extra == Extra::K) {
      f_.shape.K = int_literal("K");
      if (f_.shape.K < 1) error(prev(), "K must be at least 1");
      expect(",");
      f_.axis = axis();
    } else if (info.extra == Extra::Weight) {
      // Both orders are accepted: (F, axis, weight) as keopscore, and (F, weight, axis).
      if (peek().kind == Tok::Int && (peek(1).text == ")" || peek(1).text == ",") &&
          (peek(1).text == ",")) {
        f_.axis = axis();
        expect(",");
        f_.weight = expr();
      } else {
        f_.weight = expr();
        expect(",");
        f_.axis = axis();
      }
    } else {
      f_.axis = axis();
    }
    expect(")");
    if (peek().kind != Tok::End) error(peek(), "unexpected text after the reduction");
    f_.shape.d = g_[f_.root].dim;
    f_.shape.dw = f_.weight >= 0 ? g_[f_.weight].dim : 0;
    if (info.check && std::string(info.check) == "d1" && f_.shape.d != 1)
      throw UserError("dimension", t.text + " needs a formula of dimension 1, got dimension " +
                                       std::to_string(f_.shape.d) + " for " + g_.print(f_.root));
  }

 private:
  const Token& peek(int k = 0) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  const Token& prev() const { return toks_[i_ ? i_ - 1 : 0]; }
  const Token& next() { return toks_[i_ < toks_.size() - 1 ? i_++ : i_]; }
  bool accept(const char* sym) {
    if (peek().kind == Tok::Sym && peek().text == sym) { next(); return true; }
    return false;
  }
  [[noreturn]] void error(const Token& t, const std::string& msg, const std::string& kind = "formula") {
    fail("the formula", src_, t.pos, msg, kind);
  }
  void expect(const char* sym) {
    if (!accept(sym)) {
      const Token& t = peek();
      error(t, std::string("expected '") + sym + "' but found " +
                   (t.kind == Tok::End ? std::string("the end of the formula") : "'" + t.text + "'"));
    }
  }
  int int_literal(const char* what) {
    bool neg = accept("-");
    const Token& t = peek();
    if (t.kind != Tok::Int) error(t, std::string("expected an integer (") + what + ")");
    next();
    if (t.text.size() > 9) error(t, std::string("integer too large (") + what + ")");
    int v = std::atoi(t.text.c_str());
    return neg ? -v : v;
  }
  int axis() {
    const Token& t = peek();
    int a = int_literal("the reduction axis, 0 or 1");
    if (a != 0 && a != 1) error(t, "the reduction axis must be 0 (reduce over i) or 1 (reduce over j)");
    return a;
  }
  // Wraps graph construction so dimension errors point at the operation in the source.
  template <class Fn>
  int build(const Token& at, Fn fn) {
    try {
      return fn();
    } catch (const UserError& e) {
      if (e.kind != "dimension") throw;
      fail("the formula", src_, at.pos, e.what(), "dimension");
    }
  }

  int expr() {
    // Deeply nested input would otherwise exhaust the stack.
    struct Depth { int& d; explicit Depth(int& x) : d(++x) {} ~Depth() { --d; } } guard(depth_);
    if (depth_ > 256) error(peek(), "the formula is nested too deeply");
    int a = additive();
    while (peek().kind == Tok::Sym && peek().text == "|") {
      const Token& t = next();
      int b = additive();
      a = build(t, [&] { return g_.call("Scalprod", {a, b}); });
    }
    return a;
  }
  int additive() {
    int a = multiplicative();
    while (peek().kind == Tok::Sym && (peek().text == "+" || peek().text == "-")) {
      const Token& t = next();
      int b = multiplicative();
      a = build(t, [&] { return g_.call(t.text == "+" ? "Add" : "Subtract", {a, b}); });
    }
    return a;
  }
  int multiplicative() {
    int a = unary();
    while (peek().kind == Tok::Sym && (peek().text == "*" || peek().text == "/")) {
      const Token& t = next();
      int b = unary();
      a = build(t, [&] { return g_.call(t.text == "*" ? "Mult" : "Divide", {a, b}); });
    }
    return a;
  }
  int unary() {
    struct Depth { int& d; explicit Depth(int& x) : d(++x) {} ~Depth() { --d; } } guard(depth_);
    if (depth_ > 256) error(peek(), "the formula is nested too deeply");
    if (accept("+")) return unary();
    if (peek().kind == Tok::Sym && peek().text == "-") {
      const Token& t = next();
      int a = unary();
      const Node& n = g_[a];
      if (n.kind == NodeKind::Const) return g_.constant(-n.value, n.is_int);
      return build(t, [&] { return g_.call("Minus", {a}); });
    }
    return power();
  }
  int power() {
    int a = primary();
    if (peek().kind == Tok::Sym && (peek().text == "**" || peek().text == "^")) {
      const Token& t = next();
      int b = unary();
      const Node& e = g_[b];
      return build(t, [&] {
        if (e.kind == NodeKind::Const && e.is_int) {
          if (e.value == 2) return g_.call("Square", {a});
          if (std::fabs(e.value) > 1e6) error(t, "integer exponent too large");
          return g_.call("Pow", {a}, {static_cast<int>(e.value)});
        }
        if (e.kind == NodeKind::Const && e.value == 0.5) return g_.call("Sqrt", {a});
        if (e.kind == NodeKind::Const && e.value == -0.5) return g_.call("Rsqrt", {a});
        return g_.call("Powf", {a, b});
      });
    }
    return a;
  }

  int primary() {
    const Token& t = peek();
    if (t.kind == Tok::Int || t.kind == Tok::Num) {
      next();
      double v = std::strtod(t.text.c_str(), nullptr);
      if (!std::isfinite(v)) error(t, "number out of range");
      return g_.constant(v, t.kind == Tok::Int && v < 1e15);
    }
    if (accept("(")) {
      int a = expr();
      expect(")");
      return a;
    }
    if (t.kind != Tok::Ident) {
      if (t.kind == Tok::End) error(t, "unexpected end of the formula");
      error(t, "unexpected '" + t.text + "'");
    }
    next();
    if (!(peek().kind == Tok::Sym && peek().text == "(")) {
      auto it = aliases_.find(t.text);
      if (it == aliases_.end()) {
        std::string known;
        for (auto& kv : aliases_) known += (known.empty() ? "" : ", ") + kv.first;
        error(t, "undeclared variable '" + t.text + "'" +
                     (known.empty() ? std::string(" (no variable is declared in args)")
                                    : " (declared: " + known + ")"));
      }
      return g_.var(it->second.cat, it->second.pos, it->second.dim);
    }
    return call(t);
  }

  int variable(const Token& t, int cat) {
    int pos = int_literal("the variable position");
    expect(",");
    int dim = int_literal("the variable dimension");
    if (cat < 0) {
      expect(",");
      cat = int_literal("the variable category: 0 (i), 1 (j) or 2 (parameter)");
      if (cat < 0 || cat > 2) error(prev(), "the variable category must be 0 (i), 1 (j) or 2 (parameter)");
    }
    expect(")");
    if (pos < 0 || pos > 10000) error(t, "variable position out of range");
    if (dim < 1 || dim > 100000) error(t, "variable dimension must be between 1 and 100000");
    return g_.var(cat, pos, dim);
  }

  int call(const Token& t) {
    expect("(");
    const std::string& name = t.text;
    if (name == "Var") return variable(t, -1);
    if (name == "Vi") return variable(t, CAT_I);
    if (name == "Vj") return variable(t, CAT_J);
    if (name == "Pm") return variable(t, CAT_P);
    if (name == "IntCst" || name == "IntInv") {
      int n = int_literal("an integer");
      expect(")");
      if (name == "IntInv" && n == 0) error(t, "IntInv(0) divides by zero");
      return name == "IntCst" ? g_.constant(n, true) : g_.constant(1.0 / n, false);
    }
    if (name == "Grad" || name == "Diff" || name == "GradFromPos" || name == "Laplacian" ||
        name == "Divergence" || name == "GradMatrix")
      return derivative(t);
    int op = find_op(name);
    if (op < 0) {
      if (find_reduction(name.size() > 10 ? name.substr(0, name.size() - 10) : "") >= 0)
        error(t, "a reduction can only be the outermost operation of the formula");
      error(t, "unknown operation '" + name + "'");
    }
    const OpInfo& info = op_info(op);
    std::vector<int> args, params;
    for (const char* s = info.sig; *s; ++s) {
      if (s != info.sig) expect(",");
      if (*s == 'f') args.push_back(expr());
      else params.push_back(int_literal("an integer parameter"));
    }
    if (!accept(")")) {
      error(peek(), name + " takes " + std::to_string(std::string(info.sig).size()) + " argument(s): " +
                        signature_text(info));
    }
    return build(t, [&] { return g_.call(op, args, params); });
  }

  // Grad(F, v, g), GradFromPos(F, pos, g), Diff(F, v, dv), Laplacian(F, v), Divergence(F, v).
  int derivative(const Token& t) {
    const std::string& name = t.text;
    int f = expr();
    expect(",");
    int v = -1;
    if (name == "GradFromPos") {
      const Token& at = peek();
      int pos = int_literal("the position of the variable");
      for (int id = 0; id <= f && v < 0; ++id)
        if (g_[id].kind == NodeKind::Var && g_[id].pos == pos && depends(f, id)) v = id;
      if (v < 0) error(at, "the formula does not use a variable at position " + std::to_string(pos));
    } else {
      const Token& at = peek();
      v = expr();
      if (g_[v].kind != NodeKind::Var) error(at, name + " differentiates with respect to a variable");
    }
    int extra = -1;
    if (name == "Grad" || name == "GradFromPos" || name == "Diff") {
      expect(",");
      extra = expr();
    }
    expect(")");
    return build(t, [&] {
      if (name == "GradMatrix") {   // [dF_k/dv for k = 0..dim F - 1], row-major dim F x dim v
        int one = g_.constant(1, true), m = -1;
        for (int k = 0; k < g_[f].dim; ++k) {
          int row = gradient(g_, f, v, g_.call("ElemT", {one}, {g_[f].dim, k}));
          m = m < 0 ? row : g_.call("Concat", {m, row});
        }
        return m;
      }
      if (name == "Laplacian") return laplacian(g_, f, v);
      if (name == "Divergence") return divergence(g_, f, v);
      if (name == "Diff") {
        if (g_[extra].dim != g_[v].dim)
          throw UserError("dimension", "the direction of Diff must have the dimension of the variable (" +
                                           std::to_string(g_[v].dim) + "), got " + std::to_string(g_[extra].dim));
        return directional(g_, f, v, extra);
      }
      return gradient(g_, f, v, extra);
    });
  }
  // Whether node `id` is reachable from `root`.
  bool depends(int root, int id) const {
    if (root == id) return true;
    for (int a : g_[root].args)
      if (a >= id && depends(a, id)) return true;
    return false;
  }

  static std::string signature_text(const OpInfo& info) {
    std::string s = std::string(info.name) + "(";
    int nf = 0, ni = 0;
    for (const char* c = info.sig; *c; ++c) {
      if (c != info.sig) s += ", ";
      s += (*c == 'f') ? "formula" + std::to_string(++nf) : "integer" + std::to_string(++ni);
    }
    return s + ")";
  }

  Formula& f_;
  Graph& g_;
  const std::string& src_;
  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;
  std::map<std::string, Alias> aliases_;
};

// "x=Vi(3)", "x = Vj(1, 3)", "p=Pm(2)", "x=Var(0,3,0)"; implicit position = index in args.
Alias parse_alias(const std::string& a, size_t index, std::string* name) {
  std::string what = "alias " + std::to_string(index + 1) + " in args";
  std::vector<Token> t = lex(a, what);
  auto bad = [&](size_t k, const std::string& msg) -> Alias {
    fail(what, a, t[std::min(k, t.size() - 1)].pos, msg);
  };
  if (t.size() < 2 || t[0].kind != Tok::Ident || t[1].text != "=")
    return bad(0, "expected name=Vi(dim), name=Vj(dim) or name=Pm(dim)");
  *name = t[0].text;
  if (find_op(*name) >= 0 || *name == "Var" || *name == "Vi" || *name == "Vj" || *name == "Pm" ||
      *name == "IntCst" || *name == "IntInv" || *name == "Grad" || *name == "Diff" ||
      *name == "GradFromPos" || *name == "Laplacian" || *name == "Divergence" || *name == "GradMatrix")
    return bad(0, "the name '" + *name + "' is reserved for an operation");
  if (t.size() < 3 || t[2].kind != Tok::Ident) return bad(2, "expected Vi, Vj, Pm or Var");
  std::string kind = t[2].text;
  int cat = kind == "Vi" ? CAT_I : kind == "Vj" ? CAT_J : kind == "Pm" ? CAT_P : kind == "Var" ? -1 : -2;
  if (cat == -2) return bad(2, "expected Vi, Vj, Pm or Var, found '" + kind + "'");
  if (t.size() < 4 || t[3].text != "(") return bad(3, "expected '('");
  std::vector<int> nums;
  size_t k = 4;
  while (true) {
    if (t[k].kind != Tok::Int) return bad(k, "expected a non-negative integer");
    if (t[k].text.size() > 9) return bad(k, "integer too large");
    nums.push_back(std::atoi(t[k].text.c_str()));
    ++k;
    if (t[k].text == ",") { ++k; continue; }
    if (t[k].text == ")") { ++k; break; }
    return bad(k, "expected ',' or ')'");
  }
  if (t[k].kind != Tok::End) return bad(k, "unexpected text after the alias");
  Alias al{cat, static_cast<int>(index), 0, index};
  if (cat == -1) {
    if (nums.size() != 3) return bad(3, "Var takes (position, dimension, category)");
    al = {nums[2], nums[0], nums[1], index};
    if (al.cat > 2) return bad(3, "the category must be 0 (i), 1 (j) or 2 (parameter)");
  } else if (nums.size() == 1) {
    al.dim = nums[0];
  } else if (nums.size() == 2) {
    al.pos = nums[0];
    al.dim = nums[1];
  } else {
    return bad(3, kind + " takes (dimension) or (position, dimension)");
  }
  if (al.dim < 1 || al.dim > 100000) return bad(3, "the dimension must be between 1 and 100000");
  if (al.pos > 10000) return bad(3, "the position is out of range");
  return al;
}

}  // namespace

Formula parse_formula(const std::string& formula, const std::vector<std::string>& aliases) {
  Formula f;
  f.text = formula;
  f.aliases = aliases;
  if (formula.size() > 100000) throw UserError("formula", "the formula is too long");
  std::map<std::string, Alias> table;
  for (size_t k = 0; k < aliases.size(); ++k) {
    std::string name;
    Alias al = parse_alias(aliases[k], k, &name);
    if (table.count(name))
      throw UserError("formula", "the name '" + name + "' is declared twice in args");
    table[name] = al;
  }
  for (auto& kv : table) f.g.set_var_name(kv.second.cat, kv.second.pos, kv.second.dim, kv.first);
  Parser p(f, formula, table);
  p.parse_top();

  // Inputs by position: from the aliases and from Var(...) written in the formula.
  int n = 0;
  for (auto& kv : table) n = std::max(n, kv.second.pos + 1);
  std::vector<int> roots = {f.root};
  if (f.weight >= 0) roots.push_back(f.weight);
  std::vector<VarUse> used = collect_vars(f.g, roots);
  for (auto& u : used) n = std::max(n, u.pos + 1);
  f.args.assign(n, ArgInfo{});
  for (auto& kv : table) {
    ArgInfo& a = f.args[kv.second.pos];
    if (a.cat >= 0)
      throw UserError("formula", "position " + std::to_string(kv.second.pos) +
                                     " is declared twice in args ('" + a.name + "' and '" + kv.first + "')");
    a = {kv.first, kv.second.cat, kv.second.dim};
  }
  for (auto& u : used) {
    ArgInfo& a = f.args[u.pos];
    if (a.cat < 0) {
      a = {"", u.cat, u.dim};
    } else if (a.cat != u.cat || a.dim != u.dim) {
      static const char* cats[] = {"Vi", "Vj", "Pm"};
      throw UserError("dimension", "the variable at position " + std::to_string(u.pos) +
                                       (a.name.empty() ? "" : " ('" + a.name + "')") + " is used as " +
                                       cats[u.cat] + "(" + std::to_string(u.dim) + ") but declared as " +
                                       cats[a.cat] + "(" + std::to_string(a.dim) + ")");
    }
  }
  for (int k = 0; k < n; ++k)
    if (f.args[k].cat < 0)
      throw UserError("formula", "no variable is declared at position " + std::to_string(k) +
                                     " (positions must be 0, 1, ..., n-1)");
  f.out_dim = f.reduction().out_dim(f.shape);
  return f;
}

std::string Formula::canonical() const {
  std::string s = std::string(reduction().name) + "_Reduction(" + g.print(root);
  if (reduction().extra == Extra::K) s += "," + std::to_string(shape.K);
  s += "," + std::to_string(axis);
  if (weight >= 0) s += "," + g.print(weight);
  return s + ")";
}

}  // namespace rkeops

// A recursive-descent parser for the formula language (whitelist grammar: unknown names are
// errors, nothing is evaluated). Precedence, lowest first, as KeOps's Python-based syntax:
//   a | b          scalar product (only inside parentheses in practice)
//   a < b, a <= b, a > b, a >= b, a == b, a != b
//                  comparisons, element-wise 1/0 (LessThan, LessOrEqual, Equal, NotEqual with
//                  the operands swapped for > and >=); below + and - as in R, and, as in R,
//                  they do not chain: a < b < c is an error
//   a + b, a - b
//   a * b, a / b
//   -a, +a
//   a ** b, a ^ b  (right-associative; integer b gives Pow, 0.5 Sqrt, -0.5 Rsqrt, else Powf)
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>

#include "autodiff.h"
#include "errors.h"
#include "formula.h"
#include "ops.h"
#include "ops_tensor.h"
#include "simplify.h"

namespace rkeops {
namespace {

enum class Tok { Ident, Int, Num, Sym, End };

struct Token {
  Tok kind;
  std::string text;
  size_t pos;  // byte offset in the source
};

// Levels of nesting the parser accepts. The parser recurses once per level (about 1.5 KB of
// stack each, measured at -O2); later passes walk the DAG with loops, not recursion, so
// what parses cannot exhaust the stack later (R calls the engine on its main thread, 8 MB).
constexpr int kMaxNesting = 1000;

// Error with the source line and a caret under the 1-based column. A long formula is shown
// as an excerpt around the column.
[[noreturn]] void fail(const std::string& what, const std::string& src, size_t pos, const std::string& msg,
                       const std::string& kind = "formula") {
  constexpr size_t kWidth = 200, kBefore = 100;
  std::string shown = src;
  size_t at = pos;
  if (src.size() > kWidth) {
    size_t from = pos > kBefore ? pos - kBefore : 0;
    shown = (from > 0 ? "..." : "") + src.substr(from, kWidth) + (from + kWidth < src.size() ? "..." : "");
    at = pos - from + (from > 0 ? 3 : 0);
  }
  std::string caret(at, ' ');
  throw UserError(
      kind, msg + " at column " + std::to_string(pos + 1) + " of " + what + ":\n  " + shown + "\n  " + caret + "^");
}

std::vector<Token> lex(const std::string& s, const std::string& what) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (std::isspace(c)) {
      ++i;
      continue;
    }
    size_t start = i;
    if (std::isalpha(c) || c == '_') {
      while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_' || s[i] == '.')) ++i;
      out.push_back({Tok::Ident, s.substr(start, i - start), start});
    } else if (std::isdigit(c) ||
               (c == '.' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      bool real = false;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      if (i < s.size() && s[i] == '.') {
        real = true;
        ++i;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      }
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
    } else if (i + 1 < s.size() && s[i + 1] == '=' && (c == '<' || c == '>' || c == '=' || c == '!')) {
      out.push_back({Tok::Sym, s.substr(i, 2), start});  // <= >= == !=
      i += 2;
    } else if (std::string("()+-*/^|,=<>[]").find(static_cast<char>(c)) != std::string::npos) {
      out.push_back({Tok::Sym, std::string(1, static_cast<char>(c)), start});
      ++i;
    } else {
      fail(what, s, start, std::string("unexpected character '") + static_cast<char>(c) + "'");
    }
  }
  out.push_back({Tok::End, "", s.size()});
  return out;
}

struct Alias {
  int cat, pos, dim;
  size_t src_index;
};

// Parses formulas (parse_top) and, with `bound` set, the expressions of derivative templates
// and rewrite rules (names bound to existing nodes; nodes built through the rewrite rules).
class Parser {
 public:
  Parser(Formula& f, const std::string& src, std::map<std::string, Alias> aliases)
      : f_(&f), g_(f.g), src_(src), toks_(lex(src, "the formula")), aliases_(std::move(aliases)) {}
  Parser(Graph& g, const std::string& src, const std::map<std::string, int>* bound, bool simplify)
      : g_(g), src_(src), toks_(lex(src, "the expression")), bound_(bound), simplify_(simplify) {}

  int parse_expression() {
    int a = expr();
    if (peek().kind != Tok::End) error(peek(), "unexpected text after the expression");
    return a;
  }

  void parse_top() {
    const Token& t = peek();
    if (t.kind != Tok::Ident || t.text.size() < 11 || t.text.compare(t.text.size() - 10, 10, "_Reduction") != 0)
      error(t, "the formula must be a reduction such as Sum_Reduction(F, 1)");
    std::string name = t.text.substr(0, t.text.size() - 10);
    int r = find_reduction(name);
    if (r < 0) error(t, "unknown reduction '" + t.text + "'");
    next();
    expect("(");
    f_->red = r;
    const ReductionInfo& info = reduction_info(r);
    const bool dim_form = info.extra == Extra::Dim && (peek().kind == Tok::Int || peek().text == "-") &&
                          peek(peek().kind == Tok::Int ? 1 : 2).text == "," &&
                          (peek().kind == Tok::Int || peek(1).kind == Tok::Int);
    if (dim_form) {  // Zero_Reduction(dim, axis), as KeOps writes it: F is Zero(dim)
      const Token& at = peek();
      int dim = int_literal("the dimension");
      if (dim < 1 || dim > 100000) error(at, "the dimension must be between 1 and 100000");
      f_->root = mk("Zero", {}, {dim});
      f_->root_text = "Zero(" + std::to_string(dim) + ")";
    } else {
      f_->root = expr_with_text(&f_->root_text);
    }
    expect(",");
    if (info.extra == Extra::K) {
      f_->shape.K = int_literal("K");
      if (f_->shape.K < 1) error(prev(), "K must be at least 1");
      if (1LL * f_->shape.K * g_[f_->root].dim > 100000)  // K x dim F values per result row
        error(prev(), "K x (dimension of F) must be at most 100000");
      expect(",");
      f_->axis = axis();
    } else if (info.extra == Extra::Weight) {
      // Both orders are accepted: (F, axis, weight) as keopscore, and (F, weight, axis).
      if (peek().kind == Tok::Int && peek(1).text == ",") {
        f_->axis = axis();
        expect(",");
        f_->weight = expr_with_text(&f_->weight_text);
      } else {
        f_->weight = expr_with_text(&f_->weight_text);
        expect(",");
        f_->axis = axis();
      }
    } else {
      f_->axis = axis();
    }
    expect(")");
    if (peek().kind != Tok::End) error(peek(), "unexpected text after the reduction");
    f_->shape.d = g_[f_->root].dim;
    f_->shape.dw = f_->weight >= 0 ? g_[f_->weight].dim : 0;
    if (info.check && std::string(info.check) == "d1" && f_->shape.d != 1)
      throw UserError("dimension", t.text + " needs a formula of dimension 1, got dimension " +
                                       std::to_string(f_->shape.d) + " for " + g_.print_named(f_->root));
  }

 private:
  const Token& peek(int k = 0) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  const Token& prev() const { return toks_[i_ ? i_ - 1 : 0]; }
  const Token& next() { return toks_[i_ < toks_.size() - 1 ? i_++ : i_]; }
  bool accept(const char* sym) {
    if (peek().kind == Tok::Sym && peek().text == sym) {
      next();
      return true;
    }
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
    int v = int_term(what);
    // Templates compute integer parameters from others: "Pow(a, #0 - 1)".
    while (bound_ && peek().kind == Tok::Sym && (peek().text == "+" || peek().text == "-")) {
      bool minus = next().text == "-";
      int w = int_term(what);
      v = minus ? v - w : v + w;
    }
    return v;
  }
  // Ind(a, b, ...), or [a, b, ...] as PyKeOps writes it: a tuple of integers.
  std::vector<int> tuple_values() {
    const Token& t = next();
    const bool list = t.kind == Tok::Sym && t.text == "[";
    if (!list && (t.kind != Tok::Ident || t.text != "Ind" || !accept("(")))
      error(t, "expected a tuple Ind(...) or [...] of integers");
    const char* close = list ? "]" : ")";
    std::vector<int> v;
    if (!accept(close)) {
      do {
        v.push_back(int_literal("an entry of a tuple"));
        if (v.size() > 16) error(peek(), "a tuple Ind(...) or [...] holds at most 16 integers");
      } while (accept(","));
      expect(close);
    }
    return v;
  }
  // A tuple parameter, stored in a node's parameters as its length then its values.
  void tuple(std::vector<int>* params) {
    std::vector<int> v = tuple_values();
    params->push_back(static_cast<int>(v.size()));
    params->insert(params->end(), v.begin(), v.end());
  }
  int int_term(const char* what) {
    bool neg = accept("-");
    const Token& t = peek();
    if (t.kind != Tok::Int) error(t, std::string("expected an integer (") + what + ")");
    next();
    if (t.text.size() > 9) error(t, std::string("integer too large (") + what + ")");
    int v = std::atoi(t.text.c_str());
    return neg ? -v : v;
  }
  // Every node of the formula is built here.
  int mk(int op, std::vector<int> args, std::vector<int> params = {}) {
    return simplify_ ? simplified_call(g_, op, std::move(args), std::move(params))
                     : g_.call(op, std::move(args), std::move(params));
  }
  int mk(const char* name, std::vector<int> args, std::vector<int> params = {}) {
    int op = find_op(name);
    RK_ASSERT(op >= 0, std::string("unknown operation ") + name);
    return mk(op, std::move(args), std::move(params));
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

  // An expression, and its source text as written.
  int expr_with_text(std::string* text) {
    size_t start = peek().pos;
    int id = expr();
    *text = src_.substr(start, peek().pos - start);
    return id;
  }
  int expr() {
    int a = additive();
    if (is_comparison(peek())) a = comparison(a);
    while (peek().kind == Tok::Sym && peek().text == "|") {
      const Token& t = next();
      int b = additive();
      if (is_comparison(peek())) b = comparison(b);
      a = build(t, [&] { return mk("Scalprod", {a, b}); });
    }
    return a;
  }
  // a OP b after the operand a, OP one of < <= > >= == !=; at most one, as in R (a < b < c is
  // an error). Not inlined: expr()'s frame, one per level of nesting, stays as small as before.
  [[gnu::noinline]] int comparison(int a) {
    const Token& t = next();
    int b = additive();
    if (is_comparison(peek()))
      error(peek(), "comparisons do not chain: write (a " + t.text + " b) * (b " + peek().text + " c)");
    const std::string& op = t.text;
    return build(t, [&] {
      if (op == "<") return mk("LessThan", {a, b});
      if (op == "<=") return mk("LessOrEqual", {a, b});
      if (op == ">") return mk("LessThan", {b, a});   // a > b is b < a
      if (op == ">=") return mk("LessOrEqual", {b, a});
      return mk(op == "==" ? "Equal" : "NotEqual", {a, b});
    });
  }
  static bool is_comparison(const Token& t) {
    return t.kind == Tok::Sym && (t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">=" ||
                                  t.text == "==" || t.text == "!=");
  }
  int additive() {
    int a = multiplicative();
    while (peek().kind == Tok::Sym && (peek().text == "+" || peek().text == "-")) {
      const Token& t = next();
      int b = multiplicative();
      a = build(t, [&] { return mk(t.text == "+" ? "Add" : "Subtract", {a, b}); });
    }
    return a;
  }
  int multiplicative() {
    int a = unary();
    while (peek().kind == Tok::Sym && (peek().text == "*" || peek().text == "/")) {
      const Token& t = next();
      int b = unary();
      a = build(t, [&] { return mk(t.text == "*" ? "Mult" : "Divide", {a, b}); });
    }
    return a;
  }
  int unary() {
    // Every recursion of the parser passes here once per level of nesting (parentheses,
    // function calls, signs, exponents); sums and products of many terms are loops, not levels.
    struct Depth {
      int& d;
      explicit Depth(int& x) : d(++x) {}
      ~Depth() { --d; }
    } guard(depth_);
    if (depth_ > kMaxNesting + 1)  // the outermost operand is at level 0, the x of Exp(x) at 1
      error(peek(), "the formula is nested too deeply (more than " + std::to_string(kMaxNesting) + " levels)");
    if (accept("+")) return unary();
    if (peek().kind == Tok::Sym && peek().text == "-") {
      const Token& t = next();
      int a = unary();
      const Node& n = g_[a];
      if (n.kind == NodeKind::Const) return g_.constant(-n.value, n.is_int);
      return build(t, [&] { return mk("Minus", {a}); });
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
          if (e.value == 2) return mk("Square", {a});
          if (std::fabs(e.value) > 1e6) error(t, "integer exponent too large");
          return mk("Pow", {a}, {static_cast<int>(e.value)});
        }
        if (e.kind == NodeKind::Const && e.value == 0.5) return mk("Sqrt", {a});
        if (e.kind == NodeKind::Const && e.value == -0.5) return mk("Rsqrt", {a});
        return mk("Powf", {a, b});
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
      if (bound_) {
        auto b = bound_->find(t.text);
        if (b == bound_->end()) error(t, "unbound name '" + t.text + "'");
        return b->second;
      }
      auto it = aliases_.find(t.text);
      if (it == aliases_.end()) {
        std::string known;
        for (auto& kv : aliases_) known += (known.empty() ? "" : ", ") + kv.first;
        error(t,
              "undeclared variable '" + t.text + "'" +
                  (known.empty() ? std::string(" (no variable is declared in args)") : " (declared: " + known + ")"));
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
    if (name == "RatCst") {  // RatCst(p, q): the rational constant p/q, as KeOps
      int num = int_literal("the numerator, an integer");
      expect(",");
      const Token& at = peek();
      int den = int_literal("the denominator, an integer");
      expect(")");
      if (den == 0) error(at, "RatCst(p, 0) divides by zero");
      const double v = static_cast<double>(num) / den;
      return num % den == 0 ? g_.constant(num / den, true) : g_.constant(v, false);
    }
    if (name == "Grad" || name == "Diff" || name == "GradFromPos" || name == "Laplacian" || name == "Divergence" ||
        name == "GradMatrix")
      return derivative(t);
    if (name == "Kron") return kron(t);
    int op = find_op(name);
    if (op < 0) {
      if (find_reduction(name.size() > 10 ? name.substr(0, name.size() - 10) : "") >= 0)
        error(t, "a reduction can only be the outermost operation of the formula");
      error(t, "unknown operation '" + name + "'");
    }
    const OpInfo& info = op_info(op);
    std::vector<int> args, params;
    for (const char* s = info.sig; *s; ++s) {
      if (*s == 'o' && peek().kind == Tok::Sym && peek().text == ")") {
        params.push_back(0);
        continue;
      }
      if (s != info.sig) expect(",");
      if (*s == 'f')
        args.push_back(expr());
      else if (*s == 'i')
        params.push_back(int_literal("an integer parameter"));
      else
        tuple(&params);
    }
    if (!accept(")")) {
      error(peek(),
            name + " takes " + std::to_string(std::string(info.sig).size()) + " argument(s): " + signature_text(info));
    }
    return build(t, [&] { return mk(op, args, params); });
  }

  // Kron(a, b, Ind(shape of a), Ind(shape of b)): the Kronecker product, built as a TensorDot
  // (ops_tensor.cpp).
  int kron(const Token& t) {
    int a = expr();
    expect(",");
    int b = expr();
    expect(",");
    std::vector<int> sa = tuple_values();
    expect(",");
    std::vector<int> sb = tuple_values();
    expect(")");
    if (sa.size() != sb.size()) error(t, "Kron needs two shapes with the same number of axes");
    return build(t, [&] { return mk("TensorDot", {a, b}, kron_params(sa, sb)); });
  }

  // Grad(F, v, g), GradFromPos(F, pos, g), Diff(F, v, dv), Laplacian(F, v), Divergence(F, v),
  // GradMatrix(F, v): built by autodiff.cpp as new nodes of the graph, anywhere in a formula.
  int derivative(const Token& t) {
    const std::string& name = t.text;
    int f = expr();
    expect(",");
    int v = -1;
    if (name == "GradFromPos") {
      const Token& at = peek();
      int pos = int_literal("the position of the variable");
      std::vector<char> used = reachable(f);
      for (int id = 0; id <= f && v < 0; ++id)
        if (used[id] && g_[id].kind == NodeKind::Var && g_[id].pos == pos) v = id;
      if (v < 0) error(at, "the formula does not use a variable at position " + std::to_string(pos));
    } else {
      const Token& at = peek();
      v = expr();
      if (g_[v].kind != NodeKind::Var)
        error(at, name + " differentiates with respect to a variable (an alias name or Var(pos, dim, cat))");
    }
    int extra = -1;
    if (name == "Grad" || name == "GradFromPos" || name == "Diff") {
      expect(",");
      extra = expr();
    }
    expect(")");
    try {
      return build(t, [&] {
        if (name == "GradMatrix") return grad_matrix(g_, f, v);
        if (name == "Laplacian") return laplacian(g_, f, v);
        if (name == "Divergence") return divergence(g_, f, v);
        if (name == "Diff") return directional(g_, f, v, extra);
        return gradient(g_, f, v, extra);
      });
    } catch (const UserError& e) {
      if (e.kind != "formula") throw;
      fail("the formula", src_, t.pos, e.what());  // e.g. an operation with no derivative
    }
  }
  // Which nodes `root` depends on.
  std::vector<char> reachable(int root) const {
    std::vector<char> r(root + 1, 0);
    r[root] = 1;
    for (int id = root; id >= 0; --id)
      if (r[id])
        for (int a : g_[id].args) r[a] = 1;
    return r;
  }

  static std::string signature_text(const OpInfo& info) {
    std::string s = std::string(info.name) + "(";
    int nf = 0, ni = 0;
    for (const char* c = info.sig; *c; ++c) {
      if (c != info.sig) s += ", ";
      s += (*c == 'f')   ? "formula" + std::to_string(++nf)
           : (*c == 'i') ? "integer" + std::to_string(++ni)
           : (*c == 't') ? std::string("Ind(...)")
                         : std::string("[Ind(...)]");
    }
    return s + ")";
  }

  Formula* f_ = nullptr;
  Graph& g_;
  const std::string& src_;
  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;
  std::map<std::string, Alias> aliases_;
  const std::map<std::string, int>* bound_ = nullptr;  // template mode: names -> nodes
  bool simplify_ = false;                              // build through the rewrite rules
};

// "x=Vi(3)", "x = Vj(1, 3)", "p=Pm(2)", "x=Var(0,3,0)"; implicit position = index in args.
Alias parse_alias(const std::string& a, size_t index, std::string* name) {
  std::string what = "alias " + std::to_string(index + 1) + " in args";
  std::vector<Token> t = lex(a, what);
  auto bad = [&](size_t k, const std::string& msg) -> Alias { fail(what, a, t[std::min(k, t.size() - 1)].pos, msg); };
  if (t.size() < 2 || t[0].kind != Tok::Ident || t[1].text != "=")
    return bad(0, "expected name=Vi(dim), name=Vj(dim) or name=Pm(dim)");
  *name = t[0].text;
  if (find_op(*name) >= 0 || *name == "Var" || *name == "Vi" || *name == "Vj" || *name == "Pm" || *name == "IntCst" ||
      *name == "IntInv" || *name == "RatCst" || *name == "Grad" || *name == "Diff" || *name == "GradFromPos" || *name == "Laplacian" ||
      *name == "Divergence" || *name == "GradMatrix")
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
    if (t[k].text == ",") {
      ++k;
      continue;
    }
    if (t[k].text == ")") {
      ++k;
      break;
    }
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
    if (table.count(name)) throw UserError("formula", "the name '" + name + "' is declared twice in args");
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
      throw UserError("formula", "position " + std::to_string(kv.second.pos) + " is declared twice in args ('" +
                                     a.name + "' and '" + kv.first + "')");
    a = {kv.first, kv.second.cat, kv.second.dim};
  }
  for (auto& u : used) {
    ArgInfo& a = f.args[u.pos];
    if (a.cat < 0) {
      a = {"", u.cat, u.dim};
    } else if (a.cat != u.cat || a.dim != u.dim) {
      static const char* cats[] = {"Vi", "Vj", "Pm"};
      throw UserError("dimension", "the variable at position " + std::to_string(u.pos) +
                                       (a.name.empty() ? "" : " ('" + a.name + "')") + " is used as " + cats[u.cat] +
                                       "(" + std::to_string(u.dim) + ") but declared as " + cats[a.cat] + "(" +
                                       std::to_string(a.dim) + ")");
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

namespace {

// Replaces "#k" by params[k] and "@name" by the dimension of the bound node `name`.
std::string expand_template(const Graph& g, const std::string& text, const std::map<std::string, int>& bound,
                            const std::vector<int>& params) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    char c = text[i];
    if (c == '#' || c == '@') {
      size_t j = i + 1;
      while (j < text.size() && (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_')) ++j;
      std::string name = text.substr(i + 1, j - i - 1);
      long v;
      if (c == '#') {
        size_t k = static_cast<size_t>(std::atoi(name.c_str()));
        RK_ASSERT(!name.empty() && std::isdigit(static_cast<unsigned char>(name[0])) && k < params.size(),
                  "bad parameter reference in the template " + text);
        v = params[k];
      } else {
        auto it = bound.find(name);
        RK_ASSERT(it != bound.end(), "bad dimension reference in the template " + text);
        v = g[it->second].dim;
      }
      out += std::to_string(v);
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

// The rule-pattern language (simplify.h): the formula grammar on patterns.
class PatternParser {
 public:
  explicit PatternParser(const std::string& src) : src_(src), toks_(lex(src, "a rewrite rule")) {}
  Pattern parse() {
    Pattern p = expr();
    if (peek().kind != Tok::End) bad("unexpected text");
    return p;
  }

 private:
  const Token& peek() const { return toks_[i_]; }
  const Token& next() { return toks_[i_ < toks_.size() - 1 ? i_++ : i_]; }
  bool accept(const char* s) {
    if (peek().kind == Tok::Sym && peek().text == s) {
      next();
      return true;
    }
    return false;
  }
  [[noreturn]] void bad(const std::string& msg) {
    throw InternalError("rewrite rule '" + src_ + "': " + msg + " at column " + std::to_string(peek().pos + 1));
  }
  void expect(const char* s) {
    if (!accept(s)) bad(std::string("expected '") + s + "'");
  }
  static Pattern call(const char* op, std::vector<Pattern> args) {
    Pattern p;
    p.kind = Pattern::Call;
    p.op = find_op(op);
    p.args = std::move(args);
    return p;
  }
  Pattern expr() {
    Pattern a = additive();
    while (accept("|")) a = call("Scalprod", {a, additive()});
    return a;
  }
  Pattern additive() {
    Pattern a = multiplicative();
    while (peek().kind == Tok::Sym && (peek().text == "+" || peek().text == "-")) {
      bool plus = next().text == "+";
      a = call(plus ? "Add" : "Subtract", {a, multiplicative()});
    }
    return a;
  }
  Pattern multiplicative() {
    Pattern a = unary();
    while (peek().kind == Tok::Sym && (peek().text == "*" || peek().text == "/")) {
      bool times = next().text == "*";
      a = call(times ? "Mult" : "Divide", {a, unary()});
    }
    return a;
  }
  Pattern unary() {
    if (!accept("-")) return primary();
    Pattern a = unary();
    if (a.kind == Pattern::Number) {
      a.value = -a.value;
      return a;
    }  // as the formula parser
    return call("Minus", {a});
  }
  Pattern primary() {
    Token t = next();
    if (t.kind == Tok::Int || t.kind == Tok::Num) {
      Pattern p;
      p.kind = Pattern::Number;
      p.value = std::strtod(t.text.c_str(), nullptr);
      return p;
    }
    if (t.kind == Tok::Sym && t.text == "(") {
      Pattern p = expr();
      expect(")");
      return p;
    }
    if (t.kind != Tok::Ident) bad("unexpected '" + t.text + "'");
    if (!accept("(")) {
      Pattern p;
      p.kind = t.text[0] == 'k' ? Pattern::AnyConst : Pattern::Any;
      p.name = t.text;
      return p;
    }
    Pattern p;
    p.kind = Pattern::Call;
    p.op = find_op(t.text);
    if (p.op < 0) bad("unknown operation " + t.text);
    const char* sig = op_info(p.op).sig;
    for (const char* c = sig; *c; ++c) {
      if (c != sig) expect(",");
      if (*c == 't' || *c == 'o') bad("tuple parameters are not supported in rewrite rules");
      if (*c == 'f') {
        p.args.push_back(expr());
      } else if (peek().kind == Tok::Ident && peek().text == "_") {
        next();
        p.params.push_back(kAnyParam);
      } else {
        bool neg = accept("-");
        if (peek().kind != Tok::Int) bad("expected an integer or _");
        int v = std::atoi(next().text.c_str());
        p.params.push_back(neg ? -v : v);
      }
    }
    expect(")");
    return p;
  }
  std::string src_;
  std::vector<Token> toks_;
  size_t i_ = 0;
};

}  // namespace

int parse_expression(Graph& g, const std::string& text, const std::map<std::string, int>& bound,
                     const std::vector<int>& params) {
  std::string src = expand_template(g, text, bound, params);
  try {
    Parser p(g, src, &bound, true);
    return p.parse_expression();
  } catch (const TooLarge&) { throw; } catch (const UserError& e) {
    throw InternalError("cannot build '" + src + "' (from the template '" + text + "'): " + e.what());
  }
}

Pattern parse_pattern(const std::string& text) { return PatternParser(text).parse(); }

}  // namespace rkeops

// The operation table: one row per formula operation, holding its name, argument
// signature, dimension rule, code generation (shared by the CPU and CUDA emitters) and
// derivative.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace rkeops {

class Emitter;

// Returns the output dimension, or 0 and sets *why when the argument dimensions do not fit.
using DimRule = int (*)(const std::vector<int>& dims, const std::vector<int>& params, std::string* why);
// Emits the statements computing node `id` (see Emitter in codegen.h).
using EmitFn = void (*)(Emitter& e, int id);

// Reverse-mode derivative of an operation, written in the formula language (autodiff.cpp
// builds it). For out = Op(a, b, c, #0, #1) and the adjoint g of out (g has out's dimension),
// the template gives the adjoint of each formula argument, one expression per argument,
// separated by ';':
//   a, b, c   the arguments;  out  the operation's own value;  g  the adjoint of out;
//   #0, #1    the integer parameters;  @a, @b, @c  the dimensions of the arguments
//   (in integer positions small sums such as "#0 - 1" are allowed);
//   "0"       no contribution (zero almost everywhere).
// E.g. Divide: "g / b; -g * out / b". An adjoint of dimension D for an argument of
// dimension 1 (broadcast) is summed. Templates are built through the rewrite rules of
// simplify.cpp. When the rule depends on the argument dimensions, `pick` returns the template.
// Operations whose adjoints need computed parameters (TensorDot) build them in C++ instead:
// `build(g, id, k, go)` returns the adjoint of argument k of node id, or -1 for none.
class Graph;
using AdjointFn = int (*)(Graph& g, int id, int k, int go);
struct Deriv {
  const char* tpl = nullptr;
  const char* (*pick)(const std::vector<int>& dims) = nullptr;
  AdjointFn build = nullptr;
  constexpr Deriv() = default;
  constexpr Deriv(const char* t) : tpl(t) {}                               // NOLINT
  constexpr Deriv(const char* (*p)(const std::vector<int>&)) : pick(p) {}  // NOLINT
  constexpr Deriv(AdjointFn b) : build(b) {}                               // NOLINT
  bool defined() const { return tpl || pick || build; }
  // The template for arguments of dimensions `dims` (nullptr when there is no derivative).
  const char* get(const std::vector<int>& dims) const { return pick ? pick(dims) : tpl; }
};

// One formula operation.
struct OpInfo {
  const char* name;  // formula name, e.g. "Exp"
  // Arguments as written: 'f' a formula, 'i' an integer parameter, 't' a tuple of integers
  // written Ind(a,b,...), 'o' an optional trailing tuple (empty when left out). Parameters are
  // stored flat in the node: an integer as itself, a tuple as its length then its values.
  const char* sig;
  DimRule dim_rule;
  const char* scalar;  // element-wise template ($0.. = args, #0.. = int params), or nullptr
  EmitFn emit;         // custom emitter for vector operations (when scalar is nullptr)
  Deriv deriv = {};    // derivative (see Deriv); an operation without one cannot be differentiated
  // Float16 on the GPU: whether `scalar` / `emit` also computes on half2 pairs (T = rk_h2 of
  // prelude_cuda_half.h: arithmetic and the rk_* helpers given a half2 form there, no
  // comparisons). A formula all of whose operations have it is evaluated in half2; any other
  // in float32 (half storage either way).
  bool half2 = false;
  size_t nargs() const;
  size_t nparams() const;  // number of parameters written ('i', 't' and 'o' entries)
  bool has_tuples() const;
  // Whether a flat parameter list has the layout of `sig`.
  bool params_fit(const std::vector<int>& params) const;
};

// The parameters of a node split as written: one vector per 'i' (one value), 't' or 'o' entry.
std::vector<std::vector<int>> split_params(const OpInfo& op, const std::vector<int>& params);

// The complex-number operations live in their own table (ops_complex.cpp).
extern const OpInfo kComplexOps[];
extern const int kComplexOpCount;

int find_op(const std::string& name);  // -1 when unknown
const OpInfo& op_info(int op);
int op_count();

// The output dimension of `op` on arguments of dimensions `dims` (its dimension rule), or
// UserError("dimension") "dimension mismatch in <where()>: <why> (argument dimensions: 3, 2)":
// the one wording of a broken rule, for formulas (Graph::call) and for callers that build
// them (the R LazyTensors, through operation_dim() in engine.h).
int checked_dim(const OpInfo& op, const std::vector<int>& dims, const std::vector<int>& params,
                const std::function<std::string()>& where);

}  // namespace rkeops

// The reduction table: one row per reduction holds everything about it — the neutral state,
// accumulating one term, merging two partial states (what lets work be split over threads, GPU
// blocks, chunks and devices), finalising, the layout of its result, and its derivative. Both
// code generators and both R entry points (keops_grad(), grad()) read it; nothing else knows a
// reduction by name.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "code_options.h"

namespace rkeops {

// Sizes a reduction works with: F's dim d, K (KMin family), weight dim dw (0 if none).
struct RedShape {
  int d = 1, K = 1, dw = 0;
};

// Names of the state arrays and of the current term, as emitted code sees them.
struct RedCode {
  std::string st, si;                    // T state[], long long index-state[]
  std::string st2, si2;                  // the other state (merge)
  std::string cp, cp2;                   // Kahan compensations of st and st2 (see Reducer)
  std::function<std::string(int)> f, w;  // component k of F and of the weight
  std::string j;                         // index of the current term (long long)
  std::function<std::string(const std::string&)> out;  // output component k (finalize; k may be an expression)
  std::string ind = "      ";            // indentation
  std::string text;                      // the emitted statements
  void line(const std::string& s) { text += ind + s + "\n"; }
};

// What a reduction takes besides F and the axis: nothing, K (the KMin family), a weight formula,
// or (Dim, Zero_Reduction) F written either as a formula or, as KeOps, as its dimension.
enum class Extra { None, K, Weight, Dim };

// How the out_dim columns of a result row are laid out (R shapes results from it).
enum class Layout {
  Values,              // d values (or the reduction's own out_dim)
  ValuesIndices,       // d values, then d indices
  Ranked,              // K ranks of d values, rank-major
  RankedValuesIndices  // K x d values, then K x d indices
};

// What a reduction's derivative rule sees: the reduction `formula` (as the user wrote it) of
// F = `F` (weight `W`), differentiated with respect to the variable written `var`.
struct GradContext {
  std::string formula, F, W;  // F and W parenthesised
  RedShape shape;
  int out_dim = 0, axis = 1;
  int var_cat = 0;   // CAT_I, CAT_J or CAT_P
  std::string var;   // how the variable is written in a formula (its alias, or Var(...))
  std::string eta;   // the gradient input: indexed like the result, out_dim wide
  int out_cat = 0, in_cat = 1;
  int new_axis = 1;  // the gradient reduces over the index that is not the variable's
  std::vector<std::string> taken;  // alias names in use
  int next_pos = 0;                // the next free input position
};

// An input of the gradient formula computed at call time from the operator's own inputs:
// columns [col0, col0 + dim) of the reduction `forward` over them, or (forward empty) the
// indices 0, 1, ... of the points of category `cat`.
struct GradInput {
  std::string name;
  int cat = 0, dim = 1, pos = 0;
  std::string forward;
  int col0 = 0;
};

// The gradient of a reduction: a Sum reduction over the operator's inputs, the gradient input
// and `extra`, or zero (piecewise constant reductions).
struct GradPlan {
  bool zero = false;
  std::string formula;
  std::string eta;
  int eta_cat = 0, eta_dim = 0;
  std::vector<GradInput> extra;
};

// One reduction.
struct ReductionInfo {
  const char* name;  // "Sum" for Sum_Reduction
  Extra extra;
  bool sum_like;                       // accumulation is st[k] += f(k): may use sum schemes
  int (*state_dim)(const RedShape&);   // T entries
  int (*istate_dim)(const RedShape&);  // long long entries (indices)
  int (*out_dim)(const RedShape&);
  const char* check;  // nullptr or a requirement on d ("d1": F must be dim 1)
  Layout layout;
  void (*init)(RedCode&, const RedShape&);
  void (*acc)(RedCode&, const RedShape&);
  void (*merge)(RedCode&, const RedShape&);
  void (*final)(RedCode&, const RedShape&);
  // The derivative: fills `plan` (leaving zero for a zero gradient). Uses grad_* helpers below.
  void (*grad)(GradContext&, GradPlan&);
  // Optional: the state of a whole tile of terms f(k)/w(k) at index "jj" in [0, jn), computed
  // with vectorisable loops into state `st`, then merged (the CPU uses it; nullptr: acc each term).
  void (*tile)(RedCode&, const RedShape&) = nullptr;
  // Optional: `acc` written with constant state indices and one exponential per usual term, so
  // that a GPU thread keeps its state in registers (nullptr: `acc` is already so).
  void (*acc_regs)(RedCode&, const RedShape&) = nullptr;
};

int find_reduction(const std::string& name);  // -1 when unknown
const ReductionInfo& reduction_info(int r);
int reduction_count();
const char* layout_name(Layout l);

// A reduction's pieces with the sum scheme applied: the Kahan scheme (each of the d sums st[k]
// carries a compensation cp[k], the true sum is st[k] - cp[k]) for the Sum-like reductions when
// asked. The CPU and CUDA templates emit through it.
class Reducer {
 public:
  Reducer(const ReductionInfo& red, const RedShape& sh, SumScheme scheme);
  const ReductionInfo& info() const { return red_; }
  bool kahan() const { return kahan_; }
  // Sum-like without compensation: a template may add a tile's terms in registers first.
  bool block_sums() const { return red_.sum_like && !kahan_; }
  int comp_dim() const { return kahan_ ? sh_.d : 0; }  // compensation entries
  void init(RedCode& c) const;
  void acc(RedCode& c, bool registers) const;  // registers: prefer the table's acc_regs
  void merge(RedCode& c) const;
  void final(RedCode& c) const;

 private:
  const ReductionInfo& red_;
  RedShape sh_;
  bool kahan_;
};

// The gradient plan of reduction `red` (see GradContext); the caller fills the context.
GradPlan reduction_gradient(const ReductionInfo& red, GradContext& ctx);

}  // namespace rkeops

// The reduction table: each row holds the neutral state, accumulating one term, merging two
// partial states (what lets work be split over threads, GPU blocks and chunks) and finalising.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace rkeops {

// Sizes a reduction works with: F's dim d, K (KMin family), weight dim dw (0 if none).
struct RedShape {
  int d = 1, K = 1, dw = 0;
};

// Names of the state arrays and of the current term, as emitted code sees them.
struct RedCode {
  std::string st, si;                    // T state[], long long index-state[]
  std::string st2, si2;                  // the other state (merge)
  std::string cp, cp2;                   // Kahan compensations of st and st2 (kahan_* below)
  std::function<std::string(int)> f, w;  // component k of F and of the weight
  std::string j;                         // index of the current term (long long)
  std::function<std::string(int)> out;   // output component k (finalize)
  std::string ind = "      ";            // indentation
  std::string text;                      // the emitted statements
  void line(const std::string& s) { text += ind + s + "\n"; }
};

enum class Extra { None, K, Weight };

// One reduction.
struct ReductionInfo {
  const char* name;  // "Sum" for Sum_Reduction
  Extra extra;
  bool sum_like;                       // accumulation is st[k] += f(k): may use sum schemes
  int (*state_dim)(const RedShape&);   // T entries
  int (*istate_dim)(const RedShape&);  // long long entries (indices)
  int (*out_dim)(const RedShape&);
  const char* check;  // nullptr or a requirement on d ("d1": F must be dim 1)
  void (*init)(RedCode&, const RedShape&);
  void (*acc)(RedCode&, const RedShape&);
  void (*merge)(RedCode&, const RedShape&);
  void (*final)(RedCode&, const RedShape&);
  // Optional: the state of a whole tile of terms f(k)/w(k) at index "jj" in [0, jn), computed
  // with vectorisable loops into state `st`, then merged (the CPU uses it; nullptr: acc each term).
  void (*tile)(RedCode&, const RedShape&) = nullptr;
};

int find_reduction(const std::string& name);  // -1 when unknown

// The Kahan sum scheme of the Sum-like reductions, shared by the CPU and CUDA templates: each
// of the d sums st[k] carries a compensation cp[k], and the true sum is st[k] - cp[k].
void kahan_init(RedCode& c, int d);   // cp = 0
void kahan_acc(RedCode& c, int d);    // compensated st += f
void kahan_merge(RedCode& c, int d);  // st = true sum of st + true sum of st2, cp = 0
void kahan_final(RedCode& c, int d);  // st = its true sum
const ReductionInfo& reduction_info(int r);
int reduction_count();

}  // namespace rkeops

// The operation table: one row per formula operation, holding its name, argument
// signature, dimension rule and code generation (shared by the CPU and CUDA emitters).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace rkeops {

class Emitter;

// Returns the output dimension, or 0 and sets *why when the argument dimensions do not fit.
using DimRule = int (*)(const std::vector<int>& dims, const std::vector<int>& params,
                        std::string* why);
// Emits the statements computing node `id` (see Emitter in codegen.h).
using EmitFn = void (*)(Emitter& e, int id);

// One formula operation.
struct OpInfo {
  const char* name;    // formula name, e.g. "Exp"
  const char* sig;     // arguments as written: 'f' a formula, 'i' an integer parameter
  DimRule dim_rule;
  const char* scalar;  // element-wise template ($0.. = args, #0.. = int params), or nullptr
  EmitFn emit;         // custom emitter for vector operations (when scalar is nullptr)
  size_t nargs() const;
  size_t nparams() const;
};

// The complex-number operations live in their own table (ops_complex.cpp).
extern const OpInfo kComplexOps[];
extern const int kComplexOpCount;

int find_op(const std::string& name);   // -1 when unknown
const OpInfo& op_info(int op);
int op_count();
std::vector<std::string> op_names();

}  // namespace rkeops

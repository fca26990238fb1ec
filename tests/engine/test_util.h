// Helpers shared by the engine's GoogleTest files.
#pragma once
#include <stdlib.h>

#include <string>
#include <utility>
#include <vector>

#include "errors.h"
#include "formula.h"
#include "ops.h"

namespace rkeops_test {

// The kernel cache of the test binary: RKEOPS_CACHE_DIR when set (`make run` sets a fresh one),
// else one new folder /tmp/rkeops-test-XXXXXX for the whole process.
inline std::string test_cache_dir() {
  static const std::string dir = [] {
    const char* env = getenv("RKEOPS_CACHE_DIR");
    if (env && *env) return std::string(env);
    char tmpl[] = "/tmp/rkeops-test-XXXXXX";
    const char* d = mkdtemp(tmpl);
    return std::string(d ? d : "/tmp");
  }();
  return dir;
}

// The kind and message of the error parsing (f, a) throws; {"", "no error"} when it parses.
inline std::pair<std::string, std::string> error_of(const std::string& f, std::vector<std::string> a) {
  try {
    rkeops::parse_formula(f, a);
  } catch (const rkeops::UserError& e) { return {e.kind, e.what()}; }
  return {"", "no error"};
}

// For an operation with tuple parameters (which generic searches over integers cannot find):
// argument dimensions and flat parameters of a valid call, and its parameters as written.
inline bool tuple_op_sample(const std::string& name, std::vector<int>* dims, std::vector<int>* params,
                            std::string* text = nullptr) {
  if (name != "TensorDot") return false;
  *dims = {6, 12};  // a: 2 x 3, b: 3 x 4; contract a's axis 1 with b's axis 0, output transposed
  *params = {2, 2, 3, 2, 3, 4, 1, 1, 1, 0, 2, 1, 0};
  if (text) *text = "Ind(2,3), Ind(3,4), Ind(1), Ind(0), Ind(1,0)";
  return true;
}

}  // namespace rkeops_test

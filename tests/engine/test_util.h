// Helpers shared by the engine's GoogleTest files.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "errors.h"
#include "formula.h"

namespace rkeops_test {

// The kind and message of the error parsing (f, a) throws; {"", "no error"} when it parses.
inline std::pair<std::string, std::string> error_of(const std::string& f, std::vector<std::string> a) {
  try {
    rkeops::parse_formula(f, a);
  } catch (const rkeops::UserError& e) {
    return {e.kind, e.what()};
  }
  return {"", "no error"};
}

}  // namespace rkeops_test

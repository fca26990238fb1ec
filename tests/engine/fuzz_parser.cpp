// libFuzzer target: the parser must turn any text into a Formula or a UserError, never crash,
// hang or read out of bounds. Input: first line = formula, further lines = aliases.
#include "errors.h"
#include "formula.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, unsigned long size) {
  std::string formula;
  std::vector<std::string> aliases;
  rkeops_fuzz::split_input(data, size, &formula, &aliases);
  try {
    rkeops::Formula f = rkeops::parse_formula(formula, aliases);
    (void)f.canonical();
  } catch (const rkeops::UserError&) {}
  return 0;
}

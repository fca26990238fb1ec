// libFuzzer target: the parser must turn any text into a Formula or a UserError, never crash,
// hang or read out of bounds. Input: first line = formula, further lines = aliases.
#include <string>
#include <vector>

#include "errors.h"
#include "formula.h"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, unsigned long size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t k = 0; k <= text.size(); ++k) {
    if (k == text.size() || text[k] == '\n') {
      lines.push_back(text.substr(start, k - start));
      start = k + 1;
    }
  }
  std::string formula = lines.empty() ? "" : lines[0];
  std::vector<std::string> aliases(lines.size() > 1 ? lines.begin() + 1 : lines.end(), lines.end());
  try {
    rkeops::Formula f = rkeops::parse_formula(formula, aliases);
    (void)f.canonical();
  } catch (const rkeops::UserError&) {}
  return 0;
}

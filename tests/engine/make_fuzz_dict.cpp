// Prints a libFuzzer dictionary of the formula language from the engine's own tables (every
// operation and every reduction), so that the fuzz targets try every row, later ones included.
// `make fuzz` appends it to fuzz_parser.dict (the hand-written tokens).
#include <cstdio>

#include "engine.h"

int main() {
  rkeops::LanguageInfo l = rkeops::language();
  for (const std::string& op : l.ops) std::printf("\"%s(\"\n", op.c_str());
  for (const std::string& r : l.reductions) std::printf("\"%s_Reduction(\"\n", r.c_str());
  return 0;
}

// Complex-number operations: a complex of dim d is a real vector of dim 2d (re, im
// interleaved). Same row layout as the real table in ops.cpp.
#include "codegen.h"
#include "errors.h"
#include "ops.h"

namespace rkeops {

const OpInfo kComplexOps[] = {
    {"ComplexReal", "f", [](const std::vector<int>& d, const std::vector<int>&, std::string* w) {
       if (d[0] % 2) { *w = "a complex vector has an even dimension"; return 0; }
       return d[0] / 2; }, nullptr, [](Emitter& e, int) {
       for (int k = 0; k < e.node().dim; ++k) e.line(e.o(k) + " = " + e.a(0, 2 * k) + ";"); }},
};
const int kComplexOpCount = static_cast<int>(sizeof kComplexOps / sizeof kComplexOps[0]);

}  // namespace rkeops

// libFuzzer target: what the parser accepts must go through the rest of the engine short of a
// compiler. A formula that parses is simplified again, differentiated (the gradient of the
// reduction with respect to each input, itself parsed, which runs autodiff on its Grad) and
// turned into CPU and CUDA sources in float64 and float32. A UserError is an answer; a crash,
// an InternalError or any other exception is a finding. Input: as fuzz_parser.cpp.
#include <algorithm>

#include "codegen_cpu.h"
#include "codegen_cuda.h"
#include "engine.h"
#include "errors.h"
#include "formula.h"
#include "fuzz_input.h"
#include "simplify.h"

using namespace rkeops;

namespace {

// Sources grow with the dimensions (every component is written out): the very large ones are
// a question of resources, not of correctness, and are left out.
constexpr int kMaxDim = 256;

bool small_enough(const Formula& f) {
  for (int id = 0; id < f.g.size(); ++id)
    if (f.g[id].dim > kMaxDim) return false;
  return f.out_dim <= kMaxDim;
}

void generate(const Formula& f) {
  if (!small_enough(f)) return;
  for (DType t : {DType::Float64, DType::Float32}) {
    CodeOptions o;
    o.dtype = t;
    try {
      (void)generate_cpu_source(f, o, RKEOPS_INCLUDE_DIR);
    } catch (const UserError&) {}
    try {
      (void)generate_cuda_code(f, o, RKEOPS_INCLUDE_DIR);
    } catch (const UserError&) {}
  }
  CodeOptions h;  // float16: the GPU only
  h.dtype = DType::Float16;
  try {
    (void)generate_cuda_code(f, h, RKEOPS_INCLUDE_DIR);
  } catch (const UserError&) {}
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, unsigned long size) {
  std::string formula;
  std::vector<std::string> aliases;
  rkeops_fuzz::split_input(data, size, &formula, &aliases);
  Formula f;
  try {
    f = parse_formula(formula, aliases);
  } catch (const UserError&) {
    return 0;
  }
  generate(f);

  Formula s = f;  // the rewrite rules once more over the built graph: same dimension, same use
  s.root = simplify(s.g, s.root);
  if (s.weight >= 0) s.weight = simplify(s.g, s.weight);
  if (s.g[s.root].dim != f.g[f.root].dim) throw InternalError("simplify changed the dimension of " + formula);
  generate(s);

  const int n = std::min<int>(static_cast<int>(f.args.size()), 4);
  for (int var = 0; var < n; ++var) {
    try {
      GradientInfo gi = gradient_of(formula, aliases, var);
      if (gi.zero) continue;
      generate(parse_formula(gi.formula, gi.aliases));
      for (const GradientInfo::Extra& e : gi.extra)
        if (!e.forward.empty()) generate(parse_formula(e.forward, aliases));
    } catch (const UserError&) {}
  }
  return 0;
}

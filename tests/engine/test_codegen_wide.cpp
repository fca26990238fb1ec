// The shape of generated code as dimensions grow (codegen.h): above kLoopDim components the
// CPU and CUDA sources are loops whose size does not depend on the dimension, far smaller
// than straight-line code; small formulas keep straight-line code; wide CPU kernels keep
// their arrays in the workspace, not on the stack. (Their values are tested elsewhere: the
// finite-difference sweep with loops in test_autodiff.cpp, the CUDA emulation, and
// tests/testthat/test-high-dim.R against dense R.)
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "codegen.h"
#include "codegen_cpu.h"
#include "codegen_cuda.h"
#include "codegen_cuda_hd.h"
#include "formula.h"

using namespace rkeops;

namespace {

const std::vector<std::string> kForms = {
    "Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
    "Sum_Reduction(Exp(-Sqrt(g * SqDist(x, y))) * b, 1)",
    "Sum_Reduction(b / (1 + g * SqDist(x, y)), 1)",
    "ArgKMin_Reduction(SqDist(x, y), 10, 1)",
    "Sum_Reduction(Exp((x | y)) * b, 1)",
    "Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, x, e), 1)",
    "Sum_Reduction(Grad(Exp(-Sqrt(g * SqDist(x, y))) * b, x, e), 1)",
    "Sum_Reduction(Grad(b / (1 + g * SqDist(x, y)), x, e), 1)",
    "Sum_Reduction(Grad(Exp((x | y)) * b, x, e), 1)",
    "Sum_Reduction(Normalize(x - y) * WeightedSqDist(w, x, y) + Elem(Concat(Extract(x, 0, 1), Exp(y)), 1), 1)",
};

std::vector<std::string> aliases(int D) {
  const std::string d = std::to_string(D);
  return {"x=Vi(" + d + ")", "y=Vj(" + d + ")", "b=Vj(1)", "g=Pm(1)", "e=Vi(1)", "w=Pm(" + d + ")"};
}

// The generated sources after the prelude (which does not depend on the formula).
std::string body(const std::string& src) { return src.substr(src.find("\ntypedef ")); }
std::string cpu(const std::string& f, int D, int loop_dim = kLoopDim, DType dt = DType::Float64) {
  CodeOptions o;
  o.dtype = dt;
  o.loop_dim = loop_dim;
  return body(generate_cpu_source(parse_formula(f, aliases(D)), o, RKEOPS_INCLUDE_DIR));
}
std::string cuda(const std::string& f, int D, int loop_dim = kLoopDim, DType dt = DType::Float32) {
  CodeOptions o;
  o.dtype = dt;
  o.loop_dim = loop_dim;
  return body(generate_cuda_source(parse_formula(f, aliases(D)), o, RKEOPS_INCLUDE_DIR));
}

}  // namespace

TEST(CodegenWide, IndexExpressionsPrint) {
  EXPECT_EQ(Ix(7).str(), "7");
  EXPECT_EQ((Ix(3) * 4 + 1).str(), "13");
  EXPECT_EQ((Ix("k0_") * 4 + 1).str(), "4 * k0_ + 1");
  EXPECT_EQ((Ix("k0_") * 3 + Ix("m1_") - 2).str(), "3 * k0_ + m1_ - 2");
  EXPECT_EQ((Ix("k0_") + Ix("k0_") * 2).str(), "3 * k0_");
  EXPECT_EQ((Ix("k0_") * -1).str(), "-k0_");
  EXPECT_EQ((Ix("a") - 1 + 1).str(), "a");
}

TEST(CodegenWide, SourcesDoNotGrowWithTheDimension) {
  for (const std::string& f : kForms) {
    // The CPU and CUDA sources at D = 1000 and 4096 differ only in the digits of the numbers
    // (CUDA in float32: a float64 result of 4096 components exceeds a GPU thread's state bound).
    for (auto gen : {cpu, cuda}) {
      const std::string s1 = gen(f, 1000, kLoopDim, DType::Float32), s2 = gen(f, 4096, kLoopDim, DType::Float32);
      EXPECT_LE(s2.size(), s1.size() + 200) << f;
      EXPECT_LT(s1.size(), 40000u) << f;
    }
    // Far below straight-line code (the same formula with loops disabled) at D = 1000 (on the
    // GPU, distances and inner products alone go through the high-dimension scheme instead).
    // (8x: the k-NN kernel at D = 1000 is ~8.7 KB, most of it the template and the K-min
    // insertion, which do not depend on D; straight-line code is ~85 KB.)
    const size_t looped = cpu(f, 1000).size(), straight = cpu(f, 1000, 1 << 30).size();
    EXPECT_LT(8 * looped, straight) << f;
    CodeOptions o;
    if (plan_cuda_hd(parse_formula(f, aliases(1000)), o).applies) continue;
    const size_t looped_cu = cuda(f, 1000).size(), straight_cu = cuda(f, 1000, 1 << 30).size();
    EXPECT_LT(5 * looped_cu, straight_cu) << f;
  }
}

TEST(CodegenWide, SmallFormulasKeepStraightLineCode) {
  for (const std::string& f : kForms)
    for (int D : {1, 3, 17, kLoopDim - 1}) {  // (the last form has a node of dimension D + 1)
      // the same sources as with loops disabled
      EXPECT_EQ(cpu(f, D), cpu(f, D, 1 << 30)) << f << " D = " << D;
      EXPECT_EQ(cuda(f, D), cuda(f, D, 1 << 30)) << f << " D = " << D;
      EXPECT_EQ(cpu(f, D).find("rk_work_bytes"), std::string::npos) << f << " D = " << D;
    }
  // One past the threshold: loops.
  EXPECT_NE(cpu(kForms[0], kLoopDim + 1).find("rk_work_bytes"), std::string::npos);
}

TEST(CodegenWide, WideCpuKernelsKeepLargeArraysOffTheStack) {
  // Every array declared on the stack of a wide kernel is small: T name[n] or RkState name[n].
  const std::regex decl("(T|RkState) [A-Za-z0-9_]+\\[([0-9]+)\\]");
  for (const std::string& f : kForms) {
    std::string s = cpu(f, 20000);
    EXPECT_NE(s.find("rk_work_bytes"), std::string::npos);
    s.erase(s.find("struct RkState {"), s.find('\n', s.find("struct RkState {")) - s.find("struct RkState {"));
    for (std::sregex_iterator it(s.begin(), s.end(), decl), end; it != end; ++it)
      EXPECT_LE(std::stol((*it)[2]), kLoopDim) << f << ": " << it->str();
  }
}

TEST(CodegenWide, VirtualNodesAreComputedWhereTheyAreUsed) {
  // The gradient of a Gaussian kernel: -(x - y) and its product with the scalar factor are not
  // stored, but computed in the loop that accumulates the D components of the result.
  const std::string s = cpu(kForms[5], 1000);
  EXPECT_NE(s.find("S_.st[k_] += s_;"), std::string::npos);
  EXPECT_NE(s.find("s_ += (-(v"), std::string::npos);
  EXPECT_EQ(s.find("(*v21)"), std::string::npos);
  // a node used twice is stored (once per tile)
  const std::string t = cpu("Sum_Reduction((x - y) * Exp(x - y), 1)", 100);
  EXPECT_NE(t.find("T (*v2)[" ), std::string::npos);
}

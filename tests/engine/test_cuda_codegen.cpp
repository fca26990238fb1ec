// CUDA code generation without a GPU: the source of every operation of the op table and of
// every reduction (both axes, float32 and float64, every sum scheme) is generated and compiled
// with NVRTC (which needs only the toolkit). Skips when NVRTC cannot be loaded.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "codegen_cuda.h"
#include "codegen_cuda_f16tc.h"
#include "codegen_cuda_hd.h"
#include "errors.h"
#include "formula.h"
#include "nvrtc.h"
#include "ops.h"
#include "reductions.h"
#include "test_util.h"

using namespace rkeops;

namespace {

struct Case {
  std::string name, formula;
  std::vector<std::string> aliases;
  CodeOptions opt;
};

Nvrtc* nvrtc_or_skip() {
  std::string why;
  return Nvrtc::get(&why);
}

// Argument dimensions and integer parameters that the op's dimension rule accepts, found by
// a small search (the first combination wins, in a fixed order).
bool find_signature(const OpInfo& op, std::vector<int>* dims, std::vector<int>* params) {
  const int nf = static_cast<int>(op.nargs()), ni = static_cast<int>(op.nparams());
  const std::vector<int> dc = {3, 1, 2, 4, 6, 9};
  const std::vector<int> pc = {1, 0, 2, 3, 4, 5};
  std::vector<int> di(nf, 0), pi(ni, 0);
  for (;;) {
    dims->clear();
    params->clear();
    for (int k = 0; k < nf; ++k) dims->push_back(dc[di[k]]);
    for (int k = 0; k < ni; ++k) params->push_back(pc[pi[k]]);
    std::string why;
    if (op.dim_rule(*dims, *params, &why) > 0) return true;
    // next combination (params fastest)
    int k = ni - 1;
    while (k >= 0 && ++pi[k] == static_cast<int>(pc.size())) pi[k--] = 0;
    if (k < 0) {
      int m = nf - 1;
      while (m >= 0 && ++di[m] == static_cast<int>(dc.size())) di[m--] = 0;
      if (m < 0) return false;
    }
  }
}

// The formula exercising op `k` on i- and j-indexed variables (and a parameter), or "" when
// no signature fits.
Case op_case(int k, DType dt) {
  const OpInfo& op = op_info(k);
  Case c;
  c.name = std::string(op.name) + (dt == DType::Float32 ? " f32" : dt == DType::Float16 ? " f16" : " f64");
  c.opt.dtype = dt;
  std::vector<int> dims, params;
  std::string tuples;
  if (rkeops_test::tuple_op_sample(op.name, &dims, &params, &tuples)) {
    c.aliases = {"a0=Vi(" + std::to_string(dims[0]) + ")", "a1=Vj(" + std::to_string(dims[1]) + ")"};
    c.formula = std::string("Sum_Reduction(") + op.name + "(a0, a1, " + tuples + "), 1)";
    return c;
  }
  if (!find_signature(op, &dims, &params)) return c;
  std::string call = std::string(op.name) + "(";
  size_t fi = 0, pi = 0;
  const char* cats[] = {"Vi", "Vj", "Pm"};
  for (const char* s = op.sig; *s; ++s) {
    if (s != op.sig) call += ", ";
    if (*s == 'f') {
      std::string v = "a" + std::to_string(fi);
      // one argument: x_i - y_j so that the term depends on both indices
      if (op.nargs() == 1) {
        call += "(a0 - b0)";
        c.aliases.push_back("a0=Vi(" + std::to_string(dims[0]) + ")");
        c.aliases.push_back("b0=Vj(" + std::to_string(dims[0]) + ")");
      } else {
        call += v;
        c.aliases.push_back(v + "=" + cats[fi % 3] + "(" + std::to_string(dims[fi]) + ")");
      }
      ++fi;
    } else {
      call += std::to_string(params[pi++]);
    }
  }
  call += ")";
  if (op.nargs() == 0) {
    call = "(" + call + " * SqDist(a0, b0))";
    c.aliases = {"a0=Vi(2)", "b0=Vj(2)"};
  }
  c.formula = "Sum_Reduction(" + call + ", 1)";
  return c;
}

std::vector<Case> reduction_cases() {
  std::vector<Case> out;
  for (int r = 0; r < reduction_count(); ++r) {
    const ReductionInfo& info = reduction_info(r);
    const bool d1 = info.check && std::string(info.check) == "d1";
    const std::string F = d1 ? "(-SqDist(x, y))" : "Concat(Elem(x, 0) - Elem(y, 0), Elem(x, 1) * Elem(y, 1))";
    for (int axis = 0; axis <= 1; ++axis)
      for (DType dt : {DType::Float32, DType::Float64}) {
        std::vector<SumScheme> schemes = {SumScheme::Auto};
        if (info.sum_like) schemes = {SumScheme::Block, SumScheme::Kahan, SumScheme::Direct};
        for (SumScheme sc : schemes) {
          Case c;
          c.opt.dtype = dt;
          c.opt.scheme = sc;
          std::string a = std::to_string(axis);
          c.name = std::string(info.name) + " axis " + a + (dt == DType::Float32 ? " f32" : " f64") + " scheme " +
                   std::to_string(static_cast<int>(sc));
          std::string mid = info.extra == Extra::K ? ", 3, " : info.extra == Extra::Weight ? ", w, " : ", ";
          c.formula = std::string(info.name) + "_Reduction(" + F + mid + a + ")";
          c.aliases = {"x=Vi(2)", "y=Vj(2)", axis == 1 ? "w=Vj(2)" : "w=Vi(2)"};
          if (info.extra != Extra::Weight) c.aliases.pop_back();
          out.push_back(c);
        }
      }
  }
  return out;
}

// Everything after the prelude of a generated source, with its kernels renamed and wrapped in
// a namespace, so that many cases of one dtype compile as one NVRTC program (NVRTC's fixed
// cost per program dominates these small kernels).
std::string batch_member(const std::string& src, size_t k) {
  size_t at = src.find("\ntypedef ");
  std::string body = at == std::string::npos ? src : src.substr(at + 1);
  for (const char* name : {"rk_reduce(", "rk_merge(", "rk_pack_inner(", "rk_pack_pair("}) {
    std::string n = name, r = n.substr(0, n.size() - 1) + "_" + std::to_string(k) + "(";
    for (size_t p = body.find(n); p != std::string::npos; p = body.find(n, p + r.size())) body.replace(p, n.size(), r);
  }
  return "#undef RK_ABI\n#undef RK_B\n#undef RK_TJ\n#undef RK_WV\nnamespace case" + std::to_string(k) + " {\n" + body +
         "}\n";
}

// Compiles `src` to a CUBIN; returns "" or the error.
std::string compile_one(Nvrtc* nv, const std::string& src) {
  try {
    std::string cubin = nv->compile(src, "rkeops_test.cu", 9, 0, {}, true);
    if (cubin.compare(0, 4, "\177ELF") != 0) return "not a CUBIN";
  } catch (const CompileError& e) { return std::string(e.what()) + "\n" + e.log; } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Generates every case and compiles them in batches of one dtype on all cores; a batch that
// fails is compiled case by case to name the culprit. Returns the failures' descriptions.
std::vector<std::string> compile_all(Nvrtc* nv, const std::vector<Case>& cases) {
  std::vector<std::string> failures, sources(cases.size());
  std::mutex mu;
  for (size_t k = 0; k < cases.size(); ++k) {
    try {
      Formula f = parse_formula(cases[k].formula, cases[k].aliases);
      sources[k] = generate_cuda_code(f, cases[k].opt, RKEOPS_INCLUDE_DIR).source;
    } catch (const std::exception& e) { failures.push_back(cases[k].name + ": " + cases[k].formula + "\n" + e.what()); }
  }
  std::vector<std::vector<size_t>> batches;
  for (DType dt : {DType::Float32, DType::Float64, DType::Float16}) {
    std::vector<size_t> b;
    for (size_t k = 0; k < cases.size(); ++k) {
      if (cases[k].opt.dtype != dt || sources[k].empty()) continue;
      b.push_back(k);
      if (b.size() == 12) {
        batches.push_back(b);
        b.clear();
      }
    }
    if (!b.empty()) batches.push_back(b);
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t n; (n = next++) < batches.size();) {
      const std::vector<size_t>& b = batches[n];
      std::string src = sources[b[0]].substr(0, sources[b[0]].find("\ntypedef ") + 1);
      for (size_t k : b) src += batch_member(sources[k], k);
      if (compile_one(nv, src).empty()) continue;
      for (size_t k : b) {
        std::string err = compile_one(nv, sources[k]);
        if (err.empty()) continue;
        std::lock_guard<std::mutex> lock(mu);
        failures.push_back(cases[k].name + ": " + cases[k].formula + "\n" + err);
      }
    }
  };
  unsigned nt = std::max(1u, std::min(8u, std::thread::hardware_concurrency()));
  std::vector<std::thread> th;
  for (unsigned t = 0; t < nt; ++t) th.emplace_back(work);
  for (auto& t : th) t.join();
  return failures;
}

}  // namespace

// One case per operation and precision (those whose arguments fit some dimensions).
static std::vector<Case> operation_cases() {
  std::vector<Case> cases;
  for (int k = 0; k < op_count(); ++k)
    for (DType dt : {DType::Float32, DType::Float64}) {
      Case c = op_case(k, dt);
      if (!c.formula.empty()) cases.push_back(c);
    }
  return cases;
}

TEST(CudaCodegen, EveryOperationCompilesWithNvrtc) {
  Nvrtc* nv = nvrtc_or_skip();
  if (!nv) GTEST_SKIP() << "NVRTC is not available";
  std::vector<Case> cases = operation_cases();
  for (int k = 0; k < op_count(); ++k)
    for (DType dt : {DType::Float32, DType::Float64})
      EXPECT_FALSE(op_case(k, dt).formula.empty()) << "no argument dimensions fit operation " << op_info(k).name;
  std::vector<std::string> failures = compile_all(nv, cases);
  for (auto& f : failures) ADD_FAILURE() << f;
  EXPECT_EQ(cases.size(), 2u * op_count());
}

TEST(CudaCodegen, EveryReductionBothAxesCompilesWithNvrtc) {
  Nvrtc* nv = nvrtc_or_skip();
  if (!nv) GTEST_SKIP() << "NVRTC is not available";
  std::vector<Case> cases = reduction_cases();
  std::vector<std::string> failures = compile_all(nv, cases);
  for (auto& f : failures) ADD_FAILURE() << f;
}

// The same sweeps with every node of dimension > 1 emitted with loops over its components
// (codegen.h): every operation's loop emitter and the looped reduction pieces.
TEST(CudaCodegen, EveryOperationAndReductionWithLoopsCompilesWithNvrtc) {
  Nvrtc* nv = nvrtc_or_skip();
  if (!nv) GTEST_SKIP() << "NVRTC is not available";
  std::vector<Case> cases = operation_cases();
  for (const Case& c : reduction_cases()) cases.push_back(c);
  for (Case& c : cases) {
    c.opt.loop_dim = 1;
    c.name += " (loops)";
  }
  std::vector<std::string> failures = compile_all(nv, cases);
  for (auto& f : failures) ADD_FAILURE() << f;
}

// Kernels and gradients of dimension 1000 and 4096 (and inner rows too wide for any shared
// memory tile, read from global memory): generated with loops, and compiled with NVRTC.
TEST(CudaCodegen, HighDimensionsCompileWithNvrtc) {
  std::vector<Case> cases;
  const std::vector<std::string> forms = {
      "Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
      "Sum_Reduction(Exp(-Sqrt(g * SqDist(x, y))) * b, 1)",
      "Sum_Reduction(b / (1 + g * SqDist(x, y)), 1)",
      "ArgKMin_Reduction(SqDist(x, y), 10, 1)",
      "Sum_Reduction(Exp((x | y)) * b, 0)",
      "Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, x, e), 1)",
      "Sum_Reduction(Grad(Exp(-Sqrt(g * SqDist(x, y))) * b, x, e), 1)",
      "Sum_Reduction(Grad(b / (1 + g * SqDist(x, y)), y, e), 0)",
      "Sum_Reduction(Grad(Exp((x | y)) * b, x, e), 1)",
      "KMin_ArgKMin_Reduction(x - y, 3, 1)",
      "Sum_Reduction(Sum(MatVecMult(s, x - y)) * Normalize(x) * Max(y) + "
      "Elem(Concat(Extract(x, 0, 9), Extract(y, 9, 9)), 3), 1)"};
  for (int D : {1000, 4096, 20000})
    for (const std::string& fm : forms)
      for (DType dt : {DType::Float32, DType::Float64}) {
        // (a GPU thread's reduction state is bounded: results of D components only up to 4096
        // floats, the K-min lists of D components at D = 300)
        if (D == 20000 && dt == DType::Float64) continue;
        if (D == 20000 && fm.find("Grad") != std::string::npos) continue;
        if (D > 1000 && dt == DType::Float64 && fm.find("Grad") != std::string::npos) continue;
        if (D > 1000 && fm.find("MatVecMult") != std::string::npos) continue;
        if (fm.find("KMin_ArgKMin") != std::string::npos && D != 1000) continue;
        Case c;
        c.name = "D = " + std::to_string(D);
        c.formula = fm;
        const std::string d = std::to_string(fm.find("KMin_ArgKMin") != std::string::npos ? 300 : D);
        c.aliases = {"x=Vi(" + d + ")", "y=Vj(" + d + ")", "b=Vj(1)", "g=Pm(1)", "e=Vi(" + d + ")", "s=Pm(" +
                     std::to_string(3 * D) + ")"};
        if (fm.find("Grad(") != std::string::npos) {
          // the gradient input has the dimension of the reduced formula (1)
          c.aliases[4] = fm.find(", 0)") != std::string::npos ? "e=Vj(1)" : "e=Vi(1)";
        }
        c.opt.dtype = dt;
        cases.push_back(c);
      }
  size_t generated = 0;
  for (const Case& c : cases) {
    Formula f = parse_formula(c.formula, c.aliases);
    CudaCode code = generate_cuda_code(f, c.opt, RKEOPS_INCLUDE_DIR);
    EXPECT_LT(code.source.size(), 60000u) << c.formula << " " << c.name;  // loops, not unrolled
    ++generated;
  }
  EXPECT_EQ(generated, cases.size());
  Nvrtc* nv = nvrtc_or_skip();
  if (!nv) GTEST_SKIP() << "NVRTC is not available";
  std::vector<std::string> failures = compile_all(nv, cases);
  for (auto& f : failures) ADD_FAILURE() << f;
}

TEST(CudaCodegen, LayoutOfTheInputs) {
  Formula f =
      parse_formula("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"});
  CodeOptions o;
  o.dtype = DType::Float32;
  CudaCode c = generate_cuda_code(f, o, RKEOPS_INCLUDE_DIR);
  EXPECT_EQ(c.elem, 4);
  EXPECT_EQ(c.wx, 3);
  EXPECT_EQ(c.wy, 4);  // y (3) + b (1), a multiple of 4 floats
  EXPECT_EQ(c.np, 1);
  EXPECT_EQ(c.x_off, (std::vector<int>{0, -1, -1, -1}));
  EXPECT_EQ(c.y_off, (std::vector<int>{-1, 0, 3, -1}));
  EXPECT_EQ(c.p_off, (std::vector<int>{-1, -1, -1, 0}));
  EXPECT_EQ(c.state_t, 1);
  EXPECT_EQ(c.state_i, 0);
  EXPECT_FALSE(c.uses_index);
  EXPECT_NE(c.source.find("extern \"C\" __global__"), std::string::npos);
  EXPECT_NE(c.source.find("ex2.approx.ftz.f32"), std::string::npos);  // the prelude is pasted in
  // axis 0: the roles swap
  Formula g = parse_formula("ArgKMin_Reduction(SqDist(x, y), 4, 0)", {"x=Vi(5)", "y=Vj(5)"});
  o.dtype = DType::Float64;
  CudaCode d = generate_cuda_code(g, o, RKEOPS_INCLUDE_DIR);
  EXPECT_EQ(d.wx, 5);
  EXPECT_EQ(d.wy, 6);  // 5 doubles padded to 16-byte rows
  EXPECT_EQ(d.x_off, (std::vector<int>{-1, 0}));
  EXPECT_EQ(d.y_off, (std::vector<int>{0, -1}));
  EXPECT_EQ(d.state_t, 4);
  EXPECT_EQ(d.state_i, 4);
  EXPECT_TRUE(d.uses_index);
}

// Register blocking (rows per thread) and the float32 exponential of a scaled term.
TEST(CudaCodegen, RowsPerThreadAndFoldedExponentials) {
  Formula f =
      parse_formula("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"});
  CodeOptions o;
  o.dtype = DType::Float32;
  CudaCode c = generate_cuda_code(f, o, RKEOPS_INCLUDE_DIR);
  EXPECT_EQ(c.rows, 6);  // x (3) + state (1) + block sum (1): few registers a row
  // (more than 4 rows: at most 128 registers, two blocks a multiprocessor)
  EXPECT_NE(c.source.find("__launch_bounds__(RK_B, 2) rk_reduce("), std::string::npos);
  for (int r = 0; r < 6; ++r) {
    const std::string sx = "_r" + std::to_string(r);
    EXPECT_NE(c.source.find("const int i" + sx + " = ib0_ + threadIdx.x"), std::string::npos) << r;
    EXPECT_NE(c.source.find("= rk_exp2(fl"), std::string::npos);
    EXPECT_NE(c.source.find("T xo0" + sx + "[3];"), std::string::npos) << r;
  }
  EXPECT_EQ(c.source.find("_r6"), std::string::npos);
  const std::string kernel = c.source.substr(c.source.find("rk_reduce("));
  EXPECT_EQ(kernel.find("rk_exp("), std::string::npos);
  // the parameters are loaded once, not per row
  EXPECT_EQ(c.source.find("T pm3[1];"), c.source.rfind("T pm3[1];"));
  // float64 folds only a prescaled Gaussian (else keeps exp()); an imposed number of rows is
  // honoured; a K-min list keeps one row
  o.dtype = DType::Float64;
  o.cuda_rows = 2;
  CudaCode d = generate_cuda_code(f, o, RKEOPS_INCLUDE_DIR);
  EXPECT_EQ(d.rows, 2);
  EXPECT_NE(d.source.find("__launch_bounds__(RK_B) rk_reduce("), std::string::npos);
  const std::string kernel64 = d.source.substr(d.source.find("rk_reduce("));
  EXPECT_NE(kernel64.find("rk_exp2(fl"), std::string::npos);
  EXPECT_NE(kernel64.find("psf_"), std::string::npos);
  Formula u = parse_formula("Sum_Reduction(Exp(-SqDist(x, y) * u) * b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "u=Vi(1)"});
  const std::string s64 = generate_cuda_code(u, o, RKEOPS_INCLUDE_DIR).source;
  const std::string k64 = s64.substr(s64.find("rk_reduce("));
  EXPECT_EQ(k64.find("rk_exp2(fl"), std::string::npos);
  EXPECT_NE(k64.find("rk_exp("), std::string::npos);
  o.cuda_rows = 0;
  Formula k = parse_formula("ArgKMin_Reduction(SqDist(x, y), 10, 0)", {"x=Vi(5)", "y=Vj(5)"});
  EXPECT_EQ(generate_cuda_code(k, o, RKEOPS_INCLUDE_DIR).rows, 1);
}

TEST(CudaCodegen, InnerRowsTooWideForSharedMemoryAreReadFromGlobalMemory) {
  // (a distance of that dimension alone would go through the high-dimension scheme)
  Formula f = parse_formula("Sum_Reduction(Sum(Exp(x - y)), 1)", {"x=Vi(20000)", "y=Vj(20000)"});
  CodeOptions o;
  CudaCode c = generate_cuda_code(f, o, RKEOPS_INCLUDE_DIR);
  EXPECT_EQ(c.wy, 20000);
  EXPECT_NE(c.source.find("__shared__ TV tile_v[1];"), std::string::npos);
  EXPECT_NE(c.source.find("const T* yr = (const T*)(Y + (long long)(jt + jj) * RK_WV);"), std::string::npos);
  EXPECT_EQ(c.source.find("__syncthreads"), std::string::npos);
  // x is read in place, not copied to 20000 registers
  EXPECT_NE(c.source.find("const T* xg0 = X + (active ? i : 0) + 0LL * ldx;"), std::string::npos);
  // A small formula keeps its shared-memory tile and straight-line code.
  Formula g = parse_formula("Sum_Reduction(SqDist(x, y), 1)", {"x=Vi(3)", "y=Vj(3)"});
  CudaCode s = generate_cuda_code(g, o, RKEOPS_INCLUDE_DIR);
  EXPECT_NE(s.source.find("__syncthreads"), std::string::npos);
  EXPECT_EQ(s.source.find("kc_"), std::string::npos);
  EXPECT_EQ(s.source.find("k0_"), std::string::npos);
}

// The high-dimension scheme (codegen_cuda_hd.h): the reductions on both axes, float32 and
// float64, the sum schemes, on a distance of dimension 40; and every kind of pairwise node.
TEST(CudaCodegen, HighDimensionKernelsCompileWithNvrtc) {
  Nvrtc* nv = nvrtc_or_skip();
  if (!nv) GTEST_SKIP() << "NVRTC is not available";
  std::vector<Case> cases;
  size_t n = 0;
  for (Case c : reduction_cases()) {
    if (n++ % 2) continue;  // half of them (both axes and dtypes among them): these kernels are long to compile
    for (auto& a : c.aliases)
      if (a[0] == 'x' || a[0] == 'y') a = a.substr(0, 5) + "40)";
    const bool d1 = c.formula.find("SqDist") != std::string::npos;
    if (!d1) {  // F of dimension 2: a distance and an inner product
      const std::string F2 = "Concat(Elem(x, 0) - Elem(y, 0), Elem(x, 1) * Elem(y, 1))";
      c.formula.replace(c.formula.find(F2), F2.size(), "Concat(SqDist(x, y), (x | y))");
    }
    cases.push_back(c);
  }
  const std::vector<std::pair<std::string, std::vector<std::string>>> more = {
      {"Sum_Reduction(Exp(-WeightedSqDist(s, x, y)) * b, 1)", {"x=Vi(300)", "y=Vj(300)", "s=Pm(1)", "b=Vj(3)"}},
      {"Min_ArgMin_Reduction(WeightedSqDist(s, y, x) - Elem(b, 2), 0)", {"x=Vi(64)", "y=Vj(64)", "s=Vj(1)", "b=Vi(3)"}},
      {"KMin_Reduction(SqNorm2(x - y) * Square(u), 7, 1)", {"x=Vi(1000)", "y=Vj(1000)", "u=Vi(1)"}},
      {"LogSumExpWeight_Reduction((y | x) * g, b, 1)", {"x=Vi(33)", "y=Vj(33)", "g=Pm(1)", "b=Vj(2)"}},
      {"Sum_Reduction(Exp(-SqDist(x, y)), 1)", {"x=Vi(20000)", "y=Vj(20000)"}},
      {"ArgKMin_Reduction(SqDist(x, y), 40, 1)", {"x=Vi(20000)", "y=Vj(20000)"}},  // a big state: tm = 1
  };
  for (auto& m : more)
    for (DType dt : {DType::Float32, DType::Float64}) {
      Case c;
      c.name = m.first + (dt == DType::Float32 ? " f32" : " f64");
      c.formula = m.first;
      c.aliases = m.second;
      c.opt.dtype = dt;
      cases.push_back(c);
    }
  for (const Case& c : cases) {
    Formula f = parse_formula(c.formula, c.aliases);
    EXPECT_TRUE(plan_cuda_hd(f, c.opt).applies) << c.name << ": " << c.formula << ": " << plan_cuda_hd(f, c.opt).why;
  }
  std::vector<std::string> failures = compile_all(nv, cases);
  for (auto& f : failures) ADD_FAILURE() << f;
}

// ---- float16 (rkeops_use_float16()) ----

// Every operation in float16: those with a half2 form (OpInfo::half2) in half2 pairs, the
// others in float32 from halves; both compile.
TEST(CudaCodegen, Float16EveryOperationCompilesWithNvrtc) {
  Nvrtc* nv = nvrtc_or_skip();
  if (!nv) GTEST_SKIP() << "NVRTC is not available";
  std::vector<Case> cases;
  int pairs = 0;
  for (int k = 0; k < op_count(); ++k) {
    Case c = op_case(k, DType::Float16);
    if (c.formula.empty()) continue;
    Formula f = parse_formula(c.formula, c.aliases);
    CudaCode code = generate_cuda_code(f, c.opt, RKEOPS_INCLUDE_DIR);
    EXPECT_EQ(code.elem, 2) << c.name;
    EXPECT_EQ(code.state_elem, 4) << c.name;
    // (the case's formula is the op on its arguments, plus variables: half2 iff the op is)
    EXPECT_EQ(code.rows_per_thread, op_info(k).half2 ? 2 : 1) << c.name << ": " << c.formula;
    pairs += code.rows_per_thread == 2;
    cases.push_back(c);
  }
  EXPECT_GE(pairs, 30);
  std::vector<std::string> failures = compile_all(nv, cases);
  for (auto& f : failures) ADD_FAILURE() << f;
}

// Every reduction, both axes, in float16: the half2 pair kernel (a formula of half2 ops) and
// the float32-evaluation kernel (a formula with a comparison), with loops over components too.
TEST(CudaCodegen, Float16EveryReductionCompilesWithNvrtc) {
  Nvrtc* nv = nvrtc_or_skip();
  if (!nv) GTEST_SKIP() << "NVRTC is not available";
  std::vector<Case> cases;
  for (Case c : reduction_cases()) {
    if (c.opt.dtype != DType::Float32) continue;
    c.opt.dtype = DType::Float16;
    c.name += " -> f16";
    cases.push_back(c);
    Case s = c;  // the float32 path: Step has no half2 form
    s.formula.replace(s.formula.find("Reduction(") + 10, 0, "Step(Elem(x, 0)) + ");
    s.name += " (float32 evaluation)";
    cases.push_back(s);
    Case l = c;
    l.opt.loop_dim = 1;
    l.name += " (loops)";
    cases.push_back(l);
  }
  for (const Case& c : cases) {
    Formula f = parse_formula(c.formula, c.aliases);
    EXPECT_EQ(generate_cuda_code(f, c.opt, RKEOPS_INCLUDE_DIR).rows_per_thread,
              c.name.find("float32 evaluation") == std::string::npos ? 2 : 1)
        << c.name << ": " << c.formula;
  }
  std::vector<std::string> failures = compile_all(nv, cases);
  for (auto& f : failures) ADD_FAILURE() << f;
}

// Kernels users write, their gradients (formulas like any other) and wide ones, in float16.
TEST(CudaCodegen, Float16KernelsAndGradientsCompileWithNvrtc) {
  Nvrtc* nv = nvrtc_or_skip();
  if (!nv) GTEST_SKIP() << "NVRTC is not available";
  const std::vector<std::string> forms = {
      "Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
      "Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, x, e), 1)",
      "Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, y, e), 0)",
      "Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, g, e), 1)",
      "Sum_Reduction(Exp(-Sqrt(g * SqDist(x, y))) * b, 1)",
      "Sum_Reduction(Grad(Exp(-Sqrt(g * SqDist(x, y))) * b, x, e), 1)",
      "Sum_Reduction(b / (1 + g * SqDist(x, y)), 1)",
      "Sum_Reduction(Grad(b / (1 + g * SqDist(x, y)), y, e), 0)",
      "Sum_Reduction(Rsqrt(1 + SqNorm2(x - y)) * Log(1 + Square(b)) * Pow(Abs(x | y), 3), 1)",
      "Sum_Reduction(Powf(1 + SqDist(x, y), g) * Norm2(x) * Normalize(y), 1)",
      "LogSumExp_Reduction(-g * SqDist(x, y), 1)",
      "ArgKMin_Reduction(SqDist(x, y), 5, 1)",
      "Min_ArgMin_Reduction(SqDist(x, y), 0)",
      "SumSoftMaxWeight_Reduction(-SqDist(x, y), y, 1)",
      "Sum_Reduction(ReLU(x - y) * b, 1)",  // float32 evaluation
  };
  std::vector<Case> cases;
  for (int D : {3, 100, 2000})  // (2000: inner rows read from global memory)
    for (const std::string& fm : forms) {
      if (D == 2000 && fm.find("Grad") == std::string::npos && fm.find("Exp(-g") == std::string::npos) continue;
      Case c;
      c.name = "f16 D = " + std::to_string(D);
      c.formula = fm;
      const std::string d = std::to_string(D);
      c.aliases = {"x=Vi(" + d + ")", "y=Vj(" + d + ")", "b=Vj(1)", "g=Pm(1)", "e=Vi(1)"};
      if (fm.find(", 0)") != std::string::npos) c.aliases[4] = "e=Vj(1)";
      c.opt.dtype = DType::Float16;
      cases.push_back(c);
    }
  for (const Case& c : cases) {
    Formula f = parse_formula(c.formula, c.aliases);
    CudaCode code = generate_cuda_code(f, c.opt, RKEOPS_INCLUDE_DIR);
    EXPECT_EQ(code.hd.bm, 0) << c.formula;  // not the high-dimension scheme
    if (c.formula.find("ReLU") != std::string::npos) EXPECT_EQ(code.rows_per_thread, 1);
    if (c.formula.find("Sum_Reduction(Exp(-g * SqDist") == 0) {
      // tensor cores up to D = 15 (codegen_cuda_f16tc.h), half2 pairs above
      const bool tc = f.args[0].dim <= kF16TcMaxDim;
      EXPECT_EQ(code.rows_per_thread, tc ? 1 : 2) << c.name;
      EXPECT_EQ(code.source.find("rk_tc_mma8(e0") != std::string::npos, tc) << c.name;
      EXPECT_NE(code.source.find("typedef rk_h2 T;"), std::string::npos);
      EXPECT_NE(code.source.find("ex2.approx.f16x2"), std::string::npos);
    }
  }
  std::vector<std::string> failures = compile_all(nv, cases);
  for (auto& f : failures) ADD_FAILURE() << f;
}

// Float16 Gaussian sums on tensor cores (codegen_cuda_f16tc.h): the forms that take them, and
// those that do not; all compile with NVRTC.
TEST(CudaCodegen, Float16GaussianSumsOnTensorCores) {
  struct Form {
    std::string formula;
    std::vector<std::string> aliases;
    bool tc;
  };
  const std::vector<Form> forms = {
      {"Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"}, true},
      {"Sum_Reduction(b * Exp(-SqDist(y, x) / g), 0)", {"x=Vj(7)", "y=Vi(7)", "b=Vi(8)", "g=Pm(1)"}, true},
      {"Sum_Reduction(Exp(g * -SqDist(x, y)), 1)", {"x=Vi(1)", "y=Vj(1)", "g=Pm(1)"}, true},
      {"Sum_Reduction(Exp(-g * SqNorm2(x - y)) * b, 1)", {"x=Vi(15)", "y=Vj(15)", "b=Vj(2)", "g=Pm(1)"}, true},
      {"Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", {"x=Vi(16)", "y=Vj(16)", "b=Vj(1)", "g=Pm(1)"}, false},  // D
      {"Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(9)", "g=Pm(1)"}, false},  // b
      {"Sum_Reduction(Exp(-g * SqDist(x, y)) * e, 1)", {"x=Vi(3)", "y=Vj(3)", "e=Vi(1)", "g=Pm(1)"}, false},  // e: outer
      {"Sum_Reduction(Exp(-g * SqDist(x, y)) * y, 1)", {"x=Vi(3)", "y=Vj(3)", "g=Pm(1)"}, false},  // y twice
      {"LogSumExp_Reduction(-g * SqDist(x, y), 1)", {"x=Vi(3)", "y=Vj(3)", "g=Pm(1)"}, false},
      {"Sum_Reduction(Exp(-x * SqDist(x, y)), 1)", {"x=Vi(1)", "y=Vj(1)"}, false},  // h not uniform
      {"Sum_Reduction(Exp(-g * SqDist(x, y)) * b + b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"}, false},
  };
  std::vector<Case> cases;
  for (const Form& fm : forms) {
    Formula f = parse_formula(fm.formula, fm.aliases);
    CodeOptions o;
    o.dtype = DType::Float16;
    CudaCode code = generate_cuda_code(f, o, RKEOPS_INCLUDE_DIR);
    EXPECT_EQ(code.source.find("rk_tc_mma8(e0") != std::string::npos, fm.tc) << fm.formula;
    EXPECT_EQ(code.exact_block && code.block == 32 * kF16TcWarps && code.rows_per_thread == 1, fm.tc) << fm.formula;
    Case c;
    c.name = "f16 tc";
    c.formula = fm.formula;
    c.aliases = fm.aliases;
    c.opt = o;
    cases.push_back(c);
    if (fm.tc) {  // float32 never
      o.dtype = DType::Float32;
      EXPECT_EQ(generate_cuda_code(f, o, RKEOPS_INCLUDE_DIR).source.find("rk_tc_mma8"), std::string::npos);
    }
  }
  Nvrtc* nv = nvrtc_or_skip();
  if (!nv) GTEST_SKIP() << "NVRTC is not available";
  for (auto& e : compile_all(nv, cases)) ADD_FAILURE() << e;
}

TEST(CudaCodegen, Float16LayoutAndKey) {
  Formula f =
      parse_formula("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", {"x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"});
  CodeOptions o;
  o.dtype = DType::Float16;
  CudaCode c = generate_cuda_code(f, o, RKEOPS_INCLUDE_DIR);
  EXPECT_EQ(c.elem, 2);
  EXPECT_EQ(c.state_elem, 4);
  EXPECT_EQ(c.rows_per_thread, 1);  // on tensor cores (codegen_cuda_f16tc.h): one row a thread
  EXPECT_EQ(c.block, 32 * kF16TcWarps);
  EXPECT_TRUE(c.exact_block);
  EXPECT_EQ(c.wy, 8);  // y (3) + b (1), padded to 16-byte rows of 8 halves
  CodeOptions no_tc = o;
  no_tc.cuda_f16_tc = 0;
  EXPECT_EQ(generate_cuda_code(f, no_tc, RKEOPS_INCLUDE_DIR).rows_per_thread, 2);  // half2 pairs
  EXPECT_NE(no_tc.key(), o.key());
  EXPECT_NE(c.source.find("typedef unsigned short TS;"), std::string::npos);
  // a long state (a K-min list of 1500) is not doubled: one row per thread, evaluated in float32
  Formula k = parse_formula("ArgKMin_Reduction(SqDist(x, y), 1500, 1)", {"x=Vi(3)", "y=Vj(3)"});
  EXPECT_EQ(generate_cuda_code(k, o, RKEOPS_INCLUDE_DIR).rows_per_thread, 1);
  Formula k10 = parse_formula("ArgKMin_Reduction(SqDist(x, y), 10, 1)", {"x=Vi(3)", "y=Vj(3)"});
  EXPECT_EQ(generate_cuda_code(k10, o, RKEOPS_INCLUDE_DIR).rows_per_thread, 2);
  // kernels are cached per precision
  CodeOptions o32;
  o32.dtype = DType::Float32;
  EXPECT_NE(o.key(), o32.key());
}

// Tests for the run-time loaders of the CUDA driver and NVRTC (dynlib, cuda_driver, nvrtc).
// They run without a GPU: NVRTC needs only the toolkit, and the driver is exercised through
// its absence, libraries that lack its symbols, the toolkit's stub libcuda, and fake
// drivers compiled here from cuda_functions.def.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "cuda_driver.h"
#include "dynlib.h"
#include "errors.h"
#include "nvrtc.h"

using namespace rkeops;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

bool file_exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

// Maths calls the generated code relies on, in float and double, with no #include.
const char* kMathKernel = R"(
extern "C" __global__ void math_f(const float* x, float* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = expf(x[i]) + exp(x[i]) + rsqrtf(x[i]) + rsqrt(x[i]);
}
extern "C" __global__ void math_d(const double* x, double* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = exp(x[i]) + rsqrt(x[i]) + log(x[i]);
}
)";

// CUBINs are ELF files: "\177ELF" is the ELF magic number.
bool is_elf(const std::string& bin) { return bin.compare(0, 4, "\177ELF") == 0; }

Nvrtc* nvrtc_or_fail() {
  std::string why;
  Nvrtc* nv = Nvrtc::get(&why);
  EXPECT_NE(nv, nullptr) << why;
  return nv;
}

}  // namespace

// ---- DynLib ----

TEST(DynLib, BogusNameReportsDlerror) {
  DynLib lib("libdefinitely_not_a_library_rkeops.so");
  EXPECT_FALSE(lib.ok());
  EXPECT_TRUE(contains(lib.error(), "libdefinitely_not_a_library_rkeops.so")) << lib.error();
  EXPECT_TRUE(contains(lib.error(), "cannot open shared object file")) << lib.error();
  EXPECT_EQ(lib.sym("anything"), nullptr);
}

TEST(DynLib, OpenFirstSkipsMissingAndListsThem) {
  DynLib lib = DynLib::open_first({"/nonexistent/libx.so", "libm.so.6"});
  ASSERT_TRUE(lib.ok()) << lib.error();
  EXPECT_EQ(lib.path(), "libm.so.6");
  EXPECT_NE(lib.sym("cos"), nullptr);
  EXPECT_EQ(lib.sym("no_such_symbol_rkeops"), nullptr);
  EXPECT_TRUE(contains(lib.error(), "no_such_symbol_rkeops")) << lib.error();

  DynLib none = DynLib::open_first({"/nonexistent/libx.so", "libbogus_rkeops.so.7"});
  EXPECT_FALSE(none.ok());
  EXPECT_TRUE(contains(none.error(), "libbogus_rkeops.so.7: cannot open")) << none.error();
  EXPECT_TRUE(contains(none.error(), "no file /nonexistent/libx.so")) << none.error();
}

TEST(DynLib, MovesOwnership) {
  DynLib a("libm.so.6");
  ASSERT_TRUE(a.ok());
  DynLib b(std::move(a));
  EXPECT_FALSE(a.ok());
  EXPECT_TRUE(b.ok());
  DynLib c;
  c = std::move(b);
  EXPECT_TRUE(c.ok());
  EXPECT_NE(c.sym("sin"), nullptr);
}

// ---- NVRTC ----

TEST(Nvrtc, LoadsAndReportsArchs) {
  Nvrtc* nv = nvrtc_or_fail();
  ASSERT_NE(nv, nullptr);
  EXPECT_EQ(Nvrtc::get(nullptr), nv);  // one instance per process
  EXPECT_TRUE(nv->version().rfind("12.", 0) == 0 || nv->version().rfind("13.", 0) == 0) << nv->version();
  const std::vector<int>& archs = nv->supported_archs();
  ASSERT_FALSE(archs.empty());
  EXPECT_TRUE(std::is_sorted(archs.begin(), archs.end()));
  EXPECT_EQ(nv->best_arch_for(90), 90);
  EXPECT_EQ(nv->best_arch_for(91), 90);  // no sm_91: the highest one below
  EXPECT_EQ(nv->best_arch_for(10), -1);  // older than anything supported
  EXPECT_EQ(nv->best_arch_for(100000), archs.back());
}

TEST(Nvrtc, CompilesMathWithoutIncludesToCubin) {
  Nvrtc* nv = nvrtc_or_fail();
  ASSERT_NE(nv, nullptr);
  for (int cc : {75, 90}) {
    std::string cubin = nv->compile(kMathKernel, "math.cu", cc / 10, cc % 10, {}, true);
    EXPECT_TRUE(is_elf(cubin)) << "sm_" << cc;
    EXPECT_TRUE(contains(cubin, "math_f") && contains(cubin, "math_d")) << "sm_" << cc;
  }
}

TEST(Nvrtc, CompilesToPtx) {
  Nvrtc* nv = nvrtc_or_fail();
  ASSERT_NE(nv, nullptr);
  std::string ptx = nv->compile(kMathKernel, "math.cu", 9, 0, {"-lineinfo"}, false);
  EXPECT_TRUE(contains(ptx, ".target sm_90")) << ptx.substr(0, 400);
  EXPECT_TRUE(contains(ptx, ".entry math_f"));
  EXPECT_NE(ptx.back(), '\0');
}

TEST(Nvrtc, UnannotatedHelpersAndCxx17Work) {
  Nvrtc* nv = nvrtc_or_fail();
  ASSERT_NE(nv, nullptr);
  const char* src = R"(
template <class T> struct Acc { T v; };
inline float twice(float a) { return 2.f * a; }   // -default-device makes this __device__
extern "C" __global__ void k(float* x) {
  if constexpr (sizeof(float) == 4) { Acc<float> a{twice(x[0])}; x[0] = a.v; }
  x[1] = __int_as_float(0x7f800000);               // +Inf without INFINITY
}
)";
  EXPECT_TRUE(is_elf(nv->compile(src, "cxx17.cu", 8, 0, {}, true)));
}

TEST(Nvrtc, SyntaxErrorGivesCompileErrorWithLog) {
  Nvrtc* nv = nvrtc_or_fail();
  ASSERT_NE(nv, nullptr);
  const char* src =
      "extern \"C\" __global__ void k(float* x) {\n"
      "  x[0] = 1.0f;\n"
      "  x[1] = 2.0f +* ;\n"
      "}\n";
  try {
    nv->compile(src, "broken.cu", 9, 0, {}, true);
    FAIL() << "expected CompileError";
  } catch (const CompileError& e) {
    EXPECT_TRUE(contains(e.log, "broken.cu(3)")) << e.log;
    EXPECT_TRUE(contains(e.log, "error")) << e.log;
    EXPECT_EQ(e.compiler, "NVRTC " + nv->version());
    EXPECT_TRUE(contains(e.options, "-arch=sm_90")) << e.options;
    EXPECT_TRUE(contains(e.options, "-default-device")) << e.options;
    EXPECT_TRUE(e.source_path.empty());
    EXPECT_TRUE(contains(e.what(), "broken.cu")) << e.what();
  }
}

TEST(Nvrtc, BadOptionGivesCompileErrorWithLog) {
  Nvrtc* nv = nvrtc_or_fail();
  ASSERT_NE(nv, nullptr);
  try {
    nv->compile(kMathKernel, "math.cu", 9, 0, {"--no-such-option"}, true);
    FAIL() << "expected CompileError";
  } catch (const CompileError& e) {
    EXPECT_TRUE(contains(e.log, "--no-such-option")) << e.log;
    EXPECT_TRUE(contains(e.options, "--no-such-option")) << e.options;
  }
}

TEST(Nvrtc, CandidatesFollowCudaHome) {
  const char* old = std::getenv("CUDA_HOME");
  const std::string saved = old ? old : "";
  setenv("CUDA_HOME", "/opt/my-cuda/", 1);
  std::vector<std::string> c = Nvrtc::default_candidates();
  if (old)
    setenv("CUDA_HOME", saved.c_str(), 1);
  else
    unsetenv("CUDA_HOME");
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(c.front(), "/opt/my-cuda/lib64/libnvrtc.so.13");
  EXPECT_EQ(c.back(), "libnvrtc.so");
}

TEST(Nvrtc, LibraryWithoutSymbolsIsRefused) {
  std::string why;
  EXPECT_EQ(Nvrtc::load({"libm.so.6"}, &why), nullptr);
  EXPECT_TRUE(contains(why, "lacks nvrtcGetErrorString")) << why;
  EXPECT_EQ(Nvrtc::load({"/nonexistent/libnvrtc.so.13"}, &why), nullptr);
  EXPECT_TRUE(contains(why, "CUDA_HOME")) << why;
}

// ---- CUDA driver ----

TEST(CudaDriver, AbsentDriverGivesReasonNotCrash) {
  DynLib probe("libcuda.so.1");
  std::string why;
  CudaDriver* d = CudaDriver::get(&why);
  if (probe.ok()) {  // a machine with a driver: then it must either work or say why
    if (d)
      EXPECT_GE(d->device_count(), 1);
    else
      EXPECT_FALSE(why.empty());
    GTEST_SKIP() << "libcuda.so.1 is installed here";
  }
  EXPECT_EQ(d, nullptr);
  EXPECT_TRUE(contains(why, "libcuda")) << why;
  EXPECT_TRUE(contains(why, "libcuda.so.1")) << why;  // the loader's own text
  std::string again;
  EXPECT_EQ(CudaDriver::get(&again), nullptr);  // remembered, same reason
  EXPECT_EQ(again, why);
}

TEST(CudaDriver, LibraryWithoutSymbolsIsRefused) {
  std::string why;
  EXPECT_EQ(CudaDriver::load({"libm.so.6"}, &why), nullptr);
  EXPECT_TRUE(contains(why, "lacks cuInit")) << why;
}

TEST(CudaDriver, ToolkitStubFailsInCuInit) {
  std::string stub = "/usr/local/cuda/lib64/stubs/libcuda.so";
  if (!file_exists(stub)) GTEST_SKIP() << "no " << stub;
  std::string why;
  EXPECT_EQ(CudaDriver::load({stub}, &why), nullptr);
  EXPECT_TRUE(contains(why, "cuInit failed: CUDA_ERROR_STUB_LIBRARY")) << why;
}

// Fake drivers compiled from cuda_functions.def: every entry point succeeds unless
// overridden, so the paths after cuInit run without a GPU. The symbols in `omit` (separated
// and surrounded by spaces) are left out, as in an older or partial driver.
namespace {

std::string build_fake_driver(const std::string& tag, int devices, const std::string& omit = "") {
  std::string dir = ::testing::TempDir();
  std::string c_file = dir + "fake_cuda_" + tag + ".c";
  std::string so_file = dir + "libfake_cuda_" + tag + ".so";
  const std::map<std::string, std::string> special = {
      {"cuDeviceGetCount", "int cuDeviceGetCount(int* n) { *n = " + std::to_string(devices) + "; return 0; }"},
      {"cuDriverGetVersion", "int cuDriverGetVersion(int* v) { *v = 13000; return 0; }"},
      {"cuDeviceGetAttribute",
       "int cuDeviceGetAttribute(int* v, int attr, int dev) { *v = attr == 75 ? 9 :"
       " attr == 76 ? 0 : attr == 16 ? 132 : attr == 10 ? 32 : 1000 + attr; return 0; }"},
      {"cuDeviceGetName", "int cuDeviceGetName(char* s, int len, int dev) { strncpy(s, \"Fake GPU\", len); return 0; }"},
      {"cuDeviceTotalMem_v2", "int cuDeviceTotalMem_v2(size_t* b, int dev) { *b = (size_t)80 << 30; return 0; }"},
      {"cuGetErrorName",
       "int cuGetErrorName(int e, const char** s) { *s = e == 2 ? \"CUDA_ERROR_OUT_OF_MEMORY\" : 0;"
       " return e == 2 ? 0 : 1; }"},
      {"cuGetErrorString",
       "int cuGetErrorString(int e, const char** s) { *s = e == 2 ? \"out of memory\" : 0; return e == 2 ? 0 : 1; }"},
      {"cuMemAlloc_v2", "int cuMemAlloc_v2(unsigned long long* p, size_t n) { return n > 1000 ? 2 : 0; }"}};
  std::ofstream out(c_file);
  out << "#include <string.h>\n#include <stddef.h>\n";
#define RK_CUDA_FN(name, symbol, required, params)                         \
  if (!contains(omit, std::string(" ") + symbol + " ")) {                   \
    auto it = special.find(symbol);                                         \
    out << (it != special.end() ? it->second : std::string("int ") + symbol + "() { return 0; }") << "\n"; \
  }
#include "cuda_functions.def"
#undef RK_CUDA_FN
  out.close();
  std::string cmd = "cc -shared -fPIC -o " + so_file + " " + c_file + " 2>&1";
  return std::system(cmd.c_str()) == 0 ? so_file : "";
}

// The symbols of cuda_functions.def rows marked optional (" a b ... ").
std::string optional_symbols() {
  std::string s = " ";
#define RK_CUDA_FN(name, symbol, required, params) \
  if (!(required)) s += std::string(symbol) + " ";
#include "cuda_functions.def"
#undef RK_CUDA_FN
  return s;
}

}  // namespace

TEST(CudaDriver, FakeDriverWithNoDevice) {
  std::string so = build_fake_driver("nodev", 0);
  if (so.empty()) GTEST_SKIP() << "no C compiler to build the fake driver";
  std::string why;
  EXPECT_EQ(CudaDriver::load({so}, &why), nullptr);
  EXPECT_TRUE(contains(why, "no GPU")) << why;
}

TEST(CudaDriver, FakeDriverDeviceInfoAndErrors) {
  std::string so = build_fake_driver("onedev", 1);
  if (so.empty()) GTEST_SKIP() << "no C compiler to build the fake driver";
  std::string why;
  std::unique_ptr<CudaDriver> d = CudaDriver::load({"/nonexistent/libcuda.so.1", so}, &why);
  ASSERT_NE(d, nullptr) << why;
  EXPECT_EQ(d->device_count(), 1);
  EXPECT_EQ(d->driver_version(), 13000);
  EXPECT_EQ(d->library_path(), so);
  CudaDriver::DeviceInfo info = d->info(0);
  EXPECT_EQ(info.name, "Fake GPU");
  EXPECT_EQ(info.cc_major, 9);
  EXPECT_EQ(info.cc_minor, 0);
  EXPECT_EQ(info.sm_count, 132);
  EXPECT_EQ(info.warp_size, 32);
  EXPECT_EQ(info.max_threads_per_block, 1001);
  EXPECT_EQ(info.max_shared_per_block_optin, 1097);
  EXPECT_EQ(info.total_mem, size_t(80) << 30);
  EXPECT_EQ(d->context(0), nullptr);  // the fake's retain leaves it null; no throw

  try {
    d->info(1);
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_EQ(e.kind, "gpu");
    EXPECT_TRUE(contains(e.what(), "GPU device 1 does not exist")) << e.what();
  }
  CUdeviceptr p = 0;
  try {
    d->check(d->cuMemAlloc(&p, 1u << 20), "cuMemAlloc");
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_EQ(e.kind, "gpu");
    EXPECT_TRUE(contains(e.what(), "cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)")) << e.what();
  }
  EXPECT_NO_THROW(d->check(d->cuMemAlloc(&p, 10), "cuMemAlloc"));
  try {
    d->check(700, "cuLaunchKernel");
    FAIL() << "expected InternalError";
  } catch (const InternalError& e) {
    EXPECT_TRUE(contains(e.what(), "cuLaunchKernel failed: CUDA error 700")) << e.what();
  }
}

// A driver lacking every optional entry point, and the driver functions rkeops never calls,
// still gives a usable GPU; the messages fall back to the codes' names and numbers.
TEST(CudaDriver, FakeDriverWithoutOptionalSymbolsLoads) {
  const std::string optional = optional_symbols();
  ASSERT_TRUE(contains(optional, " cuGetErrorName ")) << optional;
  ASSERT_TRUE(contains(optional, " cuEventElapsedTime ")) << optional;
  std::string so = build_fake_driver("optional", 1, optional);
  if (so.empty()) GTEST_SKIP() << "no C compiler to build the fake driver";
  // entry points of the driver API that rkeops does not use: absent from the fake
  DynLib lib(so);
  for (const char* unused : {"cuCtxSynchronize", "cuStreamDestroy_v2", "cuModuleUnload", "cuMemsetD32Async",
                             "cuFuncSetAttribute", "cuEventDestroy_v2"})
    EXPECT_EQ(lib.sym(unused), nullptr) << unused;
  std::string why;
  std::unique_ptr<CudaDriver> d = CudaDriver::load({so}, &why);
  ASSERT_NE(d, nullptr) << why;
  EXPECT_EQ(d->device_count(), 1);
  EXPECT_EQ(d->driver_version(), 0);  // cuDriverGetVersion is missing
  EXPECT_EQ(d->cuGetErrorName, nullptr);
  EXPECT_EQ(d->cuEventElapsedTime, nullptr);
  EXPECT_NE(d->cuLaunchKernel, nullptr);
  EXPECT_EQ(d->info(0).name, "Fake GPU");
  EXPECT_EQ(d->error_text(2), "CUDA_ERROR_OUT_OF_MEMORY");
  EXPECT_EQ(d->error_text(700), "CUDA error 700");
  CUdeviceptr p = 0;
  try {
    d->check(d->cuMemAlloc(&p, 1u << 20), "cuMemAlloc");
    FAIL() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_TRUE(contains(e.what(), "cuMemAlloc failed: CUDA_ERROR_OUT_OF_MEMORY; free GPU memory")) << e.what();
  }
}

// A driver lacking a function rkeops calls is refused, and the reason names it.
TEST(CudaDriver, FakeDriverWithoutARequiredSymbolIsRefused) {
  std::string so = build_fake_driver("required", 1, " cuLaunchKernel ");
  if (so.empty()) GTEST_SKIP() << "no C compiler to build the fake driver";
  std::string why;
  EXPECT_EQ(CudaDriver::load({so}, &why), nullptr);
  EXPECT_TRUE(contains(why, "lacks cuLaunchKernel")) << why;
  EXPECT_TRUE(contains(why, "the NVIDIA driver is too old")) << why;
}

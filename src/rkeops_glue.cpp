// The only file that includes Rcpp: R objects <-> engine types. Every entry point runs
// inside RKEOPS_BEGIN / RKEOPS_END, which turns engine exceptions into an error record
// (a list of class "rkeops_error_record") that R/conditions.R re-raises as a classed
// condition; no C++ exception ever crosses into R.
#include <R_ext/Rdynload.h>
#include <Rcpp.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "engine/batch.h"
#include "engine/engine.h"

using namespace rkeops;

namespace {

SEXP error_record(const std::string& kind, const std::string& msg, const std::string& log = "",
                  const std::string& compiler = "", const std::string& options = "",
                  const std::string& source_path = "") {
  Rcpp::List rec = Rcpp::List::create(Rcpp::Named("kind") = kind, Rcpp::Named("message") = msg,
                                      Rcpp::Named("log") = log, Rcpp::Named("compiler") = compiler,
                                      Rcpp::Named("options") = options, Rcpp::Named("source_path") = source_path);
  rec.attr("class") = "rkeops_error_record";
  return rec;
}

#define RKEOPS_BEGIN try {
#define RKEOPS_END                                                                         \
  }                                                                                        \
  catch (const rkeops::UserError& e) {                                                     \
    return error_record(e.kind, e.what());                                                 \
  }                                                                                        \
  catch (const rkeops::CompileError& e) {                                                  \
    return error_record("compile", e.what(), e.log, e.compiler, e.options, e.source_path); \
  }                                                                                        \
  catch (const rkeops::Interrupted& e) {                                                   \
    return error_record("interrupt", e.what());                                            \
  }                                                                                        \
  catch (const rkeops::InternalError& e) {                                                 \
    return error_record("internal", e.what());                                             \
  }                                                                                        \
  catch (const std::bad_alloc&) {                                                          \
    return error_record("memory", "out of memory");                                        \
  }                                                                                        \
  catch (const std::exception& e) {                                                        \
    return error_record("internal", e.what());                                             \
  }                                                                                        \
  catch (...) {                                                                            \
    return error_record("internal", "unknown C++ exception");                              \
  }                                                                                        \
  return R_NilValue;

std::vector<std::string> strings(SEXP x) {
  std::vector<std::string> v;
  if (TYPEOF(x) != STRSXP) return v;
  for (R_xlen_t k = 0; k < XLENGTH(x); ++k) v.push_back(CHAR(STRING_ELT(x, k)));
  return v;
}

// inner_dim = "row" (one column per point) or "col" (one row per point, also for NULL).
InputLayout input_layout(SEXP inner_dim) {
  bool by_col =
      TYPEOF(inner_dim) == STRSXP && XLENGTH(inner_dim) == 1 && std::string(CHAR(STRING_ELT(inner_dim, 0))) == "row";
  return by_col ? InputLayout::PointsInColumns : InputLayout::PointsInRows;
}

// ---- device-resident matrices (rkeops_device() in R/device.R) ----
// An external pointer (class "rkeops_device") to a heap-held shared_ptr<DeviceMatrix>; its
// protected value is the host matrix (marked not mutable: R copies before any change), so
// the engine's host pointer stays valid while the object lives. The finalizer frees the
// device copies (an input of a running call keeps its own reference).
using DeviceHolder = std::shared_ptr<DeviceMatrix>;

void device_finalizer(SEXP p) {
  auto* h = static_cast<DeviceHolder*>(R_ExternalPtrAddr(p));
  if (!h) return;
  R_ClearExternalPtr(p);
  delete h;
}

bool is_device(SEXP x) { return TYPEOF(x) == EXTPTRSXP && Rf_inherits(x, "rkeops_device"); }

DeviceHolder& device_of(SEXP x, const std::string& what) {
  auto* h = static_cast<DeviceHolder*>(R_ExternalPtrAddr(x));
  if (!h || !*h)
    throw UserError("input", what + " is a device matrix that was released or restored from a saved session; "
                                    "make it again with rkeops_device()");
  return *h;
}

// One input: a double matrix (rows = points; a vector is one column) or a device matrix.
Input engine_input(SEXP x, R_xlen_t t) {
  Input u;
  if (is_device(x)) {
    u.device = device_of(x, "input " + std::to_string(t + 1));
    u.data = u.device->host();
    u.rows = u.device->rows();
    u.cols = u.device->cols();
    return u;
  }
  if (TYPEOF(x) != REALSXP) throw UserError("input", "input " + std::to_string(t + 1) + " is not a double matrix");
  SEXP dim = Rf_getAttrib(x, R_DimSymbol);
  u.data = REAL(x);
  if (dim != R_NilValue && XLENGTH(dim) == 2) {
    u.rows = INTEGER(dim)[0];
    u.cols = INTEGER(dim)[1];
  } else {
    u.rows = XLENGTH(x);
    u.cols = 1;
  }
  return u;
}

// A list of inputs as engine_input() reads them, in position order.
std::vector<Input> engine_inputs(SEXP inputs) {
  std::vector<Input> in;
  for (R_xlen_t t = 0; t < XLENGTH(inputs); ++t) in.push_back(engine_input(VECTOR_ELT(inputs, t), t));
  return in;
}

// A benchmark switch: the integer in environment variable `name`, within [lo, hi], into
// `field`; unset: `field` keeps its value.
void env_switch(const char* name, int lo, int hi, int* field) {
  if (const char* v = std::getenv(name)) *field = std::max(lo, std::min(hi, std::atoi(v)));
}

// Engine options from the R list built by R/options.R (.rk_engine_options()).
EngineOptions engine_options(SEXP opts) {
  Rcpp::List o(opts);
  EngineOptions e;
  std::string precision = Rcpp::as<std::string>(o["precision"]);
  e.code.dtype = precision == "float32"   ? DType::Float32
                 : precision == "float16" ? DType::Float16
                                          : DType::Float64;
  std::string scheme = Rcpp::as<std::string>(o["sum_scheme"]);
  e.code.scheme = scheme == "direct_sum"     ? SumScheme::Direct
                  : scheme == "block_sum"    ? SumScheme::Block
                  : scheme == "kahan_scheme" ? SumScheme::Kahan
                                             : SumScheme::Auto;
  // Benchmark switches (code_options.h, engine.h): RKEOPS_CUDA_ROWS, outer rows per GPU thread
  // of the generic scheme (0: chosen); RKEOPS_CUDA_HD_MMA, the high-dimension scheme's tensor
  // cores; RKEOPS_CUDA_HD_SPLIT, how they split float32 values; RKEOPS_CUDA_PRESCALE, 0: no
  // prescaled Gaussian folds, 1: without their inner-product form; RKEOPS_SPARSE_PIECES and
  // RKEOPS_SPARSE_SPLITS, a GPU block-sparse call's pieces and splits (0: chosen).
  constexpr int kAny = INT_MAX;
  env_switch("RKEOPS_CUDA_ROWS", 0, kAny, &e.code.cuda_rows);
  env_switch("RKEOPS_CUDA_HD_MMA", 0, kAny, &e.code.cuda_hd_mma);
  env_switch("RKEOPS_CUDA_HD_SPLIT", 0, 2, &e.code.cuda_hd_split);
  env_switch("RKEOPS_CUDA_PRESCALE", 0, 2, &e.code.cuda_prescale);
  env_switch("RKEOPS_CUDA_F16_TC", 0, kAny, &e.code.cuda_f16_tc);
  env_switch("RKEOPS_SPARSE_PIECES", 0, kAny, &e.sparse_pieces);
  env_switch("RKEOPS_SPARSE_SPLITS", 0, kAny, &e.sparse_splits);
  e.backend = Rcpp::as<std::string>(o["backend"]) == "GPU" ? Backend::GPU : Backend::CPU;
  e.device = Rcpp::as<int>(o["device_id"]);
  if (o.containsElementNamed("devices")) e.devices = Rcpp::as<std::vector<int>>(o["devices"]);
  e.nthreads = Rcpp::as<int>(o["nthreads"]);
  e.cache_dir = Rcpp::as<std::string>(o["cache_dir"]);
  e.fallback_cache_dir = Rcpp::as<std::string>(o["fallback_cache_dir"]);
  e.compile_timeout = Rcpp::as<double>(o["compile_timeout"]);
  e.include_dir = Rcpp::as<std::string>(o["include_dir"]);
  e.compiler.cxx = Rcpp::as<std::string>(o["cxx"]);
  e.compiler.flags = Rcpp::as<std::string>(o["cxxflags"]);
  e.compiler.openmp = Rcpp::as<std::string>(o["openmp"]);
  e.forbid_compile = Rcpp::as<bool>(o["forbid_compile"]);
  e.layout = input_layout(o.containsElementNamed("inner_dim") ? static_cast<SEXP>(o["inner_dim"]) : R_NilValue);
  if (o.containsElementNamed("ranges") && !Rf_isNull(o["ranges"])) {  // R's .rk_ranges_for()
    Rcpp::List r(static_cast<SEXP>(o["ranges"]));
    auto br = std::make_shared<BlockRanges>();
    br->outer = Rcpp::as<std::vector<int>>(r["outer"]);
    br->slices = Rcpp::as<std::vector<int>>(r["slices"]);
    br->inner = Rcpp::as<std::vector<int>>(r["inner"]);
    e.ranges = br;
  }
  set_verbose(Rcpp::as<bool>(o["verbosity"]));
  return e;
}

// Polls for a user interrupt without letting R longjmp through C++ frames.
void check_interrupt_fn(void*) { R_CheckUserInterrupt(); }
bool interrupted() { return R_ToplevelExec(check_interrupt_fn, nullptr) == FALSE; }

// An allocator for the engine's results: a fresh R matrix held in `out`.
std::function<double*(long long, int)> matrix_alloc(Rcpp::NumericMatrix& out) {
  return [&out](long long rows, int cols) {
    if (rows > INT_MAX) throw UserError("memory", "a result of " + std::to_string(rows) + " rows is too large for R");
    // (not zero-filled: the engine writes every value of its result, so a fill would only be
    // one more pass over it: about 1 ms for a result of 1e6 rows)
    out = Rcpp::NumericMatrix(Rcpp::no_init(static_cast<int>(rows), cols));
    return out.begin();
  };
}

// What the engine logged (verbose mode) since R last asked: R/conditions.R's .rk_call() gives
// the lines out as R messages after each call, so the engine never calls R.
std::mutex g_log_mutex;
std::vector<std::string> g_log;
void collect_log(const std::string& m) {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  g_log.push_back(m);
}

const char* cat_name(int cat) { return cat == 0 ? "Vi" : cat == 1 ? "Vj" : "Pm"; }  // FormulaInfo::Arg::cat

}  // namespace

extern "C" {

// Parses a formula; returns its description (inputs, reduction, axis, output size and layout).
SEXP rk_parse(SEXP formula, SEXP aliases) {
  RKEOPS_BEGIN
  FormulaInfo f = describe_formula(Rcpp::as<std::string>(formula), strings(aliases));
  Rcpp::CharacterVector names, cats, labels;
  Rcpp::IntegerVector pos, dims;
  for (size_t k = 0; k < f.args.size(); ++k) {
    names.push_back(f.args[k].name);
    labels.push_back(f.args[k].label);
    cats.push_back(cat_name(f.args[k].cat));
    pos.push_back(static_cast<int>(k));
    dims.push_back(f.args[k].dim);
  }
  return Rcpp::List::create(Rcpp::Named("var_name") = names, Rcpp::Named("var_type") = cats,
                            Rcpp::Named("var_pos") = pos, Rcpp::Named("var_dim") = dims,
                            Rcpp::Named("var_label") = labels, Rcpp::Named("reduction") = f.reduction,
                            Rcpp::Named("axis") = f.axis, Rcpp::Named("K") = f.K, Rcpp::Named("formula_dim") = f.d,
                            Rcpp::Named("weight_dim") = f.dw, Rcpp::Named("out_dim") = f.out_dim,
                            Rcpp::Named("layout") = f.layout, Rcpp::Named("canonical") = f.canonical,
                            Rcpp::Named("formula_text") = f.formula_text, Rcpp::Named("weight_text") = f.weight_text);
  RKEOPS_END
}

// The dimension of the operation `op` on arguments of dimensions `dims` with integer parameters
// `params` (the engine's rule); `where` names the operation in a dimension error.
SEXP rk_op_dim(SEXP op, SEXP dims, SEXP params, SEXP where) {
  RKEOPS_BEGIN
  return Rcpp::wrap(operation_dim(Rcpp::as<std::string>(op), Rcpp::as<std::vector<int>>(dims),
                                  Rcpp::as<std::vector<int>>(params), Rcpp::as<std::string>(where)));
  RKEOPS_END
}

// Checks inputs as rk_run does, without running (inner_dim: "col" or "row", for the wording).
SEXP rk_check_inputs(SEXP formula, SEXP aliases, SEXP inputs, SEXP inner_dim) {
  RKEOPS_BEGIN
  return Rcpp::wrap(static_cast<double>(
      check_call(Rcpp::as<std::string>(formula), strings(aliases), engine_inputs(inputs), input_layout(inner_dim))));
  RKEOPS_END
}

// The gradient of a reduction with respect to its input at 0-based position `var` (see
// GradientInfo in engine.h); R's keops_grad() and grad() run it.
SEXP rk_grad_plan(SEXP formula, SEXP aliases, SEXP var) {
  RKEOPS_BEGIN
  GradientInfo g = gradient_of(Rcpp::as<std::string>(formula), strings(aliases), Rcpp::as<int>(var));
  Rcpp::List extra;
  for (auto& x : g.extra)
    extra.push_back(Rcpp::List::create(Rcpp::Named("name") = x.name, Rcpp::Named("type") = cat_name(x.cat),
                                       Rcpp::Named("dim") = x.dim, Rcpp::Named("forward") = x.forward,
                                       Rcpp::Named("col0") = x.col0));
  return Rcpp::List::create(Rcpp::Named("zero") = g.zero, Rcpp::Named("formula") = g.formula,
                            Rcpp::Named("args") = g.aliases, Rcpp::Named("eta") = g.eta,
                            Rcpp::Named("eta_type") = cat_name(g.eta_cat), Rcpp::Named("eta_dim") = g.eta_dim,
                            Rcpp::Named("extra") = extra);
  RKEOPS_END
}

// Runs a reduction: inputs is a list of double matrices (rows = points), in position order.
SEXP rk_run(SEXP formula, SEXP aliases, SEXP inputs, SEXP opts) {
  RKEOPS_BEGIN
  EngineOptions o = engine_options(opts);
  std::vector<Input> in = engine_inputs(inputs);
  Rcpp::NumericMatrix out;
  double secs = run_reduction(Rcpp::as<std::string>(formula), strings(aliases), in, o, matrix_alloc(out), interrupted);
  out.attr("compile_seconds") = secs;
  return out;
  RKEOPS_END
}

// Runs a batch of problems in one reduction (batch.h; R/batch.R). `own`: per input, NULL for an
// input shared by every problem (read as rk_run reads it), else its batch shape, the input being
// a double array c(own, n, d) read in place. The result is R's array c(shape, n_out, out_dim)
// as a (B * n_out) x out_dim matrix (R sets its dimensions).
SEXP rk_run_batched(SEXP formula, SEXP aliases, SEXP inputs, SEXP opts, SEXP own, SEXP shape) {
  RKEOPS_BEGIN
  EngineOptions o = engine_options(opts);
  std::vector<BatchInput> in;
  for (R_xlen_t t = 0; t < XLENGTH(inputs); ++t) {
    SEXP x = VECTOR_ELT(inputs, t), ow = VECTOR_ELT(own, t);
    BatchInput b;
    if (Rf_isNull(ow)) {
      b.in = engine_input(x, t);
    } else {
      SEXP dim = Rf_getAttrib(x, R_DimSymbol);
      b.own = Rcpp::as<std::vector<int>>(ow);
      if (TYPEOF(x) != REALSXP || dim == R_NilValue || XLENGTH(dim) != static_cast<R_xlen_t>(b.own.size()) + 2)
        throw UserError("input", "input " + std::to_string(t + 1) + " is not a double array c(B1, ..., Bk, n, d)");
      b.in.data = REAL(x);
      b.in.rows = INTEGER(dim)[b.own.size()];
      b.in.cols = INTEGER(dim)[b.own.size() + 1];
    }
    in.push_back(b);
  }
  Rcpp::NumericMatrix out;
  double secs = run_batched(Rcpp::as<std::string>(formula), strings(aliases), in, Rcpp::as<std::vector<int>>(shape),
                            o, matrix_alloc(out), interrupted);
  out.attr("compile_seconds") = secs;
  return out;
  RKEOPS_END
}

// The partial states of a piece of the reduced index (see run_partial in engine.h).
SEXP rk_run_partial(SEXP formula, SEXP aliases, SEXP inputs, SEXP opts, SEXP jbase) {
  RKEOPS_BEGIN
  EngineOptions o = engine_options(opts);
  std::vector<Input> in = engine_inputs(inputs);
  Rcpp::NumericMatrix out;
  run_partial(Rcpp::as<std::string>(formula), strings(aliases), in, o, static_cast<long long>(Rcpp::as<double>(jbase)),
              matrix_alloc(out), interrupted);
  return out;
  RKEOPS_END
}

// Merges partial states (a list of matrices, in the order of their pieces): the result, or
// (final = FALSE) the merged state.
SEXP rk_merge_partials(SEXP formula, SEXP aliases, SEXP parts, SEXP opts, SEXP final) {
  RKEOPS_BEGIN
  EngineOptions o = engine_options(opts);
  std::vector<Input> p = engine_inputs(parts);
  std::vector<const double*> ptr;
  for (const Input& u : p) {
    if (u.rows != p[0].rows || u.cols != p[0].cols)
      throw UserError("input", "partial states to merge must all have the same size");
    ptr.push_back(u.data);
  }
  if (!p.empty()) {
    const int w = state_width(Rcpp::as<std::string>(formula), strings(aliases), o);
    if (p[0].cols != w)
      throw UserError("dimension", "partial states of this reduction have " + std::to_string(w) + " columns, got " +
                                       std::to_string(p[0].cols));
  }
  Rcpp::NumericMatrix out;
  merge_partials(Rcpp::as<std::string>(formula), strings(aliases), ptr, p.empty() ? 0 : p[0].rows, o,
                 Rcpp::as<bool>(final), matrix_alloc(out));
  return out;
  RKEOPS_END
}

// The generated CPU source of a kernel (tests of code size, and the curious).
SEXP rk_source(SEXP formula, SEXP aliases, SEXP opts) {
  RKEOPS_BEGIN
  EngineOptions o = engine_options(opts);
  o.backend = Backend::CPU;
  return Rcpp::wrap(kernel_source(Rcpp::as<std::string>(formula), strings(aliases), o));
  RKEOPS_END
}

SEXP rk_cache_stats(SEXP dir) {
  RKEOPS_BEGIN
  CacheStats s = cache_stats(Rcpp::as<std::string>(dir));
  return Rcpp::List::create(Rcpp::Named("files") = static_cast<double>(s.files),
                            Rcpp::Named("bytes") = static_cast<double>(s.bytes));
  RKEOPS_END
}

// Removes the kernels in `dir`; with `remove_dir`, the directory too (see clean_cache).
SEXP rk_cache_clean(SEXP dir, SEXP remove_dir) {
  RKEOPS_BEGIN
  clean_cache(Rcpp::as<std::string>(dir), Rcpp::as<bool>(remove_dir));
  return Rcpp::wrap(true);
  RKEOPS_END
}

// Names of every formula operation and reduction (the tests sweep them).
SEXP rk_op_table() {
  RKEOPS_BEGIN
  LanguageInfo l = language();
  return Rcpp::List::create(Rcpp::Named("ops") = l.ops, Rcpp::Named("sig") = l.signatures,
                            Rcpp::Named("reductions") = l.reductions,
                            Rcpp::Named("engine_version") = std::string(kEngineVersion));
  RKEOPS_END
}

// The engine's log lines collected since the last call, and forgets them.
SEXP rk_take_log() {
  RKEOPS_BEGIN
  std::vector<std::string> lines;
  {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    lines.swap(g_log);
  }
  return Rcpp::wrap(lines);
  RKEOPS_END
}

// A device matrix on the double matrix `x` (one row per point), its copy made now for the
// options' backend and precision (none on the CPU backend).
SEXP rk_device_new(SEXP x, SEXP opts) {
  RKEOPS_BEGIN
  if (TYPEOF(x) != REALSXP) throw UserError("input", "a device matrix is made from a double matrix");
  EngineOptions o = engine_options(opts);
  SEXP dim = Rf_getAttrib(x, R_DimSymbol);
  const long long rows = dim != R_NilValue && XLENGTH(dim) == 2 ? INTEGER(dim)[0] : XLENGTH(x);
  const long long cols = dim != R_NilValue && XLENGTH(dim) == 2 ? INTEGER(dim)[1] : 1;
  MARK_NOT_MUTABLE(x);
  auto* h = new DeviceHolder(std::make_shared<DeviceMatrix>(REAL(x), rows, cols));
  SEXP p = PROTECT(R_MakeExternalPtr(h, R_NilValue, x));
  R_RegisterCFinalizerEx(p, device_finalizer, FALSE);
  try {
    upload_device_matrix(**h, o);
  } catch (...) {
    UNPROTECT(1);
    throw;
  }
  UNPROTECT(1);
  return p;
  RKEOPS_END
}

// The host matrix of a device matrix, its size and the bytes its copies hold on GPUs; with
// `release`, frees those copies first.
SEXP rk_device_info(SEXP p, SEXP release) {
  RKEOPS_BEGIN
  if (!is_device(p)) throw UserError("input", "not a device matrix");
  DeviceHolder& h = device_of(p, "the device matrix");
  if (Rcpp::as<bool>(release)) h->release();
  return Rcpp::List::create(Rcpp::Named("host") = R_ExternalPtrProtected(p),
                            Rcpp::Named("rows") = static_cast<double>(h->rows()),
                            Rcpp::Named("cols") = static_cast<double>(h->cols()),
                            Rcpp::Named("device_bytes") = static_cast<double>(h->device_bytes()));
  RKEOPS_END
}

// ---- the CUDA backend (begin) ----
// What the GPU path can use, and the time split of the last GPU run (bench/gpu.R).
SEXP rk_gpu_info(SEXP always_nvrtc) {
  RKEOPS_BEGIN
  GpuStatus s = gpu_status(Rcpp::as<bool>(always_nvrtc));
  Rcpp::CharacterVector names;
  Rcpp::IntegerVector ccmaj, ccmin, sms;
  Rcpp::NumericVector mem;
  for (auto& d : s.devices) {
    names.push_back(d.name);
    ccmaj.push_back(d.cc_major);
    ccmin.push_back(d.cc_minor);
    sms.push_back(d.sm_count);
    mem.push_back(d.memory_gb);
  }
  GpuRunStats r = last_gpu_run();
  Rcpp::List last = Rcpp::List::create(
      Rcpp::Named("valid") = r.valid, Rcpp::Named("convert_ms") = r.convert_ms, Rcpp::Named("h2d_ms") = r.h2d_ms,
      Rcpp::Named("kernel_ms") = r.kernel_ms, Rcpp::Named("merge_ms") = r.merge_ms, Rcpp::Named("d2h_ms") = r.d2h_ms,
      Rcpp::Named("total_ms") = r.total_ms, Rcpp::Named("first_launch_ms") = r.first_launch_ms,
      Rcpp::Named("regs") = r.regs, Rcpp::Named("local_bytes") = r.local_bytes,
      Rcpp::Named("shared_bytes") = r.shared_bytes, Rcpp::Named("block") = r.block,
      Rcpp::Named("grid_x") = static_cast<double>(r.grid_x), Rcpp::Named("nsplit") = r.nsplit,
      Rcpp::Named("chunks_outer") = r.chunks_outer, Rcpp::Named("chunks_inner") = r.chunks_inner,
      Rcpp::Named("compile_seconds") = r.compile_seconds);
  return Rcpp::List::create(
      Rcpp::Named("usable") = s.usable, Rcpp::Named("driver") = s.driver, Rcpp::Named("nvrtc") = s.nvrtc,
      Rcpp::Named("names") = names, Rcpp::Named("cc_major") = ccmaj, Rcpp::Named("cc_minor") = ccmin,
      Rcpp::Named("sm_count") = sms, Rcpp::Named("memory_gb") = mem, Rcpp::Named("last_run") = last);
  RKEOPS_END
}

// Creates the CUDA context of GPU `device` now; returns the seconds it took.
SEXP rk_gpu_open(SEXP device) {
  RKEOPS_BEGIN
  return Rcpp::wrap(open_gpu_context(Rcpp::as<int>(device)));
  RKEOPS_END
}

// The generated CUDA source of a kernel; with opts$compile_arch (e.g. 90) also compiles it
// with NVRTC for that architecture (no GPU needed) and returns whether it compiled and the log.
SEXP rk_cuda_source(SEXP formula, SEXP aliases, SEXP opts) {
  RKEOPS_BEGIN
  EngineOptions o = engine_options(opts);
  o.backend = Backend::GPU;
  std::string src = kernel_source(Rcpp::as<std::string>(formula), strings(aliases), o);
  Rcpp::List ol(opts);
  int arch = ol.containsElementNamed("compile_arch") ? Rcpp::as<int>(ol["compile_arch"]) : 0;
  if (arch <= 0) return Rcpp::wrap(src);
  std::string log;
  bool ok = nvrtc_compiles(src, arch, &log);
  return Rcpp::List::create(Rcpp::Named("source") = src, Rcpp::Named("compiled") = ok, Rcpp::Named("log") = log);
  RKEOPS_END
}
// ---- the CUDA backend (end) ----

static const R_CallMethodDef kCallMethods[] = {{"rk_parse", (DL_FUNC)&rk_parse, 2},
                                               {"rk_op_dim", (DL_FUNC)&rk_op_dim, 4},
                                               {"rk_check_inputs", (DL_FUNC)&rk_check_inputs, 4},
                                               {"rk_grad_plan", (DL_FUNC)&rk_grad_plan, 3},
                                               {"rk_run", (DL_FUNC)&rk_run, 4},
                                               {"rk_run_batched", (DL_FUNC)&rk_run_batched, 6},
                                               {"rk_run_partial", (DL_FUNC)&rk_run_partial, 5},
                                               {"rk_merge_partials", (DL_FUNC)&rk_merge_partials, 5},
                                               {"rk_source", (DL_FUNC)&rk_source, 3},
                                               {"rk_cache_stats", (DL_FUNC)&rk_cache_stats, 1},
                                               {"rk_cache_clean", (DL_FUNC)&rk_cache_clean, 2},
                                               {"rk_op_table", (DL_FUNC)&rk_op_table, 0},
                                               {"rk_take_log", (DL_FUNC)&rk_take_log, 0},
                                               {"rk_device_new", (DL_FUNC)&rk_device_new, 2},
                                               {"rk_device_info", (DL_FUNC)&rk_device_info, 2},
                                               {"rk_gpu_info", (DL_FUNC)&rk_gpu_info, 1},
                                               {"rk_gpu_open", (DL_FUNC)&rk_gpu_open, 1},
                                               {"rk_cuda_source", (DL_FUNC)&rk_cuda_source, 3},
                                               {nullptr, nullptr, 0}};

void R_init_rkeops(DllInfo* dll) {
  R_registerRoutines(dll, nullptr, kCallMethods, nullptr, nullptr);
  R_useDynamicSymbols(dll, FALSE);
  set_logger(collect_log);
}

}  // extern "C"

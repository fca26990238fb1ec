// The facade (engine.h) and the session's kernels.
#include "engine.h"

#include <map>

#include "cache.h"
#include "codegen_cpu.h"
#include "codegen_cuda.h"
#include "kernel.h"
#include "launch_cpu.h"
#include "launch_cuda.h"
#include "nvrtc.h"
#include "ops.h"

namespace rkeops {

const char* const kEngineVersion = "rkeops-engine 0.1.0";

namespace {

std::map<std::string, std::shared_ptr<Kernel>>& session() {
  static std::map<std::string, std::shared_ptr<Kernel>> kernels;
  return kernels;
}

// Forgets the kernels loaded in this session (after the cache directory was cleaned).
void clear_session_kernels() { session().clear(); }

const char* cat_name(int cat) { return cat == CAT_I ? "Vi" : cat == CAT_J ? "Vj" : "Pm"; }

std::string options_key(const EngineOptions& o) {
  std::string devices;
  for (int d : o.devices) devices += std::to_string(d) + ",";
  return o.code.key() + "|" + std::to_string(static_cast<int>(o.backend)) + "|" + std::to_string(o.device) + "|" +
         devices + "|" + o.cache_dir + "|" + o.include_dir + "|" + o.compiler.cxx + "|" + o.compiler.flags + "|" +
         o.compiler.openmp;
}

}  // namespace

std::string arg_label(const Formula& f, size_t k) {
  const ArgInfo& a = f.args[k];
  std::string s = "input " + std::to_string(k + 1) + " (";
  if (!a.name.empty()) s += "'" + a.name + "', ";
  return s + cat_name(a.cat) + "(" + std::to_string(a.dim) + "))";
}

CallShape check_inputs(const Formula& f, const std::vector<Input>& in, InputLayout layout) {
  // The caller's words for the engine's rows (points) and columns (values per point).
  const bool by_col = layout == InputLayout::PointsInColumns;
  const std::string rows = by_col ? "columns" : "rows", vals = by_col ? "row(s)" : "column(s)";
  const std::string per = by_col ? " (one column per point)" : " (one row per point)";
  if (in.size() != f.args.size())
    throw UserError("input", "the formula has " + std::to_string(f.args.size()) + " input(s) but " +
                                 std::to_string(in.size()) + " were given");
  CallShape s;
  long long n[2] = {-1, -1};
  int first[2] = {-1, -1};
  for (size_t k = 0; k < in.size(); ++k) {
    const ArgInfo& a = f.args[k];
    const Input& x = in[k];
    if (!x.data && x.rows * x.cols > 0) throw UserError("input", arg_label(f, k) + " has no data");
    if (a.cat == CAT_P) {
      if (x.rows * x.cols != a.dim)
        throw UserError("dimension", arg_label(f, k) + " must hold " + std::to_string(a.dim) + " value(s), got " +
                                         std::to_string(x.rows * x.cols));
      continue;
    }
    if (x.cols != a.dim)
      throw UserError("dimension", arg_label(f, k) + " must have " + std::to_string(a.dim) + " " + vals + per +
                                       ", got " + std::to_string(x.cols));
    if (x.rows < 1) throw UserError("input", arg_label(f, k) + " has no " + rows + " (no points)");
    if (x.rows > (1LL << 40)) throw UserError("input", arg_label(f, k) + " has too many " + rows);
    int c = a.cat;
    if (n[c] < 0) {
      n[c] = x.rows;
      first[c] = static_cast<int>(k);
    } else if (n[c] != x.rows)
      throw UserError("dimension", "all " + std::string(cat_name(c)) + " inputs must have the same number of " + rows +
                                       " (points): " + arg_label(f, first[c]) + " has " + std::to_string(n[c]) + ", " +
                                       arg_label(f, k) + " has " + std::to_string(x.rows));
  }
  s.n_i = n[0] < 0 ? 1 : n[0];
  s.n_j = n[1] < 0 ? 1 : n[1];
  s.out_rows = f.axis == 1 ? s.n_i : s.n_j;
  // K larger than the number of points reduced over is padded as KeOps does: +Inf values and
  // index 0 in the missing ranks (the K-min lists start empty).
  return s;
}

namespace {
std::string session_key(const std::string& formula, const std::vector<std::string>& aliases, const EngineOptions& opt) {
  std::string key = formula + "\x1f";
  for (auto& a : aliases) key += a + "\x1e";
  return key + "\x1f" + options_key(opt);
}
}  // namespace

std::shared_ptr<Kernel> get_kernel(const std::string& formula, const std::vector<std::string>& aliases,
                                   const EngineOptions& opt, const std::function<bool()>& interrupted) {
  const std::string key = session_key(formula, aliases, opt);
  auto& mem = session();
  auto it = mem.find(key);
  if (it != mem.end()) return it->second;
  if (opt.backend == Backend::CPU && opt.code.dtype == DType::Float16)
    throw UserError("option", "float16 (rkeops_use_float16()) runs on the GPU only: the CPU backend computes in "
                              "float32 or float64 (rkeops_use_float32(), rkeops_use_float64())");
  if (opt.backend == Backend::GPU && opt.devices.size() > 1) {  // several GPUs
    std::shared_ptr<Kernel> k = load_multi_gpu_kernel(formula, aliases, opt, interrupted);
    mem[key] = k;
    return k;
  }
  Formula f = parse_formula(formula, aliases);
  std::shared_ptr<Kernel> k;
  CompileWatch watch;
  watch.interrupted = interrupted;
  watch.timeout_seconds = opt.compile_timeout;
  if (opt.backend == Backend::CPU) {
    k = load_cpu_kernel(std::move(f), opt, watch);
  } else {
    k = load_cuda_kernel(std::move(f), opt, watch);  // the CUDA backend (launch_cuda.cpp)
  }
  mem[key] = k;
  return k;
}

// ---- the facade ----

FormulaInfo describe_formula(const std::string& formula, const std::vector<std::string>& aliases) {
  Formula f = parse_formula(formula, aliases);
  FormulaInfo r;
  for (size_t k = 0; k < f.args.size(); ++k)
    r.args.push_back({f.args[k].name, f.args[k].cat, f.args[k].dim, arg_label(f, k)});
  const ReductionInfo& red = f.reduction();
  r.reduction = red.name;
  r.axis = f.axis;
  r.K = f.shape.K;
  r.d = f.shape.d;
  r.dw = f.shape.dw;
  r.out_dim = f.out_dim;
  r.layout = layout_name(red.layout);
  r.canonical = f.canonical();
  r.formula_text = f.root_text;
  r.weight_text = f.weight_text;
  return r;
}

int operation_dim(const std::string& op, const std::vector<int>& dims, const std::vector<int>& params,
                  const std::string& where) {
  int k = find_op(op);
  if (k < 0) throw UserError("formula", "unknown operation '" + op + "'");
  const OpInfo& info = op_info(k);
  if (dims.size() != info.nargs() || !info.params_fit(params))
    throw UserError("formula", op + " takes " + std::to_string(info.nargs()) + " formula argument(s) and " +
                                   std::to_string(info.nparams()) + " integer parameter(s), got " +
                                   std::to_string(dims.size()) + " and " + std::to_string(params.size()));
  for (int d : dims)
    if (d < 1) throw UserError("dimension", "argument dimensions must be positive");
  return checked_dim(info, dims, params, [&] { return where.empty() ? op : where; });
}

GradientInfo gradient_of(const std::string& formula, const std::vector<std::string>& aliases, int var) {
  Formula f = parse_formula(formula, aliases);
  const int n = static_cast<int>(f.args.size());
  if (var < 0 || var >= n)
    throw UserError("input", "the variable's position must be between 0 and " + std::to_string(n - 1));
  const ArgInfo& a = f.args[var];
  GradContext c;
  c.formula = formula;
  c.F = "(" + f.root_text + ")";
  c.W = f.weight >= 0 ? "(" + f.weight_text + ")" : "";
  c.shape = f.shape;
  c.out_dim = f.out_dim;
  c.axis = f.axis;
  c.out_cat = f.outer_cat();
  c.in_cat = f.inner_cat();
  c.var_cat = a.cat;
  c.var = !a.name.empty() ? a.name
                          : "Var(" + std::to_string(var) + "," + std::to_string(a.dim) + "," + std::to_string(a.cat) + ")";
  c.new_axis = a.cat == c.in_cat ? 1 - f.axis : f.axis;
  for (const ArgInfo& b : f.args) c.taken.push_back(b.name);
  c.next_pos = n;
  GradPlan p = reduction_gradient(f.reduction(), c);
  GradientInfo g;
  g.zero = p.zero;
  g.formula = p.formula;
  g.eta = p.eta;
  g.eta_cat = p.eta_cat;
  g.eta_dim = p.eta_dim;
  g.aliases = f.aliases;
  auto decl = [](const std::string& name, int cat, int pos, int dim) {
    return name + "=" + cat_name(cat) + "(" + std::to_string(pos) + "," + std::to_string(dim) + ")";
  };
  g.aliases.push_back(decl(p.eta, p.eta_cat, n, p.eta_dim));
  for (const GradInput& x : p.extra) {
    g.aliases.push_back(decl(x.name, x.cat, x.pos, x.dim));
    g.extra.push_back({x.name, x.forward, x.cat, x.dim, x.col0});
  }
  return g;
}

double run_reduction(const std::string& formula, const std::vector<std::string>& aliases,
                     const std::vector<Input>& in, const EngineOptions& opt,
                     const std::function<double*(long long rows, int cols)>& alloc,
                     const std::function<bool()>& interrupted) {
  if (opt.ranges && opt.backend == Backend::GPU && opt.devices.size() > 1)
    throw UserError("input", "a block-sparse reduction (ranges) runs on one GPU, not split over " +
                                 std::to_string(opt.devices.size()) + ": use rkeops_use_gpu() with one device");
  if (!session().count(session_key(formula, aliases, opt)))  // a mistake costs no compilation
    check_inputs(parse_formula(formula, aliases), in, opt.layout);
  std::shared_ptr<Kernel> k = get_kernel(formula, aliases, opt, interrupted);
  const CallShape shape = check_inputs(k->formula(), in, opt.layout);
  double* out = alloc(shape.out_rows, k->formula().out_dim);
  if (!opt.on_rows) {
    k->run(in, shape, out, opt, interrupted);
    return k->compile_seconds;
  }
  // the kernel streams every row through on_rows, or none (then they are handed over from out)
  long long streamed = 0;
  EngineOptions o = opt;
  o.on_rows = [&](long long r0, long long r1, const double* rows, long long ld) {
    RK_ASSERT(r0 == streamed && r1 >= r0 && r1 <= shape.out_rows, "result rows streamed out of order");
    streamed = r1;
    opt.on_rows(r0, r1, rows, ld);
  };
  k->run(in, shape, out, o, interrupted);
  RK_ASSERT(streamed == 0 || streamed == shape.out_rows, "result rows streamed in part");
  if (streamed == 0) opt.on_rows(0, shape.out_rows, out, shape.out_rows);
  return k->compile_seconds;
}

int state_width(const std::string& formula, const std::vector<std::string>& aliases, const EngineOptions& opt) {
  return get_kernel(formula, aliases, opt)->state_width();
}

double run_partial(const std::string& formula, const std::vector<std::string>& aliases,
                   const std::vector<Input>& in, const EngineOptions& opt, long long jbase,
                   const std::function<double*(long long rows, int cols)>& alloc,
                   const std::function<bool()>& interrupted) {
  std::shared_ptr<Kernel> k = get_kernel(formula, aliases, opt, interrupted);  // a compile can be stopped too
  if (jbase < 0) throw UserError("input", "the first index of a piece of the reduced index must be at least 0");
  if (opt.ranges)
    throw UserError("input", "a block-sparse reduction (ranges) cannot be split into partial states "
                             "(distribute = \"future\" or several GPUs): run it in one call");
  const CallShape shape = check_inputs(k->formula(), in);
  double* states = alloc(shape.out_rows, k->state_width());
  k->run_partial(in, shape, jbase, states, opt, interrupted);
  return k->compile_seconds;
}

void merge_partials(const std::string& formula, const std::vector<std::string>& aliases,
                    const std::vector<const double*>& parts, long long rows, const EngineOptions& opt, bool final,
                    const std::function<double*(long long rows, int cols)>& alloc) {
  std::shared_ptr<Kernel> k = get_kernel(formula, aliases, opt);
  if (parts.empty()) throw UserError("input", "no partial states to merge");
  double* out = alloc(rows, final ? k->formula().out_dim : k->state_width());
  k->merge_partials(parts, rows, final ? out : nullptr, final ? nullptr : out, opt);
}

long long check_call(const std::string& formula, const std::vector<std::string>& aliases,
                     const std::vector<Input>& in, InputLayout layout) {
  return check_inputs(parse_formula(formula, aliases), in, layout).out_rows;
}

std::string kernel_source(const std::string& formula, const std::vector<std::string>& aliases,
                          const EngineOptions& opt) {
  Formula f = parse_formula(formula, aliases);
  return opt.backend == Backend::CPU ? generate_cpu_source(f, opt.code, opt.include_dir)
                                     : generate_cuda_source(f, opt.code, opt.include_dir);
}

bool nvrtc_compiles(const std::string& source, int arch, std::string* log) {
  std::string why;
  Nvrtc* nv = Nvrtc::get(&why);
  if (!nv) throw UserError("gpu", why);
  try {
    nv->compile(source, "rkeops_kernel.cu", arch / 10, arch % 10, {}, true);
  } catch (const CompileError& e) {
    *log = std::string(e.what()) + "\n" + e.log;
    return false;
  }
  return true;
}

CacheStats cache_stats(const std::string& dir) {
  DiskCache::Stats s = DiskCache(dir).stats();
  return {s.files, s.bytes};
}

void clean_cache(const std::string& dir, bool remove_dir) {
  clear_session_kernels();
  DiskCache(dir).clean(remove_dir);
}

LanguageInfo language() {
  LanguageInfo r;
  for (int k = 0; k < op_count(); ++k) {
    r.ops.push_back(op_info(k).name);
    r.signatures.push_back(op_info(k).sig);
  }
  for (int k = 0; k < reduction_count(); ++k) r.reductions.push_back(reduction_info(k).name);
  return r;
}

long long upload_device_matrix(DeviceMatrix& m, const EngineOptions& opt) {
  // (float16 calls pack halves from the host copy: no device copy is made for them.)
  if (opt.backend == Backend::GPU && opt.code.dtype != DType::Float16) {
    const int elem = opt.code.dtype == DType::Float32 ? 4 : 8;
    const std::vector<int> devs = opt.devices.size() > 1 ? opt.devices : std::vector<int>{opt.device};
    for (int d : devs) m.on_device(d, elem, opt.nthreads);
  }
  return m.device_bytes();
}

}  // namespace rkeops

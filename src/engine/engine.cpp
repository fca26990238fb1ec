#include "engine.h"

#include <map>

#include "cache.h"
#include "errors.h"
#include "launch_cpu.h"
#include "launch_cuda.h"
#include "log.h"

namespace rkeops {

const char* const kEngineVersion = "rkeops-engine 0.1.0";

namespace {

std::map<std::string, std::shared_ptr<Kernel>>& session() {
  static std::map<std::string, std::shared_ptr<Kernel>> kernels;
  return kernels;
}

const char* cat_name(int cat) { return cat == CAT_I ? "Vi" : cat == CAT_J ? "Vj" : "Pm"; }

std::string arg_label(const Formula& f, size_t k) {
  const ArgInfo& a = f.args[k];
  std::string s = "input " + std::to_string(k + 1);
  if (!a.name.empty())
    s += " ('" + a.name + "'";
  else
    s += " (";
  s += std::string(a.name.empty() ? "" : ", ") + cat_name(a.cat) + "(" + std::to_string(a.dim) + "))";
  return s;
}

}  // namespace

CallShape check_inputs(const Formula& f, const std::vector<Input>& in) {
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
      throw UserError("dimension", arg_label(f, k) + " must have " + std::to_string(a.dim) +
                                       " column(s) (one row per point), got " + std::to_string(x.cols));
    if (x.rows < 1) throw UserError("input", arg_label(f, k) + " has no rows (no points)");
    if (x.rows > (1LL << 40)) throw UserError("input", arg_label(f, k) + " has too many rows");
    int c = a.cat;
    if (n[c] < 0) {
      n[c] = x.rows;
      first[c] = static_cast<int>(k);
    } else if (n[c] != x.rows)
      throw UserError("dimension", "all " + std::string(cat_name(c)) + " inputs must have the same number of rows: " +
                                       arg_label(f, first[c]) + " has " + std::to_string(n[c]) + ", " +
                                       arg_label(f, k) + " has " + std::to_string(x.rows));
  }
  s.n_i = n[0] < 0 ? 1 : n[0];
  s.n_j = n[1] < 0 ? 1 : n[1];
  s.out_rows = f.axis == 1 ? s.n_i : s.n_j;
  const ReductionInfo& r = f.reduction();
  if (r.extra == Extra::K) {
    long long reduced = f.axis == 1 ? s.n_j : s.n_i;
    if (f.shape.K > reduced)
      throw UserError("input", "K = " + std::to_string(f.shape.K) +
                                   " is larger than the number of points reduced over (" + std::to_string(reduced) +
                                   ")");
  }
  return s;
}

static std::string options_key(const EngineOptions& o) {
  return std::to_string(static_cast<int>(o.code.dtype)) + "|" + std::to_string(static_cast<int>(o.code.scheme)) + "|" +
         std::to_string(o.code.loop_dim) + "|" +
         std::to_string(static_cast<int>(o.backend)) + "|" + std::to_string(o.device) + "|" + o.cache_dir + "|" +
         o.include_dir + "|" + o.compiler.cxx + "|" + o.compiler.flags + "|" + o.compiler.openmp;
}

std::shared_ptr<Kernel> get_kernel(const std::string& formula, const std::vector<std::string>& aliases,
                                   const EngineOptions& opt) {
  std::string key = formula + "\x1f";
  for (auto& a : aliases) key += a + "\x1e";
  key += "\x1f" + options_key(opt);
  auto& mem = session();
  auto it = mem.find(key);
  if (it != mem.end()) return it->second;
  Formula f = parse_formula(formula, aliases);
  std::shared_ptr<Kernel> k;
  if (opt.backend == Backend::CPU) {
    k = load_cpu_kernel(std::move(f), opt);
  } else {
    k = load_cuda_kernel(std::move(f), opt);  // the CUDA backend (launch_cuda.cpp)
  }
  mem[key] = k;
  return k;
}

void clear_session_kernels() { session().clear(); }
int session_kernel_count() { return static_cast<int>(session().size()); }

}  // namespace rkeops

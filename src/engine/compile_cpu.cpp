#include "compile_cpu.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <vector>

#include "cache.h"
#include "errors.h"
#include "log.h"

namespace rkeops {
namespace {

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

// Removes its files when it goes out of scope, whichever way the compile ends.
struct TempFiles {
  std::vector<std::string> paths;
  ~TempFiles() {
    for (const std::string& p : paths) ::unlink(p.c_str());
  }
};

// The line of a compiler's log that says a disk is full, or "".
std::string disk_full_line(const std::string& log) {
  for (const char* what : {"No space left on device", "Disk quota exceeded"}) {
    size_t at = log.find(what);
    if (at == std::string::npos) continue;
    size_t begin = log.rfind('\n', at), end = log.find('\n', at);
    begin = begin == std::string::npos ? 0 : begin + 1;
    return log.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  }
  return "";
}

}  // namespace

std::string compiler_identity(const CompilerConfig& cc, const CompileWatch& watch) {
  // Asking the compiler for its version costs a few ms: once per configuration and session.
  static std::mutex mu;
  static std::map<std::string, std::string> memo;
  std::string cfg = cc.cxx + "\n" + cc.flags + "\n" + cc.openmp;
  std::lock_guard<std::mutex> lock(mu);
  auto it = memo.find(cfg);
  if (it != memo.end()) return it->second;
  CommandResult version = run_command(cc.cxx + " --version", watch, "the C++ compiler (" + cc.cxx + " --version)");
  std::string id = cfg + "\n" + version.output + "\n" + cpu_description();
  memo[cfg] = id;
  return id;
}

VerifiedFile compile_cpu(const std::string& source, const std::string& key, const CompilerConfig& cc, DiskCache& cache,
                         const CompileWatch& watch) {
  TempFiles temps;
  const std::string src_path = cache.write_temp(".cpp", source);
  temps.paths.push_back(src_path);
  const std::string so_path = cache.temp_path(".so");
  temps.paths.push_back(so_path);
  std::string options = cc.flags + " " + cc.openmp;
  // gcc keeps to 256-bit vectors on AVX-512 hosts by default; exp-heavy kernels run ~1.6x
  // faster with 512-bit ones (measured on the development Xeon).
  if (cc.flags.find("-march=native") != std::string::npos && cpu_description().find(" avx512f") != std::string::npos)
    options += " -mprefer-vector-width=512";
  std::string cmd = cc.cxx + " " + options + " -o " + shell_quote(so_path) + " " + shell_quote(src_path);
  auto t0 = std::chrono::steady_clock::now();
  CommandResult res = run_command(cmd, watch, "the C++ compiler", temps.paths);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string& log = res.output;
  if (res.status != 0) {
    const std::string full = disk_full_line(log);
    if (!full.empty())  // no source dump: it would not fit either
      throw UserError("cache", "a disk is full: the C++ compiler could not write its output (\"" + full +
                                   "\"); free some space (the rkeops cache is '" + cache.dir() +
                                   "', the compiler's own temporary files go to TMPDIR), or choose another "
                                   "cache directory with set_rkeops_cache_dir()");
    std::string note, dump = cache.dump_failed(key, ".cpp", source, &note);
    throw CompileError("the C++ compiler failed on a generated kernel (exit status " + std::to_string(res.status) +
                           "); " + note + "\n" + log,
                       log, cc.cxx, options, dump);
  }
  log_msg("rkeops: compiled a CPU kernel in " + std::to_string(secs) + " s");
  return cache.store_file(key, ".so", so_path);
}

}  // namespace rkeops

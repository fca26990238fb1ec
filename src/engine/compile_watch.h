// Compiles that can be stopped: the system C++ compiler runs as a child process and NVRTC on a
// worker thread, while the calling thread polls for the user's interrupt and a time limit.
#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace rkeops {

// When a compile must stop: the user interrupted it, or it ran past its time limit.
struct CompileWatch {
  std::function<bool()> interrupted;  // polled about every 50 ms; may be empty
  double timeout_seconds = 600;       // 0 or less: no limit

  // Throws Interrupted when `interrupted` says so, UserError("compile_timeout") naming `what`
  // once `timeout_seconds` have passed since `start`.
  void check(std::chrono::steady_clock::time_point start, const std::string& what) const;
};

// A finished command: its exit status (-1 when it did not exit normally) and what it printed
// on stdout and stderr (at most 1 MiB, the rest dropped).
struct CommandResult {
  int status = -1;
  std::string output;
};

// Runs `command` with /bin/sh in a process group of its own, so that a terminal's Ctrl-C
// reaches R and not the compiler. The whole group is killed when `watch` says stop (then the
// files `temp_files` are removed and its exception thrown), and when this process dies while it
// runs (Linux: the shell gets SIGTERM through PR_SET_PDEATHSIG, removes `temp_files` and kills
// its group). Throws InternalError when no process can be started.
CommandResult run_command(const std::string& command, const CompileWatch& watch, const std::string& what,
                          const std::vector<std::string>& temp_files = {});

// Runs `work` on a worker thread and waits for it, polling `watch`. When the watch says stop,
// its exception is thrown at once and the thread is left to finish in the background
// (detached; its result or exception is discarded): NVRTC offers no way to cancel a compile.
// `work` must own what it uses (capture by value). Exceptions of `work` are rethrown here.
std::string run_on_worker(std::function<std::string()> work, const CompileWatch& watch, const std::string& what);

}  // namespace rkeops

#include "compile_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include "errors.h"

namespace rkeops {
namespace {

using Clock = std::chrono::steady_clock;
const int kPollMs = 50;
const size_t kMaxOutput = 1 << 20;

// Single-quotes a word for /bin/sh.
std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Reads what is available on the non-blocking `fd` into `out` (beyond kMaxOutput, dropped);
// true at end of file.
bool drain(int fd, std::string* out) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      if (out->size() < kMaxOutput) out->append(buf, std::min(size_t(n), kMaxOutput - out->size()));
      continue;
    }
    if (n == 0) return true;
    if (errno == EINTR) continue;
    return errno != EAGAIN && errno != EWOULDBLOCK;  // a real error ends the reading too
  }
}

}  // namespace

void CompileWatch::check(Clock::time_point start, const std::string& what) const {
  if (interrupted && interrupted()) throw Interrupted();
  if (timeout_seconds > 0 && std::chrono::duration<double>(Clock::now() - start).count() > timeout_seconds) {
    char secs[32];
    std::snprintf(secs, sizeof secs, "%g", timeout_seconds);
    throw UserError("compile_timeout", what + " did not finish within " + secs +
                                           " s and was stopped; if it needs longer, raise the limit with "
                                           "set_rkeops_options(list(compile_timeout = <seconds>))");
  }
}

CommandResult run_command(const std::string& command, const CompileWatch& watch, const std::string& what,
                          const std::vector<std::string>& temp_files) {
  // The shell runs the command as a job and waits for it; on SIGTERM (sent when this process
  // dies, see below) it removes the temp files and kills its whole process group.
  std::string stop = "rk_stop() { ";
  if (!temp_files.empty()) {
    stop += "rm -f --";
    for (const std::string& f : temp_files) stop += " " + shell_quote(f);
    stop += "; ";
  }
  stop += "kill -KILL 0; }\ntrap rk_stop TERM\n";
  const std::string script = stop + "{ " + command + "\n} </dev/null & wait $!\n";
  const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};

  int fds[2];
  if (::pipe(fds) != 0)
    throw InternalError("cannot create a pipe to run " + what + ": " + std::string(std::strerror(errno)));
  // Neither end leaks into the command: the child's dup2() copies of the write end (its stdout
  // and stderr) do not inherit the flag.
  ::fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  ::fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw InternalError("cannot start " + what + " (fork): " + std::string(std::strerror(err)));
  }
  if (pid == 0) {
    // The child: only async-signal-safe calls until exec.
    ::setpgid(0, 0);
#ifdef __linux__
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
#endif
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::execv("/bin/sh", const_cast<char* const*>(argv));
    ::_exit(127);
  }
  (void)parent;
  ::setpgid(pid, pid);  // also here, so that kill(-pid) works whichever runs first
  ::close(fds[1]);
  const int fd = fds[0];
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);

  CommandResult res;
  bool eof = false;
  const auto start = Clock::now();
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    int n = ::poll(&p, eof ? 0 : 1, kPollMs);  // EINTR (a signal) just means: look again
    if (n > 0 && !eof) eof = drain(fd, &res.output);
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      if (!eof) drain(fd, &res.output);
      if (r == pid && WIFEXITED(status)) res.status = WEXITSTATUS(status);
      break;
    }
    try {
      watch.check(start, what);
    } catch (...) {
      ::kill(-pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
      ::close(fd);
      for (const std::string& f : temp_files) ::unlink(f.c_str());
      throw;
    }
  }
  ::close(fd);
  return res;
}

std::string run_on_worker(std::function<std::string()> work, const CompileWatch& watch, const std::string& what) {
  // Shared with the thread, which may outlive this call.
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::string result;
    std::exception_ptr error;
  };
  auto sh = std::make_shared<Shared>();
  std::thread worker([sh, work = std::move(work)] {
    std::string r;
    std::exception_ptr e;
    try {
      r = work();
    } catch (...) { e = std::current_exception(); }
    std::lock_guard<std::mutex> lock(sh->mu);
    sh->result = std::move(r);
    sh->error = e;
    sh->done = true;
    sh->cv.notify_all();
  });
  const auto start = Clock::now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(sh->mu);
      if (sh->cv.wait_for(lock, std::chrono::milliseconds(kPollMs), [&] { return sh->done; })) break;
    }
    try {
      watch.check(start, what);
    } catch (...) {
      worker.detach();
      throw;
    }
  }
  worker.join();
  if (sh->error) std::rethrow_exception(sh->error);
  return std::move(sh->result);
}

}  // namespace rkeops

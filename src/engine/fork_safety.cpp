#include "fork_safety.h"

#include <unistd.h>

#if defined(__GLIBC__)
#include <fcntl.h>
#include <pthread.h>

#include <cstdlib>
#include <cstring>
#endif

#include "log.h"

namespace rkeops {
namespace {

// The process that started OpenMP threads through a kernel (0: none yet). A child inherits
// the value: a pid different from getpid() means "forked after our threads started".
pid_t g_threads_pid = 0;
// Set in a child whose parent had more than one thread at fork() (a pool of some library,
// data.table's for instance). Inherited by grandchildren, whose libgomp state is as stale.
bool g_unsafe_child = false;
bool g_told = false;

#if defined(__GLIBC__)
int g_threads_at_fork = 0;

// Threads of this process, from the "Threads:" line of /proc/self/status (0 if unknown).
// Runs in the pthread_atfork prepare handler: plain system calls and a stack buffer only.
int count_threads() {
  int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[4096];
  ssize_t len = 0, r;
  while (len < static_cast<ssize_t>(sizeof buf) - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0) len += r;
  close(fd);
  buf[len > 0 ? len : 0] = '\0';
  const char* p = std::strstr(buf, "\nThreads:");
  return p ? std::atoi(p + 9) : 0;
}

void before_fork() { g_threads_at_fork = count_threads(); }
void in_child() {
  if (g_threads_at_fork > 1) g_unsafe_child = true;
}

// Registered once when the engine is loaded. glibc's pthread_atfork records the calling
// library and drops the handlers when it is unloaded (dlclose), so an unloaded package leaves
// no dangling handler. Elsewhere only our own threads are detected (LLVM's libomp, used on
// macOS, re-initialises itself in forked children anyway).
const int g_registered = pthread_atfork(before_fork, nullptr, in_child);
#endif

}  // namespace

int threads_allowed(int wanted) {
  if (wanted <= 1) return 1;
  const pid_t me = getpid();
  if (g_unsafe_child || (g_threads_pid != 0 && g_threads_pid != me)) {
    if (!g_told) {
      g_told = true;
      log_msg(
          "rkeops: this process was forked from one that had started OpenMP threads, which do not "
          "survive fork(): CPU kernels run on 1 thread here");
    }
    return 1;
  }
  g_threads_pid = me;
  return wanted;
}

}  // namespace rkeops

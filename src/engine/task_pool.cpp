#include "task_pool.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace rkeops {
namespace {

constexpr int kMaxWorkers = 31;

// Each call is a job: workers take part (under the lock) until the caller closes it; the
// caller then waits for those that took part, so that no worker touches a finished job.
class TaskPool {
 public:
  explicit TaskPool(pid_t pid) : pid_(pid) {}
  pid_t pid() const { return pid_; }
  std::mutex busy;  // one job at a time

  void run(long long tasks, int helpers, const std::function<void(long long)>& fn) {
    grow(helpers);
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = &fn;
      tasks_ = tasks;
      next_ = 0;
      want_ = helpers;
      taken_ = 0;
      closed_ = false;
      error_ = nullptr;
      ++gen_;
    }
    wake_.notify_all();
    const std::exception_ptr mine = run_some(fn, tasks);
    std::unique_lock<std::mutex> lk(m_);
    closed_ = true;
    done_.wait(lk, [this] { return running_ == 0; });
    if (mine) std::rethrow_exception(mine);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // Runs tasks until none is left; the first exception ends this thread's part (the others
  // finish the tasks handed out) and is returned.
  std::exception_ptr run_some(const std::function<void(long long)>& fn, long long tasks) {
    try {
      for (long long t = next_++; t < tasks; t = next_++) fn(t);
    } catch (...) {
      next_ = tasks;  // (no new tasks: the call fails)
      return std::current_exception();
    }
    return nullptr;
  }
  void grow(int helpers) {
    std::lock_guard<std::mutex> lk(m_);
    while (workers_ < std::min(helpers, kMaxWorkers)) {
      std::thread([this, seen = gen_] { work(seen); }).detach();
      ++workers_;
    }
  }
  void work(unsigned seen) {
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      wake_.wait(lk, [&] { return gen_ != seen; });
      seen = gen_;
      if (closed_ || taken_ >= want_) continue;
      ++taken_;
      ++running_;
      const std::function<void(long long)>* fn = fn_;
      const long long tasks = tasks_;
      lk.unlock();
      const std::exception_ptr e = run_some(*fn, tasks);
      lk.lock();
      if (e && !error_) error_ = e;
      if (--running_ == 0) done_.notify_all();
    }
  }

  const pid_t pid_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  const std::function<void(long long)>* fn_ = nullptr;
  long long tasks_ = 0;
  std::atomic<long long> next_{0};
  int want_ = 0, taken_ = 0, running_ = 0, workers_ = 0;
  bool closed_ = true;
  unsigned gen_ = 0;
  std::exception_ptr error_;  // a worker's, for the caller to throw
};

std::mutex g_pool_mutex;
TaskPool* g_pool = nullptr;  // never destroyed (its workers sleep until the process ends)

// The process's pool; a new one in a forked child (the parent's workers are not there).
TaskPool& pool() {
  std::lock_guard<std::mutex> lk(g_pool_mutex);
  const pid_t pid = getpid();
  if (!g_pool || g_pool->pid() != pid) g_pool = new TaskPool(pid);
  return *g_pool;
}

void run_on_new_threads(long long tasks, int helpers, const std::function<void(long long)>& fn) {
  std::atomic<long long> next{0};
  std::mutex m;
  std::exception_ptr error;
  auto work = [&] {
    try {
      for (long long t = next++; t < tasks; t = next++) fn(t);
    } catch (...) {
      next = tasks;
      std::lock_guard<std::mutex> lk(m);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> th;
  for (int k = 0; k < helpers; ++k) th.emplace_back(work);
  work();
  for (auto& t : th) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

void run_tasks(long long tasks, int nt, const std::function<void(long long)>& fn) {
  const int helpers = static_cast<int>(std::min<long long>(nt, tasks)) - 1;
  if (helpers <= 0) {
    for (long long t = 0; t < tasks; ++t) fn(t);
    return;
  }
  TaskPool& p = pool();
  std::unique_lock<std::mutex> own(p.busy, std::try_to_lock);
  if (!own || helpers > kMaxWorkers) {
    run_on_new_threads(tasks, helpers, fn);
    return;
  }
  p.run(tasks, helpers, fn);
}

}  // namespace rkeops

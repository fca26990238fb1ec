// The kept host workers (task_pool.h): every task runs once, whatever the threads, the callers
// at once, the nesting and forks.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "task_pool.h"

using namespace rkeops;

namespace {

// Runs `tasks` tasks on `nt` threads; true when each ran exactly once.
bool each_once(long long tasks, int nt) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(tasks));
  for (auto& h : hits) h = 0;
  run_tasks(tasks, nt, [&](long long t) { hits[static_cast<size_t>(t)]++; });
  for (auto& h : hits)
    if (h != 1) return false;
  return true;
}

}  // namespace

TEST(TaskPool, EveryTaskRunsOnce) {
  struct Row {
    long long tasks;
    int nt;
  };
  const Row rows[] = {{0, 4}, {1, 16}, {5, 1}, {7, 3}, {1000, 16}, {100, 64}, {3, 32}};
  for (int round = 0; round < 50; ++round)  // the same workers, call after call
    for (const Row& r : rows) ASSERT_TRUE(each_once(r.tasks, r.nt)) << r.tasks << " tasks on " << r.nt << " threads";
}

// The most tasks running at once among 64 tasks of 2 ms on 4 threads.
static int most_at_once() {
  std::atomic<int> inside{0}, most{0};
  run_tasks(64, 4, [&](long long) {
    const int now = ++inside;
    for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    --inside;
  });
  return most;
}

TEST(TaskPool, UsesMoreThanOneThread) { EXPECT_GT(most_at_once(), 1); }

TEST(TaskPool, CallersAtOnceAndNestedCalls) {
  std::atomic<bool> ok{true};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int k = 0; k < 30; ++k)
        if (!each_once(200, 8)) ok = false;
    });
  for (auto& t : callers) t.join();
  EXPECT_TRUE(ok);
  std::atomic<long long> sum{0};
  run_tasks(8, 4, [&](long long t) { run_tasks(10, 3, [&](long long u) { sum += t * 10 + u; }); });
  EXPECT_EQ(sum.load(), 79 * 80 / 2);
}

TEST(TaskPool, ATasksExceptionReachesTheCaller) {
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> ran{0};
    EXPECT_THROW(run_tasks(200, 8,
                           [&](long long t) {
                             ++ran;
                             if (t == 37) throw std::runtime_error("task 37");
                           }),
                 std::runtime_error);
    EXPECT_LE(ran.load(), 200);
    EXPECT_TRUE(each_once(100, 8)) << "the workers still serve calls";  // (none left busy)
  }
}

// (the parent's workers are not in the child: with them, the caller would run every task alone)
TEST(TaskPool, AForkedChildGetsWorkersOfItsOwn) {
  ASSERT_TRUE(each_once(100, 8));  // the parent's workers exist
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(each_once(500, 8) && each_once(500, 8) && most_at_once() > 1 ? 0 : 1);
  int status = 0;
  pid_t got = 0;
  for (int k = 0; k < 300 && got == 0; ++k) {  // 30 s at most: a child stuck on the parent's locks fails
    got = waitpid(pid, &status, WNOHANG);
    if (got == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (got == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "the child hung";
  }
  ASSERT_EQ(got, pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child crashed";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

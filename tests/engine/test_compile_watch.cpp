// Compiles that can be stopped (issue 16): a command in its own process group, stopped by an
// interrupt or a time limit with its temp files removed, and dying with its parent; a worker
// thread abandoned on interrupt.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "compile_watch.h"
#include "errors.h"

namespace fs = std::filesystem;
using rkeops::CompileWatch;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// A watch that says "interrupted" `after` seconds after it is made.
CompileWatch interrupt_after(double after) {
  CompileWatch w;
  const auto t0 = Clock::now();
  w.interrupted = [t0, after] { return since(t0) > after; };
  return w;
}

// True once process `pid` is gone (or a zombie nobody reaped), within `seconds`.
bool gone_within(pid_t pid, double seconds) {
  const auto t0 = Clock::now();
  while (since(t0) < seconds) {
    std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (::kill(pid, 0) != 0 || !std::getline(st, line)) return true;
    size_t paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

pid_t read_pid(const std::string& path, double seconds) {
  const auto t0 = Clock::now();
  while (since(t0) < seconds) {
    std::ifstream in(path);
    pid_t pid = 0;
    if (in >> pid && pid > 0) return pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

class CompileWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rkeops-watch-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  // A command that records the pid of a long sleep (a grandchild of the shell) in `pidfile`.
  std::string sleeper(const std::string& pidfile) const { return "sh -c 'echo $$ > " + pidfile + "; exec sleep 30'"; }
  std::string dir_;
};

TEST_F(CompileWatchTest, CollectsOutputAndStatus) {
  rkeops::CommandResult r = rkeops::run_command("echo out; echo err >&2; exit 3", CompileWatch(), "test");
  EXPECT_EQ(r.status, 3);
  EXPECT_EQ(r.output, "out\nerr\n");
  r = rkeops::run_command("true", CompileWatch(), "test");
  EXPECT_EQ(r.status, 0);
  // output beyond 1 MiB is dropped, and does not block the command
  r = rkeops::run_command("head -c 3000000 /dev/zero", CompileWatch(), "test");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.output.size(), size_t(1) << 20);
}

TEST_F(CompileWatchTest, InterruptKillsTheWholeGroupAndRemovesTempFiles) {
  const std::string pidfile = dir_ + "/pid", temp = dir_ + "/.tmp-out.so";
  std::ofstream(temp) << "partial";
  const auto t0 = Clock::now();
  EXPECT_THROW(rkeops::run_command(sleeper(pidfile), interrupt_after(0.5), "test", {temp}), rkeops::Interrupted);
  EXPECT_LT(since(t0), 3.0);
  EXPECT_FALSE(fs::exists(temp));
  pid_t pid = read_pid(pidfile, 1);
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(gone_within(pid, 3)) << "the compiler's own child survived";
}

TEST_F(CompileWatchTest, TimeLimitStopsWithAClassedError) {
  CompileWatch w;
  w.timeout_seconds = 0.5;
  const auto t0 = Clock::now();
  try {
    rkeops::run_command(sleeper(dir_ + "/pid"), w, "the C++ compiler");
    FAIL() << "no error";
  } catch (const rkeops::UserError& e) {
    EXPECT_EQ(e.kind, "compile_timeout");
    EXPECT_NE(std::string(e.what()).find("the C++ compiler did not finish within 0.5 s"), std::string::npos)
        << e.what();
  }
  EXPECT_LT(since(t0), 3.0);
  pid_t pid = read_pid(dir_ + "/pid", 1);
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(gone_within(pid, 3));
}

// The compiler dies with the process that started it (even killed with SIGKILL), and its temp
// files are removed.
TEST_F(CompileWatchTest, CommandDiesWithItsParent) {
#ifndef __linux__
  GTEST_SKIP() << "PR_SET_PDEATHSIG is Linux only";
#endif
  const std::string pidfile = dir_ + "/pid", temp = dir_ + "/.tmp-out.so";
  std::ofstream(temp) << "partial";
  std::fflush(nullptr);
  pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    try {
      rkeops::run_command(sleeper(pidfile), CompileWatch(), "test", {temp});
    } catch (...) {}
    ::_exit(0);
  }
  pid_t pid = read_pid(pidfile, 5);
  ASSERT_GT(pid, 0);
  ::kill(parent, SIGKILL);
  ::waitpid(parent, nullptr, 0);
  EXPECT_TRUE(gone_within(pid, 5)) << "the compiler outlived its parent";
  const auto t0 = Clock::now();
  while (fs::exists(temp) && since(t0) < 5) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(fs::exists(temp));
}

TEST_F(CompileWatchTest, WorkerResultAndErrorsComeBack) {
  EXPECT_EQ(rkeops::run_on_worker([] { return std::string("done"); }, CompileWatch(), "test"), "done");
  EXPECT_THROW(rkeops::run_on_worker([]() -> std::string { throw rkeops::CompileError("bad", "log", "c", "o", ""); },
                                     CompileWatch(), "test"),
               rkeops::CompileError);
}

TEST_F(CompileWatchTest, InterruptAbandonsTheWorker) {
  auto finished = std::make_shared<std::atomic<bool>>(false);
  const auto t0 = Clock::now();
  EXPECT_THROW(rkeops::run_on_worker(
                   [finished] {
                     std::this_thread::sleep_for(std::chrono::seconds(2));
                     *finished = true;
                     return std::string("late");
                   },
                   interrupt_after(0.2), "test"),
               rkeops::Interrupted);
  EXPECT_LT(since(t0), 1.0);
  EXPECT_FALSE(*finished);
  CompileWatch w;
  w.timeout_seconds = 0.2;
  EXPECT_THROW(rkeops::run_on_worker(
                   [] {
                     std::this_thread::sleep_for(std::chrono::seconds(1));
                     return std::string("late");
                   },
                   w, "NVRTC"),
               rkeops::UserError);
  // the abandoned thread finishes in the background
  while (!*finished && since(t0) < 5) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(*finished);
}

}  // namespace

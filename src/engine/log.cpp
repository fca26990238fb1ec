#include "log.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace rkeops {
namespace {
LogFn g_logger;
std::thread::id g_logger_thread;  // the logger (R's console) may be called from this thread only
std::atomic<bool> g_verbose{false};
std::mutex g_pending_mu;
std::vector<std::string> g_pending;  // messages from other threads (NVRTC's worker), shown later
}  // namespace
void set_logger(LogFn fn) {
  g_logger = std::move(fn);
  g_logger_thread = std::this_thread::get_id();
}
void set_verbose(bool on) { g_verbose = on; }
bool verbose() { return g_verbose; }
void log_msg(const std::string& msg) {
  if (!g_verbose || !g_logger) return;
  std::vector<std::string> earlier;
  {
    std::lock_guard<std::mutex> lock(g_pending_mu);
    if (std::this_thread::get_id() != g_logger_thread) {
      g_pending.push_back(msg);
      return;
    }
    earlier.swap(g_pending);
  }
  for (const std::string& m : earlier) g_logger(m);
  g_logger(msg);
}
}  // namespace rkeops

#include "log.h"

namespace rkeops {
namespace {
LogFn g_logger;
bool g_verbose = false;
}  // namespace
void set_logger(LogFn fn) { g_logger = std::move(fn); }
void set_verbose(bool on) { g_verbose = on; }
bool verbose() { return g_verbose; }
void log_msg(const std::string& msg) {
  if (g_verbose && g_logger) g_logger(msg);
}
}  // namespace rkeops

// Messages from the engine go through a callback that the glue installs (never stderr).
#pragma once
#include <functional>
#include <string>

namespace rkeops {
using LogFn = std::function<void(const std::string&)>;
void set_logger(LogFn fn);  // the glue installs one that collects lines for R messages
void set_verbose(bool on);
bool verbose();
// Printed only when verbose. From a thread other than the one that installed the logger, the
// message waits for the next one logged from that thread.
void log_msg(const std::string& msg);
}  // namespace rkeops

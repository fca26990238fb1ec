// Messages from the engine go through a callback that the glue installs (never stderr).
#pragma once
#include <functional>
#include <string>

namespace rkeops {
using LogFn = std::function<void(const std::string&)>;
void set_logger(LogFn fn);  // the glue installs one that collects lines for R messages
void set_verbose(bool on);
bool verbose();
void log_msg(const std::string& msg);  // printed only when verbose
}  // namespace rkeops

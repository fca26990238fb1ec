// Engine error types. The glue turns each into a classed R condition (see R/conditions.R).
#pragma once
#include <stdexcept>
#include <string>

namespace rkeops {

// A mistake in what the user asked for: formula, aliases, inputs, options.
// `kind` picks the R condition class: "formula", "dimension", "input", "option", "cache".
struct UserError : std::runtime_error {
  std::string kind;
  UserError(std::string kind_, const std::string& msg) : std::runtime_error(msg), kind(std::move(kind_)) {}
};

// A formula whose graph outgrows Graph::kMaxNodes. A UserError("formula") that the parser of
// derivative templates and rewrite rules lets through: the user's formula is too large, the
// template is not wrong.
struct TooLarge : UserError {
  explicit TooLarge(const std::string& msg) : UserError("formula", msg) {}
};

// The C++ compiler or NVRTC rejected generated code: everything needed to fix it.
struct CompileError : std::runtime_error {
  std::string log, compiler, options, source_path;
  CompileError(const std::string& msg, std::string log_, std::string compiler_, std::string options_,
               std::string source_path_)
      : std::runtime_error(msg),
        log(std::move(log_)),
        compiler(std::move(compiler_)),
        options(std::move(options_)),
        source_path(std::move(source_path_)) {}
};

// The user interrupted a long computation (checked between tiles/chunks).
struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("computation interrupted by the user") {}
};

// A bug in rkeops itself.
struct InternalError : std::runtime_error {
  explicit InternalError(const std::string& msg) : std::runtime_error(msg) {}
};

// Throws InternalError when a condition that must hold does not.
#define RK_ASSERT(cond, msg)                                                                 \
  do {                                                                                       \
    if (!(cond))                                                                             \
      throw ::rkeops::InternalError(std::string(msg) + " (" #cond ") at " + __FILE__ + ":" + \
                                    std::to_string(__LINE__));                               \
  } while (0)

}  // namespace rkeops

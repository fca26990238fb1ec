# Classed conditions: every error rkeops raises goes through rkeops_abort().

#' Raise a classed rkeops error
#'
#' Builds an error condition of class `rkeops_<kind>_error` (and `rkeops_error`),
#' e.g. `rkeops_formula_error`, `rkeops_dimension_error`, `rkeops_input_error`,
#' `rkeops_compile_error`, `rkeops_internal_error`.
#' @param kind the error kind.
#' @param message the message.
#' @param ... extra fields stored in the condition (e.g. the compiler log).
#' @param call the call to report.
#' @noRd
rkeops_abort <- function(kind, message, ..., call = NULL) {
  if (kind == "internal") {
    message <- paste0(message, "\n(this is a bug in rkeops ",
                      utils::packageVersion("rkeops"), ", please report it)")
  }
  kinds <- c(kind, unname(.rk_parent_kind[names(.rk_parent_kind) == kind]))
  cond <- structure(
    class = c(paste0("rkeops_", kinds, "_error"), "rkeops_error", "error", "condition"),
    list(message = message, call = call, ...)
  )
  stop(cond)
}

# Kinds of error that are a special case of another (a compile that ran out of time is a
# compile error too).
.rk_parent_kind <- c(compile_timeout = "compile")

# What an R object is, for error messages: "a character matrix", "a logical vector", "NULL",
# "an object of class data.frame".
.rk_describe <- function(x) {
  if (is.null(x)) return("NULL")
  if (!is.object(x) && (is.matrix(x) || is.atomic(x))) {
    return(paste("a", typeof(x), if (is.matrix(x)) "matrix" else if (length(x) == 1) "value" else "vector"))
  }
  paste("an object of class", paste(class(x), collapse = "/"))
}

# Calls a registered engine entry point; re-raises an engine error record as a condition.
.rk_call <- function(fun, ...) {
  res <- .Call(fun, ...)
  if (inherits(res, "rkeops_error_record")) {
    fields <- unclass(res)
    if (identical(fields$kind, "interrupt")) {
      # The engine stopped on a user interrupt (it polls between tiles): signal R's interrupt
      # condition, so that tryCatch(interrupt = ) sees it; unhandled, it is an error.
      signalCondition(structure(class = c("rkeops_interrupt", "interrupt", "condition"),
                                list(message = fields$message, call = NULL)))
      rkeops_abort("interrupt", fields$message)
    }
    do.call(rkeops_abort, c(list(kind = fields$kind, message = fields$message),
                            fields[setdiff(names(fields), c("kind", "message"))]))
  }
  res
}

# Classed conditions: every error rkeops raises goes through rkeops_abort().

#' Errors raised by rkeops
#'
#' Every error rkeops raises is an R condition of class `rkeops_error` and of a class that says
#' what went wrong, `rkeops_<kind>_error`, so that code can catch one kind with
#' `tryCatch(..., rkeops_dimension_error = function(e) ...)` (or `expect_error(..., class =)`
#' in tests). The message says what was wrong in the user's terms, and [conditionCall()] is the
#' user-level call into rkeops that failed: [keops_kernel()], an operator `op(...)`, or for
#' LazyTensors the generic (`sum()`, `+`, `exp()`...). The C++ engine never crashes the R
#' session: its exceptions become these conditions.
#'
#' The kinds:
#' * `rkeops_formula_error`: the formula or the declarations in `args` do not parse, name an
#'   unknown operation, variable or reduction, or a variable is declared twice; the message shows
#'   the formula with a caret under the 1-based column.
#' * `rkeops_dimension_error`: dimensions do not fit, in the formula (operands of different
#'   dimensions) or between the declarations and the data (a matrix with the wrong number of
#'   columns, Vi inputs with different numbers of rows).
#' * `rkeops_input_error`: an input is not what is expected (not a numeric matrix, `NULL`, empty,
#'   the wrong number of inputs, an unknown name, a bad `inner_dim` or `index`).
#' * `rkeops_option_error`: an option or argument value is invalid (see [set_rkeops_options()]),
#'   a package needed for an option is missing, or compiling is forbidden
#'   (`RKEOPS_FORBID_COMPILE`).
#' * `rkeops_cache_error`: the cache directory cannot be created, written or read (see
#'   [set_rkeops_cache_dir()]).
#' * `rkeops_compile_error`: the generated kernel did not compile. The condition holds the
#'   compiler's `log`, the `compiler`, its `options` and `source_path`, where the generated
#'   source was written with line numbers (under the cache's `failed/` folder).
#' * `rkeops_gpu_error`: no usable GPU (CUDA driver, device or NVRTC), a device that does not
#'   exist, or a CUDA failure; [rkeops_use_cpu()] computes on the CPU instead.
#' * `rkeops_memory_error`: an allocation failed, or a result is too large for R.
#' * `rkeops_interrupt_error`: the user interrupted a computation (Ctrl-C). R's `interrupt`
#'   condition is signalled first, so `tryCatch(interrupt = )` sees it too.
#' * `rkeops_distribute_error`: a chunk of a distributed evaluation
#'   (`distribute = "future"`, see [keops_kernel()]) failed; the message names the chunk and
#'   the error it gave.
#' * `rkeops_internal_error`: a bug in rkeops; the message says so and asks for a report.
#'
#' Warnings: [solve.LazyTensor()] warns with class `rkeops_convergence_warning` when the
#' conjugate gradient does not converge.
#' @name rkeops_errors
#' @aliases rkeops_error
#' @examples
#' # a parse error: the message points at the column
#' err <- tryCatch(keops_kernel("Sum_Reduction(Exp(x - ), 1)", "x=Vi(2)"), error = identity)
#' class(err)
#' cat(conditionMessage(err), "\n")
#' conditionCall(err)
#' # a dimension error, caught by its class
#' op <- keops_kernel("Sum_Reduction(SqDist(x, y), 1)", c("x=Vi(2)", "y=Vj(2)"))
#' tryCatch(op(list(matrix(1, 3, 2), matrix(1, 4, 3))),
#'          rkeops_dimension_error = function(e) conditionMessage(e))
NULL

#' Raise a classed rkeops error
#'
#' Builds an error condition of class `rkeops_<kind>_error` (and `rkeops_error`),
#' e.g. `rkeops_formula_error`, `rkeops_dimension_error`, `rkeops_input_error`,
#' `rkeops_compile_error`, `rkeops_internal_error`.
#' @param kind the error kind.
#' @param message the message.
#' @param ... extra fields stored in the condition (e.g. the compiler log).
#' @param call the call to report: by default the user-level call into rkeops that failed.
#' @noRd
rkeops_abort <- function(kind, message, ..., call = .rk_user_call()) {
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

# The call of the outermost function of rkeops on the stack: the user-level function that
# failed (keops_kernel(), an operator `op(...)`, `sum()` on a LazyTensor...), so that errors
# name it. A method reached by dispatch is reported by its generic (`sum()`, `+`), with no
# arguments (they are evaluated values there); a long call by its function alone.
.rk_user_call <- function() {
  ns <- topenv(environment(.rk_user_call))
  n <- sys.nframe() - 1L   # not this function
  for (k in seq_len(max(n, 0L))) {
    fn <- sys.function(k)
    env <- environment(fn)
    if (is.null(env) || !identical(topenv(env), ns)) next
    gen <- get0(".Generic", envir = sys.frame(k), inherits = FALSE)
    if (is.character(gen) && length(gen) == 1) return(as.call(list(as.name(gen))))
    cl <- sys.call(k)
    txt <- deparse(cl, width.cutoff = 500L, nlines = 2L)
    if (length(txt) == 1 && nchar(txt) <= 60) return(cl)
    return(as.call(list(cl[[1]])))
  }
  NULL
}

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
# The engine never calls R: what it logged during the call (verbose mode) is collected by the
# glue and given out here as R messages, after the call returns.
# `fun` is the name of a routine registered by src/rkeops_glue.cpp (dontCheck(): the name is a
# variable, which R CMD check cannot resolve; it is looked up among rkeops's registered routines).
.rk_call <- function(fun, ...) {
  res <- .Call(dontCheck(fun), ..., PACKAGE = "rkeops")
  if (isTRUE(as.logical(getOption("rkeops")$verbosity))) {
    for (line in .Call(rk_take_log)) message(line)
  }
  secs <- attr(res, "compile_seconds")
  if (!is.null(secs) && secs > getOption("rkeops.compile_note_seconds", 1)) .rk_note_compile(list(...), secs)
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

# With the default verbosity (NA), says once per kernel that its compilation took more than a
# second, so that the user knows why the first call was slow and that later ones will not be.
# Verbosity TRUE reports every compilation through the engine's log instead; FALSE or 0 is quiet.
# (The threshold is the R option rkeops.compile_note_seconds, for tests.)
.rk_note_compile <- function(args, secs) {
  verbosity <- getOption("rkeops")$verbosity
  if (!is.null(verbosity) && !is.na(verbosity)) return(invisible())
  opt <- args[[4]]   # rk_run(formula, aliases, inputs, options)
  key <- paste(c(args[[1]], args[[2]], opt$precision, opt$backend, opt$sum_scheme), collapse = "\r")
  if (is.null(.rk_state$compile_noted)) .rk_state$compile_noted <- new.env(parent = emptyenv())
  if (exists(key, envir = .rk_state$compile_noted, inherits = FALSE)) return(invisible())
  assign(key, TRUE, envir = .rk_state$compile_noted)
  f <- gsub("[[:space:]]+", " ", args[[1]])
  if (nchar(f) > 70) f <- paste0(substr(f, 1, 67), "...")
  message(sprintf(paste("rkeops: compiling %s for the %s in %s took %.1f s (first use of this formula;",
                        "the kernel is cached for later calls and sessions)"), f, opt$backend, opt$precision, secs))
}

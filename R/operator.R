# The functions keops_kernel() and keops_grad() return: closures with RKeOps's calling
# conventions (`op(list(...))`, `op()` for the description) and the class "rkeops_operator",
# whose print method says what they compute.

# Makes `f` an operator; `grad` (for keops_grad()) is list(formula, args, var): the
# operator differentiated, the inputs the user gives (the operator's and the gradient input)
# and the variable. Inputs with batch dimensions (arrays c(B, n, d), R/batch.R) run as one
# problem per batch element; others go straight to `f`.
.rk_operator <- function(f, grad = NULL) {
  op <- function(input = NULL, inner_dim = "col", ...) {
    if (.rk_has_batch(.rk_batch_candidates(input, grad))) return(.rk_batch_call(f, input, grad, inner_dim, ...))
    f(input, inner_dim, ...)
  }
  attr(op, "rkeops_gradient_of") <- attr(f, "rkeops_gradient_of")
  if (!is.null(grad)) attr(op, "rkeops_grad") <- grad
  class(op) <- c("rkeops_operator", "function")
  op
}

#' Print an rkeops operator
#'
#' The functions returned by [keops_kernel()] and [keops_grad()] print as what they compute:
#' the formula, the reduction and its axis, each input with its category and dimension, and
#' the backend and precision that a call would use now (they are read from the options at
#' each call, see [rkeops_use_cpu()], [rkeops_use_float32()]).
#' @param x an operator returned by [keops_kernel()] or [keops_grad()].
#' @param ... ignored.
#' @return `x`, invisibly.
#' @examples
#' op <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
#'                    c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))
#' op
#' keops_grad(op, "x")
#' str(op())   # the description as a list, as in RKeOps
#' @export
print.rkeops_operator <- function(x, ...) {
  grad <- attr(x, "rkeops_grad")
  desc <- x()
  formula <- if (is.null(grad)) desc$formula else grad$formula
  args <- if (is.null(grad)) desc$args else grad$args
  info <- tryCatch(.rk_call("rk_parse", formula, args[seq_len(length(args) - !is.null(grad))]),
                   error = function(e) NULL)
  if (is.null(grad)) {
    cat("<rkeops operator> ", formula, "\n", sep = "")
  } else {
    cat("<rkeops gradient operator> d/d", grad$var, " of ", formula, "\n", sep = "")
  }
  if (!is.null(info)) {
    over <- if (info$axis == 1) "j, one result row per i" else "i, one result row per j"
    cat("  reduction: ", info$reduction, " over ", over, sep = "")
    if (is.null(grad)) cat(", output dimension ", info$out_dim, sep = "")
    cat("\n")
  }
  decl <- .rk_decl_table(args, grad)
  cat("  inputs:    ", paste(decl, collapse = "\n             "), "\n", sep = "")
  opt <- .rk_options()
  backend <- if (identical(opt$backend, "auto")) {
    if (is.null(.rk_state$auto_backend)) "auto (the GPU when one is usable)" else
      paste0("auto (", .rk_state$auto_backend, " in this session)")
  } else {
    opt$backend
  }
  cat("  backend:   ", backend, ", ", opt$precision, " (the options when called)\n", sep = "")
  if (!identical(desc$sum_scheme, "auto")) cat("  sums:      ", desc$sum_scheme, "\n", sep = "")
  res <- if (is.null(grad)) "" else paste0(" -> a matrix shaped like '", grad$var, "'")
  cat("  call:      op(list(", paste(.rk_decl_names(args), collapse = ", "), "))", res,
      "; op() gives the description\n", sep = "")
  invisible(x)
}

# The names of declarations "x=Vi(3)" / "x=Vi(0,3)" (or "input k" for unnamed ones).
.rk_decl_names <- function(args) {
  nm <- sub("=.*$", "", args)
  ifelse(grepl("=", args, fixed = TRUE) & nzchar(nm), nm, paste0("input", seq_along(args)))
}

# The categories of declarations "x=Vi(3)" / "Vj(1,3)": "Vi", "Vj" or "Pm".
.rk_decl_types <- function(args) sub("^[^=]*=?(Vi|Vj|Pm)\\(.*$", "\\1", args)

# One line per input: its declaration and what it must be.
.rk_decl_table <- function(args, grad) {
  what <- c(Vi = "i-indexed (one row per i)", Vj = "j-indexed (one row per j)", Pm = "a parameter")
  type <- .rk_decl_types(args)
  dims <- as.integer(sub("^.*[(,]([0-9]+)\\)$", "\\1", args))
  line <- sprintf("%-14s %s, %d %s", args, ifelse(type %in% names(what), what[type], ""), dims,
                  ifelse(type == "Pm", ifelse(dims == 1, "value", "values"),
                         ifelse(dims == 1, "column", "columns")))
  if (!is.null(grad)) line[length(line)] <- paste0(line[length(line)], " (the gradient input)")
  line
}

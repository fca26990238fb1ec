# RKeOps's low-level LazyTensor builders: any operation of the formula language applied to
# LazyTensors by its name, for operations that have no R function of their own. The operation
# name is checked against the engine's operation table and the result's dimension is the one the
# engine's dimension rules give (.lt_dim), so a wrong call fails here, with the engine's message.

# Complex operations whose result is real, and real operations whose result is complex (what
# res_type = NA infers).
.lt_to_real_ops <- c("ComplexAbs", "ComplexSquareAbs", "ComplexAngle", "ComplexReal", "ComplexImag")
.lt_to_complex_ops <- c("Real2Complex", "Imag2Complex", "ComplexExp1j")

.lt_operator_ops <- c("+" = "Add", "-" = "Subtract", "*" = "Mult", "/" = "Divide", "|" = "Scalprod")

# The engine name of `opstr`, or a classed error.
.lt_opname <- function(opstr, is_operator = FALSE) {
  if (!(is.character(opstr) && length(opstr) == 1 && !is.na(opstr))) {
    rkeops_abort("input", "`opstr` must be a single string naming an operation of the formula language")
  }
  if (isTRUE(is_operator)) {
    if (!opstr %in% names(.lt_operator_ops)) {
      rkeops_abort("input", sprintf("`opstr` = \"%s\" is not an operator: with is_operator = TRUE it must be one of %s",
                                    opstr, paste0("\"", names(.lt_operator_ops), "\"", collapse = ", ")))
    }
    return(.lt_operator_ops[[opstr]])
  }
  known <- .rk_call("rk_op_table")$ops
  if (!opstr %in% known) {
    rkeops_abort("formula", sprintf("`opstr`: unknown operation \"%s\" (the operations are listed in vignette(\"formulas\", package = \"rkeops\"))",
                                    substr(opstr, 1, 60)))
  }
  opstr
}

# Integer parameters of the operation: the non-NA values of `opt`, each a whole number.
.lt_opt_params <- function(opt, what) {
  opt <- Filter(function(v) !(length(v) == 1 && is.na(v)), opt)
  vapply(seq_along(opt), function(k) .lt_int(opt[[k]], what[k]), 1L)
}

# Builds op(operands..., params...) with the engine's dimension.
.lt_build <- function(op, lts, params, res_type, dim_res) {
  if (!(length(res_type) == 1 && (is.na(res_type) || res_type %in% c("LazyTensor", "ComplexLazyTensor")))) {
    rkeops_abort("input", "`res_type` must be NA, \"LazyTensor\" or \"ComplexLazyTensor\"")
  }
  is_complex <- if (is.na(res_type)) {
    op %in% .lt_to_complex_ops ||
      (any(vapply(lts, is.ComplexLazyTensor, TRUE)) && !op %in% .lt_to_real_ops)
  } else {
    identical(res_type, "ComplexLazyTensor")
  }
  dim <- .lt_dim(op, vapply(lts, .lt_rdim, 1L), params)
  if (is_complex && dim %% 2L != 0L) {
    rkeops_abort("dimension", sprintf("%s gives a formula of odd dimension %d, which cannot be complex", op, dim))
  }
  x <- .lt_call(op, lts, params, is_complex)
  if (!(length(dim_res) == 1 && is.na(dim_res)) && !identical(as.integer(dim_res), x$dimres)) {
    rkeops_abort("dimension", sprintf("`dim_res` = %s, but %s of these operands has dimension %d",
                                      format(dim_res), op, x$dimres))
  }
  x
}

# RKeOps's `dim_check_type`: a check the caller asks for on top of the operation's own rule.
.lt_builder_dims <- function(opname, lts, dim_check_type) {
  if (length(dim_check_type) == 1 && is.na(dim_check_type)) return(invisible())
  if (!(is.character(dim_check_type) && length(dim_check_type) == 1 && dim_check_type %in% c("sameor1", "same"))) {
    rkeops_abort("input", "`dim_check_type` must be \"sameor1\", \"same\" or NA (no check)")
  }
  dims <- vapply(lts, `[[`, 1L, "dimres")
  same <- all(dims == dims[1])
  if (!(same || dim_check_type == "sameor1" && all(dims == 1L | dims == max(dims)))) {
    rkeops_abort("dimension", sprintf("%s with dim_check_type = \"%s\" needs operands of the same dimension%s; got dimensions %s",
                                      opname, dim_check_type, if (dim_check_type == "same") "" else " or dimension 1",
                                      paste(dims, collapse = " and ")))
  }
  invisible()
}

#' Apply any operation of the formula language to LazyTensors
#'
#' The builders that RKeOps exports: `unaryop.LazyTensor(x, "Exp")` builds `Exp(x)`,
#' `binaryop.LazyTensor(x, y, "Atan2")` builds `Atan2(x, y)`, `ternaryop.LazyTensor(x, y, z,
#' "Clamp")` builds `Clamp(x, y, z)`, for any operation of the formula language (see
#' `vignette("formulas", package = "rkeops")`), including those without an R function of their
#' own. Integer parameters of the operation are given in `opt_arg` and `opt_arg2` (e.g.
#' `unaryop.LazyTensor(x, "Extract", opt_arg = 1, opt_arg2 = 2)` builds `Extract(x,1,2)`).
#' The result's inner dimension is the one the formula language's rules give.
#'
#' @param x,y,z LazyTensors (or numbers, which become parameters or integer constants).
#' @param opstr the operation's name as in formulas (`"Exp"`, `"SqDist"`, ...); with
#'   `is_operator = TRUE`, one of `"+"`, `"-"`, `"*"`, `"/"`, `"|"` (scalar product).
#' @param opt_arg,opt_arg2 integer parameters of the operation, or `NA` for none.
#' @param is_operator whether `opstr` is an infix operator.
#' @param dim_check_type `"sameor1"` (equal inner dimensions, or 1), `"same"` (equal), or `NA`
#'   (leave the check to the operation's own rule).
#' @param res_type `NA` (complex when an operand is), `"LazyTensor"` or `"ComplexLazyTensor"`.
#' @param dim_res `NA`, or the expected inner dimension of the result (checked).
#' @return A LazyTensor.
#' @examples
#' x_i <- Vi(matrix(runif(12), 4, 3))
#' y_j <- Vj(matrix(runif(15), 5, 3))
#' d_ij <- binaryop.LazyTensor(x_i, y_j, "SqDist")
#' e_i <- unaryop.LazyTensor(x_i, "Extract", opt_arg = 1, opt_arg2 = 2)
#' c_ij <- ternaryop.LazyTensor(d_ij, 0.1, 0.5, "Clamp")
#' sum(c_ij, "j")
#' @export
unaryop.LazyTensor <- function(x, opstr, opt_arg = NA, opt_arg2 = NA, res_type = NA, dim_res = NA) {
  op <- .lt_opname(opstr)
  params <- .lt_opt_params(list(opt_arg, opt_arg2), c("`opt_arg`", "`opt_arg2`"))
  .lt_build(op, list(.lt_operand(x, "`x`")), params, res_type, dim_res)
}

#' @rdname unaryop.LazyTensor
#' @export
binaryop.LazyTensor <- function(x, y, opstr, is_operator = FALSE, dim_check_type = "sameor1",
                                res_type = NA, dim_res = NA, opt_arg = NA) {
  op <- .lt_opname(opstr, is_operator)
  lts <- list(.lt_operand(x, "`x`"), .lt_operand(y, "`y`"))
  .lt_builder_dims(op, lts, dim_check_type)
  params <- .lt_opt_params(list(opt_arg), "`opt_arg`")
  .lt_build(op, lts, params, res_type, dim_res)
}

#' @rdname unaryop.LazyTensor
#' @export
ternaryop.LazyTensor <- function(x, y, z, opstr, dim_check_type = "sameor1", dim_res = NA) {
  op <- .lt_opname(opstr)
  lts <- list(.lt_operand(x, "`x`"), .lt_operand(y, "`y`"), .lt_operand(z, "`z`"))
  .lt_builder_dims(op, lts, dim_check_type)
  .lt_build(op, lts, integer(), NA, dim_res)
}

#' Is a value a whole number?
#'
#' `is.int(x)` is `TRUE` for a single finite whole number (of type double or integer), which a
#' LazyTensor formula holds as an integer constant `IntCst(n)` rather than as a parameter.
#' @param x an R object.
#' @return `TRUE` or `FALSE`.
#' @examples
#' is.int(3)
#' is.int(3.5)
#' is.int(c(1, 2))
#' @export
is.int <- function(x) .lt_is_intcst(x)

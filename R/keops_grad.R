#' Gradient of a reduction with respect to one of its variables
#'
#' `keops_grad()` differentiates the operator returned by [keops_kernel()] symbolically and
#' compiles the gradient, itself a reduction. For `op` computing `a = Reduce_j F(x_i, y_j, p)`
#' and a variable `v`, the gradient operator takes the inputs of `op` followed by a gradient
#' input `e` (one row per result row of `op`, with the dimension of `op`'s output; named
#' `gradin`) and returns `d <a, e> / d v`, shaped like `v`: one row per point of `v`, or one row
#' for a parameter.
#'
#' Supported reductions: `Sum` and `LogSumExp` (the forward log-sum-exp is computed first).
#' Inside formulas, `Grad(F, v, e)`, `GradFromPos(F, pos, e)`, `Diff(F, v, dv)`,
#' `Laplacian(F, v)` and `Divergence(F, v)` can be written directly, nested to any order.
#'
#' @param operator a function returned by [keops_kernel()] (or by `keops_grad()`, for second
#'   order).
#' @param var the variable: its name in `args`, or its 0-based position.
#' @return A function `grad(input = NULL, inner_dim = "col")` like the one [keops_kernel()]
#'   returns, taking the inputs of `operator` followed by the gradient input.
#' @examples
#' # Shape analysis: the LDDMM Hamiltonian H(q, p) = 1/2 sum_ij k(q_i, q_j) <p_i, p_j>
#' # with a Gaussian kernel k, and its gradients in q and p.
#' set.seed(1)
#' n <- 50
#' q <- matrix(rnorm(2 * n), n)
#' p <- matrix(rnorm(2 * n), n)
#' K <- keops_kernel("Sum_Reduction(Exp(-SqDist(qi, qj) / s) * (pi | pj), 1)",
#'                   c("qi=Vi(2)", "qj=Vj(2)", "pi=Vi(2)", "pj=Vj(2)", "s=Pm(1)"))
#' H <- 0.5 * sum(K(list(q, q, p, p, 0.5)))
#' # q and p appear as i and j variables: by symmetry dH/dq = d/dqi and dH/dp = d/dpi
#' dH_dq <- keops_grad(K, "qi")(list(q, q, p, p, 0.5, rep(1, n)))
#' dH_dp <- keops_grad(K, "pi")(list(q, q, p, p, 0.5, rep(1, n)))
#' # dense check
#' D2 <- unname(as.matrix(dist(q))^2)
#' Kq <- exp(-D2 / 0.5)
#' all.equal(dH_dp, Kq %*% p)
#' W <- Kq * tcrossprod(p)
#' all.equal(dH_dq, -2 / 0.5 * (rowSums(W) * q - W %*% q))
#' @export
keops_grad <- function(operator, var) {
  if (!is.function(operator)) {
    rkeops_abort("input", "'operator' must be a function returned by keops_kernel()")
  }
  desc <- operator()
  if (!is.list(desc) || !all(c("formula", "args", "sum_scheme") %in% names(desc))) {
    rkeops_abort("input", "'operator' must be a function returned by keops_kernel()")
  }
  info <- .rk_call("rk_parse", desc$formula, desc$args)
  k <- .rk_grad_var(var, info)
  vname <- info$var_name[k]
  vref <- if (nzchar(vname)) vname else {
    sprintf("Var(%d,%d,%d)", info$var_pos[k], info$var_dim[k], match(info$var_type[k], c("Vi", "Vj", "Pm")) - 1)
  }
  red <- info$reduction
  if (!(red %in% c("Sum", "LogSumExp"))) {
    rkeops_abort("formula", sprintf(paste("keops_grad() differentiates Sum and LogSumExp reductions;",
                                          "%s_Reduction is not differentiable here"), red))
  }
  axis <- info$axis
  out_type <- if (axis == 1) "Vi" else "Vj"
  vtype <- info$var_type[k]
  new_axis <- if (vtype == "Pm" || vtype == out_type) axis else 1 - axis
  n <- length(info$var_pos)
  taken <- info$var_name
  fresh <- function(base) { nm <- base; i <- 1; while (nm %in% taken) { nm <- paste0(base, i); i <- i + 1 }; nm }
  eta <- fresh("gradin")
  args <- c(desc$args, sprintf("%s=%s(%d,%d)", eta, out_type, n, info$out_dim))
  F <- info$formula_text
  if (red == "Sum") {
    formula <- sprintf("Sum_Reduction(Grad(%s, %s, %s), %d)", F, vref, eta, new_axis)
  } else {   # LogSumExp: sum_j exp(F_ij - lse_i) dF_ij/dv e_i, with lse from the forward pass
    lse <- fresh("lse")
    args <- c(args, sprintf("%s=%s(%d,1)", lse, out_type, n + 1))
    formula <- sprintf("Sum_Reduction(Exp(%s - %s) * Grad(%s, %s, %s), %d)", F, lse, F, vref, eta, new_axis)
  }
  grad_op <- keops_kernel(formula, args, desc$sum_scheme)
  function(input = NULL, inner_dim = "col") {
    if (is.null(input)) return(grad_op())
    if (!is.list(input) || length(input) != n + 1) {
      rkeops_abort("input", sprintf("'input' must be a list of %d elements: the %d inputs of the operator and the gradient input '%s'",
                                    n + 1, n, eta))
    }
    if (!is.null(names(input)) && all(nzchar(names(input)))) input <- input[c(info$var_name, eta)]
    if (red == "LogSumExp") {
      fwd <- operator(unname(input[seq_len(n)]), inner_dim)
      input <- c(unname(input), list(if (inner_dim == "row") t(fwd) else fwd))
    }
    res <- grad_op(unname(input), inner_dim)
    if (vtype == "Pm") res <- matrix(colSums(res), 1)
    res
  }
}

.rk_grad_var <- function(var, info) {
  if (is.character(var) && length(var) == 1 && !is.na(var)) {
    k <- match(var, info$var_name)
    if (is.na(k)) {
      rkeops_abort("input", sprintf("'var': unknown variable '%s' (variables: %s)", var,
                                    paste(info$var_name[nzchar(info$var_name)], collapse = ", ")))
    }
    return(k)
  }
  if (is.numeric(var) && length(var) == 1 && !is.na(var) && var == round(var) &&
      var >= 0 && var < length(info$var_pos)) {
    return(as.integer(var) + 1L)
  }
  rkeops_abort("input", sprintf(paste("'var' must be the name of a variable or its 0-based position",
                                      "(0 to %d)"), length(info$var_pos) - 1))
}

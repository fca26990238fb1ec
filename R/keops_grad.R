#' Gradient of a reduction with respect to one of its variables
#'
#' `keops_grad()` differentiates the operator returned by [keops_kernel()] symbolically and
#' compiles the gradient, itself a reduction. For `op` computing `a_i = Reduce_j F(x_i, y_j, p)`
#' (axis 1; axis 0 swaps the roles of i and j) and a variable `v`, the gradient operator takes
#' the inputs of `op` followed by a **gradient input** `e`, with one row per result row of
#' `op` and the dimension of `op`'s output, and returns `d <a, e> / d v`, **shaped like `v`**:
#' one row per point of `v` (an i variable or a j variable), or one row for a parameter.
#'
#' Every reduction is differentiable:
#' * `Sum`: `sum_j Grad(F, v, e_i)`, reduced over j for an i variable and over i for a j variable.
#' * `LogSumExp`, `LogSumExpWeight`, `SumSoftMaxWeight`, `Max_SumShiftExp(Weight)`: the exact
#'   gradient, through the forward values (one or two forward reductions, then a Sum).
#' * `Min`, `Max`, `Min_ArgMin`, `Max_ArgMax`, `KMin`, `KMin_ArgKMin`: the gradient flows to
#'   the selected terms only (the first one in case of ties), found by a forward `ArgMin`-type
#'   reduction; the gradient input of the index part of `Min_ArgMin` and `KMin_ArgKMin` is
#'   ignored. In float32 the indices are exact up to 2^24 points.
#' * `ArgMin`, `ArgMax`, `ArgKMin`: zero (piecewise constant).
#'
#' For `Sum` reductions with respect to an i or j variable, the gradient is itself a plain
#' operator, so `keops_grad(keops_grad(op, "x"), "y")` gives second derivatives. The other
#' gradients depend on forward values and cannot be differentiated again with `keops_grad()`;
#' write `Grad(Grad(F, x, e), y, u)` in a formula instead. Inside formulas, `Grad(F, v, e)`,
#' `GradFromPos(F, pos, e)`, `Diff(F, v, dv)`, `Laplacian(F, v)`, `Divergence(F, v)` and
#' `GradMatrix(F, v)` can be used anywhere, nested to any order.
#'
#' **Difference with RKeOps 2.x.** RKeOps's `keops_grad()` (and a formula
#' `Grad(Sum_Reduction(F, a), v, e)` given to `keops_kernel()`) computes
#' `Sum_Reduction(Grad(F, v, e), a)` with `e` indexed like `v`: the per-pair gradient summed over
#' the *reduced* index. That is the gradient of the reduction only when `v` is indexed by the
#' result's index. rkeops computes the true gradient in every case; `keops_kernel()` accepts
#' `Grad(<reduction>, v, e)` with `e` declared like the result (e.g. `e=Vi(d)` for a reduction
#' over j) and means the same as `keops_grad()`. With RKeOps's declaration of `e` where the two
#' differ, it stops with an error that shows the formula giving RKeOps's number.
#'
#' @param operator a function returned by [keops_kernel()] (or by `keops_grad()`).
#' @param var the variable: its name in `args`, or its 0-based position.
#' @return A function `grad(input = NULL, inner_dim = "col", ranges = NULL)` like the one
#'   [keops_kernel()] returns: `input` holds the inputs of `operator` followed by the gradient
#'   input (named `gradin` in a named list). With no input it returns the gradient's
#'   description. Printing it shows what it differentiates and its inputs. With `ranges` (see
#'   [block_sparse]), the gradient of the block-sparse reduction, block-sparse with the same
#'   pattern (the forward values it needs too).
#' @examples
#' # Shape analysis: the LDDMM Hamiltonian H(q, p) = 1/2 sum_ij k(q_i, q_j) <p_i, p_j>
#' # with the Gaussian kernel k(a, b) = exp(-|a - b|^2 / s), and its gradients in q and p.
#' set.seed(1)
#' n <- 50
#' q <- matrix(rnorm(2 * n), n)
#' p <- matrix(rnorm(2 * n), n)
#' s <- 0.5
#' K <- keops_kernel("Sum_Reduction(Exp(-SqDist(qi, qj) / s) * (pi | pj), 1)",
#'                   c("qi=Vi(2)", "qj=Vj(2)", "pi=Vi(2)", "pj=Vj(2)", "s=Pm(1)"))
#' H <- 0.5 * sum(K(list(q, q, p, p, s)))
#' # q and p enter both as i and j variables; by symmetry dH/dq = d/dqi (with e = 1), etc.
#' e <- rep(1, n)
#' dH_dq <- keops_grad(K, "qi")(list(q, q, p, p, s, e))
#' dH_dp <- keops_grad(K, "pi")(list(q, q, p, p, s, e))
#' # the same in dense R
#' Kq <- exp(-as.matrix(dist(q))^2 / s)
#' W <- Kq * tcrossprod(p)
#' all.equal(H, 0.5 * sum(W))
#' all.equal(dH_dp, Kq %*% p, check.attributes = FALSE)
#' all.equal(dH_dq, -2 / s * (rowSums(W) * q - W %*% q), check.attributes = FALSE)
#' # by position (0-based) and with respect to the parameter s
#' dH_ds <- keops_grad(K, 4)(list(q, q, p, p, s, e))
#' all.equal(0.5 * dH_ds[1, 1], 0.5 * sum(W * as.matrix(dist(q))^2) / s^2)
#' @export
keops_grad <- function(operator, var) {
  if (!is.function(operator)) {
    rkeops_abort("input", "'operator' must be a function returned by keops_kernel()")
  }
  composite <- attr(operator, "rkeops_gradient_of")
  if (!is.null(composite)) {
    rkeops_abort("formula", sprintf(paste(
      "this gradient of a %s_Reduction is not differentiable with keops_grad(): it uses forward",
      "values; write Grad(Grad(F, v, e), w, u) in a formula instead"), composite))
  }
  desc <- tryCatch(operator(), error = function(e) NULL)
  if (!is.list(desc) || !all(c("formula", "args", "sum_scheme") %in% names(desc))) {
    rkeops_abort("input", "'operator' must be a function returned by keops_kernel()")
  }
  info <- .rk_call("rk_parse", desc$formula, desc$args)
  k <- .rk_grad_var(var, info)
  # the engine's derivative of the reduction (reductions.cpp, beside the reduction's row)
  plan <- .rk_call("rk_grad_plan", desc$formula, desc$args, k - 1L)
  ctx <- .rk_grad_context(desc, info, k, plan)
  shown <- list(formula = desc$formula, args = ctx$args, var = info$var_name[k])   # for printing
  if (plan$zero) return(.rk_operator(.rk_zero_gradient(ctx), shown))   # piecewise constant: zero
  grad_op <- keops_kernel(plan$formula, plan$args, desc$sum_scheme)
  if (length(plan$extra) == 0 && ctx$vtype != "Pm") return(.rk_operator(grad_op, shown))   # a plain operator
  f <- function(input = NULL, inner_dim = "col", ranges = NULL) {
    if (is.null(input)) return(grad_op())
    input <- .rk_grad_inputs(input, ctx, inner_dim)
    extra <- .rk_grad_extra(ctx, input, inner_dim, ranges)
    if (inner_dim == "row") extra <- lapply(extra, t)   # computed with one row per point
    res <- grad_op(c(input, extra), inner_dim, ranges = ranges)
    if (ctx$vtype == "Pm") res <- matrix(colSums(res), 1)   # the parameter is shared by all rows
    res
  }
  attr(f, "rkeops_gradient_of") <- info$reduction
  .rk_operator(f, shown)
}

# What running a gradient plan needs about the operator and the variable.
.rk_grad_context <- function(desc, info, k, plan) {
  list(desc = desc, info = info, k = k, n = length(info$var_pos), vtype = info$var_type[k],
       eta = plan$eta, args = plan$args[seq_len(length(info$var_pos) + 1)], plan = plan,
       in_type = if (info$axis == 1) "Vj" else "Vi")
}

# The extra inputs of a gradient plan, computed from the operator's inputs (one row per point):
# columns of a forward reduction, or the indices of the points reduced over.
.rk_grad_extra <- function(ctx, input, inner_dim, ranges = NULL) {
  lapply(ctx$plan$extra, function(x) {
    if (!nzchar(x$forward)) return(.rk_index_input(ctx, input, inner_dim))
    .rk_forward(ctx, x$forward, input, inner_dim, ranges)[, x$col0 + seq_len(x$dim), drop = FALSE]
  })
}

# The user's inputs (named or not) in position order, with the gradient input last.
.rk_grad_inputs <- function(input, ctx, inner_dim) {
  n <- ctx$n
  if (!is.list(input) || length(input) != n + 1) {
    rkeops_abort("input", sprintf(paste("'input' must be a list of %d elements: the %d input(s) of the",
                                        "operator and the gradient input '%s'"), n + 1, n, ctx$eta))
  }
  nm <- names(input)
  if (!is.null(nm) && all(nzchar(nm))) {
    want <- c(ctx$info$var_name, ctx$eta)
    if (!setequal(nm, want)) {
      rkeops_abort("input", paste0("the names of 'input' (", paste(nm, collapse = ", "),
                                   ") must be the variable names (", paste(want, collapse = ", "), ")"))
    }
    input <- input[want]
  }
  input <- unname(input)
  input[[n + 1]] <- .rk_gradient_input(input[[n + 1]], ctx, inner_dim)
  input
}

# The gradient input as a matrix with the engine's output layout: the lists (values,
# indices) of Min_ArgMin/KMin_ArgKMin are bound side by side, the n x K x d arrays of the
# KMin family flattened rank-major, as the forward reduction returns them.
.rk_gradient_input <- function(e, ctx, inner_dim) {
  flat <- function(a) {
    if (length(dim(a)) == 3) matrix(aperm(a, c(1, 3, 2)), dim(a)[1]) else a
  }
  if (is.list(e) && !is.data.frame(e)) {
    e <- do.call(cbind, lapply(e, flat))
    if (inner_dim == "row") e <- t(e)
  } else if (length(dim(e)) == 3) {
    e <- flat(e)
    if (inner_dim == "row") e <- t(e)
  }
  e
}

# Runs `formula` (a reduction over the operator's args) on the operator's inputs and returns
# the engine's raw n_out x out_dim matrix.
.rk_forward <- function(ctx, formula, input, inner_dim, ranges = NULL) {
  info <- .rk_call("rk_parse", formula, ctx$desc$args)
  inputs <- .rk_prepare_inputs(input[seq_len(ctx$n)], info, inner_dim)
  out <- .rk_run(formula, ctx$desc$args, inputs, ctx$desc$sum_scheme, inner_dim, ranges = ranges, info = info)
  attr(out, "compile_seconds") <- NULL
  out
}

# 0, 1, ..., (number of points of the reduced index) - 1, as an input of that category.
.rk_index_input <- function(ctx, input, inner_dim) {
  cat_k <- which(ctx$info$var_type == ctx$in_type)
  n <- if (length(cat_k) == 0) 1 else {
    x <- input[[cat_k[1]]]
    if (is.null(dim(x))) length(x) else if (inner_dim == "row") ncol(x) else nrow(x)
  }
  matrix(seq_len(n) - 1, ncol = 1)
}

# Zeros shaped like the variable (the Arg* reductions).
.rk_zero_gradient <- function(ctx) {
  f <- function(input = NULL, inner_dim = "col", ranges = NULL) {
    if (is.null(input)) {
      return(list(formula = "0", args = ctx$args, args_info = NULL, sum_scheme = ctx$desc$sum_scheme))
    }
    input <- .rk_grad_inputs(input, ctx, inner_dim)
    inputs <- .rk_prepare_inputs(input[seq_len(ctx$n)], ctx$info, inner_dim)
    .rk_check_inputs(ctx$desc$formula, ctx$desc$args, inputs, inner_dim)
    x <- inputs[[ctx$k]]
    matrix(0, if (ctx$vtype == "Pm") 1 else nrow(x), ctx$info$var_dim[ctx$k])
  }
  attr(f, "rkeops_gradient_of") <- ctx$info$reduction
  f
}

.rk_grad_var <- function(var, info) {
  if (is.character(var) && length(var) == 1 && !is.na(var)) {
    k <- match(var, info$var_name)
    if (is.na(k) || !nzchar(var)) {
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

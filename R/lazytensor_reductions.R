# Reductions of LazyTensors: each builds "<Name>_Reduction(F, [opt,] axis)" over positional
# variables V0, V1, ... and runs it with keops_kernel() (kernels are cached per formula).
# `index` names the index reduced over: "j" gives one row per i (axis 1), "i" one row per j
# (axis 0), as in RKeOps.

.lt_check_index <- function(index, allow_na = FALSE) {
  ok <- length(index) == 1 && ((allow_na && is.na(index)) ||
                                 (is.character(index) && !is.na(index) && index %in% c("i", "j")))
  if (!ok) {
    rkeops_abort("input", paste0("`index` must be \"i\" or \"j\" (the index reduced over)",
                                 if (allow_na) ", or NA (an operation on the inner dimension, no reduction)" else ""))
  }
  invisible(index)
}

.lt_check_lazy <- function(x, what = "`x`") {
  if (!is.LazyTensor(x)) {
    rkeops_abort("input", sprintf("%s must be a LazyTensor, got %s",
                                  what, .rk_describe(x)))
  }
  invisible(x)
}

.lt_check_real <- function(x, what) {
  if (is.ComplexLazyTensor(x)) rkeops_abort("input", sprintf("%s is not defined for a ComplexLazyTensor", what))
}

.lt_check_dim1 <- function(x, what) {
  if (x$dimres != 1L) {
    rkeops_abort("dimension", sprintf("%s needs a LazyTensor of dimension 1, got dimension %d", what, x$dimres))
  }
}

# Runs a reduction formula; with option formula_only, returns the formula and args instead.
# `sum_scheme` is keops_kernel()'s; `backend` ("CPU", "GPU", "auto", or NA for the option)
# applies to this call only, as PyKeOps's `backend =`; `ranges`: a block-sparse reduction (see
# ?block_sparse).
.lt_run <- function(canon, data, sum_scheme = "auto", backend = NA, ranges = NULL) {
  if (isTRUE(get_rkeops_options("formula_only"))) return(canon)
  op <- keops_kernel(canon$formula, canon$args, sum_scheme = sum_scheme)
  backend <- .lt_check_backend(backend)
  if (!is.na(backend)) {
    old <- getOption("rkeops")
    on.exit(options(rkeops = old), add = TRUE)
    set_rkeops_options(list(backend = backend))
  }
  op(data, ranges = ranges)
}

# PyKeOps's backend names: "CPU", "GPU" (also "GPU_1D", "GPU_2D": the engine picks the
# scheme), "auto"; NA keeps the option.
.lt_check_backend <- function(backend) {
  if (length(backend) == 1 && is.na(backend)) return(NA_character_)
  ok <- c("auto", "CPU", "GPU", "GPU_1D", "GPU_2D")
  if (!(is.character(backend) && length(backend) == 1 && backend %in% ok)) {
    rkeops_abort("option", paste0("`backend` must be NA (the option), or one of ", paste0("\"", ok, "\"", collapse = ", ")))
  }
  if (startsWith(backend, "GPU")) "GPU" else backend
}

# Builds and runs <red>_Reduction(F, [opt | W,] axis).
.lt_reduce <- function(x, red, index, opt = NULL, weight = NULL, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_check_lazy(x)
  .lt_check_index(index)
  # A LazyTensor of parameters only reduces over one point (as RKeOps): one row, its value.
  m <- .lt_combine(if (is.null(weight)) list(x) else list(x, weight))
  inner <- paste(c(m$formulas, if (!is.null(opt)) as.character(opt)), collapse = ",")
  formula <- sprintf("%s_Reduction(%s,%d)", red, inner, if (index == "j") 1L else 0L)
  .lt_run(.lt_canonical(formula, m$names, m$args), m$data, sum_scheme, backend, ranges)
}

# ---- Summary group: sum, min, max ------------------------------------------------------------

#' Reductions of LazyTensors
#'
#' `sum(x, index)`, `min(x, index)` and `max(x, index)` reduce the symbolic matrix `x` over
#' `index`: `index = "j"` gives one row per i (the reduction over j, e.g. the row sums of a
#' kernel matrix), `index = "i"` one row per j. The result is an R matrix with one row per
#' point of the other index and one column per component of `x` (for a `ComplexLazyTensor`,
#' interleaved real and imaginary parts). A LazyTensor with no variable of the other index
#' gives one row. With `index = NA` (the default), `sum(x)`, `min(x)` and `max(x)` are not
#' reductions but operations on the inner dimension: a LazyTensor of dimension 1 holding the
#' sum (complex sum for a ComplexLazyTensor), minimum or maximum of the components of `x`.
#'
#' `argmin()`, `argmax()` give the **0-based** position of the minimum or maximum (with
#' `index = NA`, of the components of `x`); `min_argmin()` and `max_argmax()` a list of two
#' matrices, the values and their 0-based positions. `Kmin(x, K, index)` gives the `K`
#' smallest values (sorted, `+Inf` where there are fewer), `argKmin()` their 0-based positions
#' and `Kmin_argKmin()` both: an n x K matrix when `x` has dimension 1, an n x K x d array
#' otherwise. `logsumexp(x, index, weight)` is the stable `log(sum(exp(x)))` (`x` of
#' dimension 1), or with a `weight` `w`, `log(sum(exp(x) * w))` per component of `w`;
#' `sumsoftmaxweight(x, index, weight)` is `sum(exp(x) * w) / sum(exp(x))`.
#' The `*_reduction()` functions are the same with `index` required; `reduction(x, opstr,
#' index, opt_arg)` applies any reduction of the formula language by name (`opt_arg` is K for
#' the KMin family, or the weight LazyTensor).
#'
#' With the option `formula_only` set (see [set_rkeops_options()]), reductions return the
#' formula and the variable declarations they would compile, as a list, instead of computing.
#' @param x a LazyTensor.
#' @param ... for `sum`, `min` and `max`: `x`, then `index` (named or second), and optionally
#'   `sum_scheme` and `backend` (named).
#' @param na.rm ignored (there are no missing values in a formula).
#' @param index `"i"` or `"j"`, the index reduced over; `NA` where allowed (no reduction).
#' @param K the number of smallest values, a positive integer.
#' @param weight a LazyTensor (or a numeric vector, a parameter) of weights.
#' @param opstr the name of a reduction of the formula language, e.g. `"Sum"`, `"ArgKMin"`.
#' @param opt_arg `K` for the KMin family, a weight LazyTensor for `SumSoftMaxWeight` and
#'   `LogSumExpWeight`, or `NULL`.
#' @param sum_scheme how sums are accumulated, as in [keops_kernel()]: `"auto"` (block sums),
#'   `"direct_sum"`, `"block_sum"` or `"kahan_scheme"` (PyKeOps's `sum_scheme =`). For `sum`,
#'   `min` and `max`, a named argument in `...`.
#' @param backend `NA` (the backend of the options), or for this call only `"CPU"`, `"GPU"`
#'   (PyKeOps's `"GPU_1D"` and `"GPU_2D"` are taken as `"GPU"`) or `"auto"` (PyKeOps's
#'   `backend =`). For `sum`, `min` and `max`, a named argument in `...`.
#' @param ranges `NULL`, or a block-sparse pattern made by [block_sparse_ranges()] or
#'   [keops_ranges()]: the reduction visits only the kept blocks (see [block_sparse]); with
#'   `sum()`, `min()` and `max()`, give it by name, `sum(K_ij, "j", ranges = r)`.
#' @return A matrix (a list of two for `min_argmin`, `max_argmax`, `Kmin_argKmin`; arrays for
#'   the KMin family with d > 1), or a LazyTensor when `index = NA`.
#' @examples
#' x <- matrix(runif(30), 10, 3)
#' y <- matrix(runif(60), 20, 3)
#' x_i <- Vi(x); y_j <- Vj(y)
#' D_ij <- sqdist(x_i, y_j)
#' sum(exp(-D_ij), index = "j")        # 10 x 1: sums over j
#' sum(exp(-D_ij), "i")                # 20 x 1: sums over i
#' argmin(D_ij, "j")                   # nearest y of each x (0-based)
#' argKmin(D_ij, K = 3, index = "j")   # its 3 nearest (0-based), 10 x 3
#' logsumexp(-D_ij, "j")
#' sumsoftmaxweight(-D_ij, "j", weight = y_j)
#' reduction(D_ij, "Max", "i")
#' sum(exp(-D_ij), "j", sum_scheme = "kahan_scheme", backend = "CPU")
#' argmin(c(3, 1, 2))                  # a LazyTensor from numbers, as RKeOps
#' @name reductions
NULL

#' @rdname reductions
#' @export
Summary.LazyTensor <- function(..., na.rm = FALSE) {
  args <- list(...)
  x <- args[[1]]
  rest <- args[-1]
  nm <- names(rest)
  if (is.null(nm)) nm <- rep("", length(rest))
  named <- c("sum_scheme", "backend", "ranges")
  extra <- rest[nm %in% named]
  rest <- rest[!nm %in% named]
  nm <- nm[!nm %in% named]
  if (length(rest) > 1 || (length(rest) == 1 && (!nm %in% c("", "index") || is.LazyTensor(rest[[1]])))) {
    rkeops_abort("input", sprintf(paste("%s() on a LazyTensor takes one LazyTensor, `index` and optionally",
                                        "`sum_scheme`, `backend` and `ranges`"), .Generic))
  }
  index <- if (length(rest)) rest[[1]] else NA
  sch <- if (is.null(extra$sum_scheme)) "auto" else extra$sum_scheme
  bk <- if (is.null(extra$backend)) NA else extra$backend
  rg <- extra$ranges
  switch(.Generic,
    sum = .lt_sum(x, index, sch, bk, rg),
    min = .lt_extreme(x, index, "Min", sch, bk, rg),
    max = .lt_extreme(x, index, "Max", sch, bk, rg),
    rkeops_abort("input", sprintf("%s() is not available for LazyTensors (sum, min and max are)", .Generic)))
}

.lt_sum <- function(x, index, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_check_index(index, allow_na = TRUE)
  if (is.na(index)) {
    .lt_no_ranges(ranges)
    if (is.ComplexLazyTensor(x)) return(.lt_cx_unary("ComplexSum", x))
    return(.lt_unary("Sum", x))
  }
  .lt_reduce(x, "Sum", index, sum_scheme = sum_scheme, backend = backend, ranges = ranges)
}

# `ranges` given to an operation that is not a reduction (index = NA).
.lt_no_ranges <- function(ranges) {
  if (!is.null(ranges)) rkeops_abort("input", "`ranges` needs a reduction: give `index` (\"i\" or \"j\")")
}

.lt_extreme <- function(x, index, red, sum_scheme = "auto", backend = NA, ranges = NULL) {
  if (!is.LazyTensor(x) && (is.numeric(x) || is.complex(x)) && !is.object(x)) x <- .lt_operand(x)  # as RKeOps
  .lt_check_lazy(x)
  .lt_check_index(index, allow_na = TRUE)
  # without an index, over the (re, im) values of a ComplexLazyTensor, as RKeOps (a real result)
  if (is.na(index)) {
    .lt_no_ranges(ranges)
    return(.lt_unary(red, x))
  }
  .lt_check_real(x, paste0(tolower(red), "()"))
  .lt_reduce(x, red, index, sum_scheme = sum_scheme, backend = backend, ranges = ranges)
}

#' @rdname reductions
#' @export
sum_reduction <- function(x, index, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_check_index(index)
  .lt_sum(.lt_check_lazy(x), index, sum_scheme, backend, ranges)
}

#' @rdname reductions
#' @export
min_reduction <- function(x, index, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_check_index(index)
  .lt_extreme(x, index, "Min", sum_scheme, backend, ranges)
}

#' @rdname reductions
#' @export
max_reduction <- function(x, index, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_check_index(index)
  .lt_extreme(x, index, "Max", sum_scheme, backend, ranges)
}

#' @rdname reductions
#' @export
argmin <- function(x, index = NA, sum_scheme = "auto", backend = NA, ranges = NULL) .lt_extreme(x, index, "ArgMin", sum_scheme, backend, ranges)

#' @rdname reductions
#' @export
argmin_reduction <- function(x, index, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_check_index(index)
  .lt_extreme(x, index, "ArgMin", sum_scheme, backend, ranges)
}

#' @rdname reductions
#' @export
argmax <- function(x, index = NA, sum_scheme = "auto", backend = NA, ranges = NULL) .lt_extreme(x, index, "ArgMax", sum_scheme, backend, ranges)

#' @rdname reductions
#' @export
argmax_reduction <- function(x, index, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_check_index(index)
  .lt_extreme(x, index, "ArgMax", sum_scheme, backend, ranges)
}

#' @rdname reductions
#' @export
min_argmin <- function(x, index, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_check_index(index)
  .lt_extreme(x, index, "Min_ArgMin", sum_scheme, backend, ranges)
}

#' @rdname reductions
#' @export
min_argmin_reduction <- function(x, index, sum_scheme = "auto", backend = NA, ranges = NULL) min_argmin(x, index, sum_scheme, backend, ranges)

#' @rdname reductions
#' @export
max_argmax <- function(x, index, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_check_index(index)
  .lt_extreme(x, index, "Max_ArgMax", sum_scheme, backend, ranges)
}

#' @rdname reductions
#' @export
max_argmax_reduction <- function(x, index, sum_scheme = "auto", backend = NA, ranges = NULL) max_argmax(x, index, sum_scheme, backend, ranges)

.lt_kmin <- function(x, K, index, red, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_check_lazy(x)
  .lt_check_real(x, paste0(red, " reductions"))
  K <- .lt_int(K, "`K`", 1, 1e6)
  .lt_reduce(x, red, index, opt = K, sum_scheme = sum_scheme, backend = backend, ranges = ranges)
}

#' @rdname reductions
#' @export
Kmin <- function(x, K, index, sum_scheme = "auto", backend = NA, ranges = NULL) .lt_kmin(x, K, index, "KMin", sum_scheme, backend, ranges)

#' @rdname reductions
#' @export
Kmin_reduction <- function(x, K, index, sum_scheme = "auto", backend = NA, ranges = NULL) Kmin(x, K, index, sum_scheme, backend, ranges)

#' @rdname reductions
#' @export
argKmin <- function(x, K, index, sum_scheme = "auto", backend = NA, ranges = NULL) .lt_kmin(x, K, index, "ArgKMin", sum_scheme, backend, ranges)

#' @rdname reductions
#' @export
argKmin_reduction <- function(x, K, index, sum_scheme = "auto", backend = NA, ranges = NULL) argKmin(x, K, index, sum_scheme, backend, ranges)

#' @rdname reductions
#' @export
Kmin_argKmin <- function(x, K, index, sum_scheme = "auto", backend = NA, ranges = NULL) .lt_kmin(x, K, index, "KMin_ArgKMin", sum_scheme, backend, ranges)

#' @rdname reductions
#' @export
Kmin_argKmin_reduction <- function(x, K, index, sum_scheme = "auto", backend = NA, ranges = NULL) Kmin_argKmin(x, K, index, sum_scheme, backend, ranges)

.lt_weight <- function(weight) {
  w <- .lt_operand(weight, "weight")
  w
}

#' @rdname reductions
#' @export
logsumexp <- function(x, index, weight = NULL, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_check_lazy(x)
  .lt_check_real(x, "logsumexp()")
  .lt_check_dim1(x, "logsumexp()")
  if (is.null(weight)) return(.lt_reduce(x, "LogSumExp", index, sum_scheme = sum_scheme, backend = backend, ranges = ranges))
  .lt_reduce(x, "LogSumExpWeight", index, weight = .lt_weight(weight), sum_scheme = sum_scheme, backend = backend, ranges = ranges)
}

#' @rdname reductions
#' @export
logsumexp_reduction <- function(x, index, weight = NULL, sum_scheme = "auto", backend = NA, ranges = NULL) {
  logsumexp(x, index, weight, sum_scheme, backend, ranges)
}

#' @rdname reductions
#' @export
sumsoftmaxweight <- function(x, index, weight, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_check_lazy(x)
  .lt_check_real(x, "sumsoftmaxweight()")
  .lt_check_dim1(x, "sumsoftmaxweight()")
  if (missing(weight) || is.null(weight)) rkeops_abort("input", "sumsoftmaxweight() needs a `weight`")
  .lt_reduce(x, "SumSoftMaxWeight", index, weight = .lt_weight(weight), sum_scheme = sum_scheme, backend = backend, ranges = ranges)
}

#' @rdname reductions
#' @export
sumsoftmaxweight_reduction <- function(x, index, weight, sum_scheme = "auto", backend = NA, ranges = NULL) {
  sumsoftmaxweight(x, index, weight, sum_scheme, backend, ranges)
}

#' @rdname reductions
#' @export
reduction <- function(x, opstr, index, opt_arg = NULL, sum_scheme = "auto", backend = NA, ranges = NULL) UseMethod("reduction")

#' @rdname reductions
#' @export
#' @rawNamespace export(reduction.LazyTensor)
reduction.LazyTensor <- function(x, opstr, index, opt_arg = NULL, sum_scheme = "auto", backend = NA, ranges = NULL) {
  reds <- .rk_call("rk_op_table")$reductions
  if (!(is.character(opstr) && length(opstr) == 1 && opstr %in% reds)) {
    rkeops_abort("input", paste0("`opstr` must name a reduction among ", paste(reds, collapse = ", ")))
  }
  red <- function(...) .lt_reduce(x, opstr, index, ..., sum_scheme = sum_scheme, backend = backend, ranges = ranges)
  if (is.null(opt_arg)) return(red())
  if (is.LazyTensor(opt_arg)) return(red(weight = opt_arg))
  red(opt = .lt_int(opt_arg, "`opt_arg` (K)", 1, 1e6))
}

#' @export
reduction.default <- function(x, opstr, index, opt_arg = NULL, sum_scheme = "auto", backend = NA, ranges = NULL) {
  .lt_need_lazy("reduction", x)
}

# ---- gradient ---------------------------------------------------------------------------------

#' Gradient of a reduction
#'
#' For the reduction `out = Reduce(f, index)` (one row per point of the other index), the
#' gradient of `<out, gradin>` with respect to the variable `var` of `f`: a matrix with one
#' row per point of `var` (one row for a parameter) and one column per component of `var`.
#' `gradin` has the dimension of `f` and is indexed by the output index (a matrix with one row
#' per output point, or a LazyTensor). It is the gradient [keops_grad()] computes for the same
#' reduction (the engine's derivative rule of each reduction): for `"Sum"`, the formula-language
#' `Grad(F, v, g)` inside a sum reduction over the index that `var` does not carry.
#'
#' Without `index`, `grad(f, gradin, var = v)` is not a reduction but the symbolic gradient
#' `Grad(f, v, gradin)`, a LazyTensor of the dimension of `v` (PyKeOps's `f.grad(v, gradin)`;
#' see [lazytensor_derivatives]); `gradin` is then any LazyTensor (or number) of `f`'s dimension.
#'
#' When `var` is indexed by the output index this is what RKeOps's `grad()` computes; when it
#' is indexed by the reduced index, RKeOps sums over the reduced index again, whereas `grad()`
#' here returns the true gradient, indexed like `var`.
#'
#' For a `ComplexLazyTensor` `f` of complex dimension d, `gradin` has 2d columns (real and
#' imaginary parts interleaved) and the inner product is the real one,
#' `Re(sum(Conj(gradin) * out))`; the gradient with respect to a complex variable comes back
#' interleaved the same way (for `f = z_i * w_j` it is `gradin_i * Conj(sum_j w_j)`).
#' @param f a LazyTensor.
#' @param gradin the weights of the outputs: a LazyTensor indexed by the output index, or a
#'   matrix with one row per output point and `f`'s dimension as columns.
#' @param opstr the reduction: `"Sum"`, `"Min"`, `"Max"`, `"ArgMin"`, `"ArgMax"`, `"Min_ArgMin"`,
#'   `"Max_ArgMax"`, `"LogSumExp"` or `"Max_SumShiftExp"` (`gradin` then has the width of the
#'   reduction's result: 2 d for `"Min_ArgMin"`, whose index part is ignored).
#' @param var the variable: one of the LazyTensors `f` was built from (a `Vi()`, `Vj()` or
#'   `Pm()`), its 0-based position among the variables of `f`, or its name: the name in
#'   `f$args` (e.g. `x_i$formula`) or the name `print(f)` shows (`"V0"`, `"V1"`, ...).
#' @param index the index reduced over in `out`, `"i"` or `"j"`; missing for the symbolic
#'   gradient (a LazyTensor).
#' @param ranges `NULL`, or the block-sparse pattern of the reduction (see [block_sparse]):
#'   the gradient is block-sparse with the same pattern.
#' @return A matrix.
#' @examples
#' x <- matrix(runif(30), 10, 3); y <- matrix(runif(60), 20, 3)
#' x_i <- Vi(x); y_j <- Vj(y)
#' eta <- matrix(1, 10, 1)
#' # d/dx_i of sum_i sum_j |x_i - y_j|^2 = sum_j 2 (x_i - y_j)
#' g <- grad(sqdist(x_i, y_j), eta, "Sum", var = x_i, index = "j")
#' max(abs(g - 2 * (20 * x - matrix(colSums(y), 10, 3, byrow = TRUE))))
#' @export
grad <- function(f, gradin, opstr = "Sum", var, index, ranges = NULL) {
  .lt_check_lazy(f, "`f`")
  if (missing(index)) {
    .lt_no_ranges(ranges)
    # no reduction: the LazyTensor Grad(f, var, gradin), as PyKeOps's f.grad(var, gradin)
    if (!missing(opstr) && !identical(opstr, "Sum")) {
      rkeops_abort("input", "grad() without `index` is the symbolic gradient (a LazyTensor): `opstr` needs an `index`")
    }
    return(.lt_derivative("Grad", f, var, gradin))
  }
  .lt_check_index(index)
  plain <- c("Sum", "Min", "Max", "ArgMin", "ArgMax", "Min_ArgMin", "Max_ArgMax", "LogSumExp", "Max_SumShiftExp")
  if (!(is.character(opstr) && length(opstr) == 1 && opstr %in% plain)) {
    rkeops_abort("input", sprintf("`opstr` must be one of %s (reductions without an option)",
                                  paste0("\"", plain, "\"", collapse = ", ")))
  }
  out <- if (index == "j") "i" else "j"
  fv <- .lt_vars(f)
  # The variable: a position, a name (as in f$args, or V0, V1, ... as printed), or a
  # single-variable LazyTensor found in f.
  if (is.character(var) && length(var) == 1 && !is.na(var)) {
    k <- match(var, fv$name)
    if (is.na(k)) k <- match(var, sprintf("V%d", seq_len(nrow(fv)) - 1L))
    if (is.na(k)) {
      rkeops_abort("input", sprintf("`var`: '%s' is not a variable of `f` (its variables: %s; or V0 to V%d, as printed)",
                                    var, paste(fv$name, collapse = ", "), nrow(fv) - 1L))
    }
    vname <- fv$name[k]; vtype <- fv$type[k]; vdim <- fv$dim[k]
  } else if (is.numeric(var)) {
    k <- .lt_int(var, "`var` (a 0-based position)", 0, nrow(fv) - 1)
    vname <- fv$name[k + 1]; vtype <- fv$type[k + 1]; vdim <- fv$dim[k + 1]
  } else {
    .lt_check_lazy(var, "`var`")
    vv <- .lt_vars(var)
    if (nrow(vv) != 1 || var$formula != vv$name) {
      rkeops_abort("input", "`var` must be a variable (built by Vi(), Vj() or Pm()) or a 0-based position")
    }
    m <- .lt_combine(list(f, var))
    if (length(m$names) > nrow(fv)) rkeops_abort("input", "`var` is not a variable of `f`")
    vname <- m$formulas[2]; vtype <- vv$type; vdim <- vv$dim
  }
  # The output weights: one fresh variable indexed by the output index.
  if (is.LazyTensor(gradin)) {
    gv <- .lt_vars(gradin)
    if (nrow(gv) != 1 || gradin$formula != gv$name || gv$type != c(i = "Vi", j = "Vj")[[out]] ||
        is.ComplexLazyTensor(gradin)) {
      rkeops_abort("input", sprintf("`gradin` must be a real variable indexed by \"%s\" (the output index)", out))
    }
    gdata <- gradin$data[[1]]
    if (inherits(gdata, "rkeops_device")) gdata <- as.matrix(gdata)
    if (is.null(dim(gdata))) gdata <- matrix(gdata, ncol = 1)
  } else {
    if (!is.numeric(gradin)) rkeops_abort("input", "`gradin` must be a numeric matrix or a LazyTensor")
    gdata <- if (is.matrix(gradin) || length(dim(gradin)) > 2) gradin else matrix(gradin, ncol = 1)
    storage.mode(gdata) <- "double"
  }
  # The reduction as an operator; its gradient is keops_grad()'s (the engine's derivative rule).
  k <- match(vname, fv$name)
  canon <- .lt_canonical(sprintf("%s_Reduction(%s,%d)", opstr, f$formula, if (index == "j") 1L else 0L),
                         fv$name, f$args)
  width <- .rk_call("rk_parse", canon$formula, canon$args)$out_dim
  gd <- dim(gdata)   # (batch dimensions,) rows, columns
  if (gd[length(gd)] != width) {
    rkeops_abort("dimension", sprintf("`gradin` must have %d column(s), the dimension of the reduction (got %d)",
                                      width, gd[length(gd)]))
  }
  nout <- .lt_sizes(f)[[out]]
  if (is.na(nout)) nout <- 1L
  if (gd[length(gd) - 1] != nout) {
    rkeops_abort("dimension", sprintf("`gradin` must have %d row(s), one per %s point (got %d)",
                                      nout, out, gd[length(gd) - 1]))
  }
  keops_grad(keops_kernel(canon$formula, canon$args), k - 1L)(c(f$data, list(gdata)), ranges = ranges)
}

# PyKeOps's LazyTensor features on the R side (issue 12): transposition t(), dim(), indexing
# x[k], tensordot()/kron(), the derivative operators diff(), laplacian(), divergence() (and
# grad() without a reduction, lazytensor_reductions.R), sinc(), norm(), power(); the helpers
# of the formula language on plain R values (RKeOps computes some in R and turns the others
# into LazyTensors); and the meanings of the vector operations on ComplexLazyTensors.
# Everything is built from formula operations of the engine; nothing here adds one.

# ---- dimensions of formulas the operation table does not cover -------------------------------

# The inner dimension of the formula `f` over the variables of `m` (a .lt_combine() result),
# as the engine's parser and dimension rules give it (derivatives, TensorDot with tuples).
.lt_parsed_dim <- function(f, m) {
  canon <- .lt_canonical(sprintf("Sum_Reduction(%s,1)", f), m$names, m$args)
  .rk_call("rk_parse", canon$formula, canon$args)$out_dim
}

# A LazyTensor from a formula written on the merged variables `m`.
.lt_from_formula <- function(f, m, is_complex = FALSE) {
  d <- .lt_parsed_dim(f, m)
  .lt_make(f, m$args, m$data, if (is_complex) d %/% 2L else d, is_complex)
}

# ---- t(), dim() --------------------------------------------------------------------------------

#' Transpose and shape of a LazyTensor
#'
#' `t(x)` swaps the indices i and j of a LazyTensor: every i-indexed variable becomes
#' j-indexed and the reverse, so that for a symbolic N x M matrix `K_ij`, `t(K_ij)` is the
#' M x N matrix `K_ji` (as PyKeOps's `K.T`); `sum(t(K), "j")` is `sum(K, "i")`.
#' Parameters are left as they are.
#'
#' `dim(x)` is the shape of the symbolic matrix, as PyKeOps's `shape`: `c(N, M)` for a
#' LazyTensor of dimension 1 and `c(N, M, D)` for one of inner dimension `D` (a
#' ComplexLazyTensor counts complex components), where N is the number of i points and M the
#' number of j points, 1 when the LazyTensor has no variable of that index. `nrow()` and
#' `ncol()` follow.
#' @param x a LazyTensor.
#' @return `t()`: a LazyTensor (complex when `x` is). `dim()`: an integer vector.
#' @examples
#' x_i <- Vi(matrix(runif(30), 10, 3))
#' y_j <- Vj(matrix(runif(60), 20, 3))
#' K_ij <- exp(-sqdist(x_i, y_j))
#' dim(K_ij)                 # 10 20
#' dim(x_i - y_j)            # 10 20 3
#' dim(t(K_ij))              # 20 10
#' all.equal(sum(t(K_ij), "j"), sum(K_ij, "i"))
#' @name t.LazyTensor
#' @export
t.LazyTensor <- function(x) {
  v <- .lt_vars(x)
  if (!nrow(v)) return(x)
  swap <- c(Vi = "Vj", Vj = "Vi", Pm = "Pm")[v$type]
  # fresh names: a variable keeps its data but changes index, so it is another variable
  to <- vapply(swap, .lt_new_name, "", USE.NAMES = FALSE)
  f <- .lt_rename_all(x$formula, v$name, to)
  args <- sprintf("%s=%s(%d)", to, swap, v$dim)
  .lt_make(f, args, x$data, x$dimres, is.ComplexLazyTensor(x))
}

#' @rdname t.LazyTensor
#' @export
dim.LazyTensor <- function(x) {
  s <- .lt_sizes(x)
  s[is.na(s)] <- 1L
  d <- as.integer(c(s[["i"]], s[["j"]]))
  if (x$dimres == 1L) d else c(d, x$dimres)
}

# ---- indexing ----------------------------------------------------------------------------------

#' Components of a LazyTensor
#'
#' `x[k]` is the component `k` of the inner dimension of `x` (**1-based**, as R indexing), a
#' LazyTensor of dimension 1 (`Elem(x, k - 1)` of the formula language); `x[k:l]` the
#' components `k` to `l` (`Extract(x, k - 1, l - k + 1)`); any other vector of positions is
#' the concatenation of those components, in that order (`x[c(3, 1)]`). On a
#' ComplexLazyTensor, positions count complex components. [elem()] and [extract()] are the
#' same with RKeOps's 0-based positions.
#' @param x a LazyTensor.
#' @param i positive whole numbers, at most the inner dimension of `x`.
#' @param ... nothing: a LazyTensor has one index to pick components from.
#' @return A LazyTensor.
#' @examples
#' x_i <- Vi(matrix(runif(40), 10, 4))
#' y_j <- Vj(matrix(runif(80), 20, 4))
#' sum(x_i[1] * y_j[2:3], index = "j")        # 10 x 2
#' dim(x_i[c(4, 1)])
#' @name extract.LazyTensor
#' @export
`[.LazyTensor` <- function(x, i, ...) {
  if (...length() || missing(i)) {
    rkeops_abort("input", "a LazyTensor takes one index: the positions of its components, x[k] or x[k:l]")
  }
  if (!(is.numeric(i) && length(i) >= 1 && !anyNA(i) && all(i == round(i)) && all(i >= 1))) {
    rkeops_abort("input", "the positions in x[...] must be positive whole numbers (1-based)")
  }
  if (any(i > x$dimres)) {
    rkeops_abort("dimension", sprintf("position %d is out of range: the LazyTensor has dimension %d",
                                      as.integer(max(i)), x$dimres))
  }
  i <- as.integer(i)
  cx <- is.ComplexLazyTensor(x)
  w <- if (cx) 2L else 1L
  # runs of consecutive positions, one Extract (or Elem) each, concatenated
  starts <- c(1L, which(diff(i) != 1L) + 1L)
  ends <- c(starts[-1] - 1L, length(i))
  parts <- lapply(seq_along(starts), function(k) {
    a <- i[starts[k]]; n <- ends[k] - starts[k] + 1L
    if (!cx && n == 1L) .lt_unary("Elem", x, params = a - 1L, what = "x[k]")
    else .lt_call("Extract", list(x), c(w * (a - 1L), w * n), is_complex = cx, what = "x[k:l]")
  })
  Reduce(function(a, b) .lt_call("Concat", list(a, b), is_complex = cx, what = "x[...]"), parts)
}

# ---- tensordot, kron ---------------------------------------------------------------------------

.lt_shape <- function(s, what) {
  if (!(is.numeric(s) && length(s) >= 1 && !anyNA(s) && all(s == round(s)) && all(s >= 1) &&
        all(s <= .Machine$integer.max))) {
    rkeops_abort("input", sprintf("%s must be a vector of positive whole numbers", what))
  }
  as.integer(s)
}

.lt_axes <- function(a, n, what) {
  if (!(is.numeric(a) && !anyNA(a) && all(a == round(a)) && all(a >= 1) && all(a <= n) && !anyDuplicated(a))) {
    rkeops_abort("input", sprintf("%s must hold distinct axes between 1 and %d", what, n))
  }
  as.integer(a)
}

.lt_ind <- function(v) sprintf("Ind(%s)", paste(v, collapse = ","))

#' Tensor contraction and Kronecker product of LazyTensors
#'
#' The inner vectors of `x` and `y` read as row-major tensors of shapes `dimfa` and `dimfb`
#' (the product of a shape is the inner dimension):
#' * `tensordot(x, y, dimfa, dimfb, contfa, contfb)` contracts axis `contfa[k]` of `x` with
#'   axis `contfb[k]` of `y` (axes are **1-based**), giving the free axes of `x` followed by
#'   those of `y`, row-major, as PyKeOps's `keops_tensordot()` (and the formula's
#'   `TensorDot(x, y, Ind(dimfa), Ind(dimfb), Ind(contfa - 1), Ind(contfb - 1))`); `permute`
#'   (a permutation of `1..n` over the n free axes) sends free axis k to output axis
#'   `permute[k]`. `contfa = integer()` is the outer product.
#' * `kron(x, y, dimfa, dimfb)` is the Kronecker product of tensors with as many axes:
#'   for matrices, the row-major flattening of `kronecker(A, B)` (the formula's `Kron`).
#' @param x,y real LazyTensors.
#' @param dimfa,dimfb the shapes of `x` and `y`.
#' @param contfa,contfb the contracted axes of `x` and `y` (1-based, as many of each).
#' @param permute `NULL`, or the output axis of each free axis (1-based).
#' @return A LazyTensor of dimension the product of the output shape.
#' @examples
#' A <- matrix(runif(60), 10, 6)     # per i, a 2 x 3 matrix (row-major)
#' B <- matrix(runif(240), 20, 12)   # per j, a 3 x 4 matrix
#' AB <- tensordot(Vi(A), Vj(B), c(2, 3), c(3, 4), 2, 1)  # per (i, j) the 2 x 4 product
#' dim(AB)
#' sum(AB, index = "j")[1, ]
#' dim(kron(Vi(A), Vj(B), c(2, 3), c(3, 4)))               # 6 x 12 per (i, j)
#' @export
tensordot <- function(x, y, dimfa, dimfb, contfa, contfb, permute = NULL) {
  lts <- list(.lt_real(x, "tensordot()"), .lt_real(y, "tensordot()"))
  da <- .lt_shape(dimfa, "`dimfa`"); db <- .lt_shape(dimfb, "`dimfb`")
  ca <- .lt_axes(contfa, length(da), "`contfa`"); cb <- .lt_axes(contfb, length(db), "`contfb`")
  if (length(ca) != length(cb)) rkeops_abort("input", "`contfa` and `contfb` must name as many axes")
  params <- c(.lt_ind(da), .lt_ind(db), .lt_ind(ca - 1L), .lt_ind(cb - 1L))
  if (!is.null(permute)) {
    nfree <- length(da) + length(db) - 2L * length(ca)
    p <- .lt_axes(permute, nfree, "`permute`")
    if (length(p) != nfree) rkeops_abort("input", sprintf("`permute` must be a permutation of 1..%d (the free axes)", nfree))
    params <- c(params, .lt_ind(p - 1L))
  }
  m <- .lt_combine(lts)
  .lt_from_formula(sprintf("TensorDot(%s)", paste(c(m$formulas, params), collapse = ",")), m)
}

#' @rdname tensordot
#' @export
kron <- function(x, y, dimfa, dimfb) {
  lts <- list(.lt_real(x, "kron()"), .lt_real(y, "kron()"))
  da <- .lt_shape(dimfa, "`dimfa`"); db <- .lt_shape(dimfb, "`dimfb`")
  if (length(da) != length(db)) rkeops_abort("input", "kron() needs two shapes with as many axes")
  m <- .lt_combine(lts)
  .lt_from_formula(sprintf("Kron(%s,%s,%s,%s)", m$formulas[1], m$formulas[2], .lt_ind(da), .lt_ind(db)), m)
}

# ---- derivatives as LazyTensors ----------------------------------------------------------------

# The name, in the merged formula, of the variable `v` (a LazyTensor made by Vi(), Vj(), Pm()).
.lt_var_check <- function(v, what = "`v`") {
  if (!is.LazyTensor(v)) rkeops_abort("input", sprintf("%s must be a variable (a LazyTensor built by Vi(), Vj() or Pm()), got %s", what, .rk_describe(v)))
  vv <- .lt_vars(v)
  if (nrow(vv) != 1 || v$formula != vv$name) {
    rkeops_abort("input", sprintf("%s must be a variable (built by Vi(), Vj() or Pm()), not an expression", what))
  }
  invisible(v)
}

# Builds Op(f, v[, extra]) over the merged variables.
.lt_derivative <- function(op, f, v, extra = NULL) {
  .lt_check_lazy(f, "`f`")
  .lt_var_check(v)
  lts <- list(f, v)
  if (!is.null(extra)) lts <- c(lts, list(.lt_operand(extra, "gradient input")))
  m <- .lt_combine(lts)
  .lt_from_formula(sprintf("%s(%s)", op, paste(m$formulas, collapse = ",")), m, is.ComplexLazyTensor(f) && op == "Diff")
}

#' Derivatives of LazyTensors
#'
#' Symbolic derivatives of a LazyTensor `f` with respect to one of its variables `v` (a
#' LazyTensor made by [Vi()], [Vj()] or [Pm()]), each a new LazyTensor (not a reduction), as
#' PyKeOps's `F.grad(v, e)`, `F.diff(v, u)`, `F.laplacian(v)` and `F.divergence(v)`:
#' * `grad(f, gradin, var = v)` (without `index`, see [grad()]): the gradient of
#'   `<f, gradin>` with respect to `v`, a LazyTensor of the dimension of `v`
#'   (`Grad(f, v, gradin)`; `gradin` has the dimension of `f`);
#' * `diff(f, v, u)`: the derivative of `f` in the direction `u` (of the dimension of `v`),
#'   a LazyTensor of the dimension of `f` (`Diff(f, v, u)`);
#' * `laplacian(f, v)`: the Laplacian of a scalar `f`, `sum_k d^2 f / d v_k^2` (dimension 1);
#' * `divergence(f, v)`: `sum_k d f_k / d v_k` for `f` of the dimension of `v` (dimension 1).
#' @param f,x a LazyTensor (`x` for R's generic `diff()`).
#' @param v the variable to differentiate with respect to.
#' @param ... for `diff()` of a LazyTensor: the variable `v`, then the direction `u` (a
#'   LazyTensor, or a number or vector: a parameter); for another `x`, R's [base::diff()]
#'   arguments.
#' @return A LazyTensor.
#' @examples
#' x <- matrix(rnorm(30), 10, 3); y <- matrix(rnorm(60), 20, 3)
#' x_i <- Vi(x); y_j <- Vj(y)
#' K_ij <- exp(-sqdist(x_i, y_j))
#' G_ij <- grad(K_ij, 1, var = x_i)        # d K / d x_i, dimension 3
#' sum(G_ij, "j")[1, ]
#' sum(diff(K_ij, x_i, c(1, 0, 0)), "j")[1, ]   # the first column of the same
#' sum(laplacian(K_ij, x_i), "j")[1, ]
#' sum(divergence(x_i - y_j, x_i), "j")[1, ]    # 3 per pair: 60
#' diff(c(1, 4, 9))                             # base R as usual
#' @name lazytensor_derivatives
NULL

#' @rdname lazytensor_derivatives
#' @export
diff.LazyTensor <- function(x, ...) {
  a <- list(...)
  if (length(a) != 2) rkeops_abort("input", "diff() of a LazyTensor takes the variable `v` and the direction `u`: diff(f, v, u)")
  .lt_derivative("Diff", x, a[[1]], a[[2]])
}

#' @rdname lazytensor_derivatives
#' @export
laplacian <- function(f, v) .lt_derivative("Laplacian", f, v)

#' @rdname lazytensor_derivatives
#' @export
divergence <- function(f, v) .lt_derivative("Divergence", f, v)

# ---- sinc, norm, power -------------------------------------------------------------------------

#' More functions of LazyTensors
#'
#' As PyKeOps's LazyTensor methods:
#' * `sinc(x)`: the normalised sinc, `sin(pi x) / (pi x)`, 1 at 0 (`SinXDivX(pi * x)`);
#' * `norm(x)`: the Euclidean norm over the inner dimension, `norm2(x)` (a LazyTensor of
#'   dimension 1; for a ComplexLazyTensor the norm of the complex vector). On anything else,
#'   `norm()` is [base::norm()];
#' * `power(x, y)`: `x^y` (see [Ops.LazyTensor]), also on plain numbers; with one argument
#'   (or none) it is [stats::power()], the link function of `glm()` families, which rkeops
#'   masks.
#'
#' `sinc()` of a number or numeric vector or matrix is computed in R.
#' @param x a LazyTensor (or for `sinc()`, `power()` and `norm()`, an R value).
#' @param y the exponent: a number or a LazyTensor (missing for [stats::power()]: `x` is
#'   then its `lambda`).
#' @param type,... for `norm()` of a matrix, passed to [base::norm()]; ignored for a
#'   LazyTensor (only the Euclidean norm over the inner dimension exists).
#' @return A LazyTensor (the R result for R values).
#' @examples
#' x_i <- Vi(matrix(rnorm(30), 10, 3))
#' y_j <- Vj(matrix(rnorm(60), 20, 3))
#' sum(sinc(x_i - y_j), "j")
#' sum(norm(x_i - y_j), "j")
#' sum(power(x_i - y_j, 3), "j")
#' sinc(c(0, 0.5, 1))
#' norm(matrix(1:4, 2))     # base::norm
#' power(2, 10)
#' power(0.5)$name          # stats::power: a link function
#' @name lazytensor_more
NULL

#' @rdname lazytensor_more
#' @export
sinc <- function(x) UseMethod("sinc")

#' @rdname lazytensor_more
#' @export
sinc.LazyTensor <- function(x) {
  x <- .lt_real(x, "sinc()")
  .lt_unary("SinXDivX", .lt_call("Mult", list(LazyTensor(pi), x), what = "sinc()"), what = "sinc()")
}

#' @rdname lazytensor_more
#' @export
sinc.default <- function(x) {
  .lt_plain_check("sinc", x)
  y <- pi * x
  r <- sin(y) / y
  r[!is.na(y) & y == 0] <- 1
  r
}

#' @rdname lazytensor_more
#' @export
norm <- function(x, type = "O", ...) UseMethod("norm")

#' @rdname lazytensor_more
#' @export
norm.LazyTensor <- function(x, type = "O", ...) norm2(x)

#' @rdname lazytensor_more
#' @export
norm.default <- function(x, type = "O", ...) base::norm(x, type, ...)

#' @rdname lazytensor_more
#' @export
power <- function(x, y) {
  # stats::power(lambda), the link of glm families, when called with one argument (or none)
  if (missing(y)) return(if (missing(x)) stats::power() else stats::power(x))
  if (is.LazyTensor(x) || is.LazyTensor(y)) return(.lt_pow(x, y))
  .lt_plain_check("power", x)
  x^y
}

# ---- helpers on plain R values (item 3) --------------------------------------------------------

.lt_plain_check <- function(fun, x) {
  if (!(is.numeric(x) || is.logical(x)) || is.data.frame(x)) {
    rkeops_abort("input", sprintf("%s() applies to a LazyTensor or to numbers (a vector or a matrix), got %s",
                                  fun, .rk_describe(x)))
  }
  invisible(x)
}

# Element-wise functions computed in R on numbers, vectors and matrices (dimensions kept), as
# RKeOps's default methods do: the same values as the formula operations.
.lt_plain <- list(
  square = function(x) x^2,
  rsqrt = function(x) { r <- 1 / sqrt(x); r[!is.na(x) & x == 0] <- 0; r },   # Rsqrt(0) = 0, as the engine
  inv = function(x) 1 / x,
  relu = function(x) { r <- x; r[!is.na(x) & x < 0] <- 0; r + 0 },
  xlogx = function(x) { r <- x * log(x); r[!is.na(x) & x == 0] <- 0; r },
  sinxdivx = function(x) { r <- sin(x) / x; r[!is.na(x) & x == 0] <- 1; r }
)

.lt_plain_fun <- function(name) {
  f <- .lt_plain[[name]]
  function(x) {
    .lt_plain_check(name, x)
    f(x)
  }
}

# The default methods of the generics of .lt_generics that differ from the table's `default`
# column: the functions above for plain values; "lazy" (the LazyTensor method: numbers become
# constants or parameters, as RKeOps's builders do) for the vector operations.
.lt_default_override <- c(
  square = ".lt_plain_fun(\"square\")", rsqrt = ".lt_plain_fun(\"rsqrt\")", inv = ".lt_plain_fun(\"inv\")",
  relu = ".lt_plain_fun(\"relu\")", xlogx = ".lt_plain_fun(\"xlogx\")", sinxdivx = ".lt_plain_fun(\"sinxdivx\")",
  sqnorm2 = "lazy", norm2 = "lazy", normalize = "lazy", sqdist = "lazy", weightedsqnorm = "lazy",
  weightedsqdist = "lazy", clamp = "lazy", clampint = "lazy"
)

# ---- ComplexLazyTensor meanings (item 4) --------------------------------------------------------

# sum_k |z_k|^2, a real LazyTensor of dimension 1.
.lt_cx_sqnorm2 <- function(z) .lt_unary("Sum", .lt_cx_unary("ComplexSquareAbs", z, is_complex = FALSE))

# The real weight of a complex weighted norm: z^H S z = a' S a + b' S b for z = a + ib and a
# real symmetric S (of dimension 1, d or d^2).
.lt_cx_wsqnorm <- function(z, s) {
  s <- .lt_real(s, "the weight of weightedsqnorm() of a ComplexLazyTensor")
  what <- "weightedsqnorm() of a ComplexLazyTensor"
  re <- .lt_cx_unary("ComplexReal", z, is_complex = FALSE)
  im <- .lt_cx_unary("ComplexImag", z, is_complex = FALSE)
  .lt_call("Add", list(.lt_call("WeightedSqNorm", list(s, re), what = what),
                       .lt_call("WeightedSqNorm", list(s, im), what = what)))
}

.lt_cx_both <- function(z, w, fun) {
  if (!(is.ComplexLazyTensor(z) && is.ComplexLazyTensor(w))) {
    rkeops_abort("input", sprintf("%s needs two ComplexLazyTensors (or two real LazyTensors)", fun))
  }
  .lt_complex_arith("-", z, w)
}

# What a row of .lt_generics means when an operand is a ComplexLazyTensor: a function of the
# R arguments (a list), or "cw": the real operation applied to the interleaved (re, im) values,
# component by component, the result read as complex again (as RKeOps does).
.lt_complex_meaning <- list(
  sqnorm2 = function(a) .lt_cx_sqnorm2(a$x),
  norm2 = function(a) .lt_unary("Sqrt", .lt_cx_sqnorm2(a$x)),
  normalize = function(a) .lt_call("ComplexRealScal", list(.lt_unary("Rsqrt", .lt_cx_sqnorm2(a$x)), a$x), is_complex = TRUE),
  sqdist = function(a) .lt_cx_sqnorm2(.lt_cx_both(.lt_operand(a$x), .lt_operand(a$y), "sqdist()")),
  weightedsqnorm = function(a) .lt_cx_wsqnorm(a$x, .lt_operand(a$s)),
  weightedsqdist = function(a) .lt_cx_wsqnorm(.lt_cx_both(.lt_operand(a$x), .lt_operand(a$y), "weightedsqdist()"), .lt_operand(a$s)),
  square = "cw", rsqrt = "cw", inv = "cw", relu = "cw", step = "cw", xlogx = "cw", sinxdivx = "cw",
  mod = "cw", clamp = "cw", clampint = "cw"
)

# Applies a row of .lt_generics to a ComplexLazyTensor: its complex meaning, or the real
# operation component-wise on (re, im) for "cw" rows (the other operands must be real scalars
# or have the real dimension).
.lt_apply_complex <- function(row, args, op, params, what) {
  m <- .lt_complex_meaning[[row$name]]
  if (is.null(m)) rkeops_abort("input", sprintf("%s() is not defined for a ComplexLazyTensor", row$name))
  if (is.function(m)) return(m(args))
  lts <- lapply(args[row$formulas], .lt_operand)
  if (any(vapply(lts[-1], is.ComplexLazyTensor, TRUE))) {
    rkeops_abort("input", sprintf("%s() of a ComplexLazyTensor applies to its real and imaginary parts; the other operands must be real", row$name))
  }
  .lt_call(op, lts, params, is_complex = TRUE, what = what)
}

# Math group functions that act on a ComplexLazyTensor component-wise on (re, im), as RKeOps.
.lt_cx_math <- c(sqrt = "Sqrt", log = "Log", cos = "Cos", sin = "Sin", acos = "Acos", asin = "Asin",
                 atan = "Atan", sign = "Sign", floor = "Floor")

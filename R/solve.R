# Linear algebra on symbolic matrices: the kernel linear system (alpha I + K) a = b by
# conjugate gradient (each step one kernel product, as KeOps's KernelSolve), and symmetric
# eigen-decompositions through RSpectra's matrix-free interface.

# The matrix-vector product p -> (alpha I + K) p of a square symbolic matrix, as a closure
# over one compiled kernel. With `var`, K_ij is the whole summand, linear in the j-variable
# `var`, whose data p replaces; without, the summand is K_ij * Vj(p).
.lt_operator <- function(K, alpha, var, ncols) {
  .lt_check_lazy(K, "the symbolic matrix")
  .lt_check_real(K, "solve()")
  n <- .lt_sizes(K)
  if (anyNA(n)) {
    rkeops_abort("input", "the symbolic matrix must have i- and j-indexed variables (a square N x N kernel matrix)")
  }
  if (n[["i"]] != n[["j"]]) {
    rkeops_abort("dimension", sprintf("the symbolic matrix must be square; it is %d x %d", n[["i"]], n[["j"]]))
  }
  if (!(is.numeric(alpha) && length(alpha) == 1 && is.finite(alpha))) {
    rkeops_abort("input", "`alpha` must be a single finite number")
  }
  if (is.null(var)) {
    if (!(K$dimres %in% c(1L, ncols))) {
      rkeops_abort("dimension", sprintf("the symbolic matrix must have dimension 1 (or %d), got %d", ncols, K$dimres))
    }
    # A fresh j-variable for the iterates (never merged with a variable of K).
    kv <- .lt_vars(K)
    m <- list(formulas = sprintf("Mult(%s,lzvsolvep)", K$formula), names = c(kv$name, "lzvsolvep"),
              args = c(K$args, sprintf("lzvsolvep=Vj(%d)", ncols)), data = c(K$data, list(NULL)))
    pos <- length(m$names)
  } else {
    .lt_check_lazy(var, "`var`")
    vv <- .lt_vars(var)
    if (nrow(vv) != 1 || var$formula != vv$name || vv$type != "Vj") {
      rkeops_abort("input", "`var` must be a j-indexed variable (built by Vj()) of the symbolic matrix")
    }
    if (vv$dim != ncols) {
      rkeops_abort("dimension", sprintf("`var` has dimension %d but `b` has %d column(s)", vv$dim, ncols))
    }
    if (K$dimres != ncols) {
      rkeops_abort("dimension", sprintf("the summand must have dimension %d (the columns of `b`), got %d",
                                        ncols, K$dimres))
    }
    m <- .lt_combine(list(K, var))
    pos <- match(m$formulas[2], m$names)
    if (length(m$names) > nrow(.lt_vars(K))) rkeops_abort("input", "`var` is not a variable of the symbolic matrix")
    if (sum(m$names == m$formulas[2]) != 1) rkeops_abort("internal", "variable lookup failed")
  }
  canon <- .lt_canonical(sprintf("Sum_Reduction(%s,1)", m$formulas[1]), m$names, m$args)
  op <- keops_kernel(canon$formula, canon$args)
  data <- m$data
  N <- n[["i"]]
  function(p) {
    if (!(is.double(p) && is.matrix(p) && nrow(p) == N)) p <- matrix(as.double(p), N)
    data[[pos]] <- p
    Kp <- op(data)
    if (alpha != 0) Kp <- Kp + alpha * p
    Kp
  }
}

#' Solve a kernel linear system
#'
#' `solve(K_ij, b, alpha)` solves `(alpha I + K) a = b` for a square symmetric positive
#' (semi-)definite symbolic matrix `K` (N x N, e.g. a kernel matrix on N points, with
#' `alpha > 0` for a ridge) by the conjugate gradient method: each iteration is one kernel
#' product `K p`, computed without storing `K` (KeOps's `KernelSolve`). Each column of `b` is
#' a separate system; they share the kernel products.
#'
#' By default `K_ij` has dimension 1 and the product is `sum(K_ij * Vj(p), "j")`. With `var`,
#' `K_ij` is the whole summand of the product, linear in the j-variable `var` (dimension the
#' number of columns of `b`), whose data the iterates replace, as in `KernelSolve`'s formulas.
#'
#' The iteration stops when the residual `|b - (alpha I + K) a|` of every column is at most
#' `tol` times `|b|` (Euclidean norms), or after `maxiter` iterations with a warning of class
#' `rkeops_convergence_warning`.
#' @param a the symbolic matrix `K_ij` (a LazyTensor).
#' @param b the right-hand side: an N x d matrix, a length-N vector, or a LazyTensor built on one.
#' @param alpha the ridge `alpha` (a number, default 0).
#' @param var `NULL`, or the `Vj()` variable of `a` to solve for (see Details).
#' @param tol the relative tolerance on the residual.
#' @param maxiter the maximum number of iterations.
#' @param x0 a starting point (N x d), or `NULL` for 0.
#' @param verbose whether to report the residual at each iteration.
#' @param ... ignored.
#' @return The N x d matrix `a`, with an attribute `"cg"`: a list of `iterations`, the final
#'   relative `residual` of each column and `converged`.
#' @seealso [kernel_matvec()], `eigs_sym()` from RSpectra on a LazyTensor.
#' @examples
#' x <- matrix(runif(600), 200, 3)
#' b <- matrix(rnorm(200), 200, 1)
#' x_i <- Vi(x); x_j <- Vj(x)
#' K_ij <- exp(-sqdist(x_i, x_j) / 0.1)
#' a <- solve(K_ij, b, alpha = 0.5)
#' # the same with the dense 200 x 200 matrix
#' K <- exp(-as.matrix(dist(x))^2 / 0.1)
#' max(abs(a - solve(K + 0.5 * diag(200), b)))
#' @export
solve.LazyTensor <- function(a, b, alpha = 0, var = NULL, tol = 1e-6, maxiter = 1000L, x0 = NULL,
                             verbose = FALSE, ...) {
  if (missing(b)) rkeops_abort("input", "solve() on a LazyTensor needs a right-hand side `b`")
  if (is.LazyTensor(b)) {
    bv <- .lt_vars(b)
    if (nrow(bv) != 1 || b$formula != bv$name || bv$type == "Pm" || is.ComplexLazyTensor(b)) {
      rkeops_abort("input", "`b` must be a matrix, a vector or a real Vi()/Vj() variable")
    }
    b <- b$data[[1]]
    if (inherits(b, "rkeops_device")) b <- as.matrix(b)
  }
  if (!is.numeric(b)) rkeops_abort("input", "`b` must be a numeric matrix or vector")
  b <- if (is.matrix(b)) b else matrix(b, ncol = 1)
  if (!is.double(b)) storage.mode(b) <- "double"
  if (!(is.numeric(tol) && length(tol) == 1 && tol > 0)) rkeops_abort("input", "`tol` must be a positive number")
  maxiter <- .lt_int(maxiter, "`maxiter`", 1)
  A <- .lt_operator(a, alpha, var, ncol(b))
  N <- .lt_sizes(a)[["i"]]
  if (nrow(b) != N) {
    rkeops_abort("dimension", sprintf("`b` must have %d row(s), one per point of the symbolic matrix (got %d)",
                                      N, nrow(b)))
  }
  bn <- sqrt(colSums(b^2))
  if (is.null(x0)) {
    x <- matrix(0, N, ncol(b))
    r <- b
  } else {
    x <- matrix(as.double(x0), N, ncol(b))
    r <- b - A(x)
  }
  rs <- colSums(r^2)
  active <- sqrt(rs) > tol * bn
  p <- r
  it <- 0L
  while (any(active) && it < maxiter) {
    it <- it + 1L
    Ap <- A(p)
    pAp <- colSums(p * Ap)
    if (any(active & !(pAp > 0))) {
      rkeops_abort("input", paste0("the conjugate gradient met a non-positive curvature p'(alpha I + K)p: ",
                                   "the system is not symmetric positive definite (increase `alpha`?)"))
    }
    step <- base::ifelse(active, rs / pAp, 0)
    x <- x + sweep(p, 2, step, `*`)
    r <- r - sweep(Ap, 2, step, `*`)
    rs_new <- colSums(r^2)
    active <- sqrt(rs_new) > tol * bn
    p <- r + sweep(p, 2, base::ifelse(active, rs_new / rs, 0), `*`)
    rs <- rs_new
    if (verbose) message(sprintf("cg iteration %d: relative residual %s", it,
                                 paste(format(sqrt(rs) / pmax(bn, .Machine$double.xmin), digits = 3), collapse = " ")))
  }
  rel <- sqrt(rs) / pmax(bn, .Machine$double.xmin)
  converged <- !any(active)
  if (!converged) {
    warning(structure(class = c("rkeops_convergence_warning", "warning", "condition"),
                      list(message = sprintf(paste0("solve(): the conjugate gradient did not converge in %d ",
                                                    "iterations (relative residual %s > tol = %g)"),
                                             maxiter, format(max(rel), digits = 3), tol),
                           call = NULL)))
  }
  attr(x, "cg") <- list(iterations = it, residual = rel, converged = converged)
  x
}

#' A symbolic matrix as a matrix-vector product function
#'
#' `kernel_matvec(K_ij, alpha)` returns the function `function(x, args = NULL)` computing
#' `(alpha I + K) x` for an N x N symbolic matrix `K_ij` of dimension 1 and a length-N vector
#' or N x d matrix `x` (one compiled kernel, one kernel product per call). It is what iterative
#' solvers and eigen-solvers that take a function need, such as RSpectra's `eigs_sym()`; rkeops
#' also registers an `eigs_sym()` method for LazyTensors, `eigs_sym(K_ij, k, ...)` (RSpectra is
#' only needed when it is used).
#' @param K a square symbolic matrix (a LazyTensor of dimension 1 with i and j variables).
#' @param alpha a ridge added to the diagonal.
#' @return A function of `x` (and an ignored `args`, as RSpectra passes it).
#' @examples
#' x <- matrix(runif(300), 100, 3)
#' K_ij <- exp(-sqdist(Vi(x), Vj(x)) / 0.5)
#' f <- kernel_matvec(K_ij)
#' v <- rnorm(100)
#' K <- exp(-as.matrix(dist(x))^2 / 0.5)
#' max(abs(f(v) - K %*% v))
#' if (requireNamespace("RSpectra", quietly = TRUE)) {
#'   top <- RSpectra::eigs_sym(f, k = 3, n = 100)   # or RSpectra::eigs_sym(K_ij, k = 3)
#'   max(abs(top$values - eigen(K, symmetric = TRUE)$values[1:3]))
#' }
#' @export
kernel_matvec <- function(K, alpha = 0) {
  A <- NULL
  force(K); force(alpha)
  function(x, args = NULL) {
    x <- if (is.matrix(x)) x else matrix(x, ncol = 1)
    if (is.null(A) || ncol(x) != attr(A, "ncols")) {
      A <<- structure(.lt_operator(K, alpha, NULL, ncol(x)), ncols = ncol(x))
    }
    out <- A(x)
    if (ncol(out) == 1) drop(out) else out
  }
}

#' @rdname kernel_matvec
#' @param A a square symbolic matrix (LazyTensor).
#' @param k,which,sigma,opts,lower see [RSpectra::eigs_sym()]; `sigma` (shift-and-invert) is
#'   not available for a matrix given as a function.
#' @param ... passed to `RSpectra::eigs_sym()`.
#' @usage \method{eigs_sym}{LazyTensor}(A, k, which = "LM", sigma = NULL, opts = list(),
#'   lower = TRUE, ..., alpha = 0)
#' @exportS3Method RSpectra::eigs_sym
eigs_sym.LazyTensor <- function(A, k, which = "LM", sigma = NULL, opts = list(), lower = TRUE, ...,
                                alpha = 0) {
  if (!requireNamespace("RSpectra", quietly = TRUE)) {
    rkeops_abort("input", "eigs_sym() on a LazyTensor needs the RSpectra package")
  }
  if (!is.null(sigma)) rkeops_abort("input", "`sigma` (shift-and-invert) is not available for a LazyTensor")
  if (A$dimres != 1L) rkeops_abort("dimension", "eigs_sym() needs a symbolic matrix of dimension 1")
  n <- .lt_sizes(A)[["i"]]
  RSpectra::eigs_sym(kernel_matvec(A, alpha), k, which = which, opts = opts, lower = lower, ...,
                     n = n, args = NULL)
}

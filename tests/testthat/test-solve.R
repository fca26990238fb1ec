# solve() on symbolic matrices (conjugate gradient, one kernel product per step) against R's
# dense solve(), and the matrix-free operator handed to RSpectra.

with_float64 <- function(code) {
  old <- get_rkeops_options("precision")
  rkeops_use_float64()
  on.exit(set_rkeops_options(list(precision = old)))
  code
}

gauss_dense <- function(x, y, s2) {
  exp(-pmax(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y), 0) / s2)
}

test_that("solve() matches dense solve() on a ridge-regularised Gaussian kernel system (N = 2000)", {
  with_float64({
    set.seed(501)
    N <- 2000
    x <- matrix(runif(N * 3), N)
    b <- matrix(rnorm(N * 2), N)
    alpha <- 1
    K_ij <- exp(-sqdist(Vi(x), Vj(x)) / 0.05)
    a <- solve(K_ij, b, alpha = alpha, tol = 1e-10)
    ref <- solve(gauss_dense(x, x, 0.05) + alpha * diag(N), b)
    expect_lte(max(abs(a - ref)) / max(abs(ref)), 1e-6)
    expect_lte(max(sqrt(colSums((a - ref)^2)) / sqrt(colSums(ref^2))), 1e-6)
    cg <- attr(a, "cg")
    expect_true(cg$converged)
    expect_true(all(cg$residual <= 1e-10))
    expect_equal(dim(a), c(N, 2))
  })
})

test_that("solve() with `var` solves a KernelSolve-style formula linear in a j-variable", {
  with_float64({
    set.seed(502)
    N <- 300
    x <- matrix(runif(N * 2), N)
    b <- matrix(rnorm(N * 2), N)
    x_i <- Vi(x); x_j <- Vj(x)
    a_j <- Vj(matrix(0, N, 2))                     # the unknown, its data replaced by the iterates
    g <- Pm(1 / 0.1)
    summand <- exp(-g * sqdist(x_i, x_j)) * a_j
    a <- solve(summand, b, alpha = 0.5, var = a_j, tol = 1e-12)
    ref <- solve(gauss_dense(x, x, 0.1) + 0.5 * diag(N), b)
    expect_lte(max(abs(a - ref)) / max(abs(ref)), 1e-8)
    # the default form; one column given as a vector; the right-hand side as a Vi() variable
    K_ij <- exp(-sqdist(x_i, x_j) / 0.1)
    expect_lte(max(abs(solve(K_ij, b, alpha = 0.5, tol = 1e-12) - ref)) / max(abs(ref)), 1e-8)
    a1 <- solve(K_ij, b[, 1], alpha = 0.5, tol = 1e-12)
    expect_equal(dim(a1), c(N, 1))
    expect_lte(max(abs(a1 - ref[, 1])) / max(abs(ref[, 1])), 1e-8)
    a2 <- solve(K_ij, Vi(b), alpha = 0.5, tol = 1e-12)
    expect_lte(max(abs(a2 - ref)) / max(abs(ref)), 1e-8)
    # a starting point close to the solution converges at once
    a0 <- solve(exp(-g * sqdist(x_i, x_j)), b, alpha = 0.5, x0 = ref, tol = 1e-8)
    expect_lte(attr(a0, "cg")$iterations, 2)
  })
})

test_that("solve() warns when it does not converge and rejects bad input", {
  with_float64({
    set.seed(503)
    x <- matrix(runif(200 * 2), 200)
    b <- rnorm(200)
    K_ij <- exp(-sqdist(Vi(x), Vj(x)) / 0.5)
    expect_warning(res <- solve(K_ij, b, alpha = 1e-3, maxiter = 2, tol = 1e-14),
                   class = "rkeops_convergence_warning")
    expect_false(attr(res, "cg")$converged)
    expect_equal(attr(res, "cg")$iterations, 2)
    expect_error(solve(K_ij), "right-hand side", class = "rkeops_input_error")
    expect_error(solve(K_ij, b[-1]), "200 row", class = "rkeops_dimension_error")
    expect_error(solve(exp(-sqdist(Vi(x), Vj(x[-1, ]))), b), "square", class = "rkeops_dimension_error")
    expect_error(solve(Vi(x), b), "i- and j-indexed", class = "rkeops_input_error")
    expect_error(solve(K_ij, "b"), class = "rkeops_input_error")
    expect_error(solve(K_ij, b, alpha = NA), "alpha", class = "rkeops_input_error")
    expect_error(solve(K_ij, b, tol = -1), "tol", class = "rkeops_input_error")
    expect_error(solve(sqdist(Vi(x), Vj(x)) * Vj(x), b), "dimension", class = "rkeops_dimension_error")
    expect_error(solve(K_ij, b, var = Vi(x)), "j-indexed", class = "rkeops_input_error")
    # an indefinite matrix: negative curvature
    expect_error(solve(-K_ij, b), "positive definite", class = "rkeops_input_error")
  })
})

test_that("kernel_matvec() and eigs_sym() on a LazyTensor match dense R", {
  with_float64({
    set.seed(504)
    N <- 150
    x <- matrix(runif(N * 3), N)
    K_ij <- exp(-sqdist(Vi(x), Vj(x)) / 0.3)
    K <- gauss_dense(x, x, 0.3)
    f <- kernel_matvec(K_ij, alpha = 0.2)
    v <- rnorm(N)
    expect_equal(f(v), as.vector((K + 0.2 * diag(N)) %*% v), tolerance = 1e-12)
    V <- matrix(rnorm(N * 3), N)
    expect_equal(f(V), (K + 0.2 * diag(N)) %*% V, tolerance = 1e-12)
    skip_if_not_installed("RSpectra")
    ev <- eigen(K, symmetric = TRUE)
    top <- RSpectra::eigs_sym(K_ij, k = 4)
    expect_equal(top$values, ev$values[1:4], tolerance = 1e-8)
    expect_equal(abs(colSums(top$vectors * ev$vectors[, 1:4])), rep(1, 4), tolerance = 1e-6)
    top2 <- RSpectra::eigs_sym(kernel_matvec(K_ij), k = 2, n = N)
    expect_equal(top2$values, ev$values[1:2], tolerance = 1e-8)
    expect_error(RSpectra::eigs_sym(K_ij, k = 2, sigma = 1), class = "rkeops_input_error")
  })
})

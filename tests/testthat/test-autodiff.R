# Differentiation inside formulas: Grad, GradFromPos, Diff, Laplacian, Divergence, GradMatrix,
# nested (second order), against dense R and finite differences in float64. The gradient of
# every operation of the table against finite differences (first and second order) is in
# tests/engine/test_autodiff.cpp, which compiles all of them in a handful of kernels.

ad_sqdist <- function(x, y) pmax(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y), 0)

# Central differences of sum(f(x) * w) in every entry of x.
ad_fd <- function(f, x, w, h = 1e-6) {
  out <- x * 0
  for (idx in seq_along(x)) {
    xp <- x; xm <- x
    xp[idx] <- xp[idx] + h; xm[idx] <- xm[idx] - h
    out[idx] <- (sum(f(xp) * w) - sum(f(xm) * w)) / (2 * h)
  }
  out
}
ad_rel <- function(a, b) max(abs(a - b)) / max(1, max(abs(b)))

test_that("Grad in a Sum reduction is the gradient of the reduction, in both variables", {
  set.seed(401)
  N <- 5; M <- 6
  x <- matrix(rnorm(2 * N), N); y <- matrix(rnorm(2 * M), M); e <- matrix(rnorm(3 * N), N)
  F <- "Concat(Log(1 + SqDist(x, y)) * Sin((x | y)), Atan2(x, y + 3) * Exp(-Square(x - y)))"
  args <- c("x=Vi(2)", "y=Vj(2)", "e=Vi(3)")
  fwd <- keops_kernel(sprintf("Sum_Reduction(%s, 1)", F), args[1:2])
  gx <- keops_kernel(sprintf("Sum_Reduction(Grad(%s, x, e), 1)", F), args)(list(x, y, e))
  gy <- keops_kernel(sprintf("Sum_Reduction(GradFromPos(%s, 1, e), 0)", F), args)(list(x, y, e))
  expect_equal(dim(gx), c(N, 2))
  expect_equal(dim(gy), c(M, 2))
  expect_lte(ad_rel(gx, ad_fd(function(x) fwd(list(x, y)), x, e)), 1e-6)
  expect_lte(ad_rel(gy, ad_fd(function(y) fwd(list(x, y)), y, e)), 1e-6)
  # Var(...) and aliases name the same variable
  g2 <- keops_kernel(sprintf("Sum_Reduction(Grad(%s, Var(0,2,0), e), 1)", F), args)(list(x, y, e))
  expect_equal(g2, gx, tolerance = 1e-14)
})

test_that("second order: the gradient of a gradient matches finite differences", {
  set.seed(402)
  N <- 4; M <- 5
  x <- matrix(rnorm(2 * N), N); y <- matrix(rnorm(2 * M), M); e <- rnorm(N); u <- matrix(rnorm(2 * N), N)
  args <- c("x=Vi(2)", "y=Vj(2)", "e=Vi(1)", "u=Vi(2)")
  F <- "Exp(-SqDist(x, y)) * Cos(Elem(x, 0) * Elem(y, 1))"
  g1 <- keops_kernel(sprintf("Sum_Reduction(Grad(%s, x, e), 1)", F), args[1:3])
  g2 <- keops_kernel(sprintf("Sum_Reduction(Grad(Grad(%s, x, e), x, u), 1)", F), args)(list(x, y, e, u))
  expect_lte(ad_rel(g2, ad_fd(function(x) g1(list(x, y, e)), x, u)), 1e-6)
  # mixed: d/dy of the x-gradient, reduced over i
  g2y <- keops_kernel(sprintf("Sum_Reduction(Grad(Grad(%s, x, e), y, u), 0)", F), args)(list(x, y, e, u))
  g1_0 <- keops_kernel(sprintf("Sum_Reduction((Grad(%s, x, e) | u), 0)", F), args)
  expect_lte(ad_rel(g2y, ad_fd(function(y) g1_0(list(x, y, e, u)), y, 1)), 1e-6)
})

test_that("Laplacian, Divergence, Diff and GradMatrix match dense R", {
  set.seed(403)
  N <- 6; M <- 8
  x <- matrix(rnorm(3 * N), N); y <- matrix(rnorm(3 * M), M); d <- matrix(rnorm(3 * N), N)
  op <- keops_kernel(paste("Sum_Reduction(Concat(Concat(Laplacian(Exp(-SqDist(x, y)), x),",
                           "Divergence(x * Sum(y), x)), Concat(Diff(Exp(-SqDist(x, y)), x, d),",
                           "GradMatrix(x * y, x))), 1)"),
                     c("x=Vi(3)", "y=Vj(3)", "d=Vi(3)"))
  res <- op(list(x, y, d))
  expect_equal(dim(res), c(N, 12))
  D2 <- ad_sqdist(x, y)
  K <- exp(-D2)
  # F = exp(-|x - y|^2): Laplacian = (4 |x - y|^2 - 2 D) F, D = 3
  expect_equal(res[, 1], rowSums((4 * D2 - 6) * K), tolerance = 1e-12)
  expect_equal(res[, 2], rep(3 * sum(y), N), tolerance = 1e-12)
  # Diff(F, x, d) = -2 F <x - y, d>
  expect_equal(res[, 3], -2 * (rowSums(K) * rowSums(x * d) - rowSums((K %*% y) * d)), tolerance = 1e-12)
  # GradMatrix(x * y, x) = diag(y), row-major
  expect_equal(res[, 4:12], matrix(rep(as.vector(diag(colSums(y))), each = N), N), tolerance = 1e-12)
})

test_that("a gradient input of dimension 1 multiplies every component", {
  x <- matrix(c(1, 2, 3, 4), 2); y <- matrix(c(0.5, 1, 2, 1), 2)
  op <- keops_kernel("Sum_Reduction(Grad(x * y, x, e), 1)", c("x=Vi(2)", "y=Vj(2)", "e=Vi(1)"))
  expect_equal(op(list(x, y, c(1, 10))), rbind(colSums(y), 10 * colSums(y)))
})

test_that("differentiation errors are formula or dimension errors with a caret", {
  args <- c("x=Vi(2)", "y=Vj(2)", "e=Vi(1)")
  expect_error(keops_kernel("Sum_Reduction(Grad(Exp(x), 2 * x, e), 1)", args),
               "with respect to a variable.*\\^", class = "rkeops_formula_error")
  expect_error(keops_kernel("Sum_Reduction(Grad(SqDist(x, y), x, y), 1)", args),
               "gradient input", class = "rkeops_dimension_error")
  expect_error(keops_kernel("Sum_Reduction(Diff(SqDist(x, y), x, e), 1)", args),
               "direction of Diff", class = "rkeops_dimension_error")
  expect_error(keops_kernel("Sum_Reduction(Laplacian(x - y, x), 1)", args),
               "Laplacian", class = "rkeops_dimension_error")
  expect_error(keops_kernel("Sum_Reduction(GradFromPos(Exp(x), 5, e), 1)", args),
               "position 5", class = "rkeops_formula_error")
})

test_that("TensorDot (with a permutation), Kron and BSpline differentiate correctly", {
  set.seed(404)
  N <- 4; M <- 5
  a <- matrix(rnorm(6 * N), N); b <- matrix(rnorm(12 * M), M); e <- matrix(rnorm(8 * N), N)
  td <- "TensorDot(a, b, Ind(2,3), Ind(3,4), Ind(1), Ind(0), Ind(1,0))"
  args <- c("a=Vi(6)", "b=Vj(12)", "e=Vi(8)")
  fwd <- keops_kernel(sprintf("Sum_Reduction(%s, 1)", td), args[1:2])
  ga <- keops_kernel(sprintf("Sum_Reduction(Grad(%s, a, e), 1)", td), args)(list(a, b, e))
  gb <- keops_kernel(sprintf("Sum_Reduction(Grad(%s, b, e), 0)", td), args)(list(a, b, e))
  expect_lte(ad_rel(ga, ad_fd(function(a) fwd(list(a, b)), a, e)), 1e-6)
  expect_lte(ad_rel(gb, ad_fd(function(b) fwd(list(a, b)), b, e)), 1e-6)
  # Kron: the gradient in a of <kron(A, B), E> is sum_j (E_j reshaped) contracted with B_j
  k4 <- matrix(rnorm(4 * N), N); k6 <- matrix(rnorm(6 * M), M); ek <- matrix(rnorm(24 * N), N)
  kargs <- c("a=Vi(4)", "b=Vj(6)", "e=Vi(24)")
  kf <- keops_kernel("Sum_Reduction(Kron(a, b, Ind(2,2), Ind(2,3)), 1)", kargs[1:2])
  kg <- keops_kernel("Sum_Reduction(Grad(Kron(a, b, Ind(2,2), Ind(2,3)), a, e), 1)", kargs)(list(k4, k6, ek))
  expect_lte(ad_rel(kg, ad_fd(function(a) kf(list(a, k6)), k4, ek)), 1e-6)
  # BSpline: the derivative in x matches splines::splineDesign(derivs = 1); the knots have none
  kn <- sort(runif(9)); x <- runif(N, kn[3], kn[7]); eb <- matrix(rnorm(5 * N), N)
  bargs <- c("t=Pm(9)", "x=Vi(1)", "y=Vj(1)", "e=Vi(5)")
  db <- keops_kernel("Sum_Reduction(Grad(BSpline(t, x, 3), x, e) * y, 1)", bargs)(list(kn, x, 1, eb))
  ref <- rowSums(splines::splineDesign(kn, x, ord = 4, derivs = rep(1, N), outer.ok = TRUE) * eb)
  expect_equal(as.vector(db), ref, tolerance = 1e-10)
  expect_error(keops_kernel("Sum_Reduction(Grad(BSpline(t, x, 3), t, e), 1)", bargs),
               "not to its knots", class = "rkeops_formula_error")
})

test_that("tuple parameters are parsed against the grammar, with clear errors", {
  args <- c("a=Vi(6)", "b=Vj(12)")
  bad <- c("Sum_Reduction(TensorDot(a, b, Ind(2,3), Ind(3,4), 1, Ind(0)), 1)",
           "Sum_Reduction(TensorDot(a, b, Ind(2,3), Ind(3,4), Ind(1), Ind(0), Ind(0,0)), 1)",
           "Sum_Reduction(TensorDot(a, b, Ind(2,2), Ind(3,4), Ind(1), Ind(0)), 1)",
           "Sum_Reduction(Kron(a, b, Ind(2,3), Ind(12)), 1)",
           "Sum_Reduction(TensorDot(a, b, Ind(2,3), Ind(3,4), Ind(1), Ind(0);), 1)")
  for (f in bad) expect_error(keops_kernel(f, args), class = "rkeops_error", info = f)
  expect_error(keops_kernel(bad[2], args), "permutation", class = "rkeops_dimension_error")
  expect_error(keops_kernel(bad[1], args), "Ind\\(\\.\\.\\.\\)", class = "rkeops_formula_error")
  op <- keops_kernel("Sum_Reduction(Kron(a, b, Ind(2,3), Ind(3,4)), 1)", args)
  expect_match(op()$formula, "Kron", fixed = TRUE)
})

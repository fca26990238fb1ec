# Gradients: every differentiable operation (through Grad in a Sum reduction, with respect to
# the i and the j variable) against central finite differences of the forward kernel, float64.

fd_check_group <- function(cases, N, M, h = 1e-6) {
  c1 <- cases[[1]]
  # integer data (chosen to create ties for comparisons) would sit on the jumps of the
  # piecewise-constant operations: differentiate at continuous data instead
  draw <- domains[[if (c1$domain == "int") "any" else c1$domain]]
  x <- matrix(draw(N * c1$dx), N)
  y <- matrix(draw(M * c1$dy), M)
  F <- Reduce(function(a, b) sprintf("Concat(%s, %s)", a, b), vapply(cases, `[[`, "", "formula"))
  dF <- sum(vapply(cases, function(cs) ncol(cs$ref(x[1, , drop = FALSE], y[1, , drop = FALSE])), 1))
  e <- matrix(rnorm(N * dF), N)
  args <- c(sprintf("x=Vi(%d)", c1$dx), sprintf("y=Vj(%d)", c1$dy), sprintf("e=Vi(%d)", dF))
  fwd <- keops_kernel(sprintf("Sum_Reduction((%s | e), 1)", F), args)
  gx <- keops_kernel(sprintf("Sum_Reduction(Grad(%s, x, e), 1)", F), args)(list(x, y, e))
  gy <- keops_kernel(sprintf("Sum_Reduction(Grad(%s, y, e), 0)", F), args)(list(x, y, e))
  value <- function(x, y) sum(fwd(list(x, y, e)))
  fd <- function(m, which) {
    out <- m * 0
    for (idx in seq_along(m)) {
      mp <- m; mm <- m
      mp[idx] <- mp[idx] + h; mm[idx] <- mm[idx] - h
      out[idx] <- if (which == "x") (value(mp, y) - value(mm, y)) / (2 * h) else (value(x, mp) - value(x, mm)) / (2 * h)
    }
    out
  }
  scale <- function(a, b) max(abs(a - b)) / max(1, max(abs(b)))
  c(x = scale(gx, fd(x, "x")), y = scale(gy, fd(y, "y")))
}

test_that("the gradient of every operation matches finite differences (both variables)", {
  set.seed(301)
  groups <- split(op_cases, vapply(op_cases, function(cs) paste(cs$dx, cs$dy, cs$domain), ""))
  for (g in groups) {
    # piecewise-constant operations are checked too: their gradient is 0, as are the differences
    err <- fd_check_group(g, N = 3, M = 4)
    names_g <- paste(vapply(g, `[[`, "", "name"), collapse = ", ")
    expect_lte(err[["x"]], 1e-6, label = sprintf("d/dx of {%s}", names_g))
    expect_lte(err[["y"]], 1e-6, label = sprintf("d/dy of {%s}", names_g))
  }
})

test_that("Gaussian kernel sum, LogSumExp and SoftMax gradients match dense R in both axes", {
  set.seed(302)
  N <- 23; M <- 31
  x <- matrix(rnorm(2 * N), N); y <- matrix(rnorm(2 * M), M); b <- rnorm(M)
  K <- unname(exp(-as.matrix(dist(rbind(x, y)))[1:N, N + 1:M]^2))
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x=Vi(2)", "y=Vj(2)", "b=Vj(1)"))
  e <- rnorm(N)
  W <- K * outer(e, b)                                    # W_ij = e_i K_ij b_j
  dx <- -2 * (rowSums(W) * x - W %*% y)
  dy <- -2 * (colSums(W) * y - crossprod(W, x))
  expect_equal(keops_grad(op, "x")(list(x, y, b, e)), dx, tolerance = 1e-12)
  expect_equal(keops_grad(op, 1)(list(x, y, b, e)), dy, tolerance = 1e-12)   # by position
  expect_equal(keops_grad(op, "b")(list(x, y, b, e)), crossprod(K, e), tolerance = 1e-12)
  # LogSumExp over j of -|x_i - y_j|^2: d/dx_i = sum_j P_ij (-2)(x_i - y_j), P = softmax
  lse <- keops_kernel("LogSumExp_Reduction(-SqDist(x, y), 1)", c("x=Vi(2)", "y=Vj(2)"))
  P <- K / rowSums(K)
  Wl <- P * e
  expect_equal(keops_grad(lse, "x")(list(x, y, e)), -2 * (rowSums(Wl) * x - Wl %*% y), tolerance = 1e-12)
  expect_equal(keops_grad(lse, "y")(list(x, y, e)), -2 * (colSums(Wl) * y - crossprod(Wl, x)), tolerance = 1e-12)
  # the same reduced over i
  lse0 <- keops_kernel("LogSumExp_Reduction(-SqDist(x, y), 0)", c("x=Vi(2)", "y=Vj(2)"))
  f <- rnorm(M)
  P0 <- t(t(K) / colSums(K)); W0 <- t(t(P0) * f)
  expect_equal(keops_grad(lse0, "y")(list(x, y, f)), -2 * (colSums(W0) * y - crossprod(W0, x)), tolerance = 1e-12)
  # a parameter: one row
  g <- keops_kernel("Sum_Reduction(Exp(-s * SqDist(x, y)), 1)", c("x=Vi(2)", "y=Vj(2)", "s=Pm(1)"))
  D2 <- as.matrix(dist(rbind(x, y)))[1:N, N + 1:M]^2
  expect_equal(as.vector(keops_grad(g, "s")(list(x, y, 1, e))), sum(-D2 * exp(-D2) * e), tolerance = 1e-12)
})

test_that("SumSoftMaxWeight gradients via Grad in formulas match dense R", {
  set.seed(303)
  N <- 7; M <- 9
  x <- matrix(rnorm(N), N); y <- matrix(rnorm(M), M); v <- matrix(rnorm(M), M); e <- rnorm(N)
  # out_i = sum_j softmax_j(x_i y_j) v_j; d out_i / d x_i = sum_j P_ij y_j (v_j - out_i)
  P <- exp(outer(x[, 1], y[, 1])); P <- P / rowSums(P)
  out <- P %*% v
  dense <- e * rowSums(P * outer(rep(1, N), y[, 1]) * (outer(rep(1, N), v[, 1]) - as.vector(out)))
  # the same from the formula language: Grad of x*y inside a weighted sum (two kernels)
  smw <- keops_kernel("SumSoftMaxWeight_Reduction(x * y, v, 1)", c("x=Vi(1)", "y=Vj(1)", "v=Vj(1)"))
  o <- smw(list(x, y, v))
  lse <- keops_kernel("LogSumExp_Reduction(x * y, 1)", c("x=Vi(1)", "y=Vj(1)"))(list(x, y))
  g <- keops_kernel("Sum_Reduction(Exp(x * y - l) * (v - o) * Grad(x * y, x, e), 1)",
                    c("x=Vi(1)", "y=Vj(1)", "v=Vj(1)", "o=Vi(1)", "l=Vi(1)", "e=Vi(1)"))
  expect_equal(as.vector(g(list(x, y, v, o, lse, e))), dense, tolerance = 1e-12)
})

test_that("second order: the gradient of a gradient matches finite differences", {
  set.seed(304)
  N <- 4; M <- 5
  x <- matrix(rnorm(2 * N), N); y <- matrix(rnorm(2 * M), M); e <- rnorm(N); u <- matrix(rnorm(2 * N), N)
  args <- c("x=Vi(2)", "y=Vj(2)", "e=Vi(1)", "u=Vi(2)")
  g1 <- keops_kernel("Sum_Reduction(Grad(Exp(-SqDist(x, y)), x, e), 1)", args[1:3])
  g2 <- keops_kernel("Sum_Reduction(Grad(Grad(Exp(-SqDist(x, y)), x, e), x, u), 1)", args)(list(x, y, e, u))
  h <- 1e-6
  fd <- x * 0
  for (idx in seq_along(x)) {
    xp <- x; xm <- x; xp[idx] <- xp[idx] + h; xm[idx] <- xm[idx] - h
    fd[idx] <- (sum(g1(list(xp, y, e)) * u) - sum(g1(list(xm, y, e)) * u)) / (2 * h)
  }
  expect_lte(max(abs(g2 - fd)) / max(abs(fd)), 1e-6)
  # keops_grad of keops_grad
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x=Vi(2)", "y=Vj(2)"))
  gg <- keops_grad(keops_grad(op, "x"), "x")
  expect_equal(dim(gg(list(x, y, e, u))), c(N, 2))
  # Laplacian and Divergence in formulas: for F = exp(-|x - y|^2), Laplacian = (4|x-y|^2 - 2D) F
  lap <- keops_kernel("Sum_Reduction(Laplacian(Exp(-SqDist(x, y)), x), 1)", c("x=Vi(2)", "y=Vj(2)"))
  D2 <- as.matrix(dist(rbind(x, y)))[1:N, N + 1:M]^2
  expect_equal(as.vector(lap(list(x, y))), unname(rowSums((4 * D2 - 4) * exp(-D2))), tolerance = 1e-12)
  div <- keops_kernel("Sum_Reduction(Divergence(x - y, x) + Diff(SqNorm2(x - y), x, x), 1)", c("x=Vi(2)", "y=Vj(2)"))
  expect_equal(as.vector(div(list(x, y))), M * 2 + unname(rowSums(2 * (matrix(rowSums(x^2), N, M) - x %*% t(y)))), tolerance = 1e-12)
})

test_that("gradient errors are clear", {
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x=Vi(2)", "y=Vj(2)"))
  expect_error(keops_grad(op, "z"), "unknown variable 'z'", class = "rkeops_input_error")
  expect_error(keops_grad(op, 5), "0-based position", class = "rkeops_input_error")
  mn <- keops_kernel("Min_Reduction(SqDist(x, y), 1)", c("x=Vi(2)", "y=Vj(2)"))
  expect_error(keops_grad(mn, "x"), "not differentiable", class = "rkeops_formula_error")
  expect_error(keops_kernel("Sum_Reduction(Grad(Exp(x), 2 * x, e), 1)", c("x=Vi(1)", "e=Vi(1)")),
               "with respect to a variable", class = "rkeops_formula_error")
  expect_error(keops_kernel("Sum_Reduction(Grad(Exp(x), x, e), 1)", c("x=Vi(1)", "e=Vi(2)")),
               "gradient input", class = "rkeops_dimension_error")
})

test_that("GradMatrix is the row-major matrix of the gradients of each component", {
  x <- matrix(c(1, 2, 3, 4), 2); y <- matrix(c(0.5, 1), 1)
  op <- keops_kernel("Sum_Reduction(GradMatrix(TensorProd(x, y), x), 1)", c("x=Vi(2)", "y=Vj(2)"))
  # F = (x1 y1, x1 y2, x2 y1, x2 y2): dF_k/dx stacked
  expect_equal(op(list(x, y)), matrix(c(0.5, 0, 1, 0, 0, 0.5, 0, 1), 2, 8, byrow = TRUE))
})

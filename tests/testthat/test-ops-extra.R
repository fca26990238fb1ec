# The formula operations of issue 12 that the sweep (test-ops-sweep.R, rows in
# helper-reference.R) does not cover by itself: RatCst, tuples written [...] (TensorDot, Kron),
# infix comparisons (precedence, chaining, gradients), Zero_Reduction(dim, axis) and its
# gradient, DiffClampInt and SoftDTW_SqDist through LazyTensors, and the gradient of
# SoftDTW_SqDist in x, y and gamma against finite differences.
#
# Tolerances: float64 results within 1e-12 of dense R (relative to the largest entry, or the
# sum of |terms|), float32 within 1e-5; gradients against central differences (h = 1e-6) within
# 1e-6 relative; exact (0/1) values compared exactly.

xo_rel <- function(a, b) max(abs(a - b)) / max(1, max(abs(b)))
xo_precisions <- function(code) {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  for (precision in c("float64", "float32")) {
    set_rkeops_options(list(precision = precision))
    code(precision, if (precision == "float64") 1e-12 else 1e-5)
  }
}
# Central differences of sum(f(x) * w) in every entry of x.
xo_fd <- function(f, x, w, h = 1e-6) {
  out <- x * 0
  for (k in seq_along(x)) {
    xp <- x; xm <- x
    xp[k] <- xp[k] + h; xm[k] <- xm[k] - h
    out[k] <- (sum(f(xp) * w) - sum(f(xm) * w)) / (2 * h)
  }
  out
}

test_that("RatCst(p, q) is the constant p/q; q = 0 is a formula error", {
  set.seed(1201)
  N <- sample(3:9, 1); M <- sample(3:9, 1)
  x <- matrix(runif(2 * N), N); y <- matrix(runif(2 * M), M)
  xo_precisions(function(precision, tol) {
    op <- keops_kernel("Sum_Reduction(RatCst(1, 3) * x + RatCst(-6, 4) * y + RatCst(4, 2), 1)", c("x=Vi(2)", "y=Vj(2)"))
    ref <- M * x / 3 - 1.5 * matrix(colSums(y), N, 2, byrow = TRUE) + 2 * M
    expect_lte(xo_rel(op(list(x, y)), ref), tol)
  })
  expect_error(keops_kernel("Sum_Reduction(RatCst(1, 0) * x, 1)", "x=Vi(1)"), "divides by zero.*\\^",
               class = "rkeops_formula_error")
  expect_error(keops_kernel("Sum_Reduction(RatCst(1.5, 2) * x, 1)", "x=Vi(1)"), "integer",
               class = "rkeops_formula_error")
  expect_error(keops_kernel("Sum_Reduction(RatCst(1) * x, 1)", "x=Vi(1)"), "expected ','",
               class = "rkeops_formula_error")
})

test_that("tuples written [...] (as PyKeOps) mean Ind(...) in TensorDot and Kron; malformed lists are errors", {
  set.seed(1202)
  N <- sample(2:6, 1); M <- sample(2:6, 1)
  a <- matrix(rnorm(6 * N), N); b <- matrix(rnorm(12 * M), M)
  args <- c("a=Vi(6)", "b=Vj(12)")
  ind <- keops_kernel("Sum_Reduction(TensorDot(a, b, Ind(2,3), Ind(3,4), Ind(1), Ind(0), Ind(1,0)), 1)", args)
  lst <- keops_kernel("Sum_Reduction(TensorDot(a, b, [2, 3], [3,4], [1], [0], [1, 0]), 1)", args)
  expect_identical(lst(list(a, b)), ind(list(a, b)))
  # the matrix product, row by row, against R
  Bsum <- Reduce(`+`, lapply(seq_len(M), function(j) matrix(b[j, ], 3, byrow = TRUE)))
  ref <- t(vapply(seq_len(N), function(i) as.vector(matrix(a[i, ], 2, byrow = TRUE) %*% Bsum), numeric(8)))
  expect_lte(xo_rel(lst(list(a, b)), ref), 1e-12)
  k1 <- keops_kernel("Sum_Reduction(Kron(a, b, [2,3], [3,4]), 0)", args)(list(a, b))
  k2 <- keops_kernel("Sum_Reduction(Kron(a, b, Ind(2,3), Ind(3,4)), 0)", args)(list(a, b))
  expect_identical(k1, k2)
  expect_equal(dim(k1), c(M, 72L))
  for (bad in c("TensorDot(a, b, [2,3], [3,4], [1], [0)", "TensorDot(a, b, [2,3, [3,4], [1], [0])",
                "TensorDot(a, b, [2,3], [3,4], [x], [0])", "a[0] + b", "Kron(a, b, [2,3], Ind(3,4])")) {
    expect_error(keops_kernel(sprintf("Sum_Reduction(%s, 1)", bad), args), "column \\d+",
                 class = "rkeops_formula_error", label = bad)
  }
  expect_error(keops_kernel("Sum_Reduction(TensorDot(a, b, [2,3], [3,4], [2], [0]), 1)", args),
               class = "rkeops_dimension_error")
})

test_that("infix comparisons give 1/0 element-wise, bind below + and - (as in R), do not chain, and have zero gradient", {
  set.seed(1203)
  N <- sample(5:30, 1); M <- sample(5:30, 1)
  grid <- function(n) sample(seq(-2, 2, by = 0.5), n, replace = TRUE)
  x <- matrix(grid(3 * N), N); y <- matrix(grid(3 * M), M); p <- 0.5
  pi_ <- rep(seq_len(N), M); pj_ <- rep(seq_len(M), each = N)
  X <- x[pi_, ]; Y <- y[pj_, ]
  sumj <- function(Fm) rowsum(Fm, pi_, reorder = TRUE)
  F <- "(x + p > y) + 2 * (x - y <= -p) + 4 * (x == y) + 8 * (x != 2 * y) + 16 * (x >= y) + 32 * (y * 2 < x)"
  ref <- sumj((X + p > Y) + 2 * (X - Y <= -p) + 4 * (X == Y) + 8 * (X != 2 * Y) + 16 * (X >= Y) + 32 * (Y * 2 < X))
  xo_precisions(function(precision, tol) {
    op <- keops_kernel(sprintf("Sum_Reduction(%s, 1)", F), c("x=Vi(3)", "y=Vj(3)", "p=Pm(1)"))
    expect_equal(unname(op(list(x, y, p))), unname(ref) + 0, tolerance = 0)   # grid data: exact
  })
  # what the comparisons parse to (canonical form)
  d <- rkeops:::.rk_call("rk_parse", "Sum_Reduction(x + 1 > y | y, 1)", c("x=Vi(3)", "y=Vj(3)"))
  expect_match(d$canonical, "Scalprod(LessThan(Vj(1,3),Add(Vi(0,3),IntCst(1))),Vj(1,3))", fixed = TRUE)
  # errors: chains, a lone = or !
  for (bad in c("x < y < x", "x == y != x", "x = y", "!x", "x =< y", "x <> y")) {
    expect_error(keops_kernel(sprintf("Sum_Reduction(%s, 1)", bad), c("x=Vi(3)", "y=Vj(3)")), "column \\d+",
                 class = "rkeops_formula_error", label = bad)
  }
  expect_error(keops_kernel("Sum_Reduction(x < y < x, 1)", c("x=Vi(3)", "y=Vj(3)")), "do not chain")
  expect_error(keops_kernel("Sum_Reduction(x < y, 1)", c("x=Vi(3)", "y=Vj(2)")), class = "rkeops_dimension_error")
  # the gradient of (x < y) * x in x is (x < y) e: the comparison contributes nothing
  e <- matrix(rnorm(3 * N), N)
  g <- keops_kernel("Sum_Reduction(Grad((x < y) * x, x, e), 1)", c("x=Vi(3)", "y=Vj(3)", "e=Vi(3)"))(list(x, y, e))
  expect_equal(unname(g), unname(sumj((X < Y) * e[pi_, ])), tolerance = 1e-14)
  # LazyTensors: the same operators
  x_i <- Vi(x); y_j <- Vj(y)
  lz <- sum((x_i + p > y_j) + 2 * (x_i - y_j <= -p) + 4 * (x_i == y_j) + 8 * (x_i != 2 * y_j) +
              16 * (x_i >= y_j) + 32 * (y_j * 2 < x_i), index = "j")
  expect_equal(unname(lz), unname(ref) + 0, tolerance = 0)
})

test_that("Zero_Reduction(dim, axis) (as KeOps) and Zero_Reduction(F, axis) give zeros; their gradient is zero", {
  set.seed(1204)
  N <- sample(2:40, 1); M <- sample(2:40, 1)
  x <- matrix(rnorm(2 * N), N); y <- matrix(rnorm(2 * M), M)
  args <- c("x=Vi(2)", "y=Vj(2)")
  xo_precisions(function(precision, tol) {
    expect_identical(keops_kernel("Zero_Reduction(3, 1)", args)(list(x, y)), matrix(0, N, 3))
    expect_identical(keops_kernel("Zero_Reduction(3, 0)", args)(list(x, y)), matrix(0, M, 3))
    expect_identical(keops_kernel("Zero_Reduction(Exp(x - y), 0)", args)(list(x, y)), matrix(0, M, 2))
  })
  d <- rkeops:::.rk_call("rk_parse", "Zero_Reduction(4, 1)", args)
  expect_equal(d$formula_dim, 4)
  for (bad in c("Zero_Reduction(0, 1)", "Zero_Reduction(-2, 1)", "Zero_Reduction(3)", "Zero_Reduction(3, 2)")) {
    expect_error(keops_kernel(bad, args), "column \\d+", class = "rkeops_formula_error", label = bad)
  }
  op <- keops_kernel("Zero_Reduction(Exp(x - y), 1)", args)
  expect_identical(keops_grad(op, "x")(list(x, y, matrix(1, N, 2))), matrix(0, N, 2))
  expect_identical(keops_grad(op, "y")(list(x, y, matrix(1, N, 2))), matrix(0, M, 2))
  # LazyTensors: reduction() by name
  expect_identical(reduction(Vi(x) - Vj(y), "Zero", "j"), matrix(0, N, 2))
})

test_that("DiffClampInt is 1 on [a, b] and 0 elsewhere; diffclampint() on LazyTensors", {
  set.seed(1205)
  N <- sample(5:25, 1); M <- sample(5:25, 1)
  grid <- function(n) sample(seq(-3, 3, by = 0.5), n, replace = TRUE)
  x <- matrix(grid(2 * N), N); y <- matrix(grid(2 * M), M)
  pi_ <- rep(seq_len(N), M); pj_ <- rep(seq_len(M), each = N)
  D <- x[pi_, ] - y[pj_, ]
  ref <- rowsum((D >= -1 & D <= 2) + 0, pi_, reorder = TRUE)
  xo_precisions(function(precision, tol) {
    expect_equal(unname(sum(diffclampint(Vi(x) - Vj(y), -1, 2), index = "j")), unname(ref), tolerance = 0)
    op <- keops_kernel("Sum_Reduction(DiffClampInt(x - y, -1, 2), 1)", c("x=Vi(2)", "y=Vj(2)"))
    expect_equal(unname(op(list(x, y))), unname(ref), tolerance = 0)
  })
  expect_error(diffclampint(Vi(x), 0.5, 1), class = "rkeops_input_error")
  expect_error(diffclampint(x, 0, 1), class = "rkeops_input_error")
  # its own derivative is zero
  g <- keops_kernel("Sum_Reduction(Grad(DiffClampInt(x, 0, 1) * x, x, e), 1)",
                    c("x=Vi(2)", "y=Vj(2)", "e=Vi(2)"))(list(x, y, matrix(1, N, 2)))
  expect_equal(unname(g), M * ((x >= 0 & x <= 1) + 0), tolerance = 1e-14)
})

test_that("SoftDTW_SqDist matches dense R (random lengths, both precisions, through loops too)", {
  set.seed(1206)
  for (len in list(c(sample(1:5, 1), sample(1:5, 1)), c(4, 1), c(40, 3))) {  # 40: loops over components
    n <- len[1]; m <- len[2]
    N <- sample(2:12, 1); M <- sample(2:12, 1)
    x <- matrix(runif(n * N, -2, 2), N); y <- matrix(runif(m * M, -2, 2), M); g <- runif(1, 0.2, 2)
    pi_ <- rep(seq_len(N), M); pj_ <- rep(seq_len(M), each = N)
    xo_precisions(function(precision, tol) {
      xr <- if (precision == "float32") rkt_f32(x) else x
      yr <- if (precision == "float32") rkt_f32(y) else y
      gr <- if (precision == "float32") rkt_f32(g) else g
      v <- rkt_softdtw(xr[pi_, , drop = FALSE], yr[pj_, , drop = FALSE], matrix(gr, N * M, 1))$value
      ref <- rowsum(v, pi_, reorder = TRUE)
      op <- keops_kernel("Sum_Reduction(SoftDTW_SqDist(x, y, g), 1)", c(sprintf("x=Vi(%d)", n), sprintf("y=Vj(%d)", m), "g=Pm(1)"))
      expect_lte(max(abs(op(list(x, y, g)) - ref)) / max(abs(rowsum(abs(v), pi_, reorder = TRUE))), tol)
      lz <- sum(softdtw_sqdist(Vi(x), Vj(y), g), index = "j")
      expect_lte(max(abs(lz - ref)) / max(abs(rowsum(abs(v), pi_, reorder = TRUE))), tol)
    })
  }
  # gamma of dimension 1 only; a clear error otherwise
  expect_error(keops_kernel("Sum_Reduction(SoftDTW_SqDist(x, y, y), 1)", c("x=Vi(3)", "y=Vj(2)")),
               "gamma", class = "rkeops_dimension_error")
  expect_error(softdtw_sqdist(Vi(matrix(1, 2, 3)), Vj(matrix(1, 2, 2)), c(1, 2)), class = "rkeops_dimension_error")
})

test_that("the gradient of SoftDTW_SqDist in x, y and gamma matches finite differences and forward mode", {
  set.seed(1207)
  n <- sample(2:5, 1); m <- sample(2:5, 1)
  N <- sample(2:6, 1); M <- sample(2:6, 1)
  x <- matrix(runif(n * N, -2, 2), N); y <- matrix(runif(m * M, -2, 2), M); g <- runif(1, 0.3, 1.5)
  e <- rnorm(N)
  args <- c(sprintf("x=Vi(%d)", n), sprintf("y=Vj(%d)", m), "g=Pm(1)", "e=Vi(1)")
  fwd <- keops_kernel("Sum_Reduction(SoftDTW_SqDist(x, y, g), 1)", args[1:3])
  for (v in c("x", "y", "g")) {
    op <- keops_kernel(sprintf("Sum_Reduction(Grad(SoftDTW_SqDist(x, y, g), %s, e), %d)", v, if (v == "x") 1 else 0), args)
    got <- op(list(x, y, g, e))
    if (v == "g") got <- sum(got)
    ref <- switch(v, x = xo_fd(function(z) fwd(list(z, y, g)), x, e),
                  y = xo_fd(function(z) fwd(list(x, z, g)), y, e),
                  g = xo_fd(function(z) fwd(list(x, y, z)), g, e))
    expect_lte(xo_rel(got, ref), 1e-6, label = paste("d/d", v))
  }
  # the whole gradient (GradSoftDTW_SqDist) against R's forward mode, per pair, in float64
  pi_ <- rep(seq_len(N), M); pj_ <- rep(seq_len(M), each = N)
  G <- rkt_softdtw_grad(x[pi_, , drop = FALSE], y[pj_, , drop = FALSE], matrix(g, N * M, 1))
  op <- keops_kernel("Sum_Reduction(GradSoftDTW_SqDist(x, y, g), 1)", args[1:3])
  expect_lte(xo_rel(op(list(x, y, g)), rowsum(G, pi_, reorder = TRUE)), 1e-12)
  # LazyTensor grad()
  lg <- grad(softdtw_sqdist(Vi(x), Vj(y), g), matrix(e), "Sum", var = 0, index = "j")
  expect_lte(xo_rel(lg, xo_fd(function(z) fwd(list(z, y, g)), x, e)), 1e-6)
  # no second derivative: a formula error at the Grad
  expect_error(keops_kernel("Sum_Reduction(Grad(Grad(SoftDTW_SqDist(x, y, g), x, e), x, x), 1)", args),
               "second derivatives of SoftDTW_SqDist", class = "rkeops_formula_error")
})

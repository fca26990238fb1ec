# Core end-to-end checks of keops_kernel() against dense base R (the exhaustive sweeps live in
# test-ops-sweep.R and test-reductions.R).

dense_sqdist <- function(x, y) {
  pmax(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y), 0)
}

test_that("Gaussian kernel sums match dense R in both directions and precisions", {
  set.seed(11)
  for (sz in list(c(1, 1), c(7, 33), c(517, 1031), c(3, 2000))) {
    N <- sz[1]; M <- sz[2]
    x <- matrix(rnorm(N * 3), N); y <- matrix(rnorm(M * 3), M); b <- runif(M); bi <- runif(N)
    K <- exp(-0.5 * dense_sqdist(x, y))
    op1 <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))
    op0 <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 0)", c("x=Vi(3)", "y=Vj(3)", "b=Vi(1)", "g=Pm(1)"))
    ref1 <- K %*% b
    ref0 <- crossprod(K, bi)
    r1 <- op1(list(x, y, b, 0.5))
    r0 <- op0(list(x, y, bi, 0.5))
    expect_equal(dim(r1), c(N, 1))
    expect_equal(dim(r0), c(M, 1))
    expect_lte(max(abs(r1 - ref1)) / max(abs(ref1)), 1e-12)
    expect_lte(max(abs(r0 - ref0)) / max(abs(ref0)), 1e-12)
    rkeops_use_float32()
    on.exit(rkeops_use_float64(), add = TRUE)
    expect_lte(max(abs(op1(list(x, y, b, 0.5)) - ref1)) / max(abs(ref1)), 1e-5)
    expect_lte(max(abs(op0(list(x, y, bi, 0.5)) - ref0)) / max(abs(ref0)), 1e-5)
    rkeops_use_float64()
  }
})

test_that("k-NN indices are 0-based and match order() of dense distances", {
  set.seed(12)
  x <- matrix(runif(40 * 5), 40); y <- matrix(runif(300 * 5), 300)
  op <- keops_kernel("KMin_ArgKMin_Reduction(SqDist(x, y), 4, 1)", c("x=Vi(5)", "y=Vj(5)"))
  res <- op(list(x, y))
  d2 <- dense_sqdist(x, y)
  expect_type(res, "list")
  expect_equal(res[[2]], t(apply(d2, 1, order))[, 1:4] - 1)
  expect_equal(res[[1]], t(apply(d2, 1, sort))[, 1:4], tolerance = 1e-12)
})

test_that("inner_dim = 'row' and named inputs give the same result", {
  set.seed(13)
  x <- matrix(runif(30), 10); y <- matrix(runif(60), 20)
  op <- keops_kernel("Sum_Reduction(SqDist(x, y) * p, 1)", c("x=Vi(3)", "y=Vj(3)", "p=Pm(1)"))
  a <- op(list(x, y, 2))
  expect_equal(op(list(t(x), t(y), 2), inner_dim = "row"), a)
  expect_equal(op(list(p = 2, y = y, x = x)), a)
  expect_equal(as.vector(a), rowSums(dense_sqdist(x, y)) * 2, tolerance = 1e-12)
  desc <- op()
  expect_named(desc, c("formula", "args", "args_info", "sum_scheme"))
})

test_that("bad input gives classed errors naming the problem", {
  op <- keops_kernel("Sum_Reduction(SqDist(x, y), 1)", c("x=Vi(3)", "y=Vj(3)"))
  x <- matrix(runif(30), 10)
  expect_error(op(list(x)), class = "rkeops_input_error")
  expect_error(op(list(x, x[, 1:2])), "'y'", class = "rkeops_dimension_error")
  expect_error(op(list(x, matrix("a", 2, 3))), class = "rkeops_input_error")
  expect_error(op(list(x, NULL)), class = "rkeops_input_error")
  expect_error(keops_kernel("Sum_Reduction(Foo(x), 1)", "x=Vi(1)"), "unknown operation", class = "rkeops_formula_error")
  expect_error(keops_kernel("Sum_Reduction(x + y, 1)", c("x=Vi(3)", "y=Vj(2)")), class = "rkeops_dimension_error")
  knn <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 5, 1)", c("x=Vi(3)", "y=Vj(3)"))
  # K larger than the number of points: padded as KeOps does (index 0 beyond the points)
  expect_equal(knn(list(x, x[1:3, ]))[, 4:5], matrix(0, nrow(x), 2))
})

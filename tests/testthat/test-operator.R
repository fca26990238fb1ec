# Operators (R/operator.R): keops_kernel() and keops_grad() return functions of class
# "rkeops_operator" that keep RKeOps's calling conventions and print as what they compute.

rkt_gauss_formula <- "Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)"
rkt_gauss_args <- c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)")

test_that("an operator is a function of class rkeops_operator with RKeOps's conventions", {
  op <- keops_kernel(rkt_gauss_formula, rkt_gauss_args)
  expect_s3_class(op, "rkeops_operator")
  expect_true(is.function(op))
  desc <- op()
  expect_identical(desc$formula, rkt_gauss_formula)
  expect_identical(desc$args, rkt_gauss_args)
  set.seed(3)
  n <- sample(5:20, 1); m <- sample(5:20, 1)
  x <- matrix(rnorm(3 * n), n); y <- matrix(rnorm(3 * m), m); b <- rnorm(m)
  d2 <- outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)
  expect_equal(op(list(x, y, b, 0.7)), exp(-0.7 * d2) %*% b, tolerance = 1e-12)
  expect_equal(op(list(g = 0.7, b = b, y = y, x = x)), exp(-0.7 * d2) %*% b, tolerance = 1e-12)
})

test_that("an operator prints its formula, reduction, inputs, backend and precision", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  rkeops_use_float32()
  op <- keops_kernel(rkt_gauss_formula, rkt_gauss_args)
  out <- capture.output(res <- print(op))
  expect_identical(res, op)
  expect_match(out[1], paste0("<rkeops operator> ", rkt_gauss_formula), fixed = TRUE)
  expect_true(any(grepl("reduction: Sum over j, one result row per i, output dimension 1", out, fixed = TRUE)))
  expect_true(any(grepl("x=Vi(3)", out, fixed = TRUE) & grepl("i-indexed", out, fixed = TRUE) &
                  grepl("3 columns", out, fixed = TRUE)))
  expect_true(any(grepl("g=Pm(1)", out, fixed = TRUE) & grepl("a parameter, 1 value", out, fixed = TRUE)))
  expect_true(any(grepl("float32", out, fixed = TRUE)))
  expect_true(any(grepl("op(list(x, y, b, g))", out, fixed = TRUE)))
  expect_output(print(keops_kernel("Min_ArgMin_Reduction(SqDist(x, y), 0)", c("x=Vi(2)", "y=Vj(2)"))),
                "Min_ArgMin over i, one result row per j", fixed = TRUE)
  rkeops_use_cpu()
  expect_output(print(op), "backend:   CPU, float32", fixed = TRUE)
})

test_that("gradient operators print what they differentiate and keep their conventions", {
  op <- keops_kernel(rkt_gauss_formula, rkt_gauss_args)
  gx <- keops_grad(op, "x")                        # a plain operator
  gg <- keops_grad(op, "g")                        # a parameter: summed over the rows
  lse <- keops_kernel("LogSumExp_Reduction(-SqDist(x, y), 1)", c("x=Vi(2)", "y=Vj(2)"))
  gl <- keops_grad(lse, "y")                       # uses forward values
  am <- keops_grad(keops_kernel("ArgMin_Reduction(SqDist(x, y), 1)", c("x=Vi(2)", "y=Vj(2)")), "x")  # zero
  for (g in list(gx, gg, gl, am)) {
    expect_s3_class(g, "rkeops_operator")
    expect_true(is.list(g()))
  }
  out <- capture.output(print(gx))
  expect_match(out[1], paste0("<rkeops gradient operator> d/dx of ", rkt_gauss_formula), fixed = TRUE)
  expect_true(any(grepl("(the gradient input)", out, fixed = TRUE)))
  expect_true(any(grepl("a matrix shaped like 'x'", out, fixed = TRUE)))
  expect_output(print(gl), "d/dy of LogSumExp_Reduction(-SqDist(x, y), 1)", fixed = TRUE)
  expect_output(print(am), "d/dx of ArgMin_Reduction", fixed = TRUE)
  expect_output(print(gg), "d/dg of", fixed = TRUE)
  # the second derivative of a Sum is still available and printable
  gxy <- keops_grad(gx, "y")
  expect_s3_class(gxy, "rkeops_operator")
  expect_output(print(gxy), "d/dy of", fixed = TRUE)
  # values: d/dx of sum_i e_i sum_j exp(-g|x_i - y_j|^2) b_j against finite differences
  set.seed(5)
  x <- matrix(rnorm(6), 2); y <- matrix(rnorm(9), 3); b <- rnorm(3); e <- rnorm(2)
  f <- function(x) sum(e * op(list(x, y, b, 0.3)))
  h <- 1e-6
  fd <- sapply(seq_along(x), function(k) { d <- x * 0; d[k] <- h; (f(x + d) - f(x - d)) / (2 * h) })
  expect_equal(as.vector(gx(list(x, y, b, 0.3, e))), fd, tolerance = 1e-6)
})

# RKeOps's low-level builders unaryop/binaryop/ternaryop.LazyTensor and is.int, against dense R
# (float64, relative error <= 1e-12) and the formulas the R functions build.

rkt_bx <- matrix(rnorm(5 * 3), 5)
rkt_by <- matrix(rnorm(8 * 3), 8)
rkt_pairs <- function(f) {  # dense sum over j of f(x_i, y_j), f: two vectors -> vector
  t(vapply(seq_len(nrow(rkt_bx)), function(i) {
    Reduce(`+`, lapply(seq_len(nrow(rkt_by)), function(j) f(rkt_bx[i, ], rkt_by[j, ])))
  }, numeric(length(f(rkt_bx[1, ], rkt_by[1, ])))))
}
rkt_expect_rel <- function(got, ref, tol = 1e-12) {
  got <- matrix(got, nrow(as.matrix(ref)))
  expect_lte(max(abs(got - ref)) / max(abs(ref), 1e-300), tol)
}

test_that("builders build the same formulas as the R functions, with the engine's dimension", {
  x_i <- Vi(rkt_bx); y_j <- Vj(rkt_by)
  expect_identical(unaryop.LazyTensor(x_i, "Exp")$formula, exp(x_i)$formula)
  expect_identical(binaryop.LazyTensor(x_i, y_j, "SqDist")$formula, sqdist(x_i, y_j)$formula)
  expect_identical(binaryop.LazyTensor(x_i, y_j, "-", is_operator = TRUE)$formula, (x_i - y_j)$formula)
  expect_identical(binaryop.LazyTensor(x_i, y_j, "|", is_operator = TRUE)$dimres, 1L)
  expect_identical(unaryop.LazyTensor(x_i, "Extract", opt_arg = 1, opt_arg2 = 2)$dimres, 2L)
  expect_identical(binaryop.LazyTensor(x_i, y_j, "Concat", dim_check_type = NA)$dimres, 6L)
  expect_identical(unaryop.LazyTensor(x_i, "SqNorm2")$dimres, 1L)
  expect_identical(ternaryop.LazyTensor(x_i, y_j, x_i, "IfElse")$dimres, 3L)
})

test_that("builders compute what dense R computes", {
  x_i <- Vi(rkt_bx); y_j <- Vj(rkt_by)
  rkt_expect_rel(sum(binaryop.LazyTensor(x_i, y_j, "SqDist"), "j"), rkt_pairs(function(a, b) sum((a - b)^2)))
  rkt_expect_rel(sum(unaryop.LazyTensor(x_i - y_j, "Extract", opt_arg = 1, opt_arg2 = 2), "j"),
                 rkt_pairs(function(a, b) (a - b)[2:3]))
  rkt_expect_rel(sum(binaryop.LazyTensor(x_i, y_j, "/", is_operator = TRUE), "j"), rkt_pairs(function(a, b) a / b))
  rkt_expect_rel(sum(ternaryop.LazyTensor(x_i * y_j, -0.5, 0.5, "Clamp"), "j"),
                 rkt_pairs(function(a, b) pmin(pmax(a * b, -0.5), 0.5)))
  rkt_expect_rel(sum(binaryop.LazyTensor(x_i, y_j, "Concat", dim_check_type = NA), "j"),
                 rkt_pairs(function(a, b) c(a, b)))
  z <- unaryop.LazyTensor(Vi(matrix(rkt_bx[, 1])), "Real2Complex")
  expect_true(is.ComplexLazyTensor(z))
  expect_false(is.ComplexLazyTensor(unaryop.LazyTensor(z, "ComplexReal")))
})

test_that("builders refuse unknown operations, bad parameters and wrong dimensions", {
  x_i <- Vi(rkt_bx); y_j <- Vj(matrix(rnorm(8 * 2), 8))
  expect_error(unaryop.LazyTensor(x_i, "NoSuchOp"), class = "rkeops_formula_error")
  expect_error(unaryop.LazyTensor(x_i, "Exp(x)+Exp"), "unknown operation", class = "rkeops_formula_error")
  expect_error(unaryop.LazyTensor(x_i, c("Exp", "Log")), class = "rkeops_input_error")
  expect_error(binaryop.LazyTensor(x_i, x_i, "%%", is_operator = TRUE), "not an operator", class = "rkeops_input_error")
  expect_error(binaryop.LazyTensor(x_i, y_j, "Add"), "dimension", class = "rkeops_dimension_error")
  expect_error(binaryop.LazyTensor(x_i, y_j, "Add", dim_check_type = NA), class = "rkeops_dimension_error")
  expect_error(unaryop.LazyTensor(x_i, "Extract", opt_arg = 1.5, opt_arg2 = 1), "opt_arg", class = "rkeops_input_error")
  expect_error(unaryop.LazyTensor(x_i, "Extract", opt_arg = 2, opt_arg2 = 5), class = "rkeops_dimension_error")
  expect_error(unaryop.LazyTensor(x_i, "Exp", dim_res = 2), "dim_res", class = "rkeops_dimension_error")
  expect_error(unaryop.LazyTensor(x_i, "Exp", res_type = "matrix"), "res_type", class = "rkeops_input_error")
  expect_error(unaryop.LazyTensor("a", "Exp"), class = "rkeops_input_error")
})

test_that("is.int() is true for single whole numbers only", {
  expect_true(is.int(3)); expect_true(is.int(-2L)); expect_true(is.int(0))
  expect_false(is.int(3.5)); expect_false(is.int(c(1, 2))); expect_false(is.int(NA_real_))
  expect_false(is.int("3")); expect_false(is.int(Inf)); expect_false(is.int(matrix(1)))
})

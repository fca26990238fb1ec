# LazyTensor constructors, predicates, variables, printed forms and input errors.

test_that("constructors build i, j and parameter variables", {
  x <- matrix(runif(12), 4, 3)
  x_i <- LazyTensor(x, index = "i")
  expect_s3_class(x_i, "LazyTensor")
  expect_equal(x_i$dimres, 3L)
  expect_match(x_i$args, "^lzv[0-9]+i=Vi\\(3\\)$")
  expect_identical(x_i$data[[1]], x)
  expect_equal(Vj(x)$dimres, 3L)
  expect_match(Vj(x)$args, "=Vj\\(3\\)$")
  # a vector with an index is one value per point (kept as a vector: the engine reads a column)
  v_j <- Vj(1:5)
  expect_equal(v_j$dimres, 1L)
  expect_equal(v_j$data[[1]], as.double(1:5))
  expect_equal(rkeops:::.lt_sizes(v_j)[["j"]], 5L)
  # parameters: vectors, one-row matrices; integer-valued numbers are constants
  p <- Pm(c(0.5, 2, 3))
  expect_match(p$args, "=Pm\\(3\\)$")
  expect_equal(p$dimres, 3L)
  expect_equal(LazyTensor(matrix(1:2 / 3, 1))$dimres, 2L)
  expect_equal(Pm(0.25)$data[[1]], 0.25)
  expect_identical(LazyTensor(3)$formula, "IntCst(3)")
  expect_identical(Pm(-2L)$formula, "IntCst(-2)")
  expect_length(LazyTensor(3)$args, 0)
  # integer matrices become double
  expect_true(is.double(Vi(matrix(1:6, 3))$data[[1]]))
  # a LazyTensor passes through LazyTensor()
  expect_identical(LazyTensor(x_i), x_i)
})

test_that("complex data is interleaved (re, im) and gives a ComplexLazyTensor", {
  z <- matrix(complex(real = 1:6, imaginary = -(1:6)), 3, 2)
  z_i <- Vi(z)
  expect_s3_class(z_i, "ComplexLazyTensor")
  expect_s3_class(z_i, "LazyTensor")
  expect_equal(z_i$dimres, 2L)
  expect_match(z_i$args, "=Vi\\(4\\)$")
  expect_equal(z_i$data[[1]], cbind(1:3, -(1:3), 4:6, -(4:6)) + 0)
  r_i <- Vi(matrix(1:3 + 0, 3), is_complex = TRUE)
  expect_s3_class(r_i, "ComplexLazyTensor")
  expect_equal(r_i$data[[1]], cbind(1:3, 0) + 0)
  p <- Pm(c(1 + 2i, 3 - 1i))
  expect_s3_class(p, "ComplexLazyTensor")
  expect_equal(p$data[[1]], c(1, 2, 3, -1))
  expect_true(is.ComplexLazyParameter(Pm(1i)))
  expect_false(is.LazyParameter(Pm(1i)))
})

test_that("predicates", {
  x_i <- Vi(matrix(runif(6), 3, 2))
  expect_true(is.LazyTensor(x_i))
  expect_false(is.LazyTensor(matrix(1)))
  expect_false(is.ComplexLazyTensor(x_i))
  expect_true(is.LazyMatrix(x_i))
  expect_false(is.LazyVector(x_i))
  expect_true(is.LazyMatrix(x_i + Vj(matrix(1, 2, 2))))
  expect_true(is.LazyVector(Pm(c(1, 2))))
  expect_true(is.LazyParameter(Pm(2.5)))
  expect_true(is.LazyParameter(LazyTensor(4)))
  expect_false(is.LazyParameter(Pm(c(1, 2))))
  expect_false(is.LazyParameter(x_i))
  expect_false(is.LazyParameter(3))
})

test_that("print, format and str show the formula, index, dimension and data sizes", {
  x_i <- Vi(matrix(runif(30), 10, 3))
  y_j <- Vj(matrix(runif(60), 20, 3))
  K <- exp(-Pm(0.5) * sqdist(x_i, y_j))
  expect_equal(format(K), c(
    "LazyTensor: a symbolic 10 x 20 matrix",
    "  formula:         Exp(Mult(Minus(V0),SqDist(V1,V2)))",
    "  index:           ij",
    "  inner dimension: 1",
    "  variables:",
    "    V0=Pm(1)       parameter, 1 value(s)",
    "    V1=Vi(3)       10 x 3 matrix",
    "    V2=Vj(3)       20 x 3 matrix"))
  expect_output(print(K), "formula:         Exp(Mult(Minus(V0),SqDist(V1,V2)))", fixed = TRUE)
  capture.output(expect_invisible(print(K)))
  expect_equal(capture.output(str(K)),
               "LazyTensor [index ij, dim 1] Exp(Mult(Minus(V0),SqDist(V1,V2)))  {V0=Pm(1): 1, V1=Vi(3): 10x3, V2=Vj(3): 20x3}")
  expect_equal(format(x_i)[1:4], c("LazyTensor: 10 symbolic rows (indexed by i)", "  formula:         V0",
                                    "  index:           i", "  inner dimension: 3"))
  expect_equal(format(y_j)[1], "LazyTensor: 20 symbolic columns (indexed by j)")
  expect_equal(format(LazyTensor(2)), c("LazyTensor: a fixed vector (no i or j index)",
                                        "  formula:         IntCst(2)",
                                        "  index:           none (parameters and constants only)",
                                        "  inner dimension: 1"))
  z <- Vi(matrix(1i, 4, 2))
  expect_equal(format(z)[c(1, 4)], c("ComplexLazyTensor: 4 symbolic rows (indexed by i)",
                                     "  inner dimension: 2 (complex; 4 real values, re/im interleaved)"))
  expect_equal(capture.output(str(exp(z))),
               "ComplexLazyTensor [index i, dim 2] ComplexExp(V0)  {V0=Vi(4): 4x4}")
})

test_that("bad input gives classed errors", {
  x <- matrix(runif(6), 3, 2)
  expect_error(LazyTensor("a", "i"), class = "rkeops_input_error")
  expect_error(LazyTensor(list(1, 2)), class = "rkeops_input_error")
  expect_error(LazyTensor(data.frame(a = 1:3), "i"), class = "rkeops_input_error")
  expect_error(LazyTensor(c(TRUE, FALSE)), class = "rkeops_input_error")
  expect_error(LazyTensor(numeric(0)), class = "rkeops_input_error")
  # arrays are batches (test-batch.R): c(B, n, d), a parameter c(B, 1, d), real only
  expect_equal(LazyTensor(array(1, c(2, 4, 3)), "i")$dimres, 3)
  expect_error(LazyTensor(array(1, c(2, 2, 2))), class = "rkeops_dimension_error", regexp = "c\\(B1, ..., Bk, 1, d\\)")
  expect_error(LazyTensor(array(1i, c(2, 2, 2)), "i"), class = "rkeops_input_error", regexp = "complex")
  expect_error(LazyTensor(x, index = "k"), "`index` must be", class = "rkeops_input_error")
  expect_error(LazyTensor(x, index = 1), class = "rkeops_input_error")
  expect_error(LazyTensor(x, index = c("i", "j")), class = "rkeops_input_error")
  expect_error(LazyTensor(x), "needs `index", class = "rkeops_input_error")
  expect_error(LazyTensor(x, "i", is_complex = NA), class = "rkeops_input_error")
  expect_error(Vi(Vi(x)), "already a LazyTensor", class = "rkeops_input_error")
  expect_error(Pm("a"), class = "rkeops_input_error")
  x_i <- Vi(x)
  # incompatible inner dimensions
  expect_error(x_i + Vj(matrix(1, 4, 3)), "same dimension or dimension 1", class = "rkeops_dimension_error")
  expect_error(x_i | Vj(matrix(1, 4, 1)), "same dimension", class = "rkeops_dimension_error")
  expect_error(weightedsqnorm(x_i, c(1, 2, 3)), "weight", class = "rkeops_dimension_error")
  # positions out of range break the engine's rule of the operation (a dimension error)
  expect_error(elem(x_i, 2), "elem().*out of range", class = "rkeops_dimension_error")
  expect_error(extract(x_i, 1, 2), "extract().*out of", class = "rkeops_dimension_error")
  expect_error(elem(x_i, 0.5), "`m` (elem())", fixed = TRUE, class = "rkeops_input_error")
  expect_error(one_hot(x_i, 3), class = "rkeops_dimension_error")
  expect_error(elemT(x_i, 0, 2), class = "rkeops_dimension_error")
  expect_error(matvecmult(Vi(matrix(1, 3, 5)), Pm(c(1, 2))), "multiple", class = "rkeops_dimension_error")
  # different numbers of points for one index
  expect_error(x_i + Vi(matrix(1, 4, 2)), "different numbers of points", class = "rkeops_dimension_error")
  # matrices and non-numbers mixed in
  expect_error(x_i + x, "Vi\\(\\) or Vj\\(\\)", class = "rkeops_input_error")
  expect_error(x_i + "a", class = "rkeops_input_error")
  expect_error(x_i & x_i, class = "rkeops_input_error")
  expect_error(!x_i, class = "rkeops_input_error")
  expect_error(round(x_i, 0.5), "digits", class = "rkeops_input_error")
  expect_error(log(x_i, -1), "base", class = "rkeops_input_error")
  expect_error(gamma(x_i), "not available", class = "rkeops_input_error")
  expect_error(clampint(x_i, 0.5, 1), class = "rkeops_input_error")
  # explicit generics on non-LazyTensors: numbers are computed in R or made LazyTensors
  # (test-lazytensor-features.R), but a matrix needs Vi() or Vj()
  expect_error(square("a"), "applies to a LazyTensor or to numbers", class = "rkeops_input_error")
  expect_error(sqdist(x, x), class = "rkeops_input_error")
  expect_error(elem(2, 0), "applies to a LazyTensor", class = "rkeops_input_error")
  # complex-only and real-only functions
  expect_error(Re(x_i), "ComplexLazyTensor", class = "rkeops_input_error")
  expect_error(Conj(x_i), class = "rkeops_input_error")
  z_i <- Vi(matrix(1i, 3, 2))
  expect_error(elem(z_i, 0), "ComplexLazyTensor", class = "rkeops_input_error")
  expect_error(tan(z_i), "ComplexLazyTensor", class = "rkeops_input_error")
  expect_error(z_i | x_i, class = "rkeops_input_error")
  expect_error(z_i^z_i, class = "rkeops_input_error")
  expect_error(concat(z_i, x_i), class = "rkeops_input_error")
})

test_that("the masking generics keep base and stats behaviour", {
  expect_identical(ifelse(c(TRUE, FALSE, NA), 1, 2), base::ifelse(c(TRUE, FALSE, NA), 1, 2))
  expect_identical(ifelse(FALSE, stop("not evaluated"), 3), 3)
  expect_identical(atan2(1:3, 2), base::atan2(1:3, 2))
  m <- matrix(1:6, 2)
  expect_identical(m %*% t(m), base::`%*%`(m, t(m)))
  fit <- stats::lm(mpg ~ wt + hp, data = datasets::mtcars)
  expect_equal(formula(step(fit, trace = 0)), formula(stats::step(fit, trace = 0)))
})

test_that("errors on non-numeric data name what was given", {
  expect_error(LazyTensor(matrix("a", 2, 2)), "a character matrix", class = "rkeops_input_error")
  expect_error(Vi(matrix(TRUE, 2, 2)), "logical", class = "rkeops_input_error")
  expect_error(Vi(matrix(1, 2, 2)) + "a", "a character value", class = "rkeops_input_error")
})

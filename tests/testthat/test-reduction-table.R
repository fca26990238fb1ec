# Every reduction of the engine, both axes, float64 (1e-12) and float32 (1e-5), against dense R
# computed from the full matrix of terms; shapes as RKeOps returns them; 0-based indices.

dense_terms <- function(x, y) {  # F_ij = -|x_i - y_j|^2 (dim 1) and the pair of coordinates (dim 2)
  d2 <- pmax(outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y), 0)
  list(f1 = -d2, f2a = outer(x[, 1], y[, 1], "-"), f2b = outer(x[, 2], y[, 2], "*"))
}
# Applies `fun` to each row (axis 1: reduce over j) or column (axis 0) of a matrix.
along <- function(m, axis, fun) {
  r <- apply(m, if (axis == 1) 1 else 2, fun)
  if (is.null(dim(r))) matrix(r) else t(r)
}
vec_or_mat <- function(v) if (is.null(dim(v))) matrix(v) else v

reduction_cases <- list(
  list(red = "Sum_Reduction(F1, %A%)", ref = function(T, a, w) vec_or_mat(along(T$f1, a, sum))),
  list(red = "Min_Reduction(F2, %A%)", ref = function(T, a, w) cbind(as.vector(along(T$f2a, a, min)), as.vector(along(T$f2b, a, min)))),
  list(red = "Max_Reduction(F2, %A%)", ref = function(T, a, w) cbind(as.vector(along(T$f2a, a, max)), as.vector(along(T$f2b, a, max)))),
  list(red = "ArgMin_Reduction(F2, %A%)", ref = function(T, a, w) cbind(as.vector(along(T$f2a, a, which.min)), as.vector(along(T$f2b, a, which.min))) - 1),
  list(red = "ArgMax_Reduction(F1, %A%)", ref = function(T, a, w) vec_or_mat(as.vector(along(T$f1, a, which.max)) - 1)),
  list(red = "Min_ArgMin_Reduction(F1, %A%)", ref = function(T, a, w) list(vec_or_mat(as.vector(along(T$f1, a, min))), vec_or_mat(as.vector(along(T$f1, a, which.min)) - 1))),
  list(red = "Max_ArgMax_Reduction(F2, %A%)", ref = function(T, a, w) list(cbind(as.vector(along(T$f2a, a, max)), as.vector(along(T$f2b, a, max))),
                                                                     cbind(as.vector(along(T$f2a, a, which.max)), as.vector(along(T$f2b, a, which.max))) - 1)),
  list(red = "KMin_Reduction(F1, 3, %A%)", ref = function(T, a, w) along(T$f1, a, function(v) sort(v)[1:3])),
  list(red = "ArgKMin_Reduction(F1, 3, %A%)", ref = function(T, a, w) along(T$f1, a, function(v) order(v)[1:3] - 1)),
  list(red = "KMin_ArgKMin_Reduction(F1, 2, %A%)", ref = function(T, a, w) list(along(T$f1, a, function(v) sort(v)[1:2]), along(T$f1, a, function(v) order(v)[1:2] - 1))),
  list(red = "KMin_Reduction(F2, 2, %A%)", ref = function(T, a, w) {
    k1 <- along(T$f2a, a, function(v) sort(v)[1:2]); k2 <- along(T$f2b, a, function(v) sort(v)[1:2])
    array(c(k1, k2), c(nrow(k1), 2, 2))
  }),
  list(red = "LogSumExp_Reduction(F1, %A%)", ref = function(T, a, w) vec_or_mat(as.vector(along(T$f1, a, function(v) log(sum(exp(v))))))),
  list(red = "Max_SumShiftExp_Reduction(F1, %A%)", ref = function(T, a, w) {
    m <- as.vector(along(T$f1, a, max)); s <- as.vector(along(T$f1, a, function(v) sum(exp(v - max(v))))); cbind(m, s, deparse.level = 0)
  }),
  list(red = "SumSoftMaxWeight_Reduction(F1, %W%, %A%)", ref = function(T, a, w) {
    E <- exp(T$f1); if (a == 1) (E %*% w) / rowSums(E) else (crossprod(E, w)) / colSums(E)
  }),
  list(red = "SumSoftMaxWeight_Reduction(F1, %A%, %W%)", ref = function(T, a, w) {
    E <- exp(T$f1); if (a == 1) (E %*% w) / rowSums(E) else (crossprod(E, w)) / colSums(E)
  }),
  list(red = "LogSumExpWeight_Reduction(F1, Elem(%W%, 0) * Elem(%W%, 0), %A%)", ref = function(T, a, w) {
    E <- exp(T$f1); vec_or_mat(log(if (a == 1) E %*% w[, 1]^2 else crossprod(E, w[, 1]^2)))
  })
)

run_reduction <- function(cs, axis, x, y, wx, wy) {
  formula <- gsub("F1", "(-SqDist(x, y))", cs$red, fixed = TRUE)
  formula <- gsub("F2", "Concat(Elem(x, 0) - Elem(y, 0), Elem(x, 1) * Elem(y, 1))", formula, fixed = TRUE)
  formula <- gsub("%A%", axis, gsub("%W%", "w", formula, fixed = TRUE), fixed = TRUE)
  op <- keops_kernel(formula, c("x=Vi(2)", "y=Vj(2)", if (axis == 1) "w=Vj(2)" else "w=Vi(2)"))
  op(list(x, y, if (axis == 1) wy else wx))
}

test_that("every reduction matches dense R, both axes, float64 and float32", {
  set.seed(202)
  on.exit(rkeops_use_float64(), add = TRUE)
  for (prec in c("float64", "float32")) {
    set_rkeops_options(list(precision = prec))
    tol <- if (prec == "float64") 1e-12 else 1e-5
    for (axis in 0:1) {
      N <- if (axis == 1) 37 else 11; M <- if (axis == 1) 9 else 41
      x <- matrix(runif(2 * N), N); y <- matrix(runif(2 * M), M)
      wx <- matrix(rnorm(2 * N), N); wy <- matrix(rnorm(2 * M), M)
      T <- dense_terms(x, y)
      for (cs in reduction_cases) {
        got <- run_reduction(cs, axis, x, y, wx, wy)
        want <- cs$ref(T, axis, if (axis == 1) wy else wx)
        label <- sprintf("%s, axis %d, %s", cs$red, axis, prec)
        if (is.list(want)) {
          expect_type(got, "list")
          expect_equal(dim(got[[1]]), dim(want[[1]]), label = label)
          expect_equal(got[[1]], want[[1]], tolerance = tol, label = label)
          expect_equal(got[[2]], want[[2]], label = label)      # indices: exact
        } else {
          expect_equal(dim(got), dim(want), label = label)
          expect_equal(unname(got), unname(want), tolerance = tol, label = label)
        }
      }
    }
  }
})

test_that("the inner range split over threads gives the same result (few output rows)", {
  set.seed(203)
  x <- matrix(runif(6), 3); y <- matrix(runif(2 * 20011), 20011)
  T <- dense_terms(x, y)
  knn <- keops_kernel("KMin_ArgKMin_Reduction(SqDist(x, y), 5, 1)", c("x=Vi(2)", "y=Vj(2)"))
  res <- knn(list(x, y))
  expect_equal(res[[2]], t(apply(-T$f1, 1, order))[, 1:5] - 1)
  lse <- keops_kernel("LogSumExp_Reduction(-SqDist(x, y), 1)", c("x=Vi(2)", "y=Vj(2)"))
  expect_equal(as.vector(lse(list(x, y))), log(rowSums(exp(T$f1))), tolerance = 1e-12)
  am <- keops_kernel("ArgMin_Reduction(SqDist(x, y), 1)", c("x=Vi(2)", "y=Vj(2)"))
  expect_equal(as.vector(am(list(x, y))), apply(-T$f1, 1, which.min) - 1)
})

test_that("sum schemes agree; Kahan and block sums keep float32 close to float64", {
  set.seed(204)
  n <- 1e5
  x <- matrix(runif(n), n)
  on.exit(rkeops_use_float64(), add = TRUE)
  exact <- sum(exp(-x / 3))
  for (scheme in c("direct_sum", "block_sum", "kahan_scheme")) {
    op <- keops_kernel("Sum_Reduction(Exp(-y / 3), 1)", c("x=Vi(1)", "y=Vj(1)"), sum_scheme = scheme)
    rkeops_use_float64()
    expect_equal(op(list(0, x))[1, 1], exact, tolerance = 1e-12)
    rkeops_use_float32()
    expect_lte(abs(op(list(0, x))[1, 1] - exact) / exact, 1e-5)
  }
})

test_that("fewer candidates than K give +Inf values and index 0, and N = M = 1 works", {
  op <- keops_kernel("KMin_ArgKMin_Reduction(SqDist(x, y), 1, 1)", c("x=Vi(1)", "y=Vj(1)"))
  expect_equal(op(list(2, 5)), list(matrix(9), matrix(0)))
  s <- keops_kernel("Sum_Reduction(x * y, 0)", c("x=Vi(1)", "y=Vj(1)"))
  expect_equal(s(list(2, 5)), matrix(10))
})

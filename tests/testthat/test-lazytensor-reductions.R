# LazyTensor reductions in both directions against dense base R (float64).

lt_dense_sqdist <- function(x, y) outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)

lt_setup <- function(N = 9, M = 14, D = 3, seed = 301) {
  set.seed(seed)
  x <- matrix(rnorm(N * D), N); y <- matrix(rnorm(M * D), M)
  list(x = x, y = y, x_i = Vi(x), y_j = Vj(y), D2 = lt_dense_sqdist(x, y), N = N, M = M)
}

with_float64 <- function(code) {
  old <- get_rkeops_options("precision")
  rkeops_use_float64()
  on.exit(set_rkeops_options(list(precision = old)))
  code
}

test_that("sum, min, max and their arg-indices reduce over j and over i", {
  with_float64({
    s <- lt_setup()
    # a dimension-2 formula: per-coordinate reductions
    F_ij <- concat(sqdist(s$x_i, s$y_j), elem(s$x_i, 0) * elem(s$y_j, 1))
    F1 <- s$D2
    F2 <- outer(s$x[, 1], s$y[, 2])
    for (index in c("j", "i")) {
      margin <- if (index == "j") 1 else 2
      red <- function(f) cbind(apply(F1, margin, f), apply(F2, margin, f))
      n <- if (index == "j") s$N else s$M
      expect_equal(sum(F_ij, index = index), red(sum), tolerance = 1e-12)
      expect_equal(sum(F_ij, index), red(sum), tolerance = 1e-12)
      expect_equal(sum_reduction(F_ij, index), red(sum), tolerance = 1e-12)
      expect_equal(min(F_ij, index = index), red(min), tolerance = 1e-12)
      expect_equal(max(F_ij, index = index), red(max), tolerance = 1e-12)
      expect_equal(min_reduction(F_ij, index), red(min), tolerance = 1e-12)
      expect_equal(max_reduction(F_ij, index), red(max), tolerance = 1e-12)
      expect_equal(argmin(F_ij, index), red(which.min) - 1)
      expect_equal(argmax(F_ij, index), red(which.max) - 1)
      expect_equal(argmin_reduction(F_ij, index), red(which.min) - 1)
      expect_equal(argmax_reduction(F_ij, index), red(which.max) - 1)
      ma <- min_argmin(F_ij, index)
      expect_type(ma, "list")
      expect_equal(ma[[1]], red(min), tolerance = 1e-12)
      expect_equal(ma[[2]], red(which.min) - 1)
      expect_equal(min_argmin_reduction(F_ij, index), ma)
      Ma <- max_argmax(F_ij, index)
      expect_equal(Ma[[1]], red(max), tolerance = 1e-12)
      expect_equal(Ma[[2]], red(which.max) - 1)
      expect_equal(max_argmax_reduction(F_ij, index), Ma)
      expect_equal(dim(ma[[1]]), c(n, 2))
    }
  })
})

test_that("the KMin family reduces over j and over i (matrices for d = 1, arrays for d > 1)", {
  with_float64({
    s <- lt_setup()
    D_ij <- sqdist(s$x_i, s$y_j)
    K <- 3
    for (index in c("j", "i")) {
      margin <- if (index == "j") 1 else 2
      n <- if (index == "j") s$N else s$M
      vals <- t(apply(s$D2, margin, function(v) sort(v)[1:K]))
      idx <- t(apply(s$D2, margin, function(v) order(v)[1:K])) - 1
      expect_equal(Kmin(D_ij, K, index), vals, tolerance = 1e-12)
      expect_equal(argKmin(D_ij, K, index), idx)
      both <- Kmin_argKmin(D_ij, K = K, index = index)
      expect_equal(both[[1]], vals, tolerance = 1e-12)
      expect_equal(both[[2]], idx)
      expect_equal(Kmin_reduction(D_ij, K, index), vals, tolerance = 1e-12)
      expect_equal(argKmin_reduction(D_ij, K, index), idx)
      expect_equal(Kmin_argKmin_reduction(D_ij, K, index), both)
      # dimension 2: n x K x 2 arrays, res[p, k, c] the k-th smallest of coordinate c
      F_ij <- concat(D_ij, -D_ij)
      arr <- Kmin(F_ij, K, index)
      expect_equal(dim(arr), c(n, K, 2))
      expect_equal(arr[, , 1], vals, tolerance = 1e-12)
      expect_equal(arr[, , 2], t(apply(-s$D2, margin, function(v) sort(v)[1:K])), tolerance = 1e-12)
      expect_equal(argKmin(F_ij, K, index)[, , 1], idx)
    }
  })
})

test_that("logsumexp and sumsoftmaxweight reduce over j and over i", {
  with_float64({
    s <- lt_setup()
    w <- matrix(runif(s$M * 2), s$M); wi <- matrix(runif(s$N * 2), s$N)
    S_ij <- -sqdist(s$x_i, s$y_j)
    S <- -s$D2
    lse <- function(v) max(v) + log(sum(exp(v - max(v))))
    expect_equal(logsumexp(S_ij, "j"), matrix(apply(S, 1, lse)), tolerance = 1e-12)
    expect_equal(logsumexp(S_ij, "i"), matrix(apply(S, 2, lse)), tolerance = 1e-12)
    expect_equal(logsumexp_reduction(S_ij, "j"), logsumexp(S_ij, "j"))
    # weighted: log sum_j exp(S_ij) w_j, per column of w
    expect_equal(logsumexp(S_ij, "j", weight = Vj(w)), log(exp(S) %*% w), tolerance = 1e-12)
    expect_equal(logsumexp(S_ij, "i", weight = Vi(wi)), log(t(exp(S)) %*% wi), tolerance = 1e-12)
    P <- exp(S) / rowSums(exp(S))
    expect_equal(sumsoftmaxweight(S_ij, "j", weight = Vj(w)), P %*% w, tolerance = 1e-12)
    Pt <- t(exp(S)) / colSums(exp(S))
    expect_equal(sumsoftmaxweight(S_ij, "i", Vi(wi)), Pt %*% wi, tolerance = 1e-12)
    expect_equal(sumsoftmaxweight_reduction(S_ij, "j", Vj(w)), P %*% w, tolerance = 1e-12)
    # a softmax over i of j-indexed weights returns the weights (RKeOps's check)
    expect_equal(sumsoftmaxweight(S_ij, "i", Vj(w)), w, tolerance = 1e-12)
  })
})

test_that("reduction() applies any reduction by name", {
  with_float64({
    s <- lt_setup()
    D_ij <- sqdist(s$x_i, s$y_j)
    expect_equal(reduction(D_ij, "Sum", "j"), matrix(rowSums(s$D2)), tolerance = 1e-12)
    expect_equal(reduction.LazyTensor(D_ij, "Max", "i"), matrix(apply(s$D2, 2, max)), tolerance = 1e-12)
    expect_equal(reduction(D_ij, "ArgKMin", "j", opt_arg = 2), argKmin(D_ij, 2, "j"))
    expect_equal(reduction(-D_ij, "SumSoftMaxWeight", "j", opt_arg = s$y_j),
                 sumsoftmaxweight(-D_ij, "j", s$y_j))
    expect_error(reduction(D_ij, "Foo", "j"), "opstr", class = "rkeops_input_error")
    expect_error(reduction(s$x, "Sum", "j"), class = "rkeops_input_error")
  })
})

test_that("reductions of i-only and j-only LazyTensors follow RKeOps's shapes", {
  with_float64({
    s <- lt_setup()
    expect_equal(sum(s$x_i, "i"), matrix(colSums(s$x), 1), tolerance = 1e-12)
    expect_equal(sum(s$x_i, "j"), s$x)
    expect_equal(sum(s$y_j, "i"), s$y)
    # concat of an i- and a j-variable with one point each (RKeOps's test)
    a <- matrix(1, 1, 3); b <- matrix(2, 1, 3)
    expect_equal(sum(concat(Vi(a), Vj(b)), "i"), matrix(c(1, 1, 1, 2, 2, 2), 1))
    # parameters and constants mixed with variables
    expect_equal(sum(s$x_i * 2 + Pm(c(1, 2, 3)), "j"), s$x * 2 + matrix(1:3, s$N, 3, byrow = TRUE))
  })
})

test_that("%*% is a sum reduction with a dense matrix, on either side", {
  with_float64({
    s <- lt_setup()
    K_ij <- exp(-sqdist(s$x_i, s$y_j) / 4)
    K <- exp(-s$D2 / 4)
    b <- matrix(rnorm(s$M * 2), s$M)
    expect_equal(K_ij %*% b, K %*% b, tolerance = 1e-12)
    expect_equal(K_ij %*% b[, 1], K %*% b[, 1], tolerance = 1e-12)
    a <- matrix(rnorm(2 * s$N), 2)
    expect_equal(a %*% K_ij, a %*% K, tolerance = 1e-12)
    expect_equal(a[1, ] %*% K_ij, a[1, , drop = FALSE] %*% K, tolerance = 1e-12)
    # two LazyTensors: sum(x * y, "j") (RKeOps)
    expect_equal(K_ij %*% Vj(b), K %*% b, tolerance = 1e-12)
    expect_equal(s$x_i %*% s$y_j, s$x * matrix(colSums(s$y), s$N, 3, byrow = TRUE), tolerance = 1e-12)
  })
})

test_that("grad() gives the gradient of a sum reduction for i, j and parameter variables", {
  with_float64({
    s <- lt_setup()
    eta <- matrix(runif(s$N), s$N)
    g <- Pm(0.3)
    f <- exp(-g * sqdist(s$x_i, s$y_j))          # out_i = sum_j f_ij, weights eta_i
    K <- exp(-0.3 * s$D2)
    W <- K * as.vector(eta)                       # eta_i K_ij
    # d/dx_i: sum_j -2 g (x_i - y_j) K_ij eta_i
    gx <- -2 * 0.3 * (rowSums(W) * s$x - W %*% s$y)
    expect_equal(grad(f, eta, "Sum", var = s$x_i, index = "j"), gx, tolerance = 1e-12)
    expect_equal(grad(f, Vi(eta), "Sum", var = 1, index = "j"), gx, tolerance = 1e-12)
    # by name, as RKeOps allows: the variable's name in f$args, or its printed name V0, V1, ...
    expect_equal(grad(f, eta, "Sum", var = s$x_i$formula, index = "j"), gx, tolerance = 1e-12)
    expect_equal(grad(f, eta, "Sum", var = "V1", index = "j"), gx, tolerance = 1e-12)
    expect_error(grad(f, eta, "Sum", var = "nope", index = "j"), class = "rkeops_input_error",
                 regexp = "'nope' is not a variable of `f`")
    # d/dy_j: sum_i 2 g (x_i - y_j) K_ij eta_i, one row per j
    gy <- 2 * 0.3 * (t(W) %*% s$x - colSums(W) * s$y)
    expect_equal(grad(f, eta, "Sum", var = s$y_j, index = "j"), gy, tolerance = 1e-12)
    # d/dg: sum_ij -|x_i - y_j|^2 K_ij eta_i
    expect_equal(grad(f, eta, "Sum", var = g, index = "j"), matrix(-sum(s$D2 * W)), tolerance = 1e-12)
    # reduction over i: out_j = sum_i f_ij, weights indexed by j
    ej <- matrix(runif(s$M), s$M)
    Wj <- t(t(K) * as.vector(ej))
    expect_equal(grad(f, ej, "Sum", var = s$x_i, index = "i"),
                 -2 * 0.3 * (rowSums(Wj) * s$x - Wj %*% s$y), tolerance = 1e-12)
    # RKeOps's check: grad(sqnorm2(x_i - y_j), eta_i, "Sum", var = x_i, "j") = sum_j 2 (x_i - y_j) eta_i
    expect_equal(grad(sqnorm2(s$x_i - s$y_j), Vi(eta), "Sum", s$x_i, "j"),
                 2 * (s$M * s$x - matrix(colSums(s$y), s$N, 3, byrow = TRUE)) * as.vector(eta), tolerance = 1e-12)
    # other reductions: the engine's rule, as keops_grad()
    # Max: d/dx_i max_j f_ij = -2 g (x_i - y_j*) K_ij* at the selected j*
    jst <- apply(K, 1, which.max)
    gmax <- -2 * 0.3 * (s$x - s$y[jst, ]) * K[cbind(seq_len(s$N), jst)] * as.vector(eta)
    expect_equal(grad(f, eta, "Max", s$x_i, "j"), gmax, tolerance = 1e-12)
    # LogSumExp of -g D2: sum_j softmax_ij (-2 g (x_i - y_j))
    P <- K / rowSums(K)
    glse <- -2 * 0.3 * (rowSums(P) * s$x - P %*% s$y) * as.vector(eta)
    expect_equal(grad(-g * sqdist(s$x_i, s$y_j), eta, "LogSumExp", s$x_i, "j"), glse, tolerance = 1e-10)
    # Min_ArgMin: the gradient input has 2 columns per component, the index part is ignored
    expect_equal(grad(-f, cbind(eta, 7), "Min_ArgMin", s$x_i, "j"), -gmax, tolerance = 1e-12)
    expect_equal(grad(f, eta, "ArgMax", s$x_i, "j"), 0 * s$x)
    expect_error(grad(f, eta, "KMin", s$x_i, "j"), "opstr", class = "rkeops_input_error")
    expect_error(grad(f, cbind(eta, eta), "Sum", s$x_i, "j"), "column", class = "rkeops_dimension_error")
    expect_error(grad(f, Vj(ej), "Sum", s$x_i, "j"), "indexed by \"i\"", class = "rkeops_input_error")
    expect_error(grad(f, matrix(1, s$N + 1), "Sum", s$x_i, "j"), "row", class = "rkeops_dimension_error")
    expect_error(grad(f, eta, "Sum", Vi(s$x + 1), "j"), "not a variable", class = "rkeops_input_error")
    expect_error(grad(f, eta, "Sum", 5, "j"), class = "rkeops_input_error")
  })
})

test_that("formula_only returns the formula a reduction would compile", {
  old <- get_rkeops_options("formula_only")
  set_rkeops_options(list(formula_only = TRUE))
  on.exit(set_rkeops_options(list(formula_only = old)))
  x_i <- Vi(matrix(runif(6), 3, 2)); y_j <- Vj(matrix(runif(8), 4, 2))
  res <- sum(exp(-sqdist(x_i, y_j)) * y_j, "j")
  expect_equal(res$formula, "Sum_Reduction(Mult(Exp(Minus(SqDist(V0,V1))),V1),1)")
  expect_equal(res$args, c("V0=Vi(2)", "V1=Vj(2)"))
  expect_equal(Kmin(sqdist(x_i, y_j), 3, "i")$formula, "KMin_Reduction(SqDist(V0,V1),3,0)")
  expect_equal(sumsoftmaxweight(-sqdist(x_i, y_j), "j", y_j)$formula,
               "SumSoftMaxWeight_Reduction(Minus(SqDist(V0,V1)),V1,1)")
})

test_that("reductions reject bad input with classed errors", {
  s <- lt_setup()
  D_ij <- sqdist(s$x_i, s$y_j)
  expect_error(sum(D_ij, "k"), "`index` must be", class = "rkeops_input_error")
  expect_error(sum(D_ij, index = 1), class = "rkeops_input_error")
  expect_error(sum_reduction(D_ij, NA), class = "rkeops_input_error")
  expect_error(min_argmin(D_ij, NA), class = "rkeops_input_error")
  expect_error(sum(D_ij, "j", "i"), class = "rkeops_input_error")
  expect_error(prod(D_ij), "not available", class = "rkeops_input_error")
  expect_error(sum_reduction(s$x, "j"), "must be a LazyTensor", class = "rkeops_input_error")
  expect_error(argmin(s$x, "j"), class = "rkeops_input_error")
  # parameters only: one point on each index, as RKeOps
  expect_equal(sum(Pm(c(1, 2)) * 2, "j"), matrix(c(2, 4), 1))
  expect_equal(min(Pm(c(3, -1)), "i"), matrix(c(3, -1), 1))
  expect_equal(argmin(Pm(c(3, -1)), "j"), matrix(c(0, 0), 1))
  expect_error(Kmin(D_ij, 0, "j"), "`K`", class = "rkeops_input_error")
  expect_error(Kmin(D_ij, 2.5, "j"), "`K`", class = "rkeops_input_error")
  expect_error(logsumexp(s$x_i - s$y_j, "j"), "dimension 1", class = "rkeops_dimension_error")
  expect_error(sumsoftmaxweight(D_ij, "j"), "weight", class = "rkeops_input_error")
  expect_error(sumsoftmaxweight(D_ij, "j", s$y), "Vi\\(\\) or Vj\\(\\)", class = "rkeops_input_error")
  z <- Vi(matrix(1i, s$N, 1))
  expect_error(min(z, "j"), "ComplexLazyTensor", class = "rkeops_input_error")
  expect_error(Kmin(z, 2, "j"), "ComplexLazyTensor", class = "rkeops_input_error")
  expect_error(logsumexp(z, "j"), "ComplexLazyTensor", class = "rkeops_input_error")
  expect_error(s$x_i %*% "a", class = "rkeops_input_error")
})

test_that("grad() of a complex LazyTensor is the gradient of the real inner product", {
  set.seed(707)
  N <- 4; M <- 6
  z <- matrix(complex(real = rnorm(N), imaginary = rnorm(N)))
  w <- matrix(complex(real = rnorm(M), imaginary = rnorm(M)))
  e <- complex(real = rnorm(N), imaginary = rnorm(N))
  eta <- cbind(Re(e), Im(e))                                    # interleaved (re, im)
  z_i <- Vi(z); w_j <- Vj(w)
  g <- grad(z_i * w_j, eta, "Sum", var = z_i, index = "j")
  ref <- e * Conj(sum(w))                                       # d Re(conj(e) z sum(w)) / dz
  expect_equal(g, cbind(Re(ref), Im(ref)), tolerance = 1e-12)
  # |z_i - w_j|^2 summed: its gradient in z_i is 2 sum_j (z_i - w_j) (times the real gradin)
  g2 <- grad(Mod(z_i - w_j)^2, matrix(1, N), "Sum", var = z_i, index = "j")
  ref2 <- 2 * (M * z[, 1] - sum(w))
  expect_equal(g2, cbind(Re(ref2), Im(ref2)), tolerance = 1e-12)
})

# Issue 12: PyKeOps's LazyTensor features (t(), dim(), x[k], tensordot(), kron(), derivative
# LazyTensors, sinc(), norm(), power(), sum_scheme/backend), the helpers on plain R values and
# the meanings of the vector operations on ComplexLazyTensors, each against dense R in float64
# and float32. Cases are concatenated into one LazyTensor (one kernel per direction and
# precision); the tolerance is relative to the sum of |terms| of each output entry.

ft_tol <- c(float64 = 1e-10, float32 = 2e-5)

ft_with_precision <- function(precision, code) {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old))
  set_rkeops_options(list(precision = precision))
  code
}

ft_case <- function(name, lazy, dense) list(name = name, lazy = lazy, dense = dense)

# Data: x_i (N x 3), y_j (M x 3), a_i (N x 6, per i a row-major 2 x 3 matrix), b_j (M x 12,
# a 3 x 4 matrix), e_i (N x 1); the dense references get the stacked pairs X, Y, A, B, E
# (row p = pair (i, j)) and return a matrix with one row per pair. Random sizes.
ft_check <- function(cases, precision, indices = c("j", "i")) {
  N <- sample(4:9, 1); M <- sample(5:12, 1)
  x <- matrix(rnorm(N * 3), N); y <- matrix(rnorm(M * 3), M)
  a <- matrix(rnorm(N * 6), N); b <- matrix(rnorm(M * 12), M)
  e <- matrix(runif(N, 0.5, 2), N)
  env <- list(x_i = Vi(x), y_j = Vj(y), a_i = Vi(a), b_j = Vj(b), e_i = Vi(e))
  pi_ <- rep(seq_len(N), M); pj_ <- rep(seq_len(M), each = N)
  P <- list(X = x[pi_, , drop = FALSE], Y = y[pj_, , drop = FALSE], A = a[pi_, , drop = FALSE],
            B = b[pj_, , drop = FALSE], E = e[pi_, , drop = FALSE])
  lazies <- lapply(cases, function(cs) do.call(cs$lazy, env))
  Fs <- lapply(cases, function(cs) { v <- do.call(cs$dense, P); if (is.null(dim(v))) matrix(v, nrow(P$X)) else v })
  for (k in seq_along(cases)) {
    expect_equal(lazies[[k]]$dimres, ncol(Fs[[k]]), label = paste("dimension of", cases[[k]]$name))
    expect_equal(dim(lazies[[k]]), if (ncol(Fs[[k]]) == 1) c(N, M) else c(N, M, ncol(Fs[[k]])),
                 label = paste("dim() of", cases[[k]]$name))
  }
  big <- Reduce(concat, lazies)
  F <- do.call(cbind, Fs)
  cols <- rep(vapply(cases, `[[`, "", "name"), vapply(Fs, ncol, 1))
  ft_with_precision(precision, for (index in indices) {
    by <- if (index == "j") pi_ else pj_
    res <- sum(big, index = index)
    ref <- rowsum(F, by, reorder = TRUE)
    err <- abs(res - ref) / (rowsum(abs(F), by, reorder = TRUE) + 1e-300)
    worst <- tapply(apply(err, 2, max), cols, max)
    for (nm in names(worst)) {
      expect_true(worst[[nm]] <= ft_tol[[precision]],
                  label = sprintf("%s (%s, index %s): error %.3g", nm, precision, index, worst[[nm]]))
    }
  })
}

# Row by row over the pairs.
ft_rows <- function(f) function(...) {
  a <- list(...)
  t(vapply(seq_len(nrow(a[[1]])), function(p) f(lapply(a, function(m) m[p, ])),
           numeric(length(f(lapply(a, function(m) m[1,]))))))
}
ft_gauss <- function(X, Y) exp(-rowSums((X - Y)^2))
ft_rm <- function(v, r, c) matrix(v, r, c, byrow = TRUE)   # a row-major matrix from its values

ft_cases <- list(
  ft_case("x[2]", function(x_i, y_j, ...) x_i[2] * y_j, function(X, Y, ...) X[, 2] * Y),
  ft_case("y[2:3]", function(x_i, y_j, ...) y_j[2:3] - x_i[1], function(X, Y, ...) Y[, 2:3] - X[, 1]),
  ft_case("x[c(3,1)]", function(x_i, y_j, ...) x_i[c(3, 1)] + y_j[3:2], function(X, Y, ...) X[, c(3, 1)] + Y[, 3:2]),
  ft_case("concat", function(x_i, y_j, ...) concat(x_i, y_j), function(X, Y, ...) cbind(X, Y)),
  ft_case("sinc", function(x_i, y_j, ...) sinc(x_i - y_j), function(X, Y, ...) { u <- pi * (X - Y); ifelse(u == 0, 1, sin(u) / u) }),
  ft_case("norm", function(x_i, y_j, ...) norm(x_i - y_j), function(X, Y, ...) sqrt(rowSums((X - Y)^2))),
  ft_case("power 3", function(x_i, y_j, ...) power(x_i - y_j, 3), function(X, Y, ...) (X - Y)^3),
  ft_case("power 1.5", function(x_i, y_j, ...) power(abs(x_i) + y_j^2, 1.5), function(X, Y, ...) (abs(X) + Y^2)^1.5),
  ft_case("tensordot", function(a_i, b_j, ...) tensordot(a_i, b_j, c(2, 3), c(3, 4), 2, 1),
          function(A, B, ...) ft_rows(function(r) as.vector(t(ft_rm(r[[1]], 2, 3) %*% ft_rm(r[[2]], 3, 4))))(A, B)),
  ft_case("tensordot perm", function(a_i, b_j, ...) tensordot(a_i, b_j, c(2, 3), c(3, 4), 2, 1, permute = c(2, 1)),
          function(A, B, ...) ft_rows(function(r) as.vector(ft_rm(r[[1]], 2, 3) %*% ft_rm(r[[2]], 3, 4)))(A, B)),
  ft_case("tensordot 2 axes", function(a_i, b_j, ...) tensordot(a_i, b_j[1:6], c(2, 3), c(2, 3), c(1, 2), c(1, 2)),
          function(A, B, ...) rowSums(A * B[, 1:6])),
  ft_case("kron", function(a_i, b_j, ...) kron(a_i, b_j, c(2, 3), c(3, 4)),
          function(A, B, ...) ft_rows(function(r) as.vector(t(kronecker(ft_rm(r[[1]], 2, 3), ft_rm(r[[2]], 3, 4)))))(A, B)),
  ft_case("grad x", function(x_i, y_j, e_i, ...) grad(exp(-sqdist(x_i, y_j)), e_i, var = x_i),
          function(X, Y, E, ...) -2 * (X - Y) * ft_gauss(X, Y) * as.vector(E)),
  ft_case("grad y", function(x_i, y_j, ...) grad(exp(-sqdist(x_i, y_j)), 1, var = y_j),
          function(X, Y, ...) 2 * (X - Y) * ft_gauss(X, Y)),
  ft_case("diff", function(x_i, y_j, ...) diff(exp(-sqdist(x_i, y_j)), x_i, c(1, -2, 0.5)),
          function(X, Y, ...) -2 * ((X - Y) %*% c(1, -2, 0.5)) * ft_gauss(X, Y)),
  ft_case("laplacian", function(x_i, y_j, ...) laplacian(exp(-sqdist(x_i, y_j)), x_i),
          function(X, Y, ...) (4 * rowSums((X - Y)^2) - 6) * ft_gauss(X, Y)),
  ft_case("divergence", function(x_i, y_j, ...) divergence(exp(x_i) * y_j, x_i), function(X, Y, ...) rowSums(exp(X) * Y)),
  ft_case("plain helpers as LazyTensors", function(x_i, y_j, ...) sqnorm2(c(1, 2)) * x_i + sqdist(3, y_j) + clamp(2.5, 0, 1),
          function(X, Y, ...) 5 * X + rowSums((3 - Y)^2) + 1)
)

test_that("PyKeOps's LazyTensor features match dense R in float64 and float32", {
  set.seed(1201)
  for (precision in c("float64", "float32")) ft_check(ft_cases, precision)
})

test_that("t() swaps i and j, and combines with the original", {
  set.seed(1202)
  x <- matrix(rnorm(15), 5, 3); y <- matrix(rnorm(24), 8, 3)
  K <- exp(-sqdist(Vi(x), Vj(y))) * Vj(y[, 1])
  Kd <- exp(-outer(rowSums(x^2), rowSums(y^2), "+") + 2 * x %*% t(y)) * rep(y[, 1], each = 5)
  expect_equal(dim(t(K)), c(8L, 5L))
  expect_equal(dim(t(Vi(x))), c(1L, 5L, 3L))
  expect_identical(t(Pm(2))$formula, Pm(2)$formula)
  for (precision in c("float64", "float32")) ft_with_precision(precision, {
    tol <- ft_tol[[precision]] * 10
    expect_equal(sum(t(K), "j"), matrix(colSums(Kd)), tolerance = tol)
    expect_equal(sum(t(K), "i"), matrix(rowSums(Kd)), tolerance = tol)
    # on a square matrix: K + t(K) is symmetric, and t(K) is not K
    S <- exp(-sqdist(Vi(x), Vj(x))) * Vj(x[, 2])
    Sd <- exp(-as.matrix(dist(x))^2) * rep(x[, 2], each = 5)
    expect_equal(sum(S + t(S), "j"), matrix(rowSums(Sd + t(Sd))), tolerance = tol)
    expect_equal(sum(t(S), "j"), matrix(colSums(Sd)), tolerance = tol)
    expect_false(isTRUE(all.equal(sum(t(S), "j"), sum(S, "j"))))
  })
  z <- t(Vi(matrix(1i, 3, 2)))
  expect_true(is.ComplexLazyTensor(z))
  expect_equal(dim(z), c(1L, 3L, 2L))
})

test_that("indexing, tensordot, kron and the derivatives reject bad input with classed errors", {
  x_i <- Vi(matrix(1, 3, 3)); y_j <- Vj(matrix(1, 4, 3)); a_i <- Vi(matrix(1, 3, 6))
  expect_error(x_i[0], "positive", class = "rkeops_input_error")
  expect_error(x_i[4], "out of range", class = "rkeops_dimension_error")
  expect_error(x_i[1.5], class = "rkeops_input_error")
  expect_error(x_i[1, 2], class = "rkeops_input_error")
  expect_error(tensordot(a_i, a_i, c(2, 3), c(3, 2), 2, 2), "different sizes", class = "rkeops_dimension_error")
  expect_error(tensordot(a_i, a_i, c(2, 2), c(2, 3), 1, 1), class = "rkeops_dimension_error")
  expect_error(tensordot(a_i, a_i, c(2, 3), c(2, 3), 3, 1), "axes between 1 and 2", class = "rkeops_input_error")
  expect_error(tensordot(a_i, a_i, c(2, 3), c(2, 3), 1, 1, permute = c(1, 1)), class = "rkeops_input_error")
  expect_error(kron(a_i, a_i, c(2, 3), 6), "as many axes", class = "rkeops_input_error")
  expect_error(kron(a_i, a_i, c(2, 2), c(2, 3)), class = "rkeops_dimension_error")
  expect_error(laplacian(x_i - y_j, x_i + 1), "variable", class = "rkeops_input_error")
  expect_error(laplacian(x_i, y_j), "dimension 1", class = "rkeops_dimension_error")   # not scalar
  expect_error(divergence(sqnorm2(x_i - y_j), x_i), class = "rkeops_dimension_error")
  expect_error(grad(sqdist(x_i, y_j), 1, opstr = "Min", var = x_i), "index", class = "rkeops_input_error")
  expect_error(diff(x_i, x_i), "direction", class = "rkeops_input_error")
  expect_identical(diff(c(1, 4, 9)), c(3, 5))                                  # base R
  expect_identical(norm(matrix(1:4, 2)), base::norm(matrix(1:4, 2)))
  expect_identical(power(0.5)$name, stats::power(0.5)$name)                   # stats::power
  expect_identical(power(2, 10), 1024)
  expect_error(sinc("a"), class = "rkeops_input_error")
})

test_that("sum_scheme and backend apply to one LazyTensor reduction", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  set.seed(1203)
  n <- 3000
  x <- matrix(runif(n), n, 1); y <- matrix(runif(n), n, 1)
  K <- exp(-sqdist(Vi(x), Vj(y)))
  ref <- rowSums(exp(-outer(x[, 1], y[, 1], "-")^2))
  rkeops_use_float32()
  for (scheme in c("direct_sum", "block_sum", "kahan_scheme")) {
    res <- sum(K, "j", sum_scheme = scheme)
    expect_lt(max(abs(res - ref) / ref), if (scheme == "direct_sum") 1e-4 else 1e-6)
  }
  res <- sum_reduction(K, "j", sum_scheme = "kahan_scheme", backend = "CPU")
  expect_lt(max(abs(res - ref) / ref), 1e-6)
  expect_equal(reduction(K, "Sum", "i", sum_scheme = "kahan_scheme", backend = "CPU"),
               matrix(colSums(exp(-outer(x[, 1], y[, 1], "-")^2))), tolerance = 1e-6)
  expect_equal(argKmin(sqdist(Vi(x), Vj(y)), 2, "j", backend = "CPU")[, 1],
               apply(abs(outer(x[, 1], y[, 1], "-")), 1, which.min) - 1)
  before <- get_rkeops_options("backend")
  sum(K, "j", backend = "CPU")
  expect_identical(get_rkeops_options("backend"), before)                     # for this call only
  expect_error(sum(K, "j", sum_scheme = "fast"), class = "rkeops_option_error")
  expect_error(sum(K, "j", backend = "TPU"), "backend", class = "rkeops_option_error")
  expect_error(logsumexp(K, "j", backend = 1), class = "rkeops_option_error")
  if (!isTRUE(tryCatch(rkeops:::.rk_gpu_usable(), error = function(e) FALSE))) {
    expect_error(sum(K, "j", backend = "GPU"), class = "rkeops_gpu_error")
    expect_identical(get_rkeops_options("backend"), before)
  }
})

test_that("helpers compute on plain R values, or build LazyTensors from numbers, as RKeOps", {
  v <- c(-2, -0.5, 0, 0.25, 3)
  m <- matrix(c(0, 0.5, 2, 4, 1, 9), 2, 3)
  plain <- list(
    square = function(u) u^2, inv = function(u) 1 / u, relu = function(u) pmax(u, 0),
    rsqrt = function(u) ifelse(u == 0, 0, 1 / sqrt(u)),
    xlogx = function(u) ifelse(u == 0, 0, u * log(u)), sinxdivx = function(u) ifelse(u == 0, 1, sin(u) / u)
  )
  for (nm in names(plain)) {
    f <- getExportedValue("rkeops", nm)
    u <- if (nm %in% c("rsqrt", "xlogx")) abs(v) else v
    expect_equal(f(u), plain[[nm]](u), label = paste(nm, "of a vector"))
    expect_equal(f(m), plain[[nm]](m), label = paste(nm, "of a matrix"))   # dimensions kept
    expect_equal(f(2), plain[[nm]](2), label = paste(nm, "of a number"))
    expect_error(f("a"), "applies to a LazyTensor or to numbers", class = "rkeops_input_error")
    # the same values as the formula operation, in both precisions (grid values: exact in float32)
    w <- matrix(c(0, 0.25, 0.5, 1, 2, 4), 6, 1)
    for (precision in c("float64", "float32")) ft_with_precision(precision, {
      lazy <- sum(f(Vi(w)) * Vj(matrix(1, 1, 1)), "j")
      expect_equal(lazy, f(w), tolerance = ft_tol[[precision]] * 10, label = paste(nm, precision))
    })
  }
  for (nm in c("sqnorm2", "norm2", "normalize", "argmin", "argmax")) {
    expect_true(is.LazyTensor(getExportedValue("rkeops", nm)(c(3, 1, 2))), label = nm)
  }
  expect_true(is.LazyTensor(clampint(2, 0, 1)))
  expect_true(is.LazyTensor(weightedsqdist(c(1, 2), c(0, 1), 2)))
  one <- Vi(matrix(1, 2, 1))
  expect_equal(sum(weightedsqnorm(c(1, 2), c(2, 3)) * one, "j"), matrix(14, 2, 1))
  expect_equal(sum(argmax(c(3, 5, 2)) * one, "j"), matrix(1, 2, 1))           # 0-based
  expect_equal(sum(normalize(c(3, 4)) * one, "j"), matrix(c(0.6, 0.8), 2, 2, byrow = TRUE))
})

# ---- ComplexLazyTensors ---------------------------------------------------------------------

ft_cw <- function(f) function(Z) {
  r <- complex(real = f(Re(Z)), imaginary = f(Im(Z)))
  dim(r) <- dim(Z)
  r
}
ft_cdim <- function(Z) matrix(Z, nrow(as.matrix(Z)))

test_that("vector operations of ComplexLazyTensors have their complex meaning; real functions act on (re, im)", {
  set.seed(1204)
  for (precision in c("float64", "float32")) {
    N <- sample(3:6, 1); M <- sample(4:8, 1)
    z <- matrix(complex(real = rnorm(2 * N), imaginary = rnorm(2 * N)), N, 2)
    w <- matrix(complex(real = rnorm(2 * M), imaginary = rnorm(2 * M)), M, 2)
    q <- matrix(complex(real = runif(2 * N, 0.5, 2), imaginary = runif(2 * N, 0.5, 2)), N, 2)  # re, im > 0
    z_i <- Vi(z); w_j <- Vj(w); q_i <- Vi(q)
    pi_ <- rep(seq_len(N), M); pj_ <- rep(seq_len(M), each = N)
    Z <- z[pi_, , drop = FALSE]; W <- w[pj_, , drop = FALSE]; Q <- q[pi_, , drop = FALSE]
    S <- matrix(c(2, 0.5, 0.5, 1), 2)                       # a symmetric weight, row-major
    wsq <- function(U, s) {
      if (length(s) == 4) return(Re(rowSums(Conj(U) * (U %*% S))))
      rowSums(matrix(s, nrow(U), 2, byrow = TRUE) * Mod(U)^2)
    }
    cases <- list(
      list("z[2]", z_i[2] * w_j[1], Z[, 2] * W[, 1]),
      list("z[2:1]", z_i[2:1] - w_j, Z[, 2:1] - W),
      list("t(t(z))", t(t(z_i)) + w_j, Z + W),
      list("sqnorm2", sqnorm2(z_i - w_j), rowSums(Mod(Z - W)^2)),
      list("norm2", norm2(z_i * w_j), sqrt(rowSums(Mod(Z * W)^2))),
      list("norm", norm(z_i), sqrt(rowSums(Mod(Z)^2))),
      list("sqdist", sqdist(z_i, w_j), rowSums(Mod(Z - W)^2)),
      list("normalize", normalize(z_i + w_j), (Z + W) / sqrt(rowSums(Mod(Z + W)^2))),
      list("weightedsqnorm 1", weightedsqnorm(z_i, 3), wsq(Z, 3)),
      list("weightedsqnorm d", weightedsqnorm(w_j, c(1, 2)), wsq(W, c(1, 2))),
      list("weightedsqnorm d^2", weightedsqnorm(z_i, as.vector(t(S))), wsq(Z, S)),
      list("weightedsqdist", weightedsqdist(z_i, w_j, c(2, 0.5)), wsq(Z - W, c(2, 0.5))),
      list("square", square(z_i + w_j), ft_cw(function(u) u^2)(Z + W)),
      list("^2", (z_i + w_j)^2, ft_cw(function(u) u^2)(Z + W)),
      list("^3", z_i^3, ft_cw(function(u) u^3)(Z)),
      list("^0.5", abs(z_i)^0.5, sqrt(Mod(Z))),
      list("sqrt", sqrt(q_i) * w_j, ft_cw(sqrt)(Q) * W),
      list("cos", cos(z_i), ft_cw(cos)(Z)),
      list("sin", sin(w_j), ft_cw(sin)(W)),
      list("log", log(q_i) + w_j, ft_cw(log)(Q) + W),
      list("inv", inv(q_i) - w_j, ft_cw(function(u) 1 / u)(Q) - W),
      list("round", round(z_i * 4), ft_cw(function(u) sign(u) * floor(abs(u) + 0.5))(Z * 4)),
      list("step", step(z_i), ft_cw(function(u) as.numeric(u >= 0))(Z)),
      list("relu", relu(z_i), ft_cw(function(u) pmax(u, 0))(Z)),
      list("mod", mod(z_i, 0.75), ft_cw(function(u) u %% 0.75)(Z)),
      list("%%", z_i %% 1.5, ft_cw(function(u) u %% 1.5)(Z)),
      list("|", (z_i | w_j), rowSums(Re(Z) * Re(W) + Im(Z) * Im(W))),
      list("min", min(z_i - w_j), pmin(apply(Re(Z - W), 1, min), apply(Im(Z - W), 1, min))),
      list("max", max(z_i), pmax(apply(Re(Z), 1, max), apply(Im(Z), 1, max)))
    )
    for (cs in cases) {
      ref <- ft_cdim(cs[[3]])
      cx <- is.complex(ref)
      expect_identical(is.ComplexLazyTensor(cs[[2]]), cx, label = paste(cs[[1]], "is complex"))
      expect_equal(cs[[2]]$dimres, ncol(ref), label = paste(cs[[1]], "dimension"))
    }
    # one kernel: complex results as they are, real ones made complex
    big <- Reduce(concat, lapply(cases, function(cs) if (is.ComplexLazyTensor(cs[[2]])) cs[[2]] else real2complex(cs[[2]])))
    F <- do.call(cbind, lapply(cases, function(cs) ft_cdim(cs[[3]]) + 0i))
    Fi <- cbind(Re(F), Im(F))[, as.vector(rbind(seq_len(ncol(F)), ncol(F) + seq_len(ncol(F))))]
    cols <- rep(vapply(cases, `[[`, "", 1), 2 * vapply(cases, function(cs) ncol(ft_cdim(cs[[3]])), 1))
    ft_with_precision(precision, for (index in c("j", "i")) {
      by <- if (index == "j") pi_ else pj_
      res <- sum(big, index = index)
      err <- abs(res - rowsum(Fi, by, reorder = TRUE)) / (rowsum(abs(Fi), by, reorder = TRUE) + 1e-300)
      worst <- tapply(apply(err, 2, max), cols, max)
      for (nm in names(worst)) {
        expect_true(worst[[nm]] <= ft_tol[[precision]] * 10,
                    label = sprintf("%s (%s, index %s): error %.3g", nm, precision, index, worst[[nm]]))
      }
    })
  }
})

test_that("what has no meaning on ComplexLazyTensors stays a classed error", {
  z_i <- Vi(matrix(1i, 3, 2)); x_i <- Vi(matrix(1, 3, 2))
  expect_error(atan2(z_i, z_i), "ComplexLazyTensor", class = "rkeops_input_error")
  expect_error(tan(z_i), "ComplexLazyTensor", class = "rkeops_input_error")
  expect_error(z_i^z_i, class = "rkeops_input_error")
  expect_error(z_i < z_i, class = "rkeops_input_error")
  expect_error(sqdist(z_i, x_i), "two ComplexLazyTensors", class = "rkeops_input_error")
  expect_error(mod(z_i, z_i), "must be real", class = "rkeops_input_error")
  expect_error(weightedsqnorm(z_i, z_i), class = "rkeops_input_error")
  expect_error(min(z_i, "j"), "ComplexLazyTensor", class = "rkeops_input_error")
})

test_that("backend = \"GPU\" on one reduction gives the CPU's result (GPU machines only)", {
  skip_if_not(isTRUE(tryCatch(rkeops:::.rk_gpu_usable(), error = function(e) FALSE)), "no usable GPU")
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  rkeops_use_cpu()
  set.seed(1205)
  x <- matrix(rnorm(300), 100, 3); y <- matrix(rnorm(600), 200, 3)
  K <- exp(-sqdist(Vi(x), Vj(y)))
  for (precision in c("float64", "float32")) ft_with_precision(precision, {
    cpu <- sum(K, "j")
    expect_equal(sum(K, "j", backend = "GPU"), cpu, tolerance = ft_tol[[precision]] * 10)
    expect_equal(sum(K, "j", backend = "GPU_1D", sum_scheme = "kahan_scheme"), cpu, tolerance = ft_tol[[precision]] * 10)
    expect_identical(get_rkeops_options("backend"), "CPU")
  })
})

# Every reduction of the engine against the dense references of helper-reference.R
# (rkt_reductions), both axes in float64 and one axis (alternating) in float32; result shapes as
# RKeOps returns them; 0-based indices; ties; sum schemes; k-NN; the split-inner-range path
# (few output rows); N = M = 1.
#
# Data: "grid" data (multiples of 1/4) make every term exact in float32 and float64, so indices
# and min/max/KMin values must match exactly, ties included (the first index wins, as KeOps).
# "real" data (float64 only) are continuous. "big" data make exp() overflow unless the
# log-sum-exp family shifts by the running maximum.
# Tolerances: indices exact; values |got - ref| <= tol * scale_c per output column c, with
# tol = 1e-12 (float64) or 1e-5 (float32) and scale_c = max(1, max |ref_c|), or for Sum the
# largest sum of |terms| of the column.

rkt_red_cases <- list(
  list(red = "Sum", f = "x-y", d = 2),
  list(red = "Min", f = "x-y", d = 2),
  list(red = "Max", f = "x-y", d = 2),
  list(red = "ArgMin", f = "x-y", d = 2),
  list(red = "ArgMax", f = "x-y", d = 2),
  list(red = "Min_ArgMin", f = "x-y", d = 2),
  list(red = "Max_ArgMax", f = "x-y", d = 2),
  list(red = "KMin", f = "SqDist(x,y)", d = 1, K = 3),
  list(red = "ArgKMin", f = "SqDist(x,y)", d = 1, K = 3),
  list(red = "KMin_ArgKMin", f = "SqDist(x,y)", d = 1, K = 3),
  list(red = "KMin", f = "x-y", d = 2, K = 2),
  list(red = "ArgKMin", f = "x-y", d = 2, K = 2),
  list(red = "KMin_ArgKMin", f = "x-y", d = 2, K = 2),
  list(red = "LogSumExp", f = "(x|y)", d = 1),
  list(red = "Max_SumShiftExp", f = "(x|y)", d = 1),
  list(red = "SumSoftMaxWeight", f = "(x|y)", d = 1, w = 2),
  list(red = "LogSumExpWeight", f = "(x|y)", d = 1, w = 2),
  list(red = "Max_SumShiftExpWeight", f = "(x|y)", d = 1, w = 2),
  list(red = "Zero", f = "x-y", d = 2)   # zeros of F's dimension (also Zero_Reduction(dim, axis))
)

# The R value of the terms F (pair-expanded: row p = (i, j), i fastest).
rkt_red_terms <- function(f, X, Y) {
  switch(f,
         "x-y" = X - Y,
         "SqDist(x,y)" = matrix(rowSums((X - Y)^2)),
         "(x|y)" = matrix(rowSums(X * Y)))
}

# The formula of a case; `order` "FWA" writes (F, W, axis), "FAW" writes (F, axis, W).
rkt_red_formula <- function(cs, axis, order = "FWA") {
  mid <- if (!is.null(cs$K)) paste0(",", cs$K) else ""
  if (!is.null(cs$w)) {
    return(if (order == "FWA") sprintf("%s_Reduction(%s,w,%d)", cs$red, cs$f, axis)
           else sprintf("%s_Reduction(%s,%d,w)", cs$red, cs$f, axis))
  }
  sprintf("%s_Reduction(%s%s,%d)", cs$red, cs$f, mid, axis)
}
rkt_red_args <- function(cs, axis) {
  c("x=Vi(2)", "y=Vj(2)", if (!is.null(cs$w)) sprintf("w=%s(%d)", if (axis == 1) "Vj" else "Vi", cs$w))
}

rkt_red_data <- function(kind, N, M, wdim, axis) {
  gen <- switch(kind, grid = rkt_domains$grid, real = rkt_domains$real,
                big = function(n) 20 * rkt_domains$grid(n))
  x <- matrix(gen(2 * N), N)
  y <- matrix(gen(2 * M), M)
  w <- if (wdim > 0) matrix(rkt_domains$pos(wdim * (if (axis == 1) M else N)), ncol = wdim)
  list(x = x, y = y, w = w)
}

# Dense reference of a case on data (rounded to float32 first when precision is float32).
rkt_red_reference <- function(cs, dat, axis, precision) {
  if (precision == "float32") dat <- lapply(dat, function(v) if (is.null(v)) v else rkt_f32(v))
  N <- nrow(dat$x)
  M <- nrow(dat$y)
  X <- dat$x[rep(seq_len(N), times = M), , drop = FALSE]
  Y <- dat$y[rep(seq_len(M), each = N), , drop = FALSE]
  A <- rkt_pair_array(rkt_red_terms(cs$f, X, Y), N, M, axis)
  W <- NULL
  if (!is.null(dat$w)) {
    Wp <- if (axis == 1) dat$w[rep(seq_len(M), each = N), , drop = FALSE] else dat$w[rep(seq_len(N), times = M), , drop = FALSE]
    W <- rkt_pair_array(Wp, N, M, axis)
  }
  ref <- rkt_reductions[[cs$red]]$ref(A, W, cs$K)
  sumabs <- if (cs$red == "Sum") rkt_reductions$Sum$ref(abs(A), W, cs$K)
  list(value = ref, sumabs = sumabs)
}

# The shape RKeOps gives (notes/rkeops-api.md), written out independently of the references.
rkt_red_dims <- function(cs, n) {
  d <- cs$d
  K <- cs$K
  kd <- if (!is.null(K)) (if (d == 1) c(n, K) else c(n, K, d))
  switch(cs$red,
         Sum = , Zero = , Min = , Max = , ArgMin = , ArgMax = list(c(n, d)),
         Min_ArgMin = , Max_ArgMax = list(c(n, d), c(n, d)),
         KMin = , ArgKMin = list(kd),
         KMin_ArgKMin = list(kd, kd),
         LogSumExp = list(c(n, 1)),
         Max_SumShiftExp = list(c(n, 2)),
         SumSoftMaxWeight = , LogSumExpWeight = list(c(n, cs$w)),
         Max_SumShiftExpWeight = list(c(n, 1 + cs$w)))
}

rkt_is_index <- function(red, part) {
  red %in% c("ArgMin", "ArgMax", "ArgKMin") || (red %in% c("Min_ArgMin", "Max_ArgMax", "KMin_ArgKMin") && part == 2)
}

expect_rkt_reduction <- function(cs, got, ref, n, precision, what) {
  dims <- rkt_red_dims(cs, n)
  parts <- if (length(dims) == 2) got else list(got)
  refs <- if (length(dims) == 2) ref$value else list(ref$value)
  if (length(dims) == 2) {
    expect_true(is.list(got) && length(got) == 2, label = paste(what, ": a list of 2"))
    if (!(is.list(got) && length(got) == 2)) return(invisible())
  }
  tol <- if (precision == "float64") 1e-12 else 1e-5
  for (k in seq_along(dims)) {
    expect_equal(dim(parts[[k]]), dims[[k]], label = paste(what, "part", k, "dims"))
    if (!identical(dim(parts[[k]]), as.integer(dims[[k]]))) next
    if (rkt_is_index(cs$red, k)) {
      expect_true(is.double(parts[[k]]), label = paste(what, "indices are doubles"))
      expect_rkt_close(parts[[k]], refs[[k]], 0, 1, what = paste(what, "indices (0-based)"))
    } else {
      r <- refs[[k]]
      if (length(dim(r)) == 2) {
        scale <- if (!is.null(ref$sumabs)) apply(ref$sumabs, 2, max) else pmax(1, apply(abs(r), 2, max))
      } else {
        scale <- max(1, abs(r))
      }
      expect_rkt_close(parts[[k]], r, tol, scale, what = paste(what, "values"))
    }
  }
}

test_that("the reduction table covers every reduction of the engine", {
  engine <- rkeops:::.rk_call("rk_op_table")$reductions
  expect_equal(setdiff(engine, names(rkt_reductions)), character(0))
  expect_equal(setdiff(engine, vapply(rkt_red_cases, `[[`, "", "red")), character(0))
})

test_that("every reduction matches dense R: both axes, float64 and float32, shapes, 0-based indices", {
  seed <- 4242
  set.seed(seed)
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  sizes <- list(c(1, 7), c(7, 1), c(33, 1031), c(517, 33), c(7, 517), c(1031, 7), c(3, 33))
  for (k in seq_along(rkt_red_cases)) {
    cs <- rkt_red_cases[[k]]
    for (precision in c("float64", "float32")) {
      set_rkeops_options(list(precision = precision))
      # float32: one axis per case, alternating (each axis is a separate kernel)
      axes <- if (precision == "float64") c(1, 0) else ((k + 1) %% 2)
      for (axis in axes) {
        orders <- if (!is.null(cs$w) && cs$red == "SumSoftMaxWeight") c("FWA", "FAW") else "FWA"
        for (ord in orders) {
          op <- keops_kernel(rkt_red_formula(cs, axis, ord), rkt_red_args(cs, axis))
          kinds <- c("grid", if (precision == "float64") "real", if (!is.null(cs$w) || cs$red %in% c("LogSumExp", "Max_SumShiftExp")) "big")
          for (kind in kinds) {
            NM <- sample(sizes, 1)[[1]]
            K <- if (is.null(cs$K)) 1 else cs$K
            if (axis == 1) NM[2] <- max(NM[2], K) else NM[1] <- max(NM[1], K)
            N <- NM[1]
            M <- NM[2]
            dat <- rkt_red_data(kind, N, M, if (is.null(cs$w)) 0 else cs$w, axis)
            got <- op(Filter(Negate(is.null), dat))
            ref <- rkt_red_reference(cs, dat, axis, precision)
            expect_rkt_reduction(cs, got, ref, if (axis == 1) N else M, precision,
                                 sprintf("%s, %s, %s data, N = %d, M = %d, seed %d",
                                         rkt_red_formula(cs, axis, ord), precision, kind, N, M, seed))
          }
        }
      }
    }
  }
})

test_that("ties go to the first index (Min_ArgMin, ArgKMin) in both precisions", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  # column 1 of x - y is smallest at j = 0, 2, 4 and column 2 at j = 1, 3, 5 (0-based), for
  # every x: each minimum is tied three times
  x <- matrix(c(1, 2, 3, 1, 1, 1), 3)
  y <- matrix(c(5, 1, 5, 1, 5, 1, 1, 9, 1, 9, 1, 9), 6)
  for (precision in c("float64", "float32")) {
    set_rkeops_options(list(precision = precision))
    mam <- keops_kernel("Min_ArgMin_Reduction(x-y,1)", c("x=Vi(2)", "y=Vj(2)"))(list(x, y))
    expect_equal(mam[[1]], cbind(x[, 1] - 5, -8))
    expect_equal(mam[[2]], cbind(c(0, 0, 0), c(1, 1, 1)))
    akm <- keops_kernel("ArgKMin_Reduction(x-y,2,1)", c("x=Vi(2)", "y=Vj(2)"))(list(x, y))
    expect_equal(akm[, , 1], matrix(c(0, 2), 3, 2, byrow = TRUE))
    expect_equal(akm[, , 2], matrix(c(1, 3), 3, 2, byrow = TRUE))
  }
})

test_that("K-min keeps the indices of +Inf and NaN candidates (NaN counts as +Inf; after the finite ones, in index order)", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  x <- matrix(0, 2, 1)
  for (precision in c("float64", "float32")) {
    set_rkeops_options(list(precision = precision))
    op <- keops_kernel("KMin_ArgKMin_Reduction(b, 4, 1)", c("x=Vi(1)", "b=Vj(1)"))
    res <- op(list(x, c(0.3, 0.1, Inf, 0.2)))
    expect_equal(res[[2]][1, ], c(1, 3, 0, 2))
    expect_equal(res[[1]][1, ], c(0.1, 0.2, 0.3, Inf), tolerance = 1e-7)
    km <- keops_kernel("KMin_ArgKMin_Reduction(b, 3, 1)", c("x=Vi(1)", "b=Vj(1)"))(list(x, c(NaN, 0.5, Inf, 0.2)))
    expect_equal(km[[2]][1, ], c(3, 1, 0))
    expect_equal(km[[1]][1, ], c(0.2, 0.5, Inf), tolerance = 1e-7)
    # many candidates, mostly infinite, the inner range split over threads: as order()
    set.seed(8)
    b <- rep(Inf, 5000)
    b[sample(5000, 3)] <- runif(3)
    akm <- keops_kernel("ArgKMin_Reduction(b, 6, 1)", c("x=Vi(1)", "b=Vj(1)"))(list(x, b))
    expect_equal(akm[1, ], order(b)[1:6] - 1)
    # the reduction over i, and a row with only +Inf
    expect_equal(keops_kernel("ArgKMin_Reduction(b, 3, 0)", c("b=Vi(1)", "y=Vj(1)"))(list(c(Inf, Inf, 1, Inf), 0))[1, ],
                 c(2, 0, 1))
  }
})

test_that("k nearest neighbours agree with order() of the dense distances", {
  set.seed(99)
  x <- matrix(rnorm(2 * 61), 61)
  y <- matrix(rnorm(2 * 2049), 2049)
  D2 <- outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)
  knn <- keops_kernel("ArgKMin_Reduction(SqDist(x,y),3,1)", c("x=Vi(2)", "y=Vj(2)"))
  idx <- knn(list(x, y))
  ref <- t(apply(D2, 1, function(v) order(v)[1:3])) - 1
  expect_equal(dim(idx), c(61L, 3L))
  expect_identical(idx, ref + 0)
  both <- keops_kernel("KMin_ArgKMin_Reduction(SqDist(x,y),3,1)", c("x=Vi(2)", "y=Vj(2)"))(list(x, y))
  expect_identical(both[[2]], ref + 0)
  expect_equal(both[[1]], t(apply(D2, 1, function(v) sort(v)[1:3])), tolerance = 1e-12)
  # the same query points against themselves: the nearest is the point itself
  self <- knn(list(y[1:40, ], y))
  expect_equal(self[, 1], 0:39)
})

test_that("few output rows (the inner range split over threads/chunks) give the same results", {
  set.seed(5)
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  cases <- rkt_red_cases[vapply(rkt_red_cases, function(cs) {
    (cs$red %in% c("Sum", "Min_ArgMin", "LogSumExp", "SumSoftMaxWeight")) ||
      (cs$red %in% c("ArgKMin", "KMin_ArgKMin") && cs$d == 1)
  }, TRUE)]
  for (cs in cases) {
    for (axis in c(1, 0)) {
      for (kind in c("grid", "real")) {
        N <- if (axis == 1) 3 else 20000
        M <- if (axis == 1) 20000 else 3
        dat <- rkt_red_data(kind, N, M, if (is.null(cs$w)) 0 else cs$w, axis)
        op <- keops_kernel(rkt_red_formula(cs, axis), rkt_red_args(cs, axis))
        got <- op(Filter(Negate(is.null), dat))
        ref <- rkt_red_reference(cs, dat, axis, "float64")
        expect_rkt_reduction(cs, got, ref, 3, "float64",
                             sprintf("%s, %s data, N = %d, M = %d", rkt_red_formula(cs, axis), kind, N, M))
      }
    }
  }
  # and with both threads busy (N * M above the one-thread threshold), float32 too
  rkeops_use_cpu(2)
  cs <- rkt_red_cases[[10]]  # KMin_ArgKMin of SqDist, K = 3
  dat <- rkt_red_data("grid", 3, 100003, 0, 1)
  for (precision in c("float64", "float32")) {
    set_rkeops_options(list(precision = precision))
    got <- keops_kernel(rkt_red_formula(cs, 1), rkt_red_args(cs, 1))(dat[1:2])
    expect_rkt_reduction(cs, got, rkt_red_reference(cs, dat, 1, precision), 3, precision,
                         sprintf("%s, N = 3, M = 100003, %s", rkt_red_formula(cs, 1), precision))
  }
})

test_that("N = M = 1 works for every kind of reduction", {
  x <- matrix(c(0.5, 2), 1)
  y <- matrix(c(1.5, -1), 1)
  w <- matrix(c(3, 4), 1)
  by_red <- function(red, d = NULL) {
    Filter(function(cs) cs$red == red && (is.null(d) || cs$d == d), rkt_red_cases)[[1]]
  }
  for (axis in c(1, 0)) {
    run <- function(cs) keops_kernel(rkt_red_formula(cs, axis), rkt_red_args(cs, axis))
    expect_equal(run(by_red("Sum"))(list(x, y)), matrix(c(-1, 3), 1))
    expect_equal(run(by_red("Min_ArgMin"))(list(x, y)), list(matrix(c(-1, 3), 1), matrix(c(0, 0), 1)))
    cs <- list(red = "KMin_ArgKMin", f = "SqDist(x,y)", d = 1, K = 1)
    expect_equal(run(cs)(list(x, y)), list(matrix(10), matrix(0)))
    expect_equal(run(by_red("LogSumExp"))(list(x, y)), matrix(-1.25))
    expect_equal(run(by_red("Max_SumShiftExp"))(list(x, y)), matrix(c(-1.25, 1), 1))
    expect_equal(run(by_red("SumSoftMaxWeight"))(list(x, y, w)), w)
    expect_equal(run(by_red("Max_SumShiftExpWeight"))(list(x, y, w)), cbind(-1.25, w))
  }
})

test_that("sum schemes: float32 block and Kahan sums over 1e5 terms stay within 1e-5 of float64", {
  set.seed(11)
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  M <- 100000
  # terms y_j - x_i are exact in float32 (Sterbenz); one huge first term makes every later
  # addition to its partial sum round: block sums lose ~2e-6 here, compensated sums ~3e-8
  y <- c(2^24, rkt_f32(runif(M - 1, 1, 2)))
  for (N in c(3, 257)) {                 # split inner range, and many row blocks
    x <- rep(c(0, 1), length.out = N)
    exact <- vapply(x, function(xi) sum(y - xi), 0)   # the terms are exact: only summation errs
    sumabs <- vapply(x, function(xi) sum(abs(y - xi)), 0)
    res <- list()
    for (precision in c("float64", "float32")) {
      set_rkeops_options(list(precision = precision))
      for (scheme in c("auto", "direct_sum", "block_sum", "kahan_scheme")) {
        op <- keops_kernel("Sum_Reduction(y-x,1)", c("x=Vi(1)", "y=Vj(1)"), sum_scheme = scheme)
        expect_identical(op()$sum_scheme, scheme)
        res[[paste(precision, scheme)]] <- got <- op(list(x, y))
        tol <- if (precision == "float64") 1e-12 else if (scheme == "kahan_scheme") 2e-7 else 1e-5
        expect_rkt_close(got, matrix(exact), tol, sumabs, what = sprintf("%s %s N = %d", precision, scheme, N))
      }
    }
    for (scheme in c("auto", "direct_sum", "block_sum", "kahan_scheme")) {
      expect_rkt_close(res[[paste("float32", scheme)]], res[["float64 auto"]], 1e-5, sumabs,
                       what = sprintf("float32 %s vs float64", scheme))
    }
  }
})

test_that("K-min reductions with large K: loops, exact against order(), code size independent of K", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  set.seed(31)
  x <- matrix(runif(2 * 7), 7); y <- matrix(runif(2 * 900), 900)
  D <- outer(seq_len(7), seq_len(900), function(i, j) rowSums((x[i, ] - y[j, ])^2))
  for (precision in c("float64", "float32")) {
    set_rkeops_options(list(precision = precision))
    tol <- if (precision == "float64") 1e-12 else 1e-5
    K <- 300   # beyond the unrolled sizes
    akm <- keops_kernel("ArgKMin_Reduction(SqDist(x,y), 300, 1)", c("x=Vi(2)", "y=Vj(2)"))(list(x, y))
    expect_equal(akm, t(apply(D, 1, function(d) order(d)[1:K] - 1)), ignore_attr = TRUE)
    # d = 2: per coordinate, K x d arrays (rank-major), values and indices
    km <- keops_kernel("KMin_ArgKMin_Reduction(x - y, 40, 1)", c("x=Vi(2)", "y=Vj(2)"))(list(x, y))
    for (k in 1:2) {
      dk <- outer(x[, k], y[, k], "-")
      expect_equal(km[[1]][, , k], t(apply(dk, 1, function(d) sort(d)[1:40])), tolerance = tol)
      expect_equal(km[[2]][, , k], t(apply(dk, 1, function(d) order(d)[1:40] - 1)))
    }
  }
  opts <- rkeops:::.rk_engine_options("auto")
  src <- function(K) nchar(rkeops:::.rk_call("rk_source", sprintf("KMin_ArgKMin_Reduction(SqDist(x,y), %d, 1)", K),
                                             c("x=Vi(2)", "y=Vj(2)"), opts))
  expect_lt(src(50000), src(100) + 2000)
  # the GPU keeps a K-min list per thread: a K too large for it is a clear error
  expect_error(rkeops:::.rk_cuda_source("ArgKMin_Reduction(SqDist(x,y), 5000, 1)", c("x=Vi(2)", "y=Vj(2)")),
               "rkeops_use_cpu", class = "rkeops_dimension_error")
})

test_that("K larger than the number of points is padded as KeOps does (+Inf, index 0)", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  x <- matrix(c(0, 1, 2, 3), 2); y <- matrix(c(0, 5, 1, 1, 0, 2), 3)
  D <- outer(1:2, 1:3, function(i, j) rowSums((x[i, ] - y[j, ])^2))
  for (precision in c("float64", "float32")) {
    set_rkeops_options(list(precision = precision))
    km <- keops_kernel("KMin_ArgKMin_Reduction(SqDist(x, y), 5, 1)", c("x=Vi(2)", "y=Vj(2)"))(list(x, y))
    expect_equal(km[[1]], cbind(t(apply(D, 1, sort)), Inf, Inf), tolerance = 1e-6)
    expect_equal(km[[2]], cbind(t(apply(D, 1, order)) - 1, 0, 0))
    expect_equal(keops_kernel("ArgKMin_Reduction(SqDist(x, y), 4, 0)", c("x=Vi(2)", "y=Vj(2)"))(list(x, y)),
                 cbind(t(apply(D, 2, order)) - 1, 0, 0))
    expect_equal(Kmin(sqdist(Vi(x), Vj(y)), 4, "j"), cbind(t(apply(D, 1, sort)), Inf), tolerance = 1e-6)
  }
})

# The GPU backend against the CPU backend (float64 1e-12, float32 1e-5), on a sample of
# formulas and reductions. Skipped where no GPU is usable.

skip_if_no_gpu <- function() {
  skip_if_not(isTRUE(tryCatch(rkeops:::.rk_gpu_usable(), error = function(e) FALSE)), "no usable GPU")
}

on_backend <- function(backend, precision, fun) {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  if (backend == "GPU") rkeops_use_gpu() else rkeops_use_cpu()
  set_rkeops_options(list(precision = precision))
  fun()
}

compare_backends <- function(formula, args, input, sum_scheme = "auto") {
  op <- keops_kernel(formula, args, sum_scheme = sum_scheme)
  for (prec in c("float64", "float32")) {
    tol <- if (prec == "float64") 1e-12 else 1e-5
    gpu <- on_backend("GPU", prec, function() op(input))
    cpu <- on_backend("CPU", prec, function() op(input))
    expect_equal(gpu, cpu, tolerance = tol, info = paste(formula, prec))
  }
}

test_that("GPU and CPU agree on formulas and reductions, both axes, float64 and float32", {
  skip_if_no_gpu()
  set.seed(404)
  nx <- 1500; ny <- 2300
  x <- matrix(rnorm(3 * nx), nx); y <- matrix(rnorm(3 * ny), ny)
  by <- matrix(runif(2 * ny), ny); bx <- matrix(runif(2 * nx), nx)
  xy <- c("x=Vi(3)", "y=Vj(3)")
  compare_backends("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c(xy, "b=Vj(2)", "g=Pm(1)"), list(x, y, by, 0.7))
  compare_backends("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 0)", c(xy, "b=Vi(2)", "g=Pm(1)"), list(x, y, bx, 0.7))
  compare_backends("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c(xy, "b=Vj(2)"), list(x, y, by), "kahan_scheme")
  compare_backends("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c(xy, "b=Vj(2)"), list(x, y, by), "direct_sum")
  compare_backends("Sum_Reduction(Sqrt(Abs(x - y)) + Log(1 + Square(x * y)) + Sin(x) * Cos(y) + Powf(Abs(x) + 1, y), 1)",
                   xy, list(x, y))
  # tensor operations with tuple parameters, B-splines and a complex gradient
  a6 <- matrix(rnorm(6 * nx), nx); b12 <- matrix(rnorm(12 * ny), ny)
  compare_backends("Sum_Reduction(TensorDot(a, b, Ind(2,3), Ind(3,4), Ind(1), Ind(0), Ind(1,0)), 1)",
                   c("a=Vi(6)", "b=Vj(12)"), list(a6, b12))
  compare_backends("Sum_Reduction(Kron(a, b, Ind(2,3), Ind(2,2)) * Elem(b, 0), 0)", c("a=Vi(6)", "b=Vj(4)"),
                   list(a6, b12[, 1:4]))
  compare_backends("Sum_Reduction(BSpline(t, Elem(x, 0) - Elem(y, 1), 3) * Elem(y, 0), 1)",
                   c("t=Pm(10)", xy), list(seq(-4, 5), x, y))
  compare_backends("Sum_Reduction(Grad(ComplexExp(ComplexMult(a, Extract(b, 0, 6))), a, e), 1)",
                   c("a=Vi(6)", "b=Vj(12)", "e=Vi(6)"), list(a6 / 4, b12 / 4, a6))
  for (axis in 0:1) {
    a <- as.character(axis)
    wv <- if (axis == 1) "w=Vj(2)" else "w=Vi(2)"
    w <- if (axis == 1) by else bx
    compare_backends(paste0("Min_ArgMin_Reduction(SqDist(x, y), ", a, ")"), xy, list(x, y))
    compare_backends(paste0("Max_ArgMax_Reduction(x - y, ", a, ")"), xy, list(x, y))
    compare_backends(paste0("ArgKMin_Reduction(SqDist(x, y), 5, ", a, ")"), xy, list(x, y))
    compare_backends(paste0("KMin_ArgKMin_Reduction(SqDist(x, y), 3, ", a, ")"), xy, list(x, y))
    compare_backends(paste0("LogSumExp_Reduction(-SqDist(x, y), ", a, ")"), xy, list(x, y))
    compare_backends(paste0("Max_SumShiftExp_Reduction(-SqDist(x, y), ", a, ")"), xy, list(x, y))
    compare_backends(paste0("SumSoftMaxWeight_Reduction(-SqDist(x, y), w, ", a, ")"), c(xy, wv), list(x, y, w))
  }
})

test_that("few queries against many points (the inner range split over blocks) and uneven sizes", {
  skip_if_no_gpu()
  set.seed(405)
  q <- matrix(runif(20 * 37), 37); p <- matrix(runif(20 * 50001), 50001)
  compare_backends("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c("x=Vi(20)", "y=Vj(20)"), list(q, p))
  compare_backends("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x=Vi(20)", "y=Vj(20)"), list(q, p))
  compare_backends("LogSumExp_Reduction(-SqDist(x, y), 0)", c("x=Vi(20)", "y=Vj(20)"), list(p, q))
  one <- matrix(runif(3), 1)
  compare_backends("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x=Vi(3)", "y=Vj(3)"), list(one, matrix(runif(30), 10)))
})

test_that("batches (one engine call: a block-sparse reduction, the arrays read in place) agree with the CPU", {
  skip_if_no_gpu()
  set.seed(406)
  x <- array(runif(8 * 300 * 3), c(8, 300, 3)); y <- array(runif(8 * 500 * 3), c(8, 500, 3))
  b <- array(runif(1 * 500 * 2), c(1, 500, 2))   # broadcast along the batch
  compare_backends("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(2)"), list(x, y, b))
  compare_backends("LogSumExp_Reduction(-SqDist(x, y), 0)", c("x=Vi(3)", "y=Vj(3)"), list(x, y))
  # indices per problem (float64: no near ties between the backends' distances)
  opi <- keops_kernel("Min_ArgMin_Reduction(SqDist(x, y), 0)", c("x=Vi(3)", "y=Vj(3)"))
  expect_equal(on_backend("GPU", "float64", function() opi(list(x, y))),
               on_backend("CPU", "float64", function() opi(list(x, y))))
  # a shared inner input held on the GPU
  ys <- matrix(runif(400 * 3), 400)
  op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 4, 1)", c("x=Vi(3)", "y=Vj(3)"))
  for (prec in c("float64", "float32")) {
    on_backend("GPU", prec, function() {
      expect_equal(op(list(x, rkeops_device(ys))), op(list(x, ys)), info = prec)
    })
  }
})

test_that("rkeops_use_gpu() selects a GPU; a device that does not exist is a classed error", {
  skip_if_no_gpu()
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  rkeops_use_gpu()
  expect_equal(get_rkeops_options("backend"), "GPU")
  expect_error(rkeops_use_gpu(device = 64), class = "rkeops_gpu_error")
  expect_error(rkeops_use_gpu(device = "a"), class = "rkeops_option_error")
})

test_that("the automatic backend is the GPU, and a GPU run reports its time split", {
  skip_if_no_gpu()
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  set_rkeops_options(list(backend = "auto"))
  expect_equal(rkeops:::.rk_backend(), "GPU")
  op <- keops_kernel("Sum_Reduction(SqDist(x, y), 1)", c("x=Vi(2)", "y=Vj(2)"))
  x <- matrix(runif(200), 100)
  expect_equal(op(list(x, x)), as.matrix(rowSums(outer(rowSums(x^2), rowSums(x^2), "+") - 2 * tcrossprod(x))),
               tolerance = 1e-10, ignore_attr = TRUE)
  last <- rkeops:::.rk_gpu_last_run()
  expect_true(last$valid)
  expect_gt(last$regs, 0)
  expect_true(check_rkeops(verbose = FALSE))
})

test_that("GPU K-min keeps the indices of +Inf and NaN candidates, as the CPU", {
  skip_if_no_gpu()
  set.seed(9)
  b <- rep(Inf, 5000)
  b[sample(5000, 3)] <- runif(3)
  b[17] <- NaN
  x <- matrix(0, 3, 1)
  for (prec in c("float64", "float32")) {
    res <- on_backend("GPU", prec, function() {
      keops_kernel("KMin_ArgKMin_Reduction(b, 6, 1)", c("x=Vi(1)", "b=Vj(1)"))(list(x, b))
    })
    expect_equal(res[[2]][1, ], order(replace(b, 17, Inf))[1:6] - 1, info = prec)
    expect_equal(res[[1]][1, 4:6], rep(Inf, 3), info = prec)
  }
  # K beyond the register-unrolled insertion (loops over a list in local memory)
  set.seed(10)
  x2 <- matrix(rnorm(2 * 300), 300); y2 <- matrix(rnorm(2 * 4000), 4000)
  compare_backends("KMin_ArgKMin_Reduction(SqDist(x, y), 100, 1)", c("x=Vi(2)", "y=Vj(2)"), list(x2, y2))
})

test_that("several GPUs: a call split over them (result rows, or the reduced index) equals one GPU", {
  skip_if_no_gpu()
  ngpu <- length(rkeops:::.rk_gpu_info(refresh = TRUE)$names)
  skip_if(ngpu < 2, "fewer than two GPUs")
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  set.seed(77)
  x <- matrix(rnorm(3 * 3e5), 3e5); y <- matrix(rnorm(3 * 2e5), 2e5); b <- runif(2e5)
  q <- matrix(rnorm(3 * 500), 500)
  gauss <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"))
  knn <- keops_kernel("KMin_ArgKMin_Reduction(SqDist(x, y), 7, 1)", c("x=Vi(3)", "y=Vj(3)"))
  for (prec in c("float64", "float32")) {
    set_rkeops_options(list(precision = prec))
    rkeops_use_gpu(0)
    one <- gauss(list(x, y, b)); one_knn <- knn(list(q, y))
    rkeops_use_gpu("all")
    expect_equal(get_rkeops_options("device_id"), seq_len(ngpu) - 1)
    expect_equal(gauss(list(x, y, b)), one, tolerance = if (prec == "float64") 1e-12 else 1e-5)   # rows split
    two_knn <- knn(list(q, y))                                                                     # j split, merged
    expect_equal(two_knn[[2]], one_knn[[2]], info = prec)
    expect_equal(two_knn[[1]], one_knn[[1]], tolerance = 1e-6, info = prec)
    # partial states on the GPU (distribute over the reduced index)
    expect_equal(knn(list(q, y), distribute = "future", split = "j", chunks = 3)[[2]], one_knn[[2]], info = prec)
  }
  expect_error(rkeops_use_gpu(c(0, 0)), class = "rkeops_option_error")
  expect_error(rkeops_use_gpu(c(0, ngpu)), class = "rkeops_gpu_error")
})

# ---- the high-dimension scheme (src/engine/codegen_cuda_hd.h): inner products and distances
# of dimension >= 32 through register tiles, |x|^2 + |y|^2 - 2 <x, y> with a common point
# subtracted on the host. Against dense R (float64 exact distances).
hd_sqdist <- function(x, y) {  # exact squared distances, rows of x against rows of y
  t(apply(x, 1, function(xi) colSums((t(y) - xi)^2)))
}
hd_run <- function(formula, args, input, precision) {
  on_backend("GPU", precision, function() keops_kernel(formula, args)(input))
}
hd_uses_scheme <- function(formula, args) {
  grepl("high-dimension scheme", rkeops:::.rk_cuda_source(formula, args), fixed = TRUE)
}

test_that("high-dimension k-NN on the GPU is exact against dense R (float64), both axes", {
  skip_if_no_gpu()
  set.seed(407)
  for (D in c(64, 257, 1000)) {
    nx <- 173; ny <- 2011; K <- 10
    x <- matrix(rnorm(nx * D), nx); y <- matrix(rnorm(ny * D), ny)
    xy <- c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D))
    expect_true(hd_uses_scheme("ArgKMin_Reduction(SqDist(x, y), 10, 1)", xy))
    d2 <- hd_sqdist(x, y)
    want <- t(apply(d2, 1, order))[, 1:K] - 1
    got <- hd_run("ArgKMin_Reduction(SqDist(x, y), 10, 1)", xy, list(x, y), "float64")
    expect_equal(unname(got), want, ignore_attr = TRUE, info = paste("D =", D))
    kv <- hd_run("KMin_ArgKMin_Reduction(SqDist(x, y), 10, 1)", xy, list(x, y), "float64")
    expect_equal(unname(kv[[1]]), t(apply(d2, 1, sort))[, 1:K], tolerance = 1e-12, info = paste("D =", D))
    expect_equal(unname(kv[[2]]), want, ignore_attr = TRUE, info = paste("D =", D))
    # axis 0: for each y_j its nearest x_i
    got0 <- hd_run("ArgKMin_Reduction(SqDist(x, y), 5, 0)", xy, list(x, y), "float64")
    expect_equal(unname(got0), t(apply(d2, 2, order))[, 1:5] - 1, ignore_attr = TRUE, info = paste("D =", D))
    # float32: the distances of the returned neighbours are the K smallest
    got32 <- hd_run("ArgKMin_Reduction(SqDist(x, y), 10, 1)", xy, list(x, y), "float32")
    d_got <- t(sapply(seq_len(nx), function(i) sort(d2[i, got32[i, ] + 1])))
    expect_equal(d_got, t(apply(d2, 1, sort))[, 1:K], tolerance = 1e-5, info = paste("float32 D =", D))
  }
})

test_that("high-dimension kernel sums and log-sum-exps on the GPU match dense R, float32 and float64", {
  skip_if_no_gpu()
  set.seed(408)
  for (D in c(64, 257, 1000)) {
    nx <- 211; ny <- 1777
    # far from the origin: float32 distances need the common point subtracted
    x <- matrix(rnorm(nx * D), nx) + 40; y <- matrix(rnorm(ny * D), ny) + 40
    bx <- matrix(runif(2 * nx), nx); by <- matrix(runif(2 * ny), ny)
    g <- 1 / D
    d2 <- hd_sqdist(x, y); ip <- tcrossprod(x - 40, y - 40)
    xy <- c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D))
    for (prec in c("float64", "float32")) {
      tol <- if (prec == "float64") 1e-12 else 2e-5
      info <- paste(prec, "D =", D)
      expect_equal(hd_run("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c(xy, "b=Vj(2)", "g=Pm(1)"),
                          list(x, y, by, g), prec),
                   exp(-g * d2) %*% by, tolerance = tol, ignore_attr = TRUE, info = info)
      expect_equal(hd_run("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 0)", c(xy, "b=Vi(2)", "g=Pm(1)"),
                          list(x, y, bx, g), prec),
                   t(exp(-g * d2)) %*% bx, tolerance = tol, ignore_attr = TRUE, info = info)
      expect_equal(hd_run("LogSumExp_Reduction(-g * SqDist(x, y), 1)", c(xy, "g=Pm(1)"), list(x, y, g), prec),
                   as.matrix(apply(-g * d2, 1, function(v) max(v) + log(sum(exp(v - max(v)))))),
                   tolerance = tol, ignore_attr = TRUE, info = info)
      # scalar-product kernels (centred data: the inner product is not shift-invariant)
      xc <- x - 40; yc <- y - 40
      expect_equal(hd_run("Sum_Reduction(Exp(g * (x | y)) * b, 0)", c(xy, "b=Vi(2)", "g=Pm(1)"),
                          list(xc, yc, bx, g), prec),
                   t(exp(g * ip)) %*% bx, tolerance = tol, ignore_attr = TRUE, info = info)
      expect_equal(hd_run("LogSumExp_Reduction(g * (x | y), 0)", c(xy, "g=Pm(1)"), list(xc, yc, g), prec),
                   as.matrix(apply(g * ip, 2, function(v) max(v) + log(sum(exp(v - max(v)))))),
                   tolerance = tol, ignore_attr = TRUE, info = info)
    }
  }
})

test_that("high-dimension reductions with few outer rows split the inner range over blocks", {
  skip_if_no_gpu()
  set.seed(409)
  D <- 257
  q <- matrix(rnorm(7 * D), 7); p <- matrix(rnorm(60001 * D), 60001); w <- matrix(runif(60001), 60001)
  xy <- c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D))
  d2 <- hd_sqdist(q, p)
  for (prec in c("float64", "float32")) {
    tol <- if (prec == "float64") 1e-12 else 2e-5
    got <- hd_run("ArgKMin_Reduction(SqDist(x, y), 10, 1)", xy, list(q, p), prec)
    expect_gt(rkeops:::.rk_gpu_last_run()$nsplit, 1)
    d_got <- t(sapply(1:7, function(i) sort(d2[i, got[i, ] + 1])))
    expect_equal(d_got, t(apply(d2, 1, sort))[, 1:10], tolerance = if (prec == "float64") 1e-12 else 1e-5, info = prec)
    if (prec == "float64") expect_equal(unname(got), t(apply(d2, 1, order))[, 1:10] - 1, ignore_attr = TRUE)
    expect_equal(hd_run("SumSoftMaxWeight_Reduction(-SqDist(x, y) / 257, w, 1)", c(xy, "w=Vj(1)"), list(q, p, w), prec),
                 (exp(-d2 / D) %*% w) / rowSums(exp(-d2 / D)), tolerance = tol, ignore_attr = TRUE, info = prec)
    expect_equal(hd_run("LogSumExp_Reduction(-SqDist(x, y) / 257, 0)", xy, list(p, q), prec),
                 as.matrix(apply(-t(d2) / D, 2, function(v) max(v) + log(sum(exp(v - max(v)))))),
                 tolerance = tol, ignore_attr = TRUE, info = prec)
  }
})

test_that("wide formulas on the generic GPU kernel (loops over components, inner rows from global memory) agree with the CPU", {
  skip_if_no_gpu()
  set.seed(406)
  n <- 700; m <- 900
  mk <- function(r, D, s = 1) matrix(rnorm(r * D), r) * s / sqrt(D)
  # the gradient of a Gaussian kernel at D = 300: a result of 300 components (block sums in loops)
  x <- mk(n, 300); y <- mk(m, 300); b <- matrix(runif(m), m)
  compare_backends("Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, x, e), 1)",
                   c("x=Vi(300)", "y=Vj(300)", "b=Vj(1)", "g=Pm(1)", "e=Vi(1)"), list(x, y, b, 0.7, matrix(1, n, 1)))
  # rows of 2 x 2000 values (beyond any shared-memory tile), x and y used beyond a distance
  x <- mk(300, 2000); y <- mk(200, 2000)
  compare_backends("Sum_Reduction(Exp(-SqNorm2(x - y) * g) * Normalize(y - x), 0)",
                   c("x=Vi(2000)", "y=Vj(2000)", "g=Pm(1)"), list(x, y, 0.5))
  compare_backends("KMin_ArgKMin_Reduction(x - y, 3, 1)", c("x=Vi(40)", "y=Vj(40)"), list(mk(n, 40), mk(m, 40)))
  compare_backends("Min_ArgMin_Reduction(Exp(x) * y, 0)", c("x=Vi(40)", "y=Vj(40)"), list(mk(n, 40), mk(m, 40)))
  # D = 20000: refused by the shared-memory tiles before
  compare_backends("Sum_Reduction(Sum(Exp(x - y)) * b, 1)", c("x=Vi(20000)", "y=Vj(20000)", "b=Vj(1)"),
                   list(mk(40, 20000), mk(50, 20000), matrix(runif(50), 50)))
})

# ---- float16 (rkeops_use_float16()) against float64 dense R, at the stated tolerance ----
# (relative to the largest entry of each column of the result: 1e-2, R/options.R)
f16_close <- function(got, want, tol = 1e-2, info = NULL) {
  want <- as.matrix(want); got <- as.matrix(got)
  expect_equal(dim(got), dim(want), info = info)
  for (k in seq_len(ncol(want))) {
    scale <- max(abs(want[, k]))
    err <- max(abs(got[, k] - want[, k])) / max(scale, 1e-30)
    expect_lt(err, tol, label = paste0(info, ": column ", k, " relative error ", signif(err, 3)))
  }
}
in_float16 <- function(fun) {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  rkeops_use_gpu()
  rkeops_use_float16()
  fun()
}
f16_sqdist <- function(x, y) outer(rowSums(x^2), rowSums(y^2), "+") - 2 * tcrossprod(x, y)

test_that("float16 on the GPU: kernels, both axes, random sizes, against float64 dense R", {
  skip_if_no_gpu()
  set.seed(1616)
  for (rep in 1:3) {
    nx <- sample(300:2500, 1); ny <- sample(300:2500, 1)   # odd and even: a thread's second row unused
    x <- matrix(runif(3 * nx), nx); y <- matrix(runif(3 * ny), ny)
    b <- matrix(runif(2 * ny), ny); a <- matrix(runif(2 * nx), nx); g <- 2.5
    D2 <- pmax(f16_sqdist(x, y), 0); K <- exp(-g * D2)
    xy <- c("x=Vi(3)", "y=Vj(3)")
    in_float16(function() {
      op <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c(xy, "b=Vj(2)", "g=Pm(1)"))
      f16_close(op(list(x, y, b, g)), K %*% b, info = "Gaussian, over j")
      op0 <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * a, 0)", c(xy, "a=Vi(2)", "g=Pm(1)"))
      f16_close(op0(list(x, y, a, g)), crossprod(K, a), info = "Gaussian, over i")
      opc <- keops_kernel("Sum_Reduction(b / (1 + g * SqDist(x, y)), 1)", c(xy, "b=Vj(2)", "g=Pm(1)"))
      f16_close(opc(list(x, y, b, g)), (1 / (1 + g * D2)) %*% b, info = "Cauchy")
      ope <- keops_kernel("Sum_Reduction(Exp(-Sqrt(SqDist(x, y))) * Rsqrt(1 + (x | y)) * Log(2 + Sum(y)), 1)", xy)
      f16_close(ope(list(x, y)), (exp(-sqrt(D2)) / sqrt(1 + tcrossprod(x, y))) %*% log(2 + rowSums(y)),
                info = "Sqrt, Rsqrt, Log, Scalprod, Sum")
      opp <- keops_kernel("Sum_Reduction(Pow(x - y, 2) * Inv(1 + SqNorm2(x)) + Abs(x) * Powf(1 + Elem(y, 0), 0.5), 1)",
                          xy)
      want <- sapply(1:3, function(k) rowSums(outer(x[, k], y[, k], "-")^2) / (1 + rowSums(x^2)) +
                                        abs(x[, k]) * sum(sqrt(1 + y[, 1])))
      f16_close(opp(list(x, y)), want, info = "Pow, Inv, SqNorm2, Abs, Powf")
      opl <- keops_kernel("LogSumExp_Reduction(-g * SqDist(x, y), 1)", c(xy, "g=Pm(1)"))
      m <- apply(-g * D2, 1, max)
      want <- m + log(rowSums(exp(-g * D2 - m)))
      got <- opl(list(x, y, g))
      expect_lt(max(abs(got - want) / (abs(want) + 1)), 1e-2)
      # no half2 form (ReLU, Sin): float32 evaluation from halves
      opr <- keops_kernel("Sum_Reduction(ReLU(Elem(x, 0) - Elem(y, 0)) * Sin(b), 1)", c(xy, "b=Vj(2)"))
      f16_close(opr(list(x, y, b)), pmax(outer(x[, 1], y[, 1], "-"), 0) %*% sin(b), info = "ReLU, Sin")
      # a reduction other than a sum: the minimum, and the value at the index returned (0-based)
      opm <- keops_kernel("Min_ArgMin_Reduction(SqDist(x, y), 1)", xy)
      res <- opm(list(x, y))
      want <- apply(D2, 1, min)
      expect_lt(max(abs(res[[1]][, 1] - want)), 1e-2 * max(want))
      expect_lt(max(abs(D2[cbind(seq_len(nx), res[[2]][, 1] + 1)] - want)), 1e-2 * max(want))
    })
  }
})

test_that("float16 on the GPU: gradients (keops_grad and LazyTensor grad) against float64 dense R", {
  skip_if_no_gpu()
  set.seed(1617)
  nx <- 1333; ny <- 2020
  x <- matrix(runif(3 * nx), nx); y <- matrix(runif(3 * ny), ny); b <- runif(ny); e <- runif(nx); s <- 1.5
  K <- exp(-s * pmax(f16_sqdist(x, y), 0))
  W <- K * outer(e, b)
  in_float16(function() {
    op <- keops_kernel("Sum_Reduction(Exp(-s * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "s=Pm(1)"))
    f16_close(keops_grad(op, "x")(list(x, y, b, s, e)), -2 * s * (rowSums(W) * x - W %*% y), info = "grad x")
    f16_close(keops_grad(op, "y")(list(x, y, b, s, e)), -2 * s * (colSums(W) * y - crossprod(W, x)), info = "grad y")
    f16_close(keops_grad(op, "b")(list(x, y, b, s, e)), crossprod(K, e), info = "grad b")
    gs <- keops_grad(op, "s")(list(x, y, b, s, e))
    expect_lt(abs(gs[1, 1] + sum(W * pmax(f16_sqdist(x, y), 0))) / abs(sum(W * f16_sqdist(x, y))), 1e-2)
    x_i <- Vi(x); y_j <- Vj(y); b_j <- Vj(matrix(b))
    g <- grad(exp(-s * sqdist(x_i, y_j)) * b_j, matrix(e), "Sum", var = x_i, index = "j")
    f16_close(g, -2 * s * (rowSums(W) * x - W %*% y), info = "LazyTensor grad")
  })
})

test_that("float16 on the GPU: block-sparse reductions and chunks of many points", {
  skip_if_no_gpu()
  set.seed(1618)
  n <- 4000
  x <- matrix(runif(3 * n), n); y <- matrix(runif(3 * n), n); b <- matrix(runif(n))
  li <- sort(sample(1:10, n, replace = TRUE)); lj <- sort(sample(1:10, n, replace = TRUE))
  keep <- matrix(runif(100) < 0.3, 10, 10)
  r <- block_sparse_ranges(li, lj, keep)
  mask <- keep[cbind(rep(li, n), rep(lj, each = n))]
  K <- exp(-4 * pmax(f16_sqdist(x, y), 0)) * matrix(mask, n, n)
  in_float16(function() {
    op <- keops_kernel("Sum_Reduction(Exp(-4 * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"))
    f16_close(op(list(x, y, b), ranges = r), K %*% b, info = "block-sparse")
  })
})

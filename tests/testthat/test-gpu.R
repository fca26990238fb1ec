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

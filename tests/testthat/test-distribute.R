# Distributed evaluation (keops_kernel(distribute = "future")): chunks along the outer index or
# the reduced index (partial states merged by the engine) give the plain call's result.

skip_if_no_future <- function() {
  skip_if_not_installed("future")
  skip_if_not_installed("future.apply")
}

# Every reduction, with formulas and inputs of random sizes.
distribute_cases <- function(nx, ny) {
  x <- matrix(rnorm(2 * nx), nx); y <- matrix(rnorm(2 * ny), ny)
  w <- matrix(runif(3 * ny), ny); wx <- matrix(runif(3 * nx), nx)
  xy <- c("x=Vi(2)", "y=Vj(2)")
  F <- "Exp(-SqDist(x, y))"
  list(
    list(sprintf("Sum_Reduction(%s * w, 1)", F), c(xy, "w=Vj(3)"), list(x, y, w)),
    list(sprintf("Sum_Reduction(%s * w, 0)", F), c(xy, "w=Vi(3)"), list(x, y, wx)),
    list("Min_Reduction(x - y, 1)", xy, list(x, y)),
    list("Max_Reduction(x - y, 0)", xy, list(x, y)),
    list("ArgMin_Reduction(SqDist(x, y), 1)", xy, list(x, y)),
    list("ArgMax_Reduction(SqDist(x, y), 0)", xy, list(x, y)),
    list("Min_ArgMin_Reduction(x - y, 1)", xy, list(x, y)),
    list("Max_ArgMax_Reduction(x - y, 1)", xy, list(x, y)),
    list("KMin_Reduction(SqDist(x, y), 3, 1)", xy, list(x, y)),
    list("ArgKMin_Reduction(SqDist(x, y), 4, 0)", xy, list(x, y)),
    list("KMin_ArgKMin_Reduction(x - y, 2, 1)", xy, list(x, y)),
    list("LogSumExp_Reduction(-SqDist(x, y), 1)", xy, list(x, y)),
    list("LogSumExpWeight_Reduction(-SqDist(x, y), w, 1)", c(xy, "w=Vj(3)"), list(x, y, w)),
    list("Max_SumShiftExp_Reduction(-SqDist(x, y), 1)", xy, list(x, y)),
    list("Max_SumShiftExpWeight_Reduction(-SqDist(x, y), w, 1)", c(xy, "w=Vj(3)"), list(x, y, w)),
    list("SumSoftMaxWeight_Reduction(-SqDist(x, y), w, 1)", c(xy, "w=Vj(3)"), list(x, y, w))
  )
}

test_that("every reduction, split over i or j into uneven chunks, equals the plain call (float64, float32)", {
  skip_if_no_future()
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  oplan <- future::plan(future::sequential)
  on.exit(future::plan(oplan), add = TRUE)
  set.seed(21)
  nx <- sample(5:40, 1); ny <- sample(30:90, 1)
  for (prec in c("float64", "float32")) {
    set_rkeops_options(list(precision = prec))
    tol <- if (prec == "float64") 1e-12 else 2e-6
    for (cs in distribute_cases(nx, ny)) {
      op <- keops_kernel(cs[[1]], cs[[2]])
      plain <- op(cs[[3]])
      for (split in c("i", "j")) for (chunks in c(1, 3, 7, 200)) {
        info <- paste(cs[[1]], prec, split, chunks)
        expect_equal(op(cs[[3]], distribute = "future", split = split, chunks = chunks), plain,
                     tolerance = tol, info = info)
      }
    }
  }
})

test_that("sum schemes and chunks of one point: Kahan compensations travel with the partial states", {
  skip_if_no_future()
  oplan <- future::plan(future::sequential)
  on.exit(future::plan(oplan), add = TRUE)
  set.seed(2)
  x <- matrix(rnorm(6), 3); y <- matrix(rnorm(20), 10)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x=Vi(2)", "y=Vj(2)"), sum_scheme = "kahan_scheme")
  expect_equal(op(list(x, y), distribute = "future", split = "j", chunks = 10), op(list(x, y)), tolerance = 1e-12)
  # partial states: the engine's merge of two halves, as matrices
  f <- "Min_ArgMin_Reduction(SqDist(x, y), 1)"
  a <- c("x=Vi(2)", "y=Vj(2)")
  eo <- rkeops:::.rk_engine_options()
  p1 <- rkeops:::.rk_call("rk_run_partial", f, a, list(x, y[1:4, ]), eo, 0)
  p2 <- rkeops:::.rk_call("rk_run_partial", f, a, list(x, y[5:10, ]), eo, 4)
  expect_equal(dim(p1), c(3, 2))   # value and index
  D <- outer(1:3, 1:10, function(i, j) rowSums((x[i, ] - y[j, ])^2))
  expect_equal(p2[, 2], apply(D[, 5:10], 1, which.min) + 3)   # global indices
  m <- rkeops:::.rk_call("rk_merge_partials", f, a, list(p1, p2), eo, TRUE)
  expect_equal(m, cbind(apply(D, 1, min), apply(D, 1, which.min) - 1), ignore_attr = TRUE)
  expect_error(rkeops:::.rk_call("rk_merge_partials", f, a, list(p1, p2[, 1, drop = FALSE]), eo, TRUE),
               class = "rkeops_input_error")
})

test_that("a multisession plan of 2 workers and a PSOCK cluster on localhost give the plain result", {
  skip_if_no_future()
  skip_on_cran()
  set.seed(5)
  x <- matrix(rnorm(3 * 300), 300); y <- matrix(rnorm(3 * 500), 500); b <- runif(500)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)"))
  knn <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 5, 1)", c("x=Vi(3)", "y=Vj(3)"))
  plain <- op(list(x, y, b)); plain_knn <- knn(list(x, y))
  oplan <- future::plan(future::multisession, workers = 2)
  on.exit(future::plan(oplan), add = TRUE)
  expect_equal(op(list(x, y, b), distribute = "future", split = "i"), plain, tolerance = 1e-12)
  expect_equal(knn(list(x, y), distribute = "future", split = "j", chunks = 3), plain_knn)
  # the option sets the default, LazyTensor reductions follow it
  old <- get_rkeops_options()
  set_rkeops_options(list(distribute = "future"))
  on.exit(set_rkeops_options(old), add = TRUE)
  expect_equal(sum(exp(-sqdist(Vi(x), Vj(y))) * Vj(matrix(b)), "j"), plain, tolerance = 1e-12)
  set_rkeops_options(old)
  future::plan(future::cluster, workers = c("localhost", "localhost"))
  expect_equal(knn(list(x, y), distribute = "future", split = "auto"), plain_knn)
})

test_that("a failing chunk is an error naming the chunk; bad arguments are classed errors", {
  skip_if_no_future()
  oplan <- future::plan(future::sequential)
  on.exit(future::plan(oplan), add = TRUE)
  x <- matrix(rnorm(20), 10); y <- matrix(rnorm(40), 20)
  op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 3, 1)", c("x=Vi(2)", "y=Vj(2)"))
  # a chunk that fails on its worker (here: a backend that does not exist on the worker)
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  options(rkeops = modifyList(get_rkeops_options(), list(backend = "GPU")))
  if (!isTRUE(tryCatch(rkeops:::.rk_gpu_usable(), error = function(e) FALSE))) {
    expect_error(op(list(x, y), distribute = "future", split = "i", chunks = 2), "chunk 1 of 2",
                 class = "rkeops_distribute_error")
  }
  set_rkeops_options(old)
  expect_error(op(list(x, y), distribute = "cluster"), class = "rkeops_input_error")
  expect_error(op(list(x, y), distribute = "future", split = "k"), class = "rkeops_input_error")
  expect_error(op(list(x, y), distribute = "future", chunks = 0), class = "rkeops_input_error")
  expect_error(set_rkeops_options(list(distribute = "yes")), class = "rkeops_option_error")
})

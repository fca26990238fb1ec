# Options: get/set, CPU/GPU selection, precision, verbosity, check_rkeops().

test_that("options can be read, changed and reset", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  expect_setequal(names(old), c("backend", "device_id", "precision", "verbosity", "cache_dir", "ncore", "formula_only"))
  rkeops_use_float32()
  expect_equal(get_rkeops_options("precision"), "float32")
  rkeops_use_float64()
  expect_equal(get_rkeops_options("precision"), "float64")
  rkeops_enable_verbosity()
  expect_true(get_rkeops_options("verbosity"))
  rkeops_disable_verbosity()
  expect_false(get_rkeops_options("verbosity"))
  rkeops_use_cpu(ncore = 1)
  expect_equal(get_rkeops_options(c("backend", "ncore")), list(backend = "CPU", ncore = 1L))
  expect_equal(rkeops:::.rk_nthreads(), 1L)
  set_rkeops_options(NULL)
  expect_equal(get_rkeops_options("precision"), "float64")
})

test_that("the thread count changes nothing but speed", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  set.seed(31)
  x <- matrix(runif(3 * 3000), 3000); y <- matrix(runif(3 * 2000), 2000)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x=Vi(3)", "y=Vj(3)"))
  rkeops_use_cpu(1)
  one <- op(list(x, y))
  rkeops_use_cpu(2)
  expect_equal(op(list(x, y)), one, tolerance = 1e-14)
})

test_that("verbosity reports compilations", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  rkeops_enable_verbosity()
  f <- sprintf("Sum_Reduction(x * %d, 1)", as.integer((as.numeric(Sys.time()) * 1000) %% 1e8))  # new: compiles
  expect_output(keops_kernel(f, "x=Vi(1)")(list(1)), "compiled a CPU kernel")
})

test_that("rkeops_use_gpu() gives a classed error when no GPU is usable", {
  skip_if(isTRUE(tryCatch({ rkeops_use_gpu(); TRUE }, error = function(e) FALSE)), "a GPU is usable here")
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  expect_error(rkeops_use_gpu(), class = "rkeops_gpu_error")
  expect_error(rkeops_use_gpu(device = "a"), class = "rkeops_option_error")
})

test_that("check_rkeops() compiles and runs a test kernel", {
  expect_true(check_rkeops(verbose = FALSE))
  msgs <- capture_messages(check_rkeops(verbose = TRUE))
  expect_true(any(grepl("test kernel  : compiled and ran correctly", msgs)))
  expect_true(any(grepl("C\\+\\+ compiler", msgs)))
})

# Options: get/set, CPU threads, precision, verbosity, the GPU switch, invalid values,
# check_rkeops(). Every test restores the options it changes.

rkt_option_names <- c("backend", "device_id", "precision", "verbosity", "cache_dir", "ncore", "formula_only",
                      "distribute", "compile_timeout")

test_that("get_rkeops_options() returns all options, one, or several", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  set_rkeops_options(NULL)
  opt <- get_rkeops_options()
  expect_setequal(names(opt), rkt_option_names)
  expect_true(opt$backend %in% c("CPU", "GPU", "auto"))
  expect_identical(opt$precision, "float64")
  expect_identical(get_rkeops_options("precision"), "float64")
  expect_identical(get_rkeops_options(c("backend", "precision")), list(backend = opt$backend, precision = "float64"))
  expect_identical(getOption("rkeops"), opt)                     # kept in options(rkeops = )
  expect_error(get_rkeops_options("colour"), class = "rkeops_option_error")
  expect_error(get_rkeops_options(1), class = "rkeops_option_error")
})

test_that("set_rkeops_options() changes, merges and resets options", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  set_rkeops_options(NULL)
  def <- get_rkeops_options()
  res <- set_rkeops_options(list(precision = "float32", verbosity = TRUE))
  expect_identical(res$precision, "float32")
  expect_identical(get_rkeops_options("precision"), "float32")
  expect_true(get_rkeops_options("verbosity"))
  expect_identical(get_rkeops_options("backend"), def$backend)    # untouched options stay
  set_rkeops_options(list(ncore = 1, backend = "CPU"))
  expect_identical(get_rkeops_options("precision"), "float32")    # merged, not replaced
  expect_identical(get_rkeops_options("backend"), "CPU")
  set_rkeops_options(NULL)
  expect_identical(get_rkeops_options(), def)
  expect_identical(get_rkeops_options("precision"), "float64")
  expect_identical(get_rkeops_options("verbosity"), NA)          # the default: notes slow compiles only
  expect_null(get_rkeops_options("ncore"))
})

test_that("invalid option values are refused and leave the options unchanged", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  before <- get_rkeops_options()
  bad <- list(
    list(precision = "float8"), list(precision = c("float32", "float64")), list(backend = "TPU"),
    list(device_id = -2), list(device_id = 1.5), list(device_id = "0"), list(ncore = -1),
    list(ncore = 2.5), list(ncore = "all"), list(verbosity = "yes"), list(verbosity = c(TRUE, FALSE)),
    list(cache_dir = 1), list(cache_dir = c("a", "b")), list(cache_dir = NA_character_),
    list(colour = "blue"), list("float32"), "float32", list(precision = NA),
    # NULL only for the options whose default is NULL (cache_dir, ncore)
    list(precision = NULL), list(backend = NULL), list(device_id = NULL), list(verbosity = NULL),
    list(formula_only = NULL), list(formula_only = "yes"), list(formula_only = NA),
    # beyond R's integers: an error, not an NA with a coercion warning later
    list(device_id = 1e10), list(device_id = 2^31), list(ncore = 2^31), list(ncore = Inf)
  )
  for (b in bad) {
    expect_error(set_rkeops_options(b), class = "rkeops_option_error",
                 label = paste("set_rkeops_options(", deparse(b), ")"))
  }
  expect_identical(get_rkeops_options(), before)
  # and the next computation works (a NULL precision used to break it)
  expect_identical(keops_kernel("Sum_Reduction(x*y,1)", c("x=Vi(1)", "y=Vj(1)"))(list(2, 3)), matrix(6))
})

test_that("numbers beyond R's integers are clear option errors, not coercion warnings", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  before <- get_rkeops_options()
  calls <- list(function() rkeops_use_cpu(2^31), function() rkeops_use_cpu(1e300),
                function() rkeops_use_gpu(1e10), function() rkeops_use_gpu(2^31),
                function() set_rkeops_options(list(device_id = 1e10)))
  for (f in calls) {
    warned <- FALSE
    err <- withCallingHandlers(tryCatch(f(), error = identity),
                               warning = function(w) { warned <<- TRUE; invokeRestart("muffleWarning") })
    expect_s3_class(err, "rkeops_option_error")
    expect_match(conditionMessage(err), "2147483647", fixed = TRUE)
    expect_false(warned)
  }
  expect_identical(get_rkeops_options(), before)
  rkeops_use_cpu(.Machine$integer.max)                           # the largest is fine
  expect_identical(get_rkeops_options("ncore"), .Machine$integer.max)
})

test_that("rkeops_use_cpu() selects the CPU and the number of threads", {
  old <- get_rkeops_options()
  old_lim <- Sys.getenv("OMP_THREAD_LIMIT", NA)
  on.exit({
    set_rkeops_options(old)
    if (is.na(old_lim)) Sys.unsetenv("OMP_THREAD_LIMIT") else Sys.setenv(OMP_THREAD_LIMIT = old_lim)
  }, add = TRUE)
  Sys.unsetenv("OMP_THREAD_LIMIT")
  avail <- rkeops:::.rk_nthreads()
  rkeops_use_cpu(ncore = 1)
  expect_identical(get_rkeops_options(c("backend", "ncore")), list(backend = "CPU", ncore = 1L))
  expect_identical(rkeops:::.rk_nthreads(), 1L)
  rkeops_use_cpu(ncore = 1000)
  expect_lte(rkeops:::.rk_nthreads(), avail)                     # never more than the machine
  rkeops_use_cpu(0)
  expect_null(get_rkeops_options("ncore"))
  rkeops_use_cpu()
  expect_null(get_rkeops_options("ncore"))
  Sys.setenv(OMP_THREAD_LIMIT = "1")
  expect_identical(rkeops:::.rk_nthreads(), 1L)                  # OMP_THREAD_LIMIT is respected
  Sys.unsetenv("OMP_THREAD_LIMIT")
  for (b in list(-1, 1.5, "2", c(1, 2), NA)) {
    expect_error(rkeops_use_cpu(b), class = "rkeops_option_error")
  }
})

test_that("the thread count changes nothing but speed", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  set.seed(8)
  x <- matrix(runif(2 * 1031), 1031)                             # enough pairs to use threads
  y <- matrix(runif(2 * 517), 517)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x,y)),1)", c("x=Vi(2)", "y=Vj(2)"))
  rkeops_use_cpu(1)
  one <- op(list(x, y))
  rkeops_use_cpu(2)
  expect_identical(op(list(x, y)), one)                          # rows never change hands
})

test_that("rkeops_use_float32() computes in float32, rkeops_use_float64() in float64", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  op <- keops_kernel("Sum_Reduction(x*y,1)", c("x=Vi(1)", "y=Vj(1)"))
  x <- matrix(c(0.1, 1 / 3))
  y <- matrix(1)
  rkeops_use_float32()
  expect_identical(get_rkeops_options("precision"), "float32")
  r32 <- op(list(x, y))
  expect_identical(r32, rkt_f32(x))                              # 0.1f, 1/3f, returned as doubles
  expect_true(is.double(r32))
  rkeops_use_float64()
  expect_identical(get_rkeops_options("precision"), "float64")
  expect_identical(op(list(x, y)), x)
})

test_that("verbosity reports compilations as R messages; quiet when off", {
  old <- get_rkeops_options()
  dir <- tempfile("rkt-cache")
  on.exit({ set_rkeops_options(old); unlink(dir, recursive = TRUE) }, add = TRUE)
  set_rkeops_cache_dir(dir, verbose = FALSE)                     # an empty cache: each compiles
  rkeops_use_cpu()
  fresh <- function() sprintf("Sum_Reduction(x*IntCst(%d),1)", sample.int(1e8, 1) + 1000)
  rkeops_enable_verbosity()
  expect_true(get_rkeops_options("verbosity"))
  expect_message(keops_kernel(fresh(), "x=Vi(1)")(list(1)), "compiled a CPU kernel")
  expect_silent(suppressMessages(keops_kernel(fresh(), "x=Vi(1)")(list(1))))   # messages, not printed output
  rkeops_disable_verbosity()
  expect_false(get_rkeops_options("verbosity"))
  expect_silent(keops_kernel(fresh(), "x=Vi(1)")(list(1)))
  set_rkeops_options(list(verbosity = 0))
  expect_silent(keops_kernel(fresh(), "x=Vi(1)")(list(1)))
})

test_that("by default, a compilation slower than the threshold is noted once per kernel", {
  old <- get_rkeops_options()
  old_threshold <- options(rkeops.compile_note_seconds = 0)     # every compilation counts as slow
  dir <- tempfile("rkt-cache")
  on.exit({ set_rkeops_options(old); options(old_threshold); unlink(dir, recursive = TRUE) }, add = TRUE)
  set_rkeops_cache_dir(dir, verbose = FALSE)
  rkeops_use_cpu()
  set_rkeops_options(list(verbosity = NA))
  k <- sample.int(1e8, 1) + 1000
  op <- keops_kernel(sprintf("Sum_Reduction(x*IntCst(%d),1)", k), "x=Vi(1)")
  msgs <- character()
  res <- withCallingHandlers(op(list(c(1, 2, 3))), message = function(m) {
    msgs <<- c(msgs, conditionMessage(m))
    invokeRestart("muffleMessage")
  })
  expect_equal(as.vector(res), k * c(1, 2, 3))
  expect_length(msgs, 1)
  expect_match(msgs, sprintf("compiling Sum_Reduction(x*IntCst(%d),1) for the CPU in float64 took", k), fixed = TRUE)
  expect_match(msgs, "first use of this formula", fixed = TRUE)
  expect_silent(op(list(4)))                                        # said once only
  expect_message(keops_kernel(sprintf("Sum_Reduction(x*IntCst(%d),1)", k + 1), "x=Vi(1)")(list(1)),
                 "first use")                                       # another kernel: said again
  rkeops_disable_verbosity()                                        # FALSE: quiet
  expect_silent(keops_kernel(sprintf("Sum_Reduction(x*IntCst(%d),1)", k + 2), "x=Vi(1)")(list(1)))
  set_rkeops_options(list(verbosity = NA))                          # suppressMessages() silences it
  expect_silent(suppressMessages(keops_kernel(sprintf("Sum_Reduction(x*IntCst(%d),1)", k + 3), "x=Vi(1)")(list(1))))
})

test_that("rkeops_use_gpu() gives a classed error when no GPU is usable", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  gpu <- tryCatch({ rkeops_use_gpu(); TRUE }, rkeops_gpu_error = function(e) FALSE)
  set_rkeops_options(old)
  skip_if(gpu, "a GPU is usable here")
  err <- tryCatch(rkeops_use_gpu(), error = identity)
  expect_s3_class(err, "rkeops_gpu_error")
  expect_s3_class(err, "rkeops_error")
  expect_match(conditionMessage(err), "rkeops_use_cpu", fixed = TRUE)  # says what to do instead
  expect_identical(get_rkeops_options("backend"), old$backend)         # nothing switched
  expect_error(rkeops_use_gpu(device = 0), class = "rkeops_gpu_error")
  expect_error(rkeops_use_gpu(device = "a"), class = "rkeops_option_error")
  expect_error(rkeops_use_gpu(device = -3), class = "rkeops_option_error")
})

test_that("check_rkeops() compiles and runs a test kernel", {
  expect_true(check_rkeops(verbose = FALSE))
  msgs <- capture_messages(res <- check_rkeops(verbose = TRUE))
  expect_true(res)
  expect_true(any(grepl("compiled and ran correctly", msgs)))
  expect_true(any(grepl("cache", msgs)))
})

test_that("a failed set_rkeops_cache_dir() leaves the cache directory as it was", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  dir0 <- tempfile("rkt-cache")
  set_rkeops_cache_dir(dir0, verbose = FALSE)
  a_file <- tempfile("rkt-file")
  writeLines("x", a_file)
  open_dir <- tempfile("rkt-open")
  dir.create(open_dir, mode = "0777")
  Sys.chmod(open_dir, "0777", use_umask = FALSE)                  # writable by others: refused
  on.exit(unlink(c(a_file, open_dir, dir0), recursive = TRUE), add = TRUE)
  cases <- list(list(a_file, "rkeops_option_error", "not a directory"),
                list(file.path(a_file, "sub"), "rkeops_option_error", "cannot create"),
                list(open_dir, "rkeops_cache_error", "writable by other users"))
  for (cs in cases) {
    warned <- FALSE
    err <- withCallingHandlers(tryCatch(set_rkeops_cache_dir(cs[[1]], verbose = FALSE), error = identity),
                               warning = function(w) { warned <<- TRUE; invokeRestart("muffleWarning") })
    expect_s3_class(err, cs[[2]])
    expect_match(conditionMessage(err), cs[[3]], fixed = TRUE)
    expect_false(warned)                                           # no warning of dir.create()
    expect_identical(get_rkeops_cache_dir(), dir0)                 # unchanged
  }
  if (Sys.info()[["effective_user"]] != "root") {                  # root writes everywhere
    ro <- tempfile("rkt-ro")
    dir.create(ro, mode = "0500")
    on.exit(unlink(ro, recursive = TRUE), add = TRUE)
    expect_error(set_rkeops_cache_dir(ro, verbose = FALSE), class = "rkeops_option_error")
    expect_identical(get_rkeops_cache_dir(), dir0)
  }
  # a good directory is created (private) and taken
  new_dir <- file.path(tempfile("rkt-new"), "a", "b")
  set_rkeops_cache_dir(new_dir, verbose = FALSE)
  expect_identical(get_rkeops_cache_dir(), new_dir)
  expect_identical(as.character(file.mode(new_dir)), "700")
})

test_that("check_rkeops() says a cache directory that does not exist yet will be created", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  root <- tempfile("rkt-check")
  on.exit(unlink(root, recursive = TRUE), add = TRUE)
  dir <- file.path(root, "not", "yet")
  set_rkeops_options(list(cache_dir = dir))                       # (set_rkeops_cache_dir() creates it)
  msgs <- capture_messages(res <- check_rkeops(verbose = TRUE))
  line <- grep("^  cache ", msgs, value = TRUE)
  expect_match(line, "will be created", fixed = TRUE)
  expect_false(any(grepl("NOT writable", msgs)))
  expect_true(res)
  expect_true(dir.exists(dir))                                    # the test kernel created it
  expect_false(any(grepl("will be created|NOT", grep("^  cache ", capture_messages(check_rkeops()), value = TRUE))))
  # a path under a file cannot be created
  a_file <- file.path(root, "a-file")
  writeLines("x", a_file)
  set_rkeops_options(list(cache_dir = file.path(a_file, "sub")))
  line <- grep("^  cache ", capture_messages(check_rkeops(verbose = TRUE)), value = TRUE)
  expect_match(line, "NOT writable: does not exist and cannot be created under", fixed = TRUE)
  set_rkeops_options(list(cache_dir = a_file))
  line <- grep("^  cache ", capture_messages(check_rkeops(verbose = TRUE)), value = TRUE)
  expect_match(line, "NOT usable: a file", fixed = TRUE)
})

test_that("options read as RKeOps scripts read them: verbosity 1/0, the cache directory's path", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  for (v in list(1, 0, 1L, 0L, TRUE, FALSE, NA)) {
    set_rkeops_options(list(verbosity = v))
    expect_identical(get_rkeops_options("verbosity"), v)
  }
  for (v in list(2, -1, 0.5, "yes", c(1, 0), NA_real_)) {
    expect_error(set_rkeops_options(list(verbosity = v)), "verbosity", class = "rkeops_option_error")
  }
  set_rkeops_options(list(verbosity = 0))
  expect_silent(keops_kernel(sprintf("Sum_Reduction(x*IntCst(%d),1)", sample.int(1e8, 1) + 1000), "x=Vi(1)")(list(1)))
  # the option holds the directory in use; writing back what was read changes nothing
  dir <- get_rkeops_options("cache_dir")
  expect_true(is.character(dir) && nzchar(dir))
  expect_identical(dir, get_rkeops_cache_dir())
  expect_identical(get_rkeops_options()$cache_dir, dir)
  set_rkeops_options(get_rkeops_options())
  expect_identical(get_rkeops_cache_dir(), dir)
  set_rkeops_options(NULL)
  expect_identical(get_rkeops_options("cache_dir"), get_rkeops_cache_dir())
})

test_that("helloWorld() runs a kernel and says hello", {
  expect_message(ok <- helloWorld(), "Hello world from rkeops")
  expect_true(ok)
})

test_that("float16: the option round-trips, and the CPU backend refuses it with a classed error", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  expect_invisible(rkeops_use_float16())
  expect_identical(get_rkeops_options("precision"), "float16")
  set_rkeops_options(get_rkeops_options())
  expect_identical(get_rkeops_options("precision"), "float16")
  rkeops_use_float32()
  expect_identical(get_rkeops_options("precision"), "float32")
  set_rkeops_options(list(precision = "float16"))
  expect_identical(get_rkeops_options("precision"), "float16")
  rkeops_use_float64()
  expect_identical(get_rkeops_options("precision"), "float64")
  # at call time, on the CPU backend: rkeops_option_error, naming float16 and the way out
  rkeops_use_cpu()
  rkeops_use_float16()
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x=Vi(2)", "y=Vj(2)"))
  x <- matrix(runif(10), 5)
  err <- expect_error(op(list(x, x)), class = "rkeops_option_error")
  expect_match(conditionMessage(err), "float16", fixed = TRUE)
  expect_match(conditionMessage(err), "GPU only", fixed = TRUE)
  # LazyTensors and a per-call CPU backend too
  X <- LazyTensor(x, "i"); Y <- LazyTensor(x, "j")
  expect_error(sum(exp(-sqdist(X, Y)), "j"), class = "rkeops_option_error")
  expect_error(sum(exp(-sqdist(X, Y)), "j", backend = "CPU"), class = "rkeops_option_error")
  # and the same call in float64 works again
  rkeops_use_float64()
  expect_equal(op(list(x, x)), matrix(rowSums(exp(-as.matrix(dist(x))^2))), tolerance = 1e-12)
})

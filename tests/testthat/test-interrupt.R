# A user interrupt (Ctrl-C, SIGINT) stops a long CPU kernel between tiles with R's interrupt
# condition, and the session goes on. Runs a separate R process that a signal can reach.

test_that("SIGINT stops a long CPU kernel with an interrupt condition, and R goes on", {
  skip_on_os("windows")
  out <- tempfile()
  script <- tempfile(fileext = ".R")
  writeLines(c(
    "suppressMessages(library(rkeops)); invisible(rkeops_use_cpu())",
    sprintf("Sys.setenv(RKEOPS_CACHE_DIR = '%s')", get_rkeops_cache_dir()),
    "n <- 3e5; x <- matrix(runif(3 * n), n)",     # 9e10 pairs: minutes on 2 cores
    "op <- keops_kernel('Sum_Reduction(Exp(-SqDist(x, y)), 1)', c('x=Vi(3)', 'y=Vj(3)'))",
    "invisible(op(list(x[1:10, ], x[1:10, ])))",   # compiled before the timed part
    sprintf("writeLines('READY', '%s')", paste0(out, ".ready")),
    "t0 <- Sys.time()",
    "r <- tryCatch(op(list(x, x)), interrupt = function(e) 'INTERRUPTED')",
    "el <- as.numeric(difftime(Sys.time(), t0, units = 'secs'))",
    "after <- op(list(matrix(0, 1, 3), matrix(0, 2, 3)))",   # the session still computes
    sprintf("writeLines(c(if (identical(r, 'INTERRUPTED')) 'INTERRUPTED' else 'FINISHED', el, after), '%s')", out)
  ), script)
  pid <- as.integer(system(sprintf("'%s' '%s' >/dev/null 2>&1 & echo $!",
                                   file.path(R.home("bin"), "Rscript"), script), intern = TRUE))
  on.exit(tools::pskill(pid, tools::SIGKILL), add = TRUE)
  deadline <- Sys.time() + 60
  while (!file.exists(paste0(out, ".ready")) && Sys.time() < deadline) Sys.sleep(0.1)
  expect_true(file.exists(paste0(out, ".ready")))
  Sys.sleep(1)
  tools::pskill(pid, tools::SIGINT)
  deadline <- Sys.time() + 30
  while (!file.exists(out) && Sys.time() < deadline) Sys.sleep(0.1)
  res <- if (file.exists(out)) readLines(out) else character()
  expect_identical(res[1], "INTERRUPTED")
  expect_lt(as.numeric(res[2]), 10)            # stopped soon after the signal, not minutes later
  expect_identical(as.numeric(res[3]), 2)      # exp(0) summed over 2 points
})

# ---- compiles (issue 16): interruptible, bounded in time, and never outliving R ----

# A C++ compiler that first sleeps (for `seconds`), recording its pid and its sleep's pid in
# `dir`; `--version` answers at once. It then runs the real compiler.
rkt_slow_compiler <- function(dir, seconds = 60) {
  path <- file.path(dir, "slow-cxx")
  writeLines(c(
    "#!/bin/sh",
    sprintf("case \" $* \" in *\" --version \"*) exec %s --version;; esac", rkeops:::.rk_compiler()$cxx),
    sprintf("echo $$ > '%s'", file.path(dir, "compiler.pid")),
    sprintf("sleep %d & echo $! > '%s'; wait", seconds, file.path(dir, "sleep.pid")),
    sprintf("exec %s \"$@\"", rkeops:::.rk_compiler()$cxx)), path)
  Sys.chmod(path, "0755")
  path
}

# Whether process `pid` is gone (or a zombie nobody reaped) within `seconds`.
rkt_gone <- function(pid, seconds = 5) {
  deadline <- Sys.time() + seconds
  repeat {
    st <- suppressWarnings(tryCatch(readLines(sprintf("/proc/%d/stat", pid), warn = FALSE),
                                    error = function(e) character()))
    if (!length(st) || grepl("^[0-9]+ \\(.*\\) Z", st[1])) return(TRUE)
    if (Sys.time() > deadline) return(FALSE)
    Sys.sleep(0.05)
  }
}

rkt_wait_file <- function(path, seconds) {
  deadline <- Sys.time() + seconds
  while (!(file.exists(path) && length(readLines(path, warn = FALSE))) && Sys.time() < deadline) Sys.sleep(0.05)
  file.exists(path)
}

rkt_temp_files <- function(dir) list.files(dir, pattern = "^\\.tmp-", all.files = TRUE, recursive = TRUE)

# Starts an R script in the background; returns its pid.
rkt_start_r <- function(lines, env = character()) {
  script <- tempfile(fileext = ".R")
  writeLines(lines, script)
  as.integer(system(sprintf("%s '%s' '%s' >/dev/null 2>&1 & echo $!", paste(env, collapse = " "),
                            file.path(R.home("bin"), "Rscript"), script), intern = TRUE))
}

test_that("SIGINT during a compile stops it at once with an interrupt condition, and removes its files", {
  skip_on_os("windows")
  work <- tempfile("rkt-int")
  dir.create(work)
  cache <- file.path(work, "cache")
  on.exit(unlink(work, recursive = TRUE), add = TRUE)
  cxx <- rkt_slow_compiler(work)
  out <- file.path(work, "out")
  pid <- rkt_start_r(c(
    "suppressMessages(library(rkeops)); invisible(rkeops_use_cpu())",
    "op <- keops_kernel('Sum_Reduction(Exp(-SqDist(x, y)) * IntInv(7), 1)', c('x=Vi(3)', 'y=Vj(3)'))",
    "x <- matrix(runif(30), 10)",
    "t0 <- Sys.time()",
    "r <- tryCatch(op(list(x, x)), interrupt = function(e) 'INTERRUPTED',",
    "              error = function(e) paste('ERROR', class(e)[1], conditionMessage(e)))",
    "el <- as.numeric(difftime(Sys.time(), t0, units = 'secs'))",
    sprintf("writeLines(c(r, el), '%s')", out)),
    env = c(paste0("RKEOPS_CACHE_DIR=", cache), paste0("RKEOPS_CXX=", cxx)))
  on.exit(tools::pskill(pid, tools::SIGKILL), add = TRUE)
  expect_true(rkt_wait_file(file.path(work, "sleep.pid"), 60))   # the compiler is running
  Sys.sleep(0.5)
  t0 <- Sys.time()
  tools::pskill(pid, tools::SIGINT)
  expect_true(rkt_wait_file(out, 20))
  res <- readLines(out)
  expect_identical(res[1], "INTERRUPTED")
  expect_lt(as.numeric(difftime(Sys.time(), t0, units = "secs")), 5)   # not the 60 s of the compile
  expect_true(rkt_gone(as.integer(readLines(file.path(work, "compiler.pid")))))
  expect_true(rkt_gone(as.integer(readLines(file.path(work, "sleep.pid")))))
  expect_length(rkt_temp_files(cache), 0)
  expect_false(dir.exists(file.path(cache, "failed")))          # an interrupt is not a failure
})

test_that("a compile longer than compile_timeout stops with a classed error", {
  skip_on_os("windows")
  old <- get_rkeops_options()
  work <- tempfile("rkt-timeout")
  dir.create(work)
  old_cxx <- Sys.getenv("RKEOPS_CXX", NA)
  on.exit({
    set_rkeops_options(old)
    if (is.na(old_cxx)) Sys.unsetenv("RKEOPS_CXX") else Sys.setenv(RKEOPS_CXX = old_cxx)
    unlink(work, recursive = TRUE)
  }, add = TRUE)
  set_rkeops_cache_dir(file.path(work, "cache"), verbose = FALSE)
  rkeops_use_cpu()
  Sys.setenv(RKEOPS_CXX = rkt_slow_compiler(work))
  set_rkeops_options(list(compile_timeout = 1.5))
  expect_identical(get_rkeops_options("compile_timeout"), 1.5)
  op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)) * IntInv(9), 1)", c("x=Vi(2)", "y=Vj(2)"))
  t0 <- Sys.time()
  err <- tryCatch(op(list(matrix(1, 2, 2), matrix(1, 3, 2))), error = identity)
  expect_lt(as.numeric(difftime(Sys.time(), t0, units = "secs")), 8)
  expect_s3_class(err, "rkeops_compile_timeout_error")
  expect_s3_class(err, "rkeops_compile_error")
  expect_match(conditionMessage(err), "did not finish within 1.5 s")
  expect_match(conditionMessage(err), "compile_timeout")
  expect_true(rkt_gone(as.integer(readLines(file.path(work, "sleep.pid")))))
  expect_length(rkt_temp_files(file.path(work, "cache")), 0)
  # the option is checked
  for (bad in list(0, -1, NA_real_, "600", c(1, 2))) {
    expect_error(set_rkeops_options(list(compile_timeout = bad)), class = "rkeops_option_error")
  }
  set_rkeops_options(list(compile_timeout = Inf))   # no limit
  expect_identical(rkeops:::.rk_engine_options()$compile_timeout, 0)
})

test_that("the compiler dies with R, and its temp files go with it", {
  skip_on_os("windows")
  skip_on_os("mac")   # PR_SET_PDEATHSIG is Linux only
  work <- tempfile("rkt-kill")
  dir.create(work)
  cache <- file.path(work, "cache")
  on.exit(unlink(work, recursive = TRUE), add = TRUE)
  pid <- rkt_start_r(c(
    "suppressMessages(library(rkeops)); invisible(rkeops_use_cpu())",
    "op <- keops_kernel('Sum_Reduction(Exp(-SqDist(x, y)) * IntInv(11), 1)', c('x=Vi(3)', 'y=Vj(3)'))",
    "x <- matrix(runif(30), 10)",
    "op(list(x, x))"),
    env = c(paste0("RKEOPS_CACHE_DIR=", cache), paste0("RKEOPS_CXX=", rkt_slow_compiler(work))))
  on.exit(tools::pskill(pid, tools::SIGKILL), add = TRUE)
  expect_true(rkt_wait_file(file.path(work, "sleep.pid"), 60))
  expect_gt(length(rkt_temp_files(cache)), 0)   # the generated source
  tools::pskill(pid, tools::SIGKILL)
  expect_true(rkt_gone(as.integer(readLines(file.path(work, "compiler.pid")))))
  expect_true(rkt_gone(as.integer(readLines(file.path(work, "sleep.pid")))))
  deadline <- Sys.time() + 5
  while (length(rkt_temp_files(cache)) && Sys.time() < deadline) Sys.sleep(0.05)
  expect_length(rkt_temp_files(cache), 0)
})

test_that("SIGINT stops a kernel running as one long chunk (1000-NN, few queries) within a second or so", {
  skip_on_os("windows")
  out <- tempfile()
  ready <- paste0(out, ".ready")
  pid <- rkt_start_r(c(
    "suppressMessages(library(rkeops)); invisible(rkeops_use_cpu())",
    "set.seed(1); x <- matrix(runif(3 * 5000), ncol = 3); y <- matrix(runif(3 * 4e5), ncol = 3)",
    "op <- keops_kernel('ArgKMin_Reduction(SqDist(x, y), 1000, 1)', c('x=Vi(3)', 'y=Vj(3)'))",
    "invisible(op(list(x[1:2, ], y[1:2000, ])))",   # compiled before the timed part
    sprintf("writeLines('READY', '%s')", ready),
    "t0 <- Sys.time()",
    "r <- tryCatch(op(list(x, y)), interrupt = function(e) 'INTERRUPTED')",
    "el <- as.numeric(difftime(Sys.time(), t0, units = 'secs'))",
    sprintf("writeLines(c(if (identical(r, 'INTERRUPTED')) 'INTERRUPTED' else 'FINISHED', el), '%s')", out)),
    env = paste0("RKEOPS_CACHE_DIR=", get_rkeops_cache_dir()))
  on.exit(tools::pskill(pid, tools::SIGKILL), add = TRUE)
  expect_true(rkt_wait_file(ready, 120))
  Sys.sleep(1)
  t0 <- Sys.time()
  tools::pskill(pid, tools::SIGINT)
  expect_true(rkt_wait_file(out, 60))
  res <- readLines(out)
  expect_identical(res[1], "INTERRUPTED")
  # chunks of ~0.5 s: measured 0.44-0.54 s on 2 shared cores (6-10 s with chunks of 2e8 terms)
  expect_lt(as.numeric(difftime(Sys.time(), t0, units = "secs")), 2)
})

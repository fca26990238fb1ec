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

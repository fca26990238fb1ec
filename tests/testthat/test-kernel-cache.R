# The on-disk kernel cache: reuse across R processes, damaged files rebuilt, concurrent
# compilation, statistics, cleaning, a private directory.

rscript <- file.path(R.home("bin"), "Rscript")

# Runs `code` in a fresh R process with the given environment; returns its output lines.
run_r <- function(code, env = character(), wait = TRUE, stdout = TRUE) {
  script <- tempfile(fileext = ".R")
  writeLines(c("suppressMessages(library(rkeops))", code), script)
  system2(rscript, script, stdout = stdout, stderr = stdout, env = env, wait = wait)
}

kernel_code <- function(formula) c(
  "x <- matrix(as.double(1:6), 3)",
  sprintf("op <- keops_kernel('%s', c('x=Vi(2)', 'y=Vj(2)'))", formula),
  "cat(sprintf('%.6f', sum(op(list(x, x)))), '\\n')"
)
fresh_formula <- function() {
  sprintf("Sum_Reduction(Exp(-SqDist(x, y) * %d), 1)", sample.int(1e8, 1))
}

test_that("a second R process reuses the compiled kernel without compiling", {
  dir <- tempfile("rkcache")
  f <- fresh_formula()
  env <- paste0("RKEOPS_CACHE_DIR=", dir)
  first <- run_r(kernel_code(f), env)
  expect_true(any(grepl("^[0-9.]+", first)), label = paste(first, collapse = "\n"))
  expect_true(length(list.files(dir, pattern = "\\.so$")) == 1)
  second <- run_r(kernel_code(f), c(env, "RKEOPS_FORBID_COMPILE=1"))
  expect_identical(second, first)
  # and the forbid switch really forbids: a new formula fails there
  third <- suppressWarnings(run_r(kernel_code(fresh_formula()), c(env, "RKEOPS_FORBID_COMPILE=1")))
  expect_true(any(grepl("forbidden", third)))
})

test_that("a truncated or corrupted cached kernel is rebuilt, not loaded", {
  dir <- tempfile("rkcache")
  f <- fresh_formula()
  env <- paste0("RKEOPS_CACHE_DIR=", dir)
  good <- run_r(kernel_code(f), env)
  so <- list.files(dir, pattern = "\\.so$", full.names = TRUE)
  expect_length(so, 1)
  bytes <- readBin(so, "raw", file.size(so))
  writeBin(bytes[seq_len(length(bytes) %/% 2)], so)           # truncated
  expect_identical(run_r(kernel_code(f), env), good)
  expect_equal(file.size(so), length(bytes))                  # rebuilt in place
  bytes <- readBin(so, "raw", file.size(so))
  bytes[length(bytes) %/% 2] <- as.raw(bitwXor(as.integer(bytes[length(bytes) %/% 2]), 255L))
  writeBin(bytes, so)                                         # same size, one byte flipped
  expect_identical(run_r(kernel_code(f), env), good)
})

test_that("two processes compiling the same new formula at once both succeed", {
  dir <- tempfile("rkcache")
  f <- fresh_formula()
  env <- paste0("RKEOPS_CACHE_DIR=", dir)
  outs <- c(tempfile(), tempfile())
  for (o in outs) run_r(kernel_code(f), env, wait = FALSE, stdout = o)
  deadline <- Sys.time() + 120
  while (!all(file.exists(outs) & file.size(outs) > 0) && Sys.time() < deadline) Sys.sleep(0.2)
  Sys.sleep(0.5)
  res <- lapply(outs, readLines)
  expect_true(grepl("^[0-9.]+", res[[1]][length(res[[1]])]), label = paste(res[[1]], collapse = "\n"))
  expect_identical(res[[1]], res[[2]])
  expect_length(list.files(dir, pattern = "\\.so$"), 1)
  expect_length(list.files(dir, pattern = "^\\.tmp"), 0)
})

test_that("stat, clean and the directory functions work on a private directory", {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old), add = TRUE)
  dir <- tempfile("rkcache")
  set_rkeops_cache_dir(dir, verbose = FALSE)
  expect_equal(normalizePath(get_rkeops_cache_dir()), normalizePath(dir))
  op <- keops_kernel(fresh_formula(), c("x=Vi(2)", "y=Vj(2)"))
  op(list(matrix(1, 2, 2), matrix(1, 2, 2)))
  st <- stat_rkeops_cache_dir(verbose = FALSE)
  expect_equal(st$files, 1)
  expect_gt(st$bytes, 0)
  expect_equal(as.character(file.info(dir)$mode), "700")
  expect_message(clean_rkeops(verbose = TRUE), "removed 1")
  expect_equal(stat_rkeops_cache_dir(verbose = FALSE)$files, 0)
  # after cleaning, the kernel is compiled again on demand
  expect_equal(op(list(matrix(1, 2, 2), matrix(1, 2, 2))), matrix(2, 2, 1))
  expect_error(set_rkeops_cache_dir(NA), class = "rkeops_option_error")
})

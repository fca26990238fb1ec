# The on-disk kernel cache, seen from fresh R processes (the in-session memory cache would hide
# the disk otherwise): reuse without compiling, damaged files rebuilt and never loaded,
# concurrent compilation, statistics, cleaning, a private directory. Each test uses its own
# temporary cache directory and restores the options.

rkt_rscript <- file.path(R.home("bin"), "Rscript")

# A formula no other test compiles.
rkt_fresh_formula <- function() {
  sprintf("Sum_Reduction(Exp(-SqDist(x,y)*IntInv(%d))*Elem(y,0),1)", sample.int(1e8, 1) + 10)
}

# An R script that computes `formula` on fixed data and prints the result (and, verbose,
# what the cache did).
rkt_cache_script <- function(formula, verbose = TRUE) {
  script <- tempfile(fileext = ".R")
  writeLines(c(
    "suppressMessages(library(rkeops))",
    "invisible(rkeops_use_cpu())",
    if (verbose) "invisible(rkeops_enable_verbosity())",
    "x <- matrix(c(0.1, 0.2, 0.3, 1, 2, 3), 3)",
    "y <- matrix(c(0.5, 1.5, 2.5, 3.5, 1, 0, 1, 0), 4)",
    sprintf("op <- keops_kernel('%s', c('x=Vi(2)', 'y=Vj(2)'))", formula),
    "r <- tryCatch(op(list(x, y)), error = function(e) { cat('ERROR', class(e)[1], conditionMessage(e), '\\n'); NULL })",
    "if (!is.null(r)) cat('RESULT', sprintf('%.15g', r), '\\n')"), script)
  script
}

rkt_run_r <- function(script, dir, forbid = FALSE, wait = TRUE, out = TRUE) {
  env <- c(paste0("RKEOPS_CACHE_DIR=", dir), if (forbid) "RKEOPS_FORBID_COMPILE=1" else "RKEOPS_FORBID_COMPILE=")
  suppressWarnings(system2(rkt_rscript, script, stdout = out, stderr = out, env = env, wait = wait))
}
rkt_result_line <- function(lines) grep("^RESULT", lines, value = TRUE)
# compiled kernels: .so for the CPU, .cubin for the GPU
rkt_sos <- function(dir) list.files(dir, pattern = "\\.(so|cubin)$", full.names = TRUE)

test_that("a second R process reuses the compiled kernel without compiling", {
  dir <- tempfile("rkt-cache")
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  f <- rkt_fresh_formula()
  first <- rkt_run_r(rkt_cache_script(f), dir)
  expect_length(rkt_result_line(first), 1)
  expect_true(any(grepl("compiled a CPU kernel", first)), label = paste(first, collapse = "\n"))
  expect_length(rkt_sos(dir), 1)
  second <- rkt_run_r(rkt_cache_script(f), dir, forbid = TRUE)
  expect_identical(rkt_result_line(second), rkt_result_line(first))
  expect_false(any(grepl("compiled", second)), label = paste(second, collapse = "\n"))
  # the switch really forbids compiling: a new formula fails in that process
  third <- rkt_run_r(rkt_cache_script(rkt_fresh_formula()), dir, forbid = TRUE)
  expect_length(rkt_result_line(third), 0)
  expect_true(any(grepl("ERROR rkeops_option_error .*forbidden", third)), label = paste(third, collapse = "\n"))
  expect_length(rkt_sos(dir), 1)
})

test_that("a truncated or corrupted cached kernel is rebuilt, never loaded", {
  dir <- tempfile("rkt-cache")
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  f <- rkt_fresh_formula()
  script <- rkt_cache_script(f)
  good <- rkt_result_line(rkt_run_r(script, dir))
  expect_length(good, 1)
  so <- rkt_sos(dir)
  expect_length(so, 1)
  bytes <- readBin(so, "raw", file.size(so))
  damage <- list(
    truncated = function(b) b[seq_len(length(b) %/% 2)],
    flipped = function(b) { k <- length(b) %/% 2; b[k] <- as.raw(bitwXor(as.integer(b[k]), 0xff)); b },
    empty = function(b) raw(0),
    garbage = function(b) as.raw(sample(0:255, length(b), replace = TRUE))
  )
  for (how in names(damage)) {
    writeBin(damage[[how]](bytes), so)
    # a process that may not compile must refuse the damaged file rather than load it
    refused <- rkt_run_r(script, dir, forbid = TRUE)
    expect_length(rkt_result_line(refused), 0)
    expect_true(any(grepl("ERROR", refused)), label = paste(how, paste(refused, collapse = "\n")))
    if (how == "truncated") {
      # a process that may compile rebuilds it and gets the right answer
      writeBin(damage[[how]](bytes), so)
      rebuilt <- rkt_run_r(script, dir)
      expect_identical(rkt_result_line(rebuilt), good, label = paste(how, "result"))
      expect_true(any(grepl("compiled a CPU kernel", rebuilt)), label = paste(how, paste(rebuilt, collapse = "\n")))
    }
  }
  # a missing sidecar (.meta) counts as damage too
  unlink(paste0(so, ".meta"))
  expect_identical(rkt_result_line(rkt_run_r(script, dir)), good)
  expect_true(file.exists(paste0(so, ".meta")))
  # the rebuilt file is good: a process that may not compile loads it
  expect_identical(rkt_result_line(rkt_run_r(script, dir, forbid = TRUE)), good)
})

test_that("in a session, a loaded kernel is kept in memory; clean_rkeops() forgets it", {
  old <- get_rkeops_options()
  dir <- tempfile("rkt-cache")
  on.exit({ set_rkeops_options(old); unlink(dir, recursive = TRUE) }, add = TRUE)
  set_rkeops_cache_dir(dir, verbose = FALSE)
  rkeops_use_cpu()
  rkeops_enable_verbosity()
  op <- keops_kernel(rkt_fresh_formula(), c("x=Vi(2)", "y=Vj(2)"))
  x <- matrix(runif(6), 3)
  y <- matrix(runif(8), 4)
  expect_message(ref <- op(list(x, y)), "compiled a CPU kernel")
  so <- rkt_sos(dir)
  # damaged on disk by replacing the file (as another process would: never in place, which
  # would break the mapping this session holds) ...
  tmp <- file.path(dir, "rkt-damaged")
  writeBin(raw(10), tmp)
  file.rename(tmp, so)
  expect_silent(again <- op(list(x, y)))                  # ... but never read again here
  expect_identical(again, ref)
  clean_rkeops(verbose = FALSE)
  expect_length(rkt_sos(dir), 0)
  expect_message(again <- op(list(x, y)), "compiled a CPU kernel")   # forgotten: compiled again
  expect_identical(again, ref)
})

test_that("two processes compiling the same new formula at once both succeed", {
  dir <- tempfile("rkt-cache")
  on.exit(unlink(dir, recursive = TRUE), add = TRUE)
  script <- rkt_cache_script(rkt_fresh_formula(), verbose = FALSE)
  outs <- c(tempfile(), tempfile(), tempfile())
  for (o in outs) rkt_run_r(script, dir, wait = FALSE, out = o)
  deadline <- Sys.time() + 180
  done <- function() all(vapply(outs, function(o) length(rkt_result_line(readLines(o, warn = FALSE))) +
                                  sum(grepl("ERROR", readLines(o, warn = FALSE))) > 0, TRUE))
  while (!all(file.exists(outs)) || !done()) {
    if (Sys.time() > deadline) break
    Sys.sleep(0.2)
  }
  res <- lapply(outs, readLines)
  for (r in res) expect_length(rkt_result_line(r), 1)
  expect_identical(rkt_result_line(res[[2]]), rkt_result_line(res[[1]]))
  expect_identical(rkt_result_line(res[[3]]), rkt_result_line(res[[1]]))
  Sys.sleep(0.3)
  expect_length(rkt_sos(dir), 1)
  expect_length(list.files(dir, pattern = "^\\.tmp", all.files = TRUE), 0)
  # and the file they left is good: a process that may not compile uses it
  expect_identical(rkt_result_line(rkt_run_r(script, dir, forbid = TRUE)), rkt_result_line(res[[1]]))
})

test_that("stat_rkeops_cache_dir() counts kernels and clean_rkeops() empties the directory", {
  old <- get_rkeops_options()
  dir <- tempfile("rkt-cache")
  on.exit({ set_rkeops_options(old); unlink(dir, recursive = TRUE) }, add = TRUE)
  expect_invisible(set_rkeops_cache_dir(dir, verbose = FALSE))
  st <- stat_rkeops_cache_dir(verbose = FALSE)
  expect_equal(st$files, 0)
  expect_equal(normalizePath(st$dir), normalizePath(dir))
  x <- matrix(runif(6), 3)
  for (k in 1:2) keops_kernel(rkt_fresh_formula(), c("x=Vi(2)", "y=Vj(2)"))(list(x, x))
  st <- stat_rkeops_cache_dir(verbose = FALSE)
  expect_equal(st$files, 2)
  expect_equal(st$bytes, sum(file.size(rkt_sos(dir))))
  expect_message(stat_rkeops_cache_dir(verbose = TRUE), "2 kernel")
  writeLines("not mine", file.path(dir, "notes.txt"))    # files the cache does not own stay
  expect_message(clean_rkeops(verbose = TRUE), "removed 2 cached kernel")
  expect_equal(stat_rkeops_cache_dir(verbose = FALSE)$files, 0)
  expect_length(list.files(dir, pattern = "\\.(so|cubin|meta)$"), 0)
  expect_true(file.exists(file.path(dir, "notes.txt")))
  clean_rkeops(verbose = FALSE, remove_cache_dir = TRUE)
  expect_false(dir.exists(dir))
})

test_that("cache directories are private (mode 0700), whoever creates them", {
  old <- get_rkeops_options()
  base <- tempfile("rkt-cache")
  on.exit({ set_rkeops_options(old); unlink(base, recursive = TRUE) }, add = TRUE)
  dir <- file.path(base, "a", "b")
  set_rkeops_cache_dir(dir, verbose = FALSE)
  expect_identical(as.character(file.info(dir)$mode), "700")
  # a directory the engine creates itself (from RKEOPS_CACHE_DIR in a fresh process)
  dir2 <- file.path(base, "c", "d")
  out <- rkt_run_r(rkt_cache_script(rkt_fresh_formula(), verbose = FALSE), dir2)
  expect_length(rkt_result_line(out), 1)
  expect_identical(as.character(file.info(dir2)$mode), "700")
})

test_that("a cache directory other users can write to is refused", {
  skip_on_os("windows")
  old <- get_rkeops_options()
  dir <- tempfile("rkt-cache")
  on.exit({ set_rkeops_options(old); unlink(dir, recursive = TRUE) }, add = TRUE)
  dir.create(dir)
  Sys.chmod(dir, "0777", use_umask = FALSE)
  set_rkeops_cache_dir(dir, verbose = FALSE)
  expect_error(keops_kernel(rkt_fresh_formula(), c("x=Vi(2)", "y=Vj(2)"))(list(matrix(1, 1, 2), matrix(1, 1, 2))),
               class = "rkeops_cache_error")
  expect_error(stat_rkeops_cache_dir(verbose = FALSE), "writable by other users")
})

test_that("set_rkeops_cache_dir() moves the cache; NULL goes back to the default", {
  old <- get_rkeops_options()
  dir <- tempfile("rkt-cache")
  on.exit({ set_rkeops_options(old); unlink(dir, recursive = TRUE) }, add = TRUE)
  default <- get_rkeops_cache_dir()
  res <- set_rkeops_cache_dir(dir, verbose = FALSE)
  expect_identical(res, dir)
  expect_identical(get_rkeops_cache_dir(), dir)
  expect_identical(get_rkeops_options("cache_dir"), dir)
  expect_message(set_rkeops_cache_dir(dir, verbose = TRUE), dir, fixed = TRUE)
  keops_kernel(rkt_fresh_formula(), c("x=Vi(2)", "y=Vj(2)"))(list(matrix(1, 1, 2), matrix(1, 1, 2)))
  expect_length(rkt_sos(dir), 1)
  set_rkeops_cache_dir(NULL, verbose = FALSE)
  expect_null(get_rkeops_options("cache_dir"))
  expect_identical(get_rkeops_cache_dir(), default)
  expect_error(set_rkeops_cache_dir(c("a", "b"), verbose = FALSE), class = "rkeops_option_error")
  expect_error(set_rkeops_cache_dir(NA_character_, verbose = FALSE), class = "rkeops_option_error")
  # RKEOPS_CACHE_DIR decides the default
  old_env <- Sys.getenv("RKEOPS_CACHE_DIR", NA)
  on.exit(if (is.na(old_env)) Sys.unsetenv("RKEOPS_CACHE_DIR") else Sys.setenv(RKEOPS_CACHE_DIR = old_env), add = TRUE)
  Sys.setenv(RKEOPS_CACHE_DIR = dir)
  expect_identical(get_rkeops_cache_dir(), dir)
})

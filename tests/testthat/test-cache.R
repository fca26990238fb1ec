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
  # as RKeOps: the disk usage as a string
  expect_true(is.character(st))
  expect_match(st, "^[0-9.]+[KMG]?$")
  expect_identical(as.vector(unclass(st)), rkeops:::.rk_bytes_text(st$bytes))
  expect_identical(rkeops:::.rk_bytes_text(c(512)), "512")
  expect_identical(rkeops:::.rk_bytes_text(20480), "20K")
  expect_identical(rkeops:::.rk_bytes_text(1.5 * 1024^2), "1.5M")
  expect_message(stat_rkeops_cache_dir(verbose = TRUE), "2 kernel")
  writeLines("not mine", file.path(dir, "notes.txt"))    # files the cache does not own stay
  expect_message(clean_rkeops(verbose = TRUE, all = TRUE), "removed 2 cached kernel")
  expect_equal(stat_rkeops_cache_dir(verbose = FALSE)$files, 0)
  expect_identical(as.vector(unclass(stat_rkeops_cache_dir(verbose = FALSE))), "0")
  expect_length(list.files(dir, pattern = "\\.(so|cubin|meta)$"), 0)
  expect_true(file.exists(file.path(dir, "notes.txt")))
  # nor is the directory removed with them (issue 16)
  expect_error(clean_rkeops(verbose = FALSE, remove_cache_dir = TRUE), "notes.txt", class = "rkeops_cache_error")
  expect_true(file.exists(file.path(dir, "notes.txt")))
  unlink(file.path(dir, "notes.txt"))
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
  before <- get_rkeops_cache_dir()
  # refused when set (and the option stays as it was) ...
  expect_error(set_rkeops_cache_dir(dir, verbose = FALSE), "writable by other users", class = "rkeops_cache_error")
  expect_identical(get_rkeops_cache_dir(), before)
  # ... and when it becomes so after being set
  Sys.chmod(dir, "0700", use_umask = FALSE)
  set_rkeops_cache_dir(dir, verbose = FALSE)
  Sys.chmod(dir, "0777", use_umask = FALSE)
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
  expect_identical(get_rkeops_options("cache_dir"), default)     # the option holds the path, as RKeOps
  expect_identical(get_rkeops_cache_dir(), default)
  expect_error(set_rkeops_cache_dir(c("a", "b"), verbose = FALSE), class = "rkeops_option_error")
  expect_error(set_rkeops_cache_dir(NA_character_, verbose = FALSE), class = "rkeops_option_error")
  # RKEOPS_CACHE_DIR decides the default
  old_env <- Sys.getenv("RKEOPS_CACHE_DIR", NA)
  on.exit(if (is.na(old_env)) Sys.unsetenv("RKEOPS_CACHE_DIR") else Sys.setenv(RKEOPS_CACHE_DIR = old_env), add = TRUE)
  Sys.setenv(RKEOPS_CACHE_DIR = dir)
  expect_identical(get_rkeops_cache_dir(), dir)
})

# ---- issue 16: who may change the cache, what cleaning may remove, read-only caches, full disks ----

rkt_kernel_in <- function(dir, formula = rkt_fresh_formula()) {
  old <- get_rkeops_options()
  on.exit(set_rkeops_options(old))
  set_rkeops_cache_dir(dir, verbose = FALSE)
  rkeops_use_cpu()
  keops_kernel(formula, c("x=Vi(2)", "y=Vj(2)"))(list(matrix(1, 1, 2), matrix(1, 2, 2)))
}

test_that("a cache under a directory other users can write to is refused, unless it is sticky", {
  skip_on_os("windows")
  old <- get_rkeops_options()
  base <- tempfile("rkt-shared")
  on.exit({ set_rkeops_options(old); unlink(base, recursive = TRUE) }, add = TRUE)
  dir.create(base)
  Sys.chmod(base, "0777", use_umask = FALSE)
  dir <- file.path(base, "mine", "cache")
  err <- tryCatch(rkt_kernel_in(dir), error = identity)
  expect_s3_class(err, "rkeops_cache_error")
  expect_match(conditionMessage(err), paste0("'", normalizePath(base), "', which holds"), fixed = TRUE)
  expect_match(conditionMessage(err), "writable by other users")
  Sys.chmod(base, "1777", use_umask = FALSE)   # as /tmp
  expect_equal(rkt_kernel_in(dir)[1, 1], 2)
})

test_that("clean_rkeops() removes only what rkeops wrote, and never follows links", {
  skip_on_os("windows")
  old <- get_rkeops_options()
  dir <- tempfile("rkt-mine")       # a directory of the user's, with files of theirs
  elsewhere <- tempfile("rkt-elsewhere")
  on.exit({ set_rkeops_options(old); unlink(c(dir, elsewhere), recursive = TRUE) }, add = TRUE)
  dir.create(file.path(dir, "failed"), recursive = TRUE)
  dir.create(elsewhere)
  key_like <- strrep("ab", 32)
  theirs <- c(file.path(dir, "failed", "results.csv"), file.path(dir, key_like), file.path(dir, paste0(key_like, ".so")),
              file.path(dir, "notes.txt"))
  for (f in theirs) writeLines("the user's", f)
  writeLines("precious", file.path(elsewhere, paste0(strrep("cd", 32), ".so")))
  file.symlink(elsewhere, file.path(dir, "linked"))
  expect_equal(rkt_kernel_in(dir)[1, 1], 2)
  set_rkeops_cache_dir(dir, verbose = FALSE)
  expect_equal(stat_rkeops_cache_dir(verbose = FALSE)$files, 1)
  clean_rkeops(verbose = FALSE)
  expect_true(all(file.exists(theirs)))
  expect_true(file.exists(file.path(elsewhere, paste0(strrep("cd", 32), ".so"))))
  expect_length(rkt_sos(dir), 1)      # the user's file named like a kernel stays
  expect_equal(stat_rkeops_cache_dir(verbose = FALSE)$files, 0)
  # the directory is not removed: it holds other files, and rkeops did not create it
  err <- tryCatch(clean_rkeops(verbose = FALSE, remove_cache_dir = TRUE), error = identity)
  expect_s3_class(err, "rkeops_cache_error")
  expect_match(conditionMessage(err), "notes.txt", fixed = TRUE)
  expect_true(all(file.exists(theirs)))
  # a 'failed' link is not followed either
  unlink(file.path(dir, "failed"), recursive = TRUE)
  file.symlink(elsewhere, file.path(dir, "failed"))
  writeLines("    1| shaped like a dump", file.path(elsewhere, "0123456789abcdef.cpp"))
  clean_rkeops(verbose = FALSE)
  expect_length(list.files(elsewhere), 2)
})

test_that("clean_rkeops(remove_cache_dir = TRUE) removes a directory rkeops made", {
  old <- get_rkeops_options()
  base <- tempfile("rkt-made")
  on.exit({ set_rkeops_options(old); unlink(base, recursive = TRUE) }, add = TRUE)
  dir <- file.path(base, "cache")
  expect_equal(rkt_kernel_in(dir)[1, 1], 2)
  set_rkeops_cache_dir(dir, verbose = FALSE)
  clean_rkeops(verbose = FALSE, remove_cache_dir = TRUE)
  expect_false(dir.exists(dir))
  expect_true(dir.exists(base))
  # and one the engine made from RKEOPS_CACHE_DIR in another process
  dir2 <- file.path(base, "cache2")
  expect_length(rkt_result_line(rkt_run_r(rkt_cache_script(rkt_fresh_formula(), verbose = FALSE), dir2)), 1)
  set_rkeops_cache_dir(dir2, verbose = FALSE)
  clean_rkeops(verbose = FALSE, remove_cache_dir = TRUE)
  expect_false(dir.exists(dir2))
})

test_that("a kernel rebuilt by another process while this one has it loaded does not disturb it", {
  old <- get_rkeops_options()
  dir <- tempfile("rkt-cache")
  on.exit({ set_rkeops_options(old); unlink(dir, recursive = TRUE) }, add = TRUE)
  set_rkeops_cache_dir(dir, verbose = FALSE)
  rkeops_use_cpu()
  f <- rkt_fresh_formula()
  op <- keops_kernel(f, c("x=Vi(2)", "y=Vj(2)"))
  x <- matrix(c(0.1, 0.2, 0.3, 1, 2, 3), 3)
  y <- matrix(c(0.5, 1.5, 2.5, 3.5, 1, 0, 1, 0), 4)
  ref <- op(list(x, y))
  so <- rkt_sos(dir)
  unlink(paste0(so, ".meta"))       # the other process sees damage and rebuilds
  other <- rkt_run_r(rkt_cache_script(f), dir)
  expect_true(any(grepl("compiled a CPU kernel", other)), label = paste(other, collapse = "\n"))
  expect_identical(op(list(x, y)), ref)     # this session's mapping is intact
})

# Runs `script` in a separate R process that sees `dir` read-only: as root through a read-only
# bind mount in a mount namespace of its own, otherwise through chmod 555. NULL when neither works.
rkt_run_read_only <- function(script, dir, forbid = FALSE) {
  env <- c(paste0("RKEOPS_CACHE_DIR=", dir), if (forbid) "RKEOPS_FORBID_COMPILE=1" else "RKEOPS_FORBID_COMPILE=")
  if (Sys.info()[["effective_user"]] == "root") {
    if (!nzchar(Sys.which("unshare"))) return(NULL)
    cmd <- sprintf("mount --bind '%s' '%s' && mount -o remount,bind,ro '%s' && exec env %s '%s' '%s'",
                   dir, dir, dir, paste(env, collapse = " "), rkt_rscript, script)
    out <- suppressWarnings(system2("unshare", c("-m", "sh", "-c", shQuote(cmd)), stdout = TRUE, stderr = TRUE))
    if (!is.null(attr(out, "status")) && !length(rkt_result_line(out)) && !any(grepl("ERROR", out))) return(NULL)
    return(out)
  }
  Sys.chmod(dir, "0555", use_umask = FALSE)
  on.exit(Sys.chmod(dir, "0700", use_umask = FALSE))
  rkt_run_r(script, dir, forbid = forbid)
}

test_that("a read-only cache serves its kernels; new ones are compiled elsewhere, said once", {
  skip_on_os("windows")
  dir <- tempfile("rkt-cache")
  on.exit({ Sys.chmod(dir, "0700", use_umask = FALSE); unlink(dir, recursive = TRUE) }, add = TRUE)
  f <- rkt_fresh_formula()
  first <- rkt_result_line(rkt_run_r(rkt_cache_script(f), dir))
  expect_length(first, 1)
  before <- list.files(dir, all.files = TRUE, recursive = TRUE)
  out <- rkt_run_read_only(rkt_cache_script(f), dir, forbid = TRUE)
  if (is.null(out)) skip("cannot make a directory read-only here")
  expect_identical(rkt_result_line(out), first)      # loaded without compiling
  # two new formulas: compiled into a temporary directory, with one message
  script <- tempfile(fileext = ".R")
  writeLines(c(readLines(rkt_cache_script(rkt_fresh_formula())),
               readLines(rkt_cache_script(rkt_fresh_formula()))[-(1:3)]), script)
  out <- rkt_run_read_only(script, dir)
  expect_length(rkt_result_line(out), 2)
  expect_length(grep("read-only", out), 1)
  expect_length(grep("compiled a CPU kernel", out), 2)
  expect_identical(list.files(dir, all.files = TRUE, recursive = TRUE), before)
})

test_that("a full disk is a cache error saying so, with no dump and no temp files", {
  skip_on_os("windows")
  old <- get_rkeops_options()
  work <- tempfile("rkt-full")
  dir.create(work)
  old_cxx <- Sys.getenv("RKEOPS_CXX", NA)
  on.exit({
    set_rkeops_options(old)
    if (is.na(old_cxx)) Sys.unsetenv("RKEOPS_CXX") else Sys.setenv(RKEOPS_CXX = old_cxx)
    unlink(work, recursive = TRUE)
  }, add = TRUE)
  # the compiler runs out of space while writing the library
  cxx <- file.path(work, "full-cxx")
  writeLines(c("#!/bin/sh",
               sprintf("case \" $* \" in *\" --version \"*) exec %s --version;; esac", rkeops:::.rk_compiler()$cxx),
               "echo '/usr/bin/ld: final link failed: No space left on device' >&2",
               "echo 'collect2: error: ld returned 1 exit status' >&2", "exit 1"), cxx)
  Sys.chmod(cxx, "0755")
  Sys.setenv(RKEOPS_CXX = cxx)
  cache <- file.path(work, "cache")
  set_rkeops_cache_dir(cache, verbose = FALSE)
  rkeops_use_cpu()
  err <- tryCatch(keops_kernel(rkt_fresh_formula(), c("x=Vi(2)", "y=Vj(2)"))(list(matrix(1, 1, 2), matrix(1, 2, 2))),
                  error = identity)
  expect_s3_class(err, "rkeops_cache_error")
  expect_match(conditionMessage(err), "disk is full")
  expect_match(conditionMessage(err), "No space left on device", fixed = TRUE)
  expect_false(dir.exists(file.path(cache, "failed")))
  expect_length(list.files(cache, pattern = "^\\.tmp", all.files = TRUE), 0)

  # a real full file system (root: a tiny tmpfs in a mount namespace of its own)
  skip_if_not(Sys.info()[["effective_user"]] == "root" && nzchar(Sys.which("unshare")), "needs root for a tmpfs")
  small <- file.path(work, "small")
  dir.create(small, mode = "0700")
  script <- rkt_cache_script(rkt_fresh_formula(), verbose = FALSE)
  cmd <- sprintf("mount -t tmpfs -o size=8k,mode=0700 tmpfs '%s' && RKEOPS_CACHE_DIR='%s' '%s' '%s'; ls -A '%s'",
                 small, small, rkt_rscript, script, small)
  out <- suppressWarnings(system2("unshare", c("-m", "sh", "-c", shQuote(cmd)), stdout = TRUE, stderr = TRUE))
  expect_true(any(grepl("ERROR rkeops_cache_error .*is full", out)), label = paste(out, collapse = "\n"))
  expect_false(any(grepl("^\\.tmp|^failed$", out)), label = paste(out, collapse = "\n"))
})

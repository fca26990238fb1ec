# Runs the testthat suite against the installed package and prints a closing
# "N passed, N failed, N skipped" line; exits non-zero on any failure.
# The test files run in RKEOPS_TEST_JOBS forked workers at once (default: one per core, at
# most 4), each file in a fresh fork of this session with a kernel cache of its own, the
# longest files first (measured on 2 cores: test-high-dim.R ~170 s, test-ops-sweep.R ~110 s
# of ~600 s); their reports are printed in file order once all have run.
library(testthat)
library(rkeops)
Sys.setenv(NOT_CRAN = "true")
if (!nzchar(Sys.getenv("RKEOPS_CACHE_DIR"))) Sys.setenv(RKEOPS_CACHE_DIR = file.path(tempdir(), "rkeops-cache"))
jobs <- suppressWarnings(as.integer(Sys.getenv("RKEOPS_TEST_JOBS", "")))
if (is.na(jobs) || jobs < 1) jobs <- min(4L, max(1L, parallel::detectCores(), na.rm = TRUE))
if (.Platform$OS.type != "unix") jobs <- 1L

files <- sort(list.files("tests/testthat", pattern = "^test-.*[.]R$"))
slow <- c("test-high-dim.R", "test-ops-sweep.R", "test-no-copy.R", "test-lazytensor-features.R")
order_run <- c(intersect(slow, files), setdiff(files, slow))
base_cache <- Sys.getenv("RKEOPS_CACHE_DIR")

run_file <- function(f) {
  Sys.setenv(RKEOPS_CACHE_DIR = file.path(base_cache, sub("[.]R$", "", f)))
  res <- NULL
  t0 <- Sys.time()
  out <- utils::capture.output(
    res <- tryCatch(as.data.frame(test_file(file.path("tests/testthat", f), package = "rkeops",
                                            load_package = "installed",
                                            reporter = SummaryReporter$new(show_praise = FALSE))),
                    error = function(e) {
                      cat("error running ", f, ": ", conditionMessage(e), "\n", sep = "")
                      NULL
                    }),
    type = "output")
  list(res = res, out = out, seconds = as.numeric(difftime(Sys.time(), t0, units = "secs")))
}

if (jobs > 1) {
  got <- parallel::mclapply(order_run, run_file, mc.cores = jobs, mc.preschedule = FALSE)
} else {
  got <- lapply(order_run, run_file)
}
names(got) <- order_run
passed <- failed <- skipped <- 0
for (f in files) {
  g <- got[[f]]
  if (!is.list(g) || is.null(g$res)) {  # a worker that died, or a file that did not run
    cat("\n== ", f, ": did not complete\n", sep = "")
    if (is.list(g)) writeLines(g$out) else print(g)
    failed <- failed + 1
    next
  }
  cat(sprintf("\n== %s (%.0f s)\n", f, g$seconds))
  writeLines(g$out)
  passed <- passed + sum(g$res$passed)
  failed <- failed + sum(g$res$failed) + sum(g$res$error)
  skipped <- skipped + sum(g$res$skipped)
}
line <- sprintf("testthat: %d passed, %d failed, %d skipped", passed, failed, skipped)
cat("\n", line, "\n", sep = "")
summary_file <- Sys.getenv("RKEOPS_TEST_SUMMARY")
if (nzchar(summary_file)) writeLines(line, summary_file)
quit(status = if (failed > 0) 1 else 0)

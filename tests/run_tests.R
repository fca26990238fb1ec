# Runs the testthat suite against the installed package and prints a closing
# "N passed, N failed, N skipped" line; exits non-zero on any failure.
library(testthat)
library(rkeops)
Sys.setenv(NOT_CRAN = "true")
if (!nzchar(Sys.getenv("RKEOPS_CACHE_DIR"))) Sys.setenv(RKEOPS_CACHE_DIR = file.path(tempdir(), "rkeops-cache"))
res <- as.data.frame(test_dir("tests/testthat", package = "rkeops", load_package = "installed",
                              reporter = ProgressReporter$new(show_praise = FALSE), stop_on_failure = FALSE))
passed <- sum(res$passed)
failed <- sum(res$failed) + sum(res$error)
skipped <- sum(res$skipped)
line <- sprintf("testthat: %d passed, %d failed, %d skipped", passed, failed, skipped)
cat("\n", line, "\n", sep = "")
summary_file <- Sys.getenv("RKEOPS_TEST_SUMMARY")
if (nzchar(summary_file)) writeLines(line, summary_file)
quit(status = if (failed > 0) 1 else 0)

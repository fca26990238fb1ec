# Runs R code in a separate Rscript process under a time limit (coreutils `timeout`), so that a
# hang or a crash (C stack overflow, segfault) of the code is a test failure, not a hang or a
# crash of the test runner. The child loads rkeops from this session's library paths and uses
# this session's cache directory.
# Returns list(status = exit status (124 or 137 when killed by the time limit), output = lines).
rkt_run_rscript <- function(lines, timeout = 60) {
  testthat::skip_on_os("windows")
  if (!nzchar(Sys.which("timeout"))) testthat::skip("coreutils 'timeout' is not available")
  script <- tempfile(fileext = ".R")
  on.exit(unlink(script), add = TRUE)
  writeLines(c(
    sprintf(".libPaths(c(%s, .libPaths()))", paste(deparse(.libPaths()), collapse = "")),
    sprintf("Sys.setenv(RKEOPS_CACHE_DIR = %s)", deparse(rkeops::get_rkeops_cache_dir())),
    "suppressMessages(library(rkeops))",
    lines
  ), script)
  out <- suppressWarnings(system2("timeout", c("-k", "5", timeout, shQuote(file.path(R.home("bin"), "Rscript")),
                                               "--vanilla", shQuote(script)), stdout = TRUE, stderr = TRUE))
  status <- attr(out, "status")
  list(status = if (is.null(status)) 0L else as.integer(status), output = out)
}

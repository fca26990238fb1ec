#' Check that rkeops works on this machine
#'
#' Reports the C++ compiler and OpenMP flags used for CPU kernels, the cache directory, the
#' availability of the CUDA driver, NVRTC and a GPU, and whether a small test kernel compiles
#' and gives the right answer.
#' @param verbose whether to print the report.
#' @return `TRUE` when the test kernel works, `FALSE` otherwise (invisibly when `verbose`).
#' @examples
#' check_rkeops()
#' @export
check_rkeops <- function(verbose = TRUE) {
  cc <- .rk_compiler()
  say <- function(...) if (verbose) message(...)
  say("rkeops ", utils::packageVersion("rkeops"), " (", .rk_call("rk_op_table")$engine_version, ")")
  say("  C++ compiler : ", cc$cxx)
  say("  flags        : ", cc$cxxflags)
  say("  OpenMP       : ", if (nzchar(cc$openmp)) cc$openmp else "not available (one thread)")
  say("  threads      : ", .rk_nthreads())
  dir <- get_rkeops_cache_dir()
  writable <- dir.exists(dir) && file.access(dir, 2) == 0
  say("  cache        : ", dir, if (writable) "" else " (NOT writable)")
  gpu <- .rk_gpu_status()
  say("  CUDA driver  : ", gpu$driver)
  say("  NVRTC        : ", gpu$nvrtc)
  say("  GPU          : ", gpu$devices)
  say("  backend      : ", .rk_backend(), if (identical(get_rkeops_options("backend"), "auto")) " (automatic)" else "")
  ok <- tryCatch({
    x <- matrix(c(0, 1, 2), 3, 1)
    op <- keops_kernel("Sum_Reduction(Square(x - y), 1)", c("x=Vi(1)", "y=Vj(1)"))
    t0 <- proc.time()[["elapsed"]]
    res <- op(list(x, x))
    t1 <- proc.time()[["elapsed"]]
    good <- isTRUE(all.equal(as.vector(res), c(5, 2, 5)))
    say("  test kernel  : ", if (good) "compiled and ran correctly" else "WRONG RESULT",
        sprintf(" (%.2f s)", t1 - t0))
    good
  }, error = function(e) {
    say("  test kernel  : FAILED: ", conditionMessage(e))
    FALSE
  })
  if (verbose) invisible(ok) else ok
}

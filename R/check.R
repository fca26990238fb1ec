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
  say("  cache        : ", dir, .rk_cache_dir_state(dir))
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

# What check_rkeops() says of the cache directory: "" when usable as it is; a directory that
# does not exist yet is created by the first compile when its nearest existing parent is a
# writable directory.
.rk_cache_dir_state <- function(dir) {
  if (dir.exists(dir)) return(if (file.access(dir, 2) == 0) "" else " (NOT writable)")
  if (file.exists(dir)) return(" (NOT usable: a file, not a directory)")
  parent <- dirname(dir)
  while (!file.exists(parent) && dirname(parent) != parent) parent <- dirname(parent)
  if (dir.exists(parent) && file.access(parent, 2) == 0) return(" (does not exist yet; will be created)")
  paste0(" (NOT writable: does not exist and cannot be created under ", parent, ")")
}

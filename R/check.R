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

#' Hello world from rkeops
#'
#' The first call of an RKeOps user: checks that a kernel compiles and runs, with a LazyTensor
#' sum of a Gaussian kernel on a few points compared with the same sum computed in R, and says
#' hello. See [check_rkeops()] for a report on the compiler, the cache and the GPU.
#' @return `TRUE` when the kernel gave the right result, `FALSE` otherwise (invisibly).
#' @examples
#' helloWorld()
#' @export
helloWorld <- function() {
  x <- matrix(c(0, 1, 2, 0.5, 1.5, 0), 3, 2)
  y <- matrix(c(1, 0, 0.5, 1, 2, 1, 0, 0.5), 4, 2)
  ok <- tryCatch({
    res <- sum(exp(-sqdist(Vi(x), Vj(y))), index = "j")
    ref <- rowSums(exp(-outer(rowSums(x^2), rowSums(y^2), "+") + 2 * x %*% t(y)))
    isTRUE(all.equal(as.vector(res), ref, tolerance = 1e-5))
  }, error = function(e) {
    message("rkeops: the test kernel failed: ", conditionMessage(e))
    FALSE
  })
  message(if (ok) sprintf("Hello world from rkeops: a kernel compiled and ran correctly (backend %s).", .rk_backend())
          else "rkeops does not work yet on this machine: see check_rkeops().")
  invisible(ok)
}

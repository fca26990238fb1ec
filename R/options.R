# Global options, kept in options(rkeops = <list>) as RKeOps does.

.rk_option_names <- c("backend", "device_id", "precision", "verbosity", "cache_dir", "ncore",
                      "formula_only", "distribute", "compile_timeout")

.rk_default_options <- function() {
  list(backend = "auto", device_id = -1L, precision = "float64", verbosity = NA,
       cache_dir = NULL, ncore = NULL, formula_only = FALSE, distribute = "none",
       compile_timeout = 600)
}

.rk_options <- function() {
  opt <- getOption("rkeops")
  if (is.null(opt)) opt <- .rk_default_options()
  new <- .rk_resolve_cache_dir(opt)
  if (!identical(new$cache_dir, opt$cache_dir) || is.null(getOption("rkeops"))) options(rkeops = new)
  new
}

# The option `cache_dir` holds the directory in use, as RKeOps's: NULL (the default) is
# replaced by the default directory (RKEOPS_CACHE_DIR, the user's cache, or tempdir()). A value
# that came from the default follows it (RKEOPS_CACHE_DIR set later in the session).
.rk_resolve_cache_dir <- function(opt) {
  if (is.null(opt$cache_dir) || identical(opt$cache_dir, .rk_state$resolved_cache_dir)) {
    dir <- .rk_default_cache_dir()
    .rk_state$resolved_cache_dir <- dir
    opt["cache_dir"] <- list(dir)
  }
  opt
}

# Options that may be NULL (their default): the others must hold a value.
.rk_nullable_options <- c("cache_dir", "ncore")

.rk_check_options <- function(opt) {
  bad <- setdiff(names(opt), .rk_option_names)
  if (length(bad)) {
    rkeops_abort("option", paste0("unknown rkeops option(s): ", paste(bad, collapse = ", "),
                                  "; known options are ", paste(.rk_option_names, collapse = ", ")))
  }
  for (nm in setdiff(names(opt), .rk_nullable_options)) {
    if (is.null(opt[[nm]])) {
      rkeops_abort("option", paste0("option '", nm, "' cannot be NULL (set_rkeops_options(NULL) resets ",
                                    "every option to its default)"))
    }
  }
  if (!is.null(opt$backend) && !(identical(opt$backend, "CPU") || identical(opt$backend, "GPU") ||
                                 identical(opt$backend, "auto"))) {
    rkeops_abort("option", "option 'backend' must be \"CPU\", \"GPU\" or \"auto\" (the GPU when one is usable)")
  }
  if (!is.null(opt$precision) &&
      !(identical(opt$precision, "float32") || identical(opt$precision, "float64") ||
        identical(opt$precision, "float16"))) {
    rkeops_abort("option", "option 'precision' must be \"float32\", \"float64\" or \"float16\" (GPU only)")
  }
  if (!is.null(opt$device_id) && !.rk_is_count(opt$device_id, min = -1) &&
      !(is.numeric(opt$device_id) && length(opt$device_id) > 1 && all(!is.na(opt$device_id)) &&
        all(opt$device_id >= 0) && all(opt$device_id == round(opt$device_id)) && !anyDuplicated(opt$device_id))) {
    rkeops_abort("option", paste("option 'device_id' must be", .rk_count_text(-1), "or several distinct GPU numbers"))
  }
  if (!is.null(opt$ncore) && !.rk_is_count(opt$ncore, min = 0)) {
    rkeops_abort("option", paste("option 'ncore' must be NULL or", .rk_count_text(0)))
  }
  if (!is.null(opt$verbosity) && !(length(opt$verbosity) == 1 && (is.logical(opt$verbosity) ||
                                    is.numeric(opt$verbosity) && opt$verbosity %in% c(0, 1)))) {
    rkeops_abort("option", "option 'verbosity' must be TRUE or 1, FALSE or 0 (as RKeOps), or NA (the default)")
  }
  if (!is.null(opt$formula_only) && !.rk_is_flag(opt$formula_only)) {
    rkeops_abort("option", "option 'formula_only' must be TRUE or FALSE")
  }
  if (!is.null(opt$cache_dir) && !(is.character(opt$cache_dir) && length(opt$cache_dir) == 1 &&
                                   !is.na(opt$cache_dir))) {
    rkeops_abort("option", "option 'cache_dir' must be NULL or a single path")
  }
  if (!is.null(opt$distribute) && !(identical(opt$distribute, "none") || identical(opt$distribute, "future"))) {
    rkeops_abort("option", "option 'distribute' must be \"none\" or \"future\" (chunks evaluated by the future framework)")
  }
  if (!is.null(opt$compile_timeout) && !(is.numeric(opt$compile_timeout) &&
                                         length(opt$compile_timeout) == 1 &&
                                         !is.na(opt$compile_timeout) && opt$compile_timeout > 0)) {
    rkeops_abort("option", "option 'compile_timeout' must be a positive number of seconds (Inf: no limit)")
  }
  invisible(opt)
}

# A whole number in [min, .Machine$integer.max]: it converts to an R integer without an NA.
.rk_is_count <- function(x, min = 0) {
  is.numeric(x) && length(x) == 1 && !is.na(x) && is.finite(x) && x == round(x) && x >= min &&
    x <= .Machine$integer.max
}
.rk_count_text <- function(min) sprintf("a single integer from %d to %d", as.integer(min), .Machine$integer.max)

.rk_is_flag <- function(x, numeric_ok = FALSE) {
  (is.logical(x) || numeric_ok && is.numeric(x)) && length(x) == 1 && !is.na(x)
}

#' Get the rkeops options
#'
#' @param option `NULL` (all options) or the name(s) of options among `backend`, `device_id`,
#'   `precision`, `verbosity` (`NA`, `TRUE` or `FALSE`, or as RKeOps `1` or `0`: see
#'   [rkeops_enable_verbosity()]), `cache_dir` (the directory of compiled kernels in use, as
#'   RKeOps: setting it to `NULL` chooses the default, see [get_rkeops_cache_dir()]),
#'   `ncore`, `formula_only`, `distribute` (`"none"`, or
#'   `"future"`: every reduction is cut into chunks evaluated under the user's `future::plan()`,
#'   see [keops_kernel()]), `compile_timeout` (the seconds a kernel's compilation may take
#'   before it is stopped with an error of class `rkeops_compile_timeout_error`; 600 by default,
#'   `Inf` for no limit).
#' @return The list of options, a single value, or a named sub-list.
#' @examples
#' get_rkeops_options()
#' get_rkeops_options("precision")
#' @export
get_rkeops_options <- function(option = NULL) {
  opt <- .rk_options()
  if (is.null(option)) return(opt)
  if (!is.character(option) || anyNA(option) || !all(option %in% .rk_option_names)) {
    rkeops_abort("option", paste0("'option' must name rkeops options among ",
                                  paste(.rk_option_names, collapse = ", ")))
  }
  if (length(option) == 1) return(opt[[option]])
  opt[option]
}

#' Set the rkeops options
#'
#' @param input `NULL` to reset every option to its default, or a named list of options to change
#'   (see [get_rkeops_options()]).
#' @return The new options, invisibly.
#' @examples
#' old <- get_rkeops_options()
#' set_rkeops_options(list(precision = "float32"))
#' get_rkeops_options("precision")
#' set_rkeops_options(old)
#' @export
set_rkeops_options <- function(input = NULL) {
  if (is.null(input)) {
    opt <- .rk_default_options()
  } else {
    if (!is.list(input) || is.null(names(input)) || any(!nzchar(names(input)))) {
      rkeops_abort("option", "'input' must be NULL or a named list of rkeops options")
    }
    .rk_check_options(input)
    opt <- .rk_options()
    for (nm in names(input)) opt[nm] <- list(input[[nm]])
  }
  opt <- .rk_resolve_cache_dir(opt)
  options(rkeops = opt)
  invisible(opt)
}

#' Compute on the CPU
#'
#' Selects the CPU backend (OpenMP) and the number of threads.
#' @param ncore number of threads; `NULL` or 0 use every available core (within `OMP_THREAD_LIMIT`).
#' @return The new options, invisibly.
#' @examples
#' rkeops_use_cpu(ncore = 2)
#' get_rkeops_options("backend")
#' @export
rkeops_use_cpu <- function(ncore = NULL) {
  if (!is.null(ncore) && !.rk_is_count(ncore, min = 0)) {
    rkeops_abort("option", paste("'ncore' must be NULL or", .rk_count_text(0)))
  }
  if (!is.null(ncore) && ncore == 0) ncore <- NULL
  set_rkeops_options(list(backend = "CPU", ncore = if (is.null(ncore)) NULL else as.integer(ncore)))
}

#' Compute on a GPU
#'
#' Selects the CUDA backend on GPU `device`. Without a call to `rkeops_use_gpu()` or
#' [rkeops_use_cpu()], the backend is `"auto"`: the GPU when one is usable (a CUDA driver with
#' a device, and NVRTC from the CUDA toolkit 12 or 13), the CPU otherwise, decided at the first
#' kernel run of the session. Nothing CUDA is loaded before that. `rkeops_use_gpu()` creates
#' the GPU's CUDA context at once (a one-off cost of about 0.1-0.2 s per R process), so that the
#' first kernel call does not pay it.
#' @param device GPU ordinal (0-based); -1 picks the first usable GPU; several ordinals, or
#'   `"all"`, use several GPUs of the machine: each call is split over them (blocks of result
#'   rows, or, with few result rows, pieces of the reduced index whose partial reductions are
#'   merged), one host thread per GPU.
#' @return The new options, invisibly; an error of class `rkeops_gpu_error` when no GPU is usable.
#' @examples
#' try(rkeops_use_gpu())
#' rkeops_use_cpu()
#' @export
rkeops_use_gpu <- function(device = -1) {
  all_gpus <- identical(device, "all")
  several <- all_gpus || (is.numeric(device) && length(device) > 1)
  if (several && !all_gpus && !(all(!is.na(device)) && all(device == round(device)) && all(device >= 0) &&
                                  !anyDuplicated(device) && all(device < .Machine$integer.max))) {
    rkeops_abort("option", paste("'device' must be -1 (the first GPU), a GPU number (0 to", .Machine$integer.max,
                                 "), several distinct GPU numbers or \"all\""))
  }
  if (!several && !.rk_is_count(device, min = -1)) {
    rkeops_abort("option", paste("'device' must be -1 (the first GPU), a GPU number (0 to", .Machine$integer.max,
                                 "), several distinct GPU numbers or \"all\""))
  }
  info <- .rk_gpu_info(refresh = TRUE)
  if (!isTRUE(info$usable)) {
    why <- if (length(info$names) == 0) info$driver else info$nvrtc
    rkeops_abort("gpu", paste0("no GPU is usable: ", why, "; use rkeops_use_cpu()"))
  }
  if (all_gpus) device <- seq_along(info$names) - 1
  if (any(device >= length(info$names))) {
    rkeops_abort("gpu", sprintf("GPU device %d does not exist: this machine has %d GPU(s), numbered from 0",
                                as.integer(max(device)), length(info$names)))
  }
  # The CUDA contexts (~0.1-0.2 s per process and GPU) are created now, not by the first call.
  for (d in device) .rk_call("rk_gpu_open", as.integer(max(d, 0)))
  set_rkeops_options(list(backend = "GPU", device_id = as.integer(device)))
}

#' Compute in single or double precision
#'
#' `rkeops_use_float32()` computes in float32 (inputs converted once; faster, about 1e-6
#' relative accuracy), `rkeops_use_float64()` in float64 (the default; R's data read in place).
#' For half precision on the GPU, see [rkeops_use_float16()].
#' @return The new options, invisibly.
#' @examples
#' rkeops_use_float32()
#' rkeops_use_float64()
#' @export
rkeops_use_float32 <- function() set_rkeops_options(list(precision = "float32"))

#' @rdname rkeops_use_float32
#' @export
rkeops_use_float64 <- function() set_rkeops_options(list(precision = "float64"))

#' Compute in half precision on the GPU
#'
#' `rkeops_use_float16()` sets the option `precision` to `"float16"`: reductions on the GPU
#' read their inputs as IEEE half-precision numbers (float16) and evaluate formulas in pairs of
#' halves (`half2`), for speed and half the memory traffic of float32. Your data stay R
#' doubles: each call rounds them to halves on the host, so half the bytes cross to the GPU.
#' Switch back with [rkeops_use_float32()] or [rkeops_use_float64()].
#'
#' **GPU only.** The CPU backend has no half precision: a call that would run on the CPU (no
#' usable GPU, [rkeops_use_cpu()], or `backend = "CPU"`) stops with an error of class
#' `rkeops_option_error` (see [rkeops_errors]).
#'
#' **How it computes.** Each GPU thread takes two result rows, held in the two halves of
#' `half2` values; the points reduced over are shared by both. When every operation of the
#' formula has a `half2` form -- arithmetic, `Exp`, `Log`, `Sqrt`, `Rsqrt`, `Inv`, `Square`,
#' `Abs`, `Minus`, `Pow`, `Powf`, `Sum`, `SumT`, `SqNorm2`, `Norm2`, `Normalize`, `SqDist`,
#' `Scalprod` (`|`), the weighted norms and distances, `Elem`, `Extract`, `Concat`, matrix and
#' tensor products -- the formula is evaluated in half precision. Otherwise (comparisons,
#' `Step`, `ReLU`, `Sign`, `Min`/`Max` of a vector, trigonometric functions, complex numbers...)
#' it is evaluated in float32 from the half-precision inputs (so are reductions with a long state,
#' such as a K-min list with K in the hundreds). Either way each term is added in
#' float32 (block sums per tile for sums), and every reduction (`Min`, `ArgMin`, `KMin`,
#' `LogSumExp`, ...) keeps its state in float32. Gradients ([keops_grad()], LazyTensor
#' gradients) are formulas like any other and run the same way. Inner products and distances of
#' dimension 32 or more, which use a dedicated scheme in float32 and float64, run in the generic
#' scheme in float16.
#'
#' **Gaussian sums on tensor cores.** On GPUs of compute capability 8.0 and later, sums of
#' Gaussian kernels -- `Sum_Reduction(Exp(-g * SqDist(x, y)) * b)` with a parameter `g > 0`
#' (also written `Exp(-SqDist(x, y) / g)`, `SqNorm2(x - y)`, or without `b`), `x` and `y` of
#' dimension at most 15, `b` of at most 8 -- take a faster route: the exponents
#' \eqn{-g|x - y|^2} come from a tensor-core product in float32 (the halves of `x` as given,
#' `y` and \eqn{|y|^2} each as two halves, so that the expansion
#' \eqn{|x|^2 + |y|^2 - 2 \langle x, y \rangle} loses only about \eqn{2^{-22}} of the norms),
#' each kernel value is rounded to a half (half of them through a quadratic polynomial, error
#' 1.7e-3, the other half on the special-function unit), and a second tensor-core product
#' multiplies them by `b` with float32 accumulation. Same accuracy as above (measured: 1.5e-3
#' of the largest entry, 4e-4 per row at the median, for 1e6 points in the unit cube) at about
#' 0.6 times the float32 time. Where the expansion would lose digits (\eqn{g |x|^2} or
#' \eqn{g |y|^2} above about 700: points far from the origin for the kernel's width) and for
#' `g <= 0`, those rows and tiles are computed in float32 directly, more slowly.
#'
#' **Accuracy.** A half has an 11-bit significand: every input is rounded with a relative error
#' up to \eqn{2^{-11}} (about 5e-4) and every operation of the formula adds about as much
#' (`Exp` about \eqn{|x| 2^{-11}} + 1e-3 for an argument `x`); sums accumulate in float32, so
#' the error of a sum is that of its terms, averaged rather than added up. Sums inside the
#' formula (`Sum`, `SqDist`, `|` over many components) are half-precision sums, whose error
#' grows with the dimension (measured: 2e-3 at dimension 700). Expect a relative
#' error of about 1e-3 on typical kernels (measured: 1e-4 to 3e-3 for Gaussian, Cauchy and
#' softmax kernels and their gradients, on data of order 1); the tests require 1e-2 relative to
#' the largest entry of each column of the result. Halves range from about 6e-8 (6e-5 at full
#' precision) to 65504: values beyond overflow to `Inf`, so scale your data (e.g. distances of
#' points in a unit box, not in metres) before computing in float16. Use float32 where 1e-3 is
#' not enough.
#' @return The new options, invisibly.
#' @seealso [rkeops_use_float32()], [rkeops_use_gpu()].
#' @examples
#' # half precision needs a GPU: this runs only where one is usable
#' if (isTRUE(tryCatch({ rkeops_use_gpu(); TRUE }, rkeops_gpu_error = function(e) FALSE))) {
#'   rkeops_use_float16()
#'   x <- matrix(runif(3000), ncol = 3); y <- matrix(runif(6000), ncol = 3)
#'   op <- keops_kernel("Sum_Reduction(Exp(-SqDist(x, y)), 1)", c("x=Vi(3)", "y=Vj(3)"))
#'   res16 <- op(list(x, y))
#'   rkeops_use_float64()
#'   res64 <- op(list(x, y))
#'   max(abs(res16 - res64) / abs(res64))   # about 1e-3
#' }
#' # on the CPU backend, float16 is an error of class rkeops_option_error
#' old <- get_rkeops_options()
#' rkeops_use_cpu()
#' rkeops_use_float16()
#' op <- keops_kernel("Sum_Reduction(SqDist(x, y), 1)", c("x=Vi(1)", "y=Vj(1)"))
#' tryCatch(op(list(matrix(1), matrix(2))), rkeops_option_error = function(e) conditionMessage(e))
#' set_rkeops_options(old)
#' @export
rkeops_use_float16 <- function() set_rkeops_options(list(precision = "float16"))

#' Turn verbose messages on or off
#'
#' rkeops speaks through R messages (`message()`), which `suppressMessages()` silences. The
#' option `verbosity` (see [set_rkeops_options()]) says how much:
#' * `NA`, the default: one message when compiling a kernel took more than a second (the first
#'   use of a formula; the kernel is then cached for later calls and R sessions);
#' * `TRUE` (`rkeops_enable_verbosity()`): every compilation with its time, cache problems and
#'   GPU details (driver, NVRTC, registers and launch sizes);
#' * `FALSE` or `0` (`rkeops_disable_verbosity()`): nothing.
#'
#' As in RKeOps, `1` and `0` are accepted for `TRUE` and `FALSE` (and kept as given); any
#' other number is an error of class `rkeops_option_error`.
#' @return The new options, invisibly.
#' @examples
#' rkeops_enable_verbosity()
#' rkeops_disable_verbosity()
#' @export
rkeops_enable_verbosity <- function() set_rkeops_options(list(verbosity = TRUE))

#' @rdname rkeops_enable_verbosity
#' @export
rkeops_disable_verbosity <- function() set_rkeops_options(list(verbosity = FALSE))

# Number of CPU threads: the option, within the machine, OMP_THREAD_LIMIT and R CMD check.
.rk_nthreads <- function() {
  n <- get_rkeops_options("ncore")
  avail <- .rk_state$cores
  if (is.null(avail)) {  # detectCores() costs milliseconds: once per session
    avail <- tryCatch(parallel::detectCores(), error = function(e) 1L)
    if (is.na(avail) || avail < 1) avail <- 1L
    .rk_state$cores <- avail
  }
  lim <- suppressWarnings(as.integer(Sys.getenv("OMP_THREAD_LIMIT", "")))
  if (!is.na(lim) && lim > 0) avail <- min(avail, lim)
  if (nzchar(Sys.getenv("_R_CHECK_LIMIT_CORES_")) && Sys.getenv("_R_CHECK_LIMIT_CORES_") != "false") {
    avail <- min(avail, 2L)
  }
  if (is.null(n)) avail else as.integer(min(n, avail))
}

# The options list the engine reads (src/rkeops_glue.cpp: engine_options()), remembered for
# the last key: building it costs ~0.2 ms (a dozen lookups), more than an engine call on small
# data (issue 17: <= 0.1 ms per call). The key holds everything it is built from: the options,
# the session's decisions (.rk_state) and the environment variables read.
.rk_engine_options <- function(sum_scheme = "auto") {
  key <- .rk_engine_options_key(sum_scheme)
  memo <- .rk_state$engine_options
  if (!is.null(memo) && identical(memo$key, key)) return(memo$value)
  value <- .rk_engine_options_build(sum_scheme)
  .rk_state$engine_options <- list(key = .rk_engine_options_key(sum_scheme), value = value)   # after: it may set some
  value
}

.rk_engine_options_key <- function(sum_scheme) {
  list(getOption("rkeops"), sum_scheme, .rk_state$auto_backend, .rk_state$default_cache_dir, .rk_state$cores,
       .rk_state$include_dir,
       Sys.getenv(c("RKEOPS_CACHE_DIR", "RKEOPS_FORBID_COMPILE", "OMP_THREAD_LIMIT", "_R_CHECK_LIMIT_CORES_",
                    "RKEOPS_CXX", "RKEOPS_CXXFLAGS", "_R_CHECK_PACKAGE_NAME_")))
}

.rk_engine_options_build <- function(sum_scheme) {
  opt <- .rk_options()
  cc <- .rk_compiler()
  list(
    precision = opt$precision, sum_scheme = sum_scheme, backend = .rk_backend(opt),
    device_id = as.integer(max(opt$device_id[1], 0)), nthreads = .rk_nthreads(),
    devices = if (length(opt$device_id) > 1) as.integer(opt$device_id) else integer(),
    cache_dir = get_rkeops_cache_dir(), fallback_cache_dir = .rk_fallback_cache_dir(),
    include_dir = .rk_include_dir(),
    compile_timeout = .rk_compile_timeout(opt$compile_timeout),
    cxx = cc$cxx, cxxflags = cc$cxxflags, openmp = cc$openmp,
    forbid_compile = nzchar(Sys.getenv("RKEOPS_FORBID_COMPILE")) &&
      Sys.getenv("RKEOPS_FORBID_COMPILE") != "0",
    verbosity = isTRUE(as.logical(opt$verbosity))
  )
}

.rk_include_dir <- function() {
  if (is.null(.rk_state$include_dir)) .rk_state$include_dir <- system.file("include", package = "rkeops")
  .rk_state$include_dir
}

# Seconds a compile may take, for the engine (0: no limit).
.rk_compile_timeout <- function(x) {
  if (is.null(x)) return(600)
  if (is.infinite(x)) 0 else as.numeric(x)
}

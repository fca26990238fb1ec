# The GPU (CUDA) backend seen from R: what is usable, the automatic choice of backend, and
# the time split of the last GPU run. libcuda and NVRTC are opened at run time by the engine
# (src/engine/cuda_driver.cpp, nvrtc.cpp): nothing here costs anything until a kernel runs.

# What the engine can use, memoised for the session (loading libcuda/NVRTC happens once).
# With nvrtc = FALSE, NVRTC is not loaded where there is no GPU (choosing the backend).
.rk_gpu_info <- function(refresh = FALSE, nvrtc = TRUE) {
  key <- if (nvrtc) "gpu_info" else "gpu_info_quick"
  if (refresh || is.null(.rk_state[[key]])) .rk_state[[key]] <- .rk_call("rk_gpu_info", nvrtc)
  .rk_state[[key]]
}

# TRUE when a GPU and NVRTC are both usable.
.rk_gpu_usable <- function() isTRUE(.rk_gpu_info(nvrtc = FALSE)$usable)

# The backend a kernel runs on: the option, or with backend = "auto" (the default) the GPU
# when one is usable and the CPU otherwise, decided at the first kernel run of the session.
.rk_backend <- function(opt = .rk_options()) {
  b <- opt$backend
  if (is.null(b) || identical(b, "auto")) {
    if (is.null(.rk_state$auto_backend)) {
      .rk_state$auto_backend <- if (tryCatch(.rk_gpu_usable(), error = function(e) FALSE)) "GPU" else "CPU"
    }
    b <- .rk_state$auto_backend
  }
  b
}

# For check_rkeops(): the CUDA driver, NVRTC and devices, in words.
.rk_gpu_status <- function() {
  info <- tryCatch(.rk_gpu_info(), error = function(e) NULL)
  if (is.null(info)) {
    return(list(driver = "unknown (query failed)", nvrtc = "unknown", devices = "none", usable = FALSE))
  }
  devices <- if (length(info$names)) {
    paste(sprintf("%d: %s (compute capability %d.%d, %d SMs, %.0f GB)", seq_along(info$names) - 1L, info$names,
                  info$cc_major, info$cc_minor, info$sm_count, info$memory_gb), collapse = "; ")
  } else {
    "none"
  }
  backend <- tryCatch(.rk_backend(), error = function(e) "CPU")
  list(driver = info$driver, nvrtc = info$nvrtc,
       devices = paste0(devices, if (isTRUE(info$usable)) "" else " (the GPU backend is not usable)"),
       usable = isTRUE(info$usable), backend = backend)
}

# Time split of the last GPU run (ms), registers and spills of its kernel, compile time (s).
.rk_gpu_last_run <- function() .rk_call("rk_gpu_info", FALSE)$last_run

# The CUDA source of a formula's kernel (and, with `arch` such as 90, whether NVRTC compiles
# it: no GPU needed). For tests and the curious.
.rk_cuda_source <- function(formula, args, arch = 0L, precision = NULL, sum_scheme = "auto") {
  opts <- .rk_engine_options(sum_scheme)
  if (!is.null(precision)) opts$precision <- precision
  opts$compile_arch <- as.integer(arch)
  .rk_call("rk_cuda_source", formula, gsub("[[:space:]]", "", args), opts)
}

# Formulas in high dimensions (issue 9): compile times of the first call of a new formula and
# run times of k-NN, on the CPU; NVRTC compile times of the CUDA sources (NVRTC needs no GPU);
# GPU first calls and run times when a GPU is usable.
#   Rscript bench/high_dim.R [dims=3,100,300,784,1000,4096] [grad_dims=100,300,1000] [knn]
#                            [nvrtc] [gpu] [reps=3]
# With no section named (knn, nvrtc, gpu), all run. Prints markdown table rows for
# bench/RESULTS.md. Compile times come from a fresh cache: first call minus a second call.
suppressPackageStartupMessages(library(rkeops))
args <- commandArgs(trailingOnly = TRUE)
opt <- function(name, default) {
  hit <- grep(paste0("^", name, "="), args, value = TRUE)
  if (length(hit)) as.numeric(strsplit(sub("^[^=]*=", "", hit[1]), ",")[[1]]) else default
}
dims <- opt("dims", c(3, 100, 300, 784, 1000, 4096))
grad_dims <- opt("grad_dims", c(100, 300, 1000))
reps <- opt("reps", 3)
sections <- intersect(args, c("knn", "nvrtc", "gpu", "compile"))
want <- function(s) length(sections) == 0 || s %in% sections
cache <- tempfile("rkeops-hd-cache")
Sys.setenv(RKEOPS_CACHE_DIR = cache)
set_rkeops_options(list(cache_dir = cache))
threads <- 2
rkeops_use_cpu(threads)

cat(sprintf("machine: %s, %d cores (%d used), R %s, rkeops %s\n",
            sub("model name\t: ", "", grep("model name", readLines("/proc/cpuinfo"), value = TRUE)[1]),
            parallel::detectCores(), threads, getRversion(), utils::packageVersion("rkeops")))

forms <- list(
  gaussian  = "Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
  laplacian = "Sum_Reduction(Exp(-Sqrt(g * SqDist(x, y))) * b, 1)",
  cauchy    = "Sum_Reduction(b / (1 + g * SqDist(x, y)), 1)",
  knn       = "ArgKMin_Reduction(SqDist(x, y), 10, 1)",
  scalprod  = "Sum_Reduction(Exp((x | y)) * b, 1)"
)
fargs <- function(D) c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D), "b=Vj(1)", "g=Pm(1)")
inputs <- function(f, D, n = 20) {
  x <- matrix(runif(n * D), n) / sqrt(D)
  y <- matrix(runif(n * D), n) / sqrt(D)
  if (grepl("ArgKMin", f)) list(x, y) else list(x, y, matrix(1, n, 1), 0.5)
}
elapsed <- function(f) system.time(f())[["elapsed"]]
# Seconds of the first call of a new kernel (generate + compile + load), net of a second call.
first_call <- function(call) {
  t1 <- elapsed(call)
  t1 - elapsed(call)
}

if (want("compile")) {
  cat("\n| first call (compile), CPU g++ -O3, float64 | D | seconds |\n|---|---|---|\n")
  for (D in dims) for (nm in names(forms)) {
    f <- forms[[nm]]
    a <- fargs(D)
    if (grepl("ArgKMin", f)) a <- a[1:2]
    op <- keops_kernel(f, a)
    inp <- inputs(f, D)
    cat(sprintf("| %s | %d | %.2f |\n", nm, D, first_call(function() op(inp))))
  }
  for (D in grad_dims) for (nm in setdiff(names(forms), "knn")) {
    op <- keops_kernel(forms[[nm]], fargs(D))
    inp <- c(inputs(forms[[nm]], D), list(matrix(1, 20, 1)))
    g <- keops_grad(op, "x")
    cat(sprintf("| gradient of %s in x | %d | %.2f |\n", nm, D, first_call(function() g(inp))))
  }
}

if (want("knn")) {
  # k-NN K = 10, float64, 1e3 queries x 2e4 points: minimum of `reps` runs after a warm-up, and
  # the cost per pair and component for each thread.
  cat(sprintf("\n| k-NN K=10, 1e3 x 2e4, float64, %d threads | D | run (min of %d) | ns per pair and component and thread |\n|---|---|---|---|\n",
              threads, reps))
  set.seed(1)
  for (D in intersect(c(100, 784), c(100, 784, dims))) {
    x <- matrix(runif(1e3 * D), 1e3)
    y <- matrix(runif(2e4 * D), 2e4)
    op <- keops_kernel(forms$knn, fargs(D)[1:2])
    invisible(op(list(x[1:10, , drop = FALSE], y)))
    t <- min(vapply(seq_len(reps), function(r) elapsed(function() op(list(x, y))), 0))
    cat(sprintf("| k-NN | %d | %.3f s | %.3f |\n", D, t, 1e9 * t * threads / (1e3 * 2e4 * D)))
  }
}

nvrtc <- isTRUE(tryCatch(grepl("^NVRTC", rkeops:::.rk_gpu_info()$nvrtc), error = function(e) FALSE))
if (want("nvrtc") && nvrtc) {
  cat("\n| NVRTC compile (sm_90), float32 | D | seconds |\n|---|---|---|\n")
  for (D in dims) for (nm in names(forms)) {
    a <- fargs(D)
    if (nm == "knn") a <- a[1:2]
    t <- elapsed(function() res <<- rkeops:::.rk_cuda_source(forms[[nm]], a, arch = 90L, precision = "float32"))
    cat(sprintf("| %s | %d | %.2f%s |\n", nm, D, t, if (isTRUE(res$compiled)) "" else " (FAILED)"))
  }
  for (D in grad_dims) for (nm in setdiff(names(forms), "knn")) {
    f <- sub("Sum_Reduction\\((.*), 1\\)$", "Sum_Reduction(Grad(\\1, x, e), 1)", forms[[nm]])
    t <- elapsed(function() res <<- rkeops:::.rk_cuda_source(f, c(fargs(D), "e=Vi(1)"), arch = 90L,
                                                             precision = "float32"))
    cat(sprintf("| gradient of %s in x | %d | %.2f%s |\n", nm, D, t, if (isTRUE(res$compiled)) "" else " (FAILED)"))
  }
}

gpu <- isTRUE(tryCatch(rkeops:::.rk_gpu_usable(), error = function(e) FALSE))
if (want("gpu") && gpu) {
  rkeops_use_gpu()
  set_rkeops_options(list(precision = "float32"))
  info <- rkeops:::.rk_gpu_info()
  cat(sprintf("\nGPU: %s | %s | %s\n", info$names[1], info$driver, info$nvrtc))
  cat("\n| GPU, float32 | D | first call (s) | run (min of reps) |\n|---|---|---|---|\n")
  set.seed(2)
  for (D in intersect(c(100, 784, 4096), c(100, 784, 4096, dims))) {
    x <- matrix(runif(1e4 * D), 1e4)
    y <- matrix(runif(6e4 * D), 6e4)
    op <- keops_kernel(forms$knn, fargs(D)[1:2])
    t1 <- elapsed(function() op(list(x[1:10, , drop = FALSE], y[1:100, , drop = FALSE])))
    invisible(op(list(x, y)))
    t <- min(vapply(seq_len(reps), function(r) elapsed(function() op(list(x, y))), 0))
    cat(sprintf("| k-NN K=10, 1e4 x 6e4 | %d | %.2f | %.4f s |\n", D, t1, t))
    op <- keops_kernel(forms$gaussian, fargs(D))
    g <- keops_grad(op, "x")
    b <- matrix(1, 6e4, 1)
    e <- matrix(1, 1e4, 1)
    t1 <- elapsed(function() g(list(x[1:10, , drop = FALSE], y[1:100, , drop = FALSE], b[1:100, , drop = FALSE],
                                   0.5, e[1:10, , drop = FALSE])))
    invisible(g(list(x, y, b, 0.5, e)))
    t <- min(vapply(seq_len(reps), function(r) elapsed(function() g(list(x, y, b, 0.5, e))), 0))
    cat(sprintf("| gradient of the Gaussian kernel, 1e4 x 6e4 | %d | %.2f | %.4f s |\n", D, t1, t))
  }
}

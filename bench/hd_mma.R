# The GPU high-dimension scheme with and without tensor cores (issue 9): k-NN (K = 10) of 1e4
# queries at D = 100, 256, 784 and among 1e6 points at D = 100, and a Gaussian sum at D = 784,
# float32, for each setting of RKEOPS_CUDA_HD_MMA given on the command line (0: FP32
# multiply-adds; 1: tensor cores (RKEOPS_CUDA_HD_SPLIT: their form), tile chosen; 100 m + n: tensor cores, m x n 16 x 8
# tiles per warp). Times from R matrices and with the points device-resident
# (rkeops_device()), median of 5 after a warm-up; the engine's kernel time; PyTorch's cdist +
# topk in the same run (bench/knn_torch.py) and the ratios of its times to ours. Agreement: the neighbours' distances against the
# FP32 setting's (and dense R on 20 queries).
#   Rscript bench/hd_mma.R 0 1 208
suppressPackageStartupMessages(library(rkeops))
settings <- commandArgs(TRUE)
if (!length(settings)) settings <- c("0", "1")
if (!isTRUE(rkeops:::.rk_gpu_usable())) stop("no usable GPU")
cache <- file.path(tempdir(), "rkeops-hd-mma-cache")
set_rkeops_options(list(cache_dir = cache))
rkeops_use_gpu()
rkeops_use_float32()
cat("GPU:", rkeops:::.rk_gpu_info()$names[1], "\n")
med <- function(f, reps) {
  f()
  last <- rkeops:::.rk_gpu_last_run()
  t <- vapply(seq_len(reps), function(r) { t0 <- Sys.time(); f(); as.numeric(Sys.time() - t0, units = "secs") }, 0)
  c(ms = 1000 * median(t), kernel = rkeops:::.rk_gpu_last_run()$kernel_ms, compile = last$compile_seconds)
}
sizes <- list(c(100, 1e4, 6e4), c(256, 1e4, 6e4), c(784, 1e4, 6e4), c(100, 1e4, 1e6))
torch <- tryCatch(system2("python3", c("bench/knn_torch.py", vapply(sizes, paste, "", collapse = ":")), stdout = TRUE),
                  error = function(e) character())
cat(torch, sep = "\n")
# PyTorch's times by size (data on the GPU, from host arrays), for the ratios
tt <- do.call(rbind, lapply(strsplit(grep("^[0-9]", torch, value = TRUE), " "), as.numeric))
set.seed(1)
for (s in sizes) {
  D <- s[1]; nq <- s[2]; np_ <- s[3]
  q <- matrix(runif(D * nq), nq); p <- matrix(runif(D * np_), np_)
  ref <- NULL
  for (set in settings) {
    Sys.setenv(RKEOPS_CUDA_HD_MMA = set)
    op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D)))
    a <- med(function() op(list(q, p)), 5)
    pd <- rkeops_device(p)
    b <- med(function() op(list(q, pd)), 5)
    rkeops_device_release(pd)
    idx <- op(list(q[1:20, ], p))
    if (is.null(ref)) {  # the 10th smallest squared distance of 20 queries, dense in R
      d2 <- outer(rowSums(q[1:20, ]^2), colSums(t(p)^2), "+") - 2 * tcrossprod(q[1:20, ], p)
      ref <- apply(d2, 1, function(v) sort(v, partial = 10)[10])
    }
    dd <- vapply(1:20, function(i) sum((p[idx[i, 10] + 1, ] - q[i, ])^2), 0)
    pt <- if (is.null(tt)) c(NA, NA) else tt[tt[, 1] == D & tt[, 3] == np_, 4:5]
    cat(sprintf("k-NN D=%d %gx%g mma=%s: from R %.2f ms (kernel %.2f), device-resident %.2f ms (kernel %.2f), compile %.2f s, 10th distance rel err vs dense R (20 queries) %.1e; PyTorch / rkeops: %.2f (both from host), %.2f (both on the GPU)\n",
                D, nq, np_, set, a[["ms"]], a[["kernel"]], b[["ms"]], b[["kernel"]], a[["compile"]], max(abs(dd - ref) / ref),
                pt[2] / a[["ms"]], pt[1] / b[["ms"]]))
  }
  rm(p); invisible(gc())
}
x <- matrix(runif(784 * 1e5), 1e5); y <- matrix(runif(784 * 1e5), 1e5); bb <- matrix(runif(1e5), 1e5)
for (set in settings) {
  Sys.setenv(RKEOPS_CUDA_HD_MMA = set)
  g784 <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(784)", "y=Vj(784)", "b=Vj(1)", "g=Pm(1)"))
  a <- med(function() g784(list(x, y, bb, 1 / 784)), 3)
  r <- g784(list(x[1:100, ], y, bb, 1 / 784))
  if (set == settings[1]) r0 <- r
  cat(sprintf("Gaussian D=784 N=M=1e5 mma=%s: from R %.1f ms (kernel %.1f), compile %.2f s, max rel diff vs first setting %.1e\n",
              set, a[["ms"]], a[["kernel"]], a[["compile"]], max(abs(r - r0) / abs(r0))))
}

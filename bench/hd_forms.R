# The GPU high-dimension scheme's tensor-core forms side by side (issue 9): for each
# RKEOPS_CUDA_HD_SPLIT[:RKEOPS_CUDA_HD_MMA] given (0: 3xTF32, heads rounded; 1: 3xTF32, heads
# truncated; 2: TF32 heads' product plus the cross terms on one BF16 instruction; ":0" turns
# the tensor cores off), K = 10 k-NN of 1e4 queries among 6e4 points at each D: the 10 smallest
# squared distances (KMin, float32) of 50 queries against dense float64 R (max relative error;
# and with the points 40 units from the origin), times from R with the engine's breakdown, and
# with both sides device-resident (rkeops_device()).
#   Rscript bench/hd_forms.R 0,1,2,2:0 784,256,100
suppressPackageStartupMessages(library(rkeops))
rkeops_use_gpu(); rkeops_use_float32()
settings <- strsplit(commandArgs(TRUE)[1], ",")[[1]]; Ds <- as.numeric(strsplit(commandArgs(TRUE)[2], ",")[[1]])
med <- function(f, reps) {
  f(); t <- vapply(seq_len(reps), function(r) { s <- Sys.time(); f(); as.numeric(difftime(Sys.time(), s, units = "secs")) }, 0)
  c(ms = 1000 * median(t), unlist(rkeops:::.rk_gpu_last_run()[c("kernel_ms", "convert_ms", "h2d_ms", "merge_ms", "d2h_ms")]))
}
set.seed(2)
for (D in Ds) {
  q <- matrix(runif(D * 1e4), 1e4); p <- matrix(runif(D * 6e4), 6e4)
  d2 <- function(a, b) outer(rowSums(a^2), colSums(t(b)^2), "+") - 2 * tcrossprod(a, b)
  ref <- t(apply(d2(q[1:50, ], p), 1, function(v) sort(v)[1:10]))
  ref40 <- t(apply(d2(q[1:50, ] + 40, p + 40), 1, function(v) sort(v)[1:10]))
  for (set in settings) {
    parts <- strsplit(set, ":")[[1]]
    Sys.setenv(RKEOPS_CUDA_HD_SPLIT = parts[1])
    if (length(parts) > 1) Sys.setenv(RKEOPS_CUDA_HD_MMA = parts[2]) else Sys.unsetenv("RKEOPS_CUDA_HD_MMA")
    km <- keops_kernel("KMin_Reduction(SqDist(x, y), 10, 1)", c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D)))
    op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D)))
    e1 <- max(abs(km(list(q[1:50, ], p)) - ref) / ref); e2 <- max(abs(km(list(q[1:50, ] + 40, p + 40)) - ref40) / ref40)
    a <- med(function() op(list(q, p)), 9)
    qd <- rkeops_device(q); pd <- rkeops_device(p); b <- med(function() op(list(qd, pd)), 9)
    rkeops_device_release(pd); rkeops_device_release(qd)
    cat(sprintf("D=%d form=%s: KMin rel err %.1e (shifted by 40: %.1e); from R %.2f ms [kernel %.2f conv %.2f h2d %.2f merge %.2f d2h %.2f]; both device-resident %.2f ms [kernel %.2f]\n",
                D, set, e1, e2, a[["ms"]], a[["kernel_ms"]], a[["convert_ms"]], a[["h2d_ms"]], a[["merge_ms"]], a[["d2h_ms"]], b[["ms"]], b[["kernel_ms"]]))
  }
  rm(p); invisible(gc())
}

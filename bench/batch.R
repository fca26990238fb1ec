# Batch dimensions (issue 10 part 2): B problems of N = M points in one call against one problem
# with B * N rows and the same M (the same number of pairs), and against a loop in R over the
# problems. Gaussian kernel sum D = 3. Usage: Rscript bench/batch.R [cpu|gpu] [B] [N]
library(rkeops)
a <- commandArgs(TRUE)
where <- if (length(a) >= 1) a[1] else "cpu"
B <- if (length(a) >= 2) as.integer(a[2]) else 64L
N <- if (length(a) >= 3) as.numeric(a[3]) else 5000
if (where == "gpu") rkeops_use_gpu() else rkeops_use_cpu()
rkeops_use_float32()
med <- function(f, n = 3) { f(); median(replicate(n, system.time(f())[["elapsed"]])) }
set.seed(1)
op <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))
xb <- array(runif(B * N * 3), c(B, N, 3)); yb <- array(runif(B * N * 3), c(B, N, 3))
bb <- array(runif(B * N), c(B, N, 1))
x1 <- matrix(runif(B * N * 3), B * N); y1 <- matrix(runif(N * 3), N); b1 <- runif(N)
parts <- function() {  # the engine's parts of the last GPU call
  s <- rkeops:::.rk_gpu_last_run()
  if (where != "gpu" || !isTRUE(s$valid)) return("")
  sprintf(" (engine %.1f ms: conversion %.1f, H2D %.1f, kernel %.1f, merge %.1f, D2H %.1f; %d pieces, %d splits)",
          s$total_ms, s$convert_ms, s$h2d_ms, s$kernel_ms, s$merge_ms, s$d2h_ms, s$chunks_inner, s$nsplit)
}
t_batch <- med(function() op(list(xb, yb, bb, 10)))
p_batch <- parts()
t_one <- med(function() op(list(x1, y1, b1, 10)))
p_one <- parts()
t_loop <- med(function() for (k in seq_len(B)) op(list(xb[k, , ], yb[k, , ], bb[k, , 1], 10)), 1)
cat(sprintf("%s float32: %d problems of N = M = %g in one call %.3f s%s; one problem %g x %g %.3f s%s (ratio %.2f); an R loop over the problems %.3f s\n",
            where, B, N, t_batch, p_batch, B * N, N, t_one, p_one, t_batch / t_one, t_loop))

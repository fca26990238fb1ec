# The fixed cost of a batched call (issue 10 part 2): B problems of N points against one inner
# point each (the reduction itself costs next to nothing), against one plain call on the same
# rows. The difference is what batching costs: R's checks, the engine's gather of the problems'
# rows, the block-sparse pattern and the scatter of the result into R's array order.
#   Rscript bench/batch_overhead.R [cpu|gpu] [B]         (N = 20 and 5000)
suppressPackageStartupMessages(library(rkeops))
a <- commandArgs(TRUE)
where <- if (length(a) >= 1) a[1] else "cpu"
B <- if (length(a) >= 2) as.integer(a[2]) else 64L
if (where == "gpu") rkeops_use_gpu() else rkeops_use_cpu()
rkeops_use_float32()
op <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))
for (N in c(20, 5000)) {
  set.seed(1)
  xb <- array(runif(B * N * 3), c(B, N, 3)); yb <- array(runif(B * 3), c(B, 1, 3)); bb <- array(runif(B), c(B, 1, 1))
  x1 <- matrix(runif(B * N * 3), B * N); y1 <- matrix(runif(3), 1); b1 <- runif(1)
  op(list(xb, yb, bb, 10)); op(list(x1, y1, b1, 10))
  reps <- if (N <= 100) 300 else 20
  # minimum over 5 rounds of `reps` calls: the machine may be shared
  tb <- min(replicate(5, system.time(for (r in seq_len(reps)) op(list(xb, yb, bb, 10)))[["elapsed"]])) / reps
  t1 <- min(replicate(5, system.time(for (r in seq_len(reps)) op(list(x1, y1, b1, 10)))[["elapsed"]])) / reps
  cat(sprintf("%s: B = %d problems of N = %d (1 inner point each): batched call %.3f ms, one plain call on the same rows %.3f ms, batching costs %.3f ms\n",
              where, B, N, 1000 * tb, 1000 * t1, 1000 * (tb - t1)))
}

# One side of an A/B comparison on the GPU (bench/ab.sh builds two versions of the package side
# by side and runs this with each, alternately, on one host: device hosts differ from one run
# to the next more than the changes measured). Gaussian sum 1e5 from R (float32, float64); a batch of 64 problems
# of N = M = 2e4 against one problem with as many pairs; k-NN (K = 10) of 1e4 queries among 6e4
# points at D = 256 and 784: times from R (median), with the engine's conversion and kernel.
#   LAB=name Rscript bench/ab_gpu.R
suppressPackageStartupMessages(library(rkeops))
rkeops_use_gpu(); rkeops_use_float32()
lab <- Sys.getenv("LAB")
set.seed(1)
tm <- function(f, reps) { f(); t <- vapply(1:reps, function(r) { s <- Sys.time(); f(); as.numeric(difftime(Sys.time(), s, units = "secs")) }, 0); 1000 * median(t) }
g3 <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))
x <- matrix(runif(3e5), 1e5); y <- matrix(runif(3e5), 1e5); b <- matrix(runif(1e5), 1e5)
cat(sprintf("%s Gaussian 1e5: %.2f ms from R (conversion %.2f)\n", lab, tm(function() g3(list(x, y, b, 1)), 60), rkeops:::.rk_gpu_last_run()$convert_ms))
rkeops_use_float64()
cat(sprintf("%s float64 Gaussian 1e5: %.2f ms from R (kernel %.2f)\n", lab, tm(function() g3(list(x, y, b, 1)), 20), rkeops:::.rk_gpu_last_run()$kernel_ms))
rkeops_use_float32()
B <- 64L; N <- 2e4
xb <- array(runif(B * N * 3), c(B, N, 3)); yb <- array(runif(B * N * 3), c(B, N, 3)); bb <- array(runif(B * N), c(B, N, 1))
x1 <- matrix(runif(B * N * 3), B * N); y1 <- matrix(runif(N * 3), N); b1 <- runif(N)
tb <- tm(function() g3(list(xb, yb, bb, 10)), 9); cb <- rkeops:::.rk_gpu_last_run()$convert_ms
t1 <- tm(function() g3(list(x1, y1, b1, 10)), 9); c1 <- rkeops:::.rk_gpu_last_run()$convert_ms
cat(sprintf("%s batch 64 x 2e4: %.2f ms (conversion %.2f); one problem %.2f ms (conversion %.2f); ratio %.2f\n", lab, tb, cb, t1, c1, tb / t1))
for (D in c(256, 784)) {
  q <- matrix(runif(D * 1e4), 1e4); p <- matrix(runif(D * 6e4), 6e4)
  op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D)))
  ms <- tm(function() op(list(q, p)), 9); st <- rkeops:::.rk_gpu_last_run()
  cat(sprintf("%s k-NN D=%d: from R %.2f ms; kernel %.2f convert %.2f compile %.2f s\n", lab, D, ms, st$kernel_ms, st$convert_ms, st$compile_seconds))
}

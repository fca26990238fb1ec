# Development timings of the high-dimension scheme (not part of the package's benches).
args <- commandArgs(TRUE); tag <- args[1]; what <- args[2]
suppressPackageStartupMessages(library(rkeops))
rkeops_use_gpu(); set_rkeops_options(list(precision = "float32"))
tm <- function(f, reps = 5) {
  t1 <- system.time(f())[["elapsed"]]; comp <- rkeops:::.rk_gpu_last_run()$compile_seconds
  t <- numeric(reps)
  for (r in 1:reps) { s <- Sys.time(); f(); t[r] <- as.numeric(difftime(Sys.time(), s, units = "secs")) }
  s <- rkeops:::.rk_gpu_last_run()
  sprintf("%8.2f ms | conv %.2f h2d %.2f kernel %.2f merge %.2f | grid %dx%d block %d regs %d local %d | compile %.2f s",
          1000 * median(t), s$convert_ms, s$h2d_ms, s$kernel_ms, s$merge_ms, s$grid_x, s$nsplit, s$block, s$regs,
          s$local_bytes, comp)
}
xy <- function(D) c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D))
set.seed(1)
knn <- function(D, nq, np, reps = 5) {
  x <- matrix(runif(nq * D), nq); y <- matrix(runif(np * D), np)
  op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", xy(D))
  cat(sprintf("%-10s knn D=%-4d %gx%g  %s\n", tag, D, nq, np, tm(function() op(list(x, y)), reps)))
}
gauss <- function(D, n, reps = 5) {
  x <- matrix(runif(n * D), n); y <- matrix(runif(n * D), n); b <- matrix(runif(n), n)
  op <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c(xy(D), "b=Vj(1)", "g=Pm(1)"))
  cat(sprintf("%-10s gauss D=%-4d N=M=%g  %s\n", tag, D, n, tm(function() op(list(x, y, b, 1 / D)), reps)))
}
if (what == "main") {
  for (D in c(100, 256, 784)) knn(D, 1e4, 6e4)
  knn(100, 1e4, 1e6, 3)
  gauss(3, 1e6, 2)
  gauss(100, 1e5); gauss(784, 1e5)
} else if (what == "thresh") {
  for (D in c(32, 48, 64)) knn(D, 1e4, 1e5)
  for (D in c(16, 32, 64)) gauss(D, 1e5)
} else if (what == "tiles") {
  knn(100, 1e4, 6e4); knn(256, 1e4, 6e4); knn(784, 1e4, 6e4); gauss(256, 1e5)
}

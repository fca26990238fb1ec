# float16 on the GPU (issue 10 part 3): Gaussian kernel sum, D = 3, N = M = 1e6, in float16,
# float32 and float64, from R matrices to R results, in one run; the errors of float16 and
# float32 against float64 in float64 on the GPU (checked against dense R on 50 rows).
# Target: float16 at most 0.6x the float32 time on the H200. Run on a machine with a GPU:
#   Rscript bench/float16.R            (N = M = 1e6)
#   Rscript bench/float16.R 200000     (another size)
suppressPackageStartupMessages(library(rkeops))
if (!isTRUE(rkeops:::.rk_gpu_usable())) stop("no usable GPU: ", rkeops:::.rk_gpu_info()$driver)
args <- commandArgs(TRUE)
n <- if (length(args)) as.numeric(args[1]) else 1e6
cache <- file.path(tempdir(), "rkeops-f16-bench-cache")
Sys.setenv(RKEOPS_CACHE_DIR = cache)
set_rkeops_options(list(cache_dir = cache))
rkeops_use_gpu()
cat("GPU:", rkeops:::.rk_gpu_info()$names[1], "\n")

set.seed(1)
x <- matrix(runif(3 * n), n); y <- matrix(runif(3 * n), n); b <- matrix(runif(n))
g <- 1 / (2 * 0.1^2)   # bandwidth 0.1 in the unit cube
op <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))

# Median seconds of `reps` calls after a warm-up (the compile), and the engine's time split.
bench <- function(reps = 7) {
  res <- op(list(x, y, b, g))
  t <- numeric(reps)
  for (r in seq_len(reps)) t[r] <- system.time(res <- op(list(x, y, b, g)))[["elapsed"]]
  list(median = median(t), res = res, split = rkeops:::.rk_gpu_last_run())
}
out <- list()
# "float16 pairs": the generic half2 kernel (RKEOPS_CUDA_F16_TC=0), for comparison with the
# tensor-core kernel that float16 Gaussian sums take (codegen_cuda_f16tc.h)
for (run in c("float64", "float32", "float16 pairs", "float16")) {
  prec <- sub(" pairs", "", run)
  Sys.setenv(RKEOPS_CUDA_F16_TC = if (run == "float16 pairs") "0" else "1")
  set_rkeops_options(list(precision = prec))
  out[[run]] <- bench()
  s <- out[[run]]$split
  cat(sprintf("%-14s %8.1f ms from R (convert %.1f, H2D %.1f, kernel %.1f, D2H %.1f ms)\n", run,
              1000 * out[[run]]$median, s$convert_ms, s$h2d_ms, s$kernel_ms, s$d2h_ms))
}
Sys.unsetenv("RKEOPS_CUDA_F16_TC")
ref <- out$float64$res
rel <- function(a) max(abs(a - ref)) / max(abs(ref))
cat(sprintf("float16 / float32 time: %.2f (target <= 0.6); kernel only: %.2f\n",
            out$float16$median / out$float32$median, out$float16$split$kernel_ms / out$float32$split$kernel_ms))
cat(sprintf("float16 pairs / float32 time: %.2f; kernel only: %.2f\n", out[["float16 pairs"]]$median / out$float32$median,
            out[["float16 pairs"]]$split$kernel_ms / out$float32$split$kernel_ms))
mrel <- function(a) median(abs(a - ref) / abs(ref))
cat(sprintf("error vs float64 (max |diff| / max |ref|): float32 %.2e, float16 %.2e, float16 pairs %.2e (stated: ~2e-3, tests 1e-2)\n",
            rel(out$float32$res), rel(out$float16$res), rel(out[["float16 pairs"]]$res)))
cat(sprintf("median relative error per row: float32 %.2e, float16 %.2e, float16 pairs %.2e\n",
            mrel(out$float32$res), mrel(out$float16$res), mrel(out[["float16 pairs"]]$res)))
# a dense float64 check of the first rows (R, in blocks): the float64 GPU result is the reference above
m <- 50   # (50 x N distances in memory)
D2 <- outer(rowSums(x[1:m, ]^2), rowSums(y^2), "+") - 2 * tcrossprod(x[1:m, ], y)
dense <- exp(-g * pmax(D2, 0)) %*% b
cat(sprintf("float64 GPU vs dense R on %d rows: %.2e\n", m, max(abs(ref[1:m] - dense)) / max(abs(dense))))

# Block-sparse reductions (issue 10 part 1): a Gaussian kernel sum over N = M points in 3D,
# clustered on a 10 x 10 x 10 grid (1000 clusters), keeping the ~2% of pairs of clusters whose
# centres are nearest, against the dense reduction over all pairs, same operator, same run.
# Times are from R matrices to R results (median of repeated calls after a warm-up); the
# preparation (sorting by cluster, centroids, the ranges object) is timed separately.
#   Rscript bench/block_sparse.R cpu [N]      (default N = 1e5; float64)
#   Rscript bench/block_sparse.R gpu [N]      (default N = 1e6; float32 and float64)
suppressPackageStartupMessages(library(rkeops))
a <- commandArgs(TRUE)
backend <- if (length(a) >= 1) a[1] else "cpu"
n <- if (length(a) >= 2) as.numeric(a[2]) else if (backend == "gpu") 1e6 else 1e5
cache <- file.path(tempdir(), "rkeops-bs-bench-cache")
Sys.setenv(RKEOPS_CACHE_DIR = cache)
if (backend == "gpu") {
  if (!isTRUE(rkeops:::.rk_gpu_usable())) stop("no usable GPU")
  rkeops_use_gpu()
  cat("GPU:", rkeops:::.rk_gpu_info()$names[1], "\n")
} else {
  rkeops_use_cpu()
  cat(sprintf("CPU: %s, %d threads\n",
              sub("model name\t: ", "", grep("model name", readLines("/proc/cpuinfo"), value = TRUE)[1]),
              rkeops:::.rk_nthreads()))
}

median_time <- function(f, reps, warm = NULL) {
  if (is.null(warm)) f() else warm()   # warm-up (compiles; on the GPU also the context and the buffers)
  t <- numeric(reps)
  for (r in seq_len(reps)) t[r] <- system.time(f())[["elapsed"]]
  median(t)
}

set.seed(1)
g <- 10                                      # 10 x 10 x 10 grid: 1000 clusters
x <- matrix(runif(3 * n), n)
y <- matrix(runif(3 * n), n)
b <- runif(n)
t_prep <- system.time({
  cell <- function(p) 1 + floor(pmin(p, 1 - 1e-12) * g) %*% c(1, g, g * g)
  sx <- sort_clusters(x, cell(x))
  sy <- sort_clusters(cbind(y, b), cell(y))
  cx <- cluster_centroids(sx$x, sx$labels, nclusters = g^3)
  cy <- cluster_centroids(sy$x[, 1:3], sy$labels, nclusters = g^3)
  dc <- outer(rowSums(cx^2), rowSums(cy^2), "+") - 2 * tcrossprod(cx, cy)
  keep <- !is.na(dc) & dc <= quantile(dc, 0.02, na.rm = TRUE)   # the nearest 2% of pairs of clusters
  r <- block_sparse_ranges(sx$labels, sy$labels, keep)
})[["elapsed"]]
print(r)
ys <- sy$x[, 1:3]
bs <- sy$x[, 4]
sigma <- 0.05
op <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))
input <- list(sx$x, ys, bs, 1 / sigma^2)
precisions <- if (backend == "gpu") c("float32", "float64") else "float64"
cat(sprintf("\nN = M = %g points in %d clusters, Gaussian kernel (sigma = %g), %d of %d blocks kept (%.2f%%)\n",
            n, g^3, sigma, r$blocks, g^6, 100 * r$blocks / g^6))
cat(sprintf("preparation in R (sort, centroids, ranges): %.1f ms\n\n", 1000 * t_prep))
cat("| backend | precision | dense | block-sparse | speed-up | difference (relative L2; max) |\n")
cat("|---|---|---|---|---|---|\n")
for (prec in precisions) {
  set_rkeops_options(list(precision = prec))
  reps <- if (backend == "cpu") 1 else if (prec == "float32") 5 else 2
  small <- function() op(lapply(input, function(v) if (NROW(v) > 1) head(v, 1000) else v))
  res <- new.env()   # the results of the timed calls (a dense call is long on the CPU)
  td <- median_time(function() res$dense <- op(input), reps, if (backend == "cpu") small else NULL)
  ts <- median_time(function() res$sparse <- op(input, ranges = r), if (backend == "gpu") 10 else 3)
  dense <- res$dense
  sparse <- res$sparse
  # (what the blocks left out contribute: the truncation chosen by `keep`, not a rounding error)
  l2 <- sqrt(sum((sparse - dense)^2) / sum(dense^2))
  err <- max(abs(sparse - dense)) / max(abs(dense))
  cat(sprintf("| %s | %s | %.1f ms | %.1f ms | %.1fx | %.1e; %.1e |\n", backend, prec, 1000 * td, 1000 * ts, td / ts,
              l2, err))
}

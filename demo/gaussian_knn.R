# rkeops demo: a Gaussian kernel sum over 100,000 points in 3-D, checked against a dense
# computation on a subset, and a k-nearest-neighbour search. Runs on the GPU when one is
# usable, on the CPU otherwise.
suppressPackageStartupMessages(library(rkeops))   # (it masks %*%, atan2, ifelse and step with generics)

on_gpu <- tryCatch({ rkeops_use_gpu(); TRUE }, error = function(e) { rkeops_use_cpu(); FALSE })
cat(sprintf("rkeops %s on the %s\n", utils::packageVersion("rkeops"),
            if (on_gpu) "GPU" else sprintf("CPU (%d threads)", rkeops:::.rk_nthreads())))
timed <- function(expr) {
  t0 <- proc.time()[["elapsed"]]
  value <- force(expr)
  list(value = value, seconds = proc.time()[["elapsed"]] - t0)
}

set.seed(2026)
N <- 100000
x <- matrix(runif(N * 3), N, 3)
y <- matrix(runif(N * 3), N, 3)
b <- rnorm(N)
sigma <- 0.1

# a_i = sum_j exp(-|x_i - y_j|^2 / (2 sigma^2)) b_j, never storing the N x N matrix
gauss <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
                      c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))
first <- timed(gauss(list(x, y, b, 1 / (2 * sigma^2))))
again <- timed(gauss(list(x, y, b, 1 / (2 * sigma^2))))
cat(sprintf("Gaussian kernel sum, N = M = %d, D = 3 (float64):\n", N))
cat(sprintf("  first call (compile or load + run) %.3f s, second call %.3f s\n", first$seconds, again$seconds))
a <- again$value

# dense check on the first 200 rows
sub <- 1:200
d2 <- outer(rowSums(x[sub, ]^2), rowSums(y^2), "+") - 2 * x[sub, ] %*% t(y)
dense <- exp(-d2 / (2 * sigma^2)) %*% b
cat(sprintf("  max relative error vs dense R on %d rows: %.2e\n", length(sub),
            max(abs(a[sub] - dense)) / max(abs(dense))))
print(head(cbind(rkeops = a[sub], dense = as.vector(dense)), 3))

# k-nearest neighbours: indices (0-based, as KeOps) of the 10 nearest y of each x
knn <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c("x=Vi(3)", "y=Vj(3)"))
queries <- x[seq_len(if (on_gpu) N else 10000), ]
res <- timed(knn(list(queries, y)))
res <- timed(knn(list(queries, y)))
cat(sprintf("10-NN of %d points among %d: %.3f s\n", nrow(queries), N, res$seconds))
nn_dense <- order(colSums((t(y) - x[1, ])^2))[1:10] - 1
cat("  neighbours of x[1, ] (0-based):", res$value[1, ], "\n")
cat("  dense R agrees:", identical(as.numeric(nn_dense), as.numeric(res$value[1, ])), "\n")

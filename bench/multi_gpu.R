# Several GPUs of one host against one (issue 11): Gaussian sum D = 3, N = M = 4e6, float32
# (result rows split over the GPUs) and k-NN K = 10, D = 100, 1e4 queries x 2e6 points (the
# reduced index split, partial states merged on the host). Prints the medians (seconds) and ratios.
library(rkeops)
set_rkeops_options(list(precision = "float32"))
ngpu <- length(rkeops:::.rk_gpu_info(refresh = TRUE)$names)
cat("GPUs:", ngpu, "\n")
med <- function(f, n = 5) { f(); median(replicate(n, system.time(f())[["elapsed"]])) }
set.seed(1)
N <- 4e6
x <- matrix(runif(3 * N), N); y <- matrix(runif(3 * N), N); b <- runif(N)
g <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))
nq <- 1e4; M <- 2e6; D <- 100
q <- matrix(runif(D * nq), nq); db <- matrix(runif(D * M), M)
knn <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D)))
res <- list()
for (dev in list(0, seq_len(ngpu) - 1)) {
  rkeops_use_gpu(dev)
  tag <- paste(length(dev), "GPU")
  res[[tag]] <- c(gauss = med(function() g(list(x, y, b, 100)), 3), knn = med(function() knn(list(q, db)), 3))
  cat(tag, ": Gaussian 4e6 ", res[[tag]][["gauss"]], " s, k-NN 1e4 x 2e6 D=100 ", res[[tag]][["knn"]], " s\n", sep = "")
}
if (ngpu > 1) cat("speed-up: Gaussian", res[[1]][["gauss"]] / res[[2]][["gauss"]], "x, k-NN",
                  res[[1]][["knn"]] / res[[2]][["knn"]], "x\n")

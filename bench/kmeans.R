# K-means (Lloyd, D = 10, K = round(sqrt(N)), exactly 10 iterations, float32; issue 17): the
# naive R-user form, the fast form, the device-resident form, and (with --torch) PyTorch on the
# same data in the same run; plus the call overhead of a cached operator on the CPU.
#   Rscript bench/kmeans.R [--torch] [N ...]        (default N: 1e5 1e6 on a GPU, 1e4 1e5 on the CPU)
# Times: median of 3 runs after a warm-up run (kernels compiled, device copies made).
suppressPackageStartupMessages(library(rkeops))
argv <- commandArgs(TRUE)
torch <- "--torch" %in% argv
sizes <- as.numeric(setdiff(argv, "--torch"))
gpu <- isTRUE(tryCatch(rkeops:::.rk_gpu_usable(), error = function(e) FALSE))
if (!length(sizes)) sizes <- if (gpu) c(1e5, 1e6) else c(1e4, 1e5)
if (gpu) rkeops_use_gpu() else rkeops_use_cpu()
rkeops_use_float32()
set_rkeops_options(list(verbosity = FALSE))
cat(sprintf("backend: %s%s\n", if (gpu) "GPU " else "CPU",
            if (gpu) rkeops:::.rk_gpu_info()$names[1] else paste(parallel::detectCores(), "cores")))
D <- 10
iters <- 10

# 1. Naive: a LazyTensor argmin per iteration, then rowsum() and tabulate() in R.
kmeans_naive <- function(x, C) {
  for (it in seq_len(iters)) {
    cl <- as.integer(argmin(sqdist(Vi(x), Vj(C)), "j")) + 1L
    size <- tabulate(cl, nrow(C))
    C[size > 0, ] <- rowsum(x, cl) / size[size > 0]
  }
  list(C = C, cl = cl)
}

# 2. Fast: two operators built once; the centroid update is a reduction over i too: for each
# centre k, the sum of the points labelled k and their number (Concat(x, 1)).
nearest <- keops_kernel("ArgMin_Reduction(SqDist(x, c), 1)", c("x=Vi(10)", "c=Vj(10)"))
update <- keops_kernel("Sum_Reduction(Equal(l, k) * Concat(x, IntCst(1)), 0)", c("x=Vi(10)", "l=Vi(1)", "k=Vj(1)"))
kmeans_fast <- function(x, C) {
  ks <- seq_len(nrow(C)) - 1
  for (it in seq_len(iters)) {
    lab <- nearest(list(x, C))                 # N x 1, 0-based, a double matrix used as is below
    s <- update(list(x, lab, ks))              # K x (D + 1): sums and counts
    nz <- s[, D + 1] > 0
    C[nz, ] <- s[nz, 1:D] / s[nz, D + 1]
  }
  list(C = C, cl = as.integer(lab) + 1L)
}
# 3. Device-resident: the fast form on rkeops_device(x) (x copied to the GPU once; in the update,
# where x is reduced over, it is interleaved with the labels on the GPU).

timeit <- function(f, reps = 3) {
  f()
  median(vapply(seq_len(reps), function(r) system.time(f())[["elapsed"]], 0))
}

rows <- list()
for (N in sizes) {
  set.seed(1)
  K <- round(sqrt(N))
  mu <- matrix(rnorm(50 * D, sd = 3), 50)
  x <- mu[sample(50, N, replace = TRUE), ] + matrix(rnorm(N * D), N)
  C0 <- x[sample(N, K), ]
  xd <- rkeops_device(x)
  t_naive <- timeit(function() kmeans_naive(x, C0))
  t_fast <- timeit(function() kmeans_fast(x, C0))
  t_dev <- timeit(function() kmeans_fast(xd, C0))
  a <- kmeans_naive(x, C0); b <- kmeans_fast(x, C0); d <- kmeans_fast(xd, C0)
  agree <- c(mean(a$cl == b$cl), mean(b$cl == d$cl))
  # per-step split of one fast iteration
  lab <- nearest(list(xd, C0)); s1 <- rkeops:::.rk_gpu_last_run()
  t_near <- timeit(function() nearest(list(xd, C0)), 5)
  t_upd <- timeit(function() update(list(x, lab, seq_len(K) - 1)), 5)
  # the update on rkeops_device(x): x interleaved with the labels on the GPU (rk_pack_inner)
  t_upd_dev <- timeit(function() update(list(xd, lab, seq_len(K) - 1)), 5)
  t_near_host <- timeit(function() nearest(list(x, C0)), 5)
  t_torch <- NA
  if (torch) {
    f <- tempfile()
    writeBin(as.vector(t(x)), paste0(f, ".x"), size = 4)
    writeBin(as.vector(t(C0)), paste0(f, ".c"), size = 4)
    out <- system2("python3", c("bench/kmeans_torch.py", f, N, D, K, iters), stdout = TRUE)
    cat(out, sep = "\n")
    t_torch <- as.numeric(sub("^torch_seconds ", "", grep("^torch_seconds", out, value = TRUE)))
  }
  r <- data.frame(N = N, K = K, naive_s = t_naive, fast_s = t_fast, device_s = t_dev, torch_s = t_torch,
                  argmin_device_ms = 1000 * t_near, argmin_host_ms = 1000 * t_near_host,
                  update_ms = 1000 * t_upd, update_device_ms = 1000 * t_upd_dev, labels_naive_vs_fast = agree[1], labels_fast_vs_device = agree[2])
  print(r, row.names = FALSE)
  rows[[length(rows) + 1]] <- r
}

# Call overhead of a cached operator on 1e3 points, on the CPU (the work itself is 1e3 pairs).
rkeops_use_cpu()
rkeops_use_float64()
op <- keops_kernel("Sum_Reduction(SqDist(x, y), 1)", c("x=Vi(3)", "y=Vj(3)"))
xs <- matrix(runif(3e3), 1e3); ys <- matrix(runif(3), 1)
invisible(op(list(xs, ys)))
n <- 20000
t_call <- system.time(for (r in seq_len(n)) op(list(xs, ys)))
t_lt <- system.time(for (r in seq_len(500)) sum(sqdist(Vi(xs), Vj(ys)), "j"))[["elapsed"]] / 500
# elapsed, and CPU time (user + system) of this process: on a loaded machine elapsed time
# includes waiting for a core
cat(sprintf(paste("CPU call overhead, cached operator, 1e3 points: %.3f ms per call elapsed, %.3f ms CPU;",
                  "LazyTensor expression: %.3f ms\n"),
            1000 * t_call[["elapsed"]] / n, 1000 * (t_call[["user.self"]] + t_call[["sys.self"]]) / n, 1000 * t_lt))
cat("load average:", readLines("/proc/loadavg", warn = FALSE), "\n")

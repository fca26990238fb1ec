# Low-dimension kernels at the arithmetic floor (issue 15): the Gaussian kernel sum D = 3 (b of
# dimension 1 and 3), its log-sum-exp, its gradient in x, float32 at N = M = 1e4 / 1e5 / 1e6 and
# float64 at 1e5, from R matrices to R results (median after a warm-up) with the engine's kernel
# time; the hand-written anchor (bench/handwritten_gpu.cu) is run by bench/gpu_floor.sh in the
# same run. RKEOPS_CUDA_ROWS (outer rows per GPU thread, 0 = chosen) compares register blockings.
#   Rscript bench/gpu_floor.R [sizes=1e4,1e5,1e6]
suppressPackageStartupMessages(library(rkeops))
a <- commandArgs(TRUE)
sizes <- if (length(a)) as.numeric(strsplit(a[1], ",")[[1]]) else c(1e4, 1e5, 1e6)
if (!isTRUE(rkeops:::.rk_gpu_usable())) stop("no usable GPU")
rkeops_use_gpu()
set_rkeops_options(list(verbosity = FALSE))
rows <- Sys.getenv("RKEOPS_CUDA_ROWS", "0")
time_op <- function(f, n) {
  f()
  reps <- if (n >= 1e6) 3 else if (n >= 1e5) 10 else 50
  t <- vapply(seq_len(reps), function(r) { s <- Sys.time(); f(); as.numeric(difftime(Sys.time(), s, units = "secs")) }, 0)
  s <- rkeops:::.rk_gpu_last_run()
  c(from_R_ms = 1000 * median(t), kernel_ms = s$kernel_ms, convert_ms = s$convert_ms, regs = s$regs)
}
line <- function(name, n, prec, r) {
  cat(sprintf("rows=%s | %-34s | %-7s | N=M=%-5g | %8.2f ms from R | kernel %8.2f ms | conversion %6.2f ms | %3d regs\n",
              rows, name, prec, n, r[["from_R_ms"]], r[["kernel_ms"]], r[["convert_ms"]], as.integer(r[["regs"]])))
}
gauss <- function(db) keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)",
                                   c("x=Vi(3)", "y=Vj(3)", sprintf("b=Vj(%d)", db), "g=Pm(1)"))
lse <- keops_kernel("LogSumExp_Reduction(-g * SqDist(x, y), 1)", c("x=Vi(3)", "y=Vj(3)", "g=Pm(1)"))
grad <- keops_kernel("Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, x, e), 1)",
                     c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)", "e=Vi(1)"))
g1 <- gauss(1); g3 <- gauss(3)
set.seed(1)
for (prec in c("float32", "float64")) {
  set_rkeops_options(list(precision = prec))
  for (n in if (prec == "float32") sizes else 1e5) {
    x <- matrix(runif(3 * n), n); y <- matrix(runif(3 * n), n); b <- matrix(runif(n), n); b3 <- matrix(runif(3 * n), n)
    line("Gaussian sum, b dim 1", n, prec, time_op(function() g1(list(x, y, b, 2)), n))
    if (prec == "float64") next
    line("Gaussian sum, b dim 3", n, prec, time_op(function() g3(list(x, y, b3, 2)), n))
    line("LogSumExp", n, prec, time_op(function() lse(list(x, y, 2)), n))
    line("gradient in x", n, prec, time_op(function() grad(list(x, y, b, 2, matrix(1, n, 1))), n))
  }
}

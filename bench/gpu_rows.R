# Register blocking of the generic GPU kernel (issue 15): kernel times of ten low-dimension
# kernels (Gaussian sums with b of dimension 1, 3, 4, 6; Cauchy, Laplacian, squared scalar
# product; SumSoftMaxWeight; a gradient; LogSumExp) at N = M = 3e5, float32, medians of 3 calls.
# RKEOPS_CUDA_ROWS imposes the outer rows per thread (0 or unset: chosen), to compare:
#   for r in 0 2 4 5 6; do RKEOPS_CUDA_ROWS=$r Rscript bench/gpu_rows.R; done
suppressPackageStartupMessages(library(rkeops))
if (!isTRUE(rkeops:::.rk_gpu_usable())) stop("no usable GPU")
rkeops_use_gpu(); rkeops_use_float32()
set_rkeops_options(list(verbosity = FALSE))
rows <- Sys.getenv("RKEOPS_CUDA_ROWS", "0"); set.seed(1); n <- 3e5
x <- matrix(runif(3 * n), n); y <- matrix(runif(3 * n), n)
B <- lapply(1:6, function(d) matrix(runif(d * n), n))
ks <- list(
  gauss1 = c("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", 1),
  gauss3 = c("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", 3),
  gauss4 = c("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", 4),
  gauss6 = c("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", 6),
  cauchy1 = c("Sum_Reduction(Inv(IntCst(1) + g * SqDist(x, y)) * b, 1)", 1),
  laplace1 = c("Sum_Reduction(Exp(-Sqrt(g * SqDist(x, y))) * b, 1)", 1),
  dot2 = c("Sum_Reduction(Square((x | y)) * b, 1)", 1),
  softmax = c("SumSoftMaxWeight_Reduction(-g * SqDist(x, y), b, 1)", 3),
  grad = c("Sum_Reduction(Grad(Exp(-g * SqDist(x, y)) * b, x, e), 1)", 1),
  lse = c("LogSumExp_Reduction(-g * SqDist(x, y), 1)", 0))
for (nm in names(ks)) {
  f <- ks[[nm]][1]; d <- as.integer(ks[[nm]][2])
  al <- c("x=Vi(3)", "y=Vj(3)", "g=Pm(1)")
  if (d > 0) al <- c(al, sprintf("b=Vj(%d)", d)); if (nm == "grad") al <- c(al, "e=Vi(1)")
  if (nm == "dot2") al <- setdiff(al, "g=Pm(1)")
  k <- tryCatch(keops_kernel(f, al), error = function(e) { cat(nm, "error:", conditionMessage(e), "\n"); NULL }); if (is.null(k)) next
  args <- list(x, y); if (nm != "dot2") args <- c(args, list(2)); if (d > 0) args <- c(args, list(B[[d]])); if (nm == "grad") args <- c(args, list(matrix(1, n, 1)))
  names(args) <- NULL
  ok <- tryCatch({ invisible(k(args)); TRUE }, error = function(e) { cat(nm, "error:", conditionMessage(e), "\n"); FALSE }); if (!ok) next; t <- c()
  for (r in 1:3) { invisible(k(args)); t <- c(t, rkeops:::.rk_gpu_last_run()$kernel_ms) }
  st <- rkeops:::.rk_gpu_last_run()
  cat(sprintf("rows=%s | %-9s | kernel %7.2f ms | %3d regs\n", rows, nm, median(t), as.integer(st$regs)))
}

# Cost of the generated gradients relative to the forward kernel (issue 3: the gradient of the
# Gaussian kernel sum at most about 2.5x the forward). Rscript bench/grad.R [N]
# The machine may be shared: each round times the forward and the gradients back to back and
# the ratios are taken per round, then the median over rounds.
suppressMessages(library(rkeops))
rkeops_use_cpu()
args <- commandArgs(TRUE)
n <- if (length(args)) as.integer(args[1]) else 20000
rounds <- 7
set.seed(1)
x <- matrix(runif(3 * n), n); y <- matrix(runif(3 * n), n); b <- rnorm(n); e <- rnorm(n)
gauss <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))
gx <- keops_grad(gauss, "x")
gy <- keops_grad(gauss, "y")
lse <- keops_kernel("LogSumExp_Reduction(-g * SqDist(x, y), 1)", c("x=Vi(3)", "y=Vj(3)", "g=Pm(1)"))
lx <- keops_grad(lse, "x")   # a forward LogSumExp, then a Sum
el <- function(f) system.time(f())[["elapsed"]]
cat(sprintf("N = M = %d, D = 3, %d threads, median of %d rounds\n", n, rkeops:::.rk_nthreads(), rounds))
for (prec in c("float64", "float32")) {
  set_rkeops_options(list(precision = prec))
  calls <- list(
    forward = function() gauss(list(x, y, b, 10)),
    grad_x = function() gx(list(x, y, b, 10, e)),
    grad_y = function() gy(list(x, y, b, 10, e)),
    lse = function() lse(list(x, y, 10)),
    lse_grad_x = function() lx(list(x, y, 10, e))
  )
  for (f in calls) f()   # compile and warm up
  t <- t(replicate(rounds, vapply(calls, el, 0)))
  med <- apply(t, 2, median)
  ratio <- function(a, b) median(t[, a] / t[, b])
  cat(sprintf(paste("%s: Gaussian forward %.0f ms, gradient in x %.0f ms (%.2fx), in y %.0f ms (%.2fx);",
                    "LogSumExp %.0f ms, its gradient in x %.0f ms (%.2fx, forward pass included)\n"),
              prec, 1000 * med[["forward"]], 1000 * med[["grad_x"]], ratio("grad_x", "forward"),
              1000 * med[["grad_y"]], ratio("grad_y", "forward"), 1000 * med[["lse"]],
              1000 * med[["lse_grad_x"]], ratio("lse_grad_x", "lse")))
}

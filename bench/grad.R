# Cost of the generated gradient of the Gaussian kernel sum relative to the forward kernel
# (issue 3: at most about 2.5x). Rscript bench/grad.R
suppressMessages(library(rkeops))
rkeops_use_cpu()
set.seed(1)
n <- 20000
x <- matrix(runif(3 * n), n); y <- matrix(runif(3 * n), n); b <- rnorm(n); e <- rnorm(n)
fwd <- keops_kernel("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(3)", "y=Vj(3)", "b=Vj(1)", "g=Pm(1)"))
gx <- keops_grad(fwd, "x")
gy <- keops_grad(fwd, "y")
time <- function(f) { f(); median(replicate(3, system.time(f())[["elapsed"]])) }
for (prec in c("float64", "float32")) {
  set_rkeops_options(list(precision = prec))
  tf <- time(function() fwd(list(x, y, b, 10)))
  tx <- time(function() gx(list(x, y, b, 10, e)))
  ty <- time(function() gy(list(x, y, b, 10, e)))
  cat(sprintf("%s N=M=%d: forward %.0f ms, gradient in x %.0f ms (%.2fx), in y %.0f ms (%.2fx)\n",
              prec, n, 1000 * tf, 1000 * tx, tx / tf, 1000 * ty, ty / tf))
}

# One k-NN call to profile (ncu): D and sizes from the arguments.
a <- as.numeric(commandArgs(TRUE)); D <- a[1]
suppressPackageStartupMessages(library(rkeops)); rkeops_use_gpu(); rkeops_use_float32()
set.seed(1); x <- matrix(runif(1e4 * D), 1e4); y <- matrix(runif(6e4 * D), 6e4)
op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D)))
invisible(op(list(x, y))); invisible(op(list(x, y)))

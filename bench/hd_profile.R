# One high-dimension k-NN (K = 10, float32, 1e4 queries x 6e4 points) on the GPU, for
# profiling the kernel under Nsight Compute:
#   RKEOPS_CUDA_HD_MMA=1 ncu -k regex:rk_reduce -c 1 --launch-skip 1 Rscript bench/hd_profile.R 784
suppressPackageStartupMessages(library(rkeops))
D <- as.integer(commandArgs(TRUE)[1])
rkeops_use_gpu()
rkeops_use_float32()
set.seed(1)
q <- matrix(runif(D * 1e4), 1e4); p <- matrix(runif(D * 6e4), 6e4)
op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D)))
for (r in 1:2) invisible(op(list(q, p)))
print(unlist(rkeops:::.rk_gpu_last_run()[c("kernel_ms", "convert_ms", "h2d_ms", "regs", "local_bytes", "shared_bytes", "grid_x", "nsplit", "block", "chunks_inner", "chunks_outer")]))

# Where a high-dimension k-NN's time goes from R (issue 9): K = 10, float32, 1e4 queries x 6e4
# points at D = 100, 256, 784 on the GPU; the first call (NVRTC compile) and, for 1, 4, 8, 16
# host threads (option ncore), the time from R and the engine's parts: host conversion (packing),
# H2D, kernel, merge, D2H, inner pieces. bench/host_pack_bw.cpp measures the packing alone and
# bench/host_bw.cu what the host's memory and bus allow.
#   Rscript bench/hd_host.R
suppressPackageStartupMessages(library(rkeops))
rkeops_use_gpu(); rkeops_use_float32()
set_rkeops_options(list(cache_dir = file.path(tempdir(), "c1")))
set.seed(1)
for (D in c(100, 256, 784)) {
  q <- matrix(runif(D * 1e4), 1e4); p <- matrix(runif(D * 6e4), 6e4)
  op <- keops_kernel("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c(sprintf("x=Vi(%d)", D), sprintf("y=Vj(%d)", D)))
  t0 <- Sys.time(); invisible(op(list(q, p))); cat(sprintf("D=%d first call %.2f s, compile %.2f s\n", D, as.numeric(Sys.time() - t0), rkeops:::.rk_gpu_last_run()$compile_seconds))
  for (nc in c(1, 4, 8, 16)) {
    set_rkeops_options(list(ncore = nc))
    tt <- vapply(1:5, function(r) system.time(op(list(q, p)))[["elapsed"]], 0)
    s <- rkeops:::.rk_gpu_last_run()
    cat(sprintf("D=%d ncore=%d: from R %.1f ms; total %.1f convert %.1f h2d %.1f kernel %.1f merge %.2f d2h %.2f pieces %d\n", D, nc, 1000 * median(tt),
      s$total_ms, s$convert_ms, s$h2d_ms, s$kernel_ms, s$merge_ms, s$d2h_ms, s$chunks_inner))
  }
  set_rkeops_options(list(ncore = NULL))
}

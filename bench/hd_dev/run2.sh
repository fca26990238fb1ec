# Device run 2: timings of tile variants, thresholds, a profile.
cd $(dirname $0)/../..
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
R="timeout 60 Rscript bench/hd_dev/dev.R"
( time timeout 150 Rscript -e 'Sys.setenv(RKEOPS_CACHE_DIR=tempfile()); res <- testthat::test_file("tests/testthat/test-gpu.R", package="rkeops", load_package="installed", reporter="summary"); print(as.data.frame(res)[, c("test","nb","failed","error","real")])' ) > $OUT/tests.txt 2>&1
tail -12 $OUT/tests.txt
( $R hd main ) 2>&1 | tee $OUT/main.txt
( for t in 4,16,16,16 4,16,8,8 4,16,16,8 8,8,8,16 8,8,16,16; do RKEOPS_HD_TILE=$t $R t$t tiles; done ) 2>&1 | tee $OUT/tiles.txt
( RKEOPS_HD_MIN_DIM=4 $R hd thresh; RKEOPS_HD_MIN_DIM=100000 $R generic thresh ) 2>&1 | tee $OUT/thresh.txt
# SASS of the k-NN (D = 100) and Gaussian (D = 256) kernels
if command -v cuobjdump >/dev/null; then
  Rscript -e 'suppressPackageStartupMessages(library(rkeops)); writeLines(rkeops:::.rk_cuda_source("ArgKMin_Reduction(SqDist(x, y), 10, 1)", c("x=Vi(100)", "y=Vj(100)"), precision = "float32"), "/tmp/knn100.cu"); writeLines(rkeops:::.rk_cuda_source("Sum_Reduction(Exp(-g * SqDist(x, y)) * b, 1)", c("x=Vi(256)", "y=Vj(256)", "b=Vj(1)", "g=Pm(1)"), precision = "float32"), "/tmp/g256.cu")'
  for k in knn100 g256; do nvcc -arch=sm_90 -cubin -std=c++17 -o /tmp/$k.cubin /tmp/$k.cu && cuobjdump -sass /tmp/$k.cubin > $OUT/$k.sass; done
  ls -la $OUT
fi

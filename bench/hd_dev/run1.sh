# Device run 1: GPU tests, then timings. Output to $OUT.
export MAKEFLAGS=-j16
set -x
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
cd $(dirname $0)/../..
( time timeout 200 Rscript -e 'Sys.setenv(RKEOPS_CACHE_DIR=tempfile()); res <- testthat::test_file("tests/testthat/test-gpu.R", package="rkeops", load_package="installed", reporter="summary"); print(as.data.frame(res)[, c("test","nb","failed","skipped","error","real")])' ) > $OUT/tests.txt 2>&1
tail -40 $OUT/tests.txt
for v in main; do timeout 120 Rscript bench/hd_dev/dev.R hd $v; done 2>&1 | tee $OUT/main.txt
timeout 60 python3 bench/hd_dev/torch_knn.py 2>&1 | tee $OUT/torch.txt
( RKEOPS_HD_MIN_DIM=4 timeout 60 Rscript bench/hd_dev/dev.R hd thresh; RKEOPS_HD_MIN_DIM=100000 timeout 60 Rscript bench/hd_dev/dev.R generic thresh ) 2>&1 | tee $OUT/thresh.txt
for t in 4,8,8 8,8,16 4,16,16 2,8,16 8,8,8; do RKEOPS_HD_TILE=$t timeout 40 Rscript bench/hd_dev/dev.R tile$t tiles; done 2>&1 | tee $OUT/tiles.txt

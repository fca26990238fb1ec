# Device run 3: the GPU tests, then bench/gpu.R's high-dimension section (with PyTorch).
cd $(dirname $0)/../..
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee $OUT/gpu.txt
( time timeout 150 Rscript -e 'Sys.setenv(RKEOPS_CACHE_DIR=tempfile()); res <- testthat::test_file("tests/testthat/test-gpu.R", package="rkeops", load_package="installed", reporter="summary"); print(as.data.frame(res)[, c("test","nb","failed","error","real")])' ) > $OUT/tests.txt 2>&1
tail -12 $OUT/tests.txt
timeout 240 Rscript bench/gpu.R hd > $OUT/bench.txt 2>&1
tail -25 $OUT/bench.txt

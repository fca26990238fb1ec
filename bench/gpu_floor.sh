#!/bin/sh
# Issue 15's comparison in one run: the hand-written CUDA anchor (bench/handwritten_gpu.cu, nvcc)
# and bench/gpu_floor.R for each register blocking (outer rows per thread) given, 0 = chosen.
#   sh bench/gpu_floor.sh [rows ...]        (default: 1 0)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
nvcc -O3 -arch=sm_90 -o /tmp/rkeops_handwritten_gpu "$here/handwritten_gpu.cu"
for n in 10000 100000 1000000; do /tmp/rkeops_handwritten_gpu $n; done
for r in ${*:-1 0}; do RKEOPS_CUDA_ROWS=$r Rscript "$here/gpu_floor.R"; done

#!/bin/sh
# Build and run the design §8 CPU baseline (bench/handwritten.cpp) three ways:
#   1. std::exp, -O3 -march=native -fopenmp               (scalar libm exp)
#   2. std::exp, -O3 -march=native -fopenmp -ffast-math   (libmvec vector exp: the target)
#   3. rk_exp,   -O3 -march=native -fopenmp               (our header, IEEE-clean)
# plus 2 and 3 again with -mprefer-vector-width=512 (x86 only), because gcc's
# default tuning for AVX-512 CPUs keeps loops at 256-bit vectors (libmvec's
# _ZGVdN4v_exp rather than _ZGVeN8v_exp).  `#pragma omp simd simdlen(8)` on
# the j loop has the same effect on that loop alone.
# Usage: bench/handwritten.sh [N ...]      (default: 1000 10000 20000; add 100000 for the slow one)
# Environment: CXX (default g++), OMP_NUM_THREADS (default: all cores).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
CXX=${CXX:-g++}
build=${TMPDIR:-/tmp}/rkeops_bench_handwritten
mkdir -p "$build"
sizes=${*:-1000 10000 20000}

echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores available; $($CXX --version | head -1)"
grep -q -w avx512f /proc/cpuinfo 2>/dev/null && echo "# CPU has AVX-512F"

base="-std=c++17 -O3 -march=native -fopenmp"
$CXX $base                 "$here/handwritten.cpp" -o "$build/std_O3"
$CXX $base -ffast-math     "$here/handwritten.cpp" -o "$build/std_fastmath"
$CXX $base -DUSE_RK_EXP -I"$root/inst/include" "$here/handwritten.cpp" -o "$build/rk_exp"
variants="std_O3 std_fastmath rk_exp"
if grep -q -w avx512f /proc/cpuinfo 2>/dev/null; then
  $CXX $base -ffast-math -mprefer-vector-width=512 "$here/handwritten.cpp" \
       -o "$build/std_fastmath_512"
  $CXX $base -DUSE_RK_EXP -I"$root/inst/include" -mprefer-vector-width=512 \
       "$here/handwritten.cpp" -o "$build/rk_exp_512"
  variants="$variants std_fastmath_512 rk_exp_512"
fi

for v in $variants; do
  echo "## $v"
  # shellcheck disable=SC2086
  "$build/$v" $sizes
done

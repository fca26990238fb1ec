#!/bin/sh
# A/B on one GPU host: the package of this checkout against the one of git revision REV, built
# side by side, bench/ab_gpu.R run with each in turn, ROUNDS times (default 2).
#   sh bench/ab.sh REV [ROUNDS]
set -eu
rev=$1; rounds=${2:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
mkdir -p "$tmp/src" "$tmp/libA" "$tmp/libB"
git -C "$here" archive "$rev" | tar -x -C "$tmp/src"
MAKEFLAGS=-j8 R CMD INSTALL -l "$tmp/libA" "$here" > "$tmp/A.log" 2>&1 &
MAKEFLAGS=-j8 R CMD INSTALL -l "$tmp/libB" "$tmp/src" > "$tmp/B.log" 2>&1 &
wait
for r in $(seq "$rounds"); do
  R_LIBS="$tmp/libA" LAB=this Rscript "$here/bench/ab_gpu.R"
  R_LIBS="$tmp/libB" LAB="$rev" Rscript "$here/bench/ab_gpu.R"
done

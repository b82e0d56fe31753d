#!/usr/bin/env bash
# Runs every benchmark built from bench/ (executables named bench_*), in order.
set -euo pipefail
BUILD=${1:-build}
found=0
for b in "$BUILD"/bench_*; do
    [ -x "$b" ] || continue
    found=1
    echo "== $(basename "$b")"
    "$b"
done
[ "$found" = 1 ] || echo "no benchmarks built"

#!/usr/bin/env bash
# Runs the README's C example (examples/quickstart.c) on a small random-weight
# ModernBERT written by tp_mkmodel with the real ModernBERT tokenizer, and checks
# the per-item contract it demonstrates: items 0 and 2 give 2 predictions each,
# item 1 (no mask) fails alone with a message naming the problem.
set -euo pipefail
BUILD=$1
DATA=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$BUILD/tp_mkmodel" --family modernbert --task mlm --hidden 64 --layers 2 --heads 4 \
    --intermediate 96 --tokenizer-dir "$DATA/tokenizers/modernbert" --out "$tmp/m" --quiet
out=$("$BUILD/example_quickstart" "$tmp/m")
echo "$out"
[ "$(grep -c '^0: ' <<<"$out")" -eq 2 ] || { echo "FAIL: item 0 should have 2 predictions"; exit 1; }
[ "$(grep -c '^2: ' <<<"$out")" -eq 2 ] || { echo "FAIL: item 2 should have 2 predictions"; exit 1; }
grep -qi '^1: error: .*mask' <<<"$out" || { echo "FAIL: item 1 should fail naming the missing mask"; exit 1; }
grep '^0: ' <<<"$out" | grep -q 'The capital of France is' || { echo "FAIL: sequence not filled"; exit 1; }
echo "OK"

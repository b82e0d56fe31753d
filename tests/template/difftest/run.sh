#!/bin/sh
# Differential test against Python Jinja2 (needs python3 with jinja2; not part of ctest):
# random templates from the three generators, rendered by Python Jinja2 in transformers'
# configuration and by tpipe (test_template_engine FILE), every difference printed.
#   tests/template/difftest/run.sh BUILD_DIR [SEED] [COUNT]
# Known, accepted differences: slicing a constant int/float/bool gives "" in Jinja2 (its
# constant folder) and an error here; dict views print as lists (dict_keys([...]) there).
set -e
build=${1:?usage: run.sh BUILD_DIR [SEED] [COUNT]}
seed=${2:-1}
count=${3:-2000}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for gen in gen_expr gen_ws gen_stmt; do
    python3 "$here/$gen.py" "$seed" "$count" > "$tmp/$gen.txt"
    python3 "$here/../gen_engine_cases.py" --json "$tmp/$gen.txt" > "$tmp/$gen.jsonl" 2>/dev/null
    echo "== $gen (seed $seed, $count cases)"
    TPIPE_TESTDATA="$here/../../data" "$build/tests/template/test_template_engine" "$tmp/$gen.jsonl" || status=1
done
exit $status

#!/usr/bin/env bash
# The main demo (README: `make demo`). Grows with the pipelines.
set -euo pipefail
BUILD=${1:-build}
echo "tpipe demo: build in $BUILD"

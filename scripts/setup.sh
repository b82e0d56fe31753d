#!/usr/bin/env bash
# Installs what tpipe needs on Debian 12 (apt-get; sudo when not root), only the
# packages that are missing, so it is quick on a prepared machine.
set -euo pipefail
# clang + libclang-rt-14-dev: the libFuzzer harnesses (make fuzz / fuzz-ci) need clang
# and its fuzzer/sanitizer runtime; the ordinary builds use gcc.
PKGS=(build-essential cmake pkg-config clang-format clang libclang-rt-14-dev
      libpcre2-dev libutf8proc-dev libcjson-dev libcurl4-openssl-dev libopenblas-dev)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"

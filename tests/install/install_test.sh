#!/bin/sh
# install_test.sh BUILD_DIR CONSUMER_DIR [EXTRA_CFLAGS]
# Installs BUILD_DIR into a temporary prefix, then builds and runs the consumer
# in CONSUMER_DIR against it: pkg-config (shared, static) and CMake
# find_package(tpipe) (tpipe::tpipe, tpipe::tpipe_static).
set -eu
BUILD=$1
CONSUMER=$2
EXTRA=${3:-}
for tool in cc pkg-config cmake; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed"
        exit 0
    fi
done
TMP=$(mktemp -d /tmp/tp_install.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
PREFIX="$TMP/prefix"
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$BUILD" --prefix "$PREFIX" >"$TMP/install.log" 2>&1 || {
    cat "$TMP/install.log" >&2; fail "cmake --install failed"; }
[ -f "$PREFIX/include/tpipe.h" ] || fail "tpipe.h not installed"
[ -x "$PREFIX/bin/tpipe" ] || fail "the tpipe CLI is not installed"
PC=$(find "$PREFIX" -name tpipe.pc | head -n 1)
[ -n "$PC" ] || fail "tpipe.pc not installed"
LIBDIR=$(dirname "$(dirname "$PC")")
[ -f "$LIBDIR/libtpipe.a" ] || fail "libtpipe.a not in $LIBDIR"
[ -e "$LIBDIR/libtpipe.so" ] || fail "libtpipe.so not in $LIBDIR"
[ -f "$LIBDIR/cmake/tpipe/tpipeConfig.cmake" ] || fail "tpipeConfig.cmake not installed"
echo "installed into $PREFIX"

# 1. pkg-config, shared library
export PKG_CONFIG_PATH="$(dirname "$PC")"
# shellcheck disable=SC2046
cc $EXTRA -o "$TMP/c_shared" "$CONSUMER/main.c" $(pkg-config --cflags --libs tpipe) ||
    fail "pkg-config shared build"
LD_LIBRARY_PATH="$LIBDIR" "$TMP/c_shared" "$TMP" || fail "pkg-config shared consumer run"
if command -v ldd >/dev/null 2>&1; then
    LD_LIBRARY_PATH="$LIBDIR" ldd "$TMP/c_shared" | grep -q "libtpipe.so" ||
        fail "the shared consumer does not use libtpipe.so"
fi

# 2. pkg-config, static library: the archive plus its private dependencies,
#    linked as shared system libraries (Debian ships libcurl's own deps shared only)
REQ=$(pkg-config --print-requires-private tpipe | tr '\n' ' ')
# shellcheck disable=SC2086
STATIC_LIBS="$(pkg-config --libs $REQ) -lpthread -lm"
# shellcheck disable=SC2046,SC2086
cc $EXTRA -o "$TMP/c_static" "$CONSUMER/main.c" $(pkg-config --cflags tpipe) \
    "$LIBDIR/libtpipe.a" $STATIC_LIBS || fail "pkg-config static build"
"$TMP/c_static" "$TMP" || fail "pkg-config static consumer run"
if command -v ldd >/dev/null 2>&1; then
    if ldd "$TMP/c_static" | grep -q "libtpipe.so"; then
        fail "the static consumer depends on libtpipe.so"
    fi
fi

# 3. CMake package
cmake -S "$CONSUMER" -B "$TMP/cbuild" -DCMAKE_PREFIX_PATH="$PREFIX" \
    -DCMAKE_C_FLAGS="$EXTRA" >"$TMP/cmake.log" 2>&1 || {
    cat "$TMP/cmake.log" >&2; fail "find_package(tpipe) configure"; }
cmake --build "$TMP/cbuild" >"$TMP/cbuild.log" 2>&1 || {
    cat "$TMP/cbuild.log" >&2; fail "CMake consumer build"; }
"$TMP/cbuild/consumer_shared" "$TMP" || fail "CMake shared consumer run"
"$TMP/cbuild/consumer_static" "$TMP" || fail "CMake static consumer run"
echo "OK: install, pkg-config (shared, static) and find_package(tpipe) consumers"

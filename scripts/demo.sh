#!/usr/bin/env bash
# demo.sh BUILD_DIR — the main demo (`make demo`): the four pipelines of tpipe in
# batch mode on a handful of example inputs, with readable results and
# throughput.
#
# It uses the real default checkpoints from the Hugging Face cache or the hub:
#   fill-mask  answerdotai/ModernBERT-base
#   sentiment  clapAI/modernBERT-base-multilingual-sentiment
#   zero-shot  MoritzLaurer/ModernBERT-base-zeroshot-v2.0
#   generate   Qwen/Qwen3-0.6B
# When they cannot be had (an offline machine), it says so in one line and runs
# on random-weight models it writes with BUILD_DIR/tp_mkmodel and the real
# tokenizers (../shared/tokenizers, else tests/data/tokenizers): the answers are
# then noise, but every pipeline, the batching and the speed are real.
#   DEMO_SHAPES=small (default) small models, made in a second
#   DEMO_SHAPES=real  random models with the real checkpoints' shapes (~2 GB, ~20 s)
#   DEMO_OFFLINE=1    do not try the network
set -euo pipefail

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
TPIPE="$BUILD/tpipe"
MKMODEL="$BUILD/tp_mkmodel"
SHAPES=${DEMO_SHAPES:-small}
for b in "$TPIPE" "$MKMODEL"; do
    if [ ! -x "$b" ]; then
        echo "demo: $b is missing: build first (make)" >&2
        exit 2
    fi
done
WORK=$(mktemp -d /tmp/tpipe_demo.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- models
declare -A REAL=(
    [fill-mask]=answerdotai/ModernBERT-base
    [sentiment]=clapAI/modernBERT-base-multilingual-sentiment
    [zero-shot]=MoritzLaurer/ModernBERT-base-zeroshot-v2.0
    [generate]=Qwen/Qwen3-0.6B
)
declare -A MODEL NAME
missing_reason=""
env_offline=()
if [ "${DEMO_OFFLINE:-0}" = 1 ]; then env_offline=(env HF_HUB_OFFLINE=1); fi
for task in fill-mask sentiment zero-shot generate; do
    id=${REAL[$task]}
    if path=$("${env_offline[@]}" "$TPIPE" download --model "$id" 2>"$WORK/dl.err"); then
        MODEL[$task]=$path
        NAME[$task]=$id
    else
        [ -n "$missing_reason" ] ||
            missing_reason=$(sed -e 's/^.*as a Hugging Face id: //' "$WORK/dl.err" | head -n 1)
        # the hub is unreachable: look only in the cache for the other models
        if grep -q "cannot download" "$WORK/dl.err"; then env_offline=(env HF_HUB_OFFLINE=1); fi
    fi
done

TOKS="$ROOT/../shared/tokenizers"
[ -f "$TOKS/modernbert/tokenizer.json" ] || TOKS="$ROOT/tests/data/tokenizers"
if [ -n "$missing_reason" ]; then
    echo "demo: the real checkpoints are not all available ($missing_reason); running on" \
         "random-weight models made by tp_mkmodel ($SHAPES shapes): answers are noise, speeds are real."
    DEMO_MODELS="$BUILD/demo-models/$SHAPES"
    mk() { # mk NAME ARGS... : writes DEMO_MODELS/NAME once
        local dir="$DEMO_MODELS/$1"
        shift
        if [ ! -f "$dir/model.safetensors" ]; then
            "$MKMODEL" --out "$dir" --quiet "$@"
        fi
        echo "$dir"
    }
    if [ "$SHAPES" = real ]; then
        ENC=(--preset modernbert-base)
        DEC=(--preset qwen3-0.6b)
    else
        ENC=(--family modernbert --hidden 256 --layers 4 --heads 4 --intermediate 384)
        DEC=(--family qwen3 --hidden 256 --layers 4 --heads 4 --kv-heads 2 --head-dim 64
             --intermediate 768 --tie --dtype bf16)
    fi
    BT="$TOKS/modernbert"
    [ -n "${MODEL[fill-mask]:-}" ] || {
        MODEL[fill-mask]=$(mk fill-mask "${ENC[@]}" --task mlm --tokenizer-dir "$BT")
        NAME[fill-mask]="random ModernBERT (masked LM)"; }
    [ -n "${MODEL[sentiment]:-}" ] || {
        MODEL[sentiment]=$(mk sentiment "${ENC[@]}" --task seqcls \
            --labels negative,neutral,positive --tokenizer-dir "$BT")
        NAME[sentiment]="random ModernBERT (3-label classifier)"; }
    [ -n "${MODEL[zero-shot]:-}" ] || {
        MODEL[zero-shot]=$(mk zero-shot "${ENC[@]}" --task seqcls --nli --tokenizer-dir "$BT")
        NAME[zero-shot]="random ModernBERT (NLI classifier)"; }
    [ -n "${MODEL[generate]:-}" ] || {
        MODEL[generate]=$(mk generate "${DEC[@]}" --tokenizer-dir "$TOKS/qwen3")
        NAME[generate]="random Qwen3"; }
fi

# ---------------------------------------------------------------- helpers
# Field of a JSON result line, first match (our own output format: "key": value).
field() { # field KEY < line
    awk -v key="$1" '{
        s = $0
        if (match(s, "\"" key "\": \"([^\"\\\\]|\\\\.)*\"")) {
            v = substr(s, RSTART + length(key) + 5, RLENGTH - length(key) - 6)
            gsub(/\\n/, " ", v); gsub(/\\"/, "\"", v); gsub(/\\\\/, "\\", v)
            print v
        } else if (match(s, "\"" key "\": [-0-9.e+]+")) {
            print substr(s, RSTART + length(key) + 4, RLENGTH - length(key) - 4)
        }
        exit
    }'
}
score() { printf '%.3g' "$1" 2>/dev/null || printf '%s' "$1"; }
# The examples repeated REPEAT times make the batch; the first lines are shown.
REPEAT=${DEMO_REPEAT:-8}
batch() { # batch FILE: prints FILE REPEAT times
    for _ in $(seq "$REPEAT"); do cat "$1"; done
}
stats_line() { grep -h "items (" "$1" | sed -e 's/^tpipe [a-z-]*: /  batch of /' || true; }
run() { # run TASK OUT ERR ARGS... (stdin: the batch)
    local task=$1 out=$2 err=$3
    shift 3
    if ! "$TPIPE" "$task" --model "${MODEL[$task]}" --quiet --stats "$@" >"$out" 2>"$err"; then
        if ! grep -q '"ok": ' "$out"; then
            echo "  $task failed: $(head -n 1 "$err")"
            return 1
        fi
    fi
}

# ---------------------------------------------------------------- fill-mask
cat >"$WORK/fm.txt" <<'EOF'
The capital of France is [MASK].
I drink a cup of [MASK] every morning.
The [MASK] barked at the mailman all night.
She plays the [MASK] in an orchestra.
EOF
n_examples=$(wc -l <"$WORK/fm.txt")
echo
echo "== fill-mask: ${NAME[fill-mask]}"
if batch "$WORK/fm.txt" | run fill-mask "$WORK/fm.out" "$WORK/fm.err" --top-k 3; then
    head -n "$n_examples" "$WORK/fm.out" | while IFS= read -r line; do
        echo "  $(field sequence <<<"$line")   (score $(score "$(field score <<<"$line")"))"
    done
    stats_line "$WORK/fm.err"
fi

# ---------------------------------------------------------------- sentiment
cat >"$WORK/st.txt" <<'EOF'
I absolutely love this phone, the battery lasts for days!
The food was cold and the waiter was rude.
It's fine. Nothing special, nothing terrible.
Das Hotel war wunderbar und das Personal sehr freundlich.
EOF
echo
echo "== sentiment: ${NAME[sentiment]}"
if batch "$WORK/st.txt" | run sentiment "$WORK/st.out" "$WORK/st.err"; then
    paste -d '\t' <(head -n "$n_examples" "$WORK/st.txt") <(head -n "$n_examples" "$WORK/st.out") |
        while IFS=$'\t' read -r text line; do
            echo "  $(field label <<<"$line") ($(score "$(field score <<<"$line")"))  $text"
        done
    stats_line "$WORK/st.err"
fi

# ---------------------------------------------------------------- zero-shot
cat >"$WORK/zs.txt" <<'EOF'
The striker scored twice in the final minutes of the match.
Parliament passed the new budget after a long debate.
Whisk the eggs with sugar, then fold in the flour.
The new chip doubles battery life on laptops.
EOF
LABELS="sports,politics,cooking,technology"
echo
echo "== zero-shot: ${NAME[zero-shot]}  (labels: $LABELS)"
if batch "$WORK/zs.txt" | run zero-shot "$WORK/zs.out" "$WORK/zs.err" --labels "$LABELS"; then
    head -n "$n_examples" "$WORK/zs.out" | while IFS= read -r line; do
        best=$(sed -e 's/.*"labels": \["\([^"]*\)".*/\1/' <<<"$line")
        sc=$(sed -e 's/.*"scores": \[\([-0-9.e+]*\).*/\1/' <<<"$line")
        echo "  $best ($(score "$sc"))  $(field sequence <<<"$line")"
    done
    stats_line "$WORK/zs.err"
fi

# ---------------------------------------------------------------- generate
cat >"$WORK/gen.txt" <<'EOF'
What is the capital of France?
Write a haiku about the sea.
Give me three tips for learning a new language.
Explain in one sentence what a transformer model is.
EOF
CHAT=(--chat --no-think)
[ -f "${MODEL[generate]}/tokenizer_config.json" ] || [ -f "${MODEL[generate]}/chat_template.jinja" ] ||
    CHAT=() # no chat template in this tokenizer copy: plain completion
echo
echo "== generate: ${NAME[generate]}  (${CHAT:+chat, }greedy, up to 32 new tokens, all prompts in one continuous batch)"
if run generate "$WORK/gen.out" "$WORK/gen.err" "${CHAT[@]}" --max-new-tokens 32 \
    --temperature 0 <"$WORK/gen.txt"; then
    paste -d '\t' "$WORK/gen.txt" "$WORK/gen.out" | while IFS=$'\t' read -r prompt line; do
        text=$(field content <<<"$line")
        [ -n "$text" ] || text=$(field text <<<"$line")
        echo "  > $prompt"
        echo "    $text"
    done
    stats_line "$WORK/gen.err"
    grep -h "generated tokens" "$WORK/gen.err" | sed -e 's/^tpipe generate: /  /' || true
fi
echo
echo "demo: done. Try: $TPIPE fill-mask --model ${MODEL[fill-mask]} \"Hello [MASK]!\""

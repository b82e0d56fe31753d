#!/usr/bin/env bash
# Runs the libFuzzer harnesses of fuzz/ (built by `make fuzz` into BUILD/fuzz/).
#
#   scripts/fuzz.sh BUILD SECONDS JOBS [target ...]
#
# Each target fuzz_<t> runs for SECONDS with its seeds (fuzz/corpus/<t>/, read
# only) and its dictionary (fuzz/dict/<t>.dict) when there is one; new inputs
# go to BUILD/fuzz-work/<t>/corpus/ (kept between runs, so a longer local run
# builds on the last one), findings to BUILD/fuzz-work/<t>/artifacts/. JOBS
# targets run at a time. Any crash, sanitizer report, leak, timeout (-timeout
# per input) or out-of-memory (-rss_limit_mb / -malloc_limit_mb) fails the run:
# the script prints the reproducer path and the command that replays it, and
# exits 1. The last lines are one summary row per target (seconds, execs/s,
# corpus size) for docs/RELIABILITY.md.
set -uo pipefail
BUILD=${1:?usage: scripts/fuzz.sh BUILD SECONDS JOBS [target ...]}
SECONDS_PER=${2:-300}
JOBS=${3:-1}
shift 3 || shift $#
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "$BUILD" && pwd)
# per-input limits: generous enough for a loaded 2-core CI machine
TIMEOUT_PER_INPUT=${FUZZ_TIMEOUT:-25}
RSS_MB=${FUZZ_RSS_MB:-2048}
export TPIPE_TESTDATA=${TPIPE_TESTDATA:-$ROOT/tests/data}
if [ -z "${TPIPE_SHARED:-}" ] && [ -d "$ROOT/../shared" ]; then
    export TPIPE_SHARED=$ROOT/../shared
fi
# leaks are findings; UBSan reports are fatal (-fno-sanitize-recover); no
# core files from deliberate aborts
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$ROOT"/fuzz/fuzz_*.c; do
        t=$(basename "$f" .c)
        targets+=("${t#fuzz_}")
    done
fi

run_one() {
    local t=$1 bin="$BUILD/fuzz/fuzz_$1" work="$BUILD/fuzz-work/$1"
    mkdir -p "$work/corpus" "$work/artifacts"
    rm -f "$work/artifacts"/* "$work/log"
    if [ ! -x "$bin" ]; then
        echo "fuzz_$t: not built ($bin)" >"$work/log"
        echo 1 >"$work/rc"
        return
    fi
    local seeds=() dict=()
    [ -d "$ROOT/fuzz/corpus/$t" ] && seeds=("$ROOT/fuzz/corpus/$t")
    [ -d "$ROOT/fuzz/regressions/$t" ] && seeds+=("$ROOT/fuzz/regressions/$t")
    [ -f "$ROOT/fuzz/dict/$t.dict" ] && dict=("-dict=$ROOT/fuzz/dict/$t.dict")
    # FUZZ_SEED (set by make fuzz-ci): a fixed mutation sequence, so CI explores the
    # same inputs every run and goes red for a change, not for the luck of the draw;
    # make fuzz keeps libFuzzer's random seed to find new bugs
    nice -n "${FUZZ_NICE:-10}" "$bin" ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
        -max_total_time="$SECONDS_PER" -timeout="$TIMEOUT_PER_INPUT" \
        -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" "${dict[@]}" "$work/corpus" "${seeds[@]}" \
        >"$work/log" 2>&1
    echo $? >"$work/rc"
}

echo "fuzz: ${#targets[@]} targets, ${SECONDS_PER}s each, $JOBS at a time (logs: $BUILD/fuzz-work/<target>/log)"
running=0
for t in "${targets[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

failed=0
printf '%-16s %8s %10s %10s %8s  %s\n' target seconds execs execs/s corpus result
for t in "${targets[@]}"; do
    work="$BUILD/fuzz-work/$t"
    rc=$(cat "$work/rc" 2>/dev/null || echo 1)
    log="$work/log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | tail -1 | awk '{print $5}')
    corp=$(find "$work/corpus" -type f | wc -l)
    artifacts=$(find "$work/artifacts" -type f 2>/dev/null)
    if [ "$rc" -eq 0 ] && [ -z "$artifacts" ]; then
        result=ok
    else
        failed=1
        kind=$(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer): [a-z -]+|runtime error|invariant failed' "$log" || true)
        result="FAILED (${kind:-exit $rc})"
    fi
    printf '%-16s %8s %10s %10s %8s  %s\n' "$t" "${secs:-?}" "${execs:-?}" "${rate:-?}" "$corp" "$result"
    if [ "$result" != ok ]; then
        echo "---- fuzz_$t: end of $log"
        grep -v '^#[0-9]' "$log" | tail -40
        for a in $artifacts; do
            echo "---- reproducer: $a"
            echo "     replay it: $BUILD/fuzz/fuzz_$t $a"
        done
        echo "----"
    fi
done
if [ "$failed" -ne 0 ]; then
    echo "fuzz: FAILED (add each reproducer to fuzz/regressions/<target>/ with the fix)" >&2
    exit 1
fi
echo "fuzz: all targets ran clean"

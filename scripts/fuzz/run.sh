#!/usr/bin/env bash
# Fuzzes the trace parser and parse-then-replay on the model with libFuzzer,
# each for a bounded time, one target after the other.
#
#   scripts/fuzz/run.sh [SECONDS_PER_TARGET]                 # default 60 (CI)
#   scripts/fuzz/run.sh [--jobs N] [--runs N] [--seed S] [SECONDS_PER_TARGET]
#
# The long mode for offline runs: --jobs N runs N libFuzzer processes per
# target side by side on one corpus (each its own log, .fuzz/fuzz-TARGET-K.log),
# --runs N stops a target after N executions in all (split between the
# jobs; the time limit still applies, give a large one), --seed S seeds
# job K with S+K (default: a seed nobody chose, from the clock; printed).
# E.g. ten million executions of each target on both cores:
#   scripts/fuzz/run.sh --jobs 2 --runs 10000000 36000
#
# Environment:
#   FUZZ_TARGETS  targets to run (default "parse replay")
#   FUZZ_DIR      working directory (default .fuzz: build/, corpus/, crashes/)
#   FUZZ_ARGS     extra libFuzzer flags
#
# Builds first (scripts/fuzz/build.sh, cached). Each target starts from its
# corpus in $FUZZ_DIR/corpus/TARGET (kept between runs, out of git), seeded
# with every Fixtures/*.trace and Fixtures/bad/*.trace, with the keywords in
# scripts/fuzz/trace.dict. An input that traps, breaks a checked rule, runs
# longer than 10 s or needs more than 2 GB is a finding: it is saved as
# $FUZZ_DIR/crashes/TARGET-*, and the script exits 1. Reproduce one with
#   SWIFT_BACKTRACE=enable=no .fuzz/build/fuzz-TARGET FILE
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
export PATH=/opt/swift/usr/bin:$PATH
# Swift's backtracer can take minutes on a crash; libFuzzer and ASan report.
export SWIFT_BACKTRACE=enable=no

JOBS=1 RUNS="" SEED=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --jobs) JOBS=${2:?}; shift 2 ;;
        --runs) RUNS=${2:?}; shift 2 ;;
        --seed) SEED=${2:?}; shift 2 ;;
        -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: --jobs takes a positive number" >&2; exit 2; }
[[ -z $RUNS || $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: --runs takes a positive number" >&2; exit 2; }
[[ -z $SEED || $SEED =~ ^[0-9]+$ ]] || { echo "fuzz: --seed takes a number" >&2; exit 2; }
SECONDS_PER_TARGET=${1:-60}
FUZZ_DIR=${FUZZ_DIR:-.fuzz}
TARGETS=${FUZZ_TARGETS:-parse replay}
read -r -a EXTRA <<< "${FUZZ_ARGS:-}"
read -r -a TARGET_LIST <<< "$TARGETS"
if [[ $JOBS -gt 1 || -n $RUNS || -n $SEED ]]; then
    SEED=${SEED:-$(( $(date +%s) % 1000000007 ))}
    echo "fuzz: $JOBS job(s) per target, seeds $SEED..$(( SEED + JOBS - 1 ))${RUNS:+, $RUNS executions per target}"
fi

scripts/fuzz/build.sh "${TARGET_LIST[@]}" || { echo "fuzz: build failed" >&2; exit 1; }

SEEDS=$FUZZ_DIR/seeds
rm -rf "$SEEDS"
mkdir -p "$SEEDS" "$FUZZ_DIR/crashes"
cp -f Fixtures/*.trace "$SEEDS"/ 2>/dev/null || true
for f in Fixtures/bad/*.trace; do [[ -e $f ]] && cp -f "$f" "$SEEDS/bad-$(basename "$f")"; done

status=0
for t in "${TARGET_LIST[@]}"; do
    bin=$FUZZ_DIR/build/fuzz-$t
    corpus=$FUZZ_DIR/corpus/$t
    log=$FUZZ_DIR/fuzz-$t.log
    mkdir -p "$corpus"
    case $t in
        parse) max_len=8192 ;;
        *) max_len=4096 ;;
    esac
    echo "== fuzz $t for ${SECONDS_PER_TARGET}s (corpus $corpus, log $log)"
    before=$(find "$FUZZ_DIR/crashes" -mindepth 1 -maxdepth 1 | wc -l)
    # One process, or JOBS side by side on the one corpus (libFuzzer
    # reloads what the others add), each with its share of --runs.
    logs=() pids=() rc=0
    for ((k = 0; k < JOBS; k++)); do
        job=()
        [[ -z $SEED ]] || job+=(-seed=$(( SEED + k )))
        [[ -z $RUNS ]] || job+=(-runs=$(( RUNS / JOBS + (k < RUNS % JOBS ? 1 : 0) )))
        l=$log
        [[ $JOBS -eq 1 ]] || l=$FUZZ_DIR/fuzz-$t-$k.log
        logs+=("$l")
        "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
            -max_len=$max_len -dict=scripts/fuzz/trace.dict -print_final_stats=1 -reload=1 \
            -artifact_prefix="$FUZZ_DIR/crashes/$t-" ${job[@]+"${job[@]}"} ${EXTRA[@]+"${EXTRA[@]}"} \
            "$corpus" "$SEEDS" > "$l" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=$?; done
    [[ $JOBS -eq 1 ]] || cat "${logs[@]}" > "$log"
    # Each job's last status line holds its final coverage: "#N DONE cov: C ft: F corp: …".
    runs=0 secs=0
    for l in "${logs[@]}"; do
        n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$l" | tail -1)
        d=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$l" | tail -1)
        runs=$(( runs + ${n:-0} ))
        [[ ${d:-0} -le $secs ]] || secs=$d
    done
    last=$(grep -hE '^#[0-9]+' "${logs[@]}" | tail -1)
    rate="?"
    [[ $secs -eq 0 ]] || rate=$(( runs / secs ))
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<< "$last")
    echo "fuzz $t: $runs executions in ${secs}s ($rate exec/s, $JOBS job(s)), cov: ${cov:-?} ft: ${ft:-?}, corpus ${corp:-?}"
    after=$(find "$FUZZ_DIR/crashes" -mindepth 1 -maxdepth 1 | wc -l)
    if [[ $rc -ne 0 || $after -gt $before ]]; then
        status=1
        echo "fuzz $t: FOUND A PROBLEM (libFuzzer exit $rc):"
        grep -E '(Fatal error|ERROR: libFuzzer|ERROR: AddressSanitizer|^SUMMARY|ALARM)' "$log" | head -5
        # Where: the first Swift frames of the stack, demangled.
        grep -E '^ +#[0-9]+ 0x[0-9a-f]+ in \$s' "$log" | head -6 \
            | sed -E 's/^ +(#[0-9]+) 0x[0-9a-f]+ in ([^ ]+).*/\2/' | swift demangle --simplified | sed 's/^/    at /'
        grep -oE "$FUZZ_DIR/crashes/[^ ]+" "$log" | sort -u | while read -r f; do
            [[ -f $f ]] || continue
            echo "--- $f ($(wc -c < "$f") bytes), first lines:"
            head -c 600 "$f" | cat -v | head -10
            echo
            echo "--- reproduce: SWIFT_BACKTRACE=enable=no $bin $f"
        done
    fi
done
exit $status

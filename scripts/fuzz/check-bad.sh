#!/usr/bin/env bash
# Replays every Fixtures/bad/*.trace with the built CLI and checks that its
# stderr is exactly the sibling .expected file and its exit status is 2
# (0 for a file whose .expected is empty: it parses, as an empty trace),
# with nothing on stdout when it fails to parse.
#
#   scripts/fuzz/check-bad.sh [VFIO_SIM]     # default .build/debug/vfio-sim
#
# The same check runs in `swift test` (CLITests); this one needs no test
# build and prints a diff when a message changes.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
export SWIFT_BACKTRACE=enable=no
SIM=${1:-.build/debug/vfio-sim}
[[ -x $SIM ]] || { echo "check-bad: $SIM is not built" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
count=0
for trace in Fixtures/bad/*.trace; do
    expected=${trace%.trace}.expected
    count=$((count + 1))
    timeout 60 "$SIM" replay "$trace" > "$tmp/out" 2> "$tmp/err"
    rc=$?
    want=2
    [[ -s $expected ]] || want=0
    if [[ $rc -ne $want ]]; then
        echo "check-bad: $trace: exit $rc, expected $want"
        failed=1
    fi
    if ! diff -u "$expected" "$tmp/err" > "$tmp/diff"; then
        echo "check-bad: $trace: stderr differs from $expected:"
        cat "$tmp/diff"
        failed=1
    fi
    if [[ $want -eq 2 && -s $tmp/out ]]; then
        echo "check-bad: $trace: something ran (stdout not empty)"
        failed=1
    fi
done
[[ $failed -eq 0 ]] && echo "check-bad: $count files in Fixtures/bad, every diagnostic as expected"
exit $failed

#!/usr/bin/env bash
# Merges kernel-lane job results (job.sh) into the lines lane.sh prints for
# the same configurations, and into JUnit.
#
# Usage: scripts/kernel-lane/merge.sh [--junit FILE] [--binary VFIO_SIM] RESULT.json...
#   --junit FILE       also write a JUnit report: one test case per configuration
#   --binary VFIO_SIM  the vfio-sim whose `lane-summary` adds the shards of
#                      one configuration and summarises the skipped fixtures (default: the lane's static build,
#                      else .build/debug/vfio-sim, else vfio-sim on PATH)
#
# Prints, in lane.sh's order, each configuration's lines (its summary line,
# disagreements, exploration, host replay); the shards of a configuration as
# one (the exploration's reports merged: each kind of finding once, at its
# lowest seed); then the skipped fixtures as lane.sh summarises them.
# Exit status: 0 when every job agreed, 1 otherwise, 2 on unreadable results.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

JUNIT="" BINARY="" RESULTS=()
while [ $# -gt 0 ]; do
  case $1 in
    --junit) JUNIT=${2:?}; shift 2 ;;
    --binary) BINARY=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    -*) echo "unknown option: $1" >&2; exit 2 ;;
    *) RESULTS+=("$1"); shift ;;
  esac
done
[ ${#RESULTS[@]} -gt 0 ] || { echo "usage: merge.sh [--junit FILE] [--binary VFIO_SIM] RESULT.json..." >&2; exit 2; }
if [ -z "$BINARY" ]; then
  for b in "$LANE_REPO/.build-lane/release/vfio-sim" "$LANE_REPO/.build/debug/vfio-sim"; do
    [ -x "$b" ] && { BINARY=$b; break; }
  done
  BINARY=${BINARY:-vfio-sim}
fi

rc=0
python3 "$LANE_DIR/lane-json.py" lines --order "$LANE_CONFIGS" --binary "$BINARY" "${RESULTS[@]}" || rc=$?
[ "$rc" -le 1 ] || exit "$rc"
CONFIGS=$(python3 -c 'import json, sys; print(" ".join(dict.fromkeys(json.load(open(p))["config"] for p in sys.argv[1:])))' "${RESULTS[@]}")
# lane.sh's order, as the lines above.
ORDERED=""
for c in $LANE_CONFIGS $CONFIGS; do
  case " $CONFIGS " in *" $c "*) case " $ORDERED " in *" $c "*) ;; *) ORDERED="$ORDERED $c" ;; esac ;; esac
done
SKIPPED=$(mktemp)
trap 'rm -f "$SKIPPED"' EXIT
python3 "$LANE_DIR/lane-json.py" skipped "${RESULTS[@]}" > "$SKIPPED"
"$BINARY" lane-summary skipped --configs "${ORDERED# }" --lines "$SKIPPED"
[ -z "$JUNIT" ] || python3 "$LANE_DIR/lane-json.py" junit "${RESULTS[@]}" > "$JUNIT"
exit "$rc"

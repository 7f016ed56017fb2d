#!/usr/bin/env bash
# One job of the kernel lane: one configuration, or one shard of its
# exploration, written as a JSON result that merge.sh adds to the others.
# The GitHub Actions workflow (.github/workflows/lane.yml) runs one per
# configuration; the same command runs it on any machine.
#
# Usage: scripts/kernel-lane/job.sh [--out DIR] [--explore "RUNS OPS SEED"] CONFIG [I/N] [-- LANE_OPTIONS...]
#   CONFIG           a configuration of lane.sh (6.12-intel, 7.x-amd, ...)
#   I/N              the I-th of N shards of the exploration's seeds (the
#                    first shards one seed longer when N does not divide
#                    RUNS, as `vfio-sim explore --shard`); every shard also
#                    replays the fixtures (its line must match the others')
#   --out DIR        where the result goes (default: results): DIR/CONFIG.json,
#                    or DIR/CONFIG.I-of-N.json, with lane.sh's output beside it
#   --explore "RUNS OPS SEED"
#                    the whole exploration (default "$LANE_EXPLORE" or
#                    "100 30 1", as lane.sh)
#   LANE_OPTIONS     passed to lane.sh (--binary PATH, --no-setup, fixtures)
#
# Exit status: lane.sh's (0 agreed, 1 a disagreement or error, 125 the lane
# could not run); the result is written in every case.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

OUT=results EXPLORE=${LANE_EXPLORE-"100 30 1"} CONFIG="" SHARD="" PASS=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=${2:?}; shift 2 ;;
    --explore) EXPLORE=${2:?}; shift 2 ;;
    --) shift; PASS=("$@"); break ;;
    -h|--help) usage ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) if [ -z "$CONFIG" ]; then CONFIG=$1; elif [ -z "$SHARD" ]; then SHARD=$1; else usage; fi; shift ;;
  esac
done
[ -n "$CONFIG" ] || usage
lane_config "$CONFIG" >/dev/null || exit 2
CONFIG=$LANE_CFG_NAME
read -r RUNS OPS SEED <<< "$EXPLORE"
[[ $RUNS =~ ^[0-9]+$ && $OPS =~ ^[0-9]+$ && $SEED =~ ^[0-9]+$ ]] || { echo "--explore wants \"RUNS OPS SEED\", not '$EXPLORE'" >&2; exit 2; }

NAME=$CONFIG
if [ -n "$SHARD" ]; then
  [[ $SHARD =~ ^([0-9]+)/([0-9]+)$ ]] || { echo "a shard is I/N, not '$SHARD'" >&2; exit 2; }
  I=${BASH_REMATCH[1]} N=${BASH_REMATCH[2]}
  if [ "$N" -lt 1 ] || [ "$I" -lt 1 ] || [ "$I" -gt "$N" ]; then echo "a shard I/N has 1 <= I <= N, not '$SHARD'" >&2; exit 2; fi
  # ExploreShards.slice: N slices, the first RUNS % N one seed longer.
  base=$((RUNS / N)) extra=$((RUNS % N))
  start=$(( (I - 1) * base + (I - 1 < extra ? I - 1 : extra) ))
  RUNS=$(( base + (I - 1 < extra ? 1 : 0) ))
  SEED=$((SEED + start))
  NAME="$CONFIG.$I-of-$N"
fi
mkdir -p "$OUT"
# The vfio-sim lane.sh runs (its --binary, or the one it builds) reads the
# boot's report for the exploration's report.
BINARY="$LANE_REPO/.build-lane/release/vfio-sim"
for ((i = 0; i < ${#PASS[@]}; i++)); do
  [ "${PASS[i]}" != --binary ] || BINARY=${PASS[i + 1]:-$BINARY}
done
T0=$(date +%s)
rc=0
"$LANE_DIR/lane.sh" --config "$CONFIG" --explore "$RUNS $OPS $SEED" --skipped-lines "$OUT/$NAME.skipped" \
  --sections "$OUT/$NAME.sections" "${PASS[@]}" \
  > "$OUT/$NAME.lane.txt" || rc=$?
cat "$OUT/$NAME.lane.txt"

# The configuration's full report (lane.sh keeps it in the cache): the
# exploration's report in it, and the accelerator lane.sh booted with
# (kvm-probe.sh's cached answer).
REPORT="$LANE_CACHE/logs/lane-$CONFIG.txt"
"$BINARY" lane-summary explore-report "$REPORT" > "$OUT/$NAME.explore-report" 2>/dev/null || true
ACCEL=$("$LANE_DIR/kvm-probe.sh" "$CONFIG" 2>/dev/null) || ACCEL=tcg
python3 "$LANE_DIR/lane-json.py" make --config "$CONFIG" --shard "$SHARD" --explore "$RUNS $OPS $SEED" --exit "$rc" \
  --accel "$ACCEL" --seconds "$(( $(date +%s) - T0 ))" --lane-output "$OUT/$NAME.lane.txt" --skipped "$OUT/$NAME.skipped" \
  --explore-report "$OUT/$NAME.explore-report" --sections "$OUT/$NAME.sections" > "$OUT/$NAME.json"
rm -f "$OUT/$NAME.skipped" "$OUT/$NAME.explore-report" "$OUT/$NAME.sections"
lane_log "job $NAME: exit $rc, result in $OUT/$NAME.json"
exit "$rc"

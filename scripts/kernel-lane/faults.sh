#!/usr/bin/env bash
# The kernel lane's fault-injection check: kernel replays killed at random
# points, and what each kill leaves behind (`vfio-sim faults`), in QEMU guests.
#
# Usage: scripts/kernel-lane/faults.sh [options] [FIXTURE...]
#
#   --config NAME   run only this configuration (repeatable; default:
#                   6.12-intel 6.1-intel)
#   --binary PATH   use this fully static vfio-sim instead of building one
#   --runs N        kills per configuration (default 56: 8 of each of the 7
#                   kinds)
#   --seed S        the seed choosing fixture and ioctl of each kill (default 1)
#   FIXTURE...      traces to kill (default: four that change dma_entry_limit,
#                   pin hugepages, update vaddrs and track dirty pages)
#
# In each guest, `vfio-sim faults --allow-module-params` replays the fixtures
# on the kernel, each run killed after a random ioctl: the replay process by
# SIGKILL, SIGTERM, SIGINT or a trap, or the supervising process that changed
# dma_entry_limit by SIGKILL, SIGTERM or SIGINT. After each kill it checks
# that dma_entry_limit has its original value and no record is left under
# /run/vfio-sim (after a supervisor's SIGKILL: that the next run restores it
# and says so), that the group has no container, and that the next run maps
# and unmaps on the group with the locked memory expected. Per configuration:
#
#   6.12-intel: faults: K/N kills survived (entry limit restored, group reusable, nothing pinned)
#
# The full report, every kill and how it ended, is kept in
# $VFIOSIM_LANE_CACHE/logs/faults-CONFIG.txt (default /var/cache/vfiosim/lane).
#
# Exit status: 0 when K = N everywhere; 1 otherwise; 2 usage; 125 when the
# check could not run (setup, build, boot).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LANE_DIE_CODE=125

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

CONFIGS=() BINARY="" RUNS=56 SEED=1 FIXTURES=()
while [ $# -gt 0 ]; do
  case $1 in
    --config) CONFIGS+=("${2:?}"); shift 2 ;;
    --binary) BINARY=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --seed) SEED=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) FIXTURES+=("$1"); shift ;;
  esac
done
[ ${#CONFIGS[@]} -gt 0 ] || CONFIGS=(6.12-intel 6.1-intel)
for c in "${CONFIGS[@]}"; do lane_config "$c" >/dev/null || exit 2; done
if [ ${#FIXTURES[@]} -eq 0 ]; then
  FIXTURES=("$LANE_REPO"/Fixtures/{map-entry-limit-at-open,map-dma-entry-limit,lane-vaddr-memlock,lane-dirty}.trace)
fi
for f in "${FIXTURES[@]}"; do [ -f "$f" ] || { echo "no such fixture: $f" >&2; exit 2; }; done

START=$(date +%s)
elapsed() { echo "$(( $(date +%s) - START ))s"; }

"$LANE_DIR/setup.sh" >&2 || lane_die "setup.sh failed"
if [ -z "$BINARY" ]; then
  command -v swift >/dev/null || PATH=/opt/swift/usr/bin:$PATH
  lane_log "building the static vfio-sim ($(elapsed))"
  mkdir -p "$LANE_CACHE/logs"
  (cd "$LANE_REPO" && swift build -c release --scratch-path .build-lane \
     -Xswiftc -static-executable --product vfio-sim) > "$LANE_CACHE/logs/faults-build.log" 2>&1 \
    || { tail -n 30 "$LANE_CACHE/logs/faults-build.log" >&2; lane_die "building the static vfio-sim failed"; }
  BINARY="$LANE_REPO/.build-lane/release/vfio-sim"
fi
[ -x "$BINARY" ] || lane_die "no binary at $BINARY"

mkdir -p "$LANE_CACHE/tmp" "$LANE_CACHE/logs"
WORK=$(mktemp -d "$LANE_CACHE/tmp/faults.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/files"
GUEST_FILES=()
for f in "${FIXTURES[@]}"; do cp "$f" "$WORK/files/"; GUEST_FILES+=("/files/$(basename "$f")"); done

# The guest runs faults and hands its report back after a `== faults
# report` line; `vfio-sim lane-summary faults` prints the lines from it.
"$BINARY" help lane-summary >/dev/null 2>&1 || lane_die "$BINARY has no lane-summary command (build one from this tree)"
cp "$BINARY" "$WORK/files/vfio-sim"
PAYLOAD="$WORK/payload.sh"
{
  echo '#!/bin/busybox sh'
  echo "/files/vfio-sim faults --allow-module-params --verbose --runs $RUNS --seed $SEED --report /tmp/faults.report ${GUEST_FILES[*]}"
  echo 'rc=$?'
  echo "echo '== faults report'; cat /tmp/faults.report 2>/dev/null"
  echo 'exit $rc'
} > "$PAYLOAD"
chmod 755 "$PAYLOAD"

FAILED=0
for c in "${CONFIGS[@]}"; do
  lane_log "booting $c for $RUNS kills ($(elapsed))"
  REPORT="$LANE_CACHE/logs/faults-$c.txt"
  rc=0
  "$LANE_DIR/run-in-guest.sh" --config "$c" --binary "$PAYLOAD" --files "$WORK/files" --timeout 900 > "$REPORT" 2>&1 || rc=$?
  # The summary, the per-kind counts and the kills that left something
  # (every kill is in the report).
  "$BINARY" lane-summary faults --config "$c" --payload-exit "$rc" "$REPORT" || FAILED=1
done
lane_log "faults done in $(elapsed)"
exit "$FAILED"

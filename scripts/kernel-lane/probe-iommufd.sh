#!/usr/bin/env bash
# Asks a lane kernel the type1 questions of issue 14 through both containers
# (type1's /dev/vfio/vfio and iommufd's /dev/iommu), with iommufd-probe.c
# built static on the host, and prints the FACT lines (docs/IOMMUFD_FACTS.md
# is written from them).
#
# Usage: scripts/kernel-lane/probe-iommufd.sh [--config NAME] [--out FILE] [type1|iommufd]
#   --config NAME  lane configuration (default 6.12-iommufd: the lane's own
#                  kernel, built by build-kernel.sh when absent; 6.12-intel
#                  is Debian's 6.12 under the same VT-d, type1 only)
#   --out FILE     also write the output to FILE
#   type1|iommufd  only that container (default: both)
#
# Exit status: the probe's (0: every case ran; 1: a case could not set up,
# e.g. no /dev/iommu on a Debian kernel), 125 when the guest did not run.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LANE_DIE_CODE=125

CONFIG=6.12-iommufd OUT="" ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --config) CONFIG=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    type1|iommufd) ARGS=("$1"); shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
lane_config "$CONFIG" >/dev/null || exit 2

case " $LANE_BUILT_SERIES " in
  *" $LANE_CFG_SERIES "*) "$LANE_DIR/build-kernel.sh" >&2 || lane_die "build-kernel.sh failed" ;;
  *) "$LANE_DIR/setup.sh" "$LANE_CFG_SERIES" >&2 || lane_die "setup.sh failed" ;;
esac

command -v gcc >/dev/null || lane_die "gcc missing (apt-get install gcc libc6-dev)"
mkdir -p "$LANE_CACHE/tmp"
BIN=$(mktemp "$LANE_CACHE/tmp/iommufd-probe.XXXXXX")
trap 'rm -f "$BIN"' EXIT
gcc -static -O1 -Wall -o "$BIN" "$LANE_DIR/iommufd-probe.c" || lane_die "cannot build iommufd-probe.c"

rc=0
if [ -n "$OUT" ]; then
  "$LANE_DIR/run-in-guest.sh" --config "$CONFIG" --binary "$BIN" --timeout 300 -- "${ARGS[@]}" | tee "$OUT" || rc=${PIPESTATUS[0]}
else
  "$LANE_DIR/run-in-guest.sh" --config "$CONFIG" --binary "$BIN" --timeout 300 -- "${ARGS[@]}" || rc=$?
fi
exit "$rc"

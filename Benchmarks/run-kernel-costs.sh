#!/usr/bin/env bash
# Measures what MAP_DMA and UNMAP_DMA cost on a real kernel: builds a fully
# static vfio-bench, runs `vfio-bench kernel-costs` in the kernel lane's
# QEMU guest (one configuration), and keeps its BENCH lines in a file that
# `vfio-bench model` and `vfio-bench plans` read (--costs; this path is
# their default).
#
# Usage: Benchmarks/run-kernel-costs.sh [--config NAME] [--out FILE] [--quick]
#                                       [--plans-memory SIZE | --no-plans]
#
#   --config NAME   lane configuration (default 6.12-intel; see
#                   scripts/kernel-lane/README.md)
#   --out FILE      where to keep the figures (default
#                   Benchmarks/results/kernel-costs.txt)
#   --quick         fewer points and repetitions
#   --plans-memory SIZE
#                   also generate every plan of `vfio-bench plans` for SIZE
#                   of memory (default 64M, what the guest can hold), run
#                   them for real in the guest and keep measured against
#                   predicted time (a check of the cost model)
#   --no-plans      only the per-op figures and the constants
#
# The guest is QEMU TCG (no KVM): the emulated CPU and IOMMU make every
# kernel figure slower than on bare metal, so the model/kernel ratio it
# gives is an upper bound. The file says so in its header.
#
# Needs what the lane needs (scripts/kernel-lane/setup.sh, run once as
# root). Exit status: 0 measured; 1 the payload failed; 125 the lane could
# not run; 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONFIG=6.12-intel
OUT=$ROOT/Benchmarks/results/kernel-costs.txt
QUICK=()
PLANS_MEMORY=64M
while [ $# -gt 0 ]; do
  case $1 in
    --config) CONFIG=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --quick) QUICK=(--quick); shift ;;
    --plans-memory) PLANS_MEMORY=${2:?}; shift 2 ;;
    --no-plans) PLANS_MEMORY=""; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

command -v swift >/dev/null || PATH=/opt/swift/usr/bin:$PATH
cd "$ROOT"
echo "run-kernel-costs: building a static vfio-bench (.build-bench-static)" >&2
swift build -c release --scratch-path .build-bench-static -Xswiftc -static-executable --product vfio-bench >&2
BIN=$ROOT/.build-bench-static/release/vfio-bench

RAW=$(mktemp)
PLANS=$(mktemp -d)
trap 'rm -rf "$RAW" "$PLANS"' EXIT
GUEST=(--binary "$BIN" --timeout 900)
ARGS=(kernel-costs "${QUICK[@]}")
if [ -n "$PLANS_MEMORY" ]; then
  # One domain: the guest has one group. The static binary runs here too.
  "$BIN" plans --memory "$PLANS_MEMORY" --domains 4K,2M,1G --svg /dev/null --emit-traces "$PLANS/plans" > /dev/null 2>&1 \
    || { echo "run-kernel-costs: generating the plans failed" >&2; exit 1; }
  GUEST+=(--files "$PLANS")
  ARGS+=(--plans /files/plans)
fi
echo "run-kernel-costs: running kernel-costs in the $CONFIG guest" >&2
set +e
"$ROOT/scripts/kernel-lane/run-in-guest.sh" --config "$CONFIG" "${GUEST[@]}" -- "${ARGS[@]}" > "$RAW"
STATUS=$?
set -e
cat "$RAW"
if [ $STATUS -ne 0 ]; then
  echo "run-kernel-costs: the guest run failed with status $STATUS; nothing kept" >&2
  exit $(( STATUS == 125 ? 125 : 1 ))
fi

mkdir -p "$(dirname "$OUT")"
{
  echo "# kernel costs for vfio-bench (--costs); written by Benchmarks/run-kernel-costs.sh --config $CONFIG ${QUICK[*]} (plans at ${PLANS_MEMORY:-none})"
  echo "# host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs, Linux $(uname -r)"
  echo "# date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  grep -E '^(#|BENCH )' "$RAW"
} > "$OUT"
echo "run-kernel-costs: kept $(grep -c '^BENCH ' "$OUT") figures in $OUT" >&2

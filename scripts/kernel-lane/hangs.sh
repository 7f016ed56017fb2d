#!/usr/bin/env bash
# Predicted hangs, confirmed on the kernel: each trace the model answers
# `=> hang` (the process never returns from an ioctl, e.g. 6.12's
# vfio_unmap_unpin looping forever) runs on a real kernel anyway, in a
# guest of its own, under a watchdog.
#
# Usage: scripts/kernel-lane/hangs.sh [--config NAME]... [--wait SECS]
#                                     [--binary PATH] [--no-setup] [TRACE...]
#   --config NAME  configuration to boot (repeatable; default 6.12-virtio,
#                  whose aperture reaches 2^64-1 as these traces need)
#   --wait SECS    how long the replay may run before it counts as stuck
#                  (default 40)
#   --binary PATH  a fully static vfio-sim (default: lane.sh's build)
#   TRACE          default: every Fixtures/*.trace with an `=> hang` answer
#
# In the guest the trace is replayed on both backends in the background;
# when the replay is still running after --wait seconds, the payload asks
# the kernel for a backtrace of every CPU (sysrq `l`) and prints the
# kernel's log lines that name a vfio function, then ends (the stuck
# process stays in the kernel until the guest is powered off). Per trace
# and configuration one line:
#
#   hang confirmed: FILE:LINE on CONFIG (KERNEL): still in the ioctl after Ns, the kernel's backtrace shows FUNCTION
#   hang NOT confirmed: FILE:LINE on CONFIG: ... (the replay finished: its report follows)
#
# LINE is the first `=> hang` answer of the trace. Exit status: 0 when
# every predicted hang was confirmed, 1 otherwise, 125 when a guest could
# not run.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }
CONFIGS=() WAIT=40 BINARY="" SETUP=1 TRACES=()
while [ $# -gt 0 ]; do
  case $1 in
    --config) IFS=, read -r -a more <<< "${2:?}"; CONFIGS+=("${more[@]}"); shift 2 ;;
    --wait) WAIT=${2:?}; shift 2 ;;
    --binary) BINARY=${2:?}; shift 2 ;;
    --no-setup) SETUP=0; shift ;;
    -h|--help) usage ;;
    -*) echo "hangs.sh: unknown option $1" >&2; usage ;;
    *) TRACES+=("$1"); shift ;;
  esac
done
[ ${#CONFIGS[@]} -gt 0 ] || CONFIGS=(6.12-virtio)
ROOT=$(cd "$LANE_DIR/../.." && pwd)
if [ ${#TRACES[@]} -eq 0 ]; then
  while IFS= read -r f; do TRACES+=("$f"); done < <(grep -l -- '=> *hang' "$ROOT"/Fixtures/*.trace)
fi
[ ${#TRACES[@]} -gt 0 ] || { echo "hangs.sh: no trace predicts a hang" >&2; exit 0; }

if [ "$SETUP" = 1 ]; then "$LANE_DIR/setup.sh" "${CONFIGS[@]%%-*}" >&2 || exit 125; fi
if [ -z "$BINARY" ]; then
  lane_build_static hangs-build.log
  BINARY=$LANE_STATIC_BINARY
fi

WORK=$(mktemp -d /tmp/vfiosim-hangs.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/files"
cp "$BINARY" "$WORK/files/vfio-sim"
cat > "$WORK/payload" <<EOF
#!/bin/sh
# hangs.sh's payload: the trace in the background, a watchdog in front.
echo "HANG-KERNEL \$(uname -r)"
/files/vfio-sim replay --backend both --allow-module-params /files/trace.trace > /tmp/replay.out 2>&1 &
r=\$!
i=0
while [ \$i -lt $WAIT ] && kill -0 \$r 2>/dev/null; do sleep 1; i=\$((i + 1)); done
if kill -0 \$r 2>/dev/null; then
  echo "HANG-AFTER \$i"
  echo l > /proc/sysrq-trigger
  sleep 3
  dmesg | grep -E 'vfio_[a-z_0-9]+' | sed 's/^/HANG-DMESG /'
else
  wait \$r; echo "HANG-NONE \$?"
  cat /tmp/replay.out
fi
exit 0
EOF
chmod 755 "$WORK/payload"

FAILED=0
for c in "${CONFIGS[@]}"; do
  for t in "${TRACES[@]}"; do
    name=$(basename "$t")
    line=$(grep -n -- '=> *hang' "$t" | head -n1 | cut -d: -f1)
    # The trace's own `# lane: skip` (the lane keeps it out for this very
    # hang) does not apply here.
    grep -v '^# *lane: skip' "$t" > "$WORK/files/trace.trace"
    rc=0
    out=$("$LANE_DIR/run-in-guest.sh" --config "$c" --binary "$WORK/payload" --files "$WORK/files" \
            --timeout $((WAIT + 240)) 2> "$WORK/stderr") || rc=$?
    after=$(printf '%s\n' "$out" | sed -n 's/^HANG-AFTER //p' | head -n1)
    # The first vfio function of a backtrace line (`vfio_unmap_unpin+0x…`),
    # not the module name in brackets.
    where=$(printf '%s\n' "$out" | sed -n 's/^HANG-DMESG //p' | grep -oE 'vfio_[a-z_0-9]+\+0x' | head -n1 | sed 's/+0x$//' || true)
    kernel=$(printf '%s\n' "$out" | sed -n 's/^HANG-KERNEL //p' | head -n1)
    if [ -n "$after" ] && [ -n "$where" ]; then
      echo "hang confirmed: $name:$line on $c (${kernel:-?}): still in the ioctl after ${after}s, the kernel's backtrace shows $where"
    elif [ -n "$after" ]; then
      FAILED=1
      echo "hang NOT confirmed: $name:$line on $c: the replay was still running after ${after}s, but no vfio function in the kernel's backtrace"
    elif [ "$rc" = 0 ]; then
      FAILED=1
      echo "hang NOT confirmed: $name:$line on $c: the replay finished; its report:"
      printf '%s\n' "$out" | sed 's/^/  /'
    else
      echo "hangs.sh: $name on $c: the guest did not run the payload (exit $rc)" >&2
      sed 's/^/  /' "$WORK/stderr" | tail -n 20 >&2
      exit 125
    fi
  done
done
exit "$FAILED"

#!/usr/bin/env bash
# Says which accelerator the lane's guests use for a configuration: kvm
# when a bounded test boot of that configuration's kernel under KVM reaches
# its /init, tcg otherwise. Prints `kvm` or `tcg` on stdout.
#
# Usage: scripts/kernel-lane/kvm-probe.sh [--fresh] CONFIG
#   --fresh   boot again even when the answer is cached
#
# No /dev/kvm (or none this user may open): tcg at once. Otherwise the
# configuration's kernel boots with `-accel kvm -cpu host` and an
# initramfs of busybox whose /init prints a marker and powers off, within
# VFIOSIM_LANE_KVM_TIMEOUT seconds (default 20; a working KVM takes 1-3 s,
# TCG 5-9 s for the same boot; a "KVM internal error" ends it at once). No
# IOMMU: whether KVM runs the kernel does not depend on it, so one probe
# serves every configuration of a kernel. The answer is cached per host
# (CPU model, host kernel, QEMU version) and kernel (its package line; for
# a developer's kernel that holds a hash of the image) in $LANE_CACHE/kvm/,
# with the console of a failed boot next to it. VFIOSIM_LANE_ACCEL=kvm|tcg
# skips the probe.
#
# Here /dev/kvm is a software nested virtualisation module that cannot
# boot a stock kernel: QEMU stops with "KVM internal error ... emulation
# failure" while the kernel decompresses, or the boot never reaches /init;
# the probe falls back to tcg (README.md, "Why TCG and not KVM").
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FRESH=0 CONFIG=""
while [ $# -gt 0 ]; do
  case $1 in
    --fresh) FRESH=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) CONFIG=$1; shift ;;
  esac
done
[ -n "$CONFIG" ] || { echo "usage: kvm-probe.sh [--fresh] CONFIG" >&2; exit 2; }
case ${VFIOSIM_LANE_ACCEL:-} in
  kvm|tcg) echo "$VFIOSIM_LANE_ACCEL"; exit 0 ;;
  "") ;;
  *) echo "VFIOSIM_LANE_ACCEL must be kvm or tcg, not '$VFIOSIM_LANE_ACCEL'" >&2; exit 2 ;;
esac
if [ ! -c /dev/kvm ] || [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then echo tcg; exit 0; fi

lane_config "$CONFIG" >/dev/null || exit 2
KDIR=$(lane_kernel_dir "$LANE_CFG_SERIES")
[ -f "$KDIR/.complete" ] || { lane_log "kvm probe: kernel $LANE_CFG_SERIES is not prepared: tcg"; echo tcg; exit 0; }
IMAGE="$KDIR/vmlinuz"
[ -f "$KDIR/vmlinux" ] && IMAGE="$KDIR/vmlinux"

HOST_KEY=$( { grep -m1 '^model name' /proc/cpuinfo || true; uname -r; qemu-system-x86_64 --version | head -n1; } | sha256sum | cut -c1-12)
KERNEL_KEY=$(sha256sum < "$KDIR/package" | cut -c1-12)
mkdir -p "$LANE_CACHE/kvm" "$LANE_CACHE/tmp"
RESULT="$LANE_CACHE/kvm/$HOST_KEY-$KERNEL_KEY"
if [ "$FRESH" = 0 ] && [ -f "$RESULT" ]; then head -n1 "$RESULT"; exit 0; fi

# One guest at a time, as run-in-guest.sh.
exec 9>"$LANE_CACHE/qemu.lock"
flock 9
RUN=$(mktemp -d "$LANE_CACHE/tmp/kvm.XXXXXX")
trap 'rm -rf "$RUN"' EXIT
mkdir -p "$RUN/root/bin" "$RUN/root/dev"
cp /bin/busybox "$RUN/root/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox echo VFIOSIM-KVM-PROBE-OK\n/bin/busybox poweroff -f\n' > "$RUN/root/init"
chmod 755 "$RUN/root/init"
(cd "$RUN/root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$RUN/initrd"

TIMEOUT=${VFIOSIM_LANE_KVM_TIMEOUT:-20}
T0=$(date +%s.%N)
rc=0
: > "$RUN/console.log"
# shellcheck disable=SC2054  # the commas belong to QEMU's option syntax
timeout -k 5 "$TIMEOUT" qemu-system-x86_64 -accel kvm -cpu host -machine q35,kernel-irqchip=split -m 512 -smp 2 -nic none \
  -kernel "$IMAGE" -initrd "$RUN/initrd" -append "console=ttyS0 rdinit=/init panic=-1" \
  -nographic -monitor none -serial "file:$RUN/console.log" -no-reboot </dev/null > "$RUN/qemu.out" 2>&1 &
QEMU_PID=$!
# A KVM that cannot run the guest often stops it with "KVM internal error"
# and leaves QEMU paused: that ends the probe at once, not at the timeout.
while kill -0 "$QEMU_PID" 2>/dev/null; do
  if grep -q VFIOSIM-KVM-PROBE-OK "$RUN/console.log" || grep -q 'KVM internal error' "$RUN/qemu.out"; then
    sleep 0.2; kill "$QEMU_PID" 2>/dev/null || true; break
  fi
  sleep 0.2
done
wait "$QEMU_PID" || rc=$?
SECS=$(echo "$(date +%s.%N) $T0" | awk '{printf "%.1f", $1 - $2}')
if grep -q VFIOSIM-KVM-PROBE-OK "$RUN/console.log" 2>/dev/null; then
  printf 'kvm\nbooted to /init under KVM in %ss (%s)\n' "$SECS" "$(cat "$KDIR/package")" > "$RESULT"
  lane_log "kvm probe ($LANE_CFG_NAME): KVM boots this kernel (${SECS}s): kvm"
else
  why="no /init within ${TIMEOUT}s"
  if grep -q 'KVM internal error' "$RUN/qemu.out"; then
    why="$(grep -m1 'KVM internal error' "$RUN/qemu.out") $(grep -m1 'emulation failure' "$RUN/qemu.out" || true)"
  elif [ "$rc" != 124 ] && [ "$rc" != 137 ]; then
    why="QEMU exit $rc: $(grep -m1 -v '^$' "$RUN/qemu.out" || true)"
  fi
  printf 'tcg\nKVM did not boot this kernel to /init: %s (%ss)\n' "$why" "$SECS" > "$RESULT"
  cat "$RUN/console.log" "$RUN/qemu.out" > "$RESULT.log" 2>/dev/null || true
  lane_log "kvm probe ($LANE_CFG_NAME): KVM does not boot this kernel ($why, ${SECS}s): tcg"
fi
head -n1 "$RESULT"

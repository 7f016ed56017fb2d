#!/bin/bash
# The real VFIO clients of the recording lane, run inside the Debian root
# filesystem of the guest (record-guest.sh chroots into it):
#   dpdk-testpmd-va  dpdk-testpmd on the e1000, IOVA as VA, 2 MiB hugepages
#   dpdk-testpmd-pa  the same with --iova-mode=pa
#   qemu-edu         a nested qemu-system-x86_64 (TCG, 128 MiB) with -device
#                    vfio-pci,host=EDU that runs its firmware (SeaBIOS) until
#                    it finds no boot device, then quits through HMP
#   qemu-edu-hotplug the same, then a 64 MiB pc-dimm hot-plugged through HMP
#                    (object_add, device_add) before quitting
#
# Usage: record-clients.sh MODE OUTDIR
#   MODE record  each client runs under /tmp/vfio-sim record --out OUTDIR/NAME.trace
#   MODE plain   each client runs as is (to develop and time the guest side)
# Each client's output goes to OUTDIR/NAME.log; one line per client on
# stdout for people ("CLIENT NAME exit=RC seconds=S") and one in
# OUTDIR/clients for record-lane.sh ("NAME<TAB>RC<TAB>SECONDS"). Exit
# status: 0 when every client exited 0, else 1.
MODE=${1:?MODE} OUT=${2:?OUTDIR}
: "${VFIO_NIC:?}" "${VFIO_DEVICE:?}"
FAILED=0
# How long the nested QEMU may take to reach "No bootable device".
QEMU_FIRMWARE_LIMIT=${QEMU_FIRMWARE_LIMIT:-300}

# client NAME CMD ARGS...: runs CMD (recorded or not), stdin from $CLIENT_STDIN.
client() {
  local name=$1 t0 rc=0
  shift
  t0=$(date +%s.%N)
  printf '%q ' "$@" | sed 's/ $//' > "$OUT/$name.cmd"
  if [ "$MODE" = record ]; then
    /tmp/vfio-sim record --out "$OUT/$name.trace" -- "$@" < "${CLIENT_STDIN:-/dev/null}" > "$OUT/$name.log" 2>&1 || rc=$?
  else
    "$@" < "${CLIENT_STDIN:-/dev/null}" > "$OUT/$name.log" 2>&1 || rc=$?
  fi
  local seconds
  seconds=$(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}')
  echo "CLIENT $name exit=$rc seconds=$seconds"
  printf '%s\t%s\t%s\n' "$name" "$rc" "$seconds" >> "$OUT/clients"
  [ "$rc" = 0 ] || FAILED=1
  return $rc
}

# dpdk-testpmd without -i starts forwarding, prints "Press enter to exit"
# and reads one byte from stdin: /dev/null ends it at once, through its
# normal exit path (ports stopped and closed, memory released).
testpmd() {
  client "dpdk-testpmd-$1" dpdk-testpmd -l 0-1 -n 1 -a "$VFIO_NIC" -m 128 --no-telemetry \
    --iova-mode="$1" -- --nb-cores=1 --total-num-mbufs=2048
}
testpmd va
testpmd pa

# The nested QEMU: SeaBIOS writes its log to the debug port 0x402; once it
# says it found nothing to boot, PCI BARs have been programmed and the ROMs
# have run, so the monitor commands (HMP, on stdin) come after the firmware,
# and "quit" ends QEMU through its normal exit path.
# qemu_edu NAME MONITOR-COMMANDS [QEMU ARGS...]
qemu_edu() {
  local name=$1 commands=$2 fifo=/tmp/qemu-monitor log=/tmp/seabios.log i=0
  shift 2
  rm -f "$fifo" "$log"
  mkfifo "$fifo"
  CLIENT_STDIN=$fifo client "$name" qemu-system-x86_64 -M q35 -accel tcg -nodefaults \
    -display none -serial none -monitor stdio -device "vfio-pci,host=$VFIO_DEVICE" \
    -debugcon "file:$log" -global isa-debugcon.iobase=0x402 "$@" &
  local pid=$!
  exec 7> "$fifo"
  while [ $i -lt $((QEMU_FIRMWARE_LIMIT * 2)) ] && kill -0 $pid 2>/dev/null; do
    grep -q 'No bootable device' "$log" 2>/dev/null && break
    sleep 0.5; i=$((i + 1))
  done
  echo "$name: firmware $(grep -q 'No bootable device' "$log" 2>/dev/null && echo "reached 'No bootable device'" || echo "did NOT finish") after $((i / 2))s"
  printf '%s\n' "$commands" >&7
  sleep 2
  echo quit >&7
  exec 7>&-
  wait $pid || FAILED=1
  cp "$log" "$OUT/$name.seabios.log" 2>/dev/null
}
# 128 MiB of RAM, the firmware, quit.
qemu_edu qemu-edu "info mtree -f" -m 128
# Memory hotplug: once the firmware ran, a 64 MiB pc-dimm is plugged in
# (a new RAM section the vfio listener maps), then QEMU quits.
qemu_edu qemu-edu-hotplug "object_add memory-backend-ram,id=hp0,size=64M
device_add pc-dimm,id=dimm0,memdev=hp0
info memory-devices" -m 128,slots=2,maxmem=512M

exit $FAILED

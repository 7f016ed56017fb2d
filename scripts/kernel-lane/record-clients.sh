#!/bin/bash
# The real VFIO clients of the recording lane, run inside the Debian root
# filesystem of the guest (record-guest.sh chroots into it):
#   dpdk-testpmd-va  dpdk-testpmd on the e1000, IOVA as VA, 2 MiB hugepages
#   dpdk-testpmd-pa  the same with --iova-mode=pa
#   qemu-edu         a nested qemu-system-x86_64 (TCG) with -device
#                    vfio-pci,host=EDU that runs its firmware (SeaBIOS) until
#                    it finds no boot device, then quits through HMP
#
# Usage: record-clients.sh MODE OUTDIR
#   MODE record  each client runs under /tmp/vfio-sim record --out OUTDIR/NAME.trace
#   MODE plain   each client runs as is (to develop and time the guest side)
# Each client's output goes to OUTDIR/NAME.log; one line per client on
# stdout: "CLIENT NAME exit=RC seconds=S". Exit status: 0 when every client
# exited 0, else 1.
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
  echo "CLIENT $name exit=$rc seconds=$(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1 - $2}')"
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
# run, so HMP quit ends QEMU through its normal exit path.
qemu_edu() {
  local fifo=/tmp/qemu-monitor log=/tmp/seabios.log i=0
  rm -f "$fifo" "$log"
  mkfifo "$fifo"
  CLIENT_STDIN=$fifo client qemu-edu qemu-system-x86_64 -M q35 -accel tcg -m 128 -nodefaults \
    -display none -serial none -monitor stdio -device "vfio-pci,host=$VFIO_DEVICE" \
    -debugcon "file:$log" -global isa-debugcon.iobase=0x402 &
  local pid=$!
  exec 7> "$fifo"
  while [ $i -lt $((QEMU_FIRMWARE_LIMIT * 2)) ] && kill -0 $pid 2>/dev/null; do
    grep -q 'No bootable device' "$log" 2>/dev/null && break
    sleep 0.5; i=$((i + 1))
  done
  echo "qemu-edu: firmware $(grep -q 'No bootable device' "$log" 2>/dev/null && echo "reached 'No bootable device'" || echo "did NOT finish") after $((i / 2))s"
  echo quit >&7
  exec 7>&-
  wait $pid || FAILED=1
  cp "$log" "$OUT/qemu-edu.seabios.log" 2>/dev/null
}
qemu_edu

exit $FAILED

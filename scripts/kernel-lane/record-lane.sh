#!/usr/bin/env bash
# The recording lane: real VFIO clients (dpdk-testpmd, a nested QEMU) run
# under `vfio-sim record` in a kernel-lane guest, and every recording is
# replayed on the model, which must give every answer the kernel gave.
#
# Usage: scripts/kernel-lane/record-lane.sh [options]
#   --config NAME[,NAME]  lane configurations (default: 6.12-intel,6.18-intel)
#   --plain               run the clients without the recorder (develops and
#                         times the guest side; nothing is replayed)
#   --update-fixtures     copy the recordings into Fixtures/recorded/ as
#                         CLIENT-SERIES.trace, each headed by how it was made
#   --binary PATH         a static vfio-sim to use (default: built like lane.sh,
#                         .build-lane/release/vfio-sim)
#   --no-setup            do not run setup.sh and rootfs.sh first
#
# Each guest (one boot per configuration) shares the Debian root filesystem
# of rootfs.sh over 9p (read-only, tmpfs on /run and /tmp), has an emulated
# e1000 bound to vfio-pci, 128 2 MiB hugepages and the lane's edu devices,
# and runs record-clients.sh: dpdk-testpmd in IOVA-as-VA and IOVA-as-PA
# mode, then a nested qemu-system-x86_64 with -device vfio-pci on an edu
# that runs SeaBIOS. One line per recording:
#
#   6.12-intel dpdk-testpmd-va: client exit 0 in 41.2s, replay on the model: ...
#
# Recordings and client logs are kept in $LANE_CACHE/logs/record-CONFIG/.
# Exit status: 0 when every client ran and every recording replayed with
# every answer agreeing; 1 otherwise; 125 when the lane could not run.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LANE_DIE_CODE=125

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

CONFIGS=() MODE=record UPDATE=0 BINARY="" SETUP=1
while [ $# -gt 0 ]; do
  case $1 in
    --config) IFS=, read -r -a more <<< "${2:?}"; CONFIGS+=("${more[@]}"); shift 2 ;;
    --plain) MODE=plain; shift ;;
    --update-fixtures) UPDATE=1; shift ;;
    --binary) BINARY=${2:?}; shift 2 ;;
    --no-setup) SETUP=0; shift ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[ ${#CONFIGS[@]} -gt 0 ] || CONFIGS=(6.12-intel 6.18-intel)
SERIES=()
for i in "${!CONFIGS[@]}"; do
  lane_config "${CONFIGS[$i]}" >/dev/null || exit 2
  CONFIGS[i]=$LANE_CFG_NAME
  case " ${SERIES[*]} " in *" $LANE_CFG_SERIES "*) ;; *) SERIES+=("$LANE_CFG_SERIES") ;; esac
done

START=$(date +%s)
elapsed() { echo "$(( $(date +%s) - START ))s"; }

if [ "$SETUP" = 1 ]; then
  "$LANE_DIR/setup.sh" "${SERIES[@]}" >&2 || lane_die "setup.sh failed"
  ROOTFS=$("$LANE_DIR/rootfs.sh") || lane_die "rootfs.sh failed"
else
  ROOTFS=$("$LANE_DIR/rootfs.sh" --print)
fi
[ -f "$ROOTFS/.complete" ] || lane_die "no root filesystem at $ROOTFS: run scripts/kernel-lane/rootfs.sh"

if [ "$MODE" = record ] && [ -z "$BINARY" ]; then
  lane_log "building the static vfio-sim ($(elapsed))"
  lane_build_static record-build.log
  BINARY=$LANE_STATIC_BINARY
fi
[ "$MODE" = plain ] || [ -x "$BINARY" ] || lane_die "no binary at $BINARY"

mkdir -p "$LANE_CACHE/tmp" "$LANE_CACHE/logs"
WORK=$(mktemp -d "$LANE_CACHE/tmp/record.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# 9p modules of a series in insmod order (dependencies first, built-ins
# left out), from the deps.txt setup.sh wrote.
modules_9p() {
  local kdir=$1 name deps
  declare -A DEPS=() VISITED=()
  while IFS=: read -r name deps; do DEPS[${name//-/_}]=${deps# }; done < "$kdir/deps.txt"
  visit() {
    local m=${1//-/_} d
    [ -z "${VISITED[$m]:-}" ] || return 0
    VISITED[$m]=1
    [ -n "${DEPS[$m]+set}" ] || lane_die "module $m is not collected for $kdir: run scripts/kernel-lane/setup.sh"
    [ "${DEPS[$m]}" = builtin ] && return 0
    for d in ${DEPS[$m]}; do visit "$d"; done
    echo "$m"
  }
  for name in $LANE_9P_MODULES; do visit "$name"; done
}

FAILED=0
for c in "${CONFIGS[@]}"; do
  lane_config "$c"
  KDIR="$LANE_CACHE/kernels/$LANE_CFG_SERIES"
  files="$WORK/files-$c" out="$WORK/out-$c" keep="$LANE_CACHE/logs/record-$c"
  rm -rf "$files" "$out" "$keep"
  mkdir -p "$files/9p" "$out" "$keep"
  modules_9p "$KDIR" > "$files/9p/order"
  while read -r m; do cp "$KDIR/modules/$m.ko" "$files/9p/"; done < "$files/9p/order"
  cp "$LANE_DIR/record-clients.sh" "$files/"
  [ "$MODE" = plain ] || cp "$BINARY" "$files/vfio-sim"
  lane_log "booting $c ($MODE, $(elapsed))"
  rc=0
  # The e1000 gets no network backend (QEMU warns, the device works) and
  # no option ROM. --hugepages-1g 0 keeps the guest at 2 GiB.
  "$LANE_DIR/run-in-guest.sh" --config "$c" --binary "$LANE_DIR/record-guest.sh" --files "$files" \
      --timeout 1200 --hugepages 128 --hugepages-1g 0 \
      --qemu-arg -virtfs --qemu-arg "local,path=$ROOTFS,mount_tag=laneroot,security_model=none,readonly=on" \
      --qemu-arg -virtfs --qemu-arg "local,path=$out,mount_tag=laneout,security_model=none" \
      --qemu-arg -device --qemu-arg "e1000,romfile=" \
      -- "$MODE" > "$keep/guest.txt" 2> "$keep/guest.stderr" || rc=$?
  cp -a "$out/." "$keep/" 2>/dev/null || true
  # The guest's clients, as record-clients.sh wrote them (NAME, exit
  # status, seconds; one line each): nothing here reads the guest's text.
  echo "$c: guest exit $rc (the guest's output: $keep/guest.txt, the boot's log: $keep/guest.stderr)"
  if [ ! -s "$keep/clients" ]; then
    FAILED=1
    echo "  no client ran (payload exit $rc):"
    sed 's/^/  /' "$keep/guest.txt" | tail -n 20
    sed 's/^/  /' "$keep/guest.stderr" | tail -n 20
    continue
  fi
  [ "$rc" = 0 ] || FAILED=1
  release=$(cat "$KDIR/release")
  while IFS=$'\t' read -r name status seconds; do
    line="$c $name: client exit $status in ${seconds}s"
    if [ "$MODE" = plain ]; then echo "$line"; [ "$status" = 0 ] || FAILED=1; continue; fi
    [ "$status" = 0 ] || { FAILED=1; echo "$line"; tail -n 5 "$keep/$name.log" | sed 's/^/    /'; }
    # One trace per container: NAME.trace, then NAME.trace.2, ...
    traces=()
    for t in "$keep/$name.trace" "$keep/$name.trace".[0-9]*; do [ -f "$t" ] && traces+=("$t"); done
    if [ ${#traces[@]} = 0 ] || [ ! -s "${traces[0]}" ]; then
      echo "$line, no recording"; FAILED=1; continue
    fi
    for trace in "${traces[@]}"; do
      k=${trace##*.trace}; k=${k#.}
      label=$name${k:+-c$k}
      # The answers the recording wrote (a trace is input, not a report).
      ops=$(grep -v '^[[:space:]]*#' "$trace" | grep -c '=>' || true)
      rrc=0
      "$BINARY" replay --lane-report "$keep/$label.replay.tally" "$trace" > "$keep/$label.replay.txt" 2>&1 || rrc=$?
      "$BINARY" lane-summary recorded --label "$c $label" --client "exit $status in ${seconds}s" --answers "$ops" \
        --replay-exit "$rrc" "$keep/$label.replay.tally" || FAILED=1
      if [ "$UPDATE" = 1 ]; then
        dest="$LANE_REPO/Fixtures/recorded/$label-$LANE_CFG_SERIES.trace"
        mkdir -p "$(dirname "$dest")"
        { echo "# Recorded by scripts/kernel-lane/record-lane.sh --config $c on $(date -u +%Y-%m-%d):"
          echo "# kernel $release ($(cat "$KDIR/package")), $LANE_CFG_IOMMU_WORD (QEMU $(qemu-system-x86_64 --version | awk 'NR==1{print $4}'), TCG guest),"
          echo "# $(sed -n 1p "$ROOTFS/lane-rootfs.txt" | sed 's/ packages=.*//'), $(sed -n 2,3p "$ROOTFS/lane-rootfs.txt" | tr '\n' ' ')"
          echo "# command (in the guest, see scripts/kernel-lane/record-clients.sh): vfio-sim record -- $(cat "$keep/$name.cmd" 2>/dev/null)"
          [ -z "$k" ] || echo "# container $k of the process (vfio-sim record writes one trace per container)"
          echo "# The answers after => are what that kernel said."
          cat "$trace"
        } > "$dest"
        lane_log "wrote ${dest#"$LANE_REPO"/}"
      fi
    done
  done < "$keep/clients"
done
lane_log "done in $(elapsed)"
exit "$FAILED"

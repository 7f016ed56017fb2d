#!/usr/bin/env bash
# Runs a static binary inside a QEMU guest whose devices (three edu, one
# ivshmem-plain with a 1 GiB BAR) are bound to vfio-pci, and hands back the
# binary's output and exit code.
#
# Usage:
#   scripts/kernel-lane/run-in-guest.sh --config NAME --binary PATH [options] [-- ARGS...]
#
# Options:
#   --config NAME        a configuration of LANE_CONFIGS in lib.sh, e.g.
#                        5.10-intel, 6.12-virtio, 7.x-amd (or 7.3-amd)
#   --binary PATH        program to run as /bin/payload (must be fully static:
#                        the guest has busybox and nothing else)
#   --files DIR          copy DIR's contents to /files in the guest
#   --timeout SECS       whole-run limit, boot included (default 300)
#   --hugepages N        2 MiB hugepages to reserve (default 64)
#   --hugepages-1g N     1 GiB hugepages reserved at boot (default 1; 0 = none).
#                        Guest memory grows from 2 GiB to 2+N+1 GiB for them,
#                        so the payload still has 2 GiB of ordinary memory.
#   --modparam M.P=V     module parameter, e.g. vfio_iommu_type1.dma_entry_limit=100
#                        (repeatable; built-in modules get it on the kernel cmdline)
#   --append WORDS       extra kernel command line (e.g. iommu.strict=1)
#   --env K=V            extra environment variable for the payload (repeatable)
#   --qemu-arg ARG       extra QEMU argument, e.g. a monitor socket (repeatable)
#   --log FILE           also keep the guest's console log in FILE
#   --accel kvm|tcg|auto QEMU's accelerator (default auto: kvm-probe.sh's
#                        answer for the configuration, cached; tcg where KVM
#                        cannot boot the kernel)
#   --verbose            show the kernel's boot messages and stream the console
#                        to stderr
#
# The payload sees VFIO_GROUPS (/dev/vfio/N of each device, space separated:
# edu, edu, edu, ivshmem), VFIO_DEVICES (their PCI addresses, same order),
# VFIO_GROUP and VFIO_DEVICE (the first of each), VFIO_IVSHMEM_BAR (sysfs
# resource2 file of the ivshmem device) and VFIO_IVSHMEM_BAR_SIZE (bytes),
# VFIO_LANE_CONFIG, VFIO_LANE_IOMMU (intel-iommu, intel-iommu-48, amd-iommu,
# virtio-iommu), VFIO_KERNEL_RELEASE, VFIO_HUGETLBFS_2M (and _1G when 1 GiB
# pages exist); cwd is /, stdin is /dev/null. Its stdout and stderr arrive
# merged, on this script's stdout.
#
# Exit status: the payload's own, or
#   124  the payload started but did not finish before the timeout
#   125  the payload never ran (setup not done, boot failure, bind failure,
#        boot hung until the timeout) or the guest died under it
#   2    usage error
# Only one guest runs at a time: concurrent callers wait on a lock.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LANE_DIE_CODE=125

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

ACCEL=auto CONFIG="" BINARY="" FILES="" TIMEOUT=300 HUGEPAGES=64 HUGEPAGES_1G=1 LOGCOPY="" VERBOSE=0 APPEND=""
MODPARAMS=() ENVS=() QEMU_EXTRA=() ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --config) CONFIG=${2:?}; shift 2 ;;
    --binary) BINARY=${2:?}; shift 2 ;;
    --files) FILES=${2:?}; shift 2 ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --hugepages) HUGEPAGES=${2:?}; shift 2 ;;
    --hugepages-1g) HUGEPAGES_1G=${2:?}; shift 2 ;;
    --modparam) MODPARAMS+=("${2:?}"); shift 2 ;;
    --append) APPEND+=" ${2:?}"; shift 2 ;;
    --env) ENVS+=("${2:?}"); shift 2 ;;
    --qemu-arg) QEMU_EXTRA+=("${2:?}"); shift 2 ;;
    --log) LOGCOPY=${2:?}; shift 2 ;;
    --accel) ACCEL=${2:?}; shift 2 ;;
    --verbose) VERBOSE=1; shift ;;
    --) shift; ARGS=("$@"); break ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
if [ -z "$CONFIG" ] || [ -z "$BINARY" ]; then usage; fi
[ -f "$BINARY" ] || { echo "no such binary: $BINARY" >&2; exit 2; }
[ -z "$FILES" ] || [ -d "$FILES" ] || { echo "no such directory: $FILES" >&2; exit 2; }
lane_config "$CONFIG" || exit 2
CONFIG=$LANE_CFG_NAME  # 7.3-amd -> 7.x-amd: one name for cache and logs

KDIR=$(lane_kernel_dir "$LANE_CFG_SERIES")
[ -f "$KDIR/.complete" ] || lane_die "kernel $LANE_CFG_SERIES is not prepared: run scripts/kernel-lane/setup.sh ($LANE_BUILT_SERIES: build-kernel.sh)"
command -v qemu-system-x86_64 >/dev/null || lane_die "qemu-system-x86_64 missing: run scripts/kernel-lane/setup.sh"
command -v cpio >/dev/null || lane_die "cpio missing: run scripts/kernel-lane/setup.sh"

# Quote a word for the guest's POSIX shell.
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
norm() { echo "${1//-/_}"; }

# ---------------------------------------------------------------------------
# Module load order: the config's modules, each preceded by its dependencies
# (from deps.txt written by setup.sh). Built-in modules are skipped.
declare -A DEPS=() BUILTIN=() STATE=()
while IFS=: read -r name deps; do
  name=$(norm "$name")
  deps=${deps# }
  if [ "$deps" = builtin ]; then BUILTIN[$name]=1; DEPS[$name]=""; else DEPS[$name]=$(norm "$deps"); fi
done < "$KDIR/deps.txt"
ORDER=()
visit() {
  local m d
  m=$(norm "$1")
  [ "${STATE[$m]:-}" = "done" ] && return 0
  [ "${STATE[$m]:-}" = busy ] && lane_die "module dependency cycle at $m"
  [ -n "${DEPS[$m]+set}" ] || lane_die "module $m is not in the cache: run scripts/kernel-lane/setup.sh"
  STATE[$m]=busy
  for d in ${DEPS[$m]}; do visit "$d"; done
  STATE[$m]="done"
  [ -n "${BUILTIN[$m]:-}" ] || ORDER+=("$m")
}
for m in $LANE_CFG_MODULES; do visit "$m"; done

MODLIST=""
for m in "${ORDER[@]}"; do
  params=""
  for mp in $LANE_CFG_MODPARAMS; do
    if [ "${mp%%.*}" = "$m" ]; then params="$params ${mp#*.}"; fi
  done
  MODLIST+="$m$params"$'\n'
done

# Per-run module parameters go to insmod for loaded modules, to the kernel
# command line otherwise (which is how built-in modules take them).
RUN_MODPARAMS="" CMDLINE_MODPARAMS=""
for mp in "${MODPARAMS[@]}"; do
  [[ $mp == *.*=* ]] || { echo "--modparam wants MODULE.PARAM=VALUE, got '$mp'" >&2; exit 2; }
  mod=$(norm "${mp%%.*}")
  if [ "${STATE[$mod]:-}" = "done" ] && [ -z "${BUILTIN[$mod]:-}" ]; then
    RUN_MODPARAMS+=" $mod.${mp#*.}"
  else
    CMDLINE_MODPARAMS+=" $mod.${mp#*.}"
  fi
done

case $ACCEL in
  auto) ACCEL=$("$LANE_DIR/kvm-probe.sh" "$CONFIG") || ACCEL=tcg ;;
  kvm|tcg) ;;
  *) echo "--accel wants kvm, tcg or auto, not '$ACCEL'" >&2; exit 2 ;;
esac
ACCEL_ARGS=(-accel tcg -cpu max)
[ "$ACCEL" = tcg ] || ACCEL_ARGS=(-accel kvm -cpu host)

mkdir -p "$LANE_CACHE/initramfs" "$LANE_CACHE/logs" "$LANE_CACHE/tmp"

# One guest at a time: the machine has 2 cores and TCG uses both. The base
# archive is built under the same lock so two callers never race on it.
exec 9>"$LANE_CACHE/qemu.lock"
if ! flock -n 9; then
  lane_log "another lane run is in progress; waiting"
  flock 9
fi

RUN=$(mktemp -d "$LANE_CACHE/tmp/run.XXXXXX")
QEMU_PID=""
# shellcheck disable=SC2317  # invoked through the trap
cleanup() {
  [ -z "$QEMU_PID" ] || kill "$QEMU_PID" 2>/dev/null || true
  rm -rf "$RUN"
}
trap cleanup EXIT

# ---------------------------------------------------------------------------
# Base archive (busybox, /init, modules): depends only on the config, so it
# is cached, keyed by everything that goes into it. The per-run archive
# (payload, args, files) is appended: the kernel unpacks concatenated cpio
# archives in order. Both stay uncompressed: decompressing under TCG is
# slower than loading a few more MB.
BASE_KEY=$( { cat "$LANE_DIR/guest-init.sh"; echo "$CONFIG $LANE_CFG_IOMMU_WORD $LANE_DEVICE_IDS"; cat "$KDIR/package";
              printf '%s' "$MODLIST"; stat -c '%s %Y' /bin/busybox; } | sha256sum | cut -c1-16)
BASE="$LANE_CACHE/initramfs/$CONFIG-$BASE_KEY.cpio"
if [ ! -f "$BASE" ]; then
  st="$RUN/base"
  mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,files,lane,lib/modules}
  cp /bin/busybox "$st/bin/busybox"
  cp "$LANE_DIR/guest-init.sh" "$st/init"
  chmod 755 "$st/init"
  { echo "LANE_CONFIG=$(shq "$CONFIG")"
    echo "LANE_IOMMU_WORD=$(shq "$LANE_CFG_IOMMU_WORD")"
    echo "LANE_DEVICE_IDS=$(shq "$LANE_DEVICE_IDS")"; } > "$st/lane/base.env"
  printf '%s' "$MODLIST" > "$st/lane/modules"
  for m in "${ORDER[@]}"; do cp "$KDIR/modules/$m.ko" "$st/lib/modules/"; done
  # Lets the kernel give /init a console from the first instruction on.
  mknod -m 600 "$st/dev/console" c 5 1 2>/dev/null || true
  (cd "$st" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$BASE.tmp"
  mv "$BASE.tmp" "$BASE"
  # Older bases of this config are dead weight now.
  find "$LANE_CACHE/initramfs" -name "$CONFIG-*.cpio" ! -name "${BASE##*/}" -delete
fi

TOKEN=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
st="$RUN/payload"
mkdir -p "$st/bin" "$st/lane" "$st/files"
cp "$BINARY" "$st/bin/payload"
chmod 755 "$st/bin/payload"
[ -z "$FILES" ] || cp -a "$FILES/." "$st/files/"
{
  echo "LANE_TOKEN=$TOKEN"
  echo "LANE_HUGEPAGES=$(shq "$HUGEPAGES")"
  echo "LANE_MODPARAMS=$(shq "${RUN_MODPARAMS# }")"
  for e in "${ENVS[@]}"; do echo "export $(shq "$e")"; done
  printf 'lane_payload() { /bin/payload'
  for a in "${ARGS[@]}"; do printf ' %s' "$(shq "$a")"; done
  printf '; }\n'
} > "$st/lane/run.env"
(cd "$st" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$RUN/payload.cpio"
cat "$BASE" "$RUN/payload.cpio" > "$RUN/initrd"

# ---------------------------------------------------------------------------
# no_timer_check: under TCG on a loaded host the IO-APIC timer check can
# miss its ticks and panic the boot ("timer doesn't work through
# Interrupt-remapped IO-APIC", seen on 6.12 with amd-iommu).
CMDLINE="console=ttyS0 rdinit=/init panic=-1 no_timer_check $LANE_CFG_CMDLINE"
[ "$VERBOSE" = 1 ] || CMDLINE+=" quiet"
[ "$HUGEPAGES_1G" = 0 ] || CMDLINE+=" hugepagesz=1G hugepages=$HUGEPAGES_1G"
CMDLINE+="$CMDLINE_MODPARAMS$APPEND"

# An uncompressed vmlinux (PVH boot) exists only where it saves boot time.
KERNEL_IMAGE="$KDIR/vmlinuz"
[ -f "$KDIR/vmlinux" ] && KERNEL_IMAGE="$KDIR/vmlinux"

# 1 GiB pages are carved out at boot from memory above 4 GiB (q35 keeps only
# 2 GiB below it), but the kernel first takes its own early allocations from
# the top of RAM: one spare gigabyte keeps N aligned gigabytes free.
MEM_MB=2048
[ "$HUGEPAGES_1G" = 0 ] || MEM_MB=$((2048 + 1024 * (HUGEPAGES_1G + 1)))

LOG="$RUN/console.log"
meta_has() { grep -q "^$1" "$RUN/meta"; }
# A boot, start to power-off: the console log split into payload.out and
# meta.
boot_once() {
  : > "$LOG"
  # KVM where kvm-probe.sh booted this kernel under it; else TCG (this
  # machine's /dev/kvm cannot boot a stock Debian kernel:
  # scripts/kernel-lane/README.md, "Why TCG and not KVM").
  # kernel-irqchip=split is what intremap needs under KVM; TCG ignores it,
  # so the line stays valid for both. No NIC: it would only cost an iPXE
  # option ROM at every boot.
  # shellcheck disable=SC2054  # the commas belong to QEMU's option syntax
  QEMU=(qemu-system-x86_64 "${ACCEL_ARGS[@]}"
        -machine q35,kernel-irqchip=split -m "$MEM_MB" -smp 2 -nic none
        "${LANE_CFG_QEMU_IOMMU[@]}" "${LANE_QEMU_DEVICES[@]}"
        -kernel "$KERNEL_IMAGE" -initrd "$RUN/initrd" -append "$CMDLINE"
        -nographic -monitor none -serial "file:$LOG" -no-reboot
        "${QEMU_EXTRA[@]}")

  START=$(date +%s.%N)
  timeout -k 5 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$RUN/qemu.out" 2>&1 &
  QEMU_PID=$!
  if [ "$VERBOSE" = 1 ]; then
    tail -n +1 -f "$LOG" --pid="$QEMU_PID" >&2 &
  fi
  QEMU_RC=0
  wait "$QEMU_PID" || QEMU_RC=$?
  QEMU_PID=""
  ELAPSED=$(echo "$(date +%s.%N) $START" | awk '{printf "%.1f", $1 - $2}')
  wait 2>/dev/null || true  # the tail, if any

  cp "$LOG" "$LANE_CACHE/logs/$CONFIG.last.log"
  [ -z "$LOGCOPY" ] || cp "$LOG" "$LOGCOPY"

  # ---------------------------------------------------------------------------
  # Split the console log: payload bytes to payload.out, marker lines to meta.
  # The guest ends the payload's output with one extra newline before END, so
  # lines are re-joined without a final newline. If the console still turned
  # \n into \r\n (stty unavailable), the BEGIN line shows it and \r is dropped.
  awk -v M="@@VFIOLANE-$TOKEN@@" -v out="$RUN/payload.out" -v meta="$RUN/meta" '
    BEGIN { inp = 0; n = 0; printf "" > out; printf "" > meta }
    {
      line = $0
      if (inp) {
        bare = line; sub(/\r$/, "", bare)
        if (bare == M " END") { inp = 0; print "END" > meta; next }
        if (crlf) sub(/\r$/, "", line)
        printf "%s%s", (n++ ? "\n" : ""), line > out
        next
      }
      p = index(line, M " ")
      if (p == 0) next
      rest = substr(line, p + length(M) + 1); sub(/\r$/, "", rest)
      if (rest == "BEGIN") { inp = 1; crlf = (line ~ /\r$/) }
      print rest > meta
    }' "$LOG"
}

# Under TCG a stock kernel now and then panics in its own boot, before any
# of the lane's code ran (seen once on 7.3 with virtio-iommu: a BUG in
# enqueue_timer from the RCU kthread, "Fatal exception in interrupt" at
# 1.35 s). The payload never started, so booting again changes nothing it
# reports; one more boot is tried, and only for a panic before BEGIN.
ATTEMPT=1
while :; do
  boot_once
  if [ "$ATTEMPT" -lt 2 ] && ! meta_has BEGIN && ! meta_has ERROR && grep -q "Kernel panic" "$LOG"; then
    lane_log "$CONFIG: the guest kernel panicked while booting, before the payload ran; booting again"
    tail -n 12 "$LOG" | tr -d '\r' | sed 's/^/kernel-lane:   /' >&2
    cp "$LOG" "$LANE_CACHE/logs/$CONFIG.panic.log"
    ATTEMPT=$((ATTEMPT + 1))
    continue
  fi
  break
done

meta_get() { grep "^$1" "$RUN/meta" | head -n1 | cut -d' ' -f2-; }

show_tail() {
  echo "---- last 40 lines of the console log ($LANE_CACHE/logs/$CONFIG.last.log) ----" >&2
  tail -n 40 "$LOG" | tr -d '\r' >&2
  if [ -s "$RUN/qemu.out" ]; then
    echo "---- QEMU said ----" >&2
    cat "$RUN/qemu.out" >&2
  fi
}

INFO=$(grep '^INFO config=' "$RUN/meta" | head -n1 | cut -d' ' -f2- || true)

if ! meta_has BEGIN; then
  if meta_has ERROR; then
    lane_log "$CONFIG: guest setup failed: $(meta_get ERROR)"
  elif [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
    lane_log "$CONFIG: the guest did not reach the payload within ${TIMEOUT}s"
  else
    boots=""; [ "$ATTEMPT" = 1 ] || boots=", $ATTEMPT boots"
    lane_log "$CONFIG: the guest stopped before reaching the payload (QEMU exit $QEMU_RC$boots)"
  fi
  show_tail
  exit 125
fi

cat "$RUN/payload.out"

if ! meta_has EXIT; then
  if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
    lane_log "$CONFIG: timeout after ${TIMEOUT}s, payload still running"
    show_tail
    exit 124
  fi
  lane_log "$CONFIG: the guest died while the payload ran (QEMU exit $QEMU_RC)"
  show_tail
  exit 125
fi

RC=$(meta_get EXIT)
if [ "$VERBOSE" = 1 ] || [ "$RC" != 0 ]; then
  grep '^DMESG ' "$RUN/meta" | cut -d' ' -f2- | sed 's/^/kernel-lane: guest dmesg: /' >&2 || true
fi
if [ "$RC" = 127 ]; then
  lane_log "exit 127: the payload could not be started (is it fully static? build with swiftc -static-executable)"
fi
lane_log "$CONFIG: exit $RC after ${ELAPSED}s ($INFO accel=$ACCEL)"
exit "$((RC & 255))"

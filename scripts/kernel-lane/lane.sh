#!/usr/bin/env bash
# The kernel lane: every fixture replayed against the model and a real
# kernel side by side (`vfio-sim replay --backend both`), in each QEMU
# configuration, one boot per configuration.
#
# Usage: scripts/kernel-lane/lane.sh [options] [FIXTURE...]
#
#   --config NAME   run only this configuration (repeatable, or a comma
#                   separated list; default: every one in LANE_CONFIGS,
#                   lib.sh: 5.10, 6.1, 6.12, 6.18 and the newest 7.x with
#                   intel (39-bit), amd, virtio (6.12 on) and intel48 (5.10,
#                   7.x) IOMMUs, e.g. 5.10-intel48, 6.12-virtio, 7.x-amd;
#                   7.x may also be named by the release found, e.g. 7.3-amd)
#   --binary PATH   use this fully static vfio-sim instead of building one
#   --no-setup      do not run setup.sh first (it is quick when nothing is
#                   missing)
#   --no-ptes       do not walk the IOMMU page tables from the host (then
#                   `check ptes=` is not observable)
#   --explore "RUNS OPS SEED"
#                   after the fixtures, in the same boot, a differential
#                   exploration of RUNS generated sequences of OPS operations
#                   from SEED (default "$LANE_EXPLORE" or "100 30 1"; CI runs
#                   these fixed seeds, more can be run offline)
#   --explore-iommufd "RUNS OPS SEED..."
#                   the iommufd configuration's own exploration (explore
#                   --container iommufd, one run per SEED) after the common
#                   one; default lib.sh's LANE_IOMMUFD_EXPLORE_DEFAULT, ""
#                   for none
#   --no-explore    fixtures only (neither exploration)
#   --no-selftests  do not run the kernel's own VFIO selftests (by default
#                   built once by build-selftests.sh and run last in each
#                   boot under `vfio-sim record`, each recording replayed on
#                   the model: the `selftests ...` line)
#   --kernel PATH   your kernel instead of Debian's: a built tree
#                   (arch/x86/boot/bzImage, .config, the modules in the
#                   tree), a bzImage with --modules DIR (`make modules_install
#                   INSTALL_MOD_PATH=DIR`; --kernel-config FILE its .config),
#                   or a kernel directory of the lane's cache. Its .config is
#                   checked for every option the guest needs (each missing
#                   one is named); the model answers as its release. Runs
#                   the configurations dev-IOMMU (docs/KERNEL_DEVELOPER.md)
#   --kernel-source TREE
#                   configure TREE with the lane's fragment
#                   (kernel-iommufd.config on allnoconfig), build it
#                   (build-kernel.sh --source), then as --kernel TREE
#   --iommu LIST    with --kernel: intel, intel48, amd, virtio, iommufd
#                   (comma separated; default: each the kernel's options allow)
#   --skipped-lines FILE
#                   write each configuration's skipped fixtures to FILE as
#                   `NAME: REASON<TAB>CONFIG` lines instead of printing the
#                   `skipped fixtures:` summary (job.sh; merge.sh prints it)
#   --sections FILE with one --config: also write its lines to FILE as JSON,
#                   the exploration's apart (`vfio-sim lane-summary
#                   --sections`; job.sh keeps it for merge.sh)
#   --verbose       print every note (setup differences, answers the trace
#                   wrote for another IOMMU or kernel, skipped fixtures); the
#                   report in $VFIOSIM_LANE_CACHE/logs also lists every agreement
#   FIXTURE...      trace files (default: Fixtures/*.trace)
#
# It installs what it needs (setup.sh: QEMU, busybox, Debian's kernels),
# builds the static vfio-sim once (`swift build -c release --scratch-path
# .build-lane -Xswiftc -static-executable`), boots each configuration with
# the fixtures in the guest and prints, per configuration,
#
#   kernel 6.12 intel-iommu: N/M operations agree, U not observable, S of F files skipped (N more not applicable), presets: P/P agree, accel tcg
#     kernel log: K/L predicted lines found
#
#   selftests 6.12 intel-iommu: T/T tests pass on the kernel, A/A recorded operations agree on the model, S skipped, N not applicable
#
# (the second line: each line the model says the kernel logs for the
# fixtures' answers, such as the RLIMIT_MEMLOCK warning, found in the
# guest's dmesg; a missing one fails the configuration; the selftests
# line: the kernel's own VFIO selftests, run last in the boot under
# `vfio-sim record`, each case that applies to the kernel passing and every
# recorded answer the model's, docs/LANE.md)
# (the IOMMU word is the configuration's: intel-iommu, intel-iommu-48,
# amd-iommu or virtio-iommu; the guest passes it as VFIO_LANE_IOMMU)
# followed by every disagreement and error. In the same boot the guest runs
# `vfio-sim host --probe`: P is the number of its groups whose `iommu=`
# preset, answered for the running release, agrees with what GET_INFO and
# CHECK_EXTENSION report there; then that prologue followed by
# host-body.trace is replayed on both backends, and must agree with no
# setup difference (the prologue's domains are the kernel's). Fixtures the guest cannot run
# (a `# lane: skip REASON` comment, or a `kernel` line naming another
# version) are counted as skipped with their reason; checks the guest cannot
# observe are counted as not observable. `check ptes=` is answered from the
# host by iommu-walk.py: the guest's VT-d or AMD-Vi tables walked through
# the QEMU monitor, virtio-iommu's mappings read from QEMU's trace. Full
# reports are kept in $VFIOSIM_LANE_CACHE/logs/lane-CONFIG.txt (default
# cache /var/cache/vfiosim/lane).
#
# Exit status: 0 when model and kernel agreed on every operation of every
# configuration; 1 on any disagreement or error; 2 usage; 125 when the lane
# itself could not run (setup, build, boot).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LANE_DIE_CODE=125

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

DEV_KERNEL="" DEV_SOURCE="" DEV_MODULES="" DEV_KCONFIG="" DEV_IOMMUS=""
CONFIGS=() BINARY="" SETUP=1 VERBOSE=0 PTES=1 RUN_SELFTESTS=1 FIXTURES=() SKIPPED_LINES="" SECTIONS="" EXPLORE=${LANE_EXPLORE-"100 30 1"}
while [ $# -gt 0 ]; do
  case $1 in
    --config) IFS=, read -r -a more <<< "${2:?}"; CONFIGS+=("${more[@]}"); shift 2 ;;
    --binary) BINARY=${2:?}; shift 2 ;;
    --no-setup) SETUP=0; shift ;;
    --verbose) VERBOSE=1; shift ;;
    --skipped-lines) SKIPPED_LINES=${2:?}; shift 2 ;;
    --sections) SECTIONS=${2:?}; shift 2 ;;
    --no-ptes) PTES=0; shift ;;
    --explore) EXPLORE=${2?}; shift 2 ;;
    --explore-iommufd) export LANE_IOMMUFD_EXPLORE=${2?}; shift 2 ;;
    --no-explore) EXPLORE=""; export LANE_IOMMUFD_EXPLORE=""; shift ;;
    --no-selftests) RUN_SELFTESTS=0; shift ;;
    --kernel) DEV_KERNEL=${2:?}; shift 2 ;;
    --kernel-source) DEV_SOURCE=${2:?}; shift 2 ;;
    --modules) DEV_MODULES=${2:?}; shift 2 ;;
    --kernel-config) DEV_KCONFIG=${2:?}; shift 2 ;;
    --iommu) DEV_IOMMUS=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) FIXTURES+=("$1"); shift ;;
  esac
done
# A kernel of one's own (kernel-dev.sh): its configurations are dev-IOMMU.
if [ -n "$DEV_KERNEL$DEV_SOURCE" ]; then
  . "$LANE_DIR/kernel-dev.sh"
  lane_dev_prepare
elif [ -n "$DEV_MODULES$DEV_KCONFIG$DEV_IOMMUS" ]; then
  echo "--modules, --kernel-config and --iommu go with --kernel" >&2; exit 2
fi
[ ${#CONFIGS[@]} -gt 0 ] || read -r -a CONFIGS <<< "$LANE_CONFIGS"
# Canonical names (7.3-amd -> 7.x-amd; needs the 7.x kernel already set up)
# and the kernel series setup.sh must prepare.
SERIES=()
for i in "${!CONFIGS[@]}"; do
  lane_config "${CONFIGS[$i]}" >/dev/null || exit 2
  CONFIGS[i]=$LANE_CFG_NAME
  case " ${SERIES[*]} " in *" $LANE_CFG_SERIES "*) ;; *) SERIES+=("$LANE_CFG_SERIES") ;; esac
done
if [ -n "$SECTIONS" ] && [ ${#CONFIGS[@]} != 1 ]; then echo "--sections goes with one --config" >&2; exit 2; fi
if [ ${#FIXTURES[@]} -eq 0 ]; then
  FIXTURES=("$LANE_REPO"/Fixtures/*.trace)
fi
for f in "${FIXTURES[@]}"; do [ -f "$f" ] || { echo "no such fixture: $f" >&2; exit 2; }; done

START=$(date +%s)
elapsed() { echo "$(( $(date +%s) - START ))s"; }

# 1. What the guest needs (packages, kernels, modules): quick when present.
# Kernels the lane builds (LANE_BUILT_SERIES) come from build-kernel.sh,
# which builds one when the cache has none (measured 22 min on 2 loaded cores).
if [ "$SETUP" = 1 ]; then
  DEBIAN_SERIES=() BUILT=()
  for s in "${SERIES[@]}"; do
    [ "$s" != dev ] || continue  # a developer's kernel: nothing to fetch
    case " $LANE_BUILT_SERIES " in
      *" $s "*) BUILT+=("$s") ;;
      *) DEBIAN_SERIES+=("$s") ;;
    esac
  done
  if [ ${#DEBIAN_SERIES[@]} -gt 0 ]; then
    "$LANE_DIR/setup.sh" "${DEBIAN_SERIES[@]}" >&2 || lane_die "setup.sh failed"
  fi
  for s in "${BUILT[@]}"; do
    case $s in
      6.12-iommufd) "$LANE_DIR/build-kernel.sh" >&2 || lane_die "build-kernel.sh failed" ;;
      *) lane_die "no builder for kernel series $s" ;;
    esac
  done
fi

# 2. One static vfio-sim for every configuration.
if [ -z "$BINARY" ]; then
  lane_log "building the static vfio-sim ($(elapsed))"
  lane_build_static lane-build.log
  BINARY=$LANE_STATIC_BINARY
fi
[ -x "$BINARY" ] || lane_die "no binary at $BINARY"

# 2b. The kernel's own VFIO selftests, built once from Debian's newest
# source (cached: quick when present).
SELFTESTS=""
if [ "$RUN_SELFTESTS" = 1 ]; then
  lane_log "building the kernel's VFIO selftests ($(elapsed))"
  SELFTESTS=$("$LANE_DIR/build-selftests.sh" 2>"$LANE_CACHE/logs/selftests-build.log") \
    || lane_die "build-selftests.sh failed (log: $LANE_CACHE/logs/selftests-build.log)"
fi

# 3. The fixtures travel in the initramfs under /files, flat.
mkdir -p "$LANE_CACHE/tmp"
WORK=$(mktemp -d "$LANE_CACHE/tmp/lane.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/files"
GUEST_FILES=()
for f in "${FIXTURES[@]}"; do
  name=$(basename "$f")
  [ ! -e "$WORK/files/$name" ] || lane_die "two fixtures named $name"
  cp "$f" "$WORK/files/$name"
  GUEST_FILES+=("/files/$name")
done

# 4. One boot per configuration; the payload finds its groups in
# VFIO_GROUPS. It is a small script: the fixtures, then (sharing the boot)
# the differential exploration.
FAILED=0
VERBOSE_ARG=""
[ "$VERBOSE" = 0 ] || VERBOSE_ARG=--verbose
cp "$BINARY" "$WORK/files/vfio-sim"
cp "$LANE_DIR/host-body.trace" "$WORK/files/host-body.trace"
if [ -n "$SELFTESTS" ]; then
  mkdir -p "$WORK/files/selftests"
  cp "$SELFTESTS/programs" "$WORK/files/selftests/programs"
  while read -r p; do cp "$SELFTESTS/$p" "$WORK/files/selftests/$p"; done < "$SELFTESTS/programs"
fi
PAYLOAD="$WORK/payload.sh"
# A configuration whose container is not type1 (6.12-iommufd) passes it to
# the replay (and the exploration) as --container KIND through
# VFIO_LANE_CONTAINER, when this vfio-sim has that option; otherwise it runs
# as type1 on that kernel, and the summary says so.
HAS_CONTAINER_REPLAY=0 HAS_CONTAINER_EXPLORE=0
"$BINARY" help replay 2>/dev/null | grep -q -- '--container' && HAS_CONTAINER_REPLAY=1
"$BINARY" help explore 2>/dev/null | grep -q -- '--container' && HAS_CONTAINER_EXPLORE=1
# The lane's lines are computed by `vfio-sim lane-summary` from the reports
# the guest writes (replay --lane-report, explore --report, host --report):
# this script parses none of what the guest prints.
"$BINARY" help lane-summary >/dev/null 2>&1 || lane_die "$BINARY has no lane-summary command (build one from this tree)"
# Each report the guest writes follows a `== NAME` line (LaneStream).
{
  echo '#!/bin/busybox sh'
  # No address-space randomisation: the fixtures map memory at fixed
  # addresses (0x7f0000000000 and up), and a randomised mmap base could put
  # the replaying process's own mappings there (mmap EEXIST, seen once on
  # 6.12-virtio, 2026-12-08).
  echo 'echo 0 > /proc/sys/kernel/randomize_va_space'
  echo 'C=""; [ -z "$VFIO_LANE_CONTAINER" ] || C="--container $VFIO_LANE_CONTAINER"'
  if [ "$HAS_CONTAINER_REPLAY" = 1 ]; then R='$C'; else R=""; fi
  echo "/files/vfio-sim replay --backend both --allow-module-params $R $VERBOSE_ARG --lane-report /tmp/fixtures.report ${GUEST_FILES[*]}"
  echo 'rc=$?'
  echo "echo '== fixtures report'; cat /tmp/fixtures.report 2>/dev/null"
  # The kernel's own log, in which the lines the model predicted for the
  # fixtures' answers (the RLIMIT_MEMLOCK warning, ...) are looked for.
  echo "echo '== dmesg'; dmesg"
  if [ -n "$EXPLORE" ]; then
    read -r runs ops seed <<< "$EXPLORE"
    echo "echo '== explore'"
    if [ "$HAS_CONTAINER_EXPLORE" = 1 ]; then X='$C'; else X=""; fi
    # Its report (ExploreReport) is the exploration's result: lane-summary
    # prints it, job.sh keeps it, and merge.sh adds the shards of one
    # configuration with `lane-summary merged-exploration`.
    echo "/files/vfio-sim explore --backend both --allow-module-params $X --runs $runs --ops $ops --seed $seed --report /tmp/explore.report"
    echo 'e=$?; [ "$rc" = 0 ] && rc=$e'
    echo "echo '== explore report'; cat /tmp/explore.report 2>/dev/null"
  fi
  # The configuration's own exploration (VFIO_LANE_EXPLORE_MORE: RUNS OPS
  # SEED...), with its container, one run per seed.
  echo 'if [ -n "$VFIO_LANE_EXPLORE_MORE" ]; then'
  echo '  set -- $VFIO_LANE_EXPLORE_MORE; runs=$1; ops=$2; shift 2'
  echo '  for s in "$@"; do'
  echo '    echo "== explore"'
  echo '    /files/vfio-sim explore --backend both --allow-module-params $C --runs $runs --ops $ops --seed $s --report /tmp/explore-more.report'
  echo '    e=$?; [ "$rc" = 0 ] && rc=$e'
  echo '    echo "== explore more report"; cat /tmp/explore-more.report 2>/dev/null; rm -f /tmp/explore-more.report'
  echo '  done'
  echo 'fi'

  # The machine as `vfio-sim host --probe` sees it, then that prologue
  # with a body of operations replayed on both backends.
  echo "echo '== host'"
  echo '/files/vfio-sim host --probe --report /tmp/host.report > /tmp/host.trace; h=$?; cat /tmp/host.trace'
  echo "echo '== host report'; cat /tmp/host.report 2>/dev/null"
  echo 'cat /tmp/host.trace /files/host-body.trace > /tmp/host-prologue.trace'
  echo "echo '== host replay'"
  echo "/files/vfio-sim replay --backend both --allow-module-params $VERBOSE_ARG --lane-report /tmp/host-replay.report /tmp/host-prologue.trace"
  echo 'e=$?; [ "$rc" = 0 ] && rc=$e; [ "$h" = 0 ] || rc=1'
  echo "echo '== host replay report'; cat /tmp/host-replay.report 2>/dev/null"
  # The kernel's own VFIO selftests (build-selftests.sh), each program
  # under `vfio-sim record` on the first device (edu: its 1 MiB BAR is the
  # MMIO test's; the selftest library cannot open ivshmem, whose 256-byte
  # register BAR makes its aligned mmap fail, docs/LANE.md), each recording
  # replayed on the model. The facts say which cases can apply
  # (lane-summary decides, SelftestScope).
  if [ -n "$SELFTESTS" ]; then
    echo 'if [ -d /files/selftests ]; then'
    echo '  echo "== selftest facts"'
    echo '  echo "release=$(uname -r) iommufd=$([ -c /dev/iommu ] && echo yes || echo no) cdev=$([ -d /dev/vfio/devices ] && echo yes || echo no)"'
    echo '  for p in $(cat /files/selftests/programs); do'
    echo '    VFIO_SELFTESTS_BDF=$VFIO_DEVICE /files/vfio-sim record --out /tmp/st-$p.trace -- /files/selftests/$p > /tmp/st-$p.tap 2>&1'
    echo '    echo "== selftest $p"; cat /tmp/st-$p.tap'
    echo '    for t in /tmp/st-$p.trace /tmp/st-$p.trace.*; do'
    echo '      [ -f "$t" ] || continue'
    echo '      /files/vfio-sim replay --lane-report /tmp/st.tally "$t" > /dev/null 2>&1'
    echo '      echo "== selftest $p tally"; cat /tmp/st.tally 2>/dev/null; rm -f /tmp/st.tally'
    echo '    done'
    echo '  done'
    echo 'fi'
  fi
  echo 'exit $rc'
} > "$PAYLOAD"
chmod 755 "$PAYLOAD"
for c in "${CONFIGS[@]}"; do
  lane_log "booting $c ($(elapsed))"
  REPORT="$LANE_CACHE/logs/lane-$c.txt"
  # `check ptes=` is answered by iommu-walk.py on the host, which reads
  # the guest's VT-d or AMD-Vi tables through the QEMU monitor, or
  # virtio-iommu's mappings from QEMU's trace of the driver's MAP and UNMAP
  # requests; the guest asks it over a second serial port (ttyS1).
  WALK_ARGS=() WALK_PID="" CONTAINER_ARGS=() CONTAINER_NOTE=""
  lane_config "$c"
  if [ "$LANE_CFG_CONTAINER" != type1 ]; then
    if [ "$HAS_CONTAINER_REPLAY" = 1 ]; then
      CONTAINER_ARGS=(--env "VFIO_LANE_CONTAINER=$LANE_CFG_CONTAINER")
      if [ "$HAS_CONTAINER_EXPLORE" = 1 ] && [ -n "$LANE_CFG_EXPLORE_MORE" ]; then
        CONTAINER_ARGS+=(--env "VFIO_LANE_EXPLORE_MORE=$LANE_CFG_EXPLORE_MORE")
      fi
    else
      CONTAINER_NOTE="  (this vfio-sim has no replay --container: the fixtures ran with type1's container on this kernel, not $LANE_CFG_CONTAINER)"
    fi
  fi
  if [ "$PTES" = 1 ]; then
    sockets=$(mktemp -d /tmp/vfiosim-walk.XXXXXX)
    : > "$LANE_CACHE/logs/lane-$c-walk.log"
    : > "$sockets/trace.log"
    python3 "$LANE_DIR/iommu-walk.py" --monitor "$sockets/mon.sock" --serial "$sockets/ptes.sock" \
      --trace-log "$sockets/trace.log" --timeout 900 --log "$LANE_CACHE/logs/lane-$c-walk.log" &
    WALK_PID=$!
    WALK_ARGS=(--qemu-arg -monitor --qemu-arg "unix:$sockets/mon.sock,server=on,wait=off"
               --qemu-arg -serial --qemu-arg "unix:$sockets/ptes.sock,server=on,wait=off"
               --env VFIO_LANE_PTES=/dev/ttyS1)
    if [[ $c == *-virtio ]]; then
      for event in map unmap_done attach detach put_domain; do
        WALK_ARGS+=(--qemu-arg -trace --qemu-arg "enable=virtio_iommu_$event")
      done
      WALK_ARGS+=(--qemu-arg -D --qemu-arg "$sockets/trace.log")
    fi
  fi
  rc=0
  # KVM where a test boot of this kernel under it works (cached), else TCG.
  ACCEL=$("$LANE_DIR/kvm-probe.sh" "$c") || ACCEL=tcg
  # Two 1G hugepages: a fixture maps 2G of them.
  "$LANE_DIR/run-in-guest.sh" --config "$c" --accel "$ACCEL" --binary "$PAYLOAD" --files "$WORK/files" --timeout 600 --hugepages-1g 2 "${WALK_ARGS[@]}" "${CONTAINER_ARGS[@]}" \
    > "$REPORT" 2> "$WORK/stderr" || rc=$?
  if [ -n "$WALK_PID" ]; then
    # It ends when QEMU closes the serial socket; it is never needed after.
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$WALK_PID" 2>/dev/null || break; sleep 0.2; done
    kill "$WALK_PID" 2>/dev/null || true
    wait "$WALK_PID" 2>/dev/null || true
    rm -rf "$sockets"
  fi
  # The explorations the boot was to run: each must be clean.
  n_wanted=0
  [ -z "$EXPLORE" ] || n_wanted=1
  if [ "$HAS_CONTAINER_EXPLORE" = 1 ] && [ "$HAS_CONTAINER_REPLAY" = 1 ] && [ -n "$LANE_CFG_EXPLORE_MORE" ]; then
    read -r -a more <<< "$LANE_CFG_EXPLORE_MORE"
    n_wanted=$(( n_wanted + ${#more[@]} - 2 ))
  fi
  SUMMARY_ARGS=(--config "$c" --iommu "$LANE_CFG_IOMMU_WORD" --accel "$ACCEL" --explorations "$n_wanted"
                --payload-exit "$rc" --stderr "$WORK/stderr")
  [ -z "$CONTAINER_NOTE" ] || SUMMARY_ARGS+=(--note "$CONTAINER_NOTE")
  [ "$VERBOSE" = 0 ] || SUMMARY_ARGS+=(--verbose)
  [ -z "$SECTIONS" ] || SUMMARY_ARGS+=(--sections "$SECTIONS")
  "$BINARY" lane-summary "${SUMMARY_ARGS[@]}" "$REPORT" || FAILED=1
done

# Skipped fixtures and why, once (the version-pinned ones differ per config).
if [ -n "$SKIPPED_LINES" ]; then
  : > "$SKIPPED_LINES"
  for c in "${CONFIGS[@]}"; do
    "$BINARY" lane-summary skipped-lines "$c" "$LANE_CACHE/logs/lane-$c.txt" >> "$SKIPPED_LINES" 2>/dev/null || true
  done
else
  SKIPPED_ARGS=()
  for c in "${CONFIGS[@]}"; do SKIPPED_ARGS+=("$c=$LANE_CACHE/logs/lane-$c.txt"); done
  "$BINARY" lane-summary skipped --configs "${CONFIGS[*]}" "${SKIPPED_ARGS[@]}"
fi

lane_log "done in $(elapsed)"
exit "$FAILED"

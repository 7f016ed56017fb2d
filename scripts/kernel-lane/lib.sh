# shellcheck shell=bash
# shellcheck disable=SC2034,SC2054  # variables are for the sourcing scripts;
#                                   # commas are QEMU option syntax
# Shared definitions for the kernel lane (sourced by setup.sh and run-in-guest.sh).
#
# The lane runs a static binary inside a throw-away QEMU guest whose devices
# (three `edu`, one `ivshmem-plain`) are bound to vfio-pci, so the binary can issue real
# VFIO type1 ioctls against a real kernel. Everything downloaded or built is
# kept under $LANE_CACHE so repeated runs cost only the guest boot.

LANE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LANE_REPO=$(cd "$LANE_DIR/../.." && pwd)
# Outside the clone: CI clones afresh for every run, and the cache (~1.2 GB of
# kernel packages, unpacked kernels, initramfs archives, apt lists) must
# survive between clones. Everything in it is named after what it was made
# from (package names and versions, a hash of the initramfs inputs), so a
# warm run reuses it and an empty or missing directory is rebuilt.
LANE_CACHE=${VFIOSIM_LANE_CACHE:-/var/cache/vfiosim/lane}

# Kernel series: each is the newest Debian package matching a pattern
# (lane_kernel_pattern). "7.x" is symbolic: the newest 7.y Debian ships.
LANE_SERIES="5.10 6.1 6.12 6.18 7.x"

# Every configuration: SERIES-IOMMU. intel = VT-d with QEMU 7.2's default
# 39-bit address width, intel48 = 48 bits, amd = AMD-Vi, virtio =
# virtio-iommu (not in 5.10, nor in Debian's 6.1).
LANE_CONFIGS="5.10-intel 5.10-intel48 5.10-amd
6.1-intel 6.1-amd
6.12-intel 6.12-amd 6.12-virtio
6.18-intel 6.18-amd 6.18-virtio
7.x-intel 7.x-intel48 7.x-amd 7.x-virtio
6.12-iommufd"
# shellcheck disable=SC2086,SC2116  # split and joined again: one line, single spaces
LANE_CONFIGS=$(echo $LANE_CONFIGS)

# The 6.12-iommufd configuration's own exploration: RUNS OPS SEED...
LANE_IOMMUFD_EXPLORE_DEFAULT="700 40 1796672326 1796672326000"

# Kernels the lane builds itself (build-kernel.sh) rather than takes from a
# Debian package: 6.12-iommufd is Debian's linux-source-6.12 with
# CONFIG_IOMMUFD (Debian's kernels have it unset). Its cache key is the
# series name with the suffix; setup.sh does not know it.
LANE_BUILT_SERIES="6.12-iommufd"

# A kernel a developer brings (lane.sh --kernel, import-kernel.sh): the
# directory import-kernel.sh made, laid out like setup.sh's kernels, is in
# LANE_DEV_KERNEL, and the series "dev" is that kernel under every IOMMU
# (dev-intel, dev-intel48, dev-amd, dev-virtio, and dev-iommufd: /dev/iommu
# as the container). Not in LANE_CONFIGS: they exist only while
# LANE_DEV_KERNEL is set.
LANE_DEV_CONFIGS="dev-intel dev-intel48 dev-amd dev-virtio dev-iommufd"

# lane_kernel_dir SERIES: where a series' kernel is (vmlinuz, modules/, deps.txt).
lane_kernel_dir() {
  case $1 in
    dev) echo "${LANE_DEV_KERNEL:?no developer kernel (LANE_DEV_KERNEL; lane.sh --kernel)}" ;;
    *) echo "$LANE_CACHE/kernels/$1" ;;
  esac
}

# Modules every config loads, in the order we want them (their dependencies
# are inserted in front automatically). vfio_iommu_type1 is not a hard
# dependency of anything, so it must be named explicitly or the container
# would have no backend. vfio_pci_core split from vfio_pci in 5.15.
lane_vfio_modules() {
  case $1 in
    5.10) echo "vfio vfio_iommu_type1 vfio_pci" ;;
    # A developer's kernel has vfio_pci_core (5.15 on) when it was collected.
    dev) if grep -q '^vfio_pci_core:' "$(lane_kernel_dir dev)/deps.txt" 2>/dev/null; then
           echo "vfio vfio_iommu_type1 vfio_pci_core vfio_pci"; else echo "vfio vfio_iommu_type1 vfio_pci"; fi ;;
    *)    echo "vfio vfio_iommu_type1 vfio_pci_core vfio_pci" ;;
  esac
}
# The virtio transport is not a dependency of virtio_iommu either: without
# virtio_pci the virtio-iommu-pci device never shows up on the virtio bus.
LANE_VIRTIO_MODULES="virtio_pci virtio_iommu"

# Not loaded by any config: the recording lane's guests (record-lane.sh) load
# them to mount a Debian root filesystem shared over 9p (virtio transport).
# setup.sh collects them with every kernel, from the same package as vfio.
LANE_9P_MODULES="virtio_pci 9pnet_virtio 9p"

# The devices bound to vfio-pci in every guest, in this order (vendor:device;
# every function matching is taken, by PCI address): three `edu` (1234:11e8),
# then one `ivshmem-plain` (1af4:1110) whose BAR2 is a 1 GiB RAM backend.
LANE_DEVICE_IDS="1234:11e8 1af4:1110"
LANE_IVSHMEM_SIZE=${VFIOSIM_LANE_IVSHMEM_SIZE:-1G}
LANE_QEMU_DEVICES=(-device edu -device edu -device edu
                   -object "memory-backend-ram,id=lane-ivshmem,size=$LANE_IVSHMEM_SIZE,share=on"
                   -device ivshmem-plain,memdev=lane-ivshmem)

# lane_kernel_pattern SERIES -> extended regexp for `apt-cache search --names-only`.
# Only the generic flavour: -cloud lacks many drivers, -rt changes timing.
# Where more than one package matches, the newest (sort -V) is taken.
lane_kernel_pattern() {
  case $1 in
    5.10) echo '^linux-image-5\.10\.0-[0-9]+-amd64$' ;;                        # bullseye-security
    6.1)  echo '^linux-image-6\.1\.0-[0-9]+-amd64$' ;;                         # bookworm(-security)
    6.12) echo '^linux-image-6\.12\.[0-9]+\+(deb1[2-9](\.[0-9]+)?|bpo)-amd64$' ;; # bookworm/trixie(-security)
    6.18) echo '^linux-image-6\.18\.[0-9]+\+deb[0-9]+(\.[0-9]+)?-amd64$' ;;    # trixie-backports
    7.x)  echo '^linux-image-7\.[0-9]+\.[0-9]+\+deb[0-9]+(\.[0-9]+)?-amd64$' ;; # trixie-backports
    *) echo "unknown kernel series: $1" >&2; return 1 ;;
  esac
}

# lane_resolve_series NAME: a series as LANE_SERIES spells it. A symbolic
# series may also be named by the major.minor of the kernel cached for it
# (7.3 for 7.x when 7.3.4 is the one prepared).
lane_resolve_series() {
  local s rel
  [ "$1" != dev ] || [ -z "${LANE_DEV_KERNEL:-}" ] || { echo dev; return 0; }
  for s in $LANE_SERIES; do [ "$s" = "$1" ] && { echo "$s"; return 0; }; done
  for s in $LANE_SERIES; do
    case $s in *.x) ;; *) continue ;; esac
    rel=$(cat "$LANE_CACHE/kernels/$s/release" 2>/dev/null || true)
    case $rel in "$1".*) echo "$s"; return 0 ;; esac
  done
  return 1
}

# lane_config NAME: sets the LANE_CFG_* variables describing one configuration.
#   LANE_CFG_NAME       canonical name (7.3-amd becomes 7.x-amd)
#   LANE_CFG_SERIES     kernel series (key into $LANE_CACHE/kernels/)
#   LANE_CFG_IOMMU      intel | intel48 | amd | virtio
#   LANE_CFG_IOMMU_WORD the IOMMU as the summary line names it
#   LANE_CFG_QEMU_IOMMU QEMU arguments adding the IOMMU
#   LANE_CFG_CMDLINE    extra kernel command line
#   LANE_CFG_MODULES    modules to load (dependencies added automatically)
#   LANE_CFG_MODPARAMS  MODULE.PARAM=VALUE words applied at insmod time
#   LANE_CFG_CONTAINER  type1 | iommufd: the container the replay uses
#   LANE_CFG_EXPLORE_MORE  "RUNS OPS SEED..." a further exploration of the
#                       container's own (one per seed) after the common one;
#                       empty for most configurations
lane_config() {
  local series kind
  series=$(lane_resolve_series "${1%-*}") || series=""
  kind=${1##*-}
  LANE_CFG_NAME=$series-$kind
  LANE_CFG_SERIES=$series
  LANE_CFG_IOMMU=$kind
  LANE_CFG_MODPARAMS=""
  LANE_CFG_CONTAINER=type1
  LANE_CFG_EXPLORE_MORE=""
  local known=$LANE_CONFIGS
  [ -z "${LANE_DEV_KERNEL:-}" ] || known="$known $LANE_DEV_CONFIGS"
  case " $known " in
    *" $LANE_CFG_NAME "*) ;;
    *) echo "unknown config '$1' (known: $known)" >&2; return 1 ;;
  esac
  case $kind in
    intel|intel48)
      # caching-mode=on makes the vIOMMU tell the guest to flush on every map,
      # which QEMU needs to shadow mappings; intremap gives MSI isolation, so
      # type1 accepts the group without allow_unsafe_interrupts.
      local aw=39
      [ "$kind" = intel ] || aw=48
      LANE_CFG_QEMU_IOMMU=(-device "intel-iommu,intremap=on,caching-mode=on,aw-bits=$aw")
      LANE_CFG_CMDLINE="intel_iommu=on"
      LANE_CFG_MODULES=$(lane_vfio_modules "$series")
      LANE_CFG_IOMMU_WORD=intel-iommu
      [ "$aw" = 39 ] || LANE_CFG_IOMMU_WORD=intel-iommu-48
      ;;
    amd)
      # AMD-Vi needs q35 and, for interrupt remapping, kernel-irqchip=split
      # (run-in-guest.sh always gives both). The kernel enables it without
      # a command line option (amd_iommu=on is not one: "Unknown option").
      LANE_CFG_QEMU_IOMMU=(-device amd-iommu,intremap=on)
      LANE_CFG_CMDLINE=""
      LANE_CFG_MODULES=$(lane_vfio_modules "$series")
      LANE_CFG_IOMMU_WORD=amd-iommu
      # 7.x finds no southbridge IOAPIC in QEMU 7.2's IVRS and turns
      # interrupt remapping off ("Disabling interrupt remapping"): without
      # MSI isolation SET_IOMMU is EPERM unless unsafe interrupts are
      # allowed. 5.10 to 6.18 enable remapping and need no such thing.
      case $series in
        7.x) LANE_CFG_MODPARAMS="vfio_iommu_type1.allow_unsafe_interrupts=1" ;;
      esac
      ;;
    virtio)
      LANE_CFG_QEMU_IOMMU=(-device virtio-iommu-pci)
      LANE_CFG_CMDLINE=""
      LANE_CFG_MODULES="$LANE_VIRTIO_MODULES $(lane_vfio_modules "$series")"
      LANE_CFG_IOMMU_WORD=virtio-iommu
      # virtio-iommu provides no MSI isolation: without this SET_IOMMU is EPERM.
      LANE_CFG_MODPARAMS="vfio_iommu_type1.allow_unsafe_interrupts=1"
      ;;
    iommufd)
      # The lane's own 6.12 with CONFIG_IOMMUFD (build-kernel.sh), under
      # the same VT-d as SERIES-intel; the replay opens /dev/iommu as the
      # container (--container iommufd) where vfio-sim knows that flag.
      [ "$series" = dev ] || LANE_CFG_SERIES=$series-iommufd
      LANE_CFG_QEMU_IOMMU=(-device "intel-iommu,intremap=on,caching-mode=on,aw-bits=39")
      LANE_CFG_CMDLINE="intel_iommu=on"
      LANE_CFG_MODULES="iommufd $(lane_vfio_modules "$series")"
      LANE_CFG_IOMMU_WORD=iommufd
      LANE_CFG_CONTAINER=iommufd
      # iommufd's own exploration (explore --container iommufd --backend
      # both): seeds derived from `date +%s` when it was added (issue 28),
      # not chosen; sized to about 4 minutes of guest time (measured: see
      # docs/IOMMUFD.md). LANE_IOMMUFD_EXPLORE overrides it ("" = none).
      LANE_CFG_EXPLORE_MORE=${LANE_IOMMUFD_EXPLORE-"$LANE_IOMMUFD_EXPLORE_DEFAULT"}
      ;;
  esac
}

lane_log() { echo "kernel-lane: $*" >&2; }
lane_die() { echo "kernel-lane: error: $*" >&2; exit "${LANE_DIE_CODE:-1}"; }

# lane_source_deb PKG VERSION: the path of Debian's source package PKG at
# VERSION in $LANE_CACHE/src (kept apart from debs/, which setup.sh
# prunes), downloaded through the lane's apt configuration when missing.
# Shared by build-kernel.sh and build-selftests.sh.
lane_source_deb() {
  local pkg=$1 ver=$2 deb
  deb="$LANE_CACHE/src/${pkg}_${ver//:/%3a}_all.deb"
  mkdir -p "$LANE_CACHE/src"
  if [ ! -f "$deb" ]; then
    lane_log "downloading $pkg $ver"
    (cd "$LANE_CACHE/src" && APT_CONFIG="$LANE_CACHE/apt/apt.conf" apt-get download -qq "$pkg=$ver" >/dev/null 2>&1) ||
      lane_die "download of $pkg $ver failed"
    [ -f "$deb" ] || lane_die "apt-get download did not produce $deb"
  fi
  echo "$deb"
}

# The fully static vfio-sim the guests run, built into .build-lane (quick
# when nothing changed); sets LANE_STATIC_BINARY. $1: the build log's name
# under $LANE_CACHE/logs. Shared by lane.sh and record-lane.sh.
lane_build_static() {
  local log="$LANE_CACHE/logs/$1"
  if ! command -v swift >/dev/null; then
    [ -x /opt/swift/usr/bin/swift ] || lane_die "swift not found (PATH or /opt/swift/usr/bin)"
    PATH=/opt/swift/usr/bin:$PATH
  fi
  mkdir -p "$LANE_CACHE/logs"
  if ! (cd "$LANE_REPO" && swift build -c release --scratch-path .build-lane \
          -Xswiftc -static-executable --product vfio-sim) > "$log" 2>&1; then
    tail -n 30 "$log" >&2
    lane_die "building the static vfio-sim failed (log: $log)"
  fi
  LANE_STATIC_BINARY="$LANE_REPO/.build-lane/release/vfio-sim"
}

# lane_collect_modules OUT LIST BUILTIN "REQUIRED" "OPTIONAL": copies the
# named modules and every module they depend on (modinfo) from LIST (a file
# of .ko paths, .ko.xz/.zst/.gz too) to OUT/modules/NAME.ko, uncompressed,
# and writes OUT/deps.txt ("name: deps", "name: builtin" for one in the
# BUILTIN file, modules.builtin) and OUT/module-files. A required module
# that is neither built nor built in is an error; an optional one is left
# out. Shared by build-kernel.sh (Debian's source) and import-kernel.sh (a
# developer's kernel).
lane_collect_modules() {
  local out=$1 list=$2 builtin=$3 m f deps d
  local -A files=() seen=() optional=()
  local -a queue=()
  while IFS= read -r f; do
    m=$(basename "$f"); m=${m%%.ko*}; m=${m//-/_}
    files[$m]=$f
  done < "$list"
  read -r -a queue <<< "$4"
  for m in $5; do optional[$m]=1; queue+=("$m"); done
  mkdir -p "$out/modules"
  : > "$out/deps.txt"; : > "$out/module-files"
  while [ ${#queue[@]} -gt 0 ]; do
    m=${queue[0]//-/_}; queue=("${queue[@]:1}")
    [ -z "${seen[$m]:-}" ] || continue
    seen[$m]=1
    if [ -z "${files[$m]:-}" ]; then
      if [ -f "$builtin" ] && grep -qE "(^|/)(${m}|${m//_/-})\.ko\$" "$builtin"; then
        echo "$m: builtin" >> "$out/deps.txt"; continue
      fi
      [ -n "${optional[$m]:-}" ] && continue
      lane_die "module $m is neither built nor built in"
    fi
    f=${files[$m]}
    case $f in
      *.ko.xz) xz -dc "$f" > "$out/modules/$m.ko" ;;
      *.ko.zst) zstd -qdc "$f" > "$out/modules/$m.ko" ;;
      *.ko.gz) gzip -dc "$f" > "$out/modules/$m.ko" ;;
      *) cp "$f" "$out/modules/$m.ko" ;;
    esac || lane_die "cannot copy module $f"
    echo "$m $f" >> "$out/module-files"
    deps=$(modinfo -F depends "$out/modules/$m.ko" | tr ',' ' ')
    echo "$m: $deps" | sed 's/ *$//' >> "$out/deps.txt"
    for d in $deps; do queue+=("$d"); done
  done
}

#!/usr/bin/env bash
# Takes a kernel a developer built into the lane's cache, laid out like
# setup.sh's kernels, after checking its configuration for what the lane's
# guest needs (lane.sh --kernel runs it).
#
# Usage: scripts/kernel-lane/import-kernel.sh [--iommu LIST] [--modules DIR] [--kernel-config FILE] KERNEL
#   KERNEL           a built kernel tree (arch/x86/boot/bzImage, its .config,
#                    include/config/kernel.release, the .ko files in the tree),
#                    or a bzImage with --modules, or a directory setup.sh or
#                    build-kernel.sh made (vmlinuz, config, modules/, deps.txt)
#   --modules DIR    the modules of a bzImage: `make modules_install
#                    INSTALL_MOD_PATH=DIR` (DIR/lib/modules/RELEASE/...) or
#                    any directory holding the .ko (.ko.xz, .ko.zst, .ko.gz)
#   --kernel-config FILE
#                    the .config of a bzImage (default: DIR/lib/modules/REL/
#                    config, `config` or `config-REL` beside the bzImage)
#   --iommu LIST     the IOMMUs to check for, comma separated, from intel,
#                    intel48, amd, virtio, iommufd; the default is every one
#                    whose options the kernel has (those left out are named)
#
# Prints on stdout `dir=DIR` (the imported kernel: $LANE_CACHE/dev/KEY,
# KEY a hash of the image and the modules; outside kernels/, which
# setup.sh prunes), `release=REL` and
# `iommus=LIST`; on stderr each missing option with what needs it. Exit 1
# when an option every configuration needs is missing, or one an IOMMU
# named in --iommu needs; 2 on usage.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2; }

KERNEL="" MODDIR="" KCONFIG="" IOMMUS=""
while [ $# -gt 0 ]; do
  case $1 in
    --iommu) IOMMUS=${2:?}; shift 2 ;;
    --modules) MODDIR=${2:?}; shift 2 ;;
    --kernel-config) KCONFIG=${2:?}; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) [ -z "$KERNEL" ] || usage; KERNEL=$1; shift ;;
  esac
done
[ -n "$KERNEL" ] || usage
[ -e "$KERNEL" ] || { echo "no such kernel: $KERNEL" >&2; exit 2; }
IOMMUS=${IOMMUS//,/ }
for i in $IOMMUS; do
  case $i in intel|intel48|amd|virtio|iommufd) ;; *) echo "unknown IOMMU '$i' (intel, intel48, amd, virtio, iommufd)" >&2; exit 2 ;; esac
done

mkdir -p "$LANE_CACHE/tmp" "$LANE_CACHE/dev"
WORK=$(mktemp -d "$LANE_CACHE/tmp/import.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# 1. What the kernel is: image, release, .config, the modules it has.
BUILTIN="" LANE_DIR_KERNEL=""
if [ -f "$KERNEL/.complete" ] && [ -f "$KERNEL/vmlinuz" ]; then
  LANE_DIR_KERNEL=$(cd "$KERNEL" && pwd)
  IMAGE=$LANE_DIR_KERNEL/vmlinuz RELEASE=$(cat "$KERNEL/release") KCONFIG=${KCONFIG:-$KERNEL/config}
elif [ -d "$KERNEL" ]; then
  IMAGE=$KERNEL/arch/x86/boot/bzImage
  [ -f "$IMAGE" ] || lane_die "$KERNEL has no arch/x86/boot/bzImage: build it (make bzImage modules), or use lane.sh --kernel-source"
  [ -f "$KERNEL/include/config/kernel.release" ] || lane_die "$KERNEL has no include/config/kernel.release"
  RELEASE=$(cat "$KERNEL/include/config/kernel.release")
  KCONFIG=${KCONFIG:-$KERNEL/.config}
  MODDIR=${MODDIR:-$KERNEL}
  BUILTIN=$KERNEL/modules.builtin
else
  IMAGE=$KERNEL
  [ -n "$MODDIR" ] || lane_die "a bzImage needs --modules DIR (make modules_install INSTALL_MOD_PATH=DIR)"
  [ -d "$MODDIR" ] || lane_die "no such directory: $MODDIR"
  rels=$(find "$MODDIR" -path '*/lib/modules/*' -maxdepth 3 -mindepth 3 -type d -printf '%f\n' 2>/dev/null | sort -u)
  if [ "$(echo "$rels" | grep -c .)" = 1 ]; then
    RELEASE=$rels
  else
    # "Linux kernel x86 boot executable bzImage, version 6.12.118 (...) ..."
    RELEASE=$(file -b "$IMAGE" | sed -nE 's/.*version ([^ ,]+).*/\1/p')
  fi
  [ -n "$RELEASE" ] || lane_die "cannot tell the release of $IMAGE (no lib/modules/REL under $MODDIR, and file(1) names none)"
  for c in "$KCONFIG" "$MODDIR/lib/modules/$RELEASE/config" "$(dirname "$IMAGE")/config" "$(dirname "$IMAGE")/config-$RELEASE"; do
    [ -n "$c" ] && [ -f "$c" ] && { KCONFIG=$c; break; }
  done
  BUILTIN=$(find "$MODDIR" -name modules.builtin 2>/dev/null | head -n1)
fi
[ -f "$IMAGE" ] || lane_die "no kernel image at $IMAGE"
lane_log "kernel $RELEASE: $IMAGE"

# 2. The options the guest uses, each with what needs it.
declare -A WHY=(
  [BLK_DEV_INITRD]="the guest is an initramfs"
  [BINFMT_ELF]="the payload is a static ELF binary"
  [BINFMT_SCRIPT]="/init and the lane's payload are scripts"
  [SERIAL_8250_CONSOLE]="results come back on the ttyS0 console"
  [DEVTMPFS]="/init mounts devtmpfs (/dev/vfio/N)"
  [PROC_FS]="/init mounts /proc"
  [SYSFS]="/init binds devices through /sys"
  [HUGETLBFS]="fixtures map 2M and 1G hugetlbfs pages"
  [PROC_PAGE_MONITOR]="the kernel backend reads physical frames from /proc/self/pagemap"
  [PCI]="the edu and ivshmem devices are PCI"
  [PCI_MSI]="vfio-pci and interrupt remapping"
  [VFIO]="the group and container nodes"
  [VFIO_PCI]="the devices are bound to vfio-pci"
  [VFIO_IOMMU_TYPE1]="the type1 container every configuration uses"
  [VFIO_GROUP]="/dev/vfio/N (6.2 on)"
  [VFIO_CONTAINER]="type1's /dev/vfio/vfio (6.2 on)"
  [ACPI]="the IOMMU is found through the DMAR/IVRS tables"
  [INTEL_IOMMU]="VT-d (intel, intel48, iommufd configurations)"
  [AMD_IOMMU]="AMD-Vi (amd configuration)"
  [IRQ_REMAP]="MSI isolation: without it type1 refuses the group (EPERM) unless allow_unsafe_interrupts"
  [VIRTIO_PCI]="the virtio-iommu-pci device's transport"
  [VIRTIO_IOMMU]="virtio-iommu (virtio configuration)"
  [IOMMUFD]="/dev/iommu (iommufd configuration)"
)
COMMON="BLK_DEV_INITRD BINFMT_ELF BINFMT_SCRIPT SERIAL_8250_CONSOLE DEVTMPFS PROC_FS SYSFS HUGETLBFS PROC_PAGE_MONITOR PCI PCI_MSI VFIO VFIO_PCI VFIO_IOMMU_TYPE1 VFIO_GROUP VFIO_CONTAINER"
iommu_needs() {
  case $1 in
    intel|intel48) echo "ACPI INTEL_IOMMU IRQ_REMAP" ;;
    amd) echo "ACPI AMD_IOMMU IRQ_REMAP" ;;
    virtio) echo "VIRTIO_PCI VIRTIO_IOMMU" ;;
    iommufd) echo "ACPI INTEL_IOMMU IRQ_REMAP IOMMUFD" ;;
  esac
}
# set: =y or =m. A symbol of a newer kernel (VFIO_GROUP, VFIO_CONTAINER) is
# only missing when the .config knows it ("is not set").
has() {
  grep -qE "^CONFIG_$1=[ym]\$" "$KCONFIG" && return 0
  case $1 in VFIO_GROUP|VFIO_CONTAINER) ! grep -q "^# CONFIG_$1 is not set" "$KCONFIG" ;; *) return 1 ;; esac
}
missing_of() { local o out=""; for o in $1; do has "$o" || out="$out $o"; done; echo "${out# }"; }

CHOSEN=$IOMMUS
if [ -z "$KCONFIG" ] || [ ! -f "$KCONFIG" ]; then
  lane_log "warning: no .config for $IMAGE (--kernel-config FILE): the options the lane needs are not checked"
  IOMMUS=${IOMMUS:-intel}
else
  bad=0
  for o in $(missing_of "$COMMON"); do lane_log "$KCONFIG lacks CONFIG_$o: ${WHY[$o]}"; bad=1; done
  if grep -q '^CONFIG_IOMMUFD_VFIO_CONTAINER=y' "$KCONFIG"; then
    lane_log "note: CONFIG_IOMMUFD_VFIO_CONTAINER=y: /dev/vfio/vfio is iommufd's, so the type1 configurations test iommufd's compatibility layer"
  fi
  ok=""
  for i in ${CHOSEN:-intel intel48 amd virtio iommufd}; do
    m=$(missing_of "$(iommu_needs "$i")")
    if [ -z "$m" ]; then ok="$ok $i"; continue; fi
    for o in $m; do
      if [ -n "$CHOSEN" ]; then lane_log "$KCONFIG lacks CONFIG_$o, which $i needs: ${WHY[$o]}"; bad=1
      else lane_log "not running $i: $KCONFIG lacks CONFIG_$o (${WHY[$o]})"; fi
    done
  done
  [ "$bad" = 0 ] || lane_die "the kernel lacks options the lane needs (above); scripts/kernel-lane/kernel-iommufd.config has those of every configuration and of intel and iommufd (lane.sh --kernel-source builds with it)"
  IOMMUS=${ok# }
  [ -n "$IOMMUS" ] || lane_die "no IOMMU configuration can run on this kernel (above)"
fi

# 3. The lane's layout, keyed by the image and the modules.
if [ -n "$LANE_DIR_KERNEL" ]; then
  OUT=$LANE_DIR_KERNEL
else
  find "$MODDIR" \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \) -type f > "$WORK/ko-files"
  STAGE="$WORK/kernel"
  mkdir -p "$STAGE"
  lane_collect_modules "$STAGE" "$WORK/ko-files" "$BUILTIN" "vfio vfio_iommu_type1 vfio_pci" \
    "vfio_pci_core iommufd virtio_pci virtio_iommu"
  KEY=$( { sha256sum "$IMAGE" | cut -d' ' -f1; echo "$RELEASE"; cat "$STAGE/deps.txt"; sha256sum "$STAGE"/modules/*.ko | cut -d' ' -f1; } | sha256sum | cut -c1-12)
  OUT="$LANE_CACHE/dev/$KEY"
  if [ ! -f "$OUT/.complete" ]; then
    cp "$IMAGE" "$STAGE/vmlinuz"
    [ -z "$KCONFIG" ] || [ ! -f "$KCONFIG" ] || cp "$KCONFIG" "$STAGE/config"
    echo "$RELEASE" > "$STAGE/release"
    echo "dev $(cd "$(dirname "$KERNEL")" && pwd)/$(basename "$KERNEL") $KEY" > "$STAGE/package"
    touch "$STAGE/.complete"
    rm -rf "$OUT"
    mv "$STAGE" "$OUT"
  fi
  # Older imports are dead weight (a tree rebuilt makes a new key).
  for d in "$LANE_CACHE"/dev/*; do
    [ "$d" = "$OUT" ] || [ ! -d "$d" ] || rm -rf "$d"
  done
fi
lane_log "kernel $RELEASE ready in $OUT; modules: $(cut -d: -f1 "$OUT/deps.txt" | tr '\n' ' ')"
echo "dir=$OUT"
echo "release=$RELEASE"
echo "iommus=$IOMMUS"

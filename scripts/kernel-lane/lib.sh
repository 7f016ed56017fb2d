# shellcheck shell=bash
# shellcheck disable=SC2034,SC2054  # variables are for the sourcing scripts;
#                                   # commas are QEMU option syntax
# Shared definitions for the kernel lane (sourced by setup.sh and run-in-guest.sh).
#
# The lane runs a static binary inside a throw-away QEMU guest whose `edu`
# PCI device (1234:11e8) is bound to vfio-pci, so the binary can issue real
# VFIO type1 ioctls against a real kernel. Everything downloaded or built is
# kept under $LANE_CACHE so repeated runs cost only the guest boot.

LANE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LANE_REPO=$(cd "$LANE_DIR/../.." && pwd)
# Overridable so that CI (which works in a fresh clone each time) can keep the
# ~200 MB of kernel packages somewhere that survives between clones.
LANE_CACHE=${VFIOSIM_LANE_CACHE:-$LANE_REPO/.lane-cache}

LANE_CONFIGS="6.1-intel 6.12-intel 6.12-virtio"

# Modules every config loads, in the order we want them (their dependencies
# are inserted in front automatically). vfio_iommu_type1 is not a hard
# dependency of anything, so it must be named explicitly or the container
# would have no backend.
LANE_VFIO_MODULES="vfio vfio_iommu_type1 vfio_pci_core vfio_pci"
# The virtio transport is not a dependency of virtio_iommu either: without
# virtio_pci the virtio-iommu-pci device never shows up on the virtio bus.
LANE_VIRTIO_MODULES="virtio_pci virtio_iommu"

# lane_kernel_pattern SERIES -> extended regexp for `apt-cache search --names-only`.
# Only the generic signed flavour: -cloud lacks many drivers, -rt changes timing.
lane_kernel_pattern() {
  case $1 in
    6.1)  echo '^linux-image-6\.1\.0-[0-9]+-amd64$' ;;
    6.12) echo '^linux-image-6\.12\.[0-9]+\+(deb12|bpo)-amd64$' ;;
    *) echo "unknown kernel series: $1" >&2; return 1 ;;
  esac
}

# lane_config NAME: sets the LANE_CFG_* variables describing one configuration.
#   LANE_CFG_SERIES     kernel series (key into .lane-cache/kernels/)
#   LANE_CFG_QEMU_IOMMU QEMU arguments adding the IOMMU
#   LANE_CFG_CMDLINE    extra kernel command line
#   LANE_CFG_MODULES    modules to load (dependencies added automatically)
#   LANE_CFG_MODPARAMS  MODULE.PARAM=VALUE words applied at insmod time
lane_config() {
  LANE_CFG_NAME=$1
  case $1 in
    6.1-intel|6.12-intel)
      LANE_CFG_SERIES=${1%%-*}
      # caching-mode=on makes the vIOMMU tell the guest to flush on every map,
      # which QEMU needs to shadow mappings; intremap gives MSI isolation, so
      # type1 accepts the group without allow_unsafe_interrupts.
      LANE_CFG_QEMU_IOMMU=(-device intel-iommu,intremap=on,caching-mode=on)
      LANE_CFG_CMDLINE="intel_iommu=on"
      LANE_CFG_MODULES=$LANE_VFIO_MODULES
      LANE_CFG_MODPARAMS=""
      ;;
    6.12-virtio)
      LANE_CFG_SERIES=6.12
      LANE_CFG_QEMU_IOMMU=(-device virtio-iommu-pci)
      LANE_CFG_CMDLINE=""
      LANE_CFG_MODULES="$LANE_VIRTIO_MODULES $LANE_VFIO_MODULES"
      # virtio-iommu provides no MSI isolation: without this SET_IOMMU is EPERM.
      LANE_CFG_MODPARAMS="vfio_iommu_type1.allow_unsafe_interrupts=1"
      ;;
    *)
      echo "unknown config '$1' (known: $LANE_CONFIGS)" >&2
      return 1
      ;;
  esac
}

lane_log() { echo "kernel-lane: $*" >&2; }
lane_die() { echo "kernel-lane: error: $*" >&2; exit "${LANE_DIE_CODE:-1}"; }

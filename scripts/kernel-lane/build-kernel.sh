#!/usr/bin/env bash
# Builds the lane's own kernel: Debian's linux-source-6.12 with
# CONFIG_IOMMUFD (/dev/iommu) next to type1's /dev/vfio/vfio, in a small
# configuration (kernel-iommufd.config on top of allnoconfig), for the
# lane configuration 6.12-iommufd (lib.sh). Debian's own 6.12 kernels have
# CONFIG_IOMMUFD unset.
#
# Usage: scripts/kernel-lane/build-kernel.sh [--force] [--jobs N]
#        scripts/kernel-lane/build-kernel.sh --source TREE [--jobs N]
#   --force        build again even when the cache has this kernel
#   --jobs N       make -jN (default: the number of CPUs)
#   --source TREE  configure and build a developer's kernel tree in place
#                  instead (lane.sh --kernel-source): the same fragment on
#                  allnoconfig, the same check that every line took, then
#                  `make bzImage modules` (incremental when the tree was
#                  built before); the tree's old .config is kept as
#                  .config.lane-saved. Nothing is cached: lane.sh --kernel
#                  TREE takes the result.
#
# The source package is the one of Debian's lane kernel 6.12 (same version
# as $LANE_CACHE/kernels/6.12, so the two kernels' answers can be compared;
# the newest linux-source-6.12 when that version is gone), fetched through
# the lane's own apt configuration (setup.sh 6.12 prepares it). The result
# is cached in $LANE_CACHE/built/linux-source-6.12_VERSION-KEY (KEY: a hash
# of the configuration fragment and the compiler), laid out like setup.sh's
# kernels (vmlinuz, config, release, package, deps.txt, modules/*.ko), and
# $LANE_CACHE/kernels/6.12-iommufd points at it. A cached build is reused;
# otherwise it is built (nice, ~11-25 min on 2 shared cores) and the build
# time is printed and kept in build-seconds.
#
# Runs as root (host packages: gcc make flex bison bc libelf-dev).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set -E
trap 'lane_log "build-kernel failed at line $LINENO: $BASH_COMMAND"' ERR

FORCE=0 JOBS=$(nproc) TREE=""
while [ $# -gt 0 ]; do
  case $1 in
    --force) FORCE=1; shift ;;
    --jobs) JOBS=${2:?}; shift 2 ;;
    --source) TREE=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) lane_die "unknown argument: $1" ;;
  esac
done

SERIES=6.12-iommufd
BASE_SERIES=6.12
SRC_PKG=linux-source-6.12
FRAGMENT="$LANE_DIR/kernel-iommufd.config"
# What the guest loads (dependencies are added from modinfo).
MODULES="iommufd vfio vfio_iommu_type1 vfio_pci_core vfio_pci"
BUILD_PACKAGES="gcc make flex bison bc libelf-dev xz-utils kmod"

[ -f "$FRAGMENT" ] || lane_die "missing $FRAGMENT"
export DEBIAN_FRONTEND=noninteractive

# Configuration: allnoconfig + the fragment, then every line of the
# fragment must have stuck (a symbol whose dependencies fail is dropped
# silently by kconfig). $1: the tree.
configure_tree() {
  local src=$1 bad="" line sym
  mk() { nice make -C "$src" -s ARCH=x86_64 "$@"; }
  mk allnoconfig >/dev/null
  (cd "$src" && KCONFIG_CONFIG=.config scripts/kconfig/merge_config.sh -m .config "$FRAGMENT" >/dev/null)
  mk olddefconfig
  while IFS= read -r line; do
    case $line in
      CONFIG_*=*) grep -qxF "$line" "$src/.config" || bad="$bad ${line%%=*}" ;;
      "# CONFIG_"*" is not set")
        sym=${line#\# }; sym=${sym%% *}
        ! grep -q "^$sym=" "$src/.config" || bad="$bad $sym" ;;
    esac
  done < "$FRAGMENT"
  [ -z "$bad" ] || lane_die "the configuration did not take:$bad (see $src/.config)"
}

# Build: bzImage and the modules, nice; the log in $2, kept in the cache's
# logs on failure. Sets BUILD_SECS.
build_tree() {
  local src=$1 log=$2 tb
  lane_log "building $src with $(basename "$FRAGMENT") (make -j$JOBS, nice)"
  tb=$(date +%s)
  if ! nice make -C "$src" -s ARCH=x86_64 -j"$JOBS" bzImage modules > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    mkdir -p "$LANE_CACHE/logs"
    cp "$log" "$LANE_CACHE/logs/build-kernel.log" 2>/dev/null || true
    lane_die "kernel build failed (log: $LANE_CACHE/logs/build-kernel.log)"
  fi
  BUILD_SECS=$(( $(date +%s) - tb ))
}

install_build_packages() {
  local p missing=()
  for p in $BUILD_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || lane_die "need root to install: ${missing[*]}"
  lane_log "installing ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; } ||
    lane_die "cannot install ${missing[*]}"
}

# A developer's tree: configured and built in place, nothing cached.
if [ -n "$TREE" ]; then
  if [ ! -f "$TREE/Makefile" ] || [ ! -f "$TREE/scripts/kconfig/merge_config.sh" ]; then lane_die "$TREE is not a kernel source tree"; fi
  TREE=$(cd "$TREE" && pwd)
  install_build_packages
  [ ! -f "$TREE/.config" ] || [ -f "$TREE/.config.lane-saved" ] || cp "$TREE/.config" "$TREE/.config.lane-saved"
  configure_tree "$TREE"
  build_tree "$TREE" "$TREE/.lane-build.log"
  lane_log "built $TREE: $(cat "$TREE/include/config/kernel.release") in ${BUILD_SECS}s (make; log $TREE/.lane-build.log)"
  exit 0
fi

# 1. Host tools, the lane's apt configuration and Debian's 6.12 (the
#    version to build), all from setup.sh.
"$LANE_DIR/setup.sh" "$BASE_SERIES" >&2 || lane_die "setup.sh $BASE_SERIES failed"
install_build_packages

LANE_APT_CONF="$LANE_CACHE/apt/apt.conf"
[ -f "$LANE_APT_CONF" ] || lane_die "no lane apt configuration at $LANE_APT_CONF (setup.sh should have made it)"
lapt() { APT_CONFIG=$LANE_APT_CONF "$@"; }

# 2. Which version: the one of Debian's 6.12 lane kernel when the archive
#    still has its source, else the newest.
want=$(awk '{print $2}' "$LANE_CACHE/kernels/$BASE_SERIES/package")
versions=$(lapt apt-cache madison "$SRC_PKG" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort -uV)
[ -n "$versions" ] || lane_die "$SRC_PKG is not in the lane's apt sources (run setup.sh --refresh?)"
if echo "$versions" | grep -qxF "$want"; then
  VER=$want
else
  VER=$(echo "$versions" | tail -n1)
  lane_log "$SRC_PKG $want (Debian's lane 6.12) is gone from the archive: building $VER"
fi

# One build at a time (CI runs and engineers share the cache); a second
# caller waits and then finds the first one's result.
mkdir -p "$LANE_CACHE"
exec 8>"$LANE_CACHE/build-kernel.lock"
if ! flock -n 8; then
  lane_log "another kernel build is in progress; waiting"
  flock 8
fi

GCC=$(gcc --version | head -n1)
KEY=$( { cat "$FRAGMENT"; echo "$GCC"; echo "$MODULES"; } | sha256sum | cut -c1-12)
NAME="${SRC_PKG}_${VER}-$KEY"
OUT="$LANE_CACHE/built/$NAME"
LINK="$LANE_CACHE/kernels/$SERIES"

if [ "$FORCE" = 0 ] && [ -f "$OUT/.complete" ]; then
  ln -sfn "../built/$NAME" "$LINK"
  lane_log "kernel $SERIES: cached ($NAME, $(cat "$OUT/release"), built in $(cat "$OUT/build-seconds")s)"
  exit 0
fi

# 3. The source: the package (kept under src/, which setup.sh's pruning of
#    debs/ does not touch), unpacked under tmp/.
mkdir -p "$LANE_CACHE/tmp"
DEB=$(lane_source_deb "$SRC_PKG" "$VER")

T0=$(date +%s)
WORK="$LANE_CACHE/tmp/kbuild-$NAME"
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
lane_log "unpacking $SRC_PKG $VER"
dpkg-deb --fsys-tarfile "$DEB" | tar -xO "./usr/src/$SRC_PKG.tar.xz" | nice xz -dc | tar -x -C "$WORK" ||
  lane_die "cannot unpack $DEB"
SRC="$WORK/$SRC_PKG"
[ -f "$SRC/Makefile" ] || lane_die "$DEB holds no $SRC_PKG tree"

# 4. Configuration (configure_tree), 5. build (build_tree).
configure_tree "$SRC"
build_tree "$SRC" "$WORK/build.log"

# 6. The result, laid out as setup.sh lays out Debian's kernels.
rm -rf "$OUT.tmp"
mkdir -p "$OUT.tmp/modules"
cp "$SRC/arch/x86/boot/bzImage" "$OUT.tmp/vmlinuz"
cp "$SRC/.config" "$OUT.tmp/config"
krel=$(cat "$SRC/include/config/kernel.release")
echo "$krel" > "$OUT.tmp/release"
echo "$SRC_PKG $VER $KEY" > "$OUT.tmp/package"
basename "$DEB" > "$OUT.tmp/debs"
find "$SRC" -name '*.ko' > "$WORK/ko-files"
lane_collect_modules "$OUT.tmp" "$WORK/ko-files" "$SRC/modules.builtin" "$MODULES" ""
# module-files names them relative to the tree.
sed -i "s| $SRC/| |" "$OUT.tmp/module-files"
echo "$BUILD_SECS" > "$OUT.tmp/build-seconds"
touch "$OUT.tmp/.complete"
rm -rf "$OUT"
mv "$OUT.tmp" "$OUT"
mkdir -p "$LANE_CACHE/kernels"
ln -sfn "../built/$NAME" "$LINK"
# Older builds of this series are dead weight.
for d in "$LANE_CACHE"/built/"${SRC_PKG}"_*; do
  [ "$d" = "$OUT" ] || { lane_log "pruning ${d##*/}"; rm -rf "$d"; }
done
lane_log "kernel $SERIES: $krel built in ${BUILD_SECS}s (make), $(( $(date +%s) - T0 ))s with unpacking; modules: $(cut -d: -f1 "$OUT/deps.txt" | tr '\n' ' ')"

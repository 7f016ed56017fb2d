#!/usr/bin/env bash
# Builds the kernel's own VFIO selftests (tools/testing/selftests/vfio)
# from Debian's newest linux-source package, statically, for the lane's
# guests: the checks this project did not write.
#
# Usage: scripts/kernel-lane/build-selftests.sh [--force] [--package NAME]
#   --force         build again even when the cache has this version
#   --package NAME  the source package (default linux-source-7.3, the
#                   newest series in the lane's apt configuration)
#
# The package comes through the lane's own apt configuration (setup.sh
# prepares it) and is kept in $LANE_CACHE/src. Only what the selftests
# need is unpacked: tools/, include/, arch/x86/include/, the drivers whose
# register headers libvfio's device drivers include, and scripts/unifdef.c,
# which makes the uapi headers usable from user space (the kernel's own
# scripts/headers_install.sh over include/uapi/linux). The programs are
# linked with -static (the guest is a busybox initramfs) and cached in
# $LANE_CACHE/selftests/VERSION-KEY (KEY: a hash of the compiler), with
# `version` (the package version) and `programs` (one name per line);
# $LANE_CACHE/selftests/current points at the newest build. Prints the
# build's directory on standard output. ~1.5 min from an empty cache.
#
# Runs as root (host packages: gcc make libuuid static library uuid-dev).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FORCE=0 SRC_PKG=linux-source-7.3
while [ $# -gt 0 ]; do
  case $1 in
    --force) FORCE=1; shift ;;
    --package) SRC_PKG=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) lane_die "unknown argument: $1" ;;
  esac
done

LANE_APT_CONF="$LANE_CACHE/apt/apt.conf"
[ -f "$LANE_APT_CONF" ] || lane_die "no lane apt configuration at $LANE_APT_CONF (run scripts/kernel-lane/setup.sh first)"
lapt() { APT_CONFIG=$LANE_APT_CONF "$@"; }
export DEBIAN_FRONTEND=noninteractive
for p in gcc make uuid-dev xz-utils; do
  dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq gcc make uuid-dev xz-utils >/dev/null; break; }
done

VER=$(lapt apt-cache madison "$SRC_PKG" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); print $2}' | sort -V | tail -n1)
[ -n "$VER" ] || lane_die "the lane's apt configuration has no $SRC_PKG"
KEY=$(gcc --version | head -n1 | sha256sum | cut -c1-12)
OUT="$LANE_CACHE/selftests/${SRC_PKG#linux-source-}_${VER//[:~]/_}-$KEY"
if [ "$FORCE" = 0 ] && [ -f "$OUT/.complete" ]; then
  ln -sfn "$(basename "$OUT")" "$LANE_CACHE/selftests/current"
  echo "$OUT"
  exit 0
fi

mkdir -p "$LANE_CACHE/tmp"
DEB=$(lane_source_deb "$SRC_PKG" "$VER")

T0=$(date +%s)
WORK="$LANE_CACHE/tmp/selftests-$SRC_PKG"
rm -rf "$WORK"
mkdir -p "$WORK"
TOP="${SRC_PKG}"
# The package holds one tarball; unpack from it only what the build reads
# (the selftests' symlinks point into include/ and drivers/).
dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$WORK" "./usr/src/$SRC_PKG.tar.xz"
tar -xJf "$WORK/usr/src/$SRC_PKG.tar.xz" -C "$WORK" \
  "$TOP/tools" "$TOP/include" "$TOP/arch/x86/include" "$TOP/scripts/unifdef.c" "$TOP/scripts/headers_install.sh" \
  "$TOP/scripts/subarch.include" "$TOP/drivers/dma/ioat" "$TOP/drivers/dma/idxd" "$TOP/drivers/net/ethernet/intel/igb"
rm -f "$WORK/usr/src/$SRC_PKG.tar.xz"
SRC="$WORK/$TOP"

# User-space uapi headers, as `make headers_install` makes them.
gcc -O2 -o "$SRC/scripts/unifdef" "$SRC/scripts/unifdef.c"
HDR="$WORK/usr-include"
(cd "$SRC" && find include/uapi/linux -name '*.h') | while read -r f; do
  dest="$HDR/${f#include/uapi/}"
  mkdir -p "$(dirname "$dest")"
  (cd "$SRC" && sh scripts/headers_install.sh "$f" "$dest")
done

BUILD="$WORK/out"
mkdir -p "$BUILD"
make -s -C "$SRC/tools/testing/selftests/vfio" OUTPUT="$BUILD" KHDR_INCLUDES="-isystem $HDR" \
  LDFLAGS="-static -pthread" >"$WORK/build.log" 2>&1 || { tail -n 30 "$WORK/build.log" >&2; lane_die "the VFIO selftests did not build"; }

rm -rf "$OUT"
mkdir -p "$OUT"
for p in "$BUILD"/vfio_*; do
  case $p in *.o|*.d) continue ;; esac
  file "$p" | grep -q 'statically linked' || lane_die "$(basename "$p") is not statically linked"
  cp "$p" "$OUT/"
  basename "$p" >> "$OUT/programs"
done
echo "$SRC_PKG $VER" > "$OUT/version"
echo $(( $(date +%s) - T0 )) > "$OUT/build-seconds"
touch "$OUT/.complete"
ln -sfn "$(basename "$OUT")" "$LANE_CACHE/selftests/current"
rm -rf "$WORK"
lane_log "VFIO selftests of $SRC_PKG $VER built in $(cat "$OUT/build-seconds")s: $(tr '\n' ' ' < "$OUT/programs")"
echo "$OUT"

#!/usr/bin/env bash
# Builds the Debian root filesystem the recording lane's guests share over 9p:
# dpdk-testpmd with the e1000 plugin, and qemu-system-x86 (with its firmware)
# for a nested QEMU, on a minbase debootstrap. Nothing else is installed.
#
# Usage: scripts/kernel-lane/rootfs.sh [--suite SUITE] [--print]
#   --suite SUITE  Debian suite (default bookworm: DPDK 22.11, QEMU 7.2, the
#                  host's QEMU too; trixie also works: DPDK 24.11, QEMU 10.0)
#   --print        only print the path the rootfs has (or would have)
#
# The result is $LANE_CACHE/rootfs/SUITE-KEY (KEY: a hash of the suite, the
# mirror, the package list and the recipe's version), and $LANE_CACHE/rootfs/SUITE
# points at it. A cached rootfs is reused; an older one of the same suite is
# deleted once a new one is complete. The downloaded packages are kept in
# $LANE_CACHE/rootfs/debs (debootstrap --cache-dir), so a rebuild downloads
# nothing. The mirror is the one of the lane's own apt configuration
# ($LANE_CACHE/apt, written by setup.sh): run setup.sh first. debootstrap is
# installed from the machine's apt sources when missing. Root only.
# Prints the rootfs path on stdout.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set -E
trap 'lane_log "rootfs failed at line $LINENO: $BASH_COMMAND"' ERR

SUITE=bookworm PRINT=0
while [ $# -gt 0 ]; do
  case $1 in
    --suite) SUITE=${2:?}; shift 2 ;;
    --print) PRINT=1; shift ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) lane_die "unknown argument: $1" ;;
  esac
done
export DEBIAN_FRONTEND=noninteractive

LANE_APT_CONF="$LANE_CACHE/apt/apt.conf"
LANE_SOURCES="$LANE_CACHE/apt/etc/sources.list.d/lane.sources"
{ [ -f "$LANE_APT_CONF" ] && [ -f "$LANE_SOURCES" ]; } ||
  lane_die "the lane's apt configuration is missing ($LANE_SOURCES): run scripts/kernel-lane/setup.sh first"
lapt() { APT_CONFIG=$LANE_APT_CONF "$@"; }

# The mirror holding SUITE, from the lane's own sources (deb822, first stanza
# naming the suite).
MIRROR=$(awk -v s="$SUITE" '
  /^URIs:/ { uri = $2 }
  /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) { print uri; exit } }' "$LANE_SOURCES")
[ -n "$MIRROR" ] || lane_die "suite $SUITE is not in the lane's apt sources ($LANE_SOURCES)"

# The e1000 plugin's package carries the DPDK ABI in its name
# (librte-net-e1000-23 in bookworm, -25 in trixie): take the one this suite has.
e1000_pkg() {
  lapt apt-cache search --names-only '^librte-net-e1000-[0-9]+$' 2>/dev/null | awk '{print $1}' | sort -u |
    while read -r p; do
      # (grep reads everything: with pipefail, -q would fail on SIGPIPE)
      if lapt apt-cache madison "$p" 2>/dev/null | grep -c " $SUITE/main " >/dev/null; then echo "$p"; fi
    done | sort -V | tail -n1
}
E1000=$(e1000_pkg)
if [ -z "$E1000" ]; then
  lapt apt-get update -qq >/dev/null 2>&1 || true
  E1000=$(e1000_pkg)
fi
[ -n "$E1000" ] || lane_die "no librte-net-e1000-N package in $SUITE"

# dpdk-dev ships dpdk-testpmd; the NIC drivers are plugins it does not pull
# in. debootstrap installs Depends only, never Recommends.
PACKAGES="dpdk-dev,$E1000,qemu-system-x86"
# Bump RECIPE when the steps below change what ends up in the rootfs.
RECIPE=1
KEY=$(echo "$SUITE $MIRROR minbase $PACKAGES recipe=$RECIPE" | sha256sum | cut -c1-12)
ROOT="$LANE_CACHE/rootfs/$SUITE-$KEY"
if [ "$PRINT" = 1 ]; then echo "$ROOT"; exit 0; fi

if [ -f "$ROOT/.complete" ]; then
  ln -sfn "${ROOT##*/}" "$LANE_CACHE/rootfs/$SUITE"
  lane_log "rootfs $SUITE: cached ($ROOT)"
  echo "$ROOT"
  exit 0
fi

[ "$(id -u)" = 0 ] || lane_die "debootstrap needs root"
if ! command -v debootstrap >/dev/null; then
  lane_log "installing debootstrap (machine's apt sources)"
  apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
fi

mkdir -p "$LANE_CACHE/rootfs/debs"
# One builder at a time (the lane cache is shared).
exec 8>"$LANE_CACHE/rootfs/.lock"
flock 8
if [ -f "$ROOT/.complete" ]; then echo "$ROOT"; exit 0; fi

T0=$(date +%s)
BUILD="$ROOT.tmp"
rm -rf "$BUILD"
lane_log "rootfs $SUITE: debootstrap --variant=minbase --include=$PACKAGES ($MIRROR)"
if ! nice debootstrap --variant=minbase --include="$PACKAGES" \
      --keyring=/usr/share/keyrings/debian-archive-keyring.gpg \
      --cache-dir="$LANE_CACHE/rootfs/debs" \
      "$SUITE" "$BUILD" "$MIRROR" > "$LANE_CACHE/rootfs/debootstrap.log" 2>&1; then
  tail -n 20 "$LANE_CACHE/rootfs/debootstrap.log" >&2
  lane_die "debootstrap failed (log: $LANE_CACHE/rootfs/debootstrap.log)"
fi
[ -x "$BUILD/usr/bin/dpdk-testpmd" ] || lane_die "no dpdk-testpmd in the rootfs"
[ -x "$BUILD/usr/bin/qemu-system-x86_64" ] || lane_die "no qemu-system-x86_64 in the rootfs"
# Packages are kept in the cache dir, not in the image; the guest mounts the
# root read-only, so apt's state is of no use there.
rm -rf "$BUILD"/var/cache/apt/archives/*.deb "$BUILD"/var/lib/apt/lists/* 2>/dev/null || true
# Mount points the guest needs on a read-only root.
mkdir -p "$BUILD"/{dev/hugepages,lane,mnt/out}
{ echo "suite=$SUITE mirror=$MIRROR packages=$PACKAGES"
  echo "dpdk=$(chroot "$BUILD" dpkg-query -W -f='${Version}' dpdk-dev)"
  echo "qemu=$(chroot "$BUILD" dpkg-query -W -f='${Version}' qemu-system-x86)"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) seconds=$(( $(date +%s) - T0 ))"
} > "$BUILD/lane-rootfs.txt"
touch "$BUILD/.complete"
mv "$BUILD" "$ROOT"
ln -sfn "${ROOT##*/}" "$LANE_CACHE/rootfs/$SUITE"
for d in "$LANE_CACHE/rootfs/$SUITE"-*; do
  [ "$d" = "$ROOT" ] || { lane_log "pruning ${d##*/}"; rm -rf "$d"; }
done
lane_log "rootfs $SUITE: built in $(( $(date +%s) - T0 ))s, $(du -sh "$ROOT" | cut -f1) ($(sed -n 2,3p "$ROOT/lane-rootfs.txt" | tr '\n' ' '))"
echo "$ROOT"

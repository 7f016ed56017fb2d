#!/usr/bin/env bash
# Prepares the kernel lane: host tools from Debian's archive, and for each
# kernel series a vmlinuz plus the decompressed VFIO (and virtio) modules,
# taken from Debian's own kernel packages without installing them.
#
# Usage: scripts/kernel-lane/setup.sh [--refresh]
#   --refresh  look for a newer kernel package even if one is already cached
#              (by default a cached kernel is kept, so results do not change
#              under the project's feet when Debian publishes a new ABI).
#
# Safe to run again: every step is skipped when its result is already there.
# Runs as root, non-interactively (CI runs it in a fresh clone).
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# set -e alone exits silently; say where it happened.
set -E
trap 'lane_log "setup failed at line $LINENO: $BASH_COMMAND"' ERR

REFRESH=0
for arg in "$@"; do
  case $arg in
    --refresh) REFRESH=1 ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) lane_die "unknown argument: $arg" ;;
  esac
done

export DEBIAN_FRONTEND=noninteractive

# python3: the host side of `check ptes=` on intel-iommu (vtd-walk.py).
HOST_PACKAGES="qemu-system-x86 busybox-static cpio xz-utils zstd kmod util-linux coreutils python3"

# apt-get update is slow-ish and touches the network: do it at most once per
# run, and only when something we need is not known to apt.
APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" = 0 ]; then
    lane_log "apt-get update"
    apt-get update -qq
    APT_UPDATED=1
  fi
}

apt_lists_present() {
  compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null
}

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

install_host_packages() {
  local missing=() p
  for p in $HOST_PACKAGES; do
    pkg_installed "$p" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || lane_die "need root to install: ${missing[*]}"
  apt_lists_present || apt_update_once
  lane_log "installing ${missing[*]}"
  # Recommends would pull in a GUI stack for QEMU; none of it is needed.
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt_update_once
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Debian has at times shipped 6.12 for bookworm only in backports (later it
# moved to bookworm-security). Add backports from the mirror already
# configured for bookworm, but only when 6.12 cannot be found otherwise.
enable_backports() {
  if apt-cache policy 2>/dev/null | grep -q 'bookworm-backports'; then
    return 0
  fi
  local uri
  uri=$(grep -rhsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | awk '{print $2}' | grep -v -- '-security' | head -n1 || true)
  if [ -z "$uri" ]; then
    uri=$(grep -rhsE '^deb .* bookworm( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
            | awk '{for (i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | head -n1 || true)
  fi
  [ -n "$uri" ] || lane_die "cannot find the configured Debian mirror to add bookworm-backports"
  lane_log "enabling bookworm-backports from $uri"
  cat > /etc/apt/sources.list.d/vfiosim-bookworm-backports.sources <<EOF
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  APT_UPDATED=0
  apt_update_once
}

# newest_kernel_pkg SERIES -> package name, or nothing
newest_kernel_pkg() {
  apt-cache search --names-only "$(lane_kernel_pattern "$1")" 2>/dev/null \
    | awk '{print $1}' | sort -V | tail -n1
}

find_kernel_pkg() {
  local series=$1 pkg
  pkg=$(newest_kernel_pkg "$series")
  if [ -z "$pkg" ]; then
    apt_update_once
    pkg=$(newest_kernel_pkg "$series")
  fi
  if [ -z "$pkg" ] && [ "$series" = 6.12 ]; then
    enable_backports
    pkg=$(newest_kernel_pkg "$series")
  fi
  [ -n "$pkg" ] || lane_die "no package matches $(lane_kernel_pattern "$series") in apt"
  echo "$pkg"
}

# Module names as the kernel treats them: '-' and '_' are interchangeable.
norm() { echo "${1//-/_}"; }

decompress_ko() {  # SRC DST
  case $1 in
    *.ko.xz)  xz -dc "$1" > "$2" ;;
    *.ko.zst) zstd -qdc "$1" > "$2" ;;
    *.ko.gz)  gzip -dc "$1" > "$2" ;;
    *.ko)     cp "$1" "$2" ;;
    *) lane_die "unexpected module file $1" ;;
  esac
}

# Debian's 6.1 vmlinuz is xz-compressed, and under TCG the kernel spends ~2 s
# of each boot decompressing itself. QEMU can boot the uncompressed ELF
# directly through the PVH entry point (CONFIG_PVH), so keep that ELF next to
# vmlinuz. Not worth it for zstd kernels: they unpack fast, and loading the
# 4x larger ELF costs about what it saves.
extract_pvh_vmlinux() {
  local kdir=$1 off
  [ -f "$kdir/.pvh-checked" ] && return 0
  rm -f "$kdir/vmlinux"
  if grep -q '^CONFIG_PVH=y' "$kdir/config" 2>/dev/null &&
     grep -q '^CONFIG_KERNEL_XZ=y' "$kdir/config" 2>/dev/null; then
    # The compressed kernel sits inside the bzImage; try each xz magic found.
    for off in $(LC_ALL=C grep -obUaP '\xfd\x37\x7a\x58\x5a\x00' "$kdir/vmlinuz" | cut -d: -f1 | head -n 3); do
      # xz stops reading at the end of the stream, so tail may die of SIGPIPE:
      # expected, hence the process substitution and the "|| true".
      if xz -dc --single-stream < <(tail -c +"$((off + 1))" "$kdir/vmlinuz" 2>/dev/null || true) > "$kdir/vmlinux.tmp" 2>/dev/null &&
         [ "$(head -c 4 "$kdir/vmlinux.tmp" | od -An -c | tr -d ' ')" = '177ELF' ]; then
        mv "$kdir/vmlinux.tmp" "$kdir/vmlinux"
        lane_log "extracted uncompressed vmlinux for PVH boot ($(basename "$kdir"))"
        break
      fi
    done
    rm -f "$kdir/vmlinux.tmp"
  fi
  touch "$kdir/.pvh-checked"
}

# The modules any config on SERIES asks for (their dependencies not included).
wanted_modules() {
  local cfg wanted=""
  for cfg in $LANE_CONFIGS; do
    lane_config "$cfg"
    if [ "$LANE_CFG_SERIES" = "$1" ]; then wanted="$wanted $LANE_CFG_MODULES"; fi
  done
  echo "$wanted"
}

# kernel_ready KDIR SERIES: collected, and with every module lib.sh now asks
# for (so adding a module to a config makes the next setup collect it again).
kernel_ready() {
  local m
  [ -f "$1/.complete" ] || return 1
  for m in $(wanted_modules "$2"); do
    grep -q "^$(norm "$m"):" "$1/deps.txt" || return 1
  done
}

# collect_kernel SERIES: download, unpack, keep vmlinuz + needed modules.
collect_kernel() {
  local series=$1
  local kdir_link="$LANE_CACHE/kernels/$series"

  if [ "$REFRESH" = 0 ] && kernel_ready "$kdir_link" "$series"; then
    extract_pvh_vmlinux "$(readlink -f "$kdir_link")"
    lane_log "kernel $series: cached ($(cat "$kdir_link/package"))"
    return 0
  fi

  local pkg ver
  pkg=$(find_kernel_pkg "$series")
  ver=$(apt-cache show --no-all-versions "$pkg" | awk '/^Version:/{print $2; exit}')
  local name="${pkg}_${ver}"
  local kdir="$LANE_CACHE/kernels/$name"
  if kernel_ready "$kdir" "$series"; then
    extract_pvh_vmlinux "$kdir"
    ln -sfn "$name" "$kdir_link"
    lane_log "kernel $series: cached ($pkg $ver)"
    return 0
  fi

  lane_log "kernel $series: collecting $pkg $ver"
  mkdir -p "$LANE_CACHE/debs"
  local deb
  # apt-get download names the file pkg_version_arch.deb, epoch ':' as %3a.
  deb="$LANE_CACHE/debs/${pkg}_${ver//:/%3a}_amd64.deb"
  if [ ! -f "$deb" ]; then
    # apt-get download writes into the current directory.
    (cd "$LANE_CACHE/debs" && { apt-get download -qq "$pkg=$ver" 2>/dev/null \
        || { apt_update_once; apt-get download -qq "$pkg=$ver"; }; })
  fi
  [ -f "$deb" ] || lane_die "download of $pkg failed"

  local root="$LANE_CACHE/tmp/unpack-$series"
  rm -rf "$root" "$kdir"
  mkdir -p "$root" "$kdir/modules"
  dpkg-deb -x "$deb" "$root"

  # Newer Debian packages put modules under usr/lib (merged /usr).
  local moddir krel
  moddir=$(find "$root/lib/modules" "$root/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -n1 || true)
  [ -n "$moddir" ] || lane_die "$pkg has no lib/modules/<release> directory"
  krel=$(basename "$moddir")
  local vmlinuz="$root/boot/vmlinuz-$krel"
  [ -f "$vmlinuz" ] || lane_die "$pkg has no boot/vmlinuz-$krel"
  cp "$vmlinuz" "$kdir/vmlinuz"
  cp "$root/boot/config-$krel" "$kdir/config" 2>/dev/null || true
  echo "$krel" > "$kdir/release"
  echo "$pkg $ver" > "$kdir/package"

  # Name -> file index of every module in the package, and the built-ins.
  declare -A files=()
  local f b
  while IFS= read -r f; do
    b=$(basename "$f"); b=${b%%.ko*}
    files[$(norm "$b")]=$f
  done < <(find "$moddir" -name '*.ko*')
  declare -A builtin=()
  if [ -f "$moddir/modules.builtin" ]; then
    while IFS= read -r f; do
      b=$(basename "$f"); b=${b%%.ko*}
      builtin[$(norm "$b")]=1
    done < "$moddir/modules.builtin"
  fi

  local wanted
  wanted=$(wanted_modules "$series")

  # deps.txt: "name: dep dep" for modules, "name: builtin" for built-ins.
  # run-in-guest.sh orders insmod from it, so the host needs no depmod.
  local m deps queue
  read -r -a queue <<< "$wanted"
  declare -A seen=()
  : > "$kdir/deps.txt"
  while [ ${#queue[@]} -gt 0 ]; do
    m=$(norm "${queue[0]}"); queue=("${queue[@]:1}")
    [ -n "${seen[$m]:-}" ] && continue
    seen[$m]=1
    if [ -n "${builtin[$m]:-}" ]; then
      echo "$m: builtin" >> "$kdir/deps.txt"
      continue
    fi
    [ -n "${files[$m]:-}" ] || lane_die "module $m is neither built into nor shipped with $pkg"
    decompress_ko "${files[$m]}" "$kdir/modules/$m.ko"
    deps=$(modinfo -F depends "$kdir/modules/$m.ko" | tr ',' ' ')
    echo "$m: $deps" | sed 's/ *$//' >> "$kdir/deps.txt"
    for f in $deps; do queue+=("$f"); done
  done

  extract_pvh_vmlinux "$kdir"
  touch "$kdir/.complete"
  ln -sfn "$name" "$kdir_link"
  rm -rf "$root"
  lane_log "kernel $series: $krel, modules: $(cut -d: -f1 "$kdir/deps.txt" | tr '\n' ' ')"
}

main() {
  mkdir -p "$LANE_CACHE"
  install_host_packages
  command -v qemu-system-x86_64 >/dev/null || lane_die "qemu-system-x86_64 missing after install"
  [ -x /bin/busybox ] || lane_die "/bin/busybox missing after install"

  local series done_series=""
  for cfg in $LANE_CONFIGS; do
    lane_config "$cfg"
    series=$LANE_CFG_SERIES
    case " $done_series " in *" $series "*) continue ;; esac
    collect_kernel "$series"
    done_series="$done_series $series"
  done
  rm -rf "$LANE_CACHE/tmp"
  lane_log "setup complete (cache: $LANE_CACHE)"
}

main

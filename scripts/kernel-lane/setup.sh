#!/usr/bin/env bash
# Prepares the kernel lane: host tools from Debian's archive, and for each
# kernel series a vmlinuz plus the decompressed VFIO (and virtio) modules,
# taken from Debian's own kernel packages without installing them.
#
# Usage: scripts/kernel-lane/setup.sh [--refresh] [SERIES...]
#   SERIES     only these kernel series (default: every one a config uses:
#              5.10 6.1 6.12 6.18 7.x)
#   --refresh  look for a newer kernel package even if one is already cached
#              (by default a cached kernel is kept, so results do not change
#              under the project's feet when Debian publishes a new ABI).
#
# Safe to run again: every step is skipped when its result is already there.
# Runs as root, non-interactively (CI runs it in a fresh clone). The cache is
# $VFIOSIM_LANE_CACHE, by default /var/cache/vfiosim/lane.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# set -e alone exits silently; say where it happened.
set -E
trap 'lane_log "setup failed at line $LINENO: $BASH_COMMAND"' ERR

REFRESH=0
WANT_SERIES=()
for arg in "$@"; do
  case $arg in
    --refresh) REFRESH=1 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) lane_die "unknown argument: $arg" ;;
    *) s=$(lane_resolve_series "$arg") || lane_die "unknown kernel series: $arg (known: $LANE_SERIES)"
       WANT_SERIES+=("$s") ;;
  esac
done

export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------------------
# Host packages, from the machine's own apt sources.
# python3: the host side of `check ptes=` (iommu-walk.py).
HOST_PACKAGES="qemu-system-x86 busybox-static cpio xz-utils zstd kmod util-linux coreutils python3"

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

# ---------------------------------------------------------------------------
# Kernels come from an apt configuration of the lane's own, under
# $LANE_CACHE/apt: its own sources (the suites below), lists, status file and
# package cache. The machine's apt sources are never changed; only their
# mirror is reused (read here, at run time).
LANE_APT="$LANE_CACHE/apt"
LANE_APT_CONF="$LANE_APT/apt.conf"
LANE_APT_SUITES="bookworm bookworm-backports trixie trixie-backports"
LANE_APT_SECURITY_SUITES="bullseye-security bookworm-security trixie-security"

# "URI SUITE" for every deb source of the machine (deb822 and one-line files).
machine_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush(  n, m, i, j, u, s) {
        if (uris != "" && types ~ /(^| )deb( |$)/) {
          n = split(uris, u, " "); m = split(suites, s, " ")
          for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j]
        }
        uris = suites = types = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "types:"  { $1 = ""; types = $0 }
      tolower($1) == "uris:"   { $1 = ""; uris = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "enabled:" && tolower($2) == "no" { types = "disabled" }
      END { flush() }' "$f"
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | sed -E 's/\[[^]]*\]//' \
    | awk '$1 == "deb" && $2 ~ /:\/\// { print $2, $3 }' || true
}

lane_apt_init() {
  local src mirror security
  src=$(machine_sources)
  mirror=$(echo "$src" | awk '$2 !~ /-security$/ && $1 ~ /\/debian\/?$/ { print $1; exit }')
  [ -n "$mirror" ] || mirror=$(echo "$src" | awk '$2 !~ /-security$/ && NF == 2 { print $1; exit }')
  security=$(echo "$src" | awk '$2 ~ /-security$/ { print $1; exit }')
  [ -n "$mirror" ] || lane_die "no Debian mirror in the machine's apt sources to take kernels from"
  mirror=${mirror%/}
  if [ -z "$security" ]; then
    case $mirror in
      */debian) security=$mirror-security ;;
      *) security=http://security.debian.org/debian-security ;;
    esac
  fi
  security=${security%/}
  mkdir -p "$LANE_APT"/{etc/sources.list.d,etc/preferences.d,state,lists/partial,cache/archives/partial}
  [ -f "$LANE_APT/status" ] || : > "$LANE_APT/status"
  : > "$LANE_APT/etc/sources.list"
  local sources
  sources=$(printf '%s\n' \
    "Types: deb" "URIs: $mirror" "Suites: $LANE_APT_SUITES" "Components: main" \
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" "" \
    "Types: deb" "URIs: $security" "Suites: $LANE_APT_SECURITY_SUITES" "Components: main" \
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg")
  # A changed mirror or suite list makes the lists stale.
  if [ "$(cat "$LANE_APT/etc/sources.list.d/lane.sources" 2>/dev/null)" != "$sources" ]; then
    echo "$sources" > "$LANE_APT/etc/sources.list.d/lane.sources"
    rm -f "$LANE_APT/lists/"*_Packages* "$LANE_APT/lists/"*Release* 2>/dev/null || true
  fi
  {
    echo "Dir::Etc::sourcelist \"$LANE_APT/etc/sources.list\";"
    echo "Dir::Etc::sourceparts \"$LANE_APT/etc/sources.list.d\";"
    echo "Dir::Etc::preferences \"$LANE_APT/etc/preferences\";"
    echo "Dir::Etc::preferencesparts \"$LANE_APT/etc/preferences.d\";"
    echo "Dir::State \"$LANE_APT/state\";"
    echo "Dir::State::Lists \"$LANE_APT/lists\";"
    echo "Dir::State::status \"$LANE_APT/status\";"
    echo "Dir::Cache \"$LANE_APT/cache\";"
    echo "APT::Architecture \"amd64\";"
    echo "APT::Architectures { \"amd64\"; };"
    echo "Acquire::Languages \"none\";"
  } > "$LANE_APT_CONF"
}

# lapt CMD ARGS: an apt command on the lane's own configuration.
lapt() { APT_CONFIG=$LANE_APT_CONF "$@"; }

LANE_APT_UPDATED=0
lane_apt_update_once() {
  if [ "$LANE_APT_UPDATED" = 0 ]; then
    lane_log "apt-get update of the lane's own sources ($LANE_APT_SUITES $LANE_APT_SECURITY_SUITES)"
    lapt apt-get update -qq >/dev/null || lane_die "apt-get update of the lane's sources failed"
    LANE_APT_UPDATED=1
  fi
}

# newest_kernel_pkg SERIES -> package name, or nothing
newest_kernel_pkg() {
  compgen -G "$LANE_APT/lists/*_Packages*" >/dev/null || return 0
  lapt apt-cache search --names-only "$(lane_kernel_pattern "$1")" 2>/dev/null \
    | awk '{print $1}' | sort -V | tail -n1
}

find_kernel_pkg() {
  local series=$1 pkg
  pkg=$(newest_kernel_pkg "$series")
  if [ -z "$pkg" ] || [ "$REFRESH" = 1 ]; then
    lane_apt_update_once
    pkg=$(newest_kernel_pkg "$series")
  fi
  [ -n "$pkg" ] || lane_die "no package matches $(lane_kernel_pattern "$series") in the lane's apt sources"
  echo "$pkg"
}

pkg_version() {
  lapt apt-cache show --no-all-versions "$1" 2>/dev/null | awk '/^Version:/{print $2; exit}'
}

# kernel_debs IMAGE-PKG -> the packages holding the kernel: the image itself
# and what it depends on of the same release. From 6.19 linux-image-REL is a
# meta package: vmlinuz is in linux-binary-REL, the modules in
# linux-modules-REL (7.2 on; before, in linux-binary), the config in
# linux-base-REL.
kernel_debs() {
  local rel=${1#linux-image-}
  echo "$1"
  lapt apt-cache show --no-all-versions "$1" 2>/dev/null \
    | awk '/^Depends:/ { sub(/^Depends:/, ""); n = split($0, d, ",")
                         for (i = 1; i <= n; i++) { split(d[i], alt, "|"); w = alt[1]
                           sub(/\(.*\)/, "", w); gsub(/[ \t]/, "", w); print w }
                         exit }' \
    | awk -v rel="$rel" 'substr($0, length($0) - length(rel)) == "-" rel && $0 ~ /^linux-/ && $0 !~ /^linux-image-/' \
    || true
}

# download_deb PKG VER -> path of PKG_VER_amd64.deb in $LANE_CACHE/debs
download_deb() {
  local pkg=$1 ver=$2 deb
  # apt-get download names the file pkg_version_arch.deb, epoch ':' as %3a.
  deb="$LANE_CACHE/debs/${pkg}_${ver//:/%3a}_amd64.deb"
  if [ ! -f "$deb" ]; then
    mkdir -p "$LANE_CACHE/debs"
    # apt-get download writes into the current directory, under a partial
    # name until the file is complete and verified.
    (cd "$LANE_CACHE/debs" && lapt apt-get download -qq "$pkg=$ver" >/dev/null 2>&1) || return 1
  fi
  [ -f "$deb" ] || return 1
  echo "$deb"
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

# Debian's 5.10 and 6.1 vmlinuz are xz-compressed, and under TCG the kernel
# spends ~2 s of each boot decompressing itself. QEMU can boot the
# uncompressed ELF directly through the PVH entry point (CONFIG_PVH), so keep
# that ELF next to vmlinuz. Not worth it for zstd kernels: they unpack fast,
# and loading the 4x larger ELF costs about what it saves.
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

# The modules any config on SERIES asks for, and the 9p ones of the
# recording lane (their dependencies not included).
wanted_modules() {
  local cfg wanted=""
  for cfg in $LANE_CONFIGS; do
    lane_config "$cfg"
    if [ "$LANE_CFG_SERIES" = "$1" ]; then wanted="$wanted $LANE_CFG_MODULES"; fi
  done
  echo "$wanted $LANE_9P_MODULES"
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
  ver=$(pkg_version "$pkg")
  local name="${pkg}_${ver}"
  local kdir="$LANE_CACHE/kernels/$name"
  if kernel_ready "$kdir" "$series"; then
    extract_pvh_vmlinux "$kdir"
    ln -sfn "$name" "$kdir_link"
    lane_log "kernel $series: cached ($pkg $ver)"
    return 0
  fi

  local p v deb debs=() t0
  t0=$(date +%s)
  for p in $(kernel_debs "$pkg"); do
    v=$(pkg_version "$p")
    # 6.18's image names a linux-base-REL the archive does not have; what is
    # really needed (vmlinuz, modules) is checked after unpacking.
    if [ -z "$v" ]; then lane_log "kernel $series: $pkg names $p, which apt does not know: skipped"; continue; fi
    lane_log "kernel $series: downloading $p $v"
    if ! deb=$(download_deb "$p" "$v"); then
      # The lists may be older than the mirror (the version is gone): once.
      if [ "$LANE_APT_UPDATED" = 0 ]; then
        lane_apt_update_once
        collect_kernel "$series"
        return
      fi
      lane_die "download of $p $v failed"
    fi
    debs+=("$deb")
  done

  local root="$LANE_CACHE/tmp/unpack-$series"
  rm -rf "$root" "$kdir"
  mkdir -p "$root" "$kdir/modules"
  for deb in "${debs[@]}"; do dpkg-deb -x "$deb" "$root"; done

  # Newer Debian packages put modules under usr/lib (merged /usr). The
  # release directory is the one holding kernel/ (linux-base may add another
  # with only metadata).
  local moddir krel
  moddir=$(find "$root/lib/modules" "$root/usr/lib/modules" -mindepth 2 -maxdepth 2 -type d -name kernel 2>/dev/null | head -n1 || true)
  [ -n "$moddir" ] || lane_die "$pkg has no lib/modules/<release>/kernel directory"
  moddir=$(dirname "$moddir")
  krel=$(basename "$moddir")
  local f vmlinuz="" config=""
  for f in "$root/boot/vmlinuz-$krel" "$root/lib/modules/$krel/vmlinuz" "$root/usr/lib/modules/$krel/vmlinuz"; do
    [ -f "$f" ] && { vmlinuz=$f; break; }
  done
  [ -n "$vmlinuz" ] || lane_die "$pkg has no vmlinuz for $krel (boot/ or lib/modules/$krel/)"
  for f in "$root/boot/config-$krel" "$root/lib/modules/$krel/config" "$root/usr/lib/modules/$krel/config"; do
    [ -f "$f" ] && { config=$f; break; }
  done
  cp "$vmlinuz" "$kdir/vmlinuz"
  if [ -n "$config" ]; then cp "$config" "$kdir/config"; else lane_log "kernel $series: no config in $pkg"; fi
  echo "$krel" > "$kdir/release"
  echo "$pkg $ver" > "$kdir/package"
  for deb in "${debs[@]}"; do basename "$deb"; done > "$kdir/debs"

  # Name -> file index of every module in the packages, and the built-ins.
  declare -A files=()
  local b
  while IFS= read -r f; do
    b=$(basename "$f"); b=${b%%.ko*}
    files[$(norm "$b")]=$f
  done < <(find "$root" -path "*/modules/$krel/*" -name '*.ko*')
  declare -A builtin=()
  for f in "$root"/{usr/,}lib/modules/"$krel"/modules.builtin; do
    [ -f "$f" ] || continue
    while IFS= read -r b; do
      b=$(basename "$b"); b=${b%%.ko*}
      builtin[$(norm "$b")]=1
    done < "$f"
  done

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
    echo "$m ${files[$m]##*/}" >> "$kdir/module-files"
    deps=$(modinfo -F depends "$kdir/modules/$m.ko" | tr ',' ' ')
    echo "$m: $deps" | sed 's/ *$//' >> "$kdir/deps.txt"
    for f in $deps; do queue+=("$f"); done
  done

  extract_pvh_vmlinux "$kdir"
  touch "$kdir/.complete"
  ln -sfn "$name" "$kdir_link"
  rm -rf "$root"
  lane_log "kernel $series: $krel in $(( $(date +%s) - t0 ))s, modules: $(cut -d: -f1 "$kdir/deps.txt" | tr '\n' ' ')"
}

# Kernels and packages no series points at any more (after --refresh or a
# pattern change) are dead weight: drop them.
prune_cache() {
  local d keep_dirs="" keep_debs="" s
  for s in $LANE_SERIES; do
    [ -L "$LANE_CACHE/kernels/$s" ] || return 0  # not every series prepared: keep all
    d=$(readlink "$LANE_CACHE/kernels/$s")
    keep_dirs+=" $d "
    keep_debs+=" $(tr '\n' ' ' < "$LANE_CACHE/kernels/$s/debs" 2>/dev/null) "
  done
  for d in "$LANE_CACHE"/kernels/*; do
    [ -L "$d" ] && continue
    case $keep_dirs in *" ${d##*/} "*) ;; *) lane_log "pruning ${d##*/}"; rm -rf "$d" ;; esac
  done
  for d in "$LANE_CACHE"/debs/*.deb; do
    [ -f "$d" ] || continue
    case $keep_debs in *" ${d##*/} "*) ;; *) lane_log "pruning ${d##*/}"; rm -f "$d" ;; esac
  done
}

main() {
  mkdir -p "$LANE_CACHE"
  # One setup at a time: two of them re-collecting the same kernel (e.g.
  # after lib.sh asks for a new module) would delete each other's files.
  exec 7>"$LANE_CACHE/setup.lock"
  flock 7
  install_host_packages
  command -v qemu-system-x86_64 >/dev/null || lane_die "qemu-system-x86_64 missing after install"
  [ -x /bin/busybox ] || lane_die "/bin/busybox missing after install"
  lane_apt_init

  local series
  [ ${#WANT_SERIES[@]} -gt 0 ] || read -r -a WANT_SERIES <<< "$LANE_SERIES"
  for series in "${WANT_SERIES[@]}"; do
    collect_kernel "$series"
  done
  rm -rf "$LANE_CACHE/tmp"/unpack-*
  prune_cache
  lane_log "setup complete (cache: $LANE_CACHE)"
}

main

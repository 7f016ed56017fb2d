#!/usr/bin/env bash
# Builds the libFuzzer targets with the toolchain alone (no SwiftPM):
# each library module the targets need is compiled once, with coverage and
# AddressSanitizer, into an object file and a .swiftmodule; each target
# (scripts/fuzz/Fuzz*.swift) is then compiled against them and linked with
# libFuzzer.
#
#   scripts/fuzz/build.sh [TARGET...]   # parse, replay (default both):
#                                       # .fuzz/build/fuzz-parse, fuzz-replay
#
# Cached: a module is rebuilt only when one of its sources, or a module it
# imports, is newer than its object. Output goes under $FUZZ_DIR (default
# .fuzz/, kept out of git).
#
# Sanitizers: -sanitize=fuzzer,address. Swift 6.3 on Linux refuses
# -sanitize=undefined ("unsupported option for target"); Swift's own checks
# (overflow, bounds, exclusivity, preconditions) are kept on by building
# with -O, never -Ounchecked, and are what UBSan would add for C.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=/opt/swift/usr/bin:$PATH

FUZZ_DIR=${FUZZ_DIR:-.fuzz}
OUT=$FUZZ_DIR/build
mkdir -p "$OUT"
SANITIZE=${FUZZ_SANITIZE:-fuzzer,address}
FLAGS=(-O -swift-version 6 -parse-as-library -sanitize="$SANITIZE" -I "$OUT")

# newer TARGET FILE...: true when TARGET is missing or older than a FILE.
newer() {
    local target=$1; shift
    [[ -e $target ]] || return 0
    local f
    for f in "$@"; do [[ $f -nt $target ]] && return 0; done
    return 1
}

# module NAME DEPENDENCY...: Sources/NAME/**/*.swift (its folders too,
# sorted) → NAME.o + NAME.swiftmodule.
module() {
    local name=$1; shift
    local sources=()
    while IFS= read -r f; do sources+=("$f"); done < <(find Sources/"$name" -name '*.swift' | sort)
    local deps=()
    local d
    for d in "$@"; do deps+=("$OUT/$d.swiftmodule"); done
    if newer "$OUT/$name.o" "${sources[@]}" "${deps[@]}" "$0"; then
        echo "fuzz build: module $name"
        rm -f "$OUT/$name.o"
        if ! swiftc "${FLAGS[@]}" -wmo -suppress-warnings -module-name "$name" -c "${sources[@]}" -o "$OUT/$name.o" \
                -emit-module -emit-module-path "$OUT/$name.swiftmodule"; then
            rm -f "$OUT/$name.o"
            echo "fuzz build: module $name failed" >&2
            exit 1
        fi
    fi
}

# target NAME FILE MODULE...: links one fuzzer.
target() {
    local name=$1 file=$2; shift 2
    local objects=()
    local m
    for m in "$@"; do objects+=("$OUT/$m.o"); done
    if newer "$OUT/$name" "$file" "${objects[@]}"; then
        echo "fuzz build: $name"
        # ld.gold warns about every ASan thunk it cannot export: noise.
        # Linked aside and renamed, so a fuzzer still running keeps its binary.
        if ! swiftc "${FLAGS[@]}" -module-name "${name//-/_}" "$file" "${objects[@]}" -o "$OUT/$name.new" \
                > "$OUT/$name.link.log" 2>&1; then
            grep -v 'Cannot export local symbol' "$OUT/$name.link.log" >&2
            exit 1
        fi
        mv -f "$OUT/$name.new" "$OUT/$name"
    fi
}

TARGETS=${*:-parse replay}
module VFIOCore
module VFIOTrace VFIOCore
module VFIOModel VFIOCore
module VFIOReplay VFIOCore VFIOTrace
for t in $TARGETS; do
    case $t in
        parse) target fuzz-parse scripts/fuzz/FuzzParse.swift VFIOCore VFIOTrace ;;
        replay) target fuzz-replay scripts/fuzz/FuzzReplay.swift VFIOCore VFIOTrace VFIOModel VFIOReplay ;;
        *) echo "fuzz build: unknown target '$t' (parse, replay)" >&2; exit 1 ;;
    esac
done

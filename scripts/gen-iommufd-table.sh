#!/usr/bin/env bash
# Regenerates the difference table at the end of docs/IOMMUFD.md from
# `vfio-sim compare --markdown Fixtures/*.trace` (everything after the line
# "<!-- generated: vfio-sim compare --markdown Fixtures/*.trace -->").
# Run after changing a fixture or a rule; a CLI test fails while they differ.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${VFIO_SIM:-.build/debug/vfio-sim}"
marker='<!-- generated: vfio-sim compare --markdown Fixtures/*.trace -->'
doc=docs/IOMMUFD.md
head=$(awk -v m="$marker" '{print} $0 == m {exit}' "$doc")
grep -qxF "$marker" "$doc" || { echo "$doc has no marker line" >&2; exit 1; }
{ printf '%s\n\n' "$head"; "$bin" compare --markdown Fixtures/*.trace; } > "$doc.tmp"
mv "$doc.tmp" "$doc"

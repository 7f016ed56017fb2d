# shellcheck shell=bash
# The kernel developer's lane (sourced by lane.sh, after lib.sh): a kernel
# of one's own, built from a tree (--kernel-source) or already built
# (--kernel TREE, or --kernel bzImage --modules DIR), run under the chosen
# IOMMUs as the configurations dev-IOMMU (LANE_DEV_CONFIGS in lib.sh).
# docs/KERNEL_DEVELOPER.md is the workflow.

# lane_dev_prepare: reads DEV_SOURCE, DEV_KERNEL, DEV_MODULES,
# DEV_KCONFIG, DEV_IOMMUS (comma separated) and the CONFIGS array; builds
# the tree first when DEV_SOURCE is set (build-kernel.sh --source), takes
# the kernel into the cache and checks its options (import-kernel.sh), then
# exports LANE_DEV_KERNEL and sets CONFIGS to dev-IOMMU for each IOMMU to
# run (the ones named, or every one the kernel's options allow) and
# LANE_DEV_RELEASE. Exits 125 when the build fails or an option is missing.
lane_dev_prepare() {
  local args=() out line
  if [ -n "$DEV_SOURCE" ]; then
    [ -z "$DEV_KERNEL" ] || lane_die "--kernel-source and --kernel name the same thing: give one"
    "$LANE_DIR/build-kernel.sh" --source "$DEV_SOURCE" >&2 || lane_die "building $DEV_SOURCE failed"
    DEV_KERNEL=$DEV_SOURCE
  fi
  [ ${#CONFIGS[@]} -eq 0 ] || lane_die "--kernel runs its own configurations: choose them with --iommu, not --config"
  [ -z "$DEV_IOMMUS" ] || args+=(--iommu "$DEV_IOMMUS")
  [ -z "$DEV_MODULES" ] || args+=(--modules "$DEV_MODULES")
  [ -z "$DEV_KCONFIG" ] || args+=(--kernel-config "$DEV_KCONFIG")
  out=$("$LANE_DIR/import-kernel.sh" "${args[@]}" "$DEV_KERNEL") || lane_die "cannot run the lane on $DEV_KERNEL (above)"
  LANE_DEV_KERNEL="" LANE_DEV_RELEASE="" CONFIGS=()
  while IFS= read -r line; do
    case $line in
      dir=*) LANE_DEV_KERNEL=${line#dir=} ;;
      release=*) LANE_DEV_RELEASE=${line#release=} ;;
      iommus=*) for i in ${line#iommus=}; do CONFIGS+=("dev-$i"); done ;;
    esac
  done <<< "$out"
  if [ -z "$LANE_DEV_KERNEL" ] || [ ${#CONFIGS[@]} -eq 0 ]; then lane_die "import-kernel.sh said nothing usable"; fi
  export LANE_DEV_KERNEL
  lane_log "your kernel $LANE_DEV_RELEASE: the model answers as this release; configurations ${CONFIGS[*]}"
}

import VFIOCore

// Why the calls other than MAP, UNMAP and attach got their answer
// (`Type1Container+Explain.swift` has those): CHECK_EXTENSION, GET_INFO,
// DIRTY_PAGES, a group's detach, and every call after the kernel stopped
// returning. Worked out after the call from the state it left.

extension Type1Container {
    /// Why a call answered `hang`: the ioctl that never returned, or one
    /// after it (the process makes no more calls).
    func explainHang() -> String {
        "the process never returns from the kernel: \(hang ?? "an earlier call loops forever") (vfio_unmap_unpin); no later call of the process is answered"
    }

    /// Why `VFIO_CHECK_EXTENSION(ext)` answered `value`.
    /// Why `VFIO_SET_IOMMU` failed (`vfio_ioctl_set_iommu`).
    func explainSetIOMMU(_ type: Extension, _ e: Errno) -> String {
        if e == .hang { return explainHang() }
        if e == .ENODEV { return "the kernel does not offer \(type) (vfio_ioctl_set_iommu)" }
        if e == .EINVAL && groups.isEmpty { return "no group in the container (vfio_ioctl_set_iommu)" }
        if e == .EINVAL && isSet { return "an IOMMU is already set on the container (vfio_ioctl_set_iommu)" }
        // SET_IOMMU attaches every group; before it there is no mapping,
        // so an attach can fail only for these.
        if e == .EINVAL { return "attaching the groups left no valid IOVA range: every IOVA is reserved or outside an aperture (vfio_iommu_type1_attach_group)" }
        if e == .EPERM { return "a group's IOMMU does not isolate MSI and allow_unsafe_interrupts is off (vfio_iommu_type1_attach_group)" }
        return "a group's attach failed with \(e) while the IOMMU was set (vfio_iommu_type1_attach_group)"
    }

    public func explainExtension(_ ext: Extension, _ value: Result<UInt32, Errno>) -> String? {
        guard case .success(let v) = value else { return explainHang() }
        let fn = "(vfio_iommu_type1_check_extension)"
        switch ext {
        case .type1, .type1v2:
            return "\(v): the type1 driver offers both type1 and type1v2 on every release " + fn
        case .unmapAll:
            return v == 1 ? "1: VFIO_DMA_UNMAP_FLAG_ALL exists since 5.12 " + fn
                : "0: VFIO_UNMAP_ALL came with 5.12; kernel \(profile) has no such flag " + fn
        case .updateVaddr:
            if !profile.hasUnmapAllAndVaddr { return "0: VFIO_UPDATE_VADDR came with 5.12; kernel \(profile) has no such flag " + fn }
            if v == 1 { return "1: VFIO_UPDATE_VADDR is offered" + (profile.updateVaddrExcludesMdevs ? " (an IOMMU is set and no emulated group is attached)" : "") + " " + fn }
            let why = isSet ? "an emulated (mdev) group is attached" : "no IOMMU is set yet"
            return "0: since 6.3 and 6.1.16 VFIO_UPDATE_VADDR is refused while \(why) (vfio_iommu_type1_check_extension, vfio_iommu_has_emulated)"
        case .nesting:
            return v == 1 ? "1: VFIO_TYPE1_NESTING_IOMMU is still offered before 6.13 " + fn
                : "0: VFIO_TYPE1_NESTING_IOMMU was removed in 6.13 " + fn
        case .dmaCC:
            if !isSet { return "0: no IOMMU is set: the driver is asked without a container and answers 0 " + fn }
            if v == 1 { return "1: every IOMMU domain enforces cache coherency (vfio_domains_have_enforce_cache_coherency)" }
            let names = domains.filter { !$0.spec.coherent }.flatMap(\.groups).joined(separator: ", ")
            return "0: the domain of \(names) does not enforce cache coherency (vfio_domains_have_enforce_cache_coherency)"
        default:
            return "\(v): not an extension of the type1 driver " + fn
        }
    }

    /// Why `VFIO_IOMMU_GET_INFO` failed with `e` (a success is plain).
    public func explainInfo(argsz: UInt32, _ e: Errno) -> String? {
        if !isSet { return "no IOMMU is set on the container: VFIO_SET_IOMMU has not run, failed, or the last group left, so the ioctl reaches no driver (vfio_fops_unl_ioctl)" }
        if e == .hang { return explainHang() }
        if argsz < IOMMUInfo.minimumArgsz {
            return "argsz \(argsz) is below \(IOMMUInfo.minimumArgsz), the end of iova_pgsizes in struct vfio_iommu_type1_info (vfio_iommu_type1_get_info)"
        }
        return nil
    }

    /// Why a group's detach (`VFIO_GROUP_UNSET_CONTAINER`) failed with `e`.
    public func explainDetach(_ name: String, _ e: Errno, wasInContainer: Bool) -> String? {
        if e == .hang { return explainHang() }
        if !wasInContainer { return "group \(name) is not in the container (vfio_group_ioctl_unset_container)" }
        return nil
    }

    /// Why `VFIO_IOMMU_DIRTY_PAGES` failed with `e`, in the order the
    /// kernel checks (`vfio_iommu_type1_dirty_pages`).
    public func explainDirty(_ d: DirtyPages, _ e: Errno) -> String? {
        let fn = "(vfio_iommu_type1_dirty_pages)"
        if !isSet { return "no IOMMU is set on the container (vfio_fops_unl_ioctl)" }
        if e == .hang { return explainHang() }
        if e == .EACCES { return "dirty tracking needs a v2 container: VFIO_TYPE1_IOMMU answers EACCES " + fn }
        if d.argsz < 8 || d.flags.rawValue & ~UInt32(7) != 0 { return "argsz below 8 or a flag other than START, STOP, GET_BITMAP " + fn }
        if d.flags.rawValue.nonzeroBitCount != 1 { return "exactly one of START, STOP, GET_BITMAP must be set " + fn }
        if d.flags.contains(.start) {
            return "a mapping's bitmap would pass INT_MAX bits of the smallest page \(readableSize(minPgsize)) (vfio_dma_bitmap_alloc_all)"
        }
        if d.argsz < 48 { return "GET_BITMAP needs argsz 48, with struct vfio_iommu_type1_dirty_bitmap_get " + fn }
        guard let bitmap = d.bitmap, d.size != 0 else { return "GET_BITMAP of size 0 " + fn }
        guard let range = IOVARange(start: d.iova, size: d.size) else {
            return "iova + size - 1 passes 2^64-1: EOVERFLOW since the 6.18 overflow series, EINVAL before; kernel \(profile) " + fn
        }
        if !profile.inclusiveEndSearch && range.last == .max {
            return "before 6.18 the check is iova + size < iova, which also refuses a range ending exactly at 2^64-1; kernel \(profile) " + fn
        }
        if bitmap.pgsize == 0 { return "bitmap pgsize 0 " + fn }
        let pages = d.size >> UInt64(bitmap.pgsize.trailingZeroBitCount)
        if Self.verifyBitmapSize(pages: pages, bytes: bitmap.size) != nil {
            let why = pages == 0 ? "size is below one bitmap page" : bitmap.size == 0 ? "the bitmap is empty"
                : bitmap.size > (1 << 28) ? "a bitmap of \(bitmap.size) bytes is above 256 MiB"
                : "\(pages) pages need a bitmap of \(DMABitmap.bytesNeeded(pages: pages)) bytes, not \(bitmap.size)"
            return why + " (verify_bitmap_size)"
        }
        let pgsize = minPgsize
        if bitmap.pgsize != pgsize { return "bitmap pgsize \(readableSize(bitmap.pgsize)) is not the smallest IOMMU page \(readableSize(pgsize)) " + fn }
        if d.iova & (pgsize - 1) != 0 || d.size & (pgsize - 1) != 0 {
            return "iova and size must be multiples of the smallest IOMMU page \(readableSize(pgsize)) " + fn
        }
        if !dirtyPageTracking { return "dirty tracking is off: START it first " + fn }
        return "the range must begin and end on mapping boundaries (vfio_iova_dirty_bitmap → vfio_find_dma)"
    }

    // MARK: The kernel's log

    /// The line the kernel logs when pinning passes RLIMIT_MEMLOCK without
    /// CAP_IPC_LOCK: the function's name, then the limit rounded down to
    /// whole pages, in bytes, as a signed decimal (a `pr_warn` in
    /// `vfio_pin_pages_remote`, not rate-limited; every release from 5.10).
    var memlockWarning: String {
        let limit = Int64(bitPattern: lockLimitPages << Self.pageShift)
        return "vfio_pin_pages_remote: RLIMIT_MEMLOCK (\(limit)) exceeded"
    }

    /// The line the kernel logs when a group's IOMMU cannot isolate MSIs
    /// and `allow_unsafe_interrupts` is off (a `pr_warn` in
    /// `vfio_iommu_type1_attach_group` naming the module parameter).
    static let unsafeInterruptsWarning = "vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the module param \"allow_unsafe_interrupts\" to enable VFIO IOMMU support on this platform"

    /// What the kernel logs for a MAP that failed with `e`, if anything.
    public func kernelLogMap(_ e: Errno) -> String? { e == .ENOMEM ? memlockWarning : nil }

    /// What the kernel logs for an attach (or SET_IOMMU, which attaches
    /// every group) that failed with `e`: the replay of existing mappings
    /// pins through `vfio_pin_pages_remote` too.
    public func kernelLogAttach(_ e: Errno) -> String? {
        switch e {
        case .ENOMEM: memlockWarning
        case .EPERM: Self.unsafeInterruptsWarning
        default: nil
        }
    }
}

import VFIOCore

// Why an answer is what it is: one line naming the rule and the kernel
// function it comes from. Worked out after the call, from the request and
// the state it left (a failed call leaves the state as it was), so the
// ioctls themselves build no strings; a report asks only for the answers
// it prints.

extension Type1Container {
    /// Why `VFIO_IOMMU_MAP_DMA` of `map` gave `result`.
    public func explainMap(_ map: MapDMA, _ result: Result<Void, Errno>) -> String? {
        guard case .failure(let e) = result else {
            if map.flags.contains(.vaddr) {
                return "the mapping at \(formatAddress(map.iova)) takes its new vaddr \(formatAddress(map.vaddr)); nothing is pinned again (vfio_dma_do_map, VFIO_DMA_MAP_FLAG_VADDR)"
            }
            let pinned = domains.isEmpty ? "no IOMMU domain yet: nothing pinned until a group attaches" : "pinned and mapped in \(domains.count) domain\(domains.count == 1 ? "" : "s")"
            return "mapped \(readableSize(map.size)) at \(formatAddress(map.iova)): \(pinned); locked now \(readableSize(lockedBytes)), \(dmaAvail) of dma_entry_limit \(dmaEntryLimitAtOpen) left (vfio_dma_do_map → vfio_pin_map_dma)"
        }
        guard isSet else {
            return "no IOMMU is set on the container: VFIO_SET_IOMMU has not run, failed, or the last group left (vfio_fops_unl_ioctl)"
        }
        if e == .hang { return explainHang() }
        let iova = map.iova, vaddr = map.vaddr, size = map.size
        if map.argsz < MapDMA.structSize || map.flags.rawValue & ~UInt32(7) != 0 {
            return "argsz below \(MapDMA.structSize) or a flag other than READ, WRITE, VADDR (vfio_iommu_type1_map_dma)"
        }
        if map.flags.contains(.vaddr) && !profile.hasUnmapAllAndVaddr {
            return "kernel \(profile) has no VFIO_DMA_MAP_FLAG_VADDR (VFIO_UPDATE_VADDR came with 5.12): an unknown flag (vfio_iommu_type1_map_dma)"
        }
        if size == 0 { return "a mapping of size 0 is refused (vfio_dma_do_map)" }
        let wraps = iova.addingReportingOverflow(size - 1).overflow || vaddr.addingReportingOverflow(size - 1).overflow
        if e == .EOVERFLOW || (wraps && e == profile.overflowErrno) {
            let which = iova.addingReportingOverflow(size - 1).overflow ? "iova" : "vaddr"
            return "\(which) + size - 1 passes 2^64-1: EOVERFLOW since the 6.18 overflow series, EINVAL before; kernel \(profile) (vfio_dma_do_map)"
        }
        let setVaddr = map.flags.contains(.vaddr)
        let prot = map.flags.intersection([.read, .write])
        if (!prot.isEmpty && setVaddr) || (prot.isEmpty && !setVaddr) {
            return setVaddr ? "VFIO_DMA_MAP_FLAG_VADDR takes no READ or WRITE (vfio_dma_do_map)"
                            : "a mapping needs READ or WRITE (prot=none is refused) (vfio_dma_do_map)"
        }
        let pgsize = minPgsize
        if (size | iova | vaddr) & (pgsize - 1) != 0 {
            let bad = [("iova", iova), ("vaddr", vaddr), ("size", size)].filter { $0.1 & (pgsize - 1) != 0 }.map(\.0)
            return "\(bad.joined(separator: ", ")) not a multiple of the smallest IOMMU page \(readableSize(pgsize)) (1 << __ffs(pgsize_bitmap)) (vfio_dma_do_map)"
        }
        // An iova range that wraps and was refused for another reason (a
        // profile whose overflow check comes later) names no mapping.
        guard let range = IOVARange(start: iova, size: size) else {
            return "iova + size - 1 passes 2^64-1; refused with \(e) on kernel \(profile) (vfio_dma_do_map)"
        }
        let found = entry(vfioFindDMA(range))
        if setVaddr {
            guard let (at, dma) = found else {
                return "no mapping at \(formatAddress(iova)) to give a new vaddr (vfio_dma_do_map → vfio_find_dma)"
            }
            if !dma.flags.contains(.vaddrInvalid) {
                return "the mapping at \(formatAddress(at)) still has its vaddr: unmap it with VFIO_DMA_UNMAP_FLAG_VADDR first (vfio_dma_do_map)"
            }
            return "a new vaddr must name the whole mapping: it is \(formatAddress(at)) + \(readableSize(dma.size)) (vfio_dma_do_map)"
        }
        if e == .EEXIST, let (at, dma) = found {
            return "overlaps the mapping \(formatAddress(at))-\(formatAddress(at &+ (dma.size - 1))) (\(readableSize(dma.size))): a range is mapped once, never merged or replaced (vfio_dma_do_map → vfio_find_dma)"
        }
        if e == .ENOSPC {
            return "dma_avail is 0: the container already holds \(mappingCount) mappings, dma_entry_limit was \(dmaEntryLimitAtOpen) when it opened (vfio_dma_do_map)"
        }
        if e == .EINVAL && !vfioIommuIovaDmaValid(range) {
            let valid = iovaList.map(formatRange).joined(separator: ", ")
            return "\(formatRange(range)) is not inside one valid IOVA range (valid: \(valid)); every domain's aperture and reserved regions cut them (vfio_iommu_iova_dma_valid)"
        }
        if e == .ENOMEM {
            let pages = memory.normalBytes(vaddr: vaddr, size: size) >> Self.pageShift
            let limit = memlock.map(readableSize) ?? "unlimited"
            return "locked memory would pass RLIMIT_MEMLOCK \(limit): \(readableSize(lockedBytes)) locked + \(readableSize(pages << Self.pageShift)) this mapping pins, without CAP_IPC_LOCK (vfio_pin_pages_remote → vfio_lock_acct)"
        }
        if e == .EFAULT {
            return "part of vaddr \(formatAddress(vaddr)) + \(readableSize(size)) is not memory of the process: pinning fails there (vfio_pin_pages_remote → vaddr_get_pfns)"
        }
        if e == .EINVAL && dirtyPageTracking && size / pgsize > UInt64(Int32.max) {
            return "dirty tracking is on and the mapping's bitmap would pass INT_MAX bits (vfio_dma_bitmap_alloc)"
        }
        return nil
    }

    /// Why `VFIO_IOMMU_UNMAP_DMA` of `unmap` gave `result`; `mappingsBefore`
    /// and `leakedBefore` are the mappings and leaked pages there were.
    public func explainUnmap(_ unmap: UnmapDMA, _ result: Result<UInt64, Errno>, mappingsBefore: Int, leakedBefore: UInt64 = 0) -> String? {
        switch result {
        case .failure(let e): return explainUnmapFailure(unmap, e)
        case .success(let size): return explainUnmapSuccess(unmap, size, mappingsBefore: mappingsBefore, leakedBefore: leakedBefore)
        }
    }

    /// Why an unmap failed with `e`, in the order the kernel checks.
    func explainUnmapFailure(_ unmap: UnmapDMA, _ e: Errno) -> String? {
        let all = unmap.flags.contains(.all)
        guard isSet else { return "no IOMMU is set on the container: VFIO_SET_IOMMU has not run, failed, or the last group left (vfio_fops_unl_ioctl)" }
        if e == .hang { return explainHang() }
        if !profile.hasUnmapAllAndVaddr && !unmap.flags.intersection([.all, .vaddr]).isEmpty {
            let flag = all ? "VFIO_DMA_UNMAP_FLAG_ALL" : "VFIO_DMA_UNMAP_FLAG_VADDR"
            return "\(flag) came with 5.12; kernel \(profile) rejects unknown flags (vfio_iommu_type1_unmap_dma)"
        }
        if unmap.argsz < UnmapDMA.structSize {
            return "argsz \(unmap.argsz) is below the \(UnmapDMA.structSize) bytes of struct vfio_iommu_type1_dma_unmap (vfio_iommu_type1_unmap_dma)"
        }
        let known: UInt32 = profile.hasUnmapAllAndVaddr ? 7 : UnmapDMA.Flags.getDirtyBitmap.rawValue
        if unmap.flags.rawValue & ~known != 0 {
            let bad = formatAddress(UInt64(unmap.flags.rawValue & ~known))
            let names = profile.hasUnmapAllAndVaddr ? "GET_DIRTY_BITMAP, ALL and VADDR" : "only GET_DIRTY_BITMAP (ALL and VADDR came with 5.12)"
            return "flag bits \(bad) are unknown: kernel \(profile) knows \(names) and rejects the rest (vfio_iommu_type1_unmap_dma)"
        }
        if unmap.flags.contains(.getDirtyBitmap) && (all || unmap.flags.contains(.vaddr)) {
            return "GET_DIRTY_BITMAP cannot be combined with ALL or VADDR (vfio_iommu_type1_unmap_dma)"
        }
        if e == .EBUSY { return "VFIO_DMA_UNMAP_FLAG_VADDR while an emulated (mdev) group is attached, since 6.3 and 6.1.16 (vfio_dma_do_unmap)" }
        if unmap.flags.contains(.getDirtyBitmap) {
            return "GET_DIRTY_BITMAP needs argsz with the bitmap, dirty tracking on, the smallest page as pgsize and a bitmap big enough (vfio_iommu_type1_unmap_dma, verify_bitmap_size, vfio_dma_do_unmap)"
        }
        let pgsize = minPgsize
        if unmap.iova & (pgsize - 1) != 0 || (!all && (unmap.size == 0 || unmap.size & (pgsize - 1) != 0)) {
            return "iova and size must be nonzero multiples of the smallest IOMMU page \(readableSize(pgsize)) (vfio_dma_do_unmap)"
        }
        if all && (unmap.iova != 0 || unmap.size != 0) { return "VFIO_DMA_UNMAP_FLAG_ALL takes iova 0 and size 0 (vfio_dma_do_unmap)" }
        if !all, IOVARange(start: unmap.iova, size: unmap.size) == nil {
            return "iova + size - 1 passes 2^64-1: EOVERFLOW since the 6.18 overflow series, EINVAL before; kernel \(profile) (vfio_dma_do_unmap)"
        }
        if e == .EINVAL, v2 == true, !all, let range = IOVARange(start: unmap.iova, size: unmap.size) {
            if let (start, dma) = entry(vfioFindDMA(IOVARange(start: range.start, last: range.start))), start != range.start {
                return "v2 may not split a mapping: iova \(formatAddress(range.start)) is inside the mapping \(formatAddress(start)) + \(readableSize(dma.size)) (vfio_dma_do_unmap)"
            }
            if let (start, dma) = entry(vfioFindDMA(IOVARange(start: range.last, last: range.last))), start &+ (dma.size - 1) != range.last {
                return "v2 may not split a mapping: the range ends at \(formatAddress(range.last)), inside the mapping \(formatAddress(start)) + \(readableSize(dma.size)) (vfio_dma_do_unmap)"
            }
            if !profile.inclusiveEndSearch {
                return "v2 may not split a mapping: before 6.18 the checks at the range's ends compare with wrapping sums, so a mapping ending at 2^64-1 counts as split; kernel \(profile) (vfio_dma_do_unmap → vfio_find_dma)"
            }
        }
        if unmap.flags.contains(.vaddr) { return "a mapping in the range has already lost its vaddr: all or nothing (vfio_dma_do_unmap)" }
        return nil
    }

    /// Why an unmap succeeded with `size` written back, saying what stays
    /// when something does.
    func explainUnmapSuccess(_ unmap: UnmapDMA, _ size: UInt64, mappingsBefore: Int, leakedBefore: UInt64) -> String? {
        let removed = mappingsBefore - mappingCount
        let leaked = leakedPages &- leakedBefore
        let leak = leaked == 0 ? "" : "; \(readableSize(leaked << Self.pageShift)) stays locked, pinned and in the first domain's page table: the mapping ending at 2^64-1 left the container without being unmapped there (before 6.18 vfio_unmap_unpin walks to iova + size, which is 0 for it; kernel \(profile))"
        if unmap.flags.contains(.vaddr) {
            let what = unmap.flags.contains(.all) ? "every mapping" : "the mappings in the range"
            return "\(what) lost the vaddr (\(readableSize(size))): still mapped and pinned, no DMA change; a MAP with VFIO_DMA_MAP_FLAG_VADDR gives each a new one (vfio_dma_do_unmap, VFIO_DMA_UNMAP_FLAG_VADDR)"
        }
        if unmap.flags.contains(.all) {
            var text = "\(removed) mapping\(removed == 1 ? "" : "s") removed, \(readableSize(size)); locked now \(readableSize(lockedBytes))" + leak
            if let (at, dma) = entry(dmaList.first) {
                text += "; \(mappingCount) mapping\(mappingCount == 1 ? "" : "s") not removed, still mapped, pinned and DMA-able, the first \(formatAddress(at)) + \(readableSize(dma.size))"
                if let top = topSlots.first, !profile.inclusiveEndSearch {
                    text += ": before 6.18 vfio_find_dma_first_node compares with iova + size, which is 0 for the mapping at \(formatAddress(dmaList.key(top))) ending at 2^64-1, so the walk never starts at it nor at the mappings below it in the tree; kernel \(profile)"
                }
            }
            return text + " (vfio_dma_do_unmap, VFIO_DMA_UNMAP_FLAG_ALL)"
        }
        guard let range = IOVARange(start: unmap.iova, size: unmap.size) else { return nil }
        if range.last == .max && !profile.inclusiveEndSearch && size == 0 {
            return "before 6.18 the search compares with iova + size, which wraps to 0 for a range ending at 2^64-1: nothing is found; kernel \(profile) (vfio_dma_do_unmap)"
        }
        let left = remaining(in: range)
        if size > unmap.size {
            return "v1 removes whole mappings: every mapping that starts in the range goes, one sticks out past \(formatAddress(range.last)), so \(readableSize(size)) went for \(readableSize(unmap.size)) asked (vfio_dma_do_unmap)" + leak
        }
        if let (at, dma) = left {
            let why = v2 == true ? "" : at < range.start ? "v1: the first mapping the range touches starts before iova, so the walk stops at once; " : ""
            let hidden = v2 == true && !profile.inclusiveEndSearch && !topSlots.isEmpty ? "before 6.18 a mapping ending at 2^64-1 higher in the tree hides it from vfio_find_dma_first_node (it compares with iova + size, 0 there); " : ""
            return "\(why)\(hidden)the mapping \(formatAddress(at)) + \(readableSize(dma.size)) stays mapped, pinned and DMA-able; \(readableSize(size)) removed of \(readableSize(unmap.size)) asked (vfio_dma_do_unmap)" + leak
        }
        if size == 0 { return "no mapping in \(formatRange(range)): nothing removed, size 0 (vfio_dma_do_unmap)" }
        if size < unmap.size {
            return "only \(readableSize(size)) of the range was mapped; \(removed) mapping\(removed == 1 ? "" : "s") removed (vfio_dma_do_unmap)" + leak
        }
        return "\(removed) mapping\(removed == 1 ? "" : "s") removed, \(readableSize(size)); locked now \(readableSize(lockedBytes))" + leak + " (vfio_dma_do_unmap → vfio_remove_dma)"
    }

    /// A mapping still overlapping `range`, if any.
    func remaining(in range: IOVARange) -> (UInt64, DMAEntry)? { entry(vfioFindDMAFirst(range)) }

    /// The start and entry of the mapping in `slot`.
    func entry(_ slot: Int32?) -> (UInt64, DMAEntry)? { slot.map { (dmaList.key($0), dmaList.value($0)) } }

    /// Why attaching the group `spec` gave `result`.
    public func explainAttach(_ spec: DomainSpec, _ result: Result<Void, Errno>) -> String? {
        guard case .failure(let e) = result else {
            return isSet ? "attached; valid IOVA now \(iovaList.map(formatRange).joined(separator: ", ")) (vfio_iommu_type1_attach_group)" : nil
        }
        if e == .hang { return explainHang() }
        if e == .EBUSY { return "a mapping is waiting for a new vaddr: no group may attach meanwhile (vfio_iommu_type1_attach_group)" }
        if e == .EPERM { return "the group's IOMMU does not isolate MSI and allow_unsafe_interrupts is off (vfio_iommu_type1_attach_group)" }
        if e == .EINVAL {
            if groups.contains(where: { $0.name == spec.name }) { return "the group is already in the container (vfio_group_set_container)" }
            if vfioIommuAperConflict(spec.aperture) != nil {
                return "a mapping lies outside the new domain's aperture \(formatRange(spec.aperture)) (vfio_iommu_aper_conflict)"
            }
            if vfioIommuResvConflict(spec.reserved) {
                return "a mapping lies in a reserved region of the new domain (vfio_iommu_resv_conflict)"
            }
            return "no valid IOVA range would be left (vfio_iommu_type1_attach_group)"
        }
        if e == .ENOMEM {
            let limit = memlock.map(readableSize) ?? "unlimited"
            return "replaying the existing mappings into the new domain pins them again, and locked memory would pass RLIMIT_MEMLOCK \(limit) without CAP_IPC_LOCK (vfio_iommu_replay → vfio_pin_pages_remote)"
        }
        if e == .EFAULT {
            return "replaying the existing mappings into the new domain pins their memory; one runs over an address that is not memory of the process (vfio_iommu_replay → vfio_pin_pages_remote → vaddr_get_pfns)"
        }
        return nil
    }
}

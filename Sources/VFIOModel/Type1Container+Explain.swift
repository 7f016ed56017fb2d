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
            return "no IOMMU is set on the container: VFIO_SET_IOMMU has not run or failed (vfio_iommu_type1_ioctl is not reached)"
        }
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
            var pages: UInt64 = 0
            _ = memory.forEachRun(vaddr: vaddr, size: size) { run in
                if !run.reserved { pages &+= run.length >> Self.pageShift }
                return true
            }
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

    /// Why `VFIO_IOMMU_UNMAP_DMA` of `unmap` gave `result`; `before` is the
    /// number of mappings there were.
    public func explainUnmap(_ unmap: UnmapDMA, _ result: Result<UInt64, Errno>, mappingsBefore: Int) -> String? {
        let all = unmap.flags.contains(.all)
        switch result {
        case .failure(let e):
            guard isSet else { return "no IOMMU is set on the container (VFIO_SET_IOMMU has not run or failed)" }
            if !profile.hasUnmapAllAndVaddr && !unmap.flags.intersection([.all, .vaddr]).isEmpty {
                let flag = unmap.flags.contains(.all) ? "VFIO_DMA_UNMAP_FLAG_ALL" : "VFIO_DMA_UNMAP_FLAG_VADDR"
                return "kernel \(profile) has no \(flag) (came with 5.12): an unknown flag (vfio_iommu_type1_unmap_dma)"
            }
            if e == .EBUSY { return "VFIO_DMA_UNMAP_FLAG_VADDR while an emulated (mdev) group is attached (vfio_dma_do_unmap)" }
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
            }
            if unmap.flags.contains(.vaddr) { return "a mapping in the range has already lost its vaddr (vfio_dma_do_unmap)" }
            if unmap.flags.contains(.getDirtyBitmap) {
                return "GET_DIRTY_BITMAP needs dirty tracking on, the smallest page as pgsize and a bitmap big enough (vfio_dma_do_unmap, verify_bitmap_size)"
            }
            return nil
        case .success(let size):
            let removed = mappingsBefore - mappingCount
            if all { return "every mapping removed (\(removed)), \(readableSize(size)) in all; locked now \(readableSize(lockedBytes)) (vfio_dma_do_unmap, VFIO_DMA_UNMAP_FLAG_ALL)" }
            guard let range = IOVARange(start: unmap.iova, size: unmap.size) else { return nil }
            if range.last == .max && !profile.inclusiveEndSearch && size == 0 {
                return "before 6.18 the search compares with iova + size, which wraps to 0 for a range ending at 2^64-1: nothing is found; kernel \(profile) (vfio_dma_do_unmap)"
            }
            let left = remaining(in: range)
            if size > unmap.size {
                return "v1 removes whole mappings: every mapping that starts in the range goes, one sticks out past \(formatAddress(range.last)), so \(readableSize(size)) went for \(readableSize(unmap.size)) asked (vfio_dma_do_unmap)"
            }
            if let (at, dma) = left {
                let why = v2 == true ? "" : at < range.start ? "v1: the first mapping the range touches starts before iova, so the walk stops at once; " : ""
                return "\(why)the mapping \(formatAddress(at)) + \(readableSize(dma.size)) stays mapped, pinned and DMA-able; \(readableSize(size)) removed of \(readableSize(unmap.size)) asked (vfio_dma_do_unmap)"
            }
            if size == 0 { return "no mapping in \(formatRange(range)): nothing removed, size 0 (vfio_dma_do_unmap)" }
            if size < unmap.size {
                return "only \(readableSize(size)) of the range was mapped; \(removed) mapping\(removed == 1 ? "" : "s") removed (vfio_dma_do_unmap)"
            }
            return "\(removed) mapping\(removed == 1 ? "" : "s") removed, \(readableSize(size)); locked now \(readableSize(lockedBytes)) (vfio_dma_do_unmap → vfio_remove_dma)"
        }
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
        if e == .ENOMEM { return "replaying the existing mappings into the new domain needs more locked memory than RLIMIT_MEMLOCK allows (vfio_iommu_replay)" }
        return nil
    }
}

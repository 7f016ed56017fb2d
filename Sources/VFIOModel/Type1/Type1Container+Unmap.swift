import VFIOCore

extension Type1Container {
    /// `VFIO_IOMMU_UNMAP_DMA` (`vfio_iommu_type1_unmap_dma`,
    /// `vfio_dma_do_unmap`): returns the size written back, the sum of the
    /// sizes of the mappings removed (or invalidated).
    public mutating func unmapDMA(_ unmap: UnmapDMA) -> Result<UInt64, Errno> {
        guard isSet else { return .failure(.EINVAL) }
        if hang != nil { return .failure(.hang) }
        let flags = unmap.flags
        // 5.10 knows GET_DIRTY_BITMAP only; ALL and VADDR came with 5.12.
        let known: UInt32 = profile.hasUnmapAllAndVaddr ? 7 : UnmapDMA.Flags.getDirtyBitmap.rawValue
        if unmap.argsz < UnmapDMA.structSize || flags.rawValue & ~known != 0 { return .failure(.EINVAL) }
        if flags.contains(.getDirtyBitmap) && (flags.contains(.all) || flags.contains(.vaddr)) { return .failure(.EINVAL) }
        if flags.contains(.getDirtyBitmap) {
            guard unmap.argsz >= UnmapDMA.structSize + 24, let bitmap = unmap.bitmap else { return .failure(.EINVAL) }
            // verify_bitmap_size(size >> ffs(pgsize), bitmap.size); a zero
            // pgsize has no defined shift: treated as a bad bitmap.
            guard bitmap.pgsize != 0 else { return .failure(.EINVAL) }
            let pages = unmap.size >> UInt64(bitmap.pgsize.trailingZeroBitCount)
            if let e = Self.verifyBitmapSize(pages: pages, bytes: bitmap.size) { return .failure(e) }
            // The bits of each mapping it removes (`update_user_bitmap`):
            // those mapped in the range before that are gone after.
            lastDirtyBitmap = nil
            guard let range = IOVARange(start: unmap.iova, size: unmap.size) else { return vfioDmaDoUnmap(unmap) }
            let before = dirtyMappings(in: range)
            let result = vfioDmaDoUnmap(unmap)
            if case .success = result {
                let gone = before.filter { m in dmaList.slot(at: m.start).map { dmaList.size($0) != m.size } ?? true }
                lastDirtyBitmap = Self.bitmapRanges(gone, within: range)
            }
            return result
        }
        return vfioDmaDoUnmap(unmap)
    }

    /// `verify_bitmap_size`.
    static func verifyBitmapSize(pages: UInt64, bytes: UInt64) -> Errno? {
        if pages == 0 || bytes == 0 || bytes > (1 << 28) { return .EINVAL }
        if bytes < DMABitmap.bytesNeeded(pages: pages) { return .EINVAL }
        return nil
    }

    /// `vfio_dma_do_unmap`.
    mutating func vfioDmaDoUnmap(_ unmap: UnmapDMA) -> Result<UInt64, Errno> {
        let all = unmap.flags.contains(.all)
        let invalidateVaddr = unmap.flags.contains(.vaddr)
        let getBitmap = unmap.flags.contains(.getDirtyBitmap)
        let pgsize = minPgsize
        var iova = unmap.iova
        let size = unmap.size

        if invalidateVaddr && !emulatedGroups.isEmpty && profile.updateVaddrExcludesMdevs { return .failure(.EBUSY) }
        if iova & (pgsize - 1) != 0 { return .failure(.EINVAL) }
        let range: IOVARange
        if all {
            if iova != 0 || size != 0 { return .failure(.EINVAL) }
            range = .all
        } else {
            if size == 0 || size & (pgsize - 1) != 0 { return .failure(.EINVAL) }
            guard let r = IOVARange(start: iova, size: size) else { return .failure(profile.overflowErrno) }
            range = r
        }
        if getBitmap && (!dirtyPageTracking || unmap.bitmap?.pgsize != pgsize) { return .failure(.EINVAL) }

        if !profile.inclusiveEndSearch { return vfioDmaDoUnmapWrapping(iova: range.start, size: size, all: all, invalidateVaddr: invalidateVaddr) }

        // The common case, one whole mapping: no bisect can fail and no
        // other mapping can lie in the range, so one lookup decides.
        if !all, let slot = dmaList.slot(at: range.start), dmaList.size(slot) == size {
            if invalidateVaddr {
                if dmaList.value(slot).flags.contains(.vaddrInvalid) { return .failure(.EINVAL) }
                dmaList.update(slot) { $0.flags.insert(.vaddrInvalid) }
                vaddrInvalidCount += 1
            } else {
                vfioRemoveDMA(slot)
            }
            return .success(size)
        }

        // Nothing in the range: no bisect check below can fail (each needs a
        // mapping holding an end of the range) and nothing is removed, so
        // the kernel's answer is 0; the model skips its two lookups. An
        // unmap of a range already unmapped is common in real traces.
        var first = vfioFindDMAFirst(range)
        if first == nil { return .success(0) }

        if v2 == true && !all {
            // A v2 unmap may not start or end inside a mapping.
            if let slot = vfioFindDMA(start: range.start, size: 1), dmaList.key(slot) != range.start {
                return .failure(.EINVAL)
            }
            if let slot = vfioFindDMA(start: range.last, size: 1),
               dmaList.key(slot) &+ (dmaList.size(slot) - 1) != range.last {
                return .failure(.EINVAL)
            }
        }

        // The mappings: ascending from the first overlapping one while they
        // start in the range. Walked in place, not gathered first: a node's
        // slot outlives the removal of another (the tree relinks nodes as
        // rb_erase does), and an array per unmap was a third of its cost.
        if v2 == false, !all, let slot = first, dmaList.key(slot) < range.start {
            // v1: the first overlapping mapping starts before iova: nothing.
            first = nil
        }
        iova = range.start

        var unmapped: UInt64 = 0
        if invalidateVaddr {
            // All or nothing: one already invalid refuses the whole range.
            var next = first
            while let slot = next, dmaList.key(slot) <= range.last {
                if dmaList.value(slot).flags.contains(.vaddrInvalid) { return .failure(.EINVAL) }
                next = dmaList.next(slot)
            }
            next = first
            while let slot = next, dmaList.key(slot) <= range.last {
                dmaList.update(slot) { $0.flags.insert(.vaddrInvalid) }
                vaddrInvalidCount += 1
                unmapped &+= dmaList.size(slot)
                next = dmaList.next(slot)
            }
            return .success(unmapped)
        }
        var next = first
        while let slot = next, dmaList.key(slot) <= range.last {
            next = dmaList.next(slot)
            unmapped &+= dmaList.size(slot)
            vfioRemoveDMA(slot)
        }
        return .success(unmapped)
    }

    /// `vfio_dma_do_unmap` before the 6.18 overflow series, on the kernel's
    /// tree with its wrapping sums: the v2 bisect checks
    /// (`vfio_find_dma(iova, 1)`, `vfio_find_dma(iova + size - 1, 0)`) come
    /// first, so a range ending at 2^64-1 that starts inside a mapping is
    /// EINVAL; then the walk. Since 5.12 it starts at
    /// `vfio_find_dma_first_node` and goes on with `rb_next` until a mapping
    /// starts at or past `iova + size` (0 at the top: it stops at once);
    /// 5.10 asks `vfio_find_dma(iova, size)` from the root after each
    /// removal. A v1 unmap stops at a mapping that starts below `iova`.
    mutating func vfioDmaDoUnmapWrapping(iova: UInt64, size: UInt64, all: Bool, invalidateVaddr: Bool) -> Result<UInt64, Errno> {
        if v2 == true && !all {
            if let slot = dmaList.wrappingFind(start: iova, size: 1), dmaList.key(slot) != iova {
                return .failure(.EINVAL)
            }
            if let slot = dmaList.wrappingFind(start: iova &+ (size &- 1), size: 0),
               dmaList.key(slot) &+ dmaList.size(slot) != iova &+ size {
                return .failure(.EINVAL)
            }
        }
        var unmapped: UInt64 = 0
        if !profile.unmapWalksFromFirstNode {
            // 5.10 (no ALL, no VADDR: refused with their flags).
            while let slot = dmaList.wrappingFind(start: iova, size: size) {
                if v2 == false && iova > dmaList.key(slot) { break }
                let removed = dmaList.size(slot)
                guard vfioRemoveDMA(slot) else { return .failure(.hang) }
                unmapped &+= removed
            }
            return .success(unmapped)
        }
        let span = all ? UInt64.max : size
        var next = dmaList.wrappingFirstNode(start: iova, size: span)
        var invalidated: [Int32] = []
        while let slot = next {
            if dmaList.key(slot) >= iova &+ span { break }
            if v2 == false && iova > dmaList.key(slot) { break }
            if invalidateVaddr {
                if dmaList.value(slot).flags.contains(.vaddrInvalid) {
                    // The ones marked so far are marked valid again.
                    for s in invalidated { dmaList.update(s) { $0.flags.remove(.vaddrInvalid) } }
                    vaddrInvalidCount -= invalidated.count
                    return .failure(.EINVAL)
                }
                dmaList.update(slot) { $0.flags.insert(.vaddrInvalid) }
                vaddrInvalidCount += 1
                invalidated.append(slot)
                unmapped &+= dmaList.size(slot)
                next = dmaList.next(slot)
                continue
            }
            next = dmaList.next(slot)
            let removed = dmaList.size(slot)
            guard vfioRemoveDMA(slot) else { return .failure(.hang) }
            unmapped &+= removed
        }
        return .success(unmapped)
    }

    /// `vfio_remove_dma`: out of every domain's page table
    /// (`vfioUnmapUnpin`), the entry freed, its `dma_avail` slot back.
    /// Returns false, changing nothing, when the kernel would loop forever
    /// in `vfio_unmap_unpin` (then `hang` says why).
    @discardableResult
    mutating func vfioRemoveDMA(_ slot: Int32) -> Bool {
        let dma = dmaList.value(slot)
        if dma.flags.contains(.iommuMapped) {
            guard vfioUnmapUnpin(slot: slot, dma) else { return false }
        }
        if let i = topSlots.firstIndex(of: slot) { topSlots.remove(at: i) }
        dmaList.remove(slot)
        if dma.flags.contains(.vaddrInvalid) { vaddrInvalidCount -= 1 }
        dmaAvail += 1
        return true
    }

    /// `vfio_unmap_unpin`: the mapping leaves every domain and its pins
    /// are released and uncharged. Returns false when the kernel would loop
    /// forever instead (nothing changes, `hang` is set).
    ///
    /// Before 6.18 the first domain's walk is `while (iova < end)` with
    /// `end = iova + size`, the IOMMU asked for each physically contiguous
    /// piece (`iommu_iova_to_phys`, `iommu_unmap_fast`) and `iova` moved on
    /// by what it reports unmapped:
    /// - a mapping ending at 2^64-1 has `end` 0: nothing is unmapped there,
    ///   unpinned or uncharged (the other domains are unmapped by size);
    /// - a mapping that another one ending at 2^64-1 starts inside (the
    ///   kernel let the two overlap): the IOMMU removes the other's whole
    ///   mapping too (virtio-iommu unmaps every mapping that starts in the
    ///   range, whole), so `iova` passes 2^64, wraps below `end`, and the
    ///   walk goes on a page at a time with a WARNING per page: a hang;
    /// - a mapping lying inside one that ends at 2^64-1 and starts below
    ///   it: the IOMMU finds the other's mapping first, refuses to split it
    ///   (unmaps 0), and the walk gives up (`WARN_ON(!unmapped)`): nothing
    ///   is unmapped in the first domain, unpinned or uncharged.
    /// The last two follow virtio-iommu (`viommu_unmap_pages`,
    /// `viommu_iova_to_phys`), where they were seen; other IOMMU drivers may
    /// differ.
    mutating func vfioUnmapUnpin(slot: Int32, _ dma: DMAEntry) -> Bool {
        let iova = dmaList.key(slot)
        if !profile.inclusiveEndSearch && !domains.isEmpty {
            if iova &+ dma.size == 0 {
                leak(slot: slot, dma)
                return true
            }
            let last = iova + (dma.size - 1)
            for t in topSlots where t != slot && dmaList.value(t).flags.contains(.iommuMapped) {
                // The other mapping's IOMMU piece that reaches 2^64-1: one
                // `map_pages` call per run of same-size pages.
                let tStart = domains[0].pageTable.runs(slot: t)?.lastRunIOVA ?? dmaList.key(t)
                if tStart >= iova && tStart <= last {
                    hang = "vfio_unmap_unpin of the mapping at \(formatHex(iova)) (\(formatHex(dma.size)) bytes) "
                        + "also unmaps the one at \(formatHex(tStart)) that ends at 2^64-1: iova wraps past 2^64"
                    return false
                }
            }
            if topSlots.contains(where: { $0 != slot && dmaList.key($0) < iova && dmaList.value($0).flags.contains(.iommuMapped) }) {
                leak(slot: slot, dma)
                return true
            }
        }
        for i in domains.indices { domains[i].pageTable.remove(slot: slot) }
        unlockAcct(dma.lockedPages)
        return true
    }

    /// The first domain keeps the mapping's entries and its pins stay
    /// charged; the other domains are unmapped by size.
    mutating func leak(slot: Int32, _ dma: DMAEntry) {
        for i in domains.indices {
            if i == 0 { domains[i].pageTable.leak(slot: slot) } else { domains[i].pageTable.remove(slot: slot) }
        }
        leakedPages &+= dma.lockedPages   // bounded by lockedVm, which cannot wrap
    }
}

import VFIOCore

extension Type1Container {
    /// `VFIO_IOMMU_UNMAP_DMA` (`vfio_iommu_type1_unmap_dma`,
    /// `vfio_dma_do_unmap`): returns the size written back, the sum of the
    /// sizes of the mappings removed (or invalidated).
    public mutating func unmapDMA(_ unmap: UnmapDMA) -> Result<UInt64, Errno> {
        guard isSet else { return .failure(.EINVAL) }
        let flags = unmap.flags
        if unmap.argsz < UnmapDMA.structSize || flags.rawValue & ~UInt32(7) != 0 { return .failure(.EINVAL) }
        if flags.contains(.getDirtyBitmap) && (flags.contains(.all) || flags.contains(.vaddr)) { return .failure(.EINVAL) }
        if flags.contains(.getDirtyBitmap) {
            guard unmap.argsz >= UnmapDMA.structSize + 24, let bitmap = unmap.bitmap else { return .failure(.EINVAL) }
            // verify_bitmap_size(size >> ffs(pgsize), bitmap.size); a zero
            // pgsize has no defined shift: treated as a bad bitmap.
            guard bitmap.pgsize != 0 else { return .failure(.EINVAL) }
            let pages = unmap.size >> UInt64(bitmap.pgsize.trailingZeroBitCount)
            if let e = Self.verifyBitmapSize(pages: pages, bytes: bitmap.size) { return .failure(e) }
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

        if invalidateVaddr && !emulatedGroups.isEmpty { return .failure(.EBUSY) }
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

        // Before the 6.19 overflow series the walk compared against
        // `iova + size`, which is 0 for a range ending at 2^64-1: such an
        // unmap removed nothing.
        if !all && !profile.inclusiveEndSearch && range.last == .max { return .success(0) }

        // Before 6.19 a mapping ending at 2^64-1 is invisible to the tree
        // searches: UNMAP_ALL reaches it only by walking on from a lower one.
        let hidesTop = !profile.inclusiveEndSearch
        if all && hidesTop, let top = dmaList.floor(.max), top.key &+ top.value.size == 0,
           dmaList.count == 1 {
            return .success(0)
        }

        // The common case, one whole mapping: no bisect can fail and no
        // other mapping can lie in the range, so one lookup decides.
        if !all, let dma = dmaList.value(at: range.start), dma.size == size {
            if invalidateVaddr {
                if dma.flags.contains(.vaddrInvalid) { return .failure(.EINVAL) }
                dmaList.update(at: range.start) { $0.flags.insert(.vaddrInvalid) }
                vaddrInvalidCount += 1
            } else {
                vfioRemoveDMA(range.start)
            }
            return .success(size)
        }

        if v2 == true && !all {
            // A v2 unmap may not start or end inside a mapping.
            if let (start, _) = vfioFindDMA(IOVARange(start: range.start, last: range.start)), start != range.start {
                return .failure(.EINVAL)
            }
            if let (start, dma) = vfioFindDMA(IOVARange(start: range.last, last: range.last)),
               start &+ (dma.size - 1) != range.last {
                return .failure(.EINVAL)
            }
        }

        // Select the mappings: ascending from the first overlapping one.
        var selected: [(UInt64, DMAEntry)] = []
        var next = vfioFindDMAFirst(range)
        if v2 == false, !all, let (start, _) = next, start < range.start {
            // v1: the first overlapping mapping starts before iova: nothing.
            next = nil
        }
        while let (start, dma) = next, start <= range.last {
            selected.append((start, dma))
            next = dmaList.successor(start)
        }
        iova = range.start

        var unmapped: UInt64 = 0
        if invalidateVaddr {
            for (start, dma) in selected where dma.flags.contains(.vaddrInvalid) {
                _ = start
                return .failure(.EINVAL)
            }
            for (start, dma) in selected {
                dmaList.update(at: start) { $0.flags.insert(.vaddrInvalid) }
                vaddrInvalidCount += 1
                unmapped &+= dma.size
            }
            return .success(unmapped)
        }
        for (start, dma) in selected {
            vfioRemoveDMA(start)
            unmapped &+= dma.size
        }
        return .success(unmapped)
    }

    /// `vfio_remove_dma`: out of every domain's page table
    /// (`vfioUnmapUnpin`), the entry freed, its `dma_avail` slot back.
    mutating func vfioRemoveDMA(_ iova: UInt64) {
        guard let (slot, dma) = dmaList.removeEntry(iova) else { return }
        if dma.flags.contains(.iommuMapped) { vfioUnmapUnpin(iova: iova, slot: slot, dma) }
        if dma.flags.contains(.vaddrInvalid) { vaddrInvalidCount -= 1 }
        dmaAvail += 1
    }

    /// `vfio_unmap_unpin`: the mapping leaves every domain and its pins
    /// are released and uncharged.
    mutating func vfioUnmapUnpin(iova: UInt64, slot: Int32, _ dma: DMAEntry) {
        if !profile.inclusiveEndSearch && iova &+ dma.size == 0 {
            // Before 6.19 the first domain's walk ends at iova+size, which
            // wrapped to 0: nothing is unmapped there, unpinned or
            // uncharged. The other domains are unmapped by size.
            for i in domains.indices {
                if i == 0 { domains[i].pageTable.leak(slot: slot) } else { domains[i].pageTable.remove(slot: slot) }
            }
            leakedPages &+= dma.lockedPages   // bounded by lockedVm, which cannot wrap
            return
        }
        for i in domains.indices { domains[i].pageTable.remove(slot: slot) }
        unlockAcct(dma.lockedPages)
    }
}

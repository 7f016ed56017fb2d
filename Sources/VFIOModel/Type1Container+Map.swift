import VFIOCore

extension Type1Container {
    /// `VFIO_IOMMU_MAP_DMA` (`vfio_iommu_type1_map_dma`, `vfio_dma_do_map`):
    /// every check in the kernel's order, then pin and map; a failure
    /// leaves the container exactly as it was.
    public mutating func mapDMA(_ map: MapDMA) -> Result<Void, Errno> {
        guard isSet else { return .failure(.EINVAL) }
        if map.argsz < MapDMA.structSize || map.flags.rawValue & ~UInt32(7) != 0 { return .failure(.EINVAL) }
        return vfioDmaDoMap(map)
    }

    /// `vfio_dma_do_map`.
    mutating func vfioDmaDoMap(_ map: MapDMA) -> Result<Void, Errno> {
        let iova = map.iova, vaddr = map.vaddr, size = map.size
        let setVaddr = map.flags.contains(.vaddr)
        var prot = DMAEntry.Flags()
        if map.flags.contains(.write) { prot.insert(.write) }
        if map.flags.contains(.read) { prot.insert(.read) }

        if size == 0 { return .failure(.EINVAL) }
        let iovaWraps = iova.addingReportingOverflow(size - 1).overflow
        let vaddrWraps = vaddr.addingReportingOverflow(size - 1).overflow
        if profile.overflowErrno == .EOVERFLOW {
            if iovaWraps || vaddrWraps { return .failure(.EOVERFLOW) }
        }
        if (!prot.isEmpty && setVaddr) || (prot.isEmpty && !setVaddr) { return .failure(.EINVAL) }
        let pgsize = minPgsize
        if (size | iova | vaddr) & (pgsize - 1) != 0 { return .failure(.EINVAL) }
        if iovaWraps || vaddrWraps { return .failure(profile.overflowErrno) }
        let range = IOVARange(start: iova, last: iova + (size - 1))

        let found = vfioFindDMA(range)
        if setVaddr {
            guard let (foundIova, dma) = found else { return .failure(.ENOENT) }
            if !dma.flags.contains(.vaddrInvalid) || foundIova != iova || dma.size != size { return .failure(.EINVAL) }
            // Same process: no change of owner to account (vfio_change_dma_owner).
            dmaList.update(at: iova) {
                $0.vaddr = vaddr
                $0.flags.remove(.vaddrInvalid)
            }
            vaddrInvalidCount -= 1
            return .success(())
        }
        if found != nil { return .failure(.EEXIST) }
        if dmaAvail == 0 { return .failure(.ENOSPC) }
        if !vfioIommuIovaDmaValid(range) { return .failure(.EINVAL) }

        // Commit point: the entry exists from here; any later failure removes it.
        var entry = DMAEntry(size: size, vaddr: vaddr, pinnedVaddr: vaddr, lockedPages: 0, flags: prot)
        if capIPCLock { entry.flags.insert(.lockCap) }

        if !domains.isEmpty {
            switch pinAndMap(iova: iova, vaddr: vaddr, size: size, lockCap: capIPCLock, domains: domains) {
            case .failure(let e):
                return .failure(e)
            case .success(let (pages, perDomain)):
                entry.lockedPages = pages
                entry.flags.insert(.iommuMapped)
                for i in domains.indices { domains[i].pageTable.add(mapping: iova, perDomain[i]) }
            }
        }
        if dirtyPageTracking {
            // vfio_dma_bitmap_alloc: one bit per smallest page, at most INT_MAX bits.
            if size / pgsize > UInt64(Int32.max) {
                undoMapping(iova: iova, entry)
                return .failure(.EINVAL)
            }
            entry.flags.insert(.hasBitmap)
        }
        dmaAvail -= 1
        dmaList.insert(iova, entry)
        return .success(())
    }

    /// Reverses a mapping whose page tables and charge were set up but which
    /// never entered the list.
    mutating func undoMapping(iova: UInt64, _ entry: DMAEntry) {
        for i in domains.indices { domains[i].pageTable.remove(mapping: iova) }
        unlockAcct(entry.lockedPages)
    }

    /// `vfio_pin_map_dma` with `vfio_pin_pages_remote` and `vfio_iommu_map`:
    /// walks the memory chunk by chunk (physically contiguous, one class),
    /// charges each chunk's normal pages against `RLIMIT_MEMLOCK`, then maps
    /// it into every domain. Returns the pages charged and each domain's
    /// runs; on failure the charge is given back and nothing is kept.
    mutating func pinAndMap(iova: UInt64, vaddr: UInt64, size: UInt64, lockCap: Bool,
                            domains: [Domain]) -> Result<(UInt64, [ContiguousArray<PTERun>]), Errno> {
        var perDomain = [ContiguousArray<PTERun>](repeating: [], count: domains.count)
        var charged: UInt64 = 0
        var failure: Errno? = nil
        let limit = lockLimitPages
        var offset: UInt64 = 0
        let hole = memory.forEachRun(vaddr: vaddr, size: size) { run in
            // vfio_pin_pages_remote: the limit is checked as pages are
            // pinned, so a chunk fails as soon as it would pass the limit.
            if !run.reserved {
                let pages = run.length >> Self.pageShift
                if !lockCap {
                    let (sum, o) = lockedVm.addingReportingOverflow(charged + pages)
                    if o || sum > limit { failure = .ENOMEM; return false }
                }
                charged += pages
            }
            // vfio_iommu_map: the chunk into each domain, newest first.
            for i in domains.indices {
                if let e = iommuMap(iova: iova &+ offset, phys: run.phys, size: run.length,
                                    bitmap: domains[i].spec.pgsizes.rawValue, into: &perDomain[i]) {
                    failure = e
                    return false
                }
            }
            offset += run.length
            return true
        }
        if let failure { return .failure(failure) }
        // vaddr_get_pfns: an address with no memory behind it.
        if hole != nil { return .failure(.EFAULT) }
        lockedVm += charged
        return .success((charged, perDomain))
    }

    /// `vfio_find_dma`: any mapping overlapping `range`.
    func vfioFindDMA(_ range: IOVARange) -> (UInt64, DMAEntry)? {
        guard let (start, dma) = dmaList.floor(range.last) else { return nil }
        return start &+ (dma.size - 1) >= range.start ? (start, dma) : nil
    }

    /// `vfio_find_dma_first_node`: the lowest mapping overlapping `range`.
    func vfioFindDMAFirst(_ range: IOVARange) -> (UInt64, DMAEntry)? {
        if let (start, dma) = dmaList.floor(range.start), start &+ (dma.size - 1) >= range.start { return (start, dma) }
        if let (start, dma) = dmaList.ceiling(range.start), start <= range.last { return (start, dma) }
        return nil
    }

    /// `vfio_iommu_iova_dma_valid`: inside one valid range (or no ranges).
    func vfioIommuIovaDmaValid(_ range: IOVARange) -> Bool {
        iovaList.isEmpty || iovaList.contains { $0.contains(range) }
    }
}

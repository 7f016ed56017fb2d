import VFIOCore

extension Type1Container {
    /// `VFIO_IOMMU_MAP_DMA` (`vfio_iommu_type1_map_dma`, `vfio_dma_do_map`):
    /// every check in the kernel's order, then pin and map; a failure
    /// leaves the container exactly as it was.
    public mutating func mapDMA(_ map: MapDMA) -> Result<Void, Errno> {
        guard isSet else { return .failure(.EINVAL) }
        if hang != nil { return .failure(.hang) }
        // 5.10 knows READ and WRITE only; VADDR came with 5.12.
        let known: UInt32 = profile.hasUnmapAllAndVaddr ? 7 : 3
        if map.argsz < MapDMA.structSize || map.flags.rawValue & ~known != 0 { return .failure(.EINVAL) }
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
        // Since the overflow series a wrap is EOVERFLOW, checked first.
        if profile.overflowSeries {
            if iovaWraps || vaddrWraps { return .failure(.EOVERFLOW) }
        }
        if (!prot.isEmpty && setVaddr) || (prot.isEmpty && !setVaddr) { return .failure(.EINVAL) }
        let pgsize = minPgsize
        if (size | iova | vaddr) & (pgsize - 1) != 0 { return .failure(.EINVAL) }
        if iovaWraps || vaddrWraps { return .failure(profile.overflowErrno) }
        let range = IOVARange(start: iova, last: iova + (size - 1))

        // Before 6.18 a range ending at 2^64-1 has `iova + size` = 0: the
        // search turns left at every node and finds nothing.
        if setVaddr {
            guard let slot = vfioFindDMA(start: iova, size: size) else { return .failure(.ENOENT) }
            let dma = dmaList.value(slot)
            if !dma.flags.contains(.vaddrInvalid) || dmaList.key(slot) != iova || dma.size != size { return .failure(.EINVAL) }
            // Same process: no change of owner to account (vfio_change_dma_owner).
            dmaList.update(slot) {
                $0.vaddr = vaddr
                $0.flags.remove(.vaddrInvalid)
            }
            vaddrInvalidCount -= 1
            return .success(())
        }
        // Since 6.18 the exact search is made on the way down to where the
        // new mapping will be linked (`DMATree.linkPoint`: the same answer
        // as `vfioFindDMA`), so a MAP_DMA walks the tree once.
        let place: DMATree<DMAEntry>.LinkPoint?
        if profile.inclusiveEndSearch {
            guard let p = dmaList.linkPoint(start: iova, last: range.last) else { return .failure(.EEXIST) }
            place = p
        } else {
            if vfioFindDMA(start: iova, size: size) != nil { return .failure(.EEXIST) }
            place = nil
        }
        if dmaAvail == 0 { return .failure(.ENOSPC) }
        if !vfioIommuIovaDmaValid(range) { return .failure(.EINVAL) }
        if !profile.inclusiveEndSearch && !domains.isEmpty && overlapsAnyMapping(range) {
            // The wrapping search let a map through over an existing
            // mapping, and it will reach the IOMMU: what the driver then
            // does to the entries they share (replaces them, refuses, or
            // removes them with the other mapping) is the driver's, and
            // not modelled.
            overlapsLetThrough += 1
        }

        // The kernel links the vfio_dma here (`vfio_link_dma`, size 0) and
        // removes it again if a later step fails (`vfio_remove_dma`); the
        // model builds it aside and links it only once every step
        // succeeded. A failure still links and unlinks a node, so the
        // tree's shape, which decides the searches before 6.18, stays the
        // kernel's (`linkAndRemoveFailed`).
        var entry = DMAEntry(size: size, vaddr: vaddr, pinnedVaddr: vaddr, lockedPages: 0, flags: prot)
        if capIPCLock { entry.flags.insert(.lockCap) }

        var perDomain = RunsPerDomain(domains: domains.count)
        if !domains.isEmpty {
            switch vfioPinMapDMA(iova: iova, vaddr: vaddr, size: size, lockCap: capIPCLock, domains: domains, into: &perDomain) {
            case .failure(let e):
                linkAndRemoveFailed(iova: iova, entry)
                return .failure(e)
            case .success(let pages):
                entry.lockedPages = pages
                entry.flags.insert(.iommuMapped)
            }
        }
        if dirtyPageTracking {
            // vfio_dma_bitmap_alloc: one bit per smallest page, at most
            // INT_MAX bits; on failure the mapping is removed again.
            if size / pgsize > UInt64(Int32.max) {
                unlockAcct(entry.lockedPages)
                linkAndRemoveFailed(iova: iova, entry)
                return .failure(.EINVAL)
            }
            entry.flags.insert(.hasBitmap)
        }
        dmaAvail -= 1
        let slot: Int32
        if let place { slot = dmaList.insert(iova, size: size, entry, at: place) } else { slot = dmaList.insert(iova, size: size, entry) }
        if range.last == .max { topSlots.append(slot) }
        // (A mapping pinned without a hole gives each domain a run at least.)
        for i in 0..<perDomain.count { domains[i].pageTable.add(slot: slot, perDomain.take(domain: i) ?? .many([])) }
        return .success(())
    }

    /// Whether `range` overlaps a mapping, searched exactly (not the way
    /// the kernel's wrapping searches do before 6.18).
    func overlapsAnyMapping(_ range: IOVARange) -> Bool {
        if let slot = dmaList.floor(range.last) {
            let (end, wraps) = dmaList.key(slot).addingReportingOverflow(dmaList.size(slot) - 1)
            if wraps || end >= range.start { return true }
        }
        return topSlots.contains { dmaList.key($0) <= range.last }
    }

    /// A mapping that failed after `vfio_link_dma`: linked and erased again,
    /// so red-black rebalancing leaves the tree as the kernel's.
    mutating func linkAndRemoveFailed(iova: UInt64, _ entry: DMAEntry) {
        let slot = dmaList.insert(iova, size: entry.size, entry)
        _ = dmaList.remove(slot)
    }

    /// `vfio_pin_map_dma`: pins the memory chunk by chunk
    /// (`vfioPinPagesRemote`) and maps each chunk into every domain
    /// (`vfioIommuMap`). Returns the pages charged, each domain's runs in
    /// `perDomain` (made for `domains.count` domains, empty); on failure the
    /// charge is given back and the runs are to be dropped.
    mutating func vfioPinMapDMA(iova: UInt64, vaddr: UInt64, size: UInt64, lockCap: Bool,
                                domains: [Domain], into perDomain: inout RunsPerDomain) -> Result<UInt64, Errno> {
        var charged: UInt64 = 0
        var offset: UInt64 = 0
        let result = vfioPinPagesRemote(vaddr: vaddr, size: size, lockCap: lockCap) { piece, pages in
            charged += pages
            if let e = Self.vfioIommuMap(domains, iova: iova &+ offset, piece: piece, into: &perDomain) { return e }
            offset += piece.length
            return nil
        }
        if let e = result { return .failure(e) }
        lockAcct(charged)
        return .success(charged)
    }

    /// `vfio_pin_pages_remote` over a whole range: walks the memory as
    /// chunks (physically contiguous, one class), checks each chunk's
    /// normal pages against `RLIMIT_MEMLOCK` as they are pinned (a chunk
    /// fails as soon as it would pass the limit) and hands it to `body`
    /// with the pages it charges. An address with no memory behind it is
    /// EFAULT (`vaddr_get_pfns`). Nothing is committed to `locked_vm` here.
    ///
    /// A uniform stretch of chunks (`PinnedStretch`) is checked at once:
    /// the chunks that fit under the limit are the ones the kernel pins
    /// before the first that would pass it, handed over as one stretch,
    /// then ENOMEM; the pages handed over before the failure are the
    /// kernel's, page for page.
    func vfioPinPagesRemote(vaddr: UInt64, size: UInt64, lockCap: Bool,
                            _ body: (MemoryPiece, UInt64) -> Errno?) -> Errno? {
        var failure: Errno? = nil
        var pending: UInt64 = 0
        // Read before the walk: the closure then captures no `self` (which
        // would make the optimizer copy the whole container for it).
        let limit = lockLimitPages, locked = lockedVm
        let hole = memory.forEachPiece(vaddr: vaddr, size: size) { piece in
            switch piece {
            case .run(let run):
                let pages = run.reserved ? 0 : run.length >> Self.pageShift
                if pages > 0 {
                    // Past 2^64 pages the kernel's counter would wrap; the model
                    // refuses instead (ENOMEM), with or without CAP_IPC_LOCK.
                    let (sum, o) = locked.addingReportingOverflow(pending + pages)
                    if o || (!lockCap && sum > limit) { failure = .ENOMEM; return false }
                }
                pending += pages
                if let e = body(piece, pages) { failure = e; return false }
                return true
            case .stretch(let s):
                let each = s.reserved ? 0 : s.unit >> Self.pageShift
                let fit = each == 0 ? s.count : Self.chunksUnderLimit(each: each, count: s.count, locked: locked, pending: pending,
                                                                     limit: lockCap ? .max : limit)
                if fit == 0 { failure = .ENOMEM; return false }
                let pages = fit * each
                pending += pages
                if let e = body(.stretch(s.prefix(fit)), pages) { failure = e; return false }
                if fit < s.count { failure = .ENOMEM; return false }
                return true
            }
        }
        if let failure { return failure }
        return hole != nil ? .EFAULT : nil
    }

    /// Of `count` chunks of `each` pages pinned one after another on top of
    /// `locked + pending`, how many pass the check `vfio_pin_pages_remote`
    /// makes before each (the sum stays at most `limit` and below 2^64).
    static func chunksUnderLimit(each: UInt64, count: UInt64, locked: UInt64, pending: UInt64, limit: UInt64) -> UInt64 {
        let (base, o) = locked.addingReportingOverflow(pending)
        if o || base > limit { return 0 }
        return min(count, (limit - base) / each)
    }

    /// `vfio_iommu_map`: one chunk (or a uniform stretch of them) into
    /// each domain, newest first, each with its own page sizes.
    static func vfioIommuMap(_ domains: [Domain], iova: UInt64, piece: MemoryPiece,
                             into perDomain: inout RunsPerDomain) -> Errno? {
        for i in domains.indices {
            let bitmap = domains[i].spec.pgsizes.rawValue, leaves = domains[i].spec.leaves?.rawValue
            let e: Errno?
            switch piece {
            case .run(let chunk):
                e = perDomain.iommuMap(domain: i, iova: iova, phys: chunk.phys, size: chunk.length, bitmap: bitmap, leaves: leaves)
            case .stretch(let s):
                e = perDomain.iommuMap(domain: i) { $0.iommuMap(iova: iova, stretch: s, bitmap: bitmap, leaves: leaves) }
            }
            if let e { return e }
        }
        return nil
    }

    /// `vfio_find_dma(start, size)`: a mapping overlapping the range, the
    /// first the search meets. Since 6.18 the search compares inclusive
    /// ends and is exact (one `floor` on the ordered tree; `size` 0 stands
    /// for 2^64). Before, it walks the kernel's tree with `start + size` and
    /// `iova + size` wrapping (`DMATree.wrappingFind`).
    @inline(__always)   // a call copies the whole container from a mutating caller
    func vfioFindDMA(start: UInt64, size: UInt64) -> Int32? {
        if !profile.inclusiveEndSearch { return dmaList.wrappingFind(start: start, size: size) }
        let last = start &+ (size &- 1)
        guard let slot = dmaList.floor(last) else { return nil }
        return dmaList.key(slot) &+ (dmaList.size(slot) - 1) >= start ? slot : nil
    }

    /// `vfio_find_dma` over an inclusive range (the kernel's callers pass
    /// `start` and `last - start + 1`).
    @inline(__always)   // a call copies the whole container from a mutating caller
    func vfioFindDMA(_ range: IOVARange) -> Int32? {
        vfioFindDMA(start: range.start, size: range.last &- range.start &+ 1)
    }

    /// `vfio_find_dma_first_node` since 6.18: the lowest mapping
    /// overlapping `range`, on the ordered tree.
    @inline(__always)   // a call copies the whole container from a mutating caller
    func vfioFindDMAFirst(_ range: IOVARange) -> Int32? {
        if let slot = dmaList.floor(range.start), dmaList.key(slot) &+ (dmaList.size(slot) - 1) >= range.start { return slot }
        if let slot = dmaList.ceiling(range.start), dmaList.key(slot) <= range.last { return slot }
        return nil
    }

    /// `vfio_iommu_iova_dma_valid`: inside one valid range (or no ranges).
    func vfioIommuIovaDmaValid(_ range: IOVARange) -> Bool {
        iovaList.isEmpty || iovaList.contains { $0.contains(range) }
    }
}

/// The runs one MAP_DMA makes, one list per domain (in `domains` order, nil
/// until the domain gets its first run). The first domain's list is held
/// inline, so a mapping into one domain allocates nothing here.
struct RunsPerDomain {
    private var first: RunList? = nil
    /// The other domains' lists; nil for one domain (nothing to release).
    private var rest: [RunList?]?
    let count: Int

    init(domains: Int) {
        count = domains
        rest = domains > 1 ? [RunList?](repeating: nil, count: domains - 1) : nil
    }

    subscript(domain: Int) -> RunList? { domain == 0 ? first : rest?[domain - 1] ?? nil }

    /// Moves the list of domain `domain` out (leaving nil), so handing it to
    /// a page table copies no array.
    mutating func take(domain: Int) -> RunList? {
        if domain == 0 { return first.take() }
        return rest?[domain - 1].take() ?? nil
    }

    /// `iommuMap` of one chunk into the list of domain `domain`, in place.
    mutating func iommuMap(domain: Int, iova: UInt64, phys: UInt64, size: UInt64, bitmap: UInt64, leaves: UInt64?) -> Errno? {
        iommuMap(domain: domain) { VFIOModel.iommuMap(iova: iova, phys: phys, size: size, bitmap: bitmap, leaves: leaves, into: &$0) }
    }

    /// `map` on the list of domain `domain`, in place.
    mutating func iommuMap(domain: Int, _ map: (inout RunList?) -> Errno?) -> Errno? {
        if domain == 0 { return map(&first) }
        return map(&rest![domain - 1])
    }
}

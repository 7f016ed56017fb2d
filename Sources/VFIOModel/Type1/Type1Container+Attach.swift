import VFIOCore

extension Type1Container {
    /// Whether two groups can share one IOMMU domain: the model's stand-in
    /// for "same `iommu_domain_ops` and same `enforce_cache_coherency`"
    /// (domain reuse in `vfio_iommu_type1_attach_group`). Groups behind the
    /// same IOMMU report the same page sizes and aperture; groups behind
    /// different IOMMU units (`instance=`) never share one.
    static func canShareDomain(_ d: Domain, _ g: DomainSpec) -> Bool {
        d.spec.instance == g.instance && d.spec.pgsizes == g.pgsizes && d.spec.leaves == g.leaves
            && d.spec.aperture == g.aperture && d.spec.coherent == g.coherent
    }

    /// `vfio_iommu_type1_attach_group`: checks in the kernel's order, then
    /// either joins an existing compatible domain or replays every mapping
    /// into a new one. On failure nothing changes.
    mutating func vfioIommuType1AttachGroup(_ g: DomainSpec) -> Errno? {
        if vaddrInvalidCount > 0 { return .EBUSY }
        if g.emulated {
            emulatedGroups.append(g.name)
            return nil
        }
        if let e = vfioIommuAperConflict(g.aperture) { return e }
        if vfioIommuResvConflict(g.reserved) { return .EINVAL }

        var list = iovaList
        Self.vfioIommuAperResize(&list, g.aperture)
        Self.vfioIommuResvExclude(&list, g.reserved)
        if list.isEmpty { return .EINVAL }
        if !g.msiIsolated { return .EPERM }

        if let reuse = domains.firstIndex(where: { Self.canShareDomain($0, g) }) {
            domains[reuse].groups.append(g.name)
            iovaList = list
            numNonPinnedGroups += 1
            return nil
        }

        var domain = Domain(spec: g, groups: [g.name])
        if let e = vfioIommuReplay(into: &domain) { return e }
        domains.insert(domain, at: 0)
        vfioUpdatePgsizeBitmap()
        iovaList = list
        numNonPinnedGroups += 1
        return nil
    }

    /// `vfio_iommu_aper_conflict`: a new aperture must overlap the current
    /// valid span and leave every existing mapping inside it.
    func vfioIommuAperConflict(_ aperture: IOVARange) -> Errno? {
        guard let first = iovaList.first, let last = iovaList.last else { return nil }
        if aperture.start > last.last || aperture.last < first.start { return .EINVAL }
        if aperture.start > first.start,
           vfioFindDMA(IOVARange(start: first.start, last: aperture.start - 1)) != nil { return .EINVAL }
        if aperture.last < last.last,
           vfioFindDMA(IOVARange(start: aperture.last + 1, last: last.last)) != nil { return .EINVAL }
        return nil
    }

    /// `vfio_iommu_resv_conflict`: a reserved region over an existing mapping.
    func vfioIommuResvConflict(_ reserved: [IOVARange]) -> Bool {
        reserved.contains { vfioFindDMA($0) != nil }
    }

    /// `vfio_iommu_aper_resize`: clip the list to the aperture. A node
    /// that only touches the new start or end by its last byte is dropped,
    /// not clipped to one byte, as the kernel's comparisons do.
    static func vfioIommuAperResize(_ list: inout [IOVARange], _ ap: IOVARange) {
        if list.isEmpty { list = [ap]; return }
        // The start: drop nodes below it, clip the one it falls in.
        while let node = list.first {
            if ap.start < node.start { break }
            if ap.start >= node.start && ap.start < node.last {
                list[0].start = ap.start
                break
            }
            list.removeFirst()
        }
        // The end: drop nodes above it, clip the one it falls in.
        var kept: [IOVARange] = []
        for var node in list {
            if ap.last > node.last { kept.append(node); continue }
            if ap.last > node.start && ap.last <= node.last {
                node.last = ap.last
                kept.append(node)
            }
        }
        list = kept
    }

    /// `vfio_iommu_resv_exclude`: cut each reserved region out of the list,
    /// splitting nodes.
    static func vfioIommuResvExclude(_ list: inout [IOVARange], _ reserved: [IOVARange]) {
        list = IOVARange.excluding(reserved, from: list)
    }

    /// `vfio_update_pgsize_bitmap`: the AND of every domain's sizes, with
    /// sizes below the host page replaced by the host page.
    mutating func vfioUpdatePgsizeBitmap() {
        var bitmap = UInt64.max
        for d in domains { bitmap &= d.spec.pgsizes.rawValue }
        if bitmap & ~PageSizes.pageMask.rawValue != 0 {
            bitmap &= PageSizes.pageMask.rawValue
            bitmap |= Self.pageSize
        }
        pgsizeBitmap = bitmap
    }

    /// `vfio_iommu_replay`: put every existing mapping into a new domain.
    /// Mappings already in the IOMMU are mapped from the frames they hold
    /// (no new pins); mappings made while only emulated groups were attached
    /// are pinned and charged now. On failure nothing stays pinned,
    /// charged or mapped.
    mutating func vfioIommuReplay(into domain: inout Domain) -> Errno? {
        var newlyPinned: [(slot: Int32, pages: UInt64)] = []
        var failure: Errno? = nil
        var runsBySlot: [(iova: UInt64, slot: Int32, runs: RunList?)] = []
        let bitmap = domain.spec.pgsizes.rawValue, leaves = domain.spec.leaves?.rawValue
        for (iova, slot, dma) in dmaList.slottedEntries {
            var runs: RunList? = nil
            if !profile.inclusiveEndSearch && iova &+ dma.size == 0 {
                // Before 6.18 the replay loop's end (`iova + size`) wraps to
                // 0: a mapping ending at 2^64-1 is neither mapped nor pinned
                // here, yet counted as mapped afterwards.
                runsBySlot.append((iova, slot, nil))
                continue
            } else if dma.flags.contains(.iommuMapped) {
                var offset: UInt64 = 0
                memory.forEachPiece(vaddr: dma.pinnedVaddr, size: dma.size, splitOnClass: false) { piece in
                    let e: Errno?
                    switch piece {
                    case .run(let run):
                        e = iommuMap(iova: iova &+ offset, phys: run.phys, size: run.length, bitmap: bitmap, leaves: leaves, into: &runs)
                    case .stretch(let s):
                        e = runs.iommuMap(iova: iova &+ offset, stretch: s, bitmap: bitmap, leaves: leaves)
                    }
                    if let e {
                        failure = e
                        return false
                    }
                    offset += piece.length
                    return true
                }
            } else {
                var perDomain = RunsPerDomain(domains: 1)
                switch vfioPinMapDMA(iova: iova, vaddr: dma.vaddr, size: dma.size, lockCap: dma.flags.contains(.lockCap),
                                     domains: [domain], into: &perDomain) {
                case .success(let pages):
                    newlyPinned.append((slot, pages))
                    runs = perDomain[0]
                case .failure(let e):
                    failure = e
                }
            }
            if failure != nil { break }
            // (Never empty: a mapping's memory stays; an empty list would
            // still be recorded, as before.)
            runsBySlot.append((iova, slot, runs ?? .many([])))
        }
        if let failure {
            for p in newlyPinned { unlockAcct(p.pages) }
            return failure
        }
        for r in runsBySlot { if let runs = r.runs { domain.pageTable.add(slot: r.slot, runs) } }
        for p in newlyPinned {
            let pages = p.pages
            dmaList.update(p.slot) { $0.lockedPages = pages; $0.pinnedVaddr = $0.vaddr }
        }
        // iommu_mapped is set for all only once everything succeeded.
        for r in runsBySlot { dmaList.update(r.slot) { $0.flags.insert(.iommuMapped) } }
        return nil
    }

    /// `vfio_iommu_type1_detach_group`: never fails. An emptied domain is
    /// freed; with it the last one, the mappings go (or, when emulated
    /// groups remain, are unpinned but kept). The aperture widens and the
    /// valid ranges are rebuilt from the groups that remain.
    ///
    /// Where `vfio_iommu_unmap_unpin_all` would loop forever (before 6.18,
    /// at the top of the address space; `hang` is set), the process stays
    /// in the ioctl at that moment: the group is already off the domain's
    /// list (`iommu_detach_group`, `list_del` come first), the mappings
    /// before the stuck one are gone, and the stuck one, the ones after it
    /// and the domain itself (never freed: `iommu_domain_free` comes after)
    /// stay, with the old valid ranges and page sizes. The group is still
    /// in the container (`__vfio_group_unset_container` never returns).
    mutating func vfioIommuType1DetachGroup(_ name: String) {
        if let e = emulatedGroups.firstIndex(of: name) {
            emulatedGroups.remove(at: e)
            if emulatedGroups.isEmpty && domains.isEmpty { vfioIommuUnmapUnpinAll() }
            return
        }
        guard let di = domains.firstIndex(where: { $0.groups.contains(name) }) else { return }
        var copy = iovaList
        domains[di].groups.removeAll { $0 == name }
        if domains[di].groups.isEmpty {
            if domains.count == 1 {
                if emulatedGroups.isEmpty { vfioIommuUnmapUnpinAll() } else { vfioIommuUnmapUnpinReaccount() }
                // Stuck in vfio_unmap_unpin: nothing after it happens.
                if hang != nil { return }
            }
            domains.remove(at: di)
            Self.vfioIommuAperExpand(&copy, domains)
            vfioUpdatePgsizeBitmap()
        }
        if vfioIommuResvRefresh(&copy) { iovaList = copy }
        numNonPinnedGroups -= 1
    }

    /// `vfio_iommu_aper_expand`: the first and last valid ranges stretch to
    /// the intersection of the remaining apertures (all of 2^64 with none).
    static func vfioIommuAperExpand(_ list: inout [IOVARange], _ domains: [Domain]) {
        guard !list.isEmpty else { return }
        var start: UInt64 = 0, end: UInt64 = .max
        for d in domains {
            start = max(start, d.spec.aperture.start)
            end = min(end, d.spec.aperture.last)
        }
        list[0].start = start
        list[list.count - 1].last = end
    }

    /// `vfio_iommu_resv_refresh`: one range from the first start to the last
    /// end, minus the reserved regions of every group still in a domain.
    /// Returns false (the caller keeps the old list) when that leaves nothing.
    func vfioIommuResvRefresh(_ list: inout [IOVARange]) -> Bool {
        guard let first = list.first, let last = list.last, first.start <= last.last else { return false }
        var fresh: [IOVARange] = []
        Self.vfioIommuAperResize(&fresh, IOVARange(start: first.start, last: last.last))
        for d in domains {
            for name in d.groups {
                if let g = groups.first(where: { $0.name == name }) { Self.vfioIommuResvExclude(&fresh, g.reserved) }
            }
        }
        if fresh.isEmpty { return false }
        list = fresh
        return true
    }

    /// `vfio_iommu_unmap_unpin_all`: every mapping removed, the first in
    /// order (`rb_first`) each time. Stops where the kernel would hang in
    /// `vfio_unmap_unpin` (then `hang` is set).
    mutating func vfioIommuUnmapUnpinAll() {
        while let slot = dmaList.first {
            guard vfioRemoveDMA(slot) else { return }
        }
    }

    /// `vfio_iommu_unmap_unpin_reaccount`: the last IOMMU domain goes while
    /// emulated groups stay: mappings are unpinned and uncharged but kept.
    mutating func vfioIommuUnmapUnpinReaccount() {
        for (_, slot, dma) in dmaList.slottedEntries {
            unlockAcct(dma.lockedPages)
            for i in domains.indices { domains[i].pageTable.remove(slot: slot) }
            dmaList.update(slot) { $0.lockedPages = 0; $0.flags.remove(.iommuMapped) }
        }
    }
}

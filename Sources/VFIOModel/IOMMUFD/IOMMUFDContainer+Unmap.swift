import VFIOCore

extension IOMMUFDContainer {
    /// `VFIO_IOMMU_UNMAP_DMA` (`iommufd_vfio_unmap_dma`): only the ALL flag
    /// (VADDR and GET_DIRTY_BITMAP are EINVAL); ALL wants iova and size 0
    /// and empties the IOAS (`iopt_unmap_all`). Otherwise, with large pages
    /// off (v1), the areas are first cut at both ends of the request
    /// (`iopt_cut_iova`), then `iopt_unmap_iova` removes whole areas. The
    /// answer is the bytes removed; an error may come after some areas
    /// were removed (the unmap is not atomic).
    public mutating func unmapDMA(_ unmap: UnmapDMA) -> Result<UInt64, Errno> {
        if unmap.argsz < UnmapDMA.structSize || unmap.flags.rawValue & ~UnmapDMA.Flags.all.rawValue != 0 { return .failure(.EINVAL) }
        lastUnmapRemoved = 0
        if !ioasExists { return .failure(.ENODEV) }
        if unmap.flags.contains(.all) {
            if unmap.iova != 0 || unmap.size != 0 { return .failure(.EINVAL) }
            return ioptUnmapAll()
        }
        if disableLargePages {
            // The last byte is computed without an overflow check (the
            // check comes in iopt_unmap_iova), so a wrapping request cuts
            // where the wrapped value falls.
            var cuts = [unmap.iova &+ unmap.size &- 1]
            if unmap.iova != 0 { cuts.append(unmap.iova - 1) }
            if let e = ioptCutIOVA(cuts) { return .failure(e) }
        }
        return ioptUnmapIOVA(iova: unmap.iova, length: unmap.size)
    }

    /// `iopt_unmap_iova`: size 0 is EINVAL, a wrapping end EOVERFLOW.
    mutating func ioptUnmapIOVA(iova: UInt64, length: UInt64) -> Result<UInt64, Errno> {
        if length == 0 { return .failure(.EINVAL) }
        guard let range = IOVARange(start: iova, size: length) else { return .failure(.EOVERFLOW) }
        return ioptUnmapIOVARange(range)
    }

    /// `iopt_unmap_all`: nothing to remove is success.
    mutating func ioptUnmapAll() -> Result<UInt64, Errno> {
        switch ioptUnmapIOVARange(.all) {
        case .failure(.ENOENT): return .success(0)
        case let other: return other
        }
    }

    /// `iopt_unmap_iova_range`: removes the areas meeting `range`, lowest
    /// first; the first one that sticks out of the range stops the walk
    /// with ENOENT, the areas before it already gone. A range that meets
    /// no area: ENOENT until the November 2025 fix, success with 0 bytes
    /// since (`KernelProfile.iommufdUnmapsEmptyRange`).
    mutating func ioptUnmapIOVARange(_ range: IOVARange) -> Result<UInt64, Errno> {
        var removed: UInt64 = 0
        while let i = areaIterFirst(range) {
            let a = areas[i]
            if a.iova < range.start || a.last > range.last {
                lastUnmapRemoved = removed
                return .failure(.ENOENT)
            }
            unchargeArea(i)
            areas.remove(at: i)
            removed &+= a.length
        }
        lastUnmapRemoved = removed
        if removed == 0 && !profile.iommufdUnmapsEmptyRange { return .failure(.ENOENT) }
        return .success(removed)
    }

    /// `iopt_cut_iova`: each IOVA inside an area becomes the last byte of
    /// its left part (`iopt_area_split`); a cut off the IOAS alignment is
    /// EINVAL (cuts made before it stay).
    mutating func ioptCutIOVA(_ iovas: [UInt64]) -> Errno? {
        for at in iovas {
            guard let i = areaIterFirst(IOVARange(start: at, last: at)) else { continue }
            if let e = ioptAreaSplit(i, at: at) { return e }
        }
        return nil
    }

    /// `iopt_area_split`: no-op at either end of the area; the new start
    /// (and its byte in the user memory) must be aligned. Both halves keep
    /// their pages, charge and IOMMU entries (only 4K entries exist with
    /// large pages off).
    mutating func ioptAreaSplit(_ i: Int, at iova: UInt64) -> Errno? {
        let a = areas[i]
        if iova == a.iova || iova == a.last { return nil }
        let newStart = iova + 1
        let align = iovaAlignment
        let offset = newStart - a.iova
        if newStart & (align - 1) != 0 || (a.vaddr &+ offset) & (align - 1) != 0 { return .EINVAL }
        var lhs = a, rhs = a
        lhs.length = offset
        rhs.iova = newStart
        rhs.length = a.length - offset
        rhs.vaddr = a.vaddr &+ offset
        let leftPages = offset >> Self.pageShift
        lhs.pinnedPages = min(a.pinnedPages, leftPages)
        rhs.pinnedPages = a.pinnedPages - lhs.pinnedPages
        lhs.chargedPages = min(a.chargedPages, leftPages)
        rhs.chargedPages = a.chargedPages - lhs.chargedPages
        for h in a.runs.indices {
            let (l, r) = a.runs[h].split(at: newStart)
            lhs.runs[h] = l ?? .many([])
            rhs.runs[h] = r ?? .many([])
        }
        areas[i] = lhs
        areas.insert(rhs, at: i + 1)
        return nil
    }
}

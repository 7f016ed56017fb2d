import VFIOCore

extension IOMMUFDContainer {
    /// `VFIO_IOMMU_MAP_DMA` (`iommufd_vfio_map_dma`): only READ and WRITE
    /// (VADDR is EINVAL: iommufd has no vaddr update), then
    /// `iopt_map_user_pages`. There is no `dma_entry_limit`; `prot=none`
    /// passes the compat layer but the domain's `iommu_map` refuses it
    /// (`pinAndMap`). A failure leaves the IOAS as it was.
    public mutating func mapDMA(_ map: MapDMA) -> Result<Void, Errno> {
        let supported: UInt32 = MapDMA.Flags.read.rawValue | MapDMA.Flags.write.rawValue
        if map.argsz < MapDMA.structSize || map.flags.rawValue & ~supported != 0 { return .failure(.EINVAL) }
        if !ioasExists { return .failure(.ENODEV) }
        return ioptMapUserPages(iova: map.iova, vaddr: map.vaddr, length: map.size, prot: map.flags)
    }

    /// `iopt_map_user_pages`, checks in the kernel's order:
    /// `iopt_alloc_pages` (a length of 0 or past `SIZE_MAX - PAGE_SIZE`:
    /// EINVAL; `vaddr + length` past 2^64: EOVERFLOW; from 6.13 the other
    /// way round, `iopt_alloc_user_pages`), then
    /// `iopt_alloc_area_pages` (a length off the IOAS alignment: EINVAL),
    /// `iopt_check_iova` (iova off the alignment: EINVAL; `iova + length -
    /// 1` wraps: EOVERFLOW; a reserved range: EINVAL; an area already
    /// there: EEXIST), `iopt_insert_area` (vaddr off the alignment:
    /// EINVAL), then pinning into every domain (`iopt_fill_domains_pages`):
    /// every check on the range comes before a page is pinned, so a
    /// reserved range, an overlap or a bad alignment wins over memory that
    /// cannot be pinned, a `prot=none` or a full `RLIMIT_MEMLOCK`; among
    /// those three `pinAndMap` gives the kernel's order (EFAULT or EINVAL
    /// as the batches go, ENOMEM last).
    mutating func ioptMapUserPages(iova: UInt64, vaddr: UInt64, length: UInt64, prot: MapDMA.Flags) -> Result<Void, Errno> {
        if let e = Self.ioptAllocPagesCheck(vaddr: vaddr, length: length, overflowFirst: profile.iommufdChecksOverflowFirst) {
            return .failure(e)
        }
        let align = iovaAlignment
        if length & (align - 1) != 0 { return .failure(.EINVAL) }
        if let e = ioptCheckIOVA(iova: iova, length: length, alignment: align) { return .failure(e) }
        if (vaddr % Self.pageSize) & (align - 1) != 0 { return .failure(.EINVAL) }
        let specs = hwpts.map(\.spec)
        switch pinAndMap(vaddr: vaddr, iova: iova, length: length, into: specs, prot: prot, charge: !specs.isEmpty) {
        case .failure(let e):
            return .failure(e)
        case .success(let (charged, pinned, runs)):
            let area = IOPTArea(iova: iova, length: length, vaddr: vaddr, prot: prot.intersection([.read, .write]),
                                chargedPages: charged, pinnedPages: pinned, runs: runs)
            areas.insert(area, at: firstArea(endingAtOrAfter: iova))
            charge(locked: charged, pinned: pinned)
            return .success(())
        }
    }

    /// The checks on the user range: up to 6.12 `iopt_alloc_pages` checks
    /// the length, then that the range does not wrap; from 6.13
    /// `iopt_alloc_user_pages` checks the wrap first and then calls
    /// `iopt_alloc_pages` (`overflowFirst`,
    /// `ReleaseRule.iommufdOverflowBeforeLength`).
    static func ioptAllocPagesCheck(vaddr: UInt64, length: UInt64, overflowFirst: Bool) -> Errno? {
        let badLength = length == 0 || length > UInt64.max - pageSize
        let wraps = vaddr.addingReportingOverflow(length).overflow
        if overflowFirst && wraps { return .EOVERFLOW }
        if badLength { return .EINVAL }
        if wraps { return .EOVERFLOW }
        return nil
    }

    /// `iopt_check_iova`.
    func ioptCheckIOVA(iova: UInt64, length: UInt64, alignment: UInt64) -> Errno? {
        if iova & (alignment - 1) != 0 { return .EINVAL }
        guard let range = IOVARange(start: iova, size: length) else { return .EOVERFLOW }
        if reservedIntersects(range) { return .EINVAL }
        if areaIterFirst(range) != nil { return .EEXIST }
        return nil
    }
}

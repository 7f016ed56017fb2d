import VFIOCore

extension IOMMUFDContainer {
    /// Pins `[vaddr, vaddr+length)` and maps it at `iova` into each of
    /// `domains` (`iopt_area_fill_domains`, `pfn_reader_user_pin`,
    /// `batch_to_domain`): each physically contiguous run with the
    /// domain's page sizes (`iommu_map`), or page by page with large pages
    /// off (`batch_iommu_map_small`, `VFIO_TYPE1_IOMMU`).
    ///
    /// The charge (`iopt_pages_update_pinned`): with `CAP_IPC_LOCK` none
    /// (`IOPT_PAGES_ACCOUNT_NONE`); else the user's `locked_vm` against
    /// `RLIMIT_MEMLOCK` (`incr_user_locked_vm`: ENOMEM past it). Device
    /// memory (`pfnmap`) cannot be pinned by `pin_user_pages`: EFAULT, as
    /// an address with no memory behind it.
    ///
    /// A mapping with neither READ nor WRITE is refused by the domain's
    /// `iommu_map` with EINVAL, after the run is pinned (VT-d's
    /// `__domain_mapping`; seen on 6.12.118 under VT-d: `map prot=none`
    /// EINVAL once the device is attached). With no domain nothing is
    /// mapped, so nothing refuses it.
    ///
    /// Returns the pages charged, the pages pinned and each domain's runs;
    /// commits nothing.
    func pinAndMap(vaddr: UInt64, iova: UInt64, length: UInt64, into domains: [DomainSpec],
                   prot: MapDMA.Flags, charge: Bool, alreadyCharged: UInt64 = 0) -> Result<(UInt64, UInt64, [ContiguousArray<PTERun>]), Errno> {
        var perDomain = [ContiguousArray<PTERun>](repeating: [], count: domains.count)
        guard charge || !domains.isEmpty else { return .success((0, 0, perDomain)) }
        var failure: Errno? = nil
        var offset: UInt64 = 0
        var pinned: UInt64 = 0
        let limit = lockLimitPages
        let hole = memory.forEachRun(vaddr: vaddr, size: length, splitOnClass: true) { run in
            if run.reserved { failure = .EFAULT; return false }
            let pages = run.length >> Self.pageShift
            if charge && !capIPCLock {
                let (sum, o) = userLockedPages.addingReportingOverflow(alreadyCharged + pinned + pages)
                if o || sum > limit { failure = .ENOMEM; return false }
            }
            pinned += pages
            if !domains.isEmpty && prot.intersection([.read, .write]).isEmpty { failure = .EINVAL; return false }
            for i in domains.indices {
                let e: Errno?
                if disableLargePages {
                    e = iommuMap(iova: iova &+ offset, phys: run.phys, size: run.length, bitmap: Self.pageSize, into: &perDomain[i])
                } else {
                    e = iommuMap(iova: iova &+ offset, phys: run.phys, size: run.length, bitmap: domains[i].pgsizes.rawValue,
                                 leaves: domains[i].leaves?.rawValue, into: &perDomain[i])
                }
                if let e { failure = e; return false }
            }
            offset += run.length
            return true
        }
        if let failure { return .failure(failure) }
        if hole != nil { return .failure(.EFAULT) }
        if !charge { return .success((0, 0, perDomain)) }
        return .success((capIPCLock ? 0 : pinned, pinned, perDomain))
    }

    /// Gives back what area `i` holds (`iopt_area_unfill_domains`,
    /// `decr_user_locked_vm`).
    mutating func unchargeArea(_ i: Int) {
        userLockedPages -= min(areas[i].chargedPages, ownUserLockedPages)
        pinnedVm -= min(areas[i].pinnedPages, pinnedVm)
        areas[i].chargedPages = 0
        areas[i].pinnedPages = 0
    }
}

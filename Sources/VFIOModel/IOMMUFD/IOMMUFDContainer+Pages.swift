import VFIOCore

extension IOMMUFDContainer {
    /// `TEMP_MEMORY_LIMIT`: the most bytes a `pfn_batch` array may take.
    static let batchMemoryLimit: UInt64 = 65536
    /// One `pfn_batch` entry: a pfn (8 bytes) and its count (a `u32`).
    static let batchEntryBytes: UInt64 = 12
    /// The longest run one batch entry holds (`npfns` is a `u32`).
    static let batchEntryMaxPages: UInt64 = UInt64(UInt32.max)

    /// Entries of the `pfn_batch` that `pfn_reader_init` sizes for an area
    /// of `pages` pages (`batch_init`, `temp_kmalloc`): one per page, at
    /// most `TEMP_MEMORY_LIMIT / 12` = 5461. A physically contiguous run
    /// takes one entry (`batch_add_pfn`), so a batch ends at its 5462nd
    /// run, never earlier; an area of up to 5461 pages is one batch.
    static func batchCapacity(pages: UInt64) -> UInt64 {
        max(1, min(pages, batchMemoryLimit / batchEntryBytes))
    }

    /// Pins `[vaddr, vaddr+length)` and maps it at `iova` into each of
    /// `domains`, in the order and with the errors of
    /// `iopt_area_fill_domains` (a map) and `iopt_area_fill_domain` (a
    /// new domain), which read the range batch by batch (`pfn_reader`):
    ///
    /// 1. Pinning (`pfn_reader_user_pin`, `pin_user_pages_fast`) fills
    ///    the batch; it stops at the first page it cannot pin, an address
    ///    with no memory behind it or device memory (`pfnmap`): EFAULT,
    ///    raised while the batch that page would join is still filling,
    ///    so that batch is never mapped.
    /// 2. A full batch (`batchCapacity` runs) is mapped into every domain
    ///    (`batch_to_domain`: each physically contiguous run with the
    ///    domain's page sizes, or page by page with large pages off,
    ///    `batch_iommu_map_small`, `VFIO_TYPE1_IOMMU`), then the next one
    ///    fills. A domain refuses a mapping with neither READ nor WRITE
    ///    (VT-d's `__domain_mapping`: EINVAL; seen on 6.12.118), so
    ///    `prot=none` is EINVAL when the first batch fills before an
    ///    unpinnable page, EFAULT when that page comes within it.
    /// 3. Only once every page is pinned and mapped are they charged
    ///    (`pfn_reader_update_pinned`, `do_update_pinned`): with
    ///    `CAP_IPC_LOCK` nothing (`IOPT_PAGES_ACCOUNT_NONE`), else the
    ///    user's `locked_vm` against `RLIMIT_MEMLOCK`
    ///    (`incr_user_locked_vm`: ENOMEM past it). So a full limit gives
    ///    ENOMEM only for a map that could otherwise be made.
    ///
    /// Any failure unmaps and unpins what was done
    /// (`pfn_reader_release_pins`, `iopt_area_unfill_partial_domain`), so
    /// nothing is mapped, pinned or charged after it. With no domain
    /// nothing is read at all (`iopt_area_fill_domains` returns at once).
    ///
    /// Returns the pages charged, the pages pinned and each domain's runs;
    /// commits nothing.
    ///
    /// A uniform stretch of chunks (`PinnedStretch`) is read at once: each
    /// chunk is a batch entry of its own and maps as the first one does.
    func pinAndMap(vaddr: UInt64, iova: UInt64, length: UInt64, into domains: [DomainSpec],
                   prot: MapDMA.Flags, charge: Bool, alreadyCharged: UInt64 = 0) -> Result<(UInt64, UInt64, [RunList]), Errno> {
        var perDomain = [RunList?](repeating: nil, count: domains.count)
        func lists() -> [RunList] { perDomain.map { $0 ?? .many([]) } }
        guard charge || !domains.isEmpty else { return .success((0, 0, lists())) }
        // iopt_alloc_pages' npages: the area's pages, a partial first page included.
        // (Without wrapping: a span past 2^64-1 has more pages than a batch.)
        let (span, past) = (vaddr % Self.pageSize).addingReportingOverflow(length)
        let pages = past ? UInt64.max : span >> Self.pageShift + (span & (Self.pageSize - 1) == 0 ? 0 : 1)
        let capacity = Self.batchCapacity(pages: pages)
        let refused = !domains.isEmpty && prot.intersection([.read, .write]).isEmpty
        // Batch entries read before the walk stopped, the first mapping
        // error and the entry it came at, whether pinning failed.
        var entries: UInt64 = 0
        var mapError: (entry: UInt64, errno: Errno)? = nil
        var unpinnable = false
        var offset: UInt64 = 0
        var pinned: UInt64 = 0
        let large = disableLargePages
        let hole = memory.forEachPiece(vaddr: vaddr, size: length, splitOnClass: true) { piece in
            let reserved: Bool, chunkLength: UInt64, chunks: UInt64
            switch piece {
            case .run(let run): (reserved, chunkLength, chunks) = (run.reserved, run.length, 1)
            case .stretch(let s): (reserved, chunkLength, chunks) = (s.reserved, s.unit, s.count)
            }
            if reserved { unpinnable = true; return false }
            if let m = mapError, entries > (m.entry / capacity + 1) * capacity { return false }
            if mapError == nil {
                if refused {
                    mapError = (entries, .EINVAL)
                } else {
                    for i in domains.indices {
                        let bitmap = large ? Self.pageSize : domains[i].pgsizes.rawValue
                        let leaves = large ? nil : domains[i].leaves?.rawValue
                        let e: Errno?
                        switch piece {
                        case .run(let run):
                            e = iommuMap(iova: iova &+ offset, phys: run.phys, size: run.length, bitmap: bitmap, leaves: leaves, into: &perDomain[i])
                        case .stretch(let s):
                            e = perDomain[i].iommuMap(iova: iova &+ offset, stretch: s, bitmap: bitmap, leaves: leaves)
                        }
                        if let e { mapError = (entries, e); break }
                    }
                }
            }
            let chunkPages = chunkLength >> Self.pageShift
            entries += max(1, (chunkPages + Self.batchEntryMaxPages - 1) / Self.batchEntryMaxPages) * chunks
            pinned += chunkPages * chunks
            offset += piece.length
            return true
        }
        if hole != nil { unpinnable = true }
        // The batch holding the failing entry is mapped only once an entry
        // past it was pinned (the batch filled before the unpinnable page).
        if let m = mapError, !unpinnable || entries > (m.entry / capacity + 1) * capacity { return .failure(m.errno) }
        if unpinnable { return .failure(.EFAULT) }
        if !charge { return .success((0, 0, lists())) }
        if !capIPCLock {
            let (sum, o) = userLockedPages.addingReportingOverflow(alreadyCharged &+ pinned)
            if o || sum > lockLimitPages { return .failure(.ENOMEM) }
        }
        return .success((capIPCLock ? 0 : pinned, pinned, lists()))
    }

    /// Gives back what area `i` holds (`iopt_area_unfill_domains`,
    /// `decr_user_locked_vm`).
    mutating func unchargeArea(_ i: Int) {
        let locked = min(areas[i].chargedPages, ownUserLockedPages)
        let pinned = min(areas[i].pinnedPages, ownPinnedPages)
        ownUserLockedPages -= locked
        ownPinnedPages -= pinned
        process.unchargeUser(locked: locked, pinned: pinned)
        areas[i].chargedPages = 0
        areas[i].pinnedPages = 0
    }
}

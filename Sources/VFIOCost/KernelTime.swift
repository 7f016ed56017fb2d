import VFIOCore

/// The kernel time a scenario's MAP_DMA and UNMAP_DMA calls take, by a
/// cost profile, for one release: the sum over the terms of count × cost.
public struct KernelTime: Sendable {
    /// Seconds.
    public var map: Double
    public var unmap: Double
    public var profile: String
    /// What the profile assumes about the release ("release 6.18", or
    /// "measured on 6.12; assumed the same for 6.18").
    public var release: String
    /// Seconds per term, the largest first (terms that cost nothing left out).
    public var mapTerms: [(term: CostTerm, seconds: Double)]
    public var unmapTerms: [(term: CostTerm, seconds: Double)]
}

extension CostProfile {
    /// The time of `map` and `unmap` work on `release`.
    public func estimate(map: KernelWork, unmap: KernelWork, release: KernelVersion) -> KernelTime {
        let m = mapTerms(map, release), u = unmapTerms(unmap, release)
        func sorted(_ t: [CostTerm: Double]) -> [(term: CostTerm, seconds: Double)] {
            t.filter { $0.value > 0 }.map { (term: $0.key, seconds: $0.value / 1e9) }.sorted { $0.seconds > $1.seconds }
        }
        return KernelTime(map: m.values.reduce(0, +) / 1e9, unmap: u.values.reduce(0, +) / 1e9, profile: name,
                          release: releaseNote(release), mapTerms: sorted(m), unmapTerms: sorted(u))
    }

    /// Whether a term dated by release counts for `release` (a measured
    /// profile: the newest form, never the release terms).
    func applies(_ t: CostTerm, _ release: KernelVersion) -> Bool {
        if let until = t.until { return appliesReleaseTerms && release.series < until.release }
        if let since = t.since { return !appliesReleaseTerms || release.series >= since }
        return true
    }

    /// Nanoseconds per term of the MAP_DMA calls.
    func mapTerms(_ w: KernelWork, _ release: KernelVersion) -> [CostTerm: Double] {
        var t: [CostTerm: Double] = [:]
        func add(_ term: CostTerm, _ count: UInt64) {
            if count > 0, applies(term, release) { t[term, default: 0] += Double(count) * self[term] }
        }
        let pinned = w.pinnedPages
        add(.mapIoctl, w.calls + w.failedCalls)
        add(.mapPage4K, w.pages[.anon4K] ?? 0)
        add(.mapPageTHP, w.pages[.thp] ?? 0)
        add(.mapPageHugetlb2M, w.pages[.hugetlb2M] ?? 0)
        add(.mapPageHugetlb1G, w.pages[.hugetlb1G] ?? 0)
        add(.mapFolioStep, w.pinnedFolioSteps)
        add(.mapAccountingBefore618, pinned)
        add(.mapUnbatchedBefore513, pinned)
        add(.mapTHPWalkBefore66, w.pages[.thp] ?? 0)
        add(.mapHugetlbGUPBefore66, (w.pages[.hugetlb2M] ?? 0) + (w.pages[.hugetlb1G] ?? 0))
        // A BAR: every pfn looked up, or (6.15) one lookup per huge entry.
        let huge = applies(.mapPfnmapHugeStep, release) && self[.mapPfnmapHugeStep] > 0
        add(huge ? .mapPfnmapHugeStep : .mapPfnmapPage, huge ? w.pfnmapHugeSteps : (w.pages[.pfnmap] ?? 0))
        add(.mapChunk, w.chunks)
        add(.mapPTE, w.ptes)
        add(.faultEach, w.faults)
        if w.faultedBytes > 0 { t[.faultByte, default: 0] += Double(w.faultedBytes) * self[.faultByte] }
        return t
    }

    /// Nanoseconds per term of the UNMAP_DMA calls.
    func unmapTerms(_ w: KernelWork, _ release: KernelVersion) -> [CostTerm: Double] {
        var t: [CostTerm: Double] = [:]
        func add(_ term: CostTerm, _ count: UInt64) {
            if count > 0, applies(term, release) { t[term, default: 0] += Double(count) * self[term] }
        }
        let unpinned = w.pinnedPages
        add(.unmapIoctl, w.calls + w.failedCalls)
        add(.unmapWalkPage, w.totalPages)
        add(.unmapPageBefore618, unpinned)
        add(.unmapPage, unpinned)
        add(.unmapFolioStep, w.pinnedFolioSteps)
        add(.unmapChunk, w.chunks)
        add(.unmapPTE, w.ptes)
        add(.unmapIOTLBSync, w.iotlbSyncs)
        return t
    }
}

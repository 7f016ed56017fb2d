/// What the kernel did for the MAP_DMA (or the UNMAP_DMA) calls of a
/// scenario, counted on the model's own state: the pages, the physically
/// contiguous chunks and the IOMMU entries the model pinned and mapped.
/// The cost model (`CostProfile.estimate`) turns these counts into time;
/// nothing here is a time.
public struct KernelWork: Sendable, Equatable {
    /// Calls that did their work.
    public var calls: UInt64 = 0
    /// Calls refused (charged one ioctl each).
    public var failedCalls: UInt64 = 0
    /// Unmaps: containers released by their last group's detach, which
    /// unmap and unpin every mapping left (no ioctl of their own).
    public var releases: UInt64 = 0
    /// 4 KiB pages pinned (or unpinned), by backing; for `pfnmap`, pfns
    /// looked up (never pinned).
    public var pages: [Backing: UInt64] = [:]
    /// Steps of `vfio_pin_pages_remote` (and of the unpin) over large
    /// folios: one per stretch of one folio inside one 512-page batch
    /// (a 4 KiB page is a step of its own).
    public var folioSteps: [Backing: UInt64] = [:]
    /// `pfnmap` lookups when the BAR is mapped with huge page-table entries
    /// (one per PUD/PMD/PTE, `follow_pfnmap_start`'s address mask): what
    /// 6.15 walks instead of every 4 KiB pfn.
    public var pfnmapHugeSteps: UInt64 = 0
    /// First-touch faults of `populated=no` memory, and the bytes they zero.
    public var faults: UInt64 = 0
    public var faultedBytes: UInt64 = 0
    /// Physically contiguous chunks, once per domain: `iommu_map` (or the
    /// unmap's `iommu_unmap_fast`) calls.
    public var chunks: UInt64 = 0
    /// IOMMU leaf entries written (or cleared), every domain.
    public var ptes: UInt64 = 0
    /// IOTLB syncs of the unmaps: one per 512 gathered chunks
    /// (`VFIO_IOMMU_TLB_SYNC_MAX`) per domain, at least one per call.
    public var iotlbSyncs: UInt64 = 0

    public init() {}

    public var totalPages: UInt64 { pages.values.reduce(0, +) }
    /// Pages really pinned (and charged): every backing but a BAR's pfns.
    public var pinnedPages: UInt64 { totalPages - (pages[.pfnmap] ?? 0) }
    /// Folio steps of the pinned pages.
    public var pinnedFolioSteps: UInt64 { Backing.allCases.filter { $0 != .pfnmap }.reduce(0) { $0 + (folioSteps[$1] ?? 0) } }

    public mutating func add(_ other: KernelWork) {
        calls += other.calls; failedCalls += other.failedCalls; releases += other.releases
        for (b, n) in other.pages { pages[b, default: 0] += n }
        for (b, n) in other.folioSteps { folioSteps[b, default: 0] += n }
        pfnmapHugeSteps += other.pfnmapHugeSteps
        faults += other.faults; faultedBytes += other.faultedBytes
        chunks += other.chunks; ptes += other.ptes; iotlbSyncs += other.iotlbSyncs
    }
}

/// Counting helpers: pure arithmetic on addresses, the same for any layout.
public enum WorkCount {
    /// Blocks of `unit` bytes (aligned by address) that `[start, start+length)`
    /// touches.
    public static func blocks(start: UInt64, length: UInt64, unit: UInt64) -> UInt64 {
        guard length > 0 else { return 0 }
        let first = start / unit, last = (start + (length - 1)) / unit
        return last - first + 1
    }

    /// Folio steps of a stretch of memory of `backing` inside the region
    /// `[regionStart, regionEnd)`: a 4 KiB page each for 4K memory; a
    /// 2 MiB block each for hugetlb (a batch holds 512 pages, so a 1 GiB
    /// folio is taken 2 MiB at a time) and for the THP-backed part of a
    /// `thp` region (its 2 MiB-aligned interior; the pages around it are 4K).
    public static func folioSteps(_ backing: Backing, start: UInt64, length: UInt64,
                                  regionStart: UInt64, regionEnd: UInt64) -> UInt64 {
        let huge: UInt64 = 2 << 20
        switch backing {
        case .anon4K, .pfnmap: return length / 4096
        case .hugetlb2M, .hugetlb1G: return blocks(start: start, length: length, unit: huge)
        case .thp:
            let inner0 = (regionStart + huge - 1) / huge * huge, inner1 = regionEnd / huge * huge
            let end = start + length
            let a = max(start, inner0), b = min(end, inner1)
            let hugePart = b > a ? blocks(start: a, length: b - a, unit: huge) : 0
            let smallBytes = length - (b > a ? b - a : 0)
            return hugePart + smallBytes / 4096
        }
    }

    /// Page-table steps over device memory mapped at `vaddr` from `phys`
    /// with the largest entries both alignments allow (1 GiB, 2 MiB, else
    /// 4 KiB): what `vfio_pci_mmap_huge_fault` installs (6.12) when the
    /// mmap is aligned, walked one entry at a time (6.15).
    public static func pfnmapSteps(vaddr: UInt64, phys: UInt64, length: UInt64) -> UInt64 {
        let sizes: [UInt64] = [4096, 2 << 20, 1 << 30].filter { (vaddr &- phys) % $0 == 0 }
        var a = vaddr, count: UInt64 = 0
        let end = vaddr + length
        var level = 0
        // Up: small steps until the next size is aligned, while a whole
        // block of it still fits.
        while level + 1 < sizes.count {
            let next = sizes[level + 1]
            let up = (a + next - 1) / next * next
            guard up <= end, end - up >= next else { break }
            count += (up - a) / sizes[level]
            a = up
            level += 1
        }
        // Down: the largest usable size, then smaller ones for the tail.
        for s in sizes[...level].reversed() {
            let down = end / s * s
            if down > a { count += (down - a) / s; a = down }
        }
        return count
    }
}

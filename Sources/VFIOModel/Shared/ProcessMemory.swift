import VFIOCore

/// The process's address space as far as pinning sees it: regions with a
/// page size and a physical-layout rule.
///
/// Frames are computed on demand from the rule, never stored per page, so
/// the cost of a walk is the number of physically contiguous runs it meets.
public struct ProcessMemory: Sendable {
    /// Regions sorted by vaddr, disjoint.
    public private(set) var regions: [MemoryRegion] = []
    /// Where the next region placed by rule (every placement but an
    /// explicit `phys=` layout) would lie if it were contiguous.
    var nextDefaultPhys: UInt64 = 1 << 32

    public init() {}

    /// Adds a region; regions may not overlap (pinned pages would change
    /// under existing mappings).
    ///
    /// A region placed by rule takes the place a contiguous region would
    /// have (after the regions placed by rule before it, with a 1 GiB gap
    /// so two regions are never accidentally contiguous), whatever its
    /// placement: `phys=contiguous` lies there, so a region lands where it
    /// did before the default became `realistic`. `realistic` regions are
    /// `scattered` by their vaddr (pfnmap ones contiguous), `thp` ones `thp`.
    public mutating func add(_ spec: MemorySpec) -> Result<MemoryRegion, MemoryError> {
        let range = IOVARange(start: spec.vaddr, size: spec.size)
        guard let range else { return .failure(MemoryError("memory at \(formatHex(spec.vaddr)) has no valid size")) }
        if let clash = clash(with: range) {
            return .failure(MemoryError("memory \(range) overlaps memory \(clash.range) declared before"))
        }
        let layout: PhysicalLayout
        if case .layout(let given) = spec.placement {
            layout = given
        } else {
            let gib: UInt64 = 1 << 30
            let base = nextDefaultPhys
            let (end, o1) = base.addingReportingOverflow(spec.size)
            let (next, o2) = end.addingReportingOverflow(2 * gib - 1)
            guard !o1, !o2 else { return .failure(MemoryError("no physical room left for memory at \(formatHex(spec.vaddr))")) }
            nextDefaultPhys = next & ~(gib - 1)
            layout = spec.ruleLayout ?? .contiguous(base: base)
        }
        let region = MemoryRegion(vaddr: spec.vaddr, size: spec.size, pageSize: spec.pageSize, layout: layout, pfnmap: spec.pfnmap)
        insert(region)
        return .success(region)
    }

    /// Adds a region exactly as given (an observed layout).
    public mutating func add(exactly region: MemoryRegion) -> Result<Void, MemoryError> {
        if let clash = clash(with: region.range) {
            return .failure(MemoryError("memory \(region.range) overlaps memory \(clash.range) declared before"))
        }
        insert(region)
        return .success(())
    }

    mutating func insert(_ region: MemoryRegion) {
        regions.insert(region, at: insertionIndex(region.vaddr))
    }

    /// The index of the first region starting above `vaddr`.
    /// - Complexity: O(log n).
    func insertionIndex(_ vaddr: UInt64) -> Int {
        var lo = 0, hi = regions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if regions[mid].vaddr > vaddr { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// A region overlapping `range`: only the neighbours of where it would
    /// go can, since regions are sorted and disjoint.
    /// - Complexity: O(log n).
    func clash(with range: IOVARange) -> MemoryRegion? {
        let at = insertionIndex(range.start)
        if at > 0, regions[at - 1].range.overlaps(range) { return regions[at - 1] }
        if at < regions.count, regions[at].range.overlaps(range) { return regions[at] }
        return nil
    }

    /// The index of the region holding `vaddr`.
    func regionIndex(containing vaddr: UInt64) -> Int? {
        var lo = 0, hi = regions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if regions[mid].range.last < vaddr { lo = mid + 1 } else { hi = mid }
        }
        return lo < regions.count && regions[lo].range.contains(vaddr) ? lo : nil
    }

    /// Walks `[vaddr, vaddr+size)` as physically contiguous runs of one
    /// class (reserved or not), joining runs across page and region borders
    /// when the frames follow on (what `vfio_pin_pages_remote` calls a chunk).
    ///
    /// `body` gets each run; returning false stops the walk. The result is
    /// the first address that is not mapped in the process, if the walk
    /// reached one (pinning it fails with EFAULT).
    ///
    /// - Parameter splitOnClass: end a run where reserved meets normal
    ///   memory (pinning does; `vfio_iommu_replay` does not).
    @discardableResult
    public func forEachRun(vaddr: UInt64, size: UInt64, splitOnClass: Bool = true,
                           _ body: (PinnedRun) -> Bool) -> UInt64? {
        var pending: PinnedRun? = nil
        var stopped = false
        let hole = forEachRawRun(vaddr: vaddr, size: size) { run in
            if var p = pending {
                if p.phys &+ p.length == run.phys && p.phys &+ p.length != 0
                    && (!splitOnClass || p.reserved == run.reserved) {
                    p.length += run.length
                    p.reserved = p.reserved && run.reserved
                    pending = p
                    return true
                }
                if !body(p) { stopped = true; return false }
            }
            pending = run
            return true
        }
        if !stopped, let p = pending { _ = body(p) }
        return stopped ? nil : hole
    }

    /// Runs as the layout rules give them, page by page where the rule
    /// scatters pages, unjoined.
    func forEachRawRun(vaddr: UInt64, size: UInt64, _ body: (PinnedRun) -> Bool) -> UInt64? {
        var at = vaddr
        var left = size
        while left > 0 {
            guard let ri = regionIndex(containing: at) else { return at }
            let region = regions[ri]
            let offset = at - region.vaddr
            let inRegion = min(left, region.size - offset)
            if !region.forEachRun(offset: offset, length: inRegion, vaddr: at, body) { return nil }
            left -= inRegion
            at = at &+ inRegion
        }
        return nil
    }
}

/// A physically contiguous stretch of a mapping's memory.
public struct PinnedRun: Hashable, Sendable {
    public var vaddr: UInt64
    public var phys: UInt64
    public var length: UInt64
    /// Reserved pfns (`pfnmap` device memory): pinned without a charge.
    public var reserved: Bool
}

public struct MemoryError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

func formatHex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }

extension MemoryRegion {
    /// The frame of page `index` under a scattering rule: pages land on even
    /// page slots of a bijective shuffle, so no two pages are ever adjacent.
    static func scatteredPhys(page index: UInt64, pages: UInt64, pageSize: UInt64, seed: UInt64, base: UInt64 = 1 << 44) -> UInt64 {
        var bits: UInt64 = 1
        while (1 << bits) < pages && bits < 40 { bits += 1 }
        let mask: UInt64 = (1 << bits) - 1
        var x = (index &+ seed) & mask
        x = (x &* 0x9E37_79B9_7F4A_7C15) & mask   // odd multiplier: a bijection mod 2^bits
        x ^= x >> ((bits + 1) / 2)                 // xorshift: also a bijection
        return base &+ (2 &* x &* pageSize)
    }

    /// Calls `body` with the runs of `[offset, offset+length)` of this
    /// region, in vaddr order. Returns false if `body` stopped the walk.
    func forEachRun(offset: UInt64, length: UInt64, vaddr: UInt64, _ body: (PinnedRun) -> Bool) -> Bool {
        let ps = pageSize
        switch layout {
        case .contiguous(let base):
            return body(PinnedRun(vaddr: vaddr, phys: base &+ offset, length: length, reserved: pfnmap))
        case .observed(let runs):
            // Binary search the first run that ends after `offset`.
            var lo = 0, hi = runs.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if runs[mid].offset &+ runs[mid].length <= offset { lo = mid + 1 } else { hi = mid }
            }
            var at = offset
            let end = offset + length
            var i = lo
            while at < end && i < runs.count {
                let r = runs[i]
                let start = max(at, r.offset)
                let stop = min(end, r.offset + r.length)
                if start < stop {
                    let run = PinnedRun(vaddr: vaddr &+ (start - offset), phys: r.phys &+ (start - r.offset),
                                        length: stop - start, reserved: pfnmap)
                    if !body(run) { return false }
                }
                at = stop
                i += 1
            }
            return true
        case .thp(let seed):
            return thpRuns(offset: offset, length: length, vaddr: vaddr, seed: seed, body)
        case .scattered, .reversed, .chunks:
            // One run per page (or per chunk), partial at the ends.
            let unit: UInt64
            if case .chunks(let size, _) = layout { unit = size } else { unit = ps }
            let pages = size / ps
            var at = offset
            let end = offset + length
            while at < end {
                let index = at / unit
                let within = at % unit
                let take = min(unit - within, end - at)
                let phys: UInt64
                switch layout {
                case .scattered(let seed):
                    phys = MemoryRegion.scatteredPhys(page: index, pages: pages, pageSize: ps, seed: seed) &+ within
                case .reversed(let base):
                    phys = base &+ (pages - 1 - index) &* ps &+ within
                case .chunks(let size, let base):
                    phys = base &+ index &* 2 &* size &+ within
                default:
                    phys = 0
                }
                if !body(PinnedRun(vaddr: vaddr &+ (at - offset), phys: phys, length: take, reserved: pfnmap)) { return false }
                at += take
            }
            return true
        }
    }

    /// The 2 MiB-aligned blocks of a `thp` region: the offsets of the first
    /// block and of the end of the last (equal when there is none).
    var thpBlocks: (first: UInt64, end: UInt64) {
        let huge: UInt64 = 2 << 20
        let first = min(size, (huge &- vaddr % huge) % huge)
        let end = first + (size - first) / huge * huge
        return (first, end)
    }

    /// The runs of a `thp` region: each 2 MiB block one run on a 2 MiB
    /// frame of its own (at 16 TiB and up, even slots), the loose pages
    /// before and after the blocks each a 4K run on a frame of their own
    /// (at 8 TiB and up, even slots: never next to a block or each other).
    func thpRuns(offset: UInt64, length: UInt64, vaddr: UInt64, seed: UInt64, _ body: (PinnedRun) -> Bool) -> Bool {
        let huge: UInt64 = 2 << 20, small: UInt64 = 4096
        let (first, blocksEnd) = thpBlocks
        let blocks = (blocksEnd - first) / huge
        let loose = (first + (size - blocksEnd)) / small
        var at = offset
        let end = offset + length
        while at < end {
            let phys: UInt64, take: UInt64
            if at >= first && at < blocksEnd {
                let within = (at - first) % huge
                phys = MemoryRegion.scatteredPhys(page: (at - first) / huge, pages: blocks, pageSize: huge, seed: seed) &+ within
                take = min(huge - within, end - at)
            } else {
                let index = at < first ? at / small : (first + (at - blocksEnd)) / small
                let within = at % small
                phys = MemoryRegion.scatteredPhys(page: index, pages: loose, pageSize: small, seed: seed, base: 1 << 43) &+ within
                take = min(small - within, end - at)
            }
            if !body(PinnedRun(vaddr: vaddr &+ (at - offset), phys: phys, length: take, reserved: pfnmap)) { return false }
            at += take
        }
        return true
    }
}

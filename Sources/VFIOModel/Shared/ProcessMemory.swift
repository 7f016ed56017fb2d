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
    /// One call per chunk: a walk over scattered pages costs one call per
    /// page. `forEachPiece` gives the same chunks with a uniform stretch
    /// of them in one call.
    ///
    /// - Parameter splitOnClass: end a run where reserved meets normal
    ///   memory (pinning does; `vfio_iommu_replay` does not).
    @discardableResult
    public func forEachRun(vaddr: UInt64, size: UInt64, splitOnClass: Bool = true,
                           _ body: (PinnedRun) -> Bool) -> UInt64? {
        forEachPiece(vaddr: vaddr, size: size, splitOnClass: splitOnClass) { piece in
            switch piece {
            case .run(let run): return body(run)
            case .stretch(let s):
                var i: UInt64 = 0
                while i < s.count {
                    if !body(s.chunk(i)) { return false }
                    i += 1
                }
                return true
            }
        }
    }

    /// The chunks of `forEachRun`, in the same order and joined the same
    /// way, with every run of three or more whole chunks of a scattering
    /// rule (`PinnedStretch`) but its first and last chunk handed over as
    /// one stretch: the rule keeps each chunk physically apart from its
    /// neighbours, so no chunk inside it joins another, and the first and
    /// last (which may join memory around the stretch) go through the
    /// joining as runs. The cost of a walk is the number of pieces.
    @discardableResult
    public func forEachPiece(vaddr: UInt64, size: UInt64, splitOnClass: Bool = true,
                             _ body: (MemoryPiece) -> Bool) -> UInt64? {
        // (A value with mutating methods, not a local function capturing
        // the state: captured variables are boxed and every access to them
        // checked at run time.)
        var joiner = RunJoiner(splitOnClass: splitOnClass)
        let hole = forEachRawPiece(vaddr: vaddr, size: size) { piece in
            switch piece {
            case .run(let run):
                return joiner.feed(run, body)
            case .stretch(let s):
                if !joiner.feed(s.chunk(0), body) { return false }
                if s.count >= 3 {
                    if !joiner.flush(body) { return false }
                    if !body(.stretch(s.dropFirstAndLast())) { joiner.stopped = true; return false }
                }
                return s.count >= 2 ? joiner.feed(s.chunk(s.count - 1), body) : true
            }
        }
        if !joiner.stopped { _ = joiner.flush(body) }
        return joiner.stopped ? nil : hole
    }

    /// The bytes of `[vaddr, vaddr+size)` that are normal memory (not
    /// reserved): what pinning them charges, in pieces, not pages.
    public func normalBytes(vaddr: UInt64, size: UInt64) -> UInt64 {
        var bytes: UInt64 = 0
        forEachPiece(vaddr: vaddr, size: size) { piece in
            switch piece {
            case .run(let r): if !r.reserved { bytes &+= r.length }
            case .stretch(let s): if !s.reserved { bytes &+= s.length }
            }
            return true
        }
        return bytes
    }

    /// Pieces as the layout rules give them, unjoined: a stretch for the
    /// whole chunks of a scattering rule, a run for everything else.
    func forEachRawPiece(vaddr: UInt64, size: UInt64, _ body: (MemoryPiece) -> Bool) -> UInt64? {
        var at = vaddr
        var left = size
        while left > 0 {
            guard let ri = regionIndex(containing: at) else { return at }
            let region = regions[ri]
            let offset = at - region.vaddr
            let inRegion = min(left, region.size - offset)
            if !region.forEachPiece(offset: offset, length: inRegion, vaddr: at, body) { return nil }
            left -= inRegion
            at = at &+ inRegion
        }
        return nil
    }
}

/// Joins runs whose frames follow on (of one class, with `splitOnClass`)
/// into the chunk pending, handing a chunk over when the next does not
/// continue it.
struct RunJoiner {
    let splitOnClass: Bool
    var pending: PinnedRun? = nil
    /// `body` returned false: the walk ends.
    var stopped = false

    init(splitOnClass: Bool) { self.splitOnClass = splitOnClass }

    /// Joins `run` to the pending chunk or hands that one to `body`.
    @inline(__always)
    mutating func feed(_ run: PinnedRun, _ body: (MemoryPiece) -> Bool) -> Bool {
        if var p = pending {
            if p.phys &+ p.length == run.phys && p.phys &+ p.length != 0
                && (!splitOnClass || p.reserved == run.reserved) {
                p.length += run.length
                p.reserved = p.reserved && run.reserved
                pending = p
                return true
            }
            if !body(.run(p)) { stopped = true; return false }
        }
        pending = run
        return true
    }

    /// Hands the pending chunk, if any, to `body`.
    @inline(__always)
    mutating func flush(_ body: (MemoryPiece) -> Bool) -> Bool {
        guard let p = pending else { return true }
        pending = nil
        if !body(.run(p)) { stopped = true; return false }
        return true
    }
}

/// Where chunk i of a scattering rule lies: the numbers of a region's
/// layout that its frames depend on (plain values, so a stretch is cheap
/// to hand over and keep).
public enum ChunkRule: Hashable, Sendable {
    /// `MemoryRegion.scatteredPhys` of `pages` pages of `pageSize` from `base`.
    case scattered(pages: UInt64, pageSize: UInt64, seed: UInt64, base: UInt64)
    /// Page i at `base + (pages-1-i)*pageSize`.
    case reversed(base: UInt64, pages: UInt64, pageSize: UInt64)
    /// Chunk i at `base + 2*i*size`.
    case chunks(size: UInt64, base: UInt64)
    /// Page i at `base + i*pageSize` (never a stretch: contiguous pages join).
    case contiguous(base: UInt64, pageSize: UInt64)

    func phys(index: UInt64) -> UInt64 {
        switch self {
        case .scattered(let pages, let pageSize, let seed, let base):
            return MemoryRegion.scatteredPhys(page: index, pages: pages, pageSize: pageSize, seed: seed, base: base)
        case .reversed(let base, let pages, let pageSize):
            return base &+ (pages - 1 - index) &* pageSize
        case .chunks(let size, let base):
            return base &+ index &* 2 &* size
        case .contiguous(let base, let pageSize):
            return base &+ index &* pageSize
        }
    }
}

/// What a memory walk hands over: one physically contiguous run, or a
/// uniform stretch of chunks.
public enum MemoryPiece: Sendable {
    case run(PinnedRun)
    case stretch(PinnedStretch)

    /// Bytes covered.
    public var length: UInt64 {
        switch self {
        case .run(let r): r.length
        case .stretch(let s): s.length
        }
    }
}

/// `count` chunks of `unit` bytes each, one after another in vaddr, of one
/// class, placed by a scattering rule (`scattered`, `reversed`, `chunks`,
/// the hugepages of `thp`) that guarantees two things the walkers rely on:
/// - each chunk is physically contiguous and apart from its neighbours
///   (the frame after a chunk's last is never the next chunk's first), so
///   the stretch is `count` chunks of `vfio_pin_pages_remote`;
/// - every chunk's frame is congruent to the first's modulo `unit`, so a
///   chunk's IOMMU entries (`iommu_map` with page sizes that divide
///   `unit`) are the first chunk's, moved.
/// Frames are computed from the rule (`phys(chunk:)`), never stored.
public struct PinnedStretch: Hashable, Sendable {
    public var vaddr: UInt64
    public var count: UInt64
    public var unit: UInt64
    public var reserved: Bool
    /// The region's rule and the index, in its chunk numbering, of chunk 0.
    let rule: ChunkRule
    var firstIndex: UInt64

    /// Bytes covered (at most the region's size: never wraps).
    public var length: UInt64 { count &* unit }

    /// The frame of chunk `i`.
    public func phys(chunk i: UInt64) -> UInt64 { rule.phys(index: firstIndex &+ i) }

    /// Chunk `i` as a run.
    public func chunk(_ i: UInt64) -> PinnedRun {
        PinnedRun(vaddr: vaddr &+ i &* unit, phys: phys(chunk: i), length: unit, reserved: reserved)
    }

    /// The first `n` chunks.
    public func prefix(_ n: UInt64) -> PinnedStretch {
        var s = self
        s.count = min(n, count)
        return s
    }

    /// The chunks from `i` on.
    public func dropFirst(_ i: UInt64) -> PinnedStretch {
        var s = self
        let k = min(i, count)
        s.vaddr = vaddr &+ k &* unit
        s.firstIndex = firstIndex &+ k
        s.count = count - k
        return s
    }

    /// Without its first and last chunk (`count` >= 2).
    func dropFirstAndLast() -> PinnedStretch { dropFirst(1).prefix(count - 2) }
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

    /// The rule placing the chunks of this region's scattering layout (a
    /// page, a chunk of `chunks`, or a 2 MiB block of `thp` counted from
    /// the first block).
    var chunkRule: ChunkRule {
        switch layout {
        case .scattered(let seed):
            return .scattered(pages: size / pageSize, pageSize: pageSize, seed: seed, base: 1 << 44)
        case .reversed(let base):
            return .reversed(base: base, pages: size / pageSize, pageSize: pageSize)
        case .chunks(let chunk, let base):
            return .chunks(size: chunk, base: base)
        case .thp(let seed):
            let (first, end) = thpBlocks
            return .scattered(pages: (end - first) / (2 << 20), pageSize: 2 << 20, seed: seed, base: 1 << 44)
        case .contiguous(let base):
            return .contiguous(base: base, pageSize: pageSize)
        case .observed:
            return .contiguous(base: 0, pageSize: pageSize)
        }
    }

    /// Calls `body` with the pieces of `[offset, offset+length)` of this
    /// region, in vaddr order. Returns false if `body` stopped the walk.
    func forEachPiece(offset: UInt64, length: UInt64, vaddr: UInt64, _ body: (MemoryPiece) -> Bool) -> Bool {
        switch layout {
        case .contiguous(let base):
            return body(.run(PinnedRun(vaddr: vaddr, phys: base &+ offset, length: length, reserved: pfnmap)))
        case .observed(let runs):
            return observedRuns(runs, offset: offset, length: length, vaddr: vaddr) { body(.run($0)) }
        case .thp(let seed):
            return thpPieces(offset: offset, length: length, vaddr: vaddr, seed: seed, body)
        case .scattered, .reversed, .chunks:
            let unit: UInt64
            if case .chunks(let size, _) = layout { unit = size } else { unit = pageSize }
            return chunkPieces(unit: unit, from: 0, offset: offset, length: length, vaddr: vaddr, body)
        }
    }

    /// The chunks of `unit` bytes (numbered from region offset `from`) met
    /// by `[offset, offset+length)`: a partial chunk at either end as a
    /// run, the whole ones between as one stretch.
    func chunkPieces(unit: UInt64, from: UInt64, offset: UInt64, length: UInt64, vaddr: UInt64,
                     _ body: (MemoryPiece) -> Bool) -> Bool {
        let end = offset + length
        let rule = chunkRule
        let within = (offset - from) % unit
        let head = within == 0 ? 0 : min(unit - within, length)
        if head > 0 {
            let phys = rule.phys(index: (offset - from) / unit) &+ within
            if !body(.run(PinnedRun(vaddr: vaddr, phys: phys, length: head, reserved: pfnmap))) { return false }
        }
        var at = offset + head
        let whole = (end - at) / unit
        if whole > 0 {
            let s = PinnedStretch(vaddr: vaddr &+ (at - offset), count: whole, unit: unit, reserved: pfnmap,
                                  rule: rule, firstIndex: (at - from) / unit)
            if !body(.stretch(s)) { return false }
            at += whole * unit
        }
        guard at < end else { return true }
        let tail = PinnedRun(vaddr: vaddr &+ (at - offset), phys: rule.phys(index: (at - from) / unit), length: end - at, reserved: pfnmap)
        return body(.run(tail))
    }

    /// The runs of an observed layout met by `[offset, offset+length)`.
    func observedRuns(_ runs: [PhysicalRun], offset: UInt64, length: UInt64, vaddr: UInt64, _ body: (PinnedRun) -> Bool) -> Bool {
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
    }

    /// The 2 MiB-aligned blocks of a `thp` region: the offsets of the first
    /// block and of the end of the last (equal when there is none).
    var thpBlocks: (first: UInt64, end: UInt64) {
        let huge: UInt64 = 2 << 20
        let first = min(size, (huge &- vaddr % huge) % huge)
        let end = first + (size - first) / huge * huge
        return (first, end)
    }

    /// The pieces of a `thp` region: each 2 MiB block one chunk on a 2 MiB
    /// frame of its own (at 16 TiB and up, even slots; the whole blocks of
    /// a walk one stretch), the loose pages before and after the blocks
    /// each a 4K run on a frame of their own (at 8 TiB and up, even slots:
    /// never next to a block or each other).
    func thpPieces(offset: UInt64, length: UInt64, vaddr: UInt64, seed: UInt64, _ body: (MemoryPiece) -> Bool) -> Bool {
        let small: UInt64 = 4096
        let (first, blocksEnd) = thpBlocks
        let loose = (first + (size - blocksEnd)) / small
        var at = offset
        let end = offset + length
        while at < end {
            if at >= first && at < blocksEnd {
                let stop = min(end, blocksEnd)
                if !chunkPieces(unit: 2 << 20, from: first, offset: at, length: stop - at, vaddr: vaddr &+ (at - offset), body) { return false }
                at = stop
                continue
            }
            let index = at < first ? at / small : (first + (at - blocksEnd)) / small
            let within = at % small
            let phys = MemoryRegion.scatteredPhys(page: index, pages: loose, pageSize: small, seed: seed, base: 1 << 43) &+ within
            let take = min(small - within, end - at)
            if !body(.run(PinnedRun(vaddr: vaddr &+ (at - offset), phys: phys, length: take, reserved: pfnmap))) { return false }
            at += take
        }
        return true
    }
}

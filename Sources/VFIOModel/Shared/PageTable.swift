import VFIOCore

/// `count` leaf entries of one page size, consecutive in IOVA and in
/// physical address.
public struct PTERun: Hashable, Sendable {
    public var iova: UInt64
    public var phys: UInt64
    public var count: UInt64
    /// log2 of the page size.
    public var pageShift: UInt8
    public var pageSize: UInt64 { 1 << UInt64(pageShift) }
    /// Bytes covered (fits: a run never covers more than a mapping).
    public var length: UInt64 { count << UInt64(pageShift) }
}

/// The page-table runs one mapping produced in one domain: almost always a
/// single run, so that case is stored inline (no allocation); runs and
/// repeats (`items`) once a uniform stretch of chunks was mapped.
public enum RunList: Hashable, Sendable {
    case one(PTERun)
    case many(ContiguousArray<PTERun>)
    case items(ContiguousArray<PTEItem>)

    /// Calls `body` with each element in order, runs as `.run`.
    @inline(__always)
    func forEachItem(_ body: (PTEItem) -> Void) {
        switch self {
        case .one(let r): body(.run(r))
        case .many(let rs): for r in rs { body(.run(r)) }
        case .items(let items): for i in items { body(i) }
        }
    }

    /// Every run, a repeat's chunk by chunk (for checks, not hot paths:
    /// a repeat may stand for billions of runs).
    public var runs: ContiguousArray<PTERun> {
        var out = ContiguousArray<PTERun>()
        forEachItem { item in
            switch item {
            case .run(let r): out.append(r)
            case .repeated(let rep): for k in 0..<rep.count { out.append(contentsOf: rep.runs(ofChunk: k)) }
            }
        }
        return out
    }

    /// The elements as an array (for checks, not hot paths).
    public var items: ContiguousArray<PTEItem> {
        var out = ContiguousArray<PTEItem>()
        forEachItem { out.append($0) }
        return out
    }

    /// Adds (or with `negate`, takes away) the entries per page shift.
    func count(into entries: inout [UInt128], negate: Bool = false) {
        switch self {
        case .one(let r):
            if negate { entries[Int(r.pageShift)] -= UInt128(r.count) } else { entries[Int(r.pageShift)] += UInt128(r.count) }
        case .many(let rs):
            if negate { for r in rs { entries[Int(r.pageShift)] -= UInt128(r.count) } } else { for r in rs { entries[Int(r.pageShift)] += UInt128(r.count) } }
        case .items(let items):
            for i in items { i.count(into: &entries, negate: negate) }
        }
    }

    /// The IOVA of the last run.
    var lastRunIOVA: UInt64? {
        switch self {
        case .one(let r): r.iova
        case .many(let rs): rs.last?.iova
        case .items(let items): items.last?.lastRunIOVA
        }
    }

    /// Splits the list at `iova`: the entries below it and from it on (a
    /// run that straddles it is cut between its pages; a repeat between
    /// its chunks, the chunk it cuts as runs).
    func split(at iova: UInt64) -> (RunList?, RunList?) {
        var l: RunList? = nil, r: RunList? = nil
        func splitRun(_ run: PTERun) {
            if run.iova &+ run.length <= iova && run.iova &+ run.length != 0 { l.appendJoining(run); return }
            if run.iova >= iova { r.appendJoining(run); return }
            let below = (iova - run.iova) >> UInt64(run.pageShift)
            var left = run, right = run
            left.count = below
            right.count = run.count - below
            right.iova = run.iova + (below << UInt64(run.pageShift))
            right.phys = run.phys + (below << UInt64(run.pageShift))
            if left.count > 0 { l.appendJoining(left) }
            if right.count > 0 { r.appendJoining(right) }
        }
        forEachItem { item in
            switch item {
            case .run(let run):
                splitRun(run)
            case .repeated(let rep):
                let end = rep.iova &+ rep.length
                if end <= iova && end != 0 { l.appendRepeat(rep); return }
                if rep.iova >= iova { r.appendRepeat(rep); return }
                let k = (iova - rep.iova) / rep.stride
                if k > 0 { l.appendRepeat(rep.chunks(from: 0, count: k)) }
                var rest = k
                if (iova - rep.iova) % rep.stride != 0 {
                    for run in rep.runs(ofChunk: k) { splitRun(run) }
                    rest += 1
                }
                if rest < rep.count { r.appendRepeat(rep.chunks(from: rest, count: rep.count - rest)) }
            }
        }
        return (l, r)
    }
}

extension PTERun {
    /// The run's page size when one of its entries translates `iova`.
    func leafSize(at iova: UInt64) -> UInt64? {
        iova >= self.iova && (iova - self.iova) >> UInt64(pageShift) < count ? pageSize : nil
    }

    /// Whether `run` goes on where this one ends: the same page size, the
    /// next IOVA and the next frame. A run ending at 2^64 (its end wraps to
    /// 0) is never continued.
    @inline(__always)
    func isContinued(by run: PTERun) -> Bool {
        pageShift == run.pageShift && iova &+ length == run.iova && phys &+ length == run.phys && iova &+ length != 0
    }
}

/// Where `iommuMap` writes the runs it makes, in IOVA order: a run that
/// continues the last one (`PTERun.isContinued(by:)`) joins it.
protocol PTERunSink {
    mutating func appendJoining(_ run: PTERun)
}

extension ContiguousArray: PTERunSink where Element == PTERun {
    mutating func appendJoining(_ run: PTERun) {
        if let last = self.last, last.isContinued(by: run) { self[count - 1].count += run.count } else { append(run) }
    }
}

/// A mapping's runs in one domain while they are being made: nil until the
/// first run; one run stays inline, a second one moves them to an array.
extension Optional: PTERunSink where Wrapped == RunList {
    mutating func appendJoining(_ run: PTERun) {
        switch self {
        case nil:
            self = .one(run)
        case .one(var last)?:
            if last.isContinued(by: run) {
                last.count += run.count
                self = .one(last)
            } else {
                self = .many([last, run])
            }
        case .many(var rs)?:
            self = nil   // the array's only reference is now `rs`: appending does not copy it
            rs.appendJoining(run)
            self = .many(rs)
        case .items(var items)?:
            self = nil
            if case .run(var last)? = items.last, last.isContinued(by: run) {
                last.count += run.count
                items[items.count - 1] = .run(last)
            } else {
                items.append(.run(run))
            }
            self = .items(items)
        }
    }

    /// Appends a repeat (never joined: its first chunk is physically apart
    /// from what came before); the list becomes `.items`.
    mutating func appendRepeat(_ rep: PTERepeat) {
        var items: ContiguousArray<PTEItem>
        switch self {
        case nil: items = []
        case .one(let r)?: items = [.run(r)]
        case .many(let rs)?: items = ContiguousArray(rs.map { .run($0) })
        case .items(let i)?: items = i
        }
        self = nil
        items.append(.repeated(rep))
        self = .items(items)
    }

    /// `iommuMap` for a uniform stretch of chunks starting at `iova`: the
    /// first chunk's entries are computed and, when every page size they
    /// can use divides the chunk (`PTERepeat`'s condition: then each chunk
    /// has the first one's alignments), kept once as a repeat; otherwise
    /// each chunk is mapped in turn. An error is the first chunk's (every
    /// chunk would give the same one).
    mutating func iommuMap(iova: UInt64, stretch: PinnedStretch, bitmap: UInt64, leaves: UInt64?) -> Errno? {
        var pattern = ContiguousArray<PTERun>()
        if let e = VFIOModel.iommuMap(iova: iova, phys: stretch.phys(chunk: 0), size: stretch.unit, bitmap: bitmap, leaves: leaves,
                                      into: &pattern) { return e }
        // The largest page no larger than a chunk (the first chunk mapped, so one exists).
        let fitting = bitmap & (stretch.unit >= 1 << 63 ? .max : (stretch.unit << 1) &- 1)
        let largest = UInt64(1) << UInt64(63 - fitting.leadingZeroBitCount)
        if stretch.unit % largest == 0 {
            appendRepeat(PTERepeat(iova: iova, stride: stretch.unit, count: stretch.count, pattern: pattern, frames: stretch))
            return nil
        }
        for r in pattern { appendJoining(r) }
        var i: UInt64 = 1
        while i < stretch.count {
            if let e = VFIOModel.iommuMap(iova: iova &+ i &* stretch.unit, phys: stretch.phys(chunk: i), size: stretch.unit,
                                          bitmap: bitmap, leaves: leaves, into: &self) { return e }
            i += 1
        }
        return nil
    }
}

/// Leaf entries of an IOMMU domain, by mapping, as runs; plus a count per
/// page size kept up to date so `check ptes` costs O(1).
///
/// Runs are indexed by the mapping's slot in the mapping tree
/// (`DMATree.slot(at:)`), which stays fixed while the mapping lives:
/// adding or removing a mapping's runs costs no second tree walk.
public struct PageTable: Sendable {
    /// Mapping slot → the runs that mapping produced here (nil: none).
    public internal(set) var bySlot: ContiguousArray<RunList?> = []
    /// How many slots hold runs.
    public internal(set) var mappings = 0
    /// Entries per page shift (index = log2 of the page size).
    /// 128 bits: a domain of 1-byte pages can hold 2^64 entries and more.
    public internal(set) var entries = [UInt128](repeating: 0, count: 64)
    /// Of `entries`, those left behind by a mapping that is gone (before
    /// 6.18, removing a mapping that ends at 2^64-1 never unmaps it from
    /// the first domain: `vfio_unmap_unpin` loops to an end that wrapped).
    public internal(set) var leaked = [UInt128](repeating: 0, count: 64)
    /// The runs behind `leaked`, still translating their IOVAs.
    public internal(set) var leakedRuns: ContiguousArray<PTEItem> = []

    public init() {}

    /// The runs of the mapping in `slot`.
    public func runs(slot: Int32) -> RunList? { Int(slot) < bySlot.count ? bySlot[Int(slot)] : nil }

    /// Records the runs mapping `slot` produced here and counts their entries.
    mutating func add(slot: Int32, _ list: consuming RunList) {
        // (The common single run counted here: a call for it cost a
        // tenth of a MAP_DMA.)
        if case .one(let r) = list { entries[Int(r.pageShift)] += UInt128(r.count) } else { list.count(into: &entries) }
        let i = Int(slot)
        if i < bySlot.count {
            bySlot[i] = list
        } else {
            bySlot.append(contentsOf: repeatElement(nil, count: i - bySlot.count))
            bySlot.append(list)
        }
        mappings += 1
    }

    /// Takes the runs of `slot` out of the table.
    mutating func take(slot: Int32) -> RunList? {
        // Moved out in place (no copy of the list to release after).
        guard Int(slot) < bySlot.count, let list = bySlot[Int(slot)].take() else { return nil }
        mappings -= 1
        return list
    }

    mutating func remove(slot: Int32) {
        guard let list = take(slot: slot) else { return }
        if case .one(let r) = list { entries[Int(r.pageShift)] -= UInt128(r.count) } else { list.count(into: &entries, negate: true) }
    }

    /// Forgets which mapping owned the runs of `slot` but keeps them counted.
    mutating func leak(slot: Int32) {
        guard let list = take(slot: slot) else { return }
        list.count(into: &leaked)
        list.forEachItem { leakedRuns.append($0) }
    }

    /// The page size of the leaf entry that translates `iova`, nil when no
    /// entry does. A walk over every mapping: for a `check`, not a hot path.
    public func leafSize(at iova: UInt64) -> UInt64? {
        var found: UInt64? = nil
        for list in bySlot where found == nil { list?.forEachItem { r in if found == nil { found = r.leafSize(at: iova) } } }
        for r in leakedRuns where found == nil { found = r.leafSize(at: iova) }
        return found
    }

    /// Page size → entries, sizes with none left out; a count past
    /// 2^64-1 reads as 2^64-1 (a trace cannot write more).
    public var counts: [UInt64: UInt64] {
        var out: [UInt64: UInt64] = [:]
        for (shift, n) in entries.enumerated() where n != 0 { out[1 << UInt64(shift)] = UInt64(clamping: n) }
        return out
    }

}

/// The leaf entries `iommu_map` creates for one physically contiguous
/// chunk: at each step the largest page of the domain's bitmap that fits
/// the remaining size and both alignments, stopping early where a larger
/// page could start (`__iommu_map`, `iommu_pgsize`).
///
/// Returns EINVAL when the chunk is not aligned to the domain's smallest
/// page (`__iommu_map`; reachable when the domain's smallest page is larger
/// than the memory's), ENODEV for an empty bitmap.
///
/// With `leaves`, the driver builds each page from the largest of its own
/// leaf sizes that is no larger (each page is aligned to its size, so that
/// leaf fits it exactly): 5.10's `intel_iommu_map` called with an 8K page
/// writes two 4K entries (`__domain_mapping`).
///
/// - Complexity: O(number of page-size changes), not O(pages).
func iommuMap<Sink: PTERunSink>(iova: UInt64, phys: UInt64, size: UInt64, bitmap: UInt64, leaves: UInt64? = nil,
                                into out: inout Sink) -> Errno? {
    guard bitmap != 0 else { return .ENODEV }
    let minPage = bitmap & (~bitmap &+ 1)
    guard (iova | phys | size) & (minPage - 1) == 0 else { return .EINVAL }
    var iova = iova, phys = phys, left = size
    while left > 0 {
        // Sizes no larger than what is left: bits 0 ... fls(left).
        let top = 63 - UInt64(left.leadingZeroBitCount)
        var candidates = bitmap & (top == 63 ? .max : (UInt64(1) << (top + 1)) - 1)
        let merged = iova | phys
        if merged != 0 {
            let align = UInt64(merged.trailingZeroBitCount)
            candidates &= align == 63 ? .max : (UInt64(1) << (align + 1)) - 1
        }
        // Alignment to minPage guarantees at least minPage fits.
        let shift = 63 - UInt64(candidates.leadingZeroBitCount)
        let page = UInt64(1) << shift
        var count = left >> shift
        let larger = shift == 63 ? 0 : bitmap & ~((page << 1) &- 1)
        if larger != 0 {
            let next = larger & (~larger &+ 1)
            if (iova ^ phys) & (next - 1) == 0 {
                let offset = next - (merged & (next - 1))
                let (sum, overflow) = offset.addingReportingOverflow(next)
                if !overflow && sum <= left { count = offset >> shift }
            }
        }
        var leafShift = shift, leafCount = count
        if let leaves, leaves & page == 0 {
            let smaller = leaves & (page - 1)
            guard smaller != 0 else { return .EINVAL }
            leafShift = 63 - UInt64(smaller.leadingZeroBitCount)
            leafCount = count << (shift - leafShift)
        }
        out.appendJoining(PTERun(iova: iova, phys: phys, count: leafCount, pageShift: UInt8(leafShift)))
        let step = count << shift
        iova = iova &+ step
        phys = phys &+ step
        left -= step
    }
    return nil
}

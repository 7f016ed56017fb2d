import VFIOCore

/// The entries `iommu_map` made for a uniform stretch of chunks
/// (`PinnedStretch`): chunk i's entries are the first chunk's (`pattern`),
/// `i * stride` further on in IOVA (and on chunk i's frame). One value for
/// any number of chunks: a 12 TiB mapping of scattered 4K pages is one.
public struct PTERepeat: Hashable, Sendable {
    /// The first chunk's IOVA (`pattern[0].iova`).
    public var iova: UInt64
    /// Bytes from one chunk to the next: the chunk's size.
    public var stride: UInt64
    /// Chunks (at least one).
    public var count: UInt64
    /// The first chunk's entries, tiling `stride` bytes from `iova`.
    public var pattern: ContiguousArray<PTERun>
    /// The memory's chunks behind it (their frames, by rule).
    public var frames: PinnedStretch

    /// Bytes covered (at most a mapping's size).
    public var length: UInt64 { count &* stride }

    /// The entries of chunk `k`: the pattern moved to its IOVA and frame.
    func runs(ofChunk k: UInt64) -> ContiguousArray<PTERun> {
        let shift = k &* stride, phys = frames.phys(chunk: k)
        var out = pattern
        for i in out.indices {
            out[i].phys = phys &+ (pattern[i].iova &- iova)
            out[i].iova = pattern[i].iova &+ shift
        }
        return out
    }

    /// Chunks `from ..< from + n` as a repeat of their own.
    func chunks(from: UInt64, count n: UInt64) -> PTERepeat {
        PTERepeat(iova: iova &+ from &* stride, stride: stride, count: n, pattern: runs(ofChunk: from),
                  frames: frames.dropFirst(from).prefix(n))
    }

    /// The page size of the entry translating `iova`, by arithmetic.
    func leafSize(at iova: UInt64) -> UInt64? {
        guard iova >= self.iova, (iova - self.iova) / stride < count else { return nil }
        let at = self.iova &+ (iova - self.iova) % stride
        for r in pattern { if let size = r.leafSize(at: at) { return size } }
        return nil
    }

    /// Adds (or with `negate`, takes away) the entries per page shift.
    func count(into entries: inout [UInt128], negate: Bool = false) {
        for r in pattern {
            let n = UInt128(r.count) * UInt128(count)
            if negate { entries[Int(r.pageShift)] -= n } else { entries[Int(r.pageShift)] += n }
        }
    }
}

/// One element of a mapping's entries: a run, or a repeat of a chunk's.
public enum PTEItem: Hashable, Sendable {
    case run(PTERun)
    case repeated(PTERepeat)

    func leafSize(at iova: UInt64) -> UInt64? {
        switch self {
        case .run(let r): r.leafSize(at: iova)
        case .repeated(let r): r.leafSize(at: iova)
        }
    }

    func count(into entries: inout [UInt128], negate: Bool = false) {
        switch self {
        case .run(let r):
            if negate { entries[Int(r.pageShift)] -= UInt128(r.count) } else { entries[Int(r.pageShift)] += UInt128(r.count) }
        case .repeated(let r):
            r.count(into: &entries, negate: negate)
        }
    }

    /// Bytes covered.
    var length: UInt64 {
        switch self {
        case .run(let r): r.length
        case .repeated(let r): r.length
        }
    }

    /// Whether an entry of another page size than `size` is among these.
    func hasPage(otherThan size: UInt64) -> Bool {
        switch self {
        case .run(let r): r.pageSize != size
        case .repeated(let r): r.pattern.contains { $0.pageSize != size }
        }
    }

    /// The IOVA of the last run (of the last chunk, for a repeat).
    var lastRunIOVA: UInt64? {
        switch self {
        case .run(let r): r.iova
        case .repeated(let r): r.pattern.last.map { $0.iova &+ (r.count - 1) &* r.stride }
        }
    }
}

import VFIOCore

/// The state of a type1 container a failed call must leave untouched.
struct Type1Snapshot: Hashable {
    var locked: UInt64
    var dmaAvail: UInt32
    var vaddrInvalid: Int
    var mappings: [UInt64: DMAEntry]
    var ptes: [[UInt64: UInt64]]
    var iovaList: [IOVARange]
    var pgsizes: UInt64
    var groups: [String]
    var tracking: Bool
    /// Before 6.18, a mapping ends at 2^64-1: what the kernel's searches
    /// find then depends on its tree's shape.
    var hidesTop: Bool
    /// The sum of every mapping's size (wrapping), duplicates included.
    var total: UInt64

    init(_ c: Type1Container) {
        locked = c.lockedBytes
        dmaAvail = c.dmaAvail
        vaddrInvalid = c.vaddrInvalidCount
        var m: [UInt64: DMAEntry] = [:]
        var t: UInt64 = 0
        c.dmaList.forEach { m[$0] = $1; t &+= $1.size; return true }
        mappings = m
        total = t
        hidesTop = c.hidesTopMapping
        ptes = c.domains.map { $0.pageTable.counts }
        iovaList = c.iovaList
        pgsizes = c.pgsizeBitmap
        groups = c.groups.map(\.name)
        tracking = c.dirtyPageTracking
    }
}

/// type1's properties:
/// - `failed-op-changes-nothing`: a failed call leaves the state as it was;
/// - `unmap-reports-removed`: a successful unmap reports the sizes of the
///   mappings that left;
/// - `v2-exact-unmap-size`: a v2 unmap of exactly one mapping reports its
///   size;
/// - `unmap-all-empties`: UNMAP_ALL leaves no mapping and nothing locked.
extension Type1Container {
    public func snapshot() -> ContainerSnapshot { ContainerSnapshot(Type1Snapshot(self)) }

    public func propertyViolations(after call: ContainerCall, before snapshot: ContainerSnapshot) -> [PropertyViolation] {
        guard let before = snapshot.as(Type1Snapshot.self) else { return [] }
        var out: [PropertyViolation] = []
        let after = Type1Snapshot(self)
        if let e = call.errno, e != .hang, after != before {
            out.append(PropertyViolation("failed-op-changes-nothing", "\(e) but the state changed"))
        }
        if case .unmap(let u, .success(let reported), _, _) = call {
            let removed = before.total &- after.total
            if !u.flags.contains(.vaddr) && reported != removed {
                out.append(PropertyViolation("unmap-reports-removed", "reported \(reported), removed \(removed)"))
            }
            // Before 6.18 a range ending at 2^64-1 removes nothing: the
            // kernel's own quirk (vfio_dma_do_unmap), not a model bug.
            let endsAtTop = u.iova &+ u.size == 0
            if v2 == true, !u.flags.contains(.all), let m = before.mappings[u.iova], m.size == u.size, reported != m.size,
               !(endsAtTop && !profile.inclusiveEndSearch), !before.hidesTop {
                out.append(PropertyViolation("v2-exact-unmap-size", "mapping of \(m.size) unmapped exactly, reported \(reported)"))
            }
        }
        return out
    }

    public var unmapsAllAtEnd: Bool { isSet && hang == nil }

    public func unmapAllLeftovers(_ result: Result<UInt64, Errno>, before: ContainerSnapshot) -> PropertyViolation? {
        if case .failure(let e) = result {
            if e != .hang && !(e == .EINVAL && !profile.hasUnmapAllAndVaddr) {
                return PropertyViolation("unmap-all-empties", "UNMAP_ALL failed with \(e)")
            }
            return nil
        }
        // Before 6.18 a mapping ending at 2^64-1 can hide others from the
        // walk (vfio_find_dma_first_node), depending on the tree's shape.
        if before.as(Type1Snapshot.self)?.hidesTop ?? false { return nil }
        // Before 6.18 the kernel itself leaves a mapping ending at 2^64-1
        // (invisible to the tree walk when alone) and leaks the pins of one
        // it removed (vfio_unmap_unpin): those may stay, nothing else.
        var allowedMappings = 0
        var allowedPages = leakedPages
        if !profile.inclusiveEndSearch {
            dmaList.forEach { iova, dma in
                if iova &+ dma.size == 0 { allowedMappings += 1; allowedPages += dma.lockedPages }
                return true
            }
        }
        let leakedPTEs = domains.contains { $0.pageTable.leaked.contains { $0 != 0 } }
        if mappingCount != allowedMappings || ownLockedPages != allowedPages
            || (pageTableEntries(group: nil) != [:] && allowedMappings == 0 && !leakedPTEs) {
            return PropertyViolation("unmap-all-empties", "\(mappingCount) mappings, \(ownLockedPages << Self.pageShift) bytes locked left")
        }
        return nil
    }
}

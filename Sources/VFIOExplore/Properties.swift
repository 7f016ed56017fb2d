import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// The container state a failed operation must leave untouched.
struct Snapshot: Equatable {
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
        hidesTop = !c.profile.inclusiveEndSearch && !c.topSlots.isEmpty
        ptes = c.domains.map { $0.pageTable.counts }
        iovaList = c.iovaList
        pgsizes = c.pgsizeBitmap
        groups = c.groups.map(\.name)
        tracking = c.dirtyPageTracking
    }
}

/// A property that did not hold, and where.
public struct Violation: Sendable, CustomStringConvertible {
    /// A short name, the same for the same bug: shrinking keeps it.
    public var property: String
    public var line: Int
    public var detail: String
    public var description: String { "line \(line): \(property): \(detail)" }
    public init(property: String, line: Int, detail: String) {
        self.property = property
        self.line = line
        self.detail = detail
    }
}

/// Watches a replay on the model and checks, after every operation, the
/// properties that must hold whatever the answer (type1's, below; while
/// the model is iommufd's compat layer, `IOMMUFDProperties`):
/// - the model's `_checkInvariants()` (tree ordered and disjoint, PTE runs
///   cover exactly the mapped IOVAs over the pinned frames, locked pages
///   equal the normal pages pinned, `dma_avail` + mappings = limit);
/// - a failed operation changes nothing;
/// - a v2 unmap of exactly one mapping reports its size;
/// - a successful unmap reports the sizes of the mappings that left.
///
/// An operation the model answers `hang` ends the sequence: the state it
/// leaves (that of a process stuck in the ioctl) must keep the invariants,
/// nothing after it is checked, and the explorer notes it, never as a
/// finding.
public final class PropertyChecker {
    public let model: ModelBackend
    public private(set) var violations: [Violation] = []
    var before: Snapshot? = nil
    /// The same for iommufd's compat IOAS (`container iommufd`), whose
    /// properties are `IOMMUFDProperties`'.
    var beforeIOMMUFD: IOMMUFDSnapshot? = nil
    /// The line whose operation the model says never returns (it answered
    /// `hang`): the process is stuck there, so nothing after it is checked.
    public private(set) var hungAt: Int? = nil
    /// Why, as the model says.
    public private(set) var hangReason: String? = nil

    public init(model: ModelBackend) { self.model = model }

    /// Installs the checks on `replayer`, which must drive `model`.
    public func watch(_ replayer: Replayer) {
        replayer.willRun = { [unowned self] _ in
            // After a predicted hang the process is stuck in that ioctl:
            // later statements (all answered hang) are not checked.
            self.before = self.hungAt == nil ? Snapshot(self.model.container) : nil
            self.beforeIOMMUFD = self.model.compat.map(IOMMUFDSnapshot.init)
        }
        replayer.didRun = { [unowned self] st, outcome in self.check(st, outcome) }
    }

    func record(_ property: String, _ st: Statement, _ detail: String) {
        violations.append(Violation(property: property, line: st.line, detail: detail))
    }

    func check(_ st: Statement, _ outcome: Outcome) {
        if let compat = model.compat {
            guard let before = beforeIOMMUFD, let index = model.index(in: outcome) else { return }
            IOMMUFDProperties.check(st, answer: outcome.answers[index], before: before, compat) { record($0, st, $1) }
            return
        }
        guard let before, let index = model.index(in: outcome) else { return }
        let answer = outcome.answers[index]
        let c = model.container
        // The operation that hung: the state checked is the one the
        // process is stuck in (the invariants say what it may be); it is
        // not a failed operation, and what it removed is not reported.
        if c.hang != nil {
            hungAt = st.line
            hangReason = c.hang
            if let broken = c._checkInvariants() { record("invariant", st, broken) }
            return
        }
        if let broken = c._checkInvariants() {
            record("invariant", st, broken)
            return
        }
        let after = Snapshot(c)
        if case .errno(let e) = answer.status, e != .hang, after != before {
            record("failed-op-changes-nothing", st, "\(e) but the state changed")
        }
        if case .unmap(let u) = st.kind, case .ok = answer.status, case .size(let reported)? = answer.fields.first {
            let removed = before.total &- after.total
            if !u.flags.contains(.vaddr) && reported != removed {
                record("unmap-reports-removed", st, "reported \(reported), removed \(removed)")
            }
            // Before 6.18 a range ending at 2^64-1 removes nothing: the
            // kernel's own quirk (vfio_dma_do_unmap), not a model bug.
            let endsAtTop = u.iova &+ u.size == 0
            if c.v2 == true, !u.flags.contains(.all), let m = before.mappings[u.iova], m.size == u.size, reported != m.size,
               !(endsAtTop && !c.profile.inclusiveEndSearch), !before.hidesTop {
                record("v2-exact-unmap-size", st, "mapping of \(m.size) unmapped exactly, reported \(reported)")
            }
        }
    }

    /// After the sequence: UNMAP_ALL must leave an empty container with
    /// nothing locked.
    public func checkUnmapAllEmpties() {
        if model.compat != nil {
            let st = Statement(line: 0, column: 1, kind: .unmap(UnmapDMA(flags: [.all], iova: 0, size: 0)))
            IOMMUFDProperties.unmapAllEmpties(model) { record($0, st, $1) }
            return
        }
        guard model.container.isSet, model.container.hang == nil else { return }
        // Before 6.18 a mapping ending at 2^64-1 can hide others from the
        // walk (vfio_find_dma_first_node), depending on the tree's shape.
        let hidden = !model.container.profile.inclusiveEndSearch && !model.container.topSlots.isEmpty
        let st = Statement(line: 0, column: 1, kind: .unmap(UnmapDMA(flags: [.all], iova: 0, size: 0)))
        let r = model.unmapDMA(UnmapDMA(flags: [.all], iova: 0, size: 0))
        let c = model.container
        if case .failure(let e) = r {
            if e != .hang && !(e == .EINVAL && !c.profile.hasUnmapAllAndVaddr) {
                record("unmap-all-empties", st, "UNMAP_ALL failed with \(e)")
            }
            return
        }
        if hidden { return }
        // Before 6.18 the kernel itself leaves a mapping ending at 2^64-1
        // (invisible to the tree walk when alone) and leaks the pins of one
        // it removed (vfio_unmap_unpin): those may stay, nothing else.
        var allowedMappings = 0
        var allowedPages = c.leakedPages
        if !c.profile.inclusiveEndSearch {
            c.dmaList.forEach { iova, dma in
                if iova &+ dma.size == 0 { allowedMappings += 1; allowedPages += dma.lockedPages }
                return true
            }
        }
        let leakedPTEs = c.domains.contains { $0.pageTable.leaked.contains { $0 != 0 } }
        if c.mappingCount != allowedMappings || c.lockedBytes != allowedPages << 12
            || (c.pageTableEntries(group: nil) != [:] && allowedMappings == 0 && !leakedPTEs) {
            record("unmap-all-empties", st, "\(c.mappingCount) mappings, \(c.lockedBytes) bytes locked left")
        }
    }
}

extension ModelBackend {
    /// This backend's position among an outcome's answers.
    func index(in outcome: Outcome) -> Int? {
        guard let i = outcome.got.firstIndex(where: { $0.backend == name }), i < outcome.answers.count else { return nil }
        return i
    }
}

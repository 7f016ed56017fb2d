import VFIOCore
import VFIOTrace

/// Reduces a failing trace to a small one that fails the same way: drops
/// operations (in halves, then quarters, … then one by one), drops setup
/// statements, then moves numbers toward simple values (sizes to one page,
/// addresses to low aligned ones), repeating until nothing more can go.
/// A `container` statement is never dropped: the shrunk trace is for the
/// same kernel code as the one that failed (without it, an iommufd
/// sequence would become a type1 one and could fail otherwise).
///
/// `fails` replays a candidate and says whether it still shows the failure;
/// `budget` caps how many candidates are tried.
public struct Shrinker {
    public var budget: Int
    public private(set) var tried = 0
    public init(budget: Int = 2000) { self.budget = budget }

    public mutating func shrink(_ trace: Trace, fails: (Trace) -> Bool) -> Trace {
        var current = trace.statements.filter { if case .comment = $0.kind { return false } else { return true } }
        func attempt(_ candidate: [Statement]) -> Bool {
            guard tried < budget else { return false }
            tried += 1
            return fails(Trace(file: trace.file, statements: candidate))
        }
        var progress = true
        while progress && tried < budget {
            progress = false
            // Drop chunks, largest first (ddmin).
            var chunk = max(1, current.count / 2)
            while chunk >= 1 && tried < budget {
                var start = 0
                while start < current.count && tried < budget {
                    let end = min(current.count, start + chunk)
                    let kept = current[start..<end].filter(Self.isKept)
                    if kept.count == end - start { start += chunk; continue }
                    var candidate = current
                    candidate.replaceSubrange(start..<end, with: kept)
                    if attempt(candidate) { current = candidate; progress = true; start += kept.count } else { start += chunk }
                }
                chunk /= 2
            }
            // Simplify each statement's numbers.
            for i in current.indices where tried < budget {
                for simpler in Self.simplifications(of: current[i].kind) {
                    var candidate = current
                    candidate[i].kind = simpler
                    if attempt(candidate) { current = candidate; progress = true; break }
                }
            }
        }
        return Trace(file: trace.file, statements: current)
    }

    /// Statements shrinking keeps: which container kind the trace is for.
    static func isKept(_ st: Statement) -> Bool {
        if case .container = st.kind { return true }
        return false
    }

    /// Simpler versions of one statement, most simple first.
    static func simplifications(of kind: Statement.Kind) -> [Statement.Kind] {
        var out: [Statement.Kind] = []
        switch kind {
        case .map(let m):
            for size in [4096, 0x20_0000] as [UInt64] where size < m.size { var n = m; n.size = size; out.append(.map(n)) }
            for iova in [0, 0x1000, 0x20_0000] as [UInt64] where iova < m.iova { var n = m; n.iova = iova; out.append(.map(n)) }
            if m.flags != [.read, .write] && !m.flags.contains(.vaddr) { var n = m; n.flags = [.read, .write]; out.append(.map(n)) }
        case .unmap(let u) where !u.flags.contains(.all):
            for size in [4096, 0x20_0000] as [UInt64] where size < u.size { var n = u; n.size = size; out.append(.unmap(n)) }
            for iova in [0, 0x1000, 0x20_0000] as [UInt64] where iova < u.iova { var n = u; n.iova = iova; out.append(.unmap(n)) }
        case .memory(let m):
            if m.placement != .contiguous { var n = m; n.placement = .contiguous; out.append(.memory(n)) }
            if m.pfnmap { var n = m; n.pfnmap = false; out.append(.memory(n)) }
            if m.size > m.pageSize { var n = m; n.size = m.pageSize; out.append(.memory(n)) }
        case .domain(let d):
            if d != DomainSpec(name: d.name) { out.append(.domain(DomainSpec(name: d.name, emulated: d.emulated))) }
        case .memlock(let limit?) where limit != 0:
            out.append(.memlock(0))
        default:
            break
        }
        return out
    }
}

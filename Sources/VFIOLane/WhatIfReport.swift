import VFIOCore
import VFIOReplay

/// `vfio-sim whatif`'s reports: what changed in the state, as text for
/// people and as JSON (`vfiosim.whatif/1`, docs/REPORTS.md).
extension WhatIfComparison {
    /// Each difference between two snapshots, as "name  own → what-if".
    static func changes(_ a: Snapshot, _ b: Snapshot) -> [String] {
        var out: [String] = []
        if a.locked != b.locked { out.append("locked     \(readableSize(a.locked)) → \(readableSize(b.locked))") }
        if a.mappings != b.mappings { out.append("mappings   \(a.mappings) → \(b.mappings)") }
        if a.ptes != b.ptes { out.append("ptes       \(Planner.ptesText(a.ptes)) → \(Planner.ptesText(b.ptes))") }
        if a.dmaAvail != b.dmaAvail { out.append("dma_avail  \(a.dmaAvail.map(String.init) ?? "none") → \(b.dmaAvail.map(String.init) ?? "none")") }
        return out
    }

    /// What differs at the end: the snapshot, each domain's entries, and
    /// the ranges mapped under one setup only (the first of each side).
    public var endChanges: [String] {
        var out = Self.changes(ownEnd.snapshot, whatIfEnd.snapshot)
        // Per domain when there are several (the total above says it for one).
        if ownEnd.domainPTEs.count > 1 {
            for (a, b) in zip(ownEnd.domainPTEs, whatIfEnd.domainPTEs) where a.ptes != b.ptes {
                out.append("ptes \(a.domain)\(String(repeating: " ", count: max(1, 6 - a.domain.count)))\(Planner.ptesText(a.ptes)) → \(Planner.ptesText(b.ptes))")
            }
        }
        if ownEnd.ranges != whatIfEnd.ranges {
            let mine = Set(ownEnd.ranges), theirs = Set(whatIfEnd.ranges)
            let onlyOwn = ownEnd.ranges.filter { !theirs.contains($0) }
            let onlyWhatIf = whatIfEnd.ranges.filter { !mine.contains($0) }
            func first(_ r: [IOVARange]) -> String {
                r.first.map { " (first \(formatAddress($0.start)) + \(readableSize($0.size ?? 0)))" } ?? ""
            }
            out.append("ranges     \(onlyOwn.count) mapped only under the trace's own setup\(first(onlyOwn)), "
                       + "\(onlyWhatIf.count) only under the what-if\(first(onlyWhatIf))")
        }
        return out
    }

    /// The state comparison as text, after the answers' report.
    public var stateText: String {
        guard stateDiffers else {
            let s = whatIfEnd.snapshot
            return "\(file): the state is the same as under the trace's own setup (at end: \(readableSize(s.locked)) locked, "
                + "\(s.mappings) mappings, ptes \(Planner.ptesText(s.ptes)))\n"
        }
        var out = "\(file): the state differs from the trace's own setup\n"
        if let d = firstDivergence {
            let iteration = d.iteration.map { " (iteration \($0) of \(d.iterations))" } ?? ""
            out += "  first after line \(d.line)\(iteration): \(d.statement)\n"
            for c in Self.changes(d.own, d.whatIf) { out += "    \(c)\n" }
        }
        let peak = Self.changes(ownPeak, whatIfPeak)
        if !peak.isEmpty {
            out += "  at most\n"
            for c in peak { out += "    \(c)\n" }
        }
        let end = endChanges
        out += end.isEmpty ? "  at end     the same\n" : "  at end\n"
        for c in end { out += "    \(c)\n" }
        return out
    }

    // MARK: JSON

    public static let schema = "vfiosim.whatif/1"

    public static func json(_ comparisons: [WhatIfComparison]) -> String {
        JSONValue.array(comparisons.map(\.json)).pretty
    }

    var json: JSONValue {
        let changed = report.outcomes.filter { !$0.isShow && ($0.failed || !$0.agree) }
        return .object([
            ("schema", .string(Self.schema)),
            ("file", .string(file)),
            ("changes", .array(changes.map { .string($0) })),
            ("unchanged", .bool(unchanged)),
            ("answersChanged", .int(UInt64(changed.count))),
            ("answers", .array(changed.map { o in
                .object([
                    ("line", .int(UInt64(o.line))),
                    ("statement", .string(o.statement)),
                    ("expected", .optional(o.expected)),
                    ("got", .string(o.got.first?.text ?? "")),
                    ("reason", .optional(o.got.first?.reason)),
                ])
            })),
            ("stateDiffers", .bool(stateDiffers)),
            ("firstDivergence", .optional(firstDivergence) { d in
                .object([
                    ("line", .int(UInt64(d.line))),
                    ("iteration", .optional(d.iteration)),
                    ("iterations", .int(d.iterations)),
                    ("statement", .string(d.statement)),
                    ("own", Self.json(d.own)),
                    ("whatIf", Self.json(d.whatIf)),
                ])
            }),
            ("peak", .object([("own", Self.json(ownPeak)), ("whatIf", Self.json(whatIfPeak))])),
            ("end", .object([("own", Self.json(ownEnd)), ("whatIf", Self.json(whatIfEnd))])),
            ("differences", .array(endChanges.map { .string($0) })),
            ("errors", .array(report.errors.map { .string($0.located(in: file)) })),
        ])
    }

    static func json(_ s: Snapshot) -> JSONValue {
        .object([
            ("lockedBytes", .int(s.locked)),
            ("mappings", .int(s.mappings)),
            ("ptes", .ptes(s.ptes)),
            ("dmaAvail", .optional(s.dmaAvail.map(UInt64.init))),
        ])
    }

    static func json(_ e: EndState) -> JSONValue {
        .object([
            ("lockedBytes", .int(e.snapshot.locked)),
            ("mappings", .int(e.snapshot.mappings)),
            ("ptes", .ptes(e.snapshot.ptes)),
            ("dmaAvail", .optional(e.snapshot.dmaAvail.map(UInt64.init))),
            ("domains", .array(e.domainPTEs.map { .object([("domain", .string($0.domain)), ("ptes", .ptes($0.ptes))]) })),
            ("ranges", .array(e.ranges.map(JSONValue.range))),
        ])
    }
}

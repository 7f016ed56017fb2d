import VFIOCore
import VFIOCost
import VFIOReplay

/// `vfio-sim plan`'s reports: text for people, JSON for machines
/// (`vfiosim.plan/1`, documented in docs/REPORTS.md).
extension Planner {
    /// The plans as text for people: what each scenario needs, whether the
    /// trace's limits allow it and where it first fails when not, then the
    /// hazards, each class once per line.
    public static func render(_ plans: [ScenarioPlan]) -> String {
        plans.map(render).joined()
    }

    static func render(_ p: ScenarioPlan) -> String {
        var out = "\(p.file) (kernel \(p.kernel), \(p.container), \(p.operations) operations)\n"
        for m in p.assumedLayouts { out += "  memory    \(m)\n" }
        let n = p.needs
        out += "  memlock   needs \(readableSize(n.peakLocked)) locked (ulimit -l \(p.ulimitKiB); \(n.peakLocked) bytes), at most after line \(n.peakLockedLine); "
            + memlockVerdict(p) + "\n"
        out += "  entries   " + entriesVerdict(p) + "\n"
        if n.ptes.isEmpty { out += "  ptes      none\n" }
        if n.ptes.count > 1 {
            let total = n.peakTotalPTEs.entries.reduce(0) { $0 &+ $1.count }
            let shared = n.ptes.map(\.peakTotal).reduce(0, &+) != total ? "; groups with the same IOMMU share one domain and one table" : ""
            out += "  ptes      all domains: \(ptesText(n.peakTotalPTEs)) at most\(shared)\n"
        }
        for d in n.ptes {
            out += "  ptes      \(d.domain): \(ptesText(d.peak)) at most, after line \(d.peakLine); at end \(ptesText(d.end))\n"
        }
        out += "  at end    \(n.endMappings) mappings, \(readableSize(n.endLocked)) locked\n"
        if p.reached != p.needs {
            let r = p.reached
            out += "  reached   under the trace's limits: \(readableSize(r.peakLocked)) locked and \(r.peakMappings) mappings at most; "
                + "at end \(r.endMappings) mappings, \(readableSize(r.endLocked)) locked\n"
        }
        if let t = p.kernelTime { out += kernelTimeText(t, p) }
        if p.answersDiffering > 0 { out += "  note      \(p.answersDiffering) answers differ from the ones the trace writes (vfio-sim replay shows them)\n" }
        if p.hazards.isEmpty { return out + "  hazards   none\n" }
        out += "  hazards\n"
        for h in p.hazards { out += "    " + hazardPlace(h) + ": " + h.text + "\n" }
        return out
    }

    /// `kernel time: map 0.03 s, unmap 0.044 s (profile ..., release 6.18)`,
    /// then what the map and unmap time is mostly made of.
    static func kernelTimeText(_ t: KernelTime, _ p: ScenarioPlan) -> String {
        var out = "  kernel time: map \(seconds(t.map)) s, unmap \(seconds(t.unmap)) s (profile \(t.profile), \(t.release))\n"
        func terms(_ list: [(term: CostTerm, seconds: Double)]) -> String {
            list.prefix(3).map { "\($0.term.rawValue) \(seconds($0.seconds)) s" }.joined(separator: ", ")
        }
        func work(_ w: KernelWork) -> String {
            let pages = Backing.allCases.compactMap { b in w.pages[b].flatMap { $0 > 0 ? "\(b.rawValue) \($0)" : nil } }
            var s = "\(w.calls) calls" + (w.releases > 0 ? " and \(w.releases) container release\(w.releases == 1 ? "" : "s") at the last detach" : "")
                + ", pages " + (pages.isEmpty ? "0" : pages.joined(separator: ", ")) + ", \(w.chunks) chunks, \(w.ptes) PTEs"
            if w.faults > 0 { s += ", \(w.faults) first-touch faults (\(readableSize(w.faultedBytes)) zeroed)" }
            if w.failedCalls > 0 { s += "; \(w.failedCalls) refused (an ioctl each; see hazards)" }
            return s
        }
        if t.map > 0 { out += "    map     \(work(p.mapWork)): \(terms(t.mapTerms))\n" }
        if t.unmap > 0 { out += "    unmap   \(work(p.unmapWork)): \(terms(t.unmapTerms))\n" }
        if let par = p.parallelTime {
            out += "    on \(par.threads) thread\(par.threads == 1 ? "" : "s"): map \(seconds(par.map)) s, unmap \(seconds(par.unmap)) s "
                + "(\(par.containers) container\(par.containers == 1 ? "" : "s"), each on one thread: a container's calls hold its lock; "
                + "the process's mmap_lock and memory bandwidth left out, so at best)\n"
        }
        return out
    }

    /// Three significant digits: 0.0305, 26.6, 0.0000121.
    static func seconds(_ s: Double) -> String {
        guard s > 0, s.isFinite else { return "0" }
        var digits = 2, x = s
        while x >= 10 { x /= 10; digits -= 1 }
        while x < 1 { x *= 10; digits += 1 }
        return fixedDigits(s, max(digits, 0))
    }

    /// `value` with `digits` decimals, trailing zeros dropped.
    static func fixedDigits(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let n = UInt64((value * scale).rounded())
        let whole = n / UInt64(scale), frac = n % UInt64(scale)
        guard digits > 0 else { return String(whole) }
        var f = String(frac)
        while f.count < digits { f = "0" + f }
        while f.hasSuffix("0") { f.removeLast() }
        return f.isEmpty ? String(whole) : String(whole) + "." + f
    }

    static func ptesText(_ c: PTECounts) -> String {
        if c.entries.isEmpty { return "none" }
        return c.entries.map { "\(formatSize($0.size)):\($0.count)" }.joined(separator: " ") + " (\(c.entries.reduce(0) { $0 &+ $1.count }) entries)"
    }

    /// "line 4", "line 4, iteration 513 of 2048, and 1535 more the same
    /// way", "line 1036, and 1535 more the same way up to line 4106",
    /// "at end".
    static func hazardPlace(_ h: ScenarioPlan.Hazard) -> String {
        if h.line == 0 { return "at end" }
        var place = "line \(h.line)"
        if let i = h.iteration { place += ", iteration \(i) of \(h.iterations)" }
        if h.count > 1 { place += ", and \(h.count - 1) more the same way" + (h.lastLine != h.line ? " up to line \(h.lastLine)" : "") }
        return place
    }

    /// "maps from line 4 (iteration 513 of 2048) fail with ENOMEM, 1536 in all".
    static func failureText(_ f: ScenarioPlan.LimitFailure) -> String {
        let verb = f.statement.split(separator: " ").first.map(String.init) ?? ""
        let what = ["map": "maps", "unmap": "unmaps", "domain": "group attaches"][verb] ?? "operations"
        let iteration = f.iteration.map { " (iteration \($0) of \(f.iterations))" } ?? ""
        return "\(what) from line \(f.line)\(iteration) fail with \(f.errno), \(f.count) in all"
    }

    static func memlockVerdict(_ p: ScenarioPlan) -> String {
        let failure = p.memlockFailure.map { ": " + failureText($0) }
        if p.capIPCLock { return "CAP_IPC_LOCK: exempt from RLIMIT_MEMLOCK" + (failure ?? "") }
        guard let limit = p.memlock else { return "the trace sets no limit (unlimited)" + (failure ?? "") }
        return "the trace allows \(readableSize(limit))" + (failure ?? (p.memlockEnough ? ": enough" : ": not enough"))
    }

    static func entriesVerdict(_ p: ScenarioPlan) -> String {
        let n = p.needs
        if p.container == .iommufd {
            return "needs \(n.peakMappings) mappings (iopt areas) at once, after line \(n.peakMappingsLine); iommufd has no dma_entry_limit"
        }
        let head = "needs \(n.peakMappings) entries (vfio_dma) at once, after line \(n.peakMappingsLine); dma-entry-limit \(p.dmaEntryLimit)"
        if let f = p.entryFailure { return head + ": " + failureText(f) }
        return head + (p.entriesEnough ? ": enough" : ": not enough")
    }

    // MARK: JSON

    /// The schema name and version every plan object carries.
    public static let schema = "vfiosim.plan/1"

    /// The plans as JSON: an array with one object per file.
    public static func json(_ plans: [ScenarioPlan]) -> String {
        JSONValue.array(plans.map(json)).pretty
    }

    static func json(_ p: ScenarioPlan) -> JSONValue {
        .object([
            ("schema", .string(schema)),
            ("file", .string(p.file)),
            ("kernel", .string(p.kernel)),
            ("container", .string(p.container.rawValue)),
            ("operations", .int(UInt64(p.operations))),
            ("answersDiffering", .int(UInt64(p.answersDiffering))),
            ("assumedLayouts", .array(p.assumedLayouts.map { .string($0) })),
            ("needs", json(p.needs)),
            ("limits", .object([
                ("memlockBytes", .optional(p.memlock)),
                ("capIpcLock", .bool(p.capIPCLock)),
                ("ulimitKiB", .int(p.ulimitKiB)),
                ("memlockEnough", .bool(p.memlockEnough)),
                ("memlockFailure", .optional(p.memlockFailure, json)),
                ("dmaEntryLimit", p.container == .iommufd ? .null : .int(UInt64(p.dmaEntryLimit))),
                ("entriesEnough", .bool(p.entriesEnough)),
                ("entryFailure", .optional(p.entryFailure, json)),
            ])),
            ("reached", json(p.reached)),
            ("kernelTime", .optional(p.kernelTime) { json($0, p) }),
            ("hazards", .array(p.hazards.map { h in
                .object([
                    ("kind", .string(h.kind.rawValue)),
                    ("line", .int(UInt64(h.line))),
                    ("iteration", .optional(h.iteration)),
                    ("iterations", .int(h.iterations)),
                    ("count", .int(UInt64(h.count))),
                    ("lastLine", .int(UInt64(h.lastLine))),
                    ("text", .string(h.text)),
                ])
            })),
        ])
    }

    static func json(_ t: KernelTime, _ p: ScenarioPlan) -> JSONValue {
        func terms(_ list: [(term: CostTerm, seconds: Double)]) -> JSONValue {
            .object(list.map { ($0.term.rawValue, .double($0.seconds)) })
        }
        func work(_ w: KernelWork) -> JSONValue {
            .object([
                ("calls", .int(w.calls)), ("failedCalls", .int(w.failedCalls)), ("releases", .int(w.releases)),
                ("pages", .object(Backing.allCases.compactMap { b in w.pages[b].map { (b.rawValue, .int($0)) } })),
                ("folioSteps", .int(w.folioSteps.values.reduce(0, +))), ("pfnmapHugeSteps", .int(w.pfnmapHugeSteps)),
                ("faults", .int(w.faults)), ("faultedBytes", .int(w.faultedBytes)),
                ("chunks", .int(w.chunks)), ("ptes", .int(w.ptes)), ("iotlbSyncs", .int(w.iotlbSyncs)),
            ])
        }
        return .object([
            ("map", .double(t.map)), ("unmap", .double(t.unmap)), ("profile", .string(t.profile)), ("release", .string(t.release)),
            ("mapTerms", terms(t.mapTerms)), ("unmapTerms", terms(t.unmapTerms)),
            ("mapWork", work(p.mapWork)), ("unmapWork", work(p.unmapWork)),
            ("parallel", .optional(p.parallelTime) { par in
                .object([("threads", .int(UInt64(par.threads))), ("containers", .int(UInt64(par.containers))),
                         ("map", .double(par.map)), ("unmap", .double(par.unmap))])
            }),
        ])
    }

    static func json(_ u: ScenarioPlan.Usage) -> JSONValue {
        .object([
            ("peakLockedBytes", .int(u.peakLocked)),
            ("peakLockedLine", .int(UInt64(u.peakLockedLine))),
            ("peakMappings", .int(u.peakMappings)),
            ("peakMappingsLine", .int(UInt64(u.peakMappingsLine))),
            ("ptes", .array(u.ptes.map { d in
                .object([("domain", .string(d.domain)), ("peak", .ptes(d.peak)), ("peakLine", .int(UInt64(d.peakLine))), ("end", .ptes(d.end))])
            })),
            ("peakPtesAllDomains", .ptes(u.peakTotalPTEs)),
            ("endLockedBytes", .int(u.endLocked)),
            ("endMappings", .int(u.endMappings)),
        ])
    }

    static func json(_ f: ScenarioPlan.LimitFailure) -> JSONValue {
        .object([
            ("errno", .string(f.errno.description)),
            ("errnoValue", .int(UInt64(f.errno.rawValue))),
            ("line", .int(UInt64(f.line))),
            ("iteration", .optional(f.iteration)),
            ("iterations", .int(f.iterations)),
            ("count", .int(UInt64(f.count))),
            ("statement", .string(f.statement)),
        ])
    }
}

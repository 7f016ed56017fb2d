import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// What a scenario needs and what it risks, read from a replay on the
/// model: the peak locked memory (the `RLIMIT_MEMLOCK` to set), the peak
/// number of mappings against `dma_entry_limit`, the IOMMU page-table
/// entries by size per domain, and the hazards met on the way.
public struct ScenarioPlan: Sendable {
    public var file: String
    /// The profile the model answered as.
    public var kernel: String
    public var operations = 0
    /// The most memory locked at once, and the line after which it was.
    public var peakLocked: UInt64 = 0
    public var peakLockedLine = 0
    /// The trace's `RLIMIT_MEMLOCK` at the end (nil = unlimited).
    public var memlock: UInt64? = nil
    public var peakMappings: UInt64 = 0
    public var peakMappingsLine = 0
    public var dmaEntryLimit: UInt32 = 65535
    /// Per domain (group name), the entries when it had the most.
    public var peakPTEs: [DomainPeak] = []
    /// Every domain together, when they had the most entries.
    public var peakTotalPTEs = PTECounts()
    public var endLocked: UInt64 = 0
    public var endMappings: UInt64 = 0
    public var hazards: [Hazard] = []
    /// Answers that differed from the ones the trace wrote.
    public var answersDiffering = 0
    /// For each memory region the trace placed without `phys=`, the
    /// layout the model assumed: "0x7f0000000000 + 1 GiB: 4K pages
    /// scattered (the default; ...)".
    public var assumedLayouts: [String] = []

    public struct DomainPeak: Sendable {
        public var domain: String
        public var counts: PTECounts
        public var line: Int
        public var total: UInt64 { counts.counts.values.reduce(0, &+) }
    }

    /// One thing on the way a user may not expect.
    public struct Hazard: Sendable {
        public enum Kind: String, Sendable {
            /// A v1 unmap that removed nothing, less or more than asked.
            case unmapSize = "unmap size"
            /// EEXIST, which some clients ignore (the old mapping stays).
            case exists = "EEXIST"
            /// Out of mapping slots.
            case noSpace = "ENOSPC"
            /// Out of locked memory.
            case noMemory = "ENOMEM"
            /// Any other errno.
            case otherErrno = "errno"
            /// Mappings still pinned when the trace ends.
            case pinnedAtEnd = "pinned at end"
            /// An ioctl the kernel would never return from (before 6.18,
            /// `vfio_unmap_unpin` at the top of the address space): the
            /// scenario ends there, every later call hangs too.
            case hang = "hang"
        }
        public var kind: Kind
        /// 0 for the end of the trace.
        public var line: Int
        public var text: String
    }

    public init(file: String, kernel: String) { self.file = file; self.kernel = kernel }
}

/// Plans scenarios: each trace replayed on the model, watched after every
/// operation.
public enum Planner {
    public static func plan(_ trace: Trace, profile: KernelProfile = .newest) -> ScenarioPlan {
        let model = ModelBackend(profile: profile, checksInvariants: false)
        let replayer = Replayer(backends: [model])
        replayer.closesBackends = false
        // Every group name the trace gives, and d0 when the replay attaches it.
        var names: [String] = []
        var sawOperation = false
        for st in trace.statements {
            switch st.kind {
            case .domain(let spec): if !names.contains(spec.name) { names.append(spec.name) }
            case .map, .unmap, .info, .extension, .dirty, .check: if !sawOperation, names.isEmpty { names.append(DomainSpec.default.name) }; sawOperation = true
            default: break
            }
        }
        var plan = ScenarioPlan(file: trace.file, kernel: profile.description)
        var peaks: [String: ScenarioPlan.DomainPeak] = [:]
        replayer.didRun = { st, outcome in
            // Under iommufd the limit is checked against the user's
            // locked_vm, not VmLck (which stays 0): plan with that figure.
            if case .value(let vmLck) = model.lockedMemory(), case let locked = model.compat?.userLockedBytes ?? vmLck, locked > plan.peakLocked {
                plan.peakLocked = locked
                plan.peakLockedLine = st.line
            }
            if case .value(let n) = model.mappingCount(), n > plan.peakMappings {
                plan.peakMappings = n
                plan.peakMappingsLine = st.line
            }
            if case .value(let c) = model.pageTableEntries(domain: nil),
               c.counts.values.reduce(0, &+) > plan.peakTotalPTEs.counts.values.reduce(0, &+) {
                plan.peakTotalPTEs = c
            }
            for name in names {
                guard case .value(let c) = model.pageTableEntries(domain: name) else { continue }
                let peak = ScenarioPlan.DomainPeak(domain: name, counts: c, line: st.line)
                if peak.total > (peaks[name]?.total ?? 0) { peaks[name] = peak }
            }
        }
        let report = replayer.run(trace)
        plan.kernel = model.kernel
        for st in trace.statements {
            if case .memory(let spec) = st.kind, let text = assumedLayout(spec) {
                plan.assumedLayouts.append("\(formatAddress(spec.vaddr)) + \(readableSize(spec.size)): \(text)")
            }
            if case .memlock(let m) = st.kind { plan.memlock = m }
            if case .dmaEntryLimit(let n) = st.kind { plan.dmaEntryLimit = n }
        }
        plan.peakPTEs = names.compactMap { peaks[$0] }
        if case .value(let v) = model.lockedMemory() { plan.endLocked = model.compat?.userLockedBytes ?? v }
        if case .value(let v) = model.mappingCount() { plan.endMappings = v }

        var hung = false
        for o in report.outcomes where !o.isShow && !o.answers.isEmpty {
            plan.operations += 1
            if o.failed { plan.answersDiffering += 1 }
            guard let got = o.got.first, let answer = o.answers.first else { continue }
            // After a hang the process is stuck: later answers (all hang)
            // say nothing more.
            if hung { continue }
            let why = got.reason.map { ": " + $0 } ?? ""
            let said = "\(o.statement) => \(got.peopleText)\(why)"
            switch answer.status {
            case .errno(.hang):
                hung = true
                let reason = model.container.hang.map { ": " + $0 } ?? ""
                plan.hazards.append(.init(kind: .hang, line: o.line, text: "\(o.statement) => hang\(reason); the process never returns from "
                                          + "this ioctl (the container's lock stays held), every later call hangs too: the scenario ends here"))
            case .errno(.EEXIST):
                plan.hazards.append(.init(kind: .exists, line: o.line, text: said + "; a client that ignores EEXIST keeps the old mapping, not the new memory"))
            case .errno(.ENOSPC): plan.hazards.append(.init(kind: .noSpace, line: o.line, text: said))
            case .errno(.ENOMEM): plan.hazards.append(.init(kind: .noMemory, line: o.line, text: said))
            case .errno: plan.hazards.append(.init(kind: .otherErrno, line: o.line, text: said))
            default:
                // Only an unmap whose size differs from the one asked gets a
                // reason without being an errno (Replayer.wantsReason).
                if o.statement.hasPrefix("unmap "), got.reason != nil {
                    plan.hazards.append(.init(kind: .unmapSize, line: o.line, text: said))
                }
            }
        }
        if plan.endMappings > 0 && !hung {
            plan.hazards.append(.init(kind: .pinnedAtEnd, line: 0, text: "\(plan.endMappings) mapping\(plan.endMappings == 1 ? "" : "s") still in the container at the end, \(readableSize(plan.endLocked)) locked: pinned and DMA-able until unmapped or the container closes"))
        }
        _ = model.close()
        return plan
    }

    /// The layout the model assumes for a region without `phys=`; nil for
    /// one with it.
    static func assumedLayout(_ spec: MemorySpec) -> String? {
        switch spec.placement {
        case .realistic where spec.pfnmap:
            return "device memory (pfnmap), one contiguous run (the default for pfnmap)"
        case .realistic where spec.pageSize == PageSizes.pageSize:
            return "4K pages scattered (the default; phys=contiguous for one run, thp for transparent hugepages)"
        case .realistic:
            return "\(formatSize(spec.pageSize)) hugepages, each contiguous and apart from the others (the default; phys=contiguous for one run)"
        case .thp:
            return "4K pages on transparent hugepages (thp): each 2 MiB-aligned 2 MiB block contiguous, the pages around them scattered"
        case .contiguous, .layout:
            return nil
        }
    }

    /// The plans as text for people.
    public static func render(_ plans: [ScenarioPlan]) -> String {
        var out = ""
        for p in plans {
            out += "\(p.file) (kernel \(p.kernel), \(p.operations) operations)\n"
            for m in p.assumedLayouts { out += "  memory    \(m)\n" }
            let limit = p.memlock.map { "the trace sets \(readableSize($0))" } ?? "the trace sets no limit"
            out += "  memlock   \(readableSize(p.peakLocked)) at most, after line \(p.peakLockedLine): set RLIMIT_MEMLOCK to at least \(p.peakLocked) bytes (ulimit -l \((p.peakLocked + 1023) / 1024)); \(limit)\n"
            out += "  mappings  \(p.peakMappings) at most, after line \(p.peakMappingsLine), of dma_entry_limit \(p.dmaEntryLimit)\n"
            if p.peakPTEs.isEmpty { out += "  ptes      none\n" }
            if p.peakPTEs.count > 1 {
                let counts = p.peakTotalPTEs.counts.keys.sorted().map { "\(formatSize($0)):\(p.peakTotalPTEs.counts[$0]!)" }.joined(separator: " ")
                let total = p.peakTotalPTEs.counts.values.reduce(0, &+)
                let shared = p.peakPTEs.map(\.total).reduce(0, &+) != total ? "; groups with the same IOMMU share one domain and one table" : ""
                out += "  ptes      all domains: \(counts) (\(total) entries) at most\(shared)\n"
            }
            for d in p.peakPTEs {
                let counts = d.counts.counts.keys.sorted().map { "\(formatSize($0)):\(d.counts.counts[$0]!)" }.joined(separator: " ")
                out += "  ptes      \(d.domain): \(counts) (\(d.total) entries) at most, after line \(d.line)\n"
            }
            out += "  at end    \(p.endMappings) mappings, \(readableSize(p.endLocked)) locked\n"
            if p.answersDiffering > 0 { out += "  note      \(p.answersDiffering) answers differ from the ones the trace writes (vfio-sim replay shows them)\n" }
            if p.hazards.isEmpty {
                out += "  hazards   none\n"
            } else {
                out += "  hazards\n"
                for h in p.hazards { out += "    " + (h.line > 0 ? "line \(h.line): " : "at end: ") + h.text + "\n" }
            }
        }
        return out
    }
}

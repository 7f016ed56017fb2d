import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// `vfio-sim whatif`: a trace replayed on the model with its own setup and
/// with the setup changed, compared on the written answers and on the
/// whole state: locked memory, the mappings (how many and which ranges),
/// the IOMMU entries by page size per domain, and `dma_avail`, after every
/// operation (the first point they part) and at the end. A change that
/// moves no written answer can still turn 6,659 IOMMU entries into four
/// million; this says so.
public struct WhatIfComparison: Sendable {
    public var file: String
    /// The changes, as trace statements (`memlock 64M`).
    public var changes: [String]
    /// The what-if replay, its answers compared with the written ones.
    public var report: FileReport
    /// The first operation after which the states differ, or nil.
    public var firstDivergence: Divergence? = nil
    /// The state at the end under the trace's own setup, and under the what-if.
    public var ownEnd = EndState()
    public var whatIfEnd = EndState()
    /// The most each setup reached on the way: locked memory, mappings,
    /// and the page-table entries when they were most (a plan torn down at
    /// its end is the same at the end under both, not at its peak).
    public var ownPeak = Snapshot()
    public var whatIfPeak = Snapshot()

    /// What the model holds at one point (the current container; locked is
    /// the process's, iommufd's the user's locked_vm).
    public struct Snapshot: Sendable, Equatable {
        public var locked: UInt64 = 0
        public var mappings: UInt64 = 0
        /// Every domain together.
        public var ptes = PTECounts()
        /// nil before the container is set up, and under iommufd while running.
        public var dmaAvail: UInt32? = nil

        /// Each count raised to `s`'s where that is more; the entries are
        /// those of the snapshot with the most in all; `dma_avail` the least.
        mutating func raise(to s: Snapshot) {
            locked = max(locked, s.locked)
            mappings = max(mappings, s.mappings)
            func total(_ c: PTECounts) -> UInt64 { c.entries.reduce(0) { $0 &+ $1.count } }
            if total(s.ptes) > total(ptes) { ptes = s.ptes }
            if let a = s.dmaAvail { dmaAvail = min(dmaAvail ?? a, a) }
        }
    }

    /// The state at the end, with the mappings' ranges and each domain's entries.
    public struct EndState: Sendable, Equatable {
        public var snapshot = Snapshot()
        public var ranges: [IOVARange] = []
        public var domainPTEs: [DomainPTEs] = []
    }

    public struct DomainPTEs: Sendable, Equatable {
        public var domain: String
        public var ptes: PTECounts
    }

    public struct Divergence: Sendable {
        public var line: Int
        /// 1-based, of `iterations`, for a `repeat=` line.
        public var iteration: UInt64?
        public var iterations: UInt64
        public var statement: String
        public var own: Snapshot
        public var whatIf: Snapshot
    }

    /// Answers that differ from the written ones.
    public var answersChanged: Int { report.outcomes.filter { $0.failed || !$0.agree }.count }
    public var stateDiffers: Bool { firstDivergence != nil || ownEnd != whatIfEnd || ownPeak != whatIfPeak }
    /// Nothing changed: every written answer held and the state is the same.
    public var unchanged: Bool { report.ok && !stateDiffers }

    /// Replays `trace` as it is and with `change`, at `profile`.
    public static func run(_ trace: Trace, change: WhatIf, profile: KernelProfile = .newest, explain: Bool = false) -> WhatIfComparison {
        let names = PlanWatch.groupNames(trace)
        var own: [Snapshot] = []
        var ownPeak = Snapshot(), whatIfPeak = Snapshot()
        let (_, ownEnd) = replay(trace, profile: profile, names: names, explain: false) { _, _, s in
            own.append(s)
            ownPeak.raise(to: s)
            return true
        }
        var iterations: [Int: UInt64] = [:]
        for st in trace.statements where st.repetition != nil { iterations[st.line] = st.count }
        var runs: [Int: UInt64] = [:]
        var index = 0
        var divergence: Divergence? = nil
        let (report, whatIfEnd) = replay(change.apply(to: trace), profile: profile, names: names, explain: explain) { st, o, s in
            defer { index += 1 }
            whatIfPeak.raise(to: s)
            let n = (runs[st.line] ?? 0) + 1
            runs[st.line] = n
            guard divergence == nil, index < own.count, own[index] != s else { return true }
            let of = iterations[st.line]
            divergence = Divergence(line: st.line, iteration: of.map { _ in n }, iterations: of ?? 1, statement: o.statement,
                                    own: own[index], whatIf: s)
            return true
        }
        var c = WhatIfComparison(file: trace.file, changes: change.statements, report: report)
        c.firstDivergence = divergence
        c.ownEnd = ownEnd
        c.whatIfEnd = whatIfEnd
        c.ownPeak = ownPeak
        c.whatIfPeak = whatIfPeak
        return c
    }

    /// One replay, `observe` called with the state after every operation and
    /// check until it returns false; the report and the state at the end.
    static func replay(_ trace: Trace, profile: KernelProfile, names: [String], explain: Bool,
                       observe: @escaping (Statement, Outcome, Snapshot) -> Bool) -> (FileReport, EndState) {
        let model = ModelBackend(profile: profile, checksInvariants: false)
        let replayer = Replayer(backends: [model])
        replayer.explainsEveryAnswer = explain
        replayer.closesBackends = false
        var watching = true
        replayer.didRun = { st, o in
            if watching { watching = observe(st, o, snapshot(model)) }
        }
        var report = replayer.run(trace)
        var end = EndState(snapshot: snapshot(model))
        if let info = info(model) { end.snapshot.dmaAvail = info.dmaAvail }
        end.ranges = model.inspect { $0.mappings(meeting: nil) }.map { IOVARange(start: $0.iova, last: $0.last) }
        end.domainPTEs = names.map { name in
            if case .value(let c) = model.pageTableEntries(domain: name) { return DomainPTEs(domain: name, ptes: c) }
            return DomainPTEs(domain: name, ptes: PTECounts())
        }
        report.problems += replayer.close()
        return (report, end)
    }

    static func snapshot(_ model: ModelBackend) -> Snapshot {
        var s = Snapshot()
        s.locked = model.inspect { $0.limitedBytes }
        if case .value(let n) = model.mappingCount() { s.mappings = n }
        if case .value(let c) = model.pageTableEntries(domain: nil) { s.ptes = c }
        if let avail = model.inspect({ $0.availableEntries }) { s.dmaAvail = avail }
        return s
    }

    /// GET_INFO as userspace asks it (the fixed part, then the size needed); nil before set-up.
    static func info(_ model: ModelBackend) -> IOMMUInfo? {
        guard case .success(let probe) = model.getInfo(argsz: IOMMUInfo.headerSize),
              case .success(let info) = model.getInfo(argsz: max(probe.argsz, IOMMUInfo.headerSize)) else { return nil }
        return info
    }
}

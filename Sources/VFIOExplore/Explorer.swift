import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// What went wrong in one generated sequence.
public enum Finding: Sendable, CustomStringConvertible {
    /// A property of the model did not hold.
    case property(Violation)
    /// The backends answered one statement differently.
    case disagreement(line: Int, statement: String, answers: [String])
    /// A backend could not run the sequence (a setup it cannot honour).
    case error(line: Int, message: String)

    /// The same for the same bug, so shrinking can keep to it.
    public var key: String {
        switch self {
        case .property(let v): "property \(v.property)"
        case .disagreement(_, let statement, _): "disagreement on \(statement.split(separator: " ").first ?? "")"
        case .error(_, let message): "error \(message.prefix(while: { $0 != ":" }))"
        }
    }

    public var description: String {
        switch self {
        case .property(let v): "\(v)"
        case .disagreement(let line, let statement, let answers): "line \(line): \(statement): \(answers.joined(separator: ", "))"
        case .error(let line, let message): "line \(line): error: \(message)"
        }
    }
}

/// Runs generated sequences on the model (and on other backends side by
/// side), finds property violations and disagreements, and shrinks each to
/// a minimal trace.
public struct Explorer {
    /// Backends to compare with the model, made fresh for each run (the
    /// kernel backend in `--backend both`); empty for model-only runs.
    public var others: () throws(BackendError) -> [any Backend]
    /// The IOMMUs the other backend's groups really have, for the model to play.
    public var hardwareDomains: [DomainSpec] = []
    /// The kernel whose answers the model gives where a sequence does not
    /// say (the running kernel's, beside a kernel backend).
    public var modelProfile: KernelProfile = .newest
    /// Runs one replay somewhere else (a child process, so that what a
    /// kernel leaves charged to a process cannot leak into the next run).
    public var isolate: ((() -> FileReport) -> FileReport)? = nil
    public var generator: SequenceGenerator
    public var shrinkBudget = 2000

    public init(generator: SequenceGenerator = SequenceGenerator(), others: @escaping () throws(BackendError) -> [any Backend] = { [] }) {
        self.generator = generator
        self.others = others
    }

    /// Runs several replays somewhere else, in order, and returns their
    /// reports: one child process for as many sequences in a row as can
    /// share it. Each replay also says whether the process must not run
    /// another after it (the kernel may have left something charged to it).
    public var isolateBatch: (([() -> (FileReport, freshProcessAfter: Bool)]) -> [FileReport])? = nil
    /// How many sequences `checkAll` is given at a time (with
    /// `isolateBatch`, the most one child process runs).
    public var sequencesPerProcess = 50

    /// Replays `trace` and returns its first finding, if any, with the
    /// report (whose answers fill a saved trace). Property violations ride
    /// in the report's errors so they survive `isolate`.
    public func check(_ trace: Trace) -> (Finding?, FileReport) {
        if let skipped = skippedOnKernel(trace) { return (nil, skipped) }
        let run = { () -> FileReport in replay(trace).0 }
        let report = isolate?(run) ?? run()
        return (Self.finding(in: report), report)
    }

    /// `check` of each trace, in order; with `isolateBatch`, the replays
    /// share child processes where they can.
    public func checkAll(_ traces: [Trace]) -> [(Finding?, FileReport)] {
        guard let isolateBatch else { return traces.map(check) }
        var reports = [FileReport?](repeating: nil, count: traces.count)
        var toRun: [Int] = []
        for (i, t) in traces.enumerated() {
            if let skipped = skippedOnKernel(t) { reports[i] = skipped } else { toRun.append(i) }
        }
        let ran = isolateBatch(toRun.map { i in { replay(traces[i]) } })
        for (k, i) in toRun.enumerated() {
            reports[i] = k < ran.count ? ran[k] : {
                var lost = FileReport(file: traces[i].file, kernels: [])
                lost.problems.append(ReportProblem(.aborted("the batch of replays returned no report for this sequence")))
                return lost
            }()
        }
        return reports.map { r in (Self.finding(in: r!), r!) }
    }

    /// The report of a sequence the kernel must not run, or nil.
    func skippedOnKernel(_ trace: Trace) -> FileReport? {
        guard !hardwareDomains.isEmpty, let hazard = kernelHazard(trace) else { return nil }
        // Before 6.18 some overlaps at the top of the address space make
        // the kernel loop forever in vfio_unmap_unpin, on the unmap or
        // when the container is released, and a mapping that ends at
        // 2^64-1 is never unpinned: such a sequence is not run there (it
        // would stop the machine, or use up its hugepages for every
        // later sequence); the model's answers are checked on the model.
        var skipped = FileReport(file: trace.file, kernels: [])
        skipped.problems.append(ReportProblem(.note(Self.notRunPrefix + hazard.reason)))
        return skipped
    }

    /// One replay on the model and the other backends, properties checked;
    /// and whether a process that ran it should run no other: the model
    /// leaked pinned pages (the kernel then leaves them charged to the
    /// process), or the run ended in an error or a leak the kernel reported.
    func replay(_ trace: Trace) -> (FileReport, freshProcessAfter: Bool) {
        let model = ModelBackend(profile: modelProfile, checksInvariants: false)
        let real: [any Backend]
        do throws(BackendError) { real = try others() } catch {
            var failed = FileReport(file: trace.file, kernels: [])
            failed.problems.append(ReportProblem(.aborted(error.message)))
            return (failed, true)
        }
        let backends = real + [model]
        let replayer = Replayer(backends: backends, hardwareDomains: hardwareDomains)
        replayer.closesBackends = false
        replayer.explainsHeldAnswers = false
        let checker = PropertyChecker(model: model)
        checker.watch(replayer)
        var report = replayer.run(trace)
        checker.checkUnmapAllEmpties()
        report.problems += replayer.close()
        if let line = checker.hungAt {
            report.problems.append(ReportProblem(line: line, .note(Self.hangPrefix + (checker.hangReason ?? "vfio_unmap_unpin"))))
        }
        for v in checker.violations {
            report.problems.append(ReportProblem(line: v.line, .property(name: v.property, detail: v.detail)))
        }
        let leaked = report.problems.contains { if case .backend(_, .lockedAfterRelease) = $0.kind { true } else { false } }
        return (report, model.inspect { $0.leakedPages } > 0 || leaked || !report.errors.isEmpty)
    }

    /// The first finding a report shows.
    static func finding(in report: FileReport) -> Finding? {
        if let e = report.errors.first {
            if case .property(let name, let detail) = e.kind {
                return .property(Violation(property: name, line: e.line, detail: detail))
            }
            return .error(line: e.line, message: e.message)
        }
        if let o = report.outcomes.first(where: { !$0.agree }) {
            // Each answer with its reason where the backend gives one (the
            // model's rule), so a finding names the rule a kernel broke.
            return .disagreement(line: o.line, statement: o.statement,
                                 answers: o.got.map { g in "\(g.backend) \(g.text)" + (g.reason.map { " (\($0))" } ?? "") })
        }
        return nil
    }

    static let notRunPrefix = "not run on the kernel: "
    static let hangPrefix = "the sequence ends in a predicted hang (the process stays in this ioctl, every later call hangs): "

    /// Whether the model says the sequence of `report` hangs the kernel
    /// (a hazard, noted, never a finding).
    public static func endsInHang(_ report: FileReport) -> Bool {
        report.problems.contains { if case .note(let text) = $0.kind { text.hasPrefix(hangPrefix) } else { false } }
    }

    /// Why the sequence must not run on a real kernel, as the model
    /// (playing the same IOMMU at the same version) answers it: it, or
    /// releasing its container afterwards (every group detached, as when
    /// the process exits), loops forever in `vfio_unmap_unpin`; it leaves
    /// hugepages pinned for good (a mapping that ends at 2^64-1 is never
    /// unpinned before 6.18); or it lets a map overlap another mapping in
    /// the IOMMU.
    public func kernelHazard(_ trace: Trace) -> KernelHazard? {
        let model = ModelBackend(profile: modelProfile, checksInvariants: false, pinned: true)
        let replayer = Replayer(backends: [model], hardwareDomains: hardwareDomains)
        replayer.closesBackends = false
        _ = replayer.run(trace)
        for group in model.inspect({ $0.groups.map(\.name) }) { _ = model.detachGroup(group) }
        if model.inspect({ $0.hang }) != nil { return .hang }
        if model.inspect({ $0.overlapsLetThrough }) > 0 { return .overlap }
        let hugepages = trace.statements.contains { if case .memory(let m) = $0.kind { m.pageSize > 4096 } else { false } }
        if hugepages && model.inspect({ $0.leakedPages }) > 0 { return .pinnedHugepages }
        return nil
    }

    /// Whether `report` is of a sequence that was not run on the kernel.
    public static func notRunOnKernel(_ report: FileReport) -> Bool {
        report.problems.contains { if case .note(let text) = $0.kind { text.hasPrefix(notRunPrefix) } else { false } }
    }

    /// The hazard that kept the sequence of `report` off the kernel.
    public static func hazardKeptOff(_ report: FileReport) -> KernelHazard? {
        for p in report.problems {
            guard case .note(let text) = p.kind, text.hasPrefix(notRunPrefix) else { continue }
            return KernelHazard.allCases.first { notRunPrefix + $0.reason == text }
        }
        return nil
    }

    /// Shrinks a failing trace, keeping the same kind of finding.
    public func shrink(_ trace: Trace, finding: Finding) -> (Trace, Finding, Int) {
        var shrinker = Shrinker(budget: shrinkBudget)
        let small = shrinker.shrink(trace) { candidate in
            check(candidate).0?.key == finding.key
        }
        let final = check(small).0 ?? finding
        return (small, final, shrinker.tried)
    }

    /// The shrunk trace as a fixture: every operation with the answer the
    /// first backend gave (the kernel's, in a differential run), and a
    /// header naming the finding.
    public func fixtureText(_ trace: Trace, finding: Finding, seed: UInt64) -> String {
        let (_, report) = check(trace)
        var byLine: [Int: String] = [:]
        for o in report.outcomes { if let g = o.got.first { byLine[o.line] = g.text } }
        var out = "# Found by vfio-sim explore (seed \(seed)), shrunk.\n"
        out += "# Finding: \(finding)\n"
        for var st in trace.statements {
            st.expected = nil
            var line = printStatement(st)
            if case .check = st.kind {} else if let answer = byLine[st.line] { line += " => " + answer }
            out += line + "\n"
        }
        return out
    }
}

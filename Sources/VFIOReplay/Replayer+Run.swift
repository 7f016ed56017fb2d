import VFIOCore
import VFIOTrace

// `Replayer.run`, in steps: the state one run carries from statement to
// statement, the dispatch of each statement, and the one step that runs an
// operation or check (`perform`). Setup statements: `Replayer+Setup.swift`.

/// What one `run` carries from statement to statement.
struct RunState {
    /// The replayer's options, copied once at the start of the run.
    let options: ReplayOptions
    var report: FileReport
    /// Where operations, checks and `show`s go, in file order.
    var sink: OutcomeSink
    /// Which real group plays each of the trace's domains.
    var binding: GroupBinding

    // What the trace set so far (`show` reads it).
    var started = false
    var memlock: UInt64? = nil
    var capIPCLock = false
    var dmaEntryLimit: UInt32 = 65535
    /// Groups in the container, in the order attached.
    var attached: [String] = []

    // The container being driven, and the others' progress.
    var iommuType: IOMMUType = .type1v2
    var iommuStatement: Statement? = nil
    var declaredDomain = false
    var progress: [String: ContainerProgress] = [:]
    var currentContainer = "c0"
    /// The release the model answers (a `kernel` line changes it): a
    /// preset's values are that release's.
    var release = KernelVersion.newestKnown
    /// A preset whose values are inferred for the release answered says
    /// so, once per preset and trace.
    var presetsNoted: Set<IOMMUPreset> = []
}

extension Replayer {
    public func run(_ trace: Trace) -> FileReport {
        let options = self.options
        // Held answers are only counted with one backend and no observer.
        let countsHeld = !options.keepsHeldOutcomes && backends.count == 1 && willRun == nil && didRun == nil
        var s = RunState(options: options, report: FileReport(file: trace.file, kernels: []),
                         sink: OutcomeSink(countsHeld: countsHeld), binding: GroupBinding(hardwareDomains: hardwareDomains))
        if let kind = options.pinnedContainer ?? options.defaultContainer {
            for b in backends {
                do throws(BackendError) { try b.setContainer(kind) } catch {
                    s.report.problems.append(ReportProblem(line: trace.statements.first?.line ?? 1, .setup(backend: b.name, message: error.message)))
                }
            }
        }
        s.release = backends.first.flatMap { KernelVersion(parsing: $0.kernel) } ?? KernelVersion.newestKnown
        // Each statement is read where it lies (a copy of each cost more
        // than the model's answer).
        for index in trace.statements.indices { step(trace.statements[index], &s) }
        s.report.outcomes = s.sink.outcomes
        s.report.heldNotKept = s.sink.heldNotKept
        s.report.kernels = backends.map { ($0.name, $0.kernel) }
        if options.closesBackends { s.report.problems += close() }
        return s.report
    }

    /// One statement of the trace.
    func step(_ st: Statement, _ s: inout RunState) {
        switch st.kind {
        case .comment, .blank:
            return
        case .kernel, .iommu, .useContainer, .mlock, .container, .memlock, .capIPCLock, .dmaEntryLimit, .memory:
            setupStep(st, &s)
        case .domain(let traceSpec) where !s.started:
            s.declaredDomain = true
            notePreset(traceSpec, line: st.line, &s)
            let spec = adopt(traceSpec, line: st.line, &s)
            if !s.attached.contains(spec.name) { s.attached.append(spec.name) }
            for b in backends {
                if case .failure(let e) = b.attachGroup(spec) { setupError(st, b, "adding group \(spec.name) failed with \(e)", &s) }
            }
        case .detach(let name) where !s.started:
            s.attached.removeAll { $0 == name }
            s.binding.unbind(name)
            for b in backends {
                if case .failure(let e) = b.detachGroup(name) { setupError(st, b, "removing group \(name) failed with \(e)", &s) }
            }
        case .domain(let traceSpec):
            notePreset(traceSpec, line: st.line, &s)
            var real = st
            real.kind = .domain(adopt(traceSpec, line: st.line, &s))
            // Kept whatever it answered: the report lists every attach.
            let answers = perform(real, keepingHeld: true, &s)
            if answers.first?.status == .ok, !s.attached.contains(traceSpec.name) { s.attached.append(traceSpec.name) }
        case .show(let items):
            var outcome = Outcome(st, expected: nil, got: [])
            outcome.state = backends.map { state(of: $0, items, s) }
            s.sink.keep(outcome)
        default:
            operationStep(st, &s)
        }
    }

    /// An operation or check: the first one issues SET_IOMMU (`start`); a
    /// `repeat=N` line runs N times, each run its own outcome.
    func operationStep(_ st: Statement, _ s: inout RunState) {
        if !s.started { start(at: st, &s) }
        if case .detach(let name) = st.kind {
            s.attached.removeAll { $0 == name }
            s.binding.unbind(name)
        }
        if st.repetition == nil {
            perform(st, &s)
        } else {
            for i in 0..<st.count { perform(st.repeated(i), iteration: (i + 1, st.count), &s) }
        }
    }

    /// Runs one operation or check on every backend and hands what it gave
    /// to the run's sink: kept, or only counted when it held what the trace
    /// wrote, wants no reason, and the run counts held answers (unless
    /// `keepingHeld`). Returns the backends' answers (none for a check).
    @discardableResult
    func perform(_ st: Statement, iteration: (index: UInt64, of: UInt64)? = nil, keepingHeld: Bool = false,
                 _ s: inout RunState) -> [Answer] {
        let counts = s.sink.countsHeld && !keepingHeld
        var outcome: Outcome
        var answers: [Answer] = []
        if case .check(let check) = st.kind {
            // Observing twice is harmless (a read) and happens only when
            // the check did not hold.
            if counts && Self.holds(check, on: backends[0]) {
                s.sink.countHeld()
                return []
            }
            outcome = observe(st, check)
        } else {
            willRun?(st)
            // Each backend's reason is read right after its answer.
            var reasons: [(index: Int, why: (reason: String?, kernelLog: String?))] = []
            answers = backends.indices.map { i in
                let a = answer(st.kind, on: backends[i])
                if Self.wantsReason(st, a, s.options) { reasons.append((i, Self.why(backends[i]))) }
                return a
            }
            // With an answer written, no reason wanted means it held
            // (`wantsReason` wants one for every answer that did not).
            if counts, reasons.isEmpty, st.expected != nil {
                s.sink.countHeld()
                return answers
            }
            outcome = compare(st, answers)
            for (i, why) in reasons { (outcome.got[i].reason, outcome.got[i].kernelLog) = why }
            // Backends that disagree each say why, whatever they answered:
            // the model's reason names the rule the other backend broke.
            if !outcome.agree {
                for i in outcome.got.indices where outcome.got[i].reason == nil { outcome.got[i].reason = backends[i].explainLastAnswer() }
            }
        }
        didRun?(st, outcome)
        outcome.iteration = iteration
        s.sink.keep(outcome)
        return answers
    }
}

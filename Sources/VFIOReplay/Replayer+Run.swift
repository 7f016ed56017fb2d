import VFIOCore
import VFIOTrace

// `Replayer.run`, in steps: the state one run carries from statement to
// statement, the setup statements, the operations and checks.

/// A container's progress while another one is being driven (`container
/// NAME`): whether its SET_IOMMU was issued, its `iommu` statement, its
/// groups.
struct ContainerProgress {
    var started = false, iommuType = IOMMUType.type1v2, iommuStatement: Statement? = nil
    var declaredDomain = false, attached: [String] = []
}

/// What one `run` carries from statement to statement (besides the
/// replayer's own state for `show`).
struct RunState {
    var report: FileReport
    var iommuType: IOMMUType = .type1v2
    var iommuStatement: Statement? = nil
    var declaredDomain = false
    var progress: [String: ContainerProgress] = [:]
    var currentContainer = "c0"
    /// With hardware domains, a trace's domain becomes the domain of the
    /// real group it is bound to, wherever the trace names it. Slot i: the
    /// trace name the i-th real group plays now. A name takes the first
    /// free slot when first named and gives it back when the group is
    /// detached (the kernel backend binds its groups the same way).
    var bound: [String?] = []
    var noted = false
    /// The release the model answers (a `kernel` line changes it): a
    /// preset's values are that release's.
    var release = KernelVersion.newestKnown
    /// A preset whose values are inferred for the release answered says
    /// so, once per preset and trace.
    var presetsNoted: Set<IOMMUPreset> = []
    /// Whether held answers are counted, not kept (`lean`), now that the
    /// operations have started (setup is never lean).
    var leanNow = false
}

extension Replayer {
    public func run(_ trace: Trace) -> FileReport {
        started = false
        memlock = nil
        capIPCLock = false
        dmaEntryLimit = 65535
        attached = []
        var s = RunState(report: FileReport(file: trace.file, kernels: []))
        if let kind = pinnedContainer ?? defaultContainer {
            for b in backends {
                do throws(BackendError) { try b.setContainer(kind) } catch {
                    s.report.problems.append(ReportProblem(line: trace.statements.first?.line ?? 1, .setup(backend: b.name, message: error.message)))
                }
            }
        }
        s.release = backends.first.flatMap { KernelVersion(parsing: $0.kernel) } ?? KernelVersion.newestKnown
        // Counting held answers instead of keeping them: one backend, no
        // observer (decided once, not read from the properties per step).
        let lean = !keepsHeldOutcomes && !explainsEveryAnswer && !explainsHeldAnswers
            && backends.count == 1 && willRun == nil && didRun == nil
        // Held answers of lean steps, added to the report at the end.
        var held = 0
        trace.statements.withUnsafeBufferPointer { statements in
            // A lean step's outcome that did not hold, on its way to the report.
            var kept: [Outcome] = []
            for index in statements.indices {
                // The common operations and checks go through `leanStep`,
                // which reads the statement in place: copying a `Statement`
                // out of the array cost more than the comparison itself.
                if s.leanNow, let isHeld = leanStep(statements.baseAddress! + index, on: backends[0], keeping: &kept) {
                    if isHeld { held += 1 } else {
                        s.report.outcomes += kept
                        kept.removeAll(keepingCapacity: true)
                    }
                    continue
                }
                step(statements[index], &s, lean: lean)
            }
        }
        s.report.heldNotKept += held
        s.report.kernels = backends.map { ($0.name, $0.kernel) }
        if closesBackends { s.report.problems += close() }
        return s.report
    }

    /// One statement that is not a lean step.
    func step(_ st: Statement, _ s: inout RunState, lean: Bool) {
        switch st.kind {
        case .comment, .blank:
            return
        case .kernel, .iommu, .useContainer, .mlock, .container, .memlock, .capIPCLock, .dmaEntryLimit, .memory:
            setupStep(st, &s, lean: lean)
        case .domain(let traceSpec) where !started:
            s.declaredDomain = true
            notePreset(traceSpec, line: st.line, &s)
            let spec = adopt(traceSpec, line: st.line, &s)
            if !attached.contains(spec.name) { attached.append(spec.name) }
            for b in backends {
                if case .failure(let e) = b.attachGroup(spec) { setupError(st, b, "adding group \(spec.name) failed with \(e)", &s) }
            }
        case .detach(let name) where !started:
            attached.removeAll { $0 == name }
            if let i = s.bound.firstIndex(of: name) { s.bound[i] = nil }
            for b in backends {
                if case .failure(let e) = b.detachGroup(name) { setupError(st, b, "removing group \(name) failed with \(e)", &s) }
            }
        case .domain(let traceSpec):
            notePreset(traceSpec, line: st.line, &s)
            var real = st
            real.kind = .domain(adopt(traceSpec, line: st.line, &s))
            let outcome = execute(real)
            if outcome.answers.first?.status == .ok, !attached.contains(traceSpec.name) { attached.append(traceSpec.name) }
            s.report.outcomes.append(outcome)
        case .show(let items):
            var outcome = Outcome(st, expected: nil, got: [])
            outcome.state = backends.map { state(of: $0, items) }
            s.report.outcomes.append(outcome)
        default:
            operationStep(st, &s, lean: lean)
        }
    }

    /// A statement that sets up the process, the module or memory.
    func setupStep(_ st: Statement, _ s: inout RunState, lean: Bool) {
        switch st.kind {
        case .kernel(let v):
            // A release the lane does not boot is answered from
            // the release history; the report says so, once.
            if let note = v.provenanceNote {
                s.report.problems.append(ReportProblem(line: st.line, .note(note)))
            }
            eachBackend(st, &s) { b throws(BackendError) in try b.setKernel(v) }
            s.release = v
        case .iommu(let t):
            s.iommuType = t
            s.iommuStatement = st
        case .useContainer(let name, let kind):
            if name == s.currentContainer { return }
            s.progress[s.currentContainer] = ContainerProgress(started: started, iommuType: s.iommuType, iommuStatement: s.iommuStatement,
                                                               declaredDomain: s.declaredDomain, attached: attached)
            eachBackend(st, &s) { b throws(BackendError) in try b.useContainer(name, kind: kind) }
            // Only the first container gets the implicit `d0`.
            let p = s.progress[name] ?? ContainerProgress(declaredDomain: true)
            (started, s.iommuType, s.iommuStatement, s.declaredDomain, attached) = (p.started, p.iommuType, p.iommuStatement, p.declaredDomain, p.attached)
            s.currentContainer = name
            s.leanNow = lean && started
        case .mlock(let bytes):
            eachBackend(st, &s) { b throws(BackendError) in try b.mlock(bytes) }
        case .container(let kind):
            if pinnedContainer == nil { eachBackend(st, &s) { b throws(BackendError) in try b.setContainer(kind) } }
        case .memlock(let bytes):
            memlock = bytes
            eachBackend(st, &s) { b throws(BackendError) in try b.setMemlock(bytes) }
        case .capIPCLock(let on):
            capIPCLock = on
            eachBackend(st, &s) { b throws(BackendError) in try b.setCapIPCLock(on) }
        case .dmaEntryLimit(let n):
            dmaEntryLimit = n
            eachBackend(st, &s) { b throws(BackendError) in try b.setDMAEntryLimit(n) }
        case .memory(let spec):
            guard let first = backends.first else { return }
            do throws(BackendError) {
                let region = try first.addMemory(spec)
                for b in backends.dropFirst() {
                    do throws(BackendError) { try b.addObservedMemory(region) } catch { setupError(st, b, error.message, &s) }
                }
            } catch {
                setupError(st, first, error.message, &s)
            }
        default:
            return
        }
    }

    /// An operation or check: the first one issues SET_IOMMU (`start`).
    func operationStep(_ st: Statement, _ s: inout RunState, lean: Bool) {
        if !started { start(at: st, &s) }
        s.leanNow = lean
        if case .detach(let name) = st.kind {
            attached.removeAll { $0 == name }
            if let i = s.bound.firstIndex(of: name) { s.bound[i] = nil }
        }
        if st.repetition == nil {
            if let o = executeKeeping(st) { s.report.outcomes.append(o) } else { s.report.heldNotKept += 1 }
        } else {
            for i in 0..<st.count {
                if var o = executeKeeping(st.repeated(i)) {
                    o.iteration = (i + 1, st.count)
                    s.report.outcomes.append(o)
                } else { s.report.heldNotKept += 1 }
            }
        }
    }

    func setupError(_ st: Statement, _ backend: Backend, _ message: String, _ s: inout RunState) {
        s.report.problems.append(ReportProblem(line: st.line, .setup(backend: backend.name, message: message)))
    }

    func eachBackend(_ st: Statement, _ s: inout RunState, _ body: (Backend) throws(BackendError) -> Void) {
        for b in backends {
            do throws(BackendError) { try body(b) } catch { setupError(st, b, error.message, &s) }
        }
    }

    /// The domain the trace's `spec` plays: the real group's it is bound
    /// to, under the trace's name, when hardware domains are known.
    func adopt(_ spec: DomainSpec, line: Int, _ s: inout RunState) -> DomainSpec {
        if !s.bound.contains(spec.name) {
            if let free = s.bound.firstIndex(of: nil) { s.bound[free] = spec.name } else { s.bound.append(spec.name) }
        }
        guard let index = s.bound.firstIndex(of: spec.name), index < hardwareDomains.count else { return spec }
        var real = hardwareDomains[index]
        real.name = spec.name
        if !s.noted, let difference = Self.setupDifference(trace: spec.resolved(for: s.release).spec, kernel: real) {
            s.report.problems.append(ReportProblem(line: line, .setupDifference(difference)))
            s.noted = true
        }
        return real
    }

    func notePreset(_ spec: DomainSpec, line: Int, _ s: inout RunState) {
        guard let preset = spec.preset, !s.presetsNoted.contains(preset),
              let note = spec.resolved(for: s.release).note else { return }
        s.presetsNoted.insert(preset)
        s.report.problems.append(ReportProblem(line: line, .note(note)))
    }

    /// Before the first operation: the implicit `d0` unless the trace
    /// declared a domain, then SET_IOMMU, whose answer is reported only
    /// when it is not the `ok` expected.
    func start(at st: Statement, _ s: inout RunState) {
        started = true
        if !s.declaredDomain {
            let d0 = adopt(.default, line: st.line, &s)
            attached.append(d0.name)
            for b in backends {
                if case .failure(let e) = b.attachGroup(d0) { setupError(st, b, "attaching d0 failed with \(e)", &s) }
            }
        }
        var reasons: [(String?, String?)] = []
        let answers = backends.map { b -> Answer in
            let a: Answer
            switch b.setIOMMU(s.iommuType.ext) {
            case .success: a = Answer(.ok)
            case .failure(let e): a = Answer(.errno(e))
            }
            reasons.append(explainsEveryAnswer || a.status != .ok ? Self.why(b) : (nil, nil))
            return a
        }
        func withReasons(_ o: Outcome) -> Outcome {
            var o = o
            for i in o.got.indices where i < reasons.count { (o.got[i].reason, o.got[i].kernelLog) = reasons[i] }
            return o
        }
        if var ist = s.iommuStatement {
            // An `iommu` line without an answer still expects success.
            if ist.expected == nil { ist.expected = Answer(.ok) }
            if ist.expected != Answer(.ok) || answers.contains(where: { $0.status != .ok }) {
                s.report.outcomes.append(withReasons(compare(ist, answers)))
            }
        } else if answers.contains(where: { $0.status != .ok }) {
            var implicit = st
            implicit.kind = .iommu(s.iommuType)
            implicit.expected = Answer(.ok)
            implicit.comment = nil
            s.report.outcomes.append(withReasons(compare(implicit, answers)))
        }
    }
}

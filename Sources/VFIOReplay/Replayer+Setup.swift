import VFIOCore
import VFIOTrace

// The setup statements of a run: what the process, the module, memory and
// the containers are before (and between) the operations, and the first
// operation's SET_IOMMU.

/// A container's progress while another one is being driven (`container
/// NAME`): whether its SET_IOMMU was issued, its `iommu` statement, its
/// groups.
struct ContainerProgress {
    var started = false, iommuType = IOMMUType.type1v2, iommuStatement: Statement? = nil
    var declaredDomain = false, attached: [String] = []
}

extension Replayer {
    /// A statement that sets up the process, the module or memory.
    func setupStep(_ st: Statement, _ s: inout RunState) {
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
            s.progress[s.currentContainer] = ContainerProgress(started: s.started, iommuType: s.iommuType, iommuStatement: s.iommuStatement,
                                                               declaredDomain: s.declaredDomain, attached: s.attached)
            eachBackend(st, &s) { b throws(BackendError) in try b.useContainer(name, kind: kind) }
            // Only the first container gets the implicit `d0`.
            let p = s.progress[name] ?? ContainerProgress(declaredDomain: true)
            (s.started, s.iommuType, s.iommuStatement, s.declaredDomain, s.attached) = (p.started, p.iommuType, p.iommuStatement, p.declaredDomain, p.attached)
            s.currentContainer = name
        case .mlock(let bytes):
            eachBackend(st, &s) { b throws(BackendError) in try b.mlock(bytes) }
        case .container(let kind):
            if s.options.pinnedContainer == nil { eachBackend(st, &s) { b throws(BackendError) in try b.setContainer(kind) } }
        case .memlock(let bytes):
            s.memlock = bytes
            eachBackend(st, &s) { b throws(BackendError) in try b.setMemlock(bytes) }
        case .capIPCLock(let on):
            s.capIPCLock = on
            eachBackend(st, &s) { b throws(BackendError) in try b.setCapIPCLock(on) }
        case .dmaEntryLimit(let n):
            s.dmaEntryLimit = n
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

    func setupError(_ st: Statement, _ backend: Backend, _ message: String, _ s: inout RunState) {
        s.report.problems.append(ReportProblem(line: st.line, .setup(backend: backend.name, message: message)))
    }

    func eachBackend(_ st: Statement, _ s: inout RunState, _ body: (Backend) throws(BackendError) -> Void) {
        for b in backends {
            do throws(BackendError) { try body(b) } catch { setupError(st, b, error.message, &s) }
        }
    }

    /// The domain the trace's `spec` plays (`GroupBinding`); the first
    /// difference from the trace's is noted.
    func adopt(_ spec: DomainSpec, line: Int, _ s: inout RunState) -> DomainSpec {
        let (real, difference) = s.binding.play(spec, release: s.release)
        if let difference { s.report.problems.append(ReportProblem(line: line, .setupDifference(difference))) }
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
        s.started = true
        if !s.declaredDomain {
            let d0 = adopt(.default, line: st.line, &s)
            s.attached.append(d0.name)
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
            reasons.append(s.options.explainsEveryAnswer || a.status != .ok ? Self.why(b) : (nil, nil))
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
                s.sink.keep(withReasons(compare(ist, answers)))
            }
        } else if answers.contains(where: { $0.status != .ok }) {
            var implicit = st
            implicit.kind = .iommu(s.iommuType)
            implicit.expected = Answer(.ok)
            implicit.comment = nil
            s.sink.keep(withReasons(compare(implicit, answers)))
        }
    }
}

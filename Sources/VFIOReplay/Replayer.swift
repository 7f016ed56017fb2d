import VFIOCore
import VFIOTrace

/// What one statement of a trace gave on each backend.
///
/// The texts (statement, expected answer, each backend's answer) are
/// rendered only when a report asks for them: a long replay compares typed
/// answers and prints nothing for the operations that held.
public struct Outcome: Sendable {
    public var line: Int
    public var column: Int
    var statementSource: StatementSource
    var expectedSource: Rendered<Answer>?
    /// One per backend, in the replayer's backend order.
    public var got: [Got]
    /// The typed answers behind `got` (empty for checks).
    public var answers: [Answer] = []
    /// For one run of a `repeat=N` statement: which (1-based) and of how
    /// many; nil for a statement run once.
    public var iteration: (index: UInt64, of: UInt64)? = nil
    /// For a `show`: the state each backend reported, in backend order
    /// (nil for every other statement).
    public var state: [ContainerState]? = nil
    /// Whether this is a `show` (prints state; never passes nor fails).
    public var isShow: Bool { state != nil }

    public init(line: Int, column: Int, statement: String, expected: String?, got: [Got]) {
        self.line = line; self.column = column; self.got = got
        statementSource = .text(statement)
        expectedSource = expected.map { .text($0) }
    }

    init(_ st: Statement, expected: Rendered<Answer>?, got: [Got]) {
        line = st.line; column = st.column; self.got = got
        statementSource = .value(st)
        expectedSource = expected
    }

    /// The statement in canonical form, without its answer.
    public var statement: String {
        get {
            switch statementSource {
            case .text(let t): return t
            case .value(let st): return Replayer.text(of: st)
            }
        }
        set { statementSource = .text(newValue) }
    }

    /// The answer or check as written; nil when the trace wrote none.
    public var expected: String? {
        get { expectedSource?.text }
        set { expectedSource = newValue.map { .text($0) } }
    }

    public struct Got: Sendable {
        public var backend: String
        var source: Rendered<Answer>
        /// Whether it matches `expected`; nil when nothing was expected or
        /// the value could not be observed.
        public var held: Bool?
        /// False when the backend could not observe what a check names.
        public var observed: Bool = true
        /// Why the backend gave this answer (the rule and the kernel
        /// function), when it can say and the report needs it.
        public var reason: String? = nil
        /// The line the kernel logs for this answer (`dmesg`), when the
        /// backend can say and the report asks for the reason.
        public var kernelLog: String? = nil
        /// What a check read, typed (nil for operations, and when it could
        /// not be observed).
        public var observation: CheckObservation? = nil

        public init(backend: String, text: String, held: Bool?, observed: Bool = true) {
            self.backend = backend; self.source = .text(text); self.held = held; self.observed = observed
        }

        init(backend: String, answer: Answer, held: Bool?) {
            self.backend = backend; self.source = .value(answer); self.held = held
        }

        /// The answer as a trace writes it.
        public var text: String {
            get { source.text }
            set { source = .text(newValue) }
        }
    }

    /// Every backend that could observe the answer gave the same one (a
    /// backend that cannot read a value neither agrees nor disagrees).
    public var agree: Bool {
        let seen = got.filter(\.observed)
        guard seen.count > 1 else { return true }
        return seen.allSatisfy { $0.source.same(as: seen[0].source) }
    }
    /// More than one backend gave an answer, so they could be compared.
    public var compared: Bool { got.filter(\.observed).count > 1 }
    /// An expectation was written and some backend did not meet it.
    public var failed: Bool { got.contains { $0.held == false } }
    /// An expectation was written and checked on every backend.
    public var passed: Bool { expectedSource != nil && got.allSatisfy { $0.held == true } }
    /// An expectation was written but nothing could check it.
    public var skipped: Bool { expectedSource != nil && got.allSatisfy { $0.held == nil } }
}

/// A statement kept as it is until its text is needed.
enum StatementSource: Sendable {
    case text(String)
    case value(Statement)
}

/// A value kept as it is until its text is needed.
enum Rendered<Value: Sendable & Hashable & CustomStringConvertible>: Sendable {
    case text(String)
    case value(Value)

    var text: String {
        switch self {
        case .text(let t): t
        case .value(let v): v.description
        }
    }

    func same(as other: Rendered) -> Bool {
        if case .value(let a) = self, case .value(let b) = other { return a == b }
        return text == other.text
    }
}

/// The replay of one file.
public struct FileReport: Sendable {
    public var file: String
    /// Backend name → the kernel whose answers it gave.
    public var kernels: [(backend: String, kernel: String)]
    public var outcomes: [Outcome] = []
    /// Operations and checks that held what the trace wrote and were
    /// counted instead of kept in `outcomes` (`Replayer.keepsHeldOutcomes`
    /// off): a text report prints nothing for them, and building an
    /// `Outcome` per operation cost more than the model's answer (issue 15).
    public var heldNotKept = 0
    /// Setup a backend could not honour, broken model invariants, setup
    /// differences, leaks: everything that is not an answer.
    public var problems: [ReportProblem] = []
    /// The problems that fail the file.
    public var errors: [ReportProblem] { problems.filter(\.isError) }
    /// The problems reported without failing it.
    public var notes: [ReportProblem] { problems.filter { !$0.isError } }

    public init(file: String, kernels: [(backend: String, kernel: String)]) {
        self.file = file
        self.kernels = kernels
    }

    /// True when every written answer held, the backends agreed and
    /// nothing went wrong.
    public var ok: Bool { errors.isEmpty && !outcomes.contains { $0.failed || !$0.agree } }
}

/// Drives backends through a parsed trace: setup statements become
/// process and module state, operations become ioctls, checks become
/// observations; each answer is compared with the one written.
///
/// With several backends (model and kernel side by side), the first one
/// decides the physical layout of memory and the others are given what it
/// observed, so page-table answers are compared on the same frames.
public final class Replayer {
    public let backends: [any Backend]
    /// The IOMMU domains the real groups have, when a kernel backend runs,
    /// in the order the trace's domains bind to them: the trace's n-th
    /// domain (the one the n-th real group plays) is replaced by the n-th
    /// of these, keeping its name, on every backend, so the model plays the
    /// kernel's IOMMU. When the trace asked for another one, a note says so
    /// (`FileReport.notes`); answers are still compared.
    public var hardwareDomains: [DomainSpec]

    public init(backends: [any Backend], hardwareDomains: [DomainSpec] = []) {
        self.backends = backends
        self.hardwareDomains = hardwareDomains
    }

    /// Called before each operation runs (not before setup or checks), so
    /// property tests can take a snapshot of a backend's state.
    public var willRun: ((Statement) -> Void)? = nil
    /// Called after each operation and check with what it gave.
    public var didRun: ((Statement, Outcome) -> Void)? = nil

    // What the trace set so far, for `show`.
    var started = false
    var memlock: UInt64? = nil
    var capIPCLock = false
    var dmaEntryLimit: UInt32 = 65535
    /// Groups in the container, in the order attached.
    var attached: [String] = []

    /// Whether every answer gets its reason (`--explain`), not only the
    /// ones that failed or may surprise.
    public var explainsEveryAnswer = false

    /// Whether an answer that held what the trace wrote still gets its
    /// reason when it may surprise (an errno, a short unmap). A text report
    /// prints held answers only with --verbose, so a replay that will not
    /// print them turns this off: working out a reason builds strings and
    /// cost a third of a replay's instructions (issue 15).
    public var explainsHeldAnswers = true
    /// Whether an operation or check that held what the trace wrote is kept
    /// as an `Outcome`. Off, with one backend and no `willRun`/`didRun`
    /// observer, it is only counted (`FileReport.heldNotKept`): every answer
    /// is still compared, exactly, and one that did not hold, wants a
    /// reason, or was not written is kept as before. `vfio-sim replay`
    /// turns it off for a text report without --verbose, which prints
    /// nothing for held answers.
    public var keepsHeldOutcomes = true
    /// The container kind for traces that do not say (`--container`); a
    /// trace's `container` statement wins. Nil: type1, the backends' own.
    public var defaultContainer: ContainerKind? = nil
    /// When set, every trace runs with this kind whatever its `container`
    /// statement says (`vfio-sim compare` runs each trace under both).
    public var pinnedContainer: ContainerKind? = nil

    /// Whether `run` closes the backends at the end. A caller that reads
    /// their state after the run (the explorer's properties) turns it off
    /// and calls `close()` itself.
    public var closesBackends = true

    /// Closes every backend and returns what they reported, as problems of
    /// the whole file.
    public func close() -> [ReportProblem] {
        backends.flatMap { b in b.close().map { ReportProblem(.backend(b.name, $0)) } }
    }

    /// Runs one operation or check on every backend.
    func execute(_ st: Statement) -> Outcome {
        let outcome: Outcome
        switch st.kind {
        case .check(let check):
            outcome = observe(st, check)
        default:
            willRun?(st)
            var reasons: [(String?, String?)] = []
            let answers = backends.map { b -> Answer in
                let a = answer(st.kind, on: b)
                reasons.append(wantsReason(st, a) ? Self.why(b) : (nil, nil))
                return a
            }
            var o = compare(st, answers)
            for i in o.got.indices { (o.got[i].reason, o.got[i].kernelLog) = reasons[i] }
            // Backends that disagree each say why, whatever they answered:
            // the model's reason names the rule the other backend broke.
            if !o.agree {
                for i in o.got.indices where o.got[i].reason == nil { o.got[i].reason = backends[i].explainLastAnswer() }
            }
            outcome = o
        }
        didRun?(st, outcome)
        return outcome
    }

    /// One `map`, `unmap` (no dirty bitmap) or `check` with a written
    /// answer and no `repeat=`, run on `b` with the statement read in place;
    /// true when its answer held (only counted), false when it did not and
    /// its outcome, as `execute` would make it, is in `kept`. Nil for every
    /// other statement, which the caller runs as usual.
    /// Only for a lean run (`keepsHeldOutcomes`, `explainsEveryAnswer` and
    /// `explainsHeldAnswers` off, one backend, no observer), where no held
    /// answer wants a reason.
    func leanStep(_ p: UnsafePointer<Statement>, on b: Backend, keeping kept: inout [Outcome]) -> Bool? {
        guard p.pointee.repetition == nil else { return nil }
        switch p.pointee.kind {
        // The held cases are decided on the written answer in place, without
        // copying it or building the one the backend gave.
        case .map(let m):
            guard p.pointee.expected != nil else { return nil }
            let status: Answer.Status
            switch b.mapDMA(m) {
            case .success: status = .ok
            case .failure(let e): status = .errno(e)
            }
            if p.pointee.expected!.status.accepts(status) && p.pointee.expected!.fields.isEmpty { return true }
            return keep(p, Answer(status), p.pointee.expected!, on: b, &kept)
        case .unmap(let u) where u.bitmap == nil:
            guard p.pointee.expected != nil else { return nil }
            switch b.unmapDMA(u) {
            case .success(let size):
                if p.pointee.expected!.status == .ok, p.pointee.expected!.fields.allSatisfy({ $0 == .size(size) }) { return true }
                return keep(p, Answer(.ok, fields: [.size(size)]), p.pointee.expected!, on: b, &kept)
            case .failure(let e):
                if p.pointee.expected!.status.accepts(.errno(e)) && p.pointee.expected!.fields.isEmpty { return true }
                return keep(p, Answer(.errno(e)), p.pointee.expected!, on: b, &kept)
            }
        case .check(let check):
            if Self.holds(check, on: b) { return true }
            kept.append(observe(p.pointee, check))
            return false
        default:
            return nil
        }
    }

    /// True when `answer` held `expected`; else false, with its outcome
    /// and reason (the last call `b` made is the one that gave it) in `kept`.
    private func keep(_ p: UnsafePointer<Statement>, _ answer: Answer, _ expected: Answer, on b: Backend, _ kept: inout [Outcome]) -> Bool {
        if Self.matches(expected: expected, got: answer) { return true }
        var o = compare(p.pointee, [answer])
        (o.got[0].reason, o.got[0].kernelLog) = Self.why(b)
        kept.append(o)
        return false
    }

    /// `execute`, or nil when `keepsHeldOutcomes` is off and the one
    /// backend's answer held what `st` wrote without wanting a reason: the
    /// caller counts it instead of keeping an `Outcome`. The comparison is
    /// the same one `compare` and `observe` make, on typed values.
    func executeKeeping(_ st: Statement) -> Outcome? {
        guard !keepsHeldOutcomes, backends.count == 1, willRun == nil, didRun == nil else { return execute(st) }
        let b = backends[0]
        switch st.kind {
        case .check(let check):
            // Observing twice is harmless (a read) and happens only when
            // the check did not hold.
            return Self.holds(check, on: b) ? nil : observe(st, check)
        default:
            guard let expected = st.expected else { return execute(st) }
            let a = answer(st.kind, on: b)
            let wants = wantsReason(st, a)
            if !wants && Self.matches(expected: expected, got: a) { return nil }
            var o = compare(st, [a])
            if wants { (o.got[0].reason, o.got[0].kernelLog) = Self.why(b) }
            return o
        }
    }

    /// Why `b`'s last call got its answer, and what the kernel logged for it.
    static func why(_ b: Backend) -> (reason: String?, kernelLog: String?) {
        (b.explainLastAnswer(), b.kernelLogOfLastAnswer())
    }

    /// Whether `b` observes what `check` names with the value it names (an
    /// observation `b` cannot make does not hold).
    static func holds(_ check: Check, on b: Backend) -> Bool {
        switch check {
        case .locked(let want):
            if case .value(let v) = b.lockedMemory() { return v == want }
        case .mappings(let want):
            if case .value(let v) = b.mappingCount() { return v == want }
        case .ptes(let want, let domain):
            if case .value(let v) = b.pageTableEntries(domain: domain) { return v == want }
        case .pte(let iova, let want, let domain):
            if case .value(let v) = b.leafPageSize(iova: iova, domain: domain) { return v == want }
        }
        return false
    }

    /// The answer `backend` gives to operation `kind`.
    func answer(_ kind: Statement.Kind, on backend: Backend) -> Answer {
        func status<T>(_ r: Result<T, Errno>, _ fields: (T) -> [AnswerField] = { _ in [] }) -> Answer {
            switch r {
            case .success(let v): return Answer(.ok, fields: fields(v))
            case .failure(let e): return Answer(.errno(e))
            }
        }
        switch kind {
        case .domain(let spec): return status(backend.attachGroup(spec))
        case .detach(let name): return status(backend.detachGroup(name))
        case .map(let m): return status(backend.mapDMA(m))
        case .unmap(let u):
            return status(backend.unmapDMA(u)) { size in
                guard u.bitmap != nil, let bits = backend.dirtyBitmap() else { return [.size(size)] }
                return [.size(size), .dirty(bits)]
            }
        case .dirty(let d):
            return status(backend.dirtyPages(d)) { _ in
                guard d.bitmap != nil, let bits = backend.dirtyBitmap() else { return [] }
                return [.dirty(bits)]
            }
        case .extension(let ext):
            switch backend.checkExtension(ext) {
            case .success(let v): return Answer(.value(UInt64(v)))
            case .failure(let e): return Answer(.errno(e))
            }
        case .info(let argsz):
            // Without an argsz, ask as userspace does: once with the fixed
            // part only to learn the size the chain needs, then with that
            // size; the answer's argsz is the size the kernel asked for.
            var size = argsz ?? IOMMUInfo.headerSize
            var needed: UInt32? = nil
            if argsz == nil {
                switch backend.getInfo(argsz: size) {
                case .failure(let e): return Answer(.errno(e))
                case .success(let probe):
                    needed = probe.argsz
                    size = max(probe.argsz, IOMMUInfo.headerSize)
                }
            }
            return status(backend.getInfo(argsz: size)) { info in
                var fields: [AnswerField] = [.pgsizes(PageSizes(rawValue: info.iovaPgsizes))]
                fields.append(.iova(info.iovaRanges))
                fields.append(.dmaAvail(info.dmaAvail))
                fields.append(.argsz(needed ?? info.argsz))
                return fields
            }
        default:
            return Answer(.errno(.ENOTTY))
        }
    }

    /// Whether a report will want the reason for answer `a` to `st`: every
    /// answer with `explainsEveryAnswer`; else an answer other than the
    /// written one, and (unless it held and `explainsHeldAnswers` is off)
    /// an errno and an unmap that removed another size than
    /// asked (the answers a user may not expect).
    func wantsReason(_ st: Statement, _ a: Answer) -> Bool {
        if explainsEveryAnswer { return true }
        if let e = st.expected {
            if !Self.matches(expected: e, got: a) { return true }
            if !explainsHeldAnswers { return false }
        }
        if case .errno = a.status { return true }
        if case .unmap(let u) = st.kind, !u.flags.contains(.all), case .size(let removed)? = a.fields.first, removed != u.size { return true }
        return false
    }

    /// Compares each backend's answer with the written one: the status,
    /// then only the keys written.
    func compare(_ st: Statement, _ answers: [Answer]) -> Outcome {
        let got = zip(backends, answers).map { b, a in
            Outcome.Got(backend: b.name, answer: a, held: st.expected.map { Self.matches(expected: $0, got: a) })
        }
        var outcome = Outcome(st, expected: st.expected.map { .value($0) }, got: got)
        outcome.answers = answers
        return outcome
    }

    static func matches(expected: Answer, got: Answer) -> Bool {
        guard expected.status.accepts(got.status) else { return false }
        for field in expected.fields {
            guard let g = got.fields.first(where: { $0.key == field.key }), g == field else { return false }
        }
        return true
    }

    /// Reads what a check names on each backend.
    func observe(_ st: Statement, _ check: Check) -> Outcome {
        let got = backends.map { b -> Outcome.Got in
            switch check {
            case .locked(let want):
                let o = b.lockedMemory()
                var g = Self.got(b, o, want) { "locked=\(formatSize($0))" }
                if case .value(let v) = o { g.observation = .locked(v) }
                return g
            case .mappings(let want):
                let o = b.mappingCount()
                var g = Self.got(b, o, want) { "mappings=\($0)" }
                if case .value(let v) = o { g.observation = .mappings(v) }
                return g
            case .ptes(let want, let domain):
                let o = b.pageTableEntries(domain: domain)
                var g = Self.got(b, o, want) { "ptes=\($0)" }
                if case .value(let v) = o { g.observation = .ptes(v) }
                return g
            case .pte(let iova, let want, let domain):
                let o = b.leafPageSize(iova: iova, domain: domain)
                var g = Self.got(b, o, want) { $0.map(formatSize) ?? "none" }
                if case .value(let v) = o { g.observation = .pte(v) }
                return g
            }
        }
        let expected: String
        switch check {
        case .locked(let v): expected = "locked=\(formatSize(v))"
        case .mappings(let v): expected = "mappings=\(v)"
        case .ptes(let v, _): expected = "ptes=\(v)"
        case .pte(_, let v, _): expected = v.map(formatSize) ?? "none"
        }
        return Outcome(st, expected: .text(expected), got: got)
    }

    static func got<V>(_ b: Backend, _ o: Observation<V>, _ want: V, _ show: (V) -> String) -> Outcome.Got {
        switch o {
        case .value(let v): return Outcome.Got(backend: b.name, text: show(v), held: v == want)
        case .notObservable(let why): return Outcome.Got(backend: b.name, text: "not observable (\(why))", held: nil, observed: false)
        }
    }

    /// What `show` reads on `b`: only observations every backend offers.
    func state(of b: Backend, _ items: ShowItems) -> ContainerState {
        var st = ContainerState(backend: b.name, started: started)
        st.items = items
        st.locked = b.lockedMemory()
        st.memlock = memlock
        st.capIPCLock = capIPCLock
        st.mappings = b.mappingCount()
        st.dmaEntryLimit = dmaEntryLimit
        if started, case .success(let probe) = b.getInfo(argsz: IOMMUInfo.headerSize),
           case .success(let info) = b.getInfo(argsz: max(probe.argsz, IOMMUInfo.headerSize)) {
            st.dmaAvail = info.dmaAvail
            st.iova = info.iovaRanges
            st.pgsizes = PageSizes(rawValue: info.iovaPgsizes)
        }
        st.ptes = attached.map { ($0, b.pageTableEntries(domain: $0)) }
        st.ptesTotal = b.pageTableEntries(domain: nil)
        return st
    }

    /// How the IOMMU a trace asked for differs from the one the kernel has,
    /// in the answers' terms (page sizes, valid IOVA ranges, coherency,
    /// MSI isolation), or nil when it does not.
    public static func setupDifference(trace: DomainSpec, kernel: DomainSpec) -> String? {
        let differences = trace.differences(from: kernel)
        if differences.isEmpty { return nil }
        let asked = differences.map { "\($0.key)=\($0.this)" }.joined(separator: " ")
        let has = differences.map { "\($0.key)=\($0.other)" }.joined(separator: " ")
        return "trace domain \(trace.name) \(asked), kernel has \(has) (the model follows the kernel)"
    }

    /// The canonical text of a statement without its answer or comment.
    static func text(of st: Statement) -> String {
        var bare = st
        bare.expected = nil
        bare.comment = nil
        // `check pte`'s answer is part of its kind: printed as the expected one.
        if case .check(.pte(let iova, _, let domain)) = st.kind {
            return "check pte iova=\(formatAddress(iova))" + (domain.map { " domain=" + $0 } ?? "")
        }
        var out = printTrace(Trace(file: "", statements: [bare]))
        while out.last == "\n" { out.removeLast() }
        return out
    }
}

import VFIOCore
import VFIOTrace

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
    /// How runs run and what their reports keep.
    public var options: ReplayOptions

    public init(backends: [any Backend], hardwareDomains: [DomainSpec] = [], options: ReplayOptions = ReplayOptions()) {
        self.backends = backends
        self.hardwareDomains = hardwareDomains
        self.options = options
    }

    /// Called before each operation runs (not before setup or checks), so
    /// property tests can take a snapshot of a backend's state.
    public var willRun: ((Statement) -> Void)? = nil
    /// Called after each operation and check with what it gave.
    public var didRun: ((Statement, Outcome) -> Void)? = nil

    // Each option under its own name, as callers set them (`options`).
    public var explainsEveryAnswer: Bool {
        get { options.explainsEveryAnswer }
        set { options.explainsEveryAnswer = newValue }
    }
    public var explainsHeldAnswers: Bool {
        get { options.explainsHeldAnswers }
        set { options.explainsHeldAnswers = newValue }
    }
    public var keepsHeldOutcomes: Bool {
        get { options.keepsHeldOutcomes }
        set { options.keepsHeldOutcomes = newValue }
    }
    public var defaultContainer: ContainerKind? {
        get { options.defaultContainer }
        set { options.defaultContainer = newValue }
    }
    public var pinnedContainer: ContainerKind? {
        get { options.pinnedContainer }
        set { options.pinnedContainer = newValue }
    }
    public var closesBackends: Bool {
        get { options.closesBackends }
        set { options.closesBackends = newValue }
    }

    /// Closes every backend and returns what they reported, as problems of
    /// the whole file.
    public func close() -> [ReportProblem] {
        backends.flatMap { b in b.close().map { ReportProblem(.backend(b.name, $0)) } }
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
        // The fields are built in place: most answers have one or none, and
        // an array per answer was allocated and freed on every operation.
        func status<T>(_ r: Result<T, Errno>, _ fields: (T) -> AnswerFields = { _ in AnswerFields() }) -> Answer {
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
                var fields = AnswerFields()
                fields.append(.size(size))
                if u.bitmap != nil, let bits = backend.dirtyBitmap() { fields.append(.dirty(bits)) }
                return fields
            }
        case .dirty(let d):
            return status(backend.dirtyPages(d)) { _ in
                guard d.bitmap != nil, let bits = backend.dirtyBitmap() else { return AnswerFields() }
                return AnswerFields([.dirty(bits)])
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
                return AnswerFields(fields)
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
    static func wantsReason(_ st: Statement, _ a: Answer, _ options: ReplayOptions) -> Bool {
        if options.explainsEveryAnswer { return true }
        if let e = st.expected {
            if !Self.matches(expected: e, got: a) { return true }
            if !options.explainsHeldAnswers { return false }
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
    func state(of b: Backend, _ items: ShowItems, _ s: RunState) -> ContainerState {
        var st = ContainerState(backend: b.name, started: s.started)
        st.items = items
        st.locked = b.lockedMemory()
        st.memlock = s.memlock
        st.capIPCLock = s.capIPCLock
        st.mappings = b.mappingCount()
        st.dmaEntryLimit = s.dmaEntryLimit
        if s.started, case .success(let probe) = b.getInfo(argsz: IOMMUInfo.headerSize),
           case .success(let info) = b.getInfo(argsz: max(probe.argsz, IOMMUInfo.headerSize)) {
            st.dmaAvail = info.dmaAvail
            st.iova = info.iovaRanges
            st.pgsizes = PageSizes(rawValue: info.iovaPgsizes)
        }
        st.ptes = s.attached.map { ($0, b.pageTableEntries(domain: $0)) }
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

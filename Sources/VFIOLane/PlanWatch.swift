import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// One replay of a plan on the model, read after every operation: the
/// usage (locked memory, mappings, PTEs: peaks and end), the first
/// operation refused for each errno, and (when asked) the hazards, one per
/// class and line with a count.
struct PlanWatch {
    var kernel = ""
    var container: ContainerKind = .type1
    var operations = 0
    var answersDiffering = 0
    var usage = ScenarioPlan.Usage()
    var hazards: [ScenarioPlan.Hazard] = []
    /// The first operation refused with each errno, and how many were.
    var failures: [Errno: ScenarioPlan.LimitFailure] = [:]

    /// Where a hazard of a class at a line already is in `hazards`.
    private var hazardAt: [String: Int] = [:]
    /// Runs so far of each line (the iteration of a `repeat=` line).
    private var runs: [Int: UInt64] = [:]
    private var hung = false

    /// The release the model answered as (the trace's `kernel` line wins).
    var release = KernelVersion.newestKnown

    static func run(_ trace: Trace, profile: KernelProfile, hazards wanted: Bool, work: KernelWorkWatch? = nil) -> PlanWatch {
        let model = ModelBackend(profile: profile, checksInvariants: false)
        let replayer = Replayer(backends: [model])
        replayer.closesBackends = false
        let names = groupNames(trace)
        var iterations: [Int: UInt64] = [:]
        for st in trace.statements where st.repetition != nil { iterations[st.line] = st.count }
        var w = PlanWatch()
        var peaks: [String: (counts: PTECounts, total: UInt64, line: Int)] = [:]
        var peakTotal: UInt64 = 0
        // What the operation about to run meets (read before it runs).
        var cuts = false
        var leakedBefore: UInt64 = 0
        replayer.willRun = { st in
            leakedBefore = model.inspect { $0.leakedPages }
            cuts = wanted && Self.cutsAMapping(st, model)
            work?.willRun(st, model)
        }
        replayer.didRun = { st, outcome in
            if !outcome.isShow { work?.didRun(st, outcome, model) }
            w.observeUsage(model, line: st.line)
            if case .value(let c) = model.pageTableEntries(domain: nil) {
                let total = c.entries.reduce(0) { $0 &+ $1.count }
                if total > peakTotal { peakTotal = total; w.usage.peakTotalPTEs = c }
            }
            for name in names {
                guard case .value(let c) = model.pageTableEntries(domain: name) else { continue }
                let total = c.entries.reduce(0) { $0 &+ $1.count }
                if total > (peaks[name]?.total ?? 0) { peaks[name] = (c, total, st.line) }
            }
            guard !outcome.isShow, !outcome.answers.isEmpty else { return }
            let n = (w.runs[st.line] ?? 0) + 1
            w.runs[st.line] = n
            let of = iterations[st.line]
            w.operations += 1
            if outcome.failed { w.answersDiffering += 1 }
            w.noteFailure(st, outcome, iteration: of.map { _ in n }, of: of ?? 1)
            if wanted {
                w.classify(st, outcome, model, at: (of.map { _ in n }, of ?? 1), cuts: cuts, leakedBefore: leakedBefore)
            }
        }
        _ = replayer.run(trace)
        w.kernel = model.kernel
        w.release = model.inspect { $0.profile.version }
        w.container = model.containerKind
        w.usage.ptes = names.compactMap { name in
            guard let p = peaks[name] else { return nil }
            var end = PTECounts()
            if case .value(let c) = model.pageTableEntries(domain: name) { end = c }
            return ScenarioPlan.DomainPTEs(domain: name, peak: p.counts, peakLine: p.line, end: end)
        }
        w.usage.endLocked = model.inspect { $0.limitedBytes }
        if case .value(let v) = model.mappingCount() { w.usage.endMappings = v }
        if wanted && !w.hung { w.noteEnd() }
        _ = model.close()
        return w
    }

    /// Every group name the trace gives, and d0 when the replay attaches it.
    static func groupNames(_ trace: Trace) -> [String] {
        var names: [String] = []
        var sawOperation = false
        for st in trace.statements {
            switch st.kind {
            case .domain(let spec): if !names.contains(spec.name) { names.append(spec.name) }
            case .map, .unmap, .info, .extension, .dirty, .check:
                if !sawOperation, names.isEmpty { names.append(DomainSpec.default.name) }
                sawOperation = true
            default: break
            }
        }
        return names
    }

    /// Peak locked memory and mappings. Under iommufd the limit is checked
    /// against the user's locked_vm, not VmLck (which stays 0): plan with that.
    mutating func observeUsage(_ model: ModelBackend, line: Int) {
        if case let locked = model.inspect({ $0.limitedBytes }), locked > usage.peakLocked {
            usage.peakLocked = locked
            usage.peakLockedLine = line
        }
        if case .value(let n) = model.mappingCount(), n > usage.peakMappings {
            usage.peakMappings = n
            usage.peakMappingsLine = line
        }
    }

    /// Whether `st` is a ranged unmap whose first or last byte lies inside
    /// a mapping that reaches past the range (one v2 and iommufd refuse to cut).
    static func cutsAMapping(_ st: Statement, _ model: ModelBackend) -> Bool {
        guard case .unmap(let u) = st.kind, !u.flags.contains(.all), u.size > 0, u.iova <= UInt64.max - (u.size - 1) else { return false }
        let last = u.iova + (u.size - 1)
        return model.inspect { c in
            let first = c.mapping(containing: u.iova), final = c.mapping(containing: last)
            return (first.map { $0.iova < u.iova } ?? false) || (final.map { $0.last > last } ?? false)
        }
    }

    mutating func noteFailure(_ st: Statement, _ o: Outcome, iteration: UInt64?, of: UInt64) {
        guard case .errno(let e)? = o.answers.first?.status else { return }
        if failures[e] != nil { failures[e]!.count += 1; return }
        failures[e] = ScenarioPlan.LimitFailure(errno: e, line: st.line, iteration: iteration, iterations: of,
                                                statement: o.statement, count: 1)
    }

    /// Adds one occurrence of a hazard: each class (each errno for other
    /// errnos) is listed once, the first occurrence keeping its text, with
    /// how many there were and the last line (a plan of 2048 one-line maps
    /// that fail alike is one hazard, not 1,536).
    mutating func add(_ kind: ScenarioPlan.Hazard.Kind, line: Int, at: (UInt64?, UInt64), errno: Errno? = nil,
                      _ text: @autoclosure () -> String) {
        let key = kind == .otherErrno ? "\(kind.rawValue):\(errno.map { "\($0)" } ?? "")" : kind.rawValue
        if let i = hazardAt[key] { hazards[i].count += 1; hazards[i].lastLine = line; return }
        hazardAt[key] = hazards.count
        hazards.append(.init(kind: kind, line: line, iteration: at.0, iterations: at.1, lastLine: line, text: text()))
    }

    /// Sorts one answer into the hazard classes it belongs to.
    mutating func classify(_ st: Statement, _ o: Outcome, _ model: ModelBackend, at: (UInt64?, UInt64), cuts: Bool, leakedBefore: UInt64) {
        // After a hang the process is stuck: later answers (all hang) say nothing more.
        guard !hung, let got = o.got.first, let answer = o.answers.first else { return }
        let why = got.reason.map { ": " + $0 } ?? ""
        let said = "\(o.statement) => \(got.peopleText)\(why)"
        switch answer.status {
        case .errno(.hang):
            hung = true
            let reason = model.inspect { $0.hang }.map { ": " + $0 } ?? ""
            add(.hang, line: st.line, at: at, "\(o.statement) => hang\(reason); the process never returns from "
                + "this ioctl (the container's lock stays held), every later call hangs too: the scenario ends here")
        case .errno(.EEXIST):
            add(.exists, line: st.line, at: at, said + "; a client that ignores EEXIST keeps the old mapping, not the new memory")
        case .errno(.ENOSPC): add(.noSpace, line: st.line, at: at, said)
        case .errno(.ENOMEM): add(.noMemory, line: st.line, at: at, said)
        case .errno where cuts:
            add(.partialUnmap, line: st.line, at: at, said + "; the whole mapping stays: unmap it whole, or map in pieces you will unmap")
        case .errno(let e): add(.otherErrno, line: st.line, at: at, errno: e, said)
        default: classifySuccess(st, o, said, model, at: at)
        }
        let leaked = model.inspect { $0.leakedPages }
        guard leaked > leakedBefore else { return }
        let bytes = (leaked - leakedBefore) << 12
        add(.lockedAfterTeardown, line: st.line, at: at, "\(o.statement) => \(got.peopleText): \(readableSize(bytes)) stay charged to "
            + "locked_vm with no mapping holding them: the pages of a mapping ending at 2^64-1, which before 6.18 the unpin loop never "
            + "reaches (its end wraps to 0; vfio_unmap_unpin); they count against RLIMIT_MEMLOCK until the process exits")
    }

    mutating func classifySuccess(_ st: Statement, _ o: Outcome, _ said: String, _ model: ModelBackend, at: (UInt64?, UInt64)) {
        switch st.kind {
        case .map(let m) where model.containerKind == .type1 && !model.inspect({ $0.profile.inclusiveEndSearch })
            && !m.flags.contains(.vaddr) && m.size > 0 && m.iova &+ m.size == 0:
            add(.topOfSpace, line: st.line, at: at, "\(o.statement) => ok: the mapping ends at 2^64-1, where before 6.18 the kernel's "
                + "searches compare with iova + size, which wraps to 0: the same range maps again without EEXIST, unmaps and UNMAP_ALL may "
                + "not find it or the mappings it hides, and its pages are never uncharged (vfio_find_dma, vfio_unmap_unpin; kernel "
                + "\(model.kernel)); keep mappings below 2^64-1")
        case .unmap(let u) where u.flags.contains(.all):
            guard case .value(let left) = model.mappingCount(), left > 0 else { return }
            let top = model.inspect({ $0.hidesTopMapping })
                ? "; a mapping ending at 2^64-1 is among them: before 6.18 the kernel's walk cannot see past it (vfio_dma_do_unmap)" : ""
            add(.unmapAllLeft, line: st.line, at: at, "\(o.statement) => \(o.got[0].peopleText), but \(left) mapping\(left == 1 ? "" : "s") "
                + "stay in the container, pinned and DMA-able\(top)")
        case .unmap where o.got[0].reason != nil:
            // Only an unmap whose size differs from the one asked gets a
            // reason without being an errno (Replayer.wantsReason).
            add(.unmapSize, line: st.line, at: at, said)
        default: break
        }
    }

    mutating func noteEnd() {
        let left = usage.endMappings, locked = usage.endLocked
        guard left > 0 else { return }
        add(.pinnedAtEnd, line: 0, at: (nil, 1), "\(left) mapping\(left == 1 ? "" : "s") still in the container at the end, "
            + "\(readableSize(locked)) locked: pinned and DMA-able until unmapped or the container closes")
    }
}

import VFIOCore
import VFIOTrace

/// One container's statements as they are recorded. Domains are written
/// before their page sizes are known (GET_INFO comes after the attach) and
/// filled in when the trace is finished.
struct ContainerLog {
    var path: String?
    var body: [Statement] = []
    /// `VFIO_SET_IOMMU`: the interface and the kernel's answer.
    var iommu: (IOMMUType, Answer)? = nil
    var iommuSet = false
    var environment: ProcessEnvironment? = nil
    /// Groups attached before `VFIO_SET_IOMMU`: the trace's setup domains.
    var setupDomains: [(group: Int, name: String)] = []
    /// Groups attached later: the index of their `domain` statement in `body`.
    var inlineDomains: [(group: Int, index: Int)] = []
    var attached: Set<Int> = []
    /// What GET_INFO said after each group joined (its page sizes and
    /// usable ranges), and `extension dma-cc` answers.
    var probes: [Int: (pgsizes: PageSizes, ranges: [IOVARange]?)] = [:]
    var coherent: [Int: Bool] = [:]
    /// The container's mappings (iova, size) while the recording can tell;
    /// nil once an answer left them unknown.
    var mappings: [(iova: UInt64, size: UInt64)]? = []
    /// Memory charged by this container (sum of `VmLck` changes across its
    /// maps and unmaps); nil once unknown.
    var locked: UInt64? = 0
    /// A map or unmap changed what the checks read since they were written.
    var checksDue = false
    /// The run of maps or of unmaps going on: the checks come when it ends.
    var run: UInt = 0
    /// Process memory already declared by a `memory` statement.
    var declared: [IOVARange] = []
    var notes: [String] = []
    var layoutUnknownNoted = false

    init(path: String?) { self.path = path }

    mutating func comment(_ text: String) {
        flushChecks()
        body.append(Statement(line: 0, column: 0, kind: .comment(text)))
    }

    mutating func append(_ kind: Statement.Kind, _ answer: Answer?, comment: String? = nil) {
        body.append(Statement(line: 0, column: 0, kind: kind, expected: answer, comment: comment))
    }

    mutating func attach(_ group: Int, name: String, answer: Answer) {
        flushChecks()
        if !iommuSet, answer.status == .ok {
            setupDomains.append((group, name))
        } else {
            inlineDomains.append((group, body.count))
            append(.domain(DomainSpec(name: name)), answer)
        }
        if answer.status == .ok { attached.insert(group) }
    }

    mutating func detach(_ group: Int, name: String, comment: String?) {
        guard attached.contains(group) else { return }
        flushChecks()
        attached.remove(group)
        append(.detach(name), nil, comment: comment)
        // The last group out releases the container: every mapping goes.
        if attached.isEmpty, mappings != nil { mappings = [] }
    }

    /// `check locked=` and `check mappings=` once a run of maps or unmaps
    /// is over, so a run of 64 maps gives two checks, not 128.
    mutating func flushChecks() {
        run = 0
        guard checksDue else { return }
        checksDue = false
        if let locked { append(.check(.locked(locked)), nil) }
        if let mappings { append(.check(.mappings(UInt64(mappings.count))), nil) }
    }

    mutating func ioctl(_ call: IoctlCall, groups: [Int: TraceBuilder.GroupState]) {
        switch call.request {
        case VFIO.getAPIVersion:
            comment("VFIO_GET_API_VERSION => \(describe(call.result))")
        case VFIO.checkExtension:
            flushChecks()
            let ext = Extension(rawValue: UInt32(truncatingIfNeeded: call.argument))
            let a: Answer
            switch call.result {
            case .success(let v): a = Answer(.value(UInt64(v)))
            case .failure(let e): a = Answer(.errno(e))
            }
            if ext == .dmaCC, case .success(let v) = call.result, iommuSet {
                for g in attached where coherent[g] == nil { coherent[g] = v == 1 }
            }
            append(.extension(ext), a)
        case VFIO.setIOMMU:
            setIOMMU(call)
        case VFIO.iommuGetInfo:
            getInfo(call)
        case VFIO.iommuMapDMA:
            mapDMA(call)
        case VFIO.iommuUnmapDMA:
            unmapDMA(call)
        case VFIO.iommuDirtyPages:
            dirtyPages(call)
        default:
            comment("container ioctl \(formatAddress(UInt64(call.request))) (not type1's) => \(describe(call.result))")
        }
    }

    mutating func setIOMMU(_ call: IoctlCall) {
        let type: IOMMUType? = switch call.argument {
        case UInt64(Extension.type1.rawValue): .type1
        case UInt64(Extension.type1v2.rawValue): .type1v2
        default: nil
        }
        guard let type else {
            comment("VFIO_SET_IOMMU \(call.argument) (not a type1 interface) => \(describe(call.result))")
            return
        }
        let a = answer(call.result)
        if let (earlier, earlierAnswer) = iommu {
            // One `iommu` per trace: the one that took, the others as notes.
            if earlierAnswer.status != .ok && a.status == .ok {
                comment("VFIO_SET_IOMMU \(earlier.rawValue) => \(earlierAnswer)")
                iommu = (type, a)
            } else {
                comment("VFIO_SET_IOMMU \(type.rawValue) => \(a)")
            }
        } else {
            iommu = (type, a)
        }
        if a.status == .ok { iommuSet = true }
        if environment == nil { environment = call.environment }
    }

    mutating func getInfo(_ call: IoctlCall) {
        flushChecks()
        let argsz = IoctlDecoding.u32(call.before, 0)
        switch call.result {
        case .failure(let e):
            append(.info(argsz: argsz), Answer(.errno(e)))
        case .success:
            let info = IOMMUInfo(bytes: call.after)
            append(.info(argsz: argsz), Answer(.ok, fields: [
                .pgsizes(PageSizes(rawValue: info.iovaPgsizes)), .iova(info.iovaRanges),
                .dmaAvail(info.dmaAvail), .argsz(info.argsz),
            ]))
            // What the kernel said is what the domains are: the first full
            // answer after a group joined describes it.
            if let ranges = info.iovaRanges {
                // A first short answer (argsz too small for the chain) is
                // replaced by the full one.
                for g in attached where probes[g]?.ranges == nil {
                    probes[g] = (PageSizes(rawValue: info.iovaPgsizes), ranges)
                }
            } else {
                for g in attached where probes[g] == nil {
                    probes[g] = (PageSizes(rawValue: info.iovaPgsizes), nil)
                }
            }
        }
    }

    /// A map after unmaps (or the other way round) ends a run.
    mutating func startRun(_ request: UInt) {
        if run != request { flushChecks() }
        run = request
    }

    mutating func mapDMA(_ call: IoctlCall) {
        startRun(call.request)
        let m = IoctlDecoding.mapDMA(call.before)
        if environment == nil { environment = call.environment }
        declareMemory(call.memory)
        append(.map(m), answer(call.result))
        guard case .success = call.result else { return }
        checksDue = true
        account(call)
        if !m.flags.contains(.vaddr) { mappings?.append((m.iova, m.size)) }
    }

    mutating func unmapDMA(_ call: IoctlCall) {
        startRun(call.request)
        let (u, _) = IoctlDecoding.unmapDMA(call.before)
        guard case .success = call.result else {
            append(.unmap(u), answer(call.result))
            return
        }
        // The kernel writes back the size it removed.
        let removed = IoctlDecoding.u64(call.after, 16)
        var fields: [AnswerField] = [.size(removed)]
        if let b = u.bitmap {
            fields.append(.dirty(IoctlDecoding.dirtyRanges(call.bitmap, iova: u.iova, size: u.size, pgsize: b.pgsize)))
        }
        append(.unmap(u), Answer(.ok, fields: fields))
        checksDue = true
        account(call)
        guard !u.flags.contains(.vaddr), let current = mappings else { return }
        let end = u.iova &+ u.size
        let gone = current.filter { u.flags.contains(.all) || ($0.iova >= u.iova && $0.iova < end) }
        let sum = gone.reduce(UInt64(0)) { $0 &+ $1.size }
        // Known only when the mappings it removed add up to what it said.
        mappings = sum == removed ? current.filter { m in !gone.contains { $0.iova == m.iova } } : nil
    }

    mutating func dirtyPages(_ call: IoctlCall) {
        flushChecks()
        let (d, _) = IoctlDecoding.dirtyPages(call.before)
        var a = answer(call.result)
        if case .success = call.result, let b = d.bitmap {
            a.fields = [.dirty(IoctlDecoding.dirtyRanges(call.bitmap, iova: d.iova, size: d.size, pgsize: b.pgsize))]
        }
        append(.dirty(d), a)
    }

    /// `VmLck` moved by the call: this container's pages charged or uncharged.
    mutating func account(_ call: IoctlCall) {
        guard let before = call.lockedBefore, let after = call.lockedAfter, let now = locked else {
            locked = nil
            return
        }
        let next = Int64(bitPattern: now) &+ Int64(bitPattern: after &- before)
        locked = next >= 0 ? UInt64(next) : nil
    }

    /// `memory` statements for the parts of `regions` no statement covers
    /// yet: one per physically contiguous run when the frames are known.
    mutating func declareMemory(_ regions: [ObservedRegion]) {
        for region in regions where region.size > 0 {
            for piece in uncovered(IOVARange(start: region.vaddr, last: region.vaddr &+ (region.size - 1))) {
                declared.append(piece)
                emitMemory(region, piece: piece)
            }
        }
    }

    func uncovered(_ r: IOVARange) -> [IOVARange] {
        var pieces = [r]
        for d in declared {
            pieces = pieces.flatMap { p -> [IOVARange] in
                guard d.start <= p.last, p.start <= d.last else { return [p] }
                var out: [IOVARange] = []
                if p.start < d.start { out.append(IOVARange(start: p.start, last: d.start - 1)) }
                if d.last < p.last { out.append(IOVARange(start: d.last + 1, last: p.last)) }
                return out
            }
        }
        return pieces
    }

    /// Above this many runs in one piece the layout is written as
    /// `phys=scattered`: answers and locked memory do not depend on it,
    /// only `check ptes=` would (which the recorder never writes).
    static let maxRuns = 256

    mutating func emitMemory(_ region: ObservedRegion, piece: IOVARange) {
        let size = piece.last - piece.start + 1
        func memory(_ start: UInt64, _ length: UInt64, _ layout: PhysicalLayout?, comment: String? = nil, reserved: Bool = false) {
            // Without a layout (not readable), the trace's default: no phys=.
            let spec = MemorySpec(vaddr: start, size: length, pageSize: region.pageSize,
                                  placement: layout.map { .layout($0) } ?? .realistic, pfnmap: region.pfnmap || reserved)
            append(.memory(spec), nil, comment: comment)
        }
        let what = region.name.isEmpty ? nil : region.name
        guard !region.pfnmap, let runs = region.runs, !runs.isEmpty else {
            if !region.pfnmap && !layoutUnknownNoted {
                layoutUnknownNoted = true
                notes.append("physical layout not readable (pagemap needs CAP_SYS_ADMIN): memory written without phys=")
            }
            memory(piece.start, size, nil, comment: what)
            return
        }
        // The runs, clipped to the piece, in vaddr order.
        var parts: [(UInt64, UInt64, UInt64?)] = []  // start, length, phys
        var at = piece.start
        for run in runs {
            let rs = region.vaddr &+ run.offset, re = rs &+ run.length
            let s = max(rs, piece.start), e = min(re, piece.last &+ 1)
            guard s < e else { continue }
            if at < s { parts.append((at, s - at, nil)) }
            parts.append((s, e - s, run.phys &+ (s - rs)))
            at = e
        }
        if at < piece.last &+ 1 { parts.append((at, piece.last &+ 1 - at, nil)) }
        if parts.count > Self.maxRuns {
            memory(piece.start, size, .scattered(seed: piece.start),
                   comment: "\(parts.count) physical runs, written as scattered" + (what.map { ": \($0)" } ?? ""))
            return
        }
        // The shared zero page is a reserved pfn: pinned, never charged,
        // as the model treats pfnmap memory.
        var zeroNoted = false
        for (i, p) in parts.enumerated() {
            if let z = region.zeroPage, p.2 == z, p.1 == 4096 {
                memory(p.0, p.1, .contiguous(base: z), comment: zeroNoted ? nil : "the shared zero page (KPF_ZERO_PAGE): a reserved pfn, pinned, never charged",
                       reserved: true)
                zeroNoted = true
                continue
            }
            memory(p.0, p.1, p.2.map { .contiguous(base: $0) }, comment: i == 0 ? what : nil)
        }
    }

    /// The finished trace: how it was made, the setup, then every call.
    func trace(header: [String], file: String, container: Int, notes globalNotes: [String]) -> RecordedTrace {
        var flushed = self
        flushed.flushChecks()
        var out: [Statement] = header.map { Statement(line: 0, column: 0, kind: .comment($0)) }
        func add(_ kind: Statement.Kind, _ answer: Answer? = nil, comment: String? = nil) {
            out.append(Statement(line: 0, column: 0, kind: kind, expected: answer, comment: comment))
        }
        if let path { add(.comment("container \(container): \(path)")) }
        for note in globalNotes + notes { add(.comment("note: \(note)")) }
        // VFIO's type1 ioctls on an iommufd fd: iommufd's compatibility
        // (`iommufd_vfio_ioctl`), which answers and charges as iommufd does.
        if path == ContainerKind.iommufd.deviceNode { add(.container(.iommufd)) }
        if let release = environment?.kernelRelease {
            if let v = KernelVersion(parsing: release), v.isKnown {
                add(.kernel(v), comment: v.description == release ? nil : release)
            } else {
                add(.comment("kernel \(release): not a version the model knows"))
            }
        }
        if let (type, a) = iommu { add(.iommu(type), a) }
        if let env = environment {
            add(.memlock(env.memlock))
            add(.capIPCLock(env.capIPCLock))
            if let limit = env.dmaEntryLimit { add(.dmaEntryLimit(limit)) }
        }
        for (group, name) in setupDomains { add(.domain(domain(group, name: name)), comment: probeComment(group)) }
        var body = flushed.body
        for (group, index) in inlineDomains {
            if case .domain(let spec) = body[index].kind {
                body[index].kind = .domain(domain(group, name: spec.name))
                body[index].comment = probeComment(group)
            }
        }
        out += body
        return RecordedTrace(container: container, trace: Trace(file: file, statements: out), notes: flushed.notes)
    }

    func probeComment(_ group: Int) -> String? {
        probes[group] == nil ? "not probed (no VFIO_IOMMU_GET_INFO): default page sizes and ranges" : nil
    }

    /// A group's domain as GET_INFO described it: its page sizes, the hull
    /// of the usable ranges as the aperture, and the holes between them as
    /// reserved regions (`vfio_iommu_iova_build_caps` reports the aperture
    /// less the reserved regions).
    func domain(_ group: Int, name: String) -> DomainSpec {
        var spec = DomainSpec(name: name)
        if let c = coherent[group] { spec.coherent = c }
        guard let probe = probes[group] else { return spec }
        spec.pgsizes = probe.pgsizes
        if let ranges = probe.ranges?.sorted(by: { $0.start < $1.start }), let first = ranges.first, let last = ranges.last {
            spec.aperture = IOVARange(start: first.start, last: last.last)
            var holes: [IOVARange] = []
            for (a, b) in zip(ranges, ranges.dropFirst()) where a.last &+ 1 < b.start {
                holes.append(IOVARange(start: a.last + 1, last: b.start - 1))
            }
            spec.reserved = holes
        }
        return spec
    }
}

import VFIOCore

/// The model as a backend: each call goes straight to `Type1Container`.
///
/// Its mutable properties are `@exclusivity(unchecked)`: a backend belongs
/// to one replay on one thread and no method of it calls back into it, so
/// two accesses never overlap, while checking each one at run time cost
/// about 90 instructions, several times per operation (issue 15).
public final class ModelBackend: Backend {
    /// One container of the process: the type1 model, or iommufd's compat
    /// layer when `compat` is set (every call then goes there).
    struct Slot {
        var name: String
        var container: Type1Container
        var compat: IOMMUFDContainer?
    }
    /// The process's containers, in the order they were opened; the first
    /// is the trace's implicit one (`c0`).
    @exclusivity(unchecked) var slots: [Slot]
    /// Which of `slots` the calls go to (`useContainer`).
    @exclusivity(unchecked) var current = 0
    /// Pages the process locked itself (`mlock`): in `mm->locked_vm`,
    /// counted against the limit, never charged by a container.
    @exclusivity(unchecked) public private(set) var mlockedPages: UInt64 = 0

    /// The type1 model of the current container (yielded in place: a
    /// copy of the container per call would copy its mappings).
    public internal(set) var container: Type1Container {
        get { slots[current].container }
        _modify { yield &slots[current].container }
    }
    /// iommufd's compat layer when the current container is `/dev/iommu`.
    public internal(set) var compat: IOMMUFDContainer? {
        get { slots[current].compat }
        _modify { yield &slots[current].compat }
    }
    /// Which kernel code answers (`container iommufd` in a trace).
    public var containerKind: ContainerKind { compat == nil ? .type1 : .iommufd }
    /// Walk every structure after each call (`_checkInvariants`).
    @exclusivity(unchecked) public var checksInvariants: Bool
    /// The first broken invariant seen, with the call that broke it.
    public private(set) var brokenInvariant: BackendProblem? = nil

    /// When set, a trace's `kernel` statement does not change the profile:
    /// beside a real kernel the model gives that kernel's answers, whatever
    /// version the trace's written answers are for.
    public let pinnedProfile: KernelProfile?

    /// When set, a trace's `container` statement does not change the kind
    /// (`vfio-sim compare` runs one model of each kind side by side).
    public let pinnedContainer: ContainerKind?
    let label: String?

    /// - Parameters:
    ///   - container: the kind to start as (`setContainer` may change it
    ///     unless `pinsContainer`).
    ///   - label: the name reports give this backend (default `model`).
    public init(profile: KernelProfile = .newest, checksInvariants: Bool = true, pinned: Bool = false,
                container kind: ContainerKind = .type1, pinsContainer: Bool = false, label: String? = nil) {
        slots = [Slot(name: "c0", container: Type1Container(profile: profile), compat: nil)]
        self.checksInvariants = checksInvariants
        pinnedProfile = pinned ? profile : nil
        self.label = label
        if kind == .iommufd { slots[0].compat = IOMMUFDContainer(profile: profile) }
        pinnedContainer = pinsContainer ? kind : nil
    }

    public var name: String { label ?? "model" }
    public var kernel: String { compat?.profile.description ?? container.profile.description }

    /// Operations seen, to space out the walks on large containers.
    @exclusivity(unchecked) var operations = 0

    /// Walks the invariants after `what` while the container is small
    /// (at most 1,024 mappings), then only after operations 2^k: a walk
    /// costs O(mappings), so walking after every operation would make a
    /// long trace quadratic. The replayer walks once more at the end.
    func checked<T>(_ what: String, _ result: T) -> T {
        afterCall(what)
        return result
    }

    /// Counts a call and walks the invariants when `checked` says so; with
    /// invariants off it reads nothing more (a replay calls it after every
    /// operation).
    func afterCall(_ what: String) {
        operations &+= 1
        guard checksInvariants else { return }
        let n = operations
        let count = compat?.mappingCount ?? container.mappingCount
        if count <= 1024 || n & (n - 1) == 0 {
            verifyInvariants(after: what)
        }
    }

    /// Walks every invariant now and keeps the first broken one.
    public func verifyInvariants(after what: String) {
        guard checksInvariants, brokenInvariant == nil else { return }
        for (i, slot) in slots.enumerated() {
            if let problem = slot.compat?._checkInvariants() ?? slot.container._checkInvariants() {
                let which = slots.count > 1 ? "container \(slots[i].name): " : ""
                brokenInvariant = .invariantBroken(after: what, detail: which + problem)
                return
            }
        }
    }

    public func setKernel(_ version: KernelVersion) throws(BackendError) {
        let profile = pinnedProfile ?? KernelProfile(version)
        if compat != nil, !profile.hasIOMMUFD { throw BackendError("kernel \(profile) has no iommufd (/dev/iommu came with 6.2)") }
        for i in slots.indices {
            slots[i].container.profile = profile
            slots[i].compat?.profile = profile
        }
    }
    /// The process's limit: every container reads the same one.
    public func setMemlock(_ bytes: UInt64?) throws(BackendError) {
        for i in slots.indices { slots[i].container.memlock = bytes; slots[i].compat?.memlock = bytes }
    }
    public func setCapIPCLock(_ on: Bool) throws(BackendError) {
        for i in slots.indices { slots[i].container.capIPCLock = on; slots[i].compat?.capIPCLock = on }
    }
    /// iommufd has no `dma_entry_limit`: the parameter is kept for type1
    /// and ignored by the compat layer.
    public func setDMAEntryLimit(_ limit: UInt32) throws(BackendError) {
        for i in slots.indices { slots[i].container.dmaEntryLimit = limit }
    }

    /// `mlock`: the process holds `bytes` locked already. They count in
    /// `mm->locked_vm` against `RLIMIT_MEMLOCK` for every type1 container
    /// (`__account_locked_vm`), beside what the containers pin; iommufd
    /// charges `user->locked_vm`, which an mlock does not touch.
    public func mlock(_ bytes: UInt64) throws(BackendError) {
        mlockedPages = PageSizes.hostPages(covering: bytes)
        shareProcess()
    }

    /// `container NAME [type1|iommufd]`: later calls go to the container
    /// named, opened now if it is new, in the same process (one memory,
    /// one limit, one `locked_vm`).
    public func useContainer(_ name: String, kind: ContainerKind?) throws(BackendError) {
        if let i = slots.firstIndex(where: { $0.name == name }) {
            let has: ContainerKind = slots[i].compat == nil ? .type1 : .iommufd
            if let kind, has != kind { throw BackendError("container \(name) is \(has), not \(kind)") }
            current = i
        } else {
            let kind = kind ?? .type1
            let model = slots[0]
            var c = Type1Container(profile: model.container.profile)
            c.memory = model.container.memory
            c.memlock = model.container.memlock
            c.capIPCLock = model.container.capIPCLock
            c.dmaEntryLimit = model.container.dmaEntryLimit
            var slot = Slot(name: name, container: c, compat: nil)
            if kind == .iommufd {
                if !c.profile.hasIOMMUFD { throw BackendError("kernel \(c.profile) has no iommufd (/dev/iommu came with 6.2)") }
                var f = IOMMUFDContainer(profile: c.profile)
                f.memory = c.memory
                f.memlock = c.memlock
                f.capIPCLock = c.capIPCLock
                slot.compat = f
            }
            slots.append(slot)
            current = slots.count - 1
        }
        shareProcess()
    }

    /// Gives each container the process's other charges: `locked_vm`
    /// holds the mlocked pages and every type1 container's pins;
    /// `user->locked_vm` every iommufd context's.
    func shareProcess() {
        let type1Own = slots.map { $0.compat == nil ? $0.container.ownLockedPages : 0 }
        let userOwn = slots.map { $0.compat?.ownUserLockedPages ?? 0 }
        let type1Total = type1Own.reduce(mlockedPages, &+), userTotal = userOwn.reduce(0, &+)
        for i in slots.indices {
            if slots[i].compat == nil {
                slots[i].container.otherLockedPages = type1Total &- type1Own[i]
            } else {
                slots[i].compat!.otherUserLockedPages = userTotal &- userOwn[i]
            }
        }
    }

    /// `VmLck`: the mlocked pages and what every type1 container charged.
    var processLockedBytes: UInt64 {
        if slots.count == 1 && mlockedPages == 0 { return compat?.lockedBytes ?? container.lockedBytes }
        let pages = slots.reduce(mlockedPages) { $0 &+ ($1.compat == nil ? $1.container.ownLockedPages : 0) }
        return pages > UInt64.max >> 12 ? .max : pages << 12
    }

    /// `container iommufd` (or `type1`): before the first group joins. The
    /// process facts set so far (memory, limit, capability, profile) carry over.
    public func setContainer(_ kind: ContainerKind) throws(BackendError) {
        if pinnedContainer != nil || kind == containerKind { return }
        if !container.groups.isEmpty || !(compat?.groups.isEmpty ?? true) || slots.count > 1 {
            throw BackendError("the container kind must be chosen before the first group joins")
        }
        switch kind {
        case .type1:
            compat = nil
        case .iommufd:
            if !container.profile.hasIOMMUFD { throw BackendError("kernel \(container.profile) has no iommufd (/dev/iommu came with 6.2)") }
            var c = IOMMUFDContainer(profile: container.profile)
            c.memory = container.memory
            c.memlock = container.memlock
            c.capIPCLock = container.capIPCLock
            compat = c
        }
        shareProcess()
    }

    public func addMemory(_ spec: MemorySpec) throws(BackendError) -> MemoryRegion {
        switch container.memory.add(spec) {
        case .success(let region):
            shareMemory()
            return region
        case .failure(let e): throw BackendError(e.message)
        }
    }

    public func addObservedMemory(_ region: MemoryRegion) throws(BackendError) {
        if case .failure(let e) = container.memory.add(exactly: region) { throw BackendError(e.message) }
        shareMemory()
    }

    /// The process has one address space: every container sees it.
    func shareMemory() {
        let memory = container.memory
        for i in slots.indices { slots[i].container.memory = memory; slots[i].compat?.memory = memory }
    }

    /// The last call and its answer, kept (not explained) so that
    /// `explainLastAnswer` can say why when a report asks. Plain values
    /// only (an attach's spec is kept beside it, in `lastAttach`): keeping
    /// one after every map and unmap then releases nothing.
    enum LastCall {
        case none
        case attach(Result<Void, Errno>)
        case map(MapDMA, Result<Void, Errno>)
        case unmap(UnmapDMA, Result<UInt64, Errno>, mappingsBefore: Int, leakedBefore: UInt64)
        case setIOMMU(Extension, Result<Void, Errno>)
        case detach(String, Result<Void, Errno>, wasInContainer: Bool)
        case checkExtension(Extension, Result<UInt32, Errno>)
        case info(argsz: UInt32, Result<IOMMUInfo, Errno>)
        case dirty(DirtyPages, Result<Void, Errno>)
        case compatExtension(Extension)
        case compatInfo
        case compatDirty
    }
    @exclusivity(unchecked) var lastCall = LastCall.none
    /// The spec of the last attach (`LastCall.attach`).
    @exclusivity(unchecked) var lastAttach: DomainSpec? = nil

    public func attachGroup(_ spec: DomainSpec) -> Result<Void, Errno> {
        // A preset (`iommu=`) takes the values of the release answered.
        let spec = spec.preset == nil ? spec : spec.resolved(for: container.profile.version).spec
        let r = checked("attach", compat != nil ? compat!.groupSetContainer(spec) : container.groupSetContainer(spec))
        lastCall = .attach(r)
        lastAttach = spec
        return r
    }
    public func detachGroup(_ name: String) -> Result<Void, Errno> {
        let wasIn = compat?.groups.contains { $0.name == name } ?? container.groups.contains { $0.name == name }
        let r = checked("detach", compat != nil ? compat!.groupUnsetContainer(name) : container.groupUnsetContainer(name))
        lastCall = .detach(name, r, wasInContainer: wasIn)
        return r
    }
    public func setIOMMU(_ type: Extension) -> Result<Void, Errno> {
        let r = checked("SET_IOMMU", compat != nil ? compat!.setIOMMU(type) : container.setIOMMU(type))
        lastCall = .setIOMMU(type, r)
        return r
    }
    public func checkExtension(_ ext: Extension) -> Result<UInt32, Errno> {
        lastCall = .none
        if let compat { lastCall = .compatExtension(ext); return compat.checkExtension(ext) }
        // A process stuck in an ioctl makes no other call (and a detach
        // stuck with the container's group_lock held would block this one).
        let r: Result<UInt32, Errno> = container.hang != nil ? .failure(.hang) : .success(container.checkExtension(ext))
        lastCall = .checkExtension(ext, r)
        return r
    }
    public func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno> {
        lastCall = .none
        if let compat { lastCall = .compatInfo; return compat.getInfo(argsz: argsz) }
        let r = container.getInfo(argsz: argsz)
        lastCall = .info(argsz: argsz, r)
        return r
    }
    public func mapDMA(_ request: MapDMA) -> Result<Void, Errno> {
        let r: Result<Void, Errno>
        if compat == nil { r = container.mapDMA(request) } else { r = compat!.mapDMA(request) }
        afterCall("MAP_DMA")
        lastCall = .map(request, r)
        return r
    }
    public func unmapDMA(_ request: UnmapDMA) -> Result<UInt64, Errno> {
        let before: Int, r: Result<UInt64, Errno>
        let leakedBefore = container.leakedPages
        if compat == nil {
            before = container.mappingCount
            r = container.unmapDMA(request)
        } else {
            before = compat!.mappingCount
            r = compat!.unmapDMA(request)
        }
        afterCall("UNMAP_DMA")
        lastCall = .unmap(request, r, mappingsBefore: before, leakedBefore: leakedBefore)
        return r
    }
    public func dirtyPages(_ request: DirtyPages) -> Result<Void, Errno> {
        lastCall = .none
        // iommufd_vfio_ioctl has no VFIO_IOMMU_DIRTY_PAGES: -ENOIOCTLCMD,
        // which userspace sees as ENOTTY.
        if compat != nil { lastCall = .compatDirty; return .failure(.ENOTTY) }
        let r = checked("DIRTY_PAGES", container.dirtyPages(request))
        lastCall = .dirty(request, r)
        return r
    }

    /// Why the last call got its answer, worked out now from the request
    /// and the state it left (`Type1Container+Explain.swift`).
    public func explainLastAnswer() -> String? {
        if let compat { return explainCompat(compat) }
        switch lastCall {
        case .none: return nil
        case .attach(let r): return lastAttach.flatMap { container.explainAttach($0, r) }
        case .map(let m, let r): return container.explainMap(m, r)
        case .unmap(let u, let r, let before, let leaked): return container.explainUnmap(u, r, mappingsBefore: before, leakedBefore: leaked)
        case .detach(_, .success, _), .info(_, .success), .dirty(_, .success): return nil
        case .detach(let name, .failure(let e), let wasIn): return container.explainDetach(name, e, wasInContainer: wasIn)
        case .checkExtension(let ext, let r): return container.explainExtension(ext, r)
        case .info(let argsz, .failure(let e)): return container.explainInfo(argsz: argsz, e)
        case .dirty(let d, .failure(let e)): return container.explainDirty(d, e)
        case .setIOMMU(_, .success): return nil
        case .compatExtension, .compatInfo, .compatDirty: return nil
        case .setIOMMU(_, .failure(.hang)): return container.explainHang()
        case .setIOMMU(let t, .failure(let e)):
            if e == .ENODEV { return "the kernel does not offer \(t) (vfio_ioctl_set_iommu)" }
            if e == .EINVAL && container.groups.isEmpty { return "no group in the container (vfio_ioctl_set_iommu)" }
            if e == .EINVAL && container.isSet { return "an IOMMU is already set on the container (vfio_ioctl_set_iommu)" }
            // SET_IOMMU attaches every group; before it there is no
            // mapping, so an attach can fail only for these.
            if e == .EINVAL { return "attaching the groups left no valid IOVA range: every IOVA is reserved or outside an aperture (vfio_iommu_type1_attach_group)" }
            if e == .EPERM { return "a group's IOMMU does not isolate MSI and allow_unsafe_interrupts is off (vfio_iommu_type1_attach_group)" }
            return "a group's attach failed with \(e) while the IOMMU was set (vfio_iommu_type1_attach_group)"
        }
    }

    /// What the kernel logs for the last answer: type1's `pr_warn`s on the
    /// paths the model answers (iommufd's compat layer logs none of them).
    public func kernelLogOfLastAnswer() -> String? {
        if compat != nil { return nil }
        switch lastCall {
        case .map(_, .failure(let e)): return container.kernelLogMap(e)
        case .attach(.failure(let e)), .setIOMMU(_, .failure(let e)): return container.kernelLogAttach(e)
        default: return nil
        }
    }

    /// The reasons of iommufd's compat layer (`IOMMUFDContainer+Explain.swift`).
    func explainCompat(_ c: IOMMUFDContainer) -> String? {
        switch lastCall {
        case .none: return nil
        case .attach(let r): return lastAttach.flatMap { c.explainAttach($0, r) }
        case .map(let m, let r): return c.explainMap(m, r)
        case .unmap(let u, let r, _, _): return c.explainUnmap(u, r)
        case .setIOMMU(let t, let r): return c.explainSetIOMMU(t, r)
        case .detach(let name, .failure, let wasIn):
            return wasIn ? nil : "iommufd: group \(name) is not in the container (vfio_group_ioctl_unset_container)"
        case .detach(_, .success, _), .checkExtension, .info, .dirty: return nil
        case .compatExtension(let ext):
            switch ext {
            case .nesting: return "iommufd: nesting is 0, the type was never supported (iommufd_vfio_check_extension)"
            case .updateVaddr: return "iommufd: update-vaddr is 0, iommufd cannot update a vaddr (iommufd_vfio_check_extension)"
            case .unmapAll: return "iommufd: unmap-all is 1 (iommufd_vfio_check_extension)"
            case .type1, .type1v2: return "iommufd: the compat layer offers type1 and type1v2 (iommufd_vfio_check_extension)"
            case .dmaCC: return c.groups.isEmpty ? "iommufd: no group, no compat IOAS: ENODEV (iommufd_vfio_cc_iommu)" : "iommufd: 1 when every domain enforces cache coherency (iommufd_vfio_cc_iommu)"
            default: return "iommufd: 0, not an extension the compat layer knows (iommufd_vfio_check_extension)"
            }
        case .compatInfo:
            return "iommufd: only DMA_AVAIL (always U32_MAX, no dma_entry_limit) and IOVA_RANGE, no migration capability (iommufd_vfio_iommu_get_info)"
        case .compatDirty:
            return "iommufd: VFIO_IOMMU_DIRTY_PAGES is not part of the compat layer: ENOTTY (iommufd_vfio_ioctl)"
        }
    }

    public func dirtyBitmap() -> [IOVARange]? { compat != nil ? nil : container.lastDirtyBitmap }

    public func lockedMemory() -> Observation<UInt64> { .value(processLockedBytes) }
    public func mappingCount() -> Observation<UInt64> { .value(UInt64(compat?.mappingCount ?? container.mappingCount)) }
    public func pageTableEntries(domain: String?) -> Observation<PTECounts> {
        if let compat {
            guard let counts = compat.pageTableEntries(group: domain) else { return .notObservable("no group named \(domain ?? "")") }
            return .value(PTECounts(counts))
        }
        guard let counts = container.pteCounts(group: domain) else {
            return .notObservable("no group named \(domain ?? "")")
        }
        return .value(counts)
    }

    public func leafPageSize(iova: UInt64, domain: String?) -> Observation<UInt64?> {
        let r = compat.map { $0.leafSize(iova: iova, group: domain) } ?? container.leafSize(iova: iova, group: domain)
        switch r {
        case .success(let leaf): return .value(leaf)
        case .failure(let e): return .notObservable(e.description)
        }
    }

    /// The model holds nothing real; closing walks the invariants once more
    /// and reports the first broken one.
    @discardableResult
    public func close() -> [BackendProblem] {
        verifyInvariants(after: "the last operation")
        return brokenInvariant.map { [$0] } ?? []
    }
}

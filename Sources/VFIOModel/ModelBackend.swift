import VFIOCore

/// The model as a backend: each call goes straight to `Type1Container`.
///
/// Its mutable properties are `@exclusivity(unchecked)`: a backend belongs
/// to one replay on one thread and no method of it calls back into it, so
/// two accesses never overlap, while checking each one at run time cost
/// about 90 instructions, several times per operation (issue 15).
public final class ModelBackend: Backend {
    @exclusivity(unchecked) public private(set) var container: Type1Container
    /// Set by `setContainer(.iommufd)`: every call then goes to iommufd's
    /// compat layer instead of `container`.
    @exclusivity(unchecked) public private(set) var compat: IOMMUFDContainer? = nil
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
        container = Type1Container(profile: profile)
        self.checksInvariants = checksInvariants
        pinnedProfile = pinned ? profile : nil
        self.label = label
        if kind == .iommufd { compat = IOMMUFDContainer(profile: profile) }
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
        if checksInvariants, brokenInvariant == nil, let problem = compat?._checkInvariants() ?? container._checkInvariants() {
            brokenInvariant = .invariantBroken(after: what, detail: problem)
        }
    }

    public func setKernel(_ version: KernelVersion) throws(BackendError) {
        let profile = pinnedProfile ?? KernelProfile(version)
        if compat != nil, !profile.hasIOMMUFD { throw BackendError("kernel \(profile) has no iommufd (/dev/iommu came with 6.2)") }
        container.profile = profile
        compat?.profile = profile
    }
    public func setMemlock(_ bytes: UInt64?) throws(BackendError) { container.memlock = bytes; compat?.memlock = bytes }
    public func setCapIPCLock(_ on: Bool) throws(BackendError) { container.capIPCLock = on; compat?.capIPCLock = on }
    /// iommufd has no `dma_entry_limit`: the parameter is kept for type1
    /// and ignored by the compat layer.
    public func setDMAEntryLimit(_ limit: UInt32) throws(BackendError) { container.dmaEntryLimit = limit }

    /// `container iommufd` (or `type1`): before the first group joins. The
    /// process facts set so far (memory, limit, capability, profile) carry over.
    public func setContainer(_ kind: ContainerKind) throws(BackendError) {
        if pinnedContainer != nil || kind == containerKind { return }
        if !container.groups.isEmpty || !(compat?.groups.isEmpty ?? true) {
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
    }

    public func addMemory(_ spec: MemorySpec) throws(BackendError) -> MemoryRegion {
        switch container.memory.add(spec) {
        case .success(let region):
            compat?.memory = container.memory
            return region
        case .failure(let e): throw BackendError(e.message)
        }
    }

    public func addObservedMemory(_ region: MemoryRegion) throws(BackendError) {
        if case .failure(let e) = container.memory.add(exactly: region) { throw BackendError(e.message) }
        compat?.memory = container.memory
    }

    /// The last call and its answer, kept (not explained) so that
    /// `explainLastAnswer` can say why when a report asks. Plain values
    /// only (an attach's spec is kept beside it, in `lastAttach`): keeping
    /// one after every map and unmap then releases nothing.
    enum LastCall {
        case none
        case attach(Result<Void, Errno>)
        case map(MapDMA, Result<Void, Errno>)
        case unmap(UnmapDMA, Result<UInt64, Errno>, mappingsBefore: Int)
        case setIOMMU(Extension, Result<Void, Errno>)
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
        lastCall = .none
        return checked("detach", compat != nil ? compat!.groupUnsetContainer(name) : container.groupUnsetContainer(name))
    }
    public func setIOMMU(_ type: Extension) -> Result<Void, Errno> {
        let r = checked("SET_IOMMU", compat != nil ? compat!.setIOMMU(type) : container.setIOMMU(type))
        lastCall = .setIOMMU(type, r)
        return r
    }
    public func checkExtension(_ ext: Extension) -> Result<UInt32, Errno> {
        lastCall = .none
        if let compat { lastCall = .compatExtension(ext); return compat.checkExtension(ext) }
        return .success(container.checkExtension(ext))
    }
    public func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno> {
        lastCall = .none
        if let compat { lastCall = .compatInfo; return compat.getInfo(argsz: argsz) }
        return container.getInfo(argsz: argsz)
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
        if compat == nil {
            before = container.mappingCount
            r = container.unmapDMA(request)
        } else {
            before = compat!.mappingCount
            r = compat!.unmapDMA(request)
        }
        afterCall("UNMAP_DMA")
        lastCall = .unmap(request, r, mappingsBefore: before)
        return r
    }
    public func dirtyPages(_ request: DirtyPages) -> Result<Void, Errno> {
        lastCall = .none
        // iommufd_vfio_ioctl has no VFIO_IOMMU_DIRTY_PAGES: -ENOIOCTLCMD,
        // which userspace sees as ENOTTY.
        if compat != nil { lastCall = .compatDirty; return .failure(.ENOTTY) }
        return checked("DIRTY_PAGES", container.dirtyPages(request))
    }

    /// Why the last call got its answer, worked out now from the request
    /// and the state it left (`Type1Container+Explain.swift`).
    public func explainLastAnswer() -> String? {
        if let compat { return explainCompat(compat) }
        switch lastCall {
        case .none: return nil
        case .attach(let r): return lastAttach.flatMap { container.explainAttach($0, r) }
        case .map(let m, let r): return container.explainMap(m, r)
        case .unmap(let u, let r, let before): return container.explainUnmap(u, r, mappingsBefore: before)
        case .setIOMMU(_, .success): return nil
        case .compatExtension, .compatInfo, .compatDirty: return nil
        case .setIOMMU(let t, .failure(let e)):
            if e == .ENODEV { return "the kernel does not offer \(t) (vfio_ioctl_set_iommu)" }
            if e == .EINVAL { return "no group in the container, or an IOMMU already set (vfio_ioctl_set_iommu)" }
            return "a group's attach failed while the IOMMU was set (vfio_iommu_type1_attach_group)"
        }
    }

    /// The reasons of iommufd's compat layer (`IOMMUFDContainer+Explain.swift`).
    func explainCompat(_ c: IOMMUFDContainer) -> String? {
        switch lastCall {
        case .none: return nil
        case .attach(let r): return lastAttach.flatMap { c.explainAttach($0, r) }
        case .map(let m, let r): return c.explainMap(m, r)
        case .unmap(let u, let r, _): return c.explainUnmap(u, r)
        case .setIOMMU(let t, let r): return c.explainSetIOMMU(t, r)
        case .compatExtension(let ext):
            switch ext {
            case .nesting: return "iommufd: nesting is 0, the type was never supported (iommufd_vfio_check_extension)"
            case .updateVaddr: return "iommufd: update-vaddr is 0, iommufd cannot update a vaddr (iommufd_vfio_check_extension)"
            case .unmapAll: return "iommufd: unmap-all is 1 (iommufd_vfio_check_extension)"
            case .dmaCC: return c.groups.isEmpty ? "iommufd: no group, no compat IOAS: ENODEV (iommufd_vfio_cc_iommu)" : "iommufd: 1 when every domain enforces cache coherency (iommufd_vfio_cc_iommu)"
            default: return nil
            }
        case .compatInfo:
            return "iommufd: only DMA_AVAIL (always U32_MAX, no dma_entry_limit) and IOVA_RANGE, no migration capability (iommufd_vfio_iommu_get_info)"
        case .compatDirty:
            return "iommufd: VFIO_IOMMU_DIRTY_PAGES is not part of the compat layer: ENOTTY (iommufd_vfio_ioctl)"
        }
    }

    public func dirtyBitmap() -> [IOVARange]? { compat != nil ? nil : container.lastDirtyBitmap }

    public func lockedMemory() -> Observation<UInt64> { .value(compat?.lockedBytes ?? container.lockedBytes) }
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

    /// The model holds nothing real; closing walks the invariants once more
    /// and reports the first broken one.
    @discardableResult
    public func close() -> [BackendProblem] {
        verifyInvariants(after: "the last operation")
        return brokenInvariant.map { [$0] } ?? []
    }
}

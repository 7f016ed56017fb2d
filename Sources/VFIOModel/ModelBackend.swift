import VFIOCore

/// The model as a backend: each call goes straight to `Type1Container`.
public final class ModelBackend: Backend {
    public private(set) var container: Type1Container
    /// Walk every structure after each call (`_checkInvariants`).
    public var checksInvariants: Bool
    /// The first broken invariant seen, with the call that broke it.
    public private(set) var brokenInvariant: BackendProblem? = nil

    public init(profile: KernelProfile = .newest, checksInvariants: Bool = true) {
        container = Type1Container(profile: profile)
        self.checksInvariants = checksInvariants
    }

    public var name: String { "model" }
    public var kernel: String { container.profile.description }

    /// Operations seen, to space out the walks on large containers.
    var operations = 0

    /// Walks the invariants after `what` while the container is small
    /// (at most 1,024 mappings), then only after operations 2^k: a walk
    /// costs O(mappings), so walking after every operation would make a
    /// long trace quadratic. The replayer walks once more at the end.
    func checked<T>(_ what: String, _ result: T) -> T {
        operations += 1
        if checksInvariants, container.mappingCount <= 1024 || operations & (operations - 1) == 0 {
            verifyInvariants(after: what)
        }
        return result
    }

    /// Walks every invariant now and keeps the first broken one.
    public func verifyInvariants(after what: String) {
        if checksInvariants, brokenInvariant == nil, let problem = container._checkInvariants() {
            brokenInvariant = .invariantBroken(after: what, detail: problem)
        }
    }

    public func setKernel(_ version: KernelVersion) throws(BackendError) { container.profile = KernelProfile(version) }
    public func setMemlock(_ bytes: UInt64?) throws(BackendError) { container.memlock = bytes }
    public func setCapIPCLock(_ on: Bool) throws(BackendError) { container.capIPCLock = on }
    public func setDMAEntryLimit(_ limit: UInt32) throws(BackendError) { container.dmaEntryLimit = limit }

    public func addMemory(_ spec: MemorySpec) throws(BackendError) -> MemoryRegion {
        switch container.memory.add(spec) {
        case .success(let region): return region
        case .failure(let e): throw BackendError(e.message)
        }
    }

    public func addObservedMemory(_ region: MemoryRegion) throws(BackendError) {
        if case .failure(let e) = container.memory.add(exactly: region) { throw BackendError(e.message) }
    }

    /// The last call and its answer, kept (not explained) so that
    /// `explainLastAnswer` can say why when a report asks.
    enum LastCall {
        case none
        case attach(DomainSpec, Result<Void, Errno>)
        case map(MapDMA, Result<Void, Errno>)
        case unmap(UnmapDMA, Result<UInt64, Errno>, mappingsBefore: Int)
        case setIOMMU(Extension, Result<Void, Errno>)
    }
    var lastCall = LastCall.none

    public func attachGroup(_ spec: DomainSpec) -> Result<Void, Errno> {
        let r = checked("attach", container.groupSetContainer(spec))
        lastCall = .attach(spec, r)
        return r
    }
    public func detachGroup(_ name: String) -> Result<Void, Errno> { lastCall = .none; return checked("detach", container.groupUnsetContainer(name)) }
    public func setIOMMU(_ type: Extension) -> Result<Void, Errno> {
        let r = checked("SET_IOMMU", container.setIOMMU(type))
        lastCall = .setIOMMU(type, r)
        return r
    }
    public func checkExtension(_ ext: Extension) -> Result<UInt32, Errno> { lastCall = .none; return .success(container.checkExtension(ext)) }
    public func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno> { lastCall = .none; return container.getInfo(argsz: argsz) }
    public func mapDMA(_ request: MapDMA) -> Result<Void, Errno> {
        let r = checked("MAP_DMA", container.mapDMA(request))
        lastCall = .map(request, r)
        return r
    }
    public func unmapDMA(_ request: UnmapDMA) -> Result<UInt64, Errno> {
        let before = container.mappingCount
        let r = checked("UNMAP_DMA", container.unmapDMA(request))
        lastCall = .unmap(request, r, mappingsBefore: before)
        return r
    }
    public func dirtyPages(_ request: DirtyPages) -> Result<Void, Errno> { lastCall = .none; return checked("DIRTY_PAGES", container.dirtyPages(request)) }

    /// Why the last call got its answer, worked out now from the request
    /// and the state it left (`Type1Container+Explain.swift`).
    public func explainLastAnswer() -> String? {
        switch lastCall {
        case .none: return nil
        case .attach(let spec, let r): return container.explainAttach(spec, r)
        case .map(let m, let r): return container.explainMap(m, r)
        case .unmap(let u, let r, let before): return container.explainUnmap(u, r, mappingsBefore: before)
        case .setIOMMU(_, .success): return nil
        case .setIOMMU(let t, .failure(let e)):
            if e == .ENODEV { return "the kernel does not offer \(t) (vfio_ioctl_set_iommu)" }
            if e == .EINVAL { return "no group in the container, or an IOMMU already set (vfio_ioctl_set_iommu)" }
            return "a group's attach failed while the IOMMU was set (vfio_iommu_type1_attach_group)"
        }
    }

    public func dirtyBitmap() -> [IOVARange]? { container.lastDirtyBitmap }

    public func lockedMemory() -> Observation<UInt64> { .value(container.lockedBytes) }
    public func mappingCount() -> Observation<UInt64> { .value(UInt64(container.mappingCount)) }
    public func pageTableEntries(domain: String?) -> Observation<PTECounts> {
        guard let counts = container.pageTableEntries(group: domain) else {
            return .notObservable("no group named \(domain ?? "")")
        }
        return .value(PTECounts(counts))
    }

    /// The model holds nothing real; closing walks the invariants once more
    /// and reports the first broken one.
    @discardableResult
    public func close() -> [BackendProblem] {
        verifyInvariants(after: "the last operation")
        return brokenInvariant.map { [$0] } ?? []
    }
}

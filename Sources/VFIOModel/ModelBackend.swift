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

    public func attachGroup(_ spec: DomainSpec) -> Result<Void, Errno> { checked("attach", container.groupSetContainer(spec)) }
    public func detachGroup(_ name: String) -> Result<Void, Errno> { checked("detach", container.groupUnsetContainer(name)) }
    public func setIOMMU(_ type: Extension) -> Result<Void, Errno> { checked("SET_IOMMU", container.setIOMMU(type)) }
    public func checkExtension(_ ext: Extension) -> Result<UInt32, Errno> { .success(container.checkExtension(ext)) }
    public func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno> { container.getInfo(argsz: argsz) }
    public func mapDMA(_ request: MapDMA) -> Result<Void, Errno> { checked("MAP_DMA", container.mapDMA(request)) }
    public func unmapDMA(_ request: UnmapDMA) -> Result<UInt64, Errno> { checked("UNMAP_DMA", container.unmapDMA(request)) }
    public func dirtyPages(_ request: DirtyPages) -> Result<Void, Errno> { checked("DIRTY_PAGES", container.dirtyPages(request)) }

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

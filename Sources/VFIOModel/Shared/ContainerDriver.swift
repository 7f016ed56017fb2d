import VFIOCore

/// What every container model answers: the container ioctls, shaped like
/// the kernel's `vfio_iommu_driver_ops`, which type1 and iommufd's compat
/// layer each implement. `ModelBackend` calls only this, never a concrete
/// model; the process both read (memory, limit, locked counts) is
/// `process`, lent by the backend for each call.
public protocol ContainerDriver: ContainerProperties, Sendable {
    /// Which kernel code answers.
    var kind: ContainerKind { get }
    var profile: KernelProfile { get set }
    /// The process the container charges and reads: its own when it is
    /// used alone, the process's one while `ModelBackend` lends it.
    var process: ProcessState { get set }
    /// The `dma_entry_limit` module parameter (type1's; iommufd has none
    /// and ignores it).
    var dmaEntryLimit: UInt32 { get set }

    // The ioctls (container.c and the driver's ops).
    /// `VFIO_GROUP_SET_CONTAINER` (`attach_group` once an IOMMU is set).
    mutating func groupSetContainer(_ spec: DomainSpec) -> Result<Void, Errno>
    /// `VFIO_GROUP_UNSET_CONTAINER` (`detach_group`; `release` with the last).
    mutating func groupUnsetContainer(_ name: String) -> Result<Void, Errno>
    /// `VFIO_SET_IOMMU` (`open`, then `attach_group` for each group).
    mutating func setIOMMU(_ type: Extension) -> Result<Void, Errno>
    /// `VFIO_CHECK_EXTENSION`.
    func checkExtension(_ ext: Extension) -> Result<UInt32, Errno>
    /// `VFIO_IOMMU_GET_INFO`.
    func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno>
    /// `VFIO_IOMMU_MAP_DMA`.
    mutating func mapDMA(_ request: MapDMA) -> Result<Void, Errno>
    /// `VFIO_IOMMU_UNMAP_DMA`: the bytes unmapped.
    mutating func unmapDMA(_ request: UnmapDMA) -> Result<UInt64, Errno>
    /// `VFIO_IOMMU_DIRTY_PAGES`.
    mutating func dirtyPages(_ request: DirtyPages) -> Result<Void, Errno>

    // Why, and what the kernel logs.
    /// Why `call` got its answer, from the request and the state it left;
    /// nil when there is nothing to say (a plain success).
    func reason(for call: ContainerCall) -> String?
    /// The line the kernel writes to its log for `call`'s answer, if any.
    func kernelLog(for call: ContainerCall) -> String?
    /// Walks every structure; the first broken invariant, if any.
    func checkInvariants() -> InvariantViolation?

    // What can be observed.
    var groups: [DomainSpec] { get }
    var mappingCount: Int { get }
    /// IOMMU domains (type1's `domain_list`, iommufd's hardware page tables).
    var domainCount: Int { get }
    /// Pages this container charged against the limit it checks (type1:
    /// `mm->locked_vm`; iommufd: `user->locked_vm`).
    var chargedPages: UInt64 { get }
    /// Bytes the limit is checked against, the whole process's (type1's
    /// `locked_vm`, iommufd's `user->locked_vm`).
    var limitedBytes: UInt64 { get }
    /// Of `chargedPages`, pages no mapping holds any more (type1 before
    /// 6.18, a mapping ending at 2^64-1).
    var leakedPages: UInt64 { get }
    /// Where and why the kernel would never return from a call (type1's
    /// `vfio_unmap_unpin` loop), once it happened.
    var hang: String? { get }
    /// `dma_avail`, where the container counts one.
    var availableEntries: UInt32? { get }
    /// A mapping ends at 2^64-1 where the kernel's searches cannot see it.
    var hidesTopMapping: Bool { get }
    /// Maps the kernel let overlap an existing mapping.
    var overlapsLetThrough: Int { get }
    /// The caller's dirty bitmap after the last call that took one.
    var dirtyBitmap: [IOVARange]? { get }
    /// IOMMU leaf entries per page size, in the domain of `group` or all.
    func pteCounts(group: String?) -> PTECounts?
    /// The page size of the leaf entry translating `iova`.
    func leafSize(iova: UInt64, group: String?) -> Result<UInt64?, LeafLookupError>
    /// The mappings meeting `range` (every one when nil), ascending.
    func mappings(meeting range: IOVARange?) -> [MappingView]
    /// The mapping holding `iova`, if any.
    func mapping(containing iova: UInt64) -> MappingView?
}

/// One mapping as a report sees it: type1's `vfio_dma`, iommufd's area.
public struct MappingView: Hashable, Sendable {
    public var iova: UInt64
    public var size: UInt64
    /// The vaddr whose frames back it.
    public var vaddr: UInt64
    public init(iova: UInt64, size: UInt64, vaddr: UInt64) {
        self.iova = iova
        self.size = size
        self.vaddr = vaddr
    }
    public var last: UInt64 { iova &+ (size &- 1) }
}

/// A call and its answer, as a container explains it afterwards. Plain
/// values only: keeping one after every map and unmap releases nothing.
public enum ContainerCall: Sendable {
    case attach(DomainSpec, Result<Void, Errno>)
    case detach(String, Result<Void, Errno>, wasInContainer: Bool)
    case setIOMMU(Extension, Result<Void, Errno>)
    case checkExtension(Extension, Result<UInt32, Errno>)
    case info(argsz: UInt32, Result<IOMMUInfo, Errno>)
    case map(MapDMA, Result<Void, Errno>)
    /// With what the container held before (an unmap's reason says what
    /// it removed).
    case unmap(UnmapDMA, Result<UInt64, Errno>, mappingsBefore: Int, leakedBefore: UInt64)
    case dirty(DirtyPages, Result<Void, Errno>)
}

extension ContainerCall {
    /// The errno the call failed with, if it failed.
    public var errno: Errno? {
        switch self {
        case .attach(_, .failure(let e)), .detach(_, .failure(let e), _), .setIOMMU(_, .failure(let e)),
             .map(_, .failure(let e)), .dirty(_, .failure(let e)): e
        case .checkExtension(_, .failure(let e)), .info(_, .failure(let e)), .unmap(_, .failure(let e), _, _): e
        default: nil
        }
    }
}

extension ContainerDriver {
    /// The process's memory, limit and capability, read and written
    /// through the process the container holds (its own, or the one lent).
    public var memory: ProcessMemory {
        get { process.memory }
        _modify { yield &process.memory }
    }
    /// `RLIMIT_MEMLOCK` (soft) in bytes; nil = unlimited.
    public var memlock: UInt64? {
        get { process.memlock }
        set { process.memlock = newValue }
    }
    public var capIPCLock: Bool {
        get { process.capIPCLock }
        set { process.capIPCLock = newValue }
    }
}

/// Something that answers type1 ioctls: the model or a real `/dev/vfio`.
///
/// One method per ioctl, with the uapi requests of `VFIOCore`, so one replay
/// engine drives every backend. Setup calls describe the process (memory,
/// rlimit, capabilities) and the groups; `observe` reads state that no ioctl
/// returns (`VmLck`, the page tables).
public protocol Backend: AnyObject {
    /// Shown in reports: `model`, `kernel`.
    var name: String { get }
    /// The kernel whose answers this backend gives (the model's profile, or
    /// the running kernel's release).
    var kernel: String { get }

    // Process and module setup. A backend that cannot honour a setup throws
    // `BackendError` (the replay reports it as a setup difference).
    func setKernel(_ version: KernelVersion) throws(BackendError)
    func setMemlock(_ bytes: UInt64?) throws(BackendError)
    func setCapIPCLock(_ on: Bool) throws(BackendError)
    func setDMAEntryLimit(_ limit: UInt32) throws(BackendError)
    /// Which kernel code answers the type1 ioctls (`/dev/vfio/vfio` or
    /// `/dev/iommu`); called before the first group joins. A backend that
    /// has only type1 throws for `.iommufd` (the default below).
    func setContainer(_ kind: ContainerKind) throws(BackendError)
    /// `container NAME KIND`: later calls go to the container named,
    /// opened now (of `kind`) if the process has none of that name yet.
    /// The process's first container is `c0`. A backend with one
    /// container throws (the default below).
    func useContainer(_ name: String, kind: ContainerKind?) throws(BackendError)
    /// `mlock SIZE`: the process already holds `bytes` locked (its own
    /// `mlock`, QEMU's `mem-lock=on`), counted in `locked_vm`.
    func mlock(_ bytes: UInt64) throws(BackendError)
    /// Makes `region` part of the process. Returns the region as it really
    /// is (a kernel backend reports the frames it got), so the replay can
    /// hand the observed layout to the model.
    func addMemory(_ spec: MemorySpec) throws(BackendError) -> MemoryRegion
    /// Like `addMemory`, but with the layout another backend observed.
    func addObservedMemory(_ region: MemoryRegion) throws(BackendError)

    // Container and group ioctls.
    /// `VFIO_GROUP_SET_CONTAINER` for the group `spec` describes; after
    /// `VFIO_SET_IOMMU` this attaches the group to the IOMMU.
    func attachGroup(_ spec: DomainSpec) -> Result<Void, Errno>
    /// `VFIO_GROUP_UNSET_CONTAINER`.
    func detachGroup(_ name: String) -> Result<Void, Errno>
    /// `VFIO_SET_IOMMU`.
    func setIOMMU(_ type: Extension) -> Result<Void, Errno>
    /// `VFIO_CHECK_EXTENSION`: the ioctl's return value.
    func checkExtension(_ ext: Extension) -> Result<UInt32, Errno>
    /// `VFIO_IOMMU_GET_INFO` with a buffer of `argsz` bytes.
    func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno>
    /// `VFIO_IOMMU_MAP_DMA`.
    func mapDMA(_ request: MapDMA) -> Result<Void, Errno>
    /// `VFIO_IOMMU_UNMAP_DMA`: the `size` written back.
    func unmapDMA(_ request: UnmapDMA) -> Result<UInt64, Errno>
    /// `VFIO_IOMMU_DIRTY_PAGES`.
    func dirtyPages(_ request: DirtyPages) -> Result<Void, Errno>
    /// The caller's dirty bitmap after the last successful call that took
    /// one (`DIRTY_PAGES` with GET_BITMAP, `UNMAP_DMA` with
    /// GET_DIRTY_BITMAP), decoded to the IOVA ranges of the pages whose
    /// bits are set, within the range asked for; nil when the last call
    /// took no bitmap.
    func dirtyBitmap() -> [IOVARange]?

    // Observations.
    /// Locked memory of the process in bytes (`VmLck`).
    func lockedMemory() -> Observation<UInt64>
    /// Number of `vfio_dma` entries.
    func mappingCount() -> Observation<UInt64>
    /// Leaf IOMMU page-table entries in the domain of group `domain`, or in
    /// every domain when nil.
    func pageTableEntries(domain: String?) -> Observation<PTECounts>
    /// The page size of the leaf entry that translates `iova` in the domain
    /// of group `domain` (nil: the only domain), nil when no entry does
    /// (see the default in the extension).
    func leafPageSize(iova: UInt64, domain: String?) -> Observation<UInt64?>

    /// Why the last ioctl got its answer (see the default in the extension).
    func explainLastAnswer() -> String?
    /// The line the kernel writes to its log (`dmesg`) for the last ioctl's
    /// answer, if it writes one (see the default in the extension).
    func kernelLogOfLastAnswer() -> String?

    /// Ends the run: gives back what the backend holds (a kernel backend
    /// unmaps everything and releases its container, groups and memory)
    /// and says what went wrong on the way that no answer showed. Called
    /// once, by whoever made the backend, after the last statement.
    func close() -> [BackendProblem]
}

/// A value a backend could read, or why it could not.
public enum Observation<Value: Sendable & Hashable>: Sendable, Hashable {
    case value(Value)
    /// The backend has no way to read it here (say why).
    case notObservable(String)
}

/// Something a backend found wrong that is not an answer to any statement.
public enum BackendProblem: Sendable, Hashable, CustomStringConvertible {
    /// The model's own structures broke a rule (`_checkInvariants`) after
    /// the named call: a bug in the model, never in the trace.
    case invariantBroken(after: String, detail: String)
    /// The kernel still charged this much locked memory to the process
    /// after the container was released (6.12 never uncharges a mapping
    /// that ends at 2^64-1).
    case lockedAfterRelease(bytes: UInt64)

    /// Whether the run fails because of it (a kernel leak is reported, not
    /// failed: it is the kernel's behaviour, and the model predicts it).
    public var isFailure: Bool {
        switch self {
        case .invariantBroken: true
        case .lockedAfterRelease: false
        }
    }

    public var description: String {
        switch self {
        case .invariantBroken(let after, let detail): "model invariant broken after \(after): \(detail)"
        case .lockedAfterRelease(let bytes): "leak: \(formatSize(bytes)) of locked memory stayed charged after the container was released"
        }
    }
}

/// A setup a backend cannot honour.
public struct BackendError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension Backend {
    /// Why the last ioctl got the answer it got: one line naming the rule and
    /// the kernel function it comes from, or nil when the backend cannot
    /// say (a real kernel gives only the errno). Built only when asked, so
    /// answering stays cheap.
    public func explainLastAnswer() -> String? { nil }
    /// What the kernel logs for the last answer (a `pr_warn` such as the
    /// RLIMIT_MEMLOCK one), without its timestamp, so a user can find it
    /// in `dmesg`; nil when it logs nothing or the backend cannot say (a
    /// real kernel's log is read by the lane, not by the backend).
    public func kernelLogOfLastAnswer() -> String? { nil }
    /// A backend that cannot read one IOMMU entry says so.
    public func leafPageSize(iova: UInt64, domain: String?) -> Observation<UInt64?> {
        .notObservable("the \(name) backend cannot read one IOMMU page-table entry")
    }

    /// A backend with one container per process refuses a second.
    public func useContainer(_ name: String, kind: ContainerKind?) throws(BackendError) {
        throw BackendError("the \(name) backend has one container per process")
    }
    /// A backend that cannot lock memory of the process refuses.
    public func mlock(_ bytes: UInt64) throws(BackendError) {
        throw BackendError("the \(name) backend cannot lock memory for the process")
    }

    /// A backend that knows only type1 accepts type1 and refuses iommufd.
    public func setContainer(_ kind: ContainerKind) throws(BackendError) {
        if kind != .type1 { throw BackendError("the \(name) backend has no \(kind) container") }
    }
}

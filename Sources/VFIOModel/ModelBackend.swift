import VFIOCore

/// The model as a backend: the process's containers, each a
/// `ContainerDriver` (type1 or iommufd's compat layer), and the one
/// `ProcessState` they share; each call goes to the current container
/// through the interface, with the process lent to it (`call`).
///
/// Its mutable properties are `@exclusivity(unchecked)`: a backend belongs
/// to one replay on one thread and no method of it calls back into it, so
/// two accesses never overlap, while checking each one at run time cost
/// about 90 instructions, several times per operation (issue 15).
public final class ModelBackend: Backend {
    /// One container of the process, with the name a trace gives it.
    struct Slot {
        var name: String
        var driver: any ContainerDriver
    }
    /// The process's containers, in the order they were opened; the first
    /// is the trace's implicit one (`c0`).
    @exclusivity(unchecked) var slots: [Slot]
    /// Which of `slots` the calls go to (`useContainer`).
    @exclusivity(unchecked) var current = 0
    /// The process every container charges and reads (one memory, one
    /// limit, one `locked_vm`), lent to the container a call goes to.
    @exclusivity(unchecked) public private(set) var process = ProcessState()
    /// The kernel answering, and its `dma_entry_limit`, for containers
    /// opened later.
    @exclusivity(unchecked) var profile: KernelProfile
    @exclusivity(unchecked) var dmaEntryLimit: UInt32 = 65535

    /// The current container, borrowed: reading a property through
    /// `slots[current]` copied the whole slot (about 150 instructions and
    /// a retain and release of each of the container's buffers), twice per
    /// UNMAP_DMA.
    var driver: any ContainerDriver { _read { yield slots[current].driver } }

    /// Which kernel code answers the current container.
    public var containerKind: ContainerKind { driver.kind }
    /// The name the trace gives the current container (`c0` for the first).
    public var containerName: String { slots[current].name }
    /// Walk every structure after each call (`checkInvariants`).
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
        self.profile = profile
        slots = [Slot(name: "c0", driver: Self.open(kind, profile: profile, dmaEntryLimit: 65535))]
        self.checksInvariants = checksInvariants
        pinnedProfile = pinned ? profile : nil
        self.label = label
        pinnedContainer = pinsContainer ? kind : nil
    }

    /// A new container of `kind` (opening `/dev/vfio/vfio` or `/dev/iommu`).
    static func open(_ kind: ContainerKind, profile: KernelProfile, dmaEntryLimit: UInt32) -> any ContainerDriver {
        switch kind {
        case .type1:
            var c = Type1Container(profile: profile)
            c.dmaEntryLimit = dmaEntryLimit
            return c
        case .iommufd:
            return IOMMUFDContainer(profile: profile)
        }
    }

    public var name: String { label ?? "model" }
    public var kernel: String { profile.description }

    /// Reads the current container, with the process lent to it (reports
    /// look at what a call left without a copy of the container).
    public func inspect<R>(_ body: (any ContainerDriver) -> R) -> R {
        call { body($0) }
    }

    /// Runs `body` on the current container with the process lent to it.
    func call<R>(_ body: (inout any ContainerDriver) -> R) -> R {
        swap(&process, &slots[current].driver.process)
        defer { swap(&process, &slots[current].driver.process) }
        return body(&slots[current].driver)
    }

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
        if driver.mappingCount <= 1024 || n & (n - 1) == 0 {
            verifyInvariants(after: what)
        }
    }

    /// Walks every invariant now and keeps the first broken one: each
    /// container's, then the process's (its counts are the sums of what
    /// the containers charged).
    public func verifyInvariants(after what: String) {
        guard checksInvariants, brokenInvariant == nil else { return }
        let using = current
        defer { current = using }
        for i in slots.indices {
            current = i
            let problem = call { $0.checkInvariants() }
            if let problem {
                let which = slots.count > 1 ? "container \(slots[i].name): " : ""
                brokenInvariant = .invariantBroken(after: what, detail: which + problem.detail)
                return
            }
        }
        if let problem = processInvariant() { brokenInvariant = .invariantBroken(after: what, detail: problem.detail) }
    }

    /// The first broken invariant of the current container or of the
    /// process, walked now (the explorer's `invariant` property).
    public func invariantProblem() -> InvariantViolation? {
        inspect { $0.checkInvariants() } ?? processInvariant()
    }

    /// `locked_vm` is the mlocked pages and every type1 container's
    /// charges; `user->locked_vm` every iommufd context's.
    func processInvariant() -> InvariantViolation? {
        var type1: UInt64 = 0, user: UInt64 = 0
        for slot in slots {
            if slot.driver.kind == .type1 { type1 &+= slot.driver.chargedPages } else { user &+= slot.driver.chargedPages }
        }
        if process.lockedVm != process.mlockedPages &+ type1 {
            return InvariantViolation(.process, "locked_vm is \(process.lockedVm) pages: \(process.mlockedPages) mlocked and \(type1) charged by type1 containers")
        }
        if process.userLockedVm != user {
            return InvariantViolation(.process, "user locked_vm is \(process.userLockedVm) pages, iommufd contexts charged \(user)")
        }
        return nil
    }

    public func setKernel(_ version: KernelVersion) throws(BackendError) {
        let profile = pinnedProfile ?? KernelProfile(version)
        if slots.contains(where: { $0.driver.kind == .iommufd }), !profile.hasIOMMUFD {
            throw BackendError("kernel \(profile) has no iommufd (/dev/iommu came with 6.2)")
        }
        self.profile = profile
        for i in slots.indices { slots[i].driver.profile = profile }
    }
    /// The process's limit: every container reads the same one.
    public func setMemlock(_ bytes: UInt64?) throws(BackendError) { process.memlock = bytes }
    public func setCapIPCLock(_ on: Bool) throws(BackendError) { process.capIPCLock = on }
    /// The module parameter, read by type1 when a container opens
    /// (iommufd has none).
    public func setDMAEntryLimit(_ limit: UInt32) throws(BackendError) {
        dmaEntryLimit = limit
        for i in slots.indices { slots[i].driver.dmaEntryLimit = limit }
    }

    /// `mlock`: the process holds `bytes` locked already. They count in
    /// `mm->locked_vm` against `RLIMIT_MEMLOCK` for every type1 container
    /// (`__account_locked_vm`), beside what the containers pin; iommufd
    /// charges `user->locked_vm`, which an mlock does not touch.
    public func mlock(_ bytes: UInt64) throws(BackendError) {
        process.mlock(pages: PageSizes.hostPages(covering: bytes))
    }

    /// `container NAME [type1|iommufd]`: later calls go to the container
    /// named, opened now if it is new, in the same process (one memory,
    /// one limit, one `locked_vm`).
    public func useContainer(_ name: String, kind: ContainerKind?) throws(BackendError) {
        if let i = slots.firstIndex(where: { $0.name == name }) {
            let has = slots[i].driver.kind
            if let kind, has != kind { throw BackendError("container \(name) is \(has), not \(kind)") }
            current = i
            return
        }
        let kind = kind ?? .type1
        if kind == .iommufd && !profile.hasIOMMUFD { throw BackendError("kernel \(profile) has no iommufd (/dev/iommu came with 6.2)") }
        slots.append(Slot(name: name, driver: Self.open(kind, profile: profile, dmaEntryLimit: dmaEntryLimit)))
        current = slots.count - 1
    }

    /// `container iommufd` (or `type1`): before the first group joins. The
    /// process facts set so far (memory, limit, capability, profile) carry
    /// over: they are the process's, not the container's.
    public func setContainer(_ kind: ContainerKind) throws(BackendError) {
        if pinnedContainer != nil || kind == containerKind { return }
        if !slots[current].driver.groups.isEmpty || slots.count > 1 {
            throw BackendError("the container kind must be chosen before the first group joins")
        }
        if kind == .iommufd && !profile.hasIOMMUFD { throw BackendError("kernel \(profile) has no iommufd (/dev/iommu came with 6.2)") }
        slots[current].driver = Self.open(kind, profile: profile, dmaEntryLimit: dmaEntryLimit)
    }

    public func addMemory(_ spec: MemorySpec) throws(BackendError) -> MemoryRegion {
        switch process.memory.add(spec) {
        case .success(let region): return region
        case .failure(let e): throw BackendError(e.message)
        }
    }

    public func addObservedMemory(_ region: MemoryRegion) throws(BackendError) {
        if case .failure(let e) = process.memory.add(exactly: region) { throw BackendError(e.message) }
    }

    /// The last call and its answer, kept (not explained) so that
    /// `explainLastAnswer` can say why when a report asks.
    @exclusivity(unchecked) public private(set) var lastCall: ContainerCall? = nil

    /// Forgets the last call (a statement that makes none leaves none).
    public func forgetLastCall() { lastCall = nil }

    /// The current container's state, to check a call against
    /// (`propertyViolations`).
    public func snapshot() -> ContainerSnapshot { inspect { $0.snapshot() } }

    /// The properties the last call broke, from the state `before` it.
    public func propertyViolations(before: ContainerSnapshot) -> [PropertyViolation] {
        guard let lastCall else { return [] }
        return inspect { $0.propertyViolations(after: lastCall, before: before) }
    }

    /// Runs UNMAP_ALL on the current container, as at the end of a
    /// sequence, and says what it left that it should not have.
    public func unmapAllLeftovers() -> PropertyViolation? {
        guard inspect({ $0.unmapsAllAtEnd }) else { return nil }
        let before = snapshot()
        let r = unmapDMA(UnmapDMA(flags: [.all], iova: 0, size: 0))
        return inspect { $0.unmapAllLeftovers(r, before: before) }
    }

    public func attachGroup(_ spec: DomainSpec) -> Result<Void, Errno> {
        // A preset (`iommu=`) takes the values of the release answered.
        let spec = spec.preset == nil ? spec : spec.resolved(for: profile.version).spec
        let r = checked("attach", call { $0.groupSetContainer(spec) })
        lastCall = .attach(spec, r)
        return r
    }
    public func detachGroup(_ name: String) -> Result<Void, Errno> {
        let wasIn = driver.groups.contains { $0.name == name }
        let r = checked("detach", call { $0.groupUnsetContainer(name) })
        lastCall = .detach(name, r, wasInContainer: wasIn)
        return r
    }
    public func setIOMMU(_ type: Extension) -> Result<Void, Errno> {
        let r = checked("SET_IOMMU", call { $0.setIOMMU(type) })
        lastCall = .setIOMMU(type, r)
        return r
    }
    public func checkExtension(_ ext: Extension) -> Result<UInt32, Errno> {
        let r = driver.checkExtension(ext)
        lastCall = .checkExtension(ext, r)
        return r
    }
    public func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno> {
        let r = driver.getInfo(argsz: argsz)
        lastCall = .info(argsz: argsz, r)
        return r
    }
    public func mapDMA(_ request: MapDMA) -> Result<Void, Errno> {
        let r = call { $0.mapDMA(request) }
        afterCall("MAP_DMA")
        lastCall = .map(request, r)
        return r
    }
    public func unmapDMA(_ request: UnmapDMA) -> Result<UInt64, Errno> {
        let before = driver.mappingCount, leakedBefore = driver.leakedPages
        let r = call { $0.unmapDMA(request) }
        afterCall("UNMAP_DMA")
        lastCall = .unmap(request, r, mappingsBefore: before, leakedBefore: leakedBefore)
        return r
    }
    public func dirtyPages(_ request: DirtyPages) -> Result<Void, Errno> {
        let r = checked("DIRTY_PAGES", call { $0.dirtyPages(request) })
        lastCall = .dirty(request, r)
        return r
    }

    /// Why the last call got its answer, worked out now from the request
    /// and the state it left.
    public func explainLastAnswer() -> String? {
        guard let lastCall else { return nil }
        return inspect { $0.reason(for: lastCall) }
    }

    /// What the kernel logs for the last answer.
    public func kernelLogOfLastAnswer() -> String? {
        guard let lastCall else { return nil }
        return inspect { $0.kernelLog(for: lastCall) }
    }

    public func dirtyBitmap() -> [IOVARange]? { driver.dirtyBitmap }

    public func lockedMemory() -> Observation<UInt64> { .value(process.lockedBytes) }
    public func mappingCount() -> Observation<UInt64> { .value(UInt64(driver.mappingCount)) }
    public func pageTableEntries(domain: String?) -> Observation<PTECounts> {
        guard let counts = driver.pteCounts(group: domain) else {
            return .notObservable("no group named \(domain ?? "")")
        }
        return .value(counts)
    }

    public func leafPageSize(iova: UInt64, domain: String?) -> Observation<UInt64?> {
        switch driver.leafSize(iova: iova, group: domain) {
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

import CVFIOSys
import VFIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Real type1 ioctls on `/dev/vfio`: the same calls as the model, made on
/// a container holding real groups.
///
/// The trace's domains bind to the real groups in the order they are first
/// named; the process state a trace sets (memory, `RLIMIT_MEMLOCK`,
/// `CAP_IPC_LOCK` of this process) is made real. It maps only memory it
/// allocated itself (and, for `pfnmap` memory, the BAR it was given) and
/// undoes everything in `close()` (the kernel also releases the container
/// when the process exits, whatever way it exits). It never writes a module
/// parameter: `dma_entry_limit` is global, so a trace that needs another
/// value asks the parent process (`ModuleParameterGuard`), which outlives
/// it and puts the value back. Every system call goes through `sys`.
public final class KernelBackend: Backend {
    let sys: SystemCalls
    /// One real group: its device node, fd and the trace name bound to it.
    struct Group {
        var path: String
        var fd: Int32 = -1
        var name: String? = nil
        var inContainer = false
        /// With an iommufd container: the group's devices, opened when it
        /// joins (`VFIO_GROUP_GET_DEVICE_FD` attaches each to the compat
        /// IOAS) and closed before it leaves.
        var deviceFDs: [Int32] = []
    }
    var groups: [Group]
    var containerFD: Int32 = -1
    /// Which node `containerFD` is: `/dev/vfio/vfio` or `/dev/iommu`.
    public private(set) var containerKind: ContainerKind = .type1
    /// The trace's name for the container `containerFD` is (`c0` first).
    var containerName = "c0"
    /// The process's other containers, while another one is driven
    /// (`container NAME`): their fds, released in `close()`.
    var otherContainers: [String: (fd: Int32, kind: ContainerKind)] = [:]
    /// A PCI BAR's sysfs resource file, mapped for `pfnmap` memory.
    let barPath: String?
    /// The devices' file descriptors and ioctls: `sys` unless a caller
    /// stands between (fault injection).
    let device: DeviceIO
    /// The host page-table walker's serial port (`check ptes=`), if any.
    let pageTableWalker: String?
    var regions: [MemoryRegion] = []
    /// The memory `mlock` locked for the process (address, length).
    var locked: (addr: UInt64, length: UInt64)?
    /// `dma_entry_limit` as this backend last saw or set it, and as the
    /// container copied it at `SET_IOMMU`.
    var entryLimitAtOpen: UInt32 = 65535
    var entryLimit: UInt32 = 65535
    public let release: String
    /// `VmLck` when the backend was made: locked memory is reported
    /// relative to it, so a trace sees only what its own container
    /// charges (as the model, which starts every trace at 0), whatever an
    /// earlier trace in this process left behind.
    var lockedAtStart: UInt64 = 0
    /// The caller's bitmap after the last call that took one, decoded.
    var lastBitmap: [IOVARange]? = nil
    /// The lane's serial line to the host's page-table walker, once opened.
    var walkerFD: Int32 = -1
    var closed = false
    /// Whether the signal cleanup is armed for this backend's fds.
    var armed = false

    public var name: String { "kernel" }
    public var kernel: String { release }
    /// The running kernel's version (`uname -r`), when it parses.
    public var version: KernelVersion? { KernelVersion(parsing: release) }

    /// Opens `groupPaths` (each a `/dev/vfio/N` whose devices are all bound
    /// to vfio-pci and whose group has no container) and a container. With
    /// `traceDefaults` (a backend that replays, not one that only probes) it
    /// drops `CAP_IPC_LOCK`, lifts `RLIMIT_MEMLOCK` and makes sure
    /// `dma_entry_limit` is the 65535 traces assume (asking the parent when
    /// it is not).
    ///
    /// `pageTableWalker`: the serial port of a host program that walks the
    /// IOMMU's page tables for `check ptes=` (the lane's `VFIO_LANE_PTES`,
    /// read by the command line); nil: not observable. `deviceIO`: where
    /// the device opens and ioctls go instead of `sys` (fault injection
    /// counts them there).
    public init(groupPaths: [String], barPath: String? = nil, sys: SystemCalls = LinuxSystemCalls(),
                traceDefaults: Bool = true, pageTableWalker: String? = nil, deviceIO: DeviceIO? = nil) throws(BackendError) {
        self.sys = sys
        self.device = deviceIO ?? sys
        self.barPath = barPath
        self.pageTableWalker = pageTableWalker
        groups = groupPaths.map { Group(path: $0) }
        release = sys.release
        guard !groupPaths.isEmpty else { throw BackendError("the kernel backend needs at least one group") }
        if !sys.isRoot { throw BackendError("the kernel backend needs root (it opens \(groupPaths[0]) and locks memory)") }
        for i in groups.indices {
            let path = groups[i].path
            do throws(BackendError) {
                try Self.checkGroupIsOurs(path, sys: sys)
                switch device.open(path, O_RDWR) {
                case .success(let fd): groups[i].fd = fd
                case .failure(let e): throw BackendError("cannot open \(path): \(e)")
                }
                var status = vfio_group_status(argsz: UInt32(MemoryLayout<vfio_group_status>.size), flags: 0)
                if case .failure(let e) = device.ioctl(groups[i].fd, VFIO.groupGetStatus, &status) { throw BackendError("VFIO_GROUP_GET_STATUS on \(path): \(e)") }
                if status.flags & UInt32(VFIO_GROUP_FLAGS_VIABLE) == 0 { throw BackendError("group \(path) is not viable: bind every device in it to vfio-pci") }
                if status.flags & UInt32(VFIO_GROUP_FLAGS_CONTAINER_SET) != 0 { throw BackendError("group \(path) already has a container; refusing to touch it") }
            } catch {
                _ = close()
                throw error
            }
        }
        switch device.open("/dev/vfio/vfio", O_RDWR) {
        case .success(let fd): containerFD = fd
        case .failure(let e): _ = close(); throw BackendError("cannot open /dev/vfio/vfio: \(e)")
        }
        if case .success(let v) = device.ioctl(containerFD, VFIO.getAPIVersion, value: 0), v != VFIO.apiVersion {
            _ = close(); throw BackendError("unexpected VFIO API version \(v)")
        }
        if let now = ModuleParameter.dmaEntryLimit.read(sys).flatMap({ UInt32($0) }) { entryLimit = now; entryLimitAtOpen = now }
        if traceDefaults {
            // The trace defaults: no CAP_IPC_LOCK, no memlock limit, 65535 entries.
            _ = sys.setCapIPCLock(false)
            _ = sys.setMemlock(nil)
            do throws(BackendError) { try setDMAEntryLimit(65535) } catch { _ = close(); throw error }
        }
        lockedAtStart = vmLck() ?? 0
        // A signal must not leave mappings or pins behind: the handler
        // unmaps everything (the parent puts module parameters back).
        sys.armCleanup(container: containerFD, groups: groups.map(\.fd))
        armed = true
    }

    /// Refuses a group whose devices are bound to anything but vfio-pci.
    static func checkGroupIsOurs(_ path: String, sys: SystemCalls) throws(BackendError) {
        guard let number = groupNumber(path) else {
            throw BackendError("\(path) is not a VFIO group path such as /dev/vfio/12")
        }
        let devices = "/sys/kernel/iommu_groups/\(number)/devices"
        guard let names = sys.listDirectory(devices) else { throw BackendError("no IOMMU group \(number) (\(devices) is missing)") }
        for name in names {
            let driver = sys.readLink("\(devices)/\(name)/driver").map { String($0.split(separator: "/").last ?? "") } ?? "none"
            if driver != "vfio-pci" { throw BackendError("device \(name) in group \(number) is bound to \(driver), not vfio-pci; refusing") }
        }
    }

    /// `VFIO_GROUP_GET_STATUS` of a group, opened and closed again: its
    /// flags (`VFIO_GROUP_FLAGS_CONTAINER_SET` while a container holds
    /// it). EBUSY while another process has it open.
    public static func groupStatus(_ path: String, sys: SystemCalls) -> Result<UInt32, Errno> {
        let fd: Int32
        switch sys.open(path, O_RDWR) {
        case .success(let f): fd = f
        case .failure(let e): return .failure(e)
        }
        defer { sys.close(fd) }
        var status = vfio_group_status(argsz: UInt32(MemoryLayout<vfio_group_status>.size), flags: 0)
        return sys.ioctl(fd, VFIO.groupGetStatus, &status).map { _ in status.flags }
    }

    /// Whether group status flags show a container.
    public static func hasContainer(_ flags: UInt32) -> Bool { flags & UInt32(VFIO_GROUP_FLAGS_CONTAINER_SET) != 0 }

    static func groupNumber(_ path: String) -> Substring? {
        guard let number = path.split(separator: "/").last, !number.isEmpty, number.allSatisfy(\.isNumber) else { return nil }
        return number
    }

    /// Undoes everything: mappings, container, fds, memory; then reports
    /// locked memory the kernel still charges.
    @discardableResult
    public func close() -> [BackendProblem] {
        guard !closed else { return [] }
        closed = true
        // Every other container first: unmap all, then close its fd.
        for (_, c) in otherContainers where c.fd >= 0 {
            var unmap = vfio_iommu_type1_dma_unmap()
            unmap.argsz = UInt32(MemoryLayout<vfio_iommu_type1_dma_unmap>.size)
            unmap.flags = UInt32(VFIO_DMA_UNMAP_FLAG_ALL)
            _ = device.ioctl(c.fd, VFIO.iommuUnmapDMA, &unmap)
        }
        for i in groups.indices { closeDevices(i) }
        for g in groups where g.fd >= 0 && g.inContainer { _ = device.ioctl(g.fd, VFIO.groupUnsetContainer, value: 0) }
        for i in groups.indices { groups[i].inContainer = false }
        for (_, c) in otherContainers where c.fd >= 0 { device.close(c.fd) }
        otherContainers = [:]
        if containerFD >= 0 {
            var unmap = vfio_iommu_type1_dma_unmap()
            unmap.argsz = UInt32(MemoryLayout<vfio_iommu_type1_dma_unmap>.size)
            unmap.flags = UInt32(VFIO_DMA_UNMAP_FLAG_ALL)
            _ = device.ioctl(containerFD, VFIO.iommuUnmapDMA, &unmap)
        }
        for i in groups.indices { closeDevices(i) }
        for g in groups where g.fd >= 0 && g.inContainer { _ = device.ioctl(g.fd, VFIO.groupUnsetContainer, value: 0) }
        if containerFD >= 0 { device.close(containerFD) }
        for g in groups where g.fd >= 0 { device.close(g.fd) }
        if walkerFD >= 0 { sys.close(walkerFD); walkerFD = -1 }
        for r in regions { sys.munmap(r.vaddr, r.size) }
        regions = []
        if let l = locked { sys.munmap(l.addr, l.length); locked = nil }
        let hadContainer = containerFD >= 0
        containerFD = -1
        for i in groups.indices { groups[i].fd = -1 }
        if armed { sys.armCleanup(container: -1, groups: []); armed = false }
        guard hadContainer, let now = vmLck(), now > lockedAtStart else { return [] }
        return [.lockedAfterRelease(bytes: now - lockedAtStart)]
    }

    deinit { _ = close() }

    // MARK: Setup

    public func setKernel(_ version: KernelVersion) throws(BackendError) {}

    /// `container iommufd`: the container becomes an iommufd (`/dev/iommu`
    /// opened, that fd given to `VFIO_GROUP_SET_CONTAINER`), whose compat
    /// layer answers the type1 ioctls. Before the first group joins.
    public func setContainer(_ kind: ContainerKind) throws(BackendError) {
        if kind == containerKind { return }
        if groups.contains(where: \.inContainer) { throw BackendError("the container kind must be chosen before the first group joins") }
        let node = kind.deviceNode
        let fd: Int32
        switch device.open(node, O_RDWR) {
        case .success(let f): fd = f
        case .failure(let e):
            throw BackendError("cannot open \(node): \(e)" + (kind == .iommufd ? " (a kernel without CONFIG_IOMMUFD has no /dev/iommu)" : ""))
        }
        if containerFD >= 0 { device.close(containerFD) }
        containerFD = fd
        containerKind = kind
        if armed { sys.armCleanup(container: containerFD, groups: groups.map(\.fd)) }
    }

    /// `container NAME KIND`: another container of this process, opened
    /// when first named (`/dev/vfio/vfio` or `/dev/iommu`); later calls
    /// go to it. Groups join whichever container is current.
    public func useContainer(_ name: String, kind: ContainerKind?) throws(BackendError) {
        if name == containerName {
            if let kind, kind != containerKind { throw BackendError("container \(name) is \(containerKind), not \(kind)") }
            return
        }
        let saved = (fd: containerFD, kind: containerKind)
        if let c = otherContainers.removeValue(forKey: name) {
            if let kind, c.kind != kind { otherContainers[name] = c; throw BackendError("container \(name) is \(c.kind), not \(kind)") }
            (containerFD, containerKind) = (c.fd, c.kind)
        } else {
            let kind = kind ?? .type1
            let node = kind.deviceNode
            switch device.open(node, O_RDWR) {
            case .success(let fd): (containerFD, containerKind) = (fd, kind)
            case .failure(let e): throw BackendError("cannot open \(node) for container \(name): \(e)")
            }
            if kind == .type1, case .success(let v) = device.ioctl(containerFD, VFIO.getAPIVersion, value: 0), v != VFIO.apiVersion {
                device.close(containerFD)
                (containerFD, containerKind) = saved
                throw BackendError("unexpected VFIO API version \(v)")
            }
        }
        otherContainers[containerName] = saved
        containerName = name
    }

    public func setMemlock(_ bytes: UInt64?) throws(BackendError) {
        if let e = sys.setMemlock(bytes) { throw BackendError("setrlimit(RLIMIT_MEMLOCK): \(e)") }
    }

    /// `mlock SIZE`: this process locks that much anonymous memory of its
    /// own (rounded up to pages), which the kernel counts in `locked_vm` as
    /// the model does; a second `mlock` replaces the first. Refused as
    /// `mlock(2)` refuses it (over `RLIMIT_MEMLOCK` without CAP_IPC_LOCK).
    public func mlock(_ bytes: UInt64) throws(BackendError) {
        if let l = locked { sys.munmap(l.addr, l.length); locked = nil }
        let (length, overflow) = PageSizes.hostPages(covering: bytes).multipliedReportingOverflow(by: PageSizes.pageSize)
        if overflow { throw BackendError("mlock of \(formatSize(bytes)): more than the address space") }
        if length == 0 { return }
        switch sys.mmapLocked(length) {
        case .success(let addr): locked = (addr, length)
        case .failure(let e): throw BackendError("mlock of \(formatSize(length)): \(e)")
        }
    }

    public func setCapIPCLock(_ on: Bool) throws(BackendError) {
        if let e = sys.setCapIPCLock(on) { throw BackendError("capset(CAP_IPC_LOCK): \(e)") }
    }

    /// The parent changes the module parameter (and puts it back when this
    /// process is gone); this process only reads it.
    public func setDMAEntryLimit(_ limit: UInt32) throws(BackendError) {
        let p = ModuleParameter.dmaEntryLimit
        guard let now = p.read(sys) else { throw BackendError("cannot read \(p.path) (is vfio_iommu_type1 loaded?)") }
        if now != String(limit) {
            switch sys.askParent(.set(p, value: String(limit))) {
            case nil:
                throw BackendError("\(p.rawValue) is \(now) and the trace needs \(limit): only a supervising vfio-sim process "
                                   + "(replay or explore, which run each trace in a child) changes it")
            case .refused(let why)?: throw BackendError(why)
            case .ok?: break
            }
        }
        entryLimit = limit
    }

    public func addMemory(_ spec: MemorySpec) throws(BackendError) -> MemoryRegion {
        if spec.pfnmap { return try addBAR(spec) }
        let shift = Int32(spec.pageSize.trailingZeroBitCount)
        // The frames cannot be chosen, but a trace that asks for memory that
        // is not physically contiguous gets 4K pages without transparent
        // hugepages, faulted in descending order: the closest the kernel
        // comes (the model is then given the frames really obtained).
        // Plain 4K memory (no phys=) gets no transparent hugepages either,
        // `thp` memory asks for them (madvise MADV_HUGEPAGE); hugetlb
        // memory ignores the order.
        let order: Int32
        switch spec.placement {
        case .layout(.scattered), .layout(.reversed): order = 2
        case .layout(.chunks), .realistic: order = 1
        case .thp, .layout(.thp): order = 3
        case .contiguous, .layout(.contiguous), .layout(.observed): order = 0
        }
        if let e = sys.mmapAnonymous(spec.vaddr, spec.size, pageShift: shift, order: order) {
            throw BackendError("mmap of \(formatSize(spec.size)) at \(formatAddress(spec.vaddr)) with \(formatSize(spec.pageSize)) pages: \(e)")
        }
        var region = MemoryRegion(vaddr: spec.vaddr, size: spec.size, pageSize: spec.pageSize, layout: .observed([]))
        regions.append(region)
        region.layout = .observed(try observeFrames(vaddr: spec.vaddr, size: spec.size))
        return region
    }

    /// `pfnmap` memory: the BAR given at init, mapped at the trace's vaddr.
    /// A BAR is physically contiguous from the address sysfs lists for it.
    func addBAR(_ spec: MemorySpec) throws(BackendError) -> MemoryRegion {
        guard let barPath else { throw BackendError("pfnmap memory needs a device BAR (the lane's VFIO_IVSHMEM_BAR); none was given") }
        guard let base = Self.barAddress(resourceFile: barPath, sys: sys) else { throw BackendError("cannot read the address of \(barPath)") }
        if let e = sys.mmapFile(barPath, spec.vaddr, spec.size) {
            throw BackendError("mmap of \(formatSize(spec.size)) of \(barPath) at \(formatAddress(spec.vaddr)): \(e)")
        }
        let region = MemoryRegion(vaddr: spec.vaddr, size: spec.size, pageSize: 4096, layout: .contiguous(base: base), pfnmap: true)
        regions.append(region)
        return region
    }

    /// The bus address of BAR N from the device's `resource` table (line N:
    /// start, end, flags, in hex), given the path of its `resourceN` file.
    static func barAddress(resourceFile: String, sys: SystemCalls) -> UInt64? {
        guard let slash = resourceFile.lastIndex(of: "/"),
              let index = Int(resourceFile[resourceFile.index(after: slash)...].dropFirst("resource".count)),
              let table = sys.readText(String(resourceFile[..<slash]) + "/resource") else { return nil }
        let lines = table.split(separator: "\n")
        guard index < lines.count, let word = lines[index].split(separator: " ").first else { return nil }
        return UInt64(word.dropFirst(2), radix: 16)
    }

    /// The frames behind `[vaddr, vaddr+size)`, from `/proc/self/pagemap`,
    /// joined into physically contiguous runs.
    func observeFrames(vaddr: UInt64, size: UInt64) throws(BackendError) -> [PhysicalRun] {
        let fd: Int32
        switch sys.open("/proc/self/pagemap", O_RDONLY) {
        case .success(let f): fd = f
        case .failure(let e): throw BackendError("cannot open /proc/self/pagemap: \(e)")
        }
        defer { sys.close(fd) }
        var runs: [PhysicalRun] = []
        let pages = size / 4096
        var page: UInt64 = 0
        while page < pages {
            let batch = min(pages - page, 65536)
            guard let bytes = sys.pread(fd, count: Int(batch) * Pagemap.entrySize, offset: (vaddr / 4096 + page) * 8) else {
                throw BackendError("cannot read /proc/self/pagemap")
            }
            do throws(Pagemap.Error) {
                try Pagemap.appendRuns(bytes, offset: page * 4096, to: &runs)
            } catch {
                throw BackendError("page at \(formatAddress(vaddr + error.offset)) is not present (or pfns are hidden: not root?)")
            }
            page += batch
        }
        return runs
    }

    public func addObservedMemory(_ region: MemoryRegion) throws(BackendError) {
        throw BackendError("the kernel backend allocates its own memory; it must be the first backend")
    }

    // MARK: Ioctls

    /// The real group the trace's `name` is bound to, binding the next free
    /// one on first use.
    func group(named name: String, binding: Bool) -> Int? {
        if let i = groups.firstIndex(where: { $0.name == name }) { return i }
        guard binding, let free = groups.firstIndex(where: { $0.name == nil }) else { return nil }
        groups[free].name = name
        return free
    }

    public func attachGroup(_ spec: DomainSpec) -> Result<Void, Errno> {
        // More trace groups than real ones: this one cannot be made real.
        guard let i = group(named: spec.name, binding: true) else { return .failure(.ENODEV) }
        var fd = containerFD
        let r = device.ioctl(groups[i].fd, VFIO.groupSetContainer, &fd)
        if case .success = r { groups[i].inContainer = true }
        if case .success = r, containerKind == .iommufd, let e = openDevices(i) {
            // The device did not attach: take the group out again, so the
            // container is as before the call (the model's answer).
            closeDevices(i)
            _ = device.ioctl(groups[i].fd, VFIO.groupUnsetContainer, value: 0)
            groups[i].inContainer = false
            return .failure(e)
        }
        return r.map { _ in () }
    }

    /// Opens every device of group `i` (`VFIO_GROUP_GET_DEVICE_FD` with its
    /// PCI address): with an iommufd container this is what attaches the
    /// group to the compat IOAS (`vfio_iommufd_compat_attach_ioas`).
    /// Returns the first failure.
    func openDevices(_ i: Int) -> Errno? {
        for name in devices(of: groups[i].path) {
            var bytes = Array(name.utf8) + [0]
            switch device.ioctl(groups[i].fd, VFIO.groupGetDeviceFD, bytes: &bytes) {
            case .success(let fd): groups[i].deviceFDs.append(fd)
            case .failure(let e): return e
            }
        }
        return nil
    }

    /// Closes the devices of group `i` (detaching them from the IOAS).
    func closeDevices(_ i: Int) {
        for fd in groups[i].deviceFDs { device.close(fd) }
        groups[i].deviceFDs = []
    }

    /// `VFIO_GROUP_UNSET_CONTAINER`. The real group is free again for the
    /// next name the trace attaches.
    public func detachGroup(_ name: String) -> Result<Void, Errno> {
        guard let i = group(named: name, binding: false) else { return .failure(.EINVAL) }
        // An iommufd keeps a device attached while its fd is open, whatever
        // the group's container: close it first.
        closeDevices(i)
        let r = device.ioctl(groups[i].fd, VFIO.groupUnsetContainer, value: 0)
        if case .success = r { groups[i].inContainer = false }
        if !groups[i].inContainer { groups[i].name = nil }
        return r.map { _ in () }
    }

    public func setIOMMU(_ type: Extension) -> Result<Void, Errno> {
        entryLimitAtOpen = entryLimit
        return device.ioctl(containerFD, VFIO.setIOMMU, value: UInt(type.rawValue)).map { _ in () }
    }

    public func checkExtension(_ ext: Extension) -> Result<UInt32, Errno> {
        device.ioctl(containerFD, VFIO.checkExtension, value: UInt(ext.rawValue)).map { UInt32($0) }
    }

    public func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno> {
        var buffer = [UInt8](repeating: 0, count: Int(max(argsz, 24)))
        for i in 0..<4 { buffer[i] = UInt8((argsz >> (8 * UInt32(i))) & 0xff) }
        return device.ioctl(containerFD, VFIO.iommuGetInfo, bytes: &buffer).map { _ in
            IOMMUInfo(bytes: Array(buffer.prefix(Int(max(argsz, 16)))))
        }
    }

    public func mapDMA(_ r: MapDMA) -> Result<Void, Errno> {
        var raw = vfio_iommu_type1_dma_map(argsz: r.argsz, flags: r.flags.rawValue, vaddr: r.vaddr, iova: r.iova, size: r.size)
        return device.ioctl(containerFD, VFIO.iommuMapDMA, &raw).map { _ in () }
    }

    public func unmapDMA(_ r: UnmapDMA) -> Result<UInt64, Errno> {
        lastBitmap = nil
        if let bitmap = r.bitmap {
            return withBitmapBuffer(bitmap, iova: r.iova, size: r.size) { data in
                var raw = cvfio_unmap_bitmap()
                raw.unmap.argsz = r.argsz; raw.unmap.flags = r.flags.rawValue; raw.unmap.iova = r.iova; raw.unmap.size = r.size
                raw.bitmap = vfio_bitmap(pgsize: bitmap.pgsize, size: bitmap.size, data: data)
                return device.ioctl(containerFD, VFIO.iommuUnmapDMA, &raw).map { _ in raw.unmap.size }
            }
        }
        var raw = vfio_iommu_type1_dma_unmap()
        raw.argsz = r.argsz; raw.flags = r.flags.rawValue; raw.iova = r.iova; raw.size = r.size
        return device.ioctl(containerFD, VFIO.iommuUnmapDMA, &raw).map { _ in raw.size }
    }

    /// Runs `body` with a user buffer for dirty bits and, when the call
    /// succeeds, keeps the bits as IOVA ranges (`lastBitmap`). The buffer is
    /// capped (the kernel checks the size the caller claims against what it
    /// needs before it writes) and has a guard of 64 KiB past the end:
    /// before 6.18 the walk also reports a mapping that starts exactly at
    /// `iova + size`, past the bits the caller asked for.
    func withBitmapBuffer<T>(_ bitmap: DMABitmap, iova: UInt64, size: UInt64,
                             _ body: (UnsafeMutablePointer<UInt64>?) -> Result<T, Errno>) -> Result<T, Errno> {
        let words = Int(min(bitmap.size, 1 << 26) / 8) + 8192
        var bits = [UInt64](repeating: 0, count: words)
        let result = bits.withUnsafeMutableBufferPointer { body($0.baseAddress) }
        if case .success = result, bitmap.pgsize.nonzeroBitCount == 1 {
            let pages = min(size / bitmap.pgsize, UInt64(bits.count - 8192) * 64)
            lastBitmap = DirtyBits.ranges(bits, pages: pages, iova: iova, pgsize: bitmap.pgsize)
        }
        return result
    }

    public func dirtyPages(_ r: DirtyPages) -> Result<Void, Errno> {
        lastBitmap = nil
        if let bitmap = r.bitmap {
            return withBitmapBuffer(bitmap, iova: r.iova, size: r.size) { data in
                var raw = cvfio_dirty_bitmap()
                raw.dirty.argsz = r.argsz; raw.dirty.flags = r.flags.rawValue
                raw.range.iova = r.iova; raw.range.size = r.size
                raw.range.bitmap = vfio_bitmap(pgsize: bitmap.pgsize, size: bitmap.size, data: data)
                return device.ioctl(containerFD, VFIO.iommuDirtyPages, &raw).map { _ in () }
            }
        }
        var raw = vfio_iommu_type1_dirty_bitmap()
        raw.argsz = r.argsz; raw.flags = r.flags.rawValue
        return device.ioctl(containerFD, VFIO.iommuDirtyPages, &raw).map { _ in () }
    }

    public func dirtyBitmap() -> [IOVARange]? { lastBitmap }

    // MARK: Observations

    /// `VmLck` of this process in bytes.
    func vmLck() -> UInt64? { sys.readText("/proc/self/status").flatMap(Self.vmLck(status:)) }

    /// `VmLck:` of a `/proc/PID/status` text, in bytes (nil without a
    /// `VmLck:` line with digits, or past 2^64-1).
    ///
    /// Read as bytes, not `Character`s: splitting the ~1.4 KB text into
    /// lines of grapheme clusters cost more than the ioctl before it in
    /// the lane's TCG guests, where the fixtures check locked memory after
    /// many operations (1.3 ms a `check locked=` before, 0.5 ms after).
    public static func vmLck(status: String) -> UInt64? {
        let key: [UInt8] = Array("VmLck:".utf8)
        var bytes = status.utf8[...]
        while !bytes.isEmpty {
            let end = bytes.firstIndex(of: 0x0A) ?? bytes.endIndex
            let line = bytes[..<end]
            if line.starts(with: key) {
                var kb: UInt64 = 0, digits = 0
                for b in line.dropFirst(key.count) where b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") {
                    let (times10, o1) = kb.multipliedReportingOverflow(by: 10)
                    let (sum, o2) = times10.addingReportingOverflow(UInt64(b - UInt8(ascii: "0")))
                    if o1 || o2 { return nil }
                    kb = sum
                    digits += 1
                }
                guard digits > 0, kb <= UInt64.max / 1024 else { return nil }
                return kb * 1024
            }
            bytes = end == bytes.endIndex ? bytes[end...] : bytes[bytes.index(after: end)...]
        }
        return nil
    }

    public func lockedMemory() -> Observation<UInt64> {
        guard let now = vmLck() else { return .notObservable("no VmLck in /proc/self/status") }
        if now < lockedAtStart { return .notObservable("VmLck fell below its value at the start of the trace") }
        return .value(now - lockedAtStart)
    }

    /// `dma_entry_limit` at open minus `DMA_AVAIL`: the kernel has no
    /// ioctl that counts mappings. Not observable through iommufd: its
    /// DMA_AVAIL is always U32_MAX (`iommufd_fill_cap_dma_avail`) and no
    /// ioctl lists the areas of an IOAS (on 6.12.118 the subtraction read
    /// 0 after every map).
    public func mappingCount() -> Observation<UInt64> {
        if containerKind == .iommufd {
            return .notObservable("iommufd counts no entries (DMA_AVAIL is always U32_MAX) and no ioctl lists an IOAS's areas")
        }
        let answer = getInfo(argsz: 4096)
        // GET_INFO with a large argsz is EINVAL only when the container has
        // no type1 instance (never set, or released with its last group):
        // then it holds no mapping.
        if case .failure(.EINVAL) = answer { return .value(0) }
        guard case .success(let info) = answer, let avail = info.dmaAvail else {
            return .notObservable("GET_INFO has no DMA_AVAIL capability")
        }
        return .value(UInt64(entryLimitAtOpen) - UInt64(min(avail, entryLimitAtOpen)))
    }

    public func pageTableEntries(domain: String?) -> Observation<PTECounts> {
        switch walkTarget(domain: domain) {
        case .failure(let why): return .notObservable(why.message)
        case .success(let (port, device)): return HostPageTableWalk.entries(sys: sys, port: port, fd: &walkerFD, device: device)
        }
    }

    public func leafPageSize(iova: UInt64, domain: String?) -> Observation<UInt64?> {
        switch walkTarget(domain: domain) {
        case .failure(let why): return .notObservable(why.message)
        case .success(let (port, device)): return HostPageTableWalk.leaf(sys: sys, port: port, fd: &walkerFD, device: device, iova: iova)
        }
    }

    /// The host walker's port and the device whose page table is walked
    /// for the domain of group `domain` (nil: the only one attached).
    func walkTarget(domain: String?) -> Result<(port: String, device: String), BackendError> {
        guard let port = pageTableWalker else {
            return .failure(BackendError("the IOMMU page table cannot be read from inside this machine"))
        }
        let index: Int
        if let domain {
            guard let i = group(named: domain, binding: false) else { return .failure(BackendError("no real group is bound to \(domain)")) }
            index = i
        } else {
            guard let i = groups.firstIndex(where: { $0.name != nil }) else { return .failure(BackendError("no group is attached")) }
            if groups.filter({ $0.name != nil }).count > 1 { return .failure(BackendError("several domains: name one with domain=")) }
            index = i
        }
        guard let device = devices(of: groups[index].path).first else { return .failure(BackendError("group \(groups[index].path) has no device")) }
        return .success((port, device))
    }

    /// The PCI addresses of the devices in a group.
    func devices(of path: String) -> [String] {
        guard let number = Self.groupNumber(path) else { return [] }
        return sys.listDirectory("/sys/kernel/iommu_groups/\(number)/devices") ?? []
    }

    // MARK: The real IOMMU

    /// The IOMMU domain each real group gets, in order, as `DomainSpec`s
    /// the model can play (`IOMMUProbe.domain`), plus whether type1 accepts
    /// the group's MSI setup (isolated, or `allow_unsafe_interrupts`).
    /// Found by attaching each group alone to a scratch container
    /// (`SET_CONTAINER`, `SET_IOMMU(type1v2)`, `GET_INFO`,
    /// `CHECK_EXTENSION(DMA_CC)`, `UNSET_CONTAINER`), so the trace's
    /// container starts fresh.
    public func hardwareDomains() throws(BackendError) -> [DomainSpec] {
        var out: [DomainSpec] = []
        let iommu = iommuName
        for g in groups {
            var spec = try probe(g)
            spec.leaves = IOMMUProbe.leaves(iommu: iommu, pgsizes: spec.pgsizes)
            out.append(spec)
        }
        return out
    }

    func probe(_ g: Group) throws(BackendError) -> DomainSpec {
        let container: Int32
        switch device.open("/dev/vfio/vfio", O_RDWR) {
        case .success(let fd): container = fd
        case .failure(let e): throw BackendError("probing the IOMMU: cannot open /dev/vfio/vfio: \(e)")
        }
        defer { device.close(container) }
        var fd = container
        if case .failure(let e) = device.ioctl(g.fd, VFIO.groupSetContainer, &fd) {
            throw BackendError("probing the IOMMU of \(g.path): VFIO_GROUP_SET_CONTAINER: \(e)")
        }
        defer { _ = device.ioctl(g.fd, VFIO.groupUnsetContainer, value: 0) }
        switch device.ioctl(container, VFIO.setIOMMU, value: UInt(Extension.type1v2.rawValue)) {
        case .success: break
        case .failure(.EPERM):
            // Not isolated and not allowed: the domain's other properties
            // cannot be read, only this one.
            var spec = DomainSpec(name: "d0")
            spec.msiIsolated = false
            return spec
        case .failure(let e): throw BackendError("probing the IOMMU: VFIO_SET_IOMMU(type1v2): \(e)")
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        buffer[0] = 0x00; buffer[1] = 0x10  // argsz = 4096
        if case .failure(let e) = device.ioctl(container, VFIO.iommuGetInfo, bytes: &buffer) {
            throw BackendError("probing the IOMMU: VFIO_IOMMU_GET_INFO: \(e)")
        }
        let coherent: Bool
        switch device.ioctl(container, VFIO.checkExtension, value: UInt(Extension.dmaCC.rawValue)) {
        case .success(let v): coherent = v == 1
        case .failure(let e): throw BackendError("probing the IOMMU: CHECK_EXTENSION(DMA_CC): \(e)")
        }
        guard let spec = IOMMUProbe.domain(named: "d0", info: IOMMUInfo(bytes: buffer), coherent: coherent) else {
            throw BackendError("probing the IOMMU: GET_INFO has no IOVA range capability")
        }
        return spec
    }

    /// A name for the IOMMU behind the first group: `intel-iommu`,
    /// `virtio-iommu`, `amd-iommu`, or what sysfs calls it.
    public var iommuName: String {
        guard let number = Self.groupNumber(groups[0].path) else { return "iommu" }
        for device in devices(of: groups[0].path) {
            if let target = sys.readLink("/sys/kernel/iommu_groups/\(number)/devices/\(device)/iommu") {
                return IOMMUProbe.name(iommuLink: target)
            }
        }
        return "iommu"
    }
}

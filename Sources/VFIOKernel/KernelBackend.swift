import CVFIOSys
import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Real type1 ioctls on `/dev/vfio`: the same calls as the model, made on
/// a container holding one real group.
///
/// The trace's first domain is that group; the process state a trace sets
/// (memory, `RLIMIT_MEMLOCK`, `CAP_IPC_LOCK`, `dma_entry_limit`) is made
/// real. It maps only memory it allocated itself and undoes everything in
/// `close()` (the kernel also releases the container when the process
/// exits, whatever way it exits).
public final class KernelBackend: Backend {
    let groupPath: String
    var groupFD: Int32 = -1
    var containerFD: Int32 = -1
    /// The trace name bound to the real group, once the first domain came.
    var groupName: String? = nil
    var groupInContainer = false
    var regions: [MemoryRegion] = []
    var savedEntryLimit: String? = nil
    var entryLimitAtOpen: UInt32 = 65535
    var entryLimit: UInt32 = 65535
    public let release: String
    /// `VmLck` when the backend was made: locked memory is reported
    /// relative to it, so a trace sees only what its own container
    /// charges (as the model, which starts every trace at 0), whatever an
    /// earlier trace in this process left behind.
    var lockedAtStart: UInt64 = 0

    public var name: String { "kernel" }
    public var kernel: String { release }
    /// The model profile for this kernel's version.
    public var profile: KernelProfile { KernelVersion(parsing: release).map(KernelProfile.init) ?? .newest }

    static let entryLimitPath = "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit"

    /// `uname -r` of the running kernel.
    public static var runningRelease: String {
        var uts = utsname()
        uname(&uts)
        return withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    public init(groupPath: String) throws(BackendError) {
        self.groupPath = groupPath
        release = Self.runningRelease
        if geteuid() != 0 { throw BackendError("the kernel backend needs root (it opens \(groupPath), locks memory and sets module parameters)") }
        try checkGroupIsOurs()
        switch Sys.open(groupPath, O_RDWR) {
        case .success(let fd): groupFD = fd
        case .failure(let e): throw BackendError("cannot open \(groupPath): \(e)")
        }
        // struct vfio_group_status { argsz; flags }: VIABLE = 1, CONTAINER_SET = 2.
        var status: (UInt32, UInt32) = (8, 0)
        if case .failure(let e) = Sys.ioctl(groupFD, VFIO.groupGetStatus, &status) { close(); throw BackendError("VFIO_GROUP_GET_STATUS: \(e)") }
        if status.1 & 1 == 0 { close(); throw BackendError("group \(groupPath) is not viable: bind every device in it to vfio-pci") }
        if status.1 & 2 != 0 { close(); throw BackendError("group \(groupPath) already has a container; refusing to touch it") }
        switch Sys.open("/dev/vfio/vfio", O_RDWR) {
        case .success(let fd): containerFD = fd
        case .failure(let e): close(); throw BackendError("cannot open /dev/vfio/vfio: \(e)")
        }
        if case .success(let v) = Sys.ioctl(containerFD, VFIO.getAPIVersion, value: 0), v != VFIO.apiVersion {
            close(); throw BackendError("unexpected VFIO API version \(v)")
        }
        savedEntryLimit = Sys.readText(Self.entryLimitPath).map { String($0.filter { $0.isNumber }) }
        // The trace defaults: no CAP_IPC_LOCK, no memlock limit, 65535 entries.
        _ = Sys.setCapIPCLock(false)
        _ = Sys.setMemlock(nil)
        _ = Sys.writeText(Self.entryLimitPath, "65535")
        lockedAtStart = Self.vmLck() ?? 0
        KernelBackend.live = self
        // A signal must not leave mappings, pins or the module parameter
        // behind: the handler unmaps everything and restores the limit.
        cvfio_arm_cleanup(containerFD, groupFD, Self.entryLimitPath, savedEntryLimit ?? "")
    }

    /// Refuses a group whose devices are bound to anything but vfio-pci.
    func checkGroupIsOurs() throws(BackendError) {
        guard let number = groupPath.split(separator: "/").last, number.allSatisfy(\.isNumber) else {
            throw BackendError("\(groupPath) is not a VFIO group path such as /dev/vfio/12")
        }
        let devices = "/sys/kernel/iommu_groups/\(number)/devices"
        guard let dir = opendir(devices) else { throw BackendError("no IOMMU group \(number) (\(devices) is missing)") }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name.hasPrefix(".") { continue }
            var link = [Int8](repeating: 0, count: 512)
            let n = readlink("\(devices)/\(name)/driver", &link, link.count - 1)
            let driver = n > 0 ? String(decoding: link[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: "/").last.map(String.init) ?? "" : "none"
            if driver != "vfio-pci" { throw BackendError("device \(name) in group \(number) is bound to \(driver), not vfio-pci; refusing") }
        }
    }

    /// The backend alive in this process (its fds are also armed in the C
    /// signal handler, `cvfio_arm_cleanup`).
    nonisolated(unsafe) static var live: KernelBackend? = nil

    /// Undoes everything: mappings, container, fds, memory, module parameter.
    public func close() {
        if containerFD >= 0 {
            var unmap = RawUnmap(argsz: 24, flags: UnmapDMA.Flags.all.rawValue, iova: 0, size: 0)
            _ = Sys.ioctl(containerFD, VFIO.iommuUnmapDMA, &unmap)
        }
        if groupFD >= 0 && groupInContainer { _ = Sys.ioctl(groupFD, VFIO.groupUnsetContainer, value: 0) }
        if containerFD >= 0 { Sys.close(containerFD); containerFD = -1 }
        if groupFD >= 0 { Sys.close(groupFD); groupFD = -1 }
        for r in regions { Sys.munmap(r.vaddr, r.size) }
        regions = []
        if let saved = savedEntryLimit, !saved.isEmpty { _ = Sys.writeText(Self.entryLimitPath, saved); savedEntryLimit = nil }
        if KernelBackend.live === self {
            KernelBackend.live = nil
            cvfio_arm_cleanup(-1, -1, nil, nil)
        }
    }

    deinit { close() }

    // MARK: Setup

    public func setKernel(_ version: KernelVersion) throws(BackendError) {}

    public func setMemlock(_ bytes: UInt64?) throws(BackendError) {
        if let e = Sys.setMemlock(bytes) { throw BackendError("setrlimit(RLIMIT_MEMLOCK): \(e)") }
    }

    public func setCapIPCLock(_ on: Bool) throws(BackendError) {
        if let e = Sys.setCapIPCLock(on) { throw BackendError("capset(CAP_IPC_LOCK): \(e)") }
    }

    public func setDMAEntryLimit(_ limit: UInt32) throws(BackendError) {
        if let e = Sys.writeText(Self.entryLimitPath, String(limit)) { throw BackendError("writing \(Self.entryLimitPath): \(e)") }
        entryLimit = limit
    }

    public func addMemory(_ spec: MemorySpec) throws(BackendError) -> MemoryRegion {
        if spec.pfnmap { throw BackendError("pfnmap memory (a device BAR) is not supported by the kernel backend") }
        let shift = Int32(spec.pageSize.trailingZeroBitCount)
        // The frames cannot be chosen, but a trace that asks for memory that
        // is not physically contiguous gets 4K pages without transparent
        // hugepages, faulted in descending order: the closest the kernel
        // comes (the model is then given the frames really obtained).
        let order: Int32
        switch spec.layout {
        case .scattered?, .reversed?: order = 2
        case .chunks?: order = 1
        default: order = 0
        }
        if let e = Sys.mmapFixed(spec.vaddr, spec.size, pageShift: shift, order: order) {
            throw BackendError("mmap of \(formatSize(spec.size)) at \(formatAddress(spec.vaddr)) with \(formatSize(spec.pageSize)) pages: \(e)")
        }
        var region = MemoryRegion(vaddr: spec.vaddr, size: spec.size, pageSize: spec.pageSize, layout: .observed([]))
        regions.append(region)
        region.layout = .observed(try observeFrames(vaddr: spec.vaddr, size: spec.size))
        return region
    }

    /// The frames behind `[vaddr, vaddr+size)`, from `/proc/self/pagemap`
    /// (8 bytes per 4 KiB page: the pfn in bits 0–54, present in bit 63),
    /// joined into physically contiguous runs.
    func observeFrames(vaddr: UInt64, size: UInt64) throws(BackendError) -> [PhysicalRun] {
        let fd: Int32
        switch Sys.open("/proc/self/pagemap", O_RDONLY) {
        case .success(let f): fd = f
        case .failure(let e): throw BackendError("cannot open /proc/self/pagemap: \(e)")
        }
        defer { Sys.close(fd) }
        var runs: [PhysicalRun] = []
        let pages = size / 4096
        var page: UInt64 = 0
        while page < pages {
            let batch = min(pages - page, 65536)
            guard let bytes = Sys.pread(fd, count: Int(batch * 8), offset: (vaddr / 4096 + page) * 8) else {
                throw BackendError("cannot read /proc/self/pagemap")
            }
            for i in 0..<Int(batch) {
                var entry: UInt64 = 0
                for b in 0..<8 { entry |= UInt64(bytes[i * 8 + b]) << UInt64(8 * b) }
                guard entry >> 63 == 1, entry & ((1 << 55) - 1) != 0 else {
                    throw BackendError("page at \(formatAddress(vaddr + (page + UInt64(i)) * 4096)) is not present (or pfns are hidden: not root?)")
                }
                let phys = (entry & ((1 << 55) - 1)) << 12
                let offset = (page + UInt64(i)) * 4096
                if var last = runs.last, last.phys &+ last.length == phys, last.offset + last.length == offset {
                    last.length += 4096
                    runs[runs.count - 1] = last
                } else {
                    runs.append(PhysicalRun(offset: offset, phys: phys, length: 4096))
                }
            }
            page += batch
        }
        return runs
    }

    public func addObservedMemory(_ region: MemoryRegion) throws(BackendError) {
        throw BackendError("the kernel backend allocates its own memory; it must be the first backend")
    }

    // MARK: Ioctls

    public func attachGroup(_ spec: DomainSpec) -> Result<Void, Errno> {
        if groupName == nil { groupName = spec.name }
        guard spec.name == groupName else {
            // Only one real group is here; a second domain cannot be made real.
            return .failure(.ENODEV)
        }
        var fd = containerFD
        let r = Sys.ioctl(groupFD, VFIO.groupSetContainer, &fd)
        if case .success = r { groupInContainer = true }
        return r.map { _ in () }
    }

    public func detachGroup(_ name: String) -> Result<Void, Errno> {
        guard name == groupName else { return .failure(.EINVAL) }
        let r = Sys.ioctl(groupFD, VFIO.groupUnsetContainer, value: 0)
        if case .success = r { groupInContainer = false }
        return r.map { _ in () }
    }

    public func setIOMMU(_ type: Extension) -> Result<Void, Errno> {
        entryLimitAtOpen = entryLimit
        return Sys.ioctl(containerFD, VFIO.setIOMMU, value: UInt(type.rawValue)).map { _ in () }
    }

    public func checkExtension(_ ext: Extension) -> Result<UInt32, Errno> {
        Sys.ioctl(containerFD, VFIO.checkExtension, value: UInt(ext.rawValue)).map { UInt32($0) }
    }

    public func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno> {
        var buffer = [UInt8](repeating: 0, count: Int(max(argsz, 24)))
        for i in 0..<4 { buffer[i] = UInt8((argsz >> (8 * UInt32(i))) & 0xff) }
        return Sys.ioctl(containerFD, VFIO.iommuGetInfo, buffer: &buffer).map { _ in
            IOMMUInfo(bytes: Array(buffer.prefix(Int(max(argsz, 16)))))
        }
    }

    struct RawMap { var argsz: UInt32; var flags: UInt32; var vaddr: UInt64; var iova: UInt64; var size: UInt64 }
    struct RawUnmap { var argsz: UInt32; var flags: UInt32; var iova: UInt64; var size: UInt64 }

    public func mapDMA(_ r: MapDMA) -> Result<Void, Errno> {
        var raw = RawMap(argsz: r.argsz, flags: r.flags.rawValue, vaddr: r.vaddr, iova: r.iova, size: r.size)
        return Sys.ioctl(containerFD, VFIO.iommuMapDMA, &raw).map { _ in () }
    }

    public func unmapDMA(_ r: UnmapDMA) -> Result<UInt64, Errno> {
        if let bitmap = r.bitmap {
            return ioctlWithBitmap(VFIO.iommuUnmapDMA, argsz: r.argsz, flags: r.flags.rawValue,
                                   iova: r.iova, size: r.size, bitmap: bitmap).map(\.size)
        }
        var raw = RawUnmap(argsz: r.argsz, flags: r.flags.rawValue, iova: r.iova, size: r.size)
        return Sys.ioctl(containerFD, VFIO.iommuUnmapDMA, &raw).map { _ in raw.size }
    }

    /// `argsz, flags, iova, size` then a `struct vfio_bitmap` (48 bytes):
    /// an UNMAP with GET_DIRTY_BITMAP, and `struct vfio_iommu_type1_dirty_bitmap`
    /// followed by `struct vfio_iommu_type1_dirty_bitmap_get`.
    struct RawRangeBitmap { var argsz: UInt32; var flags: UInt32; var iova: UInt64; var size: UInt64
                            var pgsize: UInt64; var bitmapSize: UInt64; var data: UInt64 }

    /// An ioctl that takes a range and a bitmap buffer. The buffer is capped:
    /// the kernel checks the size the caller claims against what it needs
    /// before it writes.
    func ioctlWithBitmap(_ request: UInt, argsz: UInt32, flags: UInt32, iova: UInt64, size: UInt64,
                         bitmap: DMABitmap) -> Result<RawRangeBitmap, Errno> {
        var bits = [UInt8](repeating: 0, count: Int(min(bitmap.size, 1 << 26)))
        return bits.withUnsafeMutableBytes { buf in
            var raw = RawRangeBitmap(argsz: argsz, flags: flags, iova: iova, size: size, pgsize: bitmap.pgsize,
                                     bitmapSize: bitmap.size, data: UInt64(UInt(bitPattern: buf.baseAddress)))
            return Sys.ioctl(containerFD, request, &raw).map { _ in raw }
        }
    }

    public func dirtyPages(_ r: DirtyPages) -> Result<Void, Errno> {
        if let bitmap = r.bitmap {
            return ioctlWithBitmap(VFIO.iommuDirtyPages, argsz: r.argsz, flags: r.flags.rawValue,
                                   iova: r.iova, size: r.size, bitmap: bitmap).map { _ in () }
        }
        var raw: (UInt32, UInt32) = (r.argsz, r.flags.rawValue)
        return Sys.ioctl(containerFD, VFIO.iommuDirtyPages, &raw).map { _ in () }
    }

    // MARK: Observations

    /// `VmLck` of this process in bytes.
    static func vmLck() -> UInt64? {
        guard let status = Sys.readText("/proc/self/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmLck:") }),
              let kb = UInt64(line.dropFirst(6).filter { $0.isNumber }) else { return nil }
        return kb * 1024
    }

    public func lockedMemory() -> Observation<UInt64> {
        guard let now = Self.vmLck() else { return .notObservable("no VmLck in /proc/self/status") }
        if now < lockedAtStart { return .notObservable("VmLck fell below its value at the start of the trace") }
        return .value(now - lockedAtStart)
    }

    /// After `close()`: locked memory still charged beyond what the process
    /// had before this backend, i.e. what the kernel failed to uncharge
    /// when the container went. Nil when nothing stayed.
    public func lockedAfterRelease() -> UInt64? {
        guard containerFD < 0, let now = Self.vmLck(), now > lockedAtStart else { return nil }
        return now - lockedAtStart
    }

    /// `dma_entry_limit` at open minus `DMA_AVAIL`: the kernel has no
    /// ioctl that counts mappings.
    public func mappingCount() -> Observation<UInt64> {
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
        guard let port = HostPageTableWalk.port else {
            return .notObservable("the IOMMU page table cannot be read from inside this machine")
        }
        if let domain, domain != groupName {
            return .notObservable("only the real group's domain can be read, not \(domain)'s")
        }
        guard let device = groupDevices().first else { return .notObservable("group \(groupPath) has no device") }
        return HostPageTableWalk.entries(port: port, device: device)
    }

    /// The PCI addresses of the devices in the group.
    func groupDevices() -> [String] {
        guard let number = groupPath.split(separator: "/").last,
              let dir = opendir("/sys/kernel/iommu_groups/\(number)/devices") else { return [] }
        defer { closedir(dir) }
        var out: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if !name.hasPrefix(".") { out.append(name) }
        }
        return out.sorted()
    }

    // MARK: The real IOMMU

    /// The IOMMU domain the real group gets, as a `DomainSpec` the model
    /// can play: `pgsize_bitmap` from GET_INFO, the aperture from the first
    /// IOVA range's start to the last one's end, the holes between ranges
    /// as reserved regions, `coherent` from CHECK_EXTENSION(DMA_CC), and
    /// whether type1 accepts the group's MSI setup (isolated, or
    /// `allow_unsafe_interrupts`). Found once per process by attaching the
    /// group to a scratch container (`SET_CONTAINER`, `SET_IOMMU(type1v2)`,
    /// `GET_INFO`, `CHECK_EXTENSION`, `UNSET_CONTAINER`), so the trace's
    /// container starts fresh.
    public func hardwareDomain() throws(BackendError) -> DomainSpec {
        if let known = Self.probed[groupPath] { return known }
        let spec = try probe()
        Self.probed[groupPath] = spec
        return spec
    }

    nonisolated(unsafe) static var probed: [String: DomainSpec] = [:]

    func probe() throws(BackendError) -> DomainSpec {
        let container: Int32
        switch Sys.open("/dev/vfio/vfio", O_RDWR) {
        case .success(let fd): container = fd
        case .failure(let e): throw BackendError("probing the IOMMU: cannot open /dev/vfio/vfio: \(e)")
        }
        defer { Sys.close(container) }
        var fd = container
        if case .failure(let e) = Sys.ioctl(groupFD, VFIO.groupSetContainer, &fd) {
            throw BackendError("probing the IOMMU: VFIO_GROUP_SET_CONTAINER: \(e)")
        }
        defer { _ = Sys.ioctl(groupFD, VFIO.groupUnsetContainer, value: 0) }
        var spec = DomainSpec(name: "d0")
        switch Sys.ioctl(container, VFIO.setIOMMU, value: UInt(Extension.type1v2.rawValue)) {
        case .success: break
        case .failure(.EPERM):
            // Not isolated and not allowed: the domain's other properties
            // cannot be read, only this one.
            spec.msiIsolated = false
            return spec
        case .failure(let e): throw BackendError("probing the IOMMU: VFIO_SET_IOMMU(type1v2): \(e)")
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        buffer[0] = 0x00; buffer[1] = 0x10  // argsz = 4096
        if case .failure(let e) = Sys.ioctl(container, VFIO.iommuGetInfo, buffer: &buffer) {
            throw BackendError("probing the IOMMU: VFIO_IOMMU_GET_INFO: \(e)")
        }
        let info = IOMMUInfo(bytes: buffer)
        guard let ranges = info.iovaRanges, let first = ranges.first, let last = ranges.last else {
            throw BackendError("probing the IOMMU: GET_INFO has no IOVA range capability")
        }
        spec.pgsizes = PageSizes(rawValue: info.iovaPgsizes)
        spec.aperture = IOVARange(start: first.start, last: last.last)
        spec.reserved = zip(ranges, ranges.dropFirst()).compactMap { a, b in
            b.start > a.last &+ 1 ? IOVARange(start: a.last + 1, last: b.start - 1) : nil
        }
        switch Sys.ioctl(container, VFIO.checkExtension, value: UInt(Extension.dmaCC.rawValue)) {
        case .success(let v): spec.coherent = v == 1
        case .failure(let e): throw BackendError("probing the IOMMU: CHECK_EXTENSION(DMA_CC): \(e)")
        }
        return spec
    }

    /// A name for the IOMMU behind the group: `intel-iommu`,
    /// `virtio-iommu`, `amd-iommu`, or what sysfs calls it.
    public var iommuName: String {
        guard let number = groupPath.split(separator: "/").last,
              let dir = opendir("/sys/kernel/iommu_groups/\(number)/devices") else { return "iommu" }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name.hasPrefix(".") { continue }
            // The device's `iommu` link names the IOMMU's sysfs device:
            // dmar0 (VT-d), ivhd0 (AMD-Vi), or the virtio device of a
            // virtio-iommu (…/virtio0).
            var link = [Int8](repeating: 0, count: 512)
            let n = readlink("/sys/kernel/iommu_groups/\(number)/devices/\(name)/iommu", &link, link.count - 1)
            guard n > 0 else { continue }
            let target = String(decoding: link[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let leaf = target.split(separator: "/").last.map(String.init) ?? target
            if leaf.hasPrefix("dmar") { return "intel-iommu" }
            if leaf.hasPrefix("ivhd") { return "amd-iommu" }
            if target.contains("virtio") { return "virtio-iommu" }
            return leaf
        }
        return "iommu"
    }
}

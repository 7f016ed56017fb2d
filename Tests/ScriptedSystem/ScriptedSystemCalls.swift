import VFIOCore
import VFIOKernel

/// A machine made of tables, for tests of the kernel backend and the lane:
/// files, directories and links by path, an ioctl answer function, and a
/// log of every call that reached it.
public final class ScriptedSystemCalls: SystemCalls {
    public var files: [String: String] = [:]
    public var directories: [String: [String]] = [:]
    public var links: [String: String] = [:]
    public var isRoot = true
    public var release = "6.12.38+deb12-amd64"
    /// What `getrlimit(RLIMIT_MEMLOCK)` answers: nil is unlimited.
    public var memlockLimit: Result<UInt64?, Errno> = .success(nil)
    /// Answers an ioctl: `(fd, request, buffer or nil for a value ioctl,
    /// value)`; may write into the buffer as the kernel would.
    public var ioctlAnswer: (Int32, UInt, UnsafeMutableRawBufferPointer?, UInt) -> Result<Int32, Errno> = { _, _, _, _ in .success(0) }
    /// What `inChild` does: by default runs the body here.
    public var child: (() -> [UInt8]) -> Result<[UInt8], ChildFailure> = { .success($0()) }
    /// Every call, in order, in a short form (`open /dev/vfio/7`, `ioctl 7 0x3b6c`).
    public private(set) var log: [String] = []
    /// Paths that `open` refuses, with the errno.
    public var refuse: [String: Errno] = [:]
    var nextFD: Int32 = 10
    public private(set) var fds: [Int32: String] = [:]
    public private(set) var written: [String: [String]] = [:]
    public private(set) var armed: (container: Int32, groups: [Int32])? = nil

    public init() {}

    public func open(_ path: String, _ flags: Int32) -> Result<Int32, Errno> {
        log.append("open \(path)")
        if let e = refuse[path] { return .failure(e) }
        nextFD += 1
        fds[nextFD] = path
        return .success(nextFD)
    }
    public func close(_ fd: Int32) { log.append("close \(fds[fd] ?? String(fd))"); fds[fd] = nil }
    public func ioctl(_ fd: Int32, _ request: UInt, buffer: UnsafeMutableRawBufferPointer) -> Result<Int32, Errno> {
        log.append("ioctl \(fds[fd] ?? String(fd)) 0x\(String(request, radix: 16))")
        return ioctlAnswer(fd, request, buffer, 0)
    }
    public func ioctl(_ fd: Int32, _ request: UInt, value: UInt) -> Result<Int32, Errno> {
        log.append("ioctl \(fds[fd] ?? String(fd)) 0x\(String(request, radix: 16)) \(value)")
        return ioctlAnswer(fd, request, nil, value)
    }
    public func setCapIPCLock(_ on: Bool) -> Errno? { log.append("capset \(on)"); return nil }
    public func setMemlock(_ bytes: UInt64?) -> Errno? {
        log.append("setrlimit \(bytes.map(String.init) ?? "unlimited")")
        memlockLimit = .success(bytes)
        return nil
    }
    public func memlock() -> Result<UInt64?, Errno> { memlockLimit }
    public func mmapAnonymous(_ addr: UInt64, _ length: UInt64, pageShift: Int32, order: Int32) -> Errno? {
        log.append("mmap 0x\(String(addr, radix: 16)) \(length)" + (order == 0 ? "" : " order \(order)")); return nil
    }
    public func mmapFile(_ path: String, _ addr: UInt64, _ length: UInt64) -> Errno? {
        log.append("mmap \(path) 0x\(String(addr, radix: 16)) \(length)"); return nil
    }
    public func mmapLocked(_ length: UInt64) -> Result<UInt64, Errno> {
        log.append("mmap locked \(length)"); return .success(0x7e00_0000_0000)
    }
    public func munmap(_ addr: UInt64, _ length: UInt64) { log.append("munmap 0x\(String(addr, radix: 16))") }
    public func readText(_ path: String) -> String? { files[path] }
    public func writeText(_ path: String, _ text: String) -> Errno? {
        log.append("write \(path) \(text)")
        written[path, default: []].append(text)
        files[path] = text
        return nil
    }
    public func pread(_ fd: Int32, count: Int, offset: UInt64) -> [UInt8]? { nil }
    public func listDirectory(_ path: String) -> [String]? { directories[path] }
    public func readLink(_ path: String) -> String? { links[path] }
    public func openRawTTY(_ path: String) -> Result<Int32, Errno> { open(path, 0) }
    public func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Errno? { nil }
    public func readLine(_ fd: Int32, timeoutMs: Int32) -> Result<String, Errno> { .failure(.ETIMEDOUT) }
    public func armCleanup(container: Int32, groups: [Int32]) {
        log.append(container < 0 ? "disarm" : "arm")
        armed = container < 0 ? nil : (container, groups)
    }
    /// What a signal to this process would write back now.
    public private(set) var restoreArmed: [(path: String, value: String)] = []
    public func armRestore(_ values: [(path: String, value: String)], record: String) {
        log.append(values.isEmpty ? "disarm restore" : "arm restore " + values.map { "\($0.path)=\($0.value)" }.joined(separator: " "))
        restoreArmed = values
    }
    /// The parent `inChild(serving:)` was last given, while its child runs;
    /// `askParent` goes to it (nil: no parent serves requests).
    public var parent: ((ParentRequest) -> ParentAnswer)? = nil
    public func inChild(serving: ((ParentRequest) -> ParentAnswer)?, _ body: () -> [UInt8]) -> Result<[UInt8], ChildFailure> {
        let outer = parent
        parent = serving
        defer { parent = outer }
        return child(body)
    }
    public func askParent(_ request: ParentRequest) -> ParentAnswer? {
        log.append("ask \(request.line)")
        return parent?(request)
    }
    public func makeDirectory(_ path: String, mode: UInt32) -> Errno? {
        if directories[path] != nil { return .EEXIST }
        directories[path] = []
        return nil
    }
    /// Lock files another process holds: `lockFile` without waiting is
    /// EAGAIN; waiting calls `otherRunEnds` (which must release it, or the
    /// wait fails with EDEADLK here instead of hanging).
    public var lockedByOthers: Set<String> = []
    public var otherRunEnds: () -> Void = {}
    public func lockFile(_ path: String, wait: Bool) -> Result<Int32, Errno> {
        log.append("lock \(path)\(wait ? " (wait)" : "")")
        if lockedByOthers.contains(path) {
            guard wait else { return .failure(.EAGAIN) }
            otherRunEnds()
            if lockedByOthers.contains(path) { return .failure(.EDEADLK) }
        }
        return open(path, 0)
    }
    public func replaceFile(_ path: String, _ text: String) -> Errno? {
        log.append("record \(path)")
        files[path] = text
        return nil
    }
    public func removeFile(_ path: String) -> Errno? {
        log.append("unlink \(path)")
        return files.removeValue(forKey: path) == nil ? .ENOENT : nil
    }
    public var processID: Int32 = 4242
    /// Processes that exist besides this one.
    public var processes: Set<Int32> = []
    public func processExists(_ pid: Int32) -> Bool { pid == processID || processes.contains(pid) }
    public func kill(_ pid: Int32, _ signal: Int32) -> Errno? { log.append("kill \(pid) \(signal)"); return nil }
    public func trap() -> Never { fatalError("a scripted machine cannot trap") }
    public func pause(milliseconds: Int32) { log.append("sleep \(milliseconds) ms") }

    /// A host whose `dma_entry_limit` is `limit`, with viable groups
    /// (`VFIO_GROUP_GET_STATUS`: viable, no container), each with one
    /// device bound to vfio-pci: group 7 by default.
    public static func host(limit: String = "65535", groups: [Int] = [7]) -> ScriptedSystemCalls {
        let sys = ScriptedSystemCalls()
        sys.files["/sys/module/vfio_iommu_type1/parameters/dma_entry_limit"] = limit + "\n"
        for (i, g) in groups.enumerated() { sys.addGroup(g, devices: ["0000:00:0\(3 + i).0"]) }
        sys.ioctlAnswer = { _, request, buffer, _ in
            if request == VFIO.groupGetStatus, let buffer { buffer.storeBytes(of: UInt32(1), toByteOffset: 4, as: UInt32.self) }
            return .success(0)
        }
        return sys
    }

    /// A viable group `number` whose devices are bound to `driver`.
    public func addGroup(_ number: Int, devices: [String], driver: String = "vfio-pci") {
        directories["/sys/kernel/iommu_groups/\(number)/devices"] = devices
        for d in devices {
            links["/sys/kernel/iommu_groups/\(number)/devices/\(d)/driver"] = "../../../../bus/pci/drivers/\(driver)"
        }
    }
}

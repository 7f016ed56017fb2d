import CVFIOSys
import VFIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every system call the kernel backend and the lane make.
///
/// One protocol, so that a test can replace the machine: `LinuxSystemCalls`
/// makes the real calls, a scripted conformer answers them from a table.
/// Each requirement names the C call it stands for.
public protocol SystemCalls: AnyObject {
    /// `open(path, flags)`.
    func open(_ path: String, _ flags: Int32) -> Result<Int32, Errno>
    /// `close(fd)`.
    func close(_ fd: Int32)
    /// `ioctl(fd, request, &arg)` on a buffer: the struct's bytes in and out.
    func ioctl(_ fd: Int32, _ request: UInt, buffer: UnsafeMutableRawBufferPointer) -> Result<Int32, Errno>
    /// `ioctl(fd, request, value)`.
    func ioctl(_ fd: Int32, _ request: UInt, value: UInt) -> Result<Int32, Errno>
    /// `capset`: raise or drop `CAP_IPC_LOCK` in the effective set.
    func setCapIPCLock(_ on: Bool) -> Errno?
    /// `setrlimit(RLIMIT_MEMLOCK)`; nil is unlimited.
    func setMemlock(_ bytes: UInt64?) -> Errno?
    /// Anonymous memory at exactly `addr` (`mmap` with `MAP_FIXED_NOREPLACE`),
    /// of `1 << pageShift` pages; `order` as `cvfio_mmap_fixed`.
    func mmapAnonymous(_ addr: UInt64, _ length: UInt64, pageShift: Int32, order: Int32) -> Errno?
    /// `mmap` of a file (a PCI BAR's sysfs resource) at exactly `addr`, shared.
    func mmapFile(_ path: String, _ addr: UInt64, _ length: UInt64) -> Errno?
    /// `munmap`.
    func munmap(_ addr: UInt64, _ length: UInt64)
    /// The whole of a small file (`/proc/self/status`, a sysfs attribute).
    func readText(_ path: String) -> String?
    /// `write` of `text` to the file at `path`.
    func writeText(_ path: String, _ text: String) -> Errno?
    /// `pread` of exactly `count` bytes at `offset`.
    func pread(_ fd: Int32, count: Int, offset: UInt64) -> [UInt8]?
    /// The names in a directory, without `.` and `..` (`opendir`/`readdir`).
    func listDirectory(_ path: String) -> [String]?
    /// The target of a symbolic link (`readlink`).
    func readLink(_ path: String) -> String?
    /// `geteuid() == 0`.
    var isRoot: Bool { get }
    /// `uname -r`.
    var release: String { get }
    /// `getenv`.
    func environment(_ name: String) -> String?
    /// A serial port in raw mode (`cvfio_open_raw_tty`).
    func openRawTTY(_ path: String) -> Result<Int32, Errno>
    /// `write` of every byte, retrying short writes.
    func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Errno?
    /// One line from `fd`, waiting at most `timeoutMs` (`cvfio_read_line`).
    func readLine(_ fd: Int32, timeoutMs: Int32) -> Result<String, Errno>
    /// Arms (or, with `container` -1, disarms) the signal handler that
    /// unmaps everything, unsets the groups' container and writes
    /// `entryLimit` back to `entryLimitPath` (`cvfio_arm_cleanup`).
    func armCleanup(container: Int32, groups: [Int32], entryLimitPath: String?, entryLimit: String?)
    /// Runs `body` in a child process (`pipe`, `fork`, `read`, `waitpid`)
    /// and returns the bytes it produced, or why the child gave none.
    func inChild(_ body: () -> [UInt8]) -> Result<[UInt8], ChildFailure>
}

/// Why a child process gave no result.
public enum ChildFailure: Error, Sendable, Hashable, CustomStringConvertible {
    case couldNotStart(String)
    case signalled(Int32)
    case exited(Int32)
    public var description: String {
        switch self {
        case .couldNotStart(let why): "could not start the replay process: \(why)"
        case .signalled(let s): "the replay died of signal \(s)"
        case .exited(let c): "the replay exited with status \(c)"
        }
    }
}

extension SystemCalls {
    /// `ioctl(fd, request, &arg)` with `arg` a uapi struct passed by address.
    func ioctl<T>(_ fd: Int32, _ request: UInt, _ arg: inout T) -> Result<Int32, Errno> {
        withUnsafeMutableBytes(of: &arg) { ioctl(fd, request, buffer: $0) }
    }
    /// `ioctl(fd, request, buffer)` on a byte array.
    func ioctl(_ fd: Int32, _ request: UInt, bytes: inout [UInt8]) -> Result<Int32, Errno> {
        bytes.withUnsafeMutableBytes { ioctl(fd, request, buffer: $0) }
    }
}

/// The real system calls, through Glibc and the C shim.
public final class LinuxSystemCalls: SystemCalls {
    public init() {}

    static func result(_ r: Int32) -> Result<Int32, Errno> { r < 0 ? .failure(Errno(rawValue: -r)) : .success(r) }
    static func errno(_ r: Int32) -> Errno? { r < 0 ? Errno(rawValue: -r) : nil }

    public func open(_ path: String, _ flags: Int32) -> Result<Int32, Errno> {
        let fd = Glibc.open(path, flags | O_CLOEXEC)
        return fd < 0 ? .failure(Errno(rawValue: Glibc.errno)) : .success(fd)
    }

    public func close(_ fd: Int32) { _ = Glibc.close(fd) }

    public func ioctl(_ fd: Int32, _ request: UInt, buffer: UnsafeMutableRawBufferPointer) -> Result<Int32, Errno> {
        Self.result(cvfio_ioctl_ptr(fd, request, buffer.baseAddress))
    }

    public func ioctl(_ fd: Int32, _ request: UInt, value: UInt) -> Result<Int32, Errno> {
        Self.result(cvfio_ioctl_val(fd, request, value))
    }

    public func setCapIPCLock(_ on: Bool) -> Errno? { Self.errno(cvfio_set_cap_ipc_lock(on ? 1 : 0)) }

    public func setMemlock(_ bytes: UInt64?) -> Errno? { Self.errno(cvfio_set_memlock(bytes ?? 0, bytes == nil ? 1 : 0)) }

    public func mmapAnonymous(_ addr: UInt64, _ length: UInt64, pageShift: Int32, order: Int32) -> Errno? {
        Self.errno(cvfio_mmap_fixed(addr, length, pageShift, order))
    }

    public func mmapFile(_ path: String, _ addr: UInt64, _ length: UInt64) -> Errno? {
        Self.errno(path.withCString { cvfio_mmap_file_fixed($0, addr, length) })
    }

    public func munmap(_ addr: UInt64, _ length: UInt64) { _ = cvfio_munmap(addr, length) }

    public func readText(_ path: String) -> String? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { return nil }
        defer { _ = Glibc.close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    public func writeText(_ path: String, _ text: String) -> Errno? {
        let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { return Errno(rawValue: Glibc.errno) }
        defer { _ = Glibc.close(fd) }
        return writeAll(fd, Array(text.utf8))
    }

    public func pread(_ fd: Int32, count: Int, offset: UInt64) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let r = buf.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress! + got, count - got, off_t(offset) + off_t(got)) }
            if r < 0 && Glibc.errno == EINTR { continue }
            if r <= 0 { return nil }
            got += r
        }
        return buf
    }

    public func listDirectory(_ path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public func readLink(_ path: String) -> String? {
        var link = [Int8](repeating: 0, count: 4096)
        let n = Glibc.readlink(path, &link, link.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: link[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var isRoot: Bool { geteuid() == 0 }

    public var release: String {
        var uts = utsname()
        uname(&uts)
        return withUnsafeBytes(of: &uts.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    public func environment(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    public func openRawTTY(_ path: String) -> Result<Int32, Errno> { Self.result(path.withCString { cvfio_open_raw_tty($0) }) }

    public func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Errno? {
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 { return Errno(rawValue: n < 0 ? Glibc.errno : EIO) }
            sent += n
        }
        return nil
    }

    public func readLine(_ fd: Int32, timeoutMs: Int32) -> Result<String, Errno> {
        var line = [CChar](repeating: 0, count: 4096)
        let n = cvfio_read_line(fd, &line, Int32(line.count), timeoutMs)
        if n < 0 { return .failure(Errno(rawValue: -n)) }
        return .success(String(decoding: line.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    public func armCleanup(container: Int32, groups: [Int32], entryLimitPath: String?, entryLimit: String?) {
        groups.withUnsafeBufferPointer { fds in
            cvfio_arm_cleanup(container, fds.baseAddress, Int32(fds.count), entryLimitPath, entryLimit)
        }
    }

    public func inChild(_ body: () -> [UInt8]) -> Result<[UInt8], ChildFailure> {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return .failure(.couldNotStart("pipe: \(Errno(rawValue: Glibc.errno))")) }
        fflush(nil)  // every stream: the child must not write the parent's buffers again
        let pid = fork()
        if pid == 0 {
            Glibc.close(fds[0])
            let failed = writeAll(fds[1], body()) != nil
            Glibc.close(fds[1])
            _exit(failed ? 3 : 0)
        }
        Glibc.close(fds[1])
        if pid < 0 {
            let e = Errno(rawValue: Glibc.errno)
            Glibc.close(fds[0])
            return .failure(.couldNotStart("fork: \(e)"))
        }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 { break }
            data += buf[0..<n]
        }
        Glibc.close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && Glibc.errno == EINTR {}
        let signal = status & 0x7f
        let code = (status >> 8) & 0xff
        if signal != 0 { return .failure(.signalled(signal)) }
        if code != 0 { return .failure(.exited(code)) }
        return .success(data)
    }
}

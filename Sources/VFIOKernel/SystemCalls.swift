import CVFIOSys
import VFIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every system call the kernel backend and the lane make, by concern.
///
/// So that a test can replace the machine: `LinuxSystemCalls` makes the
/// real calls, a scripted conformer answers them from a table, and fault
/// injection wraps only `DeviceIO`. Each requirement names the C call it
/// stands for.
public protocol SystemCalls: DeviceIO, ProcessMemory, HostFiles, SerialPort, ProcessControl {}

/// File descriptors and the ioctls made on them: the seam between the
/// kernel backend and the devices (`/dev/vfio/N`, `/dev/iommu`), where
/// fault injection stands.
public protocol DeviceIO: AnyObject {
    /// `open(path, flags)`.
    func open(_ path: String, _ flags: Int32) -> Result<Int32, Errno>
    /// `close(fd)`.
    func close(_ fd: Int32)
    /// `ioctl(fd, request, &arg)` on a buffer: the struct's bytes in and out.
    func ioctl(_ fd: Int32, _ request: UInt, buffer: UnsafeMutableRawBufferPointer) -> Result<Int32, Errno>
    /// `ioctl(fd, request, value)`.
    func ioctl(_ fd: Int32, _ request: UInt, value: UInt) -> Result<Int32, Errno>
    /// `pread` of exactly `count` bytes at `offset`.
    func pread(_ fd: Int32, count: Int, offset: UInt64) -> [UInt8]?
}

/// This process's memory and its limits: what a trace's `memory`,
/// `memlock` and `cap-ipc-lock` statements set up.
public protocol ProcessMemory: AnyObject {
    /// `capset`: raise or drop `CAP_IPC_LOCK` in the effective set.
    func setCapIPCLock(_ on: Bool) -> Errno?
    /// `setrlimit(RLIMIT_MEMLOCK)`; nil is unlimited.
    func setMemlock(_ bytes: UInt64?) -> Errno?
    /// `getrlimit(RLIMIT_MEMLOCK)`: the soft limit, the one the kernel
    /// checks a pin against; nil is unlimited.
    func memlock() -> Result<UInt64?, Errno>
    /// Anonymous memory at exactly `addr` (`mmap` with `MAP_FIXED_NOREPLACE`),
    /// of `1 << pageShift` pages; `order` as `cvfio_mmap_fixed`.
    func mmapAnonymous(_ addr: UInt64, _ length: UInt64, pageShift: Int32, order: Int32) -> Errno?
    /// `mmap` of a file (a PCI BAR's sysfs resource) at exactly `addr`, shared.
    func mmapFile(_ path: String, _ addr: UInt64, _ length: UInt64) -> Errno?
    /// Anonymous memory wherever the kernel puts it, locked (`mlock`): it
    /// counts in `mm->locked_vm` until unmapped. Its address.
    func mmapLocked(_ length: UInt64) -> Result<UInt64, Errno>
    /// `munmap`.
    func munmap(_ addr: UInt64, _ length: UInt64)
}

/// The host's files: sysfs and procfs attributes, the run's lock and
/// record under `/run/vfio-sim`.
public protocol HostFiles: AnyObject {
    /// The whole of a small file (`/proc/self/status`, a sysfs attribute).
    func readText(_ path: String) -> String?
    /// `write` of `text` to the file at `path`.
    func writeText(_ path: String, _ text: String) -> Errno?
    /// The names in a directory, without `.` and `..` (`opendir`/`readdir`).
    func listDirectory(_ path: String) -> [String]?
    /// The target of a symbolic link (`readlink`).
    func readLink(_ path: String) -> String?
    /// `uname -r`.
    var release: String { get }
    /// `mkdir(path, mode)`.
    func makeDirectory(_ path: String, mode: UInt32) -> Errno?
    /// `open(path, O_RDWR|O_CREAT, 0600)` and `flock(LOCK_EX)` (with
    /// `LOCK_NB` unless `wait`): the fd holding the lock (`cvfio_lock_file`).
    func lockFile(_ path: String, wait: Bool) -> Result<Int32, Errno>
    /// A whole file replaced atomically and durably: written to `path.new`,
    /// `fsync`, `rename` (`cvfio_replace_file`).
    func replaceFile(_ path: String, _ text: String) -> Errno?
    /// `unlink(path)`.
    func removeFile(_ path: String) -> Errno?
}

/// A serial port to a program on the host (the lane's page-table walker).
public protocol SerialPort: AnyObject {
    /// A serial port in raw mode (`cvfio_open_raw_tty`).
    func openRawTTY(_ path: String) -> Result<Int32, Errno>
    /// `write` of every byte, retrying short writes.
    func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Errno?
    /// One line from `fd`, waiting at most `timeoutMs` (`cvfio_read_line`).
    func readLine(_ fd: Int32, timeoutMs: Int32) -> Result<String, Errno>
}

/// Processes: the child per trace and its requests to the supervisor,
/// signals, and the handlers that clean up when one arrives.
public protocol ProcessControl: AnyObject {
    /// `geteuid() == 0`.
    var isRoot: Bool { get }
    /// Arms (or, with `container` -1, disarms) the signal handler that
    /// unmaps everything and unsets the groups' container (`cvfio_arm_cleanup`).
    func armCleanup(container: Int32, groups: [Int32])
    /// Arms (or, with no values, disarms) the signal handler that writes
    /// each value back to its path and removes `record` (`cvfio_arm_restore`).
    func armRestore(_ values: [(path: String, value: String)], record: String)
    /// Runs `body` in a child process (`pipe`, `fork`, `read`, `waitpid`)
    /// and returns the bytes it produced, or why the child gave none. The
    /// child dies with this process (`PR_SET_PDEATHSIG`). While it runs,
    /// each line the child sends with `askParent` is answered with
    /// `serving`'s line (`poll` on both pipes); without `serving` the
    /// child's `askParent` gives nil.
    func inChild(serving: ((ParentRequest) -> ParentAnswer)?, _ body: () -> [UInt8]) -> Result<[UInt8], ChildFailure>
    /// Runs each body in a child process of its own, all at once, and
    /// returns what each produced, in order (as `inChild`, without
    /// requests). A system that cannot run them side by side runs them one
    /// after another.
    func inChildren(_ bodies: [() -> [UInt8]]) -> [Result<[UInt8], ChildFailure>]
    /// In a child of `inChild(serving:)`: a request to the parent and its
    /// answer (one line each on the pipe: `ParentRequest.line`); nil when
    /// no parent serves requests.
    func askParent(_ request: ParentRequest) -> ParentAnswer?
    /// `getpid()`.
    var processID: Int32 { get }
    /// `kill(pid, 0)` succeeds (or fails with EPERM): the process exists.
    func processExists(_ pid: Int32) -> Bool
    /// `kill(pid, signal)`.
    func kill(_ pid: Int32, _ signal: Int32) -> Errno?
    /// A trap instruction (`cvfio_trap`): dies of SIGILL as a crashing
    /// program does. Only fault injection calls it.
    func trap() -> Never
    /// `nanosleep`.
    func pause(milliseconds: Int32)
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

extension ProcessControl {
    /// One after another (test systems).
    public func inChildren(_ bodies: [() -> [UInt8]]) -> [Result<[UInt8], ChildFailure>] {
        bodies.map { inChild($0) }
    }

    /// Runs `body` in a child process that cannot ask this one anything.
    public func inChild(_ body: () -> [UInt8]) -> Result<[UInt8], ChildFailure> { inChild(serving: nil, body) }
}

extension DeviceIO {
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

    public func memlock() -> Result<UInt64?, Errno> {
        var bytes: UInt64 = 0
        let r = cvfio_get_memlock(&bytes)
        if r < 0 { return .failure(Errno(rawValue: -r)) }
        return .success(r == 1 ? nil : bytes)
    }

    public func mmapAnonymous(_ addr: UInt64, _ length: UInt64, pageShift: Int32, order: Int32) -> Errno? {
        Self.errno(cvfio_mmap_fixed(addr, length, pageShift, order))
    }

    public func mmapFile(_ path: String, _ addr: UInt64, _ length: UInt64) -> Errno? {
        Self.errno(path.withCString { cvfio_mmap_file_fixed($0, addr, length) })
    }

    public func mmapLocked(_ length: UInt64) -> Result<UInt64, Errno> {
        var addr: UInt64 = 0
        let r = cvfio_mmap_locked(length, &addr)
        return r < 0 ? .failure(Errno(rawValue: -r)) : .success(addr)
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

    public func armCleanup(container: Int32, groups: [Int32]) {
        groups.withUnsafeBufferPointer { fds in cvfio_arm_cleanup(container, fds.baseAddress, Int32(fds.count)) }
    }

    public func armRestore(_ values: [(path: String, value: String)], record: String) {
        // strdup'd copies: the handler copies them in before this returns.
        let paths = values.map { strdup($0.path) }, texts = values.map { strdup($0.value) }
        defer { (paths + texts).forEach { free($0) } }
        let p = paths.map { UnsafePointer<CChar>($0) }, t = texts.map { UnsafePointer<CChar>($0) }
        p.withUnsafeBufferPointer { pp in
            t.withUnsafeBufferPointer { tt in cvfio_arm_restore(pp.baseAddress, tt.baseAddress, Int32(values.count), record) }
        }
    }

    /// In a child of `inChild(serving:)`: the write end of its request pipe
    /// and the read end of its answer pipe.
    var parentChannel: (request: Int32, answer: Int32)? = nil

    public func askParent(_ request: ParentRequest) -> ParentAnswer? {
        guard let channel = parentChannel else { return nil }
        let line = request.line + "\n"
        if writeAll(channel.request, Array(line.utf8)) != nil { return nil }
        var answer: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = Glibc.read(channel.answer, &byte, 1)
            if n < 0 && Glibc.errno == EINTR { continue }
            if n <= 0 { return nil }
            if byte == UInt8(ascii: "\n") { return ParentAnswer(line: String(decoding: answer, as: UTF8.self)) }
            answer.append(byte)
        }
    }

    public func inChild(serving: ((ParentRequest) -> ParentAnswer)?, _ body: () -> [UInt8]) -> Result<[UInt8], ChildFailure> {
        // report: child → parent; request: child → parent; answer: parent → child.
        var report: [Int32] = [-1, -1], request: [Int32] = [-1, -1], answer: [Int32] = [-1, -1]
        func closeAll() { for fd in report + request + answer where fd >= 0 { Glibc.close(fd) } }
        guard pipe(&report) == 0, serving == nil || (pipe(&request) == 0 && pipe(&answer) == 0) else {
            let e = Errno(rawValue: Glibc.errno)
            closeAll()
            return .failure(.couldNotStart("pipe: \(e)"))
        }
        let parent = getpid()
        fflush(nil)  // every stream: the child must not write the parent's buffers again
        let pid = fork()
        if pid == 0 {
            _ = cvfio_die_with_parent(parent)
            Glibc.close(report[0])
            if serving != nil {
                Glibc.close(request[0]); Glibc.close(answer[1])
                parentChannel = (request[1], answer[0])
            } else {
                parentChannel = nil
            }
            let failed = writeAll(report[1], body()) != nil
            Glibc.close(report[1])
            _exit(failed ? 3 : 0)
        }
        if pid < 0 {
            let e = Errno(rawValue: Glibc.errno)
            closeAll()
            return .failure(.couldNotStart("fork: \(e)"))
        }
        Glibc.close(report[1])
        if serving != nil { Glibc.close(request[1]); Glibc.close(answer[0]) }
        var data: [UInt8] = []
        var pending: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        var reportOpen = true, requestsOpen = serving != nil
        while reportOpen || requestsOpen {
            var fds = [pollfd(fd: reportOpen ? report[0] : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: requestsOpen ? request[0] : -1, events: Int16(POLLIN), revents: 0)]
            let r = poll(&fds, 2, -1)
            if r < 0 { if Glibc.errno == EINTR { continue } else { break } }
            if reportOpen && fds[0].revents != 0 {
                let n = buf.withUnsafeMutableBytes { Glibc.read(report[0], $0.baseAddress, $0.count) }
                if n < 0 && Glibc.errno == EINTR { continue }
                if n <= 0 { reportOpen = false } else { data += buf[0..<n] }
            }
            if requestsOpen && fds[1].revents != 0, let serving {
                let n = buf.withUnsafeMutableBytes { Glibc.read(request[0], $0.baseAddress, $0.count) }
                if n < 0 && Glibc.errno == EINTR { continue }
                if n <= 0 { requestsOpen = false; continue }
                pending += buf[0..<n]
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self)
                    pending.removeSubrange(...newline)
                    let reply = (ParentRequest(line: line).map(serving) ?? .notUnderstood(line)).line + "\n"
                    _ = writeAll(answer[1], Array(reply.utf8))
                }
            }
        }
        Glibc.close(report[0])
        if serving != nil { Glibc.close(request[0]); Glibc.close(answer[1]) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && Glibc.errno == EINTR {}
        let signal = status & 0x7f
        let code = (status >> 8) & 0xff
        if signal != 0 { return .failure(.signalled(signal)) }
        if code != 0 { return .failure(.exited(code)) }
        return .success(data)
    }

    public func inChildren(_ bodies: [() -> [UInt8]]) -> [Result<[UInt8], ChildFailure>] {
        var results = [Result<[UInt8], ChildFailure>?](repeating: nil, count: bodies.count)
        var reads = [Int32](repeating: -1, count: bodies.count)
        var pids = [pid_t](repeating: -1, count: bodies.count)
        let parent = getpid()
        fflush(nil)
        for (i, body) in bodies.enumerated() {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else {
                results[i] = .failure(.couldNotStart("pipe: \(Errno(rawValue: Glibc.errno))"))
                continue
            }
            let pid = fork()
            if pid == 0 {
                _ = cvfio_die_with_parent(parent)
                // The read ends of the children started before this one.
                for fd in reads where fd >= 0 { Glibc.close(fd) }
                Glibc.close(fds[0])
                parentChannel = nil
                let failed = writeAll(fds[1], body()) != nil
                Glibc.close(fds[1])
                _exit(failed ? 3 : 0)
            }
            Glibc.close(fds[1])
            if pid < 0 {
                results[i] = .failure(.couldNotStart("fork: \(Errno(rawValue: Glibc.errno))"))
                Glibc.close(fds[0])
                continue
            }
            reads[i] = fds[0]
            pids[i] = pid
        }
        // Every pipe drained side by side: a child blocks when its pipe is
        // full, so reading them one at a time could wait forever.
        var data = [[UInt8]](repeating: [], count: bodies.count)
        var buf = [UInt8](repeating: 0, count: 65536)
        while reads.contains(where: { $0 >= 0 }) {
            var fds = reads.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let r = poll(&fds, nfds_t(fds.count), -1)
            if r < 0 { if Glibc.errno == EINTR { continue } else { break } }
            for (i, p) in fds.enumerated() where p.fd >= 0 && p.revents != 0 {
                let n = buf.withUnsafeMutableBytes { Glibc.read(p.fd, $0.baseAddress, $0.count) }
                if n < 0 && Glibc.errno == EINTR { continue }
                if n <= 0 { Glibc.close(p.fd); reads[i] = -1 } else { data[i] += buf[0..<n] }
            }
        }
        for fd in reads where fd >= 0 { Glibc.close(fd) }
        for (i, pid) in pids.enumerated() where pid > 0 {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && Glibc.errno == EINTR {}
            let signal = status & 0x7f, code = (status >> 8) & 0xff
            results[i] = signal != 0 ? .failure(.signalled(signal)) : code != 0 ? .failure(.exited(code)) : .success(data[i])
        }
        return results.map { $0 ?? .failure(.couldNotStart("no child")) }
    }

    public func makeDirectory(_ path: String, mode: UInt32) -> Errno? {
        mkdir(path, mode_t(mode)) == 0 ? nil : Errno(rawValue: Glibc.errno)
    }

    public func lockFile(_ path: String, wait: Bool) -> Result<Int32, Errno> {
        Self.result(cvfio_lock_file(path, wait ? 1 : 0))
    }

    public func replaceFile(_ path: String, _ text: String) -> Errno? { Self.errno(cvfio_replace_file(path, text)) }

    public func removeFile(_ path: String) -> Errno? { unlink(path) == 0 ? nil : Errno(rawValue: Glibc.errno) }

    public var processID: Int32 { getpid() }

    public func processExists(_ pid: Int32) -> Bool { pid > 0 && (Glibc.kill(pid, 0) == 0 || Glibc.errno == EPERM) }

    public func kill(_ pid: Int32, _ signal: Int32) -> Errno? { Glibc.kill(pid, signal) == 0 ? nil : Errno(rawValue: Glibc.errno) }

    public func trap() -> Never { cvfio_trap() }

    public func pause(milliseconds: Int32) {
        var t = timespec(tv_sec: Int(milliseconds / 1000), tv_nsec: Int(milliseconds % 1000) * 1_000_000)
        var left = timespec()
        while nanosleep(&t, &left) < 0 && Glibc.errno == EINTR { t = left }
    }
}

// File and terminal I/O for the command-line tools (vfio-sim, vfio-bench),
// through Glibc only.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads a whole file, or says why it cannot (no such file, a directory,
/// no permission), in the words of `strerror`.
public struct FileError: Error, Sendable {
    public var message: String
    public init(message: String) { self.message = message }
}

public func readFile(_ path: String) -> Result<[UInt8], FileError> {
    // `-` is standard input. Otherwise open without blocking, so a FIFO
    // with no writer cannot hang the tool, then read in blocking mode.
    let fd = path == "-" ? 0 : open(path, O_RDONLY | O_NONBLOCK)
    if fd < 0 { return .failure(FileError(message: "cannot open: \(String(cString: strerror(errno)))")) }
    defer { if fd != 0 { close(fd) } }
    var st = stat()
    if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR { return .failure(FileError(message: "is a directory, not a trace file")) }
    if fd != 0 { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            return .failure(FileError(message: "cannot read: \(String(cString: strerror(errno)))"))
        }
        if n == 0 { break }
        // A trace larger than this is not a trace (/dev/zero, a disk).
        if out.count + n > maxTraceBytes { return .failure(FileError(message: "larger than 1 GiB, not a trace file")) }
        out.append(contentsOf: buffer[0..<n])
    }
    return .success(out)
}

/// The largest trace file read.
public let maxTraceBytes = 1 << 30

/// Writes `text` to a file, replacing it.
public func writeFile(_ path: String, _ text: String) -> String? {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd < 0 { return "cannot write \(path): \(String(cString: strerror(errno)))" }
    defer { close(fd) }
    var bytes = Array(text.utf8)
    var at = 0
    while at < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + at, $0.count - at) }
        if n < 0 { if errno == EINTR { continue }; return "cannot write \(path): \(String(cString: strerror(errno)))" }
        at += n
    }
    return nil
}

/// Standard output and error without Foundation.
public func printErr(_ text: String) {
    var t = text
    if !t.hasSuffix("\n") { t += "\n" }
    writeAll(2, Array(t.utf8))
}

public func printOut(_ text: String) { writeAll(1, Array(text.utf8)) }

/// Writes every byte to `fd` (stdout, stderr), retrying short writes.
public func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var at = 0
    while at < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + at, $0.count - at) }
        if n < 0 { if errno == EINTR { continue }; return }
        at += n
    }
}

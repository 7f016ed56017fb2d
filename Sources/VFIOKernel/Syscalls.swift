import CVFIOSys
import VFIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every system call the kernel backend makes goes through here: the one
/// place to read what reaches the kernel, and the one place to intercept.
enum Sys {
    static func result(_ r: Int32) -> Result<Int32, Errno> { r < 0 ? .failure(Errno(rawValue: -r)) : .success(r) }

    /// `ioctl(fd, request, &arg)` with `arg` passed by address.
    static func ioctl<T>(_ fd: Int32, _ request: UInt, _ arg: inout T) -> Result<Int32, Errno> {
        result(withUnsafeMutablePointer(to: &arg) { cvfio_ioctl_ptr(fd, UInt(request), UnsafeMutableRawPointer($0)) })
    }

    /// `ioctl(fd, request, buffer)`.
    static func ioctl(_ fd: Int32, _ request: UInt, buffer: inout [UInt8]) -> Result<Int32, Errno> {
        result(buffer.withUnsafeMutableBytes { cvfio_ioctl_ptr(fd, UInt(request), $0.baseAddress) })
    }

    /// `ioctl(fd, request, value)`.
    static func ioctl(_ fd: Int32, _ request: UInt, value: UInt) -> Result<Int32, Errno> {
        result(cvfio_ioctl_val(fd, UInt(request), value))
    }

    static func open(_ path: String, _ flags: Int32) -> Result<Int32, Errno> {
        let fd = Glibc.open(path, flags)
        return fd < 0 ? .failure(Errno(rawValue: errno)) : .success(fd)
    }

    static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    static func setCapIPCLock(_ on: Bool) -> Errno? {
        let r = cvfio_set_cap_ipc_lock(on ? 1 : 0)
        return r < 0 ? Errno(rawValue: -r) : nil
    }

    static func setMemlock(_ bytes: UInt64?) -> Errno? {
        let r = cvfio_set_memlock(bytes ?? 0, bytes == nil ? 1 : 0)
        return r < 0 ? Errno(rawValue: -r) : nil
    }

    /// `order`: see `cvfio_mmap_fixed` (0 at once, 1 page by page without
    /// transparent hugepages, 2 the same in descending order).
    static func mmapFixed(_ addr: UInt64, _ length: UInt64, pageShift: Int32, order: Int32 = 0) -> Errno? {
        let r = cvfio_mmap_fixed(addr, length, pageShift, order)
        return r < 0 ? Errno(rawValue: -r) : nil
    }

    static func munmap(_ addr: UInt64, _ length: UInt64) { _ = cvfio_munmap(addr, length) }

    /// A small text file such as `/proc/self/status` or a sysfs attribute.
    static func readText(_ path: String) -> String? {
        let fd = Glibc.open(path, O_RDONLY)
        if fd < 0 { return nil }
        defer { _ = Glibc.close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func writeText(_ path: String, _ text: String) -> Errno? {
        let fd = Glibc.open(path, O_WRONLY)
        if fd < 0 { return Errno(rawValue: errno) }
        defer { _ = Glibc.close(fd) }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return n < 0 ? Errno(rawValue: errno) : nil
    }

    /// `pread` of `count` bytes at `offset` (for `/proc/self/pagemap`).
    static func pread(_ fd: Int32, count: Int, offset: UInt64) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let r = buf.withUnsafeMutableBytes { Glibc.pread(fd, $0.baseAddress! + got, count - got, off_t(offset) + off_t(got)) }
            if r <= 0 { return nil }
            got += r
        }
        return buf
    }
}

// Every system call `vfio-bench kernel-costs` makes goes through here (the
// bench target does not link VFIOKernel): the one place to read what
// reaches the kernel.

import VFIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

enum RawSys {
    static func lastErrno() -> Errno { Errno(rawValue: errno) }

    static func open(_ path: String, _ flags: Int32) -> Result<Int32, Errno> {
        let fd = Glibc.open(path, flags)
        return fd < 0 ? .failure(lastErrno()) : .success(fd)
    }

    static func close(_ fd: Int32) { _ = Glibc.close(fd) }

    /// `ioctl(fd, request, &arg)`.
    static func ioctl<T>(_ fd: Int32, _ request: UInt, _ arg: inout T) -> Result<Int32, Errno> {
        let r = withUnsafeMutablePointer(to: &arg) { Glibc.ioctl(fd, request, UnsafeMutableRawPointer($0)) }
        return r < 0 ? .failure(lastErrno()) : .success(r)
    }

    /// `ioctl(fd, request, buffer)`.
    static func ioctl(_ fd: Int32, _ request: UInt, buffer: inout [UInt8]) -> Result<Int32, Errno> {
        let r = buffer.withUnsafeMutableBytes { Glibc.ioctl(fd, request, $0.baseAddress!) }
        return r < 0 ? .failure(lastErrno()) : .success(r)
    }

    /// `ioctl(fd, request, value)`.
    static func ioctl(_ fd: Int32, _ request: UInt, value: Int32) -> Result<Int32, Errno> {
        let r = Glibc.ioctl(fd, request, value)
        return r < 0 ? .failure(lastErrno()) : .success(r)
    }

    static let mapHugeShift: Int32 = 26
    static let mapHugetlb: Int32 = 0x40000
    static let mapPopulate: Int32 = 0x8000
    static let madvNoHugepage: Int32 = 15
    static let mapFixedNoreplace: Int32 = 0x100000

    /// Anonymous private memory of `size` bytes backed by `pageSize` pages
    /// (4 KiB with transparent hugepages off for it, or hugetlb 2 MiB /
    /// 1 GiB), every page faulted in.
    /// At `fixedAt` when given (never replacing a mapping).
    static func mapMemory(size: UInt64, pageSize: UInt64, fixedAt: UInt64? = nil) -> Result<UInt64, Errno> {
        var flags = MAP_PRIVATE | MAP_ANONYMOUS
        if pageSize > 4096 { flags |= mapHugetlb | (Int32(pageSize.trailingZeroBitCount) << mapHugeShift) | mapPopulate }
        if fixedAt != nil { flags |= mapFixedNoreplace }
        let hint = fixedAt.flatMap { UnsafeMutableRawPointer(bitPattern: UInt($0)) }
        guard let p = mmap(hint, Int(size), PROT_READ | PROT_WRITE, flags, -1, 0), p != MAP_FAILED else { return .failure(lastErrno()) }
        if let fixedAt, UInt64(UInt(bitPattern: p)) != fixedAt { _ = munmap(p, Int(size)); return .failure(.EEXIST) }
        if pageSize == 4096 {
            _ = madvise(p, Int(size), madvNoHugepage)
            let bytes = p.assumingMemoryBound(to: UInt8.self)
            for off in stride(from: 0, to: Int(size), by: 4096) { bytes[off] = 1 }
        }
        return .success(UInt64(UInt(bitPattern: p)))
    }

    static func unmapMemory(_ addr: UInt64, _ size: UInt64) {
        _ = munmap(UnsafeMutableRawPointer(bitPattern: UInt(addr)), Int(size))
    }

    /// The frames behind `[vaddr, vaddr+size)` from `/proc/self/pagemap`
    /// (root only), joined into physically contiguous runs.
    static func frames(vaddr: UInt64, size: UInt64) -> Result<[PhysicalRun], BenchFailure> {
        let fd = Glibc.open("/proc/self/pagemap", O_RDONLY)
        if fd < 0 { return .failure(BenchFailure("cannot open /proc/self/pagemap")) }
        defer { _ = Glibc.close(fd) }
        let pages = Int(size / 4096)
        var buf = [UInt64](repeating: 0, count: pages)
        let want = pages * 8
        let got = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(vaddr / 4096 * 8)) }
        if got != want { return .failure(BenchFailure("short read of /proc/self/pagemap")) }
        var runs: [PhysicalRun] = []
        for (i, e) in buf.enumerated() {
            guard e >> 63 == 1, e & ((1 << 55) - 1) != 0 else {
                return .failure(BenchFailure("page \(i) not present or pfns hidden"))
            }
            let phys = (e & ((1 << 55) - 1)) << 12, offset = UInt64(i) * 4096
            if let last = runs.last, last.phys + last.length == phys, last.offset + last.length == offset {
                runs[runs.count - 1].length += 4096
            } else {
                runs.append(PhysicalRun(offset: offset, phys: phys, length: 4096))
            }
        }
        return .success(runs)
    }
}

/// A type1v2 container holding the lane's group.
struct RawContainer {
    var container: Int32 = -1
    var group: Int32 = -1

    struct Map { var argsz: UInt32 = 32; var flags: UInt32 = 3; var vaddr: UInt64; var iova: UInt64; var size: UInt64 }
    struct Unmap { var argsz: UInt32 = 24; var flags: UInt32 = 0; var iova: UInt64; var size: UInt64 }

    static func open(group path: String) -> Result<RawContainer, BenchFailure> {
        var c = RawContainer()
        switch RawSys.open(path, O_RDWR) {
        case .success(let fd): c.group = fd
        case .failure(let e): return .failure(BenchFailure("open \(path): \(e)"))
        }
        switch RawSys.open("/dev/vfio/vfio", O_RDWR) {
        case .success(let fd): c.container = fd
        case .failure(let e): return .failure(BenchFailure("open /dev/vfio/vfio: \(e)"))
        }
        var status: (UInt32, UInt32) = (8, 0)
        if case .failure(let e) = RawSys.ioctl(c.group, VFIO.groupGetStatus, &status) { return .failure(BenchFailure("VFIO_GROUP_GET_STATUS: \(e)")) }
        if status.1 & 1 == 0 { return .failure(BenchFailure("group \(path) is not viable")) }
        var fd = c.container
        if case .failure(let e) = RawSys.ioctl(c.group, VFIO.groupSetContainer, &fd) { return .failure(BenchFailure("VFIO_GROUP_SET_CONTAINER: \(e)")) }
        if case .failure(let e) = RawSys.ioctl(c.container, VFIO.setIOMMU, value: Int32(Extension.type1v2.rawValue)) {
            return .failure(BenchFailure("VFIO_SET_IOMMU(type1v2): \(e)"))
        }
        return .success(c)
    }

    func info() -> Result<IOMMUInfo, Errno> {
        var buffer = [UInt8](repeating: 0, count: 4096)
        buffer[1] = 0x10  // argsz = 4096
        return RawSys.ioctl(container, VFIO.iommuGetInfo, buffer: &buffer).map { _ in IOMMUInfo(bytes: buffer) }
    }

    @inline(__always)
    func map(iova: UInt64, vaddr: UInt64, size: UInt64) -> Errno? {
        var m = Map(vaddr: vaddr, iova: iova, size: size)
        if case .failure(let e) = RawSys.ioctl(container, VFIO.iommuMapDMA, &m) { return e }
        return nil
    }

    @inline(__always)
    func unmapAll() -> Result<UInt64, Errno> {
        var u = Unmap(flags: UnmapDMA.Flags.all.rawValue, iova: 0, size: 0)
        return RawSys.ioctl(container, VFIO.iommuUnmapDMA, &u).map { _ in u.size }
    }

    @inline(__always)
    func unmap(iova: UInt64, size: UInt64) -> Result<UInt64, Errno> {
        var u = Unmap(iova: iova, size: size)
        return RawSys.ioctl(container, VFIO.iommuUnmapDMA, &u).map { _ in u.size }
    }

    func close() {
        if container >= 0 {
            var all = Unmap(flags: UnmapDMA.Flags.all.rawValue, iova: 0, size: 0)
            _ = RawSys.ioctl(container, VFIO.iommuUnmapDMA, &all)
        }
        if group >= 0 { _ = RawSys.ioctl(group, VFIO.groupUnsetContainer, value: 0); RawSys.close(group) }
        if container >= 0 { RawSys.close(container) }
    }
}

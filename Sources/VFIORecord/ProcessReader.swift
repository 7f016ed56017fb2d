import CVFIOSys
import VFIOCore
import VFIOKernel

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads about a traced process from outside it: its memory, its fds,
/// its `/proc` files. Every read is allowed to fail (the process may be
/// gone); a failure gives nil, never a crash.
struct ProcessReader {
    /// The whole of a small file (`/proc`, `/sys`), or nil.
    static func file(_ path: String, limit: Int = 8 << 20) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while out.count < limit {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            out += chunk[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Where `/proc/PID/fd/FD` points (`/dev/vfio/vfio`, `anon_inode:[vfio-device]`).
    static func fdTarget(pid: Int32, fd: Int32) -> String? {
        var buf = [CChar](repeating: 0, count: 512)
        let n = readlink("/proc/\(pid)/fd/\(fd)", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The fds `/proc/PID/fd` lists.
    static func fds(pid: Int32) -> [Int32] { numbers(in: "/proc/\(pid)/fd") }

    /// The entries of a directory named by numbers (fds, thread ids).
    static func numbers(in path: String) -> [Int32] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var out: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let fd = Int32(name) { out.append(fd) }
        }
        return out
    }

    /// `len` bytes of the process's memory at `address` (fewer when the
    /// range ends in unmapped memory).
    static func memory(pid: Int32, address: UInt64, count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        var buf = [UInt8](repeating: 0, count: count)
        let n = buf.withUnsafeMutableBytes { cvfio_read_memory(pid, address, $0.baseAddress, UInt(count)) }
        return n > 0 ? Array(buf[0..<Int(n)]) : []
    }

    /// A NUL-terminated string in the process (at most `max` bytes).
    static func string(pid: Int32, address: UInt64, max: Int = 256) -> String {
        var out: [UInt8] = []
        var at = address
        while out.count < max {
            // Never read across a page: the next one may not be mapped.
            let inPage = Int(4096 - at % 4096)
            let piece = memory(pid: pid, address: at, count: Swift.min(inPage, max - out.count))
            if piece.isEmpty { break }
            if let nul = piece.firstIndex(of: 0) { out += piece[..<nul]; return String(decoding: out, as: UTF8.self) }
            out += piece
            at &+= UInt64(piece.count)
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func status(_ pid: Int32) -> String? { file("/proc/\(pid)/status") }

    static func locked(_ pid: Int32) -> UInt64? { status(pid).flatMap(ProcFiles.lockedBytes) }

    /// The limits the trace's setup statements give.
    static func environment(_ pid: Int32) -> ProcessEnvironment {
        let memlock = file("/proc/\(pid)/limits").flatMap(ProcFiles.memlock) ?? nil
        let cap = status(pid).flatMap(ProcFiles.hasIPCLock) ?? false
        let limit = file("/sys/module/vfio_iommu_type1/parameters/dma_entry_limit")
            .flatMap { UInt32($0.trimmingCharacters()) }
        var u = utsname()
        let release: String? = uname(&u) == 0
            ? withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } : nil
        return ProcessEnvironment(memlock: memlock, capIPCLock: cap, dmaEntryLimit: limit, kernelRelease: release)
    }

    /// The memory `[vaddr, vaddr+size)` lies in, VMA by VMA, with its
    /// physical runs from `/proc/PID/pagemap` when readable.
    static func regions(_ pid: Int32, vaddr: UInt64, size: UInt64) -> [ObservedRegion] {
        guard let smaps = file("/proc/\(pid)/smaps", limit: 64 << 20) else { return [] }
        let parts = ProcFiles.touched(ProcFiles.vmas(smaps: smaps), vaddr: vaddr, size: size)
        guard !parts.isEmpty else { return [] }
        let pagemap = open("/proc/\(pid)/pagemap", O_RDONLY | O_CLOEXEC)
        defer { if pagemap >= 0 { close(pagemap) } }
        let kpageflags = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC)
        defer { if kpageflags >= 0 { close(kpageflags) } }
        /// `KPF_ZERO_PAGE` (bit 24) of the frame at `phys`.
        func isZeroPage(_ phys: UInt64) -> Bool {
            guard kpageflags >= 0 else { return false }
            var flags: UInt64 = 0
            let n = withUnsafeMutableBytes(of: &flags) { pread(kpageflags, $0.baseAddress, 8, off_t(phys / 4096 * 8)) }
            return n == 8 && flags & (1 << 24) != 0
        }
        return parts.map { part in
            var runs: [PhysicalRun]? = nil
            if pagemap >= 0, !part.vma.pfnmap {
                let pages = Int((part.end - part.start) / 4096)
                var bytes = [UInt8](repeating: 0, count: pages * Pagemap.entrySize)
                let n = bytes.withUnsafeMutableBytes { pread(pagemap, $0.baseAddress, $0.count, off_t(part.start / 4096 * 8)) }
                if n == bytes.count {
                    var r: [PhysicalRun] = []
                    if (try? Pagemap.appendRuns(bytes, offset: 0, to: &r)) != nil { runs = r }
                }
            }
            // The zero page is one frame mapped at many addresses: a run of
            // one page each time.
            let zero = runs?.first { $0.length == 4096 && isZeroPage($0.phys) }?.phys
            return ObservedRegion(vaddr: part.start, size: part.end - part.start, pageSize: part.vma.kernelPageSize,
                                  pfnmap: part.vma.pfnmap, runs: runs, name: part.vma.name, zeroPage: zero)
        }
    }
}

extension String {
    func trimmingCharacters() -> String {
        String(self.drop { $0 == " " || $0 == "\n" || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\n" || $0 == "\t" }.reversed())
    }
}

import CVFIOSys
import VFIOCore
import VFIOReplay
import VFIOTrace

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `check ptes=` inside the kernel lane's guest.
///
/// The guest cannot read its IOMMU's page tables itself (Debian's kernels
/// have no IOMMU debugfs, and `/dev/mem` refuses RAM), but QEMU can: a
/// program on the host (`scripts/kernel-lane/vtd-walk.py`) reads guest
/// memory through the QEMU monitor and walks the VT-d tables of one
/// device. The guest asks it over a serial port, named by the environment
/// variable `VFIO_LANE_PTES` (the lane sets it for intel-iommu guests):
///
///     guest: PTES <DMAR register base, hex> <bus> <devfn>
///     host:  OK 4096:<n> 2097152:<n> ...     (leaf entries by page size)
///        or  ERR <why>
///
/// The guest program waits for the answer, so the tables do not change
/// while they are walked.
enum HostPageTableWalk {
    nonisolated(unsafe) static var fd: Int32 = -1

    static let portVariable = "VFIO_LANE_PTES"

    /// The serial port to ask through, when the lane provides one.
    static var port: String? { getenv(portVariable).map { String(cString: $0) } }

    /// Leaf entries in the domain `device` (a PCI address such as
    /// `0000:00:02.0`) is attached to.
    static func entries(port: String, device: String) -> Observation<PTECounts> {
        let parts = device.split(whereSeparator: { $0 == ":" || $0 == "." })
        guard parts.count == 4, let segment = Int(parts[0], radix: 16), segment == 0,
              let bus = Int(parts[1], radix: 16), let dev = Int(parts[2], radix: 16), let fn = Int(parts[3], radix: 16) else {
            return .notObservable("cannot walk the page table of device \(device)")
        }
        // The VT-d unit's register base, as the guest's driver found it.
        guard let text = Sys.readText("/sys/bus/pci/devices/\(device)/iommu/intel-iommu/address"),
              let base = UInt64(text.filter(\.isHexDigit), radix: 16) else {
            return .notObservable("device \(device) is not behind a VT-d unit (no intel-iommu/address)")
        }
        if fd < 0 {
            let r = port.withCString { cvfio_open_raw_tty($0) }
            if r < 0 { return .notObservable("cannot open \(port): \(Errno(rawValue: -r))") }
            fd = r
        }
        let request = Array("PTES \(String(base, radix: 16)) \(bus) \(dev << 3 | fn)\n".utf8)
        let sent = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if sent != request.count { return .notObservable("cannot write to \(port)") }
        var line = [CChar](repeating: 0, count: 4096)
        let n = cvfio_read_line(fd, &line, Int32(line.count), 60_000)
        if n < 0 { return .notObservable("no answer from the host's page-table walker on \(port): \(Errno(rawValue: -n))") }
        let reply = String(decoding: line.prefix(Int(n)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let words = reply.split(separator: " ")
        guard words.first == "OK" else {
            return .notObservable("the host's page-table walker: \(reply.hasPrefix("ERR ") ? String(reply.dropFirst(4)) : reply)")
        }
        var counts: [UInt64: UInt64] = [:]
        for w in words.dropFirst() {
            let kv = w.split(separator: ":")
            guard kv.count == 2, let size = UInt64(kv[0]), let count = UInt64(kv[1]) else {
                return .notObservable("the host's page-table walker answered '\(reply)'")
            }
            counts[size, default: 0] += count
        }
        return .value(PTECounts(counts))
    }
}

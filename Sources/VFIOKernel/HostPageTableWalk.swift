import VFIOCore

/// `check ptes=` inside the kernel lane's guest.
///
/// The guest cannot read its IOMMU's page tables itself (Debian's kernels
/// have no IOMMU debugfs, and `/dev/mem` refuses RAM), but QEMU can: a
/// program on the host (`scripts/kernel-lane/iommu-walk.py`) reads guest
/// memory through the QEMU monitor and walks the VT-d or AMD-Vi tables of
/// one device. The guest asks it over a serial port, named by the
/// environment variable `VFIO_LANE_PTES` (the lane sets it for intel-iommu,
/// amd-iommu and virtio-iommu guests), naming the unit by its register
/// base (VT-d), `amd:` and its MMIO base (AMD-Vi), or `virtio:0`
/// (virtio-iommu, whose mappings QEMU keeps: the walker reads them from
/// QEMU's trace of the MAP and UNMAP requests):
///
///     guest: PTES <DMAR register base, hex | amd:MMIO base, hex | virtio:0> <bus> <devfn>
///     host:  OK 4096:<n> 2097152:<n> ...     (leaf entries by page size)
///        or  ERR <why>
///
/// and for `check pte iova=X`, the one entry translating an IOVA:
///
///     guest: PTE <unit, as above> <bus> <devfn> <iova, hex>
///     host:  OK <page size> | OK none | ERR <why>
///
/// The guest program waits for the answer, so the tables do not change
/// while they are walked.
public enum HostPageTableWalk {
    /// The environment variable in which the lane names the walker's port;
    /// the command line reads it and passes it to `KernelBackend`.
    public static let portVariable = "VFIO_LANE_PTES"

    /// `bus` and `devfn` of a PCI address such as `0000:00:02.0` (segment 0
    /// only: the walker reads one VT-d unit's root table).
    static func busDevfn(_ device: String) -> (bus: Int, devfn: Int)? {
        let parts = device.split(whereSeparator: { $0 == ":" || $0 == "." })
        guard parts.count == 4, let segment = Int(parts[0], radix: 16), segment == 0,
              let bus = Int(parts[1], radix: 16), let dev = Int(parts[2], radix: 16), let fn = Int(parts[3], radix: 16),
              bus < 256, dev < 32, fn < 8 else { return nil }
        return (bus, dev << 3 | fn)
    }

    /// The walker's answer: `OK size:count ...` or `ERR why`.
    static func parseReply(_ reply: String) -> Observation<PTECounts> {
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
            counts[size, default: 0] &+= count
        }
        return .value(PTECounts(counts))
    }

    /// The walker's answer to `PTE`: `OK SIZE`, `OK none` or `ERR why`.
    static func parseLeafReply(_ reply: String) -> Observation<UInt64?> {
        let words = reply.split(separator: " ")
        guard words.first == "OK" else {
            return .notObservable("the host's page-table walker: \(reply.hasPrefix("ERR ") ? String(reply.dropFirst(4)) : reply)")
        }
        if words.count == 2, words[1] == "none" { return .value(nil) }
        guard words.count == 2, let size = UInt64(words[1]) else { return .notObservable("the host's page-table walker answered '\(reply)'") }
        return .value(size)
    }

    /// Leaf entries in the domain `device` is attached to, asked of the
    /// host over `port` (opened once and kept in `fd`).
    static func entries(sys: SystemCalls, port: String, fd: inout Int32, device: String) -> Observation<PTECounts> {
        switch ask(sys: sys, port: port, fd: &fd, device: device, request: "PTES", extra: "") {
        case .failure(let why): return .notObservable(why.message)
        case .success(let reply): return parseReply(reply)
        }
    }

    /// The page size of the entry translating `iova` in the domain
    /// `device` is attached to, nil when none does.
    static func leaf(sys: SystemCalls, port: String, fd: inout Int32, device: String, iova: UInt64) -> Observation<UInt64?> {
        switch ask(sys: sys, port: port, fd: &fd, device: device, request: "PTE", extra: " " + String(iova, radix: 16)) {
        case .failure(let why): return .notObservable(why.message)
        case .success(let reply): return parseLeafReply(reply)
        }
    }

    /// The IOMMU unit behind `device` as the walker names it: a VT-d
    /// unit's register base, as the guest's driver found it, or `amd:` and
    /// the AMD-Vi unit's MMIO base, the region its driver reserved as
    /// `amd_iommu` (`iommu_map_mmio_space`; one unit, as QEMU has), or
    /// `virtio:0` for any other IOMMU (the lane's third is virtio-iommu).
    static func unit(sys: SystemCalls, device: String) -> String? {
        if let text = sys.readText("/sys/bus/pci/devices/\(device)/iommu/intel-iommu/address"),
           let base = UInt64(text.filter(\.isHexDigit), radix: 16) {
            return String(base, radix: 16)
        }
        guard sys.readText("/sys/bus/pci/devices/\(device)/iommu/amd-iommu/cap") != nil else {
            return sys.readText("/sys/bus/pci/devices/\(device)/iommu/uevent") != nil ? "virtio:0" : nil
        }
        guard let iomem = sys.readText("/proc/iomem") else { return nil }
        for line in iomem.split(separator: "\n") where line.hasSuffix(": amd_iommu") {
            let start = line.drop(while: { $0 == " " }).prefix(while: \.isHexDigit)
            if let base = UInt64(start, radix: 16) { return "amd:" + String(base, radix: 16) }
        }
        return nil
    }

    /// Sends `request` for `device`'s IOMMU unit and returns the reply line.
    static func ask(sys: SystemCalls, port: String, fd: inout Int32, device: String, request: String, extra: String) -> Result<String, BackendError> {
        guard let (bus, devfn) = busDevfn(device) else { return .failure(BackendError("cannot walk the page table of device \(device)")) }
        guard let base = unit(sys: sys, device: device) else {
            return .failure(BackendError("device \(device) is behind no IOMMU the host can walk (no intel-iommu/address, no amd_iommu region, no iommu)"))
        }
        if fd < 0 {
            switch sys.openRawTTY(port) {
            case .success(let f): fd = f
            case .failure(let e): return .failure(BackendError("cannot open \(port): \(e)"))
            }
        }
        if sys.writeAll(fd, Array("\(request) \(base) \(bus) \(devfn)\(extra)\n".utf8)) != nil {
            return .failure(BackendError("cannot write to \(port)"))
        }
        switch sys.readLine(fd, timeoutMs: 60_000) {
        case .failure(let e): return .failure(BackendError("no answer from the host's page-table walker on \(port): \(e)"))
        case .success(let reply): return .success(reply)
        }
    }
}

import VFIOCore

/// What the machine `vfio-sim host` runs on says about the setup statements
/// of a trace: kernel release, `RLIMIT_MEMLOCK`, `CAP_IPC_LOCK`,
/// `dma_entry_limit`, hugepages, and the IOMMU groups bound to vfio-pci.
///
/// Gathered through `SystemCalls` only (files, links and directories of
/// sysfs and procfs, `uname`, `getrlimit`), so a test can script any
/// machine; nothing here writes or opens a device unless `probe` is asked.
/// Each fact keeps why it is missing, because the prologue says so rather
/// than guessing (`HostPrologue` renders it).
public struct HostFacts: Sendable {
    /// `uname -r`.
    public var release: String
    /// The `RLIMIT_MEMLOCK` soft limit (nil: unlimited), or why getrlimit failed.
    public var memlock: Result<UInt64?, Errno>
    /// `CAP_IPC_LOCK` in the effective set; nil when `/proc/self/status` has
    /// no readable `CapEff`.
    public var capIPCLock: Bool?
    public var dmaEntryLimit: DMAEntryLimit
    /// type1's `allow_unsafe_interrupts` (`Y`: a group whose MSIs are not
    /// isolated is taken all the same); nil when not readable.
    public var allowUnsafeInterrupts: Bool?
    /// The bracketed word of the THP `enabled` file; nil when it has none.
    public var transparentHugepages: String?
    /// The hugetlb pools, smallest page first; nil when the directory is missing.
    public var hugepagePools: [HugepagePool]?
    public var groups: Groups
    /// Every IOMMU unit of the machine (`/sys/class/iommu`, and any a group's
    /// link names), in `naturalOrder`: `instance=` is an index into it.
    public var units: [String]

    public enum DMAEntryLimit: Sendable, Hashable {
        case value(UInt32)
        /// No parameter file: the module is not loaded (it is read when a
        /// container opens, so a trace assumes the default).
        case notLoaded
        /// The file held something else than a number.
        case unreadable(String)
    }

    public struct HugepagePool: Sendable, Hashable {
        public var pageSize: UInt64
        /// `nr_hugepages` and `free_hugepages`; nil when unreadable.
        public var total: UInt64?
        public var free: UInt64?
        /// The pool's directory, for the comment.
        public var path: String
    }

    public enum Groups: Sendable {
        /// `/sys/kernel/iommu_groups` does not exist.
        case noDirectory
        /// It exists and is empty: no IOMMU is enabled.
        case empty
        /// `count` groups; those with a device bound to vfio-pci.
        case some(count: Int, bound: [Group])
    }

    /// An IOMMU group with a device bound to vfio-pci.
    public struct Group: Sendable {
        public var number: Int
        /// Its devices and the driver each is bound to (nil: none).
        public var devices: [(name: String, driver: String?)]
        /// `/dev/vfio/N` exists.
        public var hasDeviceNode: Bool
        /// The unit behind its first vfio-pci device with an `iommu` link.
        public var unit: IOMMUUnit?
        /// Its reserved regions; nil when the file could not be read.
        public var reserved: [ReservedRegion]?
        /// Lines of `reserved_regions` that were not `START END TYPE`.
        public var unreadableReserved: Int = 0
        /// What `--probe` measured, or why it could not.
        public var probe: Result<DomainSpec, BackendError>?

        public var name: String { "g\(number)" }
        public var deviceNode: String { "/dev/vfio/\(number)" }
        public var directory: String { "\(HostFacts.groupsPath)/\(number)" }
    }

    /// One line of a group's `reserved_regions`: an inclusive range and
    /// its type (`msi`, `direct`, `direct-relaxable`, `reserved`, `sw_msi`).
    public struct ReservedRegion: Sendable, Hashable {
        public var range: IOVARange
        public var type: String
    }

    public static let allowUnsafeInterruptsPath = "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts"
    public static let memlockSource = "getrlimit(RLIMIT_MEMLOCK), soft limit"
    public static let statusPath = "/proc/self/status"
    public static let thpPath = "/sys/kernel/mm/transparent_hugepage/enabled"
    public static let hugepagesPath = "/sys/kernel/mm/hugepages"
    public static let groupsPath = "/sys/kernel/iommu_groups"
    public static let unitsPath = "/sys/class/iommu"
    public static let vfioDevicePath = "/dev/vfio"

    /// Reads every fact. With `probe`, each group whose `/dev/vfio/N`
    /// exists is attached alone to a scratch container and measured
    /// (`KernelBackend.hardwareDomains`: `GET_INFO`), then let go; the
    /// machine's limits are left as they are.
    public static func gather(_ sys: SystemCalls, probe: Bool = false) -> HostFacts {
        var facts = HostFacts(release: sys.release, memlock: sys.memlock(), capIPCLock: nil, dmaEntryLimit: .notLoaded,
                              transparentHugepages: nil, hugepagePools: nil, groups: .noDirectory, units: [])
        facts.capIPCLock = sys.readText(statusPath).flatMap(capIPCLock(status:))
        if let text = sys.readText(ModuleParameter.dmaEntryLimit.path) {
            let word = text.filter { !$0.isWhitespace }
            facts.dmaEntryLimit = UInt32(word).map { .value($0) } ?? .unreadable(word)
        }
        facts.transparentHugepages = sys.readText(thpPath).flatMap(bracketedWord)
        facts.allowUnsafeInterrupts = sys.readText(allowUnsafeInterruptsPath).flatMap { text -> Bool? in
            switch text.filter({ !$0.isWhitespace }) {
            case "Y", "y", "1": true
            case "N", "n", "0": false
            default: nil
            }
        }
        facts.hugepagePools = sys.listDirectory(hugepagesPath).map { names in
            names.compactMap { name -> HugepagePool? in
                guard name.hasPrefix("hugepages-"), name.hasSuffix("kB"),
                      let kb = UInt64(name.dropFirst("hugepages-".count).dropLast(2)), kb < 1 << 54 else { return nil }
                let path = "\(hugepagesPath)/\(name)"
                func number(_ file: String) -> UInt64? { sys.readText("\(path)/\(file)").flatMap { UInt64($0.filter { !$0.isWhitespace }) } }
                return HugepagePool(pageSize: kb * 1024, total: number("nr_hugepages"), free: number("free_hugepages"), path: path)
            }.sorted { $0.pageSize < $1.pageSize }
        }
        var units = Set(sys.listDirectory(unitsPath) ?? [])
        if let names = sys.listDirectory(groupsPath) {
            let numbers = names.compactMap { Int($0) }.sorted()
            let nodes = Set(sys.listDirectory(vfioDevicePath) ?? [])
            var bound: [Group] = []
            for n in numbers {
                guard var group = readGroup(n, sys: sys, nodes: nodes) else { continue }
                if let unit = group.unit { units.insert(unit.name) }
                if probe && group.hasDeviceNode { group.probe = measure(group, sys: sys) }
                bound.append(group)
            }
            facts.groups = numbers.isEmpty ? .empty : .some(count: numbers.count, bound: bound)
        }
        facts.units = units.sorted(by: naturalOrder)
        return facts
    }

    /// Group `n` when one of its devices is bound to vfio-pci, else nil.
    static func readGroup(_ n: Int, sys: SystemCalls, nodes: Set<String>) -> Group? {
        let dir = "\(groupsPath)/\(n)"
        let devices = (sys.listDirectory("\(dir)/devices") ?? []).map { d in
            (name: d, driver: sys.readLink("\(dir)/devices/\(d)/driver").map(lastComponent))
        }
        guard devices.contains(where: { $0.driver == "vfio-pci" }) else { return nil }
        var group = Group(number: n, devices: devices, hasDeviceNode: nodes.contains(String(n)))
        for d in devices where d.driver == "vfio-pci" {
            guard let target = sys.readLink("\(dir)/devices/\(d.name)/iommu") else { continue }
            var unit = IOMMUUnit(link: target)
            if unit.kind == .intel {
                unit.vtdCapability = sys.readText(IOMMUUnit.vtdCapabilityPath(unit.name)).flatMap(VTdCapability.init(text:))
            }
            group.unit = unit
            break
        }
        if let text = sys.readText("\(dir)/reserved_regions") {
            let (regions, bad) = reservedRegions(text)
            group.reserved = regions
            group.unreadableReserved = bad
        }
        return group
    }

    /// The group's domain as GET_INFO reports it, through a kernel backend
    /// that changes none of the process's limits and gives the group back.
    static func measure(_ group: Group, sys: SystemCalls) -> Result<DomainSpec, BackendError> {
        do throws(BackendError) {
            let backend = try KernelBackend(groupPaths: [group.deviceNode], sys: sys, traceDefaults: false)
            defer { _ = backend.close() }
            guard var spec = try backend.hardwareDomains().first else { return .failure(BackendError("no domain measured")) }
            spec.name = group.name
            return .success(spec)
        } catch {
            return .failure(error)
        }
    }

    /// Bit 14 (`CAP_IPC_LOCK`) of the hex `CapEff` line.
    static func capIPCLock(status text: String) -> Bool? {
        for line in text.split(separator: "\n") where line.hasPrefix("CapEff:") {
            return UInt64(line.dropFirst("CapEff:".count).filter { !$0.isWhitespace }, radix: 16).map { ($0 >> 14) & 1 == 1 }
        }
        return nil
    }

    /// `always [madvise] never` → `madvise`.
    static func bracketedWord(_ text: String) -> String? {
        guard let open = text.firstIndex(of: "["), let close = text[open...].firstIndex(of: "]") else { return nil }
        let word = text[text.index(after: open)..<close]
        return word.isEmpty ? nil : String(word)
    }

    /// `0x00000000fee00000 0x00000000feefffff msi` lines, and how many
    /// lines were something else (an end before its start among them).
    static func reservedRegions(_ text: String) -> ([ReservedRegion], Int) {
        var regions: [ReservedRegion] = [], bad = 0
        for line in text.split(separator: "\n") where !line.allSatisfy(\.isWhitespace) {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count == 3, let start = hex(words[0]), let last = hex(words[1]), start <= last else { bad += 1; continue }
            regions.append(ReservedRegion(range: IOVARange(start: start, last: last), type: String(words[2])))
        }
        return (regions, bad)
    }

    static func hex(_ word: Substring) -> UInt64? {
        guard word.hasPrefix("0x") || word.hasPrefix("0X") else { return nil }
        return UInt64(word.dropFirst(2), radix: 16)
    }

    static func lastComponent(_ path: String) -> String { path.split(separator: "/").last.map(String.init) ?? path }
}

/// `dmar2` before `dmar10`: names compared with their digit runs as
/// numbers, so that unit indices follow the numbering people read.
public func naturalOrder(_ a: String, _ b: String) -> Bool {
    var i = a.unicodeScalars.makeIterator(), j = b.unicodeScalars.makeIterator()
    var x = i.next(), y = j.next()
    func isDigit(_ s: Unicode.Scalar?) -> Bool { s.map { $0.value >= 48 && $0.value <= 57 } ?? false }
    while let p = x, let q = y {
        if isDigit(p) && isDigit(q) {
            var m = "", n = ""
            while let s = x, isDigit(s) { m.unicodeScalars.append(s); x = i.next() }
            while let s = y, isDigit(s) { n.unicodeScalars.append(s); y = j.next() }
            let mm = m.drop(while: { $0 == "0" }), nn = n.drop(while: { $0 == "0" })
            if mm.count != nn.count { return mm.count < nn.count }
            if mm != nn { return mm < nn }
            continue
        }
        if p != q { return p.value < q.value }
        x = i.next(); y = j.next()
    }
    return x == nil && y != nil
}

import VFIOCore

/// The setup lines every plan starts with: what wrote it and what it
/// stands for, the container's interface, the process's limits and the
/// groups of the first container.
struct ScenarioHeader {
    var title: String
    /// Comment lines saying where the plan's shape comes from.
    var about: [String]
    /// `type1` (DPDK and SPDK ask for `VFIO_TYPE1_IOMMU`) or `type1v2`.
    var interface: String
    var memlock: MemlockLimit
    var capIPCLock: Bool

    func write(_ w: inout ScenarioWriter, _ o: ScenarioOptions) {
        w.comment("Scenario: " + title)
        if let c = o.commandLine { w.comment("Written by: \(c)") }
        for line in about { w.comment(line) }
        w.comment("The answers after => are the model's for this kernel; replay the plan on a real one with vfio-sim replay --backend both.")
        if let k = o.kernel { w.line("kernel \(k)") }
        w.line("iommu \(interface)")
        switch o.memlock ?? memlock {
        case .unlimited: w.line("memlock unlimited")
        case .bytes(let b): w.line("memlock \(formatSize(b))")
        }
        w.line("cap-ipc-lock \((o.capIPCLock ?? capIPCLock) ? "on" : "off")")
        if let l = o.dmaEntryLimit { w.line("dma-entry-limit \(l)") }
    }
}

/// `dev0`, `dev1`, ...: the groups, one per device.
func deviceName(_ i: Int) -> String { "dev\(i)" }

/// The `domain` line of device `i`.
func domainLine(_ i: Int, _ o: ScenarioOptions) -> String { "domain \(deviceName(i)) iommu=\(o.iommu.rawValue)" }

/// `phys=` for a region of `backing`: as asked, else Linux's default
/// for that backing (nothing written).
func physKey(_ o: ScenarioOptions, seed: UInt64) -> String {
    switch o.contiguous {
    case nil: ""
    case true?: " phys=contiguous"
    case false?: " phys=scattered seed=\(seed)"
    }
}

/// A `memory` line for `size` bytes at `vaddr` on `backing`;
/// `populated=no` when the program does not preallocate it (`prealloc`
/// is the program's default, `--prealloc` wins).
func memoryLine(vaddr: UInt64, size: UInt64, backing: Backing, _ o: ScenarioOptions, seed: UInt64, note: String,
                prealloc: Bool = true) -> String {
    var s = "memory vaddr=\(formatAddress(vaddr)) size=\(formatSize(size))"
    switch backing {
    case .pages4K: s += physKey(o, seed: seed)
    case .thp: s += " thp"
    case .hugetlb2M, .hugetlb1G: s += " page=\(formatSize(backing.pageSize))" + physKey(o, seed: seed)
    }
    if !(o.prealloc ?? prealloc) { s += " populated=no" }
    return s + "  # " + note
}

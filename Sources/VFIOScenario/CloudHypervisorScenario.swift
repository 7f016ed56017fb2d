import VFIOCore

/// cloud-hypervisor with VFIO devices: one container for the VM (the
/// `vfio-ioctls` crate asks for `VFIO_TYPE1v2_IOMMU`), every guest RAM
/// region mapped at its guest-physical address when the first device is
/// added; on x86-64 RAM stops at 3 GiB below 4 GiB (the 32-bit device
/// area starts there, `arch::layout::MEM_32BIT_RESERVED_START`) and goes
/// on from 4 GiB. No firmware shadowing: the regions map once. At exit
/// the groups close.
public enum CloudHypervisorScenario {
    static let barVaddr: UInt64 = 0x7f80_0000_0000

    /// RAM below 4 GiB: at most 3 GiB.
    public static func lowMemory(memory: UInt64) -> UInt64 { min(memory, 0xc000_0000) }

    public static func make(_ o: ScenarioOptions) throws(ScenarioError) -> Scenario {
        try o.checkCounts()
        let backing = o.backing ?? .thp
        try o.checkLayout(backing)
        let size = try o.memorySize(granule: backing.granule)
        let low = lowMemory(memory: size)
        let ramVaddr = QEMUScenario.ramVaddr(size: size, below: barVaddr)
        var w = ScenarioWriter()
        ScenarioHeader(
            title: "cloud-hypervisor guest, \(formatSize(size)) of RAM on \(QEMUScenario.backingName(backing)), \(o.devices) VFIO device\(o.devices == 1 ? "" : "s") in \(o.containers) container\(o.containers == 1 ? "" : "s")",
            about: ["Guest RAM at its guest-physical addresses: \(formatSize(low)) below 3G, \(formatSize(size - low)) from 4G, one MAP_DMA per region.",
                    "cloud-hypervisor needs RLIMIT_MEMLOCK raised for VFIO; the plan assumes it is unlimited (say --memlock to try a limit)."],
            interface: "type1v2", memlock: .unlimited, capIPCLock: false).write(&w, o)
        // `prefault=off` is cloud-hypervisor's default: the first MAP_DMA
        // faults guest RAM in.
        w.line(memoryLine(vaddr: ramVaddr, size: size, backing: backing, o, seed: o.seed,
                          note: "guest RAM" + ((o.prealloc ?? false) ? "" : ", not prefaulted: the first MAP_DMA faults it in"),
                          prealloc: false))
        let bars = o.barSize == 0 ? [] : QEMUScenario.barAddresses(count: o.devices, size: o.barSize, highEnd: 4 * gib + (size - low))
        for (i, _) in bars.enumerated() {
            w.line("memory vaddr=\(formatAddress(barVaddr + UInt64(i) * o.barSize)) size=\(formatSize(o.barSize)) pfnmap  # \(deviceName(i))'s BAR, mmap'd")
        }
        for c in 0..<o.containers {
            if c > 0 { w.line("container c\(c)") }
            let mine = QEMUScenario.devices(of: c, o)
            for i in mine { w.line(domainLine(i, o)) }
            w.map(iova: 0, vaddr: ramVaddr, size: low)
            if size > low { w.map(iova: 4 * gib, vaddr: ramVaddr + low, size: size - low) }
            for i in mine where !bars.isEmpty { w.map(iova: bars[i], vaddr: barVaddr + UInt64(i) * o.barSize, size: o.barSize) }
        }
        w.checkpoint()
        let mapOps = w.operations
        for c in 0..<o.containers {
            if o.containers > 1 { w.line("container c\(c)") }
            for i in QEMUScenario.devices(of: c, o) { w.detach(deviceName(i), comment: "the VM shuts down: the group's files close") }
        }
        w.checkpoint()
        return Scenario(program: .cloudHypervisor, summary: "cloud-hypervisor, \(formatSize(size)) on \(backing.rawValue)", text: w.text,
                        mapPhaseOperations: mapOps, checkpoints: w.checkpoints)
    }
}

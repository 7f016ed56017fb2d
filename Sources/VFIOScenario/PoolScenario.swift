import VFIOCore

/// LKL or a userspace driver: the whole DMA pool as one mapping at a fixed
/// IOVA, unmapped at the end, then the group closes.
public enum PoolScenario {
    public static let vaddr: UInt64 = 0x7f40_0000_0000
    public static let iova: UInt64 = 0x1_0000_0000

    public static func make(_ o: ScenarioOptions) throws(ScenarioError) -> Scenario {
        try o.checkCounts()
        guard o.containers == 1, o.barSize == 0 else { throw ScenarioError("pool: --containers and --bar are for qemu and cloud-hypervisor") }
        let backing = o.backing ?? .pages4K
        try o.checkLayout(backing)
        let size = try o.memorySize(granule: backing.granule)
        var w = ScenarioWriter()
        ScenarioHeader(
            title: "A userspace driver's DMA pool (LKL, a custom driver): \(formatSize(size)) on \(QEMUScenario.backingName(backing)), one mapping",
            about: ["The pool maps once at IOVA 4G and is unmapped before the group closes."],
            interface: "type1v2", memlock: .unlimited, capIPCLock: false).write(&w, o)
        for i in 0..<o.devices { w.line(domainLine(i, o)) }
        w.line(memoryLine(vaddr: vaddr, size: size, backing: backing, o, seed: o.seed, note: "the pool"))
        w.map(iova: iova, vaddr: vaddr, size: size)
        w.checkpoint()
        let mapOps = w.operations
        w.unmap(iova: iova, size: size)
        for i in 0..<o.devices { w.detach(deviceName(i)) }
        w.checkpoint()
        return Scenario(program: .pool, summary: "pool, \(formatSize(size)) on \(backing.rawValue)", text: w.text,
                        mapPhaseOperations: mapOps, checkpoints: w.checkpoints)
    }
}

extension Scenario {
    /// The plan `program` makes for `options`.
    public static func make(_ program: ScenarioProgram, _ options: ScenarioOptions) throws(ScenarioError) -> Scenario {
        switch program {
        case .dpdk: try DPDKScenario.make(options)
        case .qemu: try QEMUScenario.make(options)
        case .spdk: try SPDKScenario.make(options)
        case .cloudHypervisor: try CloudHypervisorScenario.make(options)
        case .pool: try PoolScenario.make(options)
        }
    }
}

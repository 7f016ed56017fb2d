import VFIOCore

/// SPDK on DPDK's environment: buffers of one to four 2 MiB hugepages are
/// registered as they are allocated (`spdk_mem_register`, which maps them
/// into DPDK's container with IOVA = VA) and freed later in another order.
///
/// - per page (the default): each 2 MiB page is its own registration; a
///   buffer is freed with one unmap over its pages.
/// - `coalesced`: each buffer is one registration, but it is unregistered
///   2 MiB at a time. Under the v1 interface (DPDK's container) the first
///   unmap takes the whole mapping and the rest find nothing; under v2 every
///   unmap that splits a mapping is refused (EINVAL) and the buffer stays
///   mapped and locked.
public enum SPDKScenario {
    /// IOVA = vaddr, below 2^39 so a 39-bit VT-d takes it.
    public static let base: UInt64 = 0x20_0000_0000

    /// The buffers `size` bytes make, as (offset, bytes): each one to four
    /// 2 MiB pages, as `seed` draws them.
    public static func buffers(size: UInt64, seed: UInt64) -> [(offset: UInt64, size: UInt64)] {
        var rng = SeededRandom(seed: seed &+ 17)
        var out: [(UInt64, UInt64)] = []
        var off: UInt64 = 0
        while off < size {
            let n = min((1 + rng.below(4)) * 2 * mib, size - off)
            out.append((off, n))
            off += n
        }
        return out.map { (offset: $0.0, size: $0.1) }
    }

    /// The order the buffers are freed in.
    public static func freeOrder(_ buffers: [(offset: UInt64, size: UInt64)], seed: UInt64) -> [(offset: UInt64, size: UInt64)] {
        var rng = SeededRandom(seed: seed &+ 17)
        for _ in buffers { _ = rng.below(4) }
        var b = buffers
        rng.shuffle(&b)
        return b
    }

    /// The registrations and unregistrations, written after the setup.
    public static func writeOperations(_ w: inout ScenarioWriter, size: UInt64, coalesced: Bool, seed: UInt64) {
        let page = 2 * mib
        let all = buffers(size: size, seed: seed)
        for b in all {
            if coalesced { w.map(iova: base + b.offset, vaddr: base + b.offset, size: b.size) }
            else { for p in stride(from: 0, to: b.size, by: Int(page)) { w.map(iova: base + b.offset + UInt64(p), vaddr: base + b.offset + UInt64(p), size: page) } }
        }
        w.checkpoint()
        for b in freeOrder(all, seed: seed) {
            if coalesced { for p in stride(from: 0, to: b.size, by: Int(page)) { w.unmap(iova: base + b.offset + UInt64(p), size: page) } }
            else { w.unmap(iova: base + b.offset, size: b.size) }
        }
    }

    public static func make(_ o: ScenarioOptions) throws(ScenarioError) -> Scenario {
        try o.checkCounts()
        guard o.containers == 1, o.barSize == 0 else { throw ScenarioError("spdk: --containers and --bar are for qemu and cloud-hypervisor") }
        guard o.prealloc != false else {
            throw ScenarioError("spdk: its memory is DPDK's hugepages, touched as they are allocated; --prealloc no is for qemu, cloud-hypervisor and pool")
        }
        guard o.backing == nil || o.backing == .hugetlb2M else { throw ScenarioError("spdk: its registrations are 2M hugepages; --backing takes 2M only") }
        let size = try o.memorySize(granule: 2 * mib)
        var w = ScenarioWriter()
        ScenarioHeader(
            title: "SPDK, \(formatSize(size)) of 2M hugepages, \(o.coalesced ? "one registration per buffer, freed 2M at a time" : "one registration per 2M page, buffers freed whole"), \(o.devices) device\(o.devices == 1 ? "" : "s")",
            about: ["spdk_mem_register maps into DPDK's container (VFIO_TYPE1_IOMMU: the v1 interface) with IOVA = VA, run as root (CAP_IPC_LOCK).",
                    "Buffers of 1-4 pages are registered as they are allocated and freed later in another order."],
            interface: "type1", memlock: .bytes(8 * mib), capIPCLock: true).write(&w, o)
        for i in 0..<o.devices { w.line(domainLine(i, o)) }
        w.line(memoryLine(vaddr: base, size: size, backing: .hugetlb2M, o, seed: o.seed, note: "SPDK's hugepage memory"))
        writeOperations(&w, size: size, coalesced: o.coalesced, seed: o.seed)
        let mapOps = w.checkpoints.first ?? w.operations
        w.checkpoint()
        for i in 0..<o.devices { w.detach(deviceName(i), comment: "the process exits") }
        w.checkpoint()
        return Scenario(program: .spdk, summary: "SPDK, \(formatSize(size))\(o.coalesced ? " coalesced" : "")", text: w.text,
                        mapPhaseOperations: mapOps, checkpoints: w.checkpoints)
    }
}

import VFIOCore

/// DPDK's EAL with the vfio-pci driver: hugepage memory in memseg lists,
/// mapped into the default container when the first device's group joins.
///
/// Where the shape comes from (DPDK 22.11, `lib/eal/linux/eal_vfio.c`,
/// and the testpmd recordings this project made under `vfio-sim record`):
/// the container asks for `VFIO_TYPE1_IOMMU`, the v1 interface; with
/// IOVA as VA, `vfio_type1_dma_map` walks contiguous memseg runs
/// (`rte_memseg_contig_walk`), so each list's allocated pages map in one
/// call; with IOVA as PA it walks every segment (`rte_memseg_walk`), one
/// call per hugepage at its physical address. At exit nothing is unmapped:
/// the groups' files close and the last one out releases the container.
public enum DPDKScenario {
    /// The first memseg list's address: `--base-virtaddr`'s default
    /// 4 GiB, one page on (the recordings' 2 MiB lists start at
    /// 0x100200000).
    static func base(page: UInt64) -> UInt64 { 4 * gib + page }

    /// Segments a memseg list holds: at most 8192, and at most 32 GiB
    /// (`RTE_MAX_MEMSEG_PER_LIST`, `RTE_MAX_MEM_MB_PER_LIST`); without
    /// hugepages (`--no-huge`) the EAL makes one list of all the memory.
    public static func segmentsPerList(page: UInt64, size: UInt64) -> UInt64 {
        page == 4 * kib ? max(size / page, 1) : min(8192, (32 * gib) / page)
    }

    /// How `size` bytes of `page` pages fall into memseg lists: each
    /// list's (virtual offset from the first, bytes used), one page of
    /// virtual space between lists.
    public static func memsegLists(size: UInt64, page: UInt64) -> [(offset: UInt64, size: UInt64)] {
        let perList = segmentsPerList(page: page, size: size) * page
        var out: [(UInt64, UInt64)] = []
        var used: UInt64 = 0, offset: UInt64 = 0
        while used < size {
            let n = min(perList, size - used)
            out.append((offset, n))
            used += n
            offset += perList + page
        }
        return out.map { (offset: $0.0, size: $0.1) }
    }

    public static func make(_ o: ScenarioOptions) throws(ScenarioError) -> Scenario {
        try o.checkCounts()
        guard o.containers == 1 else { throw ScenarioError("dpdk: every device joins the default container; --containers is for qemu and cloud-hypervisor") }
        guard o.barSize == 0 else { throw ScenarioError("dpdk: --bar is for qemu and cloud-hypervisor") }
        guard o.prealloc != false else {
            throw ScenarioError("dpdk: the EAL touches every hugepage as it allocates it (it reads its physical address); --prealloc no is for qemu, cloud-hypervisor and pool")
        }
        let backing = o.backing ?? .hugetlb2M
        guard backing == .hugetlb2M || backing == .hugetlb1G || (backing == .pages4K && o.iovaMode == .va) else {
            throw ScenarioError("dpdk: --backing takes 2M or 1G (hugepages), or 4K with --iova-mode va (--no-huge), not \(backing.rawValue)")
        }
        let page = backing.pageSize
        let size = try o.memorySize(granule: page)
        let mode = o.iovaMode == .va ? "IOVA as VA" : "IOVA as PA"
        var w = ScenarioWriter()
        ScenarioHeader(
            title: "DPDK (vfio-pci), \(formatSize(size)) of \(backing == .pages4K ? "4K pages (--no-huge)" : formatSize(page) + " hugepages"), \(mode), \(o.devices) device\(o.devices == 1 ? "" : "s")",
            about: ["The EAL's default container (VFIO_TYPE1_IOMMU: the v1 interface), run as root (CAP_IPC_LOCK).",
                    o.iovaMode == .va
                        ? "IOVA as VA: one MAP_DMA per memseg list's contiguous pages (rte_memseg_contig_walk)."
                        : "IOVA as PA: one MAP_DMA per hugepage at its physical address (rte_memseg_walk).",
                    "At exit nothing is unmapped: the groups close and the last one releases the container."],
            interface: "type1", memlock: .bytes(8 * mib), capIPCLock: true).write(&w, o)
        for i in 0..<o.devices { w.line(domainLine(i, o)) }
        if o.iovaMode == .va { writeVA(&w, o, size: size, backing: backing) } else { try writePA(&w, o, size: size, page: page) }
        w.checkpoint()
        let mapOps = w.operations
        for i in 0..<o.devices { w.detach(deviceName(i), comment: "the process exits: the group's files close") }
        w.checkpoint()
        return Scenario(program: .dpdk, summary: "DPDK \(mode), \(formatSize(size)) of \(backing.rawValue)", text: w.text,
                        mapPhaseOperations: mapOps, checkpoints: w.checkpoints)
    }

    static func writeVA(_ w: inout ScenarioWriter, _ o: ScenarioOptions, size: UInt64, backing: Backing) {
        let base = base(page: backing.pageSize)
        for (i, list) in memsegLists(size: size, page: backing.pageSize).enumerated() {
            w.line(memoryLine(vaddr: base + list.offset, size: list.size, backing: backing, o, seed: o.seed &+ UInt64(i),
                              note: "memseg list \(i)"))
        }
        for list in memsegLists(size: size, page: backing.pageSize) {
            w.map(iova: base + list.offset, vaddr: base + list.offset, size: list.size)
        }
    }

    /// Each hugepage's physical frame: ascending from 4 GiB as the buddy
    /// allocator hands out a fresh pool (what the recordings show), or
    /// shuffled among four times as many frames with `--phys scattered`.
    static func frames(count: UInt64, page: UInt64, _ o: ScenarioOptions) -> [UInt64] {
        let start = max(4 * gib, page)
        if o.contiguous != false { return (0..<count).map { start + $0 * page } }
        var slots = Array(0..<(count * 4))
        var rng = SeededRandom(seed: o.seed)
        rng.shuffle(&slots)
        return slots.prefix(Int(count)).map { start + $0 * page }
    }

    static func writePA(_ w: inout ScenarioWriter, _ o: ScenarioOptions, size: UInt64, page: UInt64) throws(ScenarioError) {
        let count = size / page
        guard count <= 1 << 16 else { throw ScenarioError("dpdk: IOVA as PA maps each hugepage on its own; \(count) pages is more than this template writes (65536)") }
        w.reserve(lines: Int(count) * 2)
        var offset: UInt64 = 0
        let base = base(page: page)
        for (i, phys) in frames(count: count, page: page, o).enumerated() {
            // A list boundary leaves one page of virtual space.
            if i > 0 && UInt64(i) % segmentsPerList(page: page, size: size) == 0 { offset += page }
            let vaddr = base + offset
            w.line("memory vaddr=\(formatAddress(vaddr)) size=\(formatSize(page)) page=\(formatSize(page)) phys=\(formatAddress(phys))  # rtemap_\(i)")
            w.map(iova: phys, vaddr: vaddr, size: page)
            offset += page
        }
    }
}

import VFIOCore

/// QEMU with vfio-pci devices and no vIOMMU: guest RAM mapped at its
/// guest-physical addresses by the memory listener, one MAP_DMA per RAM
/// section, into each container.
///
/// Where the shape comes from (QEMU's `hw/vfio` listener, `pc_q35.c` and
/// `pc_piix.c` for where RAM stops below 4 GiB, and this project's
/// recordings of QEMU 7.2 booting SeaBIOS under `vfio-sim record`): at
/// machine start the low RAM, the BIOS ROM below 4 GiB (read-only) and
/// the high RAM map whole; when the firmware shadows its ROMs (the PAM
/// registers), the low RAM section is unmapped and mapped again in pieces
/// around the read-only 768K-1M range; a device's BARs map for
/// peer-to-peer once the firmware has placed them. At exit the groups
/// close; nothing is unmapped one by one. (The recordings show the PAM
/// step several times over; the plan does it once.)
public enum QEMUScenario {
    /// Where the guest's RAM, its BIOS and its BARs are mapped in QEMU.
    static let defaultRAMVaddr: UInt64 = 0x7f00_0000_0000
    static let biosVaddr: UInt64 = 0x7f40_0000_0000
    static let barVaddr: UInt64 = 0x7f80_0000_0000
    /// Where RAM of `size` bytes is mapped when the next mapping is at
    /// `top`: at `defaultRAMVaddr`, or, for RAM too large to fit below
    /// `top` from there (a guest of terabytes), that many whole TiB lower.
    static func ramVaddr(size: UInt64, below top: UInt64) -> UInt64 {
        guard size > top - defaultRAMVaddr else { return defaultRAMVaddr }
        let tib: UInt64 = 1 << 40
        return defaultRAMVaddr - (size - (top - defaultRAMVaddr) + tib - 1) / tib * tib
    }

    /// SeaBIOS's image, mapped at the top of the first 4 GiB.
    static let biosSize: UInt64 = 256 * kib

    /// Guest RAM below 4 GiB: q35 keeps all of a guest smaller than
    /// 2.75 GiB there and else 2 GiB (`pc_q35_init`); i440fx all of one
    /// smaller than 3.5 GiB and else 3 GiB (`pc_init1`, gigabyte-aligned).
    public static func lowMemory(_ machine: QEMUMachine, memory: UInt64) -> UInt64 {
        switch machine {
        case .q35: memory >= 0xb000_0000 ? 0x8000_0000 : memory
        case .pc: memory >= 0xe000_0000 ? 0xc000_0000 : memory
        }
    }

    /// The RAM sections as the listener sees them after the firmware set
    /// up its shadow ROM: (guest address, offset in RAM, size, prot).
    public static func ramSections(_ machine: QEMUMachine, memory: UInt64) -> [(gpa: UInt64, offset: UInt64, size: UInt64, prot: String)] {
        let low = lowMemory(machine, memory: memory)
        var out: [(UInt64, UInt64, UInt64, String)] = []
        if low <= 0x10_0000 {
            out.append((0, 0, low, "rw"))
        } else {
            out.append((0, 0, 0xc_0000, "rw"))
            out.append((0xc_0000, 0xc_0000, 0x4_0000, "r"))
            out.append((0x10_0000, 0x10_0000, low - 0x10_0000, "rw"))
        }
        if memory > low { out.append((4 * gib, low, memory - low, "rw")) }
        return out.map { (gpa: $0.0, offset: $0.1, size: $0.2, prot: $0.3) }
    }

    /// Each device's BAR: below 4 GiB from 3 GiB when it is 256 MiB or
    /// less, else in the 64-bit window from the first 1 GiB boundary
    /// past RAM, each aligned to its size (where SeaBIOS places them).
    static func barAddresses(count: Int, size: UInt64, highEnd: UInt64) -> [UInt64] {
        var next = size <= 256 * mib ? 0xc000_0000 : (roundUp(highEnd, gib) ?? highEnd)
        return (0..<count).map { _ in
            let at = roundUp(next, size) ?? next
            next = at + size
            return at
        }
    }

    public static func make(_ o: ScenarioOptions) throws(ScenarioError) -> Scenario {
        try o.checkCounts()
        let backing = o.backing ?? .thp
        try o.checkLayout(backing)
        let size = try o.memorySize(granule: backing.granule)
        let low = lowMemory(o.machine, memory: size)
        var w = ScenarioWriter()
        ScenarioHeader(
            title: "QEMU \(o.machine.rawValue) guest, \(formatSize(size)) of RAM on \(backingName(backing)), \(o.devices) vfio-pci device\(o.devices == 1 ? "" : "s") in \(o.containers) container\(o.containers == 1 ? "" : "s")",
            about: ["Guest RAM at its guest-physical addresses: \(formatSize(low)) below 4G, \(formatSize(size - low)) from 4G; the BIOS ROM read-only below 4G.",
                    "The firmware's ROM shadowing unmaps the low RAM and maps it again around 768K-1M (read-only).",
                    "RLIMIT_MEMLOCK as libvirt sets it for a guest with host devices: RAM + 1 GiB; every container pins the RAM again."],
            interface: "type1v2", memlock: .bytes(size + gib), capIPCLock: false).write(&w, o)
        let bars = o.barSize == 0 ? [] : barAddresses(count: o.devices, size: o.barSize, highEnd: 4 * gib + (size - low))
        // libvirt preallocates a guest on hugetlbfs; anonymous RAM is not
        // (QEMU's default): the first MAP_DMA faults it in.
        let prealloc = backing == .hugetlb2M || backing == .hugetlb1G
        w.line(memoryLine(vaddr: ramVaddr(size: size, below: biosVaddr), size: size, backing: backing, o, seed: o.seed,
                          note: "guest RAM" + ((o.prealloc ?? prealloc) ? "" : ", not preallocated: the first MAP_DMA faults it in"),
                          prealloc: prealloc))
        w.line("memory vaddr=\(formatAddress(biosVaddr)) size=\(formatSize(biosSize))  # the BIOS image")
        for (i, _) in bars.enumerated() {
            w.line("memory vaddr=\(formatAddress(barVaddr + UInt64(i) * o.barSize)) size=\(formatSize(o.barSize)) pfnmap  # \(deviceName(i))'s BAR, mmap'd")
        }
        for c in 0..<o.containers {
            if c > 0 { w.line("container c\(c)") }
            let mine = devices(of: c, o)
            for i in mine { w.line(domainLine(i, o)) }
            writeBoot(&w, o, size: size, low: low)
            for i in mine where !bars.isEmpty {
                w.map(iova: bars[i], vaddr: barVaddr + UInt64(i) * o.barSize, size: o.barSize)
            }
        }
        w.checkpoint()
        let mapOps = w.operations
        for c in 0..<o.containers {
            if o.containers > 1 { w.line("container c\(c)") }
            for i in devices(of: c, o) { w.detach(deviceName(i), comment: "QEMU exits: the group's files close") }
        }
        w.checkpoint()
        return Scenario(program: .qemu, summary: "QEMU \(o.machine.rawValue), \(formatSize(size)) on \(backing.rawValue)", text: w.text,
                        mapPhaseOperations: mapOps, checkpoints: w.checkpoints)
    }

    /// Devices spread over the containers in turn.
    static func devices(of container: Int, _ o: ScenarioOptions) -> [Int] {
        Array(stride(from: container, to: o.devices, by: o.containers))
    }

    /// Machine start, then the firmware's ROM shadowing.
    static func writeBoot(_ w: inout ScenarioWriter, _ o: ScenarioOptions, size: UInt64, low: UInt64) {
        let ramVaddr = ramVaddr(size: size, below: biosVaddr)
        w.map(iova: 0, vaddr: ramVaddr, size: low)
        w.map(iova: 4 * gib - biosSize, vaddr: biosVaddr, size: biosSize, prot: "r")
        let sections = ramSections(o.machine, memory: size)
        if let high = sections.last, high.gpa == 4 * gib { w.map(iova: high.gpa, vaddr: ramVaddr + high.offset, size: high.size) }
        guard low > 0x10_0000 else { return }
        w.unmap(iova: 0, size: low)
        for s in sections where s.gpa < 4 * gib { w.map(iova: s.gpa, vaddr: ramVaddr + s.offset, size: s.size, prot: s.prot) }
    }

    static func backingName(_ b: Backing) -> String {
        switch b {
        case .pages4K: "4K pages"
        case .thp: "transparent hugepages"
        case .hugetlb2M: "2M hugetlbfs pages"
        case .hugetlb1G: "1G hugetlbfs pages"
        }
    }
}

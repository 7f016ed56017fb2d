import Testing
import VFIOCore
import VFIOModel
import VFIOReplay
import VFIORecord
import VFIOTrace

// The recorder's decoding and trace writing, fed the events a tracer would
// produce: the bytes a process passed and got back, as a little-endian
// x86-64 kernel lays out the structs of include/uapi/linux/vfio.h.

func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xff) } }
func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> (8 * UInt64($0))) & 0xff) } }

/// `struct vfio_iommu_type1_dma_map`.
func mapBytes(iova: UInt64, vaddr: UInt64, size: UInt64, flags: UInt32 = 3) -> [UInt8] {
    le32(32) + le32(flags) + le64(vaddr) + le64(iova) + le64(size)
}
/// `struct vfio_iommu_type1_dma_unmap`.
func unmapBytes(iova: UInt64, size: UInt64, flags: UInt32 = 0) -> [UInt8] {
    le32(24) + le32(flags) + le64(iova) + le64(size)
}

/// What a 6.12 kernel writes for GET_INFO with a buffer of `argsz` bytes on
/// an x86 VT-d domain: page sizes 4K|2M|1G; the chain (migration, DMA
/// available, IOVA ranges, each 8-byte aligned) only when the buffer holds
/// it, else `argsz` grown to the size needed (`vfio_iommu_type1_get_info`).
func infoBytes(argsz: UInt32, dmaAvail: UInt32 = 65535) -> [UInt8] {
    let ranges = [IOVARange(start: 0, last: 0xfedf_ffff), IOVARange(start: 0xfef0_0000, last: 0xffff_ffff_ffff)]
    let chain = InfoCapability.chain([.migration(flags: 0, pgsizeBitmap: 0x1000, maxDirtyBitmapSize: 256 << 20),
                                      .dmaAvail(dmaAvail), .iovaRange(ranges)], pad8: true)
    let needed = UInt32(24 + chain.count)
    let pgsizes: UInt64 = 0x1000 | 0x20_0000 | 0x4000_0000
    if argsz < needed {
        return le32(needed) + le32(3) + le64(pgsizes) + le32(0) + le32(0)
    }
    return le32(needed) + le32(3) + le64(pgsizes) + le32(24) + le32(0) + chain
}

let env612 = ProcessEnvironment(memlock: nil, capIPCLock: true, dmaEntryLimit: 65535, kernelRelease: "6.12.38+deb13-amd64")
let hugepage: UInt64 = 2 << 20

/// testpmd's session as the issue describes it (IOVA as VA, 2 MiB pages),
/// shortened to two maps, then an unmap of both.
func dpdkEvents() -> [RecordEvent] {
    let c = 1, g = 2
    let va: UInt64 = 0x1_0000_0000
    func region(_ at: UInt64, phys: UInt64) -> ObservedRegion {
        ObservedRegion(vaddr: at, size: hugepage, pageSize: hugepage, runs: [PhysicalRun(offset: 0, phys: phys, length: hugepage)],
                       name: "/dev/hugepages/rtemap_0")
    }
    return [
        .containerOpened(container: c, path: "/dev/vfio/vfio"),
        .containerIoctl(container: c, IoctlCall(request: VFIO.getAPIVersion, result: .success(0))),
        .containerIoctl(container: c, IoctlCall(request: VFIO.checkExtension, argument: 3, result: .success(1))),
        .groupIoctl(group: g, number: 12, IoctlCall(request: VFIO.groupGetStatus, before: le32(8) + le32(0), after: le32(8) + le32(1), result: .success(0)), target: nil),
        .groupIoctl(group: g, number: 12, IoctlCall(request: VFIO.groupSetContainer, before: le32(5), result: .success(0)), target: c),
        .containerIoctl(container: c, IoctlCall(request: VFIO.setIOMMU, argument: 3, result: .success(0), environment: env612)),
        .containerIoctl(container: c, IoctlCall(request: VFIO.iommuGetInfo, before: le32(24), after: infoBytes(argsz: 24), result: .success(0))),
        .containerIoctl(container: c, IoctlCall(request: VFIO.iommuGetInfo, before: le32(120), after: infoBytes(argsz: 120), result: .success(0))),
        .containerIoctl(container: c, IoctlCall(request: VFIO.iommuMapDMA, before: mapBytes(iova: va, vaddr: va, size: hugepage), after: mapBytes(iova: va, vaddr: va, size: hugepage),
                                                result: .success(0), lockedBefore: 0, lockedAfter: hugepage, memory: [region(va, phys: 0x4000_0000)], environment: env612)),
        .containerIoctl(container: c, IoctlCall(request: VFIO.iommuMapDMA, before: mapBytes(iova: va + hugepage, vaddr: va + hugepage, size: hugepage),
                                                result: .success(0), lockedBefore: hugepage, lockedAfter: 2 * hugepage, memory: [region(va + hugepage, phys: 0x8000_0000)], environment: env612)),
        // The same iova again: the kernel refuses it, nothing is charged.
        .containerIoctl(container: c, IoctlCall(request: VFIO.iommuMapDMA, before: mapBytes(iova: va, vaddr: va, size: hugepage),
                                                result: .failure(.EEXIST), lockedBefore: 2 * hugepage, lockedAfter: 2 * hugepage, memory: [region(va, phys: 0x4000_0000)], environment: env612)),
        .containerIoctl(container: c, IoctlCall(request: VFIO.iommuUnmapDMA, before: unmapBytes(iova: va, size: 4 << 20), after: unmapBytes(iova: va, size: 4 << 20),
                                                result: .success(0), lockedBefore: 2 * hugepage, lockedAfter: 0)),
    ]
}

func build(_ events: [RecordEvent]) -> [RecordedTrace] {
    var b = TraceBuilder(header: ["Scenario: recorded"])
    for e in events { b.add(e) }
    return b.finish()
}

func lines(_ t: RecordedTrace) -> [String] {
    printTrace(t.trace).split(separator: "\n").map(String.init)
}

@Suite("Recording: decoding and trace writing")
struct TraceBuilderTests {
    @Test("a recorded session is written as a trace that parses back to the same statements and replays on the model with every answer agreeing")
    func dpdkSessionReplays() throws {
        let traces = build(dpdkEvents())
        try #require(traces.count == 1)
        let text = printTrace(traces[0].trace)
        let parsed = try parseTrace(text, file: "recorded.trace").get()
        #expect(parsed.statements.map(\.kind) == traces[0].trace.statements.map(\.kind))
        let report = Replayer(backends: [ModelBackend(checksInvariants: true)]).run(parsed)
        for o in report.outcomes where o.failed { Issue.record("line \(o.line): \(o.statement): expected \(o.expected ?? ""), got \(o.got.map(\.text))") }
        #expect(report.errors.isEmpty)
        #expect(report.outcomes.filter { $0.expected != nil }.count >= 9)
    }

    @Test("the setup comes from the process and the probe: kernel, iommu, memlock, CAP_IPC_LOCK, dma_entry_limit, and a domain per group with GET_INFO's page sizes and ranges")
    func setup() throws {
        let l = lines(build(dpdkEvents())[0])
        #expect(l.contains("kernel 6.12.38+deb13-amd64"))
        #expect(l.contains("iommu type1v2 => ok"))
        #expect(l.contains("memlock unlimited"))
        #expect(l.contains("cap-ipc-lock on"))
        #expect(l.contains("dma-entry-limit 65535"))
        // The two usable ranges are the default x86 layout: aperture 48
        // bits, the MSI window the hole between them.
        #expect(l.contains("domain g12 pgsizes=4K,2M,1G"))
        let setupEnd = try #require(l.firstIndex { $0.hasPrefix("extension") })
        #expect(l.firstIndex(of: "domain g12 pgsizes=4K,2M,1G")! < setupEnd)
    }

    @Test("every ioctl is written with the kernel's answer: GET_INFO's fields and argsz, MAP's errno, UNMAP's written-back size")
    func answers() {
        let l = lines(build(dpdkEvents())[0])
        #expect(l.contains("extension type1v2 => 1"))
        #expect(l.contains("info argsz=24 => ok pgsizes=4K,2M,1G iova=none dma-avail=none argsz=120"))
        #expect(l.contains("info argsz=120 => ok pgsizes=4K,2M,1G iova=0x0-0xfedfffff,0xfef00000-0xffffffffffff dma-avail=65535 argsz=120"))
        #expect(l.contains("map iova=0x100000000 vaddr=0x100000000 size=2M prot=rw => ok"))
        #expect(l.contains("map iova=0x100000000 vaddr=0x100000000 size=2M prot=rw => EEXIST"))
        #expect(l.contains("unmap iova=0x100000000 size=4M => ok size=4M"))
        #expect(l.contains("# VFIO_GET_API_VERSION => ok"))
        #expect(l.contains { $0.hasPrefix("# VFIO_GROUP_GET_STATUS flags=viable (g12) => ok") })
    }

    @Test("an UNMAP's answer is the size the kernel wrote back, not the size asked")
    func unmapWrittenBack() {
        var events = dpdkEvents()
        events.removeLast()
        events.append(.containerIoctl(container: 1, IoctlCall(request: VFIO.iommuUnmapDMA, before: unmapBytes(iova: 0x1_0000_0000, size: 8 << 20),
                                                              after: unmapBytes(iova: 0x1_0000_0000, size: 4 << 20), result: .success(0),
                                                              lockedBefore: 4 << 20, lockedAfter: 0)))
        #expect(lines(build(events)[0]).contains("unmap iova=0x100000000 size=8M => ok size=4M"))
    }

    @Test("memory is declared once per region before the first map touching it, one statement per physically contiguous run, with its page size")
    func memory() {
        let l = lines(build(dpdkEvents())[0])
        let memories = l.filter { $0.hasPrefix("memory") }
        #expect(memories == [
            "memory vaddr=0x100000000 size=2M page=2M phys=0x40000000  # /dev/hugepages/rtemap_0",
            "memory vaddr=0x100200000 size=2M page=2M phys=0x80000000  # /dev/hugepages/rtemap_0",
        ])
        let firstMap = l.firstIndex { $0.hasPrefix("map ") }!
        #expect(l.firstIndex(of: memories[0])! < firstMap)
    }

    @Test("a run broken in the middle gives two memory statements; device memory is pfnmap; unreadable frames leave phys= out with a note")
    func memoryLayouts() {
        let c = 1
        let va: UInt64 = 0x7f00_0000_0000
        let split = ObservedRegion(vaddr: va, size: 16 << 10, pageSize: 4096,
                                   runs: [PhysicalRun(offset: 0, phys: 0x1000_0000, length: 8 << 10), PhysicalRun(offset: 8 << 10, phys: 0x2000_0000, length: 8 << 10)])
        let bar = ObservedRegion(vaddr: va + (1 << 20), size: 4096, pageSize: 4096, pfnmap: true)
        let unknown = ObservedRegion(vaddr: va + (2 << 20), size: 4096, pageSize: 4096, runs: nil)
        var events: [RecordEvent] = [.containerOpened(container: c, path: "/dev/vfio/vfio")]
        for (i, r) in [split, bar, unknown].enumerated() {
            events.append(.containerIoctl(container: c, IoctlCall(request: VFIO.iommuMapDMA, before: mapBytes(iova: UInt64(i) << 20, vaddr: r.vaddr, size: r.size),
                                                                  result: .success(0), memory: [r])))
        }
        let t = build(events)[0]
        let m = lines(t).filter { $0.hasPrefix("memory") }
        #expect(m == [
            "memory vaddr=0x7f0000000000 size=8K phys=0x10000000",
            "memory vaddr=0x7f0000002000 size=8K phys=0x20000000",
            "memory vaddr=0x7f0000100000 size=4K pfnmap",
            "memory vaddr=0x7f0000200000 size=4K",
        ])
        #expect(t.notes.contains { $0.contains("pagemap") })
    }

    @Test("frames that are the shared zero page (a read-only pin of untouched memory on 6.1) are written pfnmap: reserved, never charged")
    func zeroPage() {
        let c = 1
        let va: UInt64 = 0x7f00_0000_0000, zero: UInt64 = 0x331_0000
        let rom = ObservedRegion(vaddr: va, size: 12 << 10, pageSize: 4096,
                                 runs: [PhysicalRun(offset: 0, phys: zero, length: 4096), PhysicalRun(offset: 4096, phys: zero, length: 4096),
                                        PhysicalRun(offset: 8 << 10, phys: 0x5000_0000, length: 4096)],
                                 zeroPage: zero)
        let t = build([.containerOpened(container: c, path: "/dev/vfio/vfio"),
                       .containerIoctl(container: c, IoctlCall(request: VFIO.iommuMapDMA, before: mapBytes(iova: 0, vaddr: va, size: rom.size),
                                                               result: .success(0), memory: [rom]))])[0]
        let m = lines(t).filter { $0.hasPrefix("memory") }.map { $0.prefix { $0 != "#" }.split(separator: " ").joined(separator: " ") }
        #expect(m == [
            "memory vaddr=0x7f0000000000 size=4K phys=0x3310000 pfnmap",
            "memory vaddr=0x7f0000001000 size=4K phys=0x3310000 pfnmap",
            "memory vaddr=0x7f0000002000 size=4K phys=0x50000000",
        ])
    }

    @Test("check locked= adds up the VmLck changes around the container's own maps and unmaps, and check mappings= counts what is mapped, after each run")
    func checks() {
        let l = lines(build(dpdkEvents())[0])
        let checks = l.filter { $0.hasPrefix("check") }
        // After the maps (the EEXIST one charges nothing), then after the unmap.
        #expect(checks == ["check locked=4M", "check mappings=2", "check locked=0", "check mappings=0"])
    }

    @Test("a container opened as /dev/iommu is iommufd's type1 compatibility: its trace says `container iommufd`; /dev/vfio/vfio's says nothing (type1)")
    func iommufdContainer() throws {
        let va: UInt64 = 0x7f00_0000_0000
        let region = ObservedRegion(vaddr: va, size: 4096, pageSize: 4096, runs: [PhysicalRun(offset: 0, phys: 0x5000_0000, length: 4096)])
        func trace(_ path: String) -> [String] {
            lines(build([.containerOpened(container: 1, path: path),
                         .containerIoctl(container: 1, IoctlCall(request: VFIO.iommuMapDMA, before: mapBytes(iova: 0, vaddr: va, size: 4096),
                                                                 result: .success(0), memory: [region]))])[0])
        }
        #expect(trace("/dev/iommu").contains("container iommufd"))
        #expect(!trace("/dev/vfio/vfio").contains { $0.hasPrefix("container ") })
        // It parses and replays as an iommufd container.
        let text = trace("/dev/iommu").joined(separator: "\n") + "\n"
        let parsed = try parseTrace(text, file: "r.trace").get()
        #expect(parsed.statements.contains { if case .container(.iommufd) = $0.kind { return true } else { return false } })
    }

    @Test("two containers in one process give two traces, each with its own groups and calls")
    func twoContainers() {
        var events = dpdkEvents()
        events += [
            .containerOpened(container: 7, path: "/dev/vfio/vfio"),
            .groupIoctl(group: 8, number: 13, IoctlCall(request: VFIO.groupSetContainer, before: le32(9), result: .success(0)), target: 7),
            .containerIoctl(container: 7, IoctlCall(request: VFIO.setIOMMU, argument: 1, result: .success(0), environment: env612)),
        ]
        let traces = build(events)
        #expect(traces.count == 2)
        let second = lines(traces[1])
        #expect(second.contains("iommu type1 => ok"))
        #expect(second.contains { $0.hasPrefix("domain g13") })
        #expect(!second.contains { $0.hasPrefix("domain g12") })
        #expect(!lines(traces[0]).contains { $0.hasPrefix("domain g13") })
    }

    @Test("a group that leaves is detached: UNSET_CONTAINER, or its last fd closed; a failed SET_CONTAINER is written with its errno")
    func detach() {
        var events = dpdkEvents()
        events.append(.groupIoctl(group: 2, number: 12, IoctlCall(request: VFIO.groupUnsetContainer, result: .success(0)), target: nil))
        events.append(.groupIoctl(group: 3, number: 14, IoctlCall(request: VFIO.groupSetContainer, before: le32(5), result: .success(0)), target: 1))
        events.append(.groupReleased(group: 3))
        events.append(.groupIoctl(group: 4, number: 15, IoctlCall(request: VFIO.groupSetContainer, before: le32(5), result: .failure(.EPERM)), target: 1))
        let l = lines(build(events)[0])
        #expect(l.contains("detach g12"))
        #expect(l.contains { $0.hasPrefix("domain g14") && $0.contains("=> ok") })
        #expect(l.contains("detach g14  # the group's last fd was closed"))
        #expect(l.contains { $0.hasPrefix("domain g15") && $0.contains("=> EPERM") })
    }

    @Test("a dirty bitmap the kernel wrote is decoded to IOVA ranges, bit i for the page at iova + i*pgsize")
    func dirty() {
        // GET_BITMAP over 8 pages of 4K from 0x100000: bits 0, 1 and 5 set.
        let request = le32(48) + le32(4) + le64(0x10_0000) + le64(8 * 4096) + le64(4096) + le64(8) + le64(0xdead_0000)
        let events: [RecordEvent] = [
            .containerOpened(container: 1, path: "/dev/vfio/vfio"),
            .containerIoctl(container: 1, IoctlCall(request: VFIO.iommuDirtyPages, before: le32(8) + le32(1), result: .success(0))),
            .containerIoctl(container: 1, IoctlCall(request: VFIO.iommuDirtyPages, before: request, after: request, result: .success(0), bitmap: [0b0010_0011] + [UInt8](repeating: 0, count: 7))),
        ]
        let l = lines(build(events)[0])
        #expect(l.contains("dirty start => ok"))
        #expect(l.contains("dirty get iova=0x100000 size=32K pgsize=4K => ok dirty=0x100000-0x101fff,0x105000-0x105fff"))
    }

    @Test("a program that used no container gives no trace")
    func nothing() {
        #expect(build([.note("nothing")]).isEmpty)
    }
}

@Suite("Recording: the /proc files")
struct ProcFilesTests {
    @Test("memlock is the soft limit of 'Max locked memory', unlimited as nil")
    func limits() {
        let text = """
        Limit                     Soft Limit           Hard Limit           Units
        Max locked memory         8388608              16777216             bytes
        """
        #expect(ProcFiles.memlock(limits: text) == .some(8 << 20))
        #expect(ProcFiles.memlock(limits: "Max locked memory         unlimited            unlimited            bytes") == .some(nil))
        #expect(ProcFiles.memlock(limits: "Max open files 1024 1024 files") == .none)
    }

    @Test("VmLck is in KiB; CAP_IPC_LOCK is bit 14 of CapEff")
    func status() {
        let text = "Name:\ttestpmd\nTgid:\t42\nPPid:\t1\nVmLck:\t    4096 kB\nCapEff:\t0000000000004000\n"
        #expect(ProcFiles.lockedBytes(status: text) == 4 << 20)
        #expect(ProcFiles.hasIPCLock(status: text) == true)
        #expect(ProcFiles.hasIPCLock(status: "CapEff:\t0000000000003fff\n") == false)
        #expect(ProcFiles.ids(status: text)! == (42, 1))
    }

    @Test("smaps gives each VMA's bounds, KernelPageSize and VM_PFNMAP; a map's range is widened to whole pages of each VMA it touches")
    func smaps() {
        let text = """
        7f0000000000-7f0000400000 rw-s 00000000 00:0f 1234                       /dev/hugepages/rtemap_0
        Size:               4096 kB
        KernelPageSize:     2048 kB
        VmFlags: rd wr sh mr mw me ms de ht sd
        7f0000400000-7f0000401000 rw-s 00000000 00:06 99                         /dev/vfio/devices/vfio0
        KernelPageSize:        4 kB
        VmFlags: rd wr sh mr mw me ms io pf dd sd
        """
        let vmas = ProcFiles.vmas(smaps: text)
        #expect(vmas.count == 2)
        #expect(vmas[0].kernelPageSize == 2 << 20 && !vmas[0].pfnmap && vmas[0].name == "/dev/hugepages/rtemap_0")
        #expect(vmas[1].pfnmap)
        let parts = ProcFiles.touched(vmas, vaddr: 0x7f00_0020_0000 + 4096, size: 0x20_0000)
        #expect(parts.map { [$0.start, $0.end] } == [[0x7f00_0020_0000, 0x7f00_0040_0000], [0x7f00_0040_0000, 0x7f00_0040_1000]])
    }
}

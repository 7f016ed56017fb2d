import ScriptedSystem
import Testing
import VFIOCore
@testable import VFIOKernel

/// The kernel backend on a scripted machine: what it opens, refuses and
/// gives back, with no kernel.
func errno(_ r: Result<Void, Errno>) -> Errno? { if case .failure(let e) = r { e } else { nil } }

@Suite("The kernel backend")
struct KernelBackendTests {
    static let limitPath = "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit"

    /// A machine with viable groups 7 and 8 (one device each) and
    /// `dma_entry_limit` at `limit` (65535, what traces assume, by default).
    func machine(limit: String = "65535") -> ScriptedSystemCalls {
        let sys = ScriptedSystemCalls.host(limit: limit, groups: [7, 8])
        sys.files["/proc/self/status"] = "Name:\tvfio-sim\nVmLck:\t       8 kB\n"
        return sys
    }

    @Test("a group whose device is bound to another driver is refused, naming the driver")
    func foreignDriver() {
        let sys = machine()
        sys.addGroup(9, devices: ["0000:00:05.0"], driver: "e1000")
        #expect(throws: BackendError.self) { try KernelBackend(groupPaths: ["/dev/vfio/9"], sys: sys) }
        do { _ = try KernelBackend(groupPaths: ["/dev/vfio/9"], sys: sys) } catch {
            #expect(error.message == "device 0000:00:05.0 in group 9 is bound to e1000, not vfio-pci; refusing")
        }
        #expect(!sys.log.contains("open /dev/vfio/9"))
    }

    @Test("without root the backend refuses before it opens anything")
    func needsRoot() {
        let sys = machine()
        sys.isRoot = false
        #expect(throws: BackendError.self) { try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys) }
        #expect(sys.log.isEmpty)
    }

    @Test("a group that already has a container is refused and every fd opened is closed")
    func containerSet() {
        let sys = machine()
        sys.ioctlAnswer = { _, request, buffer, _ in
            if request == VFIO.groupGetStatus, let buffer { buffer.storeBytes(of: UInt32(3), toByteOffset: 4, as: UInt32.self) }
            return .success(0)
        }
        #expect(throws: BackendError.self) { try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys) }
        #expect(sys.fds.isEmpty)
    }

    @Test("trace domains bind to the real groups in the order they are named; one too many gets ENODEV")
    func groupsInOrder() throws {
        let sys = machine()
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7", "/dev/vfio/8"], sys: sys)
        #expect(errno(kb.attachGroup(DomainSpec(name: "dB"))) == nil)
        #expect(errno(kb.attachGroup(DomainSpec(name: "dA"))) == nil)
        #expect(errno(kb.attachGroup(DomainSpec(name: "dC"))) == .ENODEV)
        let set = "0x" + String(VFIO.groupSetContainer, radix: 16)
        #expect(sys.log.filter { $0.hasSuffix(set) } == ["ioctl /dev/vfio/7 \(set)", "ioctl /dev/vfio/8 \(set)"])
        // Detaching a name never bound is EINVAL, as the kernel answers an
        // unset on a group without a container.
        #expect(errno(kb.detachGroup("dC")) == .EINVAL)
        kb.close()
    }

    @Test("opening sets the trace defaults and arms the signal cleanup; closing unmaps all, unsets and disarms")
    func openAndClose() throws {
        let sys = machine(limit: "4096")
        var asked: [String] = []
        sys.parent = { asked.append($0.line); return .ok }
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
        #expect(asked == ["set vfio_iommu_type1.dma_entry_limit 65535"])
        #expect(sys.log.contains("capset false") && sys.log.contains("setrlimit unlimited"))
        #expect(sys.armed != nil)
        _ = kb.attachGroup(DomainSpec(name: "d0"))
        try kb.setDMAEntryLimit(10)
        #expect(asked.last == "set vfio_iommu_type1.dma_entry_limit 10")
        let problems = kb.close()
        #expect(problems.isEmpty)
        #expect(sys.armed == nil)
        #expect(sys.fds.isEmpty)
        let tail = sys.log.suffix(6)
        #expect(tail.contains("ioctl /dev/vfio/vfio 0x\(String(VFIO.iommuUnmapDMA, radix: 16))"))  // UNMAP_DMA (ALL)
        #expect(tail.contains("ioctl /dev/vfio/7 0x\(String(VFIO.groupUnsetContainer, radix: 16)) 0"))
        #expect(kb.close().isEmpty)  // a second close does nothing
    }

    @Test("locked memory still charged after the container is released is reported as a leak")
    func leak() throws {
        let sys = machine()
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
        sys.files["/proc/self/status"] = "VmLck:\t    8200 kB\n"
        #expect(kb.lockedMemory() == .value((8200 - 8) * 1024))
        #expect(kb.close() == [.lockedAfterRelease(bytes: (8200 - 8) * 1024)])
    }

    @Test("pfnmap memory maps the BAR's resource file and places it at the address sysfs lists")
    func bar() throws {
        let sys = machine()
        let dev = "/sys/bus/pci/devices/0000:00:05.0"
        sys.files[dev + "/resource"] = "0x00000000fe000000 0x00000000fe0000ff 0x0000000000040200\n"
            + "0x0000000000000000 0x0000000000000000 0x0000000000000000\n"
            + "0x0000000800000000 0x000000083fffffff 0x000000000014220c\n"
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], barPath: dev + "/resource2", sys: sys)
        let region = try kb.addMemory(MemorySpec(vaddr: 0x7e00_0000_0000, size: 1 << 30, pfnmap: true))
        #expect(region.layout == .contiguous(base: 0x8_0000_0000))
        #expect(region.pfnmap)
        #expect(sys.log.contains("mmap \(dev)/resource2 0x7e0000000000 \(1 << 30)"))
        kb.close()
        #expect(sys.log.contains("munmap 0x7e0000000000"))
    }

    @Test("thp memory asks for transparent hugepages (order 3: MADV_HUGEPAGE), plain 4K memory refuses them (order 1: MADV_NOHUGEPAGE), phys=contiguous populates at once (order 0)")
    func transparentHugepageAdvice() throws {
        let sys = machine()
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
        // The scripted machine has no pagemap: the frames cannot be read
        // afterwards, the mmap is made all the same.
        _ = try? kb.addMemory(MemorySpec(vaddr: 0x7f00_0000_0000, size: 4 << 20, placement: .thp))
        _ = try? kb.addMemory(MemorySpec(vaddr: 0x7f10_0000_0000, size: 4 << 20))
        _ = try? kb.addMemory(MemorySpec(vaddr: 0x7f20_0000_0000, size: 4 << 20, placement: .contiguous))
        #expect(sys.log.contains("mmap 0x7f0000000000 \(4 << 20) order 3"))
        #expect(sys.log.contains("mmap 0x7f1000000000 \(4 << 20) order 1"))
        #expect(sys.log.contains("mmap 0x7f2000000000 \(4 << 20)"))
        kb.close()
    }

    @Test("mlock locks the size rounded up to pages, replaces an earlier mlock, and is unlocked at close; a size past 2^64-4096 is refused")
    func mlockHoldsMemoryLocked() throws {
        let sys = machine()
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
        try kb.mlock(6 << 20 | 1)
        #expect(sys.log.last == "mmap locked \((6 << 20) + 4096)")
        try kb.mlock(4096)
        #expect(sys.log.suffix(2) == ["munmap 0x7e0000000000", "mmap locked 4096"])
        #expect(throws: BackendError.self) { try kb.mlock(UInt64.max) }
        try kb.mlock(8192)
        kb.close()
        #expect(Array(sys.log.suffix(from: sys.log.lastIndex(of: "mmap locked 8192")!)).contains("munmap 0x7e0000000000"))
    }

    @Test("pfnmap memory without a BAR is a setup the backend cannot honour")
    func noBAR() throws {
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: machine())
        #expect(throws: BackendError.self) { try kb.addMemory(MemorySpec(vaddr: 0x1000, size: 4096, pfnmap: true)) }
        kb.close()
    }
}

@Suite("Reading the machine")
struct MachineParsingTests {
    func entry(pfn: UInt64, present: Bool = true) -> [UInt8] {
        let v = pfn | (present ? 1 << 63 : 0)
        return (0..<8).map { UInt8((v >> UInt64(8 * $0)) & 0xff) }
    }

    @Test("pagemap entries join into runs where offset and frame both follow on")
    func pagemapRuns() throws {
        var runs: [PhysicalRun] = []
        try Pagemap.appendRuns(entry(pfn: 0x100) + entry(pfn: 0x101) + entry(pfn: 0x200) + entry(pfn: 0x1ff), offset: 0, to: &runs)
        #expect(runs == [PhysicalRun(offset: 0, phys: 0x100000, length: 8192),
                         PhysicalRun(offset: 8192, phys: 0x200000, length: 4096),
                         PhysicalRun(offset: 12288, phys: 0x1ff000, length: 4096)])
        // A second batch continues the last run when it follows on
        // (0x1ff000 + 4K is 0x200000), and starts a new one when not.
        try Pagemap.appendRuns(entry(pfn: 0x200), offset: 16384, to: &runs)
        #expect(runs.count == 3 && runs[2].length == 8192)
        try Pagemap.appendRuns(entry(pfn: 0x300), offset: 20480, to: &runs)
        #expect(runs.count == 4 && runs[3] == PhysicalRun(offset: 20480, phys: 0x300000, length: 4096))
    }

    @Test("a page that is not present, or whose frame is hidden, is an error at its offset")
    func pagemapHole() {
        var runs: [PhysicalRun] = []
        #expect(throws: Pagemap.Error(offset: 4096)) { try Pagemap.appendRuns(entry(pfn: 1) + entry(pfn: 2, present: false), offset: 0, to: &runs) }
        #expect(throws: Pagemap.Error(offset: 8192)) { try Pagemap.appendRuns(entry(pfn: 0), offset: 8192, to: &runs) }
    }

    func info(ranges: [IOVARange]?, pgsizes: UInt64 = 0x40201000) -> IOMMUInfo {
        var bytes = [UInt8](repeating: 0, count: 24)
        for i in 0..<8 { bytes[8 + i] = UInt8((pgsizes >> UInt64(8 * i)) & 0xff) }
        if let ranges {
            bytes[16] = 24
            var cap: [UInt8] = InfoCapability.iovaRange(ranges).encoded
            cap[4...7] = [0, 0, 0, 0]
            bytes += cap
        }
        return IOMMUInfo(bytes: bytes)
    }

    @Test("the probe turns the holes between valid IOVA ranges into reserved regions")
    func reservedGaps() {
        let vtd = info(ranges: [IOVARange(start: 0, last: 0xfedf_ffff), IOVARange(start: 0xfef0_0000, last: 0x7f_ffff_ffff)])
        let d = IOMMUProbe.domain(named: "d0", info: vtd, coherent: false)
        #expect(d?.aperture == IOVARange(start: 0, last: 0x7f_ffff_ffff))
        #expect(d?.reserved == [IOVARange(start: 0xfee0_0000, last: 0xfeef_ffff)])
        #expect(d?.pgsizes == PageSizes(rawValue: 0x40201000))
        #expect(d?.coherent == false)
        let whole = IOMMUProbe.domain(named: "d0", info: info(ranges: [IOVARange(start: 0, last: .max)]), coherent: true)
        #expect(whole?.reserved == [])
        #expect(IOMMUProbe.domain(named: "d0", info: info(ranges: nil), coherent: true) == nil)
    }

    @Test("the IOMMU is named from the target of the device's iommu link", arguments: [
        ("../../devices/virtual/iommu/dmar0", "intel-iommu"),
        ("../../devices/pci0000:00/0000:00:00.2/iommu/ivhd0", "amd-iommu"),
        ("../../devices/pci0000:00/0000:00:03.0/virtio0", "virtio-iommu"),
        ("../../devices/platform/smmu/iommu/smmu3.0", "smmu3.0"),
    ])
    func iommuName(link: String, name: String) { #expect(IOMMUProbe.name(iommuLink: link) == name) }

    @Test("the host walker's answer is leaf counts by page size; anything else is not observable")
    func walkerReply() {
        #expect(HostPageTableWalk.parseReply("OK 4096:3 2097152:1") == .value(PTECounts([4096: 3, 2 << 20: 1])))
        #expect(HostPageTableWalk.parseReply("OK") == .value(PTECounts()))
        #expect(HostPageTableWalk.parseReply("ERR no context entry") == .notObservable("the host's page-table walker: no context entry"))
        #expect(HostPageTableWalk.parseReply("OK 4096") == .notObservable("the host's page-table walker answered 'OK 4096'"))
    }

    @Test("a PCI address gives bus and devfn; another segment or a malformed one gives nothing")
    func busDevfn() {
        #expect(HostPageTableWalk.busDevfn("0000:00:03.1").map { [$0.bus, $0.devfn] } == [0, 3 << 3 | 1])
        #expect(HostPageTableWalk.busDevfn("0001:00:03.0") == nil)
        #expect(HostPageTableWalk.busDevfn("0000:00:20.0") == nil)
        #expect(HostPageTableWalk.busDevfn("garbage") == nil)
    }

    @Test("VmLck is read in kB and given in bytes")
    func vmLck() {
        #expect(KernelBackend.vmLck(status: "Name:\tx\nVmLck:\t    1024 kB\nVmPin:\t0 kB") == 1 << 20)
        #expect(KernelBackend.vmLck(status: "Name:\tx\n") == nil)
        #expect(KernelBackend.vmLck(status: "VmLck:\t0 kB\n") == 0)
        #expect(KernelBackend.vmLck(status: "VmLck:\t kB\n") == nil)
        #expect(KernelBackend.vmLck(status: "XVmLck:\t4 kB\nVmLck:\t8 kB") == 8192)
        #expect(KernelBackend.vmLck(status: "VmLck:\t18014398509481983 kB") == UInt64(18014398509481983) * 1024)
        #expect(KernelBackend.vmLck(status: "VmLck:\t18014398509481984 kB") == nil)
        #expect(KernelBackend.vmLck(status: "VmLck:\t99999999999999999999 kB") == nil)
    }
}

@Suite("Decoding a dirty bitmap")
struct DirtyBitsTests {
    @Test("set bits become IOVA ranges, adjacent pages joined, bits past the pages asked for ignored")
    func ranges() {
        // Pages 0-1, 5, and 63-66 of a bitmap at 0x10000 with 4K pages.
        var words: [UInt64] = [0, 0]
        for bit in [0, 1, 5, 63, 64, 65, 66, 100] { words[bit / 64] |= 1 << UInt64(bit % 64) }
        #expect(DirtyBits.ranges(words, pages: 80, iova: 0x10000, pgsize: 4096) == [
            IOVARange(start: 0x10000, last: 0x11fff),
            IOVARange(start: 0x15000, last: 0x15fff),
            IOVARange(start: 0x10000 + 63 * 4096, last: 0x10000 + 67 * 4096 - 1),
        ])
    }

    @Test("whole words of ones and zeros, and a run that reaches the last page")
    func wholeWords() {
        let words: [UInt64] = [.max, .max, 0, .max]
        #expect(DirtyBits.ranges(words, pages: 256, iova: 0, pgsize: 4096) == [
            IOVARange(start: 0, last: 128 * 4096 - 1), IOVARange(start: 192 * 4096, last: 256 * 4096 - 1),
        ])
        #expect(DirtyBits.ranges([0, 0], pages: 128, iova: 0, pgsize: 4096) == [])
    }

    @Test("a run that ends at 2^64-1 does not wrap")
    func top() {
        #expect(DirtyBits.ranges([0b10], pages: 2, iova: 0xffff_ffff_ffff_e000, pgsize: 4096)
                == [IOVARange(start: 0xffff_ffff_ffff_f000, last: .max)])
    }
}

@Suite("Binding trace groups to real ones")
struct GroupBindingTests {
    @Test("a detached group is free again: the next name the trace attaches gets it")
    func detachFrees() throws {
        let sys = KernelBackendTests().machine()
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7", "/dev/vfio/8"], sys: sys)
        _ = kb.attachGroup(DomainSpec(name: "a"))
        _ = kb.attachGroup(DomainSpec(name: "b"))
        #expect(errno(kb.detachGroup("a")) == nil)
        #expect(errno(kb.attachGroup(DomainSpec(name: "c"))) == nil)
        let set = "0x" + String(VFIO.groupSetContainer, radix: 16)
        #expect(sys.log.filter { $0.hasSuffix(set) } == ["ioctl /dev/vfio/7 \(set)", "ioctl /dev/vfio/8 \(set)", "ioctl /dev/vfio/7 \(set)"])
        kb.close()
    }
}

@Suite("What the probe adds to GET_INFO")
struct LeavesTests {
    @Test("VT-d builds 4K, 2M and 1G leaves whatever page sizes its driver advertises; other IOMMUs are taken at their word")
    func vtdLeaves() {
        #expect(IOMMUProbe.leaves(iommu: "intel-iommu", pgsizes: PageSizes(rawValue: 0xffff_ffff_ffff_f000)) == PageSizes([4096, 2 << 20, 1 << 30]))
        #expect(IOMMUProbe.leaves(iommu: "intel-iommu", pgsizes: PageSizes([4096, 2 << 20, 1 << 30])) == nil)
        #expect(IOMMUProbe.leaves(iommu: "amd-iommu", pgsizes: PageSizes(rawValue: 0xffff_ff7f_ffff_f000)) == nil)
    }
}

import Testing
import VFIOCore
@testable import VFIOModel

/// A v2 container with the default domain, 64 MiB of 2M pages at
/// 0x7f0000000000 and the given kernel.
func makeContainer(_ version: KernelVersion = KernelVersion(7, 3), v2: Bool = true) -> Type1Container {
    var c = Type1Container(profile: KernelProfile(version))
    _ = c.memory.add(Spec(vaddr: 0x7F00_0000_0000, size: 64 << 20, pageSize: 2 << 20, layout: .contiguous(base: 1 << 32)))
    _ = c.groupSetContainer(.default)
    _ = c.setIOMMU(v2 ? .type1v2 : .type1)
    return c
}

func map(_ iova: UInt64, _ size: UInt64, vaddr: UInt64 = 0x7F00_0000_0000, flags: MapDMA.Flags = [.read, .write]) -> MapDMA {
    MapDMA(flags: flags, vaddr: vaddr, iova: iova, size: size)
}

extension Result {
    var errno: Failure? { if case .failure(let e) = self { return e } else { return nil } }
}

@Suite("type1 rules")
struct ContainerRuleTests {
    @Test("a v2 unmap that bisects a mapping fails with EINVAL and removes nothing")
    func v2Bisect() {
        var c = makeContainer()
        #expect(c.mapDMA(map(0x20_0000, 4 << 20)).errno == nil)
        #expect(c.unmapDMA(UnmapDMA(flags: [], iova: 0x20_0000, size: 2 << 20)).errno == .EINVAL)
        #expect(c.mappingCount == 1)
        #expect(c._checkInvariants() == nil)
    }

    @Test("a failed MAP leaves locked memory, mappings, PTEs and dma_avail as before")
    func failedMapChangesNothing() {
        var c = makeContainer()
        c.memlock = 3 << 20
        #expect(c.mapDMA(map(0x20_0000, 2 << 20)).errno == nil)
        let before = (c.lockedBytes, c.mappingCount, c.dmaAvail, c.pageTableEntries(group: nil))
        #expect(c.mapDMA(map(0x40_0000, 4 << 20, vaddr: 0x7F00_0020_0000)).errno == .ENOMEM)
        #expect(c.lockedBytes == before.0 && c.mappingCount == before.1 && c.dmaAvail == before.2)
        #expect(c.pageTableEntries(group: nil) == before.3)
        #expect(c._checkInvariants() == nil)
    }

    @Test("every u64 corner of MAP gets the kernel's errno, per version",
          arguments: [(KernelVersion(6, 1), Errno.EINVAL), (KernelVersion(6, 12), .EINVAL), (KernelVersion(7, 3), .EOVERFLOW)])
    func mapOverflowCorners(version: KernelVersion, wrap: Errno) {
        var c = makeContainer(version)
        let top: UInt64 = 0xFFFF_FFFF_FFFF_F000
        #expect(c.mapDMA(map(top, 8192)).errno == wrap)
        #expect(c.mapDMA(map(0x1000, 8192, vaddr: top)).errno == wrap)
        #expect(c.mapDMA(map(0x1000, top)).errno == wrap)
        #expect(c.mapDMA(map(top, 4096)).errno == .EINVAL)            // outside the 48-bit aperture
        #expect(c.mapDMA(map(0, 0)).errno == .EINVAL)
        #expect(c.mapDMA(map(4096, UInt64.max - 4095)).errno == wrap)
        #expect(c._checkInvariants() == nil)
    }

    @Test("UNMAP of size 2^64 minus a page from page 1 ends exactly at 2^64-1: no wrap")
    func unmapEndsAtTop() {
        var c = makeContainer()
        #expect(c.unmapDMA(UnmapDMA(flags: [], iova: 0x1000, size: 0xFFFF_FFFF_FFFF_F000)) == .success(0))
        #expect(c.unmapDMA(UnmapDMA(flags: [], iova: 0x2000, size: 0xFFFF_FFFF_FFFF_F000)).errno == .EOVERFLOW)
    }

    @Test("a dma_entry_limit of 0 refuses every MAP with ENOSPC; 2^32-1 is accepted")
    func entryLimitCorners() {
        var c = Type1Container()
        c.dmaEntryLimit = 0
        _ = c.memory.add(Spec(vaddr: 0x10_0000, size: 1 << 20))
        _ = c.groupSetContainer(.default)
        _ = c.setIOMMU(.type1v2)
        #expect(c.mapDMA(map(0x10_0000, 4096, vaddr: 0x10_0000)).errno == .ENOSPC)
        var d = Type1Container()
        d.dmaEntryLimit = .max
        _ = d.memory.add(Spec(vaddr: 0x10_0000, size: 1 << 20))
        _ = d.groupSetContainer(.default)
        _ = d.setIOMMU(.type1v2)
        #expect(d.mapDMA(map(0x10_0000, 4096, vaddr: 0x10_0000)).errno == nil)
        #expect(d.dmaAvail == UInt32.max - 1)
        #expect(d._checkInvariants() == nil)
    }

    @Test("a memlock of 0 refuses normal pages but not CAP_IPC_LOCK")
    func memlockZero() {
        var c = makeContainer()
        c.memlock = 0
        #expect(c.mapDMA(map(0x20_0000, 4096)).errno == .ENOMEM)
        c.capIPCLock = true
        #expect(c.mapDMA(map(0x20_0000, 4096)).errno == nil)
        #expect(c.lockedBytes == 4096)
    }

    @Test("a domain whose aperture is one page holds exactly one page")
    func onePageAperture() {
        var c = Type1Container()
        _ = c.memory.add(Spec(vaddr: 0x10_0000, size: 1 << 20))
        _ = c.groupSetContainer(DomainSpec(name: "d0", aperture: IOVARange(start: 0x1000, last: 0x1FFF), reserved: []))
        #expect(c.setIOMMU(.type1v2).errno == nil)
        #expect(c.mapDMA(map(0x1000, 4096, vaddr: 0x10_0000)).errno == nil)
        #expect(c.mapDMA(map(0x2000, 4096, vaddr: 0x10_0000)).errno == .EINVAL)
        #expect(c.mapDMA(map(0, 8192, vaddr: 0x10_0000)).errno == .EEXIST)   // overlap is checked before the range
        #expect(c.mapDMA(map(0x2000, 8192, vaddr: 0x10_0000)).errno == .EINVAL)
    }

    @Test("a domain with an empty page-size bitmap attaches but every MAP fails with ENODEV and is undone")
    func emptyBitmap() {
        var c = Type1Container()
        _ = c.memory.add(Spec(vaddr: 0x10_0000, size: 1 << 20))
        _ = c.groupSetContainer(DomainSpec(name: "d0", pgsizes: PageSizes(rawValue: 0)))
        #expect(c.setIOMMU(.type1v2).errno == nil)
        #expect(c.mapDMA(map(0x1000, 4096, vaddr: 0x10_0000)).errno == .ENODEV)
        #expect(c.lockedBytes == 0 && c.mappingCount == 0)
        #expect(c._checkInvariants() == nil)
    }

    @Test("UNMAP_ALL after any sequence leaves an empty container with nothing locked")
    func unmapAllEmpties() {
        var c = makeContainer()
        for i in 0..<16 as Range<UInt64> { _ = c.mapDMA(map(i << 22, 2 << 20, vaddr: 0x7F00_0000_0000 + (i % 32) << 21)) }
        _ = c.unmapDMA(UnmapDMA(flags: [.vaddr], iova: 0, size: 4 << 20))
        #expect(c.unmapDMA(UnmapDMA(flags: [.all], iova: 0, size: 0)) == .success(32 << 20))
        #expect(c.mappingCount == 0 && c.lockedBytes == 0 && c.pageTableEntries(group: nil) == [:])
        #expect(c._checkInvariants() == nil)
    }
}

extension ContainerRuleTests {
    @Test("an unmap of a range holding no mapping answers 0 and changes nothing, on v1 and v2, with ALL and VADDR, beside mappings on both sides")
    func unmapOfNothing() {
        for v2 in [true, false] {
            var c = makeContainer(v2: v2)
            #expect(c.mapDMA(map(0x20_0000, 2 << 20)).errno == nil)
            #expect(c.mapDMA(map(0x80_0000, 2 << 20, vaddr: 0x7F00_0020_0000)).errno == nil)
            let before = c.lockedBytes
            for u in [UnmapDMA(flags: [], iova: 0x40_0000, size: 4 << 20),
                      UnmapDMA(flags: [.vaddr], iova: 0x40_0000, size: 4 << 20),
                      UnmapDMA(flags: [], iova: 0x1000_0000, size: 0x1000)] {
                guard case .success(let size) = c.unmapDMA(u) else { Issue.record("v2=\(v2) \(u) failed"); continue }
                #expect(size == 0)
            }
            #expect(c.mappingCount == 2 && c.lockedBytes == before)
            #expect(c._checkInvariants() == nil)
            #expect(c.unmapDMA(UnmapDMA(flags: [.all], iova: 0, size: 0)).errno == nil)
            guard case .success(let none) = c.unmapDMA(UnmapDMA(flags: [.all], iova: 0, size: 0)) else { Issue.record("a second UNMAP_ALL failed"); continue }
            #expect(none == 0)
        }
    }
}

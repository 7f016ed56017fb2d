import Testing
import VFIOCore
@testable import VFIOModel

/// virtio-iommu as the lane sees it: every power of two from 4K, IOVAs up
/// to 2^64-1 less the MSI window.
let virtioDomain = DomainSpec(name: "d0", pgsizes: PageSizes(rawValue: 0xFFFF_FFFF_FFFF_F000), aperture: .all,
                              reserved: [IOVARange(start: 0xFEE0_0000, last: 0xFEEF_FFFF)], coherent: false)

let preOverflow = [KernelVersion(5, 10), KernelVersion(6, 1), KernelVersion(6, 12)]
let withVaddr = [KernelVersion(6, 1), KernelVersion(6, 12)]

/// A container on `version` with the virtio domain and 16 MiB of 2M pages
/// at 0x7f0000000000.
func topContainer(_ version: KernelVersion, v2: Bool = true, entryLimit: UInt32 = 65535) -> Type1Container {
    var c = Type1Container(profile: KernelProfile(version))
    c.dmaEntryLimit = entryLimit
    _ = c.memory.add(Spec(vaddr: 0x7F00_0000_0000, size: 16 << 20, pageSize: 2 << 20, layout: .contiguous(base: 1 << 32)))
    _ = c.groupSetContainer(virtioDomain)
    _ = c.setIOMMU(v2 ? .type1v2 : .type1)
    return c
}

func rw(_ iova: UInt64, _ size: UInt64, _ vaddr: UInt64 = 0x7F00_0000_0000) -> MapDMA {
    MapDMA(flags: [.read, .write], vaddr: vaddr, iova: iova, size: size)
}
func unmapRange(_ iova: UInt64, _ size: UInt64, _ flags: UnmapDMA.Flags = []) -> UnmapDMA {
    UnmapDMA(flags: flags, iova: iova, size: size)
}
let unmapAllRequest = UnmapDMA(flags: .all, iova: 0, size: 0)

@Suite("the top of the address space")
struct TopOfSpaceTests {
    @Test("before 6.18, a v2 unmap whose range ends at 2^64-1 and starts inside a mapping fails with EINVAL (the bisect check runs first)",
          arguments: preOverflow)
    func unmapToTopBisects(version: KernelVersion) {
        var c = topContainer(version)
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFC0_0000, 2 << 20)).errno == nil)
        #expect(c.unmapDMA(unmapRange(0xFFFF_FFFF_FFD0_0000, 3 << 20)).errno == .EINVAL)
        // Starting at the mapping, the walk stops at once: iova + size is 0.
        #expect(c.unmapDMA(unmapRange(0xFFFF_FFFF_FFC0_0000, 4 << 20)) == .success(0))
        #expect(c.mappingCount == 1)
        c.expectIntact("after the unmaps")
    }

    @Test("before 6.18, a vaddr-only unmap whose range ends at 2^64-1 and starts inside a mapping fails with EINVAL",
          arguments: withVaddr)
    func vaddrUnmapToTopBisects(version: KernelVersion) {
        var c = topContainer(version)
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFC0_0000, 2 << 20)).errno == nil)
        #expect(c.unmapDMA(unmapRange(0xFFFF_FFFF_FFD0_0000, 3 << 20, .vaddr)).errno == .EINVAL)
        #expect(c.vaddrInvalidCount == 0)
    }

    @Test("before 6.18, attaching a real domain skips a mapping ending at 2^64-1 that was made under emulated groups only, even when its memory is gone (vfio_iommu_replay's end wraps to 0; found by explore, seed 27477)",
          arguments: preOverflow)
    func replaySkipsTopMappingWithoutMemory(version: KernelVersion) {
        var c = Type1Container(profile: KernelProfile(version))
        #expect(c.groupSetContainer(DomainSpec(name: "m0", emulated: true)).errno == nil)
        #expect(c.setIOMMU(.type1v2).errno == nil)
        // No memory at this vaddr: nothing is pinned while only emulated groups are attached.
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFC0_0000, 4 << 20, 0x7F00_0410_6000)).errno == nil)
        #expect(c.groupSetContainer(virtioDomain).errno == nil)
        #expect(c.mappingCount == 1)
        #expect(c.lockedBytes == 0)
        c.expectIntact("after the real domain's replay skipped the top mapping")
    }

    @Test("since 6.18, an unmap that ends at 2^64-1 removes the mapping it starts at",
          arguments: [KernelVersion(6, 18), KernelVersion(7, 3)])
    func unmapToTopRemoves(version: KernelVersion) {
        var c = topContainer(version)
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFC0_0000, 2 << 20)).errno == nil)
        #expect(c.unmapDMA(unmapRange(0xFFFF_FFFF_FFD0_0000, 3 << 20)).errno == .EINVAL)
        #expect(c.unmapDMA(unmapRange(0xFFFF_FFFF_FFC0_0000, 4 << 20)) == .success(2 << 20))
        #expect(c.mappingCount == 0)
    }

    @Test("before 6.18, a map whose range ends at 2^64-1 does not see an overlapping mapping and fails with ENOSPC when the entry limit is reached",
          arguments: preOverflow)
    func mapToTopEnospc(version: KernelVersion) {
        var c = topContainer(version, entryLimit: 1)
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FF00_0000, 2 << 20)).errno == nil)
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FF00_0000, 16 << 20)).errno == .ENOSPC)
        // Not ending at the top, the same overlap is seen: EEXIST first.
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FF00_0000, 8 << 20)).errno == .EEXIST)
    }

    @Test("before 6.18, a map whose range ends at 2^64-1 over a mapping and across a reserved window fails with EINVAL, not EEXIST",
          arguments: preOverflow + [KernelVersion(6, 18)])
    func mapToTopOutsideValid(version: KernelVersion) {
        var c = topContainer(version)
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FF00_0000, 2 << 20)).errno == nil)
        let expected: Errno = KernelProfile(version).overflowSeries ? .EEXIST : .EINVAL
        #expect(c.mapDMA(rw(0xFE00_0000, 0xFFFF_FFFF_0200_0000, 0)).errno == expected)
    }

    @Test("before 6.18, a vaddr-only map whose range ends at 2^64-1 finds no mapping to update: ENOENT", arguments: withVaddr)
    func vaddrMapToTop(version: KernelVersion) {
        var c = topContainer(version)
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FF00_0000, 2 << 20)).errno == nil)
        #expect(c.mapDMA(MapDMA(flags: .vaddr, vaddr: 0x7F00_0000_0000, iova: 0xFFFF_FFFF_FF00_0000, size: 16 << 20)).errno == .ENOENT)
    }

    @Test("before 6.18, the same range ending at 2^64-1 maps three times, each charged, and UNMAP_ALL finds none of them",
          arguments: preOverflow)
    func sameTopRangeThrice(version: KernelVersion) {
        var c = topContainer(version)
        for _ in 0..<3 { #expect(c.mapDMA(rw(0xFFFF_FFFF_FFF0_0000, 1 << 20)).errno == nil) }
        #expect(c.mappingCount == 3)
        #expect(c.lockedBytes == 3 << 20)
        if KernelProfile(version).hasUnmapAllAndVaddr {
            #expect(c.unmapDMA(unmapAllRequest) == .success(0))
            #expect(c.mappingCount == 3)
        }
        c.expectIntact("three top mappings")
    }

    @Test("since 6.18, the same range ending at 2^64-1 maps once, then EEXIST")
    func sameTopRangeOnce() {
        var c = topContainer(KernelVersion(7, 3))
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFF0_0000, 1 << 20)).errno == nil)
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFF0_0000, 1 << 20)).errno == .EEXIST)
    }

    @Test("before 6.18, a mapping ending at 2^64-1 at the tree's root hides the mapping below it from UNMAP and UNMAP_ALL (v1 and v2)",
          arguments: [(KernelVersion(6, 1), true), (KernelVersion(6, 12), true), (KernelVersion(6, 12), false)])
    func topRootHides(version: KernelVersion, v2: Bool) {
        var c = topContainer(version, v2: v2)
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFFF_F000, 4096)).errno == nil)             // the root
        #expect(c.mapDMA(rw(0x10_0000, 4096, 0x7F00_0000_1000)).errno == nil)      // its left child
        #expect(c.unmapDMA(unmapRange(0x10_0000, 4096)) == .success(0))
        #expect(c.unmapDMA(unmapAllRequest) == .success(0))
        #expect(c.mappingCount == 2)
        c.expectIntact("top at the root")
    }

    @Test("before 6.18, with the lower mapping at the root, UNMAP finds it and UNMAP_ALL walks on to the one ending at 2^64-1, leaving its pages charged",
          arguments: preOverflow)
    func lowerRootFinds(version: KernelVersion) {
        var c = topContainer(version)
        #expect(c.mapDMA(rw(0x10_0000, 4096, 0x7F00_0000_1000)).errno == nil)      // the root
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFFF_F000, 4096)).errno == nil)            // its right child
        if KernelProfile(version).hasUnmapAllAndVaddr {
            #expect(c.unmapDMA(unmapAllRequest) == .success(8192))
            #expect(c.mappingCount == 0)
            #expect(c.lockedBytes == 4096)
        } else {
            #expect(c.unmapDMA(unmapRange(0x10_0000, 4096)) == .success(4096))
            #expect(c.mappingCount == 1)
        }
        c.expectIntact("lower at the root")
    }

    @Test("on 6.12, unmapping a mapping inside which a mapping ending at 2^64-1 starts never returns: hang, and every later operation too")
    func overlapHangs() {
        var c = topContainer(KernelVersion(6, 12))
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFC0_0000, 3 << 20)).errno == nil)
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFE0_0000, 2 << 20, 0x7F00_0040_0000)).errno == nil)
        #expect(c.unmapDMA(unmapRange(0xFFFF_FFFF_FFC0_0000, 3 << 20)).errno == .hang)
        #expect(c.hang != nil)
        #expect(c.mappingCount == 2)
        #expect(c.getInfo(argsz: 16).errno == .hang)
        #expect(c.mapDMA(rw(0x10_0000, 4096)).errno == .hang)
        #expect(c.groupUnsetContainer("d0").errno == .hang)
        c.expectIntact("after the hang")
    }

    @Test("on 6.12, releasing the container with such overlapping mappings hangs too")
    func overlapHangsOnRelease() {
        var c = topContainer(KernelVersion(6, 12))
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFC0_0000, 3 << 20)).errno == nil)
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFE0_0000, 2 << 20, 0x7F00_0040_0000)).errno == nil)
        #expect(c.groupUnsetContainer("d0").errno == .hang)
    }

    @Test("on 6.12, a mapping ending at 2^64-1 that starts after the lower one's end does not hang its unmap")
    func noOverlapNoHang() {
        var c = topContainer(KernelVersion(6, 12))
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFC0_0000, 2 << 20)).errno == nil)
        #expect(c.mapDMA(rw(0xFFFF_FFFF_FFE0_0000, 2 << 20, 0x7F00_0040_0000)).errno == nil)
        #expect(c.unmapDMA(unmapRange(0xFFFF_FFFF_FFC0_0000, 2 << 20)) == .success(2 << 20))
        #expect(c.hang == nil)
    }

    @Test("in 5.10 the v1 unmap walk restarts at the root: a range over two mappings removes the one met first if it starts at or after iova")
    func v1UnmapRestartsAtRoot() {
        var c = topContainer(KernelVersion(5, 10), v2: false)
        // Linked in this order the second is the root's right child; a v1
        // unmap from inside the first meets the root (the first) and stops.
        #expect(c.mapDMA(rw(0x10_0000, 8192)).errno == nil)
        #expect(c.mapDMA(rw(0x20_0000, 4096, 0x7F00_0000_2000)).errno == nil)
        #expect(c.unmapDMA(unmapRange(0x10_1000, 0x10_0000)) == .success(0))
        #expect(c.unmapDMA(unmapRange(0x10_0000, 0x20_0000)) == .success(8192 + 4096))
        #expect(c.mappingCount == 0)
    }
}

@Suite("kernel profiles")
struct KernelProfileTests {
    @Test("the lane boots 5.10, 6.1, 6.12, 6.18 and 7.3; the newest is the default")
    func matrix() {
        #expect(KernelProfile.known.map(\.description) == ["5.10", "6.1", "6.12", "6.18", "7.3"])
        #expect(KernelProfile.newest.version == KernelVersion(7, 3))
        #expect(Type1Container().profile == .newest)
    }

    @Test("below 5.10 no profile resolves", arguments: ["4.19", "5.4", "5.9"])
    func unknown(text: String) {
        #expect(KernelProfile.resolve(KernelVersion(parsing: text)!) == nil)
    }

    @Test("the overflow series is in 6.18: EOVERFLOW and inclusive ends from 6.18 on, EINVAL before",
          arguments: [("5.10", false), ("6.1", false), ("6.12", false), ("6.18", true), ("7.3", true)])
    func overflowSeries(text: String, has: Bool) {
        let p = KernelProfile(KernelVersion(parsing: text)!)
        #expect(p.overflowSeries == has)
        #expect(p.overflowErrno == (has ? .EOVERFLOW : .EINVAL))
    }

    @Test("5.10 answers 0 for unmap-all and update-vaddr and refuses their flags; 6.1 on answers 1")
    func unmapAllCameIn512() {
        var old = topContainer(KernelVersion(5, 10))
        #expect(old.checkExtension(.unmapAll) == .success(0))
        #expect(old.checkExtension(.updateVaddr) == .success(0))
        #expect(old.checkExtension(.nesting) == .success(1))
        #expect(old.unmapDMA(unmapAllRequest).errno == .EINVAL)
        #expect(old.mapDMA(rw(0x10_0000, 4096)).errno == nil)
        #expect(old.unmapDMA(unmapRange(0x10_0000, 4096, .vaddr)).errno == .EINVAL)
        #expect(old.mapDMA(MapDMA(flags: .vaddr, vaddr: 0x7F00_0000_0000, iova: 0x10_0000, size: 4096)).errno == .EINVAL)
        let new = topContainer(KernelVersion(6, 1))
        #expect(new.checkExtension(.unmapAll) == .success(1))
        #expect(new.checkExtension(.updateVaddr) == .success(1))
    }

    @Test("capabilities are padded from 6.6, nesting answers 1 until 6.12",
          arguments: [("5.10", false, true), ("6.1", false, true), ("6.5", false, true), ("6.6", true, true), ("6.12", true, true),
                      ("6.13", true, false), ("6.18", true, false), ("7.3", true, false)])
    func padsAndNesting(text: String, pads: Bool, nesting: Bool) {
        let p = KernelProfile(KernelVersion(parsing: text)!)
        #expect(p.padsCapabilities == pads)
        #expect(p.nestingExtension == nesting)
    }
}

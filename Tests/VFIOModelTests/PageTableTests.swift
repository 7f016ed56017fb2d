import Testing
import VFIOCore
@testable import VFIOModel

/// The entries `iommu_map` creates, computed the slow way: one entry at a
/// time, the largest size that fits both alignments and what is left,
/// with the kernel's early stop where a larger page could start.
func naiveEntries(iova: UInt64, phys: UInt64, size: UInt64, bitmap: UInt64) -> [UInt64: UInt64] {
    var out: [UInt64: UInt64] = [:]
    var iova = iova, phys = phys, left = size
    while left > 0 {
        var best: UInt64 = 0
        for s in PageSizes(rawValue: bitmap).sizes where s <= left && iova % s == 0 && phys % s == 0 { best = s }
        out[best, default: 0] += 1
        iova &+= best; phys &+= best; left -= best
    }
    return out
}

@Suite("IOMMU page-table entries (iommu_pgsize)")
struct PageTableTests {
    func entries(_ iova: UInt64, _ phys: UInt64, _ size: UInt64, _ bitmap: UInt64) -> [UInt64: UInt64]? {
        var runs = ContiguousArray<PTERun>()
        if iommuMap(iova: iova, phys: phys, size: size, bitmap: bitmap, into: &runs) != nil { return nil }
        var out: [UInt64: UInt64] = [:]
        for r in runs { out[r.pageSize, default: 0] += r.count }
        return out
    }

    let vtd = PageSizes([4096, 2 << 20, 1 << 30]).rawValue

    @Test("a 6M chunk at IOVA 0x1ff000, physical 0x3ff000, gives 512x4K and 2x2M")
    func workedExample() {
        #expect(entries(0x1F_F000, 0x3F_F000, 6 << 20, vtd) == [4096: 512, 2 << 20: 2])
    }

    @Test("the chunk walk equals the one-entry-at-a-time greedy", arguments: [11, 12, 13, 14, 15])
    func matchesNaive(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        let bitmaps: [UInt64] = [vtd, PageSizes([4096, 65536, 2 << 20, 512 << 20]).rawValue,
                                 PageSizes.pageMask.rawValue, 4096]
        for _ in 0..<300 {
            let bitmap = bitmaps.randomElement(using: &rng)!
            let iova = UInt64.random(in: 0..<(1 << 22), using: &rng) << 12
            let phys = (rng.next() % 2 == 0 ? iova : UInt64.random(in: 0..<(1 << 22), using: &rng) << 12) & ((1 << 40) - 1)
            let size = UInt64.random(in: 1...(1 << 13), using: &rng) << 12
            #expect(entries(iova, phys, size, bitmap) == naiveEntries(iova: iova, phys: phys, size: size, bitmap: bitmap))
        }
    }

    @Test("a chunk not aligned to the domain's smallest page is EINVAL; an empty bitmap ENODEV")
    func alignmentErrors() {
        var runs = ContiguousArray<PTERun>()
        #expect(iommuMap(iova: 0x1000, phys: 0x10000, size: 0x10000, bitmap: 1 << 16, into: &runs) == .EINVAL)
        #expect(iommuMap(iova: 0, phys: 0, size: 0x1000, bitmap: 0, into: &runs) == .ENODEV)
    }

    @Test("the last page below 2^64 maps without wrapping")
    func topPage() {
        #expect(entries(0xFFFF_FFFF_FFFF_F000, 0x1000, 4096, PageSizes.pageMask.rawValue) == [4096: 1])
        #expect(entries(0xFFFF_FFFF_C000_0000, 0x4000_0000, 1 << 30, vtd) == [1 << 30: 1])
    }

    @Test("a terabyte of 1G pages costs one run, not 2^28 steps")
    func hugeContiguous() {
        var runs = ContiguousArray<PTERun>()
        #expect(iommuMap(iova: 1 << 40, phys: 1 << 40, size: 1 << 40, bitmap: vtd, into: &runs) == nil)
        #expect(runs.count == 1)
        #expect(runs[0].count == 1024)
    }
}

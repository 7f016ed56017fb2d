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

    // MARK: Where the runs go (RunList, RunsPerDomain)

    @Test("a mapping's runs stay one inline run while each run continues the last")
    func runListJoins() {
        var list: RunList? = nil
        list.appendJoining(PTERun(iova: 0x1000, phys: 0x5000, count: 1, pageShift: 12))
        list.appendJoining(PTERun(iova: 0x2000, phys: 0x6000, count: 3, pageShift: 12))
        guard case .one(let r)? = list else { Issue.record("expected one inline run, got \(String(describing: list))"); return }
        #expect(r == PTERun(iova: 0x1000, phys: 0x5000, count: 4, pageShift: 12))
    }

    @Test("a run that does not continue the last (other size, IOVA gap, frame gap) starts a new one, in order")
    func runListSplits() {
        let a = PTERun(iova: 0x1000, phys: 0x1000, count: 1, pageShift: 12)
        for b in [PTERun(iova: 0x2000, phys: 0x2000, count: 1, pageShift: 13),   // another page size
                  PTERun(iova: 0x3000, phys: 0x2000, count: 1, pageShift: 12),   // IOVA gap
                  PTERun(iova: 0x2000, phys: 0x9000, count: 1, pageShift: 12)] { // frame gap
            var list: RunList? = nil
            list.appendJoining(a)
            list.appendJoining(b)
            #expect(list.map { Array($0.runs) } == [a, b])
            let c = PTERun(iova: b.iova &+ b.length, phys: b.phys &+ b.length, count: 2, pageShift: b.pageShift)
            list.appendJoining(c)   // continues b: joins the array's last run
            #expect(list.map { Array($0.runs) } == [a, PTERun(iova: b.iova, phys: b.phys, count: 3, pageShift: b.pageShift)])
        }
    }

    @Test("a run ending at 2^64 is never continued (its end wraps to 0)")
    func runListTopNotJoined() {
        let top = PTERun(iova: 0xFFFF_FFFF_FFFF_F000, phys: 0xF000, count: 1, pageShift: 12)
        let next = PTERun(iova: 0, phys: 0x1_0000, count: 1, pageShift: 12)
        var list: RunList? = nil
        list.appendJoining(top)
        list.appendJoining(next)
        #expect(list.map { Array($0.runs) } == [top, next])
        var array = ContiguousArray<PTERun>()
        array.appendJoining(top)
        array.appendJoining(next)
        #expect(Array(array) == [top, next])
    }

    @Test("iommu_map gives the same runs into an inline list as into an array", arguments: [21, 22] as [UInt64])
    func runListMatchesArray(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        for _ in 0..<300 {
            let iova = UInt64.random(in: 0..<(1 << 22), using: &rng) << 12
            let phys = UInt64.random(in: 0..<(1 << 22), using: &rng) << 12
            let size = UInt64.random(in: 1...(1 << 13), using: &rng) << 12
            let leaves: UInt64? = rng.next() % 2 == 0 ? nil : 4096
            var array = ContiguousArray<PTERun>()
            var list: RunList? = nil
            let e1 = iommuMap(iova: iova, phys: phys, size: size, bitmap: vtd, leaves: leaves, into: &array)
            let e2 = iommuMap(iova: iova, phys: phys, size: size, bitmap: vtd, leaves: leaves, into: &list)
            #expect(e1 == e2)
            #expect(list.map { Array($0.runs) } ?? [] == Array(array))
        }
    }

    @Test("each domain of a MAP_DMA gets its own runs, the first held inline")
    func runsPerDomain() {
        var perDomain = RunsPerDomain(domains: 3)
        #expect(perDomain.count == 3)
        #expect(perDomain.iommuMap(domain: 0, iova: 0, phys: 0, size: 2 << 20, bitmap: vtd, leaves: nil) == nil)
        #expect(perDomain.iommuMap(domain: 2, iova: 0, phys: 0, size: 2 << 20, bitmap: 4096, leaves: nil) == nil)
        #expect(perDomain.iommuMap(domain: 1, iova: 0, phys: 0, size: 4096, bitmap: 0, leaves: nil) == .ENODEV)
        #expect(perDomain[0].map { Array($0.runs) } == [PTERun(iova: 0, phys: 0, count: 1, pageShift: 21)])
        #expect(perDomain[1] == nil)
        #expect(perDomain[2].map { Array($0.runs) } == [PTERun(iova: 0, phys: 0, count: 512, pageShift: 12)])
        #expect(RunsPerDomain(domains: 0).count == 0)
    }

    @Test("a page table counts the entries of the lists it holds and gives them back on removal")
    func pageTableAddRemove() {
        var table = PageTable()
        table.add(slot: 3, .one(PTERun(iova: 0, phys: 0, count: 2, pageShift: 21)))
        table.add(slot: 0, .many([PTERun(iova: 0x40_0000, phys: 0x40_0000, count: 5, pageShift: 12),
                                  PTERun(iova: 0x40_5000, phys: 0x90_5000, count: 1, pageShift: 21)]))
        #expect(table.mappings == 2 && table.bySlot.count == 4)
        #expect(table.counts == [2 << 20: 3, 4096: 5])
        table.remove(slot: 3)
        #expect(table.counts == [2 << 20: 1, 4096: 5])
        #expect(table.runs(slot: 3) == nil && table.mappings == 1)
        table.leak(slot: 0)
        #expect(table.counts == [2 << 20: 1, 4096: 5] && table.leaked[12] == 5 && table.leaked[21] == 1 && table.mappings == 0)
    }
}

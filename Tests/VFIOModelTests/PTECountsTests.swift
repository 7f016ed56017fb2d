import Testing
import VFIOCore
@testable import VFIOModel

@Suite("PTE counts")
struct PTECountsTests {
    @Test("one value, one spelling: the same counts from a dictionary, from ascending entries or out of order are equal and hash alike; zero counts are dropped")
    func canonical() {
        let a = PTECounts([2 << 20: 3, 4096: 16, 1 << 30: 0])
        let b = PTECounts(ascending: [.init(size: 4096, count: 16), .init(size: 2 << 20, count: 3)])
        let c = PTECounts(ascending: [.init(size: 2 << 20, count: 1), .init(size: 4096, count: 16), .init(size: 2 << 20, count: 2)])
        #expect(a == b)
        #expect(b == c)
        #expect(a.hashValue == c.hashValue)
        #expect(a.entries.map(\.size) == [4096, 2 << 20])
        #expect(a.counts == [4096: 16, 2 << 20: 3])
        #expect(a.description == "4K:16,2M:3")
        #expect(PTECounts([4096: 0]) == PTECounts())
        #expect(PTECounts().description == "none")
        #expect(PTECounts([4096: 1]) != PTECounts([4096: 2]))
    }

    @Test("the model's pteCounts says what pageTableEntries says: per group, summed over domains, an emulated group's nothing, an unknown group nil")
    func modelAgreesWithDictionary() {
        var c = Type1Container()
        _ = c.memory.add(MemorySpec(vaddr: 0x7F00_0000_0000, size: 64 << 20, pageSize: 2 << 20, layout: .contiguous(base: 1 << 32)))
        _ = c.groupSetContainer(DomainSpec(name: "big"))
        _ = c.groupSetContainer(DomainSpec(name: "small", pgsizes: PageSizes([4096])))
        var emulated = DomainSpec(name: "mdev")
        emulated.emulated = true
        _ = c.groupSetContainer(emulated)
        _ = c.setIOMMU(.type1v2)
        #expect(c.mapDMA(MapDMA(flags: [.read, .write], vaddr: 0x7F00_0000_0000, iova: 0x4000_0000, size: 4 << 20)).errno == nil)
        for group in ["big", "small", "mdev", nil, "nobody"] as [String?] {
            #expect(c.pteCounts(group: group) == c.pageTableEntries(group: group).map { PTECounts($0) }, "group \(group ?? "all")")
        }
        #expect(c.pteCounts(group: "big") == PTECounts([2 << 20: 2]))
        #expect(c.pteCounts(group: "small") == PTECounts([4096: 1024]))
        #expect(c.pteCounts(group: nil) == PTECounts([4096: 1024, 2 << 20: 2]))
        #expect(c.pteCounts(group: "mdev") == PTECounts())
        #expect(c.pteCounts(group: "nobody") == nil)
    }
}

import Testing
import VFIOCore
@testable import VFIOModel

typealias Spec = MemorySpec

@Suite("Process memory layouts")
struct ProcessMemoryTests {
    func runs(_ memory: ProcessMemory, _ vaddr: UInt64, _ size: UInt64) -> ([PinnedRun], UInt64?) {
        var out: [PinnedRun] = []
        let hole = memory.forEachRun(vaddr: vaddr, size: size) { out.append($0); return true }
        return (out, hole)
    }

    @Test("scattered pages are never physically next to each other")
    func scatteredNeverContiguous() throws {
        var m = ProcessMemory()
        _ = m.add(Spec(vaddr: 0x7f00_0000_0000, size: 64 << 20, layout: .scattered(seed: 42)))
        let (r, hole) = runs(m, 0x7f00_0000_0000, 64 << 20)
        #expect(hole == nil)
        #expect(r.count == (64 << 20) / 4096)
        #expect(Set(r.map(\.phys)).count == r.count)
    }

    @Test("reversed pages descend; chunks are contiguous inside and apart between")
    func reversedAndChunks() {
        var m = ProcessMemory()
        _ = m.add(Spec(vaddr: 0x10_0000, size: 16 << 10, layout: .reversed(base: 0x1_0000_0000)))
        _ = m.add(Spec(vaddr: 0x100_0000, size: 256 << 10, layout: .chunks(size: 64 << 10, base: 0x2_0000_0000)))
        #expect(runs(m, 0x10_0000, 16 << 10).0.map(\.phys) == [0x1_0000_3000, 0x1_0000_2000, 0x1_0000_1000, 0x1_0000_0000])
        let chunks = runs(m, 0x100_0000, 256 << 10).0
        #expect(chunks.map(\.length) == [65536, 65536, 65536, 65536])
        #expect(chunks.map(\.phys) == [0x2_0000_0000, 0x2_0002_0000, 0x2_0004_0000, 0x2_0006_0000])
    }

    @Test("adjacent regions with following frames join into one chunk; a hole stops the walk")
    func joinAndHole() {
        var m = ProcessMemory()
        _ = m.add(Spec(vaddr: 0x1000_0000, size: 1 << 20, layout: .contiguous(base: 0x8000_0000)))
        _ = m.add(Spec(vaddr: 0x1010_0000, size: 1 << 20, layout: .contiguous(base: 0x8010_0000)))
        let (joined, none) = runs(m, 0x1000_0000, 2 << 20)
        #expect(joined.count == 1 && none == nil)
        let (_, hole) = runs(m, 0x1000_0000, 3 << 20)
        #expect(hole == 0x1020_0000)
    }

    @Test("overlapping memory statements are refused")
    func overlapRefused() {
        var m = ProcessMemory()
        _ = m.add(Spec(vaddr: 0x1000_0000, size: 1 << 20))
        if case .success = m.add(Spec(vaddr: 0x100F_F000, size: 8192)) { Issue.record("overlap accepted") }
    }

    @Test("observed frames are walked as they were read")
    func observed() {
        var m = ProcessMemory()
        let layout = PhysicalLayout.observed([PhysicalRun(offset: 0, phys: 0x5000_0000, length: 8192),
                                              PhysicalRun(offset: 8192, phys: 0x9000_0000, length: 4096)])
        _ = m.add(exactly: MemoryRegion(vaddr: 0x20_0000, size: 12288, layout: layout))
        #expect(runs(m, 0x20_1000, 8192).0.map(\.phys) == [0x5000_1000, 0x9000_0000])
    }
}

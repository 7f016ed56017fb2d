import Testing
import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// Issue 22: memory without `phys=` is laid out as Linux lays it out.
@Suite("Memory placement by default, phys=contiguous and thp")
struct MemoryDefaultTests {
    /// The answers (as text) of a trace's operations on the model.
    func answers(_ text: String) -> [String] {
        Replayer(backends: [ModelBackend()]).run(parse(text)).outcomes.filter { !$0.isShow }.map { $0.got[0].text }
    }

    @Test("4K memory without phys= is scattered: 1 GiB maps as 4K PTEs only, never one 1 GiB entry")
    func default4KMapsAs4KPTEsOnly() {
        #expect(answers("""
            memory vaddr=0x7f0000000000 size=1G
            map iova=0x40000000 vaddr=0x7f0000000000 size=1G prot=rw
            check ptes=4K:262144

            """) == ["ok", "ptes=4K:262144"])
    }

    @Test("phys=contiguous gives the old default: 1 GiB of 4K pages maps as one 1 GiB entry, placed 1 GiB after the region before")
    func contiguousKeepsTheOldAnswer() {
        #expect(answers("""
            memory vaddr=0x7f0000000000 size=1G phys=contiguous
            map iova=0x40000000 vaddr=0x7f0000000000 size=1G prot=rw
            check ptes=1G:1

            """) == ["ok", "ptes=1G:1"])
        // The old placement exactly: 4 GiB, then after a 1 GiB gap, and a
        // region placed by the default between them keeps its place too.
        var m = ProcessMemory()
        guard case .success(let a) = m.add(MemorySpec(vaddr: 0x1000_0000, size: 1 << 20, placement: .contiguous)),
              case .success(let b) = m.add(MemorySpec(vaddr: 0x2000_0000, size: 3 << 30)),
              case .success(let c) = m.add(MemorySpec(vaddr: 0x3_0000_0000, size: 2 << 20, pageSize: 2 << 20, placement: .contiguous))
        else { Issue.record("memory refused"); return }
        #expect(a.layout == .contiguous(base: 1 << 32))
        #expect(b.layout == .scattered(seed: 0x2000_0000))
        #expect(c.layout == .contiguous(base: 10 << 30))
    }

    @Test("2M hugetlb memory without phys= maps as 2M entries: each hugepage contiguous, never next to the one before")
    func hugetlbDefaultMapsAs2MEntries() {
        #expect(answers("""
            memory vaddr=0x7f0000000000 size=1G page=2M
            map iova=0x40000000 vaddr=0x7f0000000000 size=1G prot=rw
            check ptes=2M:512

            """) == ["ok", "ptes=2M:512"])
        var m = ProcessMemory()
        _ = m.add(MemorySpec(vaddr: 0x7f00_0000_0000, size: 64 << 20, pageSize: 2 << 20))
        var runs: [PinnedRun] = []
        m.forEachRun(vaddr: 0x7f00_0000_0000, size: 64 << 20) { runs.append($0); return true }
        #expect(runs.count == 32)
        #expect(runs.allSatisfy { $0.length == 2 << 20 && $0.phys % (2 << 20) == 0 })
    }

    @Test("1G hugetlb memory without phys= maps as 1G entries, one per hugepage")
    func gigantDefaultMapsAs1GEntries() {
        #expect(answers("""
            memory vaddr=0x7f0000000000 size=4G page=1G
            map iova=0x100000000 vaddr=0x7f0000000000 size=4G prot=rw
            check ptes=1G:4

            """) == ["ok", "ptes=1G:4"])
    }

    @Test("thp: aligned 2 MiB blocks map as 2M entries, the unaligned head and tail pages as 4K entries")
    func thpBlocksAs2MRestAs4K() {
        // 8 MiB from 1 MiB past a 2 MiB boundary: 256 pages of head, three
        // whole blocks, 256 pages of tail; the IOVA shares the alignment.
        #expect(answers("""
            memory vaddr=0x7f0000100000 size=8M thp
            map iova=0x40100000 vaddr=0x7f0000100000 size=8M prot=rw
            check ptes=4K:512,2M:3

            """) == ["ok", "ptes=4K:512,2M:3"])
        // Aligned: blocks only.
        #expect(answers("""
            memory vaddr=0x7f0000000000 size=8M thp
            map iova=0x40000000 vaddr=0x7f0000000000 size=8M prot=rw
            check ptes=2M:4

            """) == ["ok", "ptes=2M:4"])
    }

    @Test("thp blocks are never next to each other or to the loose pages: a walk meets one run per block and per page")
    func thpRunsApart() {
        var m = ProcessMemory()
        _ = m.add(MemorySpec(vaddr: 0x7f00_0000_1000, size: 8 << 20, placement: .thp))
        var runs: [PinnedRun] = []
        m.forEachRun(vaddr: 0x7f00_0000_1000, size: 8 << 20) { runs.append($0); return true }
        // 511 head pages, 3 blocks, 1 tail page.
        #expect(runs.count == 511 + 3 + 1)
        #expect(runs.filter { $0.length == 2 << 20 }.allSatisfy { $0.phys % (2 << 20) == 0 && $0.vaddr % (2 << 20) == 0 })
        #expect(Set(runs.map(\.phys)).count == runs.count)
    }

    @Test("pfnmap memory without phys= stays one contiguous run (a BAR is)")
    func pfnmapDefaultContiguous() {
        var m = ProcessMemory()
        guard case .success(let r) = m.add(MemorySpec(vaddr: 0x7e00_0000_0000, size: 16 << 20, pfnmap: true)) else { Issue.record("refused"); return }
        #expect(r.layout == .contiguous(base: 1 << 32))
    }
}

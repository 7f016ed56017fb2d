import Testing
import VFIOCore
import VFIOLane
import VFIOTrace

func whatIf(_ text: String, _ option: String, _ value: String) throws -> WhatIfComparison {
    var change = WhatIf()
    _ = change.set(option, value)
    return WhatIfComparison.run(try parseTrace(text, file: "w.trace").get(), change: change)
}

/// 2048 hugepages of 2 MiB, one map each, no answers written.
let dpdkPlan = """
    memory vaddr=0x7f0000000000 size=4G page=2M
    map iova=0x7f0000000000 vaddr=0x7f0000000000 size=2M prot=rw repeat=2048
    """

@Suite("whatif compares the whole state")
struct WhatIfStateTests {
    @Test("4K pages on a 2M-backed plan move no written answer but turn 2048 IOMMU entries into 1,048,576: the state differs from the first map on")
    func pgsizesChangesPTEs() throws {
        let c = try whatIf(dpdkPlan, "pgsizes", "4K")
        #expect(c.report.ok)
        #expect(c.stateDiffers && !c.unchanged)
        let d = try #require(c.firstDivergence)
        #expect((d.line, d.iteration, d.iterations) == (2, 1, 2048))
        #expect(d.own.ptes == PTECounts([2 << 20: 1]) && d.whatIf.ptes == PTECounts([4096: 512]))
        #expect(c.ownEnd.snapshot.ptes == PTECounts([2 << 20: 2048]))
        #expect(c.whatIfEnd.snapshot.ptes == PTECounts([4096: 1_048_576]))
        // Locked memory and the mappings are the same.
        #expect(c.ownEnd.snapshot.locked == c.whatIfEnd.snapshot.locked)
        #expect(c.ownEnd.ranges == c.whatIfEnd.ranges)
        #expect(c.endChanges == ["ptes       2M:2048 (2048 entries) → 4K:1048576 (1048576 entries)"])
    }

    @Test("a plan torn down at its end is the same at the end; what differs is the most it reached, and the report says so")
    func peakOfATornDownPlan() throws {
        let c = try whatIf("""
            domain dev0 iommu=intel
            memory vaddr=0x7f0000000000 size=64M page=2M
            map iova=0 vaddr=0x7f0000000000 size=64M prot=rw
            unmap iova=0 size=64M
            """, "pgsizes", "4K")
        #expect(c.stateDiffers)
        #expect(c.ownEnd == c.whatIfEnd)
        #expect(c.ownPeak.ptes == PTECounts([2 << 20: 32]))
        #expect(c.whatIfPeak.ptes == PTECounts([4096: 16384]))
        #expect(c.ownPeak.locked == 64 << 20 && c.whatIfPeak.locked == 64 << 20)
        #expect(c.stateText.contains("  at most\n    ptes       2M:32 (32 entries) → 4K:16384 (16384 entries)\n  at end     the same\n"))
    }

    @Test("a smaller memlock: locked memory, the mappings and their ranges differ, from the 513th map on")
    func memlockChangesLockedAndRanges() throws {
        let c = try whatIf(dpdkPlan, "memlock", "1G")
        let d = try #require(c.firstDivergence)
        #expect(d.iteration == 513)
        #expect(c.ownEnd.snapshot.locked == 4 << 30 && c.whatIfEnd.snapshot.locked == 1 << 30)
        #expect(c.whatIfEnd.ranges.count == 512)
        #expect(c.endChanges.contains("ranges     1536 mapped only under the trace's own setup (first 0x7f0040000000 + 2 MiB), 0 only under the what-if"))
    }

    @Test("another dma-entry-limit changes dma_avail even when every map fits")
    func entryLimitChangesDMAAvail() throws {
        let c = try whatIf(dpdkPlan, "dma-entry-limit", "4096")
        #expect(c.report.ok)
        #expect(c.ownEnd.snapshot.dmaAvail == 65535 - 2048 && c.whatIfEnd.snapshot.dmaAvail == 4096 - 2048)
        #expect(c.endChanges == ["dma_avail  63487 → 2048"])
    }

    @Test("a change that moves nothing leaves the state the same")
    func sameState() throws {
        let c = try whatIf(dpdkPlan, "kernel", "6.1")
        #expect(!c.stateDiffers && c.unchanged)
        #expect(c.stateText.contains("the state is the same as under the trace's own setup"))
    }
}

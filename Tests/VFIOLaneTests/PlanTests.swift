import Testing
import VFIOCore
import VFIOLane
import VFIOTrace

func planOf(_ text: String) throws -> ScenarioPlan {
    Planner.plan(try parseTrace(text, file: "p.trace").get())
}

@Suite("vfio-sim plan")
struct PlanTests {
    @Test("the memlock a scenario needs is its peak locked memory, not what is locked at the end")
    func peakLocked() throws {
        let p = try planOf("""
            memory vaddr=0x7f0000000000 size=64M page=2M
            map iova=0 vaddr=0x7f0000000000 size=32M prot=rw
            map iova=0x2000000 vaddr=0x7f0002000000 size=32M prot=rw
            unmap iova=0 size=32M
            """)
        #expect(p.needs.peakLocked == 64 << 20)
        #expect(p.needs.peakLockedLine == 3)
        #expect(p.needs.endLocked == 32 << 20)
        #expect(p.needs.peakMappings == 2)
        #expect(p.needs.ptes.map(\.domain) == ["d0"])
        #expect(p.needs.ptes.first?.peak == PTECounts([2 << 20: 32]))
        #expect(p.needs.ptes.first?.end == PTECounts([2 << 20: 16]))
        // No limit bit: what it reached is what it needs.
        #expect(p.reached == p.needs)
    }

    @Test("the plan says which layout it assumed for each memory region without phys=, and nothing for one with it")
    func assumedLayouts() throws {
        let p = try planOf("""
            memory vaddr=0x7f0000000000 size=1G
            memory vaddr=0x7f1000000000 size=64M page=2M
            memory vaddr=0x7f2000000000 size=8M thp
            memory vaddr=0x7f3000000000 size=8M phys=contiguous
            memory vaddr=0x7f4000000000 size=8M phys=0x100000000
            memory vaddr=0x7e0000000000 size=16M pfnmap
            """)
        #expect(p.assumedLayouts == [
            "0x7f0000000000 + 1 GiB: 4K pages scattered (the default; phys=contiguous for one run, thp for transparent hugepages)",
            "0x7f1000000000 + 64 MiB: 2M hugepages, each contiguous and apart from the others (the default; phys=contiguous for one run)",
            "0x7f2000000000 + 8 MiB: 4K pages on transparent hugepages (thp): each 2 MiB-aligned 2 MiB block contiguous, the pages around them scattered",
            "0x7e0000000000 + 16 MiB: device memory (pfnmap), one contiguous run (the default for pfnmap)",
        ])
        #expect(Planner.render([p]).contains("\n  memory    0x7f0000000000 + 1 GiB: 4K pages scattered (the default; phys=contiguous for one run, thp for transparent hugepages)\n"))
    }

    @Test("hazards: a v1 unmap that removed nothing, EEXIST, ENOSPC, and mappings pinned at the end, each with its line")
    func hazards() throws {
        let p = try planOf("""
            iommu type1
            dma-entry-limit 2
            memory vaddr=0x7f0000000000 size=64M
            map iova=0 vaddr=0x7f0000000000 size=16M prot=rw
            unmap iova=0x400000 size=4M
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw
            map iova=0x1000000 vaddr=0x7f0001000000 size=2M prot=rw
            map iova=0x2000000 vaddr=0x7f0002000000 size=2M prot=rw
            """)
        #expect(p.hazards.map(\.kind) == [.unmapSize, .exists, .noSpace, .pinnedAtEnd])
        #expect(p.hazards.map(\.line) == [5, 6, 8, 0])
        #expect(p.hazards[0].text.contains("stays mapped, pinned and DMA-able"))
        #expect(p.hazards[2].text.contains("dma_entry_limit was 2"))
    }

    @Test("a hang is a hazard and ends the scenario: the calls after it and the mappings it leaves are not listed")
    func hangHazard() throws {
        let p = try planOf("""
            kernel 6.12
            domain d0 pgsizes=mask:0xfffffffffffff000 aperture=0x0-0xffffffffffffffff coherent=no
            memory vaddr=0x7f0000000000 size=4M phys=contiguous
            map iova=0xfffffffffff00000 vaddr=0x7f0000000000 size=1M prot=rw
            map iova=0xffffffffffe01000 vaddr=0x7f0000100000 size=1M prot=rw
            detach d0
            info
            map iova=0x100000 vaddr=0x7f0000200000 size=4K prot=rw
            """)
        #expect(p.hazards.map(\.kind) == [.topOfSpace, .hang])
        #expect(p.hazards.map(\.line) == [4, 6])
        #expect(p.hazards[1].text.contains("vfio_unmap_unpin"))
        #expect(p.needs.endMappings == 2)
    }

    @Test("two groups behind the same IOMMU share one domain: the total counts its table once")
    func sharedDomain() throws {
        let p = try planOf("""
            domain a pgsizes=4K,2M,1G
            domain b pgsizes=4K,2M,1G
            memory vaddr=0x7e0000000000 size=2G page=1G
            map iova=0 vaddr=0x7e0000000000 size=2G prot=rw
            """)
        #expect(p.needs.ptes.map(\.peakTotal) == [2, 2])
        #expect(p.needs.peakTotalPTEs == PTECounts([1 << 30: 2]))
        #expect(Planner.render([p]).contains("groups with the same IOMMU share one domain"))
    }

    @Test("under iommufd the memlock a scenario needs is the user's locked_vm it reaches, though VmLck stays 0")
    func iommufdMemlock() throws {
        let p = try planOf("""
            container iommufd
            memory vaddr=0x7f0000000000 size=64M page=2M
            map iova=0 vaddr=0x7f0000000000 size=32M prot=rw
            map iova=0x2000000 vaddr=0x7f0002000000 size=32M prot=rw
            unmap iova=0 size=32M
            """)
        #expect(p.needs.peakLocked == 64 << 20)
        #expect(p.needs.endLocked == 32 << 20)
        #expect(Planner.render([p]).contains("iommufd has no dma_entry_limit"))
    }

    /// The DPDK plan of docs/examples: 2048 hugepages of 2 MiB, one map each.
    static func dpdk(_ limit: String) -> String {
        """
        \(limit)
        memory vaddr=0x7f0000000000 size=4G page=2M
        map iova=0x7f0000000000 vaddr=0x7f0000000000 size=2M prot=rw repeat=2048
        """
    }

    @Test("with memlock 1G, the plan needs 4 GiB (ulimit -l 4194304), and the limit first stops it at iteration 513 of 2048 with ENOMEM")
    func memlockNeedsAndFails() throws {
        let p = try planOf(Self.dpdk("memlock 1G"))
        #expect(p.needs.peakLocked == 4 << 30)
        #expect(p.ulimitKiB == 4 << 20)
        #expect(p.needs.peakMappings == 2048)
        #expect(!p.memlockEnough && p.entriesEnough)
        let f = try #require(p.memlockFailure)
        #expect((f.errno, f.line, f.iteration, f.iterations, f.count) == (.ENOMEM, 3, 513, 2048, 1536))
        #expect(f.statement == "map iova=0x7f0040000000 vaddr=0x7f0040000000 size=2M prot=rw")
        // Under its own limit it reached 1 GiB and 512 mappings.
        #expect(p.reached.peakLocked == 1 << 30)
        #expect(p.reached.endMappings == 512)
        let text = Planner.render([p])
        #expect(text.contains("  memlock   needs 4 GiB locked (ulimit -l 4194304; 4294967296 bytes), at most after line 3; "
                              + "the trace allows 1 GiB: maps from line 3 (iteration 513 of 2048) fail with ENOMEM, 1536 in all\n"))
    }

    @Test("with dma-entry-limit 1000, the plan needs 2048 entries, and maps fail with ENOSPC from iteration 1001 of 2048")
    func entriesNeedsAndFails() throws {
        let p = try planOf(Self.dpdk("dma-entry-limit 1000"))
        #expect(p.needs.peakMappings == 2048)
        #expect(p.needs.peakLocked == 4 << 30)
        #expect(p.memlockEnough && !p.entriesEnough)
        let f = try #require(p.entryFailure)
        #expect((f.errno, f.line, f.iteration, f.count) == (.ENOSPC, 3, 1001, 1048))
        #expect(p.reached.peakMappings == 1000)
        #expect(Planner.render([p]).contains("  entries   needs 2048 entries (vfio_dma) at once, after line 3; dma-entry-limit 1000: "
                                             + "maps from line 3 (iteration 1001 of 2048) fail with ENOSPC, 1048 in all\n"))
    }

    @Test("a class of hazard is listed once per line, with its first iteration and how many more met it")
    func hazardsOncePerLine() throws {
        let p = try planOf(Self.dpdk("memlock 1G"))
        #expect(p.hazards.map(\.kind) == [.noMemory, .pinnedAtEnd])
        #expect((p.hazards[0].iteration, p.hazards[0].count) == (513, 1536))
        #expect(Planner.render([p]).contains("    line 3, iteration 513 of 2048, and 1535 more the same way: map iova=0x7f0040000000 "))
    }

    @Test("limits that allow the plan are said to be enough, and nothing was refused")
    func limitsEnough() throws {
        let p = try planOf(Self.dpdk("memlock 4G"))
        #expect(p.memlockEnough && p.entriesEnough)
        #expect(p.memlockFailure == nil && p.entryFailure == nil)
        #expect(Planner.render([p]).contains("the trace allows 4 GiB: enough\n"))
    }

    @Test("on 6.12, a mapping ending at 2^64-1 whose pages stay charged after the last group leaves is a hazard, twice over (never 'hazards none')")
    func topOfSpaceLeak() throws {
        let p = try planOf("""
            kernel 6.12
            domain d0 pgsizes=mask:0xfffffffffffff000 aperture=0-0xffffffffffffffff coherent=no
            memory vaddr=0x7f0000000000 size=8K
            map iova=0xfffffffffffff000 vaddr=0x7f0000000000 size=4K prot=rw
            map iova=0x1000 vaddr=0x7f0000001000 size=4K prot=rw
            detach d0
            """)
        #expect(p.hazards.map(\.kind) == [.topOfSpace, .lockedAfterTeardown])
        #expect(p.hazards.map(\.line) == [4, 6])
        #expect(p.hazards[1].text.contains("4 KiB stay charged to locked_vm with no mapping holding them"))
        #expect(p.needs.endMappings == 0 && p.needs.endLocked == 4096)
        // Since 6.18 the same plan is clean.
        let newest = try planOf("""
            domain d0 pgsizes=mask:0xfffffffffffff000 aperture=0-0xffffffffffffffff coherent=no
            memory vaddr=0x7f0000000000 size=8K
            map iova=0xfffffffffffff000 vaddr=0x7f0000000000 size=4K prot=rw
            detach d0
            """)
        #expect(newest.hazards.isEmpty)
    }

    @Test("UNMAP_ALL that leaves mappings behind (a mapping ending at 2^64-1 at the tree's root hides the one below, before 6.18) is a hazard")
    func unmapAllLeaves() throws {
        let p = try planOf("""
            kernel 6.12
            domain d0 pgsizes=mask:0xfffffffffffff000 aperture=0-0xffffffffffffffff coherent=no
            memory vaddr=0x7f0000000000 size=8K
            map iova=0xfffffffffffff000 vaddr=0x7f0000000000 size=4K prot=rw
            map iova=0x100000 vaddr=0x7f0000001000 size=4K prot=rw
            unmap-all
            """)
        #expect(p.hazards.map(\.kind) == [.topOfSpace, .unmapAllLeft, .pinnedAtEnd])
        #expect(p.hazards[1].text.contains("2 mappings stay in the container"))
    }

    @Test("a v2 unmap that would cut a mapping is refused: a hazard of its own class, not any errno")
    func partialUnmap() throws {
        let p = try planOf("""
            memory vaddr=0x7f0000000000 size=4M page=2M
            map iova=0x200000 vaddr=0x7f0000000000 size=2M prot=rw
            unmap iova=0x200000 size=4K
            unmap iova=0x800000 size=4K flags=0x80
            unmap iova=0x200000 size=2M
            """)
        #expect(p.hazards.map(\.kind) == [.partialUnmap, .otherErrno])
        #expect(p.hazards[0].text.hasPrefix("unmap iova=0x200000 size=4K => EINVAL: "))
    }
}

@Suite("vfio-sim plan: hazards once per class")
struct PlanHazardGroupingTests {
    @Test("maps on many lines failing alike are one hazard with a count and the first and last lines, not one per line")
    func oneHazardAcrossLines() throws {
        var text = "memlock 8K\nmemory vaddr=0x7f0000000000 size=64K\n"
        for i in 0..<8 { text += "map iova=\(formatAddress(UInt64(i) << 12)) vaddr=\(formatAddress(0x7f00_0000_0000 + UInt64(i) << 12)) size=4K prot=rw\n" }
        let p = try planOf(text)
        let noMemory = p.hazards.filter { $0.kind == .noMemory }
        #expect(noMemory.count == 1)
        #expect(noMemory.first?.line == 5)
        #expect(noMemory.first?.count == 6)
        #expect(noMemory.first?.lastLine == 10)
        #expect(Planner.render([p]).contains("line 5, and 5 more the same way up to line 10: map iova=0x2000"))
    }
}

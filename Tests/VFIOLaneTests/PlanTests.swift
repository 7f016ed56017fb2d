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
        #expect(p.peakLocked == 64 << 20)
        #expect(p.peakLockedLine == 3)
        #expect(p.endLocked == 32 << 20)
        #expect(p.peakMappings == 2)
        #expect(p.peakPTEs.map(\.domain) == ["d0"])
        #expect(p.peakPTEs.first?.counts == PTECounts([2 << 20: 32]))
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
        #expect(p.hazards.map(\.kind) == [.hang])
        #expect(p.hazards.map(\.line) == [6])
        #expect(p.hazards[0].text.contains("vfio_unmap_unpin"))
        #expect(p.endMappings == 2)
    }

    @Test("two groups behind the same IOMMU share one domain: the total counts its table once")
    func sharedDomain() throws {
        let p = try planOf("""
            domain a pgsizes=4K,2M,1G
            domain b pgsizes=4K,2M,1G
            memory vaddr=0x7e0000000000 size=2G page=1G
            map iova=0 vaddr=0x7e0000000000 size=2G prot=rw
            """)
        #expect(p.peakPTEs.map(\.total) == [2, 2])
        #expect(p.peakTotalPTEs == PTECounts([1 << 30: 2]))
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
        #expect(p.peakLocked == 64 << 20)
        #expect(p.endLocked == 32 << 20)
    }
}

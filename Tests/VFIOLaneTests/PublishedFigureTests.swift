import Foundation
import Testing
import VFIOCore
import VFIOCost
import VFIOLane
import VFIOTrace

/// The cost model against the published bare-metal figures in
/// Benchmarks/published (docs/COSTS.md): each estimate within 1.5× of its
/// figure, each published ordering kept.
@Suite("kernel time against published figures")
struct PublishedFigureTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Benchmarks/published")

    /// The trace's text with its `kernel` line set to `release`, when given.
    func text(_ name: String, release: String? = nil) throws -> String {
        var t = try String(contentsOf: Self.dir.appendingPathComponent(name), encoding: .utf8)
        if let release {
            t = t.split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.hasPrefix("kernel ") ? "kernel \(release)" : String($0) }.joined(separator: "\n")
        }
        return t
    }

    /// The model's counts per scenario body (the trace without its
    /// comments and `kernel` line): the counts do not depend on the
    /// release here, and a 16 GiB map of 4K pages is four million runs, so
    /// each body is replayed once and priced for every release asked.
    nonisolated(unsafe) static var counted: [String: (map: KernelWork, unmap: KernelWork)] = [:]
    static let lock = NSLock()

    func time(_ name: String, release: String? = nil) throws -> KernelTime {
        let source = try text(name, release: release)
        let trace = try parseTrace(source, file: name).get()
        let body = source.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("kernel ") }.joined(separator: "\n")
        let cached = Self.lock.withLock { Self.counted[body] }
        let work: (map: KernelWork, unmap: KernelWork)
        if let cached { work = cached } else {
            let plan = Planner.plan(trace, costs: .published)
            work = (plan.mapWork, plan.unmapWork)
            Self.lock.withLock { Self.counted[body] = work }
        }
        var release = KernelVersion.newestKnown
        for st in trace.statements { if case .kernel(let v) = st.kind { release = v } }
        return CostProfile.published.estimate(map: work.map, unmap: work.unmap, release: release)
    }

    @Test("every published figure is estimated within 1.5x (a bound: below it)")
    func withinFactor() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.dir.path).filter { $0.hasSuffix(".trace") }.sorted()
        #expect(names.count >= 14)
        for name in names {
            let figure = try #require(PublishedFigure.parse(try text(name), file: name), "\(name) states no published figure")
            let checks = figure.checks(try time(name))
            #expect(!checks.isEmpty, "\(name)")
            for c in checks {
                #expect(c.holds(within: 1.5), "\(name) \(c.what): published \(c.published.text), estimate \(c.estimate) s (ratio \(c.ratio))")
            }
        }
    }

    @Test("5.14: preallocated hugetlb pins faster than preallocated THP (Daniel Jordan's table)")
    func hugetlbBeforeTHPOn514() throws {
        #expect(try time("jordan-hugetlb-16g-prealloc.trace").map < time("jordan-thp-16g-prealloc.trace").map)
        #expect(try time("jordan-hugetlb-128g-prealloc.trace").map < time("jordan-thp-128g-prealloc.trace").map)
        // Faulting the memory in dominates when it is not preallocated.
        #expect(try time("jordan-hugetlb-128g-not-prealloc.trace").map > 10 * time("jordan-hugetlb-128g-prealloc.trace").map)
    }

    @Test("6.17 and later: 16 GiB of 4K pages maps 5 to 9 times slower than of 2M hugetlb pages; unmap at least 2 times")
    func fourKOverTwoM() throws {
        for release in ["6.17", "6.18", "7.0"] {
            let small = try time("lizhe-16g-4k-6.18.trace", release: release)
            let huge = try time("lizhe-16g-hugetlb-6.18.trace", release: release)
            let ratio = small.map / huge.map
            #expect(ratio >= 5 && ratio <= 9, "\(release): map 4K:2M = \(ratio)")
            #expect(small.unmap / huge.unmap >= 2, "\(release): unmap 4K:2M = \(small.unmap / huge.unmap)")
        }
        // Before Li Zhe's series the unmap ratio was smaller, still above 2.
        let small = try time("lizhe-16g-4k-6.16.trace"), huge = try time("lizhe-16g-hugetlb-6.16.trace")
        #expect(small.unmap / huge.unmap >= 2)
        #expect(small.unmap / huge.unmap < (try time("lizhe-16g-4k-6.18.trace").unmap / time("lizhe-16g-hugetlb-6.18.trace").unmap))
    }

    @Test("a huge-mapped BAR is mapped in microseconds from 6.15, in about a second before")
    func hugePfnmap() throws {
        let before = try time("williamson-32g-bar-6.14.trace"), after = try time("williamson-32g-bar-6.15.trace")
        #expect(after.map < before.map / 1000)
    }
}

/// The counts the time is made of come from the model's own state.
@Suite("kernel work counted on the model")
struct KernelWorkTests {
    func plan(_ text: String, costs: CostProfile = .published) throws -> ScenarioPlan {
        Planner.plan(try parseTrace(text, file: "w.trace").get(), costs: costs)
    }

    @Test("hugetlb pages apart from each other: one chunk and one 2M entry per page, one folio step per page")
    func hugetlbChunks() throws {
        let p = try plan("""
            domain d0 pgsizes=4K,2M,1G
            memory vaddr=0x7f0000000000 size=64M page=2M
            map iova=0 vaddr=0x7f0000000000 size=64M prot=rw
            unmap iova=0 size=64M
            """)
        #expect(p.mapWork.pages[.hugetlb2M] == 16384)
        #expect(p.mapWork.chunks == 32)
        #expect(p.mapWork.ptes == 32)
        #expect(p.mapWork.folioSteps[.hugetlb2M] == 32)
        #expect(p.unmapWork.pages[.hugetlb2M] == 16384)
        #expect(p.unmapWork.ptes == 32)
        #expect(p.unmapWork.iotlbSyncs == 1)
    }

    @Test("the last group's detach releases the container: its unmapping and unpinning is unmap work without an ioctl (a VMM's exit)")
    func releaseAtLastDetach() throws {
        let p = try plan("""
            domain a pgsizes=4K,2M,1G
            domain b pgsizes=4K,2M,1G
            memory vaddr=0x7f0000000000 size=64M page=2M
            map iova=0 vaddr=0x7f0000000000 size=64M prot=rw
            detach a
            detach b
            """)
        #expect(p.unmapWork.calls == 0)
        #expect(p.unmapWork.releases == 1)
        #expect(p.unmapWork.pages[.hugetlb2M] == 16384)
        #expect(p.unmapWork.ptes == 32)
        #expect(p.kernelTime.map(\.unmap) ?? 0 > 0)
    }

    @Test("two domains: the chunks and entries twice, the pages once")
    func twoDomains() throws {
        let p = try plan("""
            domain a pgsizes=4K,2M,1G
            domain b pgsizes=4K
            memory vaddr=0x7f0000000000 size=4M page=2M phys=contiguous
            map iova=0 vaddr=0x7f0000000000 size=4M prot=rw
            """)
        #expect(p.mapWork.pages[.hugetlb2M] == 1024)
        #expect(p.mapWork.chunks == 2)
        #expect(p.mapWork.ptes == 2 + 1024)
    }

    @Test("populated=no memory faults in once: a second pin of the same memory finds it there")
    func firstTouchOnce() throws {
        let p = try plan("""
            memory vaddr=0x7f0000000000 size=8M thp populated=no
            map iova=0 vaddr=0x7f0000000000 size=8M prot=rw
            unmap iova=0 size=8M
            map iova=0 vaddr=0x7f0000000000 size=8M prot=rw
            """)
        #expect(p.mapWork.faults == 4)
        #expect(p.mapWork.faultedBytes == 8 << 20)
        #expect(p.mapWork.calls == 2)
        let populated = try plan("""
            memory vaddr=0x7f0000000000 size=8M thp
            map iova=0 vaddr=0x7f0000000000 size=8M prot=rw
            """)
        #expect(populated.mapWork.faults == 0)
        #expect(try #require(p.kernelTime).map > 10 * (try #require(populated.kernelTime).map))
    }

    @Test("a BAR's huge steps follow the alignment of its mapping: 1G entries when vaddr and phys agree to 1G, else 2M or 4K")
    func pfnmapSteps() {
        let g: UInt64 = 1 << 30, m: UInt64 = 2 << 20
        #expect(WorkCount.pfnmapSteps(vaddr: 0x7e00_0000_0000, phys: 0x380_0000_0000, length: 32 * g) == 32)
        #expect(WorkCount.pfnmapSteps(vaddr: 0x7e00_0020_0000, phys: 0x380_0000_0000, length: 32 * g) == 16384)
        #expect(WorkCount.pfnmapSteps(vaddr: 0x1000, phys: 0x2000, length: 4 * m) == 2048)
        // 2 MiB of 4K steps up to the 1G boundary, one 1G step, then 2M steps.
        #expect(WorkCount.pfnmapSteps(vaddr: g - m, phys: g - m, length: m + g + 2 * m) == 1 + 1 + 2)
    }

    @Test("refused calls are charged an ioctl and counted apart from the work")
    func refused() throws {
        let p = try plan("""
            memlock 1M
            memory vaddr=0x7f0000000000 size=4M
            map iova=0 vaddr=0x7f0000000000 size=4M prot=rw
            """)
        #expect(p.mapWork.failedCalls == 1)
        #expect(p.mapWork.calls == 0)
        #expect(p.mapWork.totalPages == 0)
        #expect(p.kernelTime?.map == CostProfile.published[.mapIoctl] / 1e9)
    }
}

@Suite("cost profiles")
struct CostProfileTests {
    @Test("a kernel-costs file is a profile: its constants for every backing, for the release it was measured on")
    func kernelCostsFile() throws {
        let text = """
            # measured by vfio-bench kernel-costs in the kernel lane: config=6.12-intel kernel=6.12.117+deb12-amd64, QEMU TCG guest
            BENCH name=kernel_cost_map_ioctl_us value=8.5 unit=us
            BENCH name=kernel_cost_map_page_us value=0.04 unit=us
            BENCH name=kernel_cost_map_pte_us value=0.4 unit=us
            BENCH name=kernel_cost_unmap_ioctl_us value=3.6 unit=us
            BENCH name=kernel_cost_unmap_page_us value=0.16 unit=us
            BENCH name=kernel_cost_unmap_pte_us value=0.005 unit=us
            """
        let p = try CostProfile.parse(text, file: "costs/tcg.txt").get()
        #expect(p.measuredOn?.series == KernelVersion(6, 12))
        #expect(p.name.contains("QEMU TCG"))
        #expect(p[.mapPageHugetlb2M] == 40)
        #expect(!p.appliesReleaseTerms)
        var w = KernelWork()
        w.calls = 1
        w.pages[.thp] = 512
        w.ptes = 1
        // 8.5 µs + 512 × 40 ns + 400 ns, the same on any release.
        #expect(abs(p.estimate(map: w, unmap: KernelWork(), release: KernelVersion(5, 14)).map - 29.38e-6) < 1e-9)
        #expect(p.estimate(map: w, unmap: KernelWork(), release: KernelVersion(5, 14)).map
                == p.estimate(map: w, unmap: KernelWork(), release: KernelVersion(6, 18)).map)
    }

    @Test("kernel-costs' constants become a measured profile of cost terms that reads back the same, measured on its release")
    func measuredProfile() throws {
        let k = ["map_ioctl_us": 2.0, "map_page_us": 0.03, "map_pte_us": 0.005,
                 "unmap_ioctl_us": 1.0, "unmap_page_us": 0.02, "unmap_pte_us": 0.004]
        let p = try #require(CostProfile.measured(kernelCosts: k, release: KernelVersion(6, 12, 57), host: "Xeon"))
        #expect(p.text.contains("BENCH name=cost_map_page_4k value=30.0 unit=ns"))
        #expect(p.text.contains("# measured on: 6.12.57"))
        let back = try CostProfile.parse(p.text, file: "host.txt").get()
        #expect(back.values == p.values)
        #expect(back.measuredOn == KernelVersion(6, 12, 57))
        #expect(!back.appliesReleaseTerms)
        #expect(CostProfile.measured(kernelCosts: k.merging(["map_page_us": .nan]) { $1 }, release: KernelVersion(6, 12), host: "x") == nil)
        #expect(CostProfile.measured(kernelCosts: ["map_ioctl_us": 1], release: KernelVersion(6, 12), host: "x") == nil)
    }

    @Test("a profile prints and reads back the same")
    func roundTrip() throws {
        let back = try CostProfile.parse(CostProfile.published.text, file: "p.txt").get()
        #expect(back.values == CostProfile.published.values)
        #expect(back.name == CostProfile.published.name)
        #expect(back.appliesReleaseTerms)
    }

    @Test("a bad cost line is file:line:column: error")
    func badLine() {
        guard case .failure(let e) = CostProfile.parse("# x\nBENCH name=cost_map_iocl value=1 unit=ns\n", file: "p.txt") else {
            Issue.record("parsed"); return
        }
        #expect(e.message.hasPrefix("p.txt:2:12: error: expected a cost term"))
        guard case .failure(let e2) = CostProfile.parse("BENCH name=cost_map_ioctl value=-1 unit=ns\n", file: "p.txt") else {
            Issue.record("parsed"); return
        }
        #expect(e2.message == "p.txt:1:33: error: expected a number of nanoseconds, zero or more, for cost_map_ioctl")
    }

    @Test("release terms: what a kernel change removed is paid before it only")
    func releaseTerms() {
        var w = KernelWork()
        w.pages[.thp] = 512
        w.folioSteps[.thp] = 1
        let p = CostProfile.published
        let t65 = p.estimate(map: w, unmap: w, release: KernelVersion(6, 5)), t66 = p.estimate(map: w, unmap: w, release: KernelVersion(6, 6))
        let t618 = p.estimate(map: w, unmap: w, release: KernelVersion(6, 18))
        #expect(t65.mapTerms.contains { $0.term == .mapTHPWalkBefore66 })
        #expect(!t66.mapTerms.contains { $0.term == .mapTHPWalkBefore66 })
        #expect(t66.mapTerms.contains { $0.term == .mapAccountingBefore618 })
        #expect(!t618.mapTerms.contains { $0.term == .mapAccountingBefore618 })
        #expect(t618.mapTerms.contains { $0.term == .mapFolioStep })
        #expect(t618.unmap < t66.unmap && t618.map < t66.map && t66.map < t65.map)
    }
}

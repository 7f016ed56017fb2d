import Testing
import VFIOCore
import VFIOCost
import VFIOLane
import VFIOModel
import VFIOReplay
import VFIOScenario
import VFIOTrace

/// The plan `program` makes for `options`, answered by the model.
func scenarioTrace(_ program: ScenarioProgram, _ configure: (inout ScenarioOptions) -> Void = { _ in }) throws -> Trace {
    var o = ScenarioOptions()
    configure(&o)
    return try ScenarioAnswers.answer(try Scenario.make(program, o), file: "\(program.rawValue).trace").get()
}

/// The trace printed and parsed again, replayed on the model: its report.
func replayPrinted(_ trace: Trace) throws -> FileReport {
    let again = try parseTrace(printTrace(trace), file: trace.file).get()
    return Replayer(backends: [ModelBackend()]).run(again)
}

func maps(_ t: Trace) -> [MapDMA] { t.statements.compactMap { if case .map(let m) = $0.kind { m } else { nil } } }
func unmaps(_ t: Trace) -> [UnmapDMA] { t.statements.compactMap { if case .unmap(let u) = $0.kind { u } else { nil } } }
func checks(_ t: Trace) -> [Check] { t.statements.compactMap { if case .check(let c) = $0.kind { c } else { nil } } }
func memories(_ t: Trace) -> [MemorySpec] { t.statements.compactMap { if case .memory(let m) = $0.kind { m } else { nil } } }
let GiB: UInt64 = 1 << 30, MiB: UInt64 = 1 << 20

@Suite("vfio-sim new: program templates")
struct ScenarioTests {
    static let cases: [(ScenarioProgram, String)] = [
        (.dpdk, ""), (.dpdk, "pa"), (.dpdk, "1G"), (.dpdk, "4K"),
        (.qemu, ""), (.qemu, "4K pc"), (.qemu, "2M"), (.qemu, "1G 2 containers bars"),
        (.spdk, ""), (.spdk, "coalesced"), (.cloudHypervisor, ""), (.cloudHypervisor, "2M"), (.pool, ""),
    ]

    @Test("every template's trace replays on the model with every answer and check it wrote holding", arguments: cases.indices)
    func replaysWithItsAnswers(_ i: Int) throws {
        let (program, variant) = Self.cases[i]
        let t = try scenarioTrace(program) { o in
            o.memory = 3 * GiB
            if variant.contains("pa") { o.iovaMode = .pa }
            if variant.contains("1G") { o.backing = .hugetlb1G }
            if variant.contains("2M") { o.backing = .hugetlb2M }
            if variant.contains("4K") { o.backing = .pages4K }
            if variant.contains("pc") { o.machine = .pc }
            if variant.contains("coalesced") { o.coalesced = true }
            if variant.contains("containers") { o.devices = 2; o.containers = 2; o.memlock = .unlimited }
            if variant.contains("bars") { o.barSize = 16 * GiB }
        }
        let answered = t.statements.filter { $0.expected != nil }.count
        #expect(answered >= maps(t).count && !maps(t).isEmpty)
        #expect(checks(t).count >= 4)
        let report = try replayPrinted(t)
        #expect(report.errors.isEmpty, "\(report.errors.map(\.message))")
        #expect(report.ok)
        #expect(report.outcomes.allSatisfy { !$0.failed })
    }

    @Test("DPDK with IOVA as PA maps each hugepage on its own, at its physical address (rte_memseg_walk)")
    func dpdkPA() throws {
        let t = try scenarioTrace(.dpdk) { $0.memory = 64 * MiB; $0.iovaMode = .pa }
        let m = maps(t), mem = memories(t)
        #expect(m.count == 32)
        for (map, region) in zip(m, mem) {
            #expect(map.size == 2 * MiB)
            #expect(map.vaddr == region.vaddr)
            if case .contiguous(let phys)? = region.layout { #expect(map.iova == phys) } else { Issue.record("no phys= for \(region)") }
        }
    }

    @Test("DPDK with IOVA as VA maps each memseg list's pages in one call: 40G of 2M pages is three lists of at most 16G")
    func dpdkVA() throws {
        let t = try scenarioTrace(.dpdk) { $0.memory = 40 * GiB }
        #expect(maps(t).map(\.size) == [16 * GiB, 16 * GiB, 8 * GiB])
        #expect(maps(t).allSatisfy { $0.iova == $0.vaddr })
        #expect(t.statements.contains { if case .iommu(.type1) = $0.kind { true } else { false } }, "DPDK asks for VFIO_TYPE1_IOMMU")
    }

    @Test("QEMU q35 keeps 2G of a 4G guest below 4G, i440fx 3G; the BIOS maps read-only below 4G")
    func qemuLayout() throws {
        for (machine, low) in [(QEMUMachine.q35, 2 * GiB), (.pc, 3 * GiB)] {
            let t = try scenarioTrace(.qemu) { $0.memory = 4 * GiB; $0.machine = machine }
            let m = maps(t)
            #expect(m.first?.iova == 0 && m.first?.size == low)
            #expect(m.contains { $0.iova == 4 * GiB && $0.size == 4 * GiB - low })
            #expect(m.contains { $0.iova == 4 * GiB - 256 * 1024 && $0.flags == [.read] })
            // The firmware's shadowing: the low RAM unmapped whole, then mapped
            // again with 768K-1M read-only.
            #expect(unmaps(t).first?.iova == 0 && unmaps(t).first?.size == low)
            #expect(m.contains { $0.iova == 0xc0000 && $0.size == 0x40000 && $0.flags == [.read] })
        }
    }

    @Test("each QEMU container pins guest RAM again: two containers lock twice the RAM, and libvirt's RAM + 1G refuses the second")
    func qemuContainers() throws {
        let unlimited = try scenarioTrace(.qemu) { $0.memory = 2 * GiB; $0.backing = .hugetlb2M; $0.devices = 2; $0.containers = 2; $0.memlock = .unlimited }
        let locked: [UInt64] = checks(unlimited).compactMap { if case .locked(let v) = $0 { v } else { nil } }
        let peak = locked.max() ?? 0
        #expect(peak == 2 * (2 * GiB + 256 * 1024))
        let libvirt = try scenarioTrace(.qemu) { $0.memory = 2 * GiB; $0.backing = .hugetlb2M; $0.devices = 2; $0.containers = 2 }
        #expect(libvirt.statements.contains { $0.expected?.status == .errno(.ENOMEM) })
    }

    @Test("SPDK's coalesced buffers under the v1 interface go whole at their first 2M unregistration; the rest find nothing")
    func spdkCoalescedV1() throws {
        let t = try scenarioTrace(.spdk) { $0.memory = 64 * MiB; $0.coalesced = true }
        let sizes = t.statements.compactMap { st -> UInt64? in
            guard case .unmap = st.kind, case .ok = st.expected?.status else { return nil }
            guard case .size(let v)? = st.expected?.fields.first else { return nil }
            return v
        }
        #expect(sizes.contains { $0 > 2 * MiB })
        #expect(sizes.contains(0))
        #expect(sizes.reduce(0, +) == 64 * MiB)
    }

    @Test("cloud-hypervisor keeps at most 3G below 4G")
    func cloudHypervisorLayout() throws {
        let t = try scenarioTrace(.cloudHypervisor) { $0.memory = 8 * GiB }
        #expect(maps(t).map(\.size) == [3 * GiB, 5 * GiB])
        #expect(maps(t).map(\.iova) == [0, 4 * GiB])
    }

    @Test("setups a program cannot have are errors that name the option")
    func refusedSetups() throws {
        var o = ScenarioOptions()
        o.containers = 2; o.devices = 2
        #expect(throws: ScenarioError.self) { try Scenario.make(.dpdk, o) }
        o = ScenarioOptions(); o.backing = .thp
        #expect(throws: ScenarioError.self) { try Scenario.make(.dpdk, o) }
        o = ScenarioOptions(); o.memory = 0
        #expect(throws: ScenarioError("--memory must not be 0")) { try Scenario.make(.qemu, o) }
        o = ScenarioOptions(); o.barSize = 3 << 20
        #expect(throws: ScenarioError.self) { try Scenario.make(.qemu, o) }
        o = ScenarioOptions(); o.contiguous = true
        #expect(throws: ScenarioError.self, "--phys on QEMU's default THP memory") { try Scenario.make(.qemu, o) }
        o.backing = .hugetlb2M
        _ = try Scenario.make(.qemu, o)
        o = ScenarioOptions(); o.memory = UInt64.max
        #expect(throws: ScenarioError.self) { try Scenario.make(.pool, o) }
    }

    @Test("the kernel a user names answers the plan: 5.10's QEMU trace says kernel 5.10")
    func kernelLine() throws {
        let t = try scenarioTrace(.qemu) { $0.kernel = "5.10" }
        #expect(t.statements.contains { if case .kernel(let k) = $0.kind { k.description.hasPrefix("5.10") } else { false } })
    }
}

@Suite("vfio-sim new: memory not preallocated, GPU BARs")
struct ScenarioMemoryTests {
    @Test("QEMU's anonymous RAM is not preallocated (populated=no), hugetlbfs RAM is (libvirt), and --prealloc wins")
    func qemuPrealloc() throws {
        func ram(_ configure: (inout ScenarioOptions) -> Void) throws -> MemorySpec {
            try #require(memories(try scenarioTrace(.qemu, configure)).first)
        }
        #expect(try ram { $0.backing = .thp }.populated == false)
        #expect(try ram { $0.backing = .pages4K }.populated == false)
        #expect(try ram { $0.backing = .hugetlb2M }.populated == true)
        #expect(try ram { $0.backing = .thp; $0.prealloc = true }.populated == true)
        #expect(try ram { $0.backing = .hugetlb1G; $0.prealloc = false }.populated == false)
    }

    @Test("DPDK and SPDK touch their hugepages as they allocate them: --prealloc no is refused")
    func hugepagesArePopulated() {
        var o = ScenarioOptions()
        o.prealloc = false
        #expect(throws: ScenarioError.self) { try Scenario.make(.dpdk, o) }
        #expect(throws: ScenarioError.self) { try Scenario.make(.spdk, o) }
    }

    @Test("a guest with four 64G GPU BARs: from 6.15 (huge pfnmap) mapping them costs a small part of what it did on 6.14")
    func gpuBars() throws {
        func mapSeconds(_ kernel: String) throws -> Double {
            let t = try scenarioTrace(.qemu) { o in
                o.memory = 4 * GiB; o.backing = .hugetlb1G; o.devices = 4; o.barSize = 64 * GiB; o.iommu = .intel48; o.kernel = kernel
            }
            return try #require(Planner.plan(t, costs: .published).kernelTime).map
        }
        let before = try mapSeconds("6.14"), after = try mapSeconds("6.15")
        #expect(before > 5)
        #expect(after * 20 < before)
    }
}

@Suite("vfio-sim new: guests of terabytes")
struct ScenarioScaleTests {
    @Test("a 12 TiB QEMU guest on scattered 4K pages: the trace replays with its own answers and the plan counts every page, chunk and entry")
    func twelveTiB4K() throws {
        let ram: UInt64 = 12 << 40, bios: UInt64 = 256 << 10
        let t = try scenarioTrace(.qemu) { o in o.memory = ram; o.backing = .pages4K; o.iommu = .intel48 }
        #expect(try replayPrinted(t).ok)
        let plan = try Planner.plan(t, costs: .published)
        // RAM and BIOS locked at once, one 4K entry per page (every page apart: no larger entry fits).
        #expect(plan.needs.peakLocked == ram + bios)
        #expect(plan.needs.peakTotalPTEs.entries == [PTECounts.Entry(size: 4096, count: (ram + bios) / 4096)])
        // The map phase pins RAM once plus the low RAM again after the ROM shadowing, a chunk per page;
        // every RAM page is faulted in once.
        let lowAgain: UInt64 = 2 << 30
        #expect(plan.mapWork.pages[.anon4K] == (ram + bios + lowAgain) / 4096)
        #expect(plan.mapWork.chunks == (ram + bios + lowAgain) / 4096)
        #expect(plan.mapWork.faults == ram / 4096)
        #expect(try #require(plan.kernelTime).map > 0)
    }

    @Test("1 TiB guests on 2M and 1G hugetlbfs pages plan with one entry per hugepage")
    func oneTiBHugepages() throws {
        for (backing, page) in [(VFIOScenario.Backing.hugetlb2M, UInt64(2 << 20)), (VFIOScenario.Backing.hugetlb1G, UInt64(1 << 30))] {
            let t = try scenarioTrace(.qemu) { o in o.memory = 1 << 40; o.backing = backing; o.iommu = .intel48 }
            #expect(try replayPrinted(t).ok)
            let plan = try Planner.plan(t, costs: .published)
            let huge = plan.needs.peakTotalPTEs.entries.first { $0.size == page }?.count ?? 0
            // All of RAM but what the BIOS hole and the shadowed low RAM leave to smaller entries.
            #expect(huge >= (1 << 40) / page - 3 && huge < (1 << 40) / page)
        }
    }
}

import Testing
import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace
@testable import VFIOExplore

@Suite("Generated sequences")
struct ExploreTests {
    @Test("thousands of generated sequences keep every property on the model", arguments: [0 as UInt64, 1, 2, 3])
    func propertiesHold(block: UInt64) {
        let explorer = Explorer()
        var operations = 0
        for seed in (block * 500)..<(block * 500 + 500) {
            let trace = explorer.generator.generate(seed: seed, operations: 30)
            let (finding, report) = explorer.check(trace)
            operations += report.outcomes.count
            if let finding {
                Issue.record("seed \(seed): \(finding)")
                return
            }
        }
        #expect(operations > 10_000)
    }

    @Test("a map whose iova range wraps, refused for a reason other than the overflow, is explained without a trap (seed 2126 trapped in explainMap)")
    func wrappingMapIsExplained() {
        let explorer = Explorer(generator: SequenceGenerator(modelOnly: true))
        let (finding, report) = explorer.check(explorer.generator.generate(seed: 2126, operations: 40))
        #expect(finding.map { "\($0)" } == nil)
        #expect(report.outcomes.count >= 30)
    }

    @Test("a sequence that hangs the kernel ends there with a note, never a finding (issue 29: the last detach hung, then the invariants assumed it had finished)")
    func hangEndsTheSequence() throws {
        let trace = try parseTrace("""
            kernel 6.12
            domain d0 pgsizes=mask:0xfffffffffffff000 aperture=0x0-0xffffffffffffffff coherent=no
            memory vaddr=0x7f0000000000 size=9900K phys=contiguous
            map iova=0xfffffffffff00000 vaddr=0x7f0000815000 size=1M prot=rw
            map iova=0xffffffffffe01000 vaddr=0x7f000013a000 size=1M prot=rw
            detach d0
            map iova=0x100000 vaddr=0x7f0000000000 size=4K prot=rw
            unmap-all
            info
            """, file: "hang.trace").get()
        let explorer = Explorer()
        let (finding, report) = explorer.check(trace)
        #expect(finding.map { "\($0)" } == nil)
        #expect(Explorer.endsInHang(report))
        #expect(report.notes.contains { $0.line == 6 && $0.message.contains("predicted hang") })
        // Every call after it hangs too.
        #expect(report.outcomes.suffix(3).allSatisfy { $0.answers.first?.status == .errno(.hang) })
    }

    @Test("the same seed generates the same sequence")
    func deterministic() {
        let g = SequenceGenerator()
        #expect(printTrace(g.generate(seed: 42, operations: 50)) == printTrace(g.generate(seed: 42, operations: 50)))
        #expect(printTrace(g.generate(seed: 42, operations: 50)) != printTrace(g.generate(seed: 43, operations: 50)))
    }

    @Test("generated sequences reach the interesting answers")
    func coverage() {
        let explorer = Explorer()
        var seen = Set<String>()
        for seed in 0..<300 as Range<UInt64> {
            let (_, report) = explorer.check(explorer.generator.generate(seed: seed, operations: 30))
            for o in report.outcomes { for a in o.answers { seen.insert(a.description.split(separator: " ").first.map(String.init) ?? "") } }
        }
        for answer in ["ok", "EINVAL", "EEXIST", "ENOSPC", "ENOMEM", "EFAULT", "ENOENT", "EBUSY", "EACCES", "EOVERFLOW"] {
            #expect(seen.contains(answer), "no generated operation answered \(answer)")
        }
    }

    @Test("the shrinker reduces a failing trace to the statements the failure needs")
    func shrinks() {
        // A failure planted in the predicate: "some unmap reported 2M".
        let explorer = Explorer()
        var trace: Trace? = nil
        for seed in 0..<500 as Range<UInt64> {
            let t = explorer.generator.generate(seed: seed, operations: 40)
            let (_, report) = explorer.check(t)
            if report.outcomes.contains(where: { $0.answers.first == Answer(.ok, fields: [.size(0x20_0000)]) }) { trace = t; break }
        }
        guard let trace else { Issue.record("no seed produced a 2M unmap"); return }
        func fails(_ t: Trace) -> Bool {
            explorer.check(t).1.outcomes.contains { $0.answers.first == Answer(.ok, fields: [.size(0x20_0000)]) }
        }
        var shrinker = Shrinker(budget: 3000)
        let small = shrinker.shrink(trace, fails: fails)
        #expect(fails(small))
        let ops = small.statements.filter {
            switch $0.kind { case .map, .unmap: true; default: false }
        }
        #expect(ops.count <= 2, "shrunk to \(ops.count) map/unmap operations:\n\(printTrace(small))")
    }
}

@Suite("Sequences kept off a real kernel")
struct KernelHazardTests {
    static let virtio = DomainSpec(name: "d0", pgsizes: PageSizes(rawValue: 0xFFFF_FFFF_FFFF_F000), aperture: .all, coherent: false)

    func explorer() -> (Explorer, () -> Int) {
        var made = 0
        var e = Explorer(generator: SequenceGenerator(modelOnly: false)) { () throws(BackendError) -> [any Backend] in
            made += 1
            return []
        }
        e.hardwareDomains = [Self.virtio]
        e.modelProfile = KernelProfile(KernelVersion(6, 12))
        return (e, { made })
    }

    func parse(_ text: String) -> Trace {
        guard case .success(let t) = parseTrace(bytes: Array(text.utf8), file: "t.trace") else { fatalError("test trace does not parse") }
        return t
    }

    @Test("a sequence the model says loops forever in vfio_unmap_unpin is not run on the kernel")
    func hang() {
        let (e, made) = explorer()
        let trace = parse("""
            memory vaddr=0x7f0000000000 size=8M phys=contiguous
            map iova=0xffffffffffc00000 vaddr=0x7f0000000000 size=3M prot=rw
            map iova=0xffffffffffe00000 vaddr=0x7f0000400000 size=2M prot=rw
            unmap iova=0xffffffffffc00000 size=3M
            """)
        #expect(e.kernelHazard(trace) == .hang)
        let (finding, report) = e.check(trace)
        #expect(finding == nil)
        #expect(Explorer.notRunOnKernel(report))
        #expect(Explorer.hazardKeptOff(report) == .hang)
        #expect(made() == 0)
    }

    @Test("a sequence that leaves hugepages pinned for good (a mapping ending at 2^64-1 before 6.18) is not run on the kernel; one on 4K pages is")
    func hugepageLeak() {
        let (e, made) = explorer()
        let huge = parse("""
            memory vaddr=0x7f0000000000 size=2M page=2M
            map iova=0xffffffffffe00000 vaddr=0x7f0000000000 size=2M prot=rw
            """)
        #expect(e.kernelHazard(huge) == .pinnedHugepages)
        let small = parse("""
            memory vaddr=0x7f0000000000 size=2M
            map iova=0xffffffffffe00000 vaddr=0x7f0000000000 size=2M prot=rw
            """)
        #expect(e.kernelHazard(small) == nil)
        _ = e.check(small)
        #expect(made() == 1)
    }

    @Test("a sequence where the kernel's wrapping search lets a map overlap another mapping is not run on the kernel (seed 80 on 6.1 and 6.12 with amd- and virtio-iommu)")
    func overlapLetThrough() {
        let (e, _) = explorer()
        let trace = parse("""
            memlock 1M
            memory vaddr=0x7f0000000000 size=8084K
            memory vaddr=0x7f0004000000 size=12M page=2M
            map iova=0xffffffffffe06000 vaddr=0x7f0004b08000 size=4K prot=rw
            map iova=0xffffffffffe00000 vaddr=0x7f0000689000 size=2M prot=rw
            unmap-all
            map iova=0x0 vaddr=0x7f00049b7000 size=1M prot=rw
            """)
        #expect(e.kernelHazard(trace) == .overlap)
        var newest = e
        newest.modelProfile = KernelProfile(KernelVersion(6, 18))
        newest.hardwareDomains = [DomainSpec(name: "d0", pgsizes: Self.virtio.pgsizes, aperture: .all)]
        #expect(newest.kernelHazard(trace) == nil)
    }

    @Test("a map the wrapping search lets over a mapping, but that the valid-range check refuses, never reaches the IOMMU and is run on the kernel")
    func overlapRefusedEarlier() {
        let (e, _) = explorer()
        let trace = parse("""
            memory vaddr=0x7f0000000000 size=4M
            map iova=0xfed00000 vaddr=0x7f0000000000 size=1M prot=rw
            map iova=0xfed00000 vaddr=0x1000 size=0xffffffff01300000 prot=rw
            """)
        #expect(e.kernelHazard(trace) == nil)
    }
}

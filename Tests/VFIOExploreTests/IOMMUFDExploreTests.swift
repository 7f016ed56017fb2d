import Testing
import VFIOCore
@testable import VFIOModel
import VFIOReplay
import VFIOTrace
@testable import VFIOExplore

@Suite("Generated sequences for iommufd's compat layer (explore --container iommufd)")
struct IOMMUFDExploreTests {
    let explorer = Explorer(generator: SequenceGenerator(modelOnly: true, container: .iommufd))

    @Test("generated iommufd sequences keep iommufd's properties on the model", arguments: [0 as UInt64, 1])
    func propertiesHold(block: UInt64) {
        var operations = 0
        for seed in (block * 500)..<(block * 500 + 500) {
            let (finding, report) = explorer.check(explorer.generator.generate(seed: seed, operations: 30))
            operations += report.outcomes.count
            if let finding { Issue.record("seed \(seed): \(finding)"); return }
        }
        #expect(operations > 10_000)
    }

    @Test("a generated trace says `container iommufd` before any group, on a release with iommufd; beside a kernel it names no release")
    func containerLine() {
        for seed in 0..<200 as Range<UInt64> {
            let t = explorer.generator.generate(seed: seed, operations: 10)
            let container = t.statements.firstIndex { $0.kind == .container(.iommufd) }
            let domain = t.statements.firstIndex { if case .domain = $0.kind { true } else { false } }
            #expect(container != nil && domain != nil && container! < domain!, "seed \(seed)")
            for st in t.statements { if case .kernel(let v) = st.kind { #expect(KernelProfile(v).hasIOMMUFD, "seed \(seed): \(v)") } }
        }
        let onKernel = SequenceGenerator(modelOnly: false, container: .iommufd).generate(seed: 3, operations: 10)
        #expect(!onKernel.statements.contains { if case .kernel = $0.kind { true } else { false } })
        #expect(onKernel.statements.contains { $0.kind == .container(.iommufd) })
    }

    @Test("generated iommufd sequences reach every answer of the map walk: a full limit (ENOMEM), unbacked pages (EFAULT), prot=none (EINVAL), overlaps (EEXIST)")
    func coverage() {
        var seen = Set<String>()
        var tightLimits = 0, pastMemory = 0, noAccess = 0
        for seed in 0..<400 as Range<UInt64> {
            let t = explorer.generator.generate(seed: seed, operations: 30)
            let regions = t.statements.compactMap { if case .memory(let m) = $0.kind { m } else { nil } }
            for st in t.statements {
                if case .memlock(let l?) = st.kind, l < 0x10000 { tightLimits += 1 }
                guard case .map(let m) = st.kind else { continue }
                if m.flags.isEmpty { noAccess += 1 }
                if regions.contains(where: { m.vaddr >= $0.vaddr && m.vaddr < $0.vaddr + $0.size && m.vaddr &+ m.size > $0.vaddr + $0.size }) {
                    pastMemory += 1
                }
            }
            let (_, report) = explorer.check(t)
            for o in report.outcomes where o.statement.hasPrefix("map ") {
                seen.insert(o.answers.first.map { "\($0)" } ?? "")
            }
        }
        for answer in ["ok", "EINVAL", "EEXIST", "ENOMEM", "EFAULT", "EOVERFLOW"] {
            #expect(seen.contains(answer), "no generated map answered \(answer)")
        }
        #expect(tightLimits > 100 && pastMemory > 100 && noAccess > 100, "\(tightLimits) tight limits, \(pastMemory) maps past memory, \(noAccess) prot=none")
    }

    /// Replays `text` on an iommufd model with the properties watched, and
    /// `corrupt` applied to the model after the operation on line `line`
    /// (before the properties look at it).
    func violations(_ text: String, at line: Int, _ corrupt: @escaping (inout IOMMUFDContainer) -> Void) throws -> [String] {
        let trace = try parseTrace(text, file: "broken.trace").get()
        let model = ModelBackend(checksInvariants: false)
        let replayer = Replayer(backends: [model])
        replayer.closesBackends = false
        let checker = PropertyChecker(model: model)
        checker.watch(replayer)
        let check = replayer.didRun
        replayer.didRun = { st, outcome in
            if st.line == line { model.corrupt(corrupt) }
            check?(st, outcome)
        }
        _ = replayer.run(trace)
        return checker.violations.map(\.property)
    }

    static let setup = """
        container iommufd
        memlock 64K
        memory vaddr=0x7f0000000000 size=1M
        map iova=0x100000 vaddr=0x7f0000000000 size=16K prot=rw
        map iova=0x100000 vaddr=0x7f0000000000 size=16K prot=rw
        map iova=0x200000 vaddr=0x7f0000010000 size=16K prot=rw
        """

    @Test("the properties fire on a broken IOAS: a charge the areas do not hold, a failed map that changed something, a charge past the limit")
    func propertiesFire() throws {
        // Sound, nothing fires.
        #expect(try violations(Self.setup, at: 0) { _ in } == [])
        // The user's locked_vm off by one page after the first map.
        #expect(try violations(Self.setup, at: 4) { $0.process.userLockedVm += 1 }.first == "invariant")
        // The overlapping map (EEXIST) turning large pages off.
        #expect(try violations(Self.setup, at: 5) { $0.disableLargePages.toggle() } == ["failed-op-changes-nothing"])
        // A limit that the last map's charge passes.
        #expect(try violations(Self.setup, at: 6) { $0.memlock = 0x4000 } == ["charge-within-limit"])
    }

    @Test("an iommufd unmap that reports other bytes than it removed, or removes bytes outside its range, is a finding")
    func unmapPropertiesFire() throws {
        let text = Self.setup + "\nunmap iova=0x100000 size=16K\n"
        // The unmap on line 7 also drops the other area.
        let both = try violations(text, at: 7) { m in
            m.process.pinnedVm -= m.areas[0].pinnedPages
            m.process.userLockedVm -= m.areas[0].chargedPages
            m.ownPinnedPages -= m.areas[0].pinnedPages
            m.ownUserLockedPages -= m.areas[0].chargedPages
            m.areas.removeAll()
        }
        #expect(both == ["unmap-reports-removed", "unmap-stays-in-range"])
    }

    @Test("shrinking an iommufd sequence keeps its container line, even where type1 would fail the same way")
    func shrinkKeepsContainer() {
        // "Some map succeeds" holds for a type1 trace as well: without
        // the rule the shrinker would drop `container iommufd`.
        func fails(_ t: Trace) -> Bool { explorer.check(t).1.outcomes.contains { $0.statement.hasPrefix("map ") && $0.answers.first?.status == .ok } }
        guard let trace = (0..<50 as Range<UInt64>).lazy.map({ explorer.generator.generate(seed: $0, operations: 30) }).first(where: fails) else {
            Issue.record("no seed made a map that succeeds"); return
        }
        var shrinker = Shrinker(budget: 2000)
        let small = shrinker.shrink(trace, fails: fails)
        #expect(fails(small))
        #expect(small.statements.contains { $0.kind == .container(.iommufd) }, "\(printTrace(small))")
        #expect(small.statements.count <= 4, "\(printTrace(small))")
    }
}

extension ModelBackend {
    /// Corrupts the current container, an iommufd compat IOAS, in place
    /// (with the process lent to it), to see the properties fire.
    func corrupt(_ body: (inout IOMMUFDContainer) -> Void) {
        call { d in
            guard var c = d as? IOMMUFDContainer else { Issue.record("not an iommufd container"); return }
            body(&c)
            d = c
        }
    }
}

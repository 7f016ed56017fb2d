import Testing
import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// `Replayer.keepsHeldOutcomes` off: what held is counted, not kept, and a
/// text report cannot tell the difference.
@Suite("Lean replay")
struct LeanReplayTests {
    /// The replay `vfio-sim replay` runs for a text report without
    /// --verbose: held answers unexplained, and (when `lean`) not kept.
    func replay(_ trace: Trace, lean: Bool) -> FileReport {
        let r = Replayer(backends: [ModelBackend(checksInvariants: true)])
        r.explainsHeldAnswers = false
        r.keepsHeldOutcomes = !lean
        return r.run(trace)
    }

    /// What a kept outcome says, for comparing two replays.
    func said(_ o: Outcome) -> String {
        "\(o.line): \(o.statement) expected \(o.expected ?? "-") got \(o.got.map { "\($0.text) held=\(String(describing: $0.held)) why=\($0.reason ?? "-")" })"
    }

    @Test("a lean replay of every fixture and recording counts the same operations, passes and failures, keeps every outcome that did not hold, and prints the same text report",
          arguments: fixtureNames + recordedNames)
    func sameReport(name: String) throws {
        let trace = try loadTrace(name)
        let full = replay(trace, lean: false), lean = replay(trace, lean: true)
        let (a, b) = (Totals([full]), Totals([lean]))
        #expect(a.operations == b.operations)
        #expect(a.passed == b.passed)
        #expect(a.failed == b.failed)
        #expect(a.skipped == b.skipped)
        let heldQuietly = full.outcomes.filter { !$0.isShow && $0.passed && $0.agree && $0.got.allSatisfy { $0.reason == nil } }
        #expect(lean.heldNotKept <= heldQuietly.count)
        if !heldQuietly.isEmpty { #expect(lean.heldNotKept > 0, "the lean path ran") }
        #expect(lean.outcomes.count + lean.heldNotKept == full.outcomes.count)
        // What was kept is what the full replay had, minus held answers.
        let keptLines = Set(lean.outcomes.map(said))
        for o in full.outcomes where !keptLines.contains(said(o)) {
            #expect(heldQuietly.contains { said($0) == said(o) }, "\(name): dropped an outcome that did not hold quietly: \(said(o))")
        }
        #expect(textReport([lean]) == textReport([full]))
    }

    @Test("held maps, unmaps and checks are counted; a short unmap, a wrong errno and a wrong check are kept with their reasons, in file order")
    func keepsWhatDidNotHold() throws {
        let text = """
            memory vaddr=0x7f0000000000 size=8M
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw => ok
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw => EEXIST
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw => ENOMEM
            check mappings=1
            check locked=4M
            unmap iova=0 size=4M => ok size=4M
            map iova=0 vaddr=0x7f0000000000 size=4K prot=rw repeat=3 => ok
            check mappings=3
            """
        let lean = replay(parse(text), lean: true)
        #expect(lean.outcomes.map(\.line) == [4, 6, 7])
        #expect(lean.outcomes.allSatisfy { $0.failed })
        // The first map, the EEXIST, the held check, the three repeated
        // maps, the last check.
        #expect(lean.heldNotKept == 7)
        #expect(try #require(lean.outcomes[0].got[0].reason).contains("vfio_dma_do_map"))
        #expect(lean.outcomes[1].got[0].text == "locked=2M")
        #expect(try #require(lean.outcomes[2].got[0].reason).contains("vfio_dma_do_unmap"))
        #expect(Totals([lean]).passed == 7)
        #expect(Totals([lean]).failed == 3)
    }

    @Test("with held answers explained, a held errno is kept with its reason and a held ok is only counted")
    func heldErrnoKeptWhenExplained() throws {
        let r = Replayer(backends: [ModelBackend()])
        r.keepsHeldOutcomes = false  // explainsHeldAnswers stays on
        let report = r.run(parse("""
            memory vaddr=0x7f0000000000 size=4M
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw => ok
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw => EEXIST
            check mappings=1
            """))
        #expect(report.outcomes.map(\.line) == [3])
        #expect(report.outcomes.first?.got.first?.reason != nil)
        #expect(report.heldNotKept == 2)
        #expect(Totals([report]).passed == 3)
    }
}

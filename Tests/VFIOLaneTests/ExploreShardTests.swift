import ScriptedSystem
import Testing
import VFIOCore
import VFIOExplore
import VFIOKernel
@testable import VFIOLane
import VFIOReplay

@Suite("One exploration across processes, cores and machines")
struct ExploreShardTests {
    @Test("the shards of a seed range cover it exactly once, in order", arguments: [(1 as UInt64, 100, 7), (5, 3, 4), (0, 1000, 1), (10, 0, 3)])
    func slicesCover(seed: UInt64, runs: Int, count: Int) {
        var next = seed
        for i in 1...count {
            let s = ExploreShards.slice(seed: seed, runs: runs, index: i, count: count)
            #expect(s.seed == next, "shard \(i)/\(count) starts at \(s.seed), not \(next)")
            #expect(s.runs >= runs / count && s.runs <= runs / count + 1)
            next = s.seed + UInt64(s.runs)
        }
        #expect(next == seed + UInt64(runs))
    }

    @Test("two jobs find what one job finds: the same sequences, operations and findings")
    func jobsAgree() {
        let make: @Sendable () -> Explorer = { Explorer(generator: SequenceGenerator(modelOnly: true)) }
        let one = ExploreShards.run(seed: 7, runs: 40, ops: 15, jobs: 1, makeExplorer: make)
        let two = ExploreShards.run(seed: 7, runs: 40, ops: 15, jobs: 2, makeExplorer: make)
        #expect(one.sequences == 40 && two.sequences == 40)
        #expect(one.operations == two.operations && one.operations > 300)
        #expect(one.findings == two.findings)
        #expect(one.shrunk.map(\.seed) == two.shrunk.map(\.seed))
    }

    func sampleRun() -> ExploreRun {
        var r = ExploreRun()
        r.sequences = 10; r.operations = 321; r.findings = 2; r.notRunOnKernel = 3; r.hung = 4; r.seconds = 1.5
        r.notRunByHazard = [.hang: 1, .overlap: 2]
        r.shrunk = [
            ExploreRun.Shrunk(seed: 12, finding: .disagreement(line: 4, statement: "map iova=0x0", answers: ["kernel ok", "model\tEINVAL"]),
                              tried: 30, statements: 3, fixture: "# found\nmap iova=0x0 => ok\n"),
            ExploreRun.Shrunk(seed: 15, finding: .property(Violation(property: "failed-call-changed-state", line: 2, detail: "a\\b")),
                              tried: 5, statements: 2, fixture: "unmap-all\n"),
        ]
        return r
    }

    @Test("a shard's report reads back as written, findings and fixtures included")
    func reportRoundTrip() throws {
        let report = ExploreReport(seed: 11, runs: 10, ops: 30, backend: "both", result: sampleRun())
        let back = try ExploreReport.decode(report.encode(), path: "r.txt").get()
        #expect(back.seed == 11 && back.runs == 10 && back.ops == 30 && back.backend == "both")
        #expect(back.result.sequences == 10 && back.result.operations == 321 && back.result.findings == 2 && back.result.notRunOnKernel == 3)
        #expect(back.result.notRunByHazard == [.hang: 1, .overlap: 2])
        #expect(back.result.summaryLine(backend: "both").hasSuffix("(3 not run on the kernel: 1 would hang it, 2 would overlap mappings in the IOMMU)"))
        #expect(back.result.shrunk.map(\.fixture) == report.result.shrunk.map(\.fixture))
        #expect(back.result.shrunk.map { "\($0.finding)" } == report.result.shrunk.map { "\($0.finding)" })
        #expect(back.result.shrunk.map(\.finding.key) == report.result.shrunk.map(\.finding.key))
        #expect(back.result.hung == 4)
        #expect(back.jobs == report.jobs)
        // A report without the job count (before issue 26) reads as one
        // job; one without the hung count either (before issue 29), as 0.
        func dropping(_ n: Int) -> String {
            report.encode().split(separator: "\n").map { line -> String in
                line.hasPrefix("counts\t") ? line.split(separator: "\t").dropLast(n).joined(separator: "\t") : String(line)
            }.joined(separator: "\n") + "\n"
        }
        let noJobs = try ExploreReport.decode(dropping(1), path: "old.txt").get()
        #expect(noJobs.jobs == 1 && noJobs.result.hung == 4)
        let oldBack = try ExploreReport.decode(dropping(2), path: "old.txt").get()
        #expect(oldBack.result.hung == 0 && oldBack.result.notRunOnKernel == 3 && oldBack.jobs == 1)
    }

    @Test("a truncated or foreign report is refused with the file's name")
    func badReport() {
        let text = ExploreReport(seed: 1, runs: 10, ops: 30, backend: "model", result: sampleRun()).encode()
        guard case .failure(let e) = ExploreReport.decode(String(text.dropLast("END\n".count)), path: "cut.txt") else {
            Issue.record("a report without END was accepted"); return
        }
        #expect(e.message.hasPrefix("cut.txt: "))
        if case .success = ExploreReport.decode("explored 10 sequences\n", path: "x") { Issue.record("prose was accepted as a report") }
    }

    @Test("merged shard reports add up; each kind of finding keeps its lowest seed; overlapping ranges are refused")
    func merge() throws {
        var late = sampleRun()
        late.shrunk[0].seed = 25
        let a = ExploreReport(seed: 11, runs: 10, ops: 30, backend: "model", result: sampleRun())
        let b = ExploreReport(seed: 21, runs: 10, ops: 30, backend: "model", result: late)
        let m = try ExploreReport.merge([b, a]).get()
        #expect(m.seed == 11 && m.runs == 20)
        #expect(m.result.sequences == 20 && m.result.operations == 642 && m.result.findings == 4)
        #expect(m.result.notRunOnKernel == 6 && m.result.notRunByHazard == [.hang: 2, .overlap: 4])
        #expect(m.result.shrunk.map(\.seed) == [12, 15])
        #expect(ExploreReport.coverage([b, a]) == "11-30")
        let overlapping = ExploreReport(seed: 15, runs: 10, ops: 30, backend: "model", result: late)
        if case .success = ExploreReport.merge([a, overlapping]) { Issue.record("overlapping seed ranges were merged") }
        let otherOps = ExploreReport(seed: 40, runs: 10, ops: 31, backend: "model", result: late)
        if case .success = ExploreReport.merge([a, otherOps]) { Issue.record("reports with different --ops were merged") }
    }
}

extension ExploreShardTests {
    @Test("seed ranges at the top of u64: the seeds stop at 2^64-1 without wrapping, and reports ending there still refuse an overlap")
    func seedsAtTheTop() throws {
        #expect(ExploreRun.seeds(from: .max - 2, count: 3) == [.max - 2, .max - 1, .max])
        #expect(ExploreRun.seeds(from: .max, count: 1) == [.max])
        #expect(ExploreRun.seeds(from: 5, count: 0) == [])
        let top = ExploreReport(seed: .max - 9, runs: 10, ops: 30, backend: "model", result: sampleRun())
        let inside = ExploreReport(seed: .max - 3, runs: 2, ops: 30, backend: "model", result: sampleRun())
        if case .success = ExploreReport.merge([top, inside]) { Issue.record("a range inside one that ends at 2^64-1 was merged") }
        let below = ExploreReport(seed: .max - 19, runs: 10, ops: 30, backend: "model", result: sampleRun())
        let m = try ExploreReport.merge([top, below]).get()
        #expect(m.seed == .max - 19 && m.runs == 20)
        let huge = ExploreReport(seed: 0, runs: .max, ops: 30, backend: "model", result: sampleRun())
        if case .success = ExploreReport.merge([huge, top]) { Issue.record("runs adding up past Int.max were merged") }
    }
}

@Suite("Many sequences per child process")
struct BatchIsolationTests {
    func report(_ n: Int, leak: Bool = false) -> FileReport {
        var r = FileReport(file: "seq\(n)", kernels: [])
        if leak { r.problems.append(ReportProblem(.backend("kernel", .lockedAfterRelease(bytes: 4096)))) }
        return r
    }

    @Test("a child runs sequences in a row and a fresh child follows one that may leave state behind")
    func freshAfterLeak() {
        let sys = ScriptedSystemCalls()
        var children = 0
        sys.child = { body in children += 1; return .success(body()) }
        let bodies: [() -> (FileReport, freshProcessAfter: Bool)] = (0..<5).map { i in { (report(i), i == 1) } }
        let reports = Isolation.runBatch(file: "explore", sys: sys, bodies)
        #expect(reports.map(\.file) == ["seq0", "seq1", "seq2", "seq3", "seq4"])
        #expect(children == 2)
    }

    @Test("a child that dies loses its batch, which then runs a process per sequence, the failure on the one that caused it")
    func deathFallsBack() {
        let sys = ScriptedSystemCalls()
        var calls = 0
        // The first child (the whole batch) dies; later children work.
        sys.child = { body in calls += 1; return calls == 1 ? .failure(.signalled(11)) : .success(body()) }
        let bodies: [() -> (FileReport, freshProcessAfter: Bool)] = (0..<3).map { i in { (report(i), false) } }
        let reports = Isolation.runBatch(file: "explore", sys: sys, bodies)
        #expect(reports.map(\.file) == ["seq0", "seq1", "seq2"])
        #expect(reports.allSatisfy { $0.errors.isEmpty })
        #expect(calls == 3)  // the batch, seq0 alone, then seq1 and seq2 together
    }
}

@Suite("Exploring on several kernels side by side")
struct KernelWorkerTests {
    /// An explorer on the kernel-side generator (one group, memory a
    /// kernel can allocate) whose replays are counted, with no kernel.
    final class Counter: @unchecked Sendable { var replays = 0 }
    func explorer(_ counter: Counter) -> Explorer {
        Explorer(generator: SequenceGenerator(modelOnly: false), others: { () throws(BackendError) -> [any Backend] in
            counter.replays += 1
            return []
        })
    }

    @Test("workers side by side find what one explorer finds; sequences that set dma-entry-limit run alone on the exclusive explorer, after the workers")
    func workersAgreeWithOne() {
        let seeds = Array(UInt64(1)...60)
        let gen = SequenceGenerator(modelOnly: false)
        let alone = seeds.filter { ExploreShards.setsModuleParameter(gen.generate(seed: $0, operations: 20)) }
        #expect(!alone.isEmpty && alone.count < seeds.count, "the seeds mix both kinds")
        let sys = ScriptedSystemCalls()
        var children = 0
        sys.child = { body in children += 1; return .success(body()) }
        let (w1, w2, ex, one) = (Counter(), Counter(), Counter(), Counter())
        let side = ExploreShards.runOnKernels(seeds: seeds, ops: 20, workers: [explorer(w1), explorer(w2)], exclusive: explorer(ex), sys: sys)
        let single = ExploreRun.run(seeds: seeds, ops: 20, explorer: explorer(one))
        #expect(children == 2)
        #expect(side.sequences == single.sequences && side.sequences == 60)
        #expect(side.operations == single.operations)
        #expect(side.findings == single.findings)
        #expect(side.shrunk.map(\.finding.key).sorted() == single.shrunk.map(\.finding.key).sorted())
        #expect(side.withKernel)
        // Without findings (nothing to shrink) each sequence replays once.
        if single.findings == 0 {
            #expect(ex.replays == alone.count)
            #expect(w1.replays + w2.replays == seeds.count - alone.count)
            #expect(abs(w1.replays - w2.replays) <= 1, "seeds are dealt in turn")
        }
    }

    @Test("a worker that dies hands its seeds to the exclusive explorer: nothing is lost")
    func deadWorker() {
        let seeds = Array(UInt64(100)...139)
        let sys = ScriptedSystemCalls()
        var calls = 0
        sys.child = { body in calls += 1; return calls == 1 ? .failure(.signalled(9)) : .success(body()) }
        let (w1, w2, ex) = (Counter(), Counter(), Counter())
        let r = ExploreShards.runOnKernels(seeds: seeds, ops: 10, workers: [explorer(w1), explorer(w2)], exclusive: explorer(ex), sys: sys)
        #expect(r.sequences == 40)
        #expect(w1.replays == 0, "the first worker's body never ran")
        #expect(ex.replays > 0)
    }
}

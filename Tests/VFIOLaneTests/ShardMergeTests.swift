import Testing
import VFIOCore
import VFIOExplore
@testable import VFIOLane
import VFIOModel

/// The lane's matrix as independent jobs (issue 27): an exploration split
/// into shards, run apart and merged through their written reports (as
/// job.sh and merge.sh do with `explore --report` and `explore --merge`),
/// finds what the same seeds find in one run.
@Suite("Shards of one exploration, merged, find what one run finds")
struct ShardMergeTests {
    /// The model against a 5.10 model playing the kernel: they differ
    /// (5.10 has no UNMAP_ALL, no UPDATE_VADDR), so the seeds have findings.
    func explorer() -> Explorer {
        Explorer(generator: SequenceGenerator(modelOnly: true), others: {
            [ModelBackend(profile: KernelProfile(KernelVersion(5, 10)), pinned: true, label: "kernel")]
        })
    }

    @Test("two shards, each written as a report and read back, merge into the unsharded run's counts and findings", arguments: [2, 3])
    func shardsMerge(count: Int) throws {
        let seed: UInt64 = 1, runs = 24, ops = 20
        let whole = ExploreRun.run(seed: seed, runs: runs, ops: ops, explorer: explorer())
        #expect(whole.findings > 0, "the two releases should disagree somewhere in \(runs) seeds")
        var reports: [ExploreReport] = []
        for i in 1...count {
            let s = ExploreShards.slice(seed: seed, runs: runs, index: i, count: count)
            let part = ExploreRun.run(seed: s.seed, runs: s.runs, ops: ops, explorer: explorer())
            let text = ExploreReport(seed: s.seed, runs: s.runs, ops: ops, backend: "both", result: part).encode()
            reports.append(try ExploreReport.decode(text, path: "shard\(i).report").get())
        }
        let merged = try ExploreReport.merge(reports.reversed()).get()
        #expect(merged.seed == seed && merged.runs == runs)
        #expect(merged.result.sequences == whole.sequences && merged.result.operations == whole.operations)
        #expect(merged.result.findings == whole.findings)
        #expect(merged.result.shrunk.map(\.seed) == whole.shrunk.map(\.seed))
        #expect(merged.result.shrunk.map(\.finding.key) == whole.shrunk.map(\.finding.key))
        #expect(merged.result.shrunk.map(\.fixture) == whole.shrunk.map(\.fixture))
    }
}

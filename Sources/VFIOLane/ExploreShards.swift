import VFIOExplore
import VFIOKernel
import VFIOTrace

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One exploration split across cores and machines.
///
/// A shard `I/N` takes the I-th of N equal slices of the seed range (the
/// first slices one seed longer when N does not divide it), so a batch
/// system (a CI job matrix, GNU parallel, Slurm array jobs) runs the shards
/// anywhere and `ExploreShards.merge` adds their reports into the one the
/// whole range gives. Within a shard, `jobs` threads take the seeds in turn
/// (seed, seed+jobs, ...), each with its own model.
public enum ExploreShards {
    /// The seeds of shard `index` (1-based) of `count` over `runs` seeds from `seed`.
    public static func slice(seed: UInt64, runs: Int, index: Int, count: Int) -> (seed: UInt64, runs: Int) {
        precondition(count >= 1 && (1...count).contains(index) && runs >= 0)
        let base = runs / count, extra = runs % count
        let i = index - 1
        let start = i * base + min(i, extra)
        return (seed &+ UInt64(start), base + (i < extra ? 1 : 0))
    }

    /// Explores `runs` seeds from `seed` on `jobs` threads, each making its
    /// explorer with `makeExplorer` (model only: a kernel has one set of
    /// groups). The result is what one thread would give: counts summed,
    /// and per kind of finding the shrunk trace of its lowest seed.
    public static func run(seed: UInt64, runs: Int, ops: Int, jobs: Int,
                           makeExplorer: @escaping @Sendable () -> Explorer) -> ExploreRun {
        let jobs = max(1, min(jobs, runs))
        if jobs == 1 {
            return ExploreRun.run(seeds: ExploreRun.seeds(from: seed, count: runs), ops: ops, explorer: makeExplorer())
        }
        let all = ExploreRun.seeds(from: seed, count: runs)
        let boxes = (0..<jobs).map { j in
            JobBox(seeds: stride(from: j, to: all.count, by: jobs).map { all[$0] }, ops: ops, make: makeExplorer)
        }
        var threads: [pthread_t] = []
        for box in boxes {
            var t = pthread_t()
            let context = Unmanaged.passRetained(box).toOpaque()
            let rc = pthread_create(&t, nil, { raw in
                let box = Unmanaged<JobBox>.fromOpaque(raw!).takeRetainedValue()
                box.result = ExploreRun.run(seeds: box.seeds, ops: box.ops, explorer: box.make())
                return nil
            }, context)
            if rc != 0 {
                // No thread: this one does the work.
                Unmanaged<JobBox>.fromOpaque(context).release()
                box.result = ExploreRun.run(seeds: box.seeds, ops: box.ops, explorer: box.make())
            } else {
                threads.append(t)
            }
        }
        for t in threads { pthread_join(t, nil) }
        return merge(boxes.map { $0.result ?? ExploreRun() })
    }

    /// Explores `seeds` on real kernels side by side: one worker process per
    /// explorer of `workers`, each driving groups of its own, the seeds
    /// dealt out in turn. A sequence that sets a module parameter
    /// (`dma-entry-limit`: global, and read when a container opens) would
    /// change the other workers' answers, so those run afterwards on
    /// `exclusive`, alone; so do the seeds of a worker that died. Each
    /// worker shrinks its own findings. The result is the merge of all.
    ///
    /// Worth it in a TCG guest with a vCPU per worker: a kernel's ioctls,
    /// not process start-up, are most of the time there.
    public static func runOnKernels(seeds: [UInt64], ops: Int, workers: [Explorer], exclusive: Explorer,
                                    sys: SystemCalls, onShrunk: (ExploreRun.Shrunk) -> Void = { _ in }) -> ExploreRun {
        guard workers.count > 1 else {
            return ExploreRun.run(seeds: seeds, ops: ops, explorer: workers.first ?? exclusive, onShrunk: onShrunk)
        }
        var shared: [UInt64] = [], alone: [UInt64] = []
        for s in seeds {
            if setsModuleParameter(exclusive.generator.generate(seed: s, operations: ops)) { alone.append(s) } else { shared.append(s) }
        }
        let dealt = workers.indices.map { w in stride(from: w, to: shared.count, by: workers.count).map { shared[$0] } }
        let results = sys.inChildren(workers.indices.map { w in
            { () -> [UInt8] in
                let run = ExploreRun.run(seeds: dealt[w], ops: ops, explorer: workers[w])
                return Array(ExploreReport(seed: dealt[w].first ?? 0, runs: dealt[w].count, ops: ops, backend: "both", result: run).encode().utf8)
            }
        })
        var parts: [ExploreRun] = []
        for (w, r) in results.enumerated() {
            if case .success(let bytes) = r, case .success(let report) = ExploreReport.decode(String(decoding: bytes, as: UTF8.self), path: "worker \(w + 1)") {
                parts.append(report.result)
            } else {
                alone += dealt[w]
            }
        }
        var merged = merge(parts)
        for s in merged.shrunk { onShrunk(s) }
        let rest = ExploreRun.run(seeds: alone.sorted(), ops: ops, explorer: exclusive) { s in
            if !merged.shrunk.contains(where: { $0.finding.key == s.finding.key }) { onShrunk(s) }
        }
        merged = merge([merged, rest])
        merged.withKernel = true
        return merged
    }

    /// Whether a sequence sets a module parameter for its container.
    public static func setsModuleParameter(_ trace: Trace) -> Bool {
        trace.statements.contains { if case .dmaEntryLimit = $0.kind { true } else { false } }
    }

    /// The sum of several explorations of disjoint seeds: counts added, one
    /// shrunk trace per kind of finding (that of the lowest seed), sorted
    /// by seed.
    public static func merge(_ parts: [ExploreRun]) -> ExploreRun {
        var out = ExploreRun()
        var byKey: [String: ExploreRun.Shrunk] = [:]
        for p in parts {
            out.sequences += p.sequences
            out.operations += p.operations
            out.findings += p.findings
            out.notRunOnKernel += p.notRunOnKernel
            for (h, n) in p.notRunByHazard { out.notRunByHazard[h, default: 0] += n }
            out.hung += p.hung
            out.withKernel = out.withKernel || p.withKernel
            out.seconds = max(out.seconds, p.seconds)
            for s in p.shrunk {
                if let old = byKey[s.finding.key], old.seed <= s.seed { continue }
                byKey[s.finding.key] = s
            }
        }
        out.shrunk = byKey.values.sorted { $0.seed < $1.seed }
        return out
    }

    /// A thread's work and result.
    final class JobBox: @unchecked Sendable {
        let seeds: [UInt64]
        let ops: Int
        let make: @Sendable () -> Explorer
        var result: ExploreRun? = nil
        init(seeds: [UInt64], ops: Int, make: @escaping @Sendable () -> Explorer) {
            self.seeds = seeds
            self.ops = ops
            self.make = make
        }
    }
}

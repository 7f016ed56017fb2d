import VFIOCore
import VFIOExplore
import VFIOKernel
import VFIOModel
import VFIOReplay
import VFIOTrace

/// `vfio-sim explore`: generated sequences on the model (and the kernel),
/// each kind of finding shrunk once and kept as a trace.
public struct ExploreRun {
    /// One kind of finding, shrunk.
    public struct Shrunk: Sendable {
        public var seed: UInt64
        public var finding: Finding
        /// Replays the shrinking took.
        public var tried: Int
        public var statements: Int
        /// The shrunk trace as a fixture, with the first backend's answers.
        public var fixture: String
    }

    public var sequences = 0
    public var operations = 0
    /// Sequences with any finding.
    public var findings = 0
    /// Sequences not run on the kernel because the model says they would
    /// hang it or leave hugepages pinned for good.
    public var notRunOnKernel = 0
    /// The same by the hazard that kept each off.
    public var notRunByHazard: [KernelHazard: Int] = [:]
    /// Sequences the model says hang the kernel (an ioctl that never
    /// returns): each ends there, a hazard noted, not a finding.
    public var hung = 0
    /// The first sequence of each kind of finding, shrunk.
    public var shrunk: [Shrunk] = []
    /// Whether the kernel took part.
    public var withKernel = false

    public init() {}

    /// Wall-clock seconds the exploration took (set by whoever timed it;
    /// the longest shard's when shards are merged).
    public var seconds: Double = 0

    /// Explores `runs` seeds from `seed`, `ops` operations each. `onShrunk`
    /// sees each new kind of finding as soon as it is shrunk.
    public static func run(seed: UInt64, runs: Int, ops: Int, explorer: Explorer,
                           onShrunk: (Shrunk) -> Void = { _ in }) -> ExploreRun {
        run(seeds: seeds(from: seed, count: runs), ops: ops, explorer: explorer, onShrunk: onShrunk)
    }

    /// `count` seeds from `seed`, stopping at 2^64-1 rather than wrapping
    /// to 0 (the command line refuses a range that would pass it).
    public static func seeds(from seed: UInt64, count: Int) -> [UInt64] {
        guard count > 0 else { return [] }
        let (last, overflow) = seed.addingReportingOverflow(UInt64(count - 1))
        return Array(seed...(overflow ? .max : last))
    }

    /// Explores the given seeds in order.
    public static func run(seeds: [UInt64], ops: Int, explorer: Explorer,
                           onShrunk: (Shrunk) -> Void = { _ in }) -> ExploreRun {
        var result = ExploreRun()
        result.withKernel = !explorer.hardwareDomains.isEmpty
        var keys = Set<String>()
        var start = 0
        while start < seeds.count {
            let batch = Array(seeds[start..<min(start + max(1, explorer.sequencesPerProcess), seeds.count)])
            start += batch.count
            let traces = batch.map { explorer.generator.generate(seed: $0, operations: ops) }
            for (i, (finding, report)) in explorer.checkAll(traces).enumerated() {
                let s = batch[i]
                result.sequences += 1
                if Explorer.notRunOnKernel(report) {
                    result.notRunOnKernel += 1
                    if let h = Explorer.hazardKeptOff(report) { result.notRunByHazard[h, default: 0] += 1 }
                }
                if Explorer.endsInHang(report) { result.hung += 1 }
                result.operations += report.outcomes.count
                guard let finding else { continue }
                result.findings += 1
                // One shrunk trace per kind of finding is enough to read.
                guard keys.insert(finding.key).inserted else { continue }
                let (small, final, tried) = explorer.shrink(traces[i], finding: finding)
                let shrunk = Shrunk(seed: s, finding: final, tried: tried, statements: small.statements.count,
                                    fixture: explorer.fixtureText(small, finding: final, seed: s))
                result.shrunk.append(shrunk)
                onShrunk(shrunk)
            }
        }
        return result
    }

    /// A `kernelExplorer` per worker of `ExploreShards.runOnKernels`, each
    /// on one group of its own (a generated sequence attaches one group on
    /// a kernel): `jobs` of them, at most one per group.
    public static func kernelExplorers(hardware: Hardware, jobs: Int, parameters: ModuleParameterGuard,
                                       sys: SystemCalls = LinuxSystemCalls(), sequencesPerProcess: Int = 50,
                                       container: ContainerKind = .type1) -> Result<[Explorer], LaneError> {
        var out: [Explorer] = []
        for group in hardware.groups.prefix(max(1, jobs)) {
            switch kernelExplorer(hardware: hardware.with(groups: [group]), parameters: parameters,
                                  sys: sys, sequencesPerProcess: sequencesPerProcess, container: container) {
            case .success(let e): out.append(e)
            case .failure(let e): return .failure(e)
            }
        }
        return .success(out)
    }

    /// An explorer whose sequences also run on the real groups, in child
    /// processes (many sequences in a row per child, a fresh one after any
    /// that may leave state charged to the process), with the model playing their IOMMU at the running
    /// kernel's version. `parameters` (from `HostSafety.begin`, ended by
    /// the caller) serves the sequences' `dma-entry-limit` and puts it back
    /// after each.
    ///
    /// `sequencesPerProcess` is the most sequences one child runs (1: a
    /// process per sequence, as before batching; kept to measure the gain).
    /// `container` is the kind the sequences are generated for (iommufd's
    /// need /dev/iommu on the kernel).
    public static func kernelExplorer(hardware: Hardware, parameters: ModuleParameterGuard,
                                      sys: SystemCalls = LinuxSystemCalls(), sequencesPerProcess: Int = 50,
                                      container: ContainerKind = .type1) -> Result<Explorer, LaneError> {
        var explorer = Explorer(generator: SequenceGenerator(modelOnly: false, container: container))
        do throws(BackendError) {
            let probe = try KernelBackend(groupPaths: hardware.groups, barPath: hardware.bar, sys: sys, traceDefaults: false)
            defer { _ = probe.close() }
            explorer.hardwareDomains = try probe.hardwareDomains()
            explorer.modelProfile = probe.version.map(KernelProfile.init) ?? .newest
        } catch {
            return .failure(LaneError("kernel backend: \(error.message)"))
        }
        explorer.others = { () throws(BackendError) -> [any Backend] in
            [try KernelBackend(groupPaths: hardware.groups, barPath: hardware.bar, sys: sys, pageTableWalker: hardware.pageTableWalker)]
        }
        explorer.isolate = { body in Isolation.run(file: "explore", sys: sys, parameters: parameters, body) }
        if sequencesPerProcess > 1 {
            explorer.isolateBatch = { bodies in Isolation.runBatch(file: "explore", sys: sys, parameters: parameters, bodies) }
        }
        explorer.sequencesPerProcess = max(1, sequencesPerProcess)
        explorer.shrinkBudget = 300
        return .success(explorer)
    }
}

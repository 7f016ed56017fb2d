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
    /// The first sequence of each kind of finding, shrunk.
    public var shrunk: [Shrunk] = []
    /// Whether the kernel took part.
    public var withKernel = false

    public init() {}

    /// Explores `runs` seeds from `seed`, `ops` operations each. `onShrunk`
    /// sees each new kind of finding as soon as it is shrunk.
    public static func run(seed: UInt64, runs: Int, ops: Int, explorer: Explorer,
                           onShrunk: (Shrunk) -> Void = { _ in }) -> ExploreRun {
        var result = ExploreRun()
        result.withKernel = !explorer.hardwareDomains.isEmpty
        var keys = Set<String>()
        for s in seed..<(seed &+ UInt64(runs)) {
            let trace = explorer.generator.generate(seed: s, operations: ops)
            let (finding, report) = explorer.check(trace)
            result.sequences += 1
            if Explorer.notRunOnKernel(report) { result.notRunOnKernel += 1 }
            result.operations += report.outcomes.count
            guard let finding else { continue }
            result.findings += 1
            // One shrunk trace per kind of finding is enough to read.
            guard keys.insert(finding.key).inserted else { continue }
            let (small, final, tried) = explorer.shrink(trace, finding: finding)
            let shrunk = Shrunk(seed: s, finding: final, tried: tried, statements: small.statements.count,
                                fixture: explorer.fixtureText(small, finding: final, seed: s))
            result.shrunk.append(shrunk)
            onShrunk(shrunk)
        }
        return result
    }

    /// An explorer whose sequences also run on the real groups, each in its
    /// own process, with the model playing their IOMMU at the running
    /// kernel's version. `parameters` (from `HostSafety.begin`, ended by
    /// the caller) serves the sequences' `dma-entry-limit` and puts it back
    /// after each.
    public static func kernelExplorer(hardware: Hardware, parameters: ModuleParameterGuard,
                                      sys: SystemCalls = LinuxSystemCalls()) -> Result<Explorer, LaneError> {
        var explorer = Explorer(generator: SequenceGenerator(modelOnly: false))
        do throws(BackendError) {
            let probe = try KernelBackend(groupPaths: hardware.groups, barPath: hardware.bar, sys: sys, traceDefaults: false)
            defer { _ = probe.close() }
            explorer.hardwareDomains = try probe.hardwareDomains()
            explorer.modelProfile = probe.version.map(KernelProfile.init) ?? .newest
        } catch {
            return .failure(LaneError("kernel backend: \(error.message)"))
        }
        explorer.others = { () throws(BackendError) -> [any Backend] in
            [try KernelBackend(groupPaths: hardware.groups, barPath: hardware.bar, sys: sys)]
        }
        explorer.isolate = { body in Isolation.run(file: "explore", sys: sys, parameters: parameters, body) }
        explorer.shrinkBudget = 300
        return .success(explorer)
    }
}

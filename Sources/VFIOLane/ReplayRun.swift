import VFIOCore
import VFIOKernel
import VFIOModel
import VFIOReplay
import VFIOTrace

/// Where the real groups are: the `/dev/vfio/N` nodes, and a BAR for
/// `pfnmap` memory. The kernel lane's guest names them in `VFIO_GROUPS`
/// (or `VFIO_GROUP`) and `VFIO_IVSHMEM_BAR` (an ivshmem device's BAR 2),
/// with the IOMMU's name for the report (`VFIO_LANE_IOMMU`) and the host's
/// page-table walker (`VFIO_LANE_PTES`). The command line reads the
/// environment once and passes this down; nothing below it calls getenv.
public struct Hardware: Sendable, Equatable {
    public var groups: [String]
    public var bar: String?
    /// The IOMMU as the report names it (`intel-iommu-48`), instead of the
    /// name the kernel backend reads from sysfs.
    public var iommu: String?
    /// The serial port of the host program that walks the IOMMU's page
    /// tables (`check ptes=`); nil: not observable here.
    public var pageTableWalker: String?

    public init(groups: [String], bar: String? = nil, iommu: String? = nil, pageTableWalker: String? = nil) {
        (self.groups, self.bar, self.iommu, self.pageTableWalker) = (groups, bar, iommu, pageTableWalker)
    }

    /// From the lane's environment, as `variable` looks a name up; nil when
    /// it names no group.
    public init?(environment variable: (String) -> String?) {
        let groups = (variable("VFIO_GROUPS") ?? variable("VFIO_GROUP") ?? "")
            .split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        guard !groups.isEmpty else { return nil }
        let bar = variable("VFIO_IVSHMEM_BAR") ?? variable("VFIO_BAR")
        self.init(groups: groups, bar: bar.flatMap { $0.isEmpty ? nil : $0 }, iommu: variable("VFIO_LANE_IOMMU"),
                  pageTableWalker: variable(HostPageTableWalk.portVariable))
    }

    /// The same machine with only `groups`.
    public func with(groups: [String]) -> Hardware {
        var h = self
        h.groups = groups
        return h
    }
}

/// A failure before any trace ran (the hardware could not be opened).
public struct LaneError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What a run on a real kernel needs before any trace: the run's lock, the
/// values a killed run left behind put back, and a module parameter the
/// traces assume (`dma_entry_limit` 65535) that is not changed without
/// permission.
public enum HostSafety {
    /// Begins a guard: waits for another run's lock (saying so), restores
    /// what a killed run left, and refuses when the host's
    /// `dma_entry_limit` is not the traces' 65535 and changing it is not
    /// allowed. The caller calls `end()`.
    public static func begin(sys: SystemCalls, allowModuleParams: Bool,
                             say: @escaping (String) -> Void) -> Result<ModuleParameterGuard, LaneError> {
        let guard_ = ModuleParameterGuard(sys: sys, allowed: allowModuleParams, say: say)
        if case .failure(let e) = guard_.begin() { return .failure(LaneError("kernel backend: \(e.message)")) }
        if !allowModuleParams {
            for p in ModuleParameter.allCases {
                if let now = p.read(sys), now != p.traceDefault {
                    guard_.end()
                    return .failure(LaneError("\(p.rawValue) is \(now) on this machine and traces assume \(p.traceDefault): "
                                              + "vfio-sim changes a module parameter only with --allow-module-params (it is global: "
                                              + "every VFIO container any process opens meanwhile gets the changed value, and "
                                              + "vfio-sim puts it back after each trace), or set it to \(p.traceDefault) yourself"))
                }
            }
        }
        return .success(guard_)
    }
}

/// The replay of many traces: on the model, or on a real kernel with the
/// model beside it, each trace in its own process.
public struct ReplayRun {
    public var reports: [FileReport] = []
    /// Traces a real kernel could not run, with the reason.
    public var skipped: [(file: String, reason: String)] = []
    /// Traces that do not apply to this kernel or machine (not counted as
    /// skipped: `SkipPolicy.Verdict.notApplicable`).
    public var notApplicable: [(file: String, reason: String)] = []
    /// The kernel whose answers were given (the model's profile, or the
    /// running kernel's version).
    public var kernel: String = ""
    /// The IOMMU behind the real groups (`intel-iommu`, ...).
    public var iommu: String = "iommu"

    public init() {}

    /// Replays every trace on the model with `profile`.
    /// With `explain`, every answer carries its reason.
    /// Without `heldReasons`, answers that held what the trace wrote carry
    /// no reason and are counted rather than kept (for reports that do not
    /// print them).
    /// `container`: the kind for traces whose `container` line does not say.
    /// `keepsHeld`: whether held answers are kept as outcomes (a JUnit
    /// report lists them); by default when `heldReasons`.
    public static func model(_ traces: [Trace], profile: KernelProfile, invariants: Bool = true, explain: Bool = false,
                             heldReasons: Bool = true, keepsHeld: Bool? = nil, container: ContainerKind? = nil) -> ReplayRun {
        var run = ReplayRun()
        run.kernel = profile.description
        for trace in traces {
            let model = ModelBackend(profile: profile, checksInvariants: invariants)
            let replayer = Replayer(backends: [model])
            replayer.explainsEveryAnswer = explain
            replayer.explainsHeldAnswers = heldReasons
            // A report that prints no held answer need not keep them.
            replayer.keepsHeldOutcomes = keepsHeld ?? heldReasons
            replayer.defaultContainer = container
            run.reports.append(replayer.run(trace))
        }
        return run
    }

    /// Replays every trace on the kernel (and, with `.both`, the model
    /// beside it, at the running kernel's version and playing the IOMMU the
    /// real groups have). Traces the machine cannot run are skipped.
    ///
    /// A trace that needs another `dma_entry_limit` gets it from this
    /// process, and only when `allowModuleParams`; it is put back after each
    /// trace (`ModuleParameterGuard`). `say` gets what the guard has to tell
    /// (waiting for another run, a value a killed run left and was restored).
    public static func kernel(_ traces: [Trace], hardware: Hardware, withModel: Bool, invariants: Bool = true,
                              allowModuleParams: Bool = false, say: @escaping (String) -> Void = { _ in },
                              sys: SystemCalls = LinuxSystemCalls(), container: ContainerKind? = nil) -> Result<ReplayRun, LaneError> {
        let parameters: ModuleParameterGuard
        switch HostSafety.begin(sys: sys, allowModuleParams: allowModuleParams, say: say) {
        case .success(let g): parameters = g
        case .failure(let e): return .failure(e)
        }
        defer { parameters.end() }
        var run = ReplayRun()
        let release = sys.release
        let running = KernelVersion(parsing: release).map(KernelProfile.init) ?? .newest
        run.kernel = running.description
        // The IOMMU the real groups have, read once; the groups are closed
        // again before any trace opens them.
        var domains: [DomainSpec] = []
        do throws(BackendError) {
            let probe = try KernelBackend(groupPaths: hardware.groups, barPath: hardware.bar, sys: sys, traceDefaults: false)
            defer { _ = probe.close() }
            run.iommu = hardware.iommu ?? probe.iommuName
            if withModel { domains = try probe.hardwareDomains() }
        } catch {
            return .failure(LaneError("kernel backend: \(error.message)"))
        }
        // A trace pinned to another kernel runs too: the model gives the
        // running kernel's answers beside it (its `kernel` line only says
        // whose answers the trace wrote; where those differ, a note says so).
        var policy = SkipPolicy(running: running.version, groups: hardware.groups.count, hasBAR: hardware.bar != nil,
                                sameKernel: { _, _ in true })
        policy.hasIOMMUFD = sys.listDirectory("/dev")?.contains("iommu") ?? false
        for trace in traces {
            switch policy.verdict(trace) {
            case .skip(let reason): run.skipped.append((trace.file, reason)); continue
            case .notApplicable(let reason): run.notApplicable.append((trace.file, reason)); continue
            case .run: break
            }
            // One process per trace: what the kernel leaves charged to a
            // process must not change the next trace's answers.
            run.reports.append(Isolation.run(file: trace.file, sys: sys, parameters: parameters) { () -> FileReport in
                let kb: KernelBackend
                do throws(BackendError) {
                    kb = try KernelBackend(groupPaths: hardware.groups, barPath: hardware.bar, sys: sys,
                                           pageTableWalker: hardware.pageTableWalker)
                } catch {
                    var r = FileReport(file: trace.file, kernels: [])
                    r.problems.append(ReportProblem(.aborted("kernel backend: \(error.message)")))
                    return r
                }
                var backends: [any Backend] = [kb]
                // Beside a kernel, the model gives the running kernel's answers.
                if withModel { backends.append(ModelBackend(profile: running, checksInvariants: invariants, pinned: true)) }
                let replayer = Replayer(backends: backends, hardwareDomains: domains)
                replayer.defaultContainer = container
                return replayer.run(trace)
            })
        }
        return .success(run)
    }
}

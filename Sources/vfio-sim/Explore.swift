import VFIOFileIO
import VFIOCore
import VFIOExplore
import VFIOKernel
import VFIOLane

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `vfio-sim explore`'s options, as written and then settled
/// (`settle`: the seed range, the groups and the jobs they allow).
struct ExploreOptions {
    var seed: UInt64 = 1
    var ops = 40
    var runs = 1000
    var backend = "model"
    var group: String? = nil
    var out: String? = nil
    var allowModuleParams = false
    var jobs = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    var jobsGiven = false
    var shard: (index: Int, count: Int)? = nil
    var reportPath: String? = nil
    var merge: [String] = []
    var perProcess = 50
    var container = ContainerKind.type1

    /// The options of `args`; nil after printing the help (`--help`).
    init?(parsing args: [String]) throws(UsageError) {
        var arguments = Arguments(args)
        while let a = arguments.pop() {
            switch a {
            case "--seed": seed = try arguments.number(for: a)
            case "--ops": ops = Int(min(try arguments.number(for: a) as UInt64, 100_000))
            case "--runs": runs = Int(min(try arguments.number(for: a) as UInt64, 100_000_000))
            case "--backend":
                backend = try arguments.value(for: a)
                guard backend == "model" || backend == "both" else { throw UsageError(message: "--backend takes model or both") }
            case "--group": group = try arguments.value(for: a)
            case "--container": container = try containerOption(try arguments.value(for: a))
            case "--out": out = try arguments.value(for: a)
            case "--allow-module-params": allowModuleParams = true
            case "--jobs": jobs = Int(try arguments.number(for: a, in: 1...1024) as UInt32); jobsGiven = true
            case "--shard":
                let v = try arguments.value(for: a)
                let parts = v.split(separator: "/", omittingEmptySubsequences: false)
                guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, n <= 1_000_000, (1...n).contains(i) else {
                    throw UsageError(message: "--shard takes I/N with 1 ≤ I ≤ N, such as 2/8, not '\(v)'")
                }
                shard = (i, n)
            case "--per-process": perProcess = Int(try arguments.number(for: a, in: 1...10_000) as UInt32)
            case "--report": reportPath = try arguments.value(for: a)
            case "--merge":
                // The files, up to the next option (`--merge A B --out DIR`).
                while let f = arguments.popOperand() { merge.append(f) }
                if merge.isEmpty { throw UsageError(message: "--merge needs report files") }
            case "--help", "-h": printOut(Help.explore + "\n"); return nil
            default: throw UsageError(message: "unknown option '\(a)'")
            }
        }
    }

    /// Checks the seed range, finds the hardware for `--backend both`, fits
    /// the jobs to its groups and takes this shard's seeds.
    mutating func settle(sys: LinuxSystemCalls) throws(UsageError) -> Hardware? {
        // Seeds run from --seed to --seed + runs - 1: that range must fit in a u64.
        if runs > 0, seed > UInt64.max - UInt64(runs - 1) {
            throw UsageError(message: "--seed \(seed) with --runs \(runs) would pass 2^64-1; the largest seed for \(runs) runs is \(UInt64.max - UInt64(runs - 1))")
        }
        var hardware = laneHardware()
        if let group { hardware = hardware?.with(groups: [group]) ?? Hardware(groups: [group]) }
        if backend == "both" && hardware == nil { throw UsageError(message: "--backend both needs --group /dev/vfio/N") }
        // Beside a kernel each job drives a group of its own.
        if backend == "both", let hardware {
            if jobsGiven && jobs > hardware.groups.count {
                throw UsageError(message: "--backend both runs a job per group: --jobs \(jobs) needs \(jobs) groups, there \(hardware.groups.count == 1 ? "is 1" : "are \(hardware.groups.count)") (VFIO_GROUPS or --group)")
            }
            jobs = min(jobs, hardware.groups.count)
            // iommufd charges user->locked_vm, one counter for every process
            // of the user (incr_user_locked_vm): two workers side by side would
            // see each other's charges against their RLIMIT_MEMLOCK, which no
            // sequence's model can know (the lane saw kernel ENOMEM, model ok).
            if container == .iommufd {
                if jobsGiven && jobs > 1 {
                    throw UsageError(message: "--container iommufd --backend both runs one job: iommufd charges the user's locked_vm, which parallel jobs of one user would share")
                }
                jobs = 1
            }
        }
        if let shard { (seed, runs) = ExploreShards.slice(seed: seed, runs: runs, index: shard.index, count: shard.count) }
        return hardware
    }
}

/// `vfio-sim explore`: generated sequences on the model (and the kernel),
/// each finding shrunk and saved as a trace; `--jobs`, `--shard` and
/// `--merge` spread one exploration over cores and machines.
func exploreCommand(_ args: [String]) throws(UsageError) -> Int32 {
    guard var o = try ExploreOptions(parsing: args) else { return 0 }
    if !o.merge.isEmpty { return mergeReports(o.merge, out: o.out, reportPath: o.reportPath) }
    let sys = LinuxSystemCalls()
    let hardware = try o.settle(sys: sys)

    let generator = SequenceGenerator(modelOnly: true, container: o.container)
    var explorer = Explorer(generator: generator)
    var workers: [Explorer] = []
    var parameters: ModuleParameterGuard? = nil
    defer { parameters?.end() }
    if o.backend == "both", let hardware {
        switch HostSafety.begin(sys: sys, allowModuleParams: o.allowModuleParams, say: { printErr($0) }) {
        case .success(let g): parameters = g
        case .failure(let e): printErr("vfio-sim: error: \(e.message)"); return 2
        }
        switch ExploreRun.kernelExplorer(hardware: hardware, parameters: parameters!, sys: sys, sequencesPerProcess: o.perProcess,
                                             container: o.container) {
        case .success(let e): explorer = e
        case .failure(let e): printErr("vfio-sim: error: \(e.message)"); return 2
        }
        if o.jobs > 1 {
            switch ExploreRun.kernelExplorers(hardware: hardware, jobs: o.jobs, parameters: parameters!, sys: sys, sequencesPerProcess: o.perProcess,
                                              container: o.container) {
            case .success(let w): workers = w
            case .failure(let e): printErr("vfio-sim: error: \(e.message)"); return 2
            }
        }
    }
    return explore(o, explorer: explorer, workers: workers, generator: generator, sys: sys)
}

/// Runs the settled exploration, saves its findings and report and prints
/// its summary; 1 when something was found.
func explore(_ o: ExploreOptions, explorer: Explorer, workers: [Explorer], generator: SequenceGenerator, sys: LinuxSystemCalls) -> Int32 {
    let (seed, runs, ops, backend, out, jobs, container) = (o.seed, o.runs, o.ops, o.backend, o.out, o.jobs, o.container)
    if let out { mkdir(out, 0o755) }
    let started = monotonicSeconds()
    var result: ExploreRun
    if backend == "both" && jobs > 1 {
        // A worker process per group, side by side.
        result = ExploreShards.runOnKernels(seeds: ExploreRun.seeds(from: seed, count: runs), ops: ops, workers: workers,
                                            exclusive: explorer, sys: sys) { printShrunk($0, out: out) }
    } else if jobs == 1 {
        result = ExploreRun.run(seed: seed, runs: runs, ops: ops, explorer: explorer) { printShrunk($0, out: out) }
    } else {
        // Model only: each thread makes its own explorer (and model).
        result = ExploreShards.run(seed: seed, runs: runs, ops: ops, jobs: jobs) { Explorer(generator: generator) }
        for s in result.shrunk { printShrunk(s, out: out) }
    }
    result.seconds = monotonicSeconds() - started
    var report = ExploreReport(seed: seed, runs: runs, ops: ops, backend: backend, result: result, container: container)
    report.jobs = jobs
    if let reportPath = o.reportPath, let problem = writeFile(reportPath, report.encode()) { printErr("error: \(problem)"); return 2 }
    let shardWords = o.shard.map { " (shard \($0.index)/\($0.count): seeds \(seed)-\(seed &+ UInt64(max(runs, 1)) &- 1))" } ?? ""
    printOut(summaryLine(result, backend: backend, container: container) + shardWords + "\n")
    printOut(rateLine(result, jobs: jobs) + "\n")
    return result.findings == 0 ? 0 : 1
}

/// `explore --merge A B ...`: the shards' reports as one exploration.
func mergeReports(_ paths: [String], out: String?, reportPath: String?) -> Int32 {
    var reports: [ExploreReport] = []
    for p in paths {
        switch readFile(p) {
        case .failure(let e): printErr("vfio-sim: error: \(p): \(e.message)"); return 2
        case .success(let bytes):
            switch ExploreReport.decode(String(decoding: bytes, as: UTF8.self), path: p) {
            case .success(let r): reports.append(r)
            case .failure(let e): printErr("vfio-sim: error: \(e.message)"); return 2
            }
        }
    }
    let merged: ExploreReport
    switch ExploreReport.merge(reports) {
    case .success(let m): merged = m
    case .failure(let e): printErr("vfio-sim: error: \(e.message)"); return 2
    }
    if let out { mkdir(out, 0o755) }
    for s in merged.result.shrunk { printShrunk(s, out: out) }
    if let reportPath, let problem = writeFile(reportPath, merged.encode()) { printErr("error: \(problem)"); return 2 }
    printOut(summaryLine(merged.result, backend: merged.backend, container: merged.container) + " (\(reports.count) reports merged: seeds \(ExploreReport.coverage(reports)))\n")
    return merged.result.findings == 0 ? 0 : 1
}

func printShrunk(_ shrunk: ExploreRun.Shrunk, out: String?) {
    printOut(shrunk.lines.map { $0 + "\n" }.joined())
    if let out {
        let path = "\(out)/explore-seed-\(shrunk.seed).trace"
        if let problem = writeFile(path, shrunk.fixture) { printErr("error: \(problem)") } else { printOut("  saved \(path)\n") }
    }
}

/// `explored N sequences, M operations on the model: F with findings`.
func summaryLine(_ result: ExploreRun, backend: String, container: ContainerKind = .type1) -> String {
    result.summaryLine(backend: backend, container: container)
}

/// `rate: 1234 sequences/s, 49000 operations/s (2 jobs, 0.81 s)`.
func rateLine(_ result: ExploreRun, jobs: Int) -> String { result.rateLine(jobs: jobs) }

/// CLOCK_MONOTONIC in seconds.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

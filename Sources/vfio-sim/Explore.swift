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

/// `vfio-sim explore`: generated sequences on the model (and the kernel),
/// each finding shrunk and saved as a trace.
func exploreCommand(_ args: [String]) throws(UsageError) -> Int32 {
    var seed: UInt64 = 1
    var ops = 40
    var runs = 1000
    var backend = "model"
    var group: String? = nil
    var out: String? = nil
    var allowModuleParams = false
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
        case "--out": out = try arguments.value(for: a)
        case "--allow-module-params": allowModuleParams = true
        case "--help", "-h": printOut(Help.explore + "\n"); return 0
        default: throw UsageError(message: "unknown option '\(a)'")
        }
    }
    let sys = LinuxSystemCalls()
    var hardware = Hardware.fromEnvironment(sys)
    if let group { hardware = Hardware(groups: [group], bar: hardware?.bar) }
    if backend == "both" && hardware == nil { throw UsageError(message: "--backend both needs --group /dev/vfio/N") }

    var explorer = Explorer(generator: SequenceGenerator(modelOnly: true))
    var parameters: ModuleParameterGuard? = nil
    defer { parameters?.end() }
    if backend == "both", let hardware {
        switch HostSafety.begin(sys: sys, allowModuleParams: allowModuleParams, say: { printErr($0) }) {
        case .success(let g): parameters = g
        case .failure(let e): printErr("vfio-sim: error: \(e.message)"); return 2
        }
        switch ExploreRun.kernelExplorer(hardware: hardware, parameters: parameters!, sys: sys) {
        case .success(let e): explorer = e
        case .failure(let e): printErr("vfio-sim: error: \(e.message)"); return 2
        }
    }
    if let out { mkdir(out, 0o755) }
    let result = ExploreRun.run(seed: seed, runs: runs, ops: ops, explorer: explorer) { shrunk in
        printOut("seed \(shrunk.seed): \(shrunk.finding)\n  shrunk with \(shrunk.tried) replays to \(shrunk.statements) statements:\n")
        printOut(shrunk.fixture.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n") + "\n")
        if let out {
            let path = "\(out)/explore-seed-\(shrunk.seed).trace"
            if let problem = writeFile(path, shrunk.fixture) { printErr("error: \(problem)") } else { printOut("  saved \(path)\n") }
        }
    }
    var line = "explored \(result.sequences) sequences, \(result.operations) operations on \(backend == "both" ? "model and kernel" : "the model"): \(result.findings) with findings"
    if result.notRunOnKernel > 0 { line += " (\(result.notRunOnKernel) not run on the kernel: they would hang it, leave hugepages pinned, or overlap mappings in the IOMMU)" }
    printOut(line + "\n")
    return result.findings == 0 ? 0 : 1
}

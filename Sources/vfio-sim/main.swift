import VFIOFileIO
import VFIOCore
import VFIOKernel
import VFIOLane
import VFIOModel
import VFIOReplay
import VFIOTrace

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The command line only wires the layers together: files → parser →
/// replayer with backends → report.
struct UsageError: Error { var message: String }

func parseFiles(_ paths: [String]) -> (traces: [Trace], failed: Bool) {
    var traces: [Trace] = []
    var failed = false
    for path in paths {
        switch readFile(path) {
        case .failure(let why):
            printErr("\(path): error: \(why.message)")
            failed = true
        case .success(let bytes):
            switch parseTrace(bytes: bytes, file: path) {
            case .success(let trace): traces.append(trace)
            case .failure(let failure):
                for d in failure.diagnostics { printErr(d.description) }
                failed = true
            }
        }
    }
    return (traces, failed)
}

func replayCommand(_ args: [String]) throws(UsageError) -> Int32 {
    var format = "text"
    var junit: String? = nil
    var kernel: KernelVersion? = nil
    var backend = "model"
    var group: String? = nil
    var verbose = false
    var invariants = true
    var allowModuleParams = false
    var files: [String] = []
    var i = 0
    func value(_ flag: String) throws(UsageError) -> String {
        i += 1
        guard i < args.count else { throw UsageError(message: "\(flag) needs a value") }
        return args[i]
    }
    while i < args.count {
        let a = args[i]
        switch a {
        case "--format":
            format = try value(a)
            guard format == "text" || format == "json" else { throw UsageError(message: "--format takes text or json, not '\(format)'") }
        case "--junit": junit = try value(a)
        case "--kernel":
            let v = try value(a)
            guard let k = KernelVersion(parsing: v) else { throw UsageError(message: "--kernel takes a version such as 6.12, not '\(v)'") }
            kernel = k
        case "--backend":
            backend = try value(a)
            guard ["model", "kernel", "both"].contains(backend) else { throw UsageError(message: "--backend takes model, kernel or both, not '\(backend)'") }
        case "--group": group = try value(a)
        case "--verbose", "-v": verbose = true
        case "--no-invariants": invariants = false
        case "--allow-module-params": allowModuleParams = true
        case "--help", "-h": printOut(Help.replay + "\n"); return 0
        default:
            if a.hasPrefix("-") && a != "-" { throw UsageError(message: "unknown option '\(a)'") }
            files.append(a)
        }
        i += 1
    }
    if files.isEmpty { throw UsageError(message: "replay needs at least one trace file") }
    let sys = LinuxSystemCalls()
    // The kernel lane's guest names its groups in VFIO_GROUPS / VFIO_GROUP.
    var hardware = Hardware.fromEnvironment(sys)
    if let group { hardware = Hardware(groups: [group], bar: hardware?.bar) }
    if backend != "model" && hardware == nil { throw UsageError(message: "--backend \(backend) needs --group /dev/vfio/N") }

    let (traces, parseFailed) = parseFiles(files)
    if parseFailed { return 2 }

    let run: ReplayRun
    if backend == "model" {
        run = ReplayRun.model(traces, profile: kernel.map(KernelProfile.init) ?? .newest, invariants: invariants)
    } else {
        switch ReplayRun.kernel(traces, hardware: hardware!, withModel: backend == "both", invariants: invariants,
                                allowModuleParams: allowModuleParams, say: { printErr($0) }, sys: sys) {
        case .success(let r): run = r
        case .failure(let e): printErr("error: \(e.message)"); return 2
        }
    }
    var ok = run.reports.allSatisfy(\.ok)
    if format == "json" {
        printOut(jsonReport(run.reports))
    } else if backend == "both" {
        // Model against kernel: disagreements and errors fail; answers the
        // trace wrote for another IOMMU or kernel version are notes.
        let (text, summary) = KernelLane.report(run.reports, skipped: run.skipped, kernel: run.kernel,
                                                iommu: run.iommu, verbose: verbose)
        printOut(text)
        ok = summary.ok
    } else {
        var text = ""
        for (file, reason) in run.skipped { text += "\(file): skipped: \(reason)\n" }
        printOut(text + textReport(run.reports, verbose: verbose))
    }
    if let junit, let problem = writeFile(junit, junitReport(run.reports)) { printErr("error: \(problem)"); return 2 }
    return ok ? 0 : 1
}

func fmtCommand(_ args: [String]) throws(UsageError) -> Int32 {
    if args.contains("--help") || args.contains("-h") { printOut(Help.fmt + "\n"); return 0 }
    guard args.count == 1 else { throw UsageError(message: "fmt takes exactly one trace file") }
    let (traces, failed) = parseFiles(args)
    if failed { return 2 }
    printOut(printTrace(traces[0]))
    return 0
}

func run(_ argv: [String]) -> Int32 {
    let args = Array(argv.dropFirst())
    guard let command = args.first else { printErr(Help.main); return 2 }
    do throws(UsageError) {
        switch command {
        case "--help", "-h", "help":
            if command == "help", args.count > 1 {
                switch args[1] {
                case "replay": printOut(Help.replay + "\n")
                case "fmt": printOut(Help.fmt + "\n")
                case "explore": printOut(Help.explore + "\n")
                case "faults": printOut(Help.faults + "\n")
                default: throw UsageError(message: "no help for '\(args[1])'")
                }
            } else {
                printOut(Help.main + "\n")
            }
            return 0
        case "replay": return try replayCommand(Array(args.dropFirst()))
        case "fmt": return try fmtCommand(Array(args.dropFirst()))
        case "explore": return try exploreCommand(Array(args.dropFirst()))
        case "faults": return try faultsCommand(Array(args.dropFirst()))
        default: throw UsageError(message: "unknown command '\(command)'; see vfio-sim --help")
        }
    } catch {
        printErr("vfio-sim: error: \(error.message)")
        return 2
    }
}

exit(run(CommandLine.arguments))

import VFIOFileIO
import VFIOCore
import VFIOCost
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

/// A file as read: a trace, or the report of why it could not be read or
/// parsed (its diagnostics already printed on standard error).
enum Input {
    case trace(Trace)
    case failed(FileReport)
}

/// Reads and parses each file on its own: one that fails is reported and
/// the others still go on.
func parseFiles(_ paths: [String], keepingSpellings: Bool = false) -> [Input] {
    paths.map { path in
        switch readFile(path) {
        case .failure(let why):
            printErr("\(path): error: \(why.message)")
            return .failed(FileReport(file: path, unreadable: why.message))
        case .success(let bytes):
            switch parseTrace(bytes: bytes, file: path, keepingSpellings: keepingSpellings) {
            case .success(let trace): return .trace(trace)
            case .failure(let failure):
                for d in failure.diagnostics { printErr(d.description) }
                return .failed(FileReport(file: path, unparsed: failure))
            }
        }
    }
}

/// The traces among `inputs`.
func traces(_ inputs: [Input]) -> [Trace] {
    inputs.compactMap { if case .trace(let t) = $0 { t } else { nil } }
}

/// `reports` of the traces that ran, put back among the files that did
/// not, in the order the files were given.
func merge(_ inputs: [Input], _ reports: [FileReport]) -> [FileReport] {
    var next = 0
    var out: [FileReport] = []
    for input in inputs {
        switch input {
        case .failed(let r): out.append(r)
        case .trace(let t):
            // A kernel run may skip a trace: it has no report.
            if next < reports.count, reports[next].file == t.file {
                out.append(reports[next])
                next += 1
            }
        }
    }
    return out
}

/// The machine the lane's guest describes in its environment (VFIO_GROUPS,
/// VFIO_IVSHMEM_BAR, VFIO_LANE_IOMMU, VFIO_LANE_PTES), read here once and
/// passed down: no layer below the command line reads the environment.
func laneHardware() -> Hardware? {
    Hardware(environment: { getenv($0).map { String(cString: $0) } })
}

/// `--kernel V`: any release from 5.10 on (`6.8`, `6.12.38+deb12-amd64`),
/// with a note on standard error where its answers come from the release
/// history rather than a kernel the lane boots; below 5.10 it is refused.
func kernelOption(_ v: String) throws(UsageError) -> KernelVersion {
    guard let k = KernelVersion(parsing: v), k.isKnown else {
        throw UsageError(message: "--kernel takes a release \(KernelVersion.oldestKnown) or newer (6.8, 6.12.38, 6.12.38+deb12-amd64; the lane boots \(KernelVersion.bootedList)), not '\(v)'")
    }
    if let note = k.provenanceNote { printErr("note: \(note)") }
    return k
}

/// `--container type1|iommufd`: the kind for traces whose `container`
/// line does not say.
func containerOption(_ v: String) throws(UsageError) -> ContainerKind {
    guard let kind = ContainerKind(rawValue: v) else { throw UsageError(message: "--container takes type1 or iommufd, not '\(v)'") }
    return kind
}

/// `vfio-sim replay`'s options and files.
struct ReplayOptions {
    var format = "text"
    var junit: String? = nil
    var kernel: KernelVersion? = nil
    var backend = "model"
    var group: String? = nil
    var verbose = false
    var explain = false
    var invariants = true
    var allowModuleParams = false
    var container: ContainerKind? = nil
    /// `--lane-report PATH` (with `--backend both`): the kernel lane's
    /// typed report of the run (`LaneFixtureReport`).
    var laneReport: String? = nil
    var files: [String] = []

    /// The options of `args`; nil after printing the help (`--help`).
    init?(parsing args: [String]) throws(UsageError) {
        var arguments = Arguments(args)
        while let a = arguments.pop() {
            switch a {
            case "--container": container = try containerOption(try arguments.value(for: a))
            case "--format":
                format = try arguments.value(for: a)
                guard format == "text" || format == "json" else { throw UsageError(message: "--format takes text or json, not '\(format)'") }
            case "--junit": junit = try arguments.value(for: a)
            case "--lane-report": laneReport = try arguments.value(for: a)
            case "--kernel":
                kernel = try kernelOption(try arguments.value(for: a))
            case "--backend":
                backend = try arguments.value(for: a)
                guard ["model", "kernel", "both"].contains(backend) else { throw UsageError(message: "--backend takes model, kernel or both, not '\(backend)'") }
            case "--group": group = try arguments.value(for: a)
            case "--verbose", "-v": verbose = true
            case "--explain": explain = true
            case "--no-invariants": invariants = false
            case "--allow-module-params": allowModuleParams = true
            case "--help", "-h": printOut(Help.replay + "\n"); return nil
            default:
                if a.hasPrefix("-") && a != "-" { throw UsageError(message: "unknown option '\(a)'") }
                files.append(a)
            }
        }
    }
}

func replayCommand(_ args: [String]) throws(UsageError) -> Int32 {
    guard let o = try ReplayOptions(parsing: args) else { return 0 }
    if o.files.isEmpty { throw UsageError(message: "replay needs at least one trace file") }
    let sys = LinuxSystemCalls()
    // The kernel lane's guest names its groups in VFIO_GROUPS / VFIO_GROUP.
    var hardware = laneHardware()
    if let group = o.group { hardware = hardware?.with(groups: [group]) ?? Hardware(groups: [group]) }
    if o.backend != "model" && hardware == nil { throw UsageError(message: "--backend \(o.backend) needs --group /dev/vfio/N") }
    if o.laneReport != nil && o.backend == "kernel" { throw UsageError(message: "--lane-report goes with --backend both or model") }

    // Each file on its own: one that cannot be read or parsed is reported
    // (exit 2), the others still run, and every report names it.
    let inputs = parseFiles(o.files)
    let runnable = traces(inputs)
    let inputFailed = runnable.count < inputs.count

    var run: ReplayRun
    if o.backend == "model" {
        run = ReplayRun.model(runnable, profile: o.kernel.map(KernelProfile.init) ?? .newest, invariants: o.invariants, explain: o.explain,
                             heldReasons: o.verbose || o.format == "json", keepsHeld: o.verbose || o.format == "json" || o.junit != nil,
                             container: o.container)
    } else {
        switch ReplayRun.kernel(runnable, hardware: hardware!, withModel: o.backend == "both", invariants: o.invariants,
                                allowModuleParams: o.allowModuleParams, say: { printErr($0) }, sys: sys, container: o.container) {
        case .success(let r): run = r
        case .failure(let e): printErr("error: \(e.message)"); return 2
        }
    }
    let ranReports = run.reports
    run.reports = merge(inputs, run.reports)
    var ok = ranReports.allSatisfy(\.ok)
    if o.format == "json" {
        printOut(jsonReport(run.reports))
    } else if o.backend == "both" {
        // Model against kernel: disagreements and errors fail; answers the
        // trace wrote for another IOMMU or kernel version are notes.
        let (text, summary) = KernelLane.report(ranReports, skipped: run.skipped, notApplicable: run.notApplicable, kernel: run.kernel,
                                                iommu: run.iommu, verbose: o.verbose)
        if !runnable.isEmpty { printOut(text) }
        ok = summary.ok
    } else if !runnable.isEmpty {
        // Nothing on standard output when no file ran: the diagnostics on
        // standard error are the whole answer.
        var text = ""
        for (file, reason) in run.skipped { text += "\(file): skipped: \(reason)\n" }
        for (file, reason) in run.notApplicable { text += "\(file): not applicable: \(reason)\n" }
        printOut(text + textReport(run.reports, verbose: o.verbose, explain: o.explain))
    }
    if let junit = o.junit, let problem = writeFile(junit, junitReport(run.reports)) { printErr("error: \(problem)"); return 2 }
    if let path = o.laneReport {
        let text: String
        if o.backend == "both" {
            text = LaneFixtureReport(ranReports, skipped: run.skipped, notApplicable: run.notApplicable, kernel: run.kernel,
                                     iommu: run.iommu, verbose: o.verbose).encode()
        } else {
            let t = Totals(run.reports)
            let counts = ReplayTally.Counts(files: t.files, operations: t.operations, passed: t.passed, failed: t.failed, errors: t.errors)
            text = ReplayTally(counts: counts, text: textReport(run.reports, verbose: o.verbose, explain: o.explain),
                               summary: summary(run.reports)).encode()
        }
        if let problem = writeFile(path, text) { printErr("error: \(problem)"); return 2 }
    }
    if inputFailed { return 2 }
    return ok ? 0 : 1
}

/// `vfio-sim compare`: each trace under both container kinds; exit 0 once
/// every file was compared (the differences are the answer), 1 with
/// `--strict` when some statement differs or a trace could not be
/// compared, 2 on unreadable input or a wrong command line.
func compareCommand(_ args: [String]) throws(UsageError) -> Int32 {
    var kernel: KernelVersion? = nil
    var markdown = false
    var format = "text"
    var strict = false
    var files: [String] = []
    var arguments = Arguments(args)
    while let a = arguments.pop() {
        switch a {
        case "--help", "-h": printOut(Help.compare + "\n"); return 0
        case "--kernel": kernel = try kernelOption(try arguments.value(for: a))
        case "--markdown": markdown = true
        case "--format": format = try formatOption(try arguments.value(for: a))
        case "--strict": strict = true
        default:
            if a.hasPrefix("-") && a != "-" { throw UsageError(message: "unknown option '\(a)'") }
            files.append(a)
        }
    }
    if files.isEmpty { throw UsageError(message: "compare needs at least one trace file") }
    let inputs = parseFiles(files)
    let runnable = traces(inputs)
    let comparisons = runnable.map { ContainerComparison.run($0, profile: kernel.map(KernelProfile.init) ?? .newest) }
    if markdown && format == "json" { throw UsageError(message: "compare takes --markdown or --format json, not both") }
    if format == "json" {
        printOut(ContainerComparison.json(comparisons))
    } else if markdown {
        printOut(ContainerComparison.markdown(comparisons))
    } else {
        printOut(comparisons.map(\.text).joined())
    }
    if runnable.count < inputs.count { return 2 }
    if strict && !comparisons.allSatisfy({ $0.rows.isEmpty && $0.notes.isEmpty && $0.notComparable == nil }) { return 1 }
    return 0
}

func fmtCommand(_ args: [String]) throws(UsageError) -> Int32 {
    if args.contains("--help") || args.contains("-h") { printOut(Help.fmt + "\n"); return 0 }
    guard args.count == 1 else { throw UsageError(message: "fmt takes exactly one trace file") }
    // fmt keeps the trace's own spelling of a number where it still says
    // the same value (`size=0x200000` stays, not `size=2M`).
    guard case .trace(let trace) = parseFiles(args, keepingSpellings: true)[0] else { return 2 }
    printOut(printTrace(trace))
    return 0
}

/// `--format text|json` of the reports.
func formatOption(_ v: String) throws(UsageError) -> String {
    guard v == "text" || v == "json" else { throw UsageError(message: "--format takes text or json, not '\(v)'") }
    return v
}

func planCommand(_ args: [String]) throws(UsageError) -> Int32 {
    var kernel: KernelVersion? = nil
    var format = "text"
    var files: [String] = []
    var costs: CostProfile? = nil
    var threads: Int? = nil
    var arguments = Arguments(args)
    while let a = arguments.pop() {
        switch a {
        case "--help", "-h": printOut(Help.plan + "\n"); return 0
        case "--threads": threads = try arguments.number(for: a, in: 1...4096)
        case "--kernel": kernel = try kernelOption(try arguments.value(for: a))
        case "--format": format = try formatOption(try arguments.value(for: a))
        case "--time": costs = costs ?? .published
        case "--cost-profile":
            let path = try arguments.value(for: a)
            switch readFile(path) {
            case .failure(let e): printErr("vfio-sim: \(e.message)"); return 2
            case .success(let bytes):
                switch CostProfile.parse(String(decoding: bytes, as: UTF8.self), file: path) {
                case .success(let p): costs = p
                case .failure(let e): printErr(e.message); return 2
                }
            }
        default:
            if a.hasPrefix("-") && a != "-" { throw UsageError(message: "unknown option '\(a)'") }
            files.append(a)
        }
    }
    if files.isEmpty { throw UsageError(message: "plan needs at least one trace file") }
    if threads != nil && costs == nil { throw UsageError(message: "--threads goes with --time or --cost-profile") }
    let inputs = parseFiles(files)
    let plans = traces(inputs).map { Planner.plan($0, profile: kernel.map(KernelProfile.init) ?? .newest, costs: costs, threads: threads) }
    if format == "json" {
        printOut(Planner.json(plans))
    } else if !plans.isEmpty {
        printOut(Planner.render(plans))
    }
    return plans.count < inputs.count ? 2 : 0
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
                case "plan": printOut(Help.plan + "\n")
                case "compare": printOut(Help.compare + "\n")
                case "record": printOut(RecordHelp.record + "\n")
                case "whatif": printOut(RecordHelp.whatif + "\n")
                case "host": printOut(Help.host + "\n")
                case "new": printOut(Help.new + "\n")
                case "lane-summary": printOut(Help.laneSummary + "\n")
                case "trace" where args.dropFirst(2) == ["--fill-tables"]:
                    // scripts/gen-trace-help.sh: the page on standard input with
                    // its statement tables made from the grammar.
                    var page = ""
                    while let line = readLine(strippingNewline: false) { page += line }
                    printOut(fillStatementTables(in: page))
                case "trace": printOut(traceFormatText)
                case "help": printOut(Help.help + "\n")
                default: throw UsageError(message: "no help for '\(args[1])'; try replay, plan, compare, fmt, explore, faults, record, whatif, host, new, lane-summary, trace or help")
                }
            } else {
                printOut(Help.main + "\n")
            }
            return 0
        case "--version", "version":
            printOut(Help.version + "\n")
            return 0
        case "replay": return try replayCommand(Array(args.dropFirst()))
        case "plan": return try planCommand(Array(args.dropFirst()))
        case "compare": return try compareCommand(Array(args.dropFirst()))
        case "fmt": return try fmtCommand(Array(args.dropFirst()))
        case "explore": return try exploreCommand(Array(args.dropFirst()))
        case "faults": return try faultsCommand(Array(args.dropFirst()))
        case "record": return try recordCommand(Array(args.dropFirst()))
        case "whatif": return try whatifCommand(Array(args.dropFirst()))
        case "host": return try hostCommand(Array(args.dropFirst()))
        case "new": return try newCommand(Array(args.dropFirst()))
        case "lane-summary": return try laneSummaryCommand(Array(args.dropFirst()))
        default: throw UsageError(message: "unknown command '\(command)'; see vfio-sim --help")
        }
    } catch {
        printErr("vfio-sim: error: \(error.message)")
        return 2
    }
}

exit(run(CommandLine.arguments))

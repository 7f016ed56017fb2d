import VFIOFileIO
import VFIOKernel
import VFIOLane

/// `vfio-sim faults`: kernel replays killed at random points; one line per
/// kill that left something behind, then the summary.
func faultsCommand(_ args: [String]) throws(UsageError) -> Int32 {
    var runs = 56
    var seed: UInt64 = 1
    var group: String? = nil
    var allowed = false
    var verbose = false
    var files: [String] = []
    var reportPath: String? = nil
    var arguments = Arguments(args)
    while let a = arguments.pop() {
        switch a {
        case "--runs": runs = try arguments.number(for: a, in: 1...100_000)
        case "--seed": seed = try arguments.number(for: a)
        case "--group": group = try arguments.value(for: a)
        case "--allow-module-params": allowed = true
        case "--verbose", "-v": verbose = true
        case "--report": reportPath = try arguments.value(for: a)
        case "--help", "-h": printOut(Help.faults + "\n"); return 0
        default:
            if a.hasPrefix("-") { throw UsageError(message: "unknown option '\(a)'") }
            files.append(a)
        }
    }
    if files.isEmpty { throw UsageError(message: "faults needs at least one trace file") }
    if !allowed {
        throw UsageError(message: "faults changes vfio_iommu_type1.dma_entry_limit (global: every VFIO container opened meanwhile gets it); pass --allow-module-params")
    }
    let sys = LinuxSystemCalls()
    var hardware = laneHardware()
    if let group { hardware = hardware?.with(groups: [group]) ?? Hardware(groups: [group]) }
    guard let hardware else { throw UsageError(message: "faults needs --group /dev/vfio/N") }
    // Every file must parse: a kill is only meaningful on a whole trace.
    let inputs = parseFiles(files)
    let runnable = traces(inputs)
    if runnable.count < inputs.count { return 2 }
    switch FaultRun.run(runnable, hardware: hardware, runs: runs, seed: seed, sys: sys,
                        onKill: { kill in
                            if !kill.survived { printOut("  left something: \(kill.description)\n") }
                            else if verbose { printOut("  survived: \(kill.description)\n") }
                        }) {
    case .failure(let e):
        printErr("vfio-sim: error: \(e.message)")
        return 2
    case .success(let result):
        var byFault: [String] = []
        for f in FaultRun.Fault.allCases {
            let ks = result.kills.filter { $0.fault == f }
            byFault.append("\(ks.filter(\.survived).count)/\(ks.count) \(f.rawValue)")
        }
        let kernelLine = "kernel \(sys.release): \(byFault.joined(separator: ", ")); the next run restored a value left behind \(result.recoveries) times"
        printOut(kernelLine + "\n")
        printOut(result.summary + "\n")
        if let reportPath {
            let report = FaultReport(survived: result.survived, kills: result.kills.count, kernelLine: kernelLine, summary: result.summary,
                                     left: result.kills.filter { !$0.survived }.map(\.description))
            if let problem = writeFile(reportPath, report.encode()) { printErr("error: \(problem)"); return 2 }
        }
        return result.survived == result.kills.count ? 0 : 1
    }
}

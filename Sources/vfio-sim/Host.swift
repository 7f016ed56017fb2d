import VFIOFileIO
import VFIOKernel
import VFIOLane

/// `vfio-sim host`: the prologue of a trace for the machine it runs on.
///
/// Reads only (sysfs, procfs, uname, getrlimit) unless `--probe` is given,
/// so it is safe on any machine, with or without VFIO; it always exits 0
/// once the command line is right, because a machine without an IOMMU is
/// an answer too (a comment says so), not an error.
func hostCommand(_ args: [String]) throws(UsageError) -> Int32 {
    var probe = false
    var reportPath: String? = nil
    var arguments = Arguments(args)
    while let a = arguments.pop() {
        switch a {
        case "--help", "-h": printOut(Help.host + "\n"); return 0
        case "--probe": probe = true
        case "--report": reportPath = try arguments.value(for: a)
        default: throw UsageError(message: a.hasPrefix("-") ? "unknown option '\(a)'" : "host takes no file, only --probe")
        }
    }
    let facts = HostFacts.gather(LinuxSystemCalls(), probe: probe)
    printOut(facts.prologue.map { $0 + "\n" }.joined())
    if let reportPath, let problem = writeFile(reportPath, HostProbeReport(facts).encode()) { printErr("error: \(problem)"); return 2 }
    return 0
}

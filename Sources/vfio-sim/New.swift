import VFIOFileIO
import VFIOCore
import VFIOLane
import VFIOScenario
import VFIOTrace

/// `vfio-sim new PROGRAM [options]`: the DMA mapping plan a program makes
/// for the setup described, as a trace with the model's answers written
/// (standard output, or `-o FILE`).
func newCommand(_ args: [String]) throws(UsageError) -> Int32 {
    var arguments = Arguments(args)
    guard let first = arguments.pop() else { throw UsageError(message: "new needs a program: \(ScenarioProgram.list)") }
    if first == "--help" || first == "-h" { printOut(Help.new + "\n"); return 0 }
    guard let program = ScenarioProgram(rawValue: first) else {
        throw UsageError(message: "new: no template for '\(first)'; try \(ScenarioProgram.list)")
    }
    var o = ScenarioOptions()
    // The command as the trace's comment gives it, without where it was
    // written: running it again writes the same trace.
    var shown: [String] = []
    var skipNext = false
    for a in args {
        if skipNext { skipNext = false; continue }
        if a == "-o" || a == "--out" { skipNext = true; continue }
        shown.append(a)
    }
    o.commandLine = (["vfio-sim", "new"] + shown).joined(separator: " ")
    var out: String? = nil
    guard try parseNewOptions(&arguments, into: &o, out: &out) else { return 0 }
    let scenario: Scenario
    do throws(ScenarioError) { scenario = try Scenario.make(program, o) } catch { throw UsageError(message: error.message) }
    switch ScenarioAnswers.answer(scenario, file: out ?? "\(program.rawValue).trace") {
    case .failure(.unparsed(let why)):
        printErr("vfio-sim: internal error: the \(program.rawValue) template wrote a trace that does not parse:\n\(why)")
        return 2
    case .failure(.refused(let why)):
        printErr("vfio-sim: error: \(why)")
        return 2
    case .success(let trace):
        let text = printTrace(trace)
        if let out {
            if let problem = writeFile(out, text) { printErr("vfio-sim: error: \(problem)"); return 2 }
            printErr("wrote \(out): \(scenario.summary), \(scenario.mapPhaseOperations) operations before teardown")
        } else {
            printOut(text)
        }
        return 0
    }
}

/// `new`'s options after the program, into `o` (and `-o FILE` into
/// `out`); false after printing the help (`--help`).
func parseNewOptions(_ arguments: inout Arguments, into o: inout ScenarioOptions, out: inout String?) throws(UsageError) -> Bool {
    while let a = arguments.pop() {
        switch a {
        case "--help", "-h": printOut(Help.new + "\n"); return false
        case "--memory": o.memory = try size(&arguments, a)
        case "--backing": o.backing = try arguments.choice(for: a) as Backing
        case "--phys": o.contiguous = try !arguments.either(for: a, "scattered", "contiguous")
        case "--iova-mode": o.iovaMode = try arguments.choice(for: a)
        case "--machine": o.machine = try arguments.choice(for: a)
        case "--devices": o.devices = try arguments.number(for: a, in: 1...64)
        case "--containers": o.containers = try arguments.number(for: a, in: 1...16)
        case "--bar": o.barSize = try size(&arguments, a)
        case "--coalesced": o.coalesced = true
        case "--prealloc": o.prealloc = try arguments.either(for: a, "yes", "no")
        case "--iommu": o.iommu = try arguments.choice(for: a)
        case "--kernel":
            let v = try arguments.value(for: a)
            _ = try kernelOption(v)
            o.kernel = v
        case "--memlock":
            let v = try arguments.value(for: a)
            if v == "unlimited" { o.memlock = .unlimited } else {
                guard let n = traceNumber(v) else { throw UsageError(message: "--memlock takes a size (64M, 0x1000) or unlimited, not '\(v)'") }
                o.memlock = .bytes(n)
            }
        case "--cap-ipc-lock": o.capIPCLock = try arguments.either(for: a, "on", "off")
        case "--dma-entry-limit": o.dmaEntryLimit = try arguments.number(for: a)
        case "--seed": o.seed = try arguments.number(for: a)
        case "-o", "--out": out = try arguments.value(for: a)
        default: throw UsageError(message: "new: unknown option '\(a)'")
        }
    }
    return true
}

/// A size after `flag`, in the trace's spelling (`4G`, `512M`, `0x1000`).
private func size(_ arguments: inout Arguments, _ flag: String) throws(UsageError) -> UInt64 {
    let v = try arguments.value(for: flag)
    guard let n = traceNumber(v) else { throw UsageError(message: "\(flag) takes a size such as 4G or 512M, not '\(v)'") }
    return n
}

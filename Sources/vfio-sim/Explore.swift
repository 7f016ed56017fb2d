import VFIOFileIO
import VFIOCore
import VFIOExplore
import VFIOKernel
import VFIOReplay
import VFIOTrace

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension KernelBackend: ClosableBackend {}

/// `vfio-sim explore`: generated sequences on the model (and the kernel),
/// each finding shrunk and saved as a trace.
func exploreCommand(_ args: [String]) throws(UsageError) -> Int32 {
    var seed: UInt64 = 1
    var ops = 40
    var runs = 1000
    var backend = "model"
    var group: String? = nil
    var out: String? = nil
    var i = 0
    func value(_ flag: String) throws(UsageError) -> String {
        i += 1
        guard i < args.count else { throw UsageError(message: "\(flag) needs a value") }
        return args[i]
    }
    func number(_ flag: String) throws(UsageError) -> UInt64 {
        let v = try value(flag)
        guard let n = UInt64(v) else { throw UsageError(message: "\(flag) takes a number, not '\(v)'") }
        return n
    }
    while i < args.count {
        switch args[i] {
        case "--seed": seed = try number("--seed")
        case "--ops": ops = Int(min(try number("--ops"), 100_000))
        case "--runs": runs = Int(min(try number("--runs"), 100_000_000))
        case "--backend":
            backend = try value("--backend")
            guard backend == "model" || backend == "both" else { throw UsageError(message: "--backend takes model or both") }
        case "--group": group = try value("--group")
        case "--out": out = try value("--out")
        case "--help", "-h": printOut(Help.explore + "\n"); return 0
        default: throw UsageError(message: "unknown option '\(args[i])'")
        }
        i += 1
    }
    // The kernel lane's guest says which group is ours in VFIO_GROUP.
    if backend == "both" && group == nil, let env = getenv("VFIO_GROUP") { group = String(cString: env) }
    if backend == "both" && group == nil { throw UsageError(message: "--backend both needs --group /dev/vfio/N") }

    var explorer = Explorer(generator: SequenceGenerator(modelOnly: backend == "model"))
    if backend == "both", let group {
        // The model plays the IOMMU the kernel really has, at its version;
        // each sequence runs in its own process.
        do throws(BackendError) {
            let probe = try KernelBackend(groupPath: group)
            explorer.hardwareDomain = try probe.hardwareDomain()
            explorer.modelProfile = probe.profile
            probe.close()
        } catch {
            printErr("vfio-sim: error: kernel backend: \(error.message)")
            return 2
        }
        explorer.others = {
            do throws(BackendError) { return [try KernelBackend(groupPath: group)] } catch {
                printErr("vfio-sim: error: kernel backend: \(error.message)")
                exit(2)
            }
        }
        explorer.isolate = { body in KernelLane.isolated(file: "explore", body) }
        explorer.shrinkBudget = 300
    }
    if let out { mkdir(out, 0o755) }
    var sequences = 0, operations = 0, findings = 0
    var keys = Set<String>()
    for s in seed..<(seed &+ UInt64(runs)) {
        let trace = explorer.generator.generate(seed: s, operations: ops)
        let (finding, report) = explorer.check(trace)
        sequences += 1
        operations += report.outcomes.count
        guard let finding else { continue }
        findings += 1
        // One shrunk trace per kind of finding is enough to read.
        guard !keys.contains(finding.key) else { continue }
        keys.insert(finding.key)
        let (small, final, tried) = explorer.shrink(trace, finding: finding)
        let text = explorer.fixtureText(small, finding: final, seed: s)
        printOut("seed \(s): \(finding)\n  shrunk with \(tried) replays to \(small.statements.count) statements:\n")
        printOut(text.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n") + "\n")
        if let out {
            let path = "\(out)/explore-seed-\(s).trace"
            if let problem = writeFile(path, text) { printErr("error: \(problem)") } else { printOut("  saved \(path)\n") }
        }
    }
    printOut("explored \(sequences) sequences, \(operations) operations on \(backend == "both" ? "model and kernel" : "the model"): \(findings) with findings\n")
    return findings == 0 ? 0 : 1
}

// Instruction counts of the model's hot loops: figures that do not move
// when the machine is busy, unlike the times beside them.
//
// Each figure is the difference of two whole runs of `vfio-bench hot`
// that differ only in how much work the loop does (more pairs, or the same
// trace parsed and replayed twice instead of once), so the setup both runs
// share (building 65,535 mappings, generating the trace) cancels out.
// Counted by `perf stat -e instructions:u` where the machine has the
// counter, else by valgrind's callgrind (an exact count of the
// instructions executed, about 50× slower than running).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How instructions get counted here.
enum InstructionCounter {
    case perf
    case callgrind

    var name: String {
        switch self {
        case .perf: "perf stat -e instructions:u"
        case .callgrind: "valgrind --tool=callgrind"
        }
    }

    /// `perf` when `perf stat` can read the counter, else `callgrind` when
    /// valgrind is installed, else why neither.
    static func available() -> Result<InstructionCounter, BenchFailure> {
        if let out = shellOutput("perf stat -x, -e instructions:u true 2>&1"), let n = perfCount(out), n > 0 { return .success(.perf) }
        if let out = shellOutput("valgrind --version 2>&1"), out.hasPrefix("valgrind") { return .success(.callgrind) }
        return .failure(BenchFailure("neither perf stat (instructions counter) nor valgrind works here"))
    }

    /// The executable to run under the counter. For callgrind, a copy of
    /// `exe` without its debug sections (`strip --strip-debug`, in the
    /// temporary directory): valgrind 3.19 gives up on the DWARF that Swift
    /// 6.3 writes ("Possibly corrupted debuginfo file"), and no instruction
    /// the program executes lives in those sections, so the counts are the
    /// same. `exe` itself when strip is missing.
    func countable(_ exe: String) -> Result<String, BenchFailure> {
        guard self == .callgrind else { return .success(exe) }
        let copy = "/tmp/vfio-bench-counted.\(getpid())"
        guard shellOutput("strip --strip-debug -o '\(copy)' '\(exe)' 2>&1") != nil else { return .success(exe) }
        return .success(copy)
    }

    /// User-space instructions of one run of `command` (a shell word list
    /// already quoted). Swift seeds its hash tables at random per process,
    /// which moved the counts by about a hundred instructions per operation
    /// from run to run; `SWIFT_DETERMINISTIC_HASHING` makes two runs of the
    /// same binary execute the same instructions.
    func count(_ command: String) -> Result<UInt64, BenchFailure> {
        let env = "SWIFT_DETERMINISTIC_HASHING=1"
        switch self {
        case .perf:
            guard let out = shellOutput("\(env) perf stat -x, -e instructions:u \(command) 2>&1 >/dev/null"), let n = Self.perfCount(out) else {
                return .failure(BenchFailure("perf stat gave no count for \(command)"))
            }
            return .success(n)
        case .callgrind:
            guard let out = shellOutput("\(env) valgrind --tool=callgrind --callgrind-out-file=/dev/null \(command) 2>&1 >/dev/null"),
                  let n = Self.callgrindCount(out) else {
                return .failure(BenchFailure("callgrind gave no count for \(command)"))
            }
            return .success(n)
        }
    }

    /// `123456,,instructions:u,...` (perf's CSV form).
    static func perfCount(_ text: String) -> UInt64? {
        for line in text.split(separator: "\n") where line.contains("instructions") {
            if let n = UInt64(line.prefix(while: { $0 != "," })) { return n }
        }
        return nil
    }

    /// `==12== Collected : 123456` (callgrind's summary on stderr).
    static func callgrindCount(_ text: String) -> UInt64? {
        let marker = Array("Collected : ".utf8)
        for line in text.split(separator: "\n") {
            let bytes = Array(line.utf8)
            guard bytes.count > marker.count else { continue }
            for start in 0...(bytes.count - marker.count) where Array(bytes[start..<(start + marker.count)]) == marker {
                let digits = bytes[(start + marker.count)...].prefix(while: { $0 >= 0x30 && $0 <= 0x39 })
                return UInt64(String(decoding: digits, as: UTF8.self))
            }
        }
        return nil
    }
}

/// One instruction figure: `work(small)` and `work(large)` are the hot
/// command's arguments for the two runs, `units` how many operations (or
/// bytes) the larger run does beyond the smaller.
struct InstructionFigure {
    var id: String
    var what: String
    var small: String
    var large: String
    var units: Double
    var unit: String
    /// Nil for a figure measured only to derive another from it.
    var target: Double?
}

/// The three figures of issue 15, and the map/unmap figure at 1,024 live
/// mappings that `map_unmap_instructions_log_growth_ratio` compares with
/// the one at 65,535. `quick` uses smaller runs (the per-op figures hardly
/// change: the loops do the same work each time).
func instructionFigures(quick: Bool) -> [InstructionFigure] {
    let pairs = quick ? 10_000 : 40_000
    let traceOps = quick ? 20_000 : 100_000
    let traceBytes = Double(generatedTrace(operations: traceOps, seed: 1).bytes.count)
    return [
        InstructionFigure(id: "map_unmap_instructions_per_op_65535",
                          what: "map or unmap of 4 KiB at 65,535 live mappings",
                          small: "hot map-unmap \(pairs / 2)", large: "hot map-unmap \(pairs)",
                          // `hot map-unmap P` runs P unmap+map pairs twice (a
                          // warm-up, then the timed run): 4P operations.
                          units: Double(4 * (pairs - pairs / 2)), unit: "instructions/op", target: 1000),
        InstructionFigure(id: "map_unmap_instructions_per_op_1024",
                          what: "map or unmap of 4 KiB at 1,024 live mappings",
                          small: "hot map-unmap \(pairs / 2) 1024", large: "hot map-unmap \(pairs) 1024",
                          units: Double(4 * (pairs - pairs / 2)), unit: "instructions/op", target: nil),
        InstructionFigure(id: "parse_instructions_per_byte",
                          what: "parser, per byte of the generated trace",
                          small: "hot parse \(traceOps) 1", large: "hot parse \(traceOps) 2",
                          units: traceBytes, unit: "instructions/byte", target: 45),
        InstructionFigure(id: "replay_instructions_per_op",
                          what: "parse + replay of the generated trace, per operation",
                          small: "hot replay \(traceOps) 1", large: "hot replay \(traceOps) 2",
                          units: Double(traceOps), unit: "instructions/op", target: 2500),
    ]
}

/// Counts one figure: (large − small) ÷ units, and both raw counts.
func measureInstructions(_ f: InstructionFigure, counter: InstructionCounter, exe: String) -> Result<(perUnit: Double, small: UInt64, large: UInt64), BenchFailure> {
    let a: UInt64, b: UInt64
    switch counter.count("'\(exe)' \(f.small)") {
    case .success(let n): a = n
    case .failure(let e): return .failure(e)
    }
    switch counter.count("'\(exe)' \(f.large)") {
    case .success(let n): b = n
    case .failure(let e): return .failure(e)
    }
    guard b > a else { return .failure(BenchFailure("the larger run counted fewer instructions (\(b) ≤ \(a))")) }
    return .success((Double(b - a) / f.units, a, b))
}

/// Runs `command` with `/bin/sh -c` and returns what it printed on stdout
/// (nil when it could not start or exited non-zero).
func shellOutput(_ command: String) -> String? {
    guard let run = shellRun(command), run.status == 0 else { return nil }
    return run.output
}

/// Runs `command` with `/bin/sh -c`: its exit status (as `pclose` gives
/// it) and what it printed on stdout; nil when it could not start.
func shellRun(_ command: String) -> (status: Int32, output: String)? {
    guard let pipe = popen(command, "r") else { return nil }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let got = fread(&buffer, 1, buffer.count, pipe)
        if got <= 0 { break }
        out += buffer[0..<got]
    }
    return (pclose(pipe), String(decoding: out, as: UTF8.self))
}

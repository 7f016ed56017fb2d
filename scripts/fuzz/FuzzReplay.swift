import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

// libFuzzer target `replay`: any bytes parsed, and a trace that parses
// replayed on the model (`vfio-sim replay` without a kernel), with the
// model's invariants walked after every operation, then reported in every
// format the CLI prints.
//
// A trap or a hang anywhere is a finding; so is a broken invariant, which
// the replay only records: it is turned into a crash (fatalError) here so
// libFuzzer keeps the input.

/// The most operations (statements times `repeat=`) one input may ask for.
let maxOperations: UInt64 = 20_000

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReplay(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    guard case .success(let trace) = parseTrace(bytes: bytes, file: "fuzz.trace") else { return 0 }
    // `repeat=` lets a few bytes ask for millions of operations, each kept,
    // explained and printed in three report formats: time linear in what was
    // asked, but past libFuzzer's 10 s per input in this instrumented build
    // (`repeat=200012` took 23 s). The fuzzer looks for wrong answers and
    // traps, not throughput, so such a trace is replayed only when it asks
    // for at most this many operations.
    var operations: UInt64 = 0
    for st in trace.statements {
        if st.count > maxOperations - operations { return 0 }
        operations += st.count
    }
    let model = ModelBackend(checksInvariants: true)
    let report = Replayer(backends: [model]).run(trace)
    for p in report.problems {
        if case .backend(_, .invariantBroken) = p.kind { fatalError("\(p.line): \(p.message)") }
    }
    _ = textReport([report], verbose: true)
    _ = jsonReport([report])
    _ = junitReport([report])
    return 0
}

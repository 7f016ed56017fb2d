import VFIOFileIO
import VFIOLane

/// `vfio-sim lane-summary`: the kernel lane's lines computed from the
/// reports its guest wrote, so the lane's scripts only install, boot and
/// copy. Exit 0 when the configuration passed, 1 when not, 2 on a wrong
/// command line or an unreadable file.
func laneSummaryCommand(_ args: [String]) throws(UsageError) -> Int32 {
    switch args.first {
    case "--help", "-h": printOut(Help.laneSummary + "\n"); return 0
    case "skipped": return try laneSkipped(Array(args.dropFirst()))
    case "skipped-lines": return try laneSkippedLines(Array(args.dropFirst()))
    case "explore-report": return try laneExploreReport(Array(args.dropFirst()))
    case "faults": return try laneFaults(Array(args.dropFirst()))
    case "merged-exploration": return laneMergedExploration(Array(args.dropFirst()))
    case "recorded": return try laneRecorded(Array(args.dropFirst()))
    default: return try laneConfiguration(args)
    }
}

/// The text of `path`, or nil after saying why not.
func readText(_ path: String) -> String? {
    switch readFile(path) {
    case .success(let bytes): return String(decoding: bytes, as: UTF8.self)
    case .failure(let e): printErr("vfio-sim: error: \(path): \(e.message)"); return nil
    }
}

/// One configuration's lines from its boot's report.
func laneConfiguration(_ args: [String]) throws(UsageError) -> Int32 {
    var boot = LaneSummary.Boot(config: "", iommu: "", accel: "")
    var stderrPath: String? = nil
    var sectionsPath: String? = nil
    var report: String? = nil
    var arguments = Arguments(args)
    while let a = arguments.pop() {
        switch a {
        case "--config": boot.config = try arguments.value(for: a)
        case "--iommu": boot.iommu = try arguments.value(for: a)
        case "--accel": boot.accel = try arguments.value(for: a)
        case "--explorations": boot.explorations = try arguments.number(for: a, in: 0...1000)
        case "--note": boot.note = try arguments.value(for: a)
        case "--verbose": boot.verbose = true
        case "--payload-exit": boot.payloadExit = try arguments.number(for: a, in: 0...255)
        case "--stderr": stderrPath = try arguments.value(for: a)
        case "--sections": sectionsPath = try arguments.value(for: a)
        default:
            if a.hasPrefix("-") || report != nil { throw UsageError(message: a.hasPrefix("-") ? "unknown option '\(a)'" : "lane-summary takes one report") }
            report = a
        }
    }
    guard let report, !boot.config.isEmpty, !boot.iommu.isEmpty, !boot.accel.isEmpty else {
        throw UsageError(message: "lane-summary needs --config NAME, --iommu WORD, --accel ACCEL and the boot's REPORT")
    }
    boot.reportPath = report
    guard let text = readText(report) else { return 2 }
    if let stderrPath {
        guard let s = readText(stderrPath) else { return 2 }
        boot.stderr = s
    }
    let summary = LaneSummary(report: text, boot: boot)
    for l in summary.log { printErr(l) }
    printOut(summary.lines.map { $0 + "\n" }.joined())
    if let sectionsPath, let problem = writeFile(sectionsPath, summary.sectionsJSON) { printErr("error: \(problem)"); return 2 }
    return summary.passed ? 0 : 1
}

/// `skipped --configs "A B" A=REPORT B=REPORT`, or `skipped --configs "A
/// B" --lines FILE` with the lines of `skipped-lines`: the lane's
/// `skipped fixtures:` summary.
func laneSkipped(_ args: [String]) throws(UsageError) -> Int32 {
    var configs: [String] = []
    var skips: [(line: String, config: String)] = []
    var arguments = Arguments(args)
    while let a = arguments.pop() {
        switch a {
        case "--configs": configs = try arguments.value(for: a).split(separator: " ").map(String.init)
        case "--lines":
            guard let text = readText(try arguments.value(for: a)) else { return 2 }
            for l in text.split(separator: "\n") {
                let f = l.split(separator: "\t", maxSplits: 1)
                guard f.count == 2 else { printErr("vfio-sim: error: not a skipped-fixture line: \(l)"); return 2 }
                skips.append((String(f[0]), String(f[1])))
            }
        default:
            guard let eq = a.firstIndex(of: "="), !a.hasPrefix("-") else { throw UsageError(message: "skipped takes --configs LIST and CONFIG=REPORT or --lines FILE, not '\(a)'") }
            let config = String(a[..<eq])
            // A configuration that left no report skipped nothing it could say.
            guard case .success(let bytes) = readFile(String(a[a.index(after: eq)...])),
                  let fixtures = LaneStream(String(decoding: bytes, as: UTF8.self)).first("fixtures report").flatMap(LaneFixtureReport.decode) else { continue }
            skips += LaneSkipped.lines(fixtures).map { ($0, config) }
        }
    }
    printOut((["skipped fixtures:"] + LaneSkipped.summary(skips, configs: configs)).map { $0 + "\n" }.joined())
    return 0
}

/// `skipped-lines CONFIG REPORT`: `NAME: REASON<TAB>CONFIG` per skipped fixture.
func laneSkippedLines(_ args: [String]) throws(UsageError) -> Int32 {
    guard args.count == 2 else { throw UsageError(message: "skipped-lines takes CONFIG REPORT") }
    guard let text = readText(args[1]) else { return 2 }
    guard let fixtures = LaneStream(text).first("fixtures report").flatMap(LaneFixtureReport.decode) else { return 1 }
    printOut(LaneSkipped.lines(fixtures).map { "\($0)\t\(args[0])\n" }.joined())
    return 0
}

/// `explore-report REPORT`: the boot's exploration report, as `explore
/// --merge` reads it; exit 1 when the boot wrote none.
func laneExploreReport(_ args: [String]) throws(UsageError) -> Int32 {
    guard args.count == 1 else { throw UsageError(message: "explore-report takes REPORT") }
    guard let text = readText(args[0]) else { return 2 }
    guard let report = LaneStream(text).first("explore report"),
          case .success(let r) = ExploreReport.decode(String(report), path: args[0]) else { return 1 }
    printOut(r.encode())
    return 0
}

/// `faults --config NAME [--payload-exit RC] REPORT`: the fault lane's
/// lines for a configuration.
func laneFaults(_ args: [String]) throws(UsageError) -> Int32 {
    var config = "", payloadExit = 0
    var report: String? = nil
    var arguments = Arguments(args)
    while let a = arguments.pop() {
        switch a {
        case "--config": config = try arguments.value(for: a)
        case "--payload-exit": payloadExit = try arguments.number(for: a, in: 0...255)
        default:
            if a.hasPrefix("-") || report != nil { throw UsageError(message: "faults takes --config NAME [--payload-exit RC] REPORT") }
            report = a
        }
    }
    guard let report, !config.isEmpty else { throw UsageError(message: "faults takes --config NAME [--payload-exit RC] REPORT") }
    guard let text = readText(report) else { return 2 }
    let summary = LaneFaultSummary(report: text, config: config, payloadExit: payloadExit)
    printOut(summary.lines.map { $0 + "\n" }.joined())
    return summary.passed ? 0 : 1
}

/// `merged-exploration REPORT...`: the shards' exploration reports of one
/// configuration as one exploration's lines (merge.sh); exit 0 when it
/// found nothing, 1 when it did, 2 when the reports do not add up.
func laneMergedExploration(_ paths: [String]) -> Int32 {
    var reports: [ExploreReport] = []
    for p in paths {
        guard let text = readText(p) else { return 2 }
        switch ExploreReport.decode(text, path: p) {
        case .success(let r): reports.append(r)
        case .failure(let e): printErr("vfio-sim: error: \(e.message)"); return 2
        }
    }
    switch ExploreReport.merge(reports) {
    case .failure(let e): printErr("vfio-sim: error: \(e.message)"); return 2
    case .success(let merged):
        let r = merged.result
        var lines = ["  " + r.summaryLine(backend: merged.backend, container: merged.container)
                     + " (\(reports.count) reports merged: seeds \(ExploreReport.coverage(reports)))"]
        lines += r.shrunk.flatMap(\.lines).map { "    " + $0 }
        printOut(lines.map { $0 + "\n" }.joined())
        return r.findings == 0 ? 0 : 1
    }
}

/// `recorded --label "CONFIG NAME" --client "exit RC in Ss" --answers N
/// --replay-exit RC TALLY`: the recording lane's line for one recorded
/// trace replayed on the model (`replay --lane-report TALLY`), and the
/// replay's lines when it failed.
func laneRecorded(_ args: [String]) throws(UsageError) -> Int32 {
    var label = "", client = "", answers = 0, replayExit = 0
    var tallyPath: String? = nil
    var arguments = Arguments(args)
    while let a = arguments.pop() {
        switch a {
        case "--label": label = try arguments.value(for: a)
        case "--client": client = try arguments.value(for: a)
        case "--answers": answers = try arguments.number(for: a, in: 0...Int.max)
        case "--replay-exit": replayExit = try arguments.number(for: a, in: 0...255)
        default:
            if a.hasPrefix("-") || tallyPath != nil { throw UsageError(message: "recorded takes --label, --client, --answers, --replay-exit and TALLY") }
            tallyPath = a
        }
    }
    guard let tallyPath else { throw UsageError(message: "recorded takes --label, --client, --answers, --replay-exit and TALLY") }
    let tally = readText(tallyPath).flatMap { ReplayTally.decode(Substring($0)) }
    let summary = tally?.summary.last ?? "no output"
    var lines = ["\(label): client \(client), \(answers) answers recorded; replay on the model: \(summary) (exit \(replayExit))"]
    if replayExit != 0, let tally { lines += (tally.lines + tally.summary).prefix(20).map { "    " + $0 } }
    printOut(lines.map { $0 + "\n" }.joined())
    return replayExit == 0 && tally != nil ? 0 : 1
}

import VFIOCore
import VFIOReplay

/// What the lane's guest printed for one boot, cut at its `== NAME` lines:
/// the text before the first is the `fixtures` section. The lane reads only
/// the sections that hold reports (`fixtures report`, `explore report`,
/// `host report`, ...) and the guest's `dmesg`; the text sections are for
/// people.
public struct LaneStream: Sendable {
    public var sections: [(name: String, text: Substring)]

    public init(_ text: String) {
        var sections: [(String, Substring)] = []
        var name = "fixtures"
        var start = text.startIndex
        var lineStart = text.startIndex
        while lineStart < text.endIndex {
            let lineEnd = text[lineStart...].firstIndex(of: "\n") ?? text.endIndex
            let line = text[lineStart..<lineEnd]
            let next = lineEnd < text.endIndex ? text.index(after: lineEnd) : lineEnd
            if line.hasPrefix("== ") {
                sections.append((name, text[start..<lineStart]))
                name = String(line.dropFirst(3))
                start = next
            }
            lineStart = next
        }
        sections.append((name, text[start...]))
        self.sections = sections
    }

    /// Every section called `name`, in order.
    public func all(_ name: String) -> [Substring] { sections.filter { $0.name == name }.map(\.text) }
    public func first(_ name: String) -> Substring? { all(name).first }
}

/// The kernel lane's lines for one configuration (what `lane.sh` prints),
/// computed from the reports of its boot (`vfio-sim lane-summary`).
public struct LaneSummary: Sendable {
    /// What the host knows of the boot that the guest does not.
    public struct Boot: Sendable {
        public var config: String
        /// The configuration's IOMMU word (`intel-iommu-48`: sysfs cannot
        /// tell 39- from 48-bit VT-d, so the guest's own word is replaced).
        public var iommu: String
        public var accel: String
        /// How many explorations the boot was to run (each must be clean).
        public var explorations: Int
        /// A line said after the summary (a container this binary cannot run).
        public var note: String?
        public var verbose: Bool
        /// Where the full report is kept, for the notes line.
        public var reportPath: String
        /// The payload's exit status, as run-in-guest.sh gave it.
        public var payloadExit: Int
        /// run-in-guest.sh's standard error.
        public var stderr: String

        public init(config: String, iommu: String, accel: String, explorations: Int = 0, note: String? = nil, verbose: Bool = false,
                    reportPath: String = "", payloadExit: Int = 0, stderr: String = "") {
            (self.config, self.iommu, self.accel, self.explorations, self.note) = (config, iommu, accel, explorations, note)
            (self.verbose, self.reportPath, self.payloadExit, self.stderr) = (verbose, reportPath, payloadExit, stderr)
        }
    }

    /// Lines for standard output, for standard error, and whether the
    /// configuration passed.
    public var lines: [String] = []
    public var log: [String] = []
    public var passed = true
    /// Which of `lines` are the explorations' (merge.sh puts the shards'
    /// explorations of one configuration together there).
    public var explorationLines: Range<Int>? = nil

    /// The lines as `{"before":[...],"exploration":[...],"after":[...]}`,
    /// for job.sh's result: the exploration apart, so nothing reads the
    /// lines to find it.
    public var sectionsJSON: String {
        let range = explorationLines ?? lines.endIndex..<lines.endIndex
        func strings(_ s: ArraySlice<String>) -> JSONValue { .array(s.map { .string($0) }) }
        return JSONValue.object([("before", strings(lines[..<range.lowerBound])), ("exploration", strings(lines[range])),
                                 ("after", strings(lines[range.upperBound...]))]).pretty
    }

    /// The summary of `report`, everything the guest printed.
    public init(report: String, boot: Boot) {
        let stream = LaneStream(report)
        // run-in-guest.sh's last word on the boot (`CONFIG: exit N after S`).
        if let exit = boot.stderr.split(separator: "\n").last(where: { $0.hasPrefix("kernel-lane: ") && $0.contains(": exit ") && $0.contains(" after ") }) {
            log.append(String(exit))
        }
        guard let fixtures = stream.first("fixtures report").flatMap(LaneFixtureReport.decode) else {
            passed = false
            lines.append("\(boot.config): no result (payload exit \(boot.payloadExit))")
            lines += Self.tail(boot.stderr, 40).map { "  " + $0 }
            lines += Self.tail(report, 20).map { "  " + $0 }
            return
        }
        // The replay's own verdict (it also sets the payload's exit status).
        if !fixtures.summary.ok { passed = false }
        let host = stream.first("host report").flatMap(HostProbeReport.decode)
        let presets = host?.presets.map { "presets: \($0.agreeing)/\($0.checked) agree" }
        if host?.presets.map({ $0.agreeing != $0.checked }) ?? true { passed = false }
        lines.append("\(fixtures.summaryLine(iommu: boot.iommu)), \(presets ?? "presets: no result"), accel \(boot.accel)")
        if let note = boot.note { lines.append(note) }
        // Every disagreement, error and kernel leak; other notes only with --verbose.
        lines += fixtures.entries.filter { [.disagree, .error, .leak].contains($0.kind) }.map { "  " + $0.text }
        kernelLog(fixtures, dmesg: stream.first("dmesg"))
        explorations(stream, wanted: boot.explorations)
        hostReplay(stream.first("host replay report").flatMap(LaneFixtureReport.decode), host: host)
        selftests(stream, kernel: fixtures.kernel, iommu: boot.iommu)
        if boot.verbose {
            lines += fixtures.entries.filter { [.skipped, .setup, .note].contains($0.kind) }.map { "  " + $0.text }
        } else {
            let setup = fixtures.entries.filter { $0.kind == .setup }.count
            let notes = fixtures.entries.filter { $0.kind == .note }.count
            lines.append("  (\(setup) fixtures asked for another IOMMU setup, \(notes) written answers assume another IOMMU, kernel or physical layout: see \(boot.reportPath))")
        }
        if boot.payloadExit != 0 {
            passed = false
            if boot.payloadExit != 1 {
                lines.append("  payload exit \(boot.payloadExit)")
                lines += Self.tail(boot.stderr, 20).map { "  " + $0 }
            }
        }
    }

    /// Each line the model predicted for the kernel's log must be in the
    /// guest's dmesg as often as predicted (a line of dmesg holds it after
    /// its timestamp).
    mutating func kernelLog(_ fixtures: LaneFixtureReport, dmesg: Substring?) {
        guard let dmesg else {
            lines.append("  kernel log: no result")
            passed = false
            return
        }
        let logged = dmesg.split(separator: "\n")
        let predicted = fixtures.kernelLog.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var found = 0
        var missing: [String] = []
        for line in predicted {
            let wanted = predicted.filter { $0 == line }.count
            let seen = logged.filter { $0.contains(line) }.count
            if seen >= wanted { found += 1 } else { missing.append("missing (\(seen) of \(wanted) in dmesg): \(line)") }
        }
        lines.append("  kernel log: \(found)/\(predicted.count) predicted lines found")
        lines += missing.map { "    " + $0 }
        if found != predicted.count { passed = false }
    }

    /// The explorations: a line each, then every finding shrunk to a trace
    /// and the rates. Each must have run and found nothing.
    mutating func explorations(_ stream: LaneStream, wanted: Int) {
        guard wanted > 0 else { return }
        let start = lines.count
        defer { explorationLines = start..<lines.count }
        var reports: [ExploreReport] = []
        for text in stream.all("explore report") + stream.all("explore more report") {
            if case .success(let r) = ExploreReport.decode(String(text), path: "explore report") { reports.append(r) }
        }
        if reports.isEmpty { lines.append("  exploration: no result") }
        lines += reports.map { "  " + $0.result.summaryLine(backend: $0.backend, container: $0.container) }
        for r in reports {
            lines += r.result.shrunk.flatMap(\.lines).map { "    " + $0 }
            lines.append("    " + r.result.rateLine(jobs: r.jobs))
        }
        let clean = reports.filter { $0.result.findings == 0 }.count
        if clean != wanted {
            passed = false
            lines.append("  (\(clean) of \(wanted) explorations ran without a finding)")
        }
    }

    /// The host's prologue with a body: every operation agrees, and the
    /// prologue's domains are the kernel's (no setup difference).
    mutating func hostReplay(_ replay: LaneFixtureReport?, host: HostProbeReport?) {
        let differences = replay?.entries.filter { [.disagree, .error, .setup].contains($0.kind) } ?? []
        let counts = replay.map { KernelLane.countsLine($0.summary) }
        lines.append("  host prologue + body: \(counts ?? "no result"), \(differences.count) disagreements or setup differences")
        lines += differences.map { "    " + $0.text }
        lines += (host?.differing ?? []).map { "    " + $0 }
        if replay == nil || !differences.isEmpty { passed = false }
    }

    /// The kernel's own selftests, when the boot ran them (`== selftest
    /// facts`, then per program `== selftest NAME` with its TAP and a
    /// `== selftest NAME tally` per recording replayed on the model).
    mutating func selftests(_ stream: LaneStream, kernel: String, iommu: String) {
        guard let facts = stream.first("selftest facts") else { return }
        var programs: [(name: String, tap: Substring, tallies: [ReplayTally?])] = []
        for (name, text) in stream.sections where name.hasPrefix("selftest ") && name != "selftest facts" {
            let rest = name.dropFirst("selftest ".count)
            if rest.hasSuffix(" tally") {
                let program = rest.dropLast(" tally".count)
                guard let i = programs.lastIndex(where: { $0.name == program }) else { continue }
                programs[i].tallies.append(ReplayTally.decode(text))
            } else {
                programs.append((String(rest), text, []))
            }
        }
        let summary = SelftestSummary(kernel: kernel, iommu: iommu, machine: SelftestMachine(facts: facts, iommu: iommu), programs: programs)
        lines += summary.lines
        if !summary.passed { passed = false }
    }

    /// The last `n` lines of `text`.
    static func tail<S: StringProtocol>(_ text: S, _ n: Int) -> [String] {
        var all = text.split(separator: "\n" as Character, omittingEmptySubsequences: false).map { String($0) }
        if all.last == "" { all.removeLast() }
        return Array(all.suffix(n))
    }
}

/// The skipped fixtures of every configuration, each once, as the lane's
/// `skipped fixtures:` summary lists them.
public enum LaneSkipped {
    /// `NAME: REASON` for each fixture a configuration's boot skipped: the
    /// guest's `/files/` folder left out, and the version a pinned trace
    /// names (` (this is ...)`) too, so configurations can share a line.
    public static func lines(_ fixtures: LaneFixtureReport) -> [String] {
        fixtures.summary.skipped.map { file, reason in
            let name = file.hasPrefix("/files/") ? String(file.dropFirst("/files/".count)) : file
            var why = reason
            if let open = why.firstRange(of: " (this is "), let close = why[open.upperBound...].firstIndex(of: ")") {
                why.removeSubrange(open.lowerBound...close)
            }
            return "\(name): \(why)"
        }
    }

    /// Each skipped fixture once: skipped everywhere, no list; on most
    /// configurations, the ones it ran on; else where it was skipped.
    /// `skips` pairs a line of `lines` with its configuration; `configs`
    /// are every configuration that ran, in order.
    public static func summary(_ skips: [(line: String, config: String)], configs: [String]) -> [String] {
        var order: [String] = []
        var where_: [String: [String]] = [:]
        for (line, config) in skips {
            if where_[line] == nil { order.append(line) }
            where_[line, default: []].append(config)
        }
        return order.map { line in
            let skippedOn = where_[line]!
            if skippedOn.count == configs.count { return "  " + line }
            if 2 * skippedOn.count > configs.count {
                return "  \(line) [ran on \(configs.filter { !skippedOn.contains($0) }.joined(separator: ","))]"
            }
            return "  \(line) [\(skippedOn.joined(separator: ","))]"
        }
    }
}

/// The fault lane's lines for one configuration (what `faults.sh` prints),
/// from the `faults report` section of its boot.
public struct LaneFaultSummary: Sendable {
    public var lines: [String] = []
    public var passed = true

    public init(report: String, config: String, payloadExit: Int) {
        guard let faults = LaneStream(report).first("faults report").flatMap(FaultReport.decode) else {
            passed = false
            lines.append("\(config): faults: no result (exit \(payloadExit))")
            lines += LaneSummary.tail(report, 30).map { "  " + $0 }
            return
        }
        lines.append("\(config): \(faults.summary)")
        // The per-kind counts and the kills that left something (every
        // kill is in the report).
        lines += faults.left.map { "    left something: " + $0 }
        lines.append("  " + faults.kernelLine)
        passed = payloadExit == 0 && faults.survived == faults.kills
    }
}

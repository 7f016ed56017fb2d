import VFIOCore
import VFIOExplore

/// What `vfio-sim explore --report FILE` writes and `explore --merge`
/// reads: the seeds a run (or shard) covered and its results, so shards
/// run anywhere add up to one exploration.
///
/// One record per line, tab-separated fields escaped as in `ReportCodec`:
///
///     vfio-sim explore report 1
///     range   SEED  RUNS  OPS  BACKEND  [CONTAINER]   (model or both; type1 or iommufd, type1 when missing)
///     counts  SEQUENCES  OPERATIONS  FINDINGS  NOT-RUN-ON-KERNEL  SECONDS  [HUNG  [JOBS]]
///
/// (HUNG, the sequences that end in a predicted hang, and JOBS, the
/// processes or threads that ran them side by side, may be missing in
/// reports of older versions: 0 and 1.)
///     shrunk  SEED  TRIED  STATEMENTS  FIXTURE  KIND  FIELDS...
///     END
public struct ExploreReport {
    public var seed: UInt64
    public var runs: Int
    public var ops: Int
    public var backend: String
    public var result: ExploreRun
    /// The kind the sequences were generated for (`--container`).
    public var container: ContainerKind
    /// How many ran side by side (`--jobs`): the rate line says it.
    public var jobs: Int = 1

    public init(seed: UInt64, runs: Int, ops: Int, backend: String, result: ExploreRun, container: ContainerKind = .type1) {
        self.seed = seed
        self.runs = runs
        self.ops = ops
        self.backend = backend
        self.result = result
        self.container = container
    }

    static let header = "vfio-sim explore report 1"

    public func encode() -> String {
        func rec(_ fields: [String]) -> String { fields.map(ReportCodec.escape).joined(separator: "\t") + "\n" }
        let r = result
        var out = Self.header + "\n"
        out += rec(["range", String(seed), String(runs), String(ops), backend] + (container == .type1 ? [] : [container.rawValue]))
        out += rec(["counts", String(r.sequences), String(r.operations), String(r.findings), String(r.notRunOnKernel), String(r.seconds), String(r.hung), String(jobs)])
        for h in KernelHazard.allCases { if let n = r.notRunByHazard[h] { out += rec(["not-run", h.rawValue, String(n)]) } }
        for s in r.shrunk {
            let finding: [String] = switch s.finding {
            case .property(let v): ["property", String(v.line), v.property, v.detail]
            case .disagreement(let line, let statement, let answers): ["disagreement", String(line), statement] + answers
            case .error(let line, let message): ["error", String(line), message]
            }
            out += rec(["shrunk", String(s.seed), String(s.tried), String(s.statements), s.fixture] + finding)
        }
        return out + "END\n"
    }

    /// The report in `text`, or what is wrong with it (`path` names it).
    public static func decode(_ text: String, path: String) -> Result<ExploreReport, LaneError> {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)[...]
        func bad(_ why: String) -> Result<ExploreReport, LaneError> {
            .failure(LaneError("\(path): not an explore report (\(why))"))
        }
        guard lines.popFirst() == Substring(header) else { return bad("the first line is not '\(header)'") }
        var report: ExploreReport? = nil
        var ended = false
        for (i, line) in lines.enumerated() {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(ReportCodec.unescape)
            let n = i + 2
            switch f[0] {
            case "range" where (f.count == 5 || f.count == 6) && report == nil:
                guard let seed = UInt64(f[1]), let runs = Int(f[2]), let ops = Int(f[3]), runs >= 0,
                      let kind = f.count == 6 ? ContainerKind(rawValue: f[5]) : .type1 else { return bad("line \(n): a bad range") }
                report = ExploreReport(seed: seed, runs: runs, ops: ops, backend: f[4], result: ExploreRun(), container: kind)
            case "counts" where (6...8).contains(f.count) && report != nil:
                guard let a = Int(f[1]), let b = Int(f[2]), let c = Int(f[3]), let d = Int(f[4]), let t = Double(f[5]),
                      let h = f.count >= 7 ? Int(f[6]) : 0, let j = f.count == 8 ? Int(f[7]) : 1 else {
                    return bad("line \(n): bad counts")
                }
                report!.result.sequences = a; report!.result.operations = b; report!.result.findings = c
                report!.result.notRunOnKernel = d; report!.result.seconds = t; report!.result.hung = h
                report!.jobs = j
            case "not-run" where f.count == 3 && report != nil:
                guard let h = KernelHazard(rawValue: f[1]), let count = Int(f[2]), count >= 0 else { return bad("line \(n): a bad not-run count") }
                report!.result.notRunByHazard[h] = count
            case "shrunk" where f.count >= 7 && report != nil:
                guard let seed = UInt64(f[1]), let tried = Int(f[2]), let statements = Int(f[3]), let line = Int(f[6]) else {
                    return bad("line \(n): a bad finding")
                }
                let finding: Finding
                switch (f[5], f.count) {
                case ("property", 9): finding = .property(Violation(property: f[7], line: line, detail: f[8]))
                case ("disagreement", 8...): finding = .disagreement(line: line, statement: f[7], answers: Array(f[8...]))
                case ("error", 8): finding = .error(line: line, message: f[7])
                default: return bad("line \(n): an unknown finding '\(f[5])'")
                }
                report!.result.shrunk.append(ExploreRun.Shrunk(seed: seed, finding: finding, tried: tried, statements: statements, fixture: f[4]))
            case "END" where report != nil && !ended: ended = true
            default: return bad("line \(n): unexpected '\(f[0])'")
            }
        }
        guard var report, ended else { return bad("it is incomplete") }
        report.result.withKernel = report.backend == "both"
        return .success(report)
    }

    /// Several reports of one exploration (same operations per sequence,
    /// same backend, seed ranges that do not overlap) as one.
    public static func merge(_ reports: [ExploreReport]) -> Result<ExploreReport, LaneError> {
        guard let first = reports.first else { return .failure(LaneError("nothing to merge")) }
        for r in reports.dropFirst() where r.ops != first.ops || r.backend != first.backend || r.container != first.container {
            return .failure(LaneError("the reports differ in --ops, --backend or --container (\(first.ops) on \(first.backend) \(first.container), \(r.ops) on \(r.backend) \(r.container))"))
        }
        let sorted = reports.sorted { $0.seed < $1.seed }
        // Sorted, so b starts at or after a: they overlap when b starts
        // within a's runs (no `a.seed + a.runs`, which wraps at 2^64).
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.runs > 0 && b.seed - a.seed < UInt64(a.runs) {
            return .failure(LaneError("seed ranges overlap: \(a.seed)+\(a.runs) and \(b.seed)+\(b.runs)"))
        }
        let low = sorted[0].seed
        var runs = 0
        for r in sorted {
            let (sum, overflow) = runs.addingReportingOverflow(r.runs)
            if overflow { return .failure(LaneError("the reports' runs add up past \(Int.max)")) }
            runs = sum
        }
        return .success(ExploreReport(seed: low, runs: runs, ops: first.ops, backend: first.backend,
                                      result: ExploreShards.merge(sorted.map(\.result)), container: first.container))
    }

    /// The seed ranges of `reports` as `A-B` words, joined (gaps show).
    public static func coverage(_ reports: [ExploreReport]) -> String {
        var ranges: [(UInt64, UInt64)] = []
        for r in reports.sorted(by: { $0.seed < $1.seed }) where r.runs > 0 {
            let end = r.seed &+ UInt64(r.runs) &- 1
            if let last = ranges.last, last.1 &+ 1 == r.seed { ranges[ranges.count - 1].1 = end } else { ranges.append((r.seed, end)) }
        }
        return ranges.map { "\($0.0)-\($0.1)" }.joined(separator: ", ")
    }
}

/// The lines `vfio-sim explore` prints for an exploration, made from its
/// result, so the lane prints them from a report as the run printed them.
extension ExploreRun {
    /// `explored N sequences, M operations on the model: F with findings`
    /// (`on the model (container iommufd)` for `--container iommufd`).
    public func summaryLine(backend: String, container: ContainerKind = .type1) -> String {
        let on = backend == "both" ? "model and kernel" : "the model"
        let what = container == .iommufd ? "\(on) (container iommufd)" : on
        var line = "explored \(sequences) sequences, \(operations) operations on \(what): \(findings) with findings"
        if hung > 0 { line += " (\(hung) end in a predicted hang: a hazard, not a finding)" }
        if notRunOnKernel > 0 {
            let known = notRunByHazard.values.reduce(0, +)
            let why = known == notRunOnKernel
                ? KernelHazard.allCases.compactMap { h in notRunByHazard[h].map { "\($0) \(h.counted)" } }.joined(separator: ", ")
                : "they would hang it, leave hugepages pinned, or overlap mappings in the IOMMU"
            line += " (\(notRunOnKernel) not run on the kernel: \(why))"
        }
        return line
    }

    /// `rate: 1234 sequences/s, 49000 operations/s (2 jobs, 0.81 s)`.
    public func rateLine(jobs: Int) -> String {
        let t = max(seconds, 1e-9)
        func rate(_ n: Int) -> String { String(Int((Double(n) / t).rounded())) }
        let centis = Int((seconds * 100).rounded())
        return "rate: \(rate(sequences)) sequences/s, \(rate(operations)) operations/s (\(jobs) job\(jobs == 1 ? "" : "s"), \(centis / 100).\(centis % 100 < 10 ? "0" : "")\(centis % 100) s)"
    }
}

extension ExploreRun.Shrunk {
    /// The finding and its shrunk trace, indented, as `explore` prints them
    /// (without the `saved PATH` line of `--out`).
    public var lines: [String] {
        ["seed \(seed): \(finding)", "  shrunk with \(tried) replays to \(statements) statements:"]
            + fixture.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }
    }
}

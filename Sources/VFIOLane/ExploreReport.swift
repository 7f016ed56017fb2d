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
///     counts  SEQUENCES  OPERATIONS  FINDINGS  NOT-RUN-ON-KERNEL  SECONDS  [HUNG]
///
/// (HUNG, the sequences that end in a predicted hang, may be missing in
/// reports of older versions: 0.)
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
        out += rec(["counts", String(r.sequences), String(r.operations), String(r.findings), String(r.notRunOnKernel), String(r.seconds), String(r.hung)])
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
            case "counts" where (f.count == 6 || f.count == 7) && report != nil:
                guard let a = Int(f[1]), let b = Int(f[2]), let c = Int(f[3]), let d = Int(f[4]), let t = Double(f[5]),
                      let h = f.count == 7 ? Int(f[6]) : 0 else {
                    return bad("line \(n): bad counts")
                }
                report!.result.sequences = a; report!.result.operations = b; report!.result.findings = c
                report!.result.notRunOnKernel = d; report!.result.seconds = t; report!.result.hung = h
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

import VFIOCore
import VFIOKernel
import VFIOReplay

/// The reports the lane's guest writes for the host, beside the text it
/// prints for people: one record per line, tab-separated fields escaped as
/// in `ReportCodec`, a header naming the kind and version, `END` last (a
/// report cut short by a dying guest is refused, not half read). The host
/// (`vfio-sim lane-summary`) computes the lane's lines from these, so no
/// script parses a sentence.
enum LaneRecords {
    static func record(_ fields: [String]) -> String {
        fields.map(ReportCodec.escape).joined(separator: "\t") + "\n"
    }

    /// The records of `text` between its header and `END`; nil when the
    /// header is not `header` or `END` is missing. What follows `END` is
    /// not the report's (the host's own log may land after it, as in
    /// faults.sh, which keeps standard error in the same file).
    static func records(_ text: Substring, header: String) -> [[String]]? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)[...]
        guard lines.popFirst() == Substring(header), let end = lines.firstIndex(of: "END") else { return nil }
        return lines[..<end].map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(ReportCodec.unescape) }
    }
}

/// What `vfio-sim replay --backend both --lane-report FILE` writes: the
/// kernel lane's count of the fixtures and every line of its text report
/// with the line's kind.
///
///     vfio-sim lane fixtures 1
///     kernel   RELEASE  IOMMU
///     counts   COMPARED  AGREED  UNOBSERVABLE  FILES  ERRORS  LEAKS  SETUP-DIFFERENCES  TRACE-ANSWER-MISSES
///     skipped  FILE  REASON
///     not-applicable  FILE  REASON
///     entry    KIND  TEXT           (KernelLane.Entry.Kind's raw value)
///     kernel-log  TEXT              (a line the model predicts in dmesg)
///     END
public struct LaneFixtureReport: Sendable {
    public var kernel: String
    public var iommu: String
    public var summary: KernelLane.Summary
    public var entries: [KernelLane.Entry]
    /// Each line the model says the kernel logged, once per answer.
    public var kernelLog: [String]

    static let header = "vfio-sim lane fixtures 1"

    public init(kernel: String, iommu: String, summary: KernelLane.Summary, entries: [KernelLane.Entry], kernelLog: [String]) {
        self.kernel = kernel
        self.iommu = iommu
        self.summary = summary
        self.entries = entries
        self.kernelLog = kernelLog
    }

    /// The report of a both-backend run, as `KernelLane.report` counts it.
    public init(_ reports: [FileReport], skipped: [(file: String, reason: String)], notApplicable: [(file: String, reason: String)] = [],
                kernel: String, iommu: String, verbose: Bool) {
        let (entries, summary) = KernelLane.entries(reports, skipped: skipped, notApplicable: notApplicable, verbose: verbose)
        let logs = reports.flatMap { $0.outcomes.flatMap { $0.got.compactMap(\.kernelLog) } }
        self.init(kernel: kernel, iommu: iommu, summary: summary, entries: entries, kernelLog: logs)
    }

    public func encode() -> String {
        let s = summary
        var out = Self.header + "\n"
        out += LaneRecords.record(["kernel", kernel, iommu])
        out += LaneRecords.record(["counts"] + [s.compared, s.agreed, s.unobservable, s.files, s.errors, s.leaks,
                                                s.setupDifferences, s.traceAnswerMisses].map(String.init))
        for (file, reason) in s.skipped { out += LaneRecords.record(["skipped", file, reason]) }
        for (file, reason) in s.notApplicable { out += LaneRecords.record(["not-applicable", file, reason]) }
        for e in entries { out += LaneRecords.record(["entry", e.kind.rawValue, e.text]) }
        for l in kernelLog { out += LaneRecords.record(["kernel-log", l]) }
        return out + "END\n"
    }

    public static func decode(_ text: Substring) -> LaneFixtureReport? {
        guard let records = LaneRecords.records(text, header: header) else { return nil }
        var r = LaneFixtureReport(kernel: "", iommu: "", summary: KernelLane.Summary(), entries: [], kernelLog: [])
        var sawCounts = false
        for f in records {
            switch (f[0], f.count) {
            case ("kernel", 3): r.kernel = f[1]; r.iommu = f[2]
            case ("counts", 9):
                let n = f.dropFirst().compactMap { Int($0) }
                guard n.count == 8 else { return nil }
                (r.summary.compared, r.summary.agreed, r.summary.unobservable, r.summary.files) = (n[0], n[1], n[2], n[3])
                (r.summary.errors, r.summary.leaks, r.summary.setupDifferences, r.summary.traceAnswerMisses) = (n[4], n[5], n[6], n[7])
                sawCounts = true
            case ("skipped", 3): r.summary.skipped.append((f[1], f[2]))
            case ("not-applicable", 3): r.summary.notApplicable.append((f[1], f[2]))
            case ("entry", 3):
                guard let kind = KernelLane.Entry.Kind(rawValue: f[1]) else { return nil }
                r.entries.append(KernelLane.Entry(kind, f[2]))
            case ("kernel-log", 2): r.kernelLog.append(f[1])
            default: return nil
            }
        }
        return sawCounts ? r : nil
    }

    /// The summary line, with `iommu` for the report's own IOMMU word.
    public func summaryLine(iommu: String? = nil) -> String {
        KernelLane.summaryLine(summary, kernel: kernel, iommu: iommu ?? self.iommu)
    }
}

/// What `vfio-sim host --probe --report FILE` writes: how many of the
/// guest's groups' presets agree with what was measured, and the prologue's
/// lines that show a difference.
///
///     vfio-sim host report 1
///     presets  AGREEING  CHECKED     (missing when no preset was checked)
///     differs  LINE
///     END
public struct HostProbeReport: Sendable, Equatable {
    public var presets: (agreeing: Int, checked: Int)?
    public var differing: [String]

    static let header = "vfio-sim host report 1"

    public init(presets: (agreeing: Int, checked: Int)?, differing: [String]) {
        self.presets = presets
        self.differing = differing
    }

    public init(_ facts: HostFacts) {
        let a = facts.presetAgreement
        self.init(presets: a.map { ($0.agreeing, $0.checked) }, differing: a?.differingLines ?? [])
    }

    public static func == (a: HostProbeReport, b: HostProbeReport) -> Bool {
        a.presets?.agreeing == b.presets?.agreeing && a.presets?.checked == b.presets?.checked && a.differing == b.differing
    }

    public func encode() -> String {
        var out = Self.header + "\n"
        if let p = presets { out += LaneRecords.record(["presets", String(p.agreeing), String(p.checked)]) }
        for l in differing { out += LaneRecords.record(["differs", l]) }
        return out + "END\n"
    }

    public static func decode(_ text: Substring) -> HostProbeReport? {
        guard let records = LaneRecords.records(text, header: header) else { return nil }
        var r = HostProbeReport(presets: nil, differing: [])
        for f in records {
            switch (f[0], f.count) {
            case ("presets", 3):
                guard let a = Int(f[1]), let c = Int(f[2]) else { return nil }
                r.presets = (a, c)
            case ("differs", 2): r.differing.append(f[1])
            default: return nil
            }
        }
        return r
    }
}

/// What `vfio-sim faults --report FILE` writes: the kills, by what they
/// left behind.
///
///     vfio-sim faults report 1
///     counts  SURVIVED  KILLS
///     kernel  LINE      (the per-fault counts as `faults` prints them)
///     summary LINE      (`faults: K/N kills survived ...`)
///     left    KILL      (a kill that left something, as `faults` describes it)
///     END
public struct FaultReport: Sendable, Equatable {
    public var survived: Int
    public var kills: Int
    public var kernelLine: String
    public var summary: String
    public var left: [String]

    static let header = "vfio-sim faults report 1"

    public init(survived: Int, kills: Int, kernelLine: String, summary: String, left: [String]) {
        self.survived = survived
        self.kills = kills
        self.kernelLine = kernelLine
        self.summary = summary
        self.left = left
    }

    public func encode() -> String {
        var out = Self.header + "\n"
        out += LaneRecords.record(["counts", String(survived), String(kills)])
        out += LaneRecords.record(["kernel", kernelLine])
        out += LaneRecords.record(["summary", summary])
        for l in left { out += LaneRecords.record(["left", l]) }
        return out + "END\n"
    }

    public static func decode(_ text: Substring) -> FaultReport? {
        guard let records = LaneRecords.records(text, header: header) else { return nil }
        var r = FaultReport(survived: -1, kills: -1, kernelLine: "", summary: "", left: [])
        for f in records {
            switch (f[0], f.count) {
            case ("counts", 3):
                guard let s = Int(f[1]), let k = Int(f[2]) else { return nil }
                (r.survived, r.kills) = (s, k)
            case ("kernel", 2): r.kernelLine = f[1]
            case ("summary", 2): r.summary = f[1]
            case ("left", 2): r.left.append(f[1])
            default: return nil
            }
        }
        return r.kills >= 0 ? r : nil
    }
}

/// What `vfio-sim replay --lane-report FILE` writes on the model: the text
/// report's lines, its closing summary apart, so the recording lane prints
/// the summary without looking for it.
///
///     vfio-sim replay tally 1
///     counts   FILES OPERATIONS PASSED FAILED ERRORS
///     summary  LINE      (`N files, M operations`, then `P passed, F failed`)
///     line     TEXT      (each line before the summary)
///     END
public struct ReplayTally: Sendable, Equatable {
    /// The replay's numbers (`Totals`): operations, those whose written
    /// answer the model gave (passed) or not (failed), and errors.
    public struct Counts: Sendable, Equatable {
        public var files = 0, operations = 0, passed = 0, failed = 0, errors = 0
        public init(files: Int = 0, operations: Int = 0, passed: Int = 0, failed: Int = 0, errors: Int = 0) {
            (self.files, self.operations, self.passed, self.failed, self.errors) = (files, operations, passed, failed, errors)
        }
    }
    public var counts: Counts
    public var summary: [String]
    public var lines: [String]

    static let header = "vfio-sim replay tally 1"

    public init(counts: Counts = Counts(), summary: [String], lines: [String]) {
        self.counts = counts
        self.summary = summary
        self.lines = lines
    }

    /// The tally of a text report whose last lines are `summary`.
    public init(counts: Counts = Counts(), text: String, summary: String) {
        let body = text.hasSuffix(summary) ? String(text.dropLast(summary.count)) : text
        self.init(counts: counts, summary: summary.split(separator: "\n").map(String.init), lines: body.split(separator: "\n").map(String.init))
    }

    public func encode() -> String {
        var out = Self.header + "\n"
        let c = counts
        out += LaneRecords.record(["counts"] + [c.files, c.operations, c.passed, c.failed, c.errors].map { String($0) })
        for l in summary { out += LaneRecords.record(["summary", l]) }
        for l in lines { out += LaneRecords.record(["line", l]) }
        return out + "END\n"
    }

    public static func decode(_ text: Substring) -> ReplayTally? {
        guard let records = LaneRecords.records(text, header: header) else { return nil }
        var r = ReplayTally(summary: [], lines: [])
        for f in records {
            switch (f[0], f.count) {
            case ("counts", 6):
                let n = f.dropFirst().compactMap { Int($0) }
                guard n.count == 5 else { return nil }
                r.counts = Counts(files: n[0], operations: n[1], passed: n[2], failed: n[3], errors: n[4])
            case ("summary", 2): r.summary.append(f[1])
            case ("line", 2): r.lines.append(f[1])
            default: return nil
            }
        }
        return r
    }
}

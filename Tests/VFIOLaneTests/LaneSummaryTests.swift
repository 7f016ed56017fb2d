import Testing
import VFIOCore
import VFIOExplore
@testable import VFIOLane
import VFIOModel
import VFIOReplay
import VFIOTrace

/// The kernel lane's lines come from the reports its guest writes, never
/// from the text it prints for people (issue 26): each test builds a boot's
/// report as the guest would, and reads the lines `lane.sh` prints.
@Suite("vfio-sim lane-summary: the lane's lines from its guest's reports")
struct LaneSummaryTests {
    static let boot = LaneSummary.Boot(config: "6.12-intel48", iommu: "intel-iommu-48", accel: "tcg", explorations: 1,
                                       reportPath: "/cache/logs/lane-6.12-intel48.txt")

    /// A fixture report of a clean run: two operations agree, one file
    /// skipped, a setup note and a note for another kernel's answer, and
    /// one line the model says the kernel logs.
    static func fixtures(entries extra: [KernelLane.Entry] = [], kernelLog: [String] = ["vfio: memlock warning"]) -> LaneFixtureReport {
        var s = KernelLane.Summary()
        (s.compared, s.agreed, s.unobservable, s.files, s.setupDifferences, s.traceAnswerMisses) = (2, 2, 1, 3, 1, 1)
        s.skipped = [("/files/pinned-5.10.trace", "needs kernel 5.10 (this is 6.12)")]
        let entries = [KernelLane.Entry(.skipped, "/files/pinned-5.10.trace: skipped: needs kernel 5.10 (this is 6.12)"),
                       KernelLane.Entry(.setup, "/files/a.trace:4: note: setup: trace domain d0 coherent=yes, kernel has coherent=no"),
                       KernelLane.Entry(.note, "/files/b.trace:5: note: unmap iova=0x0 size=4K: trace expects EINVAL, kernel and model gave ok"),
                       KernelLane.Entry(.kernelLog, "/files/b.trace:3: kernel log: vfio: memlock warning")] + extra
        return LaneFixtureReport(kernel: "6.12.118+deb13-amd64", iommu: "intel-iommu", summary: s, entries: entries, kernelLog: kernelLog)
    }

    static func explore(findings: Int = 0) -> String {
        var run = ExploreRun()
        (run.sequences, run.operations, run.findings, run.seconds) = (100, 2953, findings, 6.76)
        var r = ExploreReport(seed: 1, runs: 100, ops: 30, backend: "both", result: run)
        r.jobs = 2
        return r.encode()
    }

    static func hostReplay() -> LaneFixtureReport {
        var s = KernelLane.Summary()
        (s.compared, s.agreed, s.files) = (10, 10, 1)
        return LaneFixtureReport(kernel: "6.12.118+deb13-amd64", iommu: "intel-iommu", summary: s, entries: [], kernelLog: [])
    }

    /// The guest's output: text for people, then each report after its `== NAME` line.
    static func stream(fixtures: LaneFixtureReport? = fixtures(), dmesg: String = "[    3.1] vfio: memlock warning\n",
                       explore: String? = explore(), host: HostProbeReport = HostProbeReport(presets: (4, 4), differing: []),
                       hostReplay: LaneFixtureReport? = hostReplay()) -> String {
        var out = "kernel 6.12.118+deb13-amd64 intel-iommu: 2/2 operations agree (text for people)\n"
        if let fixtures { out += "== fixtures report\n" + fixtures.encode() }
        out += "== dmesg\n" + dmesg
        if let explore { out += "== explore\nexplored ... (text)\n== explore report\n" + explore }
        out += "== host\n# presets: text\n== host report\n" + host.encode()
        out += "== host replay\n"
        if let hostReplay { out += "== host replay report\n" + hostReplay.encode() }
        return out
    }

    @Test("a clean boot: the summary line with the configuration's IOMMU word, presets and accel, then the kernel log, exploration, host and notes lines")
    func cleanBoot() {
        let s = LaneSummary(report: Self.stream(), boot: Self.boot)
        #expect(s.lines == [
            "kernel 6.12.118+deb13-amd64 intel-iommu-48: 2/2 operations agree, 1 not observable, 1 of 3 files skipped, presets: 4/4 agree, accel tcg",
            "  kernel log: 1/1 predicted lines found",
            "  explored 100 sequences, 2953 operations on model and kernel: 0 with findings",
            "    rate: 15 sequences/s, 437 operations/s (2 jobs, 6.76 s)",
            "  host prologue + body: 10/10 operations agree, 0 not observable, 0 of 1 files skipped, 0 disagreements or setup differences",
            "  (1 fixtures asked for another IOMMU setup, 1 written answers assume another IOMMU, kernel or physical layout: see /cache/logs/lane-6.12-intel48.txt)",
        ])
        #expect(s.passed)
    }

    @Test("every disagreement, error and kernel leak is listed under the summary; a disagreement fails the configuration, a leak alone does not")
    func disagreement() {
        var bad = Self.fixtures(entries: [KernelLane.Entry(.disagree, "/files/c.trace:7: disagree: map ...: kernel EINVAL, model ok"),
                                          KernelLane.Entry(.leak, "/files/d.trace: note: leak: kernel still charged 4096 bytes")])
        bad.summary.compared += 1
        bad.summary.leaks = 1
        let s = LaneSummary(report: Self.stream(fixtures: bad), boot: Self.boot)
        #expect(s.lines[0].hasPrefix("kernel 6.12.118+deb13-amd64 intel-iommu-48: 2/3 operations agree, 1 not observable, 1 of 3 files skipped, 1 kernel leaks, presets"))
        #expect(s.lines[1] == "  /files/c.trace:7: disagree: map ...: kernel EINVAL, model ok")
        #expect(s.lines[2] == "  /files/d.trace: note: leak: kernel still charged 4096 bytes")
        #expect(!s.passed)
        var leak = Self.fixtures(entries: [KernelLane.Entry(.leak, "/files/d.trace: note: leak: kernel still charged 4096 bytes")])
        leak.summary.leaks = 1
        #expect(LaneSummary(report: Self.stream(fixtures: leak), boot: Self.boot).passed)
    }

    @Test("a predicted kernel log line dmesg has fewer times than predicted is named, and fails")
    func kernelLogMissing() {
        let twice = Self.fixtures(kernelLog: ["vfio: memlock warning", "vfio: memlock warning"])
        let s = LaneSummary(report: Self.stream(fixtures: twice), boot: Self.boot)
        #expect(s.lines.contains("  kernel log: 0/2 predicted lines found"))
        #expect(s.lines.contains("    missing (1 of 2 in dmesg): vfio: memlock warning"))
        #expect(!s.passed)
    }

    @Test("an exploration with a finding, or one that wrote no report, fails")
    func explorations() {
        let found = LaneSummary(report: Self.stream(explore: Self.explore(findings: 1)), boot: Self.boot)
        #expect(found.lines.contains("  (0 of 1 explorations ran without a finding)"))
        #expect(!found.passed)
        let none = LaneSummary(report: Self.stream(explore: nil), boot: Self.boot)
        #expect(none.lines.contains("  exploration: no result"))
        #expect(!none.passed)
        var noExploration = Self.boot
        noExploration.explorations = 0
        #expect(LaneSummary(report: Self.stream(explore: nil), boot: noExploration).passed)
    }

    @Test("a preset that differs from what was measured fails, with the lines that show it")
    func presetDiffers() {
        let host = HostProbeReport(presets: (3, 4), differing: ["domain g5 iommu=intel pgsizes=4K  # preset intel differs", "# presets: 3/4 agree with what was measured (g5 differs)"])
        let s = LaneSummary(report: Self.stream(host: host), boot: Self.boot)
        #expect(s.lines[0].hasSuffix(", presets: 3/4 agree, accel tcg"))
        #expect(s.lines.contains("    domain g5 iommu=intel pgsizes=4K  # preset intel differs"))
        #expect(!s.passed)
    }

    @Test("a boot whose fixture report is missing or cut short has no result, and the report's tail is shown")
    func noResult() {
        let cut = "== fixtures report\n" + String(Self.fixtures().encode().dropLast("END\n".count)) + "== dmesg\nlast words\n"
        for report in [Self.stream(fixtures: nil), cut] {
            var boot = Self.boot
            boot.payloadExit = 124
            let s = LaneSummary(report: report, boot: boot)
            #expect(s.lines.first == "6.12-intel48: no result (payload exit 124)")
            #expect(s.lines.last == "  END" || s.lines.last == "  last words")
            #expect(!s.passed)
        }
    }

    @Test("a payload that exited neither 0 nor 1 says so under its lines, with run-in-guest.sh's standard error")
    func payloadExit() {
        var boot = Self.boot
        boot.payloadExit = 125
        boot.stderr = "kernel-lane: 6.12-intel48: the guest died while the payload ran\n"
        let s = LaneSummary(report: Self.stream(), boot: boot)
        #expect(Array(s.lines.suffix(2)) == ["  payload exit 125", "  kernel-lane: 6.12-intel48: the guest died while the payload ran"])
        #expect(!s.passed)
    }

    @Test("the fixture report of a real both-backend run reads back as written")
    func fixtureRoundTrip() throws {
        let trace = try parseTrace("""
            memory vaddr=0x7f0000000000 size=4M page=2M
            map iova=0x200000 vaddr=0x7f0000000000 size=4M prot=rw => ok
            unmap iova=0x200000 size=2M
            """, file: "t.trace").get()
        let kernel = ModelBackend(profile: KernelProfile(KernelVersion(6, 12)), pinned: true, container: .iommufd, pinsContainer: true, label: "kernel")
        let model = ModelBackend(profile: KernelProfile(KernelVersion(6, 12)), pinned: true)
        let report = Replayer(backends: [kernel, model]).run(trace)
        let written = LaneFixtureReport([report], skipped: [("s.trace", "needs a BAR\tand a tab")], kernel: "6.12", iommu: "intel-iommu", verbose: false)
        let read = try #require(LaneFixtureReport.decode(Substring(written.encode())))
        #expect(read.entries == written.entries)
        #expect(read.entries.contains { $0.kind == .disagree })
        #expect(read.summaryLine() == written.summaryLine())
        #expect(read.summary.skipped.map(\.reason) == ["needs a BAR\tand a tab"])
        #expect(read.summaryLine() + "\n" == String(KernelLane.report([report], skipped: [("s.trace", "needs a BAR\tand a tab")],
                                                                      kernel: "6.12", iommu: "intel-iommu").text.split(separator: "\n").last!) + "\n")
    }

    @Test("skipped fixtures: once each; no list when every configuration skipped it, [ran on ...] when most did, else where")
    func skippedSummary() {
        let lines = LaneSkipped.lines(Self.fixtures())
        #expect(lines == ["pinned-5.10.trace: needs kernel 5.10"])
        let configs = ["5.10-intel", "6.12-intel", "6.12-amd"]
        let skips: [(line: String, config: String)] = [
            ("all.trace: needs a BAR", "5.10-intel"), ("all.trace: needs a BAR", "6.12-intel"), ("all.trace: needs a BAR", "6.12-amd"),
            ("most.trace: needs kernel 5.10", "6.12-intel"), ("most.trace: needs kernel 5.10", "6.12-amd"),
            ("one.trace: needs iommufd", "5.10-intel"),
        ]
        #expect(LaneSkipped.summary(skips, configs: configs) == [
            "  all.trace: needs a BAR", "  most.trace: needs kernel 5.10 [ran on 5.10-intel]", "  one.trace: needs iommufd [5.10-intel]",
        ])
    }

    @Test("the fault lane's lines: the summary, each kill that left something, the per-kind counts; a kill that left something fails")
    func faults() {
        let report = FaultReport(survived: 55, kills: 56, kernelLine: "kernel 6.12: 7/8 SIGKILL to the replay",
                                 summary: "faults: 55/56 kills survived (entry limit restored, group reusable, nothing pinned)",
                                 left: ["/files/a.trace: SIGKILL to the replay after ioctl 3: group busy"])
        // faults.sh keeps the host's standard error in the same file: after END.
        let s = LaneFaultSummary(report: "text\n== faults report\n" + report.encode() + "kernel-lane: 6.12-intel: exit 1 after 9.1s\n",
                                 config: "6.12-intel", payloadExit: 1)
        #expect(s.lines == ["6.12-intel: faults: 55/56 kills survived (entry limit restored, group reusable, nothing pinned)",
                            "    left something: /files/a.trace: SIGKILL to the replay after ioctl 3: group busy",
                            "  kernel 6.12: 7/8 SIGKILL to the replay"])
        #expect(!s.passed)
        #expect(FaultReport.decode(Substring(report.encode())) == report)
        #expect(LaneFaultSummary(report: "the guest died\n", config: "6.12-intel", payloadExit: 125).lines.first == "6.12-intel: faults: no result (exit 125)")
    }

    @Test("the guest's output is cut at its == lines; the text before the first is the fixtures section")
    func sections() {
        let s = LaneStream("a\n== explore report\nb\nc\n== explore report\nd")
        #expect(s.sections.map(\.name) == ["fixtures", "explore report", "explore report"])
        #expect(s.all("explore report") == ["b\nc\n", "d"])
        #expect(s.first("fixtures") == "a\n")
    }

    @Test("a model replay's tally keeps the text report's closing summary apart from its lines, and reads back as written")
    func replayTally() throws {
        let trace = try parseTrace("""
            memory vaddr=0x7f0000000000 size=4M page=2M
            map iova=0x200000 vaddr=0x7f0000000000 size=4M prot=rw => EINVAL
            """, file: "t.trace").get()
        let run = ReplayRun.model([trace], profile: KernelProfile(KernelVersion(6, 12)))
        let text = textReport(run.reports)
        let tally = ReplayTally(text: text, summary: summary(run.reports))
        #expect(tally.summary.last == "0 passed, 1 failed")
        #expect(tally.lines.first?.hasPrefix("t.trace:2: map ") == true)
        // Nothing is lost or doubled: the lines, then the summary, are the text report.
        #expect((tally.lines + tally.summary).map { $0 + "\n" }.joined() == text)
        #expect(ReplayTally.decode(Substring(tally.encode())) == tally)
    }

    @Test("the sections JSON holds the lines in order, the explorations' apart, so merge.sh finds them without reading a line")
    func sectionsJSON() throws {
        let s = LaneSummary(report: Self.stream(), boot: Self.boot)
        #expect(s.explorationLines == 2..<4)
        #expect(s.lines[2].hasPrefix("  explored ") && s.lines[3].hasPrefix("    rate: "))
        // The exploration's lines sit between the "exploration" and "after" keys.
        let json = s.sectionsJSON
        let exploration = try #require(json.firstRange(of: "\"exploration\""))
        let after = try #require(json.firstRange(of: "\"after\""))
        let explored = try #require(json.firstRange(of: "explored 100 sequences"))
        let host = try #require(json.firstRange(of: "host prologue + body"))
        #expect(exploration.upperBound < explored.lowerBound && explored.upperBound < after.lowerBound && after.upperBound < host.lowerBound)
        let none = LaneSummary(report: Self.stream(fixtures: nil), boot: Self.boot)
        #expect(none.explorationLines == nil)
    }
}

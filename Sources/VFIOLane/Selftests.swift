import VFIOCore
import VFIOModel

/// One case of a kernel selftest program, as the kselftest harness's TAP
/// output reported it (`ok 3 FIXTURE.VARIANT.TEST`, `not ok 4 …`,
/// `ok 5 … # SKIP reason`).
public struct SelftestCase: Sendable, Equatable {
    public enum Result: Sendable, Equatable {
        case pass
        case fail
        /// The selftest's own reason.
        case skip(String)
    }
    public var program: String
    /// `FIXTURE.VARIANT.TEST` (`FIXTURE.TEST` without variants).
    public var name: String
    public var result: Result
    /// The harness's comment lines for the case that say what went wrong
    /// (an assertion, `Test failed`, a timeout), for a failed case.
    public var detail: [String]

    public init(program: String, name: String, result: Result, detail: [String] = []) {
        (self.program, self.name, self.result, self.detail) = (program, name, result, detail)
    }

    /// The variant: the middle of three dotted parts, nil with two.
    public var variant: Substring? {
        let parts = name.split(separator: ".")
        return parts.count == 3 ? parts[1] : nil
    }
    /// The test: the last dotted part.
    public var test: Substring { name.split(separator: ".").last ?? Substring(name) }
}

/// Reads the TAP the kselftest harness prints (`tools/testing/selftests/
/// kselftest_harness.h`): one result line per case, comment lines (`#`)
/// between. Other lines (the recorder's notes on the same stream) are left.
public enum SelftestTAP {
    public static func cases(program: String, _ text: Substring) -> [SelftestCase] {
        var out: [SelftestCase] = []
        var comments: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("#") {
                // A case starts at its `#  RUN` line: what came before is another's.
                if line.hasPrefix("#  RUN") { comments = [] }
                comments.append(line)
                continue
            }
            // A program that skips as a whole plans no case: `1..0 # SKIP reason`.
            if line.hasPrefix("1..0"), let hash = line.firstRange(of: "# SKIP") {
                let why = line[hash.upperBound...].drop(while: { $0 == " " })
                out.append(SelftestCase(program: program, name: program, result: .skip(String(why).trimmingNewline)))
                continue
            }
            let failed = line.hasPrefix("not ok ")
            guard failed || line.hasPrefix("ok ") else { continue }
            var rest = line.dropFirst(failed ? 7 : 3).drop(while: { $0.isNumber }).drop(while: { $0 == " " })
            var result: SelftestCase.Result = failed ? .fail : .pass
            if let hash = rest.firstRange(of: " # ") {
                let directive = rest[hash.upperBound...]
                rest = rest[..<hash.lowerBound]
                if directive.uppercased().hasPrefix("SKIP") {
                    result = .skip(String(directive.dropFirst(4).drop(while: { $0 == " " })).trimmingNewline)
                }
            }
            let name = String(rest)
            // Lines about the failure: the harness's own verdict and the
            // assertion, not the test's progress prints.
            let detail = failed ? comments.filter { c in
                c.contains("Expected") || c.contains("failed") || c.contains("Failed") || c.contains("terminated")
                    || c.contains("timeout") || c.contains("ASSERT") || c.contains("error")
            }.suffix(3).map { String($0) } : []
            out.append(SelftestCase(program: program, name: name, result: result, detail: detail))
            comments = []
        }
        return out
    }
}

private extension String {
    var trimmingNewline: String { hasSuffix("\r") ? String(dropLast()) : self }
}

/// What the guest found about the kernel it runs, for which selftests
/// apply: `== selftest facts` says `release=R iommufd=yes|no cdev=yes|no`.
public struct SelftestMachine: Sendable, Equatable {
    public var release: KernelVersion
    /// `/dev/iommu` exists (CONFIG_IOMMUFD).
    public var iommufd: Bool
    /// `/dev/vfio/devices` exists (CONFIG_VFIO_DEVICE_CDEV): a device can
    /// be bound to iommufd directly.
    public var cdev: Bool
    /// The IOMMU's aperture ends at 2^64-1 (the model's preset for the
    /// configuration's IOMMU on this release), so the selftests' map-limit
    /// cases map the last page of the address space.
    public var apertureReachesTop: Bool

    public init(release: KernelVersion, iommufd: Bool, cdev: Bool, apertureReachesTop: Bool = false) {
        (self.release, self.iommufd, self.cdev, self.apertureReachesTop) = (release, iommufd, cdev, apertureReachesTop)
    }

    /// From the guest's facts line and the configuration's IOMMU word
    /// (`intel-iommu`, `intel-iommu-48`, `amd-iommu`, `virtio-iommu`).
    public init?(facts: Substring, iommu: String = "") {
        var words: [Substring: Substring] = [:]
        for w in facts.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let eq = w.firstIndex(of: "=") else { continue }
            words[w[..<eq]] = w[w.index(after: eq)...]
        }
        guard let r = words["release"].flatMap({ KernelVersion(parsing: String($0)) }) else { return nil }
        let presets: [String: IOMMUPreset] = ["intel-iommu": .intel, "intel-iommu-48": .intel48, "amd-iommu": .amd, "virtio-iommu": .virtio]
        let top = presets[iommu].map { $0.values(for: r).aperture.last == .max } ?? false
        self.init(release: r, iommufd: words["iommufd"] == "yes", cdev: words["cdev"] == "yes", apertureReachesTop: top)
    }
}

/// Which selftest cases apply to a machine. A case does not apply when
/// the kernel lacks what the case's IOMMU mode needs (the library's
/// `iommu_init` modes, `tools/testing/selftests/vfio/lib/iommu.c`), or
/// when it asserts a behaviour the kernel's release predates (the
/// selftests come from the newest source; the model's release rule says
/// when the behaviour came). Such a case still runs and is recorded: only
/// its pass or fail is not counted.
public enum SelftestScope {
    /// Programs whose cases all use the library's default mode, iommufd
    /// with the device bound through its cdev.
    static let defaultModePrograms: Set<String> = ["vfio_pci_device_test", "vfio_iommufd_setup_test"]

    /// Programs that need the default mode in `main`, before any case
    /// (`vfio_pci_driver_test` opens the device to look for a driver of its
    /// own; `vfio_iommufd_setup_test` looks up the device's cdev, which
    /// 5.10 has not): without it they end before printing a case.
    static let defaultModeMains: Set<String> = ["vfio_pci_driver_test", "vfio_iommufd_setup_test"]

    /// Cases asserting a behaviour that came with a release rule; `atTop`:
    /// only where the aperture ends at 2^64-1 (elsewhere the case maps
    /// below the top and asserts nothing the rule changed).
    static let releaseBound: [(program: String, test: String, atTop: Bool, asserts: String, rule: ReleaseRule)] = [
        ("vfio_dma_mapping_test", "unmap_all", false, "that VFIO_DMA_UNMAP_FLAG_ALL unmaps everything", .unmapAllAndVaddr),
        ("vfio_dma_mapping_test", "overflow", false, "EOVERFLOW for a range that wraps", .overflowSeries),
        ("vfio_dma_mapping_test", "unmap_range", true, "that a mapping ending at 2^64-1 unmaps whole", .overflowSeries),
        ("vfio_dma_mapping_test", "unmap_all", true, "that a mapping ending at 2^64-1 unmaps whole", .overflowSeries),
    ]

    static let noIommufd = "the kernel has no iommufd (/dev/iommu, CONFIG_IOMMUFD)"
    static let noCdev = "the kernel has no VFIO device cdev (/dev/vfio/devices, CONFIG_VFIO_DEVICE_CDEV)"

    /// Why `program` as a whole does not apply on `machine` (it prints no
    /// case there), nil when it does.
    public static func notApplicable(program: String, on machine: SelftestMachine) -> String? {
        guard defaultModeMains.contains(program), !(machine.iommufd && machine.cdev) else { return nil }
        return "needs iommufd mode before its cases: " + (machine.iommufd ? noCdev : noIommufd)
    }

    /// Why `c` does not apply on `machine`, nil when it does.
    public static func notApplicable(_ c: SelftestCase, on machine: SelftestMachine) -> String? {
        let mode: Substring
        if defaultModePrograms.contains(c.program) {
            mode = "iommufd"
        } else {
            mode = c.variant ?? ""
        }
        if mode.hasPrefix("iommufd_compat") {
            if !machine.iommufd { return "iommufd's type1 compatibility mode: " + noIommufd }
        } else if mode.hasPrefix("iommufd") {
            if !machine.iommufd { return "iommufd mode: " + noIommufd }
            if !machine.cdev { return "iommufd mode: " + noCdev }
        }
        for b in releaseBound where b.program == c.program && c.test == b.test && !b.rule.holds(in: machine.release)
                                    && (!b.atTop || machine.apertureReachesTop) {
            return "asserts \(b.asserts), which came with the \(b.rule.name) in \(b.rule.mainline)"
        }
        return nil
    }
}

/// The lane's line for the selftests of one boot:
///
///     selftests 6.18 intel-iommu: T/T tests pass on the kernel, A/A recorded operations agree on the model, S skipped, N not applicable
///
/// then each failed case, each skip with the selftest's reason, and the
/// cases that do not apply, by reason.
public struct SelftestSummary: Sendable {
    public var lines: [String] = []
    public var passed = true

    /// `programs`: each program's TAP and the tallies of its recordings
    /// replayed on the model (nil when the replay left none).
    public init(kernel: String, iommu: String, machine: SelftestMachine?,
                programs: [(name: String, tap: Substring, tallies: [ReplayTally?])]) {
        guard let machine else {
            passed = false
            lines = ["selftests \(kernel) \(iommu): no result (the guest reported no facts)"]
            return
        }
        var applicable: [SelftestCase] = [], skipped: [SelftestCase] = []
        var notApplicable: [(reason: String, names: [String])] = []
        var operations = 0, agreed = 0, missing = 0
        func notApplicableAdd(_ why: String, _ name: String) {
            if let i = notApplicable.firstIndex(where: { $0.reason == why }) { notApplicable[i].names.append(name) } else { notApplicable.append((why, [name])) }
        }
        for p in programs {
            let cases = SelftestTAP.cases(program: p.name, p.tap)
            if cases.isEmpty {
                if let why = SelftestScope.notApplicable(program: p.name, on: machine) { notApplicableAdd(why, p.name) } else { missing += 1 }
            }
            for c in cases {
                if let why = SelftestScope.notApplicable(c, on: machine) {
                    notApplicableAdd(why, c.name)
                } else if case .skip = c.result {
                    skipped.append(c)
                } else {
                    applicable.append(c)
                }
            }
            for t in p.tallies {
                guard let t else { missing += 1; continue }
                // Operations with an answer the recording wrote.
                operations += t.counts.passed + t.counts.failed
                agreed += t.counts.passed
                if t.counts.errors > 0 { missing += 1 }
            }
        }
        let pass = applicable.filter { $0.result == .pass }.count
        let nNA = notApplicable.reduce(0) { $0 + $1.names.count }
        var line = "selftests \(kernel) \(iommu): \(pass)/\(applicable.count) tests pass on the kernel, \(agreed)/\(operations) recorded operations agree on the model"
        if !skipped.isEmpty { line += ", \(skipped.count) skipped" }
        if nNA > 0 { line += ", \(nNA) not applicable" }
        if missing > 0 { line += ", \(missing) programs or recordings without a result" }
        lines.append(line)
        passed = pass == applicable.count && agreed == operations && missing == 0 && !applicable.isEmpty
        for c in applicable where c.result != .pass {
            lines.append("  not ok: \(c.program): \(c.name)" + (c.detail.isEmpty ? "" : ": " + c.detail.joined(separator: " / ")))
        }
        for c in skipped {
            if case .skip(let why) = c.result { lines.append("  skipped: \(c.name): \(why)") }
        }
        for na in notApplicable { lines.append("  not applicable (\(na.names.count)): \(na.reason)") }
        for p in programs {
            for t in p.tallies.compactMap({ $0 }) where t.counts.failed > 0 || t.counts.errors > 0 {
                lines += t.lines.prefix(10).map { "  \(p.name): " + $0 }
            }
        }
    }
}

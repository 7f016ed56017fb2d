import VFIOCore
import VFIOReplay
import VFIOTrace

/// The report of a model-versus-kernel replay (`vfio-sim replay --backend
/// both`), one summary line per kernel and IOMMU.
public enum KernelLane {
    /// What a both-backend run found, over every file.
    public struct Summary: Sendable {
        /// Operations and checks answered by both backends.
        public var compared = 0
        public var agreed = 0
        /// Checks the kernel cannot observe here (`check ptes=`).
        public var unobservable = 0
        public var skipped: [(file: String, reason: String)] = []
        public var files = 0
        public var errors = 0
        /// Files whose first domain differs from the kernel's IOMMU.
        public var setupDifferences = 0
        /// Written answers that both backends, agreeing, did not give.
        public var traceAnswerMisses = 0
        /// Files after which the kernel still charged locked memory.
        public var leaks = 0
        public var ok: Bool { errors == 0 && agreed == compared }
    }

    /// The text report of a model-versus-kernel run. Every disagreement and
    /// error is a line; setup differences, skipped files and written
    /// answers that neither backend gave (because the trace assumed another
    /// IOMMU or kernel version) are notes. The last line is
    ///
    ///     kernel 6.12 intel-iommu: N/M operations agree, U not observable, S of F files skipped
    ///
    /// `ok` is false on any disagreement or error.
    public static func report(_ reports: [FileReport], skipped: [(file: String, reason: String)],
                              kernel: String, iommu: String, verbose: Bool = false) -> (text: String, summary: Summary) {
        var s = Summary()
        s.skipped = skipped
        s.files = reports.count + skipped.count
        var out = ""
        for (file, reason) in skipped { out += "\(file): skipped: \(reason)\n" }
        for r in reports {
            // The first disagreement of a file is the one its rule decides;
            // later ones may only follow from the state it left.
            var firstDisagreement: Int? = nil
            for n in r.notes {
                if case .backend(_, .lockedAfterRelease) = n.kind { s.leaks += 1 } else if case .setupDifference = n.kind { s.setupDifferences += 1 }
                out += n.line > 0 ? "\(r.file):\(n.line): note: \(n.message)\n" : "\(r.file): note: \(n.message)\n"
            }
            for e in r.errors {
                s.errors += 1
                out += e.line > 0 ? "\(r.file):\(e.line): error: \(e.message)\n" : "\(r.file): error: \(e.message)\n"
            }
            for o in r.outcomes {
                // The lines the model says the kernel logged, for the lane
                // to find in the guest's dmesg.
                for log in o.got.compactMap(\.kernelLog) { out += "\(r.file):\(o.line): kernel log: \(log)\n" }
                let answers = o.got.map { "\($0.backend) \($0.text)" }.joined(separator: ", ")
                if !o.compared {
                    if o.got.contains(where: { !$0.observed }) { s.unobservable += 1 }
                    if verbose { out += "\(r.file):\(o.line): \(o.statement): not compared (\(answers))\n" }
                    continue
                }
                s.compared += 1
                if !o.agree {
                    let expected = o.expected.map { " (trace: \($0))" } ?? ""
                    let after = firstDisagreement.map { " (after the disagreement at line \($0))" } ?? ""
                    firstDisagreement = firstDisagreement ?? o.line
                    out += "\(r.file):\(o.line): disagree: \(o.statement): \(answers)\(expected)\(Self.reasons(o))\(after)\n"
                    continue
                }
                s.agreed += 1
                if let expected = o.expected, o.failed {
                    s.traceAnswerMisses += 1
                    out += "\(r.file):\(o.line): note: \(o.statement): trace expects \(expected), kernel and model gave \(o.got.first?.text ?? "")\n"
                } else if verbose {
                    out += "\(r.file):\(o.line): \(o.statement) => \(o.got.first?.text ?? "") (agree)\n"
                }
            }
        }
        var line = "kernel \(kernel) \(iommu): \(s.agreed)/\(s.compared) operations agree"
        line += ", \(s.unobservable) not observable, \(s.skipped.count) of \(s.files) files skipped"
        if s.errors > 0 { line += ", \(s.errors) errors" }
        if s.leaks > 0 { line += ", \(s.leaks) kernel leaks" }
        out += line + "\n"
        return (out, s)
    }

    /// Why each backend that can say gave its answer, as `; model: RULE
    /// (kernel function)`: on a disagreement this names the rule the
    /// model applied, the one a kernel patch changed.
    static func reasons(_ o: Outcome) -> String {
        o.got.compactMap { g in g.reason.map { "; \(g.backend): \($0)" } }.joined()
    }
}

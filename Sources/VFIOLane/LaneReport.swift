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
        /// Files that do not apply here (not in `files`).
        public var notApplicable: [(file: String, reason: String)] = []
        /// Files that apply here: run or skipped.
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

    /// A line of the report, with what it is: the lane counts and prints
    /// lines by their kind, never by their words.
    public struct Entry: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            /// A file the machine could not run (`FILE: skipped: REASON`).
            case skipped
            /// A file that does not apply here (`FILE: not applicable: REASON`).
            case notApplicable = "not-applicable"
            /// The trace's first domain is not the kernel's IOMMU.
            case setup
            /// The kernel still charged locked memory after the file.
            case leak
            /// Any other note: a written answer for another IOMMU, kernel
            /// or physical layout, a backend's remark.
            case note
            case error
            /// A line the model says the kernel logs (for dmesg).
            case kernelLog = "kernel-log"
            case disagree
            /// Verbose only: an answer not compared, or one that agreed.
            case detail
        }
        public var kind: Kind
        public var text: String
        public init(_ kind: Kind, _ text: String) { self.kind = kind; self.text = text }
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
                              notApplicable: [(file: String, reason: String)] = [],
                              kernel: String, iommu: String, verbose: Bool = false) -> (text: String, summary: Summary) {
        let (entries, s) = entries(reports, skipped: skipped, notApplicable: notApplicable, verbose: verbose)
        let text = entries.map { $0.text + "\n" }.joined() + summaryLine(s, kernel: kernel, iommu: iommu) + "\n"
        return (text, s)
    }

    /// `kernel K I: N/M operations agree, U not observable, S of F files
    /// skipped` (and errors and leaks when there are any).
    public static func summaryLine(_ s: Summary, kernel: String, iommu: String) -> String {
        "kernel \(kernel) \(iommu): " + countsLine(s)
    }

    /// The summary line after its `kernel K I: `.
    public static func countsLine(_ s: Summary) -> String {
        var line = "\(s.agreed)/\(s.compared) operations agree"
        line += ", \(s.unobservable) not observable, \(s.skipped.count) of \(s.files) files skipped"
        if !s.notApplicable.isEmpty { line += " (\(s.notApplicable.count) more not applicable)" }
        if s.errors > 0 { line += ", \(s.errors) errors" }
        if s.leaks > 0 { line += ", \(s.leaks) kernel leaks" }
        return line
    }

    /// The report's lines, each with its kind, and the counts.
    public static func entries(_ reports: [FileReport], skipped: [(file: String, reason: String)],
                               notApplicable: [(file: String, reason: String)] = [],
                               verbose: Bool = false) -> (entries: [Entry], summary: Summary) {
        var s = Summary()
        s.skipped = skipped
        s.notApplicable = notApplicable
        s.files = reports.count + skipped.count
        var out: [Entry] = []
        for (file, reason) in skipped { out.append(Entry(.skipped, "\(file): skipped: \(reason)")) }
        if verbose { for (file, reason) in notApplicable { out.append(Entry(.notApplicable, "\(file): not applicable: \(reason)")) } }
        for r in reports {
            // The first disagreement of a file is the one its rule decides;
            // later ones may only follow from the state it left.
            var firstDisagreement: Int? = nil
            for n in r.notes {
                var kind = Entry.Kind.note
                if case .backend(_, .lockedAfterRelease) = n.kind { s.leaks += 1; kind = .leak } else if case .setupDifference = n.kind { s.setupDifferences += 1; kind = .setup }
                out.append(Entry(kind, n.line > 0 ? "\(r.file):\(n.line): note: \(n.message)" : "\(r.file): note: \(n.message)"))
            }
            for e in r.errors {
                s.errors += 1
                out.append(Entry(.error, e.line > 0 ? "\(r.file):\(e.line): error: \(e.message)" : "\(r.file): error: \(e.message)"))
            }
            for o in r.outcomes {
                // The lines the model says the kernel logged, for the lane
                // to find in the guest's dmesg.
                for log in o.got.compactMap(\.kernelLog) { out.append(Entry(.kernelLog, "\(r.file):\(o.line): kernel log: \(log)")) }
                let answers = o.got.map { "\($0.backend) \($0.text)" }.joined(separator: ", ")
                if !o.compared {
                    if o.got.contains(where: { !$0.observed }) { s.unobservable += 1 }
                    if verbose { out.append(Entry(.detail, "\(r.file):\(o.line): \(o.statement): not compared (\(answers))")) }
                    continue
                }
                s.compared += 1
                if !o.agree {
                    let expected = o.expected.map { " (trace: \($0))" } ?? ""
                    let after = firstDisagreement.map { " (after the disagreement at line \($0))" } ?? ""
                    firstDisagreement = firstDisagreement ?? o.line
                    out.append(Entry(.disagree, "\(r.file):\(o.line): disagree: \(o.statement): \(answers)\(expected)\(Self.reasons(o))\(after)"))
                    continue
                }
                s.agreed += 1
                if let expected = o.expected, o.failed {
                    s.traceAnswerMisses += 1
                    out.append(Entry(.note, "\(r.file):\(o.line): note: \(o.statement): trace expects \(expected), kernel and model gave \(o.got.first?.text ?? "")"))
                } else if verbose {
                    out.append(Entry(.detail, "\(r.file):\(o.line): \(o.statement) => \(o.got.first?.text ?? "") (agree)"))
                }
            }
        }
        return (out, s)
    }

    /// Why each backend that can say gave its answer, as `; model: RULE
    /// (kernel function)`: on a disagreement this names the rule the
    /// model applied, the one a kernel patch changed.
    static func reasons(_ o: Outcome) -> String {
        o.got.compactMap { g in g.reason.map { "; \(g.backend): \($0)" } }.joined()
    }
}

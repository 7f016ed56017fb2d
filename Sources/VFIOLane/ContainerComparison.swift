import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// One trace run under both container kinds side by side (`vfio-sim
/// compare`): every statement whose answer differs, with both answers and
/// why each kind gave its own. The table a VMM author reads before moving
/// from `/dev/vfio/vfio` to `/dev/iommu`.
///
/// Both kinds run on the model, at the trace's kernel, in one replay (two
/// `ModelBackend`s, each pinned to its kind, so a trace's `container` line
/// changes neither), so the statements meet the same state up to the first
/// difference; later rows may follow from earlier ones.
public struct ContainerComparison: Sendable {
    public var file: String
    public var kernel: String = ""
    /// Statements whose answers differ, in file order.
    public var rows: [Row] = []
    /// Operations and checks compared.
    public var compared = 0
    /// Why the trace could not be compared (a kernel without iommufd), or nil.
    public var notComparable: String? = nil
    /// Setup one kind refused (a group iommufd will not attach), and
    /// broken model invariants: differences no statement's answer shows.
    public var notes: [String] = []

    public struct Row: Sendable {
        public var line: Int
        public var statement: String
        /// The answer the trace wrote, if any.
        public var expected: String?
        public var type1: String
        public var iommufd: String
        public var type1Reason: String?
        public var iommufdReason: String?
    }

    /// Runs `trace` under both kinds at `profile` (the trace's `kernel`
    /// line wins, as in `replay`).
    public static func run(_ trace: Trace, profile: KernelProfile = .newest) -> ContainerComparison {
        var c = ContainerComparison(file: trace.file)
        let type1 = ModelBackend(profile: profile, container: .type1, pinsContainer: true, label: "type1")
        let iommufd = ModelBackend(profile: profile, container: .iommufd, pinsContainer: true, label: "iommufd")
        // A kernel before 6.2 has no iommufd: say so rather than compare
        // against the wrong kernel.
        for st in trace.statements {
            if case .kernel(let v) = st.kind, let p = KernelProfile.resolve(v), !p.hasIOMMUFD {
                c.kernel = p.description
                c.notComparable = "kernel \(v) has no iommufd (/dev/iommu came with 6.2): nothing to compare"
                return c
            }
        }
        if !profile.hasIOMMUFD {
            c.kernel = profile.description
            c.notComparable = "kernel \(profile) has no iommufd (/dev/iommu came with 6.2): nothing to compare"
            return c
        }
        let replayer = Replayer(backends: [type1, iommufd])
        replayer.explainsEveryAnswer = true
        let report = replayer.run(trace)
        c.kernel = type1.kernel
        for p in report.problems { c.notes.append("line \(p.line): \(p.message)") }
        for o in report.outcomes where !o.isShow && o.got.count == 2 {
            c.compared += 1
            if o.agree { continue }
            let isCheck: Bool
            if let st = trace.statements.first(where: { $0.line == o.line }), case .check = st.kind { isCheck = true } else { isCheck = false }
            var row = Row(line: o.line, statement: o.statement, expected: o.expected, type1: o.got[0].text, iommufd: o.got[1].text,
                          type1Reason: o.got[0].reason, iommufdReason: o.got[1].reason)
            if isCheck, let note = checkNote(o.statement) {
                row.type1Reason = note.type1
                row.iommufdReason = note.iommufd
            }
            c.rows.append(row)
        }
        return c
    }

    /// Why a check reads differently: what each kind counts.
    static func checkNote(_ statement: String) -> (type1: String, iommufd: String)? {
        if statement.contains("locked=") { return (ContainerKind.type1.lockedMemoryNote, ContainerKind.iommufd.lockedMemoryNote) }
        if statement.contains("mappings=") {
            return ("type1 counts vfio_dma entries (vfio_dma_do_map)", "iommufd counts iopt areas: a v1 unmap cuts one in two (iopt_area_split), and the areas stay when the last group leaves (the iommufd fd holds the IOAS)")
        }
        if statement.contains("ptes=") {
            return ("type1 maps each contiguous chunk with the domain's page sizes (vfio_iommu_map)", "iommufd maps each contiguous run the same way, but page by page under v1 (batch_iommu_map_small)")
        }
        return nil
    }

    /// The comparison as text: one block per differing statement.
    public var text: String {
        var out = ""
        if let notComparable { return "\(file): \(notComparable)\n" }
        for n in notes { out += "\(file): \(n)\n" }
        for r in rows {
            out += "\(file):\(r.line): \(r.statement)\n"
            out += "    type1    \(r.type1)\n"
            if let why = r.type1Reason { out += "             why: \(why)\n" }
            out += "    iommufd  \(r.iommufd)\n"
            if let why = r.iommufdReason { out += "             why: \(why)\n" }
        }
        out += "\(file): kernel \(kernel): \(rows.count) of \(compared) statements differ" + (notes.isEmpty ? "" : ", \(notes.count) setup notes") + "\n"
        return out
    }

    /// A Markdown table of many comparisons (the one in `docs/`).
    public static func markdown(_ comparisons: [ContainerComparison]) -> String {
        func cell(_ s: String) -> String { s.split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|") }
        var out = "| trace:line | statement | type1 | iommufd | why (iommufd) |\n|---|---|---|---|---|\n"
        for c in comparisons {
            if let n = c.notComparable {
                out += "| `\(c.file)` | | | | \(cell(n)) |\n"
                continue
            }
            for n in c.notes { out += "| `\(c.file)` | | | | \(cell(n)) |\n" }
            for r in c.rows {
                out += "| `\(c.file):\(r.line)` | `\(cell(r.statement))` | `\(cell(r.type1))` | `\(cell(r.iommufd))` | \(cell(r.iommufdReason ?? "")) |\n"
            }
        }
        return out
    }
}

// MARK: JSON

extension ContainerComparison {
    /// The schema name and version every comparison object carries.
    public static let schema = "vfiosim.compare/1"

    /// The comparisons as JSON (`vfiosim.compare/1`, docs/REPORTS.md): an
    /// array with one object per file.
    public static func json(_ comparisons: [ContainerComparison]) -> String {
        JSONValue.array(comparisons.map(\.json)).pretty
    }

    var json: JSONValue {
        func side(_ answer: String, _ reason: String?) -> JSONValue {
            .object([("answer", .string(answer)), ("reason", .optional(reason))])
        }
        return .object([
            ("schema", .string(Self.schema)),
            ("file", .string(file)),
            ("kernel", .string(kernel)),
            ("comparable", .bool(notComparable == nil)),
            ("notComparable", .optional(notComparable)),
            ("compared", .int(UInt64(compared))),
            ("differing", .int(UInt64(rows.count))),
            ("notes", .array(notes.map { .string($0) })),
            ("rows", .array(rows.map { r in
                .object([
                    ("line", .int(UInt64(r.line))),
                    ("statement", .string(r.statement)),
                    ("expected", .optional(r.expected)),
                    ("type1", side(r.type1, r.type1Reason)),
                    ("iommufd", side(r.iommufd, r.iommufdReason)),
                ])
            })),
        ])
    }
}

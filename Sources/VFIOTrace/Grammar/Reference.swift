// The statement tables of docs/TRACE_FORMAT.md, made from the grammar's
// rows: a test checks the page holds them as made, and
// `scripts/gen-trace-help.sh` writes them in (`vfio-sim help trace
// --fill-tables FILE`).

/// A table of the reference, with the statements whose rows it holds.
enum ReferenceTable: String, CaseIterable {
    case setup, operations, checks

    /// The header row and its rule.
    var header: String {
        switch self {
        case .setup: "| statement | meaning | default |\n|---|---|---|"
        case .operations: "| operation | ioctl | answer |\n|---|---|---|"
        case .checks: "| statement | reads | |\n|---|---|---|"
        }
    }

    /// The line before the table on the page.
    var marker: String { "<!-- statements: \(rawValue) (made from Sources/VFIOTrace/Grammar by scripts/gen-trace-help.sh) -->" }

    /// The table, as markdown: a row per form of each statement it holds.
    var markdown: String {
        var lines = [header]
        for syntax in StatementSyntax.all where syntax.table == self {
            for row in syntax.rows {
                lines.append("|" + ([row.form] + row.cells).map { $0.isEmpty ? " " : " \($0) " }.joined(separator: "|") + "|")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// One row of a statement's table: how it is written (in backticks, forms
/// apart with ` / `) and the other columns.
struct ReferenceRow {
    let form: String
    let cells: [String]
    init(_ form: String, _ cells: String...) { self.form = form; self.cells = cells }
}

/// `page` with each table after its marker line replaced by the one the
/// grammar makes (a table runs to the first empty line).
public func fillStatementTables(in page: String) -> String {
    var out: [Substring] = []
    var lines = page.split(separator: "\n", omittingEmptySubsequences: false)[...]
    while let line = lines.popFirst() {
        out.append(line)
        guard let table = ReferenceTable.allCases.first(where: { $0.marker == line }) else { continue }
        while let next = lines.first, !next.isEmpty { lines.removeFirst() }
        out += table.markdown.split(separator: "\n", omittingEmptySubsequences: false)
    }
    return out.joined(separator: "\n")
}

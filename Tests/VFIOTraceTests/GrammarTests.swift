import Foundation
import Testing
import VFIOCore
@testable import VFIOTrace

// Issue 26: each statement is defined once (Sources/VFIOTrace/Grammar), and
// the parser's key reading, the printer and the reference are made from
// that definition. These tests break when one of them stops following it.

/// A short valid line of each statement that has keys, with every key it
/// requires (`dirty` is `dirty get`'s form).
private let baseLines: [Verb: String] = [
    .domain: "domain d1 pgsizes=4K",
    .memory: "memory vaddr=0x100000 size=4K",
    .map: "map iova=0x1000 vaddr=0x100000 size=4K prot=rw",
    .unmap: "unmap iova=0x1000 size=4K",
    .unmapAll: "unmap-all",
    .info: "info",
    .dirty: "dirty get iova=0 size=4K pgsize=4K",
    .check: "check locked=4K",
    .show: "show",
]

/// The form of `verb` whose keys `baseLines` writes.
private func syntax(of verb: Verb) -> StatementSyntax { verb == .dirty ? .dirtyGet : verb.syntax }

/// A value of each kind the grammar reads that the statement accepts.
private func sample(_ k: KeySyntax) -> String {
    switch k.kind {
    case .bare: k.key.name.string
    case .number, .number32: k.key.name.string + "0"
    case .yesNo: k.key.name.string + "yes"
    case .text: k.key.name.string + "x"
    }
}

@Test("every statement's keys are read from its grammar: a missing required key, a second one, an unknown word and a bad number or yes/no each give the grammar's message")
func keysAreReadFromTheGrammar() throws {
    for (verb, base) in baseLines {
        let syntax = syntax(of: verb)
        #expect(diagnostics(base) == [], "\(base)")
        #expect(diagnostics(base + " bogus") == ["t.trace:1:\(base.count + 2): error: expected \(syntax.oneOf), found 'bogus'"])
        for k in syntax.keys {
            let name = k.key.name.string
            let words = base.split(separator: " ").map(String.init)
            if k.required && k.needs == nil {
                let without = words.filter { !$0.hasPrefix(name) }.joined(separator: " ")
                #expect(diagnostics(without) == ["t.trace:1:\(without.count + 1): error: expected \(name), found end of line"], "\(without)")
            }
            if let given = words.first(where: { $0.hasPrefix(name) && k.kind != .bare }) {
                #expect(diagnostics(base + " " + given).first?.hasSuffix("error: expected at most one \(name), found '\(given)'") == true, "\(base) \(given)")
            }
            if let needs = k.needs, !words.contains(where: { $0.hasPrefix(needs.name.string) }) {
                #expect(diagnostics(base + " " + sample(k)).first?.hasSuffix("error: expected \(name) only with \(needs.name.string), found '\(sample(k))'") == true, "\(verb) \(name)")
            }
            if k.needs == nil, !words.contains(where: { $0.hasPrefix(name) }) {
                switch k.kind {
                case .number, .number32:
                    #expect(diagnostics(base + " \(name)zz").first?.hasSuffix("error: expected a number, found 'zz'") == true, "\(base) \(name)zz")
                case .yesNo:
                    #expect(diagnostics(base + " \(name)zz").first?.hasSuffix("error: expected one of yes, no, found 'zz'") == true, "\(base) \(name)zz")
                case .bare, .text: break
                }
            }
        }
    }
}

@Test("a key written with its grammar default is left out by the printer, and the line means the same")
func printerLeavesOutGrammarDefaults() throws {
    var checked = 0
    for (verb, base) in baseLines {
        for k in syntax(of: verb).keys {
            guard let d = k.printedDefault else { continue }
            let line = base + " " + k.key.name.string + d.string
            let parsed = try #require(statements(line)?.first, "\(line)")
            #expect(!printStatement(parsed).contains(" " + k.key.name.string), "\(line)")
            #expect(printStatement(parsed) == printStatement(try #require(statements(base)?.first)), "\(line)")
            #expect(parsed.kind == statements(base)?.first?.kind, "\(line)")
            checked += 1
        }
    }
    #expect(checked >= 10)
}

@Test("the printer writes a statement's keys in its grammar's order")
func printerFollowsGrammarOrder() throws {
    let line = "unmap bitmap-size=9 pgsize=4K dirty vaddr-only size=2M iova=0x200000 argsz=99 repeat=2 step=4M"
    let printed = printStatement(try #require(statements(line)?.first))
    let order = printed.split(separator: " ").dropFirst().map { word in
        StatementSyntax.unmap.keys.firstIndex { word.hasPrefix($0.key.name.string) }
    }
    #expect(order.allSatisfy { $0 != nil } && order == order.sorted { $0! < $1! }, "\(printed)")
}

/// docs/TRACE_FORMAT.md, found from this file's path.
private let referencePage = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("docs").appendingPathComponent("TRACE_FORMAT.md")

@Test("docs/TRACE_FORMAT.md holds the statement tables the grammar makes (regenerate with scripts/gen-trace-help.sh)")
func referenceTablesComeFromTheGrammar() throws {
    let page = try String(contentsOf: referencePage, encoding: .utf8)
    for table in ReferenceTable.allCases {
        #expect(page.contains(table.marker + "\n" + table.markdown + "\n"), "\(table)")
    }
    #expect(fillStatementTables(in: page) == page)
}

@Test("every key of every statement is in its rows of the reference, or (a raw ioctl field) in its paragraph; every row names its own verb")
func referenceNamesEveryKey() throws {
    let page = try String(contentsOf: referencePage, encoding: .utf8)
    let rawParagraph = try #require(page.components(separatedBy: "\n\n").first { $0.hasPrefix("Raw fields") })
    for syntax in StatementSyntax.all {
        #expect(!syntax.rows.isEmpty, "\(syntax.verb)")
        let forms = syntax.rows.map(\.form).joined(separator: " ")
        for row in syntax.rows { #expect(row.form.hasPrefix("`" + syntax.verb.name.string + " ") || row.form == "`\(syntax.verb.name)`" || row.form.hasPrefix("`\(syntax.verb.name)` "), "\(row.form)") }
        for k in (syntax.keys + syntax.otherForms.flatMap(\.keys)) {
            let name = k.key.name.string
            if k.raw {
                #expect(rawParagraph.contains("`" + name) && rawParagraph.contains("`\(syntax.verb.name)"), "\(syntax.verb) \(name)")
            } else {
                #expect(forms.contains(" " + name) || forms.contains("[" + name), "\(syntax.verb) \(name)")
            }
        }
    }
}

@Test("no statement accepts more keys than the parser keeps values for, and every key has a bit")
func keysFitTheParser() {
    #expect(Key.allCases.count <= 64)
    for syntax in StatementSyntax.all + [.dirtyGet] {
        #expect(syntax.keys.count <= StatementParser.maxKeys, "\(syntax.verb)")
        #expect(Set(syntax.keys.map(\.key)).count == syntax.keys.count, "\(syntax.verb)")
    }
}

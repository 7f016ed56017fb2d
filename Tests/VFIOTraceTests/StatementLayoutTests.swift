import Testing
import VFIOCore
@testable import VFIOTrace

// A statement keeps `comment`, `repetition` and `spellings` behind one
// optional reference, and `check ptes=` is read without a dictionary. Each
// is checked here against what it replaced: plain stored fields and the
// dictionary-based `pteCounts`. The parser's statements come out in line
// order, with the lines that fail among them.

/// A statement's fields as plain stored values: what `Statement` was.
private struct PlainStatement: Hashable {
    var line: Int
    var column: Int
    var kind: Statement.Kind
    var expected: Answer?
    var comment: String?
    var repetition: Statement.Repetition?
    var spellings: [String: String]
    init(_ s: Statement) {
        line = s.line; column = s.column; kind = s.kind; expected = s.expected
        comment = s.comment; repetition = s.repetition; spellings = s.spellings
    }
}

@Test("comment, repetition and spellings are values: set, read back, cleared, compared and hashed by what they hold")
func statementExtrasAreValues() {
    let base = Statement(line: 3, column: 2, kind: .map(MapDMA(flags: [.read], vaddr: 0x1000, iova: 0x2000, size: 0x1000)))
    #expect(base.comment == nil && base.repetition == nil && base.spellings.isEmpty)
    var a = base
    a.comment = "note"
    a.repetition = Statement.Repetition(count: 4, step: 0x1000)
    a.spellings = ["size=": "4K"]
    #expect(a.comment == "note" && a.repetition == Statement.Repetition(count: 4, step: 0x1000) && a.spellings == ["size=": "4K"])
    // A copy is a value: changing it leaves the original alone.
    var b = a
    b.comment = "other"
    #expect(a.comment == "note" && b.comment == "other")
    #expect(a != b)
    // Built in another order, the same values are equal, with equal hashes.
    var c = base
    c.spellings = ["size=": "4K"]
    c.repetition = Statement.Repetition(count: 4, step: 0x1000)
    c.comment = "note"
    #expect(a == c && a.hashValue == c.hashValue)
    #expect(PlainStatement(a) == PlainStatement(c))
    // Cleared one by one, it equals a statement that never had any.
    c.comment = nil
    c.repetition = nil
    #expect(c != base)
    c.spellings = [:]
    #expect(c == base && c.hashValue == base.hashValue)
    // The public initializer's comment.
    let d = Statement(line: 3, column: 2, kind: base.kind, comment: "note")
    var e = base
    e.comment = "note"
    #expect(d == e && d.comment == "note")
    // `repeated` drops the repetition and keeps the comment.
    #expect(a.repeated(1).repetition == nil && a.repeated(1).comment == "note" && a.repeated(1).spellings == ["size=": "4K"])
}

@Test("statements come out in order, with lines that fail among them", arguments: [0, 1, 15, 16, 17, 100, 3000])
func statementsKeepLineOrder(lines: Int) {
    // Every seventh line is wrong (its statement is made and then removed);
    // comments, blanks and repeats among the rest.
    var text = ""
    var expectedLines: [Int] = []
    var expectedErrors = 0
    var previousBlank = false
    for i in 0..<lines {
        let n = i + 1
        switch i % 7 {
        case 6:
            text += "map iova=0x\(String(i, radix: 16))000 vaddr=0x1000 size=4K prot=bad\n"
            expectedErrors += 1
            previousBlank = false
            continue
        case 5:
            text += "\n"
            if !previousBlank { expectedLines.append(n) }
            previousBlank = true
            continue
        case 4: text += "# comment \(i)\n"
        case 3: text += "unmap iova=0x\(String(i, radix: 16))000 size=4K repeat=2 => ok size=8K # c\(i)\n"
        default: text += "map iova=0x\(String(i, radix: 16))000 vaddr=0x1000 size=4K prot=rw => ok\n"
        }
        previousBlank = false
        expectedLines.append(n)
    }
    // The statements of the lines that parse, though others fail.
    let bytes = Array(text.utf8)
    var parser = TraceParser()
    bytes.withUnsafeBufferPointer { buffer in
        forEachLexedLine(buffer) { line, error in parser.take(line, error, buffer.baseAddress!) }
    }
    let got = parser.statements, errors = parser.errors
    #expect(got.map(\.line) == expectedLines)
    // The same statements as the file's lines parsed one at a time into an
    // array (the errors' lines give nothing).
    var reference: [Statement] = []
    let fileLines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
    var blankBefore = false
    for (i, l) in fileLines.enumerated() {
        if l.isEmpty {
            if !blankBefore { reference.append(Statement(line: i + 1, column: 1, kind: .blank)) }
            blankBefore = true
            continue
        }
        blankBefore = false
        guard case .success(let t) = parseTrace(String(l), file: "t.trace") else { continue }
        for var s in t.statements {
            s.line = i + 1
            reference.append(s)
        }
    }
    #expect(got == reference)
    let messages = errors.map { "t.trace:\($0.line):\($0.column): error: \($0.message)" }
    #expect(messages.count == expectedErrors)
    if case .failure(let f) = parseTrace(text, file: "t.trace") {
        #expect(f.diagnostics.map(\.description) == messages)
    } else {
        #expect(messages.isEmpty)
    }
}

/// `pteCounts` as it was: a dictionary, then `PTECounts(_:)`.
private func referencePTECounts(_ text: Text) throws(LineError) -> PTECounts {
    if text == "none" { return PTECounts() }
    var counts: [UInt64: UInt64] = [:]
    try forEachItem(text) { (item) throws(LineError) in
        guard let colon = item.firstOffset(of: UInt8(ascii: ":")),
              !item.suffix(from: colon + 1).contains(UInt8(ascii: ":")) else {
            throw LineError(item.start, "expected SIZE:COUNT, found \(quoted(item))")
        }
        let size = try powerOfTwo(item.prefix(upTo: colon))
        let count = try number(item.suffix(from: colon + 1))
        guard counts[size] == nil else { throw LineError(item.start, "expected each page size once, found \(quoted(item))") }
        counts[size] = count
    }
    return PTECounts(counts)
}

private func outcome(_ f: (Text) throws(LineError) -> PTECounts, _ s: String) -> String {
    let bytes = Array(("xx" + s).utf8)
    return bytes.withUnsafeBufferPointer { b in
        do throws(LineError) {
            return "\(try f(Text(base: b.baseAddress!, start: 2, end: b.count)).entries)"
        } catch {
            return "\(error.offset): \(error.message)"
        }
    }
}

@Test("check ptes= without a dictionary gives the entries and errors the dictionary did")
func pteCountsAgainstReference() {
    var cases = ["none", "4K:1", "4K:16,2M:3", "2M:3,4K:16", "1G:1,4K:2,2M:0", "4K:0", "4K:1,4K:2", "2M:1,4K:1,2M:2",
                 "4K:1,,2M:1", "4K", "4K:1:2", ":1", "4K:", "3K:1", "0:1", "4K:18446744073709551615",
                 "4K:18446744073709551616", "0x1000:0x10,0x200000:0", "4K:1,", ",4K:1", "none,4K:1", "8T:1,4K:1,1G:2,2M:3"]
    // Every power of two, ascending and descending, and one repeated at the end.
    let all = (0..<64).map { "\(UInt64(1) << UInt64($0)):\($0)" }
    cases += [all.joined(separator: ","), all.reversed().joined(separator: ","), (all + [all[40]]).joined(separator: ",")]
    for c in cases {
        #expect(outcome(pteCounts, c) == outcome(referencePTECounts, c), "\(c)")
    }
}

@Test("a file of lines shorter than 16 bytes keeps every statement", arguments: [1, 63, 64, 65, 100, 3000])
func shortLinesOutgrowRoom(lines: Int) {
    // Comments of one digit (3 bytes a line) and a blank after every tenth,
    // against the statements each line gives parsed alone.
    var text = ""
    var want: [Statement] = []
    for i in 0..<lines {
        if i % 10 == 9 {
            text += "\n"
            want.append(Statement(line: i + 1, column: 1, kind: .blank))
        } else {
            text += "#\(i % 10)\n"
            want.append(Statement(line: i + 1, column: 1, kind: .comment("\(i % 10)")))
        }
    }
    #expect(text.utf8.filter { $0 == 0x0A }.count == lines)
    guard case .success(let trace) = parseTrace(text, file: "t.trace") else {
        Issue.record("short lines did not parse")
        return
    }
    #expect(trace.statements == want)
}

import Foundation
import Testing
@testable import VFIOTrace

// Bad input gets a clear error, never a trap, a wrap or a hang.
//
// `Fixtures/bad/NAME.trace` holds one kind of bad input; the sibling
// `NAME.expected` holds the exact diagnostics it must produce, one per line,
// as `vfio-sim replay Fixtures/bad/NAME.trace` prints them on stderr (an
// empty `.expected`: the file parses, as an empty trace). Inputs too big or
// too odd to commit (a 100 MB line, a million statements) are made here.

/// The package's `Fixtures/bad/` folder, found from this file's path.
let badFixturesDirectory: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").appendingPathComponent("bad")

let badFixtureNames: [String] = {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: badFixturesDirectory.path)) ?? []
    return names.filter { $0.hasSuffix(".trace") }.sorted()
}()

/// The diagnostics of `bytes` as the CLI prints them, one line each.
func printedDiagnostics(_ bytes: [UInt8], file: String) -> String {
    switch parseTrace(bytes: bytes, file: file) {
    case .success: return ""
    case .failure(let f): return f.diagnostics.map { $0.description + "\n" }.joined()
    }
}

@Suite("bad input")
struct BadInputTests {
    @Test("Fixtures/bad holds the bad-input corpus, each file with its .expected")
    func corpusIsComplete() throws {
        #expect(badFixtureNames.count >= 10)
        let all = try FileManager.default.contentsOfDirectory(atPath: badFixturesDirectory.path)
        for name in badFixtureNames {
            #expect(all.contains(String(name.dropLast(".trace".count)) + ".expected"), "\(name) has no .expected")
        }
        for name in all where name.hasSuffix(".expected") {
            #expect(all.contains(String(name.dropLast(".expected".count)) + ".trace"), "\(name) has no .trace")
        }
    }

    @Test("every file in Fixtures/bad gives exactly the diagnostics of its .expected file", arguments: badFixtureNames)
    func exactDiagnostics(name: String) throws {
        let trace = badFixturesDirectory.appendingPathComponent(name)
        let expectedURL = badFixturesDirectory.appendingPathComponent(String(name.dropLast(".trace".count)) + ".expected")
        let bytes = [UInt8](try Data(contentsOf: trace))
        let expected = String(decoding: try Data(contentsOf: expectedURL), as: UTF8.self)
        let got = printedDiagnostics(bytes, file: "Fixtures/bad/\(name)")
        #expect(got == expected)
    }

    @Test("every diagnostic reads FILE:LINE:COLUMN: error: expected …, found …, at most one per line, in order",
          arguments: badFixtureNames)
    func wellFormed(name: String) throws {
        let bytes = [UInt8](try Data(contentsOf: badFixturesDirectory.appendingPathComponent(name)))
        guard case .failure(let f) = parseTrace(bytes: bytes, file: name) else { return }
        var previous = 0
        for d in f.diagnostics {
            #expect(d.line > previous)
            previous = d.line
            #expect(d.column >= 1)
            #expect(d.message.hasPrefix("expected ") && d.message.contains(", found "), "\(d)")
            #expect(d.description.hasPrefix("\(name):\(d.line):\(d.column): error: "))
        }
    }

    @Test("an empty file is an empty trace")
    func emptyFile() throws {
        let trace = try parseTrace(bytes: [], file: "e.trace").get()
        #expect(trace.statements.isEmpty)
    }

    // MARK: A 100 MB line

    static let hundredMB = 100 << 20

    /// `prefix`, `count` copies of `byte`, `suffix`: built with one fill,
    /// not byte by byte (debug builds are slow at that).
    func line(_ prefix: String, _ byte: UInt8, _ count: Int, _ suffix: String) -> [UInt8] {
        let p = Array(prefix.utf8), s = Array(suffix.utf8)
        var bytes = [UInt8](repeating: byte, count: p.count + count + s.count)
        bytes.replaceSubrange(0..<p.count, with: p)
        bytes.replaceSubrange((p.count + count)..., with: s)
        return bytes
    }

    @Test("a 10 MB number on one line is named as too big for 64 bits, quoted in 60 characters")
    func hugeNumberLine() {
        let bytes = line("memory vaddr=", UInt8(ascii: "9"), 10 << 20, " size=4K\n")
        let sixty = String(repeating: "9", count: 60)
        #expect(printedDiagnostics(bytes, file: "big.trace")
            == "big.trace:1:14: error: expected a value that fits in 64 bits, found '\(sixty)...'\n")
    }

    @Test("a 100 MB comment line is a comment")
    func hugeCommentLine() throws {
        let bytes = line("# ", UInt8(ascii: "c"), Self.hundredMB, "\ninfo\n")
        let trace = try parseTrace(bytes: bytes, file: "big.trace").get()
        #expect(trace.statements.count == 2)
        guard case .comment(let text)? = trace.statements.first?.kind else {
            Issue.record("the first statement is not a comment")
            return
        }
        #expect(text.utf8.count == Self.hundredMB)
    }

    @Test("a 10 MB word in place of a verb is quoted in 60 characters")
    func hugeVerbLine() {
        let bytes = line("frob", UInt8(ascii: "a"), 10 << 20, "")
        let quoted = "frob" + String(repeating: "a", count: 56) + "..."
        #expect(printedDiagnostics(bytes, file: "big.trace")
            == "big.trace:1:1: error: expected one of \(verbList), found '\(quoted)'\n")
    }

    @Test("a 100 MB line of one-letter words gets its diagnostic in bounded time and memory")
    func hugeLineOfWords() {
        var bytes = line("info", 0x20, Self.hundredMB, "")
        for i in stride(from: 5, to: bytes.count, by: 2) { bytes[i] = UInt8(ascii: "x") }
        let clock = ContinuousClock()
        let start = clock.now
        let got = printedDiagnostics(bytes, file: "big.trace")
        #expect(clock.now - start < .seconds(5))
        #expect(got == "big.trace:1:6: error: expected argsz=, found 'x'\n")
    }

    // MARK: Deeply repeated statements

    static let repeats = 100_000

    @Test("100,000 repeated statements parse into 100,000 statements")
    func repeatedStatements() throws {
        let line = Array("map iova=0x100000 vaddr=0x7f0000000000 size=2M prot=rw => EEXIST   # again\n".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(line.count * Self.repeats)
        for _ in 0..<Self.repeats { bytes.append(contentsOf: line) }
        let trace = try parseTrace(bytes: bytes, file: "rep.trace").get()
        #expect(trace.statements.count == Self.repeats)
        #expect(trace.statements.last?.line == Self.repeats)
    }

    @Test("100,000 repeated bad statements give one diagnostic each, on its own line")
    func repeatedBadStatements() {
        let line = Array("map iova=zz vaddr=0 size=4K prot=rw\r\n".utf8)
        var bytes: [UInt8] = []
        for _ in 0..<Self.repeats { bytes.append(contentsOf: line) }
        guard case .failure(let f) = parseTrace(bytes: bytes, file: "rep.trace") else {
            Issue.record("parsed")
            return
        }
        #expect(f.diagnostics.count == Self.repeats)
        #expect(f.diagnostics.first?.description == "rep.trace:1:10: error: expected a number, found 'zz'")
        #expect(f.diagnostics.last?.description == "rep.trace:\(Self.repeats):10: error: expected a number, found 'zz'")
    }

    @Test("a file of 100,000 blank lines and one bad line names the last line")
    func deepBadLine() {
        var bytes = [UInt8](repeating: 0x0A, count: Self.repeats)
        bytes.append(contentsOf: Array("info =>".utf8))
        #expect(printedDiagnostics(bytes, file: "deep.trace")
            == "deep.trace:\(Self.repeats + 1):8: error: expected an answer, found end of line\n")
    }

    // MARK: Numbers at the edge, in every notation

    @Test("the largest value parses in every notation; one more is an error", arguments: [
        ("18446744073709551615", "18446744073709551616"),
        ("0xffffffffffffffff", "0x10000000000000000"),
        ("0XFFFFFFFFFFFFFFFF", "0X10000000000000000"),
        ("0x0000000000000000000000ffffffffffffffff", "0x0000000000000000000001ffffffffffffffff"),
        ("18014398509481983K", "18014398509481984K"),
        ("17592186044415M", "17592186044416M"),
        ("17179869183G", "17179869184G"),
        ("16777215T", "16777216T"),
    ])
    func edgeNumbers(fits: String, past: String) {
        #expect(diagnostics("check locked=\(fits)") == [])
        #expect(diagnostics("check locked=\(past)")
            == ["t.trace:1:14: error: expected a value that fits in 64 bits, found '\(past)'"])
    }
}

import Foundation
import Testing
import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// The package's `Fixtures/` folder, found from this file's path.
let fixturesDirectory: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")

let fixtureNames: [String] = {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: fixturesDirectory.path)) ?? []
    return names.filter { $0.hasSuffix(".trace") }.sorted()
}()

func loadTrace(_ name: String) throws -> Trace {
    let url = fixturesDirectory.appendingPathComponent(name)
    let bytes = [UInt8](try Data(contentsOf: url))
    switch parseTrace(bytes: bytes, file: "Fixtures/\(name)") {
    case .success(let t): return t
    case .failure(let f): throw TraceLoadError(message: f.diagnostics.map(\.description).joined(separator: "\n"))
    }
}

struct TraceLoadError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

@Suite("Fixtures")
struct FixtureTests {
    @Test("there are fixtures to replay")
    func fixturesExist() {
        #expect(fixtureNames.count >= 60)
    }

    @Test("every fixture replays on the model with its written answers, and the model's invariants hold after every operation",
          arguments: fixtureNames)
    func replays(name: String) throws {
        try expectReplaysWithWrittenAnswers(name, answersBy: "the fixture")
    }

    @Test("every fixture starts with a comment naming its rule or scenario", arguments: fixtureNames)
    func startsWithRule(name: String) throws {
        let trace = try loadTrace(name)
        guard case .comment(let text)? = trace.statements.first?.kind else {
            Issue.record("\(name) does not start with a comment")
            return
        }
        #expect(text.contains("Rule:") || text.contains("Scenario:"))
    }

    @Test("printing a fixture and parsing it back gives the same statements",
          arguments: fixtureNames + recordedNames)
    func roundTrip(name: String) throws {
        let trace = try loadTrace(name)
        let printed = printTrace(trace)
        guard case .success(let again) = parseTrace(bytes: Array(printed.utf8), file: name) else {
            Issue.record("the printed form of \(name) does not parse:\n\(printed)")
            return
        }
        let strip: (Trace) -> [Statement] = { t in
            t.statements.filter { if case .blank = $0.kind { return false } else { return true } }.map {
                var s = $0; s.line = 0; s.column = 0; return s
            }
        }
        #expect(strip(again) == strip(trace))
        #expect(printTrace(again) == printed, "printing is idempotent")
    }
}

/// Replays `name` on the model with invariants checked after every
/// operation: every written answer must hold, and the trace must hold at
/// least one (`answersBy` names who wrote them, for the messages).
func expectReplaysWithWrittenAnswers(_ name: String, answersBy: String,
                                     sourceLocation: SourceLocation = #_sourceLocation) throws {
    let trace = try loadTrace(name)
    let model = ModelBackend(checksInvariants: true)
    let report = Replayer(backends: [model]).run(trace)
    for o in report.outcomes where o.failed {
        Issue.record("\(name):\(o.line): \(o.statement): \(answersBy) says \(o.expected ?? ""), the model \(o.got.map(\.text))",
                     sourceLocation: sourceLocation)
    }
    for e in report.errors { Issue.record("\(name):\(e.line): \(e.message)", sourceLocation: sourceLocation) }
    #expect(model.brokenInvariant == nil, sourceLocation: sourceLocation)
    #expect(report.outcomes.contains { $0.expected != nil }, "\(name) must hold written answers", sourceLocation: sourceLocation)
}

import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOScenario
import VFIOTrace

/// A generated plan made into a trace a user can replay: each operation
/// with the model's answer written after `=>`, and at each of the plan's
/// checkpoints the state as `check` lines (locked memory, mappings, and
/// the page-table entries of each container's domain), so a replay on the
/// model passes and one on a real kernel shows where Linux differs.
public enum ScenarioAnswers {
    public enum Failure: Error, Sendable, Equatable {
        /// The generated text did not parse (a bug in the generator).
        case unparsed(String)
        /// The model refused to run it (a setup error, e.g. a kernel
        /// release the options named that the model does not know).
        case refused(String)
    }

    public static func answer(_ scenario: Scenario, file: String) -> Result<Trace, Failure> {
        answer(text: scenario.text, checkpoints: scenario.checkpoints, file: file)
    }

    /// `text` answered, with checks after each operation count in
    /// `checkpoints` (a benchmark's plan, a scenario's text).
    public static func answer(text: String, checkpoints: [Int], file: String) -> Result<Trace, Failure> {
        var trace: Trace
        switch parseTrace(text, file: file) {
        case .success(let t): trace = t
        case .failure(let f): return .failure(.unparsed(f.diagnostics.map(\.description).joined(separator: "\n")))
        }
        trace.statements = withPlaceholderChecks(trace.statements, at: Set(checkpoints))
        let model = ModelBackend(checksInvariants: false)
        let replayer = Replayer(backends: [model])
        var answers: [Int: Answer] = [:]
        var observations: [CheckObservation?] = []
        replayer.didRun = { st, outcome in
            if case .check = st.kind { observations.append(outcome.got.first?.observation) }
            else if let a = outcome.answers.first { answers[st.line] = a }
        }
        let report = replayer.run(trace)
        if let e = report.errors.first { return .failure(.refused("\(file):\(e.line): \(e.message)")) }
        var out: [Statement] = []
        var nextCheck = 0
        for var st in trace.statements {
            if case .check(let c) = st.kind {
                defer { nextCheck += 1 }
                guard nextCheck < observations.count, let seen = observations[nextCheck], let filled = fill(c, with: seen) else { continue }
                st.kind = .check(filled)
            } else if isOperation(st.kind), let a = answers[st.line] {
                st.expected = a
            }
            out.append(st)
        }
        trace.statements = out
        return .success(trace)
    }

    /// The operations the writer counts for checkpoints.
    static func isOperation(_ k: Statement.Kind) -> Bool {
        switch k {
        case .map, .unmap, .detach: true
        default: false
        }
    }

    /// `statements` with `check` lines (values to be read from the model)
    /// after each operation count in `points`: for each container, its
    /// first attached group names the domain whose entries are counted.
    static func withPlaceholderChecks(_ statements: [Statement], at points: Set<Int>) -> [Statement] {
        var out: [Statement] = []
        var operations = 0
        var container = "c0"
        var groups: [String: [String]] = [:]
        if points.contains(0) { out += checks(line: 1, group: nil) }
        for st in statements {
            out.append(st)
            switch st.kind {
            case .useContainer(let name, _): container = name
            case .domain(let d): groups[container, default: []].append(d.name)
            case .detach(let g): groups[container]?.removeAll { $0 == g }
            default: break
            }
            guard isOperation(st.kind) else { continue }
            operations += 1
            if points.contains(operations) { out += checks(line: st.line, group: groups[container]?.first) }
        }
        return out
    }

    static func checks(line: Int, group: String?) -> [Statement] {
        var out = [Statement(line: line, column: 1, kind: .check(.locked(0))),
                   Statement(line: line, column: 1, kind: .check(.mappings(0)))]
        if let group { out.append(Statement(line: line, column: 1, kind: .check(.ptes(PTECounts(), domain: group)))) }
        return out
    }

    static func fill(_ check: Check, with seen: CheckObservation) -> Check? {
        switch (check, seen) {
        case (.locked, .locked(let v)): .locked(v)
        case (.mappings, .mappings(let v)): .mappings(v)
        case (.ptes(_, let d), .ptes(let p)): .ptes(p, domain: d)
        default: nil
        }
    }
}

import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// What went wrong in one generated sequence.
public enum Finding: Sendable, CustomStringConvertible {
    /// A property of the model did not hold.
    case property(Violation)
    /// The backends answered one statement differently.
    case disagreement(line: Int, statement: String, answers: [String])

    /// The same for the same bug, so shrinking can keep to it.
    public var key: String {
        switch self {
        case .property(let v): "property \(v.property)"
        case .disagreement(_, let statement, _): "disagreement on \(statement.split(separator: " ").first ?? "")"
        }
    }

    public var description: String {
        switch self {
        case .property(let v): "\(v)"
        case .disagreement(let line, let statement, let answers): "line \(line): \(statement): \(answers.joined(separator: ", "))"
        }
    }
}

/// Runs generated sequences on the model (and on other backends side by
/// side), finds property violations and disagreements, and shrinks each to
/// a minimal trace.
public struct Explorer {
    /// Backends to compare with the model, made fresh for each run (the
    /// kernel backend in `--backend both`); empty for model-only runs.
    public var others: () -> [Backend]
    public var generator: SequenceGenerator
    public var shrinkBudget = 2000

    public init(generator: SequenceGenerator = SequenceGenerator(), others: @escaping () -> [Backend] = { [] }) {
        self.generator = generator
        self.others = others
    }

    /// Totals of a run.
    public struct Stats: Sendable {
        public var sequences = 0
        public var operations = 0
        public var findings = 0
    }

    /// Replays `trace` and returns its first finding, if any, with the
    /// report (whose answers fill a saved trace).
    public func check(_ trace: Trace) -> (Finding?, FileReport) {
        let model = ModelBackend(checksInvariants: false)
        let backends = others() + [model]
        let replayer = Replayer(backends: backends)
        let checker = PropertyChecker(model: model)
        checker.watch(replayer)
        let report = replayer.run(trace)
        checker.checkUnmapAllEmpties()
        for b in backends { (b as? ClosableBackend)?.close() }
        if let v = checker.violations.first { return (.property(v), report) }
        if let o = report.outcomes.first(where: { !$0.agree }) {
            return (.disagreement(line: o.line, statement: o.statement, answers: o.got.map { "\($0.backend) \($0.text)" }), report)
        }
        return (nil, report)
    }

    /// Shrinks a failing trace, keeping the same kind of finding.
    public func shrink(_ trace: Trace, finding: Finding) -> (Trace, Finding, Int) {
        var shrinker = Shrinker(budget: shrinkBudget)
        let small = shrinker.shrink(trace) { candidate in
            check(candidate).0?.key == finding.key
        }
        let final = check(small).0 ?? finding
        return (small, final, shrinker.tried)
    }

    /// The shrunk trace as a fixture: every operation with the answer the
    /// first backend gave (the kernel's, in a differential run), and a
    /// header naming the finding.
    public func fixtureText(_ trace: Trace, finding: Finding, seed: UInt64) -> String {
        let (_, report) = check(trace)
        var byLine: [Int: Answer] = [:]
        for o in report.outcomes { if let a = o.answers.first { byLine[o.line] = a } }
        var statements: [Statement] = [
            Statement(line: 0, column: 1, kind: .comment("Found by vfio-sim explore (seed \(seed)), shrunk.")),
            Statement(line: 0, column: 1, kind: .comment("Finding: \(finding)")),
        ]
        for var st in trace.statements {
            if let a = byLine[st.line] { st.expected = a }
            statements.append(st)
        }
        return printTrace(Trace(file: trace.file, statements: statements))
    }
}

/// A backend holding real resources to give back after each run.
public protocol ClosableBackend: Backend {
    func close()
}

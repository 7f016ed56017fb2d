import VFIOCore
import VFIOTrace

/// What one statement of a trace gave on each backend.
///
/// The texts (statement, expected answer, each backend's answer) are
/// rendered only when a report asks for them: a long replay compares typed
/// answers and prints nothing for the operations that held.
public struct Outcome: Sendable {
    public var line: Int
    public var column: Int
    var statementSource: StatementSource
    var expectedSource: Rendered<Answer>?
    /// One per backend, in the replayer's backend order.
    public var got: [Got]
    /// The typed answers behind `got` (empty for checks).
    public var answers: [Answer] = []
    /// For one run of a `repeat=N` statement: which (1-based) and of how
    /// many; nil for a statement run once.
    public var iteration: (index: UInt64, of: UInt64)? = nil
    /// For a `show`: the state each backend reported, in backend order
    /// (nil for every other statement).
    public var state: [ContainerState]? = nil
    /// Whether this is a `show` (prints state; never passes nor fails).
    public var isShow: Bool { state != nil }

    public init(line: Int, column: Int, statement: String, expected: String?, got: [Got]) {
        self.line = line; self.column = column; self.got = got
        statementSource = .text(statement)
        expectedSource = expected.map { .text($0) }
    }

    init(_ st: Statement, expected: Rendered<Answer>?, got: [Got]) {
        line = st.line; column = st.column; self.got = got
        statementSource = .value(st)
        expectedSource = expected
    }

    /// The statement in canonical form, without its answer.
    public var statement: String {
        get {
            switch statementSource {
            case .text(let t): return t
            case .value(let st): return Replayer.text(of: st)
            }
        }
        set { statementSource = .text(newValue) }
    }

    /// The answer or check as written; nil when the trace wrote none.
    public var expected: String? {
        get { expectedSource?.text }
        set { expectedSource = newValue.map { .text($0) } }
    }

    public struct Got: Sendable {
        public var backend: String
        var source: Rendered<Answer>
        /// Whether it matches `expected`; nil when nothing was expected or
        /// the value could not be observed.
        public var held: Bool?
        /// False when the backend could not observe what a check names.
        public var observed: Bool = true
        /// Why the backend gave this answer (the rule and the kernel
        /// function), when it can say and the report needs it.
        public var reason: String? = nil
        /// The line the kernel logs for this answer (`dmesg`), when the
        /// backend can say and the report asks for the reason.
        public var kernelLog: String? = nil
        /// What a check read, typed (nil for operations, and when it could
        /// not be observed).
        public var observation: CheckObservation? = nil

        public init(backend: String, text: String, held: Bool?, observed: Bool = true) {
            self.backend = backend; self.source = .text(text); self.held = held; self.observed = observed
        }

        init(backend: String, answer: Answer, held: Bool?) {
            self.backend = backend; self.source = .value(answer); self.held = held
        }

        /// The answer as a trace writes it.
        public var text: String {
            get { source.text }
            set { source = .text(newValue) }
        }
    }

    /// Every backend that could observe the answer gave the same one (a
    /// backend that cannot read a value neither agrees nor disagrees).
    public var agree: Bool {
        let seen = got.filter(\.observed)
        guard seen.count > 1 else { return true }
        return seen.allSatisfy { $0.source.same(as: seen[0].source) }
    }
    /// More than one backend gave an answer, so they could be compared.
    public var compared: Bool { got.filter(\.observed).count > 1 }
    /// An expectation was written and some backend did not meet it.
    public var failed: Bool { got.contains { $0.held == false } }
    /// An expectation was written and checked on every backend.
    public var passed: Bool { expectedSource != nil && got.allSatisfy { $0.held == true } }
    /// An expectation was written but nothing could check it.
    public var skipped: Bool { expectedSource != nil && got.allSatisfy { $0.held == nil } }
}

/// A statement kept as it is until its text is needed.
enum StatementSource: Sendable {
    case text(String)
    case value(Statement)
}

/// A value kept as it is until its text is needed.
enum Rendered<Value: Sendable & Hashable & CustomStringConvertible>: Sendable {
    case text(String)
    case value(Value)

    var text: String {
        switch self {
        case .text(let t): t
        case .value(let v): v.description
        }
    }

    func same(as other: Rendered) -> Bool {
        if case .value(let a) = self, case .value(let b) = other { return a == b }
        return text == other.text
    }
}

/// The replay of one file.
public struct FileReport: Sendable {
    public var file: String
    /// Backend name → the kernel whose answers it gave.
    public var kernels: [(backend: String, kernel: String)]
    public var outcomes: [Outcome] = []
    /// Operations and checks that held what the trace wrote and were
    /// counted instead of kept in `outcomes` (`Replayer.keepsHeldOutcomes`
    /// off): a text report prints nothing for them, and building an
    /// `Outcome` per operation cost more than the model's answer (issue 15).
    public var heldNotKept = 0
    /// Setup a backend could not honour, broken model invariants, setup
    /// differences, leaks: everything that is not an answer.
    public var problems: [ReportProblem] = []
    /// The problems that fail the file.
    public var errors: [ReportProblem] { problems.filter(\.isError) }
    /// The problems reported without failing it.
    public var notes: [ReportProblem] { problems.filter { !$0.isError } }

    public init(file: String, kernels: [(backend: String, kernel: String)]) {
        self.file = file
        self.kernels = kernels
    }

    /// True when every written answer held, the backends agreed and
    /// nothing went wrong.
    public var ok: Bool { errors.isEmpty && !outcomes.contains { $0.failed || !$0.agree } }
}

import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// A property that did not hold, and where.
public struct Violation: Sendable, CustomStringConvertible {
    /// A short name, the same for the same bug: shrinking keeps it.
    public var property: String
    public var line: Int
    public var detail: String
    public var description: String { "line \(line): \(property): \(detail)" }
    public init(property: String, line: Int, detail: String) {
        self.property = property
        self.line = line
        self.detail = detail
    }
}

/// Watches a replay on the model and checks, after every operation, the
/// properties that must hold whatever the answer: the container's
/// invariants (`checkInvariants`), then the properties its driver states
/// (`ContainerProperties`: type1's and iommufd's differ), through the
/// backend's one container interface.
///
/// An operation the model answers `hang` ends the sequence: the state it
/// leaves (that of a process stuck in the ioctl) must keep the invariants,
/// nothing after it is checked, and the explorer notes it, never as a
/// finding.
public final class PropertyChecker {
    public let model: ModelBackend
    public private(set) var violations: [Violation] = []
    var before: ContainerSnapshot? = nil
    /// The line whose operation the model says never returns (it answered
    /// `hang`): the process is stuck there, so nothing after it is checked.
    public private(set) var hungAt: Int? = nil
    /// Why, as the model says.
    public private(set) var hangReason: String? = nil

    public init(model: ModelBackend) { self.model = model }

    /// Installs the checks on `replayer`, which must drive `model`.
    public func watch(_ replayer: Replayer) {
        replayer.willRun = { [unowned self] _ in
            // After a predicted hang the process is stuck in that ioctl:
            // later statements (all answered hang) are not checked.
            self.model.forgetLastCall()
            self.before = self.hungAt == nil ? self.model.snapshot() : nil
        }
        replayer.didRun = { [unowned self] st, outcome in self.check(st, outcome) }
    }

    func record(_ property: String, _ st: Statement, _ detail: String) {
        violations.append(Violation(property: property, line: st.line, detail: detail))
    }

    func check(_ st: Statement, _ outcome: Outcome) {
        guard let before, model.index(in: outcome) != nil, model.lastCall != nil else { return }
        let broken = model.invariantProblem()
        // The operation that hung: the state checked is the one the
        // process is stuck in (the invariants say what it may be); it is
        // not a failed operation, and what it removed is not reported.
        if let hang = model.inspect({ $0.hang }) {
            hungAt = st.line
            hangReason = hang
            if let broken { record("invariant", st, broken.detail) }
            return
        }
        if let broken { record("invariant", st, broken.detail); return }
        for v in model.propertyViolations(before: before) { record(v.property, st, v.detail) }
    }

    /// After the sequence: UNMAP_ALL must leave an empty container with
    /// nothing locked.
    public func checkUnmapAllEmpties() {
        guard hungAt == nil, let v = model.unmapAllLeftovers() else { return }
        violations.append(Violation(property: v.property, line: 0, detail: v.detail))
    }
}

extension ModelBackend {
    /// This backend's position among an outcome's answers.
    func index(in outcome: Outcome) -> Int? {
        guard let i = outcome.got.firstIndex(where: { $0.backend == name }), i < outcome.answers.count else { return nil }
        return i
    }
}

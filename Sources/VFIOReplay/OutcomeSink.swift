/// Where the outcomes of a run go, in file order: each is kept, or, when
/// the run counts held answers (`ReplayOptions.keepsHeldOutcomes` off, one
/// backend, no observer), an answer that held what the trace wrote and
/// wants no reason is only counted. A text report without --verbose prints
/// nothing for those, and building an `Outcome` per operation cost more
/// than the model's answer (issue 15).
struct OutcomeSink {
    /// Whether held answers are counted instead of kept.
    let countsHeld: Bool
    private(set) var outcomes: [Outcome] = []
    private(set) var heldNotKept = 0

    init(countsHeld: Bool) { self.countsHeld = countsHeld }

    mutating func keep(_ outcome: Outcome) { outcomes.append(outcome) }

    /// Counts one answer that held and is not kept.
    mutating func countHeld() { heldNotKept += 1 }
}

import VFIOCore

/// How a replay runs and what its report keeps: set before `Replayer.run`,
/// which copies them once at its start, so a run never sees them change.
public struct ReplayOptions: Sendable {
    /// Whether every answer gets its reason (`--explain`), not only the
    /// ones that failed or may surprise.
    public var explainsEveryAnswer = false
    /// Whether an answer that held what the trace wrote still gets its
    /// reason when it may surprise (an errno, a short unmap). A text report
    /// prints held answers only with --verbose, so a replay that will not
    /// print them turns this off: working out a reason builds strings and
    /// cost a third of a replay's instructions (issue 15).
    public var explainsHeldAnswers = true
    /// Whether an operation or check that held what the trace wrote is kept
    /// as an `Outcome`. Off, with one backend and no `willRun`/`didRun`
    /// observer, it is only counted (`FileReport.heldNotKept`): every answer
    /// is still compared, exactly, and one that did not hold, wants a
    /// reason, or was not written is kept as before. `vfio-sim replay`
    /// turns it off for a text report without --verbose, which prints
    /// nothing for held answers.
    public var keepsHeldOutcomes = true
    /// The container kind for traces that do not say (`--container`); a
    /// trace's `container` statement wins. Nil: type1, the backends' own.
    public var defaultContainer: ContainerKind? = nil
    /// When set, every trace runs with this kind whatever its `container`
    /// statement says (`vfio-sim compare` runs each trace under both).
    public var pinnedContainer: ContainerKind? = nil
    /// Whether `run` closes the backends at the end. A caller that reads
    /// their state after the run (the explorer's properties) turns it off
    /// and calls `close()` itself.
    public var closesBackends = true

    public init() {}
}

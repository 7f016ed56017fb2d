import VFIOCore

/// Something a replay found that is not an answer to a statement: typed,
/// so a report (text, JSON, JUnit, the lane's summary, the explorer) decides
/// what it means without reading prose.
public struct ReportProblem: Sendable, Hashable, CustomStringConvertible {
    /// The trace line it concerns; 0 for the whole file.
    public var line: Int
    public var kind: Kind

    public enum Kind: Sendable, Hashable {
        /// A backend could not honour a setup statement (memory it cannot
        /// allocate, a limit it cannot set, a group it cannot attach).
        case setup(backend: String, message: String)
        /// What a backend reported when it was closed.
        case backend(String, BackendProblem)
        /// A property of the model that did not hold (`vfio-sim explore`).
        case property(name: String, detail: String)
        /// The trace's first domain is not the IOMMU the kernel has; the
        /// model follows the kernel, so answers are still compared.
        case setupDifference(String)
        /// The run could not finish: a backend could not be made, or the
        /// process replaying the trace died.
        case aborted(String)
    }

    public init(line: Int = 0, _ kind: Kind) { self.line = line; self.kind = kind }

    /// Errors fail the file; the rest are notes.
    public var isError: Bool {
        switch kind {
        case .setup, .property, .aborted: true
        case .backend(_, let p): p.isFailure
        case .setupDifference: false
        }
    }

    /// The text a report prints after `FILE:LINE: error:` or `note:`.
    public var message: String {
        switch kind {
        case .setup(let backend, let message): "\(backend): \(message)"
        case .backend(let backend, let p): backend == "model" ? p.description : "\(backend): \(p)"
        case .property(let name, let detail): "property \(name): \(detail)"
        case .setupDifference(let text): "setup: \(text)"
        case .aborted(let why): why
        }
    }

    public var description: String { "\(line): \(isError ? "error" : "note"): \(message)" }
}

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
        /// The file could not be read (column 0) or parsed: nothing of it ran.
        case input(column: Int, message: String)
        /// Something the reader should know that fails nothing (a `kernel`
        /// version answered by another profile).
        case note(String)
    }

    public init(line: Int = 0, _ kind: Kind) { self.line = line; self.kind = kind }

    /// Errors fail the file; the rest are notes.
    public var isError: Bool {
        switch kind {
        case .setup, .property, .aborted, .input: true
        case .backend(_, let p): p.isFailure
        case .setupDifference, .note: false
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
        case .input(_, let message): message
        case .note(let text): text
        }
    }

    public var description: String { "\(line): \(isError ? "error" : "note"): \(message)" }
}

extension ReportProblem {
    /// Whether the file could not be read or parsed.
    public var isInput: Bool { if case .input = kind { true } else { false } }

    /// `FILE:LINE:COLUMN: error: …` (or `FILE: error: …`), as compilers print.
    public func located(in file: String) -> String {
        let level = isError ? "error" : "note"
        if case .input(let column, _) = kind, line > 0 { return "\(file):\(line):\(column): \(level): \(message)" }
        return line > 0 ? "\(file):\(line): \(level): \(message)" : "\(file): \(level): \(message)"
    }
}

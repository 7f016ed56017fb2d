/// What a replay process asks the process that supervises it, over the
/// pipe `SystemCalls.inChild(serving:)` opens: the supervisor is the only
/// writer of a module parameter (`ModuleParameterGuard`), so a child that
/// needs another value asks for it.
///
/// On the pipe each message is one line; these types are the only code
/// that writes or reads those lines:
///
///     set PARAMETER VALUE        (a request)
///     ok | refused MESSAGE       (its answer)
public enum ParentRequest: Sendable, Hashable {
    /// Set `parameter` to `value` for the rest of this child's life.
    case set(ModuleParameter, value: String)

    /// The request as one line, without its newline.
    public var line: String {
        switch self {
        case .set(let p, let value): "set \(p.rawValue) \(value.filter { $0 != "\n" && $0 != " " })"
        }
    }

    /// The request `line` holds, or nil when it is none this version knows.
    public init?(line: String) {
        let words = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard words.count == 3, words[0] == "set", let p = ModuleParameter(rawValue: words[1]), !words[2].isEmpty else { return nil }
        self = .set(p, value: words[2])
    }
}

/// The supervisor's answer to a `ParentRequest`.
public enum ParentAnswer: Sendable, Hashable {
    case ok
    /// Not done, and why (the message a trace's error shows).
    case refused(String)

    public var line: String {
        switch self {
        case .ok: "ok"
        case .refused(let why): "refused " + why.filter { $0 != "\n" }
        }
    }

    /// The answer `line` holds; a line that is none reads as a refusal
    /// that quotes it, so a confused parent never reads as `ok`.
    public init(line: String) {
        if line == "ok" { self = .ok; return }
        if line.hasPrefix("refused ") { self = .refused(String(line.dropFirst("refused ".count))); return }
        self = .refused("the supervising process answered '\(line)'")
    }

    /// The answer to a line that is no request this version knows.
    public static func notUnderstood(_ line: String) -> ParentAnswer {
        .refused("the supervising process does not understand '\(line)'")
    }
}

/// A subcommand's arguments, read one at a time: each option that takes a
/// value reads it with `value(for:)`, which names the option when it is
/// missing or malformed.
struct Arguments {
    private let words: [String]
    private var next = 0
    init(_ words: [String]) { self.words = words }

    /// The next word, or nil at the end.
    mutating func pop() -> String? {
        guard next < words.count else { return nil }
        defer { next += 1 }
        return words[next]
    }

    /// The next word unless it is an option (`--...`), which stays next.
    mutating func popOperand() -> String? {
        guard next < words.count, !words[next].hasPrefix("--") else { return nil }
        defer { next += 1 }
        return words[next]
    }

    /// The value after `flag`.
    mutating func value(for flag: String) throws(UsageError) -> String {
        guard let v = pop() else { throw UsageError(message: "\(flag) needs a value") }
        return v
    }

    /// A whole number after `flag`, within `range`.
    mutating func number<T: FixedWidthInteger>(for flag: String, in range: ClosedRange<T> = T.min...T.max) throws(UsageError) -> T {
        let v = try value(for: flag)
        guard let n = T(v), range.contains(n) else {
            let bounds = range == T.min...T.max ? "a number" : "a number from \(range.lowerBound) to \(range.upperBound)"
            throw UsageError(message: "\(flag) takes \(bounds), not '\(v)'")
        }
        return n
    }

    /// One of `T`'s spellings after `flag` (`--backing 2M`), named in the
    /// message when it is none of them.
    mutating func choice<T: CaseIterable & RawRepresentable>(for flag: String) throws(UsageError) -> T where T.RawValue == String {
        let v = try value(for: flag)
        guard let c = T(rawValue: v) else {
            let all = T.allCases.map(\.rawValue)
            let list = all.count > 1 ? all.dropLast().joined(separator: ", ") + " or " + all.last! : all.joined()
            throw UsageError(message: "\(flag) takes \(list), not '\(v)'")
        }
        return c
    }

    /// `yes` or `no` (or another pair of words) after `flag`: whether it was the first.
    mutating func either(for flag: String, _ first: String, _ second: String) throws(UsageError) -> Bool {
        let v = try value(for: flag)
        guard v == first || v == second else { throw UsageError(message: "\(flag) takes \(first) or \(second), not '\(v)'") }
        return v == first
    }
}

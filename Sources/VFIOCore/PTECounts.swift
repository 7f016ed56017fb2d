/// Leaf page-table entries by page size.
public struct PTECounts: Hashable, Sendable, CustomStringConvertible {
    /// One page size and how many leaf entries of it.
    public struct Entry: Hashable, Sendable {
        public var size: UInt64
        public var count: UInt64
        public init(size: UInt64, count: UInt64) { self.size = size; self.count = count }
    }

    /// Ascending by size, one entry per size, no zero counts: one spelling
    /// per value, so comparing two is a short array compare. (A dictionary
    /// was built, filtered and hashed for every `check ptes=` a replay
    /// made: more instructions than the map before it, issue 15.)
    public private(set) var entries: [Entry]

    public init(_ counts: [UInt64: UInt64] = [:]) { entries = Self.sorted(counts) }

    /// From entries ascending by size, one per size, as a page table's
    /// per-size totals come (zero counts are dropped); entries in any other
    /// order are sorted and the counts of a repeated size added.
    public init(ascending: [Entry]) {
        if zip(ascending, ascending.dropFirst()).allSatisfy({ $0.size < $1.size }) {
            entries = ascending.filter { $0.count != 0 }
        } else {
            entries = Self.sorted(Dictionary(ascending.map { ($0.size, $0.count) }, uniquingKeysWith: { $0 &+ $1 }))
        }
    }

    static func sorted(_ counts: [UInt64: UInt64]) -> [Entry] {
        counts.filter { $0.value != 0 }.map { Entry(size: $0.key, count: $0.value) }.sorted { $0.size < $1.size }
    }

    /// Page size → count; sizes with a count of 0 are absent.
    public var counts: [UInt64: UInt64] {
        get { Dictionary(uniqueKeysWithValues: entries.map { ($0.size, $0.count) }) }
        set { self = PTECounts(newValue) }
    }

    public var description: String {
        entries.isEmpty ? "none" : entries.map { "\(formatSize($0.size)):\($0.count)" }.joined(separator: ",")
    }
}

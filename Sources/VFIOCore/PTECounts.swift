/// Leaf page-table entries by page size.
public struct PTECounts: Hashable, Sendable, CustomStringConvertible {
    /// Page size → count; sizes with a count of 0 are absent.
    public var counts: [UInt64: UInt64]
    public init(_ counts: [UInt64: UInt64] = [:]) { self.counts = counts.filter { $0.value != 0 } }
    public var description: String {
        counts.isEmpty ? "none" : counts.keys.sorted().map { "\(formatSize($0)):\(counts[$0]!)" }.joined(separator: ",")
    }
}

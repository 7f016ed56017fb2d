/// A page-size bitmap (`pgsize_bitmap`, `iova_pgsizes`): bit n set means
/// pages of 2^n bytes are supported.
public struct PageSizes: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ sizes: [UInt64]) { rawValue = sizes.reduce(0) { $0 | $1 } }

    /// The host page size: 4 KiB on x86-64, the only host this models.
    public static let pageSize: UInt64 = 4096
    /// `PAGE_MASK` as a bitmap: every power of two from the host page up.
    /// The container reports this before any domain is attached.
    public static let pageMask = PageSizes(rawValue: ~(pageSize - 1))

    /// How many host pages `bytes` take, the last one partly filled
    /// counted whole, without wrapping at 2^64-1 (what `mlock` locks).
    public static func hostPages(covering bytes: UInt64) -> UInt64 {
        bytes / pageSize + (bytes % pageSize == 0 ? 0 : 1)
    }

    /// The sizes, smallest first.
    public var sizes: [UInt64] {
        var out: [UInt64] = []
        var bits = rawValue
        while bits != 0 {
            let low = bits & (~bits &+ 1)
            out.append(low)
            bits &= bits - 1
        }
        return out
    }

    /// The smallest size, or nil for an empty bitmap.
    public var smallest: UInt64? { rawValue == 0 ? nil : rawValue & (~rawValue &+ 1) }
    public var isEmpty: Bool { rawValue == 0 }
    public func contains(_ size: UInt64) -> Bool { rawValue & size != 0 }
}

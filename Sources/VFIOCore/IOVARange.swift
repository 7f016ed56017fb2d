/// An inclusive range of 64-bit addresses, `start...last`.
///
/// The kernel keeps every range with an inclusive end (`vfio_iova.end`,
/// `vfio_find_dma`'s `start + size - 1`) so that the page ending at 2^64-1
/// can be described; a half-open range cannot hold it in a u64.
public struct IOVARange: Hashable, Sendable, CustomStringConvertible {
    public var start: UInt64
    public var last: UInt64

    /// - Precondition: `start <= last` (callers validate input first).
    public init(start: UInt64, last: UInt64) {
        precondition(start <= last, "IOVARange start above last")
        self.start = start
        self.last = last
    }

    /// The range `start ..< start+size`, or nil when `size` is 0 or the end
    /// wraps past 2^64-1.
    public init?(start: UInt64, size: UInt64) {
        guard size != 0 else { return nil }
        let (last, overflow) = start.addingReportingOverflow(size - 1)
        guard !overflow else { return nil }
        self.start = start
        self.last = last
    }

    /// The whole 64-bit space.
    public static let all = IOVARange(start: 0, last: .max)

    /// Number of bytes, or nil for the whole 64-bit space (2^64 does not fit).
    public var size: UInt64? { last == .max && start == 0 ? nil : last - start + 1 }

    public func overlaps(_ other: IOVARange) -> Bool { start <= other.last && other.start <= last }
    public func contains(_ other: IOVARange) -> Bool { start <= other.start && other.last <= last }
    public func contains(_ address: UInt64) -> Bool { start <= address && address <= last }

    public var description: String { "0x\(String(start, radix: 16))-0x\(String(last, radix: 16))" }

    /// `list` with every range of `holes` cut out, splitting ranges where a
    /// hole falls inside one (`vfio_iommu_resv_exclude`).
    public static func excluding(_ holes: [IOVARange], from list: [IOVARange]) -> [IOVARange] {
        var list = list
        for r in holes {
            var out: [IOVARange] = []
            for n in list {
                if r.start > n.last || r.last < n.start { out.append(n); continue }
                if r.start > n.start { out.append(IOVARange(start: n.start, last: r.start - 1)) }
                if r.last < n.last { out.append(IOVARange(start: r.last + 1, last: n.last)) }
            }
            list = out
        }
        return list
    }
}

// How the answers print numbers: shared by the trace printer, the
// reports and the backends' messages.

/// `2M`, `4K`, `0x1800`: a size with a binary suffix when it is exact.
public func formatSize(_ value: UInt64) -> String {
    if value == 0 { return "0" }
    for (shift, suffix) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] where value % (1 << UInt64(shift)) == 0 {
        return "\(value >> UInt64(shift))\(suffix)"
    }
    return String(value)
}

/// An address in hex: `0x7f0000000000`.
public func formatAddress(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

/// `0xfee00000-0xfeefffff`
public func formatRange(_ r: IOVARange) -> String { "\(formatAddress(r.start))-\(formatAddress(r.last))" }

/// `4K,2M,1G`, or `mask:0x...` when a list would be long (more than 8 sizes).
public func formatPageSizes(_ p: PageSizes) -> String {
    let sizes = p.sizes
    if sizes.isEmpty { return "mask:0x0" }
    if sizes.count > 8 || sizes.contains(where: { $0 < 1024 }) { return "mask:" + formatAddress(p.rawValue) }
    return sizes.map(formatSize).joined(separator: ",")
}

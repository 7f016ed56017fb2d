// How the answers print numbers: shared by the trace printer, the
// reports and the backends' messages.

/// `2M`, `4K`, `6144`: a size with a binary suffix when it is exact and
/// short (fewer than 2^20 of the unit); in hex when no suffix makes it
/// short (`0x1fffa0000`, not `8388224K`), so a trace can still read it.
public func formatSize(_ value: UInt64) -> String {
    if value == 0 { return "0" }
    for (shift, suffix) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] where value % (1 << UInt64(shift)) == 0 {
        if value >> UInt64(shift) < 1 << 20 { return "\(value >> UInt64(shift))\(suffix)" }
        break
    }
    return value < 1 << 20 ? String(value) : formatAddress(value)
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

/// A size for people, exact: `2 MiB`, `8 GiB - 384 KiB`, `1 GiB + 4 KiB`,
/// `4 KiB - 1 byte`, `1000 bytes`; a size no such form says exactly in two terms is given in
/// hex (`0xfffffffffffff123 bytes`).
public func readableSize(_ value: UInt64) -> String {
    let units: [(shift: UInt64, name: String)] = [(60, "EiB"), (50, "PiB"), (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")]
    if value == 0 { return "0 bytes" }
    if value < 1024 { return "\(value) byte\(value == 1 ? "" : "s")" }
    /// `value` as one term `N UNIT` with N < 1024 (bytes below 1 KiB).
    func term(_ v: UInt64) -> String? {
        if v < 1024 { return "\(v) byte\(v == 1 ? "" : "s")" }
        for u in units where v % (1 << u.shift) == 0 && v >> u.shift < 1024 { return "\(v >> u.shift) \(u.name)" }
        return nil
    }
    if let t = term(value) { return t }
    // Two terms: a whole number of one unit, plus or minus one term in a
    // smaller unit; the one with the smallest remainder wins.
    var best: (rest: UInt64, text: String)? = nil
    for u in units {
        let unit: UInt64 = 1 << u.shift
        let below = value / unit
        guard below < 1024 else { continue }
        if below > 0, let r = term(value - below * unit), value - below * unit < unit {
            if best == nil || value - below * unit < best!.rest { best = (value - below * unit, "\(below) \(u.name) + \(r)") }
        }
        let (aboveTotal, o1) = (below + 1).multipliedReportingOverflow(by: unit)
        if below + 1 < 1024 || (below + 1 == 1024 && u.shift == 60), !o1, let r = term(aboveTotal - value) {
            if best == nil || aboveTotal - value < best!.rest { best = (aboveTotal - value, "\(below + 1) \(u.name) - \(r)") }
        }
    }
    return best?.text ?? "\(formatAddress(value)) bytes"
}

/// `2M`, or `0x1fffa0000 (8 GiB - 384 KiB)`: the trace's spelling of a size
/// (`formatSize`), followed by the readable one when the two differ in
/// more than the unit's spelling.
public func sizeForPeople(_ value: UInt64) -> String {
    let trace = formatSize(value)
    let people = readableSize(value)
    // `2M` and `2 MiB` say the same: no need for both.
    if people.split(separator: " ").count == 2, let n = people.split(separator: " ").first, trace.hasPrefix(n) { return trace }
    return "\(trace) (\(people))"
}

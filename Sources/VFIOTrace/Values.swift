import VFIOCore

// The value syntax of TRACE_FORMAT.md, "Lexical rules": NUMBER, RANGE, LIST
// and the page-size LIST. Each parser takes the value's text and the column
// it starts at, and throws a `LineError` pointing into it.

/// What is wrong with a NUMBER's text.
enum NumberProblem: Error {
    case notANumber
    case hexSuffix
    case overflow
}

/// Parses NUMBER: decimal with at most one binary suffix (`K`, `M`, `G`,
/// `T`), or `0x`/`0X` hex (any case, no suffix). Never wraps.
///
/// - Complexity: O(n) in the length of `text`.
func parseNumber(_ text: Substring) -> Result<UInt64, NumberProblem> {
    let u = text.utf8
    guard let first = u.first else { return .failure(.notANumber) }
    guard first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9") else { return .failure(.notANumber) }
    var digits = u[...]
    if u.count > 2, first == UInt8(ascii: "0"), let x = u.dropFirst().first, x == UInt8(ascii: "x") || x == UInt8(ascii: "X") {
        digits = u.dropFirst(2)
        // Syntax first, so `0x10K` is named as a suffix and not as junk.
        var end = digits.endIndex
        if let last = digits.last, suffixShift(last) != nil {
            end = digits.index(before: end)
            if digits[..<end].allSatisfy({ hexValue($0) != nil }) {
                return .failure(digits[..<end].isEmpty ? .notANumber : .hexSuffix)
            }
            return .failure(.notANumber)
        }
        var value: UInt64 = 0
        for c in digits {
            guard let d = hexValue(c) else { return .failure(.notANumber) }
            guard value >> 60 == 0 else {
                // Keep checking the syntax: junk after an overflow is junk.
                return digits.allSatisfy({ hexValue($0) != nil }) ? .failure(.overflow) : .failure(.notANumber)
            }
            value = value << 4 | UInt64(d)
        }
        return .success(value)
    }
    var shift: UInt64 = 0
    if let last = u.last, let s = suffixShift(last) {
        shift = s
        digits = u.dropLast()
    }
    guard !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
        return .failure(.notANumber)
    }
    var value: UInt64 = 0
    for c in digits {
        let (m, o1) = value.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
        if o1 || o2 { return .failure(.overflow) }
        value = a
    }
    guard shift == 0 || value <= UInt64.max >> shift else { return .failure(.overflow) }
    return .success(value << shift)
}

private func suffixShift(_ c: UInt8) -> UInt64? {
    switch c {
    case UInt8(ascii: "K"): 10
    case UInt8(ascii: "M"): 20
    case UInt8(ascii: "G"): 30
    case UInt8(ascii: "T"): 40
    default: nil
    }
}

private func hexValue(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
}

/// A NUMBER, or an error at `column` that says `expected WHAT`.
func number(_ text: Substring, at column: Int, expected what: String = "a number") throws(LineError) -> UInt64 {
    switch parseNumber(text) {
    case .success(let v): return v
    case .failure(.notANumber): throw LineError(column, "expected \(what), found \(quoted(text))")
    case .failure(.hexSuffix): throw LineError(column, "expected a hex number without a suffix, found \(quoted(text))")
    case .failure(.overflow): throw LineError(column, "expected a value that fits in 64 bits, found \(quoted(text))")
    }
}

/// A NUMBER that must fit a u32 (`argsz`, `flags`, `dma-entry-limit`).
func number32(_ text: Substring, at column: Int, expected what: String = "a number") throws(LineError) -> UInt32 {
    let v = try number(text, at: column, expected: what)
    guard let small = UInt32(exactly: v) else {
        throw LineError(column, "expected a value that fits in 32 bits, found \(quoted(text))")
    }
    return small
}

/// RANGE: `START-END` (END inclusive, not below START) or `START+SIZE`
/// (SIZE not 0, the range ending at or below 2^64-1).
func range(_ text: Substring, at column: Int) throws(LineError) -> IOVARange {
    let u = text.utf8
    guard let sep = u.firstIndex(where: { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "+") }),
          sep != u.startIndex, u.index(after: sep) != u.endIndex
    else { throw LineError(column, "expected a range START-END or START+SIZE, found \(quoted(text))") }
    let startText = text[..<sep]
    let restText = text[u.index(after: sep)...]
    let restColumn = column + startText.unicodeScalars.count + 1
    let start = try number(startText, at: column)
    if u[sep] == UInt8(ascii: "-") {
        let last = try number(restText, at: restColumn)
        guard last >= start else {
            throw LineError(column, "expected a range whose end is not below its start, found \(quoted(text))")
        }
        return IOVARange(start: start, last: last)
    }
    let size = try number(restText, at: restColumn)
    guard size != 0 else { throw LineError(restColumn, "expected a nonzero range size, found \(quoted(restText))") }
    guard let r = IOVARange(start: start, size: size) else {
        throw LineError(column, "expected a range that ends at or below 0xffffffffffffffff, found \(quoted(text))")
    }
    return r
}

/// LIST: calls `body` with each comma-separated item of `text` and its
/// column, stopping at the first error.
///
/// - Complexity: O(n) in the length of `text`.
func forEachItem(_ text: Substring, at column: Int, separator: UInt8 = UInt8(ascii: ","),
                 _ body: (Substring, Int) throws(LineError) -> Void) throws(LineError) {
    let u = text.utf8
    var start = u.startIndex
    var startColumn = column
    var col = column
    var i = u.startIndex
    while i < u.endIndex {
        let c = u[i]
        if c == separator {
            try body(text[start..<i], startColumn)
            start = u.index(after: i)
            startColumn = col + 1
        }
        if c & 0xC0 != 0x80 { col += 1 }
        i = u.index(after: i)
    }
    try body(text[start..<u.endIndex], startColumn)
}

/// `RANGE,RANGE,...`
func ranges(_ text: Substring, at column: Int) throws(LineError) -> [IOVARange] {
    var out: [IOVARange] = []
    try forEachItem(text, at: column) { (item, col) throws(LineError) in out.append(try range(item, at: col)) }
    return out
}

/// A page-size LIST (`4K,2M,1G`, each a power of two) or `mask:NUMBER`.
func pageSizes(_ text: Substring, at column: Int) throws(LineError) -> PageSizes {
    if text.hasPrefix("mask:") {
        return PageSizes(rawValue: try number(text.dropFirst(5), at: column + 5))
    }
    var bits: UInt64 = 0
    try forEachItem(text, at: column) { (item, col) throws(LineError) in bits |= try powerOfTwo(item, at: col) }
    return PageSizes(rawValue: bits)
}

/// A NUMBER that is a power of two (a page size).
func powerOfTwo(_ text: Substring, at column: Int) throws(LineError) -> UInt64 {
    let v = try number(text, at: column)
    guard v != 0 && v & (v - 1) == 0 else { throw LineError(column, "expected a power of two, found \(quoted(text))") }
    return v
}

/// `4K:N,2M:N,...` or `none`.
func pteCounts(_ text: Substring, at column: Int) throws(LineError) -> PTECounts {
    if text == "none" { return PTECounts() }
    var counts: [UInt64: UInt64] = [:]
    try forEachItem(text, at: column) { (item, col) throws(LineError) in
        let colon = item.utf8.firstIndex(of: UInt8(ascii: ":"))
        guard let colon, !item[item.utf8.index(after: colon)...].utf8.contains(UInt8(ascii: ":")) else {
            throw LineError(col, "expected SIZE:COUNT, found \(quoted(item))")
        }
        let sizeText = item[..<colon], countText = item[item.utf8.index(after: colon)...]
        let size = try powerOfTwo(sizeText, at: col)
        let count = try number(countText, at: col + sizeText.unicodeScalars.count + 1)
        guard counts[size] == nil else { throw LineError(col, "expected each page size once, found \(quoted(item))") }
        counts[size] = count
    }
    return PTECounts(counts)
}

/// NAME of a group: `[A-Za-z0-9_.-]+`.
func domainName(_ text: Substring, at column: Int) throws(LineError) -> String {
    let ok = !text.isEmpty && text.utf8.allSatisfy { c in
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
            || c == UInt8(ascii: "-")
    }
    guard ok else {
        throw LineError(column, "expected a domain name of letters, digits, '_', '.' and '-', found \(quoted(text))")
    }
    return String(text)
}

/// `yes` or `no`.
func yesNo(_ text: Substring, at column: Int) throws(LineError) -> Bool {
    switch text {
    case "yes": return true
    case "no": return false
    default: throw LineError(column, "expected one of yes, no, found \(quoted(text))")
    }
}

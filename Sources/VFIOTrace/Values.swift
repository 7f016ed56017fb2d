import VFIOCore

// The value syntax of TRACE_FORMAT.md, "Lexical rules": NUMBER, RANGE, LIST
// and the page-size LIST. Each parser takes the value's bytes (a `Text`,
// which knows where it is in the file) and throws a `LineError` pointing
// into it. They read the bytes directly: no `String` is made unless a value
// ends up in a statement or a message.

/// What is wrong with a NUMBER's text.
enum NumberProblem: Error {
    case notANumber
    case hexSuffix
    case overflow
}

@inline(__always) private func isDecimal(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

/// Parses NUMBER: decimal with at most one binary suffix (`K`, `M`, `G`,
/// `T`), or `0x`/`0X` hex (any case, no suffix). Never wraps.
///
/// The numbers of a trace are nearly all well formed and short, so this
/// reads them in one tight loop that cannot overflow (at most 16 hex or 19
/// decimal digits), and hands anything else (junk, a suffix on hex, more
/// digits) to `parseNumberExactly`, which names the problem.
///
/// - Complexity: O(n) in the length of `text`.
@inline(__always)
func parseNumber(_ text: Text) -> Result<UInt64, NumberProblem> {
    if let value = parseShortNumber(text) { return .success(value) }
    return parseNumberExactly(text)
}

/// A well-formed NUMBER of at most 16 hex or 19 decimal digits, or nil
/// (then `parseNumberExactly` decides). Agrees with `parseNumberExactly`
/// on every text for which it is not nil.
func parseShortNumber(_ text: Text) -> UInt64? {
    let count = text.count
    guard count > 0 else { return nil }
    let base = text.base
    var i = text.start
    if count > 2 && base[i] == UInt8(ascii: "0") && base[i &+ 1] | 0x20 == UInt8(ascii: "x") {
        guard count <= 18 else { return nil }
        i &+= 2
        var value: UInt64 = 0
        let digits = hexDigitValues.utf8Start
        while i < text.end {
            let d = digits[Int(base[i])]
            guard d < 16 else { return nil }
            value = value &<< 4 | UInt64(d)
            i &+= 1
        }
        return value
    }
    var end = text.end
    var shift: UInt64 = 0
    switch base[end &- 1] {
    case UInt8(ascii: "K"): shift = 10
    case UInt8(ascii: "M"): shift = 20
    case UInt8(ascii: "G"): shift = 30
    case UInt8(ascii: "T"): shift = 40
    default: break
    }
    if shift != 0 { end &-= 1 }
    guard end > i && end &- i <= 19 else { return nil }
    var value: UInt64 = 0
    while i < end {
        let d = base[i] &- UInt8(ascii: "0")
        guard d < 10 else { return nil }
        value = value &* 10 &+ UInt64(d)
        i &+= 1
    }
    guard value <= UInt64.max &>> shift else { return nil }
    return value &<< shift
}

/// Each byte's value as a hex digit, or 16 when it is none: one load and
/// one test a digit, where telling digits from letters took two ranges.
/// A static string's bytes are a constant in the binary (a global array
/// would be made lazily and checked on every use); every value is below
/// 0x80, so each is one byte (each row ends in `\` so no line feed is
/// part of it). `hexDigitTable` tests it against `hexValue`.
let hexDigitValues: StaticString = """
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{0}\u{1}\u{2}\u{3}\u{4}\u{5}\u{6}\u{7}\u{8}\u{9}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{A}\u{B}\u{C}\u{D}\u{E}\u{F}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{A}\u{B}\u{C}\u{D}\u{E}\u{F}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\
    \u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}\u{10}
    """

/// `parseNumber` the long way: every text, with the problem named.
func parseNumberExactly(_ text: Text) -> Result<UInt64, NumberProblem> {
    guard let first = text.first, isDecimal(first) else { return .failure(.notANumber) }
    if text.count > 2, first == UInt8(ascii: "0"), text[text.start + 1] == UInt8(ascii: "x") || text[text.start + 1] == UInt8(ascii: "X") {
        let digits = text.dropFirst(2)
        // Syntax first, so `0x10K` is named as a suffix and not as junk.
        if let last = digits.last, suffixShift(last) != nil {
            let body = digits.dropLast()
            if body.allSatisfy({ hexValue($0) != nil }) {
                return .failure(body.isEmpty ? .notANumber : .hexSuffix)
            }
            return .failure(.notANumber)
        }
        var value: UInt64 = 0
        var i = digits.start
        while i < digits.end {
            guard let d = hexValue(digits[i]) else { return .failure(.notANumber) }
            guard value >> 60 == 0 else {
                // Keep checking the syntax: junk after an overflow is junk.
                return digits.allSatisfy({ hexValue($0) != nil }) ? .failure(.overflow) : .failure(.notANumber)
            }
            value = value << 4 | UInt64(d)
            i += 1
        }
        return .success(value)
    }
    var digits = text
    var shift: UInt64 = 0
    if let last = text.last, let s = suffixShift(last) {
        shift = s
        digits = text.dropLast()
    }
    guard !digits.isEmpty, digits.allSatisfy(isDecimal) else { return .failure(.notANumber) }
    var value: UInt64 = 0
    var i = digits.start
    while i < digits.end {
        let (m, o1) = value.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(UInt64(digits[i] &- UInt8(ascii: "0")))
        if o1 || o2 { return .failure(.overflow) }
        value = a
        i += 1
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

/// A NUMBER, or an error at its start that says `expected WHAT`.
@inline(__always)
func number(_ text: Text, expected what: @autoclosure () -> String = "a number") throws(LineError) -> UInt64 {
    if let value = parseShortNumber(text) { return value }
    return try numberExactly(text, expected: what())
}

func numberExactly(_ text: Text, expected what: String) throws(LineError) -> UInt64 {
    switch parseNumberExactly(text) {
    case .success(let v): return v
    case .failure(.notANumber): throw LineError(text.start, "expected \(what), found \(quoted(text))")
    case .failure(.hexSuffix): throw LineError(text.start, "expected a hex number without a suffix, found \(quoted(text))")
    case .failure(.overflow): throw LineError(text.start, "expected a value that fits in 64 bits, found \(quoted(text))")
    }
}

/// A NUMBER that must fit a u32 (`argsz`, `flags`, `dma-entry-limit`).
func number32(_ text: Text, expected what: @autoclosure () -> String = "a number") throws(LineError) -> UInt32 {
    let v = try number(text, expected: what())
    guard let small = UInt32(exactly: v) else {
        throw LineError(text.start, "expected a value that fits in 32 bits, found \(quoted(text))")
    }
    return small
}

/// RANGE: `START-END` (END inclusive, not below START) or `START+SIZE`
/// (SIZE not 0, the range ending at or below 2^64-1).
func range(_ text: Text) throws(LineError) -> IOVARange {
    var sep = text.start
    while sep < text.end && text[sep] != UInt8(ascii: "-") && text[sep] != UInt8(ascii: "+") { sep += 1 }
    guard sep < text.end, sep != text.start, sep + 1 != text.end
    else { throw LineError(text.start, "expected a range START-END or START+SIZE, found \(quoted(text))") }
    let startText = text.prefix(upTo: sep)
    let restText = text.suffix(from: sep + 1)
    let start = try number(startText)
    if text[sep] == UInt8(ascii: "-") {
        let last = try number(restText)
        guard last >= start else {
            throw LineError(text.start, "expected a range whose end is not below its start, found \(quoted(text))")
        }
        return IOVARange(start: start, last: last)
    }
    let size = try number(restText)
    guard size != 0 else { throw LineError(restText.start, "expected a nonzero range size, found \(quoted(restText))") }
    guard let r = IOVARange(start: start, size: size) else {
        throw LineError(text.start, "expected a range that ends at or below 0xffffffffffffffff, found \(quoted(text))")
    }
    return r
}

/// LIST: calls `body` with each comma-separated item of `text`, stopping at
/// the first error.
///
/// - Complexity: O(n) in the length of `text`.
func forEachItem(_ text: Text, separator: UInt8 = UInt8(ascii: ","),
                 _ body: (Text) throws(LineError) -> Void) throws(LineError) {
    var start = text.start
    var i = text.start
    while i < text.end {
        if text[i] == separator {
            try body(Text(base: text.base, start: start, end: i))
            start = i + 1
        }
        i += 1
    }
    try body(text.suffix(from: start))
}

/// `RANGE,RANGE,...`
func ranges(_ text: Text) throws(LineError) -> [IOVARange] {
    var out: [IOVARange] = []
    try forEachItem(text) { (item) throws(LineError) in out.append(try range(item)) }
    return out
}

/// A page-size LIST (`4K,2M,1G`, each a power of two) or `mask:NUMBER`.
func pageSizes(_ text: Text) throws(LineError) -> PageSizes {
    if text.hasPrefix("mask:") {
        return PageSizes(rawValue: try number(text.dropFirst(5)))
    }
    var bits: UInt64 = 0
    try forEachItem(text) { (item) throws(LineError) in bits |= try powerOfTwo(item) }
    return PageSizes(rawValue: bits)
}

/// A NUMBER that is a power of two (a page size).
func powerOfTwo(_ text: Text) throws(LineError) -> UInt64 {
    let v = try number(text)
    guard v != 0 && v & (v - 1) == 0 else { throw LineError(text.start, "expected a power of two, found \(quoted(text))") }
    return v
}

/// `4K:N,2M:N,...` or `none`.
///
/// The entries are gathered in an array, in the order written, and handed
/// to `PTECounts(ascending:)` (which sorts them when they are not
/// ascending): no dictionary per `check ptes=` line. A size is looked for
/// among those before it, of which there are at most 64 (distinct powers
/// of two).
func pteCounts(_ text: Text) throws(LineError) -> PTECounts {
    if text == "none" { return PTECounts() }
    var entries: [PTECounts.Entry] = []
    try forEachItem(text) { (item) throws(LineError) in
        guard let colon = item.firstOffset(of: UInt8(ascii: ":")),
              !item.suffix(from: colon + 1).contains(UInt8(ascii: ":")) else {
            throw LineError(item.start, "expected SIZE:COUNT, found \(quoted(item))")
        }
        let size = try powerOfTwo(item.prefix(upTo: colon))
        let count = try number(item.suffix(from: colon + 1))
        guard !entries.contains(where: { $0.size == size }) else {
            throw LineError(item.start, "expected each page size once, found \(quoted(item))")
        }
        entries.append(PTECounts.Entry(size: size, count: count))
    }
    return PTECounts(ascending: entries)
}

/// NAME of a group: `[A-Za-z0-9_.-]+`.
func domainName(_ text: Text) throws(LineError) -> String {
    let ok = !text.isEmpty && text.allSatisfy { c in
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
            || c == UInt8(ascii: "-")
    }
    guard ok else {
        throw LineError(text.start, "expected a domain name of letters, digits, '_', '.' and '-', found \(quoted(text))")
    }
    return text.string
}

/// `yes` or `no`.
func yesNo(_ text: Text) throws(LineError) -> Bool {
    if text == "yes" { return true }
    if text == "no" { return false }
    throw LineError(text.start, "expected one of yes, no, found \(quoted(text))")
}

/// `parseNumber` on a string (for `fmt`'s kept spellings).
func parseNumberString(_ s: String) -> Result<UInt64, NumberProblem> {
    let bytes = Array(s.utf8)
    if bytes.isEmpty { return .failure(.notANumber) }
    return bytes.withUnsafeBufferPointer { b in parseNumber(Text(base: b.baseAddress!, start: 0, end: b.count)) }
}

/// A number as a trace writes it (`4G`, `0x1000`, `4096`), for command
/// lines that take the trace's sizes; nil when it is not one or wraps.
public func traceNumber(_ s: String) -> UInt64? {
    if case .success(let v) = parseNumberString(s) { v } else { nil }
}

/// `MAJOR.MINOR` (`6.12`), optionally `.PATCH` and a release suffix after
/// `-` or `+` as `uname -r` prints (`6.12.38+deb12-amd64`); nil for
/// anything else (`6.1x`, `6`, `v6.1`).
func strictVersion(_ text: Text) -> KernelVersion? {
    KernelVersion(parsing: text.string)
}

/// The bitmap a `dirty` unmap gets when no `bitmap-size=` is written: enough
/// bits for every page of the range (none when `pgsize` is 0).
func defaultBitmapSize(size: UInt64, pgsize: UInt64) -> UInt64 {
    pgsize == 0 ? 0 : DMABitmap.bytesNeeded(pages: size / pgsize)
}

/// `pgsize=4K` → `pgsize=`; `dirty` → `dirty`.
func firstPart(_ word: Token) -> String {
    word.hasEquals ? word.text.prefix(upTo: word.equals + 1).string : word.text.string
}

/// `argsz=` or `one of iova=, size=`.
func oneOf(_ items: [StaticString]) -> String {
    items.count == 1 ? items[0].string : "one of " + items.map(\.string).joined(separator: ", ")
}

/// A word of a line, or the `=>` that starts an answer.
struct Token {
    enum Kind { case word, arrow }
    var kind: Kind
    var text: Text
    /// Offset of the word's first `=`, or `text.end` when it has none: where
    /// a `key=value` word splits. Found while lexing, so looking a key up
    /// does not scan the word again.
    var equals: Int

    var isArrow: Bool { kind == .arrow }
    /// Whether the word is `key=value`.
    var hasEquals: Bool { equals < text.end }
    /// `key` of `key=value`.
    var key: Text { text.prefix(upTo: equals) }
    /// `value` of `key=value`.
    var value: Text { text.suffix(from: equals + 1) }
    /// What a statement lists to accept the word: `key=` of `key=value`,
    /// or the bare word.
    var name: Text { hasEquals ? text.prefix(upTo: equals + 1) : text }
}

/// One line cut into tokens: words and arrows up to the comment, then the
/// comment.
///
/// The parser keeps one `LexedLine` and lexes every line into it, so the
/// token array is allocated once per file, not once per line.
struct LexedLine {
    var number = 0
    /// Offset of the line's first byte (columns count from here).
    var start = 0
    var tokens: [Token] = []
    /// The comment's text without `#`, one leading space and trailing blanks.
    var comment: String?
    /// Offset of the `#`.
    var commentStart = 0
    /// Offset just past the last token: where `end of line` is.
    var end = 0
}

/// Cuts `bytes` into lines (`\n`, or `\r\n`; a leading byte order mark is
/// skipped), calling `body` with each line's number and its byte offsets
/// `start..<end` (without the line end).
///
/// - Complexity: O(n) in the number of bytes, whatever the line lengths.
func forEachLine(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (_ number: Int, _ start: Int, _ end: Int) -> Void) {
    var start = 0
    var number = 1
    let count = bytes.count
    // A UTF-8 byte order mark (some Windows editors write one) is not text.
    if count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { start = 3 }
    while start < count {
        var end = start
        while end < count && bytes[end] != 0x0A { end += 1 }
        let next = end + 1
        // CRLF: the CR belongs to the line end.
        if end > start && bytes[end - 1] == 0x0D { end -= 1 }
        body(number, start, end)
        number += 1
        start = next
    }
}

/// Validates the bytes `start..<end` of `base` (UTF-8, no control
/// characters but tab), then cuts them into `line`'s tokens and comment.
/// Returns the line's first error instead, if it has one.
func lexLine(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int, number: Int, into line: inout LexedLine) -> LineError? {
    line.number = number
    line.start = start
    line.tokens.removeAll(keepingCapacity: true)
    line.comment = nil
    line.commentStart = start
    line.end = start
    if let error = validate(base, from: start, to: end) { return error }
    tokenize(base, start, end, into: &line)
    return nil
}

/// The first byte that is not UTF-8 or is a control character, as an error.
func validate(_ bytes: UnsafePointer<UInt8>, from start: Int, to n: Int) -> LineError? {
    var i = start
    while i < n {
        let b = bytes[i]
        if b < 0x80 {
            // The common case: printable ASCII.
            if (b < 0x20 && b != 0x09) || b == 0x7F {
                return LineError(i, "expected a printable character, found control character \(hexByte(b))")
            }
            i += 1
        } else {
            // The well-formed sequences of the Unicode standard, table 3-7.
            let length: Int
            var low: UInt8 = 0x80, high: UInt8 = 0xBF
            switch b {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return LineError(i, "expected UTF-8 text, found byte \(hexByte(b))")
            }
            guard i + length <= n else { return LineError(i, "expected UTF-8 text, found byte \(hexByte(b))") }
            for k in 1..<length {
                let c = bytes[i + k]
                let (lo, hi) = k == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
                guard c >= lo && c <= hi else { return LineError(i, "expected UTF-8 text, found byte \(hexByte(b))") }
            }
            // C1 controls, U+0080...U+009F.
            if b == 0xC2 && bytes[i + 1] <= 0x9F {
                let scalar = String(bytes[i + 1], radix: 16, uppercase: true)
                return LineError(i, "expected a printable character, found control character U+00\(scalar)")
            }
            i += length
        }
    }
    return nil
}

func hexByte(_ b: UInt8) -> String { (b < 0x10 ? "0x0" : "0x") + String(b, radix: 16) }

/// More words than any statement takes (the longest, `domain`, has nine).
let maxTokensPerLine = 64

/// Cuts a valid line into words, `=>` and the comment. Works on bytes: every
/// byte that separates tokens (blank, `#`, `=>`) is ASCII, and a byte of a
/// multibyte scalar is never ASCII.

func tokenize(_ base: UnsafePointer<UInt8>, _ start: Int, _ end: Int, into line: inout LexedLine) {
    let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), hash = UInt8(ascii: "#")
    let equal = UInt8(ascii: "="), greater = UInt8(ascii: ">")
    var i = start
    while i < end {
        // No statement has this many valid words, so its first error lies
        // before them: lexing further would only cost time and memory on a
        // long hostile line (a 100 MB line of one-letter words).
        if line.tokens.count == maxTokensPerLine { break }
        let b = base[i]
        if b == space || b == tab { i += 1; continue }
        if b == hash {
            line.commentStart = i
            line.comment = commentText(Text(base: base, start: i + 1, end: end))
            break
        }
        if b == equal && i + 1 < end && base[i + 1] == greater {
            line.tokens.append(Token(kind: .arrow, text: Text(base: base, start: i, end: i + 2), equals: i + 2))
            i += 2
            continue
        }
        let wordStart = i
        var equals = -1
        while i < end {
            let c = base[i]
            if c == space || c == tab || c == hash { break }
            if c == equal {
                if i + 1 < end && base[i + 1] == greater { break }
                if equals < 0 { equals = i }
            }
            i += 1
        }
        line.tokens.append(Token(kind: .word, text: Text(base: base, start: wordStart, end: i), equals: equals < 0 ? i : equals))
    }
    line.end = line.tokens.last?.text.end ?? start
}

/// `# text  ` → `text`: one leading space and trailing blanks are layout.
func commentText(_ raw: Text) -> String {
    var t = raw
    if t.first == UInt8(ascii: " ") { t = t.dropFirst() }
    while let last = t.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { t = t.dropLast() }
    return t.string
}

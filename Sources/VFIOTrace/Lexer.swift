/// A word of a line, or the `=>` that starts an answer.
struct Token {
    enum Kind { case word, arrow }
    var kind: Kind
    var text: Substring
    /// 1-based column (in Unicode scalars) of the first scalar.
    var column: Int
    /// The column just past the last scalar.
    var endColumn: Int

    var isArrow: Bool { kind == .arrow }
}

/// One line cut into tokens: words and arrows up to the comment, then the
/// comment.
struct LexedLine {
    var number: Int
    var tokens: [Token]
    /// The comment's text without `#`, one leading space and trailing blanks.
    var comment: String?
    var commentColumn: Int
    /// The column just past the last token: where `end of line` is.
    var endColumn: Int
}

/// Cuts `bytes` into lines (`\n`, or `\r\n`; a leading byte order mark is
/// skipped) and lexes each one, calling
/// `body` with the line number and the line or its first error.
///
/// - Complexity: O(n) in the number of bytes, whatever the line lengths.
func forEachLine(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (Int, Result<LexedLine, LineError>) -> Void) {
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
        body(number, lexLine(UnsafeBufferPointer(rebasing: bytes[start..<end]), number: number))
        number += 1
        start = next
    }
}

/// Validates one line's bytes (UTF-8, no control characters but tab), then
/// cuts it into tokens.
func lexLine(_ bytes: UnsafeBufferPointer<UInt8>, number: Int) -> Result<LexedLine, LineError> {
    if let error = validate(bytes) { return .failure(error) }
    let text = String(decoding: bytes, as: UTF8.self)
    return .success(tokenize(text, number: number))
}

/// The first byte that is not UTF-8 or is a control character, as an error.
func validate(_ bytes: UnsafeBufferPointer<UInt8>) -> LineError? {
    var i = 0
    var column = 1
    let n = bytes.count
    while i < n {
        let b = bytes[i]
        if b < 0x80 {
            if (b < 0x20 && b != 0x09) || b == 0x7F {
                return LineError(column, "expected a printable character, found control character \(hexByte(b))")
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
            default: return LineError(column, "expected UTF-8 text, found byte \(hexByte(b))")
            }
            guard i + length <= n else { return LineError(column, "expected UTF-8 text, found byte \(hexByte(b))") }
            for k in 1..<length {
                let c = bytes[i + k]
                let (lo, hi) = k == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
                guard c >= lo && c <= hi else { return LineError(column, "expected UTF-8 text, found byte \(hexByte(b))") }
            }
            // C1 controls, U+0080...U+009F.
            if b == 0xC2 && bytes[i + 1] <= 0x9F {
                let scalar = String(bytes[i + 1], radix: 16, uppercase: true)
                return LineError(column, "expected a printable character, found control character U+00\(scalar)")
            }
            i += length
        }
        column += 1
    }
    return nil
}

func hexByte(_ b: UInt8) -> String { (b < 0x10 ? "0x0" : "0x") + String(b, radix: 16) }

/// Cuts a valid line into words, `=>` and the comment.
func tokenize(_ text: String, number: Int) -> LexedLine {
    let u = text.utf8
    var tokens: [Token] = []
    var comment: String?
    var commentColumn = 0
    var i = u.startIndex
    var column = 1
    let end = u.endIndex
    func isArrow(at j: String.Index) -> Bool {
        u[j] == UInt8(ascii: "=") && u.index(after: j) < end && u[u.index(after: j)] == UInt8(ascii: ">")
    }
    while i < end {
        let b = u[i]
        if b == 0x20 || b == 0x09 { i = u.index(after: i); column += 1; continue }
        if b == UInt8(ascii: "#") {
            commentColumn = column
            comment = commentText(text[u.index(after: i)...])
            break
        }
        if isArrow(at: i) {
            let after = u.index(i, offsetBy: 2)
            tokens.append(Token(kind: .arrow, text: text[i..<after], column: column, endColumn: column + 2))
            i = after
            column += 2
            continue
        }
        let start = i
        let startColumn = column
        while i < end {
            let c = u[i]
            if c == 0x20 || c == 0x09 || c == UInt8(ascii: "#") || isArrow(at: i) { break }
            if c & 0xC0 != 0x80 { column += 1 }
            i = u.index(after: i)
        }
        tokens.append(Token(kind: .word, text: text[start..<i], column: startColumn, endColumn: column))
    }
    return LexedLine(number: number, tokens: tokens, comment: comment, commentColumn: commentColumn,
                     endColumn: tokens.last?.endColumn ?? 1)
}

/// `# text  ` → `text`: one leading space and trailing blanks are layout.
func commentText(_ raw: Substring) -> String {
    var s = raw.unicodeScalars[...]
    if s.first == " " { s = s.dropFirst() }
    while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
    return String(s)
}

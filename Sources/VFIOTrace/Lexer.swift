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
/// token array's storage is allocated once per file and reused.
struct LexedLine {
    var number = 0
    /// Offset of the line's first byte (columns count from here).
    var start = 0
    /// The line's words and arrows, in order, are `storage[..<tokenCount]`.
    /// Each line overwrites the array from its start, and appends only
    /// past what earlier lines left: emptying it for each line
    /// (`removeAll(keepingCapacity:)`) cost as much as appending a line's
    /// words.
    private(set) var storage: [Token] = []
    private(set) var tokenCount = 0
    /// The line's words and arrows, in order.
    var tokens: ArraySlice<Token> { storage[..<tokenCount] }
    /// The comment's text without `#`, one leading space and trailing blanks.
    var comment: String?
    /// Offset of the `#`.
    var commentStart = 0
    /// Offset just past the last token: where `end of line` is.
    var end = 0
    /// Index in `tokens` of the first `=>`, or -1: recorded while lexing, so
    /// the parser does not scan the tokens for it.
    var firstArrow = -1
    /// Index in `tokens` of the second `=>`, or -1 (an error after the
    /// first; recorded so the answer need not scan for it either).
    var secondArrow = -1

    init() { storage.reserveCapacity(maxTokensPerLine) }

    /// Empties the line for line `number`, which starts at `start`.
    mutating func reset(number: Int, start: Int) {
        self.number = number
        self.start = start
        tokenCount = 0
        comment = nil
        commentStart = start
        end = start
        firstArrow = -1
        secondArrow = -1
    }

    /// Whether the line holds `maxTokensPerLine` tokens (it takes no more).
    var isFull: Bool { tokenCount == maxTokensPerLine }

    /// Adds `token` after the line's others.
    @inline(__always) mutating func push(_ token: Token) {
        if tokenCount < storage.count { storage[tokenCount] = token } else { storage.append(token) }
        tokenCount += 1
    }

    /// Appends the word `base[from..<to]` whose first `=` is at `equals`
    /// (-1 for none); nothing for an empty word.
    mutating func appendWord(_ base: UnsafePointer<UInt8>, from: Int, to: Int, equals: Int) {
        guard to > from else { return }
        push(Token(kind: .word, text: Text(base: base, start: from, end: to), equals: equals < 0 ? to : equals))
    }

    /// Appends the `=>` at `at`, noting it as the first or second arrow.
    mutating func appendArrow(_ base: UnsafePointer<UInt8>, at: Int) {
        if firstArrow < 0 { firstArrow = tokenCount } else if secondArrow < 0 { secondArrow = tokenCount }
        push(Token(kind: .arrow, text: Text(base: base, start: at, end: at + 2), equals: at + 2))
    }

    /// Ends the tokens: `end of line` is just past the last one.
    mutating func finishTokens() {
        end = tokenCount > 0 ? storage[tokenCount - 1].text.end : start
    }
}

/// More words than any statement takes (the longest, `domain`, has nine).
let maxTokensPerLine = 64

/// Calls `body` with each line of `bytes` lexed (`\n` or `\r\n` ends a
/// line; a leading byte order mark is skipped), or with the line's first
/// error.
///
/// - Complexity: O(n) in the number of bytes, whatever the line lengths.
func forEachLexedLine(_ bytes: UnsafeBufferPointer<UInt8>, _ body: (_ line: borrowing LexedLine, _ error: LineError?) -> Void) {
    guard let base = bytes.baseAddress else { return }
    let count = bytes.count
    var start = firstLineStart(base, count)
    var line = LexedLine()
    var number = 1
    while start < count {
        let (next, error) = lexLine(base, count, from: start, number: number, into: &line)
        body(line, error)
        number += 1
        start = next
    }
}

/// Where the first line starts: after a UTF-8 byte order mark (some
/// Windows editors write one), which is not text.
@inline(__always) func firstLineStart(_ base: UnsafePointer<UInt8>, _ count: Int) -> Int {
    count >= 3 && base[0] == 0xEF && base[1] == 0xBB && base[2] == 0xBF ? 3 : 0
}

// MARK: Finding the bytes that matter
//
// Most bytes of a trace are letters and digits inside words, and the lexer
// has nothing to do for them. It looks at eight bytes at a time and stops
// only at the bytes that matter: outside comments a blank, `=`, `#`, and
// anything that is not printable ASCII (a line end, a tab, a control
// character, a byte of a multibyte scalar); inside a comment only the
// latter. Every stop is then handled one byte at a time, exactly as a
// byte-by-byte lexer would, so the fast path only decides how far to skip.

private let ones: UInt64 = 0x0101_0101_0101_0101
private let highBits: UInt64 = 0x8080_8080_8080_8080

/// High bit of each byte of `w` (little-endian: byte k is bits 8k..<8k+8)
/// that is not printable ASCII `0x20...0x7E`.
///
/// Per byte, with `t` its low seven bits: `t + 0x60` reaches `0x80` exactly
/// when `t >= 0x20`, `t + 0x01` exactly when `t == 0x7F`; neither carries
/// into the next byte (at most `0xDF` and `0x80`); a set high bit of the
/// byte itself (`~w`) is not ASCII.
@inline(__always) func textStops(_ w: UInt64) -> UInt64 {
    let t = w & ~highBits
    let printable = (t &+ ones &* 0x60) & ~(t &+ ones) & ~w & highBits
    return printable ^ highBits
}

/// `textStops`, plus the bytes `=`, `#` and blank. `t + 0x5F` reaches
/// `0x80` exactly when `t >= 0x21`, which leaves out the blank `0x20`;
/// `(t ^ c) + 0x7F` reaches `0x80` exactly when `t != c` (at most `0xFE`).
@inline(__always) func wordStops(_ w: UInt64) -> UInt64 {
    let t = w & ~highBits
    let lowMask = ~highBits
    let notEqual = (t ^ (ones &* 0x3D)) &+ lowMask
    let notHash = (t ^ (ones &* 0x23)) &+ lowMask
    let plain = (t &+ ones &* 0x5F) & ~(t &+ ones) & ~w & notEqual & notHash & highBits
    return plain ^ highBits
}

@inline(__always) func isTextStop(_ b: UInt8) -> Bool { b < 0x20 || b >= 0x7F }
@inline(__always) func isWordStop(_ b: UInt8) -> Bool {
    b <= 0x20 || b >= 0x7F || b == UInt8(ascii: "=") || b == UInt8(ascii: "#")
}

/// Offset of the first stop (`wordStops` or `textStops`) at or after
/// `from`, or `count` if none: eight bytes at a time while eight remain,
/// then byte by byte.
@inline(__always)
func nextStop(_ base: UnsafePointer<UInt8>, _ count: Int, from: Int, inWords: Bool) -> Int {
    var i = from
    while i &+ 8 <= count {
        let w = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
        let stops = inWords ? wordStops(w) : textStops(w)
        if stops != 0 { return i &+ stops.trailingZeroBitCount &>> 3 }
        i &+= 8
    }
    while i < count {
        let b = base[i]
        if inWords ? isWordStop(b) : isTextStop(b) { return i }
        i &+= 1
    }
    return count
}

// MARK: Lexing a line

/// What a byte that is not printable ASCII, blank, `=` or `#` means.
enum ByteCheck {
    /// A tab (a blank) or a valid multibyte scalar of `length` bytes.
    case text(length: Int)
    /// The end of the line: the line's last byte is before `end`, the next
    /// line starts at `next`.
    case lineEnd(end: Int, next: Int)
    case error(LineError)
}

/// Checks the byte at `i` of `base[0..<count]`, which is not printable
/// ASCII: the line's end (`\n`, `\r\n`, or `\r` or nothing at the end of
/// the file), a tab, a well-formed UTF-8 sequence that is not a C1
/// control, or an error naming the byte.
@inline(__always)
func checkByte(_ base: UnsafePointer<UInt8>, _ count: Int, _ i: Int) -> ByteCheck {
    if i == count { return .lineEnd(end: count, next: count) }
    let b = base[i]
    if b == 0x0A { return .lineEnd(end: i, next: i + 1) }
    if b == 0x09 { return .text(length: 1) }
    // CRLF: the CR belongs to the line end (so does a CR ending the file).
    if b == 0x0D {
        if i + 1 == count { return .lineEnd(end: i, next: count) }
        if base[i + 1] == 0x0A { return .lineEnd(end: i, next: i + 2) }
    }
    if b < 0x80 { return .error(LineError(i, "expected a printable character, found control character \(hexByte(b))")) }
    return checkScalar(base, count, i)
}

/// The well-formed sequences of the Unicode standard, table 3-7, at `i`
/// (whose byte is not ASCII); a C1 control (U+0080...U+009F) is an error
/// too. A line end is never a continuation byte, so a sequence cut by the
/// end of the line is an error at its first byte.
func checkScalar(_ base: UnsafePointer<UInt8>, _ count: Int, _ i: Int) -> ByteCheck {
    let b = base[i]
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
    default: return .error(LineError(i, "expected UTF-8 text, found byte \(hexByte(b))"))
    }
    guard i + length <= count else { return .error(LineError(i, "expected UTF-8 text, found byte \(hexByte(b))")) }
    for k in 1..<length {
        let c = base[i + k]
        let (lo, hi) = k == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
        guard c >= lo && c <= hi else { return .error(LineError(i, "expected UTF-8 text, found byte \(hexByte(b))")) }
    }
    if b == 0xC2 && base[i + 1] <= 0x9F {
        let scalar = String(base[i + 1], radix: 16, uppercase: true)
        return .error(LineError(i, "expected a printable character, found control character U+00\(scalar)"))
    }
    return .text(length: length)
}

func hexByte(_ b: UInt8) -> String { (b < 0x10 ? "0x0" : "0x") + String(b, radix: 16) }

/// Lexes the line of `base[0..<count]` that starts at `start` into `line`:
/// checks that it is UTF-8 without control characters but tab, and cuts it
/// into words, `=>` and the comment, in one pass. Returns where the next
/// line starts, and the line's first error if it has one (then `line`
/// holds only its number and start).
///
/// Every byte that separates tokens (blank, `#`, `=>`) is ASCII, and a byte
/// of a multibyte scalar is never ASCII, so the tokens are cut on bytes.
/// Words stop at `maxTokensPerLine`: no statement has that many valid
/// words, so its first error lies before them, and lexing further would
/// only cost time and memory on a long hostile line (a 100 MB line of
/// one-letter words); the rest of the line is still checked.
func lexLine(_ base: UnsafePointer<UInt8>, _ count: Int, from start: Int, number: Int,
             into line: inout LexedLine) -> (next: Int, error: LineError?) {
    line.reset(number: number, start: start)
    switch lexTokens(base, count, into: &line) {
    case .lineEnd(let next):
        line.finishTokens()
        return (next, nil)
    case .rest(let from, let isComment):
        return lexRest(base, count, from: from, isComment: isComment, into: &line)
    case .error(let error, let at):
        line.reset(number: number, start: start)
        return (skipLine(base, count, from: at), error)
    }
}

/// How the tokens of a line ended.
enum TokensEnd {
    /// The line ended; the next starts at `next`.
    case lineEnd(next: Int)
    /// A comment (`isComment`) or the token limit: the rest of the line,
    /// from `from`, is only checked.
    case rest(from: Int, isComment: Bool)
    /// A byte that is not allowed, at `at`.
    case error(LineError, at: Int)
}

/// Cuts `line`'s tokens from its start until the line ends, a `#`, or
/// `maxTokensPerLine` tokens: the lexer skips to the next byte that
/// matters (`nextStop`) and decides there.
func lexTokens(_ base: UnsafePointer<UInt8>, _ count: Int, into line: inout LexedLine) -> TokensEnd {
    // The current word runs from `wordStart` to the next stop; `equals`
    // is its first `=`, or -1.
    var wordStart = line.start
    var equals = -1
    var i = line.start
    while true {
        let pos = nextStop(base, count, from: i, inWords: true)
        let b: UInt8 = pos < count ? base[pos] : 0
        if b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") {
            line.appendWord(base, from: wordStart, to: pos, equals: equals)
            if line.isFull { return .rest(from: pos + 1, isComment: false) }
            (wordStart, equals, i) = (pos + 1, -1, pos + 1)
        } else if b == UInt8(ascii: "="), pos + 1 < count, base[pos + 1] == UInt8(ascii: ">") {
            line.appendWord(base, from: wordStart, to: pos, equals: equals)
            if line.isFull { return .rest(from: pos, isComment: false) }
            line.appendArrow(base, at: pos)
            (wordStart, equals, i) = (pos + 2, -1, pos + 2)
            if line.isFull { return .rest(from: i, isComment: false) }
        } else if b == UInt8(ascii: "=") {
            if equals < 0 { equals = pos }
            i = pos + 1
        } else if b == UInt8(ascii: "#") {
            line.appendWord(base, from: wordStart, to: pos, equals: equals)
            if line.isFull { return .rest(from: pos, isComment: false) }
            line.commentStart = pos
            return .rest(from: pos + 1, isComment: true)
        } else {
            switch checkByte(base, count, pos) {
            case .text(let length):
                // A tab was handled above: this is a scalar inside a word.
                i = pos + length
            case .lineEnd(let end, let next):
                line.appendWord(base, from: wordStart, to: end, equals: equals)
                return .lineEnd(next: next)
            case .error(let e):
                return .error(e, at: pos)
            }
        }
    }
}

/// Checks the rest of a line after its tokens (its comment, which is
/// kept, or the words past the token limit, which are not).
func lexRest(_ base: UnsafePointer<UInt8>, _ count: Int, from: Int, isComment: Bool,
             into line: inout LexedLine) -> (next: Int, error: LineError?) {
    var i = from
    while true {
        let pos = nextStop(base, count, from: i, inWords: false)
        switch checkByte(base, count, pos) {
        case .text(let length):
            i = pos + length
        case .lineEnd(let end, let next):
            line.finishTokens()
            if isComment { line.comment = commentText(Text(base: base, start: line.commentStart + 1, end: end)) }
            return (next, nil)
        case .error(let e):
            let (number, start) = (line.number, line.start)
            line.reset(number: number, start: start)
            return (skipLine(base, count, from: pos), e)
        }
    }
}

/// Where the line after the one holding offset `from` starts.
func skipLine(_ base: UnsafePointer<UInt8>, _ count: Int, from: Int) -> Int {
    var i = from
    while i < count && base[i] != 0x0A { i += 1 }
    return i < count ? i + 1 : count
}

/// `# text  ` → `text`: one leading space and trailing blanks are layout.
func commentText(_ raw: Text) -> String {
    var t = raw
    if t.first == UInt8(ascii: " ") { t = t.dropFirst() }
    while let last = t.last, last == UInt8(ascii: " ") || last == UInt8(ascii: "\t") { t = t.dropLast() }
    return t.string
}

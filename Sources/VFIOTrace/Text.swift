/// A run of bytes of the file being parsed: a word, or a part of one.
///
/// Why not `Substring`: the parser used to build a `String` per line and cut
/// it into `Substring`s; every token then retained that string, and every
/// key lookup hashed one. Profiles put reference counting and hashing at
/// half the parse time. A `Text` is a pointer and two offsets into the
/// caller's buffer: copying one costs nothing and comparing one with a
/// keyword is a short byte loop. It is valid only while `parseTrace` holds
/// the buffer, so whatever ends up in a `Statement` is made a `String`
/// (`string`) first.
///
/// Offsets are absolute byte offsets in the file. Errors carry one too
/// (`LineError.offset`); the 1-based column in Unicode scalars that a
/// diagnostic prints is counted from the start of the line only when the
/// diagnostic is made (`column(at:lineStart:in:)`).
struct Text {
    /// The first byte of the file.
    let base: UnsafePointer<UInt8>
    /// Offset of the first byte.
    var start: Int
    /// Offset just past the last byte.
    var end: Int

    var count: Int { end - start }
    var isEmpty: Bool { start == end }

    /// The byte at file offset `offset` (which must be in `start..<end`).
    subscript(offset: Int) -> UInt8 { base[offset] }

    var first: UInt8? { isEmpty ? nil : base[start] }
    var last: UInt8? { isEmpty ? nil : base[end - 1] }

    /// Offset of the first `byte`, if any.
    func firstOffset(of byte: UInt8) -> Int? {
        var i = start
        while i < end {
            if base[i] == byte { return i }
            i += 1
        }
        return nil
    }

    func contains(_ byte: UInt8) -> Bool { firstOffset(of: byte) != nil }

    func allSatisfy(_ predicate: (UInt8) -> Bool) -> Bool {
        var i = start
        while i < end {
            if !predicate(base[i]) { return false }
            i += 1
        }
        return true
    }

    /// The bytes before file offset `offset`.
    func prefix(upTo offset: Int) -> Text { Text(base: base, start: start, end: offset) }
    /// The bytes from file offset `offset` on.
    func suffix(from offset: Int) -> Text { Text(base: base, start: offset, end: end) }
    func dropFirst(_ n: Int = 1) -> Text { Text(base: base, start: Swift.min(start + n, end), end: end) }
    func dropLast(_ n: Int = 1) -> Text { Text(base: base, start: start, end: Swift.max(end - n, start)) }

    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base + start, count: count) }

    /// The text as a `String` (it is valid UTF-8: the lexer checked).
    var string: String { String(decoding: bytes, as: UTF8.self) }

    func hasPrefix(_ s: StaticString) -> Bool {
        s.utf8CodeUnitCount <= count && prefix(upTo: start + s.utf8CodeUnitCount) == s
    }

    @inline(__always) static func == (lhs: Text, rhs: StaticString) -> Bool {
        guard lhs.count == rhs.utf8CodeUnitCount else { return false }
        // Offsets within a word cannot overflow: no checks (`&+`).
        let p = rhs.utf8Start
        var k = 0
        while k < lhs.count {
            if lhs.base[lhs.start &+ k] != p[k] { return false }
            k &+= 1
        }
        return true
    }

    static func != (lhs: Text, rhs: StaticString) -> Bool { !(lhs == rhs) }

    static func == (lhs: Text, rhs: Text) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for k in 0..<lhs.count where lhs.base[lhs.start + k] != rhs.base[rhs.start + k] { return false }
        return true
    }
}

extension StaticString {
    /// The literal as a `String`, for messages.
    var string: String { description }
}

/// The 1-based column, in Unicode scalars, of file offset `offset` on the
/// line that starts at `lineStart`: one more than the number of scalars
/// before it. The bytes before `offset` are valid UTF-8 (the lexer stops at
/// the first bad byte), so each scalar is one byte that is not a
/// continuation byte (`10xxxxxx`).
///
/// - Complexity: O(offset − lineStart); called once per diagnostic and per
///   statement (where only blanks precede the first word).
func column(at offset: Int, lineStart: Int, in base: UnsafePointer<UInt8>) -> Int {
    var column = 1
    var i = lineStart
    while i < offset {
        if base[i] & 0xC0 != 0x80 { column += 1 }
        i += 1
    }
    return column
}

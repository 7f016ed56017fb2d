import VFIOCore

// The lines that make up most of a machine-written trace — what
// `vfio-sim record`, `explore` and `vfio-bench` write, one per ioctl — read
// straight from the bytes, without cutting them into tokens first:
//
//     map iova=N vaddr=N size=N prot=P => ANSWER
//     unmap iova=N size=N => ANSWER [size=N]
//     check mappings=N
//     check locked=N
//
// with single blanks, the words in that order, a `\n` at the end, every
// number one that `parseShortNumber` reads (hex up to 16 digits, decimal up
// to 19 with an optional K/M/G/T) and every answer `ok` or an errno name.
// Lexing and then looking each word up by key cost ~1,800 instructions per
// such line; this reads one in a few hundred.
//
// It is only a shortcut: a line that strays from these shapes in any byte
// (another word, another order, a second blank, a tab, a comment, `\r\n`,
// a long or odd number, an unknown answer) is left untouched for the lexer
// and the general parser, which then decide it exactly as before. So this
// never says anything the general parser would not: it accepts a subset
// of the lines that parser accepts, and makes the same statement of each.
// `CanonicalLineTests` and the fuzz target `parse` compare the two on every
// line they try.

/// `map `, `unmap `, `check ` and the keys, as little-endian integers of
/// their bytes (`CanonicalLineTests` checks each against its text).
enum CanonicalWord {
    static let map: UInt64 = 0x2070_616d               // "map "
    static let unmap: UInt64 = 0x2070_616d_6e75        // "unmap "
    static let check: UInt64 = 0x206b_6365_6863        // "check "
    static let iova: UInt64 = 0x3d_6176_6f69           // "iova="
    static let vaddr: UInt64 = 0x3d72_6464_6176        // "vaddr="
    static let size: UInt64 = 0x3d_657a_6973           // "size="
    static let prot: UInt64 = 0x3d_746f_7270           // "prot="
    static let arrow: UInt64 = 0x20_3e3d               // "=> "
    static let mappings: UInt64 = 0x7367_6e69_7070_616d // "mappings"
    static let locked: UInt64 = 0x3d_6465_6b63_6f6c    // "locked="
}

/// Whether the `length` (1...8) bytes at offset `i` of `base[0..<count]`
/// are those packed in `word`: one load and one comparison. False when
/// fewer than eight bytes remain (the line is then left to the lexer).
@inline(__always)
func bytesAt(_ base: UnsafePointer<UInt8>, _ count: Int, _ i: Int, are word: UInt64, length: Int) -> Bool {
    guard i &+ 8 <= count else { return false }
    let w = UInt64(littleEndian: UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self))
    let mask: UInt64 = length >= 8 ? ~0 : (1 &<< UInt64(8 &* length)) &- 1
    return w & mask == word
}

/// A value of a canonical line: from `i` to the next blank, `=`, `#` or
/// byte that is not printable ASCII, which must be `terminator`; nil when
/// the value is empty or ends otherwise.
@inline(__always)
func canonicalValue(_ base: UnsafePointer<UInt8>, _ count: Int, from i: Int, endingWith terminator: UInt8) -> Text? {
    let e = nextStop(base, count, from: i, inWords: true)
    guard e > i, e < count, base[e] == terminator else { return nil }
    return Text(base: base, start: i, end: e)
}

/// A number of a canonical line from `i`, read as `parseShortNumber`
/// reads the value `canonicalValue` would cut there (hex after `0x` or
/// `0X`, 1 to 16 digits; else 1 to 19 decimal digits and an optional
/// K, M, G or T), in one pass: the digits are converted as they are
/// found, and the byte after them must be `terminator`. The number and
/// the offset of its terminator; nil for anything else.
@inline(__always)
func canonicalNumber(_ base: UnsafePointer<UInt8>, _ count: Int, from i: Int,
                     endingWith terminator: UInt8) -> (value: UInt64, end: Int)? {
    // Every shape has more bytes after a number than these reads need,
    // but a file may end anywhere.
    guard i &+ 2 < count else { return nil }
    var j = i
    var value: UInt64 = 0
    if base[i] == UInt8(ascii: "0") && base[i &+ 1] | 0x20 == UInt8(ascii: "x") {
        j &+= 2
        let digits = hexDigitValues.utf8Start
        while j < count {
            let d = digits[Int(base[j])]
            if d >= 16 { break }
            value = value &<< 4 | UInt64(d)
            j &+= 1
        }
        let n = j &- i &- 2
        guard n >= 1, n <= 16, j < count, base[j] == terminator else { return nil }
        return (value, j)
    }
    while j < count {
        let d = base[j] &- UInt8(ascii: "0")
        if d >= 10 { break }
        value = value &* 10 &+ UInt64(d)
        j &+= 1
    }
    let n = j &- i
    guard n >= 1, n <= 19, j < count else { return nil }
    var shift: UInt64 = 0
    switch base[j] {
    case UInt8(ascii: "K"): shift = 10
    case UInt8(ascii: "M"): shift = 20
    case UInt8(ascii: "G"): shift = 30
    case UInt8(ascii: "T"): shift = 40
    default: break
    }
    if shift != 0 {
        j &+= 1
        guard value <= UInt64.max &>> shift else { return nil }
    }
    guard j < count, base[j] == terminator else { return nil }
    return (value &<< shift, j)
}

/// An answer word of a canonical line: `ok`, or an errno name of
/// `Errno.allNames` (any other word is left to the general parser).
@inline(__always)
func canonicalStatus(_ text: Text) -> Answer.Status? {
    if text == "ok" { return .ok }
    guard text.first == UInt8(ascii: "E"), let e = knownErrno(text) else { return nil }
    return .errno(e)
}

extension TraceParser {
    /// Parses the line of `base[0..<count]` that starts at `start` (line
    /// `number`) when it has one of the canonical shapes above, appending
    /// its statement; returns where the next line starts. Returns nil, and
    /// changes nothing, for any other line.
    @inline(__always)
    mutating func takeCanonicalLine(_ base: UnsafePointer<UInt8>, _ count: Int, _ start: Int, number: Int) -> Int? {
        guard start &+ 8 <= count else { return nil }
        let head = UInt64(littleEndian: UnsafeRawPointer(base + start).loadUnaligned(as: UInt64.self))
        // Each statement is made in place once the whole line is read (a
        // `Kind` built first and then stored was copied whole).
        if head & 0xFFFF_FFFF == CanonicalWord.map {
            guard let (map, answerAt) = canonicalMap(base, count, start &+ 4),
                  let (answer, next) = canonicalAnswer(base, count, answerAt, takesSize: false) else { return nil }
            let slot = beginCanonical(number: number, isOperation: true)
            Statement.setKind(of: slot, .map(map))
            Statement.setExpected(of: slot, answer)
            return next
        }
        if head & 0xFFFF_FFFF_FFFF == CanonicalWord.unmap {
            guard let (unmap, answerAt) = canonicalUnmap(base, count, start &+ 6),
                  let (answer, next) = canonicalAnswer(base, count, answerAt, takesSize: true) else { return nil }
            let slot = beginCanonical(number: number, isOperation: true)
            Statement.setKind(of: slot, .unmap(unmap))
            Statement.setExpected(of: slot, answer)
            return next
        }
        if head & 0xFFFF_FFFF_FFFF == CanonicalWord.check {
            guard let (check, next) = canonicalCheck(base, count, start &+ 6) else { return nil }
            let slot = beginCanonical(number: number, isOperation: false)
            Statement.setKind(of: slot, .check(check))
            return next
        }
        return nil
    }

    /// What `take` and `appendStatement` do for any statement line before
    /// its words; the new blank statement at column 1.
    @inline(__always)
    mutating func beginCanonical(number: Int, isOperation: Bool) -> UnsafeMutablePointer<Statement> {
        previousWasBlank = false
        declared.line = number
        if isOperation && firstOperation == nil { firstOperation = number }
        if isOperation && declared.firstOperationInFile == nil { declared.firstOperationInFile = number }
        return statements.appendBlank(line: number, column: 1)
    }
}

// The parts of a canonical line: free functions, not methods of the
// parser, which a non-mutating call copied whole (146 bytes) each time.

/// `iova=N vaddr=N size=N prot=P ` from `i`; the offset after it (where
/// `=> ` must be).
@inline(__always)
func canonicalMap(_ base: UnsafePointer<UInt8>, _ count: Int, _ i: Int) -> (MapDMA, Int)? {
    guard bytesAt(base, count, i, are: CanonicalWord.iova, length: 5),
          let (iova, iovaEnd) = canonicalNumber(base, count, from: i &+ 5, endingWith: UInt8(ascii: " ")) else { return nil }
    var j = iovaEnd &+ 1
    guard bytesAt(base, count, j, are: CanonicalWord.vaddr, length: 6),
          let (vaddr, vaddrEnd) = canonicalNumber(base, count, from: j &+ 6, endingWith: UInt8(ascii: " ")) else { return nil }
    j = vaddrEnd &+ 1
    guard bytesAt(base, count, j, are: CanonicalWord.size, length: 5),
          let (size, sizeEnd) = canonicalNumber(base, count, from: j &+ 5, endingWith: UInt8(ascii: " ")) else { return nil }
    j = sizeEnd &+ 1
    guard bytesAt(base, count, j, are: CanonicalWord.prot, length: 5),
          let protText = canonicalValue(base, count, from: j &+ 5, endingWith: UInt8(ascii: " ")) else { return nil }
    // As `StatementParser.map`.
    let flags: MapDMA.Flags
    if protText == "rw" {
        flags = [.read, .write]
    } else if protText == "r" {
        flags = .read
    } else if protText == "w" {
        flags = .write
    } else if protText == "none" {
        flags = []
    } else {
        return nil
    }
    return (MapDMA(argsz: MapDMA.structSize, flags: flags, vaddr: vaddr, iova: iova, size: size), protText.end &+ 1)
}

/// `iova=N size=N ` from `i`; the offset after it.
@inline(__always)
func canonicalUnmap(_ base: UnsafePointer<UInt8>, _ count: Int, _ i: Int) -> (UnmapDMA, Int)? {
    guard bytesAt(base, count, i, are: CanonicalWord.iova, length: 5),
          let (iova, iovaEnd) = canonicalNumber(base, count, from: i &+ 5, endingWith: UInt8(ascii: " ")) else { return nil }
    let j = iovaEnd &+ 1
    guard bytesAt(base, count, j, are: CanonicalWord.size, length: 5),
          let (size, sizeEnd) = canonicalNumber(base, count, from: j &+ 5, endingWith: UInt8(ascii: " ")) else { return nil }
    // As `StatementParser.unmap` without any optional word.
    return (UnmapDMA(argsz: nil, flags: [], iova: iova, size: size, bitmap: nil), sizeEnd &+ 1)
}

/// `=> ANSWER\n` from `i`, or with `takesSize` also `=> ok size=N\n`
/// (an unmap's answer); the answer and where the next line starts.
@inline(__always)
func canonicalAnswer(_ base: UnsafePointer<UInt8>, _ count: Int, _ i: Int, takesSize: Bool) -> (Answer, Int)? {
    guard bytesAt(base, count, i, are: CanonicalWord.arrow, length: 3) else { return nil }
    let j = i &+ 3
    let e = nextStop(base, count, from: j, inWords: true)
    guard e > j, e < count, let status = canonicalStatus(Text(base: base, start: j, end: e)) else { return nil }
    if base[e] == 0x0A { return (Answer(status), e &+ 1) }
    // Only `ok` takes a field, and only an unmap's `size=`.
    guard takesSize, case .ok = status, base[e] == UInt8(ascii: " "),
          bytesAt(base, count, e &+ 1, are: CanonicalWord.size, length: 5),
          let (size, sizeEnd) = canonicalNumber(base, count, from: e &+ 6, endingWith: 0x0A) else { return nil }
    var fields = AnswerFields()
    fields.append(.size(size))
    return (Answer(.ok, fields: fields), sizeEnd &+ 1)
}

/// `mappings=N\n` or `locked=N\n` from `i`; the check and where the
/// next line starts.
@inline(__always)
func canonicalCheck(_ base: UnsafePointer<UInt8>, _ count: Int, _ i: Int) -> (Check, Int)? {
    if bytesAt(base, count, i, are: CanonicalWord.mappings, length: 8) {
        guard i &+ 8 < count, base[i &+ 8] == UInt8(ascii: "="),
              let (n, end) = canonicalNumber(base, count, from: i &+ 9, endingWith: 0x0A) else { return nil }
        return (.mappings(n), end &+ 1)
    }
    if bytesAt(base, count, i, are: CanonicalWord.locked, length: 7) {
        guard let (n, end) = canonicalNumber(base, count, from: i &+ 7, endingWith: 0x0A) else { return nil }
        return (.locked(n), end &+ 1)
    }
    return nil
}

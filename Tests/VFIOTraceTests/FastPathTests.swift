import Testing
import VFIOCore
@testable import VFIOTrace

// The lexer skips eight bytes at a time, and numbers are read by a short
// loop that gives up on anything unusual. Each fast path is checked here against a byte-at-a-time
// reference (the code it replaced), at every position of an 8-byte block
// and in the last bytes of the file, where fewer than eight remain.

/// The first byte of `bytes[start..<end]` that is not UTF-8 or is a control
/// character: the per-byte check the lexer had before its fast path.
private func referenceFirstError(_ bytes: [UInt8], from start: Int, to n: Int) -> (offset: Int, message: String)? {
    var i = start
    while i < n {
        let b = bytes[i]
        if b < 0x80 {
            if (b < 0x20 && b != 0x09) || b == 0x7F {
                return (i, "expected a printable character, found control character \(hexByte(b))")
            }
            i += 1
            continue
        }
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
        default: return (i, "expected UTF-8 text, found byte \(hexByte(b))")
        }
        guard i + length <= n else { return (i, "expected UTF-8 text, found byte \(hexByte(b))") }
        for k in 1..<length {
            let c = bytes[i + k]
            let (lo, hi) = k == 1 ? (low, high) : (UInt8(0x80), UInt8(0xBF))
            guard c >= lo && c <= hi else { return (i, "expected UTF-8 text, found byte \(hexByte(b))") }
        }
        if b == 0xC2 && bytes[i + 1] <= 0x9F {
            return (i, "expected a printable character, found control character U+00\(String(bytes[i + 1], radix: 16, uppercase: true))")
        }
        i += length
    }
    return nil
}

/// Bytes that are not allowed in a line (each with what follows it).
private let badBytes: [[UInt8]] = [
    [0x00], [0x01], [0x0B], [0x1F], [0x7F], [0x0D, 0x41], [0x80], [0xBF], [0xC0, 0x80], [0xC3, 0x41],
    [0xC2, 0x85], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF5], [0xFF],
]

@Test("a control character or a byte that is not UTF-8 is found at every position of an 8-byte block and at the end of the file",
      arguments: ["# ", "info ", "map iova=", ""])
func badByteAtEveryPosition(prefix: String) {
    for bad in badBytes {
        for before in 0..<20 {
            for after in [0, 1, 3, 7, 8, 9, 17] {
                let line = Array(prefix.utf8) + Array(repeating: UInt8(ascii: "a"), count: before) + bad
                    + Array(repeating: UInt8(ascii: "b"), count: after)
                // The line alone, and followed by another line.
                for tail in [[], Array("\ninfo".utf8)] {
                    let file = line + tail
                    let expected = referenceFirstError(line, from: 0, to: line.count)
                    #expect(expected != nil)
                    guard let expected else { continue }
                    // Everything before the bad byte is ASCII: one column per byte.
                    let want = "t.trace:1:\(expected.offset + 1): error: \(expected.message)"
                    #expect(diagnostics(bytes: file) == [want], "\(file)")
                }
            }
        }
    }
}

@Test("multibyte scalars at every position of an 8-byte block are text, in comments and words")
func goodScalarsAtEveryPosition() {
    for scalar in ["é", "✓", "🚀", "\u{A0}", "\u{10FFFF}"] {
        for before in 0..<20 {
            let pad = String(repeating: "a", count: before)
            #expect(statements("# \(pad)\(scalar)\(pad)")?.first?.kind == .comment("\(pad)\(scalar)\(pad)"))
            // In a word it is text too: the statement's own check names it.
            #expect(diagnostics("iommu \(pad)\(scalar)") == ["t.trace:1:7: error: expected one of type1, type1v2, found '\(pad)\(scalar)'"])
        }
    }
}

/// The tokens of one line as the byte-at-a-time tokenizer cut them:
/// (is arrow, start, end, equals), the comment, and where the line ends.
private func referenceTokens(_ b: [UInt8]) -> (tokens: [[Int]], comment: String?, end: Int) {
    var tokens: [[Int]] = []
    var comment: String?
    var i = 0
    let end = b.count
    let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), hash = UInt8(ascii: "#")
    let equal = UInt8(ascii: "="), greater = UInt8(ascii: ">")
    while i < end {
        if tokens.count == maxTokensPerLine { break }
        let c = b[i]
        if c == space || c == tab { i += 1; continue }
        if c == hash {
            var t = Array(b[(i + 1)...])
            if t.first == space { t.removeFirst() }
            while let last = t.last, last == space || last == tab { t.removeLast() }
            comment = String(decoding: t, as: UTF8.self)
            break
        }
        if c == equal && i + 1 < end && b[i + 1] == greater {
            tokens.append([1, i, i + 2, i + 2])
            i += 2
            continue
        }
        let start = i
        var equals = -1
        while i < end {
            let d = b[i]
            if d == space || d == tab || d == hash { break }
            if d == equal {
                if i + 1 < end && b[i + 1] == greater { break }
                if equals < 0 { equals = i }
            }
            i += 1
        }
        tokens.append([0, start, i, equals < 0 ? i : equals])
    }
    return (tokens, comment, tokens.last?[2] ?? 0)
}

@Test("the lexer cuts random lines of blanks, =, >, #, letters and scalars as the byte-at-a-time tokenizer did, and records their arrows")
func tokensMatchReference() {
    var random = SeededRandom(seed: 7)
    let pieces: [[UInt8]] = [[0x20], [0x09], [0x3D], [0x3E], [0x23], [0x61], [0x62], [0x61, 0x61, 0x61, 0x61, 0x61, 0x61, 0x61],
                             Array("é".utf8), Array("🚀".utf8), Array("=>".utf8), Array("  ".utf8)]
    for round in 0..<3000 {
        var line: [UInt8] = []
        let n = Int(random.below(round % 10 == 0 ? 200 : 30))
        for _ in 0..<n { line += pieces[Int(random.below(UInt64(pieces.count)))] }
        let want = referenceTokens(line)
        let file = line + Array("\nx".utf8)
        file.withUnsafeBufferPointer { buffer in
            var lines = 0
            forEachLexedLine(buffer) { lexed, error in
                lines += 1
                guard lexed.number == 1 else { return }
                #expect(error == nil)
                let got = lexed.tokens.map { [$0.isArrow ? 1 : 0, $0.text.start, $0.text.end, $0.equals] }
                #expect(got == want.tokens, "\(line)")
                #expect(lexed.comment == want.comment, "\(line)")
                #expect(lexed.end == want.end, "\(line)")
                // The arrows the lexer records are the first two a scan finds.
                let arrows = lexed.tokens.indices.filter { lexed.tokens[$0].isArrow }
                #expect(lexed.firstArrow == (arrows.count > 0 ? arrows[0] : -1), "\(line)")
                #expect(lexed.secondArrow == (arrows.count > 1 ? arrows[1] : -1), "\(line)")
                // The first word's column, taken from its offset alone by
                // appendStatement, is what counting the line's scalars gives.
                if let first = lexed.tokens.first {
                    #expect(first.text.start - lexed.start + 1 == column(at: first.text.start, lineStart: lexed.start, in: buffer.baseAddress!), "\(line)")
                }
            }
            #expect(lines == 2)
        }
    }
}

@Test("the short-number loop agrees with the exact parser on random texts and on every corner")
func shortNumbersAgree() {
    let corners = [
        "0", "00", "0x", "0X", "0x0", "0xffffffffffffffff", "0XFFFFFFFFFFFFFFFF", "0x0000000000000000f", "0x10000000000000000",
        "18446744073709551615", "18446744073709551616", "9999999999999999999", "99999999999999999999", "0000000000000000000001",
        "16777215T", "16777216T", "17179869183G", "17179869184G", "4K", "4k", "K", "0xK", "0x10K", "1KK", "1K2", "-1", "+1", "1.5",
        "0x1g", "0xg", "07", "2M", "64K", "0x100a00000",
    ]
    var texts = corners
    var random = SeededRandom(seed: 11)
    let alphabet = Array("0123456789abcdefABCDEFxXKMGTkg-")
    for _ in 0..<20000 {
        var s = random.below(3) == 0 ? "0x" : ""
        for _ in 0..<Int(random.below(22)) { s.append(alphabet[Int(random.below(UInt64(alphabet.count)))]) }
        texts.append(s)
    }
    // Hex of every length up to 17 digits, all digits valid, then with one
    // byte next to a digit's range (or not ASCII) at each position: the
    // digits are read eight at a time.
    let hexAlphabet = Array("0123456789abcdefABCDEF")
    let nearHex = ["/", ":", "@", "G", "`", "g", " ", "\u{7F}", "é", "\u{0}", "F", "0"]
    for length in 1...17 {
        for _ in 0..<40 {
            let digits = (0..<length).map { _ in hexAlphabet[Int(random.below(UInt64(hexAlphabet.count)))] }
            texts.append("0x" + String(digits))
            // Up to 16 digits the fast path reads them (and gives the value).
            if length <= 16 {
                let bytes = Array(("0x" + String(digits)).utf8)
                #expect(bytes.withUnsafeBufferPointer { parseShortNumber(Text(base: $0.baseAddress!, start: 0, end: $0.count)) }
                        == UInt64(String(digits), radix: 16), "\(digits)")
            }
            for k in 0..<length {
                var d = digits.map(String.init)
                d[k] = nearHex[Int(random.below(UInt64(nearHex.count)))]
                texts.append("0X" + d.joined())
            }
        }
    }
    for s in texts {
        let bytes = Array(s.utf8)
        guard !bytes.isEmpty else { continue }
        // At the file's start, and after other bytes (so that eight-byte
        // reads start inside the text or end at it).
        for lead in [0, 3, 9] {
            let file = Array(repeating: UInt8(ascii: "9"), count: lead) + bytes
            file.withUnsafeBufferPointer { b in
                let text = Text(base: b.baseAddress!, start: lead, end: b.count)
                if let short = parseShortNumber(text) {
                    #expect(parseNumberExactly(text) == .success(short), "\(s)")
                }
                #expect(parseNumber(text) == parseNumberExactly(text), "\(s)")
            }
        }
    }
}

@Test("keywords are recognized wherever the word lies: in the file's first bytes, its last bytes, or longer than eight bytes")
func keywordsAnywhere() {
    #expect(kind("info argsz=8") == .info(argsz: 8))
    #expect(kind("show iova") == .show(.iova))
    #expect(kind("map iova=0 vaddr=0 size=4K prot=rw argsz=32") == mapDMA(iova: 0, vaddr: 0, size: 4096, [.read, .write]))
    #expect(statements("unmap iova=0 size=4K dirty pgsize=4K bitmap-size=8")?.count == 1)
    #expect(statements("domain d1 pgsizes=4K msi-isolated=no")?.count == 1)
    // Near-misses of keywords are errors naming the word.
    #expect(diagnostics("info argsz8") == ["t.trace:1:6: error: expected argsz=, found 'argsz8'"])
    #expect(diagnostics("info argsz==8") == ["t.trace:1:12: error: expected a number, found '=8'"])
    #expect(diagnostics("check lockedd=1") == ["t.trace:1:7: error: expected one of locked=, mappings=, ptes=, pte, iova=, domain=, found 'lockedd=1'"])
    #expect(diagnostics("map iova=0 vaddr=0 size=4K prot=rw bitmap-size=8") ==
        ["t.trace:1:36: error: expected one of iova=, vaddr=, size=, prot=, vaddr-only, argsz=, flags=, repeat=, step=, found 'bitmap-size=8'"])
    #expect(diagnostics("mapp") == ["t.trace:1:1: error: expected one of \(Verb.list), found 'mapp'"])
    #expect(diagnostics("map iova=0 vaddr=0 size=4K prot=rw => EEXISTS") == ["t.trace:1:39: error: expected a Linux errno name, found 'EEXISTS'"])
    #expect(statements("map iova=0 vaddr=0 size=4K prot=rw => EWOULDBLOCK")?.first?.expected == Answer(.errno(Errno(name: "EAGAIN")!)))
    #expect(statements("unmap iova=0 size=4K => hang")?.first?.expected == Answer(.errno(.hang)))
    #expect(statements("map iova=0 vaddr=0 size=4K prot=rw => ENOTRECOVERABLE")?.first?.expected == Answer(.errno(Errno(name: "ENOTRECOVERABLE")!)))
}

@Test("an answer's fields compare and hash by their elements, however they were built")
func answerFields() {
    var built = AnswerFields()
    built.append(.size(4096))
    #expect(built == [.size(4096)])
    #expect(Answer(.ok, fields: [AnswerField.size(4096)]) == Answer(.ok, fields: built))
    built.append(.dirty([]))
    #expect(Array(built) == [.size(4096), .dirty([])])
    #expect(Set([built, AnswerFields([.size(4096), .dirty([])])]).count == 1)
    #expect(AnswerFields().isEmpty && AnswerFields([]).count == 0)
    #expect(built.first == .size(4096) && built.last == .dirty([]))
}

/// Words near each keyword: the keyword, each prefix and each extension by
/// one byte, each byte changed, and the keyword doubled.
private func nearWords(_ names: [String]) -> [String] {
    var out: [String] = []
    for name in names {
        let b = Array(name.utf8)
        out.append(name)
        out.append(name + name)
        out.append(name + "x")
        out.append("x" + name)
        for k in 0..<b.count {
            out.append(String(decoding: b[..<k], as: UTF8.self))
            var c = b
            c[k] ^= 0x20
            out.append(String(decoding: c, as: UTF8.self))
            c[k] = UInt8(ascii: "=")
            out.append(String(decoding: c, as: UTF8.self))
        }
    }
    return out
}

private func withText<R>(_ s: String, _ body: (Text) -> R) -> R {
    let bytes = Array(("........" + s).utf8)
    return bytes.withUnsafeBufferPointer { body(Text(base: $0.baseAddress!, start: 8, end: $0.count)) }
}

@Test("verbs, statement keys and answer keys are found by their names and by nothing near them")
func keywordsByName() {
    let verbs = Verb.allCases.map(\.name.string)
    for w in nearWords(verbs) {
        let reference = Verb.allCases.first { $0.name.string == w }
        #expect(withText(w) { Verb($0) } == reference, "\(w)")
    }
    let keys = Key.allCases.map(\.name.string)
    for w in nearWords(keys) {
        let reference = Key.allCases.first { $0.name.string == w }
        #expect(withText(w) { Key($0) } == reference, "\(w)")
        // Through a statement's list: only the keys it has.
        for syntax in [StatementSyntax.map, .unmap, .show, .check] {
            let listed = syntax.keys.map(\.key).first { $0.name.string == w }
            #expect(withText(w) { syntax.key($0)?.key } == listed, "\(w)")
        }
    }
    let answerKeys = AnswerKey.allCases.map(\.name.string)
    for w in nearWords(answerKeys) {
        let reference = AnswerKey.allCases.first { $0.name.string == w }
        #expect(withText(w) { AnswerKey($0) } == reference, "\(w)")
        var rule = AnswerRule.status(.info)
        rule.fields = AnswerKey.size.bit | AnswerKey.argsz.bit
        let allowed = reference.flatMap { $0 == .size || $0 == .argsz ? $0 : nil }
        #expect(withText(w) { rule.field($0) } == allowed, "\(w)")
    }
    for w in nearWords(["EEXIST", "ENOMEM", "EWOULDBLOCK", "ENOTRECOVERABLE"]) {
        #expect(withText(w) { errno(named: $0) } == Errno(name: w), "\(w)")
    }
}

@Test("a statement's keys are listed in messages in the order its grammar gives them")
func messagesListKeysInGrammarOrder() {
    #expect(StatementSyntax.map.oneOf == "one of iova=, vaddr=, size=, prot=, vaddr-only, argsz=, flags=, repeat=, step=")
    #expect(StatementSyntax.unmap.oneOf == "one of iova=, size=, vaddr-only, dirty, pgsize=, bitmap-size=, argsz=, flags=, repeat=, step=")
    #expect(StatementSyntax.info.oneOf == "argsz=")
    #expect(diagnostics("map iova=0 size=4K bogus=1") == ["t.trace:1:20: error: expected \(StatementSyntax.map.oneOf), found 'bogus=1'"])
}

@Test("the hex digit table gives each byte's value as a hex digit, or 16")
func hexDigitTable() {
    #expect(hexDigitValues.utf8CodeUnitCount == 256)
    for c in 0...255 {
        let b = UInt8(c)
        let want: UInt8 = switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - UInt8(ascii: "A") + 10
        default: 16
        }
        #expect(hexDigitValues.utf8Start[c] == want, "byte \(c)")
    }
}

@Test("each line's tokens are its own: the lexer reuses one token array, and a short line after a long one sees none of the long line's words")
func tokensOfEachLineAreItsOwn() {
    let lines = ["map iova=0x1000 vaddr=0x2000 size=4K prot=rw => ok # long", "x y", "", "a => b => c", "# only a comment", "z"]
    let file = Array(lines.joined(separator: "\n").utf8)
    var offset = 0
    var starts: [Int] = []
    for line in lines { starts.append(offset); offset += line.utf8.count + 1 }
    file.withUnsafeBufferPointer { buffer in
        forEachLexedLine(buffer) { lexed, error in
            #expect(error == nil)
            let k = lexed.number - 1
            let want = referenceTokens(Array(file[starts[k]..<(starts[k] + lines[k].utf8.count)])).tokens
            let got = lexed.tokens.map { [$0.isArrow ? 1 : 0, $0.text.start - starts[k], $0.text.end - starts[k], $0.equals - starts[k]] }
            #expect(got == want, "line \(lexed.number): \(lines[k])")
        }
    }
    // Parsed, the short `check` after the long `map` is a check alone.
    let trace = try? parseTrace("map iova=0x1000 vaddr=0x2000 size=4K prot=rw => ok\ncheck locked=4K\n", file: "t.trace").get()
    #expect(trace?.statements.last?.kind == .check(.locked(4096)))
}

import VFIOCore

/// The words of one statement after its verb, read by the statement's
/// definition (`StatementSyntax`).
///
/// A statement's reader takes its operands (`operand`), then its keys at
/// once (`readKeys`): each word must be one the statement accepts and
/// appear once, a required key must be there, a key that needs another
/// must have it, and numbers and yes/no values must parse; the values are
/// then looked up by key (`number`, `keyed`, `bare`).
///
/// The words are positions in the line's token array, held once: slices
/// of it (`ArraySlice`) each retained the array, and making, copying and
/// dropping them cost more reference counting than looking the words up.
struct StatementParser {
    /// The line's tokens, verb and answer included.
    let tokens: [Token]
    /// The words not taken yet are `tokens[next..<wordsEnd]`.
    var next: Int
    /// Where the words end: the `=>`, or the end of the tokens.
    let wordsEnd: Int
    /// Where the `=>` after the words is, if any. (An offset, not the
    /// token: the parser is copied once per statement, and under 256 bytes
    /// that copy costs a third of what it did.)
    let arrowStart: Int?
    /// Offset of `end of line` when no `=>` follows the words.
    var lineEnd: Int
    /// Where the verb starts (for errors about the whole statement), and
    /// the line of the container's first operation before this line (nil
    /// while there is none).
    let verbStart: Int
    let firstOperation: Int?

    /// The words checked by `readKeys` are `tokens[collectedStart..<
    /// wordsEnd]` (it takes every word left), in line order: each
    /// accepted, each once; none until it runs.
    var collectedStart: Int
    /// Where each key's word is among the collected words (an offset from
    /// `collectedStart`), by `Key.rawValue`; -1 for a key the line lacks.
    /// Inline, so a line allocates nothing for it.
    var slots = InlineArray<40, Int8>(repeating: -1)
    /// The keys the line has, as `Key.bit`s.
    var present: UInt64 = 0
    /// The value of each collected `number`, `number32` and `yesNo` word
    /// (1 for yes), by its offset among the collected words: a statement
    /// accepts at most `maxKeys` keys, each once.
    var values = InlineArray<10, UInt64>(repeating: 0)
    static let maxKeys = 10
    /// `repeat=` and `step=` of a `map` or `unmap`.
    var repetition: Statement.Repetition?
    /// What the answer after `=>` may hold (the statement's, or what its
    /// reader narrowed it to).
    var rule = AnswerRule.none("")

    /// How the collected `key=value` words spelled their values.
    func spellings() -> [String: String] {
        var out: [String: String] = [:]
        for w in collected where w.hasEquals { out[w.key.string] = w.value.string }
        return out
    }

    /// The statement whose words (after its verb) are `tokens[words]`.
    init(tokens: [Token], words: Range<Int>, arrowStart: Int?, lineEnd: Int, verbStart: Int, firstOperation: Int?) {
        self.tokens = tokens; next = words.lowerBound; wordsEnd = words.upperBound; collectedStart = words.upperBound
        self.arrowStart = arrowStart; self.lineEnd = lineEnd; self.verbStart = verbStart; self.firstOperation = firstOperation
    }

    /// Reads the statement of `verb`; `rule` is then what its answer may hold.
    mutating func parse(verb: Verb, declared: inout Declared) throws(LineError) -> Statement.Kind {
        rule = verb.syntax.answer
        return try verb.read(&self, &declared)
    }

    /// The next word not taken yet, if any.
    @inline(__always) var nextWord: Token? { next < wordsEnd ? tokens[next] : nil }

    /// The words `readKeys` checked, in line order.
    var collected: ArraySlice<Token> { tokens[collectedStart..<wordsEnd] }

    // MARK: Words

    /// An error for something missing at the end of the statement.
    func missing(_ what: String) -> LineError {
        if let arrowStart { return LineError(arrowStart, "expected \(what), found '=>'") }
        return LineError(lineEnd, "expected \(what), found end of line")
    }

    /// The next bare word (a verb's operand), or an error naming `what`.
    mutating func operand(_ what: @autoclosure () -> String) throws(LineError) -> Token {
        guard let w = nextWord else { throw missing(what()) }
        next += 1
        return w
    }

    /// No more words.
    func end() throws(LineError) {
        if let w = nextWord { throw LineError(w.text.start, "expected end of line, found \(quoted(w.text))") }
    }

    /// Reads the remaining words as the keys of `syntax`: first each word,
    /// in line order, must be one of its keys and appear once; then each
    /// key, in the statement's order, must be there when required, have
    /// the key it needs, and hold a value of its kind.
    ///
    /// The values are read as the words are taken; only a line with a
    /// problem among them is walked again in the statement's order, to
    /// report the problem that order finds first.
    ///
    /// - Complexity: O(k·a) for k words and a accepted keys.
    mutating func readKeys(_ syntax: StatementSyntax) throws(LineError) {
        let keys = syntax.keys
        // Tools write the keys in the statement's order: the search for a
        // word's key starts after the previous word's.
        var guess = 0
        var valuesRead = true
        for offset in 0..<(wordsEnd - next) {
            let w = tokens[next + offset]
            guard let at = keys.index(of: w.name, from: guess) else {
                throw LineError(w.text.start, "expected \(syntax.oneOf), found \(quoted(w.text))")
            }
            let key = keys[at].key
            guard !has(key) else {
                throw LineError(w.text.start, "expected at most one \(key.name), found \(quoted(w.text))")
            }
            present |= key.bit
            slots[Int(key.rawValue)] = Int8(offset)
            if let v = Self.value(of: w, as: keys[at].kind) { values[offset] = v } else { valuesRead = false }
            guess = at + 1 < keys.count ? at + 1 : 0
        }
        collectedStart = next
        next = wordsEnd
        // Most lines have every required key, no key that needs another,
        // and good values.
        if !valuesRead || present & syntax.required != syntax.required || present & syntax.needing != 0 {
            for k in keys { try readValue(k) }
        }
    }

    /// The value of `word` as a key of `kind` reads it (0 for a bare word
    /// or text), or nil when it is not one.
    @inline(__always) static func value(of word: Token, as kind: ValueKind) -> UInt64? {
        switch kind {
        case .number: try? VFIOTrace.number(word.value)
        case .number32: (try? VFIOTrace.number32(word.value)).map(UInt64.init)
        case .yesNo: (try? VFIOTrace.yesNo(word.value)).map { $0 ? 1 : 0 }
        case .bare, .text: 0
        }
    }

    /// Checks one key of the statement, and reads its value again (to
    /// throw the error the value gives).
    mutating func readValue(_ k: KeySyntax) throws(LineError) {
        guard let w = bare(k.key) else {
            if k.required, k.needs.map(has) ?? true { throw missing(k.key.name.string) }
            return
        }
        if let needs = k.needs, !has(needs) { throw onlyError(w, needs.name) }
        let offset = Int(slots[Int(k.key.rawValue)])
        switch k.kind {
        case .number: values[offset] = try VFIOTrace.number(w.value)
        case .number32: values[offset] = UInt64(try VFIOTrace.number32(w.value))
        case .yesNo: values[offset] = try VFIOTrace.yesNo(w.value) ? 1 : 0
        case .bare, .text: break
        }
    }

    // The look-ups below are inlined into each statement's reader: called,
    // each copied the whole parser (a mutating caller's `self`) first.

    /// Whether the line has `key`.
    @inline(__always) func has(_ key: Key) -> Bool { present & key.bit != 0 }

    /// The collected `key=value` word of `key`, if any.
    @inline(__always) func keyed(_ key: Key) -> KeyValue? {
        bare(key).map { KeyValue(word: $0, value: $0.value) }
    }

    /// The collected bare word `key`, if any.
    @inline(__always) func bare(_ key: Key) -> Token? {
        has(key) ? tokens[collectedStart + Int(slots[Int(key.rawValue)])] : nil
    }

    /// The value `readKeys` read for a `number`, `number32` or `yesNo` key.
    @inline(__always) func value(_ key: Key) -> UInt64? {
        has(key) ? values[Int(slots[Int(key.rawValue)])] : nil
    }

    @inline(__always) func number(_ key: Key) -> UInt64? { value(key) }

    @inline(__always) func number32(_ key: Key) -> UInt32? { value(key).map { UInt32(truncatingIfNeeded: $0) } }

    /// A required key's number (`readKeys` made sure it is there; the
    /// error only if the statement's reader and its keys disagree).
    @inline(__always) func requiredNumber(_ key: Key) throws(LineError) -> UInt64 {
        guard let v = value(key) else { throw missing(key.name.string) }
        return v
    }

    @inline(__always) func yesNo(_ key: Key, default d: Bool) -> Bool { value(key).map { $0 != 0 } ?? d }

    /// `KEY= only with OTHER`: a word that needs another.
    @inline(__always) func only(_ word: Token?, with other: StaticString) throws(LineError) {
        if let word { throw onlyError(word, other) }
    }

    func onlyError(_ word: Token, _ other: StaticString) -> LineError {
        LineError(word.text.start, "expected \(firstPart(word)) only with \(other.string), found \(quoted(word.text))")
    }

    /// `iommu`, `container` and `kernel` come before the first operation.
    func before(_ verb: Verb, _ firstOperation: Int?) throws(LineError) {
        if let firstOperation {
            throw LineError(verbStart, "expected \(verb.name) before the first operation, found it after the operation on line \(firstOperation)")
        }
    }
}

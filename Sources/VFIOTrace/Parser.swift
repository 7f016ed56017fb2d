import VFIOCore

/// Parses a `.trace` file (TRACE_FORMAT.md).
///
/// Every line is parsed; a line with an error gives one diagnostic and no
/// statement, and parsing goes on with the next line, so the failure lists
/// every error in the file, in order. An empty file is an empty trace.
///
/// - Parameters:
///   - bytes: the file's contents: UTF-8, lines ending in `\n` or `\r\n`.
///   - file: the path to name in diagnostics and in the trace.
/// - Complexity: O(n) in the number of bytes, whatever the line lengths.
/// With `keepingSpellings`, each statement records how its values were
/// written (`Statement.spellings`), for `fmt`.
public func parseTrace(bytes: [UInt8], file: String, keepingSpellings: Bool = false) -> Result<Trace, ParseFailure> {
    var parser = TraceParser()
    parser.keepsSpellings = keepingSpellings
    bytes.withUnsafeBufferPointer { buffer in
        // Nil only for an empty buffer, which has no lines.
        guard let base = buffer.baseAddress else { return }
        var line = LexedLine()
        forEachLine(buffer) { number, start, end in
            let error = lexLine(base, start, end, number: number, into: &line)
            parser.take(line, error, base)
        }
    }
    if parser.errors.isEmpty { return .success(Trace(file: file, statements: parser.statements)) }
    return .failure(ParseFailure(diagnostics: parser.errors.map {
        Diagnostic(file: file, line: $0.line, column: $0.column, message: $0.message)
    }))
}

/// Parses a trace held in a string (tests, `fmt` of standard input).
public func parseTrace(_ text: String, file: String, keepingSpellings: Bool = false) -> Result<Trace, ParseFailure> {
    parseTrace(bytes: Array(text.utf8), file: file, keepingSpellings: keepingSpellings)
}

/// The verbs of the language, in the order messages list them.
///
/// An enum rather than strings so that a line's verb is matched once, by
/// comparing bytes, and then switched on without hashing or allocating.
enum Verb: CaseIterable {
    case iommu, container, kernel, memlock, capIPCLock, dmaEntryLimit, domain, detach, memory
    case map, unmap, unmapAll, info, `extension`, dirty, check, show

    var name: StaticString {
        switch self {
        case .iommu: "iommu"
        case .container: "container"
        case .kernel: "kernel"
        case .memlock: "memlock"
        case .capIPCLock: "cap-ipc-lock"
        case .dmaEntryLimit: "dma-entry-limit"
        case .domain: "domain"
        case .detach: "detach"
        case .memory: "memory"
        case .map: "map"
        case .unmap: "unmap"
        case .unmapAll: "unmap-all"
        case .info: "info"
        case .extension: "extension"
        case .dirty: "dirty"
        case .check: "check"
        case .show: "show"
        }
    }

    /// Verbs that are operations wherever they appear.
    var isOperation: Bool {
        switch self {
        case .map, .unmap, .unmapAll, .info, .extension, .dirty: true
        default: false
        }
    }

    /// Every verb, in a stored array (`allCases` may build a new one on
    /// each call, and this is searched once per line).
    static let all = Verb.allCases

    /// The verb spelled `text`, if any.
    init?(_ text: Text) {
        for verb in Verb.all where text == verb.name {
            self = verb
            return
        }
        return nil
    }

    /// `iommu, kernel, ...`, for messages.
    static var list: String { allCases.map(\.name.string).joined(separator: ", ") }
}

/// The keys an answer may carry, in the order messages list them.
enum AnswerKey: Int, CaseIterable {
    case pgsizes, iova, dmaAvail, argsz, size, dirty

    var name: StaticString {
        switch self {
        case .pgsizes: "pgsizes"
        case .iova: "iova"
        case .dmaAvail: "dma-avail"
        case .argsz: "argsz"
        case .size: "size"
        case .dirty: "dirty"
        }
    }

    /// The bit of this key in `AnswerRule.fields`.
    var bit: UInt8 { 1 << UInt8(rawValue) }

    static let all = AnswerKey.allCases
}

/// What an answer after `=>` may hold on one statement.
struct AnswerRule {
    /// Nil when the statement takes an answer; else why not (for the message).
    var refusal: String?
    /// The verb, for messages.
    var verb: Verb = .info
    /// Keys the answer may carry after `ok`: a set of `AnswerKey.bit`s (a
    /// bit set, not an array, so that making a rule per line allocates
    /// nothing).
    var fields: UInt8 = 0
    /// A bare number (`extension`), instead of `ok`.
    var value = false
    /// Keys without `ok` (`info => dma-avail=3`).
    var fieldsAlone = false

    static func none(_ why: String) -> AnswerRule { AnswerRule(refusal: why) }
    static func status(_ verb: Verb) -> AnswerRule { AnswerRule(refusal: nil, verb: verb) }

    /// The key `text` names, if this answer may carry it.
    func field(_ text: Text) -> AnswerKey? {
        for key in AnswerKey.all where fields & key.bit != 0 && text == key.name { return key }
        return nil
    }

    /// `size=` or `pgsizes=, iova=, dma-avail=, argsz=`, for messages.
    var fieldList: String {
        AnswerKey.allCases.filter { fields & $0.bit != 0 }.map { $0.name.string + "=" }.joined(separator: ", ")
    }
}

/// What earlier lines declared: the rules that span lines (one `iommu`, a
/// group attached once, memory regions apart, `check` naming a known
/// domain) look here.
struct Declared {
    /// The line being parsed.
    var line = 0
    /// Line of the `iommu` statement.
    var iommuLine: Int?
    /// Line of the `container` statement.
    var containerLine: Int?
    /// Line of the first `domain` statement (`container` must come before it).
    var firstDomainLine: Int?
    /// Groups attached now, with the line that attached each.
    var attached: [(name: String, line: Int)] = []
    /// Every group name a `domain` statement gave.
    var named: Set<String> = []
    /// Whether a `domain` came before the first operation (else the
    /// replay attaches the default `d0`).
    var domainBeforeStart = false
    /// Memory regions, ascending by start: first byte, last byte, line.
    var memory: [(start: UInt64, last: UInt64, line: Int)] = []

    /// The region overlapping `[start, last]`, if any.
    /// - Complexity: O(log n) to find, O(n) to insert (regions come in
    ///   ascending order in practice, which appends).
    mutating func addMemory(start: UInt64, last: UInt64) -> (start: UInt64, last: UInt64, line: Int)? {
        var lo = 0, hi = memory.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if memory[mid].start < start { lo = mid + 1 } else { hi = mid }
        }
        if lo > 0, memory[lo - 1].last >= start { return memory[lo - 1] }
        if lo < memory.count, memory[lo].start <= last { return memory[lo] }
        memory.insert((start, last, line), at: lo)
        return nil
    }
}

/// The state carried from line to line.
struct TraceParser {
    var statements: [Statement] = []
    var errors: [(line: Int, column: Int, message: String)] = []
    /// Line of the first operation: `iommu` and `kernel` must come before
    /// it; `domain` and `detach` after it are operations.
    var firstOperation: Int?
    var previousWasBlank = false
    /// What earlier lines declared, for the rules that span lines.
    var declared = Declared()
    /// Whether statements keep how values were written (`fmt`).
    var keepsSpellings = false

    /// Takes one lexed line (or its lexing error) of the file at `base`.
    mutating func take(_ line: LexedLine, _ lexError: LineError?, _ base: UnsafePointer<UInt8>) {
        if let e = lexError {
            fail(line, e, base)
            previousWasBlank = false
            return
        }
        if line.tokens.isEmpty {
            if let text = line.comment {
                let column = VFIOTrace.column(at: line.commentStart, lineStart: line.start, in: base)
                statements.append(Statement(line: line.number, column: column, kind: .comment(text)))
                previousWasBlank = false
            } else {
                // A run of blank lines is one `.blank`.
                if !previousWasBlank { statements.append(Statement(line: line.number, column: 1, kind: .blank)) }
                previousWasBlank = true
            }
            return
        }
        previousWasBlank = false
        declared.line = line.number
        do throws(LineError) {
            statements.append(try statement(line, base))
        } catch {
            fail(line, error, base)
        }
    }

    /// Records `error`, turning its file offset into a column on `line`.
    mutating func fail(_ line: LexedLine, _ error: LineError, _ base: UnsafePointer<UInt8>) {
        errors.append((line.number, VFIOTrace.column(at: error.offset, lineStart: line.start, in: base), error.message))
    }

    /// One statement line: the verb's words, then the answer.
    mutating func statement(_ line: LexedLine, _ base: UnsafePointer<UInt8>) throws(LineError) -> Statement {
        // Through a pointer: slices of an array would retain and release its
        // storage at every step of the parse.
        try line.tokens.withUnsafeBufferPointer { (tokens) throws(LineError) in
            try statement(line, tokens[...], base)
        }
    }

    mutating func statement(_ line: LexedLine, _ tokens: Tokens, _ base: UnsafePointer<UInt8>) throws(LineError) -> Statement {
        let arrowIndex = tokens.firstIndex(where: \.isArrow)
        let words = tokens[..<(arrowIndex ?? tokens.endIndex)]
        let first = tokens[0]
        guard !first.isArrow, let verb = Verb(first.text) else {
            throw LineError(first.text.start, "expected one of \(Verb.list), found \(quoted(first.text))")
        }
        var s = StatementParser(words: words.dropFirst(), arrow: arrowIndex.map { tokens[$0] }, lineEnd: line.end)
        // An operation counts as the first one even when its words are wrong.
        if verb.isOperation && firstOperation == nil { firstOperation = line.number }
        let (kind, rule) = try s.parse(verb: verb, at: first, firstOperation: firstOperation, declared: &declared)
        var answer: Answer?
        if let arrowIndex {
            answer = try parseAnswer(rule: rule, arrow: tokens[arrowIndex], tokens: tokens[(arrowIndex + 1)...])
        }
        let column = VFIOTrace.column(at: first.text.start, lineStart: line.start, in: base)
        var statement = Statement(line: line.number, column: column, kind: kind, expected: answer, comment: line.comment)
        statement.repetition = s.repetition
        if keepsSpellings { statement.spellings = s.spellings() }
        return statement
    }
}

/// Some of a line's tokens (the line's `LexedLine` holds them).
typealias Tokens = Slice<UnsafeBufferPointer<Token>>

/// A `key=value` word.
struct KeyValue {
    var word: Token
    var value: Text
}

/// The words of one statement after its verb.
///
/// `key=value` words are looked up by a linear scan of the statement's
/// words, not through a dictionary: a statement accepts at most eight keys
/// (`collect` refuses anything else), so a scan of a few short byte
/// comparisons beats hashing, and nothing is allocated per line.
struct StatementParser {
    var words: Tokens
    var arrow: Token?
    /// Offset of `end of line` when no `=>` follows the words.
    var lineEnd: Int

    /// The words sorted out by `collect`: each accepted, each once.
    var collected: Tokens
    /// `repeat=` and `step=` of a `map` or `unmap`.
    var repetition: Statement.Repetition?

    /// How the collected `key=value` words spelled their values.
    func spellings() -> [String: String] {
        var out: [String: String] = [:]
        for w in collected where w.hasEquals { out[w.key.string] = w.value.string }
        return out
    }

    init(words: Tokens, arrow: Token?, lineEnd: Int) {
        self.words = words; self.arrow = arrow; self.lineEnd = lineEnd; self.collected = words[words.startIndex..<words.startIndex]
    }

    // MARK: Words

    /// An error for something missing at the end of the statement.
    func missing(_ what: String) -> LineError {
        if let arrow { return LineError(arrow.text.start, "expected \(what), found '=>'") }
        return LineError(lineEnd, "expected \(what), found end of line")
    }

    /// The next bare word (a verb's operand), or an error naming `what`.
    mutating func operand(_ what: @autoclosure () -> String) throws(LineError) -> Token {
        guard let w = words.popFirst() else { throw missing(what()) }
        return w
    }

    /// No more words.
    func end() throws(LineError) {
        if let w = words.first { throw LineError(w.text.start, "expected end of line, found \(quoted(w.text))") }
    }

    /// Checks the remaining words: each `key=value` or bare word must be in
    /// `accepts` (keys end with `=`) and appear once. They are then looked
    /// up with `keyed` and `bare`.
    ///
    /// - Complexity: O(k²) in the number of words, but every word but the
    ///   last checked is accepted and distinct, so k ≤ `accepts.count` + 1.
    mutating func collect(_ accepts: [StaticString]) throws(LineError) {
        for k in words.startIndex..<words.endIndex {
            let w = words[k]
            let name = w.name
            guard accepts.contains(where: { name == $0 })
            else { throw LineError(w.text.start, "expected \(oneOf(accepts)), found \(quoted(w.text))") }
            for j in words.startIndex..<k where words[j].name == name {
                throw LineError(w.text.start, "expected at most one \(name.string), found \(quoted(w.text))")
            }
        }
        collected = words
        words = words[words.endIndex...]
    }

    /// The collected `key=value` word of `key`, if any.
    func keyed(_ key: StaticString) -> KeyValue? {
        for w in collected where w.hasEquals && w.key == key { return KeyValue(word: w, value: w.value) }
        return nil
    }

    /// The collected bare word `word`, if any.
    func bare(_ word: StaticString) -> Token? {
        for w in collected where !w.hasEquals && w.text == word { return w }
        return nil
    }

    func required(_ key: StaticString) throws(LineError) -> KeyValue {
        guard let kv = keyed(key) else { throw missing("\(key)=") }
        return kv
    }

    func number(_ key: StaticString) throws(LineError) -> UInt64? {
        guard let kv = keyed(key) else { return nil }
        return try VFIOTrace.number(kv.value)
    }

    func number32(_ key: StaticString) throws(LineError) -> UInt32? {
        guard let kv = keyed(key) else { return nil }
        return try VFIOTrace.number32(kv.value)
    }

    func requiredNumber(_ key: StaticString) throws(LineError) -> UInt64 {
        try VFIOTrace.number(try required(key).value)
    }

    func yesNo(_ key: StaticString, default value: Bool) throws(LineError) -> Bool {
        guard let kv = keyed(key) else { return value }
        return try VFIOTrace.yesNo(kv.value)
    }

    /// `KEY= only with OTHER`: a word that needs another.
    func only(_ word: Token?, with other: String) throws(LineError) {
        if let word {
            throw LineError(word.text.start, "expected \(firstPart(word)) only with \(other), found \(quoted(word.text))")
        }
    }

    // MARK: Statements

    // What each statement accepts after its operands (`collect`).
    static let infoWords: [StaticString] = ["argsz="]
    static let dirtyGetWords: [StaticString] = ["iova=", "size=", "pgsize=", "bitmap-size=", "flags="]
    static let dirtyWords: [StaticString] = ["flags="]
    static let domainWords: [StaticString] = ["pgsizes=", "leaves=", "aperture=", "reserved=", "fgsp=", "coherent=", "emulated=", "msi-isolated="]
    static let memoryWords: [StaticString] = ["vaddr=", "size=", "page=", "phys=", "seed=", "pfnmap"]
    static let mapWords: [StaticString] = ["iova=", "vaddr=", "size=", "prot=", "vaddr-only", "argsz=", "flags=", "repeat=", "step="]
    static let unmapWords: [StaticString] = ["iova=", "size=", "vaddr-only", "dirty", "pgsize=", "bitmap-size=", "argsz=", "flags=", "repeat=", "step="]
    static let showWords: [StaticString] = ["locked", "mappings", "ptes", "iova"]
    static let unmapAllWords: [StaticString] = ["iova=", "size=", "vaddr-only", "argsz=", "flags="]
    static let checkWords: [StaticString] = ["locked=", "mappings=", "ptes=", "domain="]

    mutating func parse(verb: Verb, at verbToken: Token, firstOperation: Int?,
                        declared: inout Declared) throws(LineError) -> (Statement.Kind, AnswerRule) {
        switch verb {
        case .iommu:
            let w = try operand("one of type1, type1v2")
            let type: IOMMUType
            if w.text == "type1" { type = .type1 } else if w.text == "type1v2" { type = .type1v2 } else {
                throw LineError(w.text.start, "expected one of type1, type1v2, found \(quoted(w.text))")
            }
            try end()
            try before(verb, verbToken, firstOperation)
            if let first = declared.iommuLine {
                throw LineError(verbToken.text.start, "expected one iommu statement, found a second one (the first is on line \(first))")
            }
            declared.iommuLine = declared.line
            return (.iommu(type), .status(verb))

        case .container:
            let w = try operand("one of type1, iommufd")
            let kind: ContainerKind
            if w.text == "type1" { kind = .type1 } else if w.text == "iommufd" { kind = .iommufd } else {
                throw LineError(w.text.start, "expected one of type1, iommufd, found \(quoted(w.text))")
            }
            try end()
            try before(verb, verbToken, firstOperation)
            if let first = declared.firstDomainLine {
                throw LineError(verbToken.text.start, "expected container before the first domain, found it after the domain on line \(first)")
            }
            if let first = declared.containerLine {
                throw LineError(verbToken.text.start, "expected one container statement, found a second one (the first is on line \(first))")
            }
            declared.containerLine = declared.line
            return (.container(kind), .none("container takes no answer"))

        case .kernel:
            let known = "a kernel version \(KernelVersion.matrix.first!) … \(KernelVersion.matrix.last!) (known: \(KernelVersion.matrixList))"
            let w = try operand(known)
            guard let version = strictVersion(w.text), version.knownProfile != nil else {
                throw LineError(w.text.start, "expected \(known), found \(quoted(w.text))")
            }
            try end()
            try before(verb, verbToken, firstOperation)
            return (.kernel(version), .none("kernel takes no answer"))

        case .memlock:
            let w = try operand("a number or unlimited")
            var limit: UInt64?
            if w.text != "unlimited" { limit = try VFIOTrace.number(w.text, expected: "a number or unlimited") }
            try end()
            return (.memlock(limit), .none("memlock takes no answer"))

        case .capIPCLock:
            let w = try operand("one of on, off")
            guard w.text == "on" || w.text == "off" else {
                throw LineError(w.text.start, "expected one of on, off, found \(quoted(w.text))")
            }
            try end()
            return (.capIPCLock(w.text == "on"), .none("cap-ipc-lock takes no answer"))

        case .dmaEntryLimit:
            let w = try operand("a number")
            let limit = try VFIOTrace.number32(w.text)
            try end()
            return (.dmaEntryLimit(limit), .none("dma-entry-limit takes no answer"))

        case .domain:
            let nameToken = words.first
            let spec = try domain()
            if let taken = declared.attached.first(where: { $0.name == spec.name }), arrow == nil, let nameToken {
                throw LineError(nameToken.text.start, "expected a group name not in the container, found \(quoted(nameToken.text)) (attached on line \(taken.line); detach it first)")
            }
            declared.attached.append((spec.name, declared.line))
            declared.named.insert(spec.name)
            if declared.firstDomainLine == nil { declared.firstDomainLine = declared.line }
            if firstOperation == nil { declared.domainBeforeStart = true }
            return (.domain(spec), firstOperation == nil ? .none("domain before the first operation takes no answer") : .status(verb))

        case .detach:
            let w = try operand("a domain name")
            let group = try domainName(w.text)
            try end()
            declared.attached.removeAll { $0.name == group }
            return (.detach(group), firstOperation == nil ? .none("detach before the first operation takes no answer") : .status(verb))

        case .memory:
            let m = try memory()
            if let other = declared.addMemory(start: m.vaddr, last: m.vaddr + (m.size - 1)), let v = keyed("vaddr") {
                throw LineError(v.word.text.start, "expected memory apart from the region on line \(other.line) (\(formatAddress(other.start))-\(formatAddress(other.last))), found \(quoted(v.word.text)) size=\(formatSize(m.size))")
            }
            return (.memory(m), .none("memory takes no answer"))

        case .map:
            let m = try map()
            try repeatWords(size: m.size, addresses: [m.iova, m.vaddr])
            return (.map(m), .status(verb))

        case .unmap:
            var rule = AnswerRule.status(verb)
            let u = try unmap()
            rule.fields = AnswerKey.size.bit | (u.bitmap != nil ? AnswerKey.dirty.bit : 0)
            try repeatWords(size: u.size, addresses: [u.iova])
            return (.unmap(u), rule)

        case .unmapAll:
            var rule = AnswerRule.status(verb)
            rule.fields = AnswerKey.size.bit
            return (.unmap(try unmapAll()), rule)

        case .info:
            try collect(Self.infoWords)
            var rule = AnswerRule.status(verb)
            rule.fields = AnswerKey.pgsizes.bit | AnswerKey.iova.bit | AnswerKey.dmaAvail.bit | AnswerKey.argsz.bit
            rule.fieldsAlone = true
            return (.info(argsz: try number32("argsz")), rule)

        case .extension:
            let names = Extension.byName.map(\.0).joined(separator: ", ")
            let w = try operand("one of \(names), or a number")
            let ext: Extension
            if let e = Extension(name: w.text.string) {
                ext = e
            } else {
                ext = Extension(rawValue: try VFIOTrace.number32(w.text, expected: "one of \(names), or a number"))
            }
            try end()
            var rule = AnswerRule.status(verb)
            rule.value = true
            return (.extension(ext), rule)

        case .dirty:
            // `dirty flags=N` alone sends raw flags (for testing bad ones).
            var flags: DirtyPages.Flags = []
            if let first = words.first, first.text.hasPrefix("flags=") {
            } else {
                let w = try operand("one of start, stop, get")
                if w.text == "start" {
                    flags = .start
                } else if w.text == "stop" {
                    flags = .stop
                } else if w.text == "get" {
                    // `dirty get iova= size= pgsize= [bitmap-size=]`: GET_BITMAP.
                    try collect(Self.dirtyGetWords)
                    let iova = try requiredNumber("iova"), size = try requiredNumber("size")
                    let pgsize = try requiredNumber("pgsize")
                    let bytes = try number("bitmap-size") ?? defaultBitmapSize(size: size, pgsize: pgsize)
                    var get = DirtyPages(flags: .getBitmap, iova: iova, size: size, bitmap: DMABitmap(pgsize: pgsize, size: bytes))
                    if let raw = try number32("flags") { get.flags = DirtyPages.Flags(rawValue: raw) }
                    var rule = AnswerRule.status(verb)
                    rule.fields = AnswerKey.dirty.bit
                    return (.dirty(get), rule)
                } else {
                    throw LineError(w.text.start, "expected one of start, stop, get, found \(quoted(w.text))")
                }
            }
            try collect(Self.dirtyWords)
            if let raw = try number32("flags") { flags = DirtyPages.Flags(rawValue: raw) }
            return (.dirty(DirtyPages(flags: flags)), .status(verb))

        case .check:
            let c = try check()
            if case .ptes(_, let domain?) = c, !declared.named.contains(domain),
               declared.domainBeforeStart || domain != DomainSpec.default.name, let d = keyed("domain") {
                let names = (declared.domainBeforeStart ? [] : [DomainSpec.default.name]) + declared.named.sorted()
                let known = names.isEmpty ? "no domain is declared" : "declared: \(names.joined(separator: ", "))"
                throw LineError(d.value.start, "expected the name of a domain of this trace (\(known)), found \(quoted(d.value))")
            }
            return (.check(c), .none("check takes no answer"))

        case .show:
            var items: ShowItems = []
            try collect(Self.showWords)
            for w in collected {
                for (name, item) in ShowItems.names where w.text.string == name { items.insert(item) }
            }
            return (.show(items.isEmpty ? .all : items), .none("show takes no answer; it prints the state"))
        }
    }

    /// `repeat=N` and `step=SIZE` of `map` and `unmap` (collected with the
    /// statement's words): at most `maxRepeat` times, and no advance may
    /// take an address past 2^64-1.
    mutating func repeatWords(size: UInt64, addresses: [UInt64]) throws(LineError) {
        guard let r = keyed("repeat") else {
            try only(keyed("step")?.word, with: "repeat=")
            return
        }
        let count = try VFIOTrace.number(r.value)
        guard count >= 1, count <= Self.maxRepeat else {
            throw LineError(r.value.start, "expected a repeat count from 1 to \(Self.maxRepeat), found \(quoted(r.value))")
        }
        let step = try number("step")
        let (advance, o) = (step ?? size).multipliedReportingOverflow(by: count - 1)
        if o || addresses.contains(where: { $0.addingReportingOverflow(advance).overflow }) {
            let at = keyed("step")?.value ?? r.value
            throw LineError(at.start, "expected a repeat that keeps every address at or below 0xffffffffffffffff, found \(quoted(at))")
        }
        repetition = Statement.Repetition(count: count, step: step)
    }

    /// The most operations one `repeat=` may stand for.
    static let maxRepeat: UInt64 = 1 << 20

    /// `iommu` and `kernel` come before the first operation.
    func before(_ verb: Verb, _ verbToken: Token, _ firstOperation: Int?) throws(LineError) {
        if let firstOperation {
            throw LineError(verbToken.text.start, "expected \(verb.name) before the first operation, found it after the operation on line \(firstOperation)")
        }
    }

    mutating func domain() throws(LineError) -> DomainSpec {
        let w = try operand("a domain name")
        if w.hasEquals { throw LineError(w.text.start, "expected a domain name, found \(quoted(w.text))") }
        let name = try domainName(w.text)
        try collect(Self.domainWords)
        let p = try required("pgsizes")
        var spec = DomainSpec(name: name, pgsizes: try pageSizes(p.value))
        if let l = keyed("leaves") { spec.leaves = try pageSizes(l.value) }
        if let a = keyed("aperture") { spec.aperture = try range(a.value) }
        if let r = keyed("reserved") { spec.reserved = try r.value == "none" ? [] : ranges(r.value) }
        // Fine-grained superpages (vfio_test_domain_fgsp, v3.15–v6.15)
        // changed only how the kernel issued unmaps, never an answer: the
        // key stays valid for the traces that say it, and means nothing.
        _ = try yesNo("fgsp", default: false)
        spec.coherent = try yesNo("coherent", default: true)
        spec.emulated = try yesNo("emulated", default: false)
        spec.msiIsolated = try yesNo("msi-isolated", default: true)
        return spec
    }

    mutating func memory() throws(LineError) -> MemorySpec {
        try collect(Self.memoryWords)
        let vaddrKV = try required("vaddr"), sizeKV = try required("size")
        let vaddr = try VFIOTrace.number(vaddrKV.value)
        let size = try VFIOTrace.number(sizeKV.value)
        var page = PageSizes.pageSize
        if let p = keyed("page") {
            guard case .success(let v) = parseNumber(p.value), v == 4096 || v == 2 << 20 || v == 1 << 30 else {
                throw LineError(p.value.start, "expected one of 4K, 2M, 1G, found \(quoted(p.value))")
            }
            page = v
        }
        let seed = try number("seed")
        func multiple(_ value: UInt64, _ text: Text) throws(LineError) {
            if value % page != 0 {
                throw LineError(text.start, "expected a multiple of the page size \(formatSize(page)), found \(quoted(text))")
            }
        }
        try multiple(vaddr, vaddrKV.value)
        guard size != 0 else { throw LineError(sizeKV.value.start, "expected a nonzero size, found \(quoted(sizeKV.value))") }
        try multiple(size, sizeKV.value)
        guard !vaddr.addingReportingOverflow(size - 1).overflow else {
            throw LineError(sizeKV.value.start, "expected a size that ends the region at or below 0xffffffffffffffff, found \(quoted(sizeKV.value))")
        }
        var layout: PhysicalLayout?
        let phys = keyed("phys")
        if let p = phys {
            let base: UInt64 = 0x1_0000_0000
            if p.value == "scattered" {
                layout = .scattered(seed: seed ?? vaddr)
            } else if p.value == "reversed" {
                layout = .reversed(base: base)
            } else if p.value.hasPrefix("chunks:") {
                let text = p.value.dropFirst(7)
                let chunk = try VFIOTrace.number(text)
                guard chunk != 0 else { throw LineError(text.start, "expected a nonzero chunk size, found \(quoted(text))") }
                try multiple(chunk, text)
                layout = .chunks(size: chunk, base: base)
            } else {
                let address = try VFIOTrace.number(p.value, expected: "an address, scattered, reversed or chunks:SIZE")
                try multiple(address, p.value)
                guard !address.addingReportingOverflow(size - 1).overflow else {
                    throw LineError(p.value.start, "expected an address that ends the region at or below 0xffffffffffffffff, found \(quoted(p.value))")
                }
                layout = .contiguous(base: address)
            }
            // A scattered, reversed or chunked region costs one page-table
            // run per piece once mapped: cap the pieces so a hostile trace
            // cannot ask for terabytes of runs (2^24 pieces = 64 GiB of 4K).
            let pieces: UInt64
            switch layout {
            case .chunks(let chunk, _)?: pieces = size / chunk
            case .contiguous?, nil, .observed?: pieces = 1
            case .scattered?, .reversed?: pieces = size / page
            }
            if pieces > Self.maxScatteredPieces {
                throw LineError(p.value.start, "expected at most \(Self.maxScatteredPieces) physically separate pieces, found \(pieces) with \(quoted(p.value))")
            }
        }
        // `seed=` is accepted with every layout (traces written from user
        // reports carry it); only `scattered` places pages by it.
        return MemorySpec(vaddr: vaddr, size: size, pageSize: page, layout: layout, pfnmap: bare("pfnmap") != nil)
    }

    /// The most physically separate pieces a `memory` statement may ask for.
    static let maxScatteredPieces: UInt64 = 1 << 24

    mutating func map() throws(LineError) -> MapDMA {
        try collect(Self.mapWords)
        let iova = try requiredNumber("iova"), vaddr = try requiredNumber("vaddr"), size = try requiredNumber("size")
        var flags: MapDMA.Flags
        switch (keyed("prot"), bare("vaddr-only")) {
        case (nil, nil):
            // Raw flags= stand in for prot= (for testing bad flags).
            guard keyed("flags") != nil else { throw missing("prot= or vaddr-only") }
            flags = []
        case (let p?, let v?):
            let later = p.word.text.start > v.text.start ? p.word : v
            throw LineError(later.text.start, "expected prot= or vaddr-only, not both, found \(quoted(later.text))")
        case (nil, _?):
            flags = .vaddr
        case (let p?, nil):
            if p.value == "rw" {
                flags = [.read, .write]
            } else if p.value == "r" {
                flags = .read
            } else if p.value == "w" {
                flags = .write
            } else if p.value == "none" {
                flags = []
            } else {
                throw LineError(p.value.start, "expected one of r, w, rw, none, found \(quoted(p.value))")
            }
        }
        if let raw = try number32("flags") { flags = MapDMA.Flags(rawValue: raw) }
        return MapDMA(argsz: try number32("argsz") ?? MapDMA.structSize, flags: flags, vaddr: vaddr, iova: iova, size: size)
    }

    mutating func unmap() throws(LineError) -> UnmapDMA {
        try collect(Self.unmapWords)
        let iova = try requiredNumber("iova"), size = try requiredNumber("size")
        var flags: UnmapDMA.Flags = bare("vaddr-only") != nil ? .vaddr : []
        var bitmap: DMABitmap?
        if bare("dirty") != nil {
            flags.insert(.getDirtyBitmap)
            let pgsize = try requiredNumber("pgsize")
            let bytes = try number("bitmap-size") ?? defaultBitmapSize(size: size, pgsize: pgsize)
            bitmap = DMABitmap(pgsize: pgsize, size: bytes)
        } else {
            try only(keyed("pgsize")?.word, with: "dirty")
            try only(keyed("bitmap-size")?.word, with: "dirty")
        }
        if let raw = try number32("flags") { flags = UnmapDMA.Flags(rawValue: raw) }
        return UnmapDMA(argsz: try number32("argsz"), flags: flags, iova: iova, size: size, bitmap: bitmap)
    }

    mutating func unmapAll() throws(LineError) -> UnmapDMA {
        try collect(Self.unmapAllWords)
        var flags: UnmapDMA.Flags = bare("vaddr-only") != nil ? [.all, .vaddr] : .all
        if let raw = try number32("flags") { flags = UnmapDMA.Flags(rawValue: raw) }
        return UnmapDMA(argsz: try number32("argsz"), flags: flags, iova: try number("iova") ?? 0, size: try number("size") ?? 0)
    }

    mutating func check() throws(LineError) -> Check {
        try collect(Self.checkWords)
        // The first of locked=, mappings=, ptes= in the line is the check;
        // a second one is the error. `collected` is in line order.
        var given: KeyValue?
        for w in collected where w.hasEquals && (w.key == "locked" || w.key == "mappings" || w.key == "ptes") {
            guard given == nil else {
                throw LineError(w.text.start, "expected only one of locked=, mappings=, ptes=, found \(quoted(w.text))")
            }
            given = KeyValue(word: w, value: w.value)
        }
        guard let kv = given else { throw missing("one of locked=, mappings=, ptes=") }
        if keyed("ptes") == nil { try only(keyed("domain")?.word, with: "ptes=") }
        if kv.word.key == "locked" { return .locked(try VFIOTrace.number(kv.value)) }
        if kv.word.key == "mappings" { return .mappings(try VFIOTrace.number(kv.value)) }
        let counts = try pteCounts(kv.value)
        var domain: String?
        if let d = keyed("domain") { domain = try domainName(d.value) }
        return .ptes(counts, domain: domain)
    }
}

/// `MAJOR.MINOR` (`6.12`), optionally `.PATCH` and a release suffix after
/// `-` or `+` as `uname -r` prints (`6.12.38+deb12-amd64`); nil for
/// anything else (`6.1x`, `6`, `v6.1`).
func strictVersion(_ text: Text) -> KernelVersion? {
    let s = text.string
    let release = s.split(maxSplits: 1, omittingEmptySubsequences: false, whereSeparator: { $0 == "-" || $0 == "+" })
    let parts = release[0].split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 2 || parts.count == 3, release.count == 1 || !release[1].isEmpty,
          parts.allSatisfy({ !$0.isEmpty && $0.count <= 3 && $0.allSatisfy { $0 >= "0" && $0 <= "9" } }),
          let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
    return KernelVersion(major, minor)
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

/// Whether `text` looks like an errno name that is not one: `E` then
/// capitals and digits.
func looksLikeErrno(_ text: Text) -> Bool {
    text.count > 1 && text.first == UInt8(ascii: "E") && text.allSatisfy {
        ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
    }
}

/// The answer after `=>`.
func parseAnswer(rule: AnswerRule, arrow: Token, tokens: Tokens) throws(LineError) -> Answer {
    if let why = rule.refusal { throw LineError(arrow.text.start, "expected end of line (\(why)), found '=>'") }
    guard let first = tokens.first else { throw LineError(arrow.text.end, "expected an answer, found end of line") }
    if first.isArrow { throw LineError(first.text.start, "expected an answer, found '=>'") }
    if let second = tokens.first(where: \.isArrow) { throw LineError(second.text.start, "expected end of line, found '=>'") }
    var rest = tokens.dropFirst()
    let status: Answer.Status
    if first.text == "ok" && !rule.value {
        status = .ok
    } else if rule.fieldsAlone && first.hasEquals {
        status = .ok
        rest = tokens
    } else if rule.value, let d = first.text.first, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") {
        status = .value(try number(first.text))
    } else if let e = Errno(name: first.text.string) {
        status = .errno(e)
    } else if looksLikeErrno(first.text) {
        throw LineError(first.text.start, "expected a Linux errno name, found \(quoted(first.text))")
    } else {
        let what = rule.value ? "a number or an errno" : rule.fieldsAlone ? "ok, an errno or key=value fields" : "ok or an errno"
        throw LineError(first.text.start, "expected \(what), found \(quoted(first.text))")
    }
    if case .ok = status {} else if let w = rest.first {
        throw LineError(w.text.start, "expected end of line, found \(quoted(w.text))")
    }
    var fields: [AnswerField] = []
    // Keys already given, as `AnswerKey.bit`s.
    var seen: UInt8 = 0
    for w in rest {
        guard w.hasEquals, let key = rule.field(w.key) else {
            if rule.fields == 0 {
                throw LineError(w.text.start, "expected end of line (the \(rule.verb.name) answer takes no keys), found \(quoted(w.text))")
            }
            throw LineError(w.text.start, "expected a key of the \(rule.verb.name) answer (\(rule.fieldList)), found \(quoted(w.text))")
        }
        let value = w.value
        guard seen & key.bit == 0 else {
            throw LineError(w.text.start, "expected at most one \(key.name)=, found \(quoted(w.text))")
        }
        seen |= key.bit
        switch key {
        case .size: fields.append(.size(try number(value)))
        case .pgsizes: fields.append(.pgsizes(try pageSizes(value)))
        case .iova: fields.append(.iova(try value == "none" ? nil : ranges(value)))
        case .dmaAvail: fields.append(.dmaAvail(try value == "none" ? nil : number32(value)))
        case .argsz: fields.append(.argsz(try number32(value)))
        case .dirty: fields.append(.dirty(try value == "none" ? [] : ranges(value)))
        }
    }
    return Answer(status, fields: fields)
}

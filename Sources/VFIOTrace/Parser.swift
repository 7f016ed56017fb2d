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
    parseTrace(bytes: bytes, file: file, keepingSpellings: keepingSpellings, takingCanonicalLines: true)
}

/// `parseTrace` with every line lexed and parsed by the general parser,
/// none read by the canonical-line shortcut (`CanonicalLine.swift`): the
/// reference the fuzz target `parse` compares the shortcut with.
@_spi(Reference)
public func parseTraceLexingEveryLine(bytes: [UInt8], file: String) -> Result<Trace, ParseFailure> {
    parseTrace(bytes: bytes, file: file, keepingSpellings: false, takingCanonicalLines: false)
}

func parseTrace(bytes: [UInt8], file: String, keepingSpellings: Bool, takingCanonicalLines: Bool) -> Result<Trace, ParseFailure> {
    var parser = TraceParser()
    parser.keepsSpellings = keepingSpellings
    parser.takesCanonicalLines = takingCanonicalLines
    let statements = bytes.withUnsafeBufferPointer { buffer in
        // Statements are made right in the storage of the array returned
        // (moving every statement into an array afterwards cost more), with
        // room for one per 16 bytes: a file of lines that long on average
        // never outgrows it, and a hostile file of short lines reserves no
        // more than a few times its size; a file of shorter lines moves its
        // statements to storage of its own, twice as big each time. The
        // room comes from the byte count alone: counting the line feeds for
        // an exact figure read the whole file once more (1.5 instructions a
        // byte), which cost more than the room left unused (never touched).
        let room = buffer.count / 16 + 64
        let inPlace = [Statement](unsafeUninitializedCapacity: room) { storage, initialized in
            parser.statements = StatementBuffer(storage.baseAddress!, capacity: room)
            parser.takeLines(buffer)
            initialized = parser.statements.isInPlace ? parser.statements.count : 0
        }
        return parser.statements.isInPlace ? inPlace : parser.statements.moveToArray()
    }
    if parser.errors.isEmpty { return .success(Trace(file: file, statements: statements)) }
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
    case iommu, container, kernel, memlock, mlock, capIPCLock, dmaEntryLimit, domain, detach, memory
    case map, unmap, unmapAll, info, `extension`, dirty, check, show

    var name: StaticString {
        switch self {
        case .iommu: "iommu"
        case .container: "container"
        case .kernel: "kernel"
        case .memlock: "memlock"
        case .mlock: "mlock"
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

    /// Every verb with its spelling, in a stored array (`allCases` may
    /// build a new one on each call, and this is searched once per line).
    static let spelled = Verb.allCases.map { ($0, Spelling($0.name)) }

    /// The verb spelled `text`, if any.
    @inline(__always) init?(_ text: Text) {
        guard let verb = Verb.named(Spelling(text)) else { return nil }
        self = verb
    }

    /// The verb spelled `s`, if any: a switch on the length and the
    /// packed bytes (the constants are `Spelling(name)` of each verb, which
    /// a test checks), instead of comparing with each verb in turn.
    static func named(_ s: Spelling) -> Verb? {
        switch s.count {
        case 3:
            switch s.low {
            case 0x70616d: return .map // map
            default: return nil
            }
        case 4:
            switch s.low {
            case 0x6f666e69: return .info // info
            case 0x776f6873: return .show // show
            default: return nil
            }
        case 5:
            switch s.low {
            case 0x756d6d6f69: return .iommu // iommu
            case 0x70616d6e75: return .unmap // unmap
            case 0x7974726964: return .dirty // dirty
            case 0x6b63656863: return .check // check
            case 0x6b636f6c6d: return .mlock // mlock
            default: return nil
            }
        case 6:
            switch s.low {
            case 0x6c656e72656b: return .kernel // kernel
            case 0x6e69616d6f64: return .domain // domain
            case 0x686361746564: return .detach // detach
            case 0x79726f6d656d: return .memory // memory
            default: return nil
            }
        case 7:
            switch s.low {
            case 0x6b636f6c6d656d: return .memlock // memlock
            default: return nil
            }
        case 9:
            switch s.low {
            case 0x656e6961746e6f63: return s.high == 0x72 ? .container : nil // container
            case 0x6c612d70616d6e75: return s.high == 0x6c ? .unmapAll : nil // unmap-all
            case 0x6f69736e65747865: return s.high == 0x6e ? .`extension` : nil // extension
            default: return nil
            }
        case 12:
            switch s.low {
            case 0x2d6370692d706163: return s.high == 0x6b636f6c ? .capIPCLock : nil // cap-ipc-lock
            default: return nil
            }
        case 15:
            switch s.low {
            case 0x72746e652d616d64: return s.high == 0x74696d696c2d79 ? .dmaEntryLimit : nil // dma-entry-limit
            default: return nil
            }
        default: return nil
        }
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

    static let spelled = AnswerKey.allCases.map { ($0, Spelling($0.name)) }
    /// The answer key spelled `s`, if any: a switch on the length and the
    /// packed bytes (the constants are `Spelling(name)` of each key, which
    /// a test checks).
    static func named(_ s: Spelling) -> AnswerKey? {
        switch s.count {
        case 4:
            switch s.low {
            case 0x61766f69: return .iova // iova
            case 0x657a6973: return .size // size
            default: return nil
            }
        case 5:
            switch s.low {
            case 0x7a73677261: return .argsz // argsz
            case 0x7974726964: return .dirty // dirty
            default: return nil
            }
        case 7:
            switch s.low {
            case 0x73657a69736770: return .pgsizes // pgsizes
            default: return nil
            }
        case 9:
            switch s.low {
            case 0x696176612d616d64: return s.high == 0x6c ? .dmaAvail : nil // dma-avail
            default: return nil
            }
        default: return nil
        }
    }
}

/// What an answer after `=>` may hold on one statement.
struct AnswerRule {
    /// Nil when the statement takes an answer; else why not (for the message).
    var refusal: StaticString?
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
    /// `check pte`: the answer is a page size or `none`, and required.
    var leafSize = false

    /// (A literal, not a `String`: a rule is made per line, and a `String`
    /// made the statement parser that holds it one to retain and release.)
    static func none(_ why: StaticString) -> AnswerRule { AnswerRule(refusal: why) }
    static func status(_ verb: Verb) -> AnswerRule { AnswerRule(refusal: nil, verb: verb) }

    /// The key `text` names, if this answer may carry it.
    func field(_ text: Text) -> AnswerKey? {
        guard let key = AnswerKey.named(Spelling(text)), fields & key.bit != 0 else { return nil }
        return key
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
    /// Names of the containers `container NAME` opened (`c0` is the first).
    var containers: [String: ContainerKind] = ["c0": .type1]
    /// Set by `container NAME` to the container now driven; the trace
    /// parser clears it once it has swapped the first-operation lines.
    var switchedTo: String?
    /// The first `container NAME` line: `container type1|iommufd` (the
    /// first container's kind) must come before it.
    var firstNamedContainerLine: Int?
    /// Line of the file's first operation (`kernel` comes before it).
    var firstOperationInFile: Int?
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

/// Where the parser puts its statements: the storage of the array
/// `parseTrace` returns, or, when that is full, storage of its own.
///
/// Not `Array.append`: that copied each finished statement into the
/// array's storage and then destroyed the original (a copy and a destroy
/// of every field, per line), and growing moved them all again. Here a
/// statement is made where it stays (`appendBlank`), and nothing moves
/// unless the room `parseTrace` gave is full.
struct StatementBuffer {
    private var base: UnsafeMutablePointer<Statement>?
    private var capacity: Int
    private(set) var count = 0
    /// Whether the statements are still in the caller's storage (else in
    /// storage this buffer allocated, which `moveToArray` frees).
    private(set) var isInPlace = true

    init() { base = nil; capacity = 0 }
    /// Uninitialized room for `capacity` statements, which the caller owns.
    init(_ base: UnsafeMutablePointer<Statement>, capacity: Int) { self.base = base; self.capacity = capacity }

    /// Where the next statement goes.
    @inline(__always) private mutating func nextSlot() -> UnsafeMutablePointer<Statement> {
        if count == capacity { grow() }
        let slot = base.unsafelyUnwrapped + count
        count &+= 1
        return slot
    }

    /// Moves the statements to storage of twice the room (the caller's is
    /// left uninitialized).
    private mutating func grow() {
        let new = UnsafeMutablePointer<Statement>.allocate(capacity: Swift.max(16, capacity &* 2))
        if let base {
            new.moveInitialize(from: base, count: count)
            if !isInPlace { base.deallocate() }
        }
        base = new
        capacity = Swift.max(16, capacity &* 2)
        isInPlace = false
    }

    mutating func append(_ statement: consuming Statement) {
        nextSlot().initialize(to: consume statement)
    }

    /// Appends a `.blank` statement, to be filled in through the pointer
    /// returned (valid until the next append).
    @inline(__always) mutating func appendBlank(line: Int, column: Int) -> UnsafeMutablePointer<Statement> {
        let slot = nextSlot()
        Statement.initializeBlank(slot, line: line, column: column)
        return slot
    }

    /// Removes the statement the last `appendBlank` made (when its line
    /// turned out wrong).
    mutating func removeLast() {
        precondition(count > 0, "StatementBuffer.removeLast without a statement")
        count &-= 1
        (base.unsafelyUnwrapped + count).deinitialize(count: 1)
    }

    /// The statements of storage this buffer allocated, as an array (only
    /// when `isInPlace` is false); the buffer is left empty.
    mutating func moveToArray() -> [Statement] {
        precondition(!isInPlace, "StatementBuffer.moveToArray of the caller's storage")
        let n = count, from = base.unsafelyUnwrapped
        let out = [Statement](unsafeUninitializedCapacity: n) { storage, initialized in
            if n > 0 { storage.baseAddress!.moveInitialize(from: from, count: n) }
            initialized = n
        }
        from.deallocate()
        base = nil
        capacity = 0
        count = 0
        isInPlace = true
        return out
    }
}

/// The state carried from line to line.
struct TraceParser {
    var statements = StatementBuffer()
    var errors: [(line: Int, column: Int, message: String)] = []
    /// Line of the first operation: `iommu` and `kernel` must come before
    /// it; `domain` and `detach` after it are operations.
    var firstOperation: Int?
    /// The container statements go to, and each other container's first
    /// operation: a container's operations start anew when it is new and
    /// go on where they were when statements come back to it.
    var currentContainer = "c0"
    var firstOperationOf: [String: Int] = [:]
    var previousWasBlank = false
    /// What earlier lines declared, for the rules that span lines.
    var declared = Declared()
    /// Whether statements keep how values were written (`fmt`).
    var keepsSpellings = false
    /// Whether lines of the canonical shapes (`CanonicalLine.swift`) are
    /// read without the lexer; off only to test that shortcut against the
    /// general parser, and when spellings are kept (it records none).
    var takesCanonicalLines = true

    /// Takes every line of `bytes`: a canonical line straight from its
    /// bytes, any other lexed and parsed (as `forEachLexedLine` would).
    mutating func takeLines(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress else { return }
        let count = bytes.count
        var start = firstLineStart(base, count)
        let canonical = takesCanonicalLines && !keepsSpellings
        withUnsafeTemporaryAllocation(of: Token.self, capacity: maxTokensPerLine) { storage in
            var line = LexedLine(storage: storage.baseAddress!)
            var number = 1
            while start < count {
                if canonical, let next = takeCanonicalLine(base, count, start, number: number) {
                    start = next
                } else {
                    let (next, error) = lexLine(base, count, from: start, number: number, into: &line)
                    take(line, error, base)
                    start = next
                }
                number &+= 1
            }
        }
    }

    /// Takes one lexed line (or its lexing error) of the file at `base`.
    mutating func take(_ line: borrowing LexedLine, _ lexError: LineError?, _ base: UnsafePointer<UInt8>) {
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
            try appendStatement(line, base)
        } catch {
            fail(line, error, base)
        }
    }

    /// Records `error`, turning its file offset into a column on `line`.
    mutating func fail(_ line: borrowing LexedLine, _ error: LineError, _ base: UnsafePointer<UInt8>) {
        errors.append((line.number, VFIOTrace.column(at: error.offset, lineStart: line.start, in: base), error.message))
    }

    /// One statement line: the verb's words, then the answer.
    ///
    /// Appends the statement itself rather than returning it: a `Statement`
    /// is large, and each hand-over through a `throws` return copied it
    /// (retaining every string and array in it) only to destroy the
    /// original.
    mutating func appendStatement(_ line: borrowing LexedLine, _ base: UnsafePointer<UInt8>) throws(LineError) {
        let tokens = line.tokens[...]
        let arrowIndex: Int? = line.firstArrow >= 0 ? line.firstArrow : nil
        let words = tokens[..<(arrowIndex ?? tokens.endIndex)]
        let first = tokens[0]
        guard !first.isArrow, let verb = Verb(first.text) else {
            throw LineError(first.text.start, "expected one of \(Verb.list), found \(quoted(first.text))")
        }
        var s = StatementParser(words: words.dropFirst(), arrow: arrowIndex.map { tokens[$0] }, lineEnd: line.end)
        // An operation counts as the first one even when its words are wrong.
        if verb.isOperation && firstOperation == nil { firstOperation = line.number }
        if verb.isOperation && declared.firstOperationInFile == nil { declared.firstOperationInFile = line.number }
        // Only blanks and tabs (one column each) come before a line's first
        // word, so its column is its offset on the line, counted without
        // looking at the bytes (`columnOfFirstWordAgreesWithColumn` checks).
        let column = first.text.start &- line.start &+ 1
        // The statement is made first (blank) and filled in where it lies:
        // a statement built from its parts and then appended was copied
        // whole, and the original destroyed, whatever the code said.
        let slot = statements.appendBlank(line: line.number, column: column)
        do throws(LineError) {
            let kind = try s.parse(verb: verb, at: first, firstOperation: firstOperation, declared: &declared)
            if s.rule.leafSize, case .check(.pte(let iova, _, let domain)) = kind {
                // `check pte`'s answer, the leaf size, is part of the check.
                let leaf = try parseLeafAnswer(arrow: arrowIndex.map { tokens[$0] }, tokens: arrowIndex.map { tokens[($0 + 1)...] } ?? tokens[tokens.endIndex...],
                                               lineEnd: line.end, secondArrow: line.secondArrow >= 0 ? tokens[line.secondArrow] : nil)
                Statement.setKind(of: slot, .check(.pte(iova: iova, leaf: leaf, domain: domain)))
            } else {
                Statement.setKind(of: slot, kind)
            }
            if let next = declared.switchedTo {
                firstOperationOf[currentContainer] = firstOperation
                currentContainer = next
                firstOperation = firstOperationOf[next]
                declared.switchedTo = nil
            }
            if s.rule.leafSize {
                // Taken above.
            } else if let arrowIndex {
                Statement.setExpected(of: slot, try parseAnswer(rule: s.rule, arrow: tokens[arrowIndex], tokens: tokens[(arrowIndex + 1)...],
                                                             secondArrow: line.secondArrow >= 0 ? tokens[line.secondArrow] : nil))
            }
        } catch {
            statements.removeLast()
            throw error
        }
        // Most lines have no comment: no retain of a nil string then.
        if line.hasComment || s.repetition != nil || keepsSpellings {
            slot.pointee.setExtras(comment: line.hasComment ? line.comment : nil, repetition: s.repetition,
                                   spellings: keepsSpellings ? s.spellings() : [:])
        }
    }
}

/// Some of a line's tokens (the line's `LexedLine` holds them).
typealias Tokens = Slice<UnsafeBufferPointer<Token>>

/// A `key=value` word.
struct KeyValue {
    var word: Token
    var value: Text
}

/// Every word a statement accepts after its operands: `key=` of a
/// `key=value` word, or a bare word. A `Key` is found once per word (by
/// `collect`); looking one up afterwards tests a bit and reads a slot.
enum Key: UInt8, CaseIterable {
    case argsz, iova, size, pgsize, bitmapSize, flags
    case pgsizes, leaves, aperture, reserved, fgsp, coherent, emulated, msiIsolated, iommu, instance
    case vaddr, page, phys, seed, pfnmap, thp
    case populated
    case prot, vaddrOnly, `repeat`, step, dirty
    case locked, mappings, ptes, domain, pte
    case showLocked, showMappings, showPtes, showIova

    var name: StaticString {
        switch self {
        case .argsz: "argsz="
        case .iova: "iova="
        case .size: "size="
        case .pgsize: "pgsize="
        case .bitmapSize: "bitmap-size="
        case .flags: "flags="
        case .pgsizes: "pgsizes="
        case .leaves: "leaves="
        case .aperture: "aperture="
        case .reserved: "reserved="
        case .fgsp: "fgsp="
        case .coherent: "coherent="
        case .emulated: "emulated="
        case .msiIsolated: "msi-isolated="
        case .iommu: "iommu="
        case .instance: "instance="
        case .vaddr: "vaddr="
        case .page: "page="
        case .phys: "phys="
        case .seed: "seed="
        case .pfnmap: "pfnmap"
        case .thp: "thp"
        case .populated: "populated="
        case .prot: "prot="
        case .vaddrOnly: "vaddr-only"
        case .repeat: "repeat="
        case .step: "step="
        case .dirty: "dirty"
        case .locked: "locked="
        case .mappings: "mappings="
        case .ptes: "ptes="
        case .domain: "domain="
        case .pte: "pte"
        case .showLocked: "locked"
        case .showMappings: "mappings"
        case .showPtes: "ptes"
        case .showIova: "iova"
        }
    }

    /// The bit of this key in `StatementParser.found`.
    var bit: UInt64 { 1 << UInt64(rawValue) }

    /// The key spelled `s` (`key=` of a `key=value` word, or a bare word),
    /// if any: a switch on the length and the packed bytes (the constants
    /// are `Spelling(name)` of each key, which a test checks).
    static func named(_ s: Spelling) -> Key? {
        switch s.count {
        case 3:
            switch s.low {
            case 0x706874: return .thp // thp
            case 0x657470: return .pte // pte
            default: return nil
            }
        case 4:
            switch s.low {
            case 0x73657470: return .showPtes // ptes
            case 0x61766f69: return .showIova // iova
            default: return nil
            }
        case 5:
            switch s.low {
            case 0x3d61766f69: return .iova // iova=
            case 0x3d657a6973: return .size // size=
            case 0x3d70736766: return .fgsp // fgsp=
            case 0x3d65676170: return .page // page=
            case 0x3d73796870: return .phys // phys=
            case 0x3d64656573: return .seed // seed=
            case 0x3d746f7270: return .prot // prot=
            case 0x3d70657473: return .step // step=
            case 0x7974726964: return .dirty // dirty
            case 0x3d73657470: return .ptes // ptes=
            default: return nil
            }
        case 6:
            switch s.low {
            case 0x3d7a73677261: return .argsz // argsz=
            case 0x3d756d6d6f69: return .iommu // iommu=
            case 0x3d7367616c66: return .flags // flags=
            case 0x3d7264646176: return .vaddr // vaddr=
            case 0x70616d6e6670: return .pfnmap // pfnmap
            case 0x64656b636f6c: return .showLocked // locked
            default: return nil
            }
        case 7:
            switch s.low {
            case 0x3d657a69736770: return .pgsize // pgsize=
            case 0x3d73657661656c: return .leaves // leaves=
            case 0x3d746165706572: return .`repeat` // repeat=
            case 0x3d64656b636f6c: return .locked // locked=
            case 0x3d6e69616d6f64: return .domain // domain=
            default: return nil
            }
        case 8:
            switch s.low {
            case 0x3d73657a69736770: return .pgsizes // pgsizes=
            case 0x73676e697070616d: return .showMappings // mappings
            default: return nil
            }
        case 9:
            switch s.low {
            case 0x6572757472657061: return s.high == 0x3d ? .aperture : nil // aperture=
            case 0x65636e6174736e69: return s.high == 0x3d ? .instance : nil // instance=
            case 0x6465767265736572: return s.high == 0x3d ? .reserved : nil // reserved=
            case 0x746e657265686f63: return s.high == 0x3d ? .coherent : nil // coherent=
            case 0x646574616c756d65: return s.high == 0x3d ? .emulated : nil // emulated=
            case 0x73676e697070616d: return s.high == 0x3d ? .mappings : nil // mappings=
            default: return nil
            }
        case 10:
            switch s.low {
            case 0x6e6f2d7264646176: return s.high == 0x796c ? .vaddrOnly : nil // vaddr-only
            case 0x6574616c75706f70: return s.high == 0x3d64 ? .populated : nil // populated=
            default: return nil
            }
        case 12:
            switch s.low {
            case 0x732d70616d746962: return s.high == 0x3d657a69 ? .bitmapSize : nil // bitmap-size=
            default: return nil
            }
        case 13:
            switch s.low {
            case 0x6c6f73692d69736d: return s.high == 0x3d64657461 ? .msiIsolated : nil // msi-isolated=
            default: return nil
            }
        default: return nil
        }
    }
}

/// What one statement accepts after its operands, in the order messages
/// list them, with the spellings `collect` compares words with.
struct WordList {
    let keys: [Key]
    /// The keys as `Key.bit`s.
    let allowed: UInt64
    init(_ keys: [Key]) { self.keys = keys; allowed = keys.reduce(0) { $0 | $1.bit } }

    /// The key spelled `spelling`, if the list has it.
    @inline(__always) func key(_ spelling: Spelling) -> Key? {
        guard let key = Key.named(spelling), allowed & key.bit != 0 else { return nil }
        return key
    }

    /// `argsz=` or `one of iova=, size=`.
    var oneOf: String { VFIOTrace.oneOf(keys.map(\.name)) }
}

/// For each `Key`, where its word is among the line's tokens: one byte per
/// key, valid only where `StatementParser.found` has the key's bit (so it
/// is never cleared).
struct KeySlots {
    var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    subscript(key: Key) -> Int {
        get { withUnsafeBytes(of: bytes) { Int($0[Int(key.rawValue)]) } }
        set { withUnsafeMutableBytes(of: &bytes) { $0[Int(key.rawValue)] = UInt8(truncatingIfNeeded: newValue) } }
    }
}

/// The words of one statement after its verb.
///
/// `collect` checks the words once, in line order, and notes where each
/// accepted key is; every later look-up (`keyed`, `bare`) is then a bit
/// test and a read, without comparing bytes again or allocating.
struct StatementParser {
    var words: Tokens
    var arrow: Token?
    /// Offset of `end of line` when no `=>` follows the words.
    var lineEnd: Int

    /// The words sorted out by `collect`: each accepted, each once.
    var collected: Tokens
    /// The keys among `collected`, as `Key.bit`s.
    var found: UInt64 = 0
    /// Where each key of `found` is (an index of `collected`).
    var slots = KeySlots()
    /// `repeat=` and `step=` of a `map` or `unmap`.
    var repetition: Statement.Repetition?
    /// What the answer after `=>` may hold (set by `parse`).
    var rule = AnswerRule.none("")

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

    /// Checks the remaining words, in line order: each `key=value` or bare
    /// word must be in `list` and appear once. They are then looked up
    /// with `keyed` and `bare`.
    ///
    /// - Complexity: O(k·a) for k words and a accepted keys.
    mutating func collect(_ list: WordList) throws(LineError) {
        for k in words.startIndex..<words.endIndex {
            let w = words[k]
            guard let key = list.key(Spelling(w.name)) else {
                throw LineError(w.text.start, "expected \(list.oneOf), found \(quoted(w.text))")
            }
            guard found & key.bit == 0 else {
                throw LineError(w.text.start, "expected at most one \(key.name), found \(quoted(w.text))")
            }
            found |= key.bit
            slots[key] = k
        }
        collected = words
        words = words[words.endIndex...]
    }

    /// The collected `key=value` word of `key`, if any.
    @inline(__always) func keyed(_ key: Key) -> KeyValue? {
        guard found & key.bit != 0 else { return nil }
        let w = collected[slots[key]]
        return KeyValue(word: w, value: w.value)
    }

    /// The collected bare word `key`, if any.
    @inline(__always) func bare(_ key: Key) -> Token? {
        guard found & key.bit != 0 else { return nil }
        return collected[slots[key]]
    }

    @inline(__always)
    func required(_ key: Key) throws(LineError) -> KeyValue {
        guard let kv = keyed(key) else { throw missing("\(key.name)") }
        return kv
    }

    @inline(__always)
    func number(_ key: Key) throws(LineError) -> UInt64? {
        guard let kv = keyed(key) else { return nil }
        return try VFIOTrace.number(kv.value)
    }

    @inline(__always)
    func number32(_ key: Key) throws(LineError) -> UInt32? {
        guard let kv = keyed(key) else { return nil }
        return try VFIOTrace.number32(kv.value)
    }

    @inline(__always)
    func requiredNumber(_ key: Key) throws(LineError) -> UInt64 {
        try VFIOTrace.number(try required(key).value)
    }

    @inline(__always)
    func yesNo(_ key: Key, default value: Bool) throws(LineError) -> Bool {
        guard let kv = keyed(key) else { return value }
        return try VFIOTrace.yesNo(kv.value)
    }

    /// `KEY= only with OTHER`: a word that needs another.
    @inline(__always)
    func only(_ word: Token?, with other: StaticString) throws(LineError) {
        if let word { throw onlyError(word, other) }
    }

    /// (Apart from `only`, which is inlined into every statement and then
    /// tests a word for nil and nothing else.)
    func onlyError(_ word: Token, _ other: StaticString) -> LineError {
        LineError(word.text.start, "expected \(firstPart(word)) only with \(other.string), found \(quoted(word.text))")
    }

    // MARK: Statements

    // What each statement accepts after its operands (`collect`).
    static let infoWords = WordList([.argsz])
    static let dirtyGetWords = WordList([.iova, .size, .pgsize, .bitmapSize, .flags])
    static let dirtyWords = WordList([.flags])
    static let domainWords = WordList([.iommu, .pgsizes, .leaves, .aperture, .reserved, .fgsp, .coherent, .emulated, .msiIsolated, .instance])
    static let memoryWords = WordList([.vaddr, .size, .page, .phys, .seed, .pfnmap, .thp, .populated])
    static let mapWords = WordList([.iova, .vaddr, .size, .prot, .vaddrOnly, .argsz, .flags, .repeat, .step])
    static let unmapWords = WordList([.iova, .size, .vaddrOnly, .dirty, .pgsize, .bitmapSize, .argsz, .flags, .repeat, .step])
    static let showWords = WordList([.showLocked, .showMappings, .showPtes, .showIova])
    static let unmapAllWords = WordList([.iova, .size, .vaddrOnly, .argsz, .flags])
    static let checkWords = WordList([.locked, .mappings, .ptes, .pte, .iova, .domain])
    /// The keys of which a `check` takes exactly one.
    static let checkKinds: [Key] = [.locked, .mappings, .ptes]

    /// The statement's kind; `rule` is then what its answer may hold.
    mutating func parse(verb: Verb, at verbToken: Token, firstOperation: Int?,
                        declared: inout Declared) throws(LineError) -> Statement.Kind {
        let (kind, rule) = try parseKind(verb: verb, at: verbToken, firstOperation: firstOperation, declared: &declared)
        self.rule = rule
        return kind
    }

    @inline(__always)
    mutating func parseKind(verb: Verb, at verbToken: Token, firstOperation: Int?,
                            declared: inout Declared) throws(LineError) -> (Statement.Kind, AnswerRule) {
        switch verb {
        case .iommu:
            let w = try operand("one of type1, type1v2")
            let type: IOMMUType
            if w.text == "type1" { type = .type1 } else if w.text == "type1v2" { type = .type1v2 } else {
                throw LineError(w.text.start, "expected one of type1, type1v2, found \(quoted(w.text))")
            }
            try end()
            try before(verb, verbToken, declared.firstOperationInFile)
            if let first = declared.iommuLine {
                throw LineError(verbToken.text.start, "expected one iommu statement, found a second one (the first is on line \(first))")
            }
            declared.iommuLine = declared.line
            return (.iommu(type), .status(verb))

        case .container:
            let w = try operand("one of type1, iommufd, or a container name")
            let kind: ContainerKind
            if w.text == "type1" { kind = .type1 } else if w.text == "iommufd" { kind = .iommufd } else {
                // `container NAME [KIND]`: another container of the process.
                if w.hasEquals { throw LineError(w.text.start, "expected one of type1, iommufd, or a container name, found \(quoted(w.text))") }
                let name = try domainName(w.text)
                // Unwritten, the kind is the one the container was opened
                // as (type1 for a new one; `c0`'s may come from the run).
                var named: ContainerKind? = nil
                if let k = words.first {
                    words = words.dropFirst()
                    if k.text == "type1" { named = .type1 } else if k.text == "iommufd" { named = .iommufd } else {
                        throw LineError(k.text.start, "expected one of type1, iommufd, found \(quoted(k.text))")
                    }
                    if let had = declared.containers[name], had != named {
                        throw LineError(k.text.start, "expected \(had) (container \(name) was opened as \(had)), found \(quoted(k.text))")
                    }
                }
                try end()
                if let named { declared.containers[name] = named }
                if declared.firstNamedContainerLine == nil { declared.firstNamedContainerLine = declared.line }
                declared.iommuLine = nil
                declared.switchedTo = name
                return (.useContainer(name, named), .none("container takes no answer"))
            }
            try end()
            try before(verb, verbToken, firstOperation)
            if let first = declared.firstDomainLine {
                throw LineError(verbToken.text.start, "expected container before the first domain, found it after the domain on line \(first)")
            }
            if let first = declared.containerLine {
                throw LineError(verbToken.text.start, "expected one container statement, found a second one (the first is on line \(first))")
            }
            if let named = declared.firstNamedContainerLine {
                throw LineError(verbToken.text.start, "expected the first container's kind before `container NAME` on line \(named) (another container's kind is `container NAME \(kind)`), found `container \(kind)`")
            }
            declared.containerLine = declared.line
            declared.containers["c0"] = kind
            return (.container(kind), .none("container takes no answer"))

        case .kernel:
            let known = "a kernel version \(KernelVersion.oldestKnown) or newer (6.8, 6.12.38, 6.12.38+deb12-amd64)"
            let w = try operand(known)
            guard let version = strictVersion(w.text), version.isKnown else {
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

        case .mlock:
            let w = try operand("a size")
            let bytes = try VFIOTrace.number(w.text, expected: "a size")
            try end()
            return (.mlock(bytes), .none("mlock takes no answer"))

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
            if let other = declared.addMemory(start: m.vaddr, last: m.vaddr + (m.size - 1)), let v = keyed(.vaddr) {
                throw LineError(v.word.text.start, "expected memory apart from the region on line \(other.line) (\(formatAddress(other.start))-\(formatAddress(other.last))), found \(quoted(v.word.text)) size=\(formatSize(m.size))")
            }
            return (.memory(m), .none("memory takes no answer"))

        case .map:
            let m = try map()
            // Most lines have neither word: no call then.
            if found & (Key.repeat.bit | Key.step.bit) != 0 { try repeatWords(size: m.size, iova: m.iova, vaddr: m.vaddr) }
            return (.map(m), .status(verb))

        case .unmap:
            var rule = AnswerRule.status(verb)
            let u = try unmap()
            rule.fields = AnswerKey.size.bit | (u.bitmap != nil ? AnswerKey.dirty.bit : 0)
            if found & (Key.repeat.bit | Key.step.bit) != 0 { try repeatWords(size: u.size, iova: u.iova, vaddr: nil) }
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
            return (.info(argsz: try number32(.argsz)), rule)

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
                    let iova = try requiredNumber(.iova), size = try requiredNumber(.size)
                    let pgsize = try requiredNumber(.pgsize)
                    let bytes = try number(.bitmapSize) ?? defaultBitmapSize(size: size, pgsize: pgsize)
                    var get = DirtyPages(flags: .getBitmap, iova: iova, size: size, bitmap: DMABitmap(pgsize: pgsize, size: bytes))
                    if let raw = try number32(.flags) { get.flags = DirtyPages.Flags(rawValue: raw) }
                    var rule = AnswerRule.status(verb)
                    rule.fields = AnswerKey.dirty.bit
                    return (.dirty(get), rule)
                } else {
                    throw LineError(w.text.start, "expected one of start, stop, get, found \(quoted(w.text))")
                }
            }
            try collect(Self.dirtyWords)
            if let raw = try number32(.flags) { flags = DirtyPages.Flags(rawValue: raw) }
            return (.dirty(DirtyPages(flags: flags)), .status(verb))

        case .check:
            let c = try check()
            var named: String? = nil
            if case .ptes(_, let d) = c { named = d } else if case .pte(_, _, let d) = c { named = d }
            if let domain = named, !declared.named.contains(domain),
               declared.domainBeforeStart || domain != DomainSpec.default.name, let d = keyed(.domain) {
                let names = (declared.domainBeforeStart ? [] : [DomainSpec.default.name]) + declared.named.sorted()
                let known = names.isEmpty ? "no domain is declared" : "declared: \(names.joined(separator: ", "))"
                throw LineError(d.value.start, "expected the name of a domain of this trace (\(known)), found \(quoted(d.value))")
            }
            if case .pte = c { return (.check(c), AnswerRule(refusal: nil, verb: verb, leafSize: true)) }
            return (.check(c), .none("check takes no answer"))

        case .show:
            var items: ShowItems = []
            try collect(Self.showWords)
            for (key, item) in [(Key.showLocked, ShowItems.locked), (.showMappings, .mappings), (.showPtes, .ptes), (.showIova, .iova)]
            where bare(key) != nil {
                items.insert(item)
            }
            return (.show(items.isEmpty ? .all : items), .none("show takes no answer; it prints the state"))
        }
    }

    /// `repeat=N` and `step=SIZE` of `map` and `unmap` (collected with the
    /// statement's words): at most `maxRepeat` times, and no advance may
    /// take an address past 2^64-1.
    mutating func repeatWords(size: UInt64, iova: UInt64, vaddr: UInt64?) throws(LineError) {
        guard let r = keyed(.repeat) else {
            try only(keyed(.step)?.word, with: "repeat=")
            return
        }
        let count = try VFIOTrace.number(r.value)
        guard count >= 1, count <= Self.maxRepeat else {
            throw LineError(r.value.start, "expected a repeat count from 1 to \(Self.maxRepeat), found \(quoted(r.value))")
        }
        let step = try number(.step)
        let (advance, o) = (step ?? size).multipliedReportingOverflow(by: count - 1)
        if o || iova.addingReportingOverflow(advance).overflow || (vaddr ?? 0).addingReportingOverflow(advance).overflow {
            let at = keyed(.step)?.value ?? r.value
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
        var spec = DomainSpec(name: name)
        var explicit: DomainSpec.Keys = []
        if let i = keyed(.iommu) {
            guard let preset = IOMMUPreset(rawValue: i.value.string) else {
                throw LineError(i.value.start, "expected one of \(IOMMUPreset.list), found \(quoted(i.value))")
            }
            spec.preset = preset
        } else {
            // Without a preset the page sizes must be written.
            _ = try required(.pgsizes)
        }
        if let p = keyed(.pgsizes) {
            spec.pgsizes = try pageSizes(p.value)
            explicit.insert(.pgsizes)
            // Every IOMMU driver advertises at least one page size
            // (iommu_domain's pgsize_bitmap): a domain without one cannot map.
            if spec.pgsizes.isEmpty { throw LineError(p.value.start, "expected at least one page size, found \(quoted(p.value))") }
        }
        if let l = keyed(.leaves) { spec.leaves = try pageSizes(l.value); explicit.insert(.leaves) }
        if let a = keyed(.aperture) { spec.aperture = try range(a.value); explicit.insert(.aperture) }
        if let r = keyed(.reserved) { spec.reserved = try r.value == "none" ? [] : ranges(r.value); explicit.insert(.reserved) }
        // Fine-grained superpages (vfio_test_domain_fgsp, v3.15–v6.15)
        // changed only how the kernel issued unmaps, never an answer: the
        // key stays valid for the traces that say it, and means nothing.
        _ = try yesNo(.fgsp, default: false)
        if keyed(.coherent) != nil { explicit.insert(.coherent) }
        if keyed(.msiIsolated) != nil { explicit.insert(.msiIsolated) }
        spec.coherent = try yesNo(.coherent, default: true)
        spec.msiIsolated = try yesNo(.msiIsolated, default: true)
        if let n = keyed(.instance) {
            let v = try VFIOTrace.number(n.value)
            guard v < 4096 else { throw LineError(n.value.start, "expected an IOMMU unit number below 4096, found \(quoted(n.value))") }
            spec.instance = Int(v)
        }
        if let l = keyed(.leaves) {
            var whole = spec
            whole.explicit = explicit
            if let problem = whole.leavesContradiction { throw LineError(l.value.start, "\(problem), found \(quoted(l.value))") }
        }
        if spec.preset != nil {
            spec.explicit = explicit
            // Filled for the newest release here; the model fills them
            // again for the release it answers (`DomainSpec.resolved`).
            spec = spec.resolved(for: KernelVersion.newestKnown).spec
        }
        spec.emulated = try yesNo(.emulated, default: false)
        return spec
    }

    mutating func memory() throws(LineError) -> MemorySpec {
        try collect(Self.memoryWords)
        let vaddrKV = try required(.vaddr), sizeKV = try required(.size)
        let vaddr = try VFIOTrace.number(vaddrKV.value)
        let size = try VFIOTrace.number(sizeKV.value)
        var page = PageSizes.pageSize
        if let p = keyed(.page) {
            guard case .success(let v) = parseNumber(p.value), v == 4096 || v == 2 << 20 || v == 1 << 30 else {
                throw LineError(p.value.start, "expected one of 4K, 2M, 1G, found \(quoted(p.value))")
            }
            page = v
        }
        let seed = try number(.seed)
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
        let pfnmap = bare(.pfnmap)
        var placement = MemorySpec.Placement.realistic
        let phys = keyed(.phys)
        if let p = phys {
            let base: UInt64 = 0x1_0000_0000
            if p.value == "contiguous" {
                placement = .contiguous
            } else if p.value == "scattered" {
                placement = .layout(.scattered(seed: seed ?? vaddr))
            } else if p.value == "reversed" {
                placement = .layout(.reversed(base: base))
            } else if p.value.hasPrefix("chunks:") {
                let text = p.value.dropFirst(7)
                let chunk = try VFIOTrace.number(text)
                guard chunk != 0 else { throw LineError(text.start, "expected a nonzero chunk size, found \(quoted(text))") }
                try multiple(chunk, text)
                placement = .layout(.chunks(size: chunk, base: base))
            } else {
                let address = try VFIOTrace.number(p.value, expected: "an address, contiguous, scattered, reversed or chunks:SIZE")
                try multiple(address, p.value)
                guard !address.addingReportingOverflow(size - 1).overflow else {
                    throw LineError(p.value.start, "expected an address that ends the region at or below 0xffffffffffffffff, found \(quoted(p.value))")
                }
                placement = .layout(.contiguous(base: address))
            }
        }
        if let t = bare(.thp) {
            // Transparent hugepages back anonymous 4K memory only, and are
            // themselves the layout.
            if let p = phys {
                let later = p.word.text.start > t.text.start ? p.word : t
                throw LineError(later.text.start, "expected thp or phys=, not both, found \(quoted(later.text))")
            }
            if let f = pfnmap {
                let later = f.text.start > t.text.start ? f : t
                throw LineError(later.text.start, "expected thp or pfnmap, not both, found \(quoted(later.text))")
            }
            if page != PageSizes.pageSize, let p = keyed(.page) {
                throw LineError(p.value.start, "expected page=4K with thp (transparent hugepages back 4K pages), found \(quoted(p.value))")
            }
            placement = .thp
        }
        // A scattered, reversed or chunked region costs one page-table
        // run per piece once mapped: cap the pieces so a hostile trace
        // cannot ask for terabytes of runs (2^24 pieces = 64 GiB of 4K).
        // The default (`realistic`) scatters every page too.
        let pieces: UInt64
        switch placement {
        case .layout(.chunks(let chunk, _)): pieces = size / chunk
        case .contiguous, .layout(.contiguous), .layout(.observed): pieces = 1
        case .layout(.scattered), .layout(.reversed): pieces = size / page
        case .realistic: pieces = pfnmap != nil ? 1 : size / page
        case .thp, .layout(.thp): pieces = size / (2 << 20) + 1024
        }
        if pieces > Self.maxScatteredPieces {
            if let p = phys {
                throw LineError(p.value.start, "expected at most \(Self.maxScatteredPieces) physically separate pieces, found \(pieces) with \(quoted(p.value))")
            }
            let why = placement == .thp ? "thp" : "\(formatSize(page)) pages each apart (the default without phys=; phys=contiguous for one run)"
            throw LineError(sizeKV.value.start, "expected at most \(Self.maxScatteredPieces) physically separate pieces, found \(pieces) with \(why)")
        }
        // `seed=` is accepted with every layout (traces written from user
        // reports carry it); only `scattered` places pages by it.
        // Device memory is never faulted in by a pin: it has no pages.
        let populated = try yesNo(.populated, default: true)
        if !populated, let f = pfnmap, let p = keyed(.populated) {
            let later = p.word.text.start > f.text.start ? p.word : f
            throw LineError(later.text.start, "expected populated=no or pfnmap, not both (device memory is never faulted in), found \(quoted(later.text))")
        }
        return MemorySpec(vaddr: vaddr, size: size, pageSize: page, placement: placement, pfnmap: pfnmap != nil, populated: populated)
    }

    /// The most physically separate pieces a `memory` statement may ask for.
    static let maxScatteredPieces: UInt64 = 1 << 24

    mutating func map() throws(LineError) -> MapDMA {
        try collect(Self.mapWords)
        let iova = try requiredNumber(.iova), vaddr = try requiredNumber(.vaddr), size = try requiredNumber(.size)
        var flags: MapDMA.Flags
        switch (keyed(.prot), bare(.vaddrOnly)) {
        case (nil, nil):
            // Raw flags= stand in for prot= (for testing bad flags).
            guard keyed(.flags) != nil else { throw missing("prot= or vaddr-only") }
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
        if let raw = try number32(.flags) { flags = MapDMA.Flags(rawValue: raw) }
        return MapDMA(argsz: try number32(.argsz) ?? MapDMA.structSize, flags: flags, vaddr: vaddr, iova: iova, size: size)
    }

    mutating func unmap() throws(LineError) -> UnmapDMA {
        try collect(Self.unmapWords)
        let iova = try requiredNumber(.iova), size = try requiredNumber(.size)
        var flags: UnmapDMA.Flags = bare(.vaddrOnly) != nil ? .vaddr : []
        var bitmap: DMABitmap?
        if bare(.dirty) != nil {
            flags.insert(.getDirtyBitmap)
            let pgsize = try requiredNumber(.pgsize)
            let bytes = try number(.bitmapSize) ?? defaultBitmapSize(size: size, pgsize: pgsize)
            bitmap = DMABitmap(pgsize: pgsize, size: bytes)
        } else {
            try only(keyed(.pgsize)?.word, with: "dirty")
            try only(keyed(.bitmapSize)?.word, with: "dirty")
        }
        if let raw = try number32(.flags) { flags = UnmapDMA.Flags(rawValue: raw) }
        return UnmapDMA(argsz: try number32(.argsz), flags: flags, iova: iova, size: size, bitmap: bitmap)
    }

    mutating func unmapAll() throws(LineError) -> UnmapDMA {
        try collect(Self.unmapAllWords)
        var flags: UnmapDMA.Flags = bare(.vaddrOnly) != nil ? [.all, .vaddr] : .all
        if let raw = try number32(.flags) { flags = UnmapDMA.Flags(rawValue: raw) }
        return UnmapDMA(argsz: try number32(.argsz), flags: flags, iova: try number(.iova) ?? 0, size: try number(.size) ?? 0)
    }

    mutating func check() throws(LineError) -> Check {
        try collect(Self.checkWords)
        if bare(.pte) != nil {
            // `check pte iova=X`: the leaf size comes after `=>` (filled
            // in by `parseLeafAnswer`).
            for key in Self.checkKinds { if let other = keyed(key) { throw LineError(other.word.text.start, "expected only one of locked=, mappings=, ptes=, pte, found \(quoted(other.word.text))") } }
            guard let iova = keyed(.iova) else { throw missing("iova= after pte") }
            var domain: String?
            if let d = keyed(.domain) { domain = try domainName(d.value) }
            return .pte(iova: try VFIOTrace.number(iova.value), leaf: nil, domain: domain)
        }
        try only(keyed(.iova)?.word, with: "pte")
        // The first of locked=, mappings=, ptes= in the line is the check;
        // a second one is the error. `collected` is in line order.
        var given: Key?, second: Key?
        for key in Self.checkKinds where found & key.bit != 0 {
            if let g = given, slots[g] < slots[key] {
                if second.map({ slots[key] < slots[$0] }) ?? true { second = key }
            } else {
                second = given
                given = key
            }
        }
        if let second, let w = bare(second) {
            throw LineError(w.text.start, "expected only one of locked=, mappings=, ptes=, found \(quoted(w.text))")
        }
        guard let given, let kv = keyed(given) else { throw missing("one of locked=, mappings=, ptes=, pte") }
        if keyed(.ptes) == nil { try only(keyed(.domain)?.word, with: "ptes= or pte") }
        if given == .locked { return .locked(try VFIOTrace.number(kv.value)) }
        if given == .mappings { return .mappings(try VFIOTrace.number(kv.value)) }
        let counts = try pteCounts(kv.value)
        var domain: String?
        if let d = keyed(.domain) { domain = try domainName(d.value) }
        return .ptes(counts, domain: domain)
    }
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

/// Whether `text` looks like an errno name that is not one: `E` then
/// capitals and digits.
func looksLikeErrno(_ text: Text) -> Bool {
    text.count > 1 && text.first == UInt8(ascii: "E") && text.allSatisfy {
        ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
    }
}

/// The answer of `check pte`: `=> SIZE` (a power of two: the leaf's page
/// size) or `=> none`; nil for none.
func parseLeafAnswer(arrow: Token?, tokens: Tokens, lineEnd: Int, secondArrow: Token?) throws(LineError) -> UInt64? {
    guard let arrow else { throw LineError(lineEnd, "expected '=> SIZE' or '=> none' (check pte answers the leaf's page size), found end of line") }
    guard let first = tokens.first else { throw LineError(arrow.text.end, "expected a page size or none, found end of line") }
    if first.isArrow { throw LineError(first.text.start, "expected a page size or none, found '=>'") }
    if let second = secondArrow { throw LineError(second.text.start, "expected end of line, found '=>'") }
    if let w = tokens.dropFirst().first { throw LineError(w.text.start, "expected end of line, found \(quoted(w.text))") }
    if first.text == "none" { return nil }
    guard let d = first.text.first, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") else {
        throw LineError(first.text.start, "expected a page size or none, found \(quoted(first.text))")
    }
    let size = try number(first.text)
    guard size != 0, size & (size - 1) == 0 else {
        throw LineError(first.text.start, "expected a page size (a power of two) or none, found \(quoted(first.text))")
    }
    return size
}

/// The answer after `=>`; `secondArrow` is the line's next `=>` after
/// `arrow`, if any (the lexer records it, so the tokens are not scanned).
func parseAnswer(rule: AnswerRule, arrow: Token, tokens: Tokens, secondArrow: Token?) throws(LineError) -> Answer {
    if let why = rule.refusal { throw LineError(arrow.text.start, "expected end of line (\(why.string)), found '=>'") }
    guard let first = tokens.first else { throw LineError(arrow.text.end, "expected an answer, found end of line") }
    if first.isArrow { throw LineError(first.text.start, "expected an answer, found '=>'") }
    if let second = secondArrow { throw LineError(second.text.start, "expected end of line, found '=>'") }
    var rest = tokens.dropFirst()
    let status: Answer.Status
    if first.text == "ok" && !rule.value {
        status = .ok
    } else if rule.fieldsAlone && first.hasEquals {
        status = .ok
        rest = tokens
    } else if rule.value, let d = first.text.first, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") {
        status = .value(try number(first.text))
    } else if let e = errno(named: first.text) {
        status = .errno(e)
    } else if first.text == "error" {
        status = .anyError
    } else if looksLikeErrno(first.text) {
        throw LineError(first.text.start, "expected a Linux errno name, found \(quoted(first.text))")
    } else {
        let what = rule.value ? "a number, an errno or error" : rule.fieldsAlone ? "ok, an errno, error or key=value fields" : "ok, an errno or error"
        throw LineError(first.text.start, "expected \(what), found \(quoted(first.text))")
    }
    if case .ok = status {} else if let w = rest.first {
        throw LineError(w.text.start, "expected end of line, found \(quoted(w.text))")
    }
    var fields = AnswerFields()
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

/// Every errno name (`Errno.allNames`) with its spelling, in numeric order.
let errnoSpellings: [(Spelling, Errno)] = Errno.allNames.compactMap { name in
    guard let s = Spelling(name: name), let e = Errno(name: name) else { return nil }
    return (s, e)
}

/// `Errno(name:)`, without making a `String` for the errno names a trace
/// writes most: those of `Errno.allNames` are found by spelling; any other
/// text (`hang`, which is no errno name but an answer, or a mistake) goes
/// to `Errno(name:)`, which has the last word.
func errno(named text: Text) -> Errno? {
    knownErrno(text) ?? Errno(name: text.string)
}

/// The errno of `Errno.allNames` spelled `text`, found by spelling without
/// making a `String`; nil for any other text.
@inline(__always)
func knownErrno(_ text: Text) -> Errno? {
    guard text.count <= 16 else { return nil }
    let spelling = Spelling(text)
    for (s, e) in errnoSpellings where s == spelling { return e }
    return nil
}

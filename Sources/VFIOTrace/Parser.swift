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

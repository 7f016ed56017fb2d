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
    // Room for a statement per 32 bytes (machine-written lines are longer),
    // so the array rarely grows while it is filled.
    parser.statements.reserveCapacity(bytes.count / 32)
    bytes.withUnsafeBufferPointer { buffer in
        forEachLexedLine(buffer) { line, error in parser.take(line, error, buffer.baseAddress!) }
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

/// The state carried from line to line.
struct TraceParser {
    var statements: [Statement] = []
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

    /// Takes one lexed line (or its lexing error) of the file at `base`.
    mutating func take(_ line: borrowing LexedLine, _ lexError: LineError?, _ base: UnsafePointer<UInt8>) {
        if let e = lexError {
            fail(line, e, base)
            previousWasBlank = false
            return
        }
        if line.tokenCount == 0 {
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
    mutating func appendStatement(_ line: borrowing LexedLine, _ base: UnsafePointer<UInt8>) throws(LineError) {
        // Positions in the line's tokens, not slices of them (each slice
        // retained the array).
        let tokens = line.storage, count = line.tokenCount
        let arrow: Token? = line.firstArrow >= 0 ? tokens[line.firstArrow] : nil
        let secondArrow: Token? = line.secondArrow >= 0 ? tokens[line.secondArrow] : nil
        let wordsEnd = line.firstArrow >= 0 ? line.firstArrow : count
        let answerStart = line.firstArrow >= 0 ? line.firstArrow + 1 : count
        let first = tokens[0]
        guard !first.isArrow, let verb = Verb(first.text) else {
            throw LineError(first.text.start, "expected one of \(Verb.list), found \(quoted(first.text))")
        }
        // An operation counts as the first one even when its words are wrong.
        if verb.isOperation && firstOperation == nil { firstOperation = line.number }
        if verb.isOperation && declared.firstOperationInFile == nil { declared.firstOperationInFile = line.number }
        var s = StatementParser(tokens: tokens, words: 1..<wordsEnd, arrowStart: arrow?.text.start, lineEnd: line.end,
                                verbStart: first.text.start, firstOperation: firstOperation)
        // Only blanks and tabs (one column each) come before a line's first
        // word, so its column is its offset on the line, counted without
        // looking at the bytes (`columnOfFirstWordAgreesWithColumn` checks).
        let column = first.text.start - line.start + 1
        var kind = try s.parse(verb: verb, declared: &declared)
        var expected: Answer?
        if s.rule.leafSize, case .check(.pte(let iova, _, let domain)) = kind {
            // `check pte`'s answer, the leaf size, is part of the check.
            let leaf = try parseLeafAnswer(arrow: arrow, tokens: tokens, answer: answerStart..<count, lineEnd: line.end, secondArrow: secondArrow)
            kind = .check(.pte(iova: iova, leaf: leaf, domain: domain))
        }
        if let next = declared.switchedTo {
            firstOperationOf[currentContainer] = firstOperation
            currentContainer = next
            firstOperation = firstOperationOf[next]
            declared.switchedTo = nil
        }
        if !s.rule.leafSize, let arrow {
            expected = try parseAnswer(rule: s.rule, arrow: arrow, tokens: tokens, answer: answerStart..<count, secondArrow: secondArrow)
        }
        statements.append(Statement(line: line.number, column: column, kind: kind, expected: expected))
        if line.comment != nil || s.repetition != nil || keepsSpellings {
            statements[statements.count - 1].setExtras(comment: line.comment, repetition: s.repetition,
                                                       spellings: keepsSpellings ? s.spellings() : [:])
        }
    }
}

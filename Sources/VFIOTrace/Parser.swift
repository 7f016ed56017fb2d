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
public func parseTrace(bytes: [UInt8], file: String) -> Result<Trace, ParseFailure> {
    var parser = TraceParser()
    bytes.withUnsafeBufferPointer { buffer in
        forEachLine(buffer) { number, lexed in parser.take(number, lexed) }
    }
    if parser.errors.isEmpty { return .success(Trace(file: file, statements: parser.statements)) }
    return .failure(ParseFailure(diagnostics: parser.errors.map {
        Diagnostic(file: file, line: $0.line, column: $0.error.column, message: $0.error.message)
    }))
}

/// Parses a trace held in a string (tests, `fmt` of standard input).
public func parseTrace(_ text: String, file: String) -> Result<Trace, ParseFailure> {
    parseTrace(bytes: Array(text.utf8), file: file)
}

/// What an answer after `=>` may hold on one statement.
struct AnswerRule {
    /// Nil when the statement takes an answer; else why not (for the message).
    var refusal: String?
    /// The verb, for messages.
    var verb: String = ""
    /// Keys the answer may carry after `ok`.
    var fields: [String] = []
    /// A bare number (`extension`), instead of `ok`.
    var value = false
    /// Keys without `ok` (`info => dma-avail=3`).
    var fieldsAlone = false

    static func none(_ why: String) -> AnswerRule { AnswerRule(refusal: why) }
    static func status(_ verb: String) -> AnswerRule { AnswerRule(refusal: nil, verb: verb) }
}

/// The verbs of the language, in the order messages list them.
let verbs = ["iommu", "kernel", "memlock", "cap-ipc-lock", "dma-entry-limit", "domain", "detach", "memory",
             "map", "unmap", "unmap-all", "info", "extension", "dirty", "check"]
/// Verbs that are operations wherever they appear.
let operationVerbs: Set<Substring> = ["map", "unmap", "unmap-all", "info", "extension", "dirty"]

/// The state carried from line to line.
struct TraceParser {
    var statements: [Statement] = []
    var errors: [(line: Int, error: LineError)] = []
    /// Line of the first operation: `iommu` and `kernel` must come before
    /// it; `domain` and `detach` after it are operations.
    var firstOperation: Int?
    var previousWasBlank = false

    mutating func take(_ number: Int, _ lexed: Result<LexedLine, LineError>) {
        let line: LexedLine
        switch lexed {
        case .failure(let e):
            errors.append((number, e))
            previousWasBlank = false
            return
        case .success(let l): line = l
        }
        if line.tokens.isEmpty {
            if let text = line.comment {
                statements.append(Statement(line: number, column: line.commentColumn, kind: .comment(text)))
                previousWasBlank = false
            } else {
                // A run of blank lines is one `.blank`.
                if !previousWasBlank { statements.append(Statement(line: number, column: 1, kind: .blank)) }
                previousWasBlank = true
            }
            return
        }
        previousWasBlank = false
        do throws(LineError) {
            statements.append(try statement(line))
        } catch {
            errors.append((number, error))
        }
    }

    /// One statement line: the verb's words, then the answer.
    mutating func statement(_ line: LexedLine) throws(LineError) -> Statement {
        let arrowIndex = line.tokens.firstIndex(where: \.isArrow)
        let words = line.tokens[..<(arrowIndex ?? line.tokens.endIndex)]
        let verb = line.tokens[0]
        guard !verb.isArrow, verbs.contains(where: { $0 == verb.text }) else {
            throw LineError(verb.column, "expected one of \(verbs.joined(separator: ", ")), found \(quoted(verb.text))")
        }
        var s = StatementParser(words: words.dropFirst(), arrow: arrowIndex.map { line.tokens[$0] }, endColumn: line.endColumn)
        // An operation counts as the first one even when its words are wrong.
        if operationVerbs.contains(verb.text) && firstOperation == nil { firstOperation = line.number }
        let (kind, rule) = try s.parse(verb: verb, firstOperation: firstOperation)
        var answer: Answer?
        if let arrowIndex {
            answer = try parseAnswer(rule: rule, arrow: line.tokens[arrowIndex], tokens: line.tokens[(arrowIndex + 1)...])
        }
        return Statement(line: line.number, column: verb.column, kind: kind, expected: answer, comment: line.comment)
    }
}

/// A `key=value` word.
struct KeyValue {
    var word: Token
    var value: Substring
    var valueColumn: Int
}

/// The words of one statement after its verb.
struct StatementParser {
    var words: ArraySlice<Token>
    var arrow: Token?
    /// Where `end of line` is when no `=>` follows the words.
    var endColumn: Int

    var keyed: [Substring: KeyValue] = [:]
    var bare: [Substring: Token] = [:]

    init(words: ArraySlice<Token>, arrow: Token?, endColumn: Int) {
        self.words = words; self.arrow = arrow; self.endColumn = endColumn
    }

    // MARK: Words

    /// An error for something missing at the end of the statement.
    func missing(_ what: String) -> LineError {
        if let arrow { return LineError(arrow.column, "expected \(what), found '=>'") }
        return LineError(endColumn, "expected \(what), found end of line")
    }

    /// The next bare word (a verb's operand), or an error naming `what`.
    mutating func operand(_ what: String) throws(LineError) -> Token {
        guard let w = words.popFirst() else { throw missing(what) }
        return w
    }

    /// No more words.
    func end() throws(LineError) {
        if let w = words.first { throw LineError(w.column, "expected end of line, found \(quoted(w.text))") }
    }

    /// Sorts the remaining words into `key=value` and bare words, each of
    /// which must be in `accepts` (keys end with `=`) and appear once.
    mutating func collect(_ accepts: [String]) throws(LineError) {
        for w in words {
            if let eq = w.text.utf8.firstIndex(of: UInt8(ascii: "=")) {
                let key = w.text[..<eq]
                guard accepts.contains(String(key) + "=")
                else { throw LineError(w.column, "expected \(oneOf(accepts)), found \(quoted(w.text))") }
                if keyed[key] != nil { throw LineError(w.column, "expected at most one \(key)=, found \(quoted(w.text))") }
                keyed[key] = KeyValue(word: w, value: w.text[w.text.utf8.index(after: eq)...],
                                      valueColumn: w.column + key.unicodeScalars.count + 1)
            } else {
                guard accepts.contains(where: { $0 == w.text }) else {
                    throw LineError(w.column, "expected \(oneOf(accepts)), found \(quoted(w.text))")
                }
                if bare[w.text] != nil { throw LineError(w.column, "expected at most one \(w.text), found \(quoted(w.text))") }
                bare[w.text] = w
            }
        }
        words = words[words.endIndex...]
    }

    func required(_ key: Substring) throws(LineError) -> KeyValue {
        guard let kv = keyed[key] else { throw missing("\(key)=") }
        return kv
    }

    func number(_ key: Substring) throws(LineError) -> UInt64? {
        guard let kv = keyed[key] else { return nil }
        return try VFIOTrace.number(kv.value, at: kv.valueColumn)
    }

    func number32(_ key: Substring) throws(LineError) -> UInt32? {
        guard let kv = keyed[key] else { return nil }
        return try VFIOTrace.number32(kv.value, at: kv.valueColumn)
    }

    func requiredNumber(_ key: Substring) throws(LineError) -> UInt64 {
        let kv = try required(key)
        return try VFIOTrace.number(kv.value, at: kv.valueColumn)
    }

    func yesNo(_ key: Substring, default value: Bool) throws(LineError) -> Bool {
        guard let kv = keyed[key] else { return value }
        return try VFIOTrace.yesNo(kv.value, at: kv.valueColumn)
    }

    /// `KEY= only with OTHER`: a word that needs another.
    func only(_ word: Token?, with other: String) throws(LineError) {
        if let word { throw LineError(word.column, "expected \(firstPart(word.text)) only with \(other), found \(quoted(word.text))") }
    }

    // MARK: Statements

    mutating func parse(verb: Token, firstOperation: Int?) throws(LineError) -> (Statement.Kind, AnswerRule) {
        let name = String(verb.text)
        switch verb.text {
        case "iommu":
            let w = try operand("one of type1, type1v2")
            guard let type = IOMMUType(rawValue: String(w.text)) else {
                throw LineError(w.column, "expected one of type1, type1v2, found \(quoted(w.text))")
            }
            try end()
            try before(verb, firstOperation)
            return (.iommu(type), .status(name))

        case "kernel":
            let w = try operand("a kernel version like 6.12")
            guard let version = KernelVersion(parsing: String(w.text)) else {
                throw LineError(w.column, "expected a kernel version like 6.12, found \(quoted(w.text))")
            }
            try end()
            try before(verb, firstOperation)
            return (.kernel(version), .none("kernel takes no answer"))

        case "memlock":
            let w = try operand("a number or unlimited")
            var limit: UInt64?
            if w.text != "unlimited" { limit = try VFIOTrace.number(w.text, at: w.column, expected: "a number or unlimited") }
            try end()
            return (.memlock(limit), .none("memlock takes no answer"))

        case "cap-ipc-lock":
            let w = try operand("one of on, off")
            guard w.text == "on" || w.text == "off" else { throw LineError(w.column, "expected one of on, off, found \(quoted(w.text))") }
            try end()
            return (.capIPCLock(w.text == "on"), .none("cap-ipc-lock takes no answer"))

        case "dma-entry-limit":
            let w = try operand("a number")
            let limit = try VFIOTrace.number32(w.text, at: w.column)
            try end()
            return (.dmaEntryLimit(limit), .none("dma-entry-limit takes no answer"))

        case "domain":
            let spec = try domain()
            return (.domain(spec), firstOperation == nil ? .none("domain before the first operation takes no answer") : .status(name))

        case "detach":
            let w = try operand("a domain name")
            let group = try domainName(w.text, at: w.column)
            try end()
            return (.detach(group), firstOperation == nil ? .none("detach before the first operation takes no answer") : .status(name))

        case "memory":
            return (.memory(try memory()), .none("memory takes no answer"))

        case "map":
            return (.map(try map()), .status(name))

        case "unmap":
            var rule = AnswerRule.status(name)
            rule.fields = ["size"]
            return (.unmap(try unmap()), rule)

        case "unmap-all":
            var rule = AnswerRule.status(name)
            rule.fields = ["size"]
            return (.unmap(try unmapAll()), rule)

        case "info":
            try collect(["argsz="])
            var rule = AnswerRule.status(name)
            rule.fields = ["pgsizes", "iova", "dma-avail", "argsz"]
            rule.fieldsAlone = true
            return (.info(argsz: try number32("argsz")), rule)

        case "extension":
            let names = Extension.byName.map(\.0).joined(separator: ", ")
            let w = try operand("one of \(names), or a number")
            let ext: Extension
            if let e = Extension(name: String(w.text)) {
                ext = e
            } else {
                ext = Extension(rawValue: try VFIOTrace.number32(w.text, at: w.column, expected: "one of \(names), or a number"))
            }
            try end()
            var rule = AnswerRule.status(name)
            rule.value = true
            return (.extension(ext), rule)

        case "dirty":
            // `dirty flags=N` alone sends raw flags (for testing bad ones).
            var flags: DirtyPages.Flags = []
            if let first = words.first, first.text.hasPrefix("flags=") {
            } else {
                let w = try operand("one of start, stop, get")
                switch w.text {
                case "start": flags = .start
                case "stop": flags = .stop
                case "get":
                    // `dirty get iova= size= pgsize= [bitmap-size=]`: GET_BITMAP.
                    try collect(["iova=", "size=", "pgsize=", "bitmap-size=", "flags="])
                    let iova = try requiredNumber("iova"), size = try requiredNumber("size")
                    let pgsize = try requiredNumber("pgsize")
                    let bytes = try number("bitmap-size") ?? defaultBitmapSize(size: size, pgsize: pgsize)
                    var get = DirtyPages(flags: .getBitmap, iova: iova, size: size, bitmap: DMABitmap(pgsize: pgsize, size: bytes))
                    if let raw = try number32("flags") { get.flags = DirtyPages.Flags(rawValue: raw) }
                    return (.dirty(get), .status(name))
                default: throw LineError(w.column, "expected one of start, stop, get, found \(quoted(w.text))")
                }
            }
            try collect(["flags="])
            if let raw = try number32("flags") { flags = DirtyPages.Flags(rawValue: raw) }
            return (.dirty(DirtyPages(flags: flags)), .status(name))

        case "check":
            return (.check(try check()), .none("check takes no answer"))

        default:
            preconditionFailure("verb \(verb.text) listed but not parsed")
        }
    }

    /// `iommu` and `kernel` come before the first operation.
    func before(_ verb: Token, _ firstOperation: Int?) throws(LineError) {
        if let firstOperation {
            throw LineError(verb.column, "expected \(verb.text) before the first operation, found it after the operation on line \(firstOperation)")
        }
    }

    mutating func domain() throws(LineError) -> DomainSpec {
        let w = try operand("a domain name")
        if w.text.utf8.contains(UInt8(ascii: "=")) { throw LineError(w.column, "expected a domain name, found \(quoted(w.text))") }
        let name = try domainName(w.text, at: w.column)
        try collect(["pgsizes=", "aperture=", "reserved=", "fgsp=", "coherent=", "emulated=", "msi-isolated="])
        let p = try required("pgsizes")
        var spec = DomainSpec(name: name, pgsizes: try pageSizes(p.value, at: p.valueColumn))
        if let a = keyed["aperture"] { spec.aperture = try range(a.value, at: a.valueColumn) }
        if let r = keyed["reserved"] { spec.reserved = try r.value == "none" ? [] : ranges(r.value, at: r.valueColumn) }
        spec.fgsp = try yesNo("fgsp", default: false)
        spec.coherent = try yesNo("coherent", default: true)
        spec.emulated = try yesNo("emulated", default: false)
        spec.msiIsolated = try yesNo("msi-isolated", default: true)
        return spec
    }

    mutating func memory() throws(LineError) -> MemorySpec {
        try collect(["vaddr=", "size=", "page=", "phys=", "seed=", "pfnmap"])
        let vaddrKV = try required("vaddr"), sizeKV = try required("size")
        let vaddr = try VFIOTrace.number(vaddrKV.value, at: vaddrKV.valueColumn)
        let size = try VFIOTrace.number(sizeKV.value, at: sizeKV.valueColumn)
        var page = PageSizes.pageSize
        if let p = keyed["page"] {
            guard case .success(let v) = parseNumber(p.value), v == 4096 || v == 2 << 20 || v == 1 << 30 else {
                throw LineError(p.valueColumn, "expected one of 4K, 2M, 1G, found \(quoted(p.value))")
            }
            page = v
        }
        let seed = try number("seed")
        func multiple(_ value: UInt64, _ text: Substring, _ column: Int) throws(LineError) {
            if value % page != 0 {
                throw LineError(column, "expected a multiple of the page size \(formatSize(page)), found \(quoted(text))")
            }
        }
        try multiple(vaddr, vaddrKV.value, vaddrKV.valueColumn)
        guard size != 0 else { throw LineError(sizeKV.valueColumn, "expected a nonzero size, found \(quoted(sizeKV.value))") }
        try multiple(size, sizeKV.value, sizeKV.valueColumn)
        guard !vaddr.addingReportingOverflow(size - 1).overflow else {
            throw LineError(sizeKV.valueColumn, "expected a size that ends the region at or below 0xffffffffffffffff, found \(quoted(sizeKV.value))")
        }
        var layout: PhysicalLayout?
        if let p = keyed["phys"] {
            let base: UInt64 = 0x1_0000_0000
            switch p.value {
            case "scattered": layout = .scattered(seed: seed ?? vaddr)
            case "reversed": layout = .reversed(base: base)
            default:
                if p.value.hasPrefix("chunks:") {
                    let text = p.value.dropFirst(7), column = p.valueColumn + 7
                    let chunk = try VFIOTrace.number(text, at: column)
                    guard chunk != 0 else { throw LineError(column, "expected a nonzero chunk size, found \(quoted(text))") }
                    try multiple(chunk, text, column)
                    layout = .chunks(size: chunk, base: base)
                } else {
                    let phys = try VFIOTrace.number(p.value, at: p.valueColumn,
                                                    expected: "an address, scattered, reversed or chunks:SIZE")
                    try multiple(phys, p.value, p.valueColumn)
                    guard !phys.addingReportingOverflow(size - 1).overflow else {
                        throw LineError(p.valueColumn, "expected an address that ends the region at or below 0xffffffffffffffff, found \(quoted(p.value))")
                    }
                    layout = .contiguous(base: phys)
                }
            }
        }
        if let s = keyed["seed"], keyed["phys"]?.value != "scattered" {
            throw LineError(s.word.column, "expected seed= only with phys=scattered, found \(quoted(s.word.text))")
        }
        return MemorySpec(vaddr: vaddr, size: size, pageSize: page, layout: layout, pfnmap: bare["pfnmap"] != nil)
    }

    mutating func map() throws(LineError) -> MapDMA {
        try collect(["iova=", "vaddr=", "size=", "prot=", "vaddr-only", "argsz=", "flags="])
        let iova = try requiredNumber("iova"), vaddr = try requiredNumber("vaddr"), size = try requiredNumber("size")
        var flags: MapDMA.Flags
        switch (keyed["prot"], bare["vaddr-only"]) {
        case (nil, nil):
            // Raw flags= stand in for prot= (for testing bad flags).
            guard keyed["flags"] != nil else { throw missing("prot= or vaddr-only") }
            flags = []
        case (let p?, let v?):
            let later = p.word.column > v.column ? p.word : v
            throw LineError(later.column, "expected prot= or vaddr-only, not both, found \(quoted(later.text))")
        case (nil, _?):
            flags = .vaddr
        case (let p?, nil):
            switch p.value {
            case "r": flags = .read
            case "w": flags = .write
            case "rw": flags = [.read, .write]
            case "none": flags = []
            default: throw LineError(p.valueColumn, "expected one of r, w, rw, none, found \(quoted(p.value))")
            }
        }
        if let raw = try number32("flags") { flags = MapDMA.Flags(rawValue: raw) }
        return MapDMA(argsz: try number32("argsz") ?? MapDMA.structSize, flags: flags, vaddr: vaddr, iova: iova, size: size)
    }

    mutating func unmap() throws(LineError) -> UnmapDMA {
        try collect(["iova=", "size=", "vaddr-only", "dirty", "pgsize=", "bitmap-size=", "argsz=", "flags="])
        let iova = try requiredNumber("iova"), size = try requiredNumber("size")
        var flags: UnmapDMA.Flags = bare["vaddr-only"] != nil ? .vaddr : []
        var bitmap: DMABitmap?
        if bare["dirty"] != nil {
            flags.insert(.getDirtyBitmap)
            let pgsize = try requiredNumber("pgsize")
            let bytes = try number("bitmap-size") ?? defaultBitmapSize(size: size, pgsize: pgsize)
            bitmap = DMABitmap(pgsize: pgsize, size: bytes)
        } else {
            try only(keyed["pgsize"]?.word, with: "dirty")
            try only(keyed["bitmap-size"]?.word, with: "dirty")
        }
        if let raw = try number32("flags") { flags = UnmapDMA.Flags(rawValue: raw) }
        return UnmapDMA(argsz: try number32("argsz"), flags: flags, iova: iova, size: size, bitmap: bitmap)
    }

    mutating func unmapAll() throws(LineError) -> UnmapDMA {
        try collect(["iova=", "size=", "vaddr-only", "argsz=", "flags="])
        var flags: UnmapDMA.Flags = bare["vaddr-only"] != nil ? [.all, .vaddr] : .all
        if let raw = try number32("flags") { flags = UnmapDMA.Flags(rawValue: raw) }
        return UnmapDMA(argsz: try number32("argsz"), flags: flags, iova: try number("iova") ?? 0, size: try number("size") ?? 0)
    }

    mutating func check() throws(LineError) -> Check {
        try collect(["locked=", "mappings=", "ptes=", "domain="])
        let given = ["locked", "mappings", "ptes"].compactMap { keyed[Substring($0)] }.sorted { $0.word.column < $1.word.column }
        guard let kv = given.first else { throw missing("one of locked=, mappings=, ptes=") }
        if given.count > 1 {
            throw LineError(given[1].word.column, "expected only one of locked=, mappings=, ptes=, found \(quoted(given[1].word.text))")
        }
        if keyed["ptes"] == nil { try only(keyed["domain"]?.word, with: "ptes=") }
        switch kv.word.text.prefix(while: { $0 != "=" }) {
        case "locked": return .locked(try VFIOTrace.number(kv.value, at: kv.valueColumn))
        case "mappings": return .mappings(try VFIOTrace.number(kv.value, at: kv.valueColumn))
        default:
            let counts = try pteCounts(kv.value, at: kv.valueColumn)
            var domain: String?
            if let d = keyed["domain"] { domain = try domainName(d.value, at: d.valueColumn) }
            return .ptes(counts, domain: domain)
        }
    }
}

/// The bitmap a `dirty` unmap gets when no `bitmap-size=` is written: enough
/// bits for every page of the range (none when `pgsize` is 0).
func defaultBitmapSize(size: UInt64, pgsize: UInt64) -> UInt64 {
    pgsize == 0 ? 0 : DMABitmap.bytesNeeded(pages: size / pgsize)
}

/// `pgsize=4K` → `pgsize=`; `dirty` → `dirty`.
func firstPart(_ word: Substring) -> String {
    guard let eq = word.utf8.firstIndex(of: UInt8(ascii: "=")) else { return String(word) }
    return String(word[...eq])
}

/// `argsz=` or `one of iova=, size=`.
func oneOf(_ items: [String]) -> String {
    items.count == 1 ? items[0] : "one of " + items.joined(separator: ", ")
}

/// The answer after `=>`.
func parseAnswer(rule: AnswerRule, arrow: Token, tokens: ArraySlice<Token>) throws(LineError) -> Answer {
    if let why = rule.refusal { throw LineError(arrow.column, "expected end of line (\(why)), found '=>'") }
    guard let first = tokens.first else { throw LineError(arrow.endColumn, "expected an answer, found end of line") }
    if first.isArrow { throw LineError(first.column, "expected an answer, found '=>'") }
    if let second = tokens.first(where: \.isArrow) { throw LineError(second.column, "expected end of line, found '=>'") }
    var rest = tokens.dropFirst()
    let status: Answer.Status
    if first.text == "ok" && !rule.value {
        status = .ok
    } else if rule.fieldsAlone && first.text.utf8.contains(UInt8(ascii: "=")) {
        status = .ok
        rest = tokens
    } else if rule.value, let d = first.text.utf8.first, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") {
        status = .value(try number(first.text, at: first.column))
    } else if let e = Errno(name: String(first.text)) {
        status = .errno(e)
    } else if first.text.utf8.count > 1, first.text.utf8.first == UInt8(ascii: "E"),
              first.text.utf8.allSatisfy({ ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) }) {
        throw LineError(first.column, "expected a Linux errno name, found \(quoted(first.text))")
    } else {
        let what = rule.value ? "a number or an errno" : rule.fieldsAlone ? "ok, an errno or key=value fields" : "ok or an errno"
        throw LineError(first.column, "expected \(what), found \(quoted(first.text))")
    }
    if case .ok = status {} else if let w = rest.first {
        throw LineError(w.column, "expected end of line, found \(quoted(w.text))")
    }
    var fields: [AnswerField] = []
    var seen: Set<Substring> = []
    for w in rest {
        guard let eq = w.text.utf8.firstIndex(of: UInt8(ascii: "=")),
              rule.fields.contains(where: { $0 == w.text[..<eq] })
        else {
            if rule.fields.isEmpty {
                throw LineError(w.column, "expected end of line (the \(rule.verb) answer takes no keys), found \(quoted(w.text))")
            }
            let keys = rule.fields.map { $0 + "=" }.joined(separator: ", ")
            throw LineError(w.column, "expected a key of the \(rule.verb) answer (\(keys)), found \(quoted(w.text))")
        }
        let key = w.text[..<eq]
        let value = w.text[w.text.utf8.index(after: eq)...]
        let column = w.column + key.unicodeScalars.count + 1
        guard seen.insert(key).inserted else { throw LineError(w.column, "expected at most one \(key)=, found \(quoted(w.text))") }
        switch key {
        case "size": fields.append(.size(try number(value, at: column)))
        case "pgsizes": fields.append(.pgsizes(try pageSizes(value, at: column)))
        case "iova": fields.append(.iova(try value == "none" ? nil : ranges(value, at: column)))
        case "dma-avail": fields.append(.dmaAvail(try value == "none" ? nil : number32(value, at: column)))
        default: fields.append(.argsz(try number32(value, at: column)))
        }
    }
    return Answer(status, fields: fields)
}

import VFIOCore

/// The words of one statement after its verb.
///
/// `collect` checks the words once, in line order: each must be one the
/// statement accepts, and appear once. Every later look-up (`keyed`,
/// `bare`) finds its word among those few by name.
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
    var arrow: Token?
    /// Offset of `end of line` when no `=>` follows the words.
    var lineEnd: Int

    /// The words checked by `collect` are `tokens[collectedStart..<
    /// collectedEnd]`, in line order: each accepted, each once.
    var collectedStart = 0
    var collectedEnd = 0
    /// Where each key's word is among the collected words (an offset from
    /// `collectedStart`), by `Key.rawValue`; -1 for a key the line lacks.
    /// Inline, so a line allocates nothing for it.
    var slots = InlineArray<40, Int8>(repeating: -1)
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

    /// The statement whose words (after its verb) are `tokens[words]`.
    init(tokens: [Token], words: Range<Int>, arrow: Token?, lineEnd: Int) {
        self.tokens = tokens; next = words.lowerBound; wordsEnd = words.upperBound
        self.arrow = arrow; self.lineEnd = lineEnd
    }

    /// The next word not taken yet, if any.
    @inline(__always) var nextWord: Token? { next < wordsEnd ? tokens[next] : nil }

    /// The words `collect` checked, in line order.
    var collected: ArraySlice<Token> { tokens[collectedStart..<collectedEnd] }

    // MARK: Words

    /// An error for something missing at the end of the statement.
    func missing(_ what: String) -> LineError {
        if let arrow { return LineError(arrow.text.start, "expected \(what), found '=>'") }
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

    /// Checks the remaining words, in line order: each `key=value` or bare
    /// word must be in `list` and appear once. They are then looked up
    /// with `keyed` and `bare`.
    ///
    /// - Complexity: O(k·a) for k words and a accepted keys.
    mutating func collect(_ list: WordList) throws(LineError) {
        for offset in 0..<(wordsEnd - next) {
            let w = tokens[next + offset]
            guard let key = list.key(w.name) else {
                throw LineError(w.text.start, "expected \(list.oneOf), found \(quoted(w.text))")
            }
            guard !has(key) else {
                throw LineError(w.text.start, "expected at most one \(key.name), found \(quoted(w.text))")
            }
            slots[Int(key.rawValue)] = Int8(offset)
        }
        (collectedStart, collectedEnd) = (next, wordsEnd)
        next = wordsEnd
    }

    // The look-ups below are inlined into each statement's parser: called,
    // each copied the whole parser (a mutating caller's `self`) first.

    /// Whether `collect` found `key`.
    @inline(__always) func has(_ key: Key) -> Bool { slots[Int(key.rawValue)] >= 0 }

    /// The collected `key=value` word of `key`, if any.
    @inline(__always) func keyed(_ key: Key) -> KeyValue? {
        bare(key).map { KeyValue(word: $0, value: $0.value) }
    }

    /// The collected bare word `key`, if any.
    @inline(__always) func bare(_ key: Key) -> Token? {
        let offset = Int(slots[Int(key.rawValue)])
        return offset < 0 ? nil : tokens[collectedStart + offset]
    }

    @inline(__always) func required(_ key: Key) throws(LineError) -> KeyValue {
        guard let kv = keyed(key) else { throw missing("\(key.name)") }
        return kv
    }

    @inline(__always) func number(_ key: Key) throws(LineError) -> UInt64? {
        guard let kv = keyed(key) else { return nil }
        return try VFIOTrace.number(kv.value)
    }

    @inline(__always) func number32(_ key: Key) throws(LineError) -> UInt32? {
        guard let kv = keyed(key) else { return nil }
        return try VFIOTrace.number32(kv.value)
    }

    @inline(__always) func requiredNumber(_ key: Key) throws(LineError) -> UInt64 {
        try VFIOTrace.number(try required(key).value)
    }

    @inline(__always) func yesNo(_ key: Key, default value: Bool) throws(LineError) -> Bool {
        guard let kv = keyed(key) else { return value }
        return try VFIOTrace.yesNo(kv.value)
    }

    /// `KEY= only with OTHER`: a word that needs another.
    @inline(__always) func only(_ word: Token?, with other: StaticString) throws(LineError) {
        if let word { throw onlyError(word, other) }
    }

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

    mutating func parseKind(verb: Verb, at verbToken: Token, firstOperation: Int?,
                            declared: inout Declared) throws(LineError) -> (Statement.Kind, AnswerRule) {
        switch verb {
        case .iommu:
            return try iommuStatement(verb: verb, at: verbToken, declared: &declared)

        case .container:
            return try containerStatement(verb: verb, at: verbToken, firstOperation: firstOperation, declared: &declared)

        case .kernel:
            return try kernelStatement(verb: verb, at: verbToken, firstOperation: firstOperation)

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
            return try capIPCLockStatement()

        case .dmaEntryLimit:
            let w = try operand("a number")
            let limit = try VFIOTrace.number32(w.text)
            try end()
            return (.dmaEntryLimit(limit), .none("dma-entry-limit takes no answer"))

        case .domain:
            return try domainStatement(verb: verb, firstOperation: firstOperation, declared: &declared)

        case .detach:
            return try detachStatement(verb: verb, firstOperation: firstOperation, declared: &declared)

        case .memory:
            return try memoryStatement(declared: &declared)

        case .map:
            try collect(Self.mapWords)
            let m = try map()
            // Most lines have neither word: no call then.
            if has(.repeat) || has(.step) { try repeatWords(size: m.size, iova: m.iova, vaddr: m.vaddr) }
            return (.map(m), .status(verb))

        case .unmap:
            var rule = AnswerRule.status(verb)
            try collect(Self.unmapWords)
            let u = try unmap()
            rule.fields = AnswerKey.size.bit | (u.bitmap != nil ? AnswerKey.dirty.bit : 0)
            if has(.repeat) || has(.step) { try repeatWords(size: u.size, iova: u.iova, vaddr: nil) }
            return (.unmap(u), rule)

        case .unmapAll:
            var rule = AnswerRule.status(verb)
            rule.fields = AnswerKey.size.bit
            return (.unmap(try unmapAll()), rule)

        case .info:
            return try infoStatement(verb: verb)

        case .extension:
            return try extensionStatement(verb: verb)

        case .dirty:
            return try dirtyStatement(verb: verb)

        case .check:
            return try checkStatement(verb: verb, declared: declared)

        case .show:
            return try showStatement()
        }
    }

    /// `iommu TYPE`: once per trace, before the first operation.
    mutating func iommuStatement(verb: Verb, at verbToken: Token, declared: inout Declared) throws(LineError) -> (Statement.Kind, AnswerRule) {
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
    }

    /// `container KIND` (the first container's kind) or `container NAME [KIND]` (switch to another container).
    mutating func containerStatement(verb: Verb, at verbToken: Token, firstOperation: Int?, declared: inout Declared) throws(LineError) -> (Statement.Kind, AnswerRule) {
        let w = try operand("one of type1, iommufd, or a container name")
        let kind: ContainerKind
        if w.text == "type1" { kind = .type1 } else if w.text == "iommufd" { kind = .iommufd } else {
            // `container NAME [KIND]`: another container of the process.
            if w.hasEquals { throw LineError(w.text.start, "expected one of type1, iommufd, or a container name, found \(quoted(w.text))") }
            let name = try domainName(w.text)
            // Unwritten, the kind is the one the container was opened
            // as (type1 for a new one; `c0`'s may come from the run).
            var named: ContainerKind? = nil
            if let k = nextWord {
                next += 1
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
    }

    /// `kernel VERSION`: a known version, before the first operation.
    mutating func kernelStatement(verb: Verb, at verbToken: Token, firstOperation: Int?) throws(LineError) -> (Statement.Kind, AnswerRule) {
        let known = "a kernel version \(KernelVersion.oldestKnown) or newer (6.8, 6.12.38, 6.12.38+deb12-amd64)"
        let w = try operand(known)
        guard let version = strictVersion(w.text), version.isKnown else {
            throw LineError(w.text.start, "expected \(known), found \(quoted(w.text))")
        }
        try end()
        try before(verb, verbToken, firstOperation)
        return (.kernel(version), .none("kernel takes no answer"))
    }

    /// `cap-ipc-lock on|off`.
    mutating func capIPCLockStatement() throws(LineError) -> (Statement.Kind, AnswerRule) {
        let w = try operand("one of on, off")
        guard w.text == "on" || w.text == "off" else {
            throw LineError(w.text.start, "expected one of on, off, found \(quoted(w.text))")
        }
        try end()
        return (.capIPCLock(w.text == "on"), .none("cap-ipc-lock takes no answer"))
    }

    /// `domain NAME ...`: a group attached once until detached.
    mutating func domainStatement(verb: Verb, firstOperation: Int?, declared: inout Declared) throws(LineError) -> (Statement.Kind, AnswerRule) {
        let nameToken = nextWord
        let spec = try domain()
        if let taken = declared.attached.first(where: { $0.name == spec.name }), arrow == nil, let nameToken {
            throw LineError(nameToken.text.start, "expected a group name not in the container, found \(quoted(nameToken.text)) (attached on line \(taken.line); detach it first)")
        }
        declared.attached.append((spec.name, declared.line))
        declared.named.insert(spec.name)
        if declared.firstDomainLine == nil { declared.firstDomainLine = declared.line }
        if firstOperation == nil { declared.domainBeforeStart = true }
        return (.domain(spec), firstOperation == nil ? .none("domain before the first operation takes no answer") : .status(verb))
    }

    /// `detach NAME`.
    mutating func detachStatement(verb: Verb, firstOperation: Int?, declared: inout Declared) throws(LineError) -> (Statement.Kind, AnswerRule) {
        let w = try operand("a domain name")
        let group = try domainName(w.text)
        try end()
        declared.attached.removeAll { $0.name == group }
        return (.detach(group), firstOperation == nil ? .none("detach before the first operation takes no answer") : .status(verb))
    }

    /// `memory ...`: a region apart from every earlier one.
    mutating func memoryStatement(declared: inout Declared) throws(LineError) -> (Statement.Kind, AnswerRule) {
        let m = try memory()
        if let other = declared.addMemory(start: m.vaddr, last: m.vaddr + (m.size - 1)), let v = keyed(.vaddr) {
            throw LineError(v.word.text.start, "expected memory apart from the region on line \(other.line) (\(formatAddress(other.start))-\(formatAddress(other.last))), found \(quoted(v.word.text)) size=\(formatSize(m.size))")
        }
        return (.memory(m), .none("memory takes no answer"))
    }

    /// `info [argsz=N]`: its answer's fields stand alone (no status needed).
    mutating func infoStatement(verb: Verb) throws(LineError) -> (Statement.Kind, AnswerRule) {
        try collect(Self.infoWords)
        var rule = AnswerRule.status(verb)
        rule.fields = AnswerKey.pgsizes.bit | AnswerKey.iova.bit | AnswerKey.dmaAvail.bit | AnswerKey.argsz.bit
        rule.fieldsAlone = true
        return (.info(argsz: try number32(.argsz)), rule)
    }

    /// `extension NAME|N`: its answer is a value.
    mutating func extensionStatement(verb: Verb) throws(LineError) -> (Statement.Kind, AnswerRule) {
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
    }

    /// `dirty start|stop|get ...` or `dirty flags=N` (raw flags).
    mutating func dirtyStatement(verb: Verb) throws(LineError) -> (Statement.Kind, AnswerRule) {
        // `dirty flags=N` alone sends raw flags (for testing bad ones).
        var flags: DirtyPages.Flags = []
        if let first = nextWord, first.text.hasPrefix("flags=") {
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
    }

    /// `check ...`: a named domain must be one of the trace's.
    mutating func checkStatement(verb: Verb, declared: Declared) throws(LineError) -> (Statement.Kind, AnswerRule) {
        try collect(Self.checkWords)
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
    }

    /// `show [locked] [mappings] [ptes] [iova]`: everything when none is named.
    mutating func showStatement() throws(LineError) -> (Statement.Kind, AnswerRule) {
        var items: ShowItems = []
        try collect(Self.showWords)
        for (key, item) in [(Key.showLocked, ShowItems.locked), (.showMappings, .mappings), (.showPtes, .ptes), (.showIova, .iova)]
        where bare(key) != nil {
            items.insert(item)
        }
        return (.show(items.isEmpty ? .all : items), .none("show takes no answer; it prints the state"))
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
        try Self.multiple(vaddr, vaddrKV.value, page: page)
        guard size != 0 else { throw LineError(sizeKV.value.start, "expected a nonzero size, found \(quoted(sizeKV.value))") }
        try Self.multiple(size, sizeKV.value, page: page)
        guard !vaddr.addingReportingOverflow(size - 1).overflow else {
            throw LineError(sizeKV.value.start, "expected a size that ends the region at or below 0xffffffffffffffff, found \(quoted(sizeKV.value))")
        }
        let pfnmap = bare(.pfnmap)
        let phys = keyed(.phys)
        var placement = try physPlacement(phys, seed: seed, vaddr: vaddr, size: size, page: page)
        if let t = bare(.thp) {
            try thpAlone(t, phys: phys, pfnmap: pfnmap, page: page)
            placement = .thp
        }
        try checkPieces(placement, size: size, page: page, pfnmap: pfnmap, phys: phys, sizeText: sizeKV.value)
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

    /// Where `phys=` puts the region's pages (`realistic` without it).
    func physPlacement(_ phys: KeyValue?, seed: UInt64?, vaddr: UInt64, size: UInt64, page: UInt64) throws(LineError) -> MemorySpec.Placement {
        var placement = MemorySpec.Placement.realistic
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
                try Self.multiple(chunk, text, page: page)
                placement = .layout(.chunks(size: chunk, base: base))
            } else {
                let address = try VFIOTrace.number(p.value, expected: "an address, contiguous, scattered, reversed or chunks:SIZE")
                try Self.multiple(address, p.value, page: page)
                guard !address.addingReportingOverflow(size - 1).overflow else {
                    throw LineError(p.value.start, "expected an address that ends the region at or below 0xffffffffffffffff, found \(quoted(p.value))")
                }
                placement = .layout(.contiguous(base: address))
            }
        }
        return placement
    }

    /// `thp` stands alone: transparent hugepages back anonymous 4K memory
    /// only, and are themselves the layout.
    func thpAlone(_ t: Token, phys: KeyValue?, pfnmap: Token?, page: UInt64) throws(LineError) {
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
    }

    /// At most `maxScatteredPieces` physically separate pieces where the
    /// model would map them one by one.
    func checkPieces(_ placement: MemorySpec.Placement, size: UInt64, page: UInt64, pfnmap: Token?, phys: KeyValue?, sizeText: Text) throws(LineError) {
        // Pages, hugepages and chunks of a power-of-two size are mapped as
        // one repeat however many there are (`PTERepeat`); chunks of another
        // size may be split by the domain's page sizes differently from one
        // chunk to the next, so each is a page-table run of its own: cap
        // them so a hostile trace cannot ask for terabytes of runs.
        guard case .layout(.chunks(let chunk, _)) = placement, chunk & (chunk - 1) != 0 else { return }
        let pieces = size / chunk
        if pieces > Self.maxScatteredPieces, let p = phys {
            throw LineError(p.value.start, "expected at most \(Self.maxScatteredPieces) physically separate pieces of a size that is not a power of two, found \(pieces) with \(quoted(p.value))")
        }
    }

    /// A `memory` address or size must be a multiple of its page size.
    static func multiple(_ value: UInt64, _ text: Text, page: UInt64) throws(LineError) {
        if value % page != 0 {
            throw LineError(text.start, "expected a multiple of the page size \(formatSize(page)), found \(quoted(text))")
        }
    }
    /// The most chunks of a size that is not a power of two a `memory`
    /// statement may ask for.
    static let maxScatteredPieces: UInt64 = 1 << 24

    // `map`, `unmap` and `check` read the words their caller collected.
    // They do not change the parser: a mutating function copied the whole
    // parser (175 bytes) before each look-up it made.

    func map() throws(LineError) -> MapDMA {
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

    func unmap() throws(LineError) -> UnmapDMA {
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

    func check() throws(LineError) -> Check {
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
        var given: Key?
        for i in collectedStart..<collectedEnd {
            let w = tokens[i]
            guard let key = Self.checkKinds.first(where: { bare($0)?.text.start == w.text.start }) else { continue }
            if given != nil {
                throw LineError(w.text.start, "expected only one of locked=, mappings=, ptes=, found \(quoted(w.text))")
            }
            given = key
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

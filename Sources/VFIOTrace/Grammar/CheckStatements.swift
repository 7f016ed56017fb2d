import VFIOCore

// `check` and `show`: what the state must be, and what it is.

extension StatementSyntax {
    /// `check pte`'s answer is the leaf size: part of the check, and required.
    static let check = StatementSyntax(
        verb: .check,
        keys: [
            KeySyntax(.locked, .text), KeySyntax(.mappings, .text), KeySyntax(.ptes, .text),
            KeySyntax(.pte, .bare), KeySyntax(.iova, .text), KeySyntax(.domain, .text),
        ],
        answer: .none("check takes no answer"), table: .checks,
        rows: [
            ReferenceRow(#"`check locked=SIZE`"#, #"the process's locked memory (`VmLck`)"#, #"holds or fails"#),
            ReferenceRow(#"`check mappings=N`"#, #"the number of DMA mappings (`vfio_dma`) in the container"#, #"holds or fails"#),
            ReferenceRow(#"`check ptes=4K:N,2M:N,1G:N [domain=NAME]`"#, #"IOMMU leaf page-table entries by page size in the domain of group NAME, or in every domain together; sizes not listed must have none (`ptes=none`). NAME must be a group of this trace (`d0` when the trace declares none)"#, #"holds or fails"#),
            ReferenceRow(#"`check pte iova=ADDR [domain=NAME] => SIZE\|none`"#, #"the page size of the IOMMU leaf entry that translates ADDR in the domain of group NAME (the only domain when no NAME; with several, name one), `none` when no entry does (what the kernel selftests read from the IOMMU's debugfs). SIZE is a power of two; the answer is required. A group without a domain (emulated) has no entries. On a real kernel observable where `check ptes=` is (the lane's intel-, amd- and virtio-iommu guests, from the host)"#, #"holds or fails"#),
        ])

    static let show = StatementSyntax(
        verb: .show,
        keys: [KeySyntax(.showLocked, .bare), KeySyntax(.showMappings, .bare), KeySyntax(.showPtes, .bare), KeySyntax(.showIova, .bare)],
        answer: .none("show takes no answer; it prints the state"), table: .checks,
        rows: [ReferenceRow(#"`show [locked] [mappings] [ptes] [iova]`"#, #"prints the state here, never fails: locked memory against `RLIMIT_MEMLOCK`, mappings against `dma_entry_limit` and `dma_avail`, PTEs by size per domain, the valid IOVA ranges and page sizes; `show` alone prints all of them"#, #"prints"#)])

    /// The keys of which a `check` takes exactly one.
    static let checkKinds: [Key] = [.locked, .mappings, .ptes]
}

extension StatementParser {
    /// `check ...`: a named domain must be one of the trace's.
    mutating func readCheck(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        try readKeys(.check)
        let c = try check()
        var named: String? = nil
        if case .ptes(_, let d) = c { named = d } else if case .pte(_, _, let d) = c { named = d }
        if let domain = named, !declared.named.contains(domain),
           declared.domainBeforeStart || domain != DomainSpec.default.name, let d = keyed(.domain) {
            let names = (declared.domainBeforeStart ? [] : [DomainSpec.default.name]) + declared.named.sorted()
            let known = names.isEmpty ? "no domain is declared" : "declared: \(names.joined(separator: ", "))"
            throw LineError(d.value.start, "expected the name of a domain of this trace (\(known)), found \(quoted(d.value))")
        }
        if case .pte = c { rule = AnswerRule(refusal: nil, verb: .check, leafSize: true) }
        return .check(c)
    }

    func check() throws(LineError) -> Check {
        if has(.pte) {
            // `check pte iova=X`: the leaf size comes after `=>` (filled
            // in by `parseLeafAnswer`).
            for key in StatementSyntax.checkKinds {
                if let other = keyed(key) { throw LineError(other.word.text.start, "expected only one of locked=, mappings=, ptes=, pte, found \(quoted(other.word.text))") }
            }
            guard let iova = keyed(.iova) else { throw missing("iova= after pte") }
            var domain: String?
            if let d = keyed(.domain) { domain = try domainName(d.value) }
            return .pte(iova: try VFIOTrace.number(iova.value), leaf: nil, domain: domain)
        }
        try only(keyed(.iova)?.word, with: "pte")
        // The first of locked=, mappings=, ptes= in the line is the check;
        // a second one is the error. `collected` is in line order.
        var given: Key?
        for i in collectedStart..<wordsEnd {
            let w = tokens[i]
            guard let key = StatementSyntax.checkKinds.first(where: { bare($0)?.text.start == w.text.start }) else { continue }
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

    /// `show [locked] [mappings] [ptes] [iova]`: everything when none is named.
    mutating func readShow(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        var items: ShowItems = []
        try readKeys(.show)
        for (key, item) in [(Key.showLocked, ShowItems.locked), (.showMappings, .mappings), (.showPtes, .ptes), (.showIova, .iova)]
        where has(key) {
            items.insert(item)
        }
        return .show(items.isEmpty ? .all : items)
    }
}

/// The printed words of `check` and `show`.
func checkWords(_ kind: Statement.Kind) -> [String]? {
    switch kind {
    case .show(let items):
        return ["show"] + (items == .all ? [] : ShowItems.names.filter { items.contains($0.1) }.map(\.0))
    case .check(.locked(let bytes)): return printWords(.check, ["check"], [.locked: formatSize(bytes)])
    case .check(.mappings(let n)): return printWords(.check, ["check"], [.mappings: String(n)])
    case .check(.ptes(let counts, let domain)):
        return printWords(.check, ["check"], [.ptes: counts.description, .domain: domain].compactMapValues { $0 })
    case .check(.pte(let iova, let leaf, let domain)):
        return printWords(.check, ["check"], [.pte: "", .iova: formatAddress(iova), .domain: domain].compactMapValues { $0 })
            + ["=>", leaf.map(formatSize) ?? "none"]
    default:
        return nil
    }
}

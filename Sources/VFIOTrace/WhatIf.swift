import VFIOCore

/// A change to a trace's setup, made without editing the file: "what if
/// this recording ran on kernel 6.1, with 64 MiB of memlock, a
/// dma_entry_limit of 100, or an IOMMU with only 4 KiB pages?". Applied to
/// a parsed trace, it replaces the setup statements it names (inserting
/// them before the first statement when the trace has none) and leaves
/// every operation and written answer alone, so a replay shows which
/// answers change and why.
public struct WhatIf: Sendable, Hashable {
    public var kernel: KernelVersion?
    /// `memlock`: `.some(nil)` is unlimited.
    public var memlock: UInt64??
    public var capIPCLock: Bool?
    public var dmaEntryLimit: UInt32?
    /// The page sizes of every domain.
    public var pgsizes: PageSizes?

    public init(kernel: KernelVersion? = nil, memlock: UInt64?? = nil, capIPCLock: Bool? = nil,
                dmaEntryLimit: UInt32? = nil, pgsizes: PageSizes? = nil) {
        self.kernel = kernel; self.memlock = memlock; self.capIPCLock = capIPCLock
        self.dmaEntryLimit = dmaEntryLimit; self.pgsizes = pgsizes
    }

    public var isEmpty: Bool { self == WhatIf() }

    /// The changes as trace statements (`kernel 6.1`, `memlock 64M`), for
    /// the report's heading.
    public var statements: [String] {
        var out: [String] = []
        if let kernel { out.append(printStatement(Statement(line: 0, column: 0, kind: .kernel(kernel)))) }
        if let memlock { out.append(printStatement(Statement(line: 0, column: 0, kind: .memlock(memlock)))) }
        if let capIPCLock { out.append(printStatement(Statement(line: 0, column: 0, kind: .capIPCLock(capIPCLock)))) }
        if let dmaEntryLimit { out.append(printStatement(Statement(line: 0, column: 0, kind: .dmaEntryLimit(dmaEntryLimit)))) }
        if let pgsizes { out.append("domain * pgsizes=" + formatPageSizes(pgsizes)) }
        return out
    }

    /// Reads one option's value as the trace language reads the statement
    /// it stands for (`--memlock 64M` is `memlock 64M`), so the values and
    /// the messages are the language's own. `option` is the statement's
    /// verb: kernel, memlock, cap-ipc-lock, dma-entry-limit or pgsizes.
    public mutating func set(_ option: String, _ value: String) -> Result<Void, ParseFailure> {
        let line = option == "pgsizes" ? "domain whatif pgsizes=\(value)" : "\(option) \(value)"
        switch parseTrace(line + "\n", file: "--\(option)") {
        case .failure(let f): return .failure(f)
        case .success(let t):
            switch t.statements.first?.kind {
            case .kernel(let v)?: kernel = v
            case .memlock(let m)?: memlock = .some(m)
            case .capIPCLock(let on)?: capIPCLock = on
            case .dmaEntryLimit(let n)?: dmaEntryLimit = n
            case .domain(let spec)?: pgsizes = spec.pgsizes
            default: break
            }
            return .success(())
        }
    }

    /// The trace with these changes made.
    public func apply(to trace: Trace) -> Trace {
        var out = trace
        var missing: [Statement.Kind] = []
        func replace(_ make: Statement.Kind, where matches: (Statement.Kind) -> Bool) {
            var found = false
            for i in out.statements.indices where matches(out.statements[i].kind) {
                out.statements[i].kind = make
                out.statements[i].comment = "what if (was: \(printStatement(Statement(line: 0, column: 0, kind: trace.statements[i].kind))))"
                out.statements[i].spellings = [:]
                found = true
            }
            if !found { missing.append(make) }
        }
        if let kernel { replace(.kernel(kernel)) { if case .kernel = $0 { true } else { false } } }
        if let memlock { replace(.memlock(memlock)) { if case .memlock = $0 { true } else { false } } }
        if let capIPCLock { replace(.capIPCLock(capIPCLock)) { if case .capIPCLock = $0 { true } else { false } } }
        if let dmaEntryLimit { replace(.dmaEntryLimit(dmaEntryLimit)) { if case .dmaEntryLimit = $0 { true } else { false } } }
        if let pgsizes {
            var any = false
            for i in out.statements.indices {
                guard case .domain(var spec) = out.statements[i].kind else { continue }
                spec.pgsizes = pgsizes
                // The page table holds what the domain now advertises; a
                // preset (`iommu=intel`) no longer fills either key.
                spec.leaves = nil
                spec.explicit.formUnion([.pgsizes, .leaves])
                out.statements[i].kind = .domain(spec)
                out.statements[i].spellings = [:]
                any = true
            }
            if !any { missing.append(.domain(DomainSpec(name: "d0", pgsizes: pgsizes))) }
        }
        // Statements the trace did not have go before its first statement
        // that is not a comment, where setup belongs.
        let at = out.statements.firstIndex { if case .comment = $0.kind { false } else if case .blank = $0.kind { false } else { true } } ?? out.statements.count
        let line = at < out.statements.count ? out.statements[at].line : 1
        out.statements.insert(contentsOf: missing.map { Statement(line: line, column: 1, kind: $0, comment: "what if") }, at: at)
        return out
    }
}

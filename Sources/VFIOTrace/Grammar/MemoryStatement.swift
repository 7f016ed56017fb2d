import VFIOCore

// `memory vaddr= size= ...`: process memory, its page size and where its
// pages lie physically.

extension StatementSyntax {
    static let memory = StatementSyntax(
        verb: .memory,
        keys: [
            KeySyntax(.vaddr, .number, required: true), KeySyntax(.size, .number, required: true),
            KeySyntax(.page, .text, printedDefault: "4K"), KeySyntax(.phys, .text), KeySyntax(.seed, .number),
            KeySyntax(.pfnmap, .bare), KeySyntax(.thp, .bare), KeySyntax(.populated, .yesNo, printedDefault: "yes"),
        ],
        answer: .none("memory takes no answer"), table: .setup,
        rows: [ReferenceRow(#"`memory vaddr=ADDR size=SIZE [page=4K\|2M\|1G] [phys=ADDR\|contiguous\|scattered\|reversed\|chunks:SIZE] [seed=N] [thp] [pfnmap] [populated=yes\|no]`"#, #"process memory that mappings may use: its page size and where its pages lie physically: contiguous from `phys=ADDR`; `contiguous`, one contiguous run placed 1 GiB apart from the regions before it (the default before issue 22: write it for memory that must be one run); `scattered`, each page away from its neighbours (placed by `seed=`, default the vaddr); `reversed`, pages in descending order; `chunks:SIZE`, physically contiguous chunks apart from each other. `seed=` is accepted with every layout. `thp` (4K pages only, not with `phys=` or `pfnmap`): anonymous memory on transparent hugepages, each 2 MiB-aligned 2 MiB block of the virtual range one contiguous hugepage apart from the others, the pages before the first block and after the last scattered. `pfnmap`: reserved frames, pinned but never charged: device memory (an mmap'd BAR), or (as `vfio-sim record` writes it) the shared zero page. `populated=no` (not with `pfnmap`): the pages are not there before the first pin (no `MAP_POPULATE`, no QEMU `prealloc`), so the first MAP_DMA over them faults each one in and zeroes it; it changes no answer, only the kernel time `vfio-sim plan --time` estimates (docs/COSTS.md). Regions may not overlap (an error naming the other line)"#, #"`page=4K`; without `phys=` as Linux lays memory out: 4K pages `scattered` (seed the vaddr), hugepages (`page=2M`, `1G`) each contiguous and apart from the others, `pfnmap` one contiguous run; scattered pages and hugepages of any number (a 12 TiB guest on 4K pages) are laid out by rule, never page by page; `chunks:SIZE` of a size that is not a power of two is mapped chunk by chunk, so more than 2^24 such chunks is an error; `populated=yes`"#)])
}

extension StatementParser {
    /// `memory ...`: a region apart from every earlier one.
    mutating func readMemory(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        let m = try memory()
        if let other = declared.addMemory(start: m.vaddr, last: m.vaddr + (m.size - 1)), let v = keyed(.vaddr) {
            throw LineError(v.word.text.start, "expected memory apart from the region on line \(other.line) (\(formatAddress(other.start))-\(formatAddress(other.last))), found \(quoted(v.word.text)) size=\(formatSize(m.size))")
        }
        return .memory(m)
    }

    mutating func memory() throws(LineError) -> MemorySpec {
        try readKeys(.memory)
        let vaddr = try requiredNumber(.vaddr), size = try requiredNumber(.size)
        guard let sizeKV = keyed(.size), let vaddrKV = keyed(.vaddr) else { throw missing(Key.size.name.string) }
        var page = PageSizes.pageSize
        if let p = keyed(.page) {
            guard case .success(let v) = parseNumber(p.value), v == 4096 || v == 2 << 20 || v == 1 << 30 else {
                throw LineError(p.value.start, "expected one of 4K, 2M, 1G, found \(quoted(p.value))")
            }
            page = v
        }
        let seed = number(.seed)
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
        let populated = yesNo(.populated, default: true)
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

}

/// `memory ...`: the placement as `phys=` or `thp`.
func memoryWords(_ m: MemorySpec) -> [String] {
    var values: [Key: String] = [.vaddr: formatAddress(m.vaddr), .size: formatSize(m.size), .page: formatSize(m.pageSize)]
    switch m.placement {
    case .realistic: break
    case .contiguous: values[.phys] = "contiguous"
    case .thp: values[.thp] = ""
    case .layout(.contiguous(let base)): values[.phys] = formatAddress(base)
    case .layout(.scattered(let seed)):
        values[.phys] = "scattered"
        if seed != m.vaddr { values[.seed] = String(seed) }
    // The language has no base for these: a parsed trace always has 4G.
    case .layout(.reversed): values[.phys] = "reversed"
    case .layout(.chunks(let size, _)): values[.phys] = "chunks:" + formatSize(size)
    // The language places transparent hugepages by the vaddr alone.
    case .layout(.thp): values[.thp] = ""
    // Observed frames come from a machine, never from a trace.
    case .layout(.observed): break
    }
    if m.pfnmap { values[.pfnmap] = "" }
    values[.populated] = m.populated ? "yes" : "no"
    return printWords(.memory, ["memory"], values)
}

import VFIOCore

// `map`, `unmap` and `unmap-all`: VFIO_IOMMU_MAP_DMA and UNMAP_DMA.

extension StatementSyntax {
    /// `repeat=N [step=SIZE]` of `map` and `unmap`.
    static let repetitionKeys = [KeySyntax(.repeat, .number), KeySyntax(.step, .number, needs: .repeat)]

    static let map = StatementSyntax(
        verb: .map,
        keys: [
            KeySyntax(.iova, .number, required: true), KeySyntax(.vaddr, .number, required: true),
            KeySyntax(.size, .number, required: true), KeySyntax(.prot, .text), KeySyntax(.vaddrOnly, .bare),
            // argsz: MapDMA.structSize unless written.
            KeySyntax(.argsz, .number32, printedDefault: "32", raw: true), KeySyntax(.flags, .number32, raw: true),
        ] + repetitionKeys,
        answer: .status(.map), table: .operations,
        rows: [
            ReferenceRow(#"`map iova=ADDR vaddr=ADDR size=SIZE prot=r\|w\|rw\|none [repeat=N [step=SIZE]]`"#, #"`VFIO_IOMMU_MAP_DMA`"#, #"`ok` or an errno"#),
            ReferenceRow(#"`map iova=ADDR vaddr=ADDR size=SIZE vaddr-only`"#, #"`MAP_DMA` with `VFIO_DMA_MAP_FLAG_VADDR` (a new vaddr for a mapping unmapped with `vaddr-only`)"#, #"`ok` or an errno"#),
        ])

    static let unmap = StatementSyntax(
        verb: .unmap,
        keys: [
            KeySyntax(.iova, .number, required: true), KeySyntax(.size, .number, required: true),
            KeySyntax(.vaddrOnly, .bare), KeySyntax(.dirty, .bare),
            KeySyntax(.pgsize, .number, required: true, needs: .dirty), KeySyntax(.bitmapSize, .number, needs: .dirty),
            KeySyntax(.argsz, .number32, raw: true), KeySyntax(.flags, .number32, raw: true),
        ] + repetitionKeys,
        answer: .status(.unmap, fields: [.size]), table: .operations,
        rows: [ReferenceRow(#"`unmap iova=ADDR size=SIZE [vaddr-only] [dirty pgsize=SIZE [bitmap-size=N]] [repeat=N [step=SIZE]]`"#, #"`VFIO_IOMMU_UNMAP_DMA` (with `VFIO_DMA_UNMAP_FLAG_VADDR`, or `GET_DIRTY_BITMAP`)"#, #"`ok size=SIZE` (the size the kernel writes back: the sum of the mappings removed), with `dirty`: `ok size=SIZE dirty=RANGES`; or an errno"#)])

    static let unmapAll = StatementSyntax(
        verb: .unmapAll,
        keys: [
            KeySyntax(.iova, .number, printedDefault: "0x0", raw: true), KeySyntax(.size, .number, printedDefault: "0", raw: true),
            KeySyntax(.vaddrOnly, .bare), KeySyntax(.argsz, .number32, raw: true), KeySyntax(.flags, .number32, raw: true),
        ],
        answer: .status(.unmapAll, fields: [.size]), table: .operations,
        rows: [ReferenceRow(#"`unmap-all [vaddr-only]`"#, #"`UNMAP_DMA` with `VFIO_DMA_UNMAP_FLAG_ALL`"#, #"`ok size=SIZE` or an errno"#)])
}

extension StatementParser {
    mutating func readMap(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        try readKeys(.map)
        let m = try map()
        // Most lines have neither word: no call then.
        if has(.repeat) { try repeatWords(size: m.size, iova: m.iova, vaddr: m.vaddr) }
        return .map(m)
    }

    mutating func readUnmap(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        try readKeys(.unmap)
        let u = try unmap()
        if u.bitmap != nil { rule.fields |= AnswerKey.dirty.bit }
        if has(.repeat) { try repeatWords(size: u.size, iova: u.iova, vaddr: nil) }
        return .unmap(u)
    }

    mutating func readUnmapAll(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        try readKeys(.unmapAll)
        var flags: UnmapDMA.Flags = has(.vaddrOnly) ? [.all, .vaddr] : .all
        if let raw = number32(.flags) { flags = UnmapDMA.Flags(rawValue: raw) }
        return .unmap(UnmapDMA(argsz: number32(.argsz), flags: flags, iova: number(.iova) ?? 0, size: number(.size) ?? 0))
    }

    // `map` and `unmap` read the words `readKeys` collected. They do not
    // change the parser: a mutating function copied the whole parser
    // before each look-up it made.

    @inline(__always) func map() throws(LineError) -> MapDMA {
        let iova = try requiredNumber(.iova), vaddr = try requiredNumber(.vaddr), size = try requiredNumber(.size)
        var flags: MapDMA.Flags
        switch (keyed(.prot), bare(.vaddrOnly)) {
        case (nil, nil):
            // Raw flags= stand in for prot= (for testing bad flags).
            guard has(.flags) else { throw missing("prot= or vaddr-only") }
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
        if let raw = number32(.flags) { flags = MapDMA.Flags(rawValue: raw) }
        return MapDMA(argsz: number32(.argsz) ?? MapDMA.structSize, flags: flags, vaddr: vaddr, iova: iova, size: size)
    }

    @inline(__always) func unmap() throws(LineError) -> UnmapDMA {
        let iova = try requiredNumber(.iova), size = try requiredNumber(.size)
        var flags: UnmapDMA.Flags = has(.vaddrOnly) ? .vaddr : []
        var bitmap: DMABitmap?
        if has(.dirty) {
            flags.insert(.getDirtyBitmap)
            let pgsize = try requiredNumber(.pgsize)
            let bytes = number(.bitmapSize) ?? defaultBitmapSize(size: size, pgsize: pgsize)
            bitmap = DMABitmap(pgsize: pgsize, size: bytes)
        }
        if let raw = number32(.flags) { flags = UnmapDMA.Flags(rawValue: raw) }
        return UnmapDMA(argsz: number32(.argsz), flags: flags, iova: iova, size: size, bitmap: bitmap)
    }

    /// `repeat=N` and `step=SIZE` of `map` and `unmap` (read with the
    /// statement's keys): at most `maxRepeat` times, and no advance may
    /// take an address past 2^64-1.
    mutating func repeatWords(size: UInt64, iova: UInt64, vaddr: UInt64?) throws(LineError) {
        guard let r = keyed(.repeat), let count = number(.repeat) else { return }
        guard count >= 1, count <= Self.maxRepeat else {
            throw LineError(r.value.start, "expected a repeat count from 1 to \(Self.maxRepeat), found \(quoted(r.value))")
        }
        let step = number(.step)
        let (advance, o) = (step ?? size).multipliedReportingOverflow(by: count - 1)
        if o || iova.addingReportingOverflow(advance).overflow || (vaddr ?? 0).addingReportingOverflow(advance).overflow {
            let at = keyed(.step)?.value ?? r.value
            throw LineError(at.start, "expected a repeat that keeps every address at or below 0xffffffffffffffff, found \(quoted(at))")
        }
        repetition = Statement.Repetition(count: count, step: step)
    }

    /// The most operations one `repeat=` may stand for.
    static let maxRepeat: UInt64 = 1 << 20
}

/// `map ...`: flags beyond what `prot=`/`vaddr-only` say as `flags=`.
func mapWords(_ m: MapDMA) -> [String] {
    var values: [Key: String] = [.iova: formatAddress(m.iova), .vaddr: formatAddress(m.vaddr), .size: formatSize(m.size)]
    var derived: MapDMA.Flags
    if m.flags == .vaddr {
        values[.vaddrOnly] = ""
        derived = .vaddr
    } else {
        derived = m.flags.intersection([.read, .write])
        switch derived {
        case .read: values[.prot] = "r"
        case .write: values[.prot] = "w"
        case [.read, .write]: values[.prot] = "rw"
        default: values[.prot] = "none"
        }
    }
    values[.argsz] = String(m.argsz)
    if m.flags != derived { values[.flags] = formatAddress(UInt64(m.flags.rawValue)) }
    return printWords(.map, ["map"], values)
}

/// `unmap ...` or `unmap-all ...`: flags beyond the words as `flags=`.
func unmapWords(_ u: UnmapDMA) -> [String] {
    var values: [Key: String] = [.iova: formatAddress(u.iova), .size: formatSize(u.size)]
    let all = u.flags.contains(.all) && u.bitmap == nil
    var derived: UnmapDMA.Flags = all ? .all : []
    if u.flags.contains(.vaddr) {
        values[.vaddrOnly] = ""
        derived.insert(.vaddr)
    }
    if let b = u.bitmap {
        values[.dirty] = ""
        values[.pgsize] = formatSize(b.pgsize)
        if b.size != defaultBitmapSize(size: u.size, pgsize: b.pgsize) { values[.bitmapSize] = String(b.size) }
        derived.insert(.getDirtyBitmap)
    }
    // The default argsz grows with the bitmap: left out here, not by the grammar.
    if u.argsz != UnmapDMA(flags: [], iova: 0, size: 0, bitmap: u.bitmap).argsz { values[.argsz] = String(u.argsz) }
    if u.flags != derived { values[.flags] = formatAddress(UInt64(u.flags.rawValue)) }
    return all ? printWords(.unmapAll, ["unmap-all"], values) : printWords(.unmap, ["unmap"], values)
}

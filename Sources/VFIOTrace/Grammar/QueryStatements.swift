import VFIOCore

// `info`, `extension` and `dirty`: VFIO_IOMMU_GET_INFO,
// VFIO_CHECK_EXTENSION and VFIO_IOMMU_DIRTY_PAGES.

extension StatementSyntax {
    /// Its answer's keys stand alone (no status needed).
    static let info = StatementSyntax(
        verb: .info, keys: [KeySyntax(.argsz, .number32)],
        answer: { var rule = AnswerRule.status(.info, fields: [.pgsizes, .iova, .dmaAvail, .argsz]); rule.fieldsAlone = true; return rule }(),
        table: .operations,
        rows: [ReferenceRow(#"`info [argsz=N]`"#, #"`VFIO_IOMMU_GET_INFO` with its capability chain"#, #"`pgsizes=LIST iova=RANGE,... dma-avail=N argsz=N`; the keys may stand without `ok`"#)])

    /// Its answer is a value (the ioctl's return).
    static let `extension` = StatementSyntax(
        verb: .extension, keys: [],
        answer: { var rule = AnswerRule.status(.extension); rule.value = true; return rule }(),
        table: .operations,
        rows: [ReferenceRow(#"`extension NAME`"#, #"`VFIO_CHECK_EXTENSION`: `type1`, `type1v2`, `dma-cc`, `unmap-all`, `update-vaddr`, `nesting`, `spapr`, `spapr-v2`, `eeh`, `noiommu`, or a number"#, #"`0`, `1` (the return value) or an errno"#)])

    /// `dirty start|stop`, or `dirty flags=N` alone (raw flags); `dirty
    /// get` has keys of its own (`dirtyGet`).
    static let dirty = StatementSyntax(
        verb: .dirty, keys: [KeySyntax(.flags, .number32, raw: true)], answer: .status(.dirty), table: .operations,
        rows: [
            ReferenceRow(#"`dirty start` / `dirty stop`"#, #"`VFIO_IOMMU_DIRTY_PAGES` START / STOP"#, #"`ok` or an errno"#),
            ReferenceRow(#"`dirty get iova=ADDR size=SIZE pgsize=SIZE [bitmap-size=N]`"#, #"`DIRTY_PAGES` GET_BITMAP"#, #"`ok [dirty=RANGES]` or an errno"#),
        ],
        otherForms: [dirtyGet])

    /// `dirty get iova= size= pgsize= [bitmap-size=]`: GET_BITMAP.
    static let dirtyGet = StatementSyntax(
        verb: .dirty,
        keys: [
            KeySyntax(.iova, .number, required: true), KeySyntax(.size, .number, required: true),
            KeySyntax(.pgsize, .number, required: true), KeySyntax(.bitmapSize, .number), KeySyntax(.flags, .number32, raw: true),
        ],
        answer: .status(.dirty, fields: [.dirty]), table: .operations, rows: [])
}

extension StatementParser {
    mutating func readInfo(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        try readKeys(.info)
        return .info(argsz: number32(.argsz))
    }

    /// `extension NAME|N`.
    mutating func readExtension(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        let names = Extension.byName.map(\.0).joined(separator: ", ")
        let w = try operand("one of \(names), or a number")
        let ext: Extension
        if let e = Extension(name: w.text.string) {
            ext = e
        } else {
            ext = Extension(rawValue: try VFIOTrace.number32(w.text, expected: "one of \(names), or a number"))
        }
        try end()
        return .extension(ext)
    }

    /// `dirty start|stop|get ...` or `dirty flags=N` (raw flags).
    mutating func readDirty(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
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
                return try dirtyGet()
            } else {
                throw LineError(w.text.start, "expected one of start, stop, get, found \(quoted(w.text))")
            }
        }
        try readKeys(.dirty)
        if let raw = number32(.flags) { flags = DirtyPages.Flags(rawValue: raw) }
        return .dirty(DirtyPages(flags: flags))
    }

    mutating func dirtyGet() throws(LineError) -> Statement.Kind {
        try readKeys(.dirtyGet)
        rule = StatementSyntax.dirtyGet.answer
        let iova = try requiredNumber(.iova), size = try requiredNumber(.size), pgsize = try requiredNumber(.pgsize)
        let bytes = number(.bitmapSize) ?? defaultBitmapSize(size: size, pgsize: pgsize)
        var get = DirtyPages(flags: .getBitmap, iova: iova, size: size, bitmap: DMABitmap(pgsize: pgsize, size: bytes))
        if let raw = number32(.flags) { get.flags = DirtyPages.Flags(rawValue: raw) }
        return .dirty(get)
    }
}

/// The printed words of `info`, `extension` and `dirty`.
func queryWords(_ kind: Statement.Kind) -> [String]? {
    switch kind {
    case .info(let argsz):
        return printWords(.info, ["info"], argsz.map { [.argsz: String($0)] } ?? [:])
    case .extension(let ext):
        return ["extension", ext.description]
    case .dirty(let d):
        guard let bitmap = d.bitmap else {
            switch d.flags {
            case .start: return ["dirty", "start"]
            case .stop: return ["dirty", "stop"]
            default: return printWords(.dirty, ["dirty"], [.flags: formatAddress(UInt64(d.flags.rawValue))])
            }
        }
        var values: [Key: String] = [.iova: formatAddress(d.iova), .size: formatSize(d.size), .pgsize: formatSize(bitmap.pgsize)]
        if bitmap.size != defaultBitmapSize(size: d.size, pgsize: bitmap.pgsize) { values[.bitmapSize] = String(bitmap.size) }
        if d.flags != .getBitmap { values[.flags] = formatAddress(UInt64(d.flags.rawValue)) }
        return printWords(.dirtyGet, ["dirty", "get"], values)
    default:
        return nil
    }
}

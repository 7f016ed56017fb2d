import VFIOCore

/// Prints a trace in canonical form: one statement per line, each with its
/// keys in a fixed order, addresses in lower-case hex, sizes with a binary
/// suffix when exact, values equal to their default left out, answers after
/// ` => `, trailing comments after two spaces, standalone comments kept and
/// each run of blank lines printed as one.
///
/// Parsing the output gives the same statements (kinds, answers, comments)
/// as the trace printed, line numbers aside.
public func printTrace(_ trace: Trace) -> String {
    var out = ""
    var previousWasBlank = false
    for statement in trace.statements {
        if case .blank = statement.kind {
            if !previousWasBlank { out += "\n" }
            previousWasBlank = true
            continue
        }
        previousWasBlank = false
        out += printStatement(statement)
        out += "\n"
    }
    return out
}

/// One statement as one line, without the line end.
public func printStatement(_ statement: Statement) -> String {
    var w = words(of: statement.kind)
    if let r = statement.repetition {
        w.append("repeat=\(r.count)")
        if let step = r.step { w.append("step=" + formatSize(step)) }
    }
    if !statement.spellings.isEmpty { w = w.map { keepSpelling($0, statement.spellings) } }
    var line = w.joined(separator: " ")
    if let answer = statement.expected { line += " => " + answer.description }
    if let comment = statement.comment {
        line += line.isEmpty ? commentLine(comment) : "  " + commentLine(comment)
    }
    return line
}

/// `size=0x200000` for the canonical `size=2M` when the trace wrote it so:
/// a `key=value` word keeps the value as written when that spelling is a
/// plain number naming the same value (lists, ranges and words are
/// canonical).
func keepSpelling(_ word: String, _ spellings: [String: String]) -> String {
    guard let eq = word.firstIndex(of: "=") else { return word }
    let key = String(word[..<eq]), value = String(word[word.index(after: eq)...])
    guard let written = spellings[key], written != value,
          case .success(let a) = parseNumberString(written), case .success(let b) = parseNumberString(value), a == b
    else { return word }
    return key + "=" + written
}

private func commentLine(_ text: String) -> String { text.isEmpty ? "#" : "# " + text }

/// The words of a statement, in canonical order.
func words(of kind: Statement.Kind) -> [String] {
    switch kind {
    case .comment(let text):
        return [commentLine(text)]
    case .blank:
        return []
    case .iommu(let type):
        return ["iommu", type.rawValue]
    case .useContainer(let name, let kind):
        return ["container", name] + (kind.map { [$0.description] } ?? [])
    case .mlock(let bytes):
        return ["mlock", formatSize(bytes)]
    case .container(let kind):
        return ["container", kind.rawValue]
    case .kernel(let version):
        return ["kernel", version.description]
    case .memlock(let limit):
        return ["memlock", limit.map(formatSize) ?? "unlimited"]
    case .capIPCLock(let on):
        return ["cap-ipc-lock", on ? "on" : "off"]
    case .dmaEntryLimit(let n):
        return ["dma-entry-limit", String(n)]
    case .domain(let spec):
        return domainWords(spec)
    case .detach(let name):
        return ["detach", name]
    case .memory(let m):
        return memoryWords(m)
    case .map(let m):
        return mapWords(m)
    case .unmap(let u):
        return unmapWords(u)
    case .info(let argsz):
        return ["info"] + (argsz.map { ["argsz=\($0)"] } ?? [])
    case .extension(let ext):
        return ["extension", ext.description]
    case .dirty(let d) where d.bitmap != nil:
        var w = ["dirty", "get", "iova=" + formatAddress(d.iova), "size=" + formatSize(d.size),
                 "pgsize=" + formatSize(d.bitmap!.pgsize)]
        if d.bitmap!.size != defaultBitmapSize(size: d.size, pgsize: d.bitmap!.pgsize) { w.append("bitmap-size=\(d.bitmap!.size)") }
        if d.flags != .getBitmap { w.append("flags=" + formatAddress(UInt64(d.flags.rawValue))) }
        return w
    case .dirty(let d):
        switch d.flags {
        case .start: return ["dirty", "start"]
        case .stop: return ["dirty", "stop"]
        default: return ["dirty", "flags=" + formatAddress(UInt64(d.flags.rawValue))]
        }
    case .show(let items):
        return ["show"] + (items == .all ? [] : ShowItems.names.filter { items.contains($0.1) }.map(\.0))
    case .check(let check):
        switch check {
        case .locked(let bytes): return ["check", "locked=" + formatSize(bytes)]
        case .mappings(let n): return ["check", "mappings=\(n)"]
        case .ptes(let counts, let domain):
            return ["check", "ptes=\(counts)"] + (domain.map { ["domain=" + $0] } ?? [])
        case .pte(let iova, let leaf, let domain):
            return ["check", "pte", "iova=" + formatAddress(iova)] + (domain.map { ["domain=" + $0] } ?? [])
                + ["=>", leaf.map(formatSize) ?? "none"]
        }
    }
}

/// `domain NAME ...`: with a preset, only the keys the trace wrote.
private func domainWords(_ spec: DomainSpec) -> [String] {
    // With a preset only the keys the trace wrote are printed (the
    // preset fills the rest for the release replayed).
    let written = spec.preset == nil ? DomainSpec.Keys.all : spec.explicit
    var w = ["domain", spec.name]
    if let preset = spec.preset { w.append("iommu=" + preset.rawValue) }
    if written.contains(.pgsizes) { w.append("pgsizes=" + formatPageSizes(spec.pgsizes)) }
    if written.contains(.leaves), let leaves = spec.leaves { w.append("leaves=" + formatPageSizes(leaves)) }
    if written.contains(.aperture), spec.preset != nil || spec.aperture != DomainSpec.defaultAperture {
        w.append("aperture=" + formatRange(spec.aperture))
    }
    if written.contains(.reserved), spec.preset != nil || spec.reserved != DomainSpec.defaultReserved {
        w.append("reserved=" + (spec.reserved.isEmpty ? "none" : spec.reserved.map(formatRange).joined(separator: ",")))
    }
    if written.contains(.coherent), spec.preset != nil || !spec.coherent { w.append("coherent=" + (spec.coherent ? "yes" : "no")) }
    if spec.emulated { w.append("emulated=yes") }
    if written.contains(.msiIsolated), spec.preset != nil || !spec.msiIsolated { w.append("msi-isolated=" + (spec.msiIsolated ? "yes" : "no")) }
    if spec.instance != 0 { w.append("instance=\(spec.instance)") }
    return w
}

/// `memory ...`: the placement as `phys=` or `thp`.
private func memoryWords(_ m: MemorySpec) -> [String] {
    var w = ["memory", "vaddr=" + formatAddress(m.vaddr), "size=" + formatSize(m.size)]
    if m.pageSize != PageSizes.pageSize { w.append("page=" + formatSize(m.pageSize)) }
    switch m.placement {
    case .realistic: break
    case .contiguous: w.append("phys=contiguous")
    case .thp: w.append("thp")
    case .layout(.contiguous(let base)): w.append("phys=" + formatAddress(base))
    case .layout(.scattered(let seed)):
        w.append("phys=scattered")
        if seed != m.vaddr { w.append("seed=\(seed)") }
    // The language has no base for these: a parsed trace always has 4G.
    case .layout(.reversed): w.append("phys=reversed")
    case .layout(.chunks(let size, _)): w.append("phys=chunks:" + formatSize(size))
    // The language places transparent hugepages by the vaddr alone.
    case .layout(.thp): w.append("thp")
    // Observed frames come from a machine, never from a trace.
    case .layout(.observed): break
    }
    if m.pfnmap { w.append("pfnmap") }
    if !m.populated { w.append("populated=no") }
    return w
}

/// `map ...`: flags beyond what `prot=`/`vaddr-only` say as `flags=`.
private func mapWords(_ m: MapDMA) -> [String] {
    var w = ["map", "iova=" + formatAddress(m.iova), "vaddr=" + formatAddress(m.vaddr), "size=" + formatSize(m.size)]
    var derived: MapDMA.Flags
    if m.flags == .vaddr {
        w.append("vaddr-only")
        derived = .vaddr
    } else {
        derived = m.flags.intersection([.read, .write])
        switch derived {
        case .read: w.append("prot=r")
        case .write: w.append("prot=w")
        case [.read, .write]: w.append("prot=rw")
        default: w.append("prot=none")
        }
    }
    if m.argsz != MapDMA.structSize { w.append("argsz=\(m.argsz)") }
    if m.flags != derived { w.append("flags=" + formatAddress(UInt64(m.flags.rawValue))) }
    return w
}

/// `unmap ...` or `unmap-all ...`: flags beyond the words as `flags=`.
private func unmapWords(_ u: UnmapDMA) -> [String] {
    var w: [String]
    var derived: UnmapDMA.Flags
    let defaultArgsz = UnmapDMA(flags: [], iova: 0, size: 0, bitmap: u.bitmap).argsz
    if u.flags.contains(.all) && u.bitmap == nil {
        w = ["unmap-all"]
        if u.iova != 0 { w.append("iova=" + formatAddress(u.iova)) }
        if u.size != 0 { w.append("size=" + formatSize(u.size)) }
        derived = .all
    } else {
        w = ["unmap", "iova=" + formatAddress(u.iova), "size=" + formatSize(u.size)]
        derived = []
    }
    if u.flags.contains(.vaddr) {
        w.append("vaddr-only")
        derived.insert(.vaddr)
    }
    if let b = u.bitmap {
        w += ["dirty", "pgsize=" + formatSize(b.pgsize)]
        if b.size != defaultBitmapSize(size: u.size, pgsize: b.pgsize) { w.append("bitmap-size=\(b.size)") }
        derived.insert(.getDirtyBitmap)
    }
    if u.argsz != defaultArgsz { w.append("argsz=\(u.argsz)") }
    if u.flags != derived { w.append("flags=" + formatAddress(UInt64(u.flags.rawValue))) }
    return w
}

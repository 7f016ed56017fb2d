import VFIOCore

extension Type1Container {
    /// Leaf entries by page size in the domain of group `name`, or summed
    /// over every domain when nil; nil when no domain holds that group.
    public func pageTableEntries(group name: String?) -> [UInt64: UInt64]? {
        if let name {
            guard let d = domains.first(where: { $0.groups.contains(name) }) else {
                return groups.contains(where: { $0.name == name }) || emulatedGroups.contains(name) ? [:] : nil
            }
            return d.pageTable.counts
        }
        var total = [UInt128](repeating: 0, count: 64)
        for d in domains { for (shift, n) in d.pageTable.entries.enumerated() { total[shift] += n } }
        var out: [UInt64: UInt64] = [:]
        for (shift, n) in total.enumerated() where n != 0 { out[1 << UInt64(shift)] = UInt64(clamping: n) }
        return out
    }

    /// `pageTableEntries(group:)` as `PTECounts`, built from the tables'
    /// per-size totals without a dictionary (a replay asks at every
    /// `check ptes=`).
    public func pteCounts(group name: String?) -> PTECounts? {
        func counts(_ entries: [UInt128]) -> PTECounts {
            var out: [PTECounts.Entry] = []
            for (shift, n) in entries.enumerated() where n != 0 {
                out.append(PTECounts.Entry(size: 1 << UInt64(shift), count: UInt64(clamping: n)))
            }
            return PTECounts(ascending: out)
        }
        if let name {
            guard let d = domains.first(where: { $0.groups.contains(name) }) else {
                return groups.contains(where: { $0.name == name }) || emulatedGroups.contains(name) ? PTECounts() : nil
            }
            return counts(d.pageTable.entries)
        }
        if domains.count == 1 { return counts(domains[0].pageTable.entries) }
        var total = [UInt128](repeating: 0, count: 64)
        for d in domains { for (shift, n) in d.pageTable.entries.enumerated() { total[shift] += n } }
        return counts(total)
    }

    /// Walks every structure and returns the first broken rule, or nil:
    /// the mapping tree is ordered and disjoint (`checkMapping`); each
    /// domain's runs cover exactly the IOVAs of each mapped `vfio_dma`,
    /// aligned, with the frames the memory holds (`checkPinned`); the
    /// counts agree with the mappings (`checkCounts`), the page tables with
    /// their runs (`checkPageTables`), the domains with their groups
    /// (`checkDomains`).
    public func _checkInvariants() -> InvariantViolation? {
        if let p = dmaList._checkInvariants() { return InvariantViolation(.tree, "dma_list: \(p)") }
        var walk = MappingWalk()
        var problem: InvariantViolation? = nil
        dmaList.forEachSlot { iova, slot, dma in
            problem = checkMapping(iova: iova, slot: slot, dma, &walk)
            return problem == nil
        }
        if let problem { return problem }
        return checkCounts(walk) ?? checkPageTables(live: walk.live) ?? checkDomains()
    }

    /// What the walk over the mappings has seen so far.
    struct MappingWalk {
        var previousEnd: UInt64? = nil
        var charged: UInt128 = 0
        var invalid = 0
        var live = Set<Int32>()
    }

    /// One mapping: a size, no wrap, the node's size, no overlap (since
    /// 6.18), the top-of-space list, and its pins and entries.
    func checkMapping(iova: UInt64, slot: Int32, _ dma: DMAEntry, _ walk: inout MappingWalk) -> InvariantViolation? {
        walk.live.insert(slot)
        let at = "mapping at \(formatHex(iova))"
        if dma.size == 0 { return InvariantViolation(.mapping, "\(at) has size 0") }
        guard let range = IOVARange(start: iova, size: dma.size) else { return InvariantViolation(.mapping, "\(at) wraps past 2^64") }
        if dmaList.size(slot) != dma.size { return InvariantViolation(.tree, "\(at): node size differs") }
        // Before 6.18 the kernel lets mappings overlap at the top of the
        // address space; since, never.
        if profile.inclusiveEndSearch, let end = walk.previousEnd, iova <= end {
            return InvariantViolation(.mapping, "\(at) overlaps the one before (ends \(formatHex(end)))")
        }
        walk.previousEnd = range.last
        if (range.last == .max) != topSlots.contains(slot) { return InvariantViolation(.tree, "\(at): top-of-space list disagrees") }
        if dma.flags.contains(.vaddrInvalid) { walk.invalid += 1 }
        walk.charged += UInt128(dma.lockedPages)
        if dma.flags.contains(.iommuMapped) { return checkPinned(range, slot: slot, dma) }
        if dma.lockedPages != 0 { return InvariantViolation(.accounting, "\(at) is not in the IOMMU but charged") }
        return nil
    }

    /// A mapping in the IOMMU: the memory behind it exists, its charge is
    /// the normal pages it pins, and each domain's runs tile it over the
    /// pinned frames.
    func checkPinned(_ range: IOVARange, slot: Int32, _ dma: DMAEntry) -> InvariantViolation? {
        let at = "mapping at \(formatHex(range.start))"
        // The frames pinned, as the memory gives them.
        var frames: [MemoryPiece] = []
        let hole = memory.forEachPiece(vaddr: dma.pinnedVaddr, size: dma.size, splitOnClass: false) { p in
            frames.append(p); return true
        }
        // Before 6.18 replay skips a mapping ending at 2^64-1: it is marked
        // mapped without a page pinned, so its memory need not exist
        // (mapped under emulated groups only).
        let mayBeSkipped = !profile.inclusiveEndSearch && range.last == .max
        if hole != nil && !(mayBeSkipped && dma.lockedPages == 0) {
            return InvariantViolation(.mapping, "\(at) holds unmapped memory")
        }
        let expectedPages = memory.normalBytes(vaddr: dma.pinnedVaddr, size: dma.size) >> Self.pageShift
        if expectedPages != dma.lockedPages && !(mayBeSkipped && dma.lockedPages == 0) {
            return InvariantViolation(.accounting, "\(at) charged \(dma.lockedPages) pages, pins \(expectedPages)")
        }
        for d in domains {
            guard let list = d.pageTable.runs(slot: slot) else {
                if mayBeSkipped { continue }
                return InvariantViolation(.pageTable, "\(at) missing from the domain of \(d.groups)")
            }
            if let p = Self.checkRuns(list.items, cover: range, frames: frames, bitmap: d.spec.pgsizes.rawValue) {
                return InvariantViolation(.pageTable, "\(at) in the domain of \(d.groups): \(p)")
            }
        }
        return nil
    }

    /// The container's counts against what the walk saw: the top list,
    /// `locked_vm` (this container's part), `vaddr_invalid_count`,
    /// `dma_avail`.
    func checkCounts(_ walk: MappingWalk) -> InvariantViolation? {
        if topSlots.count != Set(topSlots).count { return InvariantViolation(.tree, "top-of-space list has a slot twice") }
        if walk.charged + UInt128(leakedPages) != UInt128(ownLockedPages) {
            return InvariantViolation(.accounting, "this container charged \(ownLockedPages) pages of locked_vm \(lockedVm), mappings charged \(walk.charged) and \(leakedPages) leaked")
        }
        if walk.invalid != vaddrInvalidCount {
            return InvariantViolation(.accounting, "vaddr_invalid_count \(vaddrInvalidCount), \(walk.invalid) mappings invalid")
        }
        if isSet && UInt64(dmaAvail) + UInt64(dmaList.count) != UInt64(dmaEntryLimitAtOpen) {
            return InvariantViolation(.accounting, "dma_avail \(dmaAvail) + \(dmaList.count) mappings != limit \(dmaEntryLimitAtOpen)")
        }
        return nil
    }

    /// Each page table holds runs only for live mappings, and its counts
    /// (mappings, entries per size) are its runs'.
    func checkPageTables(live: Set<Int32>) -> InvariantViolation? {
        for d in domains {
            var sum = d.pageTable.leaked
            var held = 0
            for (slot, list) in d.pageTable.bySlot.enumerated() {
                guard let list else { continue }
                held += 1
                if !live.contains(Int32(slot)) {
                    return InvariantViolation(.pageTable, "page table of \(d.groups) has runs in slot \(slot), which no mapping holds")
                }
                list.count(into: &sum)
            }
            if held != d.pageTable.mappings {
                return InvariantViolation(.pageTable, "page table of \(d.groups) counts \(d.pageTable.mappings) mappings, holds \(held)")
            }
            if sum != d.pageTable.entries { return InvariantViolation(.pageTable, "page table of \(d.groups): per-size counts disagree with its runs") }
        }
        return nil
    }

    /// A detach stuck in `vfio_unmap_unpin` (`hang`) leaves its domain with
    /// no group and the mappings it had not reached yet; otherwise an
    /// emptied domain is freed at once, and the last one takes every
    /// mapping with it unless emulated groups remain.
    func checkDomains() -> InvariantViolation? {
        guard hang == nil else { return nil }
        if let empty = domains.first(where: { $0.groups.isEmpty }) {
            return InvariantViolation(.domains, "a domain (created by \(empty.spec.name)) remains with no group")
        }
        if domains.isEmpty, !dmaList.isEmpty, emulatedGroups.isEmpty {
            return InvariantViolation(.domains, "mappings remain with no group attached")
        }
        return nil
    }

    /// The runs of one mapping tile `range` in order, each aligned to its
    /// page size, of a size the domain supports, over the pinned frames. A
    /// repeat stands on whole chunks of one stretch of the frames, and its
    /// pattern holds for its first and its last chunk.
    static func checkRuns(_ items: ContiguousArray<PTEItem>, cover range: IOVARange, frames: [MemoryPiece], bitmap: UInt64) -> String? {
        var at = range.start
        var covered: UInt64 = 0
        var cursor = FrameCursor(pieces: frames)
        for item in items {
            switch item {
            case .run(let r):
                if let p = checkRun(r, expected: at, bitmap: bitmap) { return p }
                guard let f = cursor.frame(at: covered), f.phys == r.phys, f.left >= r.length else {
                    return "run at \(formatHex(r.iova)) maps \(formatHex(r.phys)), not the pinned frame"
                }
                at = at &+ r.length
                covered += r.length
            case .repeated(let rep):
                if rep.iova != at { return "repeat at \(formatHex(rep.iova)) where \(formatHex(at)) was expected" }
                guard let (s, first) = cursor.stretch(at: covered), s.unit == rep.stride, first + rep.count <= s.count else {
                    return "repeat at \(formatHex(rep.iova)) does not stand on whole chunks of one stretch of frames"
                }
                for chunk in [first, first + rep.count - 1] {
                    let shift = (chunk - first) &* rep.stride
                    var expected = rep.iova &+ shift
                    for r in rep.pattern {
                        var moved = r
                        moved.iova = r.iova &+ shift
                        moved.phys = s.phys(chunk: chunk) &+ (r.iova - rep.iova)
                        if let p = checkRun(moved, expected: expected, bitmap: bitmap) { return p }
                        if chunk == first && moved.phys != r.phys {
                            return "repeat at \(formatHex(rep.iova)) maps \(formatHex(r.phys)), not the pinned frame"
                        }
                        expected = expected &+ r.length
                    }
                    if expected &- (rep.iova &+ shift) != rep.stride { return "repeat at \(formatHex(rep.iova)): its pattern does not cover a chunk" }
                }
                at = at &+ rep.length
                covered += rep.length
            }
        }
        if covered != range.last - range.start + 1 { return "runs cover \(covered) bytes of \(range.last - range.start + 1)" }
        return nil
    }

    /// One run where `expected` was due: of a page size in the bitmap,
    /// aligned to it in IOVA and frame.
    static func checkRun(_ r: PTERun, expected: UInt64, bitmap: UInt64) -> String? {
        if r.iova != expected { return "run at \(formatHex(r.iova)) where \(formatHex(expected)) was expected" }
        if bitmap & r.pageSize == 0 { return "run of \(r.pageSize)-byte pages, not in the bitmap" }
        if r.iova & (r.pageSize - 1) != 0 || r.phys & (r.pageSize - 1) != 0 {
            return "run at \(formatHex(r.iova)) not aligned to its page size"
        }
        return nil
    }
}

/// Reads the frames of a mapping's memory walk by offset into the mapping,
/// moving forward only.
struct FrameCursor {
    let pieces: [MemoryPiece]
    var index = 0
    /// The mapping offset where `pieces[index]` starts.
    var start: UInt64 = 0

    init(pieces: [MemoryPiece]) { self.pieces = pieces }

    mutating func seek(_ offset: UInt64) -> Bool {
        while index < pieces.count && offset - start >= pieces[index].length {
            start += pieces[index].length
            index += 1
        }
        return index < pieces.count && offset >= start
    }

    /// The frame at `offset` and the contiguous bytes from it.
    mutating func frame(at offset: UInt64) -> (phys: UInt64, left: UInt64)? {
        guard seek(offset) else { return nil }
        let within = offset - start
        switch pieces[index] {
        case .run(let r): return (r.phys &+ within, r.length - within)
        case .stretch(let s): return (s.phys(chunk: within / s.unit) &+ within % s.unit, s.unit - within % s.unit)
        }
    }

    /// The stretch of frames at `offset` and the chunk it starts, when
    /// `offset` starts a chunk of one.
    mutating func stretch(at offset: UInt64) -> (PinnedStretch, UInt64)? {
        guard seek(offset), case .stretch(let s) = pieces[index], (offset - start) % s.unit == 0 else { return nil }
        return (s, (offset - start) / s.unit)
    }
}

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

    /// Walks every structure and returns a message naming the first broken
    /// rule, or nil: the mapping tree is ordered and disjoint; each domain's
    /// runs cover exactly the IOVAs of each mapped `vfio_dma`, aligned, with
    /// the frames the memory holds; `locked_vm` equals the normal pages
    /// pinned; `dma_avail` + mappings = the limit taken at open.
    public func _checkInvariants() -> String? {
        if let p = dmaList._checkInvariants() { return "dma_list: \(p)" }
        var previousEnd: UInt64? = nil
        var problem: String? = nil
        var charged: UInt128 = 0
        var invalid = 0
        var live = Set<Int32>()
        dmaList.forEachSlot { iova, slot, dma in
            live.insert(slot)
            if dma.size == 0 { problem = "mapping at \(formatHex(iova)) has size 0"; return false }
            guard let range = IOVARange(start: iova, size: dma.size) else {
                problem = "mapping at \(formatHex(iova)) wraps past 2^64"; return false
            }
            if dmaList.size(slot) != dma.size { problem = "mapping at \(formatHex(iova)): node size differs"; return false }
            // Before 6.18 the kernel lets mappings overlap at the top of the
            // address space; since, never.
            if profile.inclusiveEndSearch, let end = previousEnd, iova <= end {
                problem = "mapping at \(formatHex(iova)) overlaps the one before (ends \(formatHex(end)))"; return false
            }
            previousEnd = range.last
            if (range.last == .max) != topSlots.contains(slot) {
                problem = "mapping at \(formatHex(iova)): top-of-space list disagrees"; return false
            }
            if dma.flags.contains(.vaddrInvalid) { invalid += 1 }
            charged += UInt128(dma.lockedPages)
            if dma.flags.contains(.iommuMapped) {
                // The frames pinned, as the memory gives them.
                var expectedPages: UInt64 = 0
                var runs: [PinnedRun] = []
                let hole = memory.forEachRun(vaddr: dma.pinnedVaddr, size: dma.size, splitOnClass: false) { r in
                    runs.append(r); return true
                }
                // Before 6.18 replay skips a mapping ending at 2^64-1: it
                // is marked mapped without a page pinned, so its memory
                // need not exist (mapped under emulated groups only).
                let mayBeSkipped = !profile.inclusiveEndSearch && range.last == .max
                if hole != nil && !(mayBeSkipped && dma.lockedPages == 0) {
                    problem = "mapping at \(formatHex(iova)) holds unmapped memory"; return false
                }
                memory.forEachRun(vaddr: dma.pinnedVaddr, size: dma.size) { r in
                    if !r.reserved { expectedPages += r.length >> Self.pageShift }
                    return true
                }
                if expectedPages != dma.lockedPages && !(mayBeSkipped && dma.lockedPages == 0) {
                    problem = "mapping at \(formatHex(iova)) charged \(dma.lockedPages) pages, pins \(expectedPages)"; return false
                }
                for d in domains {
                    guard let list = d.pageTable.runs(slot: slot) else {
                        if mayBeSkipped { continue }
                        problem = "mapping at \(formatHex(iova)) missing from the domain of \(d.groups)"; return false
                    }
                    if let p = Self.checkRuns(list.runs, cover: range, frames: runs, bitmap: d.spec.pgsizes.rawValue) {
                        problem = "mapping at \(formatHex(iova)) in the domain of \(d.groups): \(p)"; return false
                    }
                }
            } else if dma.lockedPages != 0 {
                problem = "mapping at \(formatHex(iova)) is not in the IOMMU but charged"; return false
            }
            return true
        }
        if let problem { return problem }
        if topSlots.count != Set(topSlots).count { return "top-of-space list has a slot twice" }
        if charged + UInt128(leakedPages) != UInt128(ownLockedPages) {
            return "this container charged \(ownLockedPages) pages of locked_vm \(lockedVm), mappings charged \(charged) and \(leakedPages) leaked"
        }
        if invalid != vaddrInvalidCount { return "vaddr_invalid_count \(vaddrInvalidCount), \(invalid) mappings invalid" }
        if isSet && UInt64(dmaAvail) + UInt64(dmaList.count) != UInt64(dmaEntryLimitAtOpen) {
            return "dma_avail \(dmaAvail) + \(dmaList.count) mappings != limit \(dmaEntryLimitAtOpen)"
        }
        for d in domains {
            var sum = d.pageTable.leaked
            var held = 0
            var stray: Int? = nil
            for (slot, list) in d.pageTable.bySlot.enumerated() {
                guard let list else { continue }
                held += 1
                if !live.contains(Int32(slot)) { stray = slot; break }
                for r in list.runs { sum[Int(r.pageShift)] += UInt128(r.count) }
            }
            if let stray { return "page table of \(d.groups) has runs in slot \(stray), which no mapping holds" }
            if held != d.pageTable.mappings { return "page table of \(d.groups) counts \(d.pageTable.mappings) mappings, holds \(held)" }
            if sum != d.pageTable.entries { return "page table of \(d.groups): per-size counts disagree with its runs" }
        }
        // A detach stuck in vfio_unmap_unpin (`hang`) leaves its domain
        // with no group and the mappings it had not reached yet; otherwise
        // an emptied domain is freed at once, and the last one takes every
        // mapping with it unless emulated groups remain.
        if hang == nil {
            if let empty = domains.first(where: { $0.groups.isEmpty }) {
                return "a domain (created by \(empty.spec.name)) remains with no group"
            }
            if domains.isEmpty, !dmaList.isEmpty, emulatedGroups.isEmpty {
                return "mappings remain with no group attached"
            }
        }
        return nil
    }

    /// The runs of one mapping tile `range` in order, each aligned to its
    /// page size, of a size the domain supports, over the pinned frames.
    static func checkRuns(_ runs: ContiguousArray<PTERun>, cover range: IOVARange, frames: [PinnedRun], bitmap: UInt64) -> String? {
        var at = range.start
        var covered: UInt64 = 0
        var frameIndex = 0
        var frameOffset: UInt64 = 0
        for r in runs {
            if r.iova != at { return "run at \(formatHex(r.iova)) where \(formatHex(at)) was expected" }
            if bitmap & r.pageSize == 0 { return "run of \(r.pageSize)-byte pages, not in the bitmap" }
            if r.iova & (r.pageSize - 1) != 0 || r.phys & (r.pageSize - 1) != 0 {
                return "run at \(formatHex(r.iova)) not aligned to its page size"
            }
            // The run's physical start must be the frame at this offset.
            while frameIndex < frames.count && frameOffset >= frames[frameIndex].length {
                frameOffset -= frames[frameIndex].length
                frameIndex += 1
            }
            guard frameIndex < frames.count, frames[frameIndex].phys &+ frameOffset == r.phys,
                  frames[frameIndex].length - frameOffset >= r.length else {
                return "run at \(formatHex(r.iova)) maps \(formatHex(r.phys)), not the pinned frame"
            }
            frameOffset += r.length
            at = at &+ r.length
            covered += r.length
        }
        if covered != range.last - range.start + 1 { return "runs cover \(covered) bytes of \(range.last - range.start + 1)" }
        return nil
    }
}

import Testing
import VFIOCore
@testable import VFIOModel

/// The frame of the 4K page at `offset` of a region, page by page, by the
/// rules `PhysicalLayout` documents (the slow reference the stretch walk
/// must agree with).
func referencePhys(_ r: MemoryRegion, offset: UInt64) -> UInt64 {
    let ps = r.pageSize
    switch r.layout {
    case .contiguous(let base):
        return base + offset
    case .scattered(let seed):
        return MemoryRegion.scatteredPhys(page: offset / ps, pages: r.size / ps, pageSize: ps, seed: seed) + offset % ps
    case .reversed(let base):
        return base + (r.size / ps - 1 - offset / ps) * ps + offset % ps
    case .chunks(let size, let base):
        return base + offset / size * 2 * size + offset % size
    case .thp(let seed):
        let huge: UInt64 = 2 << 20
        let first = min(r.size, (huge - r.vaddr % huge) % huge)
        let end = first + (r.size - first) / huge * huge
        if offset >= first && offset < end {
            return MemoryRegion.scatteredPhys(page: (offset - first) / huge, pages: (end - first) / huge, pageSize: huge, seed: seed)
                + (offset - first) % huge
        }
        let loose = (first + (r.size - end)) / 4096
        let index = offset < first ? offset / 4096 : (first + (offset - end)) / 4096
        return MemoryRegion.scatteredPhys(page: index, pages: loose, pageSize: 4096, seed: seed, base: 1 << 43)
    case .observed:
        return 0
    }
}

/// `vfio_pin_pages_remote`'s chunks of `[vaddr, vaddr+size)`, built one
/// 4K page at a time: a page joins the chunk before when its frame follows
/// on and its class (reserved or not) is the same.
func referenceChunks(_ memory: ProcessMemory, vaddr: UInt64, size: UInt64, splitOnClass: Bool = true) -> [PinnedRun] {
    var out: [PinnedRun] = []
    var at = vaddr
    while at < vaddr + size {
        let r = memory.regions.first { $0.range.contains(at) }!
        let page = PinnedRun(vaddr: at, phys: referencePhys(r, offset: at - r.vaddr), length: 4096, reserved: r.pfnmap)
        if let last = out.last, last.phys + last.length == page.phys, !splitOnClass || last.reserved == page.reserved {
            out[out.count - 1].length += 4096
            out[out.count - 1].reserved = last.reserved && page.reserved
        } else {
            out.append(page)
        }
        at += 4096
    }
    return out
}

/// A random memory around `base`: a contiguous region ending where the
/// middle one's first page lies, the middle one scattered by some rule,
/// and a contiguous region starting where its last page ends (so the
/// walk must join across both borders), any of them sometimes left out.
func randomMemory(_ rng: inout SeededRandom, base: UInt64) -> (ProcessMemory, start: UInt64, end: UInt64) {
    var memory = ProcessMemory()
    let choice = rng.next() % 7
    let pageSize: UInt64 = choice == 1 ? 2 << 20 : 4096
    let layout: PhysicalLayout
    switch choice {
    case 0, 1: layout = .scattered(seed: rng.next())
    case 2: layout = .reversed(base: 1 << 36)
    case 3: layout = .chunks(size: [8192, 16384, 65536].randomElement(using: &rng)!, base: 1 << 37)
    case 4: layout = .chunks(size: 12288, base: (1 << 37) + 4096)
    default: layout = .thp(seed: rng.next())
    }
    let pages = pageSize == 4096 ? UInt64.random(in: 1...1400, using: &rng) : UInt64.random(in: 1...5, using: &rng)
    let shift = pageSize == 4096 && rng.next() % 2 == 0 ? UInt64.random(in: 0..<512, using: &rng) * 4096 : 0
    let middle = MemoryRegion(vaddr: base + (4 << 20) + shift, size: pages * pageSize, pageSize: pageSize, layout: layout)
    _ = memory.add(exactly: middle)
    var start = middle.vaddr, end = middle.vaddr + middle.size
    if rng.next() % 3 != 0 {
        let size = UInt64.random(in: 1...8, using: &rng) * 4096
        let first = referencePhys(middle, offset: 0)
        _ = memory.add(exactly: MemoryRegion(vaddr: start - size, size: size, layout: .contiguous(base: first - size), pfnmap: rng.next() % 4 == 0))
        start -= size
    }
    if rng.next() % 3 != 0 {
        let size = UInt64.random(in: 1...8, using: &rng) * 4096
        let lastPage = referencePhys(middle, offset: middle.size - 4096)
        _ = memory.add(exactly: MemoryRegion(vaddr: end, size: size, layout: .contiguous(base: lastPage + 4096), pfnmap: rng.next() % 4 == 0))
        end += size
    }
    return (memory, start, end)
}

/// Leaf entries per page size of runs.
func entryCounts(_ runs: [PTERun]) -> [UInt64: UInt64] {
    var out: [UInt64: UInt64] = [:]
    for r in runs { out[r.pageSize, default: 0] += r.count }
    return out
}

@Suite("uniform stretches: scattered memory walked, pinned and mapped without a step per page")
struct StretchTests {
    static let bitmaps: [UInt64] = [PageSizes([4096, 2 << 20, 1 << 30]).rawValue, 4096,
                                    PageSizes([4096, 65536, 2 << 20, 512 << 20]).rawValue, PageSizes.pageMask.rawValue,
                                    PageSizes([8192, 2 << 20]).rawValue]

    @Test("the walk by stretches gives the chunks a page-by-page walk joins, across region borders", arguments: [1, 2, 3, 4])
    func walkMatchesPages(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        for _ in 0..<60 {
            let (memory, start, end) = randomMemory(&rng, base: 0x7F00_0000_0000)
            let a = start + UInt64.random(in: 0..<(end - start) / 4096, using: &rng) * 4096
            let b = a + UInt64.random(in: 1...(end - a) / 4096, using: &rng) * 4096
            for split in [true, false] {
                var walked: [PinnedRun] = []
                var stretches = 0
                memory.forEachPiece(vaddr: a, size: b - a, splitOnClass: split) { piece in
                    switch piece {
                    case .run(let r): walked.append(r)
                    case .stretch(let s):
                        stretches += 1
                        for i in 0..<s.count { walked.append(s.chunk(i)) }
                    }
                    return true
                }
                #expect(walked == referenceChunks(memory, vaddr: a, size: b - a, splitOnClass: split))
                _ = stretches
            }
        }
    }

    @Test("MAP_DMA over stretches: the same answer, locked pages, entries per size and leaf sizes as chunk-by-chunk pinning and iommu_map, and the pin stops at the same page under RLIMIT_MEMLOCK",
          arguments: [5, 6, 7, 8, 9, 10])
    func mapMatchesChunkByChunk(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        for _ in 0..<50 {
            let (memory, start, end) = randomMemory(&rng, base: 0x7F00_0000_0000)
            let a = start + UInt64.random(in: 0..<(end - start) / 4096, using: &rng) * 4096
            let b = a + UInt64.random(in: 1...(end - a) / 4096, using: &rng) * 4096
            // (A container's smallest page is 4K: the memory's; 8K is for a second domain.)
            let bitmap = Self.bitmaps.filter { $0 & 4096 != 0 }.randomElement(using: &rng)!
            // IOVA sharing the vaddr's offset in 2M blocks (so large pages fit) or not.
            let iova: UInt64 = (1 << 40) + (rng.next() % 2 == 0 ? a % (2 << 20) : UInt64.random(in: 0..<512, using: &rng) * 4096)
            let chunks = referenceChunks(memory, vaddr: a, size: b - a)
            let total = chunks.reduce(0) { $0 + ($1.reserved ? 0 : $1.length / 4096) }
            let limit: UInt64? = rng.next() % 3 == 0 ? nil : UInt64.random(in: 0...total + 2, using: &rng)

            var c = Type1Container()
            c.process.memory = memory
            _ = c.groupSetContainer(DomainSpec(name: "d0", pgsizes: PageSizes(rawValue: bitmap), reserved: []))
            _ = c.setIOMMU(.type1v2)
            c.memlock = limit.map { $0 << 12 }

            // The reference: each chunk checked against the limit, then mapped.
            var expected: Errno? = nil, pinned: UInt64 = 0
            var runs = ContiguousArray<PTERun>()
            var offset: UInt64 = 0
            for chunk in chunks {
                let pages = chunk.reserved ? 0 : chunk.length / 4096
                if pages > 0, let limit, pinned + pages > limit { expected = .ENOMEM; break }
                pinned += pages
                if let e = iommuMap(iova: iova + offset, phys: chunk.phys, size: chunk.length, bitmap: bitmap, into: &runs) { expected = e; break }
                offset += chunk.length
            }

            // Where the pin stops: the pages handed on before the failure.
            var handed: UInt64 = 0
            let stop = c.vfioPinPagesRemote(vaddr: a, size: b - a, lockCap: false) { _, pages in handed += pages; return nil }
            if expected == .ENOMEM { #expect(stop == .ENOMEM && handed == pinned, "stopped after \(handed) pages, expected \(pinned)") }

            let result = c.mapDMA(MapDMA(flags: [.read, .write], vaddr: a, iova: iova, size: b - a))
            #expect(result.errno == expected)
            #expect(c._checkInvariants() == nil)
            guard expected == nil else { continue }
            #expect(c.lockedBytes == total << 12)
            #expect(c.pageTableEntries(group: nil) == entryCounts(Array(runs)))
            for _ in 0..<20 {
                let at = iova + UInt64.random(in: 0..<(b - a) / 4096, using: &rng) * 4096
                #expect(c.domains[0].pageTable.leafSize(at: at) == runs.lazy.compactMap { $0.leafSize(at: at) }.first)
            }
            // A second domain replays the mapping (vfio_iommu_replay) with its own page sizes.
            let second = Self.bitmaps.randomElement(using: &rng)!
            var replayed = ContiguousArray<PTERun>()
            var replayError: Errno? = nil
            offset = 0
            for chunk in referenceChunks(memory, vaddr: a, size: b - a, splitOnClass: false) where replayError == nil {
                replayError = iommuMap(iova: iova + offset, phys: chunk.phys, size: chunk.length, bitmap: second, into: &replayed)
                offset += chunk.length
            }
            let attached = c.groupSetContainer(DomainSpec(name: "d1", pgsizes: PageSizes(rawValue: second), reserved: [], coherent: false))
            #expect(attached.errno == replayError)
            if replayError == nil { #expect(c.pageTableEntries(group: "d1") == entryCounts(Array(replayed))) }
            #expect(c._checkInvariants() == nil)
            // (All at once: a second domain may have raised the smallest page past the mapping's alignment.)
            #expect(c.unmapDMA(UnmapDMA(flags: .all, iova: 0, size: 0)).success == b - a)
            #expect(c.pageTableEntries(group: nil) == [:] && c.lockedBytes == 0)
        }
    }

    @Test("iommufd with large pages off cuts an area inside a stretch: the halves keep exactly their 4K entries (iopt_area_split)",
          arguments: [11, 12, 13])
    func iommufdSplit(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        for _ in 0..<40 {
            let (memory, start, end) = randomMemory(&rng, base: 0x7F00_0000_0000)
            guard end - start >= 3 * 4096 else { continue }
            var c = IOMMUFDContainer()
            c.process.memory = memory
            _ = c.groupSetContainer(DomainSpec(name: "d0", reserved: []))
            _ = c.setIOMMU(.type1)
            let iova: UInt64 = 1 << 40, size = end - start
            let chunks = referenceChunks(memory, vaddr: start, size: size)
            guard !chunks.contains(where: \.reserved) else { continue }
            #expect(c.mapDMA(MapDMA(flags: [.read, .write], vaddr: start, iova: iova, size: size)).errno == nil)
            let cut = UInt64.random(in: 1..<size / 4096 - 1, using: &rng) * 4096
            let length = UInt64.random(in: 1...(size - cut) / 4096 - 1, using: &rng) * 4096
            #expect(c.unmapDMA(UnmapDMA(flags: [], iova: iova + cut, size: length)).errno == nil)
            #expect(c.pageTableEntries(group: nil) == [4096: (size - length) / 4096])
            for at in [iova, iova + cut - 4096, iova + cut, iova + cut + length - 4096, iova + cut + length, iova + size - 4096] {
                let expected: UInt64? = at >= iova + cut && at < iova + cut + length ? nil : 4096
                #expect((try? c.leafSize(iova: at, group: nil).get()) == expected)
            }
            #expect(c._checkInvariants() == nil)
        }
    }

    static let tib: UInt64 = 1 << 40

    /// A v2 container with one VT-d-like domain (48-bit) and 12 TiB of
    /// scattered 4K pages (the default layout) at 0x100000000000.
    static func twelveTiB() -> Type1Container {
        var c = Type1Container()
        _ = c.memory.add(Spec(vaddr: 0x1000_0000_0000, size: 12 * tib))
        _ = c.groupSetContainer(DomainSpec(name: "d0"))
        _ = c.setIOMMU(.type1v2)
        return c
    }

    @Test("12 TiB of scattered 4K pages maps with one 4K entry and one locked page per page, each page its own chunk")
    func twelveTiBMapped() {
        var c = Self.twelveTiB()
        let pages = 12 * Self.tib / 4096
        #expect(c.mapDMA(MapDMA(flags: [.read, .write], vaddr: 0x1000_0000_0000, iova: Self.tib, size: 12 * Self.tib)).errno == nil)
        #expect(c.pageTableEntries(group: nil) == [4096: pages])
        #expect(c.lockedBytes == 12 * Self.tib)
        var chunks: UInt64 = 0
        c.memory.forEachPiece(vaddr: 0x1000_0000_0000, size: 12 * Self.tib) { piece in
            switch piece {
            case .run: chunks += 1
            case .stretch(let s): chunks += s.count
            }
            return true
        }
        #expect(chunks == pages)
        for at in [Self.tib, Self.tib + 5 * Self.tib + 0x7000, 13 * Self.tib - 4096] { #expect(c.domains[0].pageTable.leafSize(at: at) == 4096) }
        #expect(c.domains[0].pageTable.leafSize(at: 13 * Self.tib) == nil)
        #expect(c._checkInvariants() == nil)
        #expect(c.unmapDMA(UnmapDMA(flags: [], iova: Self.tib, size: 12 * Self.tib)).success == 12 * Self.tib)
        #expect(c.pageTableEntries(group: nil) == [:] && c.lockedBytes == 0)
    }

    @Test("RLIMIT_MEMLOCK in the middle of 12 TiB of scattered 4K pages: the pin stops at the first page past it, ENOMEM, nothing kept")
    func twelveTiBLimit() {
        var c = Self.twelveTiB()
        let limitPages = 6 * Self.tib / 4096 + 12345
        c.memlock = limitPages << 12
        var handed: UInt64 = 0
        let stop = c.vfioPinPagesRemote(vaddr: 0x1000_0000_0000, size: 12 * Self.tib, lockCap: false) { _, pages in handed += pages; return nil }
        #expect(stop == .ENOMEM)
        #expect(handed == limitPages)
        #expect(c.mapDMA(MapDMA(flags: [.read, .write], vaddr: 0x1000_0000_0000, iova: Self.tib, size: 12 * Self.tib)).errno == .ENOMEM)
        #expect(c.lockedBytes == 0 && c.pageTableEntries(group: nil) == [:])
        #expect(c._checkInvariants() == nil)
    }
}

extension Result {
    var success: Success? { if case .success(let v) = self { return v } else { return nil } }
}

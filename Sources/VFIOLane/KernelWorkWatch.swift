import VFIOCore
import VFIOCost
import VFIOModel
import VFIOReplay
import VFIOTrace

/// Counts the kernel's work in each MAP_DMA and UNMAP_DMA of a replay on
/// the model (`KernelWork`): the pages the model pinned, by what backs
/// them (the trace's `memory` statements), the physically contiguous
/// chunks its `vfio_pin_pages_remote` walk found, the IOMMU entries its
/// page tables gained or lost, the first touches of `populated=no`
/// memory. Read before and after each operation; it changes nothing.
final class KernelWorkWatch {
    private(set) var map = KernelWork()
    private(set) var unmap = KernelWork()
    /// The same work per container, in the order the containers first
    /// worked: what runs in parallel when each container has a thread.
    private(set) var byContainer: [(name: String, map: KernelWork, unmap: KernelWork)] = []
    /// The trace's memory, by vaddr.
    private let specs: [MemorySpec]
    /// Per `populated=no` region (index in `specs`), the fault blocks
    /// already touched, as sorted disjoint [start, end) block numbers.
    private var touched: [Int: [(UInt64, UInt64)]] = [:]
    private var ptesBefore: UInt64 = 0
    /// The domains before a detach (the last group's leaves none after).
    private var domainsBefore: UInt64 = 0
    /// The mappings an unmap may remove: (iova, size, the vaddr pinned).
    private var candidates: [MappingView] = []

    init(_ trace: Trace) {
        specs = trace.statements.compactMap { st -> MemorySpec? in
            if case .memory(let m) = st.kind { return m }
            return nil
        }.sorted { $0.vaddr < $1.vaddr }
    }

    func willRun(_ st: Statement, _ model: ModelBackend) {
        switch st.kind {
        case .map: ptesBefore = Self.totalPTEs(model)
        case .unmap(let u):
            ptesBefore = Self.totalPTEs(model)
            candidates = Self.overlapping(u, model)
        case .detach:
            // The last group out of a type1 container releases it: every
            // mapping is unmapped and unpinned then
            // (vfio_iommu_unmap_unpin_all), the time a VMM's exit takes.
            ptesBefore = Self.totalPTEs(model)
            domainsBefore = UInt64(model.inspect { $0.domainCount })
            candidates = Self.overlapping(UnmapDMA(flags: .all, iova: 0, size: 0), model)
        default: return
        }
    }

    /// Counts the work of `st` (and adds it to its container's).
    func didRun(_ st: Statement, _ outcome: Outcome, _ model: ModelBackend) {
        let total = (map, unmap)
        (map, unmap) = (KernelWork(), KernelWork())
        countCall(st, outcome, model)
        let (m, u) = (map, unmap)
        (map, unmap) = total
        map.add(m)
        unmap.add(u)
        guard m != KernelWork() || u != KernelWork() else { return }
        let name = model.containerName
        if let i = byContainer.firstIndex(where: { $0.name == name }) {
            byContainer[i].map.add(m)
            byContainer[i].unmap.add(u)
        } else {
            byContainer.append((name, m, u))
        }
    }

    private func countCall(_ st: Statement, _ outcome: Outcome, _ model: ModelBackend) {
        guard let answer = outcome.answers.first else { return }
        let ok: Bool
        switch answer.status {
        case .ok: ok = true
        case .errno: ok = false
        default: return
        }
        let domains = UInt64(model.inspect { $0.domainCount })
        switch st.kind {
        case .map(let m):
            guard ok else { map.failedCalls += 1; return }
            map.calls += 1
            guard !m.flags.contains(.vaddr), domains > 0 else { return }
            count(&map, model, vaddr: m.vaddr, size: m.size, domains: domains, faulting: true)
            map.ptes += Self.totalPTEs(model) &- ptesBefore
        case .unmap:
            guard ok else { unmap.failedCalls += 1; return }
            unmap.calls += 1
            let chunksBefore = unmap.chunks
            for c in removed(model) {
                count(&unmap, model, vaddr: c.vaddr, size: c.size, domains: domains, faulting: false)
            }
            let chunks = (unmap.chunks - chunksBefore) / max(domains, 1)
            if chunks > 0 { unmap.iotlbSyncs += domains * ((chunks + 511) / 512) }
            unmap.ptes += ptesBefore &- Self.totalPTEs(model)
        case .detach where ok:
            let gone = removed(model)
            guard !gone.isEmpty else { return }
            unmap.releases += 1
            let chunksBefore = unmap.chunks
            let held = max(domainsBefore, 1)
            for c in gone { count(&unmap, model, vaddr: c.vaddr, size: c.size, domains: held, faulting: false) }
            let chunks = (unmap.chunks - chunksBefore) / held
            if chunks > 0 { unmap.iotlbSyncs += held * ((chunks + 511) / 512) }
            unmap.ptes += ptesBefore &- Self.totalPTEs(model)
        default: return
        }
    }

    /// Every domain's leaf entries together.
    static func totalPTEs(_ model: ModelBackend) -> UInt64 {
        guard case .value(let c) = model.pageTableEntries(domain: nil) else { return 0 }
        return c.entries.reduce(0) { $0 &+ $1.count }
    }

    /// The mappings `u` may remove, read before it runs.
    static func overlapping(_ u: UnmapDMA, _ model: ModelBackend) -> [MappingView] {
        let all = u.flags.contains(.all)
        let last = u.size == 0 ? UInt64.max : u.iova &+ (u.size - 1)
        return model.inspect { $0.mappings(meeting: all ? nil : IOVARange(start: u.iova, last: last)) }
    }

    /// What of the candidates the call removed: the parts of each no
    /// mapping holds any more (type1 removes whole mappings, iommufd may
    /// cut an area), with the vaddr of each part.
    func removed(_ model: ModelBackend) -> [(vaddr: UInt64, size: UInt64)] {
        model.inspect { c in
            var out: [(vaddr: UInt64, size: UInt64)] = []
            for cand in candidates {
                var at = cand.iova
                let last = cand.last
                var done = false
                for m in c.mappings(meeting: IOVARange(start: cand.iova, last: last)) where !done {
                    if m.iova > at { out.append((cand.vaddr &+ (at - cand.iova), m.iova - at)) }
                    if m.last >= last { done = true } else { at = max(at, m.last + 1) }
                }
                if !done && at <= last { out.append((cand.vaddr &+ (at - cand.iova), last - at + 1)) }
            }
            return out
        }
    }

    /// Adds the pages, folio steps, BAR lookups, chunks (once per domain)
    /// and first touches of `[vaddr, vaddr+size)` as the model lays it out.
    /// (Sums per backing in an array and the last region kept: a 16 GiB
    /// map of scattered 4K pages is four million chunks. A uniform stretch
    /// of chunks is counted by multiplication, `countStretch`.)
    private func count(_ work: inout KernelWork, _ model: ModelBackend, vaddr: UInt64, size: UInt64, domains: UInt64, faulting: Bool) {
        var tally = Tally()
        _ = model.process.memory.forEachPiece(vaddr: vaddr, size: size) { piece in
            switch piece {
            case .run(let run):
                tally.runs += 1
                countRun(&tally, &work, run, faulting: faulting)
            case .stretch(let s):
                countStretch(&tally, &work, s, faulting: faulting)
            }
            return true
        }
        work.chunks += tally.runs * domains
        work.pfnmapHugeSteps += tally.hugeSteps
        for (k, b) in Backing.allCases.enumerated() where tally.pages[k] > 0 || tally.steps[k] > 0 {
            work.pages[b, default: 0] += tally.pages[k]
            work.folioSteps[b, default: 0] += tally.steps[k]
        }
    }

    /// What `count` sums over a walk, per backing (in `Backing.allCases` order).
    private struct Tally {
        var pages = [UInt64](repeating: 0, count: Backing.allCases.count)
        var steps = [UInt64](repeating: 0, count: Backing.allCases.count)
        var runs: UInt64 = 0, hugeSteps: UInt64 = 0
        /// The region last found (an index in `specs`), -1 for none.
        var last = -1
    }

    /// One physically contiguous chunk, split where the trace's regions end.
    private func countRun(_ tally: inout Tally, _ work: inout KernelWork, _ run: PinnedRun, faulting: Bool) {
        let all = Backing.allCases
        var at = run.vaddr
        let end = run.vaddr &+ run.length
        while at < end {
            let last = tally.last
            if last < 0 || at < specs[last].vaddr || at - specs[last].vaddr >= specs[last].size {
                guard let i = regionIndex(at) else { break }
                tally.last = i
            }
            let spec = specs[tally.last], regionEnd = spec.vaddr &+ spec.size
            let length = min(end, regionEnd) - at
            let backing = Backing(spec), k = all.firstIndex(of: backing)!
            tally.pages[k] += length / 4096
            tally.steps[k] += WorkCount.folioSteps(backing, start: at, length: length, regionStart: spec.vaddr, regionEnd: regionEnd)
            if backing == .pfnmap {
                tally.hugeSteps += WorkCount.pfnmapSteps(vaddr: at, phys: run.phys &+ (at - run.vaddr), length: length)
            }
            if faulting, !spec.populated { touch(&work, region: tally.last, backing: backing, start: at, length: length) }
            at += length
        }
    }

    /// A uniform stretch of chunks, all in one region: the chunks counted
    /// at once, pages and first touches over the stretch's whole range
    /// (the union of its chunks); folio steps and BAR lookups are the
    /// first chunk's times the count where every chunk starts at the same
    /// offset in the 2 MiB and 1 GiB blocks they are counted in (else
    /// chunk by chunk).
    private func countStretch(_ tally: inout Tally, _ work: inout KernelWork, _ s: PinnedStretch, faulting: Bool) {
        guard let i = regionIndex(s.vaddr) else { return }
        let spec = specs[i], regionEnd = spec.vaddr &+ spec.size
        guard s.vaddr &+ (s.length - 1) < regionEnd else {
            // Not inside one region of the trace (never for a layout rule's
            // stretch): chunk by chunk.
            for c in 0..<s.count { tally.runs += 1; countRun(&tally, &work, s.chunk(c), faulting: faulting) }
            return
        }
        tally.last = i
        let backing = Backing(spec), k = Backing.allCases.firstIndex(of: backing)!
        tally.runs += s.count
        tally.pages[k] += s.length / 4096
        let huge: UInt64 = 2 << 20
        let steps: UInt64
        switch backing {
        case .anon4K, .pfnmap:
            steps = s.length / 4096
        case .hugetlb2M, .hugetlb1G, .thp:
            if s.unit % huge == 0 {
                // Every chunk at the same offset in its 2 MiB blocks; a THP
                // region's interior is one interval, so the first and last
                // chunk inside it (or outside) put every chunk there.
                let first = WorkCount.folioSteps(backing, start: s.vaddr, length: s.unit, regionStart: spec.vaddr, regionEnd: regionEnd)
                let lastStart = s.vaddr &+ (s.count - 1) &* s.unit
                let lastSteps = WorkCount.folioSteps(backing, start: lastStart, length: s.unit, regionStart: spec.vaddr, regionEnd: regionEnd)
                if first == lastSteps && (backing != .thp || first == s.unit / huge) {
                    steps = first * s.count
                } else {
                    steps = (0..<s.count).reduce(0) { $0 + WorkCount.folioSteps(backing, start: s.vaddr &+ $1 &* s.unit, length: s.unit,
                                                                                  regionStart: spec.vaddr, regionEnd: regionEnd) }
                }
            } else {
                steps = (0..<s.count).reduce(0) { $0 + WorkCount.folioSteps(backing, start: s.vaddr &+ $1 &* s.unit, length: s.unit,
                                                                              regionStart: spec.vaddr, regionEnd: regionEnd) }
            }
        }
        tally.steps[k] += steps
        if backing == .pfnmap {
            if s.unit < huge {
                // No 2 MiB entry fits in a chunk: one 4K step a page.
                tally.hugeSteps += s.length / 4096
            } else {
                for c in 0..<s.count {
                    let chunk = s.chunk(c)
                    tally.hugeSteps += WorkCount.pfnmapSteps(vaddr: chunk.vaddr, phys: chunk.phys, length: chunk.length)
                }
            }
        }
        if faulting, !spec.populated { touch(&work, region: i, backing: backing, start: s.vaddr, length: s.length) }
    }

    private func regionIndex(_ vaddr: UInt64) -> Int? {
        var lo = 0, hi = specs.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if specs[mid].vaddr <= vaddr { lo = mid + 1 } else { hi = mid }
        }
        let i = lo - 1
        guard i >= 0, vaddr - specs[i].vaddr < specs[i].size else { return nil }
        return i
    }

    /// The first pin of a page of `populated=no` memory faults its folio in
    /// and zeroes it; a later pin of the same memory finds it there.
    private func touch(_ work: inout KernelWork, region: Int, backing: Backing, start: UInt64, length: UInt64) {
        let unit = backing.faultSize
        var a = start / unit
        let b = (start + length - 1) / unit + 1
        var list = touched[region] ?? []
        var fresh: UInt64 = 0
        var merged: [(UInt64, UInt64)] = []
        var lo = a, hi = b
        for (s, e) in list {
            if e < a || s > b { merged.append((s, e)); continue }
            // Overlapping or adjacent: the part of [a, b) before it is new.
            if s > a { fresh += min(s, b) - a }
            a = max(a, e)
            lo = min(lo, s); hi = max(hi, e)
        }
        if b > a { fresh += b - a }
        merged.append((lo, hi))
        list = merged.sorted { $0.0 < $1.0 }
        touched[region] = list
        work.faults += fresh
        work.faultedBytes += fresh * unit
    }
}

// `vfio-bench model`: how fast the model answers, as one table with its
// targets, and one BENCH line per figure.
//
// Every figure calls the model (`Type1Container`) the way the replay engine
// does, except the trace row, which goes through the product's own path:
// `parseTrace` then `Replayer` with a `ModelBackend` (invariants off).

import VFIOFileIO
import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A v2 container with the default VT-d-like domain (4K, 2M, 1G; the MSI
/// window reserved), unlimited memlock, and one memory region.
func benchContainer(memory region: MemoryRegion, domains: [DomainSpec] = [.default]) -> Type1Container {
    var c = Type1Container()
    if case .failure(let e) = c.memory.add(exactly: region) { fatalError("bench memory: \(e)") }
    for d in domains {
        if case .failure(let e) = c.groupSetContainer(d) { fatalError("bench attach: \(e)") }
    }
    if case .failure(let e) = c.setIOMMU(.type1v2) { fatalError("bench SET_IOMMU: \(e)") }
    return c
}

let benchVaddr: UInt64 = 0x7E00_0000_0000
let benchIova: UInt64 = 0x100_0000_0000  // 1 TiB: clear of the MSI window

func rw(iova: UInt64, vaddr: UInt64, size: UInt64) -> MapDMA {
    MapDMA(flags: [.read, .write], vaddr: vaddr, iova: iova, size: size)
}

func unmapRequest(iova: UInt64, size: UInt64) -> UnmapDMA { UnmapDMA(flags: [], iova: iova, size: size) }

// MARK: map + unmap with n live mappings

/// `n` live 4 KiB mappings of physically contiguous memory, one per slot
/// (slot i: iova `benchIova + 8K*i`, vaddr `benchVaddr + 4K*i`).
func containerWithLiveMappings(_ n: Int) -> Type1Container {
    let region = MemoryRegion(vaddr: benchVaddr, size: UInt64(n) * 4096, pageSize: 4096, layout: .contiguous(base: 1 << 32))
    var c = benchContainer(memory: region)
    for i in 0..<UInt64(n) {
        if case .failure(let e) = c.mapDMA(rw(iova: benchIova + i * 8192, vaddr: benchVaddr + i * 4096, size: 4096)) {
            fatalError("bench: mapping \(i) of \(n) failed with \(e)")
        }
    }
    return c
}

/// Ops per second of `unmap(slot); map(slot)` on random slots, the tree
/// holding n-1 … n mappings throughout. Each unmap and each map is one op.
func mapUnmapThroughput(live n: Int, pairs: Int, runs: Int) -> Samples {
    var c = containerWithLiveMappings(n)
    var rng = SeededRandom(seed: UInt64(n))
    let slots = (0..<pairs).map { _ in UInt64(rng.below(UInt64(n))) }
    var failures = 0
    let samples = repeatRuns(runs) {
        let (_, seconds) = timed {
            for s in slots {
                if case .failure = c.unmapDMA(unmapRequest(iova: benchIova + s * 8192, size: 4096)) { failures += 1 }
                if case .failure = c.mapDMA(rw(iova: benchIova + s * 8192, vaddr: benchVaddr + s * 4096, size: 4096)) { failures += 1 }
            }
        }
        return Double(2 * pairs) / seconds
    }
    precondition(failures == 0 && c.mappingCount == n, "bench: \(failures) map/unmap calls failed; the figure would be wrong")
    return samples
}

// MARK: memory per mapping

/// Child-process mode `rss-probe N`: the peak RSS before and after
/// building N live mappings, so nothing else this process did counts.
/// Prints `hwm_before hwm_after rss_before rss_after` in bytes.
func rssProbe(_ n: Int) -> Int32 {
    guard let hwm0 = procStatusBytes("VmHWM"), let rss0 = procStatusBytes("VmRSS") else {
        print("unavailable: no VmHWM in /proc/self/status")
        return 1
    }
    let c = containerWithLiveMappings(n)
    guard let hwm1 = procStatusBytes("VmHWM"), let rss1 = procStatusBytes("VmRSS") else { return 1 }
    precondition(c.mappingCount == n)
    print("\(hwm0) \(hwm1) \(rss0) \(rss1)")
    return 0
}

/// Runs `rss-probe` in a fresh process (this executable) and returns peak
/// RSS growth and resident growth in bytes, or why it could not.
func measureRSS(mappings n: Int) -> Result<(peak: UInt64, resident: UInt64), BenchFailure> {
    guard let exe = executablePath() else { return .failure(BenchFailure("cannot read /proc/self/exe")) }
    guard let (status, out) = shellRun("'\(exe)' rss-probe \(n)") else { return .failure(BenchFailure("popen failed")) }
    let words = out.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt64($0) }
    guard status == 0, words.count == 4 else {
        return .failure(BenchFailure("rss-probe failed: \(out)"))
    }
    return .success((words[1] &- words[0], words[3] &- words[2]))
}

/// This executable, from `/proc/self/exe`.
func executablePath() -> String? {
    var link = [Int8](repeating: 0, count: 4096)
    let len = readlink("/proc/self/exe", &link, link.count - 1)
    guard len > 0 else { return nil }
    return String(decoding: link[0..<len].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

struct BenchFailure: Error, CustomStringConvertible {
    var message: String
    init(_ m: String) { message = m }
    var description: String { message }
}

// MARK: one big MAP_DMA

struct BigMap {
    var name: String
    var size: UInt64
    var pageSize: UInt64
    var layout: PhysicalLayout
    /// Physically contiguous chunks the walk meets.
    var chunks: UInt64
    var runs: Int
}

/// Times one MAP_DMA of `size` bytes of `pageSize` pages laid out as
/// `layout`, and the UNMAP_DMA that follows (untimed for the target).
func bigMap(_ m: BigMap) -> (map: Samples, unmap: Samples, ptes: [UInt64: UInt64]) {
    let region = MemoryRegion(vaddr: benchVaddr, size: m.size, pageSize: m.pageSize, layout: m.layout)
    var c = benchContainer(memory: region)
    var unmapTimes: [Double] = []
    var ptes: [UInt64: UInt64] = [:]
    let maps = repeatRuns(m.runs, warmups: m.runs > 3 ? 1 : 0) {
        let (r, seconds) = timed { c.mapDMA(rw(iova: benchIova, vaddr: benchVaddr, size: m.size)) }
        if case .failure(let e) = r { fatalError("bench: \(m.name) failed with \(e)") }
        ptes = c.pageTableEntries(group: nil) ?? [:]
        let (u, useconds) = timed { c.unmapDMA(unmapRequest(iova: benchIova, size: m.size)) }
        guard case .success(m.size) = u else { fatalError("bench: unmap after \(m.name) gave \(u)") }
        unmapTimes.append(useconds)
        return seconds
    }
    return (maps, Samples(unmapTimes), ptes)
}

// MARK: per op, for the kernel comparison

/// Seconds per op of `map; unmap` of one mapping of `size` backed by
/// `pageSize` pages (one live mapping at most), as the guest lane times it.
func singleMapUnmap(pageSize: UInt64, size: UInt64, pairs: Int) -> (map: Double, unmap: Double) {
    let region = MemoryRegion(vaddr: benchVaddr, size: size, pageSize: pageSize, layout: .contiguous(base: 1 << 32))
    var c = benchContainer(memory: region)
    var mapNs: [Double] = [], unmapNs: [Double] = []
    for _ in 0..<5 {
        var tm: UInt64 = 0, tu: UInt64 = 0
        for _ in 0..<pairs {
            let t0 = monotonicNanoseconds()
            let r = c.mapDMA(rw(iova: benchIova, vaddr: benchVaddr, size: size))
            let t1 = monotonicNanoseconds()
            let u = c.unmapDMA(unmapRequest(iova: benchIova, size: size))
            let t2 = monotonicNanoseconds()
            guard case .success = r, case .success = u else { fatalError("bench: single map/unmap failed") }
            tm += t1 - t0; tu += t2 - t1
        }
        mapNs.append(Double(tm) / Double(pairs)); unmapNs.append(Double(tu) / Double(pairs))
    }
    return (Samples(mapNs).median / 1e9, Samples(unmapNs).median / 1e9)
}

// MARK: the command

struct ModelOptions {
    var costs: KernelCosts?
    var costsNote: String
    /// Fewer repetitions (CI smoke runs).
    var quick = false
}

func modelCommand(_ options: ModelOptions) -> Int32 {
    let machine = Machine.current()
    print("vfio-bench model — the model's speed (release build, one thread)")
    print("machine: \(machine.description)")
    print("clock: CLOCK_MONOTONIC; figures are the median of repeated runs, ± half the range over the median")
    print("")
    flushOut()
    var rows: [[String]] = [["figure", "measured", "target", "verdict"]]
    var lines: [BenchLine] = []
    var notes: [String] = []
    let runs = options.quick ? 3 : 7

    func add(_ figure: String, _ measured: String, _ target: String, _ line: BenchLine?) {
        rows.append([figure, measured, target, line?.verdict ?? ""])
        if let line { lines.append(line) }
        printErr("  \(figure): \(measured)")
    }

    // 1. Throughput with 1K, 16K and 65,535 live mappings.
    var nsPerOp: [(Int, Double)] = []
    for (n, id) in [(1024, "map_unmap_ops_per_s_1024"), (16384, "map_unmap_ops_per_s_16384"), (65535, "map_unmap_ops_per_s_65535")] {
        let s = mapUnmapThroughput(live: n, pairs: options.quick ? 50_000 : 200_000, runs: runs)
        nsPerOp.append((n, 1e9 / s.median))
        let target: Double? = n == 65535 ? 3e6 : nil
        add("map+unmap, \(n) live mappings", s.describe { human($0) + " ops/s" },
            target.map { "≥ \(human($0)) ops/s" } ?? "", BenchLine(name: id, value: s.median, unit: "ops/s", target: target, higherIsBetter: true))
    }
    // O(log n): ns/op divided by log2(n) should stay flat.
    let base = nsPerOp[0].1 / log2(Double(nsPerOp[0].0))
    let growth = nsPerOp.map { "\(sig($0.1)) ns @\($0.0)" }.joined(separator: ", ")
    let worst = nsPerOp.map { ($0.1 / log2(Double($0.0))) / base }.max() ?? 1
    let logOK = worst <= 1.5
    let logLine = "per-op cost vs log2(n): \(growth); ns/op ÷ log2(n) relative to 1K: "
        + nsPerOp.map { sig(($0.1 / log2(Double($0.0))) / base) }.joined(separator: " / ")
    add("ns per op at 1K / 16K / 65,535", nsPerOp.map { sig($0.1) }.joined(separator: " / "),
        "O(log n): ns/op÷log2(n) ≤ 1.5× 1K's", nil)
    rows[rows.count - 1][3] = logOK ? "met" : "NOT MET"
    lines.append(BenchLine(name: "map_unmap_log_growth_ratio", value: worst, unit: "ratio", target: 1.5, higherIsBetter: false))
    notes.append(logLine)

    // 2. Memory per live mapping.
    let n = 65535
    switch measureRSS(mappings: n) {
    case .success(let (peak, resident)):
        let perPeak = Double(peak) / Double(n)
        add("memory per live mapping (peak RSS ÷ \(n))", "\(sig(perPeak)) B",
            "≤ 128 B", BenchLine(name: "bytes_per_mapping", value: perPeak, unit: "bytes", target: 128, higherIsBetter: false))
        notes.append("memory: VmHWM and VmRSS of a fresh `vfio-bench rss-probe \(n)` process, read before and after it built \(n) mappings "
            + "(4 KiB, one domain): peak growth \(sig(perPeak)) B per mapping, resident growth after \(sig(Double(resident) / Double(n))) B; "
            + "includes the trees' spare capacity and the copy made when an array grows. "
            + "Payload sizes: DMAEntry \(MemoryLayout<DMAEntry>.stride) B, RunList \(MemoryLayout<RunList>.stride) B "
            + "(+16 B key and links per tree node)")
    case .failure(let why):
        add("memory per live mapping", "not measured (\(why))", "≤ 128 B",
            BenchLine(name: "bytes_per_mapping", value: .nan, unit: "bytes", target: 128, higherIsBetter: false, reason: why.message))
    }

    // 3. One big MAP_DMA.
    let tib: UInt64 = 1 << 40, gib: UInt64 = 1 << 30, mib: UInt64 = 1 << 20
    let big: [(BigMap, String?, Double?)] = [
        (BigMap(name: "1 TiB of scattered 1 GiB pages", size: tib, pageSize: gib, layout: .scattered(seed: 7), chunks: 1024, runs: runs),
         "map_1tib_1g_scattered_ms", 10),
        (BigMap(name: "1 TiB of scattered 2 MiB pages", size: tib, pageSize: 2 * mib, layout: .scattered(seed: 7), chunks: tib / (2 * mib), runs: options.quick ? 2 : 3),
         "map_1tib_2m_scattered_ms", nil),
        (BigMap(name: "64 GiB of scattered 4 KiB pages", size: 64 * gib, pageSize: 4096, layout: .scattered(seed: 7), chunks: 64 * gib / 4096, runs: options.quick ? 1 : 3),
         "map_64gib_4k_scattered_ms", nil),
        (BigMap(name: "1 TiB of contiguous 4 KiB pages", size: tib, pageSize: 4096, layout: .contiguous(base: 1 << 41), chunks: 1, runs: runs),
         "map_1tib_4k_contiguous_ms", nil),
    ]
    var perChunk: [String] = []
    var chunkCosts: [(scattered: Bool, ns: Double)] = []
    for (m, id, target) in big {
        let (map, unmap, ptes) = bigMap(m)
        let ms = map.median * 1e3
        let ptesText = ptes.keys.sorted().map { "\(formatSize($0)):\(ptes[$0]!)" }.joined(separator: ",")
        add("MAP_DMA of \(m.name)", map.describe { duration($0) },
            target.map { "< \(sig($0)) ms" } ?? "",
            id.map { BenchLine(name: $0, value: ms, unit: "ms", target: target, higherIsBetter: false) })
        if case .scattered = m.layout { chunkCosts.append((true, map.median / Double(m.chunks) * 1e9)) }
        else { chunkCosts.append((false, map.median * 1e9)) }
        perChunk.append("\(m.name): \(m.chunks) chunks, PTEs \(ptesText), map \(duration(map.median)) = \(sig(map.median / Double(m.chunks) * 1e9)) ns/chunk "
            + "= \(sig(map.median / Double(m.size / 4096) * 1e9)) ns per 4 KiB; unmap \(duration(unmap.median))")
    }
    // Cost follows pieces, not chunks: a scattered layout's chunks are one
    // uniform stretch (pinned and mapped by arithmetic), so 1024 … 16M
    // chunks cost about what one contiguous chunk of 2^28 pages does.
    let scatteredNs = chunkCosts.filter(\.scattered).map(\.ns)
    let chunksOf = big.filter { if case .scattered = $0.0.layout { true } else { false } }.map { Double($0.0.chunks) }
    let perMapNs = zip(scatteredNs, chunksOf).map { $0 * $1 }
    let contiguousNs = chunkCosts.first(where: { !$0.scattered })?.ns ?? .nan
    add("MAP_DMA of 1K…16M scattered chunks; 1 chunk of 2^28 pages",
        perMapNs.map { duration($0 / 1e9) }.joined(separator: " / ") + "; \(duration(contiguousNs / 1e9))",
        "each < 100 µs (a stretch, not a step per chunk)", nil)
    rows[rows.count - 1][3] = (perMapNs + [contiguousNs]).allSatisfy { $0 < 100_000 } ? "met" : "NOT MET"
    notes.append("one MAP_DMA (fresh container, one domain 4K,2M,1G):\n    " + perChunk.joined(separator: "\n    "))

    // 3b. Plans of terabyte guests, each in a process of its own.
    let terabytes = scalePlanSection(quick: options.quick)
    for r in terabytes.rows { rows.append(r); printErr("  \(r[0]): \(r[1])") }
    lines += terabytes.lines
    notes += terabytes.notes

    // 4. A generated 1M-operation trace.
    let ops = options.quick ? 200_000 : 1_000_000
    let trace = generatedTrace(operations: ops, seed: 1)
    var parsed: Trace? = nil
    let parse = repeatRuns(options.quick ? 2 : 3, warmups: 0) {
        let (r, s) = timed { parseTrace(bytes: trace.bytes, file: "generated.trace") }
        guard case .success(let t) = r else { fatalError("bench: the generated trace did not parse: \(r)") }
        parsed = t
        return s
    }
    var failed = 0, outcomes = 0
    let replay = repeatRuns(options.quick ? 2 : 3, warmups: 0) {
        let backend = ModelBackend(checksInvariants: false)
        let replayer = Replayer(backends: [backend])
        // As `vfio-sim replay` without --verbose or JSON.
        replayer.explainsHeldAnswers = false
        replayer.keepsHeldOutcomes = false
        let (report, s) = timed { replayer.run(parsed!) }
        failed = report.outcomes.filter(\.failed).count + report.errors.count
        outcomes = report.outcomes.count + report.heldNotKept
        return s
    }
    precondition(failed == 0, "bench: \(failed) answers of the generated trace did not hold; the generator or the model is wrong")
    let total = parse.median + replay.median
    let scale = Double(1_000_000) / Double(ops)
    add("1M-op trace: parse + replay" + (scale != 1 ? " (\(ops / 1000)K ×\(sig(scale)))" : ""), duration(total * scale)
        + " (parse \(duration(parse.median * scale)), replay \(duration(replay.median * scale)))",
        "< 1 s", BenchLine(name: "replay_1m_ops_s", value: total * scale, unit: "s", target: 1, higherIsBetter: false))
    lines.append(BenchLine(name: "replay_only_1m_ops_s", value: replay.median * scale, unit: "s", target: nil, higherIsBetter: false))
    lines.append(BenchLine(name: "parse_1m_ops_s", value: parse.median * scale, unit: "s", target: nil, higherIsBetter: false))
    let mbps = Double(trace.bytes.count) / 1e6 / parse.median
    add("parser alone", "\(sig(mbps)) MB/s", "", BenchLine(name: "parse_mb_per_s", value: mbps, unit: "MB/s", target: nil, higherIsBetter: true))
    notes.append("trace: \(sig(Double(trace.bytes.count) / 1e6)) MB, \(trace.counts) within \(trace.space); every one of \(outcomes) answers held; "
        + "parse ±\(fixed(parse.spreadPercent, 1))%, replay ±\(fixed(replay.spreadPercent, 1))% over \(parse.values.count) runs; replay = Replayer + ModelBackend(checksInvariants: false)")

    // 5. Kernel comparison.
    let sizes: [(String, UInt64)] = [("4k", 4096), ("2m", 2 * mib), ("1g", gib)]
    var ratios: [Double] = []
    for (label, size) in sizes {
        let model = singleMapUnmap(pageSize: size, size: size, pairs: options.quick ? 20_000 : 100_000)
        let modelText = "model map \(duration(model.map)), unmap \(duration(model.unmap))"
        lines.append(BenchLine(name: "model_map_\(label)_us", value: model.map * 1e6, unit: "us", target: nil, higherIsBetter: false))
        lines.append(BenchLine(name: "model_unmap_\(label)_us", value: model.unmap * 1e6, unit: "us", target: nil, higherIsBetter: false))
        if let k = options.costs, let km = k.value("kernel_map_\(label)_us"), let ku = k.value("kernel_unmap_\(label)_us") {
            let ratio = (km + ku) / ((model.map + model.unmap) * 1e6)
            ratios.append(ratio)
            add("map+unmap of one \(formatSize(size)) page: kernel/model", "\(sig(ratio))×", "≥ 20×", nil)
            notes.append("\(formatSize(size)) page: kernel map \(sig(km)) µs, unmap \(sig(ku)) µs; \(modelText)")
            rows[rows.count - 1][3] = ratio >= 20 ? "met" : "NOT MET"
        } else {
            add("map+unmap of one \(formatSize(size)) page: kernel/model", "not measured", "≥ 20×", nil)
            notes.append("\(formatSize(size)) page: kernel not measured; \(modelText)")
            rows[rows.count - 1][3] = "not measured"
        }
    }
    if ratios.count == sizes.count {
        add("model/kernel speedup (smallest of the three)", "\(sig(ratios.min()!))×", "≥ 20×",
            BenchLine(name: "model_vs_kernel_speedup", value: ratios.min()!, unit: "x", target: 20, higherIsBetter: true))
        notes.append("kernel: \(options.costsNote)")
    } else {
        notes.append("kernel: not measured (\(options.costsNote))")
        add("model/kernel speedup", "not measured", "≥ 20×",
            BenchLine(name: "model_vs_kernel_speedup", value: .nan, unit: "x", target: 20, higherIsBetter: true, reason: options.costsNote))
    }

    // 6. Instruction counts: the same loops, in figures the machine's load
    // does not move.
    let counts = instructionSection(quick: options.quick)
    for r in counts.rows { rows.append(r) }
    lines += counts.lines
    notes += counts.notes

    print(renderTable(rows))
    for n in notes { print("- " + n) }
    print("")
    for l in lines { print(l.text) }
    flushOut()
    return 0
}


// MARK: instruction counts

/// The instruction figures as table rows, BENCH lines and a note saying how
/// they were counted (`vfio-bench model`, and `vfio-bench instructions`
/// alone).
func instructionSection(quick: Bool) -> (rows: [[String]], lines: [BenchLine], notes: [String]) {
    var rows: [[String]] = [], lines: [BenchLine] = [], notes: [String] = []
    let counter = InstructionCounter.available().flatMap { c -> Result<(InstructionCounter, String), BenchFailure> in
        guard let exe = executablePath() else { return .failure(BenchFailure("cannot read /proc/self/exe")) }
        return c.countable(exe).map { (c, $0) }
    }
    var counted: [String] = []
    for f in instructionFigures(quick: quick) {
        let line: BenchLine, measured: String
        switch counter.flatMap({ measureInstructions(f, counter: $0.0, exe: $0.1) }) {
        case .success(let m):
            measured = "\(sig(m.perUnit)) \(f.unit)"
            line = BenchLine(name: f.id, value: m.perUnit, unit: f.unit, target: f.target, higherIsBetter: false)
            counted.append("\(f.id): `vfio-bench \(f.small)` \(m.small), `\(f.large)` \(m.large) instructions, difference ÷ \(Int(f.units))")
        case .failure(let why):
            measured = "not measured (\(why))"
            line = BenchLine(name: f.id, value: .nan, unit: f.unit, target: f.target, higherIsBetter: false, reason: why.message)
        }
        rows.append([f.what, measured, f.target.map { "≤ \(sig($0))" } ?? "", line.verdict])
        printErr("  \(f.what): \(measured)")
        lines.append(line)
    }
    // O(log n) in instructions: per-op instructions ÷ log2(n) at 65,535
    // live mappings against 1,024's. The time ratio beside it
    // (`map_unmap_log_growth_ratio`) also counts the cache misses of a
    // tree that no longer fits in the CPU's caches; this one counts only
    // the work the code does.
    let perOp = { (id: String) in lines.first { $0.name == id }?.value ?? .nan }
    let (large, small) = (perOp("map_unmap_instructions_per_op_65535"), perOp("map_unmap_instructions_per_op_1024"))
    let ratio = (large / log2(65535)) / (small / log2(1024))
    let ratioLine = ratio.isNaN
        ? BenchLine(name: "map_unmap_instructions_log_growth_ratio", value: .nan, unit: "ratio", target: 1.5, higherIsBetter: false,
                    reason: "a map/unmap instruction figure was not measured")
        : BenchLine(name: "map_unmap_instructions_log_growth_ratio", value: ratio, unit: "ratio", target: 1.5, higherIsBetter: false)
    rows.append(["instructions/op ÷ log2(n), 65,535 against 1,024", ratio.isNaN ? "not measured" : sig(ratio), "≤ 1.5", ratioLine.verdict])
    lines.append(ratioLine)
    if case .success(let (_, exe)) = counter, exe != executablePath() { unlink(exe) }
    if case .success(let (c, _)) = counter {
        notes.append("instructions: counted by \(c.name), each figure the difference of two whole runs "
            + "that differ only in the work of the loop (the setup cancels out):\n    " + counted.joined(separator: "\n    "))
    }
    return (rows, lines, notes)
}

/// `vfio-bench instructions`: the instruction figures alone (a few
/// minutes under callgrind; no timing, so the machine may be busy).
func instructionsCommand(quick: Bool) -> Int32 {
    print("vfio-bench instructions — instructions per operation or byte (release build)")
    let s = instructionSection(quick: quick)
    print(renderTable([["figure", "measured", "target", "verdict"]] + s.rows))
    for n in s.notes { print("- " + n) }
    print("")
    for l in s.lines { print(l.text) }
    flushOut()
    return s.lines.contains { $0.value.isNaN } ? 1 : 0
}

// MARK: profiling

/// `vfio-bench hot WHAT`: one figure's loop alone, for `perf record` or
/// `valgrind --tool=callgrind` (map-unmap at 65,535 live mappings, parse
/// or replay of the 1M-op trace). `second` is, for map-unmap, the live
/// mappings (default 65,535), for parse and replay how many times the same
/// trace is parsed (and replayed) (default 1).
func hotCommand(_ what: String, _ count: Int, _ second: Int?) -> Int32 {
    switch what {
    case "map-unmap":
        let s = mapUnmapThroughput(live: max(second ?? 65535, 1), pairs: count, runs: 1)
        print("\(human(s.median)) ops/s")
    case "parse", "replay":
        // The trace is generated once; with a second number N > 1 the same bytes
        // are parsed (and replayed) again, so two runs that differ only in
        // N differ by exactly that work (see InstructionCount.swift).
        let trace = generatedTrace(operations: count, seed: 1)
        for _ in 0..<max(second ?? 1, 1) {
            let (r, ps) = timed { parseTrace(bytes: trace.bytes, file: "generated.trace") }
            guard case .success(let t) = r else { return 1 }
            print("parse \(duration(ps))")
            if what == "replay" {
                let replayer = Replayer(backends: [ModelBackend(checksInvariants: false)])
                // As `vfio-sim replay` without --verbose or JSON.
                replayer.explainsHeldAnswers = false
                replayer.keepsHeldOutcomes = false
                let (report, rs) = timed { replayer.run(t) }
                let failed = report.outcomes.filter(\.failed).count + report.errors.count
                guard failed == 0 else { printErr("hot replay: \(failed) answers did not hold"); return 1 }
                print("replay \(duration(rs))")
            }
        }
    default:
        printErr("hot takes map-unmap, parse or replay")
        return 2
    }
    return 0
}

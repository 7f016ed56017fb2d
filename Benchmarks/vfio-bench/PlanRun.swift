// `vfio-bench plans`: each plan's trace parsed with `parseTrace` and
// replayed by the `Replayer` on a `ModelBackend`, so every number is the
// product's own answer; then a table, BENCH lines and an SVG chart.

import VFIOFileIO
import VFIOCore
import VFIOCost
import VFIOModel
import VFIOLane
import VFIOReplay
import VFIOTrace

/// What one plan did on the model.
struct PlanResult {
    var plan: Plan
    /// MAP_DMA and UNMAP_DMA calls issued.
    var ioctls = 0
    var maps = 0
    var unmaps = 0
    /// At the end of the map phase.
    var peakMappings: UInt64 = 0
    var peakLocked: UInt64 = 0
    var mappedBytes: UInt64 = 0
    /// Domain name → page size → entries, at the end of the map phase.
    var ptes: [(domain: String, counts: [UInt64: UInt64])] = []
    /// At the end of the plan (what a failed teardown leaves).
    var finalMappings: UInt64 = 0
    var finalLocked: UInt64 = 0
    /// errno → (count, first statement that got it).
    var failures: [(errno: String, count: Int, first: String)] = []
    var entryLimit: UInt32 = 65535
    /// Per-op totals for the cost model (first domain only).
    var mapCalls = 0, mapPages: UInt64 = 0, mapPTEs: UInt64 = 0
    var unmapCalls = 0, unmapPages: UInt64 = 0, unmapPTEs: UInt64 = 0
    var failedCalls = 0
    /// Seconds the model took (parse, replay).
    var parseSeconds = 0.0, replaySeconds = 0.0

    /// Microseconds the kernel would take, by the cost model.
    func predictedMicros(_ m: CostModel) -> Double {
        Double(mapCalls) * m.map.ioctl + Double(mapPages) * m.map.page + Double(mapPTEs) * m.map.pte
            + Double(unmapCalls) * m.unmap.ioctl + Double(unmapPages) * m.unmap.page + Double(unmapPTEs) * m.unmap.pte
            + Double(failedCalls) * min(m.map.ioctl, m.unmap.ioctl)
    }
}

func pteTotal(_ c: PTECounts?) -> UInt64 { c?.entries.reduce(0) { $0 &+ $1.count } ?? 0 }

/// Replays `plan` on the model and measures it.
func runPlan(_ plan: Plan) -> Result<PlanResult, BenchFailure> {
    var result = PlanResult(plan: plan)
    let bytes = Array(plan.text.utf8)
    let (parsed, parseSeconds) = timed { parseTrace(bytes: bytes, file: plan.id + ".trace") }
    result.parseSeconds = parseSeconds
    let trace: Trace
    switch parsed {
    case .success(let t): trace = t
    case .failure(let f): return .failure(BenchFailure("plan \(plan.id) did not parse: \(f)"))
    }
    let backend = ModelBackend(checksInvariants: false)
    let replayer = Replayer(backends: [backend])
    var opIndex = 0
    var lockedBefore: UInt64 = 0, ptesBefore: UInt64 = 0
    var failureIndex: [String: Int] = [:]
    func firstDomainPTEs() -> UInt64 {
        backend.inspect { c in c.groups.first.map { pteTotal(c.pteCounts(group: $0.name)) } ?? 0 }
    }
    func snapshot() {
        backend.inspect { c in
            result.peakMappings = UInt64(c.mappingCount)
            result.peakLocked = c.limitedBytes
            // dma_avail + mappings is the limit the container opened with.
            result.entryLimit = (c.availableEntries ?? 0) + UInt32(c.mappingCount)
            result.mappedBytes = c.mappings(meeting: nil).reduce(0) { $0 + $1.size }
            result.ptes = c.groups.compactMap { g in
                guard c.domainCount > 0, let counts = c.pteCounts(group: g.name) else { return nil }
                return (g.name, counts.counts)
            }
        }
    }
    replayer.willRun = { _ in
        lockedBefore = backend.inspect { $0.limitedBytes }
        ptesBefore = firstDomainPTEs()
    }
    replayer.didRun = { st, outcome in
        guard let answer = outcome.answers.first else { return }
        opIndex += 1
        result.ioctls += 1
        let locked = backend.inspect { $0.limitedBytes }, ptes = firstDomainPTEs()
        switch (st.kind, answer.status) {
        case (.map, .ok):
            result.maps += 1; result.mapCalls += 1
            result.mapPages += (locked &- lockedBefore) / 4096
            result.mapPTEs += ptes &- ptesBefore
        case (.unmap, .ok):
            result.unmaps += 1; result.unmapCalls += 1
            result.unmapPages += (lockedBefore &- locked) / 4096
            result.unmapPTEs += ptesBefore &- ptes
        case (_, .errno(let e)):
            result.failedCalls += 1
            if case .map = st.kind { result.maps += 1 } else { result.unmaps += 1 }
            let name = e.description
            if let i = failureIndex[name] { result.failures[i].count += 1 } else {
                failureIndex[name] = result.failures.count
                result.failures.append((name, 1, "call #\(opIndex), line \(st.line): \(outcome.statement)"))
            }
        default: break
        }
        if opIndex == plan.mapPhaseOps { snapshot() }
    }
    let (report, replaySeconds) = timed { replayer.run(trace) }
    result.replaySeconds = replaySeconds
    if let e = report.errors.first { return .failure(BenchFailure("plan \(plan.id): \(e.message)")) }
    if opIndex < plan.mapPhaseOps || plan.mapPhaseOps == 0 { snapshot() }
    result.finalMappings = UInt64(backend.inspect { $0.mappingCount })
    result.finalLocked = backend.inspect { $0.limitedBytes }
    return .success(result)
}

// MARK: The command

struct PlansOptions {
    var setup: PlanSetup
    var svgPath: String
    var costs: KernelCosts?
    var costsNote: String
    var emitDir: String?
    /// Only plans whose id contains this.
    var filter: String?
}

/// The plan's kernel time as `vfio-sim plan --time` gives it: the
/// published bare-metal profile, on the model's counts.
func publishedKernelTime(_ plan: Plan) -> KernelTime? {
    guard case .success(let t) = parseTrace(plan.text, file: plan.id + ".trace") else { return nil }
    return Planner.plan(t, costs: .published).kernelTime
}

/// `4K:0 2M:2048` → `2M×2048`, largest first.
func pteText(_ counts: [UInt64: UInt64]) -> String {
    counts.isEmpty ? "none" : counts.keys.sorted(by: >).map { "\(formatSize($0))×\(counts[$0]!)" }.joined(separator: " ")
}

func plansCommand(_ o: PlansOptions) -> Int32 {
    let machine = Machine.current()
    let costModel = o.costs?.model
    print("vfio-bench plans — DMA mapping plans for \(formatSize(o.setup.memory)) of memory, replayed on the model")
    print("machine: \(machine.description)")
    print("domains: " + o.setup.domains.map { "\($0.name) pgsizes=\(formatPageSizes($0.pgsizes))" }.joined(separator: ", ")
          + "; memlock \(o.setup.memlock.map(formatSize) ?? "unlimited"); dma_entry_limit \(o.setup.dmaEntryLimit ?? 65535)")
    if let costModel {
        print("cost model: \(costModel.description)")
        print("  from \(o.costsNote)")
        if let costs = o.costs { print("  \(costs.predictionCaveat)") }
    } else {
        print("kernel time: the published bare-metal profile (docs/COSTS.md), as vfio-sim plan --time; \(o.costsNote)")
    }
    print("")
    flushOut()

    let plans = allPlans(o.setup, only: o.filter)
    var results: [PlanResult] = []
    for plan in plans {
        printErr("  replaying \(plan.id) ...")
        switch runPlan(plan) {
        case .success(let r): results.append(r)
        case .failure(let e): printErr("vfio-bench: \(e)"); return 1
        }
    }

    var rows: [[String]] = [["plan", "backing", "layout", "ioctls", "failed", "mappings/limit", "locked (memlock needed)"]
        + o.setup.domains.map { "PTEs \($0.name)" } + o.setup.domains.map { "reach/PTE \($0.name)" }
        + ["kernel map", "kernel unmap"] + (costModel == nil ? [] : ["TCG-profile time"]) + ["model time"]]
    var lines: [BenchLine] = []
    for r in results {
        var row = [r.plan.name, formatSize(r.plan.backing), r.plan.layoutName, String(r.ioctls), String(r.failedCalls),
                   "\(r.peakMappings)/\(r.entryLimit)", bytesText(r.peakLocked)]
        for d in o.setup.domains {
            row.append(pteText(r.ptes.first(where: { $0.domain == d.name })?.counts ?? [:]))
        }
        for d in o.setup.domains {
            let total = r.ptes.first(where: { $0.domain == d.name })?.counts.values.reduce(0, +) ?? 0
            row.append(total == 0 ? "-" : bytesText(r.mappedBytes / total))
        }
        let time = publishedKernelTime(r.plan)
        row.append(time.map { duration($0.map) } ?? "-")
        row.append(time.map { duration($0.unmap) } ?? "-")
        if let costModel { row.append(duration(r.predictedMicros(costModel) / 1e6)) }
        row.append(duration(r.replaySeconds))
        rows.append(row)
        let id = r.plan.id.replacingDashes()
        lines.append(BenchLine(name: "plan_\(id)_ioctls", value: Double(r.ioctls), unit: "calls", target: nil, higherIsBetter: false))
        lines.append(BenchLine(name: "plan_\(id)_mappings", value: Double(r.peakMappings), unit: "vfio_dma", target: Double(r.entryLimit), higherIsBetter: false))
        lines.append(BenchLine(name: "plan_\(id)_locked_bytes", value: Double(r.peakLocked), unit: "bytes", target: nil, higherIsBetter: false))
        for (domain, counts) in r.ptes {
            lines.append(BenchLine(name: "plan_\(id)_ptes_\(domain)", value: Double(counts.values.reduce(0, +)), unit: "entries", target: nil, higherIsBetter: false))
        }
        lines.append(BenchLine(name: "plan_\(id)_failures", value: Double(r.failedCalls), unit: "calls", target: nil, higherIsBetter: false))
        lines.append(BenchLine(name: "plan_\(id)_kernel_map_ms", value: time.map { $0.map * 1e3 } ?? .nan, unit: "ms", target: nil, higherIsBetter: false))
        lines.append(BenchLine(name: "plan_\(id)_kernel_unmap_ms", value: time.map { $0.unmap * 1e3 } ?? .nan, unit: "ms", target: nil, higherIsBetter: false))
        if let costModel {
            lines.append(BenchLine(name: "plan_\(id)_predicted_ms", value: r.predictedMicros(costModel) / 1e3, unit: "ms", target: nil, higherIsBetter: false))
        } else {
            lines.append(BenchLine(name: "plan_\(id)_predicted_ms", value: .nan, unit: "ms", target: nil, higherIsBetter: false, reason: o.costsNote))
        }
    }
    print(renderTable(rows, rightAligned: [3, 4, 5]))

    print("Failures a user would hit, and what is left behind:")
    var anyFailure = false
    for r in results where !r.failures.isEmpty || r.finalMappings != 0 && r.plan.mapPhaseOps < r.ioctls {
        anyFailure = true
        var s = "  \(r.plan.id): "
        s += r.failures.map { "\($0.errno) ×\($0.count) (first at \($0.first))" }.joined(separator: "; ")
        if r.plan.mapPhaseOps < r.ioctls {
            s += (r.failures.isEmpty ? "" : "; ") + "after the teardown \(r.finalMappings) mappings and \(bytesText(r.finalLocked)) stay locked"
        }
        print(s)
        for f in r.failures { print("      \(explain(f.errno, r))") }
    }
    if !anyFailure { print("  none") }
    if let m = o.setup.memlock {
        print("  (replayed with memlock \(formatSize(m)); without --memlock the limit is unlimited and the column shows the memlock each plan needs)")
    } else {
        print("  memlock: every plan ran with an unlimited RLIMIT_MEMLOCK; with a limit below the locked column, MAP_DMA fails with ENOMEM (try --memlock 64M)")
    }
    print("")
    print("Plans:")
    var seen = Set<String>()
    for r in results where seen.insert(r.plan.name).inserted { print("  \(pad(r.plan.name, 15)) \(r.plan.summary)") }
    print("  reach/PTE: mapped bytes per IOMMU leaf entry, the memory one IOTLB entry covers on average.")
    print("  kernel map, kernel unmap: what vfio-sim plan --time estimates, the published bare-metal profile (docs/COSTS.md), every domain;")
    print("  failed calls are in 'failed' and under the failures below, an ioctl each in the time; the unmap time includes the release at the last detach.")
    if costModel != nil {
        print("  TCG-profile time: the lane's QEMU TCG constants (--costs), for one group in \(o.setup.domains[0].name); each further domain adds the PTE cost of its entries;")
        if let costs = o.costs { print("  \(costs.predictionCaveat).") }
        print("  a failed call is charged one ioctl. Model time: the Replayer on ModelBackend (invariants off).")
    }
    print("")

    if let costs = o.costs {
        let measured = costs.values.keys.filter { $0.hasPrefix("kernel_plan_") && $0.hasSuffix("_measured_ms") }.sorted()
        if !measured.isEmpty {
            // The header says `(plans at 64M)`.
            let memory = costs.header.lazy.compactMap { h -> String? in
                let parts = h.split(separator: "(plans at ", maxSplits: 1, omittingEmptySubsequences: false)
                return parts.count == 2 ? String(parts[1].prefix(while: { $0 != ")" })) : nil
            }.first ?? "?"
            print("Cost model check: the same plans at \(memory) run for real in the guest (sum of ioctl times) against the prediction")
            print("(there the frames are whatever the guest kernel gave: scattered/contiguous only name the plan; the prediction uses the real frames):")
            var check: [[String]] = [["plan", "measured", "predicted", "error"]]
            for key in measured {
                let id = String(key.dropFirst("kernel_plan_".count).dropLast("_measured_ms".count))
                guard let m = costs.value(key), let p = costs.value("kernel_plan_\(id)_predicted_ms") else { continue }
                check.append([id, duration(m / 1e3), duration(p / 1e3), (p >= m ? "+" : "") + fixed((p / m - 1) * 100, 0) + "%"])
            }
            print(renderTable(check, rightAligned: [1, 2, 3]).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            print("")
        }
    }

    let svg = plansSVG(results, domains: o.setup.domains.map(\.name),
                       legends: o.setup.domains.map { "\($0.name) (\(formatPageSizes($0.pgsizes)))" }, costModel: costModel, memory: o.setup.memory, note: o.costsNote)
    if let slash = o.svgPath.lastIndex(of: "/"), slash != o.svgPath.startIndex {
        _ = makeDirectories(String(o.svgPath[..<slash]))
    }
    if let e = writeFile(o.svgPath, svg) { printErr("vfio-bench: \(e)"); return 1 }
    print("chart: \(o.svgPath)")

    if let dir = o.emitDir {
        if let e = emitTraces(plans, to: dir, setup: o.setup) { printErr("vfio-bench: \(e)"); return 1 }
    }
    print("")
    for l in lines { print(l.text) }
    return 0
}

/// What a failure means for the user, in one sentence.
func explain(_ errno: String, _ r: PlanResult) -> String {
    switch errno {
    case "ENOSPC": return "ENOSPC: more than dma_entry_limit (\(r.entryLimit)) vfio_dma entries; raise vfio_iommu_type1.dma_entry_limit or map larger ranges"
    case "ENOMEM": return "ENOMEM: locked memory would pass RLIMIT_MEMLOCK; raise it (ulimit -l) or grant CAP_IPC_LOCK"
    case "EINVAL" where r.plan.name.hasPrefix("spdk"): return "EINVAL: a v2 unmap may not bisect a mapping; unmap whole registrations, or register per 2M page"
    case "EINVAL": return "EINVAL: the range crosses a reserved IOVA region (the MSI window) or leaves the aperture; map RAM sections around it"
    default: return errno
    }
}

extension String {
    func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}

// MARK: Traces for the kernel lane

/// Writes each plan with one domain (the real group's), the model's answer
/// after every operation and checks at the end of its map phase, so
/// `vfio-sim replay --backend both` in the lane compares them.
func emitTraces(_ plans: [Plan], to dir: String, setup: PlanSetup) -> String? {
    if let e = makeDirectories(dir) { return e }
    var laneSetup = setup
    laneSetup.domains = [setup.domains[0]]
    var written = 0
    let singles = Dictionary(allPlans(laneSetup).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    for plan in plans {
        guard let single = singles[plan.id] else { continue }
        let answered = ScenarioAnswers.answer(text: single.text, checkpoints: [single.mapPhaseOps], file: single.id)
        guard case .success(let trace) = answered else { return "plan \(plan.id) failed on the model" }
        let path = dir + "/" + plan.id + ".trace"
        if let e = writeFile(path, printTrace(trace)) { return e }
        written += 1
    }
    print("traces: \(written) plans written to \(dir)/ (one domain, the model's answers; replay them in the lane with scripts/kernel-lane/lane.sh \(dir)/*.trace)")
    return nil
}

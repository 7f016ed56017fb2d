// `vfio-bench kernel-costs`: run inside the kernel lane's guest, or on real
// hardware (root, a group whose devices are bound to vfio-pci, in
// VFIO_GROUP or --group; --out FILE keeps the cost file). Times real MAP_DMA and UNMAP_DMA
// calls on 4 KiB, 2 MiB and 1 GiB backed memory, and fits the cost model's
// constants (per ioctl, per pinned page, per PTE) to them. The PTEs of each
// timed call come from the model, given the frames the call really pinned
// (`/proc/self/pagemap`) and the IOMMU's page sizes (GET_INFO).

import VFIOFileIO
import VFIOCore
import VFIOCost
import VFIOKernel
import VFIOLane
import VFIOModel
import VFIOReplay
import VFIOTrace

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct CostPoint {
    var label: String
    var pageSize: UInt64
    var size: UInt64
    var pages: UInt64
    var ptes: UInt64
    var map: Samples
    var unmap: Samples
}

func kernelCostsCommand(groupPath: String?, quick: Bool, plansDir: String? = nil, outPath: String? = nil) -> Int32 {
    // Everything printed on stdout is the cost file: `#` lines saying where
    // it was measured, then BENCH lines; --out also writes it to a file
    // that `vfio-bench plans --costs FILE` and `model --costs FILE` read.
    var file = ""
    func print(_ line: String) {
        Swift.print(line)
        file += line + "\n"
    }
    let machine = Machine.current()
    guard let path = groupPath ?? getenv("VFIO_GROUP").map({ String(cString: $0) }) else {
        printErr("vfio-bench kernel-costs: no group (set VFIO_GROUP or pass --group /dev/vfio/N, a group whose devices are bound to vfio-pci)")
        return 2
    }
    if geteuid() != 0 { printErr("vfio-bench kernel-costs: needs root"); return 2 }
    let container: KernelBackend
    switch openContainer(path) {
    case .success(let c): container = c
    case .failure(let e): printErr("vfio-bench kernel-costs: \(e.message)"); return 1
    }
    defer { container.close() }
    guard case .success(let info) = container.getInfo(argsz: 4096), let ranges = info.iovaRanges else {
        printErr("vfio-bench kernel-costs: GET_INFO failed or has no IOVA ranges"); return 1
    }
    let pgsizes = PageSizes(rawValue: info.iovaPgsizes)
    // A 1 GiB-aligned IOVA inside a valid range, with 2 GiB of room.
    guard let iova = ranges.lazy.compactMap({ r -> UInt64? in
        let start = roundUp(max(r.start, gib), gib)
        return start <= r.last && r.last - start >= 2 * gib - 1 ? start : nil
    }).first else {
        printErr("vfio-bench kernel-costs: no 2 GiB of IOVA space in \(ranges.map(formatRange))"); return 1
    }
    let release = getenv("VFIO_KERNEL_RELEASE").map { String(cString: $0) } ?? machine.kernel
    let iommuWords = "kernel=\(release) iommu pgsizes=\(formatPageSizes(pgsizes)) iova=\(ranges.map(formatRange).joined(separator: ","))"
    if let config = getenv("VFIO_LANE_CONFIG").map({ String(cString: $0) }) {
        print("# measured by vfio-bench kernel-costs in the kernel lane: config=\(config) \(iommuWords), QEMU TCG guest (emulated CPU and IOMMU: slower than bare metal)")
        print("# guest: \(machine.description)")
    } else {
        print("# measured by vfio-bench kernel-costs on real hardware: group=\(path) \(iommuWords)")
        print("# host: \(machine.description)")
    }
    flushOut()

    // The model plays the same IOMMU, to count the PTEs of each call.
    let domain = DomainSpec(name: "d0", pgsizes: pgsizes, aperture: IOVARange(start: 0, last: .max), reserved: [])
    func modelPTEs(_ region: MemoryRegion, size: UInt64) -> UInt64? {
        let vaddr = region.vaddr
        var c = Type1Container()
        _ = c.memory.add(exactly: MemoryRegion(vaddr: vaddr, size: size, pageSize: region.pageSize, layout: region.layout))
        _ = c.groupSetContainer(domain)
        _ = c.setIOMMU(.type1v2)
        guard case .success = c.mapDMA(MapDMA(flags: [.read, .write], vaddr: vaddr, iova: iova, size: size)) else { return nil }
        return (c.pageTableEntries(group: nil) ?? [:]).values.reduce(0, +)
    }

    let reps = quick ? 3 : 7
    var points: [CostPoint] = []
    var notes: [String] = []
    let plan: [(UInt64, UInt64, [UInt64])] = [
        (4096, 64 * mib, quick ? [1, 64, 4096] : [1, 4, 16, 64, 256, 1024, 4096, 16384]),
        (2 * mib, 64 * mib, quick ? [1, 8, 32] : [1, 2, 4, 8, 16, 32]),
        (gib, gib, [1]),
    ]
    for (index, (pageSize, regionSize, counts)) in plan.enumerated() {
        // Each backing at its own 4 GiB-aligned place; the kernel backend
        // maps it (hugetlbfs for 2M and 1G) and reads the frames it got.
        let region: MemoryRegion
        do throws(BackendError) {
            region = try container.addMemory(MemorySpec(vaddr: 0x7E00_0000_0000 + UInt64(index) << 32, size: regionSize, pageSize: pageSize,
                                                         placement: .contiguous))
        } catch {
            notes.append("\(formatSize(pageSize)) pages: not measured (\(error.message))")
            continue
        }
        let vaddr = region.vaddr
        for n in counts {
            let size = n * pageSize
            guard size <= regionSize else { continue }
            guard let ptes = modelPTEs(region, size: size) else {
                notes.append("\(formatSize(size)) of \(formatSize(pageSize)) pages: frames not readable"); continue
            }
            var mapT: [Double] = [], unmapT: [Double] = []
            var failed: Errno? = nil
            let r = pageSize == gib ? max(3, reps / 2) : reps
            for i in 0..<(r + 1) {
                let t0 = monotonicNanoseconds()
                if case .failure(let e) = container.mapDMA(MapDMA(flags: [.read, .write], vaddr: vaddr, iova: iova, size: size)) { failed = e; break }
                let t1 = monotonicNanoseconds()
                let u = container.unmapDMA(UnmapDMA(flags: [], iova: iova, size: size))
                let t2 = monotonicNanoseconds()
                guard case .success(size) = u else { failed = .EIO; break }
                if i > 0 {  // the first pair warms up
                    mapT.append(Double(t1 - t0) / 1e3); unmapT.append(Double(t2 - t1) / 1e3)
                }
            }
            if let failed {
                notes.append("\(formatSize(size)) of \(formatSize(pageSize)) pages: MAP_DMA failed with \(failed)"); continue
            }
            let p = CostPoint(label: "\(n) × \(formatSize(pageSize))", pageSize: pageSize, size: size, pages: size / 4096,
                              ptes: ptes, map: Samples(mapT), unmap: Samples(unmapT))
            points.append(p)
            printErr("  \(p.label): map \(sig(p.map.median)) µs, unmap \(sig(p.unmap.median)) µs, \(ptes) PTEs")
        }
    }

    // Fit t = ioctl + page·pages + pte·PTEs, each row weighted by 1/t
    // (relative error); a negative constant is dropped and the rest refit.
    func fit(_ times: (CostPoint) -> Double) -> ([Double], String) {
        var columns = [0, 1, 2]
        while !columns.isEmpty {
            let x = points.map { p in columns.map { [1, Double(p.pages), Double(p.ptes)][$0] } }
            let y = points.map(times)
            guard let b = leastSquares(x, y, weights: y.map { 1 / max($0, 1e-3) }) else {
                // Pages and PTEs move together (no superpages): keep pages.
                if columns.contains(2) { columns.removeAll { $0 == 2 }; continue }
                return ([.nan, .nan, .nan], "no fit")
            }
            if let neg = zip(columns, b).first(where: { $0.1 < 0 && $0.0 != 0 }) {
                columns.removeAll { $0 == neg.0 }
                continue
            }
            var out = [0.0, 0.0, 0.0]
            for (c, v) in zip(columns, b) { out[c] = v }
            let dropped = [1, 2].filter { !columns.contains($0) }.map { $0 == 1 ? "page" : "PTE" }
            return (out, dropped.isEmpty ? "" : " (\(dropped.joined(separator: ", ")) term not separable from the others: 0)")
        }
        return ([.nan, .nan, .nan], "no fit")
    }
    let (mapC, mapNote) = fit { $0.map.median }
    let (unmapC, unmapNote) = fit { $0.unmap.median }

    print("# point          pages    PTEs   map µs (median ±spread)   predicted   unmap µs (median ±spread)   predicted")
    for p in points {
        let pm = mapC[0] + mapC[1] * Double(p.pages) + mapC[2] * Double(p.ptes)
        let pu = unmapC[0] + unmapC[1] * Double(p.pages) + unmapC[2] * Double(p.ptes)
        print("# " + pad(p.label, 14) + pad(String(p.pages), 8, right: true) + pad(String(p.ptes), 8, right: true)
              + "   " + pad(p.map.describe(sig), 24) + pad(sig(pm), 10, right: true)
              + "   " + pad(p.unmap.describe(sig), 26) + pad(sig(pu), 10, right: true))
    }
    for n in notes { print("# note: \(n)") }
    print("# fit: map\(mapNote), unmap\(unmapNote); weighted least squares over \(points.count) points")

    var lines: [BenchLine] = []
    for (label, pageSize) in [("4k", UInt64(4096)), ("2m", 2 * mib), ("1g", gib)] {
        if let p = points.first(where: { $0.pageSize == pageSize && $0.size == pageSize }) {
            lines.append(BenchLine(name: "kernel_map_\(label)_us", value: p.map.median, unit: "us", target: nil, higherIsBetter: false))
            lines.append(BenchLine(name: "kernel_unmap_\(label)_us", value: p.unmap.median, unit: "us", target: nil, higherIsBetter: false))
        } else {
            let why = notes.first(where: { $0.contains(formatSize(pageSize)) }) ?? "not measured"
            lines.append(BenchLine(name: "kernel_map_\(label)_us", value: .nan, unit: "us", target: nil, higherIsBetter: false, reason: why))
            lines.append(BenchLine(name: "kernel_unmap_\(label)_us", value: .nan, unit: "us", target: nil, higherIsBetter: false, reason: why))
        }
    }
    for (op, c) in [("map", mapC), ("unmap", unmapC)] {
        lines.append(BenchLine(name: "kernel_cost_\(op)_ioctl_us", value: c[0], unit: "us", target: nil, higherIsBetter: false))
        lines.append(BenchLine(name: "kernel_cost_\(op)_page_us", value: c[1], unit: "us", target: nil, higherIsBetter: false))
        lines.append(BenchLine(name: "kernel_cost_\(op)_pte_us", value: c[2], unit: "us", target: nil, higherIsBetter: false))
    }
    if let plansDir, !mapC[0].isNaN, !unmapC[0].isNaN {
        let model = CostModel(map: .init(ioctl: mapC[0], page: mapC[1], pte: mapC[2]),
                              unmap: .init(ioctl: unmapC[0], page: unmapC[1], pte: unmapC[2]))
        // The plans replay on fresh containers; close the measuring one.
        container.close()
        let hardware = Hardware(groups: [path])
        let domains: [DomainSpec]
        do throws(BackendError) {
            let probe = try KernelBackend(groupPaths: hardware.groups)
            defer { probe.close() }
            domains = try probe.hardwareDomains()
        } catch {
            printErr("vfio-bench kernel-costs: \(error.message)"); return 1
        }
        print("# plans replayed for real (\(plansDir)): measured = sum of the MAP/UNMAP ioctl times; predicted = the cost model above on the model's pages and PTEs for the frames really pinned")
        for file in traceFiles(in: plansDir) {
            let id = String(file.split(separator: "/").last!.dropLast(".trace".count))
            switch guestPlan(file, hardware: hardware, domains: domains, model: model) {
            case .failure(let why):
                print("# plan \(id): not run (\(why.message))")
            case .success(let r):
                let error = r.predicted / r.measured - 1
                print("# plan \(pad(id, 34)) \(pad(String(r.calls), 6, right: true)) calls (\(r.failed) failed)  measured \(pad(duration(r.measured / 1e6), 9, right: true))"
                      + "  predicted \(pad(duration(r.predicted / 1e6), 9, right: true)) (\(error >= 0 ? "+" : "")\(fixed(error * 100, 0))%)"
                      + "  answers: \(r.disagreements == 0 ? "model and kernel agree" : "\(r.disagreements) differ, first: \(r.firstDisagreement)")")
                let key = id.replacingDashes()
                lines.append(BenchLine(name: "kernel_plan_\(key)_measured_ms", value: r.measured / 1e3, unit: "ms", target: nil, higherIsBetter: false))
                lines.append(BenchLine(name: "kernel_plan_\(key)_predicted_ms", value: r.predicted / 1e3, unit: "ms", target: nil, higherIsBetter: false))
            }
        }
    }
    for l in lines { print(l.text) }
    // The same constants as cost terms: the profile `vfio-sim plan
    // --cost-profile FILE` reads, measured on this release.
    let constants = ["map_ioctl_us": mapC[0], "map_page_us": mapC[1], "map_pte_us": mapC[2],
                     "unmap_ioctl_us": unmapC[0], "unmap_page_us": unmapC[1], "unmap_pte_us": unmapC[2]]
    if let v = KernelVersion(parsing: release),
       let profile = CostProfile.measured(kernelCosts: constants, release: v, host: machine.cpu) {
        for l in profile.text.split(separator: "\n") { print(String(l)) }
    } else {
        print("# no cost profile: a constant could not be fitted, or kernel \(release) is not a release the model reads")
    }
    if let outPath {
        if let e = writeFile(outPath, file) { printErr("vfio-bench kernel-costs: \(e)"); return 1 }
        printErr("vfio-bench kernel-costs: wrote \(outPath) (vfio-sim plan --cost-profile \(outPath), vfio-bench plans --costs \(outPath))")
    }
    return 0
}

/// `DIR/*.trace`, sorted.
func traceFiles(in dir: String) -> [String] {
    guard let d = opendir(dir) else { return [] }
    defer { closedir(d) }
    var out: [String] = []
    while let e = readdir(d) {
        let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        if name.hasSuffix(".trace") { out.append(dir + "/" + name) }
    }
    return out.sorted()
}

struct GuestPlanResult {
    var calls = 0
    /// Microseconds.
    var measured = 0.0
    var predicted = 0.0
    var disagreements = 0
    var firstDisagreement = ""
    var failed = 0
}

/// Replays a plan trace on the real groups and on the model side by side
/// (the replay engine, with the model playing the real IOMMU on the frames
/// really pinned), timing the kernel's MAP/UNMAP calls and pricing the
/// model's pages and PTEs with the cost model.
func guestPlan(_ path: String, hardware: Hardware, domains: [DomainSpec], model: CostModel) -> Result<GuestPlanResult, BenchFailure> {
    guard let bytes = readBytes(path) else { return .failure(BenchFailure("cannot read \(path)")) }
    guard case .success(let trace) = parseTrace(bytes: bytes, file: path) else { return .failure(BenchFailure("does not parse")) }
    let running = KernelVersion(parsing: LinuxSystemCalls().release) ?? KernelProfile.newest.version
    if let reason = SkipPolicy(running: running, groups: hardware.groups.count, hasBAR: hardware.bar != nil,
                               sameKernel: { $0.series == $1.series }).reason(trace) {
        return .failure(BenchFailure(reason))
    }
    let kb: KernelBackend
    do throws(BackendError) { kb = try KernelBackend(groupPaths: hardware.groups, barPath: hardware.bar) } catch {
        return .failure(BenchFailure(error.message))
    }
    let timed = TimedBackend(kb)
    let priced = PricedModelBackend(ModelBackend(profile: KernelProfile(running), checksInvariants: false), costs: model)
    let report = Replayer(backends: [timed, priced], hardwareDomains: domains).run(trace)
    var r = GuestPlanResult()
    r.calls = timed.calls
    r.failed = timed.failed
    r.measured = timed.micros
    r.predicted = priced.micros
    for o in report.outcomes where !o.agree {
        r.disagreements += 1
        if r.firstDisagreement.isEmpty {
            r.firstDisagreement = "line \(o.line): " + o.got.map { "\($0.backend) \($0.text)" }.joined(separator: ", ")
        }
    }
    if let e = report.errors.first, r.firstDisagreement.isEmpty { r.firstDisagreement = "line \(e.line): \(e.message)" }
    return .success(r)
}

/// A type1v2 container holding the real group, through the kernel backend
/// (the one place the project makes VFIO ioctls).
func openContainer(_ group: String) -> Result<KernelBackend, BenchFailure> {
    let kb: KernelBackend
    do throws(BackendError) { kb = try KernelBackend(groupPaths: [group]) } catch { return .failure(BenchFailure(error.message)) }
    if case .failure(let e) = kb.attachGroup(DomainSpec(name: "d0")) { kb.close(); return .failure(BenchFailure("VFIO_GROUP_SET_CONTAINER: \(e)")) }
    if case .failure(let e) = kb.setIOMMU(.type1v2) { kb.close(); return .failure(BenchFailure("VFIO_SET_IOMMU: \(e)")) }
    return .success(kb)
}

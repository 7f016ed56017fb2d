// The kernel figures measured in the guest lane (`vfio-bench kernel-costs`,
// written by Benchmarks/run-kernel-costs.sh) and the cost model built on
// them. Nothing here is ever made up: a figure absent from the file is
// "not measured".

/// The `BENCH` lines of a `kernel-costs` run, and its `#` header lines.
struct KernelCosts {
    var values: [String: Double]
    /// The `# ...` lines: where and on what it was measured.
    var header: [String]
    var path: String

    func value(_ name: String) -> Double? { values[name].flatMap { $0.isNaN ? nil : $0 } }

    /// Reads a file of `BENCH name=... value=...` lines.
    static func load(_ path: String) -> Result<KernelCosts, BenchFailure> {
        guard let text = readSmallFile(path) else { return .failure(BenchFailure("cannot read \(path)")) }
        var values: [String: Double] = [:]
        var header: [String] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix("#") { header.append(String(line.dropFirst().trimmingSpaces())); continue }
            guard line.hasPrefix("BENCH ") else { continue }
            var name: String? = nil, value: Double? = nil
            for word in line.split(separator: " ") {
                if word.hasPrefix("name=") { name = String(word.dropFirst(5)) }
                if word.hasPrefix("value=") { value = Double(word.dropFirst(6)) ?? .nan }
            }
            if let name, let value { values[name] = value }
        }
        if values.isEmpty { return .failure(BenchFailure("\(path) holds no BENCH lines")) }
        return .success(KernelCosts(values: values, header: header, path: path))
    }

    /// One line saying where the figures come from.
    var provenance: String {
        let what = header.first(where: { $0.hasPrefix("measured") }) ?? header.first ?? "no header"
        return "\(path): \(what)"
    }

    /// Whether the figures come from the kernel lane's QEMU TCG guest
    /// (emulated CPU and IOMMU) rather than real hardware.
    var fromTCGGuest: Bool { header.contains { $0.contains("QEMU TCG") } }

    /// How much longer the plans took when they ran for real than the cost
    /// model predicted, as fractions (lowest, highest); nil when the file
    /// has no plans run for real.
    var planUnderprediction: (low: Double, high: Double)? {
        var errors: [Double] = []
        for (key, m) in values where key.hasPrefix("kernel_plan_") && key.hasSuffix("_measured_ms") {
            let id = key.dropFirst("kernel_plan_".count).dropLast("_measured_ms".count)
            if let p = value("kernel_plan_\(id)_predicted_ms"), p > 0, !m.isNaN { errors.append(m / p - 1) }
        }
        guard let lo = errors.min(), let hi = errors.max() else { return nil }
        return (lo, hi)
    }

    /// What a predicted time is: on which machine's costs, and how far the
    /// prediction was from the plans run for real there.
    var predictionCaveat: String {
        var s = fromTCGGuest
            ? "predicted times are a QEMU TCG guest's costs (emulated CPU and IOMMU, the kernel lane), not bare metal's"
            : "predicted times are the costs of the machine the file was measured on (\(header.first(where: { $0.hasPrefix("measured") }) ?? path))"
        if let u = planUnderprediction {
            func pct(_ x: Double) -> String { (x >= 0 ? "" : "−") + fixed(abs(x) * 100, 0) + " %" }
            s += "; there, the plans run for real took \(pct(u.low)) to \(pct(u.high)) longer than predicted"
        }
        return s
    }

    /// The cost model, when every constant was measured.
    var model: CostModel? {
        func triple(_ op: String) -> CostModel.Constants? {
            guard let i = value("kernel_cost_\(op)_ioctl_us"), let p = value("kernel_cost_\(op)_page_us"),
                  let t = value("kernel_cost_\(op)_pte_us") else { return nil }
            return CostModel.Constants(ioctl: i, page: p, pte: t)
        }
        guard let m = triple("map"), let u = triple("unmap") else { return nil }
        return CostModel(map: m, unmap: u)
    }
}

/// Predicted kernel time of an ioctl: a fixed cost per call, plus a cost
/// per 4 KiB page pinned (or unpinned) and per IOMMU leaf entry created
/// (or removed), in microseconds. Fitted by least squares on timed MAP_DMA
/// and UNMAP_DMA calls in the guest lane.
struct CostModel {
    struct Constants {
        var ioctl: Double
        var page: Double
        var pte: Double
        func micros(pages: UInt64, ptes: UInt64) -> Double { ioctl + page * Double(pages) + pte * Double(ptes) }
    }
    var map: Constants
    var unmap: Constants

    var description: String {
        "map = \(sig(map.ioctl)) µs + \(sig(map.page)) µs/page + \(sig(map.pte)) µs/PTE; "
            + "unmap = \(sig(unmap.ioctl)) µs + \(sig(unmap.page)) µs/page + \(sig(unmap.pte)) µs/PTE"
    }
}

/// Where the kernel figures come from for this run: the file given with
/// `--costs`, else `Benchmarks/results/kernel-costs.txt` of the current
/// directory or of the package this executable was built in.
func loadCosts(_ path: String?) -> (KernelCosts?, String) {
    let relative = "Benchmarks/results/kernel-costs.txt"
    var candidates = [relative]
    if let exe = executablePath() {
        var dir = exe
        for _ in 0..<5 {
            guard let slash = dir.lastIndex(of: "/") else { break }
            dir = String(dir[..<slash])
            candidates.append(dir + "/" + relative)
        }
    }
    let chosen = path ?? candidates.first(where: { readBytes($0) != nil })
    guard let chosen else {
        return (nil, "no --costs file: run Benchmarks/run-kernel-costs.sh in the kernel lane")
    }
    switch KernelCosts.load(chosen) {
    case .success(let c): return (c, c.provenance)
    case .failure(let e): return (nil, e.message)
    }
}

/// Least squares for `y ≈ X·b` with rows weighted by `w` (3 unknowns at
/// most), through the normal equations. Returns nil when the columns are
/// not independent enough to separate the constants.
func leastSquares(_ x: [[Double]], _ y: [Double], weights w: [Double]) -> [Double]? {
    let k = x.first?.count ?? 0
    guard k > 0, x.count >= k else { return nil }
    var a = [[Double]](repeating: [Double](repeating: 0, count: k + 1), count: k)
    for (row, (xi, yi)) in zip(x, y).enumerated() {
        let wi = w[row] * w[row]
        for i in 0..<k {
            for j in 0..<k { a[i][j] += wi * xi[i] * xi[j] }
            a[i][k] += wi * xi[i] * yi
        }
    }
    // Scale columns so the pivot test is about independence, not units.
    var scale = [Double](repeating: 1, count: k)
    for i in 0..<k { scale[i] = a[i][i] > 0 ? 1 / a[i][i].squareRoot() : 1 }
    for i in 0..<k { for j in 0..<k { a[i][j] *= scale[i] * scale[j] }; a[i][k] *= scale[i] }
    // Gaussian elimination with partial pivoting.
    for col in 0..<k {
        var pivot = col
        for r in col..<k where abs(a[r][col]) > abs(a[pivot][col]) { pivot = r }
        if abs(a[pivot][col]) < 1e-6 { return nil }
        a.swapAt(col, pivot)
        for r in 0..<k where r != col {
            let f = a[r][col] / a[col][col]
            for c in col...k { a[r][c] -= f * a[col][c] }
        }
    }
    return (0..<k).map { a[$0][k] / a[$0][$0] * scale[$0] }
}

// `vfio-bench published`: each published bare-metal figure of
// Benchmarks/published (one scenario trace each, the figure and its source
// in its comments) planned with the cost model, the published value, the
// estimate and their ratio side by side, and the residuals of the fit.

import VFIOCost
import VFIOFileIO
import VFIOLane
import VFIOTrace

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

func publishedCommand(dir: String, costs: CostProfile) -> Int32 {
    print("vfio-bench published — the cost model against published bare-metal figures (\(dir))")
    print("profile: \(costs.name): \(costs.source)")
    print("")
    var rows: [[String]] = [["scenario", "release", "op", "published", "estimate", "ratio", "log10 residual"]]
    var lines: [BenchLine] = []
    var residuals: [Double] = []
    var outside = 0
    for file in traceFiles(in: dir) {
        guard let text = readSmallFile(file) else { printErr("vfio-bench: cannot read \(file)"); return 1 }
        let id = String(file.split(separator: "/").last!.dropLast(".trace".count))
        guard let figure = PublishedFigure.parse(text, file: file) else { continue }
        guard case .success(let trace) = parseTrace(text, file: file) else { printErr("vfio-bench: \(file) does not parse"); return 1 }
        let plan = Planner.plan(trace, costs: costs)
        guard let time = plan.kernelTime else { continue }
        for c in figure.checks(time) {
            let r = log10(c.ratio)
            if case .about = c.published { residuals.append(r) }
            if !c.holds(within: 1.5) { outside += 1 }
            rows.append([id, plan.kernel, c.what, c.published.text, duration(c.estimate), fixed(c.ratio, 2) + (c.holds(within: 1.5) ? "" : " (outside 1.5x)"),
                         { if case .below = c.published { return "bound" } else { return (r >= 0 ? "+" : "") + fixed(r, 3) } }()])
            lines.append(BenchLine(name: "published_\(id.replacingDashes().replacingDots())_\(c.what)_ratio", value: c.ratio, unit: "x",
                                   target: nil, higherIsBetter: false))
        }
    }
    print(renderTable(rows, rightAligned: [3, 4, 5, 6]))
    if !residuals.isEmpty {
        let rms = (residuals.map { $0 * $0 }.reduce(0, +) / Double(residuals.count)).squareRoot()
        let worst = residuals.map(abs).max() ?? 0
        print("")
        print("residuals (log10 of estimate/published, \(residuals.count) figures): rms \(fixed(rms, 3)) (×\(fixed(pow10(rms), 2))), "
              + "worst \(fixed(worst, 3)) (×\(fixed(pow10(worst), 2))); \(outside) outside 1.5x")
        lines.append(BenchLine(name: "published_residual_rms_log10", value: rms, unit: "log10", target: log10(1.5), higherIsBetter: false))
    }
    print("")
    for l in lines { print(l.text) }
    return outside == 0 ? 0 : 1
}

func pow10(_ x: Double) -> Double { pow(10, x) }

extension String {
    func replacingDots() -> String { String(map { $0 == "." ? "_" : $0 }) }
}

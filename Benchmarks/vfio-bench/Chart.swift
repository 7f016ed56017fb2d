// The SVG chart next to the plans table: IOMMU leaf entries per domain and
// the predicted kernel time, one row per plan, both on log scales.

import VFIOCore
import VFIOReplay
import VFIOTrace

func plansSVG(_ results: [PlanResult], domains: [String], legends: [String], costModel: CostModel?, memory: UInt64, note: String) -> String {
    let colors = ["#3b6fb6", "#e08a2c", "#4f9d69", "#b64b6f"]
    let labelWidth = 300.0, panelWidth = 330.0, gap = 40.0, top = 70.0
    let barHeight = 8.0
    let rowHeight = max(22.0, Double(domains.count) * (barHeight + 2) + 8)
    let width = labelWidth + 2 * panelWidth + gap + 20
    let height = top + rowHeight * Double(results.count) + 86

    // Log scales: PTEs from 1 to the largest count; time from the smallest
    // to the largest prediction.
    let maxPTE = max(10.0, results.flatMap { $0.ptes.map { Double($0.counts.values.reduce(0, +)) } }.max() ?? 10)
    let pteDecades = Glibc.log10(maxPTE).rounded(.up)
    let times = costModel.map { m in results.map { $0.predictedMicros(m) } } ?? []
    let tMin = Glibc.pow(10, Glibc.log10(max(times.min() ?? 1, 1e-3)).rounded(.down))
    let tMax = Glibc.pow(10, Glibc.log10(max(times.max() ?? 10, tMin * 10)).rounded(.up))

    var s = """
    <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="11">
    <rect width="100%" height="100%" fill="white"/>
    <text x="10" y="20" font-size="14" font-weight="bold">DMA mapping plans, \(xmlEscape(formatSize(memory))) of memory: IOMMU leaf entries and predicted kernel time</text>

    """
    let px0 = labelWidth, tx0 = labelWidth + panelWidth + gap
    s += "<text x=\"\(px0)\" y=\"45\" font-weight=\"bold\">PTEs (log scale)</text>\n"
    for (i, d) in domains.enumerated() {
        _ = d
        s += "<rect x=\"\(px0 + 110 + Double(i) * 100)\" y=\"37\" width=\"10\" height=\"8\" fill=\"\(colors[i % colors.count])\"/>"
        s += "<text x=\"\(px0 + 124 + Double(i) * 100)\" y=\"45\">\(xmlEscape(legends[i]))</text>\n"
    }
    s += "<text x=\"\(tx0)\" y=\"45\" font-weight=\"bold\">predicted kernel time, \(xmlEscape(domains.first ?? "")) (log scale)</text>\n"

    // Grid lines.
    for dec in 0...Int(pteDecades) {
        let x = px0 + Double(dec) / pteDecades * panelWidth
        s += "<line x1=\"\(x)\" y1=\"\(top - 8)\" x2=\"\(x)\" y2=\"\(height - 62)\" stroke=\"#ddd\"/>"
        s += "<text x=\"\(x)\" y=\"\(height - 48)\" text-anchor=\"middle\" fill=\"#666\">1e\(dec)</text>\n"
    }
    if costModel != nil {
        let decades = Glibc.log10(tMax / tMin)
        for dec in 0...Int(decades) {
            let x = tx0 + Double(dec) / decades * panelWidth
            let us = tMin * Glibc.pow(10, Double(dec))
            s += "<line x1=\"\(x)\" y1=\"\(top - 8)\" x2=\"\(x)\" y2=\"\(height - 62)\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(x)\" y=\"\(height - 48)\" text-anchor=\"middle\" fill=\"#666\">\(xmlEscape(duration(us / 1e6)))</text>\n"
        }
    }

    for (row, r) in results.enumerated() {
        let y = top + Double(row) * rowHeight
        let label = "\(r.plan.name) \(formatSize(r.plan.backing)) \(r.plan.layoutName)" + (r.failedCalls > 0 ? " ⚠ \(r.failures.map(\.errno).joined(separator: ","))" : "")
        s += "<text x=\"10\" y=\"\(y + rowHeight / 2 + 3)\">\(xmlEscape(label))</text>\n"
        for (i, d) in domains.enumerated() {
            let n = Double(r.ptes.first(where: { $0.domain == d })?.counts.values.reduce(0, +) ?? 0)
            let w = n <= 0 ? 0 : max(1, Glibc.log10(max(n, 1)) / pteDecades * panelWidth)
            let by = y + 4 + Double(i) * (barHeight + 2)
            s += "<rect x=\"\(px0)\" y=\"\(by)\" width=\"\(fixed(w, 1))\" height=\"\(barHeight)\" fill=\"\(colors[i % colors.count])\"/>"
            s += "<text x=\"\(px0 + w + 4)\" y=\"\(by + barHeight - 1)\" font-size=\"9\">\(Int(n))</text>\n"
        }
        if let m = costModel {
            let us = r.predictedMicros(m)
            let w = max(1, Glibc.log10(max(us, tMin) / tMin) / Glibc.log10(tMax / tMin) * panelWidth)
            s += "<rect x=\"\(tx0)\" y=\"\(y + 4)\" width=\"\(fixed(w, 1))\" height=\"\(rowHeight - 10)\" fill=\"#777\"/>"
            s += "<text x=\"\(tx0 + w + 4)\" y=\"\(y + rowHeight / 2 + 3)\" font-size=\"9\">\(xmlEscape(duration(us / 1e6)))</text>\n"
        } else if row == 0 {
            s += "<text x=\"\(tx0)\" y=\"\(y + rowHeight / 2 + 3)\" fill=\"#a00\">not measured</text>\n"
        }
    }
    s += "<text x=\"10\" y=\"\(height - 32)\" fill=\"#666\">\(xmlEscape(costModel == nil ? "cost model: not measured" : "cost model: " + costModel!.description))</text>\n"
    // The note can be long: at most two lines of about 190 characters.
    var first = note, second = ""
    if note.count > 190, let cut = note.prefix(190).lastIndex(of: " ") {
        first = String(note[..<cut]); second = String(note[cut...].dropFirst())
    }
    s += "<text x=\"10\" y=\"\(height - 17)\" fill=\"#666\" font-size=\"9\">\(xmlEscape(first))</text>\n"
    if !second.isEmpty { s += "<text x=\"10\" y=\"\(height - 5)\" fill=\"#666\" font-size=\"9\">\(xmlEscape(String(second.prefix(190))))</text>\n" }
    s += "</svg>\n"
    return s
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

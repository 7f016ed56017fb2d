import VFIOCore

/// The constants of the cost model for one host: a value per `CostTerm`.
///
/// The default, `published`, is fitted to published bare-metal figures
/// (docs/COSTS.md: each figure, its source, the derivation and the
/// residuals). A profile measured on one machine (`vfio-bench
/// kernel-costs --out FILE`) holds that machine's constants for the
/// release it ran: its release terms are not applied.
public struct CostProfile: Sendable {
    public var name: String
    /// Where the numbers come from, one line.
    public var source: String
    /// The release a measured profile was measured on; nil for a fitted
    /// profile, whose release terms apply by the release estimated for.
    public var measuredOn: KernelVersion?
    /// Nanoseconds (nanoseconds per byte for `fault_byte`); a term absent
    /// costs nothing.
    public var values: [CostTerm: Double]

    public init(name: String, source: String, measuredOn: KernelVersion? = nil, values: [CostTerm: Double]) {
        self.name = name; self.source = source; self.measuredOn = measuredOn; self.values = values
    }

    public subscript(_ term: CostTerm) -> Double { values[term] ?? 0 }

    /// The release terms apply (a fitted profile).
    public var appliesReleaseTerms: Bool { measuredOn == nil }

    /// What the profile assumes about the release, for reports.
    public func releaseNote(_ release: KernelVersion) -> String {
        if let m = measuredOn { return "measured on \(m.series); assumed the same for \(release)" }
        return "release \(release)"
    }

    /// Fitted to published bare-metal figures (docs/COSTS.md).
    public static let published = CostProfile(
        name: "published-bare-metal",
        source: "fitted to published bare-metal figures (Li Zhe 2025, Daniel Jordan 2022, Alex Williamson 2025; docs/COSTS.md)",
        values: [
            .mapIoctl: 1270, .mapPage4K: 33.53, .mapPageTHP: 5.91, .mapPageHugetlb2M: 7.10, .mapPageHugetlb1G: 7.10,
            .mapFolioStep: 0.84, .mapChunk: 20, .mapPTE: 5, .mapPfnmapPage: 119.2, .mapPfnmapHugeStep: 119.2,
            .faultEach: 250, .faultByte: 0.1856,
            .mapAccountingBefore618: 5.37, .mapUnbatchedBefore513: 1.5, .mapTHPWalkBefore66: 142.6, .mapHugetlbGUPBefore66: 6.16,
            .unmapIoctl: 540, .unmapWalkPage: 6, .unmapPage: 4.38, .unmapFolioStep: 18.22, .unmapPageBefore618: 26.83,
            .unmapChunk: 33.3, .unmapPTE: 5, .unmapIOTLBSync: 1000,
        ])

    // MARK: The file

    /// The profile as a file: `#` lines, then one
    /// `BENCH name=cost_TERM value=V unit=ns` line per term, the format
    /// `vfio-bench` prints its figures in.
    public var text: String {
        var out = "# vfio-sim cost profile\n# profile: \(name)\n# source: \(source)\n"
        if let m = measuredOn { out += "# measured on: \(m)\n" }
        for t in CostTerm.allCases { if let v = values[t] { out += "BENCH name=cost_\(t.rawValue) value=\(v) unit=\(t.unit)\n" } }
        return out
    }

    /// Reads a profile file: `BENCH name=cost_TERM value=V` lines, or the
    /// `kernel_cost_{map,unmap}_{ioctl,page,pte}_us` constants that
    /// `vfio-bench kernel-costs` fits (per ioctl, per 4 KiB page, per PTE,
    /// for every backing), with `# profile:`, `# source:`, `# measured
    /// on:` or a `kernel=RELEASE` in a `#` line. A bad line is
    /// `file:line:column: error: ...`.
    public static func parse(_ text: String, file: String) -> Result<CostProfile, ProfileError> {
        var values: [CostTerm: Double] = [:], legacy: [String: Double] = [:]
        var name: String? = nil, source: String? = nil, measured: KernelVersion? = nil, tcg = false
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            if line.hasPrefix("#") {
                let body = line.dropFirst().drop(while: { $0 == " " })
                if body.hasPrefix("profile: ") { name = String(body.dropFirst(9)) }
                if body.hasPrefix("source: ") { source = String(body.dropFirst(8)) }
                if body.hasPrefix("measured on: ") { measured = KernelVersion(parsing: String(body.dropFirst(13))) }
                if body.contains("QEMU TCG") { tcg = true }
                for word in body.split(separator: " ") where word.hasPrefix("kernel=") && measured == nil {
                    measured = KernelVersion(parsing: String(word.dropFirst(7)))
                }
                if source == nil, body.hasPrefix("measured") { source = String(body) }
                continue
            }
            guard line.hasPrefix("BENCH ") else { continue }
            var key: Substring? = nil, value: Double? = nil, valueColumn = 0
            var column = 1
            for word in line.split(separator: " ", omittingEmptySubsequences: false) {
                if word.hasPrefix("name=") { key = word.dropFirst(5) }
                if word.hasPrefix("value=") { value = Double(word.dropFirst(6)); valueColumn = column + 6 }
                column += word.count + 1
            }
            guard let key else { continue }
            if key.hasPrefix("cost_") {
                guard let term = CostTerm(rawValue: String(key.dropFirst(5))) else {
                    return .failure(ProfileError("\(file):\(i + 1):12: error: expected a cost term (\(CostTerm.allCases.map(\.rawValue).joined(separator: ", "))), found '\(key)'"))
                }
                guard let value, value.isFinite, value >= 0 else {
                    return .failure(ProfileError("\(file):\(i + 1):\(valueColumn): error: expected a number of nanoseconds, zero or more, for \(key)"))
                }
                values[term] = value
            } else if key.hasPrefix("kernel_cost_"), let value, value.isFinite {
                legacy[String(key.dropFirst(12))] = value
            }
        }
        if values.isEmpty, let converted = fromKernelCosts(legacy) { values = converted }
        if values.isEmpty {
            return .failure(ProfileError("\(file):1:1: error: expected BENCH name=cost_TERM lines or the kernel_cost_* lines of vfio-bench kernel-costs, found none"))
        }
        let stem = file.split(separator: "/").last.map { String($0.split(separator: ".").first ?? $0) } ?? file
        let label = name ?? (tcg ? "\(stem) (QEMU TCG guest: emulated CPU and IOMMU, not bare metal)" : stem)
        // A fitted profile says so by naming no release it was measured on;
        // the constants of kernel-costs are one machine's, on one release.
        let isMeasured = !legacy.isEmpty || measured != nil
        return .success(CostProfile(name: label, source: source ?? file,
                                    measuredOn: isMeasured ? (measured ?? KernelVersion.newestKnown) : nil, values: values))
    }

    /// The profile `vfio-bench kernel-costs` writes for the host it ran on:
    /// its fitted constants (`map_ioctl_us`, `map_page_us`, ... as in
    /// `fromKernelCosts`) as cost terms, measured on `release`; nil when a
    /// constant is missing or not a number.
    public static func measured(kernelCosts k: [String: Double], release: KernelVersion, host: String) -> CostProfile? {
        guard k.values.allSatisfy(\.isFinite), let values = fromKernelCosts(k) else { return nil }
        return CostProfile(name: "kernel-costs on \(host)",
                           source: "measured by vfio-bench kernel-costs on \(host), kernel \(release): real MAP_DMA and UNMAP_DMA calls, fitted per ioctl, page and PTE",
                           measuredOn: release, values: values)
    }

    /// The three constants per direction of `vfio-bench kernel-costs`
    /// (µs): the same per-page cost for every backing, nothing per chunk.
    static func fromKernelCosts(_ k: [String: Double]) -> [CostTerm: Double]? {
        guard let mi = k["map_ioctl_us"], let mp = k["map_page_us"], let mt = k["map_pte_us"],
              let ui = k["unmap_ioctl_us"], let up = k["unmap_page_us"], let ut = k["unmap_pte_us"] else { return nil }
        return [.mapIoctl: mi * 1000, .mapPage4K: mp * 1000, .mapPageTHP: mp * 1000, .mapPageHugetlb2M: mp * 1000,
                .mapPageHugetlb1G: mp * 1000, .mapPTE: mt * 1000, .unmapIoctl: ui * 1000, .unmapPage: up * 1000, .unmapPTE: ut * 1000]
    }
}

public struct ProfileError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

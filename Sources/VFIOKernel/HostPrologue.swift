import VFIOCore

/// `HostFacts` as the prologue of a trace: setup statements in the order a
/// trace writes them, each ending in a comment that says where its value was
/// read, and comment lines for what the format has no statement for (THP,
/// hugetlb pools) or what could not be read, so that nothing is guessed
/// silently. Pure: the tests check it line by line on scripted machines.
extension HostFacts {
    /// The lines, without newlines.
    public var prologue: [String] {
        var lines = ["# This machine as a trace prologue (vfio-sim host); each comment says where the value was read."]
        func line(_ statement: String, _ source: String) { lines.append("\(statement)  # \(source)") }

        line("kernel \(release)", "uname(2) release")

        switch memlock {
        case .success(let limit): line("memlock \(limit.map(formatSize) ?? "unlimited")", Self.memlockSource)
        case .failure(let e): lines.append("# memlock: \(Self.memlockSource) failed: \(e)")
        }

        if let on = capIPCLock {
            line("cap-ipc-lock \(on ? "on" : "off")", "CapEff bit 14 (\(Self.statusPath))")
        } else {
            lines.append("# cap-ipc-lock: no readable CapEff in \(Self.statusPath)")
        }

        let limitPath = ModuleParameter.dmaEntryLimit.path
        switch dmaEntryLimit {
        case .value(let n): line("dma-entry-limit \(n)", limitPath)
        case .notLoaded: lines.append("# dma-entry-limit: vfio_iommu_type1 not loaded (default \(ModuleParameter.dmaEntryLimit.traceDefault))")
        case .unreadable(let text): lines.append("# dma-entry-limit: '\(text)' is not a number (\(limitPath))")
        }

        // The trace format has no statement for these yet: comments.
        if let mode = transparentHugepages {
            lines.append("# thp: \(mode) (\(Self.thpPath))")
        } else {
            lines.append("# thp: not available (\(Self.thpPath) is missing or has no [mode])")
        }
        if let pools = hugepagePools, !pools.isEmpty {
            for p in pools {
                let total = p.total.map { "\($0) total" } ?? "total unreadable"
                let free = p.free.map { "\($0) free" } ?? "free unreadable"
                lines.append("# hugepages \(formatSize(p.pageSize)): \(total), \(free) (\(p.path))")
            }
        } else {
            lines.append("# hugepages: no pools (\(Self.hugepagesPath) is \(hugepagePools == nil ? "missing" : "empty"))")
        }

        switch groups {
        case .noDirectory:
            lines.append("# no domain: \(Self.groupsPath) does not exist (no IOMMU enabled)")
        case .empty:
            lines.append("# no domain: \(Self.groupsPath) is empty (no IOMMU enabled)")
        case .some(let count, let bound) where bound.isEmpty:
            lines.append("# no domain: no IOMMU group has a device bound to vfio-pci (\(Self.groupsPath): \(count) group\(count == 1 ? "" : "s"))")
        case .some(_, let bound):
            for g in bound { lines.append(domainLine(g)) }
            let checks = bound.compactMap(presetCheck)
            if !checks.isEmpty {
                let agreeing = checks.filter(\.differences.isEmpty).count
                lines.append("# presets: \(agreeing)/\(checks.count) agree with what was measured"
                             + (agreeing == checks.count ? "" : " (" + checks.filter { !$0.differences.isEmpty }.map(\.group).joined(separator: ", ")
                                + (checks.count - agreeing == 1 ? " differs)" : " differ)")))
            }
        }
        return lines
    }

    /// How the bound groups' presets compare with what `--probe` measured:
    /// how many agree of those checked, and the prologue's lines that show
    /// a difference (the `domain` line of each group that differs, and the
    /// `# presets:` line when one does). Nil when no preset was checked.
    public var presetAgreement: (agreeing: Int, checked: Int, differingLines: [String])? {
        guard case .some(_, let bound) = groups else { return nil }
        let checks = bound.compactMap { g in presetCheck(g).map { (g, $0) } }
        guard !checks.isEmpty else { return nil }
        let differing = checks.filter { !$0.1.differences.isEmpty }
        var lines = differing.map { domainLine($0.0) }
        if !differing.isEmpty, let presets = prologue.last(where: { $0.hasPrefix("# presets:") }) { lines.append(presets) }
        return (checks.count - differing.count, checks.count, lines)
    }

    /// A group's preset, for this release, beside what `--probe` measured.
    public struct PresetCheck: Sendable {
        public var group: String
        public var preset: IOMMUPreset
        /// Preset (`this`) against measured (`other`); empty when they agree.
        public var differences: [DomainSpec.Difference]
        /// Whether MSI isolation could be compared: not when type1's
        /// `allow_unsafe_interrupts` is on (the group is taken either way).
        public var comparedMSI: Bool
    }

    /// The release the presets answer for: the running one, or the newest
    /// known when `uname -r` is not a version.
    var presetRelease: KernelVersion { KernelVersion(parsing: release) ?? KernelVersion.newestKnown }

    /// Nil unless the group's unit has a preset and `--probe` measured it.
    func presetCheck(_ g: Group) -> PresetCheck? {
        guard let name = g.unit?.preset?.name, let preset = IOMMUPreset(rawValue: name),
              case .success(let measured)? = g.probe else { return nil }
        var spec = DomainSpec(name: g.name)
        spec.preset = preset
        spec.explicit = []
        let expected = spec.resolved(for: presetRelease).spec
        if !measured.msiIsolated {
            // SET_IOMMU refused the group: only MSI isolation was measured.
            let differences = expected.msiIsolated
                ? [DomainSpec.Difference(key: "msi-isolated", this: "yes", other: "no")] : []
            return PresetCheck(group: g.name, preset: preset, differences: differences, comparedMSI: true)
        }
        let comparedMSI = allowUnsafeInterrupts != true
        return PresetCheck(group: g.name, preset: preset, differences: expected.differences(from: measured, comparingMSI: comparedMSI),
                           comparedMSI: comparedMSI)
    }

    /// The `domain` line of a group, or a comment saying why there is none.
    func domainLine(_ g: Group) -> String {
        let bound = g.devices.filter { $0.driver == "vfio-pci" }.map(\.name).joined(separator: ", ")
        guard g.hasDeviceNode else {
            return "# no domain for group \(g.number): \(bound) bound to vfio-pci, but \(g.deviceNode) does not exist"
        }
        let measured: DomainSpec? = if case .success(let spec)? = g.probe { spec } else { nil }
        guard let unit = g.unit else {
            return "# no domain for group \(g.number): \(bound) has no iommu link (no IOMMU translates it)"
        }
        let preset = unit.preset
        if preset == nil && measured == nil {
            return "# no domain for group \(g.number): its IOMMU \(unit.name) (\(unit.link)) has no preset; vfio-sim host --probe measures it"
        }

        var words = ["domain", g.name]
        var notes = ["group \(g.number): " + g.devices.map { "\($0.name) (\($0.driver ?? "no driver"))" }.joined(separator: ", ")]
        if let preset { words.append("iommu=\(preset.name)") }
        notes.append(unitNote(unit, approximation: preset?.approximation))
        if units.count > 1, let k = units.firstIndex(of: unit.name) {
            words.append("instance=\(k)")
            notes.append("unit \(k) of \(units.joined(separator: ","))")
        }
        let source = "\(g.deviceNode) (VFIO_IOMMU_GET_INFO, CHECK_EXTENSION)"
        // Written from the measurement: every key without a preset, the
        // keys where the preset differs with one. Once a domain was
        // measured, the reserved regions are GET_INFO's (written where they
        // differ from the preset's), else sysfs's.
        var measuredDomain = false
        switch g.probe {
        case .success(let spec)? where !spec.msiIsolated:
            // SET_IOMMU refused the group: nothing else was measured.
            words.append("msi-isolated=no")
            notes.append("VFIO_SET_IOMMU on \(g.deviceNode): EPERM, MSIs not isolated; pgsizes and aperture not measured")
        case .success(let spec)?:
            measuredDomain = true
            measuredWords(g, spec, source: source, words: &words, notes: &notes)
        case .failure(let e)?:
            notes.append("--probe: \(e.message)")
        case nil:
            break
        }
        reservedWords(g, measuredDomain: measuredDomain, words: &words, notes: &notes)
        return words.joined(separator: " ") + "  # " + notes.joined(separator: "; ")
    }

    /// The keys of a measured domain (GET_INFO): every one without a
    /// preset, the ones where the preset differs with one.
    func measuredWords(_ g: Group, _ spec: DomainSpec, source: String, words: inout [String], notes: inout [String]) {
        let check = presetCheck(g)
        let keys: Set<String>
        if let check {
            keys = Set(check.differences.map(\.key))
            if keys.isEmpty {
                notes.append("preset \(check.preset.rawValue) agrees with what was measured on \(source)")
            } else {
                let what = check.differences.map { "\($0.key) \($0.this) (measured \($0.other))" }.joined(separator: ", ")
                notes.append("preset \(check.preset.rawValue) differs from what was measured on \(source): \(what); the measured values are written")
            }
        } else {
            keys = ["pgsizes", "leaves", "iova", "coherent"]
            notes.append("pgsizes, aperture\(spec.coherent ? "" : ", coherent") measured on \(source)")
        }
        if keys.contains("pgsizes") { words.append("pgsizes=" + formatPageSizes(spec.pgsizes)) }
        if keys.contains("leaves") || (keys.contains("pgsizes") && spec.leaves != nil) {
            words.append("leaves=" + formatPageSizes(spec.leaves ?? spec.pgsizes))
        }
        if keys.contains("iova") {
            words.append("aperture=" + formatRange(spec.aperture))
            words.append("reserved=" + (spec.reserved.isEmpty ? "none" : spec.reserved.map(formatRange).joined(separator: ",")))
        }
        if keys.contains("coherent") { words.append("coherent=\(spec.coherent ? "yes" : "no")") }
        if allowUnsafeInterrupts == true {
            // A preset without MSI isolation would be refused: say
            // what this machine does.
            if let p = check?.preset, !p.values(for: presetRelease).msiIsolated { words.append("msi-isolated=yes") }
            notes.append("allow_unsafe_interrupts=Y (\(Self.allowUnsafeInterruptsPath)): type1 takes the group whether or not its MSIs are isolated")
        } else if keys.contains("msi-isolated") {
            words.append("msi-isolated=\(spec.msiIsolated ? "yes" : "no")")
        }
    }

    /// The reserved regions from sysfs (written when no domain was
    /// measured) and what they are.
    func reservedWords(_ g: Group, measuredDomain: Bool, words: inout [String], notes: inout [String]) {
        let regionsFile = "\(g.directory)/reserved_regions"
        if let reserved = g.reserved {
            if !measuredDomain {
                words.append("reserved=" + (reserved.isEmpty ? "none" : reserved.map { formatRange($0.range) }.joined(separator: ",")))
            }
            var types: [String] = []
            for r in reserved where !types.contains(r.type) { types.append(r.type) }
            notes.append(reserved.isEmpty ? "no reserved regions (\(regionsFile))" : "reserved: \(types.joined(separator: ", ")) (\(regionsFile))")
            if g.unreadableReserved > 0 {
                notes.append("\(g.unreadableReserved) line\(g.unreadableReserved == 1 ? "" : "s") of reserved_regions not understood, left out")
            }
        } else {
            notes.append("\(regionsFile) unreadable: the preset's reserved regions")
        }
    }

    /// Where the preset came from: for VT-d, the width read and from where.
    func unitNote(_ unit: IOMMUUnit, approximation: String?) -> String {
        var note: String
        switch unit.kind {
        case .intel:
            let path = IOMMUUnit.vtdCapabilityPath(unit.name)
            if let cap = unit.vtdCapability {
                let sagaw = cap.supportedWidths.map(String.init).joined(separator: ",")
                note = "\(unit.name): \(cap.domainWidth)-bit (MGAW \(cap.maximumGuestAddressWidth) bits, SAGAW \(sagaw.isEmpty ? "none" : sagaw + " bits"), from \(path))"
            } else {
                note = "\(unit.name): \(path) unreadable"
            }
        case .amd, .virtio, .smmuv3:
            note = "\(unit.name) (the device's iommu link)"
        case .other:
            note = "\(unit.name) (the device's iommu link): no preset"
        }
        if let approximation { note += ", \(approximation)" }
        return note
    }
}

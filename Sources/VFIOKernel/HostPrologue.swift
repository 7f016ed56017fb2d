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
        }
        return lines
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
        switch g.probe {
        case .success(let spec)? where !spec.msiIsolated:
            // SET_IOMMU refused the group: nothing else was measured.
            words.append("msi-isolated=no")
            notes.append("VFIO_SET_IOMMU on \(g.deviceNode): EPERM, MSIs not isolated; pgsizes and aperture not measured")
        case .success(let spec)?:
            words.append("pgsizes=" + formatPageSizes(spec.pgsizes))
            if let leaves = spec.leaves { words.append("leaves=" + formatPageSizes(leaves)) }
            words.append("aperture=" + formatRange(spec.aperture))
            if !spec.coherent { words.append("coherent=no") }
            notes.append("pgsizes, aperture\(spec.coherent ? "" : ", coherent") measured on \(g.deviceNode) (VFIO_IOMMU_GET_INFO, CHECK_EXTENSION)")
        case .failure(let e)?:
            notes.append("--probe: \(e.message)")
        case nil:
            break
        }
        let regionsFile = "\(g.directory)/reserved_regions"
        if let reserved = g.reserved {
            words.append("reserved=" + (reserved.isEmpty ? "none" : reserved.map { formatRange($0.range) }.joined(separator: ",")))
            var types: [String] = []
            for r in reserved where !types.contains(r.type) { types.append(r.type) }
            notes.append(reserved.isEmpty ? "no reserved regions (\(regionsFile))" : "reserved: \(types.joined(separator: ", ")) (\(regionsFile))")
            if g.unreadableReserved > 0 {
                notes.append("\(g.unreadableReserved) line\(g.unreadableReserved == 1 ? "" : "s") of reserved_regions not understood, left out")
            }
        } else {
            notes.append("\(regionsFile) unreadable: the preset's reserved regions")
        }
        return words.joined(separator: " ") + "  # " + notes.joined(separator: "; ")
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

import VFIOCore

// `domain NAME ...`: a group and the IOMMU domain it is behind.

extension StatementSyntax {
    /// Before the first operation `domain` is setup; after it, an
    /// operation (`VFIO_GROUP_SET_CONTAINER`) with an answer.
    static let domain = StatementSyntax(
        verb: .domain,
        keys: [
            KeySyntax(.iommu, .text), KeySyntax(.pgsizes, .text), KeySyntax(.leaves, .text),
            // DomainSpec.defaultAperture and defaultReserved, as printed.
            KeySyntax(.aperture, .text, printedDefault: "0x0-0xffffffffffff"),
            KeySyntax(.reserved, .text, printedDefault: "0xfee00000-0xfeefffff"),
            KeySyntax(.fgsp, .yesNo), KeySyntax(.coherent, .yesNo, printedDefault: "yes"),
            KeySyntax(.emulated, .yesNo, printedDefault: "no"), KeySyntax(.msiIsolated, .yesNo, printedDefault: "yes"),
            KeySyntax(.instance, .number, printedDefault: "0"),
        ],
        answer: .status(.domain), table: .setup,
        rows: [
            ReferenceRow(#"`domain NAME iommu=PRESET [KEY=...] [instance=N]`"#, #"a group behind a known IOMMU: `intel` (VT-d, 39 bits), `intel48`, `amd`, `virtio`, `smmuv3` fill `pgsizes`, `leaves`, `aperture`, `reserved`, `coherent` and `msi-isolated` with what that IOMMU's driver reports on the trace's kernel release (the table in `docs/RELEASES.md`); keys written win. Where a release's values are inferred, or (smmuv3) never booted, a note says so. `instance=N`: which IOMMU unit the group is behind; groups behind different units never share a domain"#, #"`instance=0`"#),
            ReferenceRow(#"`domain NAME pgsizes=LIST [leaves=LIST] [aperture=RANGE] [reserved=RANGE,...\|none] [coherent=yes\|no] [emulated=yes\|no] [msi-isolated=yes\|no] [fgsp=yes\|no]`"#, #"a group whose IOMMU domain has these page sizes, aperture and reserved regions; `leaves`: the page sizes its page table really holds when the driver advertises more (5.10's VT-d: every power of two advertised, 4K,2M,1G built), which decide `check ptes=`, and must be among the page sizes and include the smallest (a table is built of what the driver advertises; with a preset's page sizes, on every release it knows), else the line is an error; `pgsizes=` must name at least one size; `coherent`: the domain enforces cache coherency (decides `dma-cc` and whether groups share a domain); `emulated`: an mdev group with no IOMMU (nothing pinned until an IOMMU group comes); `msi-isolated=no`: attach fails with EPERM; `fgsp`: accepted and ignored (fine-grained superpages changed only how old kernels issued unmaps, never an answer). A name already in the container is an error (detach it first) unless the line carries an answer"#, #"one group `d0 pgsizes=4K,2M,1G aperture=0-0xffffffffffff reserved=0xfee00000-0xfeefffff` (48 bits, the x86 MSI window reserved), attached when no `domain` comes before the first operation; per key: `leaves=` the same as `pgsizes=`, `aperture=0-0xffffffffffff`, `reserved=0xfee00000-0xfeefffff`, `coherent=yes`, `emulated=no`, `msi-isolated=yes`, `fgsp=no`"#),
        ])
}

extension StatementParser {
    /// `domain NAME ...`: a group attached once until detached.
    mutating func readDomain(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        let nameToken = nextWord
        let spec = try domain()
        if let taken = declared.attached.first(where: { $0.name == spec.name }), arrowStart == nil, let nameToken {
            throw LineError(nameToken.text.start, "expected a group name not in the container, found \(quoted(nameToken.text)) (attached on line \(taken.line); detach it first)")
        }
        declared.attached.append((spec.name, declared.line))
        declared.named.insert(spec.name)
        if declared.firstDomainLine == nil { declared.firstDomainLine = declared.line }
        if firstOperation == nil {
            declared.domainBeforeStart = true
            rule = .none("domain before the first operation takes no answer")
        }
        return .domain(spec)
    }

    mutating func domain() throws(LineError) -> DomainSpec {
        let w = try operand("a domain name")
        if w.hasEquals { throw LineError(w.text.start, "expected a domain name, found \(quoted(w.text))") }
        let name = try domainName(w.text)
        try readKeys(.domain)
        var spec = DomainSpec(name: name)
        var explicit: DomainSpec.Keys = []
        if let i = keyed(.iommu) {
            guard let preset = IOMMUPreset(rawValue: i.value.string) else {
                throw LineError(i.value.start, "expected one of \(IOMMUPreset.list), found \(quoted(i.value))")
            }
            spec.preset = preset
        } else if !has(.pgsizes) {
            // Without a preset the page sizes must be written.
            throw missing(Key.pgsizes.name.string)
        }
        if let p = keyed(.pgsizes) {
            spec.pgsizes = try pageSizes(p.value)
            explicit.insert(.pgsizes)
            // Every IOMMU driver advertises at least one page size
            // (iommu_domain's pgsize_bitmap): a domain without one cannot map.
            if spec.pgsizes.isEmpty { throw LineError(p.value.start, "expected at least one page size, found \(quoted(p.value))") }
        }
        if let l = keyed(.leaves) { spec.leaves = try pageSizes(l.value); explicit.insert(.leaves) }
        if let a = keyed(.aperture) { spec.aperture = try range(a.value); explicit.insert(.aperture) }
        if let r = keyed(.reserved) { spec.reserved = try r.value == "none" ? [] : ranges(r.value); explicit.insert(.reserved) }
        // Fine-grained superpages (vfio_test_domain_fgsp, v3.15–v6.15)
        // changed only how the kernel issued unmaps, never an answer: the
        // key stays valid for the traces that say it (`readKeys` checked
        // its yes/no), and means nothing.
        if has(.coherent) { explicit.insert(.coherent) }
        if has(.msiIsolated) { explicit.insert(.msiIsolated) }
        spec.coherent = yesNo(.coherent, default: true)
        spec.msiIsolated = yesNo(.msiIsolated, default: true)
        if let n = keyed(.instance), let v = number(.instance) {
            guard v < 4096 else { throw LineError(n.value.start, "expected an IOMMU unit number below 4096, found \(quoted(n.value))") }
            spec.instance = Int(v)
        }
        if let l = keyed(.leaves) {
            var whole = spec
            whole.explicit = explicit
            if let problem = whole.leavesContradiction { throw LineError(l.value.start, "\(problem), found \(quoted(l.value))") }
        }
        if spec.preset != nil {
            spec.explicit = explicit
            // Filled for the newest release here; the model fills them
            // again for the release it answers (`DomainSpec.resolved`).
            spec = spec.resolved(for: KernelVersion.newestKnown).spec
        }
        spec.emulated = yesNo(.emulated, default: false)
        return spec
    }
}

/// `domain NAME ...`: with a preset, only the keys the trace wrote, each
/// even when it says the default (the preset fills the rest for the
/// release replayed).
func domainWords(_ spec: DomainSpec) -> [String] {
    let written = spec.preset == nil ? DomainSpec.Keys.all : spec.explicit
    var values: [Key: String] = [:]
    if let preset = spec.preset { values[.iommu] = preset.rawValue }
    if written.contains(.pgsizes) { values[.pgsizes] = formatPageSizes(spec.pgsizes) }
    if written.contains(.leaves), let leaves = spec.leaves { values[.leaves] = formatPageSizes(leaves) }
    if written.contains(.aperture) { values[.aperture] = formatRange(spec.aperture) }
    if written.contains(.reserved) { values[.reserved] = spec.reserved.isEmpty ? "none" : spec.reserved.map(formatRange).joined(separator: ",") }
    if written.contains(.coherent) { values[.coherent] = spec.coherent ? "yes" : "no" }
    if spec.emulated { values[.emulated] = "yes" }
    if written.contains(.msiIsolated) { values[.msiIsolated] = spec.msiIsolated ? "yes" : "no" }
    if spec.instance != 0 { values[.instance] = String(spec.instance) }
    return printWords(.domain, ["domain", spec.name], values, keepingDefaults: spec.preset != nil)
}

/// A group to attach and the IOMMU domain it gets: what a `domain`
/// statement describes.
///
/// The IOMMU driver decides these properties (`iommu_domain.pgsize_bitmap`,
/// `.geometry`, `iommu_get_group_resv_regions`); a trace states them so the
/// model can play any IOMMU.
public struct DomainSpec: Hashable, Sendable {
    /// The trace's name for this group.
    public var name: String
    public var pgsizes: PageSizes
    /// The page sizes the IOMMU's page table really has as leaves, when they
    /// differ from `pgsizes`: the IOMMU core splits a mapping by `pgsizes`
    /// (`iommu_pgsize`) and the driver builds each piece from its own leaf
    /// sizes (5.10's VT-d driver advertised every power of two from 4K but
    /// builds only 4K, 2M and 1G entries). Nil: the same as `pgsizes`.
    public var leaves: PageSizes? = nil
    /// `geometry.aperture_start ... aperture_end`.
    public var aperture: IOVARange
    /// Reserved regions of the group (MSI windows, RMRRs): never mappable.
    public var reserved: [IOVARange]
    /// Whether the domain enforces cache coherency (blocks no-snoop).
    public var coherent: Bool
    /// An emulated (mdev) group: no IOMMU domain, no pinning at MAP time.
    public var emulated: Bool
    /// Whether the group's MSIs are isolated (interrupt remapping).
    public var msiIsolated: Bool
    /// `iommu=`: the IOMMU whose values fill the keys not written
    /// (`explicit`), for the kernel release answered (`resolved(for:)`).
    public var preset: IOMMUPreset? = nil
    /// The keys the trace wrote itself; a preset never overrides them.
    public var explicit: Keys = .all
    /// `instance=`: which IOMMU unit the group is behind. Groups behind
    /// different units never share a domain (an SMMUv3 refuses a domain
    /// of another SMMU: ENXIO, EINVAL from 6.2, f4a147735793).
    public var instance: Int = 0

    /// The keys a preset can fill.
    public struct Keys: OptionSet, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let pgsizes = Keys(rawValue: 1 << 0)
        public static let leaves = Keys(rawValue: 1 << 1)
        public static let aperture = Keys(rawValue: 1 << 2)
        public static let reserved = Keys(rawValue: 1 << 3)
        public static let coherent = Keys(rawValue: 1 << 4)
        public static let msiIsolated = Keys(rawValue: 1 << 5)
        public static let all: Keys = [.pgsizes, .leaves, .aperture, .reserved, .coherent, .msiIsolated]
    }

    /// The spec with its preset's values for `release` in every key the
    /// trace did not write, and the preset's note when those values are
    /// inferred for that release. Without a preset, itself.
    public func resolved(for release: KernelVersion) -> (spec: DomainSpec, note: String?) {
        guard let preset else { return (self, nil) }
        let v = preset.values(for: release)
        var s = self
        if !explicit.contains(.pgsizes) { s.pgsizes = v.pgsizes }
        if !explicit.contains(.leaves) { s.leaves = explicit.contains(.pgsizes) ? nil : v.leaves }
        if !explicit.contains(.aperture) { s.aperture = v.aperture }
        if !explicit.contains(.reserved) { s.reserved = v.reserved }
        if !explicit.contains(.coherent) { s.coherent = v.coherent }
        if !explicit.contains(.msiIsolated) { s.msiIsolated = v.msiIsolated }
        return (s, v.note)
    }

    /// One key on which two domains answer differently, with each one's
    /// value as a trace writes it.
    public struct Difference: Hashable, Sendable {
        public var key: String
        public var this: String
        public var other: String
        public init(key: String, this: String, other: String) { self.key = key; self.this = this; self.other = other }
    }

    /// Where `other` answers differently from this domain, in the terms of
    /// the answers (not of how the keys were written): emulation, page
    /// sizes, the valid IOVA ranges (aperture less reserved regions), the
    /// leaves the table is built of (absent leaves are the page sizes),
    /// coherency and, when `comparingMSI`, whether type1 takes the group's
    /// MSI setup. Both already resolved (`resolved(for:)`).
    public func differences(from other: DomainSpec, comparingMSI: Bool = true) -> [Difference] {
        var out: [Difference] = []
        func yesNo(_ b: Bool) -> String { b ? "yes" : "no" }
        if emulated != other.emulated { out.append(Difference(key: "emulated", this: yesNo(emulated), other: yesNo(other.emulated))) }
        if pgsizes != other.pgsizes {
            out.append(Difference(key: "pgsizes", this: formatPageSizes(pgsizes), other: formatPageSizes(other.pgsizes)))
        }
        let (a, b) = (validRanges, other.validRanges)
        if a != b {
            out.append(Difference(key: "iova", this: a.map(formatRange).joined(separator: ","), other: b.map(formatRange).joined(separator: ",")))
        }
        // Absent leaves are the page sizes, whose difference says it all.
        let (l, m) = (leaves ?? pgsizes, other.leaves ?? other.pgsizes)
        if l != m && (leaves != nil || other.leaves != nil) { out.append(Difference(key: "leaves", this: formatPageSizes(l), other: formatPageSizes(m))) }
        if coherent != other.coherent { out.append(Difference(key: "coherent", this: yesNo(coherent), other: yesNo(other.coherent))) }
        if comparingMSI && msiIsolated != other.msiIsolated {
            out.append(Difference(key: "msi-isolated", this: yesNo(msiIsolated), other: yesNo(other.msiIsolated)))
        }
        return out
    }

    /// Why `leaves=` cannot be built with this domain's page sizes, or nil.
    /// A table is built of leaves that are page sizes the driver advertises
    /// (a piece the IOMMU core hands it is a run of leaves), and the
    /// smallest page size must be a leaf, else a piece of that size has no
    /// entry to be written as. With a preset whose page sizes the trace did
    /// not write, on every release the preset knows.
    public var leavesContradiction: String? {
        guard let leaves else { return nil }
        var each: [(pgsizes: PageSizes, source: String)] = [(pgsizes, "")]
        if let preset, !explicit.contains(.pgsizes) {
            each = IOMMUPreset.knownSeries.map { (preset.values(for: $0).pgsizes, ": iommu=\(preset.rawValue) on \($0)") }
        }
        for (p, source) in each {
            if leaves.rawValue & ~p.rawValue != 0 {
                return "expected leaves among the page sizes (\(formatPageSizes(p))\(source))"
            }
            if let smallest = p.smallest, !leaves.contains(smallest) {
                return "expected leaves that include the smallest page size (\(formatSize(smallest))\(source))"
            }
        }
        return nil
    }

    /// The IOVA ranges a map may use: the aperture less the reserved
    /// regions (what GET_INFO's IOVA range capability lists).
    public var validRanges: [IOVARange] { IOVARange.excluding(reserved, from: [aperture]) }

    public init(name: String, pgsizes: PageSizes = DomainSpec.defaultPgsizes,
                aperture: IOVARange = DomainSpec.defaultAperture,
                reserved: [IOVARange] = DomainSpec.defaultReserved,
                coherent: Bool = true, emulated: Bool = false, msiIsolated: Bool = true) {
        self.name = name; self.pgsizes = pgsizes; self.aperture = aperture; self.reserved = reserved
        self.coherent = coherent; self.emulated = emulated; self.msiIsolated = msiIsolated
    }

    /// 4K, 2M and 1G: what VT-d and AMD-Vi report.
    public static let defaultPgsizes = PageSizes([4096, 2 << 20, 1 << 30])
    /// A 48-bit address space.
    public static let defaultAperture = IOVARange(start: 0, last: 0xffff_ffff_ffff)
    /// The x86 MSI window.
    public static let defaultReserved = [IOVARange(start: 0xfee0_0000, last: 0xfeef_ffff)]

    /// The domain a trace gets when it names none: `d0`.
    public static let `default` = DomainSpec(name: "d0")
}

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

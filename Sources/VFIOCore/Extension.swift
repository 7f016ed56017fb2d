/// An argument of `VFIO_CHECK_EXTENSION` (also the `VFIO_SET_IOMMU` types).
public struct Extension: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `VFIO_TYPE1_IOMMU`
    public static let type1 = Extension(rawValue: 1)
    /// `VFIO_SPAPR_TCE_IOMMU`
    public static let spaprTCE = Extension(rawValue: 2)
    /// `VFIO_TYPE1v2_IOMMU`
    public static let type1v2 = Extension(rawValue: 3)
    /// `VFIO_DMA_CC_IOMMU`: every domain enforces cache coherency.
    public static let dmaCC = Extension(rawValue: 4)
    /// `VFIO_EEH`
    public static let eeh = Extension(rawValue: 5)
    /// `VFIO_TYPE1_NESTING_IOMMU` (reserved since 6.13).
    public static let nesting = Extension(rawValue: 6)
    /// `VFIO_SPAPR_TCE_v2_IOMMU`
    public static let spaprTCEv2 = Extension(rawValue: 7)
    /// `VFIO_NOIOMMU_IOMMU`
    public static let noIOMMU = Extension(rawValue: 8)
    /// `VFIO_UNMAP_ALL`
    public static let unmapAll = Extension(rawValue: 9)
    /// `VFIO_UPDATE_VADDR`
    public static let updateVaddr = Extension(rawValue: 10)

    /// Trace names, as `extension NAME` spells them.
    public static let byName: [(String, Extension)] = [
        ("type1", .type1), ("spapr", .spaprTCE), ("type1v2", .type1v2), ("dma-cc", .dmaCC),
        ("eeh", .eeh), ("nesting", .nesting), ("spapr-v2", .spaprTCEv2), ("noiommu", .noIOMMU),
        ("unmap-all", .unmapAll), ("update-vaddr", .updateVaddr),
    ]
    public init?(name: String) {
        guard let found = Extension.byName.first(where: { $0.0 == name }) else { return nil }
        self = found.1
    }
    public var description: String {
        Extension.byName.first(where: { $0.1 == self })?.0 ?? String(rawValue)
    }
}

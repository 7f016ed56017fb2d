/// Why the model keeps a generated sequence off a real kernel.
public enum KernelHazard: String, CaseIterable, Sendable, Hashable {
    /// It, or releasing its container, loops forever in `vfio_unmap_unpin`.
    case hang
    /// The kernel's wrapping search (before 6.18) lets a map overlap another
    /// mapping, and what the IOMMU driver then does to the shared entries is
    /// the driver's (virtio-iommu removes whole mappings, the page-table
    /// drivers overwrite entries), which the model does not follow per driver.
    case overlap
    /// A mapping ending at 2^64-1 is never unpinned before 6.18: hugepages
    /// stay pinned for every later sequence of the boot.
    case pinnedHugepages = "pinned-hugepages"

    /// The note a skipped sequence carries.
    public var reason: String {
        switch self {
        case .hang: "the model says it would loop forever in vfio_unmap_unpin"
        case .overlap: "the kernel would let a mapping overlap another, and what its IOMMU driver then does to the shared entries is not modelled"
        case .pinnedHugepages: "the model says it would leave hugepages pinned for good"
        }
    }

    /// For a count: "12 would hang it".
    public var counted: String {
        switch self {
        case .hang: "would hang it"
        case .overlap: "would overlap mappings in the IOMMU"
        case .pinnedHugepages: "would leave hugepages pinned"
        }
    }
}

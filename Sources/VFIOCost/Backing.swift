import VFIOCore

/// What backs the pages a MAP_DMA pins: the thing most of its cost depends
/// on (how `pin_user_pages_remote` finds each page, how big a folio
/// `vfio_pin_pages_remote` can take at once, whether there is a page at
/// all). From the trace's `memory` statement: `page=`, `thp`, `pfnmap`.
public enum Backing: String, CaseIterable, Sendable, Hashable {
    /// Anonymous 4 KiB pages (the default `memory`).
    case anon4K = "4K"
    /// Anonymous memory on transparent hugepages (`thp`).
    case thp
    /// hugetlbfs 2 MiB pages (`page=2M`).
    case hugetlb2M = "hugetlb-2M"
    /// hugetlbfs 1 GiB pages (`page=1G`).
    case hugetlb1G = "hugetlb-1G"
    /// `VM_PFNMAP` device memory, an mmap'd BAR (`pfnmap`): no struct
    /// page, nothing pinned or charged, each pfn looked up in the page table.
    case pfnmap

    public init(_ spec: MemorySpec) {
        if spec.pfnmap { self = .pfnmap; return }
        switch spec.pageSize {
        case 1 << 30: self = .hugetlb1G
        case 2 << 20: self = .hugetlb2M
        default:
            switch spec.placement {
            case .thp, .layout(.thp): self = .thp
            default: self = .anon4K
            }
        }
    }

    /// A large folio (THP or hugetlb): pinned and unpinned a folio at a
    /// time since 6.18.
    public var isLargeFolio: Bool { self == .thp || self == .hugetlb2M || self == .hugetlb1G }

    /// The size of one first-touch fault: a THP or hugetlb folio is faulted
    /// in (and zeroed) whole.
    public var faultSize: UInt64 {
        switch self {
        case .anon4K, .pfnmap: 4096
        case .thp, .hugetlb2M: 2 << 20
        case .hugetlb1G: 1 << 30
        }
    }
}

import VFIOCore

/// One named constant of the cost model, in nanoseconds (`fault_byte`:
/// nanoseconds per byte). docs/COSTS.md says where each value comes from.
public enum CostTerm: String, CaseIterable, Sendable, Hashable {
    // MAP_DMA (`vfio_dma_do_map` → `vfio_pin_map_dma`).
    /// Per call: the ioctl, the checks, linking the `vfio_dma`.
    case mapIoctl = "map_ioctl"
    /// Per 4 KiB page pinned, by backing, on the newest release:
    /// `pin_user_pages_remote` finding and pinning it, and
    /// `vfio_pin_pages_remote`'s work per page.
    case mapPage4K = "map_page_4k"
    case mapPageTHP = "map_page_thp"
    case mapPageHugetlb2M = "map_page_hugetlb_2m"
    case mapPageHugetlb1G = "map_page_hugetlb_1g"
    /// Per folio step (6.18 on): one stretch of one folio in a 512-page
    /// batch, checked and charged at once (Li Zhe's series).
    case mapFolioStep = "map_folio_step"
    /// Per physically contiguous chunk per domain: one `iommu_map` call.
    case mapChunk = "map_chunk"
    /// Per IOMMU leaf entry written.
    case mapPTE = "map_pte"
    /// Per 4 KiB pfn of `VM_PFNMAP` memory looked up (`follow_pfnmap_start`
    /// for every page: before 6.15, or a BAR mapped with 4 KiB entries).
    case mapPfnmapPage = "map_pfnmap_page"
    /// Per page-table entry of a huge-mapped BAR (6.15 on: one lookup per
    /// PUD or PMD, commit 0fd06844de5d).
    case mapPfnmapHugeStep = "map_pfnmap_huge_step"
    /// First touch of `populated=no` memory: per fault, and per byte zeroed.
    case faultEach = "fault_each"
    case faultByte = "fault_byte"
    // Release terms: costs a kernel change removed, paid before it.
    /// Before 6.18: `vfio_pin_pages_remote` checks and charges every page
    /// alone (`is_invalid_reserved_pfn`, `vfio_find_vpfn`, the limit).
    case mapAccountingBefore618 = "map_page_accounting_before_6_18"
    /// Before 5.13: one `pin_user_pages_remote` call per page (commit
    /// 4d83de6da265, "vfio/type1: Batch page pinning").
    case mapUnbatchedBefore513 = "map_page_unbatched_before_5_13"
    /// Before 6.6: slow GUP of a THP walks the page table again for every
    /// 4 KiB subpage under the PMD lock (Peter Xu's "mm/gup: Unify
    /// hugetlb, speed up thp", 6.6).
    case mapTHPWalkBefore66 = "map_thp_subpage_walk_before_6_6"
    /// Before 6.6: hugetlb pages through `follow_hugetlb_page` (the same
    /// series moved them to the generic path); fitted on a different
    /// machine from the later figures, so partly the machine's.
    case mapHugetlbGUPBefore66 = "map_hugetlb_gup_before_6_6"
    // UNMAP_DMA (`vfio_dma_do_unmap` → `vfio_unmap_unpin`).
    case unmapIoctl = "unmap_ioctl"
    /// Per 4 KiB page: `iommu_iova_to_phys` finding where each chunk ends.
    case unmapWalkPage = "unmap_walk_page"
    /// Per 4 KiB page unpinned (6.18 on) and per folio step unpinned at
    /// once (`unpin_user_page_range_dirty_lock`).
    case unmapPage = "unmap_page"
    case unmapFolioStep = "unmap_folio_step"
    /// Before 6.18: `put_pfn` for every page.
    case unmapPageBefore618 = "unmap_page_before_6_18"
    /// Per chunk per domain: `iommu_unmap_fast` and the gather.
    case unmapChunk = "unmap_chunk"
    case unmapPTE = "unmap_pte"
    /// Per IOTLB sync (`iommu_iotlb_sync`): one per 512 chunks per domain.
    case unmapIOTLBSync = "unmap_iotlb_sync"

    /// The release a release term stops applying at, with its source.
    public var until: (release: KernelVersion, source: String)? {
        switch self {
        case .mapAccountingBefore618, .unmapPageBefore618:
            (KernelVersion(6, 18), "Li Zhe, 20250814064714.56485-1-lizhe.67@bytedance.com (VFIO pull for 6.18-rc1 part 2)")
        case .mapUnbatchedBefore513: (KernelVersion(5, 13), "commit 4d83de6da265")
        case .mapTHPWalkBefore66, .mapHugetlbGUPBefore66: (KernelVersion(6, 6), "Peter Xu, 20230628215310.73782-1-peterx@redhat.com")
        default: nil
        }
    }

    /// The release a term starts applying at (the newest form of a cost a
    /// release term stands for before it).
    public var since: KernelVersion? {
        switch self {
        case .mapFolioStep, .unmapPage, .unmapFolioStep: KernelVersion(6, 18)
        case .mapPfnmapHugeStep: KernelVersion(6, 15)
        default: nil
        }
    }

    /// `ns` or `ns/byte`.
    public var unit: String { self == .faultByte ? "ns/byte" : "ns" }
}

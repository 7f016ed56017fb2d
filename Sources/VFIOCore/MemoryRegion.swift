/// A region of process memory that mappings may use: what a `memory`
/// statement describes.
///
/// The physical layout is a rule, not a table: a region of any size costs
/// O(1) to describe, and the frames of a range are computed on demand.
public struct MemoryRegion: Hashable, Sendable {
    public var vaddr: UInt64
    public var size: UInt64
    /// The page size backing it: 4K (anonymous), 2M or 1G (hugetlbfs).
    public var pageSize: UInt64
    public var layout: PhysicalLayout
    /// Device memory (an mmap'd BAR, `VM_PFNMAP`): reserved pfns, never charged.
    public var pfnmap: Bool

    public init(vaddr: UInt64, size: UInt64, pageSize: UInt64 = PageSizes.pageSize,
                layout: PhysicalLayout, pfnmap: Bool = false) {
        self.vaddr = vaddr; self.size = size; self.pageSize = pageSize; self.layout = layout; self.pfnmap = pfnmap
    }

    /// `vaddr ... vaddr+size-1`; regions are validated before they exist.
    public var range: IOVARange { IOVARange(start: vaddr, last: vaddr &+ (size &- 1)) }
}

/// Where a region's pages lie in physical memory.
public enum PhysicalLayout: Hashable, Sendable {
    /// Page i at `base + i*pageSize`.
    case contiguous(base: UInt64)
    /// Each page somewhere else, never next to its neighbours, decided by a seed.
    case scattered(seed: UInt64)
    /// Page i at `base + (n-1-i)*pageSize`: descending, so never contiguous.
    case reversed(base: UInt64)
    /// Runs of `chunk` bytes, each contiguous, with a gap between runs.
    case chunks(size: UInt64, base: UInt64)
    /// 4K pages backed by transparent hugepages (`thp`): every 2 MiB block
    /// of the region's virtual range that is 2 MiB-aligned lies on one
    /// 2 MiB-aligned physical hugepage, each somewhere else (never next to
    /// another); the pages before the first block and after the last are
    /// scattered, never next to a neighbour or a block. Placed by a seed.
    case thp(seed: UInt64)
    /// Frames as observed on a real machine (`/proc/self/pagemap`): runs of
    /// (offset into the region, physical address, length), ascending offset.
    case observed([PhysicalRun])
}

/// A physically contiguous stretch of a region.
public struct PhysicalRun: Hashable, Sendable {
    public var offset: UInt64
    public var phys: UInt64
    public var length: UInt64
    public init(offset: UInt64, phys: UInt64, length: UInt64) { self.offset = offset; self.phys = phys; self.length = length }
}

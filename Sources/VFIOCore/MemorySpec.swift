/// Memory a process is asked to have: what a `memory` statement says,
/// before a backend makes it real. `MemoryRegion` is what it became (the
/// model places it by rule, the kernel backend reports the frames it got).
public struct MemorySpec: Hashable, Sendable {
    public var vaddr: UInt64
    public var size: UInt64
    /// `page=`: 4K (default), 2M or 1G.
    public var pageSize: UInt64
    /// Where the pages lie physically: `phys=`, `thp`, or the default.
    public var placement: Placement
    public var pfnmap: Bool
    /// `populated=no`: the pages are not there yet (no `MAP_POPULATE`, no
    /// QEMU `prealloc`), so the first pin faults each one in and zeroes it.
    /// Only the cost of a MAP_DMA depends on it, never an answer: the
    /// kernel pins the same pages either way (`vaddr_get_pfns` faults them
    /// in through `pin_user_pages_remote`).
    public var populated: Bool

    /// How a region's pages are placed in physical memory.
    public enum Placement: Hashable, Sendable {
        /// No `phys=` (and no `thp`): as the memory is really laid out.
        /// Each page on its own frame, never next to its neighbour
        /// (`scattered` with the vaddr as the seed): 4K anonymous pages
        /// one by one, and hugetlb pages each contiguous in itself but
        /// somewhere else from the one before. `pfnmap` memory (a BAR) is
        /// one contiguous stretch, placed as `contiguous`.
        case realistic
        /// `phys=contiguous`: one physically contiguous run, placed after
        /// the regions placed by rule before it with a 1 GiB gap (the
        /// default before `realistic`).
        case contiguous
        /// `thp`: 4K pages backed by transparent hugepages: each 2 MiB
        /// block of the virtual range that is 2 MiB-aligned is one
        /// contiguous, 2 MiB-aligned hugepage somewhere else, and the pages
        /// before the first block and after the last are scattered.
        case thp
        /// `phys=ADDR`, `scattered`, `reversed` or `chunks:SIZE`.
        case layout(PhysicalLayout)
    }

    public init(vaddr: UInt64, size: UInt64, pageSize: UInt64 = 4096, placement: Placement = .realistic, pfnmap: Bool = false,
                populated: Bool = true) {
        self.vaddr = vaddr; self.size = size; self.pageSize = pageSize; self.placement = placement; self.pfnmap = pfnmap
        self.populated = populated
    }

    /// A region with an explicit layout (`phys=` with an address or a name).
    public init(vaddr: UInt64, size: UInt64, pageSize: UInt64 = 4096, layout: PhysicalLayout, pfnmap: Bool = false) {
        self.init(vaddr: vaddr, size: size, pageSize: pageSize, placement: .layout(layout), pfnmap: pfnmap)
    }

    /// The explicit layout, if `phys=` gave one.
    public var layout: PhysicalLayout? {
        if case .layout(let l) = placement { return l }
        return nil
    }

    /// The layout the model gives a region placed by rule (`realistic` or
    /// `thp`), and nil where it is contiguous (placed by `ProcessMemory`).
    public var ruleLayout: PhysicalLayout? {
        switch placement {
        case .realistic: return pfnmap ? nil : .scattered(seed: vaddr)
        case .thp: return .thp(seed: vaddr)
        case .contiguous, .layout: return nil
        }
    }
}

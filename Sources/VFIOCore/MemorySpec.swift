/// Memory a process is asked to have: what a `memory` statement says,
/// before a backend makes it real. `MemoryRegion` is what it became (the
/// model places it by rule, the kernel backend reports the frames it got).
public struct MemorySpec: Hashable, Sendable {
    public var vaddr: UInt64
    public var size: UInt64
    /// `page=`: 4K (default), 2M or 1G.
    public var pageSize: UInt64
    /// `phys=` (with `seed=` for `scattered`); nil = the model's default,
    /// contiguous memory placed after the regions declared before.
    public var layout: PhysicalLayout?
    public var pfnmap: Bool
    public init(vaddr: UInt64, size: UInt64, pageSize: UInt64 = 4096, layout: PhysicalLayout? = nil, pfnmap: Bool = false) {
        self.vaddr = vaddr; self.size = size; self.pageSize = pageSize; self.layout = layout; self.pfnmap = pfnmap
    }
}

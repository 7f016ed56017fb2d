/// A broken invariant of a container model or of the process: which
/// structure, and what was seen. The model walks its invariants after each
/// call (`ContainerDriver.checkInvariants`); a violation is a model bug,
/// never an answer about Linux.
public struct InvariantViolation: Error, Sendable, Equatable, CustomStringConvertible {
    /// The structure whose rule broke.
    public enum Structure: String, Sendable {
        /// The mapping tree (type1's `dma_list`) or area list (iommufd).
        case tree
        /// One mapping or area on its own (size, wrap, overlap, memory).
        case mapping
        /// What was charged against what the mappings hold.
        case accounting
        /// The IOMMU page tables against the mappings.
        case pageTable = "page table"
        /// Domains against their groups.
        case domains
        /// The process's counts against its containers'.
        case process
    }
    public var structure: Structure
    public var detail: String
    public init(_ structure: Structure, _ detail: String) {
        self.structure = structure
        self.detail = detail
    }
    public var description: String { detail }
}

import VFIOCore

/// A parsed `.trace` file: its statements in file order.
public struct Trace: Sendable, Hashable {
    /// The path as given on the command line (used in every message).
    public var file: String
    public var statements: [Statement]
    public init(file: String, statements: [Statement]) { self.file = file; self.statements = statements }
}

/// One line of a trace.
///
/// Laid out to be cheap to copy and destroy: a trace holds a statement per
/// line, and parsing one moved each into the array (a copy and a destroy
/// of every field) and freeing it destroyed each again. The fields most
/// lines leave empty (`comment`, `repetition`, `spellings`) live behind
/// one optional reference (`Extras`), nil on most lines; the big, rare
/// payloads of `Kind` and `Check` are `indirect`.
public struct Statement: Sendable, Hashable {
    /// 1-based line and column of the statement's first word.
    public var line: Int
    public var column: Int
    public var kind: Kind
    /// The answer written after `=>`, if any.
    public var expected: Answer?
    /// `comment`, `repetition` and `spellings` when any is set; nil when
    /// all three are empty (never an `Extras` with all three empty, so
    /// equal statements have equal storage).
    private var extras: Extras?

    /// A trailing `# comment` (without the `#`), kept by `fmt`.
    public var comment: String? {
        get { extras?.comment }
        set { extras = Extras.make(comment: newValue, repetition: repetition, spellings: spellings) }
    }
    /// `repeat=N [step=SIZE]` on `map` and `unmap`: the operation N times,
    /// iova (and vaddr) advancing by the step each time; nil = once.
    public var repetition: Repetition? {
        get { extras?.repetition }
        set { extras = Extras.make(comment: comment, repetition: newValue, spellings: spellings) }
    }
    /// How the trace spelled some values (`size=` → `0x200000`), so `fmt`
    /// keeps a spelling that still says the same value. Filled only when the
    /// parser is asked to keep spellings.
    public var spellings: [String: String] {
        get { extras?.spellings ?? [:] }
        set { extras = Extras.make(comment: comment, repetition: repetition, spellings: newValue) }
    }

    /// The rarely set fields, shared between copies and never changed (a
    /// setter makes a new one), so a statement stays a value.
    final class Extras: Sendable, Hashable {
        let comment: String?
        let repetition: Repetition?
        let spellings: [String: String]

        private init(comment: String?, repetition: Repetition?, spellings: [String: String]) {
            self.comment = comment; self.repetition = repetition; self.spellings = spellings
        }

        /// Nil when all three are empty.
        static func make(comment: String?, repetition: Repetition?, spellings: [String: String]) -> Extras? {
            if comment == nil && repetition == nil && spellings.isEmpty { return nil }
            return Extras(comment: comment, repetition: repetition, spellings: spellings)
        }

        static func == (lhs: Extras, rhs: Extras) -> Bool {
            lhs === rhs || (lhs.comment == rhs.comment && lhs.repetition == rhs.repetition && lhs.spellings == rhs.spellings)
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(comment)
            hasher.combine(repetition)
            hasher.combine(spellings)
        }
    }

    public init(line: Int, column: Int, kind: Kind, expected: Answer? = nil, comment: String? = nil) {
        self.line = line; self.column = column; self.kind = kind; self.expected = expected
        extras = comment == nil ? nil : Extras.make(comment: comment, repetition: nil, spellings: [:])
    }

    /// Sets the three rarely set fields at once (the parser, once per line
    /// that has any).
    mutating func setExtras(comment: String?, repetition: Repetition?, spellings: [String: String]) {
        extras = Extras.make(comment: comment, repetition: repetition, spellings: spellings)
    }

    /// `repeat=N` and `step=`.
    public struct Repetition: Sendable, Hashable {
        public var count: UInt64
        /// How far iova and vaddr advance each time; nil = by the size.
        public var step: UInt64?
        public init(count: UInt64, step: UInt64? = nil) { self.count = count; self.step = step }
    }

    /// How many operations the statement stands for (1 without `repeat=`).
    public var count: UInt64 { repetition?.count ?? 1 }

    /// The `i`-th operation of a `repeat=N` statement (0-based): iova and
    /// vaddr advanced by `i` steps, no repetition left. (The parser made
    /// sure no advance wraps.)
    public func repeated(_ i: UInt64) -> Statement {
        guard let r = repetition else { return self }
        var one = self
        one.repetition = nil
        switch kind {
        case .map(var m):
            let advance = (r.step ?? m.size) &* i
            m.iova &+= advance
            m.vaddr &+= advance
            one.kind = .map(m)
        case .unmap(var u):
            u.iova &+= (r.step ?? u.size) &* i
            one.kind = .unmap(u)
        default:
            break
        }
        return one
    }

    public enum Kind: Sendable, Hashable {
        /// A line holding only a comment (text without the `#`).
        case comment(String)
        /// An empty line; `fmt` keeps one where the author had some.
        case blank

        // Setup statements (TRACE_FORMAT.md, "Setup statements").
        /// `iommu type1v2|type1`: `VFIO_SET_IOMMU`. May carry an answer.
        case iommu(IOMMUType)
        /// `container type1|iommufd`: which kernel code answers the type1
        /// ioctls (`/dev/vfio/vfio`, or iommufd's compat layer through
        /// `/dev/iommu`). Before the first `domain` and operation.
        case container(ContainerKind)
        /// `container NAME [type1|iommufd]`: later statements go to the
        /// container named, opened now if new, in the same process (one
        /// memory, one limit, one `locked_vm`). The first is `c0`. No kind:
        /// the one it was opened as, type1 for a new container.
        case useContainer(String, ContainerKind?)
        /// `mlock SIZE`: memory the process holds locked already (`mlock`,
        /// QEMU `mem-lock=on`), in `locked_vm` before any container pins.
        case mlock(UInt64)
        /// `kernel VERSION`: whose answers the model gives.
        case kernel(KernelVersion)
        /// `memlock SIZE|unlimited`: `RLIMIT_MEMLOCK` in bytes, nil = unlimited.
        case memlock(UInt64?)
        /// `cap-ipc-lock on|off`
        case capIPCLock(Bool)
        /// `dma-entry-limit N` (module parameter, a u32).
        case dmaEntryLimit(UInt32)
        /// `domain NAME ...`: attach a group (an operation after the first one).
        indirect case domain(DomainSpec)
        /// `detach NAME`
        case detach(String)
        /// `memory vaddr= size= ...`
        indirect case memory(MemorySpec)

        // Operations.
        /// `map ...`: `VFIO_IOMMU_MAP_DMA` (with `vaddr-only`: the VADDR flag).
        case map(MapDMA)
        /// `unmap ...` and `unmap-all`: `VFIO_IOMMU_UNMAP_DMA`.
        case unmap(UnmapDMA)
        /// `info [argsz=N]`: `VFIO_IOMMU_GET_INFO`; nil argsz = a buffer big enough.
        case info(argsz: UInt32?)
        /// `extension NAME`: `VFIO_CHECK_EXTENSION`.
        case `extension`(Extension)
        /// `dirty start|stop`: `VFIO_IOMMU_DIRTY_PAGES`.
        case dirty(DirtyPages)

        /// `check ...`: an observation that must hold.
        case check(Check)
        /// `show [locked] [mappings] [ptes] [iova]`: prints the container's
        /// state here; never fails.
        case show(ShowItems)
    }
}

/// What a `show` statement prints (`show` alone: everything).
public struct ShowItems: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Locked memory against `RLIMIT_MEMLOCK`.
    public static let locked = ShowItems(rawValue: 1 << 0)
    /// Mappings against `dma_entry_limit`, and `dma_avail`.
    public static let mappings = ShowItems(rawValue: 1 << 1)
    /// IOMMU page-table entries by size, per domain.
    public static let ptes = ShowItems(rawValue: 1 << 2)
    /// The valid IOVA ranges and the page sizes.
    public static let iova = ShowItems(rawValue: 1 << 3)
    public static let all: ShowItems = [.locked, .mappings, .ptes, .iova]
    /// The words, in order.
    public static let names: [(String, ShowItems)] = [("locked", .locked), ("mappings", .mappings), ("ptes", .ptes), ("iova", .iova)]
}

/// The interface `iommu` selects.
public enum IOMMUType: String, Sendable, Hashable {
    case type1
    case type1v2
    public var ext: Extension { self == .type1 ? .type1 : .type1v2 }
}

/// A `check` statement.
public enum Check: Sendable, Hashable {
    /// `check locked=SIZE`: `VmLck` in bytes.
    case locked(UInt64)
    /// `check mappings=N`: number of `vfio_dma` entries.
    case mappings(UInt64)
    /// `check ptes=4K:N,2M:N [domain=NAME]`: leaf entries by page size.
    /// Sizes not listed must have no entries.
    indirect case ptes(PTECounts, domain: String?)
    /// `check pte iova=X [domain=NAME] => SIZE|none`: the page size of the
    /// leaf entry that translates `iova` in the domain's IOMMU page table,
    /// nil (`none`) when no entry does (what the kernel selftests read from
    /// the IOMMU's debugfs).
    indirect case pte(iova: UInt64, leaf: UInt64?, domain: String?)
}

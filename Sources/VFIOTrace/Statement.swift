import VFIOCore

/// A parsed `.trace` file: its statements in file order.
public struct Trace: Sendable, Hashable {
    /// The path as given on the command line (used in every message).
    public var file: String
    public var statements: [Statement]
    public init(file: String, statements: [Statement]) { self.file = file; self.statements = statements }
}

/// One line of a trace.
public struct Statement: Sendable, Hashable {
    /// 1-based line and column of the statement's first word.
    public var line: Int
    public var column: Int
    public var kind: Kind
    /// The answer written after `=>`, if any.
    public var expected: Answer?
    /// A trailing `# comment` (without the `#`), kept by `fmt`.
    public var comment: String?

    public init(line: Int, column: Int, kind: Kind, expected: Answer? = nil, comment: String? = nil) {
        self.line = line; self.column = column; self.kind = kind; self.expected = expected; self.comment = comment
    }

    public enum Kind: Sendable, Hashable {
        /// A line holding only a comment (text without the `#`).
        case comment(String)
        /// An empty line; `fmt` keeps one where the author had some.
        case blank

        // Setup statements (TRACE_FORMAT.md, "Setup statements").
        /// `iommu type1v2|type1`: `VFIO_SET_IOMMU`. May carry an answer.
        case iommu(IOMMUType)
        /// `kernel VERSION`: whose answers the model gives.
        case kernel(KernelVersion)
        /// `memlock SIZE|unlimited`: `RLIMIT_MEMLOCK` in bytes, nil = unlimited.
        case memlock(UInt64?)
        /// `cap-ipc-lock on|off`
        case capIPCLock(Bool)
        /// `dma-entry-limit N` (module parameter, a u32).
        case dmaEntryLimit(UInt32)
        /// `domain NAME ...`: attach a group (an operation after the first one).
        case domain(DomainSpec)
        /// `detach NAME`
        case detach(String)
        /// `memory vaddr= size= ...`
        case memory(MemorySpec)

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
    }
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
    case ptes(PTECounts, domain: String?)
}

/// What came back from an operation, or what a trace says must come back.
public struct Answer: Sendable, Hashable, CustomStringConvertible {
    public enum Status: Sendable, Hashable {
        /// `ok`, or an answer written with keys only (`info => dma-avail=3`).
        case ok
        case errno(Errno)
        /// `extension`: the ioctl's return value.
        case value(UInt64)
    }
    public var status: Status
    /// Keys of the answer, in the order written. For an expected answer only
    /// the keys written are compared.
    public var fields: [AnswerField]

    public init(_ status: Status, fields: [AnswerField] = []) { self.status = status; self.fields = fields }

    public var description: String {
        var words: [String] = []
        switch status {
        case .ok: words.append("ok")
        case .errno(let e): words.append(e.description)
        case .value(let v): words.append(String(v))
        }
        words += fields.map(\.description)
        return words.joined(separator: " ")
    }
}

/// One `key=value` of an answer.
public enum AnswerField: Sendable, Hashable, CustomStringConvertible {
    /// `size=SIZE`: the size UNMAP reports back.
    case size(UInt64)
    /// `pgsizes=LIST`: `iova_pgsizes`.
    case pgsizes(PageSizes)
    /// `iova=RANGE,...`: the IOVA_RANGE capability (`none` when absent).
    case iova([IOVARange]?)
    /// `dma-avail=N` (`none` when the capability is absent).
    case dmaAvail(UInt32?)
    /// `argsz=N`: the size the kernel asks for (or left) in `argsz`.
    case argsz(UInt32)
    /// `dirty=RANGE,...` or `dirty=none`: the pages whose bits the kernel
    /// set in the caller's bitmap (GET_BITMAP, or an UNMAP with
    /// GET_DIRTY_BITMAP), as IOVA ranges, adjacent pages joined.
    case dirty([IOVARange])

    public var key: String {
        switch self {
        case .size: "size"
        case .pgsizes: "pgsizes"
        case .iova: "iova"
        case .dmaAvail: "dma-avail"
        case .argsz: "argsz"
        case .dirty: "dirty"
        }
    }

    public var description: String {
        switch self {
        case .size(let s): "size=\(formatSize(s))"
        case .pgsizes(let p): "pgsizes=\(formatPageSizes(p))"
        case .iova(let r): "iova=" + (r.map { $0.isEmpty ? "none" : $0.map(formatRange).joined(separator: ",") } ?? "none")
        case .dmaAvail(let n): "dma-avail=" + (n.map { String($0) } ?? "none")
        case .argsz(let n): "argsz=\(n)"
        case .dirty(let r): "dirty=" + (r.isEmpty ? "none" : r.map(formatRange).joined(separator: ","))
        }
    }
}


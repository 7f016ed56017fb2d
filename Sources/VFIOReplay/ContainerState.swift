import VFIOCore
import VFIOTrace

/// What a `show` statement read from one backend: the container's state at
/// that line, from observations every backend offers (`lockedMemory`,
/// `mappingCount`, `pageTableEntries`, `getInfo`) and the limits the trace
/// set.
public struct ContainerState: Sendable {
    public var backend: String
    /// Whether the first operation had come (VFIO_SET_IOMMU done).
    public var started: Bool
    /// What the `show` asked for.
    public var items: ShowItems = .all
    public var locked: Observation<UInt64> = .notObservable("not read")
    /// `RLIMIT_MEMLOCK`; nil = unlimited.
    public var memlock: UInt64? = nil
    public var capIPCLock = false
    public var mappings: Observation<UInt64> = .notObservable("not read")
    public var dmaEntryLimit: UInt32 = 65535
    /// From GET_INFO (nil before the first operation or when absent).
    public var dmaAvail: UInt32? = nil
    public var iova: [IOVARange]? = nil
    public var pgsizes: PageSizes? = nil
    /// Per group, the PTEs of its domain.
    public var ptes: [(domain: String, Observation<PTECounts>)] = []
    /// Every domain together.
    public var ptesTotal: Observation<PTECounts> = .notObservable("not read")

    public init(backend: String, started: Bool) { self.backend = backend; self.started = started }

    /// The state as indented lines for people: sizes exact and readable.
    public var lines: [String] {
        var out: [String] = []
        if items.contains(.locked) {
            let limit = memlock.map { "RLIMIT_MEMLOCK \(readableSize($0))" } ?? "RLIMIT_MEMLOCK unlimited"
            switch locked {
            case .value(let v):
                var line = "locked    \(readableSize(v)) (\(formatSize(v))) of \(limit)"
                if let m = memlock, m >= v, !capIPCLock { line += ", \(readableSize(m - v)) left" }
                if capIPCLock { line += " (CAP_IPC_LOCK: exempt, still counted)" }
                out.append(line)
            case .notObservable(let why): out.append("locked    not observable (\(why))")
            }
        }
        if items.contains(.mappings) {
            switch mappings {
            case .value(let n):
                var line = "mappings  \(n) of dma_entry_limit \(dmaEntryLimit)"
                if let a = dmaAvail { line += ", dma_avail \(a)" } else if !started { line += " (container not set up yet: VFIO_SET_IOMMU comes with the first operation)" }
                out.append(line)
            case .notObservable(let why): out.append("mappings  not observable (\(why))")
            }
        }
        if items.contains(.ptes) {
            func text(_ o: Observation<PTECounts>) -> String {
                switch o {
                case .value(let c):
                    if c.counts.isEmpty { return "none" }
                    let total = c.counts.values.reduce(0, &+)
                    return c.counts.keys.sorted().map { "\(formatSize($0)):\(c.counts[$0]!)" }.joined(separator: " ") + " (\(total) entries)"
                case .notObservable(let why): return "not observable (\(why))"
                }
            }
            if ptes.count != 1 {
                var line = "ptes      all domains: \(text(ptesTotal))"
                func sum(_ o: Observation<PTECounts>) -> UInt64? { if case .value(let c) = o { c.counts.values.reduce(0, &+) } else { nil } }
                if let total = sum(ptesTotal), ptes.compactMap({ sum($0.1) }).reduce(0, &+) != total {
                    line += "; groups with the same IOMMU share one domain and one table"
                }
                out.append(line)
            }
            for (name, o) in ptes { out.append("ptes      \(name): \(text(o))") }
        }
        if items.contains(.iova) {
            if let r = iova {
                out.append("iova      " + (r.isEmpty ? "none" : r.map { "\(formatRange($0)) (\(readableSize($0.size ?? 0)))" }.joined(separator: ", ")))
            } else {
                out.append("iova      " + (started ? "no IOVA range capability" : "not known before the first operation"))
            }
            if let p = pgsizes { out.append("pgsizes   \(formatPageSizes(p))") }
        }
        return out
    }
}

/// What a `check` read, typed for reports (JSON).
public enum CheckObservation: Sendable, Hashable {
    case locked(UInt64)
    case mappings(UInt64)
    case ptes(PTECounts)
    /// `check pte`: the leaf's page size, nil for none.
    case pte(UInt64?)
}

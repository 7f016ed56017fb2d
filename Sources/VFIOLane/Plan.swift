import VFIOCore
import VFIOCost
import VFIOModel
import VFIOReplay
import VFIOTrace

/// What a scenario needs, then what it risks (`vfio-sim plan`).
///
/// The needs come from a replay with the trace's limits lifted
/// (`RLIMIT_MEMLOCK` unlimited, `dma_entry_limit` at its largest): the
/// most memory locked at once (the `RLIMIT_MEMLOCK` to set), the most
/// mappings at once (the `dma_entry_limit` to allow), the IOMMU
/// page-table entries by size per domain at their peak and at the end.
/// Then a replay under the trace's own limits says whether they allow
/// that, and where the scenario first fails when they do not (with the
/// iteration of a `repeat=` line), and the hazards met on the way, each
/// class once per line with a count.
public struct ScenarioPlan: Sendable {
    public var file: String
    /// The profile the model answered as.
    public var kernel: String
    public var container: ContainerKind = .type1
    /// Operations run (each iteration of a `repeat=` line counts).
    public var operations = 0
    /// With the limits lifted: what the scenario needs.
    public var needs = Usage()
    /// Under the trace's own limits: what it reached.
    public var reached = Usage()
    /// The trace's `RLIMIT_MEMLOCK` at the end (nil = unlimited).
    public var memlock: UInt64? = nil
    public var capIPCLock = false
    public var dmaEntryLimit: UInt32 = 65535
    /// The first operation refused for locked memory (ENOMEM) under the
    /// trace's limits, and how many were; nil when none was.
    public var memlockFailure: LimitFailure? = nil
    /// The first operation refused for want of an entry (ENOSPC).
    public var entryFailure: LimitFailure? = nil
    public var hazards: [Hazard] = []
    /// Answers that differed from the ones the trace wrote.
    public var answersDiffering = 0
    /// For each memory region the trace placed without `phys=`, the
    /// layout the model assumed: "0x7f0000000000 + 1 GiB: 4K pages
    /// scattered (the default; ...)".
    public var assumedLayouts: [String] = []
    /// The kernel time of the MAP_DMA and UNMAP_DMA calls under the trace's
    /// limits (`plan --time`): refused calls are charged an ioctl each and
    /// listed apart, as hazards.
    public var kernelTime: KernelTime? = nil
    /// The counts the time was made of.
    public var mapWork = KernelWork(), unmapWork = KernelWork()
    /// With `plan --threads N`: the time when each container has a thread
    /// of its own, N at a time.
    public var parallelTime: ParallelTime? = nil

    public init(file: String, kernel: String) { self.file = file; self.kernel = kernel }

    /// Whether the trace's `RLIMIT_MEMLOCK` allows what the scenario needs
    /// (CAP_IPC_LOCK is exempt from it).
    public var memlockEnough: Bool { capIPCLock || memlock.map { needs.peakLocked <= $0 } ?? true }
    /// Whether `dma_entry_limit` allows it (iommufd has none).
    public var entriesEnough: Bool { container == .iommufd || needs.peakMappings <= UInt64(dmaEntryLimit) }
    /// `ulimit -l` takes KiB.
    public var ulimitKiB: UInt64 { needs.peakLocked / 1024 + (needs.peakLocked % 1024 == 0 ? 0 : 1) }

    /// Locked memory, mappings and PTEs over one replay.
    public struct Usage: Sendable, Equatable {
        /// The most memory locked at once, and the line after which it was.
        public var peakLocked: UInt64 = 0
        public var peakLockedLine = 0
        public var peakMappings: UInt64 = 0
        public var peakMappingsLine = 0
        /// Per domain (group name), the entries when it had the most, and at the end.
        public var ptes: [DomainPTEs] = []
        /// Every domain together, when they had the most entries.
        public var peakTotalPTEs = PTECounts()
        public var endLocked: UInt64 = 0
        public var endMappings: UInt64 = 0
        public init() {}
    }

    public struct DomainPTEs: Sendable, Equatable {
        public var domain: String
        public var peak: PTECounts
        public var peakLine: Int
        public var end: PTECounts
        public var peakTotal: UInt64 { peak.entries.reduce(0) { $0 &+ $1.count } }
    }

    /// Where a limit first refused an operation.
    public struct LimitFailure: Sendable, Equatable {
        public var errno: Errno
        public var line: Int
        /// 1-based, of `iterations`, for a `repeat=` line; nil otherwise.
        public var iteration: UInt64?
        public var iterations: UInt64
        /// The operation as run (that iteration's iova and vaddr).
        public var statement: String
        /// Operations refused with this errno in all.
        public var count: Int
    }

    /// One class of thing a user may not expect, at one line.
    public struct Hazard: Sendable {
        public enum Kind: String, Sendable, CaseIterable {
            /// A v1 unmap that removed nothing, less or more than asked.
            case unmapSize = "unmap size"
            /// A v2 unmap refused because it would cut a mapping in two.
            case partialUnmap = "partial unmap refused"
            /// EEXIST, which some clients ignore (the old mapping stays).
            case exists = "EEXIST"
            /// Out of mapping slots.
            case noSpace = "ENOSPC"
            /// Out of locked memory.
            case noMemory = "ENOMEM"
            /// Any other errno.
            case otherErrno = "errno"
            /// A mapping ending at 2^64-1 before 6.18: searches cannot see it.
            case topOfSpace = "top of space"
            /// UNMAP_ALL answered but left mappings in the container.
            case unmapAllLeft = "unmap-all left mappings"
            /// Pages still charged with no mapping holding them (after an
            /// unmap-all or the last group's detach).
            case lockedAfterTeardown = "locked after teardown"
            /// Mappings still pinned when the trace ends.
            case pinnedAtEnd = "pinned at end"
            /// An ioctl the kernel would never return from (before 6.18,
            /// `vfio_unmap_unpin` at the top of the address space): the
            /// scenario ends there, every later call hangs too.
            case hang = "hang"
        }
        public var kind: Kind
        /// 0 for the end of the trace.
        public var line: Int
        /// The first time, 1-based, for a `repeat=` line.
        public var iteration: UInt64?
        public var iterations: UInt64 = 1
        /// How many operations met it, on any line.
        public var count = 1
        /// The line of the last one (the first's `line` when all were there).
        public var lastLine: Int = 0
        /// The first one: the operation, its answer, why.
        public var text: String
    }
}

/// Plans scenarios: each trace replayed on the model with its limits
/// lifted, then under them, watched after every operation.
public enum Planner {
    /// The most `dma_entry_limit` can be (a module parameter of type uint).
    public static let largestEntryLimit = UInt32.max

    /// With `costs`, also the kernel time of the replay under the trace's
    /// limits by that profile, for the release the model answered as; with
    /// `threads` too, that time with the containers on that many threads.
    public static func plan(_ trace: Trace, profile: KernelProfile = .newest, costs: CostProfile? = nil,
                            threads: Int? = nil) -> ScenarioPlan {
        var plan = ScenarioPlan(file: trace.file, kernel: profile.description)
        for st in trace.statements {
            if case .memory(let spec) = st.kind, let text = assumedLayout(spec) {
                plan.assumedLayouts.append("\(formatAddress(spec.vaddr)) + \(readableSize(spec.size)): \(text)")
            }
            if case .memlock(let m) = st.kind { plan.memlock = m }
            if case .capIPCLock(let on) = st.kind { plan.capIPCLock = on }
            if case .dmaEntryLimit(let n) = st.kind { plan.dmaEntryLimit = n }
        }
        let work = costs.map { _ in KernelWorkWatch(trace) }
        let limited = PlanWatch.run(trace, profile: profile, hazards: true, work: work)
        if let costs, let work {
            plan.mapWork = work.map
            plan.unmapWork = work.unmap
            plan.kernelTime = costs.estimate(map: work.map, unmap: work.unmap, release: limited.release)
            if let threads {
                plan.parallelTime = ParallelTime(threads: threads, times: work.byContainer.map { c in
                    let t = costs.estimate(map: c.map, unmap: c.unmap, release: limited.release)
                    return (t.map, t.unmap)
                })
            }
        }
        plan.kernel = limited.kernel
        plan.container = limited.container
        plan.operations = limited.operations
        plan.answersDiffering = limited.answersDiffering
        plan.reached = limited.usage
        plan.hazards = limited.hazards
        plan.memlockFailure = limited.failures[.ENOMEM]
        plan.entryFailure = limited.failures[.ENOSPC]
        // Only ENOMEM and ENOSPC come from the limits: without them the
        // lifted replay would answer the same.
        if plan.memlockFailure == nil && plan.entryFailure == nil {
            plan.needs = limited.usage
        } else {
            let lifted = WhatIf(memlock: .some(nil), dmaEntryLimit: largestEntryLimit).apply(to: trace)
            plan.needs = PlanWatch.run(lifted, profile: profile, hazards: false).usage
        }
        return plan
    }

    /// The layout the model assumes for a region without `phys=`; nil for
    /// one with it.
    static func assumedLayout(_ spec: MemorySpec) -> String? {
        switch spec.placement {
        case .realistic where spec.pfnmap:
            return "device memory (pfnmap), one contiguous run (the default for pfnmap)"
        case .realistic where spec.pageSize == PageSizes.pageSize:
            return "4K pages scattered (the default; phys=contiguous for one run, thp for transparent hugepages)"
        case .realistic:
            return "\(formatSize(spec.pageSize)) hugepages, each contiguous and apart from the others (the default; phys=contiguous for one run)"
        case .thp:
            return "4K pages on transparent hugepages (thp): each 2 MiB-aligned 2 MiB block contiguous, the pages around them scattered"
        case .contiguous, .layout:
            return nil
        }
    }
}

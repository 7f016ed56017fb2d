import VFIOCore

/// What the tracer saw, in the order it happened, with nothing decoded
/// yet: the recorder's only input to `TraceBuilder`. Tests build these by
/// hand, so decoding and trace writing are checked without a kernel.
public enum RecordEvent: Sendable, Hashable {
    /// A file that is a VFIO container (`/dev/vfio/vfio`, or `/dev/iommu`
    /// in VFIO compatibility mode) was opened; `container` names it for the
    /// rest of the recording (every dup of the fd is the same container).
    case containerOpened(container: Int, path: String)
    /// An ioctl on a container fd.
    case containerIoctl(container: Int, IoctlCall)
    /// An ioctl on a group fd (`/dev/vfio/N`). For `VFIO_GROUP_SET_CONTAINER`,
    /// `target` is the container the fd in the argument names (nil when it
    /// is not one the recorder knows).
    case groupIoctl(group: Int, number: UInt32, IoctlCall, target: Int?)
    /// The last fd of a group was closed: the kernel releases the group
    /// and detaches it from its container (`vfio_group_fops_release`).
    case groupReleased(group: Int)
    /// Something the trace cannot say but the reader should know.
    case note(String)
}

/// One ioctl as the tracer saw it: the request, the argument, the bytes
/// the argument points to before and after the call, the kernel's answer,
/// and what the process looked like around it.
public struct IoctlCall: Sendable, Hashable {
    public var request: UInt
    /// The third argument (a value or a pointer).
    public var argument: UInt64
    /// The argument's bytes at entry (empty for a value argument).
    public var before: [UInt8]
    /// The same bytes after the call: what the kernel wrote back.
    public var after: [UInt8]
    /// The return value (>= 0), or the errno.
    public var result: Result<Int64, Errno>
    /// The dirty bitmap the kernel wrote (UNMAP_DMA with GET_DIRTY_BITMAP,
    /// DIRTY_PAGES GET_BITMAP), read after the call.
    public var bitmap: [UInt8]
    /// `VmLck` of the calling process at entry and after the call, for
    /// MAP_DMA and UNMAP_DMA (nil when not read).
    public var lockedBefore: UInt64?
    public var lockedAfter: UInt64?
    /// The process memory a MAP_DMA touched, as it was after the call.
    public var memory: [ObservedRegion]
    /// The process's limits when the call was made (MAP_DMA, SET_IOMMU).
    public var environment: ProcessEnvironment?

    public init(request: UInt, argument: UInt64 = 0, before: [UInt8] = [], after: [UInt8] = [],
                result: Result<Int64, Errno>, bitmap: [UInt8] = [], lockedBefore: UInt64? = nil,
                lockedAfter: UInt64? = nil, memory: [ObservedRegion] = [], environment: ProcessEnvironment? = nil) {
        self.request = request; self.argument = argument; self.before = before; self.after = after
        self.result = result; self.bitmap = bitmap; self.lockedBefore = lockedBefore; self.lockedAfter = lockedAfter
        self.memory = memory; self.environment = environment
    }
}

/// A piece of process memory (a VMA, or the part of one a map touched),
/// read from `/proc/PID/smaps` and `/proc/PID/pagemap`.
public struct ObservedRegion: Sendable, Hashable {
    public var vaddr: UInt64
    public var size: UInt64
    /// `KernelPageSize` of the VMA.
    public var pageSize: UInt64
    /// `VM_PFNMAP` (`pf` in `VmFlags`): device memory such as a BAR.
    public var pfnmap: Bool
    /// Physically contiguous runs (offsets from `vaddr`), nil when the
    /// frames could not be read (no `CAP_SYS_ADMIN`, or not present).
    public var runs: [PhysicalRun]?
    /// Where the VMA comes from (`[heap]`, a file, `/dev/hugepages/…`).
    public var name: String
    /// The physical address of the shared zero page (`KPF_ZERO_PAGE` in
    /// `/proc/kpageflags`) when some run of `runs` is it: a read-only pin
    /// of never-written anonymous memory can pin the zero page, a reserved
    /// pfn the kernel pins without charging it.
    public var zeroPage: UInt64?

    public init(vaddr: UInt64, size: UInt64, pageSize: UInt64, pfnmap: Bool = false, runs: [PhysicalRun]? = nil, name: String = "",
                zeroPage: UInt64? = nil) {
        self.vaddr = vaddr; self.size = size; self.pageSize = pageSize; self.pfnmap = pfnmap; self.runs = runs; self.name = name
        self.zeroPage = zeroPage
    }
}

/// The limits a trace's setup statements give: read from
/// `/proc/PID/limits`, `/proc/PID/status` and the module parameter.
public struct ProcessEnvironment: Sendable, Hashable {
    /// `RLIMIT_MEMLOCK` (soft) in bytes; nil = unlimited.
    public var memlock: UInt64?
    /// `CAP_IPC_LOCK` in `CapEff`.
    public var capIPCLock: Bool
    /// `/sys/module/vfio_iommu_type1/parameters/dma_entry_limit`, nil when unreadable.
    public var dmaEntryLimit: UInt32?
    /// `uname -r` of the machine.
    public var kernelRelease: String?

    public init(memlock: UInt64?, capIPCLock: Bool, dmaEntryLimit: UInt32?, kernelRelease: String?) {
        self.memlock = memlock; self.capIPCLock = capIPCLock; self.dmaEntryLimit = dmaEntryLimit; self.kernelRelease = kernelRelease
    }
}

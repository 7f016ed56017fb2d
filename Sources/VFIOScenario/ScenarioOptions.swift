import VFIOCore

/// The programs `vfio-sim new` writes a mapping plan for.
public enum ScenarioProgram: String, CaseIterable, Sendable {
    case dpdk, qemu, spdk
    case cloudHypervisor = "cloud-hypervisor"
    /// LKL or a userspace driver: one DMA pool mapped once.
    case pool

    public static var list: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// What backs the memory a program maps.
public enum Backing: String, CaseIterable, Sendable {
    /// Anonymous memory on 4 KiB pages (THP off or not taken).
    case pages4K = "4K"
    /// Anonymous memory on transparent hugepages (QEMU madvises its RAM).
    case thp
    /// hugetlbfs, 2 MiB pages.
    case hugetlb2M = "2M"
    /// hugetlbfs, 1 GiB pages.
    case hugetlb1G = "1G"

    /// The page size of the `memory` statement.
    public var pageSize: UInt64 {
        switch self {
        case .pages4K, .thp: 4 * kib
        case .hugetlb2M: 2 * mib
        case .hugetlb1G: gib
        }
    }

    /// The granule sizes and addresses are rounded to: a THP region is
    /// laid out in 2 MiB blocks.
    var granule: UInt64 { self == .thp ? 2 * mib : pageSize }
}

/// How a DPDK process hands IOVAs to its devices (`--iova-mode`).
public enum IOVAMode: String, CaseIterable, Sendable {
    /// IOVA = the virtual address: contiguous memseg runs map at once.
    case va
    /// IOVA = the physical address: every hugepage maps on its own.
    case pa
}

/// A q35 or i440fx (`pc`) machine: where guest RAM stops below 4 GiB.
public enum QEMUMachine: String, CaseIterable, Sendable { case q35, pc }

/// `RLIMIT_MEMLOCK` as a plan states it.
public enum MemlockLimit: Sendable, Equatable {
    case unlimited
    case bytes(UInt64)
}

/// The setup a user describes; each program fills what is left nil with
/// what that program (or the tool that usually starts it) does.
public struct ScenarioOptions: Sendable {
    /// Memory the program maps: DPDK `-m`, the guest's RAM, SPDK's
    /// hugepage memory, the pool's size.
    public var memory: UInt64 = gib
    public var backing: Backing? = nil
    /// Physically `scattered` or `contiguous` pages (nil: as Linux lays
    /// them out, the model's default for the backing).
    public var contiguous: Bool? = nil
    public var iovaMode: IOVAMode = .va
    public var machine: QEMUMachine = .q35
    /// Devices (groups) the program opens.
    public var devices = 1
    /// Containers the devices are spread over (QEMU, cloud-hypervisor:
    /// each container maps all of guest RAM and pins it again).
    public var containers = 1
    /// A BAR of this size per device, mapped for peer-to-peer DMA (QEMU,
    /// cloud-hypervisor); 0 for none.
    public var barSize: UInt64 = 0
    /// SPDK: one registration per buffer rather than per 2 MiB page.
    public var coalesced = false
    /// Whether the memory is there before the first MAP_DMA (QEMU
    /// `prealloc=on`, `MAP_POPULATE`); nil: what the program does by
    /// default. Not preallocated, the first pin faults in and zeroes every
    /// page: no answer changes, the kernel time does (`plan --time`).
    public var prealloc: Bool? = nil
    /// The IOMMU preset every group sits behind (`domain NAME iommu=`).
    public var iommu: IOMMUPreset = .intel
    /// `kernel RELEASE`; nil writes none (the newest modelled).
    public var kernel: String? = nil
    public var memlock: MemlockLimit? = nil
    public var capIPCLock: Bool? = nil
    public var dmaEntryLimit: UInt32? = nil
    public var seed: UInt64 = 1
    /// The command line that wrote the plan, for its first comment.
    public var commandLine: String? = nil

    public init() {}
}

/// A setup no program can have, said in the option's terms.
public struct ScenarioError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One generated plan: the trace text (operations without answers, checks
/// to be filled) and where its phases end.
public struct Scenario: Sendable {
    public var program: ScenarioProgram
    /// What the program does, in one line.
    public var summary: String
    public var text: String
    /// Operations before the teardown starts.
    public var mapPhaseOperations: Int
    /// Operation counts after which the state is checked.
    public var checkpoints: [Int]
}

extension ScenarioOptions {
    /// The memory rounded up to `granule`, or an error naming `--memory`.
    func memorySize(granule: UInt64) throws(ScenarioError) -> UInt64 {
        guard memory > 0 else { throw ScenarioError("--memory must not be 0") }
        guard let m = roundUp(memory, granule), m <= (1 << 46) else {
            throw ScenarioError("--memory \(formatSize(memory)) is more than 64 TiB")
        }
        return m
    }

    /// `--phys` on THP memory: its layout is THP's own (2 MiB blocks, each
    /// one hugepage), not one a user picks.
    func checkLayout(_ backing: Backing) throws(ScenarioError) {
        if backing == .thp && contiguous != nil {
            throw ScenarioError("--phys is for 4K and hugetlbfs backing; THP memory is laid out in 2M hugepages of its own (say --backing 4K, 2M or 1G)")
        }
    }

    func checkCounts() throws(ScenarioError) {
        guard (1...64).contains(devices) else { throw ScenarioError("--devices takes 1 to 64, not \(devices)") }
        guard (1...16).contains(containers), containers <= devices else {
            throw ScenarioError("--containers takes 1 to 16 and at most one per device (\(devices) device\(devices == 1 ? "" : "s")), not \(containers)")
        }
        if barSize != 0 && (barSize & (barSize - 1) != 0 || barSize < 4 * kib) {
            throw ScenarioError("--bar takes a power of two of 4K or more, not \(formatSize(barSize))")
        }
    }
}

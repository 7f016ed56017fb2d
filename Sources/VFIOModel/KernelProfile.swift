import VFIOCore

/// The behaviours of `vfio_iommu_type1` that changed across kernel
/// versions: one profile per kernel of the matrix the model is checked
/// against (`KernelProfile.known`), each difference a flag whose doc names
/// the version and the change (TYPE1_SPEC.md §10, KERNEL_LANE.md).
///
/// A version between two profiles gets the older one (`resolve(_:)` says
/// whether that was a fallback); a version below the oldest is unknown.
public struct KernelProfile: Hashable, Sendable, CustomStringConvertible {
    /// The profile's own version: one of `known`.
    public let version: KernelVersion

    /// The kernels of the matrix, oldest first (`KernelVersion.matrix`, the
    /// one place the list lives, so the parser can name them too).
    public static let known: [KernelVersion] = KernelVersion.matrix

    /// The newest profile of the matrix, the default.
    public static let newest = KernelProfile(exactly: known[known.count - 1])
    /// The oldest profile of the matrix.
    public static let oldest = KernelProfile(exactly: known[0])

    private init(exactly version: KernelVersion) { self.version = version }

    /// The profile for `version`: the newest known one not newer than it,
    /// and whether it is that version exactly. Nil below the oldest known
    /// version (the model does not know such a kernel).
    public static func resolve(_ version: KernelVersion) -> (profile: KernelProfile, exact: Bool)? {
        guard let v = version.knownProfile else { return nil }
        return (KernelProfile(exactly: v), v == version)
    }

    /// The profile `resolve` gives, or the oldest one for a version below it
    /// (callers that must have an answer, such as the running kernel's).
    public init(_ version: KernelVersion) {
        self = Self.resolve(version)?.profile ?? .oldest
    }

    public var description: String { version.description }

    func atLeast(_ major: Int, _ minor: Int) -> Bool { version >= KernelVersion(major, minor) }

    // MARK: The flags

    /// `VFIO_UNMAP_ALL` and `VFIO_UPDATE_VADDR` exist: the UNMAP flags ALL
    /// and VADDR, the MAP flag VADDR and their extensions (v5.12, "vfio/type1:
    /// implement unmap all" and "implement interfaces to update vaddr").
    /// 5.10 accepts only READ|WRITE on MAP and GET_DIRTY_BITMAP on UNMAP
    /// (`vfio_iommu_type1_map_dma`, `vfio_iommu_type1_unmap_dma`) and answers
    /// 0 for both extensions (`vfio_iommu_type1_check_extension`).
    public var hasUnmapAllAndVaddr: Bool { atLeast(5, 12) }

    /// The unmap loop starts at `vfio_find_dma_first_node` and walks on with
    /// `rb_next` (v5.12, "vfio/type1: massage unmap iteration"); 5.10 asks
    /// `vfio_find_dma` from the root again after each removal
    /// (`vfio_dma_do_unmap`).
    public var unmapWalksFromFirstNode: Bool { atLeast(5, 12) }

    /// `vfio_info_cap_add` pads each capability to 8 bytes ("vfio: align
    /// capability structures", between 6.1 and 6.12). Debian's 6.1 did not
    /// (DMA_AVAIL next=68), 6.12 does (next=72): seen in the lane. 5.10 has
    /// the same three capabilities as 6.1, unpadded
    /// (`vfio_iommu_type1_get_info` v5.10: migration, DMA_AVAIL, IOVA range).
    public var padsCapabilities: Bool { atLeast(6, 12) }

    /// Bytes of the fixed `vfio_iommu_type1_info` part that GET_INFO copies
    /// back: before the padding commit, 16 (argsz < 20) or 20 (up to
    /// `cap_offset`, never the pad); after it, `min(argsz, 24)`.
    public func infoWriteBack(argsz: UInt32) -> Int {
        padsCapabilities ? Int(min(argsz, 24)) : (argsz < 20 ? 16 : 20)
    }

    /// The overflow series (v6.18, merged for 6.18-rc4: "vfio/type1:
    /// sanitize for overflow using check_*_overflow()" and "handle DMA
    /// map/unmap up to the addressable limit"): a wrapping range is
    /// EOVERFLOW, every search compares inclusive ends, so a mapping ending
    /// at 2^64-1 can be found, unmapped and replayed. Before it (5.10, 6.1,
    /// 6.12: seen in the lane) a wrap is EINVAL and `iova + size` wraps to 0
    /// at the top of the address space.
    public var overflowSeries: Bool { atLeast(6, 18) }

    /// A wrapping `iova + size - 1` or `vaddr + size - 1` gives EOVERFLOW
    /// since the overflow series (6.18); EINVAL before.
    public var overflowErrno: Errno { overflowSeries ? .EOVERFLOW : .EINVAL }

    /// Range searches use inclusive ends (the overflow series, 6.18).
    public var inclusiveEndSearch: Bool { overflowSeries }

    /// CHECK_EXTENSION(TYPE1_NESTING) answers 1 until the nesting type was
    /// retired (v6.13, "vfio: Remove VFIO_TYPE1_NESTING_IOMMU"); 5.10, 6.1
    /// and 6.12 answer 1 (the last two seen in the lane).
    public var nestingExtension: Bool { !atLeast(6, 13) }

    // MARK: iommufd's type1 compatibility (vfio_compat.c)

    /// iommufd and its VFIO compatibility exist (v6.2, "iommufd: Add a
    /// VFIO compatibility layer"): 5.10 and 6.1 have no `/dev/iommu`.
    public var hasIOMMUFD: Bool { atLeast(6, 2) }

    /// An UNMAP_DMA over a range that holds no area answers 0 with size 0,
    /// as type1 does, instead of ENOENT (upstream afb47765f923, "iommufd:
    /// Make vfio_compat's unmap succeed if the range is already empty",
    /// November 2025, sent to stable). Debian's 6.12.118, the lane's 6.12,
    /// has the backport (IOMMUFD_FACTS.md), so every profile with iommufd
    /// has it; kernels 6.2 to 6.11, and a 6.12.y before the backport,
    /// answered ENOENT, but the matrix has no profile for them (they answer
    /// as 6.1, which has no iommufd).
    public var iommufdUnmapsEmptyRange: Bool { atLeast(6, 12) }
}

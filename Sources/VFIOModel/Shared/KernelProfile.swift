import VFIOCore

/// The behaviours of `vfio_iommu_type1` (and iommufd's compat layer) that
/// changed across kernel releases, for one release: each flag is a
/// `ReleaseRule` (the release it came in, its stable backports, the
/// commit) evaluated once for `version`.
///
/// Any release from 5.10 on has a profile; one newer than the newest known
/// release answers as that one. Only the series in `KernelVersion.booted`
/// are checked against real kernels in the lane; reports say so for the
/// others (`KernelVersion.provenanceNote`).
public struct KernelProfile: Hashable, Sendable, CustomStringConvertible {
    /// The release answered for (a release past `KernelVersion.newestKnown`
    /// is kept as given; its rules are the newest's).
    public let version: KernelVersion

    /// The series the lane boots, oldest first.
    public static let known: [KernelVersion] = KernelVersion.booted

    /// The newest known release, the default.
    public static let newest = KernelProfile(KernelVersion.newestKnown)
    /// The oldest release the model answers for.
    public static let oldest = KernelProfile(KernelVersion.oldestKnown)

    /// The profile for `version`, or nil below 5.10 (the model does not
    /// know such a kernel).
    public static func resolve(_ version: KernelVersion) -> KernelProfile? {
        version.isKnown ? KernelProfile(version) : nil
    }

    /// The profile of `version`; a release below 5.10 gets 5.10's rules
    /// (callers that must have an answer, such as the running kernel's).
    public init(_ version: KernelVersion) {
        self.version = version
        let r = version.isKnown ? version : KernelVersion.oldestKnown
        hasUnmapAllAndVaddr = ReleaseRule.unmapAllAndVaddr.holds(in: r)
        unmapWalksFromFirstNode = ReleaseRule.unmapWalkFromFirstNode.holds(in: r)
        padsCapabilities = ReleaseRule.capabilityPadding.holds(in: r)
        overflowSeries = ReleaseRule.overflowSeries.holds(in: r)
        nestingExtension = !ReleaseRule.nestingRetired.holds(in: r)
        hasIOMMUFD = ReleaseRule.iommufdCompat.holds(in: r)
        updateVaddrExcludesMdevs = ReleaseRule.updateVaddrExcludesMdevs.holds(in: r)
        iommufdUnmapsEmptyRange = ReleaseRule.iommufdEmptyUnmap.holds(in: r)
        iommufdChecksOverflowFirst = ReleaseRule.iommufdOverflowBeforeLength.holds(in: r)
    }

    public var description: String { version.description }

    // MARK: The flags

    /// `VFIO_UNMAP_ALL` and `VFIO_UPDATE_VADDR` exist: the UNMAP flags ALL
    /// and VADDR, the MAP flag VADDR and their extensions (v5.12, "vfio/type1:
    /// implement unmap all" and "implement interfaces to update vaddr").
    /// 5.10 accepts only READ|WRITE on MAP and GET_DIRTY_BITMAP on UNMAP
    /// (`vfio_iommu_type1_map_dma`, `vfio_iommu_type1_unmap_dma`) and answers
    /// 0 for both extensions (`vfio_iommu_type1_check_extension`).
    public let hasUnmapAllAndVaddr: Bool

    /// The unmap loop starts at `vfio_find_dma_first_node` and walks on with
    /// `rb_next` (v5.12, "vfio/type1: massage unmap iteration"); 5.10 asks
    /// `vfio_find_dma` from the root again after each removal
    /// (`vfio_dma_do_unmap`).
    public let unmapWalksFromFirstNode: Bool

    /// CHECK_EXTENSION(UPDATE_VADDR) answers 0 before `VFIO_SET_IOMMU` and
    /// while an emulated group is attached, and UNMAP with VADDR is EBUSY
    /// while one is (`ReleaseRule.updateVaddrExcludesMdevs`, 6.3 and
    /// 6.1.16); before, the extension answered 1 and the unmap went on.
    public let updateVaddrExcludesMdevs: Bool

    /// `vfio_info_cap_add` pads each capability to 8 bytes
    /// (`ReleaseRule.capabilityPadding`). Debian's 6.1 did not
    /// (DMA_AVAIL next=68), 6.12 does (next=72): seen in the lane. 5.10 has
    /// the same three capabilities as 6.1, unpadded
    /// (`vfio_iommu_type1_get_info` v5.10: migration, DMA_AVAIL, IOVA range).
    public let padsCapabilities: Bool

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
    public let overflowSeries: Bool

    /// A wrapping `iova + size - 1` or `vaddr + size - 1` gives EOVERFLOW
    /// since the overflow series (6.18); EINVAL before.
    public var overflowErrno: Errno { overflowSeries ? .EOVERFLOW : .EINVAL }

    /// Range searches use inclusive ends (the overflow series, 6.18).
    public var inclusiveEndSearch: Bool { overflowSeries }

    /// CHECK_EXTENSION(TYPE1_NESTING) answers 1 until the nesting type was
    /// retired (v6.13, "vfio: Remove VFIO_TYPE1_NESTING_IOMMU"); 5.10, 6.1
    /// and 6.12 answer 1 (the last two seen in the lane).
    public let nestingExtension: Bool

    // MARK: iommufd's type1 compatibility (vfio_compat.c)

    /// iommufd and its VFIO compatibility exist (v6.2, "iommufd: Add a
    /// VFIO compatibility layer"): 5.10 and 6.1 have no `/dev/iommu`.
    public let hasIOMMUFD: Bool

    /// An UNMAP_DMA over a range that holds no area answers 0 with size 0,
    /// as type1 does, instead of ENOENT (upstream afb47765f923, "iommufd:
    /// Make vfio_compat's unmap succeed if the range is already empty",
    /// November 2025, sent to stable). Debian's 6.12.118, the lane's 6.12,
    /// has the backport (docs/IOMMUFD_FACTS.md); a 6.12.y before 6.12.59,
    /// and 6.2 to 6.5 and 6.7 to 6.11, answer ENOENT
    /// (`ReleaseRule.iommufdEmptyUnmap`).
    public let iommufdUnmapsEmptyRange: Bool

    /// A compat MAP checks that `vaddr + length` does not wrap (EOVERFLOW)
    /// before it checks the length (EINVAL for 0 or past `SIZE_MAX -
    /// PAGE_SIZE`): `iopt_alloc_user_pages` before `iopt_alloc_pages`
    /// (v6.13, 99ff06dcca20 "iommufd: Generalize iopt_pages address");
    /// 6.2 to 6.12 check the length first (`iopt_alloc_pages`), so a
    /// length of 2^64-4K from a high vaddr answers EINVAL there and
    /// EOVERFLOW from 6.13 (`ReleaseRule.iommufdOverflowBeforeLength`).
    public let iommufdChecksOverflowFirst: Bool
}

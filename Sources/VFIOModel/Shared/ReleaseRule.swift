import VFIOCore

/// One behaviour of the kernel that changed at a known release: the
/// mainline release it came in, the stable releases it was backported to
/// (where that changes answers), and the upstream commit, so any release
/// from 5.10 on can be answered, with or without a patch level.
///
/// Each rule is checked on the releases the lane boots; on every other
/// release it is what the kernel's history says (`docs/RELEASES.md`).
public struct ReleaseRule: Sendable, Hashable, CustomStringConvertible {
    /// A short name for tables and tests.
    public let name: String
    /// What holds from `mainline` on.
    public let summary: String
    /// The first mainline release with the behaviour (`major.minor`).
    public let mainline: KernelVersion
    /// Stable series that got it later, each with the first patch level
    /// that has it (`6.12.59`).
    public let backports: [KernelVersion]
    /// The upstream commit(s), id and subject.
    public let commits: String

    /// Whether `release` has the behaviour: its series is at or after
    /// `mainline`, or it is a stable release of a backported series at or
    /// after the backport. A release without a patch level is the newest
    /// of its series, so it has every backport of it; a distribution's
    /// build (`5.15.0-91-generic`) has none that the model can know.
    public func holds(in release: KernelVersion) -> Bool {
        if release.series >= mainline { return true }
        guard let b = backports.first(where: { $0.series == release.series }), let first = b.patch else { return false }
        return (release.patch ?? .max) >= first
    }

    public var description: String { "\(name) (\(mainline)): \(summary)" }
}

extension ReleaseRule {
    /// `VFIO_UNMAP_ALL` and `VFIO_UPDATE_VADDR`: the UNMAP flags ALL and
    /// VADDR, the MAP flag VADDR, and their CHECK_EXTENSION answers.
    public static let unmapAllAndVaddr = ReleaseRule(
        name: "unmap-all/update-vaddr",
        summary: "VFIO_UNMAP_ALL and VFIO_UPDATE_VADDR exist (before: EINVAL, extensions 0)",
        mainline: KernelVersion(5, 12), backports: [],
        commits: "c19650995374 \"vfio/type1: implement unmap all\", c3cbab24db38 \"vfio/type1: implement interfaces to update vaddr\" (uapi c98fe7c2a203, 441e8106a238; Steve Sistare, v5.12-rc1)")

    /// UPDATE_VADDR excludes emulated (mdev) groups: the extension answers
    /// 0 before `VFIO_SET_IOMMU` and while an mdev group is attached, and
    /// an UNMAP with VADDR is EBUSY while one is; before it the extension
    /// answered 1 whenever the feature existed.
    public static let updateVaddrExcludesMdevs = ReleaseRule(
        name: "update-vaddr excludes mdevs",
        summary: "extension update-vaddr is 0 before SET_IOMMU and with an emulated group; UNMAP with VADDR is EBUSY with an emulated group (before: 1, and allowed)",
        mainline: KernelVersion(6, 3), backports: [KernelVersion(6, 1, 16)],
        commits: "ef3a3f6a294b \"vfio/type1: exclude mdevs from VFIO_UPDATE_VADDR\" (6.1.y: 299b71ebca03)")

    /// The unmap loop starts at the first node of the range and walks on
    /// with `rb_next`; before, it searched from the root after each removal.
    public static let unmapWalkFromFirstNode = ReleaseRule(
        name: "unmap walk",
        summary: "UNMAP_DMA walks from vfio_find_dma_first_node with rb_next (before: vfio_find_dma from the root each time)",
        mainline: KernelVersion(5, 12), backports: [],
        commits: "40ae9b807b89 \"vfio/type1: massage unmap iteration\"")

    /// iommufd and its VFIO type1 compatibility (`/dev/iommu` as a container).
    public static let iommufdCompat = ReleaseRule(
        name: "iommufd compat",
        summary: "iommufd answers the type1 ioctls through /dev/iommu (vfio_compat.c)",
        mainline: KernelVersion(6, 2), backports: [],
        commits: "d624d6652a65 \"iommufd: vfio container FD ioctl compatibility\" (Jason Gunthorpe, v6.2-rc1)")

    /// GET_INFO pads each capability to 8 bytes.
    public static let capabilityPadding = ReleaseRule(
        name: "capability padding",
        summary: "vfio_info_cap_add aligns each capability to 8 bytes (info argsz 88+16n instead of 84+16n)",
        mainline: KernelVersion(6, 6), backports: [],
        commits: "a881b496941f \"vfio: align capability structures\" (Stefan Hajnoczi, v6.6-rc1)")

    /// The nesting type retired: CHECK_EXTENSION(TYPE1_NESTING) answers 0.
    public static let nestingRetired = ReleaseRule(
        name: "nesting retired",
        summary: "VFIO_TYPE1_NESTING_IOMMU is gone: its extension answers 0 and SET_IOMMU with it ENODEV",
        mainline: KernelVersion(6, 13), backports: [],
        commits: "35890f85573c \"vfio: Remove VFIO_TYPE1_NESTING_IOMMU\" (Jason Gunthorpe, v6.13-rc1)")

    /// The overflow series: wrapping ranges are EOVERFLOW, every search
    /// compares inclusive ends, so the top of the address space works.
    public static let overflowSeries = ReleaseRule(
        name: "overflow series",
        summary: "wrapping iova/vaddr ranges answer EOVERFLOW (before: EINVAL); searches use inclusive ends, so a range ending at 2^64-1 is found and unmapped",
        mainline: KernelVersion(6, 18), backports: [],
        commits: "6012379ede6a \"vfio/type1: sanitize for overflow using check_*_overflow()\", 1196f1f897d4 \"vfio/type1: move iova increment to unmap_unpin_*() caller\", ef270ec44637 \"vfio/type1: handle DMA map/unmap up to the addressable limit\" (Alex Mastro, v6.18-rc4)")

    /// iommufd's compat UNMAP of a range holding nothing answers 0, size 0.
    public static let iommufdEmptyUnmap = ReleaseRule(
        name: "iommufd empty unmap",
        summary: "iommufd's compat UNMAP_DMA of a range with no area answers 0 with size 0 (before: ENOENT)",
        mainline: KernelVersion(6, 18),
        backports: [KernelVersion(6, 17, 9), KernelVersion(6, 12, 59), KernelVersion(6, 6, 117)],
        commits: "afb47765f923 \"iommufd: Make vfio_compat's unmap succeed if the range is already empty\" (6.12.y: df21a2be8a47)")

    /// iommufd's map checks that the user range does not wrap before it
    /// checks the length: `iopt_alloc_user_pages` (EOVERFLOW) now runs
    /// before `iopt_alloc_pages` (EINVAL for a length of 0 or past
    /// `SIZE_MAX - PAGE_SIZE`), where 6.12's `iopt_alloc_pages` did both in
    /// the other order. Seen in the 6.12.118 and 7.3.4 sources.
    public static let iommufdOverflowBeforeLength = ReleaseRule(
        name: "iommufd map: overflow before length",
        summary: "iommufd's MAP of a length past SIZE_MAX - PAGE_SIZE whose vaddr + length wraps answers EOVERFLOW (before: EINVAL)",
        mainline: KernelVersion(6, 13), backports: [],
        commits: "99ff06dcca20 \"iommufd: Generalize iopt_pages address\" (Steve Sistare, v6.13-rc1, the IOMMU_IOAS_MAP_FILE series)")

    /// Every rule, oldest first (the table of `docs/RELEASES.md`).
    public static let all: [ReleaseRule] = [
        unmapAllAndVaddr, unmapWalkFromFirstNode, iommufdCompat, updateVaddrExcludesMdevs, capabilityPadding, nestingRetired,
        iommufdOverflowBeforeLength, overflowSeries, iommufdEmptyUnmap,
    ]
}

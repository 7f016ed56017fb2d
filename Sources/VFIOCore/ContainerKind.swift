/// Which kernel code answers the type1 ioctls of a trace.
///
/// The same `VFIO_*` ioctls reach either `drivers/vfio/vfio_iommu_type1.c`
/// (a container opened from `/dev/vfio/vfio`) or iommufd's compatibility
/// layer (`drivers/iommu/iommufd/vfio_compat.c`, reached by opening
/// `/dev/iommu` and passing that fd to `VFIO_GROUP_SET_CONTAINER`). The two
/// answer many requests differently; a backend is told which one to be
/// before the first group joins (`Backend.setContainer`).
public enum ContainerKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// `/dev/vfio/vfio` with the type1 IOMMU driver.
    case type1
    /// `/dev/iommu`: iommufd's type1 compatibility (`iommufd_vfio_ioctl`).
    case iommufd

    public var description: String { rawValue }

    /// The device node a program opens for this kind.
    public var deviceNode: String {
        switch self {
        case .type1: "/dev/vfio/vfio"
        case .iommufd: "/dev/iommu"
        }
    }

    /// What `VmLck` (`check locked=`) counts under this kind: type1 charges
    /// `mm->locked_vm`; iommufd opened as `/dev/iommu` charges the user's
    /// `locked_vm` and the process's `pinned_vm` (`VmPin`), so `VmLck`
    /// stays where it was (`iopt_pages_update_pinned`, `incr_user_locked_vm`).
    public var lockedMemoryNote: String {
        switch self {
        case .type1: "type1 charges mm->locked_vm (VmLck) per process (vfio_lock_acct)"
        case .iommufd: "iommufd (/dev/iommu) charges user->locked_vm per user and mm->pinned_vm (VmPin), not VmLck (iopt_pages_update_pinned, incr_user_locked_vm)"
        }
    }
}

import VFIOCore

/// The process every container of a trace belongs to: one address space,
/// one `RLIMIT_MEMLOCK`, one `mm->locked_vm`, one `user->locked_vm`.
///
/// Containers are value types; the process is shared. Each container
/// holds a `ProcessState` of its own when it is used alone (a test, the
/// explorer). When a `ModelBackend` runs several containers, it keeps the
/// one process and lends it to the container a call goes to
/// (`ModelBackend.call`: a swap in and out), so a pin in one container counts against
/// the limit every other one checks, as `vfio_lock_acct` and iommufd's
/// `iopt_pages` accounting read the same `mm` and `user`.
public struct ProcessState: Sendable {
    public var memory = ProcessMemory()
    /// `RLIMIT_MEMLOCK` (soft) in bytes; nil = unlimited.
    public var memlock: UInt64? = nil
    public var capIPCLock = false
    /// `mm->locked_vm`, in pages: what the process locked itself
    /// (`mlockedPages`) and what every type1 container charged
    /// (`vfio_lock_acct`). iommufd opened as `/dev/iommu` never charges it.
    public internal(set) var lockedVm: UInt64 = 0
    /// Of `lockedVm`, pages the process locked itself (`mlock`, QEMU
    /// `mem-lock=on`): counted against the limit, charged by no container.
    public internal(set) var mlockedPages: UInt64 = 0
    /// `user->locked_vm`, in pages: what every iommufd context charged
    /// (`IOPT_PAGES_ACCOUNT_USER`). The model's user runs nothing else.
    public internal(set) var userLockedVm: UInt64 = 0
    /// `mm->pinned_vm`, in pages (`VmPin`): what iommufd pinned.
    public internal(set) var pinnedVm: UInt64 = 0

    public init() {}

    /// `RLIMIT_MEMLOCK >> PAGE_SHIFT`.
    var lockLimitPages: UInt64 { (memlock ?? .max) >> 12 }

    /// `VmLck` in bytes (2^64-1 when more than 2^52 pages are locked: a
    /// trace cannot write more).
    public var lockedBytes: UInt64 { Self.bytes(lockedVm) }
    /// `user->locked_vm` in bytes.
    public var userLockedBytes: UInt64 { Self.bytes(userLockedVm) }

    static func bytes(_ pages: UInt64) -> UInt64 {
        pages > UInt64.max >> 12 ? .max : pages << 12
    }

    /// `mlock`: the process now holds `pages` locked itself, in place of
    /// what it held before.
    public mutating func mlock(pages: UInt64) {
        lockedVm = lockedVm - mlockedPages + pages
        mlockedPages = pages
    }

    /// Charges `pages` to `mm->locked_vm` (`vfio_lock_acct`; the caller
    /// checked the limit).
    mutating func chargeLockedVm(_ pages: UInt64) { lockedVm += pages }
    mutating func unchargeLockedVm(_ pages: UInt64) { lockedVm -= pages }
    /// Charges `user->locked_vm` and `mm->pinned_vm` (`iopt_pages_update_pinned`).
    mutating func chargeUser(locked: UInt64, pinned: UInt64) {
        userLockedVm += locked
        pinnedVm += pinned
    }
    mutating func unchargeUser(locked: UInt64, pinned: UInt64) {
        userLockedVm -= locked
        pinnedVm -= pinned
    }
}

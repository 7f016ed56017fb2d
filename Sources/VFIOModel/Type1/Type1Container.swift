import VFIOCore

/// One `vfio_dma`: a mapping of `[iova, iova+size)` to process memory.
public struct DMAEntry: Hashable, Sendable {
    public var size: UInt64
    /// The vaddr the mapping answers to (changed by `VFIO_UPDATE_VADDR`).
    public var vaddr: UInt64
    /// The vaddr whose frames were pinned: unmap and replay use these frames
    /// even after the vaddr was updated, as the kernel reads them back from
    /// the IOMMU (`iommu_iova_to_phys`), not from the new vaddr.
    public var pinnedVaddr: UInt64
    /// Pages charged to `locked_vm` for this mapping.
    public var lockedPages: UInt64
    public var flags: Flags

    public struct Flags: OptionSet, Hashable, Sendable {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let read = Flags(rawValue: 1 << 0)
        public static let write = Flags(rawValue: 1 << 1)
        /// `vaddr_invalid`: unmapped with VADDR, waiting for a new vaddr.
        public static let vaddrInvalid = Flags(rawValue: 1 << 2)
        /// `iommu_mapped`: pinned and in the IOMMU (false while only
        /// emulated groups are attached).
        public static let iommuMapped = Flags(rawValue: 1 << 3)
        /// `lock_cap`: CAP_IPC_LOCK when it was mapped.
        public static let lockCap = Flags(rawValue: 1 << 4)
        /// A dirty bitmap is allocated (tracking was on).
        public static let hasBitmap = Flags(rawValue: 1 << 5)
    }
}

/// An IOMMU domain (`vfio_domain`) and the groups attached to it.
public struct Domain: Sendable {
    /// The spec of the group that created it: its page sizes, aperture and
    /// coherency are the domain's.
    public var spec: DomainSpec
    /// Names of the groups attached to it, first one first.
    public var groups: [String]
    public var pageTable = PageTable()
}

/// The process and one type1 container: the state `vfio_iommu_type1.c`
/// keeps (`struct vfio_iommu`), plus the process facts it reads
/// (`RLIMIT_MEMLOCK`, `CAP_IPC_LOCK`, `mm->locked_vm`).
public struct Type1Container: Sendable {
    // The process.
    public var profile: KernelProfile
    /// The process the container charges: its own when used alone, lent
    /// by `ModelBackend` for each call when the process has several.
    public var process = ProcessState()
    /// `mm->locked_vm`, in pages: the whole process's, so it includes
    /// what the process locked itself and its other containers charged.
    public var lockedVm: UInt64 { process.lockedVm }
    /// Of `lockedVm`, pages this container charged (`vfio_lock_acct`),
    /// leaked ones included.
    public internal(set) var ownLockedPages: UInt64 = 0
    /// Of `lockedVm`, pages no mapping holds any more: before 6.18 a
    /// mapping ending at 2^64-1 is never uncharged (`vfio_unmap_unpin`).
    public internal(set) var leakedPages: UInt64 = 0
    /// The `dma_entry_limit` module parameter, copied when a container opens.
    public var dmaEntryLimit: UInt32 = 65535

    // The container (container.c).
    /// Groups in the container, in the order they were added.
    public internal(set) var groups: [DomainSpec] = []
    /// Set by `VFIO_SET_IOMMU`: nil while no IOMMU driver is set.
    public internal(set) var v2: Bool? = nil

    // struct vfio_iommu.
    /// IOMMU domains, newest first (`list_add` at the head of `domain_list`).
    public internal(set) var domains: [Domain] = []
    /// Names of attached emulated (mdev) groups.
    public internal(set) var emulatedGroups: [String] = []
    public internal(set) var dmaList = DMATree<DMAEntry>()
    /// Slots of the mappings that end at 2^64-1 (before 6.18 the kernel's
    /// searches cannot see them; usually none).
    public internal(set) var topSlots: [Int32] = []
    /// Maps the kernel's wrapping searches let through over an existing
    /// mapping (before 6.18, at the top of the address space): from then on
    /// the IOMMU page table is the driver's business (see `vfioDmaDoMap`).
    public internal(set) var overlapsLetThrough = 0
    public internal(set) var dmaAvail: UInt32 = 0
    /// `dma_entry_limit` as it was when the container opened.
    public internal(set) var dmaEntryLimitAtOpen: UInt32 = 0
    public internal(set) var pgsizeBitmap: UInt64 = PageSizes.pageMask.rawValue
    /// Usable IOVA ranges, ascending; empty = no limit.
    public internal(set) var iovaList: [IOVARange] = []
    public internal(set) var vaddrInvalidCount = 0
    public internal(set) var dirtyPageTracking = false
    public internal(set) var numNonPinnedGroups = 0
    /// The caller's dirty bitmap after the last call that took one, as the
    /// IOVA ranges of its set bits (nil when the last such call failed).
    public internal(set) var lastDirtyBitmap: [IOVARange]? = nil

    /// Set when the kernel would never return from an operation (it loops
    /// in `vfio_unmap_unpin`, holding the container's lock): that operation
    /// and every later one answer `Errno.hang`. Says where and why.
    public internal(set) var hang: String? = nil

    public init(profile: KernelProfile = .newest) { self.profile = profile }

    static let pageShift: UInt64 = 12
    static let pageSize: UInt64 = 1 << pageShift

    /// The smallest IOMMU page the container allows (`1 << __ffs(pgsize_bitmap)`).
    var minPgsize: UInt64 {
        pgsizeBitmap == 0 ? Self.pageSize : pgsizeBitmap & (~pgsizeBitmap &+ 1)
    }

    /// `RLIMIT_MEMLOCK >> PAGE_SHIFT`.
    var lockLimitPages: UInt64 { process.lockLimitPages }

    public var isSet: Bool { v2 != nil }
    public var mappingCount: Int { dmaList.count }
    /// `VmLck` in bytes.
    /// (2^64-1 when more than 2^52 pages are locked: a trace cannot write more.)
    public var lockedBytes: UInt64 { process.lockedBytes }

    // MARK: Process accounting (vfio_lock_acct, __account_locked_vm)

    /// Gives back `pages` of `locked_vm` (`vfio_lock_acct` with a negative
    /// count). Charging happens chunk by chunk while pinning
    /// (`vfioPinPagesRemote`), where the limit is checked.
    mutating func unlockAcct(_ pages: UInt64) {
        let pages = min(pages, ownLockedPages)
        ownLockedPages -= pages
        process.unchargeLockedVm(pages)
    }

    /// Charges `pages` to `locked_vm` (`vfio_lock_acct`), once
    /// `vfioPinPagesRemote` checked them against the limit.
    mutating func lockAcct(_ pages: UInt64) {
        ownLockedPages += pages
        process.chargeLockedVm(pages)
    }

    // MARK: Container (container.c)

    /// `VFIO_GROUP_SET_CONTAINER`: adds the group; once an IOMMU driver is
    /// set this is `vfio_iommu_type1_attach_group`.
    public mutating func groupSetContainer(_ spec: DomainSpec) -> Result<Void, Errno> {
        if hang != nil { return .failure(.hang) }
        if groups.contains(where: { $0.name == spec.name }) { return .failure(.EINVAL) }
        if isSet {
            if let e = vfioIommuType1AttachGroup(spec) { return .failure(e) }
        }
        groups.append(spec)
        return .success(())
    }

    /// `VFIO_GROUP_UNSET_CONTAINER`: `vfio_iommu_type1_detach_group`, and
    /// the container is released with its last group.
    public mutating func groupUnsetContainer(_ name: String) -> Result<Void, Errno> {
        if hang != nil { return .failure(.hang) }
        guard let index = groups.firstIndex(where: { $0.name == name }) else { return .failure(.EINVAL) }
        if isSet { vfioIommuType1DetachGroup(name) }
        if hang != nil { return .failure(.hang) }
        groups.remove(at: index)
        if groups.isEmpty && isSet { vfioIommuType1Release() }
        if hang != nil { return .failure(.hang) }
        return .success(())
    }

    /// `VFIO_SET_IOMMU` (`vfio_ioctl_set_iommu`, `vfio_iommu_type1_open`):
    /// opens a type1 instance and attaches every group; on failure the
    /// groups attached so far are detached and the container stays unset.
    public mutating func setIOMMU(_ type: Extension) -> Result<Void, Errno> {
        if hang != nil { return .failure(.hang) }
        if groups.isEmpty || isSet { return .failure(.EINVAL) }
        guard vfioIommuType1CheckExtension(type) > 0, type == .type1 || type == .type1v2 || type == .nesting else {
            return .failure(.ENODEV)
        }
        v2 = type != .type1
        dmaAvail = dmaEntryLimit
        dmaEntryLimitAtOpen = dmaEntryLimit
        var attached: [String] = []
        for g in groups {
            if let e = vfioIommuType1AttachGroup(g) {
                for name in attached.reversed() { vfioIommuType1DetachGroup(name) }
                vfioIommuType1Release()
                return .failure(e)
            }
            attached.append(g.name)
        }
        return .success(())
    }

    /// `vfio_iommu_type1_release`: every mapping removed, every domain freed.
    mutating func vfioIommuType1Release() {
        vfioIommuUnmapUnpinAll()
        if hang != nil { return }
        domains = []
        emulatedGroups = []
        v2 = nil
        iovaList = []
        pgsizeBitmap = PageSizes.pageMask.rawValue
        vaddrInvalidCount = 0
        dirtyPageTracking = false
        numNonPinnedGroups = 0
        dmaAvail = 0
    }

    /// `VFIO_CHECK_EXTENSION` (`vfio_iommu_type1_check_extension`; with no
    /// IOMMU driver set, the answer of the type1 driver asked with a NULL
    /// container).
    public func vfioIommuType1CheckExtension(_ ext: Extension) -> UInt32 {
        switch ext {
        case .type1, .type1v2:
            return 1
        case .unmapAll:
            return profile.hasUnmapAllAndVaddr ? 1 : 0
        case .nesting:
            return profile.nestingExtension ? 1 : 0
        case .dmaCC:
            guard isSet else { return 0 }
            return domains.allSatisfy { $0.spec.coherent } ? 1 : 0
        case .updateVaddr:
            guard profile.hasUnmapAllAndVaddr else { return 0 }
            if !profile.updateVaddrExcludesMdevs { return 1 }
            return isSet && emulatedGroups.isEmpty ? 1 : 0
        default:
            return 0
        }
    }
}

import VFIOCore

/// One `iopt_area`: the IOVA range `[iova, iova+length)` of the compat
/// IOAS, backed by the process memory from `vaddr` (its `iopt_pages`).
public struct IOPTArea: Hashable, Sendable {
    public var iova: UInt64
    public var length: UInt64
    public var vaddr: UInt64
    /// `IOMMU_READ` / `IOMMU_WRITE` as asked (iommufd takes `prot=none`).
    public var prot: MapDMA.Flags
    /// Pages this area holds pinned and charged (0 while no hardware page
    /// table holds it, or with `CAP_IPC_LOCK`: `IOPT_PAGES_ACCOUNT_NONE`).
    public var chargedPages: UInt64
    /// Pages pinned (counted in `pinned_vm` whatever the accounting mode).
    public var pinnedPages: UInt64
    /// The IOMMU leaf entries of this area in each hardware page table, in
    /// `IOMMUFDContainer.hwpts` order.
    public var runs: [RunList]

    /// `iopt_area_last_iova` (the parser and the map checks keep it below 2^64).
    public var last: UInt64 { iova &+ (length &- 1) }
}

/// One `iommufd_hw_pagetable`: an IOMMU domain and the groups attached to it.
public struct HWPagetable: Sendable {
    /// The spec of the group that made it (its page sizes and aperture).
    public var spec: DomainSpec
    public var groups: [String]
}

/// A reserved IOVA range of the IOAS (`iopt_reserved`) and who owns it: a
/// group's reserved regions (`iopt_table_enforce_dev_resv_regions`) or the
/// outside of a domain's aperture (`iopt_table_add_domain`).
public struct IOPTReserved: Hashable, Sendable {
    public var range: IOVARange
    /// A group name (its device's regions) or `hwpt:NAME` (an aperture).
    public var owner: String
}

/// The process and an iommufd context opened from `/dev/iommu` whose compat
/// IOAS answers the type1 ioctls (`vfio_compat.c`, `io_pagetable.c`,
/// `pages.c`): the state `struct io_pagetable` keeps, plus the process
/// and user facts the accounting reads.
///
/// Each group's devices are opened when the group joins (the compat path
/// attaches a device to the IOAS when its fd is opened,
/// `vfio_iommufd_compat_attach_ioas`), so a group's domain exists from its
/// `domain` statement on, not from `VFIO_SET_IOMMU`.
public struct IOMMUFDContainer: Sendable {
    public var profile: KernelProfile
    /// The process the context charges: its own when used alone, lent
    /// by `ModelBackend` for each call when the process has several.
    public var process = ProcessState()

    /// `user->locked_vm` in pages: what the limit is checked against
    /// (every iommufd context of the user charges it).
    public var userLockedPages: UInt64 { process.userLockedVm }
    /// Of `userLockedPages`, pages this context charged.
    public internal(set) var ownUserLockedPages: UInt64 = 0
    /// `mm->pinned_vm` in pages (`VmPin`), the whole process's.
    public var pinnedVm: UInt64 { process.pinnedVm }
    /// Of `pinnedVm`, pages this context pinned.
    public internal(set) var ownPinnedPages: UInt64 = 0

    /// The compat IOAS exists: made by the first `VFIO_GROUP_SET_CONTAINER`
    /// (`iommufd_vfio_compat_ioas_create`) and kept by the iommufd context
    /// until its fd closes, whatever groups come and go. Before it, the
    /// compat ioctls answer ENODEV (`get_compat_ioas`).
    public internal(set) var ioasExists = false
    /// Groups whose container is this iommufd, in the order they joined.
    public internal(set) var groups: [DomainSpec] = []
    /// Groups with no IOMMU (mdev): an `iommufd_access`, no domain.
    public internal(set) var emulatedGroups: [String] = []
    /// `VFIO_SET_IOMMU` answered (either type; it may be answered again).
    public internal(set) var iommuSet = false
    /// `iopt->disable_large_pages`: set by `VFIO_SET_IOMMU(VFIO_TYPE1_IOMMU)`.
    public internal(set) var disableLargePages = false
    /// The hardware page tables of the IOAS, oldest first (`iopt->domains`).
    public internal(set) var hwpts: [HWPagetable] = []
    /// The areas, ascending and disjoint (`iopt->area_itree`).
    public internal(set) var areas: [IOPTArea] = []
    /// `iopt->reserved_itree`.
    public internal(set) var reserved: [IOPTReserved] = []
    /// Bytes the last UNMAP removed, also when it failed part way (the
    /// kernel writes them back in `size` with the error).
    public internal(set) var lastUnmapRemoved: UInt64 = 0

    public init(profile: KernelProfile = .newest) { self.profile = profile }

    static let pageShift: UInt64 = 12
    static let pageSize: UInt64 = 1 << pageShift

    /// `iopt->iova_alignment` (`iopt_calculate_iova_alignment`): 1 with no
    /// domain, else the largest smallest page of the domains, and at least
    /// `PAGE_SIZE` with large pages off.
    var iovaAlignment: UInt64 {
        var a: UInt64 = disableLargePages ? Self.pageSize : 1
        for h in hwpts { a = max(a, Self.smallestPage(h.spec.pgsizes.rawValue)) }
        return a
    }

    static func smallestPage(_ bitmap: UInt64) -> UInt64 { bitmap == 0 ? pageSize : bitmap & (~bitmap &+ 1) }

    /// `RLIMIT_MEMLOCK >> PAGE_SHIFT`.
    var lockLimitPages: UInt64 { process.lockLimitPages }

    public var mappingCount: Int { areas.count }

    /// `VmLck`: iommufd opened as `/dev/iommu` never touches
    /// `mm->locked_vm` (`IOPT_PAGES_ACCOUNT_USER`), so it reads 0.
    public var lockedBytes: UInt64 { 0 }

    /// `user->locked_vm` in bytes (the figure the limit is checked against).
    public var userLockedBytes: UInt64 { process.userLockedBytes }

    /// Charges what an area holds (`incr_user_locked_vm`, `pinned_vm`).
    mutating func charge(locked: UInt64, pinned: UInt64) {
        ownUserLockedPages += locked
        ownPinnedPages += pinned
        process.chargeUser(locked: locked, pinned: pinned)
    }

    /// Index of the first area whose last byte is at or after `iova`.
    /// - Complexity: O(log n).
    func firstArea(endingAtOrAfter iova: UInt64) -> Int {
        var lo = 0, hi = areas.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if areas[mid].last < iova { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    /// `iopt_area_iter_first(iopt, start, last)`: the lowest area
    /// intersecting the inclusive range.
    func areaIterFirst(_ range: IOVARange) -> Int? {
        let i = firstArea(endingAtOrAfter: range.start)
        return i < areas.count && areas[i].iova <= range.last ? i : nil
    }

    /// `iopt_reserved_iter_first`: whether a reserved range meets `range`.
    func reservedIntersects(_ range: IOVARange) -> Bool {
        reserved.contains { $0.range.start <= range.last && range.start <= $0.range.last }
    }

    /// IOMMU leaf entries in the domain of group `group`, or every domain.
    public func pageTableEntries(group: String?) -> [UInt64: UInt64]? {
        var indices: [Int]
        if let group {
            if emulatedGroups.contains(group) { return [:] }
            guard let h = hwpts.firstIndex(where: { $0.groups.contains(group) }) else { return nil }
            indices = [h]
        } else {
            indices = Array(hwpts.indices)
        }
        var out: [UInt64: UInt64] = [:]
        for area in areas {
            for h in indices where h < area.runs.count {
                var entries = [UInt128](repeating: 0, count: 64)
                area.runs[h].count(into: &entries)
                for (shift, n) in entries.enumerated() where n != 0 { out[1 << UInt64(shift), default: 0] += UInt64(clamping: n) }
            }
        }
        return out
    }

    /// The page size of the leaf entry translating `iova` in the domain of
    /// `group` (nil: the only one): `.success(nil)` when none does,
    /// `.failure` saying why no domain can be read.
    public func leafSize(iova: UInt64, group: String?) -> Result<UInt64?, LeafLookupError> {
        let h: Int
        if let group {
            if emulatedGroups.contains(group) { return .success(nil) }
            guard let i = hwpts.firstIndex(where: { $0.groups.contains(group) }) else { return .failure(.noGroup(group)) }
            h = i
        } else {
            if hwpts.isEmpty { return .success(nil) }
            if hwpts.count > 1 { return .failure(.severalDomains) }
            h = 0
        }
        for area in areas where h < area.runs.count {
            var found: UInt64? = nil
            area.runs[h].forEachItem { if found == nil { found = $0.leafSize(at: iova) } }
            if let found { return .success(found) }
        }
        return .success(nil)
    }
}

/// Why a leaf entry could not be looked up.
public enum LeafLookupError: Error, Sendable, CustomStringConvertible {
    case noGroup(String)
    case severalDomains
    public var description: String {
        switch self {
        case .noGroup(let name): "no group named \(name)"
        case .severalDomains: "several domains: name one with domain="
        }
    }
}

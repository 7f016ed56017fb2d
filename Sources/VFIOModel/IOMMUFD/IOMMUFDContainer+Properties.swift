import VFIOCore

/// The state of iommufd's compat IOAS that a failed call must leave
/// untouched: its areas (with their pages, charges and IOMMU entries), the
/// user's and the process's counters, its reserved ranges and domains.
/// Whether the IOAS exists is left out: `VFIO_GROUP_SET_CONTAINER` makes
/// it before the device open that can fail.
struct IOMMUFDSnapshot: Hashable {
    var areas: [IOPTArea]
    var userLocked: UInt64
    var pinnedVm: UInt64
    var reserved: [IOPTReserved]
    var domainGroups: [[String]]
    var groups: [String]
    var largePagesOff: Bool

    init(_ c: IOMMUFDContainer) {
        areas = c.areas
        userLocked = c.userLockedPages
        pinnedVm = c.pinnedVm
        reserved = c.reserved
        domainGroups = c.hwpts.map(\.groups)
        groups = c.groups.map(\.name)
        largePagesOff = c.disableLargePages
    }

    /// Bytes the areas cover (each below 2^64, and disjoint).
    var mappedBytes: UInt64 { areas.reduce(0) { $0 &+ $1.length } }

    /// Bytes the areas cover outside `range`.
    func bytesOutside(_ range: IOVARange) -> UInt64 {
        areas.reduce(0) { sum, a in
            let lo = max(a.iova, range.start), hi = min(a.last, range.last)
            return sum &+ (lo > hi ? a.length : a.length - (hi - lo + 1))
        }
    }
}

/// The properties of iommufd's compat layer (type1's do not hold there:
/// iommufd keeps areas, not `vfio_dma` entries, has no entry limit,
/// charges the user's `locked_vm` rather than the process's, and its unmap
/// is not atomic):
/// - `failed-op-changes-nothing`: every failure but an unmap's;
/// - `unmap-reports-removed`: a successful unmap's answer is what left the
///   IOAS;
/// - `unmap-stays-in-range`: an unmap, failed or not, leaves every mapped
///   byte outside its range where it was (a failure may come after some
///   areas inside it left);
/// - `exact-unmap-size`: an unmap of exactly one area succeeds with its size;
/// - `map-makes-one-area`: a map that succeeds adds exactly its area;
/// - `map-charges-its-pages`: with a domain, that area pins every page it
///   spans and charges them (nothing with `CAP_IPC_LOCK`); with none,
///   nothing is pinned;
/// - `charge-within-limit`: a charge never takes `user->locked_vm` past
///   `RLIMIT_MEMLOCK` (without `CAP_IPC_LOCK`);
/// - `no-entry-limit`: no request is refused for a `dma_entry_limit`;
/// - `small-pages-only`: after `VFIO_TYPE1_IOMMU` (large pages off) every
///   IOMMU entry is one `PAGE_SIZE`;
/// - `unmap-all-empties`: UNMAP_ALL leaves no area and nothing pinned or
///   charged by this context.
extension IOMMUFDContainer {
    public func snapshot() -> ContainerSnapshot { ContainerSnapshot(IOMMUFDSnapshot(self)) }

    public func propertyViolations(after call: ContainerCall, before snapshot: ContainerSnapshot) -> [PropertyViolation] {
        guard let before = snapshot.as(IOMMUFDSnapshot.self) else { return [] }
        var out: [PropertyViolation] = []
        let after = IOMMUFDSnapshot(self)
        let failed = call.errno
        if failed == .ENOSPC { out.append(PropertyViolation("no-entry-limit", "ENOSPC: iommufd has no dma_entry_limit")) }
        var isUnmap = false
        if case .unmap = call { isUnmap = true }
        if let e = failed, !isUnmap, after != before { out.append(PropertyViolation("failed-op-changes-nothing", "\(e) but the IOAS changed")) }
        if after.userLocked > before.userLocked && !capIPCLock && after.userLocked > lockLimitPages {
            out.append(PropertyViolation("charge-within-limit", "user locked_vm \(after.userLocked) pages past the limit of \(lockLimitPages)"))
        }
        if after.largePagesOff, areas.contains(where: { $0.runs.contains { list in
            var other = false
            list.forEachItem { other = other || $0.hasPage(otherThan: 4096) }
            return other
        } }) {
            out.append(PropertyViolation("small-pages-only", "an IOMMU entry larger than 4K with large pages off (VFIO_TYPE1_IOMMU)"))
        }
        switch call {
        case .unmap(let u, let r, _, _):
            out += unmapViolations(u, r, before: before, after: after)
        case .map(let m, .success) where !m.flags.contains(.vaddr):
            out += mapViolations(m, before: before, after: after)
        default:
            break
        }
        return out
    }

    func unmapViolations(_ u: UnmapDMA, _ r: Result<UInt64, Errno>, before: IOMMUFDSnapshot, after: IOMMUFDSnapshot) -> [PropertyViolation] {
        var out: [PropertyViolation] = []
        let removed = before.mappedBytes &- after.mappedBytes
        if case .success(let reported) = r, reported != removed {
            out.append(PropertyViolation("unmap-reports-removed", "reported \(reported), removed \(removed)"))
        }
        // The range the request names (a wrapping one: up to 2^64-1).
        let range = u.flags.contains(.all) ? IOVARange.all
            : IOVARange(start: u.iova, size: u.size) ?? IOVARange(start: u.iova, last: u.size == 0 ? u.iova : .max)
        if before.bytesOutside(range) != after.bytesOutside(range) {
            out.append(PropertyViolation("unmap-stays-in-range", "\(Self.said(r)): bytes mapped outside the range went from \(before.bytesOutside(range)) to \(after.bytesOutside(range))"))
        }
        if u.flags.isEmpty, let a = before.areas.first(where: { $0.iova == u.iova && $0.length == u.size }) {
            if case .success(a.length) = r {} else {
                out.append(PropertyViolation("exact-unmap-size", "unmap of exactly the area at \(formatHex(a.iova)) (\(a.length) bytes): \(Self.said(r))"))
            }
        }
        return out
    }

    /// An unmap's answer as a trace writes it.
    static func said(_ r: Result<UInt64, Errno>) -> String {
        switch r {
        case .success(let size): "ok size=\(formatHex(size))"
        case .failure(let e): "\(e)"
        }
    }

    func mapViolations(_ m: MapDMA, before: IOMMUFDSnapshot, after: IOMMUFDSnapshot) -> [PropertyViolation] {
        guard after.areas.count == before.areas.count + 1,
              let a = after.areas.first(where: { $0.iova == m.iova && $0.length == m.size && $0.vaddr == m.vaddr }) else {
            return [PropertyViolation("map-makes-one-area", "\(before.areas.count) areas before, \(after.areas.count) after, none for the request")]
        }
        let span = (m.vaddr & 0xFFF) + m.size
        let pages = hwpts.isEmpty ? 0 : (span >> 12) + (span & 0xFFF == 0 ? 0 : 1)
        let charged = capIPCLock ? 0 : pages
        if a.pinnedPages != pages || a.chargedPages != charged || after.userLocked != before.userLocked + charged
            || after.pinnedVm != before.pinnedVm + pages {
            return [PropertyViolation("map-charges-its-pages", "area of \(pages) pages pins \(a.pinnedPages), charges \(a.chargedPages); user locked_vm \(before.userLocked) → \(after.userLocked)")]
        }
        return []
    }

    public var unmapsAllAtEnd: Bool { ioasExists }

    public func unmapAllLeftovers(_ result: Result<UInt64, Errno>, before: ContainerSnapshot) -> PropertyViolation? {
        if case .failure(let e) = result { return PropertyViolation("unmap-all-empties", "UNMAP_ALL failed with \(e)") }
        if !areas.isEmpty || ownUserLockedPages != 0 || ownPinnedPages != 0 {
            return PropertyViolation("unmap-all-empties", "\(areas.count) areas, \(ownUserLockedPages) pages charged, \(ownPinnedPages) pinned left")
        }
        return nil
    }
}

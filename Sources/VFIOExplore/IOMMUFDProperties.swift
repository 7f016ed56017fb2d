import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// The state of iommufd's compat IOAS that a failed operation must leave
/// untouched: its areas (with their pages, charges and IOMMU entries), the
/// user's and the process's counters, its reserved ranges and domains.
/// Whether the IOAS exists is left out: `VFIO_GROUP_SET_CONTAINER` makes
/// it before the device open that can fail.
struct IOMMUFDSnapshot: Equatable {
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

/// The properties of iommufd's compat layer, checked after every operation
/// of a `container iommufd` sequence (type1's do not hold there: iommufd
/// keeps areas, not `vfio_dma` entries, has no entry limit, charges the
/// user's `locked_vm` rather than the process's, and its unmap is not
/// atomic):
/// - `invariant`: `IOMMUFDContainer._checkInvariants()`;
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
///   IOMMU entry is one `PAGE_SIZE`.
struct IOMMUFDProperties {
    static func check(_ st: Statement, answer: Answer, before: IOMMUFDSnapshot, _ c: IOMMUFDContainer,
                      record: (String, String) -> Void) {
        if let broken = c._checkInvariants() { record("invariant", broken); return }
        let after = IOMMUFDSnapshot(c)
        let failed: Errno? = if case .errno(let e) = answer.status { e } else { nil }
        if failed == .ENOSPC { record("no-entry-limit", "ENOSPC: iommufd has no dma_entry_limit") }
        var isUnmap = false
        if case .unmap = st.kind { isUnmap = true }
        if let e = failed, !isUnmap, after != before { record("failed-op-changes-nothing", "\(e) but the IOAS changed") }
        if after.userLocked > before.userLocked && !c.capIPCLock && after.userLocked > (c.memlock ?? .max) >> 12 {
            record("charge-within-limit", "user locked_vm \(after.userLocked) pages past the limit of \((c.memlock ?? .max) >> 12)")
        }
        if after.largePagesOff, c.areas.contains(where: { $0.runs.contains { $0.contains { $0.pageSize != 4096 } } }) {
            record("small-pages-only", "an IOMMU entry larger than 4K with large pages off (VFIO_TYPE1_IOMMU)")
        }
        switch st.kind {
        case .unmap(let u):
            checkUnmap(u, answer: answer, before: before, after: after, c, record: record)
        case .map(let m) where failed == nil && !m.flags.contains(.vaddr):
            checkMap(m, before: before, after: after, c, record: record)
        default:
            break
        }
    }

    static func checkUnmap(_ u: UnmapDMA, answer: Answer, before: IOMMUFDSnapshot, after: IOMMUFDSnapshot, _ c: IOMMUFDContainer,
                           record: (String, String) -> Void) {
        let removed = before.mappedBytes &- after.mappedBytes
        if case .ok = answer.status, case .size(let reported)? = answer.fields.first, reported != removed {
            record("unmap-reports-removed", "reported \(reported), removed \(removed)")
        }
        // The range the request names (a wrapping one: up to 2^64-1).
        let range = u.flags.contains(.all) ? IOVARange.all
            : IOVARange(start: u.iova, size: u.size) ?? IOVARange(start: u.iova, last: u.size == 0 ? u.iova : .max)
        if before.bytesOutside(range) != after.bytesOutside(range) {
            record("unmap-stays-in-range", "\(answer): bytes mapped outside the range went from \(before.bytesOutside(range)) to \(after.bytesOutside(range))")
        }
        if u.flags.isEmpty, let a = before.areas.first(where: { $0.iova == u.iova && $0.length == u.size }) {
            if case .ok = answer.status, case .size(a.length)? = answer.fields.first {} else {
                record("exact-unmap-size", "unmap of exactly the area at \(hex(a.iova)) (\(a.length) bytes): \(answer)")
            }
        }
    }

    static func checkMap(_ m: MapDMA, before: IOMMUFDSnapshot, after: IOMMUFDSnapshot, _ c: IOMMUFDContainer,
                         record: (String, String) -> Void) {
        guard after.areas.count == before.areas.count + 1,
              let a = after.areas.first(where: { $0.iova == m.iova && $0.length == m.size && $0.vaddr == m.vaddr }) else {
            record("map-makes-one-area", "\(before.areas.count) areas before, \(after.areas.count) after, none for the request")
            return
        }
        let span = (m.vaddr & 0xFFF) + m.size
        let pages = c.hwpts.isEmpty ? 0 : (span >> 12) + (span & 0xFFF == 0 ? 0 : 1)
        let charged = c.capIPCLock ? 0 : pages
        if a.pinnedPages != pages || a.chargedPages != charged || after.userLocked != before.userLocked + charged
            || after.pinnedVm != before.pinnedVm + pages {
            record("map-charges-its-pages", "area of \(pages) pages pins \(a.pinnedPages), charges \(a.chargedPages); user locked_vm \(before.userLocked) → \(after.userLocked)")
        }
    }

    /// After the sequence: UNMAP_ALL leaves no area and nothing pinned or
    /// charged by this context.
    static func unmapAllEmpties(_ model: ModelBackend, record: (String, String) -> Void) {
        guard model.compat?.ioasExists == true else { return }
        let r = model.unmapDMA(UnmapDMA(flags: [.all], iova: 0, size: 0))
        guard let c = model.compat else { return }
        if case .failure(let e) = r { record("unmap-all-empties", "UNMAP_ALL failed with \(e)"); return }
        if !c.areas.isEmpty || c.ownUserLockedPages != 0 || c.pinnedVm != 0 {
            record("unmap-all-empties", "\(c.areas.count) areas, \(c.ownUserLockedPages) pages charged, \(c.pinnedVm) pinned left")
        }
    }

    static func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16) }
}

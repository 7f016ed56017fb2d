import VFIOCore

extension IOMMUFDContainer {
    /// Walks the IOAS and returns the first broken rule, or nil: areas
    /// ascending, disjoint, non-empty and off every reserved range; one run
    /// list per domain covering each area exactly; the charge equal to the
    /// sum of the areas' charges (nothing charged while no domain pins).
    ///
    /// - Complexity: O(areas × domains + runs).
    public func _checkInvariants() -> InvariantViolation? {
        var chargedSum: UInt64 = 0, pinnedSum: UInt64 = 0
        for (i, a) in areas.enumerated() {
            if a.length == 0 { return InvariantViolation(.mapping, "area \(i) is empty") }
            if a.iova.addingReportingOverflow(a.length - 1).overflow { return InvariantViolation(.mapping, "area \(i) wraps") }
            if i > 0 && areas[i - 1].last >= a.iova { return InvariantViolation(.tree, "areas \(i - 1) and \(i) overlap or are out of order") }
            if reservedIntersects(IOVARange(start: a.iova, last: a.last)) { return InvariantViolation(.mapping, "area \(i) meets a reserved range") }
            if a.runs.count != hwpts.count { return InvariantViolation(.pageTable, "area \(i) has \(a.runs.count) run lists for \(hwpts.count) domains") }
            for (h, runs) in a.runs.enumerated() {
                var covered: UInt64 = 0
                runs.forEachItem { covered &+= $0.length }
                if covered != a.length { return InvariantViolation(.pageTable, "area \(i) covers \(covered) bytes of \(a.length) in domain \(h)") }
            }
            if hwpts.isEmpty && a.pinnedPages != 0 { return InvariantViolation(.accounting, "area \(i) holds pinned pages with no domain") }
            chargedSum &+= a.chargedPages
            pinnedSum &+= a.pinnedPages
        }
        if chargedSum != ownUserLockedPages { return InvariantViolation(.accounting, "this context charged \(ownUserLockedPages) pages of user locked_vm \(userLockedPages), areas hold \(chargedSum)") }
        if pinnedSum != ownPinnedPages { return InvariantViolation(.accounting, "this context pinned \(ownPinnedPages) pages of pinned_vm \(pinnedVm), areas hold \(pinnedSum)") }
        return nil
    }
}

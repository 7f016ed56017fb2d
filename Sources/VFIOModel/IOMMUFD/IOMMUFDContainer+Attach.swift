import VFIOCore

extension IOMMUFDContainer {
    /// Whether a group's device can join an existing hardware page table:
    /// the model's stand-in for `iommufd_device_auto_get_domain` finding a
    /// compatible `iommufd_hw_pagetable` in the IOAS (same IOMMU, same
    /// coherency), as the type1 model decides domain reuse.
    static func canShare(_ h: HWPagetable, _ g: DomainSpec) -> Bool {
        h.spec.instance == g.instance && h.spec.pgsizes == g.pgsizes && h.spec.leaves == g.leaves
            && h.spec.aperture == g.aperture && h.spec.coherent == g.coherent
    }

    /// `VFIO_GROUP_SET_CONTAINER` with an iommufd, then opening the group's
    /// device (`vfio_iommufd_compat_attach_ioas`, `iommufd_device_attach`):
    /// MSI isolation (`iommufd_device_bind`: EPERM), the group's reserved
    /// regions (`iopt_table_enforce_dev_resv_regions`: EADDRINUSE over an
    /// area), then an existing compatible domain or a new one
    /// (`iopt_table_add_domain`). On failure nothing changes.
    public mutating func groupSetContainer(_ g: DomainSpec) -> Result<Void, Errno> {
        if groups.contains(where: { $0.name == g.name }) { return .failure(.EINVAL) }
        // SET_CONTAINER made the IOAS before the device open can fail.
        ioasExists = true
        if g.emulated {
            // An mdev device is an iommufd_access: no domain, nothing
            // pinned until it reads memory.
            emulatedGroups.append(g.name)
            groups.append(g)
            return .success(())
        }
        if !g.msiIsolated { return .failure(.EPERM) }
        let saved = self
        for r in g.reserved {
            if let e = ioptReserveIOVA(r, owner: g.name) { self = saved; return .failure(e) }
        }
        if let h = hwpts.firstIndex(where: { Self.canShare($0, g) }) {
            hwpts[h].groups.append(g.name)
        } else if let e = ioptTableAddDomain(g) {
            self = saved
            return .failure(e)
        }
        groups.append(g)
        return .success(())
    }

    /// `iopt_reserve_iova`: a reserved range may not cover an area.
    mutating func ioptReserveIOVA(_ range: IOVARange, owner: String) -> Errno? {
        if areaIterFirst(range) != nil { return .EADDRINUSE }
        reserved.append(IOPTReserved(range: range, owner: owner))
        return nil
    }

    /// `iopt_table_add_domain`: the domain's smallest page must be at most
    /// `PAGE_SIZE` (EINVAL) and every area aligned to it
    /// (`iopt_check_iova_alignment`: EADDRINUSE); the outside of its
    /// aperture becomes reserved (EADDRINUSE over an area); then every
    /// area is pinned and mapped into it (`iopt_fill_domain`: ENOMEM,
    /// EFAULT).
    mutating func ioptTableAddDomain(_ g: DomainSpec) -> Errno? {
        let newAlignment = max(Self.smallestPage(g.pgsizes.rawValue), iovaAlignment)
        if newAlignment > Self.pageSize { return .EINVAL }
        if newAlignment != iovaAlignment {
            let mask = newAlignment - 1
            if areas.contains(where: { ($0.iova | $0.length | $0.vaddr) & mask != 0 }) { return .EADDRINUSE }
        }
        let owner = "hwpt:\(g.name)"
        if g.aperture.start != 0, let e = ioptReserveIOVA(IOVARange(start: 0, last: g.aperture.start - 1), owner: owner) { return e }
        if g.aperture.last != .max, let e = ioptReserveIOVA(IOVARange(start: g.aperture.last + 1, last: .max), owner: owner) { return e }
        // iopt_fill_domain: the first domain pins every area; later ones
        // map pages another domain already holds.
        let first = hwpts.isEmpty
        var added: [RunList] = []
        var charges: [(UInt64, UInt64)] = []
        for a in areas {
            switch pinAndMap(vaddr: a.vaddr, iova: a.iova, length: a.length, into: [g], prot: a.prot, charge: first, alreadyCharged: charges.reduce(0) { $0 + $1.0 }) {
            case .failure(let e): return e
            case .success(let (charged, pinned, runs)):
                added.append(runs[0])
                charges.append((charged, pinned))
            }
        }
        hwpts.append(HWPagetable(spec: g, groups: [g.name]))
        for i in areas.indices {
            areas[i].runs.append(added[i])
            if first {
                areas[i].chargedPages = charges[i].0
                areas[i].pinnedPages = charges[i].1
                charge(locked: charges[i].0, pinned: charges[i].1)
            }
        }
        return nil
    }

    /// `VFIO_GROUP_UNSET_CONTAINER` (the device closed first): the group
    /// leaves its domain; a domain left with no group is removed
    /// (`iopt_table_remove_domain`), and with the last domain gone every
    /// area is unpinned and uncharged but stays in the IOAS (the iommufd
    /// fd still holds it, unlike a type1 container released with its last
    /// group).
    public mutating func groupUnsetContainer(_ name: String) -> Result<Void, Errno> {
        guard let index = groups.firstIndex(where: { $0.name == name }) else { return .failure(.EINVAL) }
        groups.remove(at: index)
        if let e = emulatedGroups.firstIndex(of: name) { emulatedGroups.remove(at: e); return .success(()) }
        reserved.removeAll { $0.owner == name }
        guard let h = hwpts.firstIndex(where: { $0.groups.contains(name) }) else { return .success(()) }
        hwpts[h].groups.removeAll { $0 == name }
        if hwpts[h].groups.isEmpty {
            let owner = "hwpt:\(hwpts[h].spec.name)"
            reserved.removeAll { $0.owner == owner }
            hwpts.remove(at: h)
            for i in areas.indices { areas[i].runs.remove(at: h) }
            if hwpts.isEmpty {
                for i in areas.indices { unchargeArea(i) }
            }
        }
        return .success(())
    }
}

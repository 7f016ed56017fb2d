import VFIOCore

/// iommufd's compat layer as a `ContainerDriver`: `/dev/iommu` opened as
/// a container, the type1 ioctls answered by `vfio_compat.c`.
extension IOMMUFDContainer: ContainerDriver {
    public var kind: ContainerKind { .iommufd }

    /// iommufd has no `dma_entry_limit`: the parameter is type1's.
    public var dmaEntryLimit: UInt32 {
        get { 65535 }
        set {}
    }

    /// `iommufd_vfio_ioctl` has no `VFIO_IOMMU_DIRTY_PAGES`:
    /// `-ENOIOCTLCMD`, which userspace sees as ENOTTY.
    public mutating func dirtyPages(_ request: DirtyPages) -> Result<Void, Errno> { .failure(.ENOTTY) }

    public func reason(for call: ContainerCall) -> String? {
        switch call {
        case .attach(let spec, let r): return explainAttach(spec, r)
        case .map(let m, let r): return explainMap(m, r)
        case .unmap(let u, let r, _, _): return explainUnmap(u, r)
        case .setIOMMU(let t, let r): return explainSetIOMMU(t, r)
        case .detach(let name, .failure, let wasIn):
            return wasIn ? nil : "iommufd: group \(name) is not in the container (vfio_group_ioctl_unset_container)"
        case .detach(_, .success, _): return nil
        case .checkExtension(let ext, _): return explainExtension(ext)
        case .info:
            return "iommufd: only DMA_AVAIL (always U32_MAX, no dma_entry_limit) and IOVA_RANGE, no migration capability (iommufd_vfio_iommu_get_info)"
        case .dirty:
            return "iommufd: VFIO_IOMMU_DIRTY_PAGES is not part of the compat layer: ENOTTY (iommufd_vfio_ioctl)"
        }
    }

    /// `iommufd_vfio_check_extension`'s answer, said.
    func explainExtension(_ ext: Extension) -> String {
        switch ext {
        case .nesting: "iommufd: nesting is 0, the type was never supported (iommufd_vfio_check_extension)"
        case .updateVaddr: "iommufd: update-vaddr is 0, iommufd cannot update a vaddr (iommufd_vfio_check_extension)"
        case .unmapAll: "iommufd: unmap-all is 1 (iommufd_vfio_check_extension)"
        case .type1, .type1v2: "iommufd: the compat layer offers type1 and type1v2 (iommufd_vfio_check_extension)"
        case .dmaCC: groups.isEmpty ? "iommufd: no group, no compat IOAS: ENODEV (iommufd_vfio_cc_iommu)" : "iommufd: 1 when every domain enforces cache coherency (iommufd_vfio_cc_iommu)"
        default: "iommufd: 0, not an extension the compat layer knows (iommufd_vfio_check_extension)"
        }
    }

    /// The compat layer logs none of type1's warnings.
    public func kernelLog(for call: ContainerCall) -> String? { nil }

    public func checkInvariants() -> InvariantViolation? { _checkInvariants() }

    public var domainCount: Int { hwpts.count }
    public var chargedPages: UInt64 { ownUserLockedPages }
    public var limitedBytes: UInt64 { userLockedBytes }
    public var leakedPages: UInt64 { 0 }
    public var hang: String? { nil }
    /// Always `U32_MAX` in GET_INFO: no count is kept.
    public var availableEntries: UInt32? { nil }
    public var hidesTopMapping: Bool { false }
    public var overlapsLetThrough: Int { 0 }
    public var dirtyBitmap: [IOVARange]? { nil }

    public func pteCounts(group: String?) -> PTECounts? {
        pageTableEntries(group: group).map { PTECounts($0) }
    }

    public func mappings(meeting range: IOVARange?) -> [MappingView] {
        var out: [MappingView] = []
        for a in areas[(range.map { firstArea(endingAtOrAfter: $0.start) } ?? 0)...] {
            if let range, a.iova > range.last { break }
            out.append(MappingView(iova: a.iova, size: a.length, vaddr: a.vaddr))
        }
        return out
    }

    public func mapping(containing iova: UInt64) -> MappingView? {
        let i = firstArea(endingAtOrAfter: iova)
        guard i < areas.count, areas[i].iova <= iova else { return nil }
        return MappingView(iova: areas[i].iova, size: areas[i].length, vaddr: areas[i].vaddr)
    }
}

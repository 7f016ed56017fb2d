import VFIOCore

/// Why iommufd's compat layer gave an answer: worked out only when a report
/// asks, from the request and the state the call left (as
/// `Type1Container+Explain.swift` does for type1).
extension IOMMUFDContainer {
    func explainMap(_ m: MapDMA, _ r: Result<Void, Errno>) -> String? {
        guard case .failure(let e) = r else {
            if !m.flags.contains(.read) && !m.flags.contains(.write) {
                return "iommufd: a mapping with neither READ nor WRITE is accepted while no domain is attached (nothing is mapped into an IOMMU yet); once one is, its iommu_map refuses it (iopt_map_user_pages)"
            }
            if hwpts.isEmpty { return "iommufd: no domain yet, so nothing is pinned or charged (iopt_map_user_pages)" }
            return "iommufd: mapped; charged to the user's locked_vm and the process's pinned_vm, not VmLck, and no dma_entry_limit (iopt_map_user_pages)"
        }
        let supported: UInt32 = 3
        if m.argsz < MapDMA.structSize || m.flags.rawValue & ~supported != 0 {
            return "iommufd: MAP_DMA takes only READ and WRITE (no VADDR: iommufd cannot update a vaddr) (iommufd_vfio_map_dma)"
        }
        switch e {
        case .EINVAL:
            if m.size == 0 { return "iommufd: size 0 (iopt_alloc_pages)" }
            if m.size > UInt64.max - Self.pageSize { return "iommufd: size above SIZE_MAX - PAGE_SIZE (iopt_alloc_pages)" }
            let align = iovaAlignment
            if m.size & (align - 1) != 0 { return "iommufd: size not a multiple of the IOAS alignment \(formatSize(align)) (iopt_alloc_area_pages)" }
            if m.iova & (align - 1) != 0 { return "iommufd: iova not aligned to \(formatSize(align)) (iopt_check_iova)" }
            if let range = IOVARange(start: m.iova, size: m.size), reservedIntersects(range) {
                return "iommufd: the range meets a reserved IOVA range (a group's reserved region or outside a domain's aperture) (iopt_check_iova)"
            }
            if (m.vaddr % Self.pageSize) & (align - 1) != 0 {
                return "iommufd: vaddr not aligned to the IOAS alignment \(formatSize(align)) (iopt_insert_area)"
            }
            if !m.flags.contains(.read) && !m.flags.contains(.write) && !hwpts.isEmpty {
                return "iommufd: neither READ nor WRITE: the compat layer passes it, the domain's iommu_map refuses it when the first batch of pinned pages is mapped, before any charge (VT-d __domain_mapping) (iopt_area_fill_domains, batch_to_domain)"
            }
            return "iommufd: the domain's iommu_map refused the mapping (iopt_area_fill_domains, batch_to_domain)"
        case .EOVERFLOW:
            if m.vaddr.addingReportingOverflow(m.size).overflow { return "iommufd: vaddr + size passes 2^64 (iopt_alloc_pages)" }
            return "iommufd: iova + size - 1 passes 2^64-1 (iopt_check_iova)"
        case .EEXIST:
            return "iommufd: an area already covers part of the range (iopt_check_iova)"
        case .EFAULT:
            if !m.flags.contains(.read) && !m.flags.contains(.write) && !hwpts.isEmpty {
                return "iommufd: pin_user_pages reached memory it cannot pin (not mapped in the process, or device memory) while the first batch was still filling, before any page was mapped, so the domain never saw prot=none; checked before the charge (pfn_reader_user_pin, pfn_reader_next)"
            }
            let pages = (m.size >> Self.pageShift)
            let (sum, o) = userLockedPages.addingReportingOverflow(pages)
            let overLimit = !capIPCLock && (o || sum > lockLimitPages)
            return "iommufd: pin_user_pages cannot pin the memory: not mapped in the process, or device memory (pfnmap/BAR), which iommufd never maps"
                + (overLimit ? "; pinning comes before the charge, so this wins over RLIMIT_MEMLOCK, which the map would pass" : "") + " (pfn_reader_user_pin)"
        case .ENOMEM:
            return "iommufd: every page was pinned and mapped, then the charge failed: the user's locked_vm would pass RLIMIT_MEMLOCK (\(formatSize(userLockedBytes)) locked by this user); all of it undone (pfn_reader_update_pinned, incr_user_locked_vm)"
        default:
            // Nothing else is known to fail here: no reason rather than a guess.
            return nil
        }
    }

    func explainUnmap(_ u: UnmapDMA, _ r: Result<UInt64, Errno>) -> String? {
        let removed = lastUnmapRemoved
        switch r {
        case .success(let size):
            if u.flags.contains(.all) { return "iommufd: every area removed, \(formatSize(size)) (iopt_unmap_all)" }
            if size == 0 { return "iommufd: no area in the range: 0 bytes, since the fix (afb47765f923: 6.18, 6.17.9, 6.12.59, 6.6.117; before it ENOENT) (iopt_unmap_iova_range)" }
            if disableLargePages && size != u.size {
                return "iommufd v1: the areas were cut at both ends of the request, so exactly the mapped bytes inside it went: \(formatSize(size)) of \(formatSize(u.size)) asked (iopt_cut_iova, iopt_unmap_iova)"
            }
            if disableLargePages { return "iommufd v1: areas cut at the request's ends and removed (iopt_cut_iova, iopt_unmap_iova)" }
            return "iommufd: every area inside the range removed, \(formatSize(size)) (iopt_unmap_iova)"
        case .failure(let e):
            if u.argsz < UnmapDMA.structSize || u.flags.rawValue & ~UnmapDMA.Flags.all.rawValue != 0 {
                return "iommufd: UNMAP_DMA takes only the ALL flag (VADDR and GET_DIRTY_BITMAP are EINVAL) (iommufd_vfio_unmap_dma)"
            }
            switch e {
            case .EINVAL:
                if u.flags.contains(.all) { return "iommufd: UNMAP_ALL wants iova and size 0 (iommufd_vfio_unmap_dma)" }
                if u.size == 0 { return "iommufd: size 0 (type1 answers 0 with size 0) (iopt_unmap_iova)" }
                return "iommufd v1: a cut at the request's end is not aligned to \(formatSize(iovaAlignment)) (iopt_area_split)"
            case .EOVERFLOW:
                return "iommufd: iova + size - 1 passes 2^64-1 (iopt_unmap_iova)"
            case .ENOENT:
                if removed > 0 {
                    return "iommufd: an area sticks out of the range; the unmap is not atomic: \(formatSize(removed)) below it were already removed (and written back in size) (iopt_unmap_iova_range)"
                }
                if let i = areaIterFirst(IOVARange(start: u.iova, last: u.iova &+ (u.size &- 1) < u.iova ? .max : u.iova &+ (u.size &- 1))) {
                    let a = areas[i]
                    return "iommufd: the area 0x\(String(a.iova, radix: 16)) + \(formatSize(a.length)) sticks out of the range; iommufd never splits an area (type1 v2: EINVAL) (iopt_unmap_iova_range)"
                }
                return "iommufd: no area in the range: ENOENT on kernels before the fix (afb47765f923: 6.18, 6.17.9, 6.12.59, 6.6.117; type1 answers 0 with size 0) (iopt_unmap_iova_range)"
            default:
                return nil
            }
        }
    }

    func explainSetIOMMU(_ t: Extension, _ r: Result<Void, Errno>) -> String? {
        switch r {
        case .success:
            return t == .type1 ? "iommufd v1: large pages off, every page mapped on its own and an unmap cuts exactly at the request (iopt_disable_large_pages)"
                : "iommufd: SET_IOMMU checks only the type and that the compat IOAS exists; each group attached when its device opened (iommufd_vfio_set_iommu)"
        case .failure(.EINVAL) where t != .type1 && t != .type1v2:
            return "iommufd: only VFIO_TYPE1_IOMMU and VFIO_TYPE1v2_IOMMU (type1 answers ENODEV) (iommufd_vfio_set_iommu)"
        case .failure(.EINVAL):
            return "iommufd: large pages cannot be turned off once a domain holds mappings (iopt_disable_large_pages)"
        case .failure(.ENODEV):
            return "iommufd: no group, so no compat IOAS (type1: EINVAL) (iommufd_vfio_set_iommu)"
        case .failure:
            return nil
        }
    }

    func explainAttach(_ g: DomainSpec, _ r: Result<Void, Errno>) -> String? {
        guard case .failure(let e) = r else {
            return g.emulated ? "iommufd: an mdev group is an iommufd_access, no domain (iommufd_access_create)"
                : "iommufd: the device attached to the compat IOAS, in a domain of its own or a compatible one (iommufd_device_attach)"
        }
        switch e {
        case .EPERM: return "iommufd: the device's MSIs are not isolated (iommufd_device_bind)"
        case .EADDRINUSE: return "iommufd: the group's reserved regions or the domain's aperture would cover an existing area (type1: EINVAL) (iopt_reserve_iova)"
        case .EINVAL:
            if !groups.contains(where: { $0.name == g.name }) && Self.smallestPage(g.pgsizes.rawValue) <= Self.pageSize
                && areas.contains(where: { $0.prot.isEmpty }) {
                return "iommufd: an area with neither READ nor WRITE, mapped while no domain was attached: the new domain's iommu_map refuses it as the area is filled (iopt_fill_domain, batch_to_domain)"
            }
            return "iommufd: a domain whose smallest page is above PAGE_SIZE, or a group already in the container (iopt_table_add_domain)"
        case .EFAULT:
            return "iommufd: the new domain pins and maps every area in IOVA order; one runs over memory that cannot be pinned (not mapped, or device memory), mapped while no domain was attached (iopt_fill_domain, pfn_reader_user_pin)"
        case .ENOMEM:
            return "iommufd: the new domain pins, maps and then charges every area in IOVA order; the user's locked_vm would pass RLIMIT_MEMLOCK, and every area filled so far is undone (iopt_fill_domain, pfn_reader_update_pinned, incr_user_locked_vm)"
        default: return nil
        }
    }
}

import Testing
import VFIOCore
@testable import VFIOModel

/// iommufd's compat IOAS with the default group, 64 MiB of 2M pages at
/// 0x7f0000000000 (physically contiguous) and `VFIO_SET_IOMMU(type)`.
func makeCompat(_ version: KernelVersion = KernelVersion(7, 3), type: Extension = .type1v2) -> IOMMUFDContainer {
    var c = IOMMUFDContainer(profile: KernelProfile(version))
    _ = c.memory.add(Spec(vaddr: 0x7F00_0000_0000, size: 64 << 20, pageSize: 2 << 20, layout: .contiguous(base: 1 << 32)))
    _ = c.groupSetContainer(.default)
    _ = c.setIOMMU(type)
    return c
}

func unmap(_ iova: UInt64, _ size: UInt64, flags: UnmapDMA.Flags = []) -> UnmapDMA { UnmapDMA(flags: flags, iova: iova, size: size) }

/// Each test names the iommufd rule it checks and the kernel function it
/// comes from (drivers/iommu/iommufd/vfio_compat.c, io_pagetable.c, pages.c).
@Suite("iommufd compat rules")
struct IOMMUFDRuleTests {
    // MARK: iommufd_vfio_unmap_dma, iopt_unmap_iova, iopt_unmap_iova_range

    @Test("a v2 unmap that cuts into a mapping fails with ENOENT and removes nothing (iopt_unmap_iova_range)")
    func cutIsENOENT() {
        var c = makeCompat()
        #expect(c.mapDMA(map(0x20_0000, 4 << 20)).errno == nil)
        #expect(c.unmapDMA(unmap(0x20_0000, 2 << 20)).errno == .ENOENT)
        #expect(c.unmapDMA(unmap(0x40_0000, 2 << 20)).errno == .ENOENT)
        #expect(c.mappingCount == 1)
        #expect(c._checkInvariants() == nil)
    }

    @Test("an unmap is not atomic: areas below the one that sticks out are already gone (iopt_unmap_iova_range)")
    func notAtomic() {
        var c = makeCompat()
        #expect(c.mapDMA(map(0x20_0000, 2 << 20)).errno == nil)
        #expect(c.mapDMA(map(0x40_0000, 2 << 20, vaddr: 0x7F00_0020_0000)).errno == nil)
        #expect(c.mapDMA(map(0x60_0000, 4 << 20, vaddr: 0x7F00_0040_0000)).errno == nil)
        #expect(c.unmapDMA(unmap(0x20_0000, 6 << 20)).errno == .ENOENT)
        #expect(c.lastUnmapRemoved == 4 << 20)
        #expect(c.mappingCount == 1)
        #expect(c.areas.first?.iova == 0x60_0000)
        #expect(c._checkInvariants() == nil)
    }

    @Test("an unmap over a range with no area answers 0 with size 0 on 6.12 and later (the November 2025 fix)", arguments: [KernelVersion(6, 12), KernelVersion(6, 18), KernelVersion(7, 3)])
    func emptyRange(_ v: KernelVersion) {
        var c = makeCompat(v)
        #expect(c.profile.iommufdUnmapsEmptyRange)
        if case .success(let size) = c.unmapDMA(unmap(0x100_0000, 2 << 20)) { #expect(size == 0) } else { Issue.record("expected success") }
    }

    @Test("size 0 is EINVAL and a wrapping end EOVERFLOW, on every kernel with iommufd (iopt_unmap_iova)", arguments: [KernelVersion(6, 12), KernelVersion(7, 3)])
    func sizeZeroAndWrap(_ v: KernelVersion) {
        var c = makeCompat(v)
        #expect(c.mapDMA(map(0x20_0000, 2 << 20)).errno == nil)
        #expect(c.unmapDMA(unmap(0x20_0000, 0)).errno == .EINVAL)
        #expect(c.unmapDMA(unmap(0xFFFF_FFFF_FFE0_0000, 4 << 20)).errno == .EOVERFLOW)
        #expect(c.mappingCount == 1)
    }

    @Test("a range ending exactly at 2^64-1 does not wrap: it is searched, not refused (iopt_unmap_iova)")
    func rangeToTop() {
        var c = makeCompat()
        if case .success(let size) = c.unmapDMA(unmap(0xFFFF_FFFF_FFE0_0000, 2 << 20)) { #expect(size == 0) } else { Issue.record("expected success") }
    }

    @Test("UNMAP takes only the ALL flag: VADDR and GET_DIRTY_BITMAP are EINVAL; ALL wants iova and size 0 (iommufd_vfio_unmap_dma)")
    func unmapFlags() {
        var c = makeCompat()
        #expect(c.mapDMA(map(0x20_0000, 2 << 20)).errno == nil)
        #expect(c.unmapDMA(unmap(0x20_0000, 2 << 20, flags: .vaddr)).errno == .EINVAL)
        #expect(c.unmapDMA(UnmapDMA(flags: .getDirtyBitmap, iova: 0x20_0000, size: 2 << 20, bitmap: DMABitmap(pgsize: 4096, size: 64))).errno == .EINVAL)
        #expect(c.unmapDMA(unmap(0x20_0000, 0, flags: .all)).errno == .EINVAL)
        if case .success(let size) = c.unmapDMA(unmap(0, 0, flags: .all)) { #expect(size == 2 << 20) } else { Issue.record("expected success") }
        if case .success(let size) = c.unmapDMA(unmap(0, 0, flags: .all)) { #expect(size == 0) } else { Issue.record("unmap-all of nothing is success (iopt_unmap_all)") }
    }

    @Test("v2 checks no alignment on unmap: unaligned ends that cover whole areas remove them (iopt_unmap_iova)")
    func unalignedCover() {
        var c = makeCompat()
        #expect(c.mapDMA(map(0x20_0000, 2 << 20)).errno == nil)
        if case .success(let size) = c.unmapDMA(unmap(0x1F_F800, 0x20_0801)) { #expect(size == 2 << 20) } else { Issue.record("expected success") }
    }

    // MARK: v1: iommufd_vfio_set_iommu, iopt_disable_large_pages, iopt_cut_iova

    @Test("v1 turns large pages off: a 2M-page mapping is 4K entries (batch_iommu_map_small)")
    func v1SmallPages() {
        var c = makeCompat(type: .type1)
        #expect(c.disableLargePages)
        #expect(c.mapDMA(map(0x20_0000, 4 << 20)).errno == nil)
        #expect(c.pageTableEntries(group: nil) == [4096: 1024])
        var v2 = makeCompat()
        #expect(v2.mapDMA(map(0x20_0000, 4 << 20)).errno == nil)
        #expect(v2.pageTableEntries(group: nil) == [2 << 20: 2])
    }

    @Test("v1 cuts exactly at the request: a hole in the middle removes just it and leaves two areas (iopt_cut_iova, iopt_area_split)")
    func v1ExactCut() {
        var c = makeCompat(type: .type1)
        #expect(c.mapDMA(map(0x20_0000, 4 << 20)).errno == nil)
        let locked = c.userLockedPages
        if case .success(let size) = c.unmapDMA(unmap(0x30_0000, 1 << 20)) { #expect(size == 1 << 20) } else { Issue.record("expected success") }
        #expect(c.mappingCount == 2)
        #expect(c.pageTableEntries(group: nil) == [4096: 768])
        #expect(c.userLockedPages == locked - 256)
        #expect(c._checkInvariants() == nil)
    }

    @Test("v1: a cut off the IOAS alignment is EINVAL and removes nothing (iopt_area_split)")
    func v1MisalignedCut() {
        var c = makeCompat(type: .type1)
        #expect(c.mapDMA(map(0x20_0000, 4 << 20)).errno == nil)
        #expect(c.unmapDMA(unmap(0x40_1000, 2048)).errno == .EINVAL)
        #expect(c.mappingCount == 1)
    }

    @Test("large pages cannot be turned off once a domain holds an area: SET_IOMMU(type1) is EINVAL (iopt_disable_large_pages)")
    func v1AfterMaps() {
        var c = IOMMUFDContainer(profile: .newest)
        _ = c.memory.add(Spec(vaddr: 0x7F00_0000_0000, size: 4 << 20, pageSize: 4096, layout: .contiguous(base: 1 << 32)))
        _ = c.groupSetContainer(.default)
        #expect(c.mapDMA(map(0x20_0000, 2 << 20)).errno == nil)
        #expect(c.setIOMMU(.type1).errno == .EINVAL)
        #expect(c.setIOMMU(.type1v2).errno == nil)
        #expect(c.setIOMMU(.type1v2).errno == nil, "a second SET_IOMMU is accepted (type1 refuses it)")
    }

    @Test("SET_IOMMU takes only the two type1 types (EINVAL, type1: ENODEV) and needs a compat IOAS (ENODEV) (iommufd_vfio_set_iommu)")
    func setIOMMUTypes() {
        var c = IOMMUFDContainer(profile: .newest)
        #expect(c.setIOMMU(.type1v2).errno == .ENODEV)
        _ = c.groupSetContainer(.default)
        #expect(c.setIOMMU(.nesting).errno == .EINVAL)
        #expect(c.setIOMMU(.spaprTCE).errno == .EINVAL)
    }

    // MARK: iommufd_vfio_map_dma, iopt_map_user_pages

    @Test("MAP's checks in iommufd's order: size 0 EINVAL, vaddr wrap EOVERFLOW, size alignment, iova wrap EOVERFLOW, reserved EINVAL, overlap EEXIST (iopt_alloc_pages, iopt_check_iova)")
    func mapOrder() {
        var c = makeCompat(KernelVersion(6, 12))
        #expect(c.mapDMA(map(0x20_0000, 0)).errno == .EINVAL)
        #expect(c.mapDMA(map(0x20_0000, 2 << 20, vaddr: 0xFFFF_FFFF_FFF0_0000)).errno == .EOVERFLOW)
        #expect(c.mapDMA(map(0xFFFF_FFFF_FFF0_0000, 0x1800)).errno == .EINVAL, "size off the alignment comes before the iova checks")
        #expect(c.mapDMA(map(0xFFFF_FFFF_FFF0_0000, 2 << 20)).errno == .EOVERFLOW)
        #expect(c.mapDMA(map(0xFEE0_0000, 2 << 20)).errno == .EINVAL)
        #expect(c.mapDMA(map(0x20_0000, 2 << 20)).errno == nil)
        #expect(c.mapDMA(map(0x30_0000, 2 << 20, vaddr: 0x7F00_0020_0000)).errno == .EEXIST)
        #expect(c.mapDMA(map(0x60_0000, 2 << 20, vaddr: 0x7F00_0020_0800)).errno == .EINVAL, "vaddr off the alignment (iopt_insert_area)")
        #expect(c.mappingCount == 1)
    }

    @Test("MAP takes only READ and WRITE (iommufd_vfio_map_dma); neither is refused by a domain's iommu_map, accepted with no domain (iopt_map_user_pages)")
    func mapFlags() {
        var c = makeCompat()
        #expect(c.mapDMA(map(0x20_0000, 2 << 20, flags: [.read, .write, .vaddr])).errno == .EINVAL)
        #expect(c.mapDMA(MapDMA(argsz: 16, flags: [.read], vaddr: 0x7F00_0000_0000, iova: 0x20_0000, size: 2 << 20)).errno == .EINVAL)
        #expect(c.mapDMA(map(0x20_0000, 2 << 20, flags: [])).errno == .EINVAL, "the domain refuses a mapping with no access")
        #expect(c.mappingCount == 0)
        #expect(c.pinnedVm == 0, "the pages pinned before the domain refused are given back")
        var bare = makeCompat()
        #expect(bare.groupUnsetContainer(DomainSpec.default.name).errno == nil)
        #expect(bare.mapDMA(map(0x20_0000, 2 << 20, flags: [])).errno == nil, "no domain: nothing maps, nothing refuses")
    }

    // MARK: The walk of a map: iopt_area_fill_domains, pfn_reader, pfn_reader_update_pinned

    /// iommufd's compat IOAS with the default group and 4K memory laid out
    /// by `layout` at 0x7f0000000000.
    func walkCompat(size: UInt64, layout: PhysicalLayout, memlock: UInt64?) -> IOMMUFDContainer {
        var c = IOMMUFDContainer(profile: KernelProfile(KernelVersion(6, 12)))
        _ = c.memory.add(Spec(vaddr: 0x7F00_0000_0000, size: size, pageSize: 4096, layout: layout))
        _ = c.groupSetContainer(.default)
        _ = c.setIOMMU(.type1v2)
        c.memlock = memlock
        return c
    }

    @Test("pages are pinned before they are charged: a range running past the memory is EFAULT even with the limit full, and nothing stays charged (pfn_reader_user_pin, pfn_reader_update_pinned)")
    func unbackedBeforeMemlock() {
        var c = walkCompat(size: 4096, layout: .scattered(seed: 1), memlock: 4096)
        #expect(c.mapDMA(map(0x10_0000, 4096)).errno == nil)
        #expect(c.mapDMA(map(0x20_0000, 16 << 10)).errno == .EFAULT)
        #expect(c.userLockedPages == 1)
        #expect(c.pinnedVm == 1)
        #expect(c.mappingCount == 1)
        #expect(c.mapDMA(map(0x30_0000, 4096)).errno == .ENOMEM)
        #expect(c._checkInvariants() == nil)
    }

    @Test("prot=none is refused by the domain when the first batch is mapped, before the charge: EINVAL, not ENOMEM (batch_to_domain, pfn_reader_update_pinned)")
    func protNoneBeforeMemlock() {
        var c = walkCompat(size: 64 << 10, layout: .scattered(seed: 1), memlock: 4096)
        #expect(c.mapDMA(map(0x10_0000, 64 << 10, flags: [])).errno == .EINVAL)
        #expect(c.mapDMA(map(0x10_0000, 64 << 10)).errno == .ENOMEM)
        #expect(c.userLockedPages == 0)
        #expect(c.pinnedVm == 0)
        #expect(c.mapDMA(map(0x10_0000, 4096)).errno == nil, "nothing was left charged")
    }

    @Test("prot=none over memory that ends early: EFAULT while the first batch holds every run before the hole, EINVAL once it fills first (batch_init, batch_add_pfn, pfn_reader_next)")
    func protNoneBatchOrder() {
        #expect(IOMMUFDContainer.batchCapacity(pages: 5121) == 5121)
        #expect(IOMMUFDContainer.batchCapacity(pages: 8193) == 5461)
        var small = walkCompat(size: 20 << 20, layout: .scattered(seed: 1), memlock: nil)
        #expect(small.mapDMA(map(0x1000_0000, (20 << 20) + 4096, flags: [])).errno == .EFAULT)
        var large = walkCompat(size: 32 << 20, layout: .scattered(seed: 1), memlock: nil)
        #expect(large.mapDMA(map(0x1000_0000, (32 << 20) + 4096, flags: [])).errno == .EINVAL)
        #expect(large.mapDMA(map(0x1000_0000, (32 << 20) + 4096)).errno == .EFAULT)
        // Contiguous memory is one run, one entry: the batch never fills.
        var runs = walkCompat(size: 32 << 20, layout: .contiguous(base: 1 << 32), memlock: nil)
        #expect(runs.mapDMA(map(0x1000_0000, (32 << 20) + 4096, flags: [])).errno == .EFAULT)
        #expect(large.pinnedVm == 0 && small.pinnedVm == 0 && runs.pinnedVm == 0)
    }

    @Test("device memory after pinnable pages is EFAULT with the limit full too (pfn_reader_user_pin)")
    func pfnmapBeforeMemlock() {
        var c = walkCompat(size: 4096, layout: .scattered(seed: 1), memlock: 4096)
        _ = c.memory.add(Spec(vaddr: 0x7F00_0000_1000, size: 16 << 20, pageSize: 4096, layout: .contiguous(base: 0x38_0000_0000), pfnmap: true))
        #expect(c.mapDMA(map(0x10_0000, 4096)).errno == nil)
        #expect(c.mapDMA(map(0x20_0000, 8192)).errno == .EFAULT)
        #expect(c.userLockedPages == 1)
    }

    @Test("there is no dma_entry_limit: with the parameter at 2, four mappings are accepted and DMA_AVAIL reads U32_MAX (iommufd_vfio_map_dma, iommufd_fill_cap_dma_avail)")
    func noEntryLimit() throws {
        let model = ModelBackend(container: .iommufd)
        try model.setDMAEntryLimit(2)
        _ = try model.addMemory(Spec(vaddr: 0x7F00_0000_0000, size: 1 << 20))
        #expect(model.attachGroup(.default).errno == nil)
        #expect(model.setIOMMU(.type1v2).errno == nil)
        for i in 0..<4 as Range<UInt64> {
            #expect(model.mapDMA(map(0x20_0000 + i * 4096, 4096, vaddr: 0x7F00_0000_0000 + i * 4096)).errno == nil)
        }
        #expect(model.mappingCount() == .value(4))
        guard case .success(let info) = model.getInfo(argsz: 256) else { Issue.record("GET_INFO failed"); return }
        #expect(info.dmaAvail == UInt32.max)
        let type1 = ModelBackend()
        try type1.setDMAEntryLimit(2)
        _ = try type1.addMemory(Spec(vaddr: 0x7F00_0000_0000, size: 1 << 20))
        _ = type1.attachGroup(.default)
        _ = type1.setIOMMU(.type1v2)
        let answers = (0..<4 as Range<UInt64>).map { i in type1.mapDMA(map(0x20_0000 + i * 4096, 4096, vaddr: 0x7F00_0000_0000 + i * 4096)).errno }
        #expect(answers == [nil, nil, .ENOSPC, .ENOSPC], "the same plan on type1 meets the limit")
    }

    @Test("a model backend refuses iommufd at a kernel before 6.2, and a kernel before 6.2 once it is iommufd")
    func noIOMMUFDBefore62() throws {
        let old = ModelBackend(profile: KernelProfile(KernelVersion(6, 1)))
        #expect(throws: BackendError.self) { try old.setContainer(.iommufd) }
        let compat = ModelBackend(container: .iommufd)
        #expect(throws: BackendError.self) { try compat.setKernel(KernelVersion(5, 10)) }
        #expect(compat.containerKind == .iommufd)
    }

    @Test("DIRTY_PAGES is not in the compat layer: ENOTTY with every flag (iommufd_vfio_ioctl)")
    func dirtyENOTTY() {
        let model = ModelBackend(container: .iommufd)
        _ = model.attachGroup(.default)
        #expect(model.dirtyPages(DirtyPages(flags: .start)).errno == .ENOTTY)
        #expect(model.dirtyPages(DirtyPages(flags: .stop)).errno == .ENOTTY)
    }

    @Test("device memory (pfnmap) cannot be pinned: EFAULT, nothing kept (pfn_reader_user_pin)")
    func pfnmapEFAULT() {
        var c = makeCompat()
        _ = c.memory.add(Spec(vaddr: 0x7F80_0000_0000, size: 16 << 20, pageSize: 4096, layout: .contiguous(base: 0x38_0000_0000), pfnmap: true))
        #expect(c.mapDMA(map(0x38_0000_0000, 16 << 20, vaddr: 0x7F80_0000_0000)).errno == .EFAULT)
        #expect(c.mappingCount == 0)
        #expect(c.pinnedVm == 0)
    }

    // MARK: Accounting: iopt_pages_update_pinned, incr_user_locked_vm

    @Test("pages are charged to the user's locked_vm against RLIMIT_MEMLOCK (reaching it is allowed, passing it ENOMEM) and VmLck stays 0 (incr_user_locked_vm)")
    func perUserAccounting() {
        var c = makeCompat()
        c.memlock = 4 << 20
        #expect(c.mapDMA(map(0x20_0000, 2 << 20)).errno == nil)
        #expect(c.mapDMA(map(0x40_0000, 4 << 20, vaddr: 0x7F00_0020_0000)).errno == .ENOMEM)
        #expect(c.mapDMA(map(0x40_0000, 2 << 20, vaddr: 0x7F00_0020_0000)).errno == nil)
        #expect(c.userLockedBytes == 4 << 20)
        #expect(c.pinnedVm == 1024)
        #expect(c.lockedBytes == 0)
        #expect(c.unmapDMA(unmap(0x20_0000, 2 << 20)).errno == nil)
        #expect(c.userLockedBytes == 2 << 20)
        #expect(c._checkInvariants() == nil)
    }

    @Test("with CAP_IPC_LOCK nothing is charged (IOPT_PAGES_ACCOUNT_NONE), the pages still count in pinned_vm")
    func capIPCLockChargesNothing() {
        var c = makeCompat()
        c.capIPCLock = true
        c.memlock = 0
        #expect(c.mapDMA(map(0x20_0000, 2 << 20)).errno == nil)
        #expect(c.userLockedPages == 0)
        #expect(c.pinnedVm == 512)
    }

    // MARK: Groups: iommufd_device_attach, iopt_table_add_domain, iopt_table_remove_domain

    @Test("a group whose reserved region covers an area does not attach: EADDRINUSE (iopt_reserve_iova)")
    func reservedOverArea() {
        var c = makeCompat()
        #expect(c.mapDMA(map(0x800_0000, 1 << 20)).errno == nil)
        let smmu = DomainSpec(name: "smmu", pgsizes: PageSizes([4096, 64 << 10, 2 << 20]), reserved: [IOVARange(start: 0x800_0000, last: 0x80F_FFFF)])
        #expect(c.groupSetContainer(smmu).errno == .EADDRINUSE)
        #expect(c.groups.count == 1)
        #expect(c.hwpts.count == 1)
    }

    @Test("a domain whose smallest page is above PAGE_SIZE is refused: EINVAL (iopt_table_add_domain)")
    func bigMinPage() {
        var c = IOMMUFDContainer(profile: .newest)
        #expect(c.groupSetContainer(DomainSpec(name: "d0", pgsizes: PageSizes([64 << 10, 2 << 20]))).errno == .EINVAL)
        #expect(c.ioasExists, "SET_CONTAINER made the IOAS before the device failed to attach")
    }

    @Test("the last group leaving unpins and uncharges every area but keeps it; a group joining again maps it (iopt_table_remove_domain, iopt_fill_domain)")
    func lastGroupKeepsAreas() {
        var c = makeCompat()
        #expect(c.mapDMA(map(0x20_0000, 4 << 20)).errno == nil)
        #expect(c.groupUnsetContainer("d0").errno == nil)
        #expect(c.mappingCount == 1)
        #expect(c.userLockedPages == 0)
        #expect(c.pageTableEntries(group: nil) == [:])
        #expect(c.groupSetContainer(.default).errno == nil)
        #expect(c.pageTableEntries(group: nil) == [2 << 20: 2])
        #expect(c.userLockedPages == 1024)
        #expect(c._checkInvariants() == nil)
    }

    // MARK: iommufd_vfio_check_extension, iommufd_vfio_iommu_get_info

    @Test("CHECK_EXTENSION: type1, type1v2, unmap-all 1; nesting and update-vaddr 0; dma-cc ENODEV before any group (iommufd_vfio_check_extension)")
    func extensions() {
        let none = IOMMUFDContainer(profile: KernelProfile(KernelVersion(6, 12)))
        #expect(none.checkExtension(.dmaCC).errno == .ENODEV)
        let c = makeCompat(KernelVersion(6, 12))
        for (ext, want) in [(Extension.type1, 1), (.type1v2, 1), (.unmapAll, 1), (.dmaCC, 1), (.nesting, 0), (.updateVaddr, 0), (.spaprTCE, 0)] as [(Extension, UInt32)] {
            if case .success(let v) = c.checkExtension(ext) { #expect(v == want, "\(ext)") } else { Issue.record("\(ext) failed") }
        }
    }

    @Test("GET_INFO: DMA_AVAIL first then IOVA_RANGE, each rounded up to 8 bytes, 88 with two ranges; argsz below 16 EINVAL (iommufd_vfio_iommu_get_info)")
    func info() {
        let c = makeCompat(KernelVersion(6, 12))
        #expect(c.getInfo(argsz: 15).errno == .EINVAL)
        guard case .success(let probe) = c.getInfo(argsz: 16) else { Issue.record("probe failed"); return }
        #expect(probe.argsz == 88)
        #expect(probe.capOffset == 0)
        guard case .success(let info) = c.getInfo(argsz: 88) else { Issue.record("GET_INFO failed"); return }
        #expect(info.capOffset == 24)
        #expect(info.capabilities.map(\.offset) == [24, 40])
        #expect(info.iovaRanges == [IOVARange(start: 0, last: 0xFEDF_FFFF), IOVARange(start: 0xFEF0_0000, last: 0xFFFF_FFFF_FFFF)])
        #expect(info.iovaPgsizes == DomainSpec.defaultPgsizes.rawValue)
    }

    // Kills iommufd-info-padded (scripts/mutate/mutations.txt).
    @Test("GET_INFO writes DMA_AVAIL (12 bytes: id 3, version 1, next 0, avail U32_MAX) once 12 bytes of the buffer follow the header: argsz 36 holds it, 35 does not; the 8-byte rounding is only where the next capability starts (iommufd_fill_cap_dma_avail)")
    func dmaAvailWrittenInTwelveBytes() {
        let c = makeCompat(KernelVersion(6, 12))
        let dmaAvail: [UInt8] = [3, 0, 1, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]
        guard case .success(let fits) = c.getInfo(argsz: 36) else { Issue.record("GET_INFO 36 failed"); return }
        #expect(fits.argsz == 88)
        #expect(fits.capOffset == 0, "the whole chain does not fit")
        #expect(Array(fits.bytes[24..<36]) == dmaAvail)
        guard case .success(let short) = c.getInfo(argsz: 35) else { Issue.record("GET_INFO 35 failed"); return }
        #expect(short.bytes.count == 35)
        #expect(short.bytes[24...].allSatisfy { $0 == 0 }, "11 bytes of room: nothing of the capability is written")
    }

    // MARK: Hostile requests

    @Test("requests at the u64 corners get an answer, never a trap, and leave the invariants intact", arguments: [Extension.type1, .type1v2])
    func hostileCorners(_ type: Extension) {
        var c = makeCompat(type: type)
        let top = UInt64.max
        let requests: [MapDMA] = [
            map(top - 0xFFF, 0x1000), map(top - 0xFFF, 0x2000), map(0, top), map(0, top - 0xFFF), map(0x1000, 0x1000, vaddr: top - 0xFFF),
            map(0xFFFF_FFFF_F000, 0x1000), map(0, 0x1000), map(0x20_0000, 4 << 20),
        ]
        for r in requests { _ = c.mapDMA(r) }
        let unmaps: [UnmapDMA] = [
            unmap(top, 1), unmap(top - 0xFFF, 0x1000), unmap(0, top), unmap(1, top), unmap(top, top), unmap(0x20_0001, 1),
            unmap(0x30_0000, 0), unmap(0x20_0000, 0x1000), unmap(0, 0, flags: .all), unmap(1, 0, flags: .all),
        ]
        for u in unmaps { _ = c.unmapDMA(u) }
        #expect(c._checkInvariants() == nil)
        guard case .success(let info) = c.getInfo(argsz: .max) else { Issue.record("GET_INFO with argsz 2^32-1 failed"); return }
        #expect(info.argsz == 88)
        #expect(info.bytes.count == 88, "the model writes no more than the kernel can")
    }
}

import Testing
import VFIOCore
@testable import VFIOModel

// Rules that scripts/mutate.sh showed no test pinned: each test below kills
// at least one mutation of scripts/mutate/mutations.txt (named in a comment)
// and reads as the rule of docs/TYPE1_RULES.md it checks.

private let page: UInt64 = 4096

@Suite("attach: the order of its checks and its corners (TYPE1_RULES §7.1)")
struct AttachOrderTests {
    // attach-msi-before-aperture
    @Test("attach checks the aperture before MSI isolation: a group whose aperture is too small for an existing mapping and that lacks MSI isolation gets EINVAL")
    func apertureBeforeMSI() {
        var c = makeContainer()
        #expect(c.mapDMA(map(1 << 40, 2 << 20)).errno == nil)
        let small = DomainSpec(name: "d1", aperture: IOVARange(start: 0, last: 0xFFFF_FFFF), msiIsolated: false)
        #expect(c.groupSetContainer(small).errno == .EINVAL)
        // The same group with an aperture that fits gets EPERM: the MSI rule itself.
        #expect(c.groupSetContainer(DomainSpec(name: "d1", msiIsolated: false)).errno == .EPERM)
        #expect(c.groups.count == 1 && c.domains.count == 1 && c.mappingCount == 1)
        #expect(c._checkInvariants() == nil)
    }

    // attach-msi-before-resv-conflict
    @Test("attach checks reserved regions over mappings before MSI isolation: a group reserving a mapped IOVA and lacking MSI isolation gets EINVAL")
    func reservedBeforeMSI() {
        var c = makeContainer()
        #expect(c.mapDMA(map(0x1000_0000, 2 << 20)).errno == nil)
        let g = DomainSpec(name: "d1", reserved: [IOVARange(start: 0x1010_0000, last: 0x101F_FFFF)], msiIsolated: false)
        #expect(c.groupSetContainer(g).errno == .EINVAL)
        #expect(c.groups.count == 1 && c.domains.count == 1)
    }

    // attach-msi-before-empty-list
    @Test("attach checks for usable IOVA before MSI isolation: a group whose aperture is all reserved and that lacks MSI isolation gets EINVAL from SET_IOMMU")
    func noUsableIOVABeforeMSI() {
        var c = Type1Container()
        let g = DomainSpec(name: "d0", aperture: IOVARange(start: page, last: 2 * page - 1),
                           reserved: [IOVARange(start: 0, last: 2 * page - 1)], msiIsolated: false)
        #expect(c.groupSetContainer(g).errno == nil)
        #expect(c.setIOMMU(.type1v2).errno == .EINVAL)
        #expect(!c.isSet)
    }

    // attach-ebusy-after-emulated
    @Test("attach is EBUSY while a vaddr is invalidated, for an emulated (mdev) group too")
    func ebusyForEmulatedToo() {
        var c = makeContainer()
        #expect(c.mapDMA(map(0x1000_0000, 2 << 20)).errno == nil)
        #expect(c.unmapDMA(UnmapDMA(flags: .vaddr, iova: 0x1000_0000, size: 2 << 20)) == .success(2 << 20))
        #expect(c.groupSetContainer(DomainSpec(name: "m0", emulated: true)).errno == .EBUSY)
        #expect(c.emulatedGroups.isEmpty && c.groups.count == 1)
        #expect(c.checkExtension(.updateVaddr) == .success(1))
        // Once the vaddr is given back, the same group attaches.
        #expect(c.mapDMA(map(0x1000_0000, 2 << 20, flags: .vaddr)).errno == nil)
        #expect(c.groupSetContainer(DomainSpec(name: "m0", emulated: true)).errno == nil)
        #expect(c.emulatedGroups == ["m0"])
    }

    // aper-conflict-no-lower
    @Test("attach refuses an aperture that starts above an existing mapping: EINVAL; one that starts at the mapping is fine")
    func apertureStartAboveMapping() {
        var c = makeContainer()
        #expect(c.mapDMA(map(0x1000_0000, 2 << 20)).errno == nil)
        let above = DomainSpec(name: "d1", aperture: IOVARange(start: 0x1020_0000, last: 0xFFFF_FFFF_FFFF), coherent: false)
        #expect(c.groupSetContainer(above).errno == .EINVAL)
        let at = DomainSpec(name: "d1", aperture: IOVARange(start: 0x1000_0000, last: 0xFFFF_FFFF_FFFF), coherent: false)
        #expect(c.groupSetContainer(at).errno == nil)
        #expect(c.domains.count == 2)
        #expect(c.iovaList.first?.start == 0x1000_0000)
        #expect(c._checkInvariants() == nil)
    }

    // aper-resize-clips-touching-start
    @Test("attach drops, not clips, a valid range whose last byte is the new aperture's first: nothing usable is left, EINVAL")
    func rangeTouchingApertureStartIsDropped() {
        var c = Type1Container()
        #expect(c.groupSetContainer(DomainSpec(name: "d0", aperture: IOVARange(start: 0, last: 0x10_0000), reserved: [])).errno == nil)
        #expect(c.setIOMMU(.type1v2).errno == nil)
        #expect(c.iovaList == [IOVARange(start: 0, last: 0x10_0000)])
        let d1 = DomainSpec(name: "d1", aperture: IOVARange(start: 0x10_0000, last: 0xFFFF_FFFF), reserved: [])
        #expect(c.groupSetContainer(d1).errno == .EINVAL)
        #expect(c.iovaList == [IOVARange(start: 0, last: 0x10_0000)])
    }

    // aper-resize-clips-touching-end
    @Test("attach drops, not clips, a valid range whose first byte is the new aperture's last: nothing usable is left, EINVAL")
    func rangeTouchingApertureEndIsDropped() {
        var c = Type1Container()
        let d0 = DomainSpec(name: "d0", aperture: IOVARange(start: 0x10_0000, last: 0x20_0000), reserved: [])
        #expect(c.groupSetContainer(d0).errno == nil)
        #expect(c.setIOMMU(.type1v2).errno == nil)
        let d1 = DomainSpec(name: "d1", aperture: IOVARange(start: 0, last: 0x10_0000), reserved: [])
        #expect(c.groupSetContainer(d1).errno == .EINVAL)
        #expect(c.iovaList == [IOVARange(start: 0x10_0000, last: 0x20_0000)])
    }
}

@Suite("attach and SET_IOMMU: state after success and failure (TYPE1_RULES §1.3, §7.1)")
struct AttachStateTests {
    @Test("a failed SET_IOMMU is explained by its cause: no group, an IOMMU already set, no valid IOVA left after the attach, MSIs not isolated")
    func setIOMMUFailuresExplained() {
        let empty = ModelBackend()
        #expect(empty.setIOMMU(.type1v2).errno == .EINVAL)
        #expect(empty.explainLastAnswer()?.hasPrefix("no group in the container") == true)

        let set = ModelBackend()
        _ = set.attachGroup(.default)
        #expect(set.setIOMMU(.type1v2).errno == nil)
        #expect(set.setIOMMU(.type1v2).errno == .EINVAL)
        #expect(set.explainLastAnswer()?.hasPrefix("an IOMMU is already set") == true)

        let covered = ModelBackend()
        _ = covered.attachGroup(DomainSpec(name: "d0", reserved: [IOVARange(start: 0, last: .max)]))
        #expect(covered.setIOMMU(.type1v2).errno == .EINVAL)
        #expect(covered.explainLastAnswer()?.hasPrefix("attaching the groups left no valid IOVA range") == true)

        let unisolated = ModelBackend()
        _ = unisolated.attachGroup(DomainSpec(name: "d0", msiIsolated: false))
        #expect(unisolated.setIOMMU(.type1v2).errno == .EPERM)
        #expect(unisolated.explainLastAnswer()?.contains("does not isolate MSI") == true)
    }

    // reuse-domain-keeps-old-iova-list
    @Test("a group that joins an existing domain still cuts its own reserved regions out of the valid IOVA ranges")
    func reusedDomainCutsReservedRegions() {
        var c = makeContainer()
        let swMSI = IOVARange(start: 0x800_0000, last: 0x80F_FFFF)
        let g = DomainSpec(name: "d1", reserved: DomainSpec.defaultReserved + [swMSI])
        #expect(c.groupSetContainer(g).errno == nil)
        #expect(c.domains.count == 1 && c.domains[0].groups == ["d0", "d1"])
        #expect(c.iovaList == [IOVARange(start: 0, last: 0x7FF_FFFF), IOVARange(start: 0x810_0000, last: 0xFEDF_FFFF),
                               IOVARange(start: 0xFEF0_0000, last: 0xFFFF_FFFF_FFFF)])
        #expect(c.mapDMA(map(0x800_0000, 2 << 20)).errno == .EINVAL)
        #expect(c.mapDMA(map(0x820_0000, 2 << 20)).errno == nil)
    }

    // replay-failure-keeps-charge
    @Test("an attach whose replay runs out of locked memory part-way fails with ENOMEM and uncharges the mappings it had already pinned")
    func failedReplayUncharges() {
        var c = Type1Container()
        c.memlock = 3 << 20
        _ = c.memory.add(Spec(vaddr: 0x7F00_0000_0000, size: 64 << 20, pageSize: 2 << 20, layout: .contiguous(base: 1 << 32)))
        #expect(c.groupSetContainer(DomainSpec(name: "m0", emulated: true)).errno == nil)
        #expect(c.setIOMMU(.type1v2).errno == nil)
        // With only an emulated group nothing is pinned or charged at MAP time.
        #expect(c.mapDMA(map(0x1000_0000, 2 << 20)).errno == nil)
        #expect(c.mapDMA(map(0x2000_0000, 2 << 20, vaddr: 0x7F00_0020_0000)).errno == nil)
        #expect(c.lockedBytes == 0)
        // The replay pins the first (2M) and fails on the second (4M > 3M).
        #expect(c.groupSetContainer(.default).errno == .ENOMEM)
        #expect(c.lockedBytes == 0 && c.domains.isEmpty && c.mappingCount == 2)
        #expect(c._checkInvariants() == nil)
        // With room for both, the same attach succeeds and charges both.
        c.memlock = 4 << 20
        #expect(c.groupSetContainer(.default).errno == nil)
        #expect(c.lockedBytes == 4 << 20)
        #expect(c._checkInvariants() == nil)
    }

    // set-iommu-enodev-before-einval
    @Test("SET_IOMMU checks for groups and an IOMMU already set (EINVAL) before the type (ENODEV)")
    func setIOMMUOrder() {
        var empty = Type1Container()
        #expect(empty.setIOMMU(.dmaCC).errno == .EINVAL)
        #expect(empty.setIOMMU(Extension(rawValue: 99)).errno == .EINVAL)
        var c = makeContainer()
        #expect(c.setIOMMU(Extension(rawValue: 99)).errno == .EINVAL)
        var fresh = Type1Container()
        _ = fresh.groupSetContainer(.default)
        #expect(fresh.setIOMMU(Extension(rawValue: 99)).errno == .ENODEV)
        #expect(fresh.setIOMMU(.dmaCC).errno == .ENODEV)
        #expect(!fresh.isSet)
    }
}

@Suite("MAP: alignment to the container's smallest page (TYPE1_RULES §3.1 step 7)")
struct MapAlignmentTests {
    /// A container whose only domain has 64K as its smallest page; 1 MiB of
    /// memory whose vaddr is 4K- but not 64K-aligned over 64K-aligned frames,
    /// and 1 MiB at 0x7f1000000000 aligned in both.
    func container64K() -> Type1Container {
        var c = Type1Container()
        _ = c.memory.add(Spec(vaddr: 0x7F00_0000_1000, size: 1 << 20, layout: .contiguous(base: 1 << 32)))
        _ = c.memory.add(Spec(vaddr: 0x7F10_0000_0000, size: 1 << 20, layout: .contiguous(base: 1 << 33)))
        _ = c.groupSetContainer(DomainSpec(name: "d0", pgsizes: PageSizes([64 << 10, 2 << 20])))
        _ = c.setIOMMU(.type1v2)
        return c
    }

    // map-align-to-page-not-min-pgsize
    @Test("a vaddr aligned to 4K but not to the smallest IOMMU page (64K) is EINVAL, even when its frames are 64K-aligned")
    func vaddrAlignedToMinPgsize() {
        var c = container64K()
        #expect(c.mapDMA(map(0x10000, 0x10000, vaddr: 0x7F00_0000_1000)).errno == .EINVAL)
        #expect(c.mappingCount == 0 && c.lockedBytes == 0)
    }

    // map-align-to-page-not-min-pgsize
    @Test("alignment to the smallest IOMMU page is checked before overlap: a 4K request inside a 64K mapping is EINVAL, not EEXIST")
    func alignmentBeforeOverlap() {
        var c = container64K()
        #expect(c.mapDMA(map(0x10000, 0x10000, vaddr: 0x7F10_0000_0000)).errno == nil)
        #expect(c.mapDMA(map(0x11000, 0x1000, vaddr: 0x7F10_0002_0000)).errno == .EINVAL)
        #expect(c.mapDMA(map(0x10000, 0x10000, vaddr: 0x7F10_0002_0000)).errno == .EEXIST)
    }
}

@Suite("dirty bitmaps: the INT_MAX-bit limit (TYPE1_RULES §3.1 step 15, §6.2)")
struct DirtyBitmapLimitTests {
    static let intMaxPages = UInt64(Int32.max)

    /// 16 TiB of contiguous memory at 0x100000000000, CAP_IPC_LOCK, the
    /// default domain (4K smallest page, a 48-bit aperture).
    func bigContainer() -> Type1Container {
        var c = Type1Container()
        c.capIPCLock = true
        _ = c.memory.add(Spec(vaddr: 0x1000_0000_0000, size: 1 << 44, layout: .contiguous(base: 0)))
        _ = c.groupSetContainer(.default)
        _ = c.setIOMMU(.type1v2)
        return c
    }

    // map-bitmap-limit-off-by-one
    @Test("while dirty tracking is on, a new mapping of exactly INT_MAX pages gets its bitmap; one page more is EINVAL and leaves nothing charged")
    func mapAtTheBitmapLimit() {
        var c = bigContainer()
        #expect(c.dirtyPages(DirtyPages(flags: .start)).errno == nil)
        #expect(c.mapDMA(map(1 << 40, Self.intMaxPages * page, vaddr: 0x1000_0000_0000)).errno == nil)
        #expect(c.lockedBytes == Self.intMaxPages * page)
        #expect(c.mapDMA(map(1 << 44, (Self.intMaxPages + 1) * page, vaddr: 0x1000_0000_0000)).errno == .EINVAL)
        #expect(c.mappingCount == 1 && c.lockedBytes == Self.intMaxPages * page)
        #expect(c._checkInvariants() == nil)
    }

    // dirty-start-limit-off-by-one
    @Test("dirty START accepts a mapping of exactly INT_MAX pages and refuses one of INT_MAX+1 with EINVAL, leaving tracking off")
    func startAtTheBitmapLimit() {
        var c = bigContainer()
        #expect(c.mapDMA(map(1 << 40, Self.intMaxPages * page, vaddr: 0x1000_0000_0000)).errno == nil)
        #expect(c.dirtyPages(DirtyPages(flags: .start)).errno == nil)
        #expect(c.dirtyPageTracking)
        var d = bigContainer()
        #expect(d.mapDMA(map(1 << 40, (Self.intMaxPages + 1) * page, vaddr: 0x1000_0000_0000)).errno == nil)
        #expect(d.dirtyPages(DirtyPages(flags: .start)).errno == .EINVAL)
        #expect(!d.dirtyPageTracking)
    }
}

@Suite("UNMAP: the order of its checks (TYPE1_RULES §4.1, §4.2)")
struct UnmapOrderTests {
    // unmap-align-before-ebusy
    @Test("a VADDR unmap with an emulated group attached is EBUSY before its iova is checked: a misaligned one is EBUSY too")
    func ebusyBeforeAlignment() {
        var c = makeContainer()
        #expect(c.groupSetContainer(DomainSpec(name: "m0", emulated: true)).errno == nil)
        #expect(c.unmapDMA(UnmapDMA(flags: .vaddr, iova: 0x800, size: page)).errno == .EBUSY)
        #expect(c.unmapDMA(UnmapDMA(flags: .vaddr, iova: 0x1000, size: page)).errno == .EBUSY)
        // Without VADDR the same misaligned unmap is EINVAL.
        #expect(c.unmapDMA(UnmapDMA(flags: [], iova: 0x800, size: page)).errno == .EINVAL)
    }
}

@Suite("dirty bitmaps with UNMAP and GET_BITMAP (TYPE1_RULES §4.1, §6.3)")
struct DirtyBitmapRequestTests {
    /// makeContainer with one 2M mapping at 0x200000 and tracking on.
    func tracking() -> Type1Container {
        var c = makeContainer()
        _ = c.mapDMA(map(0x20_0000, 2 << 20))
        _ = c.dirtyPages(DirtyPages(flags: .start))
        return c
    }

    // unmap-dirty-with-vaddr-allowed
    @Test("an unmap asking for the dirty bitmap together with VADDR is EINVAL and invalidates nothing")
    func dirtyWithVaddrRefused() {
        var c = tracking()
        let bitmap = DMABitmap(pgsize: page, size: 64)
        #expect(c.unmapDMA(UnmapDMA(flags: [.getDirtyBitmap, .vaddr], iova: 0x20_0000, size: 2 << 20, bitmap: bitmap)).errno == .EINVAL)
        #expect(c.unmapDMA(UnmapDMA(flags: [.getDirtyBitmap, .all], iova: 0, size: 0, bitmap: bitmap)).errno == .EINVAL)
        #expect(c.vaddrInvalidCount == 0 && c.mappingCount == 1)
        // The same bitmap without VADDR is fine: the mapping goes.
        #expect(c.unmapDMA(UnmapDMA(flags: .getDirtyBitmap, iova: 0x20_0000, size: 2 << 20, bitmap: bitmap)) == .success(2 << 20))
    }

    // bitmap-size-cap-off-by-one
    @Test("a user bitmap of exactly 2^28 bytes is accepted; 2^28 + 8 is EINVAL (GET_BITMAP and UNMAP)")
    func bitmapSizeCap() {
        var c = tracking()
        func get(_ bytes: UInt64) -> Errno? {
            c.dirtyPages(DirtyPages(flags: .getBitmap, iova: 0x20_0000, size: 2 << 20, bitmap: DMABitmap(pgsize: page, size: bytes))).errno
        }
        #expect(get(1 << 28) == nil)
        #expect(get((1 << 28) + 8) == .EINVAL)
        #expect(c.unmapDMA(UnmapDMA(flags: .getDirtyBitmap, iova: 0x20_0000, size: 2 << 20,
                                    bitmap: DMABitmap(pgsize: page, size: (1 << 28) + 8))).errno == .EINVAL)
        #expect(c.unmapDMA(UnmapDMA(flags: .getDirtyBitmap, iova: 0x20_0000, size: 2 << 20,
                                    bitmap: DMABitmap(pgsize: page, size: 1 << 28))) == .success(2 << 20))
    }
}

@Suite("DIRTY_PAGES on a v1 container (TYPE1_RULES §6.1)")
struct DirtyV1Tests {
    // dirty-eacces-after-flags
    @Test("a v1 container gets EACCES before the request is looked at: a short argsz or an unknown flag is EACCES too")
    func eaccesFirst() {
        var c = makeContainer(v2: false)
        var short = DirtyPages(flags: .start)
        short.argsz = 4
        #expect(c.dirtyPages(short).errno == .EACCES)
        #expect(c.dirtyPages(DirtyPages(flags: DirtyPages.Flags(rawValue: 8))).errno == .EACCES)
        #expect(c.dirtyPages(DirtyPages(flags: [])).errno == .EACCES)
        #expect(c.dirtyPages(DirtyPages(flags: .start)).errno == .EACCES)
        // On v2 the same malformed requests are EINVAL.
        var v2 = makeContainer()
        #expect(v2.dirtyPages(short).errno == .EINVAL)
        #expect(v2.dirtyPages(DirtyPages(flags: DirtyPages.Flags(rawValue: 8))).errno == .EINVAL)
    }
}

@Suite("GET_INFO capabilities (TYPE1_RULES §2)")
struct InfoCapabilityTests {
    // info-migration-every-size
    @Test("the MIGRATION capability's pgsize_bitmap holds only the smallest IOMMU page, while iova_pgsizes holds every size",
          arguments: [(PageSizes([4096, 2 << 20, 1 << 30]), UInt64(4096)), (PageSizes([64 << 10, 2 << 20]), UInt64(64 << 10))])
    func migrationSmallestPageOnly(pgsizes: PageSizes, smallest: UInt64) throws {
        var c = Type1Container()
        _ = c.groupSetContainer(DomainSpec(name: "d0", pgsizes: pgsizes))
        _ = c.setIOMMU(.type1v2)
        let info = try c.getInfo(argsz: 1024).get()
        #expect(info.iovaPgsizes == pgsizes.rawValue)
        let migration = info.capabilities.compactMap { entry -> UInt64? in
            if case .migration(_, let bitmap, _) = entry.capability { return bitmap } else { return nil }
        }
        #expect(migration == [smallest])
    }
}

@Suite("MAP with VADDR: which mapping it updates (TYPE1_RULES §5)")
struct MapVaddrTests {
    // map-vaddr-ignores-iova-mismatch
    @Test("a VADDR map must name the invalidated mapping's iova exactly: the same size at an iova inside it, or below it and overlapping, is EINVAL and leaves the vaddr invalid")
    func vaddrMapIovaMustMatch() {
        var c = makeContainer()
        #expect(c.mapDMA(map(0x1000_0000, 4 << 20)).errno == nil)
        #expect(c.unmapDMA(UnmapDMA(flags: .vaddr, iova: 0x1000_0000, size: 4 << 20)) == .success(4 << 20))
        #expect(c.mapDMA(map(0x1020_0000, 4 << 20, vaddr: 0x7F00_0100_0000, flags: .vaddr)).errno == .EINVAL)
        #expect(c.mapDMA(map(0x0FE0_0000, 4 << 20, vaddr: 0x7F00_0100_0000, flags: .vaddr)).errno == .EINVAL)
        #expect(c.vaddrInvalidCount == 1)
        #expect(c.dmaList.entries.map { $0.value.vaddr } == [0x7F00_0000_0000])
        // The mapping's own iova and size update it.
        #expect(c.mapDMA(map(0x1000_0000, 4 << 20, vaddr: 0x7F00_0100_0000, flags: .vaddr)).errno == nil)
        #expect(c.vaddrInvalidCount == 0)
        #expect(c.dmaList.entries.map { $0.value.vaddr } == [0x7F00_0100_0000])
        #expect(c._checkInvariants() == nil)
    }
}

@Suite("dirty bits: which pages a bitmap reports (TYPE1_RULES §6.4, §7.2)")
struct DirtyBitsTests {
    static func get(_ iova: UInt64, _ size: UInt64) -> DirtyPages {
        DirtyPages(flags: .getBitmap, iova: iova, size: size,
                   bitmap: DMABitmap(pgsize: page, size: DMABitmap.bytesNeeded(pages: size / page)))
    }

    // detach-keeps-non-pinned-count
    // No dirty answer alone can show the mutant: with no IOMMU group left no
    // domain is left either, and detaching the last domain clears every
    // mapping's iommu_mapped, which update_user_bitmap also requires. So the
    // test reads num_non_pinned_groups itself, the kernel's counter the
    // model keeps, as well as the bits it decides.
    @Test("num_non_pinned_groups counts the attached IOMMU groups: down with each one detached, 0 with only an emulated group left (then GET_BITMAP reports no page), up again with a new IOMMU group (every page of its mappings dirty)")
    func nonPinnedGroupsFollowDetach() {
        var c = makeContainer()
        #expect(c.groupSetContainer(DomainSpec(name: "d1")).errno == nil)   // joins d0's domain
        #expect(c.groupSetContainer(DomainSpec(name: "m0", emulated: true)).errno == nil)
        #expect(c.domains.count == 1 && c.numNonPinnedGroups == 2)
        #expect(c.mapDMA(map(0x1000_0000, 2 << 20)).errno == nil)
        #expect(c.dirtyPages(DirtyPages(flags: .start)).errno == nil)
        let all = [IOVARange(start: 0x1000_0000, last: 0x101F_FFFF)]
        #expect(c.dirtyPages(Self.get(0x1000_0000, 2 << 20)).errno == nil)
        #expect(c.lastDirtyBitmap == all)

        #expect(c.groupUnsetContainer("d1").errno == nil)
        #expect(c.numNonPinnedGroups == 1)
        #expect(c.dirtyPages(Self.get(0x1000_0000, 2 << 20)).errno == nil)
        #expect(c.lastDirtyBitmap == all)

        // The last IOMMU group goes; the emulated one keeps the mapping.
        #expect(c.groupUnsetContainer("d0").errno == nil)
        #expect(c.numNonPinnedGroups == 0)
        #expect(c.domains.isEmpty && c.mappingCount == 1)
        #expect(c.dirtyPages(Self.get(0x1000_0000, 2 << 20)).errno == nil)
        #expect(c.lastDirtyBitmap == [])

        // A new IOMMU group: the mapping is replayed into its domain and
        // every page reads dirty again.
        #expect(c.groupSetContainer(DomainSpec(name: "d2")).errno == nil)
        #expect(c.numNonPinnedGroups == 1)
        #expect(c.dirtyPages(Self.get(0x1000_0000, 2 << 20)).errno == nil)
        #expect(c.lastDirtyBitmap == all)
        #expect(c._checkInvariants() == nil)
    }

    // bitmap-range-end-off-by-one
    @Test("since 6.18, a GET_BITMAP or a dirty UNMAP whose range ends at 2^64-1 reports the pages of the mapping ending there",
          arguments: [KernelVersion(6, 18), KernelVersion(7, 3)])
    func bitsUpToTheTop(version: KernelVersion) {
        var c = topContainer(version)
        let top: UInt64 = 0xFFFF_FFFF_FFE0_0000
        #expect(c.mapDMA(rw(0x20_0000, 2 << 20)).errno == nil)
        #expect(c.mapDMA(rw(top, 2 << 20, 0x7F00_0020_0000)).errno == nil)
        #expect(c.dirtyPages(DirtyPages(flags: .start)).errno == nil)
        #expect(c.dirtyPages(Self.get(top, 2 << 20)).errno == nil)
        #expect(c.lastDirtyBitmap == [IOVARange(start: top, last: .max)])
        let unmap = UnmapDMA(flags: .getDirtyBitmap, iova: top, size: 2 << 20,
                             bitmap: DMABitmap(pgsize: page, size: DMABitmap.bytesNeeded(pages: 512)))
        #expect(c.unmapDMA(unmap) == .success(2 << 20))
        #expect(c.lastDirtyBitmap == [IOVARange(start: top, last: .max)])
        #expect(c.mappingCount == 1)
        #expect(c._checkInvariants() == nil)
    }
}

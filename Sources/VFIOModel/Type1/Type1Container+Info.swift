import VFIOCore

extension Type1Container {
    /// The page size of the leaf entry translating `iova` in the domain of
    /// `group` (nil: the only one), `.success(nil)` when none does (also
    /// for an emulated group, which has no domain).
    public func leafSize(iova: UInt64, group: String?) -> Result<UInt64?, LeafLookupError> {
        let domain: Domain
        if let group {
            guard let d = domains.first(where: { $0.groups.contains(group) }) else {
                return groups.contains(where: { $0.name == group }) || emulatedGroups.contains(group) ? .success(nil) : .failure(.noGroup(group))
            }
            domain = d
        } else {
            if domains.isEmpty { return .success(nil) }
            if domains.count > 1 { return .failure(.severalDomains) }
            domain = domains[0]
        }
        return .success(domain.pageTable.leafSize(at: iova))
    }

    /// `VFIO_IOMMU_GET_INFO` (`vfio_iommu_type1_get_info`): the bytes of an
    /// `argsz`-byte user buffer after the call (at most `argsz`, capped at a
    /// size that holds the whole chain).
    public func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno> {
        guard isSet else { return .failure(.EINVAL) }
        if hang != nil { return .failure(.hang) }
        if argsz < IOMMUInfo.minimumArgsz { return .failure(.EINVAL) }
        var caps: [InfoCapability] = [
            // vfio_iommu_migration_build_caps: the smallest page only.
            .migration(flags: 0, pgsizeBitmap: minPgsize, maxDirtyBitmapSize: 1 << 28),
            // vfio_iommu_dma_avail_build_caps
            .dmaAvail(dmaAvail),
        ]
        // vfio_iommu_iova_build_caps: absent while the list is empty.
        if !iovaList.isEmpty { caps.append(.iovaRange(iovaList)) }
        let chain = InfoCapability.chain(caps, pad8: profile.padsCapabilities)
        let needed = IOMMUInfo.headerSize + UInt32(chain.count)

        var outArgsz = argsz
        var capOffset: UInt32 = 0
        var tail: [UInt8] = []
        if argsz < needed {
            outArgsz = needed
        } else {
            capOffset = IOMMUInfo.headerSize
            tail = chain
        }
        var bytes: [UInt8] = []
        func put32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8((v >> (8 * UInt32(i))) & 0xff)) } }
        put32(outArgsz)
        put32(IOMMUInfo.flagPgsizes | IOMMUInfo.flagCaps)
        put32(UInt32(pgsizeBitmap & 0xffff_ffff)); put32(UInt32(pgsizeBitmap >> 32))
        put32(capOffset); put32(0)
        // Only part of the fixed header is copied back; the chain, when it
        // fit, sits at byte 24 whatever was copied before it.
        bytes = Array(bytes.prefix(profile.infoWriteBack(argsz: argsz)))
        if !tail.isEmpty { while bytes.count < Int(IOMMUInfo.headerSize) { bytes.append(0) } }
        bytes += tail
        return .success(IOMMUInfo(bytes: bytes))
    }

    /// `VFIO_IOMMU_DIRTY_PAGES` (`vfio_iommu_type1_dirty_pages`) START and
    /// STOP; GET_BITMAP's checks.
    public mutating func dirtyPages(_ request: DirtyPages) -> Result<Void, Errno> {
        lastDirtyBitmap = nil
        guard isSet else { return .failure(.EINVAL) }
        if hang != nil { return .failure(.hang) }
        if v2 != true { return .failure(.EACCES) }
        let flags = request.flags
        if request.argsz < 8 || flags.rawValue & ~UInt32(7) != 0 { return .failure(.EINVAL) }
        if flags.rawValue.nonzeroBitCount != 1 { return .failure(.EINVAL) }
        if flags.contains(.start) {
            if dirtyPageTracking { return .success(()) }
            // vfio_dma_bitmap_alloc_all: one bit per smallest page.
            let pgsize = minPgsize
            var tooBig = false
            dmaList.forEach { _, dma in
                if dma.size / pgsize > UInt64(Int32.max) { tooBig = true; return false }
                return true
            }
            if tooBig { return .failure(.EINVAL) }
            for (_, slot, _) in dmaList.slottedEntries { dmaList.update(slot) { $0.flags.insert(.hasBitmap) } }
            dirtyPageTracking = true
            return .success(())
        }
        if flags.contains(.stop) {
            if dirtyPageTracking {
                dirtyPageTracking = false
                for (_, slot, _) in dmaList.slottedEntries { dmaList.update(slot) { $0.flags.remove(.hasBitmap) } }
            }
            return .success(())
        }
        // GET_BITMAP
        if request.argsz < 8 + 40 { return .failure(.EINVAL) }
        guard let bitmap = request.bitmap, request.size != 0 else { return .failure(.EINVAL) }
        guard let range = IOVARange(start: request.iova, size: request.size) else { return .failure(profile.overflowErrno) }
        // Before 6.18 the test was `iova + size < iova`, which also refused
        // a range ending exactly at 2^64-1.
        if !profile.inclusiveEndSearch && range.last == .max { return .failure(.EINVAL) }
        guard bitmap.pgsize != 0 else { return .failure(.EINVAL) }
        if let e = Self.verifyBitmapSize(pages: request.size >> UInt64(bitmap.pgsize.trailingZeroBitCount), bytes: bitmap.size) {
            return .failure(e)
        }
        let pgsize = minPgsize
        if bitmap.pgsize != pgsize || request.iova & (pgsize - 1) != 0 || request.size & (pgsize - 1) != 0 {
            return .failure(.EINVAL)
        }
        if !dirtyPageTracking { return .failure(.EINVAL) }
        // vfio_iova_dirty_bitmap: `vfio_find_dma(iova, 1)`, then the last
        // byte (`(iova + size - 1, 0)` before 6.18, `(end, 1)` since).
        if let slot = vfioFindDMA(start: range.start, size: 1), dmaList.key(slot) != range.start {
            return .failure(.EINVAL)
        }
        if let slot = vfioFindDMA(start: range.last, size: profile.inclusiveEndSearch ? 1 : 0),
           dmaList.key(slot) &+ (dmaList.size(slot) - 1) != range.last {
            return .failure(.EINVAL)
        }
        lastDirtyBitmap = Self.bitmapRanges(dirtyMappings(in: range), within: range)
        return .success(())
    }
}

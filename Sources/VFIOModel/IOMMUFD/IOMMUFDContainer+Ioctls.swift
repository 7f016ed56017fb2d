import VFIOCore

extension IOMMUFDContainer {
    /// `VFIO_SET_IOMMU` (`iommufd_vfio_set_iommu`): only the two type1
    /// types (anything else EINVAL, where type1 says ENODEV); no group, no
    /// compat IOAS: ENODEV (type1: EINVAL). It may be answered again (type1
    /// refuses a second one). `VFIO_TYPE1_IOMMU` turns large pages off
    /// (`iopt_disable_large_pages`: EINVAL once a domain holds an area).
    public mutating func setIOMMU(_ type: Extension) -> Result<Void, Errno> {
        if type != .type1 && type != .type1v2 { return .failure(.EINVAL) }
        if !ioasExists { return .failure(.ENODEV) }
        if type == .type1 && !disableLargePages {
            if !hwpts.isEmpty && !areas.isEmpty { return .failure(.EINVAL) }
            disableLargePages = true
        }
        iommuSet = true
        return .success(())
    }

    /// `VFIO_CHECK_EXTENSION` (`iommufd_vfio_check_extension`): type1,
    /// type1v2 and unmap-all are 1; dma-cc asks every domain
    /// (`iommufd_vfio_cc_iommu`, ENODEV before any group); nesting and
    /// update-vaddr are 0, as every other.
    public func checkExtension(_ ext: Extension) -> Result<UInt32, Errno> {
        switch ext {
        case .type1, .type1v2, .unmapAll:
            return .success(1)
        case .dmaCC:
            if !ioasExists { return .failure(.ENODEV) }
            return .success(hwpts.allSatisfy { $0.spec.coherent } ? 1 : 0)
        default:
            return .success(0)
        }
    }

    /// `VFIO_IOMMU_GET_INFO` (`iommufd_vfio_iommu_get_info`): argsz below
    /// 16 is EINVAL; the page sizes are every domain's in common with
    /// `PAGE_SIZE` always in (`iommufd_get_pagesizes`); two capabilities,
    /// DMA_AVAIL first, always `U32_MAX` (no `dma_entry_limit`,
    /// `iommufd_fill_cap_dma_avail`), then the IOVA ranges, the holes
    /// between reserved ranges (`iommufd_fill_cap_iova`). Each capability
    /// takes a multiple of 8 bytes (`iommufd_vfio_iommu_get_info` rounds
    /// every size up), so DMA_AVAIL's 12 bytes take 16 and argsz is
    /// 56 + 16n for n ranges (88 with two, seen on 6.12.118). What fits in
    /// the buffer is written even when the whole chain does not.
    public func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno> {
        if argsz < 16 { return .failure(.EINVAL) }
        if !ioasExists { return .failure(.ENODEV) }
        var pgsizes = UInt64.max
        for h in hwpts { pgsizes &= h.spec.pgsizes.rawValue }
        let pageMask = ~(Self.pageSize - 1)
        if pgsizes & ~pageMask != 0 { pgsizes = (pgsizes & pageMask) | Self.pageSize }
        pgsizes = max(pgsizes, iovaAlignment)

        let ranges = iovaRanges
        let dmaCap = InfoCapability.dmaAvail(UInt32.max).encoded
        let iovaCap = InfoCapability.iovaRange(ranges).encoded
        let header = Int(IOMMUInfo.headerSize)
        let dmaSpan = (dmaCap.count + 7) & ~7, iovaSpan = (iovaCap.count + 7) & ~7
        let total = header + dmaSpan + iovaSpan
        // The caller's buffer up to what the kernel can write into it (a
        // 4 GiB argsz allocates nothing more: the rest stays the caller's).
        let size = max(16, min(Int(argsz), total))
        var bytes = [UInt8](repeating: 0, count: size)
        func put32(_ v: UInt32, at: Int) { for i in 0..<4 where at + i < size { bytes[at + i] = UInt8((v >> (8 * UInt32(i))) & 0xff) } }
        let fits = Int(argsz) >= total
        // iommufd_fill_cap_dma_avail: written when it fits after the header.
        let dmaAt = header, iovaAt = header + dmaSpan
        if Int(argsz) > dmaAt && Int(argsz) - dmaAt >= dmaCap.count {
            for (i, b) in dmaCap.enumerated() { bytes[dmaAt + i] = b }
        }
        // The DMA_AVAIL cap's next, once the buffer reaches the IOVA cap.
        if Int(argsz) >= iovaAt { put32(UInt32(iovaAt), at: dmaAt + 4) }
        // iommufd_fill_cap_iova: each range that fits, the header only
        // when the whole capability fits.
        if Int(argsz) > iovaAt {
            let avail = Int(argsz) - iovaAt
            for k in ranges.indices where avail >= 16 + 16 * (k + 1) {
                for j in 0..<16 { bytes[iovaAt + 16 + 16 * k + j] = iovaCap[16 + 16 * k + j] }
            }
            if avail >= iovaCap.count { for j in 0..<16 { bytes[iovaAt + j] = iovaCap[j] } }
        }
        // The fixed part: min(argsz, 24) bytes.
        var fixed = [UInt8]()
        func add32(_ v: UInt32) { for i in 0..<4 { fixed.append(UInt8((v >> (8 * UInt32(i))) & 0xff)) } }
        add32(UInt32(total))
        add32(IOMMUInfo.flagPgsizes | IOMMUInfo.flagCaps)
        add32(UInt32(pgsizes & 0xffff_ffff)); add32(UInt32(pgsizes >> 32))
        add32(fits ? IOMMUInfo.headerSize : 0); add32(0)
        for i in 0..<min(size, header) { bytes[i] = fixed[i] }
        return .success(IOMMUInfo(bytes: bytes))
    }

    /// The holes between reserved ranges, ascending (what the IOVA_RANGE
    /// capability lists).
    public var iovaRanges: [IOVARange] {
        IOVARange.excluding(reserved.map(\.range), from: [.all])
    }
}

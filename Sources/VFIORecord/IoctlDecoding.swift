import VFIOCore

/// The structs of `include/uapi/linux/vfio.h` read back from the bytes the
/// tracer copied out of the process (little-endian, as on every
/// architecture the lane runs). A buffer shorter than a field reads as 0
/// there: the kernel would have read the same short struct as a fault
/// (`copy_from_user`), which the recorded errno shows.
enum IoctlDecoding {
    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 where at + i < b.count { v |= UInt32(b[at + i]) << (8 * UInt32(i)) }
        return v
    }
    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 { UInt64(u32(b, at)) | UInt64(u32(b, at + 4)) << 32 }

    /// `struct vfio_iommu_type1_dma_map`: argsz, flags, vaddr, iova, size.
    static func mapDMA(_ b: [UInt8]) -> MapDMA {
        MapDMA(argsz: u32(b, 0), flags: MapDMA.Flags(rawValue: u32(b, 4)), vaddr: u64(b, 8), iova: u64(b, 16), size: u64(b, 24))
    }

    /// `struct vfio_iommu_type1_dma_unmap`: argsz, flags, iova, size, and
    /// with GET_DIRTY_BITMAP the `struct vfio_bitmap` (pgsize, size, data)
    /// in `data[]`.
    static func unmapDMA(_ b: [UInt8]) -> (UnmapDMA, bitmapData: UInt64?) {
        let flags = UnmapDMA.Flags(rawValue: u32(b, 4))
        var bitmap: DMABitmap? = nil
        var data: UInt64? = nil
        if flags.contains(.getDirtyBitmap) {
            bitmap = DMABitmap(pgsize: u64(b, 24), size: u64(b, 32))
            data = u64(b, 40)
        }
        return (UnmapDMA(argsz: u32(b, 0), flags: flags, iova: u64(b, 8), size: u64(b, 16), bitmap: bitmap), data)
    }

    /// `struct vfio_iommu_type1_dirty_bitmap` (argsz, flags) and, with
    /// GET_BITMAP, `struct vfio_iommu_type1_dirty_bitmap_get` (iova, size,
    /// and its `struct vfio_bitmap`).
    static func dirtyPages(_ b: [UInt8]) -> (DirtyPages, bitmapData: UInt64?) {
        let flags = DirtyPages.Flags(rawValue: u32(b, 4))
        guard flags.contains(.getBitmap) else {
            var d = DirtyPages(flags: flags)
            d.argsz = u32(b, 0)
            return (d, nil)
        }
        var d = DirtyPages(flags: flags, iova: u64(b, 8), size: u64(b, 16), bitmap: DMABitmap(pgsize: u64(b, 24), size: u64(b, 32)))
        d.argsz = u32(b, 0)
        return (d, u64(b, 40))
    }

    /// Bytes the tracer reads at the argument of `request`, given the
    /// `argsz` found in its first four bytes: the struct (capped, so a
    /// hostile argsz cannot make the recorder read gigabytes), or nil for
    /// requests whose argument is a value or a string.
    static func argumentBytes(request: UInt, argsz: UInt32) -> Int? {
        switch request {
        case VFIO.iommuMapDMA: return Int(min(argsz, 32))
        case VFIO.iommuUnmapDMA, VFIO.iommuDirtyPages: return Int(min(argsz, 48))
        case VFIO.iommuGetInfo: return Int(min(argsz, 1 << 16))
        case VFIO.groupGetStatus: return Int(min(argsz, 8))
        case VFIO.groupSetContainer: return 4
        default: return nil
        }
    }

    /// Requests whose argument starts with `argsz`.
    static func hasArgsz(_ request: UInt) -> Bool {
        [VFIO.iommuMapDMA, VFIO.iommuUnmapDMA, VFIO.iommuDirtyPages, VFIO.iommuGetInfo, VFIO.groupGetStatus].contains(request)
    }

    /// Where the kernel wrote a dirty bitmap, and how many bytes of it to read.
    static func bitmapToRead(request: UInt, before: [UInt8]) -> (address: UInt64, bytes: Int)? {
        switch request {
        case VFIO.iommuUnmapDMA:
            let (u, data) = unmapDMA(before)
            guard let data, let b = u.bitmap else { return nil }
            return (data, Int(min(b.size, 1 << 20)))
        case VFIO.iommuDirtyPages:
            let (d, data) = dirtyPages(before)
            guard let data, let b = d.bitmap else { return nil }
            return (data, Int(min(b.size, 1 << 20)))
        default: return nil
        }
    }

    /// The ranges a dirty bitmap marks, one bit per `pgsize` page from `iova`.
    static func dirtyRanges(_ bytes: [UInt8], iova: UInt64, size: UInt64, pgsize: UInt64) -> [IOVARange] {
        guard pgsize > 0, pgsize & (pgsize - 1) == 0 else { return [] }
        let pages = min(size / pgsize, UInt64(bytes.count) * 8)
        var out: [IOVARange] = []
        var start: UInt64? = nil
        for page in 0...pages {
            let set = page < pages && (bytes[Int(page / 8)] >> (page % 8)) & 1 == 1
            if set, start == nil { start = page }
            if !set, let s = start {
                out.append(IOVARange(start: iova &+ s &* pgsize, last: iova &+ page &* pgsize &- 1))
                start = nil
            }
        }
        return out
    }
}

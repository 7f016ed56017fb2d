/// `struct vfio_iommu_type1_info` and its capability chain, as the bytes the
/// kernel writes back and as decoded values.
///
/// Both backends answer `VFIO_IOMMU_GET_INFO` with the raw bytes of the
/// user buffer after the call; one decoder reads them, so the model's answer
/// is compared with the kernel's byte for byte (offsets, padding, `argsz`).
public struct IOMMUInfo: Hashable, Sendable {
    /// `VFIO_IOMMU_INFO_PGSIZES`
    public static let flagPgsizes: UInt32 = 1 << 0
    /// `VFIO_IOMMU_INFO_CAPS`
    public static let flagCaps: UInt32 = 1 << 1
    /// Size of the fixed part: argsz, flags, iova_pgsizes, cap_offset, pad.
    public static let headerSize: UInt32 = 24
    /// The smallest `argsz` the kernel takes: up to the end of
    /// `iova_pgsizes` (`vfio_iommu_type1_get_info`'s minsz).
    public static let minimumArgsz: UInt32 = 16

    public var argsz: UInt32
    public var flags: UInt32
    public var iovaPgsizes: UInt64
    public var capOffset: UInt32
    /// The chain in the order it is linked, with each capability's offset.
    public var capabilities: [(offset: UInt32, capability: InfoCapability)]
    /// The buffer as the caller sees it after the call.
    public var bytes: [UInt8]

    public static func == (a: IOMMUInfo, b: IOMMUInfo) -> Bool { a.bytes == b.bytes }
    public func hash(into h: inout Hasher) { h.combine(bytes) }

    public var dmaAvail: UInt32? {
        for (_, c) in capabilities { if case .dmaAvail(let n) = c { return n } }
        return nil
    }
    public var iovaRanges: [IOVARange]? {
        for (_, c) in capabilities { if case .iovaRange(let r) = c { return r } }
        return nil
    }

    /// Decodes a buffer written by `VFIO_IOMMU_GET_INFO`. Bytes past
    /// `min(argsz, buffer)` and a chain that loops or leaves the buffer end
    /// decoding (the kernel never writes such a chain; the bytes stay
    /// available for comparison).
    public init(bytes: [UInt8]) {
        self.bytes = bytes
        func u32(_ at: Int) -> UInt32 {
            guard at >= 0, at + 4 <= bytes.count else { return 0 }
            return UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        func u16(_ at: Int) -> UInt16 {
            guard at >= 0, at + 2 <= bytes.count else { return 0 }
            return UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
        }
        func u64(_ at: Int) -> UInt64 { UInt64(u32(at)) | UInt64(u32(at + 4)) << 32 }
        argsz = u32(0)
        flags = u32(4)
        iovaPgsizes = u64(8)
        capOffset = u32(16)
        var caps: [(UInt32, InfoCapability)] = []
        var at = Int(capOffset)
        var seen = Set<Int>()
        while at != 0, at + 8 <= bytes.count, !seen.contains(at) {
            seen.insert(at)
            let id = u16(at), version = u16(at + 2), next = u32(at + 4)
            let cap: InfoCapability
            switch id {
            case InfoCapability.idIOVARange:
                let n = Int(u32(at + 8))
                var ranges: [IOVARange] = []
                if n <= (bytes.count - at - 16) / 16 {
                    for i in 0..<n {
                        let s = u64(at + 16 + 16 * i), e = u64(at + 24 + 16 * i)
                        if s <= e { ranges.append(IOVARange(start: s, last: e)) }
                    }
                }
                cap = .iovaRange(ranges)
            case InfoCapability.idMigration:
                cap = .migration(flags: u32(at + 8), pgsizeBitmap: u64(at + 16), maxDirtyBitmapSize: u64(at + 24))
            case InfoCapability.idDMAAvail:
                cap = .dmaAvail(u32(at + 8))
            default:
                cap = .unknown(id: id, version: version)
            }
            caps.append((UInt32(at), cap))
            at = Int(next)
        }
        capabilities = caps
    }
}

/// One capability of the GET_INFO chain.
public enum InfoCapability: Hashable, Sendable {
    /// `VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE`: the usable IOVA ranges.
    case iovaRange([IOVARange])
    /// `VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION`: dirty-tracking limits.
    case migration(flags: UInt32, pgsizeBitmap: UInt64, maxDirtyBitmapSize: UInt64)
    /// `VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL`: mappings left under `dma_entry_limit`.
    case dmaAvail(UInt32)
    case unknown(id: UInt16, version: UInt16)

    public static let idIOVARange: UInt16 = 1
    public static let idMigration: UInt16 = 2
    public static let idDMAAvail: UInt16 = 3

    /// The bytes of this capability with a zero `next`, unpadded.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        func put16(_ v: UInt16) { out += [UInt8(v & 0xff), UInt8(v >> 8)] }
        func put32(_ v: UInt32) { for i in 0..<4 { out.append(UInt8((v >> (8 * UInt32(i))) & 0xff)) } }
        func put64(_ v: UInt64) { put32(UInt32(v & 0xffff_ffff)); put32(UInt32(v >> 32)) }
        switch self {
        case .iovaRange(let ranges):
            put16(InfoCapability.idIOVARange); put16(1); put32(0)
            put32(UInt32(ranges.count)); put32(0)
            for r in ranges { put64(r.start); put64(r.last) }
        case .migration(let flags, let bitmap, let max):
            put16(InfoCapability.idMigration); put16(1); put32(0)
            put32(flags); put32(0); put64(bitmap); put64(max)
        case .dmaAvail(let n):
            put16(InfoCapability.idDMAAvail); put16(1); put32(0)
            put32(n)
        case .unknown(let id, let version):
            put16(id); put16(version); put32(0)
        }
        return out
    }

    /// Lays out a chain as `vfio_info_cap_add` does, then shifts the `next`
    /// offsets by the fixed header (`vfio_info_cap_shift`). With `pad8`,
    /// each capability starts 8-byte aligned (kernels since about 6.6).
    public static func chain(_ caps: [InfoCapability], pad8: Bool) -> [UInt8] {
        var buf: [UInt8] = []
        var lastHeader: Int? = nil
        for cap in caps {
            if pad8 { while buf.count % 8 != 0 { buf.append(0) } }
            let at = buf.count
            if let prev = lastHeader {
                let next = UInt32(at) + IOMMUInfo.headerSize
                for i in 0..<4 { buf[prev + 4 + i] = UInt8((next >> (8 * UInt32(i))) & 0xff) }
            }
            buf += cap.encoded
            lastHeader = at
        }
        if pad8 { while buf.count % 8 != 0 { buf.append(0) } }
        return buf
    }
}

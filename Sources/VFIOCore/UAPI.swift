/// Numbers of `include/uapi/linux/vfio.h` that every layer shares.
public enum VFIO {
    /// `VFIO_TYPE` (`';'`) and `VFIO_BASE` (100): every ioctl is `_IO(';', 100 + n)`.
    public static let type: UInt32 = 0x3B
    public static let base: UInt32 = 100
    /// `_IO(type, nr)`: no size or direction bits for VFIO.
    public static func io(_ nr: UInt32) -> UInt { UInt((type << 8) | (base + nr)) }

    public static let getAPIVersion = io(0)
    public static let checkExtension = io(1)
    public static let setIOMMU = io(2)
    public static let groupGetStatus = io(3)
    public static let groupSetContainer = io(4)
    public static let groupUnsetContainer = io(5)
    public static let groupGetDeviceFD = io(6)
    public static let iommuGetInfo = io(12)
    public static let iommuMapDMA = io(13)
    public static let iommuUnmapDMA = io(14)
    public static let iommuDirtyPages = io(17)

    /// `VFIO_API_VERSION`
    public static let apiVersion: Int32 = 0
}

/// `struct vfio_iommu_type1_dma_map` (32 bytes).
public struct MapDMA: Hashable, Sendable {
    public struct Flags: OptionSet, Hashable, Sendable {
        public var rawValue: UInt32
        @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
        // The flags are inlinable constants, not stored globals: the model
        // tests them on every request, and a global from another module
        // costs a call each time.
        /// `VFIO_DMA_MAP_FLAG_READ`: the device may read.
        @inlinable public static var read: Flags { Flags(rawValue: 1 << 0) }
        /// `VFIO_DMA_MAP_FLAG_WRITE`: the device may write.
        @inlinable public static var write: Flags { Flags(rawValue: 1 << 1) }
        /// `VFIO_DMA_MAP_FLAG_VADDR`: only replace the vaddr of an invalidated mapping.
        @inlinable public static var vaddr: Flags { Flags(rawValue: 1 << 2) }
    }
    public static let structSize: UInt32 = 32

    public var argsz: UInt32
    public var flags: Flags
    public var vaddr: UInt64
    public var iova: UInt64
    public var size: UInt64

    public init(argsz: UInt32 = MapDMA.structSize, flags: Flags, vaddr: UInt64, iova: UInt64, size: UInt64) {
        self.argsz = argsz; self.flags = flags; self.vaddr = vaddr; self.iova = iova; self.size = size
    }
}

/// `struct vfio_bitmap`: where the kernel writes dirty bits.
public struct DMABitmap: Hashable, Sendable {
    public var pgsize: UInt64
    /// Bytes of the user buffer.
    public var size: UInt64
    public init(pgsize: UInt64, size: UInt64) { self.pgsize = pgsize; self.size = size }
    /// Bytes the kernel needs for `pages` bits: whole u64 words.
    public static func bytesNeeded(pages: UInt64) -> UInt64 { (pages / 64 + (pages % 64 == 0 ? 0 : 1)) * 8 }
}

/// `struct vfio_iommu_type1_dma_unmap` (24 bytes, 48 with a `vfio_bitmap`).
public struct UnmapDMA: Hashable, Sendable {
    public struct Flags: OptionSet, Hashable, Sendable {
        public var rawValue: UInt32
        @inlinable public init(rawValue: UInt32) { self.rawValue = rawValue }
        // The flags are inlinable constants, not stored globals: the model
        // tests them on every request, and a global from another module
        // costs a call each time.
        /// `VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP`
        @inlinable public static var getDirtyBitmap: Flags { Flags(rawValue: 1 << 0) }
        /// `VFIO_DMA_UNMAP_FLAG_ALL`
        @inlinable public static var all: Flags { Flags(rawValue: 1 << 1) }
        /// `VFIO_DMA_UNMAP_FLAG_VADDR`
        @inlinable public static var vaddr: Flags { Flags(rawValue: 1 << 2) }
    }
    public static let structSize: UInt32 = 24

    public var argsz: UInt32
    public var flags: Flags
    public var iova: UInt64
    public var size: UInt64
    /// Present with `getDirtyBitmap`.
    public var bitmap: DMABitmap?

    public init(argsz: UInt32? = nil, flags: Flags, iova: UInt64, size: UInt64, bitmap: DMABitmap? = nil) {
        self.argsz = argsz ?? (bitmap == nil ? UnmapDMA.structSize : UnmapDMA.structSize + 24)
        self.flags = flags; self.iova = iova; self.size = size; self.bitmap = bitmap
    }
}

/// `struct vfio_iommu_type1_dirty_bitmap` and its GET_BITMAP payload.
public struct DirtyPages: Hashable, Sendable {
    public struct Flags: OptionSet, Hashable, Sendable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `VFIO_IOMMU_DIRTY_PAGES_FLAG_START`
        public static let start = Flags(rawValue: 1 << 0)
        /// `VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP`
        public static let stop = Flags(rawValue: 1 << 1)
        /// `VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP`
        public static let getBitmap = Flags(rawValue: 1 << 2)
    }
    public var argsz: UInt32
    public var flags: Flags
    /// `struct vfio_iommu_type1_dirty_bitmap_get`, with GET_BITMAP.
    public var iova: UInt64
    public var size: UInt64
    public var bitmap: DMABitmap?

    public init(flags: Flags, iova: UInt64 = 0, size: UInt64 = 0, bitmap: DMABitmap? = nil) {
        self.argsz = flags.contains(.getBitmap) ? 48 : 8
        self.flags = flags; self.iova = iova; self.size = size; self.bitmap = bitmap
    }
}

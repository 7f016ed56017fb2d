import VFIOCore

/// The behaviours of `vfio_iommu_type1` that changed across kernel
/// versions, decided from one `KernelVersion` (TYPE1_SPEC.md §10).
public struct KernelProfile: Hashable, Sendable, CustomStringConvertible {
    public var version: KernelVersion

    /// The newest behaviour modelled: mainline after the v6.19 overflow series.
    public static let newest = KernelProfile(KernelVersion(7, 0))
    /// The versions the model is checked against.
    public static let known: [KernelVersion] = [KernelVersion(6, 1), KernelVersion(6, 12), KernelVersion(7, 0)]

    public init(_ version: KernelVersion) { self.version = version }
    public var description: String { version.description }

    func atLeast(_ major: Int, _ minor: Int) -> Bool { version >= KernelVersion(major, minor) }

    /// `vfio_info_cap_add` pads each capability to 8 bytes (≈6.6). Debian's
    /// 6.1 did not (DMA_AVAIL next=68), 6.12 does (next=72): seen in the lane.
    public var padsCapabilities: Bool { atLeast(6, 6) }

    /// Bytes of the fixed `vfio_iommu_type1_info` part that GET_INFO copies
    /// back: before the padding commit, 16 (argsz < 20) or 20 (up to
    /// `cap_offset`, never the pad); after it, `min(argsz, 24)`.
    public func infoWriteBack(argsz: UInt32) -> Int {
        padsCapabilities ? Int(min(argsz, 24)) : (argsz < 20 ? 16 : 20)
    }

    /// A wrapping `iova + size - 1` or `vaddr + size - 1` gives EOVERFLOW
    /// since the 6.19 overflow series; EINVAL before (seen on 6.1 and 6.12).
    public var overflowErrno: Errno { atLeast(6, 19) ? .EOVERFLOW : .EINVAL }

    /// CHECK_EXTENSION(TYPE1_NESTING) answers 1 until the nesting type was
    /// retired (≈6.13); 6.1 and 6.12 answer 1 (seen in the lane).
    public var nestingExtension: Bool { !atLeast(6, 13) }

    /// Range searches use inclusive ends, so a mapping ending at 2^64-1 can
    /// be found and unmapped (6.19 overflow series).
    public var inclusiveEndSearch: Bool { atLeast(6, 19) }

    /// `vfio_test_domain_fgsp` runs at attach (v3.15–v6.15): changes only
    /// unmap calls, never an answer; kept for reports.
    public var probesFineGrainedSuperpages: Bool { !atLeast(6, 16) }
}

/// An IOMMU a `domain` statement can name instead of typing its masks
/// (`domain d0 iommu=amd`): page sizes, leaves, aperture, reserved
/// regions, coherency and MSI isolation as that IOMMU's driver reports
/// them on a given kernel release.
///
/// intel, intel48, amd and virtio are what the kernel lane measured on
/// QEMU's emulated IOMMUs (GET_INFO on 5.10, 6.1, 6.12, 6.18 and 7.3),
/// placed in time by the drivers' history (`docs/RELEASES.md`); smmuv3 is
/// read from the arm-smmu-v3 driver (4K granule), never booted here. Where
/// a release's values are not known, `domain(for:)` says so in its note.
public enum IOMMUPreset: String, CaseIterable, Sendable, Hashable {
    /// VT-d with a 39-bit address width (QEMU's default before 10.0).
    case intel
    /// VT-d with a 48-bit address width (QEMU `aw-bits=48`, most servers).
    case intel48
    /// AMD-Vi, v1 page table, 4-level (QEMU `amd-iommu`).
    case amd
    /// virtio-iommu (QEMU `virtio-iommu-pci`, 4K granule).
    case virtio
    /// Arm SMMUv3 with a 4K granule and a 48-bit input address size.
    case smmuv3

    /// What the preset fills, and why where it was not measured.
    public struct Values: Hashable, Sendable {
        public var pgsizes: PageSizes
        public var leaves: PageSizes?
        public var aperture: IOVARange
        public var reserved: [IOVARange]
        public var coherent: Bool
        public var msiIsolated: Bool
        /// Set when the values for this release are inferred, not measured
        /// on it nor placed by a known commit.
        public var note: String?
    }

    /// The x86 MSI window every x86 IOMMU reserves.
    static let x86MSI = IOVARange(start: 0xfee0_0000, last: 0xfeef_ffff)
    /// AMD's HyperTransport hole (`HT_RANGE_START` … `HT_RANGE_END` in the
    /// AMD driver), reserved on every release.
    static let hyperTransport = IOVARange(start: 0xfd_0000_0000, last: 0xff_ffff_ffff)
    /// The software MSI window the SMMU drivers reserve
    /// (`MSI_IOVA_BASE`, `MSI_IOVA_LENGTH`: 1 MiB at 128 MiB).
    static let smmuSoftwareMSI = IOVARange(start: 0x800_0000, last: 0x80f_ffff)
    static let vtdLeaves = PageSizes([4096, 2 << 20, 1 << 30])
    static let everyPowerOfTwo = PageSizes(rawValue: 0xffff_ffff_ffff_f000)

    /// The values on `release`.
    public func values(for release: KernelVersion) -> Values {
        let r = release.series
        switch self {
        case .intel, .intel48:
            // 5.15 (a886d5a7e67b "iommu/vt-d: Report real pgsize bitmap to
            // iommu core"): 4K plus the superpages the hardware has; before
            // it every power of two from 4K, the table still built of 4K,
            // 2M and 1G leaves (seen on 5.10 in the lane).
            let real = r >= KernelVersion(5, 15)
            let top: UInt64 = self == .intel ? 0x7f_ffff_ffff : 0xffff_ffff_ffff
            // QEMU's VT-d has no snoop control unless asked (DMA_CC 0).
            return Values(pgsizes: real ? Self.vtdLeaves : Self.everyPowerOfTwo, leaves: real ? nil : Self.vtdLeaves,
                          aperture: IOVARange(start: 0, last: top), reserved: [Self.x86MSI],
                          coherent: false, msiIsolated: true, note: nil)
        case .amd:
            // Page sizes: every power of two but 512G (0xffffff7ffffff000)
            // measured on 5.10 and 6.1; clamped to 52 bits (0xfff7ffffff000)
            // measured on 6.12, most likely by 7a41dcb52f9d "iommu/amd: Set
            // the pgsize_bitmap correctly" (v6.12-rc1: the domain takes the
            // io-pgtable's bitmap), not confirmed on 6.2 to 6.11; 6.19 the
            // generic page table limits them to the 48-bit VA (789a5913b29c,
            // 0x7f7ffffff000, measured on 7.3). Aperture: 2^64-1 until 6.17
            // sets it from the levels the hardware has (025d1371cc8c;
            // 2^48-1 on QEMU).
            var note: String? = nil
            let pgsizes: UInt64
            if r >= KernelVersion(6, 19) { pgsizes = 0x7f7f_ffff_f000 }
            else if r >= KernelVersion(6, 12) { pgsizes = 0xf_ff7f_ffff_f000 }
            else {
                pgsizes = 0xffff_ff7f_ffff_f000
                if r > KernelVersion(6, 1) {
                    note = "iommu=amd on \(release): page sizes of 6.1 (measured) assumed; the clamp to 52 bits measured on 6.12 is placed at 7a41dcb52f9d (v6.12-rc1) from the kernel's history, not measured on 6.2 to 6.11 (inferred)"
                }
            }
            let top: UInt64 = r >= KernelVersion(6, 17) ? 0xffff_ffff_ffff : .max
            return Values(pgsizes: PageSizes(rawValue: pgsizes), leaves: nil, aperture: IOVARange(start: 0, last: top),
                          reserved: [Self.x86MSI, Self.hyperTransport], coherent: true, msiIsolated: true, note: note)
        case .virtio:
            // QEMU's device: every power of two from its 4K granule, a
            // 64-bit input range, the MSI window reserved; no MSI isolation.
            // Not coherent: the driver cannot enforce snooping, so type1's
            // DMA_CC extension answers 0 (measured by `vfio-sim host --probe`
            // in the lane's 6.12, 6.18 and 7.3 guests).
            // x86 guests find it through ACPI VIOT from 5.14.
            let note = r < KernelVersion(5, 14) ? "iommu=virtio on \(release): x86 finds virtio-iommu through ACPI VIOT only from 5.14; the values are the device's, not checked on this release" : nil
            return Values(pgsizes: Self.everyPowerOfTwo, leaves: nil, aperture: IOVARange(start: 0, last: .max),
                          reserved: [Self.x86MSI], coherent: false, msiIsolated: false, note: note)
        case .smmuv3:
            // 4K granule: 4K, 2M and 1G blocks; 48-bit input addresses;
            // the software MSI window; a coherent SMMU; MSIs isolated by a
            // GICv3 ITS. Read from the driver, never booted in the lane.
            return Values(pgsizes: Self.vtdLeaves, leaves: nil, aperture: IOVARange(start: 0, last: 0xffff_ffff_ffff),
                          reserved: [Self.smmuSoftwareMSI], coherent: true, msiIsolated: true,
                          note: "iommu=smmuv3: read from the arm-smmu-v3 driver (4K granule, 48-bit input, ITS MSIs), not booted in the lane")
        }
    }

    /// Every series from 5.10 to the newest known, oldest first.
    public static let knownSeries: [KernelVersion] =
        (10...19).map { KernelVersion(5, $0) } + (0...19).map { KernelVersion(6, $0) }
        + (0...KernelVersion.newestKnown.minor).map { KernelVersion(7, $0) }

    /// `intel, intel48, amd, virtio, smmuv3`, for messages.
    public static var list: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

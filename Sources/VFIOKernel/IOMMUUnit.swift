import VFIOCore

/// The IOMMU hardware unit behind a device, as sysfs shows it, and the
/// `iommu=` preset of a `domain` statement that plays it.
///
/// `vfio-sim host` reads the unit from the device's sysfs `iommu` link
/// instead of asking the kernel with ioctls, so that it needs neither root
/// nor a group nobody else holds; `--probe` measures what the preset only
/// assumes.
public struct IOMMUUnit: Sendable, Hashable {
    /// The kinds of IOMMU the trace format has a preset for.
    public enum Kind: Sendable, Hashable {
        /// VT-d: `dmarN` units; the preset depends on the address width.
        case intel
        /// AMD-Vi: `ivhdN` units.
        case amd
        /// virtio-iommu: a unit named after its virtio device.
        case virtio
        /// Arm SMMUv3: `smmu3.0x…` units of an `arm-smmu-v3` platform device.
        case smmuv3
        /// Anything else: no preset.
        case other
    }

    /// The unit's sysfs name, the last component of the link: `dmar0`,
    /// `ivhd0`, `smmu3.0x0000000009050000`.
    public var name: String
    /// The target of the device's `iommu` link, as read.
    public var link: String
    public var kind: Kind
    /// VT-d only: the unit's capability register, nil when it could not be
    /// read.
    public var vtdCapability: VTdCapability?

    public init(name: String, link: String, kind: Kind, vtdCapability: VTdCapability? = nil) {
        self.name = name; self.link = link; self.kind = kind; self.vtdCapability = vtdCapability
    }

    /// The unit a device's `iommu` link points at. The name says the kind
    /// for VT-d, AMD-Vi and SMMUv3 (sysfs names their units so); a
    /// virtio-iommu unit is named after its virtio device, and an SMMUv3 may
    /// be recognised by its platform device in the path.
    public init(link target: String) {
        let leaf = target.split(separator: "/").last.map(String.init) ?? target
        let kind: Kind
        if leaf.hasPrefix("dmar") { kind = .intel }
        else if leaf.hasPrefix("ivhd") { kind = .amd }
        else if leaf.hasPrefix("smmu3.") || target.contains("arm-smmu-v3") { kind = .smmuv3 }
        else if target.contains("virtio") { kind = .virtio }
        else { kind = .other }
        self.init(name: leaf, link: target, kind: kind)
    }

    /// Where a VT-d unit's capability register is: a hex number, as the
    /// kernel's `intel-iommu` attribute group prints it.
    public static func vtdCapabilityPath(_ name: String) -> String { "/sys/class/iommu/\(name)/intel-iommu/cap" }

    /// The `iommu=` preset that plays this unit, and why it is only close
    /// when it is (nil: it is the unit's own width). Nil when no preset
    /// fits (`.other`).
    ///
    /// VT-d has two presets, a 39-bit and a 48-bit address space, because
    /// those are the widths the lane's QEMU gives (`aw-bits=39`, `aw-bits=48`)
    /// and the ones Intel parts ship with; a wider unit (57 bits, five
    /// levels) is played as 48 bits, a narrower one as 39, and the note
    /// says so, since the aperture decides which IOVAs a map accepts.
    public var preset: (name: String, approximation: String?)? {
        switch kind {
        case .amd: return ("amd", nil)
        case .virtio: return ("virtio", nil)
        case .smmuv3: return ("smmuv3", nil)
        case .other: return nil
        case .intel:
            guard let width = vtdCapability?.domainWidth else {
                return ("intel", "address width unknown, 39 bits assumed")
            }
            switch width {
            case 39: return ("intel", nil)
            case 48: return ("intel48", nil)
            case 49...: return ("intel48", "\(width)-bit unit played as 48 bits")
            default: return ("intel", "\(width)-bit unit played as 39 bits")
            }
        }
    }
}

/// A VT-d unit's capability register (`/sys/class/iommu/dmarN/intel-iommu/cap`),
/// read for the guest address width its domains get: that width is the end
/// of the aperture, above which a map fails.
public struct VTdCapability: Sendable, Hashable {
    public var raw: UInt64

    public init(raw: UInt64) { self.raw = raw }

    /// The register from its sysfs text: hex digits, with or without `0x`,
    /// a newline after them. Nil for anything else.
    public init?(text: String) {
        var digits = Substring(text.filter { !$0.isWhitespace })
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
        guard !digits.isEmpty, let raw = UInt64(digits, radix: 16) else { return nil }
        self.raw = raw
    }

    /// MGAW (bits 21:16) plus one: the widest guest address the unit
    /// translates.
    public var maximumGuestAddressWidth: Int { Int((raw >> 16) & 0x3f) + 1 }

    /// SAGAW (bits 12:8) as the address widths of the page-table depths the
    /// unit walks: bit 1 is 39 bits (three levels), bit 2 48 (four), bit 3
    /// 57 (five); each level adds 9 bits to 30.
    public var supportedWidths: [Int] {
        (0..<5).filter { (raw >> (8 + UInt64($0))) & 1 == 1 }.map { 30 + 9 * $0 }
    }

    /// The width a domain on this unit gets: the MGAW, but no wider than
    /// the deepest table SAGAW offers (a table cannot reach beyond its
    /// levels). The MGAW alone when SAGAW is empty.
    public var domainWidth: Int {
        min(maximumGuestAddressWidth, supportedWidths.max() ?? maximumGuestAddressWidth)
    }
}

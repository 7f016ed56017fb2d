import VFIOCore

/// What the IOMMU behind a real group looks like, in the terms of a
/// `domain` statement, so the model can play it.
public enum IOMMUProbe {
    /// The domain GET_INFO describes: `pgsize_bitmap`, an aperture from the
    /// first IOVA range's start to the last one's end, and the holes
    /// between ranges as reserved regions (the kernel reports the valid
    /// ranges, `vfio_iommu_iova_build_caps`, not the reserved ones). Nil
    /// when the answer has no IOVA-range capability.
    public static func domain(named name: String, info: IOMMUInfo, coherent: Bool) -> DomainSpec? {
        guard let ranges = info.iovaRanges, let first = ranges.first, let last = ranges.last else { return nil }
        var spec = DomainSpec(name: name)
        spec.pgsizes = PageSizes(rawValue: info.iovaPgsizes)
        spec.aperture = IOVARange(start: first.start, last: last.last)
        spec.reserved = zip(ranges, ranges.dropFirst()).compactMap { a, b in
            b.start > a.last &+ 1 ? IOVARange(start: a.last + 1, last: b.start - 1) : nil
        }
        spec.coherent = coherent
        return spec
    }

    /// The leaves an IOMMU's page table really has, when its driver
    /// advertises more page sizes than that: VT-d second-level tables hold
    /// 4K, 2M and 1G entries only, yet 5.10's driver reported every power
    /// of two from 4K (`INTEL_IOMMU_PGSIZES`), as the lane's host-side walk
    /// of the tables shows. Nil when the advertised sizes are the leaves.
    public static func leaves(iommu: String, pgsizes: PageSizes) -> PageSizes? {
        guard iommu == "intel-iommu" else { return nil }
        let vtd = PageSizes([4096, 2 << 20, 1 << 30])
        let real = PageSizes(rawValue: pgsizes.rawValue & vtd.rawValue)
        return real == pgsizes || real.rawValue == 0 ? nil : real
    }

    /// The IOMMU's name from the target of a device's sysfs `iommu` link:
    /// `dmar0` (VT-d), `ivhd0` (AMD-Vi), or a virtio device (virtio-iommu).
    public static func name(iommuLink target: String) -> String {
        let leaf = target.split(separator: "/").last.map(String.init) ?? target
        if leaf.hasPrefix("dmar") { return "intel-iommu" }
        if leaf.hasPrefix("ivhd") { return "amd-iommu" }
        if target.contains("virtio") { return "virtio-iommu" }
        return leaf
    }
}

import Testing
import VFIOCore
@testable import VFIOModel

/// `domain NAME iommu=PRESET`: the values each IOMMU's driver reports on a
/// release, as the lane measured them, filled in by the model for the
/// release it answers.
@Suite("IOMMU presets")
struct IOMMUPresetTests {
    static func attached(_ preset: IOMMUPreset, _ release: String, _ edit: (inout DomainSpec) -> Void = { _ in }) -> Type1Container {
        let b = ModelBackend(profile: KernelProfile(KernelVersion(parsing: release)!))
        var spec = DomainSpec(name: "d0")
        spec.preset = preset
        spec.explicit = []
        edit(&spec)
        _ = b.attachGroup(spec)
        _ = b.setIOMMU(.type1v2)
        return b.slots[0].driver as! Type1Container
    }

    @Test("amd: 2^64-1 is mappable up to 6.16, the aperture ends at 2^48-1 from 6.17; page sizes per release",
          arguments: [("5.10", UInt64(0xffff_ff7f_ffff_f000), UInt64.max), ("6.1", 0xffff_ff7f_ffff_f000, .max), ("6.12", 0xf_ff7f_ffff_f000, .max),
                      ("6.16", 0xf_ff7f_ffff_f000, .max), ("6.17", 0xf_ff7f_ffff_f000, 0xffff_ffff_ffff),
                      ("6.18", 0xf_ff7f_ffff_f000, 0xffff_ffff_ffff), ("6.19", 0x7f7f_ffff_f000, 0xffff_ffff_ffff),
                      ("7.3", 0x7f7f_ffff_f000, 0xffff_ffff_ffff)])
    func amd(release: String, pgsizes: UInt64, top: UInt64) {
        let c = Self.attached(.amd, release)
        #expect(c.pgsizeBitmap == pgsizes)
        #expect(c.iovaList.last?.last == top)
        #expect(!c.iovaList.contains { $0.overlaps(IOVARange(start: 0xfd_0000_0000, last: 0xff_ffff_ffff)) }, "the HyperTransport hole is reserved")
    }

    @Test("amd between 6.1 and 6.12 (both measured) is inferred, and says so; 5.11 to 6.1 lie between two equal measurements")
    func amdInferred() {
        var spec = DomainSpec(name: "d0")
        spec.preset = .amd
        spec.explicit = []
        let note = spec.resolved(for: KernelVersion(6, 8)).note
        #expect(note?.contains("not measured on 6.2 to 6.11") == true)
        #expect(IOMMUPreset.amd.values(for: KernelVersion(6, 8)).pgsizes.rawValue == 0xffff_ff7f_ffff_f000)
        for measured in [KernelVersion(5, 10), KernelVersion(5, 15), KernelVersion(6, 1), KernelVersion(6, 12)] {
            #expect(IOMMUPreset.amd.values(for: measured).note == nil)
        }
    }

    @Test("intel reports every power of two before 5.15 (its table has 4K, 2M and 1G leaves), 4K, 2M and 1G from 5.15",
          arguments: [("5.10", false), ("5.14", false), ("5.15", true), ("6.12", true)])
    func intel(release: String, real: Bool) {
        let c = Self.attached(.intel, release)
        #expect(c.pgsizeBitmap == (real ? 0x4020_1000 : 0xffff_ffff_ffff_f000))
        #expect(c.domains.first?.spec.leaves == (real ? nil : PageSizes([4096, 2 << 20, 1 << 30])))
        #expect(c.iovaList.last?.last == 0x7f_ffff_ffff)
        #expect(Self.attached(.intel48, release).iovaList.last?.last == 0xffff_ffff_ffff)
    }

    @Test("virtio reaches 2^64-1 and has no MSI isolation: SET_IOMMU answers EPERM")
    func virtio() {
        let b = ModelBackend(profile: KernelProfile(KernelVersion(6, 12)))
        var spec = DomainSpec(name: "d0")
        spec.preset = .virtio
        spec.explicit = []
        _ = b.attachGroup(spec)
        guard case .failure(let e) = b.setIOMMU(.type1v2) else { Issue.record("SET_IOMMU succeeded"); return }
        #expect(e == .EPERM)
        // With MSI isolation written (allow_unsafe_interrupts on the host),
        // the group is taken, and DMA_CC answers 0: the driver cannot
        // enforce coherency (CHECK_EXTENSION measured 0 on 6.12, 6.18, 7.3).
        let taken = ModelBackend(profile: KernelProfile(KernelVersion(6, 12)))
        var isolated = spec
        isolated.msiIsolated = true
        isolated.explicit = [.msiIsolated]
        _ = taken.attachGroup(isolated)
        #expect(taken.setIOMMU(.type1v2).errno == nil)
        #expect(taken.checkExtension(.dmaCC) == .success(0))
    }

    @Test("smmuv3 reserves the software MSI window at 128 MiB, not the x86 one")
    func smmuv3() {
        let c = Self.attached(.smmuv3, "6.12")
        #expect(c.iovaList.first == IOVARange(start: 0, last: 0x7ff_ffff))
        #expect(c.iovaList.contains { $0.start <= 0xfee0_0000 && 0xfee0_0000 <= $0.last })
    }

    @Test("a key the trace writes wins over the preset")
    func explicitWins() {
        let c = Self.attached(.amd, "6.12") { s in
            s.aperture = IOVARange(start: 0, last: 0xffff_ffff)
            s.explicit = [.aperture]
        }
        #expect(c.iovaList.last?.last == 0xffff_ffff)
        #expect(c.pgsizeBitmap == 0xf_ff7f_ffff_f000)
    }

    @Test("groups behind one IOMMU unit share a domain; behind different units (instance=) they never do", arguments: [0, 1])
    func instances(second: Int) {
        let b = ModelBackend(profile: .newest)
        var g0 = DomainSpec(name: "g0"); g0.preset = .smmuv3; g0.explicit = []
        var g1 = g0; g1.name = "g1"; g1.instance = second
        _ = b.attachGroup(g0)
        _ = b.attachGroup(g1)
        _ = b.setIOMMU(.type1v2)
        #expect(b.inspect { $0.domainCount } == (second == 0 ? 1 : 2))
    }
}

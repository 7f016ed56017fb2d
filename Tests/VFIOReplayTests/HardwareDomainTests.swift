import Testing
import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// `--backend both`: the model plays the IOMMU the kernel reports.
@Suite("Replaying against a kernel's IOMMU")
struct HardwareDomainTests {
    /// QEMU's intel-iommu as the kernel lane reads it.
    static let vtd = DomainSpec(name: "d0", pgsizes: PageSizes([4096, 2 << 20, 1 << 30]),
                                aperture: IOVARange(start: 0, last: 0x7f_ffff_ffff),
                                reserved: [IOVARange(start: 0xfee0_0000, last: 0xfeef_ffff)], coherent: false)

    @Test("the trace's first domain becomes the hardware's, keeping its name, and a note says how they differ")
    func firstDomainAdopted() {
        let model = ModelBackend()
        let trace = parse("""
            memory vaddr=0x7f0000000000 size=2M
            map iova=0x8000000000 vaddr=0x7f0000000000 size=4K prot=rw => ok
            extension dma-cc => 1

            """)
        let report = Replayer(backends: [model], hardwareDomains: [Self.vtd]).run(trace)
        // Past the 39-bit aperture, and no coherency: the hardware's answers.
        #expect(report.outcomes.map { $0.got[0].text } == ["EINVAL", "0"])
        #expect(report.notes.count == 1)
        #expect(report.notes.first?.message.hasPrefix("setup: trace domain d0 iova=0x0-0xfedfffff,0xfef00000-0xffffffffffff coherent=yes, kernel has iova=0x0-0xfedfffff,0xfef00000-0x7fffffffff coherent=no") == true)
        #expect(report.errors.isEmpty)
    }

    @Test("a trace written for the hardware gets no note")
    func sameSetupNoNote() {
        let trace = parse("""
            domain gpu pgsizes=4K,2M,1G aperture=0-0x7fffffffff reserved=0xfee00000-0xfeefffff coherent=no
            info => pgsizes=4K,2M,1G iova=0x0-0xfedfffff,0xfef00000-0x7fffffffff

            """)
        let report = Replayer(backends: [ModelBackend()], hardwareDomains: [Self.vtd]).run(trace)
        #expect(report.notes.isEmpty)
        #expect(report.ok)
    }

    @Test("a preset is compared with the hardware as the trace's release has it: 5.10's VT-d advertises every power of two and builds 4K, 2M and 1G leaves")
    func presetComparedForTheTracesRelease() {
        var old = Self.vtd
        old.pgsizes = PageSizes(rawValue: 0xffff_ffff_ffff_f000)
        old.leaves = PageSizes([4096, 2 << 20, 1 << 30])
        let trace = parse("""
            kernel 5.10
            domain g2 iommu=intel
            info

            """)
        let report = Replayer(backends: [ModelBackend()], hardwareDomains: [old]).run(trace)
        #expect(report.notes.isEmpty, "\(report.notes.map(\.message))")
        // The same preset on 6.12 advertises only its leaves: that differs.
        let newer = parse("kernel 6.12\ndomain g2 iommu=intel\ninfo\n")
        let notes = Replayer(backends: [ModelBackend()], hardwareDomains: [old]).run(newer).notes.map(\.message)
        #expect(notes.contains { $0.hasPrefix("setup: trace domain g2 pgsizes=4K,2M,1G") })
    }

    @Test("only the first domain is replaced; a second one is the trace's own")
    func secondDomainKept() {
        let trace = parse("""
            domain d0 pgsizes=4K,2M,1G
            domain d1 pgsizes=4K,64K aperture=0-0xffffffff
            info => pgsizes=4K iova=0x0-0xfedfffff,0xfef00000-0xffffffff

            """)
        let report = Replayer(backends: [ModelBackend()], hardwareDomains: [Self.vtd]).run(trace)
        #expect(report.ok)
    }

    @Test("a detached group's hardware domain goes to the next name the trace attaches, as the kernel backend binds its groups")
    func detachedSlotReused() {
        let small = DomainSpec(name: "x", pgsizes: PageSizes([4096]), aperture: IOVARange(start: 0, last: 0xffff_ffff), reserved: [])
        let model = ModelBackend()
        let trace = parse("""
            domain a pgsizes=4K,2M,1G
            domain b pgsizes=4K,2M,1G
            detach a
            domain c pgsizes=4K,2M,1G
            info

            """)
        _ = Replayer(backends: [model], hardwareDomains: [small, Self.vtd]).run(trace)
        // c took a's slot (the first real group), not a third one.
        let groups = model.inspect { $0.groups }
        #expect(groups.map(\.name) == ["b", "c"])
        #expect(groups.map(\.pgsizes) == [Self.vtd.pgsizes, small.pgsizes])
        #expect(groups.map(\.aperture) == [Self.vtd.aperture, small.aperture])
    }

    @Test("setupDifference compares valid ranges, not how they are written")
    func rangesCompared() {
        let written = DomainSpec(name: "d0", pgsizes: Self.vtd.pgsizes, aperture: Self.vtd.aperture,
                                 reserved: [IOVARange(start: 0xfee0_0000, last: 0xfeef_ffff),
                                            IOVARange(start: 0x100_0000_0000, last: 0x1ff_ffff_ffff)],
                                 coherent: false)
        #expect(Replayer.setupDifference(trace: written, kernel: Self.vtd) == nil)
        var isolated = Self.vtd
        isolated.msiIsolated = false
        #expect(Replayer.setupDifference(trace: isolated, kernel: Self.vtd)?.contains("msi-isolated=no") == true)
    }

    @Test("a backend that cannot observe a check neither agrees nor disagrees")
    func unobservableNotCompared() {
        let a = ScriptedBackend(name: "kernel")
        let b = ScriptedBackend(name: "other")
        b.locked = .notObservable("no VmLck")
        let report = Replayer(backends: [a, b]).run(parse("check locked=0\ncheck ptes=none\n"))
        #expect(report.outcomes.allSatisfy { $0.agree })
        #expect(report.outcomes.allSatisfy { !$0.compared })
        #expect(report.outcomes[0].got.map(\.observed) == [true, false])
    }
}

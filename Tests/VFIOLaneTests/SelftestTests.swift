import Testing
import VFIOCore
@testable import VFIOLane

/// The kernel's own VFIO selftests in the lane (issue 25): what their TAP
/// says, which cases can apply to a kernel, and the `selftests …` line.
@Suite("the kernel's VFIO selftests in the lane")
struct SelftestTests {
    /// TAP as the kselftest harness prints it under `vfio-sim record`
    /// (the recorder's notes share the stream).
    static let tap: Substring = """
    TAP version 13
    1..6
    # Starting 6 tests from 4 test cases.
    #  RUN           vfio_dma_mapping_test.vfio_type1_iommu_anonymous.dma_map_unmap ...
    Mapped HVA 0x7f0000000000 (size 0x1000) at IOVA 0x0
    #            OK  vfio_dma_mapping_test.vfio_type1_iommu_anonymous.dma_map_unmap
    ok 1 vfio_dma_mapping_test.vfio_type1_iommu_anonymous.dma_map_unmap
    #  RUN           vfio_dma_mapping_test.vfio_type1v2_iommu_anonymous_hugetlb_1gb.dma_map_unmap ...
    #      SKIP      mmap() failed: Cannot allocate memory (12)
    #            OK  vfio_dma_mapping_test.vfio_type1v2_iommu_anonymous_hugetlb_1gb.dma_map_unmap
    ok 2 vfio_dma_mapping_test.vfio_type1v2_iommu_anonymous_hugetlb_1gb.dma_map_unmap # SKIP mmap() failed: Cannot allocate memory (12)
    #  RUN           vfio_dma_mapping_test.iommufd_anonymous.dma_map_unmap ...
    # iommu.c:60: open(/dev/iommu) failed
    # dma_map_unmap: Test terminated by assertion
    #          FAIL  vfio_dma_mapping_test.iommufd_anonymous.dma_map_unmap
    not ok 3 vfio_dma_mapping_test.iommufd_anonymous.dma_map_unmap
    vfio-sim record: note: container 2 of the process: /tmp/st.trace.2
    #  RUN           vfio_dma_map_limit_test.vfio_type1v2_iommu.overflow ...
    # vfio_dma_mapping_test.c:327:overflow:Expected rc (-22) == -EOVERFLOW (-75)
    # overflow: Test terminated by assertion
    #          FAIL  vfio_dma_map_limit_test.vfio_type1v2_iommu.overflow
    not ok 4 vfio_dma_map_limit_test.vfio_type1v2_iommu.overflow
    #  RUN           vfio_dma_map_limit_test.iommufd_compat_type1.unmap_all ...
    # iommu.c:60: open(/dev/iommu) failed
    #          FAIL  vfio_dma_map_limit_test.iommufd_compat_type1.unmap_all
    not ok 5 vfio_dma_map_limit_test.iommufd_compat_type1.unmap_all
    #  RUN           vfio_dma_map_limit_test.vfio_type1_iommu.unmap_range ...
    #            OK  vfio_dma_map_limit_test.vfio_type1_iommu.unmap_range
    ok 6 vfio_dma_map_limit_test.vfio_type1_iommu.unmap_range
    # FAILED: 3 / 6 tests passed.
    # Totals: pass:2 fail:3 xfail:0 xpass:0 skip:1 error:0
    """

    static let debian612 = SelftestMachine(release: KernelVersion(6, 12, 118), iommufd: false, cdev: false)
    static let debian618 = SelftestMachine(release: KernelVersion(6, 18, 15), iommufd: false, cdev: false)

    @Test("each TAP result line is one case: pass, fail, or skip with the selftest's own reason; a failure keeps its assertion")
    func tapCases() {
        let cases = SelftestTAP.cases(program: "vfio_dma_mapping_test", Self.tap)
        #expect(cases.map(\.name) == [
            "vfio_dma_mapping_test.vfio_type1_iommu_anonymous.dma_map_unmap",
            "vfio_dma_mapping_test.vfio_type1v2_iommu_anonymous_hugetlb_1gb.dma_map_unmap",
            "vfio_dma_mapping_test.iommufd_anonymous.dma_map_unmap",
            "vfio_dma_map_limit_test.vfio_type1v2_iommu.overflow",
            "vfio_dma_map_limit_test.iommufd_compat_type1.unmap_all",
            "vfio_dma_map_limit_test.vfio_type1_iommu.unmap_range",
        ])
        #expect(cases.map(\.result) == [.pass, .skip("mmap() failed: Cannot allocate memory (12)"), .fail, .fail, .fail, .pass])
        #expect(cases[3].detail.first == "# vfio_dma_mapping_test.c:327:overflow:Expected rc (-22) == -EOVERFLOW (-75)")
        #expect(cases[0].detail.isEmpty)
        #expect(cases[3].variant == "vfio_type1v2_iommu" && cases[3].test == "overflow")
    }

    @Test("a program that skips as a whole (`1..0 # SKIP reason`) is one skipped case with that reason")
    func programSkip() {
        let cases = SelftestTAP.cases(program: "vfio_pci_sriov_uapi_test", "1..0 # SKIP SR-IOV may not be supported by the PF: 0000:00:02.0\n")
        #expect(cases == [SelftestCase(program: "vfio_pci_sriov_uapi_test", name: "vfio_pci_sriov_uapi_test",
                                       result: .skip("SR-IOV may not be supported by the PF: 0000:00:02.0"))])
    }

    @Test("the guest's facts: release, /dev/iommu and the device cdev")
    func machineFacts() {
        let m = SelftestMachine(facts: "release=6.12.118+deb13-amd64 iommufd=yes cdev=no\n")
        #expect(m == SelftestMachine(release: KernelVersion(parsing: "6.12.118+deb13-amd64")!, iommufd: true, cdev: false))
        #expect(SelftestMachine(facts: "iommufd=yes cdev=no") == nil)
    }

    @Test("iommufd modes apply only with /dev/iommu (and the native mode only with the device cdev); type1 modes always")
    func modes() {
        let c = { (program: String, name: String) in SelftestCase(program: program, name: name, result: .fail) }
        let withIommufd = SelftestMachine(release: KernelVersion(6, 12), iommufd: true, cdev: false)
        let type1 = c("vfio_dma_mapping_test", "vfio_dma_mapping_test.vfio_type1_iommu_anonymous.dma_map_unmap")
        let compat = c("vfio_dma_mapping_test", "vfio_dma_mapping_test.iommufd_compat_type1v2_anonymous.dma_map_unmap")
        let native = c("vfio_dma_mapping_test", "vfio_dma_mapping_test.iommufd_anonymous.dma_map_unmap")
        let defaultMode = c("vfio_pci_device_test", "vfio_pci_device_test.config_space_read_write")
        #expect(SelftestScope.notApplicable(type1, on: Self.debian612) == nil)
        #expect(SelftestScope.notApplicable(compat, on: Self.debian612)?.contains("no iommufd") == true)
        #expect(SelftestScope.notApplicable(compat, on: withIommufd) == nil)
        #expect(SelftestScope.notApplicable(native, on: withIommufd)?.contains("CONFIG_VFIO_DEVICE_CDEV") == true)
        #expect(SelftestScope.notApplicable(defaultMode, on: withIommufd)?.contains("CONFIG_VFIO_DEVICE_CDEV") == true)
        #expect(SelftestScope.notApplicable(defaultMode, on: SelftestMachine(release: KernelVersion(7, 3), iommufd: true, cdev: true)) == nil)
    }

    @Test("a case asserting EOVERFLOW does not apply before the overflow series (6.18), and applies from it")
    func overflowByRelease() {
        let overflow = SelftestCase(program: "vfio_dma_mapping_test", name: "vfio_dma_map_limit_test.vfio_type1_iommu.overflow", result: .fail)
        #expect(SelftestScope.notApplicable(overflow, on: Self.debian612)?.contains("overflow series in 6.18") == true)
        #expect(SelftestScope.notApplicable(overflow, on: Self.debian618) == nil)
    }

    @Test("the unmap-all case needs VFIO_DMA_UNMAP_FLAG_ALL (5.12): on 5.10 it does not apply")
    func unmapAllByRelease() {
        let unmapAll = SelftestCase(program: "vfio_dma_mapping_test", name: "vfio_dma_map_limit_test.vfio_type1_iommu.unmap_all", result: .fail)
        let on510 = SelftestMachine(release: KernelVersion(5, 10, 246), iommufd: false, cdev: false)
        #expect(SelftestScope.notApplicable(unmapAll, on: on510)?.contains("VFIO_DMA_UNMAP_FLAG_ALL") == true)
        #expect(SelftestScope.notApplicable(unmapAll, on: Self.debian612) == nil)
    }

    @Test("the map-limit cases at the top of the address space need the overflow series only where the aperture ends at 2^64-1")
    func topOfSpaceByAperture() {
        let unmapRange = SelftestCase(program: "vfio_dma_mapping_test", name: "vfio_dma_map_limit_test.vfio_type1v2_iommu.unmap_range", result: .fail)
        let virtio612 = SelftestMachine(facts: "release=6.12.118+deb13-amd64 iommufd=no cdev=no", iommu: "virtio-iommu")!
        let intel612 = SelftestMachine(facts: "release=6.12.118+deb13-amd64 iommufd=no cdev=no", iommu: "intel-iommu")!
        let amd73 = SelftestMachine(facts: "release=7.3.4+bpo-amd64 iommufd=no cdev=no", iommu: "amd-iommu")!
        #expect(virtio612.apertureReachesTop && !intel612.apertureReachesTop && !amd73.apertureReachesTop)
        #expect(SelftestScope.notApplicable(unmapRange, on: virtio612)?.contains("ending at 2^64-1") == true)
        #expect(SelftestScope.notApplicable(unmapRange, on: intel612) == nil)
        #expect(SelftestScope.notApplicable(unmapRange, on: SelftestMachine(facts: "release=6.18.15 iommufd=no cdev=no", iommu: "virtio-iommu")!) == nil)
    }

    @Test("a program that needs iommufd mode before its cases does not apply without iommufd and the cdev; elsewhere a program with no case fails the line")
    func programWithoutCases() {
        #expect(SelftestScope.notApplicable(program: "vfio_pci_driver_test", on: Self.debian612)?.contains("before its cases") == true)
        #expect(SelftestScope.notApplicable(program: "vfio_pci_driver_test", on: SelftestMachine(release: KernelVersion(7, 3), iommufd: true, cdev: true)) == nil)
        let s = SelftestSummary(kernel: "6.12", iommu: "intel-iommu", machine: Self.debian612,
                                programs: [("vfio_dma_mapping_test", Self.tap, [Self.tally(operations: 9, passed: 9)]),
                                           ("vfio_pci_driver_test", "iommu.c:444: Assertion Failure", [])])
        #expect(s.passed)
        #expect(s.lines.contains { $0.hasPrefix("  not applicable (1): needs iommufd mode before its cases") })
        let broken = SelftestSummary(kernel: "6.12", iommu: "intel-iommu", machine: Self.debian612,
                                     programs: [("vfio_dma_mapping_test", Self.tap, [Self.tally(operations: 9, passed: 9)]),
                                                ("vfio_dma_mapping_mmio_test", "vfio-sim: error: cannot run", [])])
        #expect(!broken.passed)
        #expect(broken.lines.first?.hasSuffix("1 programs or recordings without a result") == true)
    }

    static func tally(operations: Int, passed: Int) -> ReplayTally {
        ReplayTally(counts: .init(files: 1, operations: operations, passed: passed, failed: operations - passed, errors: 0),
                    summary: [], lines: passed == operations ? [] : ["st.trace:7: map iova=0x0 size=4K: expected ok, got EINVAL"])
    }

    @Test("a replay tally carries its counts through its text form")
    func tallyCounts() {
        let t = Self.tally(operations: 9, passed: 8)
        #expect(ReplayTally.decode(Substring(t.encode()))?.counts == ReplayTally.Counts(files: 1, operations: 9, passed: 8, failed: 1, errors: 0))
    }

    @Test("the line counts applicable cases and recorded operations; not applicable cases and skips are listed apart")
    func summaryLine() {
        let s = SelftestSummary(kernel: "6.12", iommu: "intel-iommu", machine: Self.debian612,
                                programs: [("vfio_dma_mapping_test", Self.tap, [Self.tally(operations: 9, passed: 9), Self.tally(operations: 4, passed: 4)])])
        #expect(s.lines.first == "selftests 6.12 intel-iommu: 2/2 tests pass on the kernel, 13/13 recorded operations agree on the model, 1 skipped, 3 not applicable")
        #expect(s.lines.contains("  skipped: vfio_dma_mapping_test.vfio_type1v2_iommu_anonymous_hugetlb_1gb.dma_map_unmap: mmap() failed: Cannot allocate memory (12)"))
        #expect(s.lines.contains { $0.hasPrefix("  not applicable (1): asserts EOVERFLOW") })
        #expect(s.passed)
    }

    @Test("an applicable case failing on the kernel, or a recorded operation the model answers otherwise, fails the line")
    func failures() {
        let on618 = SelftestSummary(kernel: "6.18", iommu: "intel-iommu", machine: Self.debian618,
                                    programs: [("vfio_dma_mapping_test", Self.tap, [Self.tally(operations: 9, passed: 9)])])
        #expect(on618.lines.first?.hasPrefix("selftests 6.18 intel-iommu: 2/3 tests pass on the kernel") == true)
        #expect(on618.lines.contains("  not ok: vfio_dma_mapping_test: vfio_dma_map_limit_test.vfio_type1v2_iommu.overflow: # vfio_dma_mapping_test.c:327:overflow:Expected rc (-22) == -EOVERFLOW (-75) / # overflow: Test terminated by assertion"))
        #expect(!on618.passed)
        let disagree = SelftestSummary(kernel: "6.12", iommu: "intel-iommu", machine: Self.debian612,
                                       programs: [("vfio_dma_mapping_test", Self.tap, [Self.tally(operations: 9, passed: 8)])])
        #expect(disagree.lines.first?.contains("8/9 recorded operations agree") == true)
        #expect(disagree.lines.contains("  vfio_dma_mapping_test: st.trace:7: map iova=0x0 size=4K: expected ok, got EINVAL"))
        #expect(!disagree.passed)
        let noFacts = SelftestSummary(kernel: "6.12", iommu: "intel-iommu", machine: nil, programs: [])
        #expect(!noFacts.passed)
    }
}

import Testing
import VFIOCore
@testable import VFIOLane
import VFIOModel
import VFIOReplay
import VFIOTrace

/// What a kernel developer reads in the lane's report: each disagreement
/// with the rule the model applied, so a patch that changes a rule shows up
/// under that rule's name. Two models of different kinds or releases stand
/// in for a model and a kernel that differ.
@Suite("The lane's report names the model's rule on every disagreement")
struct LaneReportTests {
    func run(_ text: String, kernel: ModelBackend) throws -> String {
        let trace = try parseTrace(text, file: "t.trace").get()
        let model = ModelBackend(profile: KernelProfile(KernelVersion(6, 12)), pinned: true)
        let report = Replayer(backends: [kernel, model]).run(trace)
        return KernelLane.report([report], skipped: [], kernel: "6.12", iommu: "intel-iommu").text
    }

    static let cutInto = """
        memory vaddr=0x7f0000000000 size=4M page=2M
        map iova=0x200000 vaddr=0x7f0000000000 size=4M prot=rw => ok
        unmap iova=0x200000 size=2M
        """

    @Test("an unmap that splits a mapping, refused by the model's v2 rule and not by the other side, names that rule and its kernel function")
    func bisectRule() throws {
        // iommufd's compat layer refuses the cut with ENOENT, not by the v2 rule.
        let other = ModelBackend(profile: KernelProfile(KernelVersion(6, 12)), pinned: true, container: .iommufd,
                                 pinsContainer: true, label: "kernel")
        let text = try run(Self.cutInto, kernel: other)
        let line = text.split(separator: "\n").first { $0.contains(": disagree: ") }.map(String.init) ?? ""
        #expect(line.hasPrefix("t.trace:3: disagree: unmap iova=0x200000 size=2M: kernel ENOENT"), "\(text)")
        #expect(line.contains("; model: v2 may not split a mapping"), "\(line)")
        #expect(line.contains("(vfio_dma_do_unmap)"), "\(line)")
        #expect(!line.contains("(after the disagreement"), "\(line)")
    }

    @Test("an answer that succeeded still says why on a disagreement, and a later disagreement in the same file points at the first")
    func followsFirst() throws {
        let older = ModelBackend(profile: KernelProfile(KernelVersion(5, 10)), pinned: true, label: "kernel")
        let text = try run("""
            memory vaddr=0x7f0000000000 size=2M page=2M
            map iova=0x200000 vaddr=0x7f0000000000 size=2M prot=rw => ok
            unmap-all
            check mappings=0
            """, kernel: older)
        let lines = text.split(separator: "\n").filter { $0.contains(": disagree: ") }.map(String.init)
        #expect(lines.count == 2, "\(text)")
        // 5.10 has no VFIO_DMA_UNMAP_FLAG_ALL; 6.12 removes every mapping.
        #expect(lines.first?.contains("; kernel: VFIO_DMA_UNMAP_FLAG_ALL came with 5.12; kernel 5.10 rejects unknown flags") == true, "\(lines)")
        #expect(lines.first?.contains("; model: 1 mapping removed, 2 MiB") == true, "\(lines)")
        #expect(lines.last?.hasPrefix("t.trace:4: disagree: check mappings=0") == true, "\(lines)")
        #expect(lines.last?.hasSuffix("(after the disagreement at line 3)") == true, "\(lines)")
    }
}

/// Issue 25: a configuration's skips count only the files that apply to it.
@Suite("Skipped against not applicable in the lane's line")
struct NotApplicableTests {
    static let skipped = [(file: "big.trace", reason: "8T of 1G hugepages")]
    static let notApplicable = [(file: "fd.trace", reason: "container iommufd needs /dev/iommu"),
                                (file: "mdev.trace", reason: "an mdev device")]

    @Test("files that do not apply are left out of 'S of F files skipped' and counted after it")
    func countedApart() throws {
        let trace = try parseTrace("map iova=0 vaddr=0x7f0000000000 size=4K prot=rw\n", file: "run.trace").get()
        let report = Replayer(backends: [ModelBackend(label: "kernel"), ModelBackend()]).run(trace)
        let s = KernelLane.entries([report], skipped: Self.skipped, notApplicable: Self.notApplicable).summary
        #expect(KernelLane.countsLine(s).hasPrefix("1/1 operations agree, 0 not observable, 1 of 2 files skipped (2 more not applicable)"))
    }

    @Test("the guest's typed report carries the files that do not apply, so the host's line counts them the same")
    func roundTrip() throws {
        let text = LaneFixtureReport([], skipped: Self.skipped, notApplicable: Self.notApplicable,
                                     kernel: "6.12", iommu: "intel-iommu", verbose: false).encode()
        let back = try #require(LaneFixtureReport.decode(Substring(text)))
        #expect(back.summary.notApplicable.map(\.file) == ["fd.trace", "mdev.trace"])
        #expect(back.summary.skipped.map(\.file) == ["big.trace"])
        #expect(back.summary.files == 1)
    }
}

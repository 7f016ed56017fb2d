import Testing
import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// How the replay engine hands the container kind to its backends: the
/// `container` statement, `--container` (`defaultContainer`) and compare's
/// pin (`pinnedContainer`), through `Backend.setContainer` only.
@Suite("Container kinds in the replay")
struct ContainerKindTests {
    func trace(_ text: String) throws -> Trace { try parseTrace(text, file: "k.trace").get() }

    static let cutInto = """
        memory vaddr=0x7f0000000000 size=4M page=2M
        map iova=0x200000 vaddr=0x7f0000000000 size=4M prot=rw => ok
        unmap iova=0x200000 size=2M
        """

    func unmapAnswer(_ report: FileReport) -> String? { report.outcomes.first { $0.line == 3 || $0.line == 4 }.map { $0.got[0].text } }

    @Test("a trace's container line decides which rules answer: the same cut is EINVAL on type1 and ENOENT on iommufd")
    func statementSwitches() throws {
        let type1 = Replayer(backends: [ModelBackend()]).run(try trace(Self.cutInto))
        let iommufd = Replayer(backends: [ModelBackend()]).run(try trace("container iommufd\n" + Self.cutInto))
        #expect(type1.outcomes.last?.got[0].text == "EINVAL")
        #expect(iommufd.outcomes.last?.got[0].text == "ENOENT")
    }

    @Test("--container is the kind for traces that do not say; a trace's container line wins over it")
    func defaultAndStatement() throws {
        let r = Replayer(backends: [ModelBackend()])
        r.defaultContainer = .iommufd
        #expect(r.run(try trace(Self.cutInto)).outcomes.last?.got[0].text == "ENOENT")
        let r2 = Replayer(backends: [ModelBackend()])
        r2.defaultContainer = .iommufd
        #expect(r2.run(try trace("container type1\n" + Self.cutInto)).outcomes.last?.got[0].text == "EINVAL")
    }

    @Test("`container c0` without a kind goes back to the first container as the run opened it (iommufd under --container iommufd); with a kind that differs it is a setup error")
    func backToTheFirstContainer() throws {
        let text = """
            memory vaddr=0x7f0000000000 size=4M page=2M
            map iova=0x200000 vaddr=0x7f0000000000 size=4M prot=rw => ok
            container c1 type1
            domain g1 pgsizes=4K,2M,1G
            container c0
            unmap iova=0x200000 size=2M
            """
        let r = Replayer(backends: [ModelBackend()])
        r.defaultContainer = .iommufd
        let report = r.run(try trace(text))
        #expect(report.errors.isEmpty, "\(report.errors.map(\.message))")
        #expect(report.outcomes.last?.got[0].text == "ENOENT")  // c0's iommufd rules
        let r2 = Replayer(backends: [ModelBackend()])
        r2.defaultContainer = .iommufd
        let wrong = r2.run(try trace(text.replacingOccurrences(of: "container c0", with: "container c0 type1")))
        #expect(wrong.errors.contains { $0.message.contains("container c0 is iommufd, not type1") })
    }

    @Test("mlock counts whole pages, the last partly filled one included, in the process's locked memory")
    func mlockRoundsUpToPages() throws {
        let report = Replayer(backends: [ModelBackend()]).run(try trace("mlock 4097\ncheck locked=8K\n"))
        #expect(report.ok, "\(report.outcomes.map { $0.got.map(\.text) })")
        let model = ModelBackend()
        try model.mlock(UInt64.max)
        #expect(model.process.mlockedPages == 1 << 52)
        try model.mlock(4097)
        #expect(model.process.mlockedPages == 2)
    }

    @Test("a pinned kind ignores the trace's container line (compare runs both kinds on every trace)")
    func pinned() throws {
        let r = Replayer(backends: [ModelBackend()])
        r.pinnedContainer = .type1
        #expect(r.run(try trace("container iommufd\n" + Self.cutInto)).outcomes.last?.got[0].text == "EINVAL")
    }

    @Test("a backend without iommufd reports container iommufd as a setup error naming itself, and nothing crashes")
    func backendWithoutIOMMUFD() throws {
        let fake = ScriptedBackend(name: "fake", mapAnswers: [.success(())])
        let report = Replayer(backends: [fake]).run(try trace("container iommufd\nmap iova=0x200000 vaddr=0x7f0000000000 size=4K prot=rw"))
        #expect(report.errors.map(\.message) == ["fake: the fake backend has no iommufd container"])
    }

    @Test("container iommufd with a kernel before 6.2 is a setup error: 6.1 has no /dev/iommu")
    func oldKernel() throws {
        let report = Replayer(backends: [ModelBackend()]).run(try trace("container iommufd\nkernel 6.1\ninfo"))
        #expect(report.errors.contains { $0.message.contains("kernel 6.1 has no iommufd") })
    }
}

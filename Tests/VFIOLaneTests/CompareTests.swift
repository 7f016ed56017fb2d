import Foundation
import Testing
import VFIOCore
import VFIOLane
import VFIOTrace

/// `vfio-sim compare`: each trace under type1 and iommufd side by side.
@Suite("vfio-sim compare")
struct CompareTests {
    func compare(_ text: String) throws -> ContainerComparison {
        ContainerComparison.run(try parseTrace(text, file: "c.trace").get())
    }

    @Test("a statement whose answers differ is a row with both answers and both reasons; the ones that agree are not")
    func rowsWithReasons() throws {
        let c = try compare("""
            memory vaddr=0x7f0000000000 size=4M page=2M
            map iova=0x200000 vaddr=0x7f0000000000 size=4M prot=rw
            unmap iova=0x200000 size=2M
            unmap iova=0x200000 size=4M
            """)
        #expect(c.rows.map(\.line) == [3])
        let row = try #require(c.rows.first)
        #expect(row.type1 == "EINVAL")
        #expect(row.iommufd == "ENOENT")
        #expect(row.type1Reason?.hasSuffix("(vfio_dma_do_unmap)") == true)
        #expect(row.iommufdReason?.contains("iopt_unmap_iova_range") == true)
        #expect(c.compared == 3)
        #expect(c.text.contains("c.trace:3: unmap iova=0x200000 size=2M\n    type1    EINVAL\n"))
        #expect(c.text.hasSuffix("c.trace: kernel 7.3: 1 of 3 statements differ\n"))
    }

    @Test("a check that reads differently says what each kind counts")
    func checkRows() throws {
        let c = try compare("""
            memory vaddr=0x7f0000000000 size=2M
            map iova=0x200000 vaddr=0x7f0000000000 size=2M prot=rw
            check locked=2M
            """)
        let row = try #require(c.rows.first { $0.line == 3 })
        #expect(row.type1 == "locked=2M")
        #expect(row.iommufd == "locked=0")
        #expect(row.iommufdReason?.contains("pinned_vm") == true)
    }

    @Test("a trace pinned to a kernel without iommufd is not comparable, and says why")
    func oldKernel() throws {
        let c = try compare("kernel 6.1\ninfo")
        #expect(c.notComparable == "kernel 6.1 has no iommufd (/dev/iommu came with 6.2): nothing to compare")
        #expect(c.rows.isEmpty)
    }

    @Test("a group iommufd will not attach is a setup note, and the statements after it are still compared")
    func setupNote() throws {
        let c = try compare("""
            domain d0 pgsizes=64K,2M
            memory vaddr=0x7f0000000000 size=64K phys=contiguous
            map iova=0x100000 vaddr=0x7f0000000000 size=64K prot=rw
            check ptes=64K:1
            """)
        #expect(c.notes == ["line 1: iommufd: adding group d0 failed with EINVAL"])
        let row = try #require(c.rows.first { $0.line == 4 })
        #expect(row.type1 == "ptes=64K:1")
        #expect(row.iommufd == "ptes=none")
    }

    @Test("the Markdown table has one row per difference and escapes pipes")
    func markdown() throws {
        let c = try compare("""
            memory vaddr=0x7f0000000000 size=4M page=2M
            map iova=0x200000 vaddr=0x7f0000000000 size=4M prot=rw
            unmap iova=0x200000 size=2M
            """)
        let md = ContainerComparison.markdown([c])
        #expect(md.split(separator: "\n").count == 3)
        #expect(md.contains("| `c.trace:3` | `unmap iova=0x200000 size=2M` | `EINVAL` | `ENOENT` |"))
    }

    /// Every shipped fixture runs under both kinds: none breaks a model
    /// invariant or hangs the comparison, whatever it was written for.
    @Test("every shipped fixture compares under both kinds with the model's invariants intact")
    func everyFixture() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".trace") }.sorted()
        #expect(names.count >= 100)
        for name in names {
            let bytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent(name)))
            let trace = try parseTrace(bytes: bytes, file: name).get()
            let c = ContainerComparison.run(trace)
            #expect(!c.notes.contains { $0.contains("invariant") }, "\(name): \(c.notes)")
            #expect(c.notComparable != nil || c.compared > 0, "\(name) compared nothing")
        }
    }
}

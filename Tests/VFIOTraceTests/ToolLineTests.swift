import Testing
import VFIOCore
@testable import VFIOTrace

// The lines that make up most of a machine-written trace (what `vfio-sim
// record`, `explore` and `vfio-bench` write, one per ioctl): what each one
// means, spelled out, and the rules that need a first operation applied to
// them as to any other line.

private let toolLines = [
    "map iova=0x100000000 vaddr=0x7f0000000000 size=2M prot=rw => ok",
    "map iova=0x80000000 vaddr=0x7f0010000000 size=64K prot=rw => EEXIST",
    "map iova=4096 vaddr=0x7f0000001000 size=4K prot=r => EINVAL",
    "map iova=0x0 vaddr=0x1000 size=0x1000 prot=w => ENOMEM",
    "map iova=0xffffffffffff0000 vaddr=0x7f0000000000 size=64K prot=none => ok",
    "unmap iova=0x100000000 size=2M => ok size=2M",
    "unmap iova=0x80000000 size=256K => ok size=0",
    "unmap iova=0x1000 size=4K => ok",
    "unmap iova=0x1000 size=4K => EINVAL",
    "check mappings=12",
    "check locked=6M",
    "check mappings=0",
]

@Suite struct ToolLineTests {
    @Test func eachToolLineMeansWhatItSays() throws {
        let text = toolLines.joined(separator: "\n") + "\n"
        let trace = try parseTrace(text, file: "t.trace").get()
        #expect(trace.statements.count == toolLines.count)
        #expect(trace.statements[0].kind == .map(MapDMA(flags: [.read, .write], vaddr: 0x7f00_0000_0000, iova: 0x1_0000_0000, size: 2 << 20)))
        #expect(trace.statements[0].expected == Answer(.ok))
        #expect(trace.statements[1].expected == Answer(.errno(.EEXIST)))
        #expect(trace.statements[2].kind == .map(MapDMA(flags: .read, vaddr: 0x7f00_0000_1000, iova: 4096, size: 4096)))
        #expect(trace.statements[3].kind == .map(MapDMA(flags: .write, vaddr: 0x1000, iova: 0, size: 4096)))
        #expect(trace.statements[4].kind == .map(MapDMA(flags: [], vaddr: 0x7f00_0000_0000, iova: 0xffff_ffff_ffff_0000, size: 64 << 10)))
        #expect(trace.statements[5].kind == .unmap(UnmapDMA(flags: [], iova: 0x1_0000_0000, size: 2 << 20)))
        #expect(trace.statements[5].expected == Answer(.ok, fields: [.size(2 << 20)]))
        #expect(trace.statements[6].expected == Answer(.ok, fields: [.size(0)]))
        #expect(trace.statements[9].kind == .check(.mappings(12)))
        #expect(trace.statements[10].kind == .check(.locked(6 << 20)))
        #expect(trace.statements.allSatisfy { $0.column == 1 })
        #expect(trace.statements.map(\.line) == Array(1...toolLines.count))
    }

    @Test func aToolLineOperationIsTheFirstOperationForEveryRuleThatNeedsOne() {
        // `iommu` must come before the file's first operation, whatever
        // form that operation's line has.
        for op in toolLines where !op.hasPrefix("check") {
            let text = "memory vaddr=0x7f0000000000 size=2M\n\(op)\niommu type1v2\n"
            guard case .failure(let failure) = parseTrace(text, file: "t.trace") else {
                Issue.record("iommu after '\(op)' parsed"); continue
            }
            #expect(failure.diagnostics.map(\.description) == ["t.trace:3:1: error: expected iommu before the first operation, found it after the operation on line 2"])
        }
    }

    @Test func numbersAtTheirLimitsAreReadOrNamedAtTheEndOfTheFileToo() {
        // The same line in the middle of a file, last with a line feed, and
        // last without one: the same statement or the same message.
        let values = ["0x0", "0xffffffffffffffff", "0x1ffffffffffffffff", "0X1000", "0x", "007",
                      "18446744073709551615", "99999999999999999999", "17179869183G", "17179869184G", "K", "0xK", "1k"]
        for v in values {
            let line = "check mappings=\(v)"
            let results = [line + "\nshow\n", line, line + "\n"].map { text -> String in
                switch parseTrace(text, file: "t.trace") {
                case .success(let t): "\(t.statements[0].kind)"
                case .failure(let f): f.diagnostics.map(\.description).joined()
                }
            }
            #expect(Set(results).count == 1, "\(line): \(results)")
        }
    }
}

import Testing
import VFIOCore
import VFIOKernel

/// The replay process and its supervisor speak one line each way over a
/// pipe; `ParentRequest` and `ParentAnswer` are the only code that writes
/// or reads those lines, so what one side writes the other reads back as
/// the same message.
@Suite("The child's requests to its supervisor and the answers round-trip through their lines")
struct ParentMessageTests {
    @Test("a set request reads back as written, for every parameter", arguments: ModuleParameter.allCases)
    func requestRoundTrip(_ p: ModuleParameter) {
        for value in ["0", "65535", "4294967295"] {
            let request = ParentRequest.set(p, value: value)
            #expect(request.line == "set \(p.rawValue) \(value)")
            #expect(ParentRequest(line: request.line) == request)
        }
    }

    @Test("a line that names no known parameter, or is no set, is no request")
    func unknownRequests() {
        for line in ["", "set", "set vfio_iommu_type1.dma_entry_limit", "set /sys/module/x/parameters/y 1",
                     "unset vfio_iommu_type1.dma_entry_limit 1", "set vfio_iommu_type1.dma_entry_limit 1 2"] {
            #expect(ParentRequest(line: line) == nil, "\(line)")
        }
    }

    @Test("a value cannot smuggle a second word or line into the request")
    func valueStaysOneWord() {
        let request = ParentRequest.set(.dmaEntryLimit, value: "1\nset x 2")
        #expect(!request.line.contains("\n"))
        #expect(request.line.split(separator: " ").count == 3)
    }

    @Test("answers read back as written; a refusal keeps its message on one line")
    func answerRoundTrip() {
        for answer in [ParentAnswer.ok, .refused("vfio_iommu_type1.dma_entry_limit is 100 on this machine"), .refused("")] {
            #expect(ParentAnswer(line: answer.line) == answer)
        }
        #expect(!ParentAnswer.refused("two\nlines").line.contains("\n"))
    }

    @Test("a line that is no answer reads as a refusal quoting it, never as ok")
    func unknownAnswer() {
        #expect(ParentAnswer(line: "OK") == .refused("the supervising process answered 'OK'"))
        #expect(ParentAnswer(line: "") != .ok)
    }
}

import Testing
import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// Replays `text` on the model.
func onModel(_ text: String, explain: Bool = false) -> FileReport {
    let r = Replayer(backends: [ModelBackend()])
    r.explainsEveryAnswer = explain
    return r.run(parse(text))
}

@Suite("Answers that explain themselves, show, sizes for people")
struct UsabilityTests {
    static let readableCases: [(UInt64, String)] = [
        (0, "0 bytes"), (4096, "4 KiB"), (2 << 20, "2 MiB"), ((8 << 30) - (384 << 10), "8 GiB - 384 KiB"),
        ((1 << 30) + 4096, "1 GiB + 4 KiB"), (1000, "1000 bytes"), (4095, "4 KiB - 1 byte"), (0xffff_ffff_ffff_f123, "0xfffffffffffff123 bytes"),
    ]

    @Test("sizes for people are exact: one unit, or a unit plus or minus another, else hex", arguments: readableCases)
    func readable(value: UInt64, text: String) {
        #expect(readableSize(value) == text)
    }

    @Test("a size a trace writes is short: a suffix below 2^20 of the unit, else hex")
    func traceSizes() {
        #expect(formatSize(2 << 20) == "2M")
        #expect(formatSize((8 << 30) - (384 << 10)) == "0x1fffa0000")
        #expect(sizeForPeople((8 << 30) - (384 << 10)) == "0x1fffa0000 (8 GiB - 384 KiB)")
        #expect(sizeForPeople(2 << 20) == "2M")
    }

    @Test("a v1 unmap inside a mapping removes nothing, and the reason says the mapping stays pinned")
    func v1UnmapReason() throws {
        let report = onModel("""
            iommu type1
            memory vaddr=0x7f0000000000 size=16M
            map iova=0x1000000 vaddr=0x7f0000000000 size=16M prot=rw => ok
            unmap iova=0x1400000 size=4M => ok size=0
            """)
        #expect(report.ok)
        let reason = try #require(report.outcomes.last?.got.first?.reason)
        #expect(reason.contains("stays mapped, pinned and DMA-able"))
        #expect(reason.contains("(vfio_dma_do_unmap)"))
    }

    @Test("without explainsHeldAnswers an errno that held gets no reason, and one that did not hold still does")
    func heldAnswersUnexplained() throws {
        let text = """
            memory vaddr=0x7f0000000000 size=4M
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw => ok
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw => EEXIST
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw => ENOMEM
            unmap iova=0 size=4M => ok size=2M
            """
        let r = Replayer(backends: [ModelBackend()])
        r.explainsHeldAnswers = false
        let lean = r.run(parse(text))
        #expect(lean.outcomes.map(\.failed) == [false, false, true, false])
        #expect(lean.outcomes[1].got[0].reason == nil)
        #expect(lean.outcomes[3].got[0].reason == nil)
        let failed = try #require(lean.outcomes[2].got[0].reason)
        #expect(failed.contains("vfio_dma_do_map"))
        // By default both held surprises keep their reasons.
        let full = onModel(text)
        #expect(full.outcomes[1].got[0].reason != nil)
        #expect(full.outcomes[3].got[0].reason != nil)
    }

    @Test("ENOMEM names RLIMIT_MEMLOCK, what is locked and what the mapping needs")
    func enomemReason() throws {
        let report = onModel("""
            memlock 4M
            memory vaddr=0x7f0000000000 size=16M
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw => ok
            map iova=0x200000 vaddr=0x7f0000200000 size=4M prot=rw => ENOMEM
            """)
        let reason = try #require(report.outcomes.last?.got.first?.reason)
        #expect(reason == "locked memory would pass RLIMIT_MEMLOCK 4 MiB: 2 MiB locked + 4 MiB this mapping pins, without CAP_IPC_LOCK (vfio_pin_pages_remote → vfio_lock_acct)")
    }

    @Test("a v2 unmap that bisects a mapping fails with EINVAL and says which mapping it would split")
    func bisectReason() throws {
        let report = onModel("""
            memory vaddr=0x7f0000000000 size=16M
            map iova=0x1000000 vaddr=0x7f0000000000 size=16M prot=rw
            unmap iova=0x1400000 size=4M => EINVAL
            """)
        let reason = try #require(report.outcomes.last?.got.first?.reason)
        #expect(reason.hasPrefix("v2 may not split a mapping: iova 0x1400000 is inside the mapping 0x1000000 + 16 MiB"))
    }

    @Test("answers that held and surprise no one carry no reason, unless every answer is explained")
    func reasonsOnlyWhenWanted() {
        let text = "memory vaddr=0x7f0000000000 size=2M\nmap iova=0 vaddr=0x7f0000000000 size=2M prot=rw => ok\n"
        #expect(onModel(text).outcomes.last?.got.first?.reason == nil)
        #expect(onModel(text, explain: true).outcomes.last?.got.first?.reason?.contains("vfio_dma_do_map") == true)
    }

    @Test("show reads the state, fails nothing and counts as no operation")
    func show() throws {
        let report = onModel("""
            memlock 64M
            memory vaddr=0x7f0000000000 size=4M page=2M
            map iova=0 vaddr=0x7f0000000000 size=4M prot=rw
            show
            """)
        #expect(report.ok)
        let state = try #require(report.outcomes.last?.state?.first)
        #expect(state.locked == .value(4 << 20))
        #expect(state.mappings == .value(1))
        #expect(state.dmaAvail == 65534)
        #expect(state.ptes.first?.domain == "d0")
        #expect(state.lines.contains("locked    4 MiB (4M) of RLIMIT_MEMLOCK 64 MiB, 60 MiB left"))
        #expect(Totals([report]).operations == 1)
    }

    @Test("a release the lane does not boot is answered from the release history, with one note")
    func kernelNote() {
        let report = onModel("kernel 6.5\nextension nesting => 1\nextension unmap-all => 1\n")
        #expect(report.ok)
        #expect(report.notes.map(\.message) == ["kernel 6.5: answered from the release history (not booted in the lane)"])
        #expect(onModel("kernel 6.12.38\nextension nesting => 1\n").notes.isEmpty, "the lane boots the 6.12 series")
        #expect(onModel("kernel 7.9\nextension nesting => 0\n").notes.map(\.message)
            == ["kernel 7.9: newer than the newest release known (7.3): answered as 7.3 (not booted in the lane)"])
    }

    @Test("repeat= runs every repetition, each checked against the written answer")
    func repeatRuns() {
        let report = onModel("""
            memory vaddr=0x7f0000000000 size=8M
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw repeat=4 => ok
            check mappings=4
            map iova=0x400000 vaddr=0x7f0000000000 size=2M prot=rw repeat=2 => EEXIST
            """)
        #expect(report.outcomes.count == 7)
        #expect(report.outcomes.allSatisfy { $0.passed })
    }

    @Test("JSON answers are structured: errno by name, sizes and counts as numbers, with the reason")
    func structuredJSON() {
        let report = onModel("""
            memory vaddr=0x7f0000000000 size=4M
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw => ok
            map iova=0 vaddr=0x7f0000200000 size=2M prot=rw => EEXIST
            unmap iova=0 size=2M => ok size=2M
            check locked=0
            """)
        let json = jsonReport([report])
        #expect(json.contains("\"answer\":{\"status\":\"errno\",\"errno\":\"EEXIST\",\"errnoValue\":17}"))
        #expect(json.contains("\"answer\":{\"status\":\"ok\",\"size\":2097152}"))
        #expect(json.contains("\"answer\":{\"locked\":0}"))
        #expect(json.contains("\"reason\":\"overlaps the mapping 0x0-0x1fffff (2 MiB)"))
    }

    @Test("a file that did not parse is a report: JSON says it did not run, JUnit has its errors")
    func unparsedReport() throws {
        guard case .failure(let failure) = parseTrace("kernel 5.4\n", file: "bad.trace") else { Issue.record("parsed"); return }
        let report = FileReport(file: "bad.trace", unparsed: failure)
        #expect(!report.ok && !report.ran)
        #expect(jsonReport([report]).contains("\"ran\":false"))
        #expect(jsonReport([report]).contains("\"line\":1,\"column\":8,"))
        #expect(junitReport([report]).contains("<error message=\"bad.trace:1:8: error: expected a kernel version"))
        #expect(summary([report]).hasPrefix("1 file, 0 operations, 1 not read or not parsed\n"))
    }
}

import Testing
import VFIOCore
import VFIOModel
import VFIOReplay
import VFIOTrace

/// A reason names the kernel function its rule comes from: a name in
/// parentheses with an underscore (`(vfio_dma_do_unmap)`,
/// `(vfio_iommu_replay → vfio_pin_pages_remote)`). A bare errno or a
/// generic "failed" text names none, so it does not count as a reason.
func namesKernelFunction(_ reason: String) -> Bool {
    var inParens = false, word = ""
    for c in reason {
        if c == "(" { inParens = true; word = ""; continue }
        if c == ")" { inParens = false }
        guard inParens else { continue }
        if c.isLetter || c.isNumber || c == "_" {
            word.append(c)
            if word.contains("_") && word.first?.isLowercase == true && word.count > 4 { return true }
        } else {
            word = ""
        }
    }
    return false
}

/// A fallback says no more than the answer: the errno (or value) and a
/// function, as in `iommufd: EINVAL (iopt_map_user_pages)`.
func isFallback(_ reason: String, for answer: Answer) -> Bool {
    var text = Substring(reason)
    if text.hasPrefix("iommufd: ") { text = text.dropFirst("iommufd: ".count) }
    return text.hasPrefix(answer.description + " (")
}

/// Replays `trace` on the model with every answer explained and calls
/// `body` with each operation's outcome and the model right after it.
func replayExplained(_ trace: Trace, container: ContainerKind? = nil, _ body: @escaping (Outcome, ModelBackend) -> Void) {
    let model = ModelBackend(checksInvariants: false)
    let replayer = Replayer(backends: [model])
    replayer.explainsEveryAnswer = true
    replayer.defaultContainer = container
    replayer.didRun = { _, o in body(o, model) }
    _ = replayer.run(trace)
}

@Suite("Reasons")
struct ReasonTests {
    @Test("every answer in every fixture that is not ok carries the model's reason, naming a kernel function",
          arguments: fixtureNames + recordedNames, [ContainerKind.type1, .iommufd])
    func everyAnswerExplained(name: String, container: ContainerKind) throws {
        let trace = try loadTrace(name)
        replayExplained(trace, container: container) { o, _ in
            for (i, a) in o.answers.enumerated() where a.status != .ok {
                let reason = o.got[i].reason ?? ""
                #expect(!reason.isEmpty, "\(name):\(o.line) (\(container)): \(o.statement) => \(a) has no reason")
                #expect(reason.isEmpty || namesKernelFunction(reason),
                        "\(name):\(o.line) (\(container)): \(o.statement) => \(a): '\(reason)' names no kernel function")
                #expect(!isFallback(reason, for: a), "\(name):\(o.line) (\(container)): '\(reason)' only repeats the answer")
            }
        }
    }

    @Test("the fixtures hold answers that are not ok: the walk above is not empty")
    func walkFindsAnswers() throws {
        final class Count { var n = 0 }
        let notOK = Count()
        for name in fixtureNames { replayExplained(try loadTrace(name)) { o, _ in notOK.n += o.answers.filter { $0.status != .ok }.count } }
        #expect(notOK.n > 100)
    }

    @Test("5.10's unmap-all is EINVAL because ALL came with 5.12 and 5.10 rejects unknown flags, whether spelled unmap-all or flags=2")
    func unmapAll510() throws {
        let trace = try parseText("""
            kernel 5.10
            memory vaddr=0x7f0000000000 size=2M
            map iova=0x100000 vaddr=0x7f0000000000 size=2M prot=rw => ok
            unmap-all => EINVAL
            unmap iova=0x100000 size=2M flags=2 => EINVAL
            unmap iova=0x100000 size=2M flags=0x10 => EINVAL

            """)
        let seen = Texts()
        replayExplained(trace) { o, _ in if o.statement.hasPrefix("unmap") { seen.all.append(o.got[0].reason ?? "") } }
        let reasons = seen.all
        try #require(reasons.count == 3)
        for r in reasons.prefix(2) {
            #expect(r.contains("VFIO_DMA_UNMAP_FLAG_ALL came with 5.12") && r.contains("5.10 rejects unknown flags")
                    && r.contains("vfio_iommu_type1_unmap_dma"), "\(r)")
            #expect(!r.contains("iova 0 and size 0"))
        }
        #expect(reasons[2].contains("0x10") && reasons[2].contains("unknown"), "\(reasons[2])")
    }

    @Test("an unmap-all reason never contradicts the state it leaves: the mappings that stay are counted as not removed",
          arguments: fixtureNames)
    func unmapAllSaysWhatStays(name: String) throws {
        replayExplained(try loadTrace(name)) { o, model in
            guard o.statement.hasPrefix("unmap-all"), o.answers.first?.status == .ok, !o.statement.contains("vaddr-only"),
                  let reason = o.got.first?.reason, case .value(let left) = model.mappingCount() else { return }
            if left > 0 {
                #expect(reason.contains("\(left) mapping\(left == 1 ? "" : "s") not removed"), "\(name):\(o.line): \(left) stay, yet: \(reason)")
            } else {
                #expect(!reason.contains("not removed"), "\(name):\(o.line): none stays, yet: \(reason)")
            }
        }
    }

    @Test("on 6.12 an unmap-all that leaves the mappings hidden by a top-of-space root names them and the rule")
    func unmapAllHidden() throws {
        let seen = Texts()
        replayExplained(try loadTrace("unmap-top-root-hides-6.12.trace")) { o, _ in
            if o.statement == "unmap-all" { seen.all.append(o.got[0].reason ?? "") }
        }
        let reason = seen.all.first ?? ""
        #expect(reason.contains("0 mappings removed"))
        #expect(reason.contains("2 mappings not removed"))
        #expect(reason.contains("vfio_find_dma_first_node"))
    }

    @Test("a map over RLIMIT_MEMLOCK carries the kernel's log line with the limit in bytes, rounded down to pages; one under it carries none")
    func memlockLogLine() throws {
        let trace = try parseText("""
            memlock 0x400100
            memory vaddr=0x7f0000000000 size=8M
            map iova=0x100000 vaddr=0x7f0000000000 size=4M prot=rw => ok
            map iova=0x600000 vaddr=0x7f0000400000 size=4K prot=rw => ENOMEM

            """)
        let logs = Texts()
        replayExplained(trace) { o, _ in logs.all.append(o.got[0].kernelLog ?? "-") }
        #expect(logs.all == ["-", "vfio_pin_pages_remote: RLIMIT_MEMLOCK (4194304) exceeded"])
    }

    @Test("with CAP_IPC_LOCK nothing is refused and nothing is logged")
    func capIPCLockNoLog() throws {
        let trace = try parseText("""
            memlock 1M
            cap-ipc-lock on
            memory vaddr=0x7f0000000000 size=8M
            map iova=0x100000 vaddr=0x7f0000000000 size=4M prot=rw => ok

            """)
        let logs = Texts()
        replayExplained(trace) { o, _ in logs.all.append(o.got[0].kernelLog ?? "-") }
        #expect(logs.all == ["-"])
    }

    @Test("a failing repeat=2048 prints at most three lines for its statement: the first failure with its iteration, iova and vaddr, and how many more failed the same way")
    func repeatSummarised() throws {
        let trace = try parseText("""
            memlock 1G
            memory vaddr=0x7f0000000000 size=4G page=2M
            map iova=0x100000000 vaddr=0x7f0000000000 size=2M prot=rw repeat=2048 => ok

            """)
        let replayer = Replayer(backends: [ModelBackend()])
        let text = textReport([replayer.run(trace)])
        var lines: [String] = []
        var inStatement = false
        for line in text.split(separator: "\n").map(String.init) {
            if line.hasPrefix("t.trace:3:") { inStatement = true } else if !line.hasPrefix("    ") { inStatement = false }
            if inStatement { lines.append(line) }
        }
        #expect(lines.count >= 1 && lines.count <= 3, "\(lines)")
        // Iteration 513 is the first over 1 GiB: iova 4 GiB + 512 x 2 MiB.
        #expect(lines.first?.contains("map iova=0x140000000 vaddr=0x7f0040000000") == true, "\(lines)")
        #expect(lines.first?.contains("iteration 513 of 2048; 1535 more failed the same way") == true, "\(lines)")
    }

    @Test("a reason that only repeats the errno is a fallback, not a reason")
    func fallbackRejected() {
        #expect(isFallback("iommufd: EINVAL (iopt_map_user_pages)", for: Answer(.errno(.EINVAL))))
        #expect(isFallback("ENOMEM (vfio_dma_do_map)", for: Answer(.errno(.ENOMEM))))
        #expect(!isFallback("iommufd: size 0 (iopt_alloc_pages)", for: Answer(.errno(.EINVAL))))
        #expect(!namesKernelFunction("EINVAL"))
        #expect(namesKernelFunction("x (vfio_iommu_replay → vfio_pin_pages_remote)"))
    }

    @Test("=> error holds for any errno, not for ok, a value or hang")
    func anyError() {
        #expect(Answer.Status.anyError.accepts(.errno(.EINVAL)))
        #expect(Answer.Status.anyError.accepts(.errno(.ENOMEM)))
        #expect(!Answer.Status.anyError.accepts(.ok))
        #expect(!Answer.Status.anyError.accepts(.value(0)))
        #expect(!Answer.Status.anyError.accepts(.errno(.hang)))
        #expect(!Answer.Status.errno(.EINVAL).accepts(.anyError))
    }

    @Test("check pte reads the leaf that translates one IOVA: 2M where both addresses are 2M-aligned, 4K where not, none elsewhere")
    func ptePerIOVA() throws {
        let trace = try parseText("""
            memory vaddr=0x7f0000000000 size=4M page=2M phys=0x40000000
            map iova=0x200000 vaddr=0x7f0000000000 size=2M prot=rw => ok
            map iova=0x601000 vaddr=0x7f0000200000 size=2M prot=rw => ok
            check pte iova=0x3ff000 => 2M
            check pte iova=0x601000 => 4K
            check pte iova=0x400000 => none
            check pte iova=0x200000 => 4K

            """)
        let report = Replayer(backends: [ModelBackend()]).run(trace)
        let checks = report.outcomes.filter { $0.statement.hasPrefix("check pte") }
        #expect(checks.map { $0.got[0].text } == ["2M", "4K", "none", "2M"])
        #expect(checks.map(\.failed) == [false, false, false, true])
    }
}

/// Texts gathered by a replay's callback.
final class Texts { var all: [String] = [] }

func parseText(_ text: String) throws -> Trace {
    switch parseTrace(bytes: Array(text.utf8), file: "t.trace") {
    case .success(let t): return t
    case .failure(let f): throw TraceLoadError(message: f.diagnostics.map(\.description).joined(separator: "\n"))
    }
}

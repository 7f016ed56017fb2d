import Testing
import VFIOCore
import VFIOReplay
import VFIOTrace

/// A backend that answers from a script, so the engine's comparison and
/// reports are checked without the model.
final class ScriptedBackend: Backend {
    var name: String
    var kernel: String { "scripted" }
    var mapAnswers: [Result<Void, Errno>]
    var unmapAnswer: Result<UInt64, Errno> = .success(0)
    var locked: Observation<UInt64> = .value(0)
    var calls: [String] = []

    init(name: String = "fake", mapAnswers: [Result<Void, Errno>] = []) {
        self.name = name
        self.mapAnswers = mapAnswers
    }

    func setKernel(_ version: KernelVersion) throws(BackendError) { calls.append("kernel \(version)") }
    func setMemlock(_ bytes: UInt64?) throws(BackendError) { calls.append("memlock") }
    func setCapIPCLock(_ on: Bool) throws(BackendError) {}
    func setDMAEntryLimit(_ limit: UInt32) throws(BackendError) {}
    func addMemory(_ spec: MemorySpec) throws(BackendError) -> MemoryRegion {
        MemoryRegion(vaddr: spec.vaddr, size: spec.size, layout: .contiguous(base: 0))
    }
    func addObservedMemory(_ region: MemoryRegion) throws(BackendError) {}
    func attachGroup(_ spec: DomainSpec) -> Result<Void, Errno> { calls.append("attach \(spec.name)"); return .success(()) }
    func detachGroup(_ name: String) -> Result<Void, Errno> { .success(()) }
    func setIOMMU(_ type: Extension) -> Result<Void, Errno> { calls.append("set \(type)"); return .success(()) }
    func checkExtension(_ ext: Extension) -> Result<UInt32, Errno> { .success(1) }
    func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno> { .failure(.EINVAL) }
    func mapDMA(_ request: MapDMA) -> Result<Void, Errno> {
        calls.append("map")
        return mapAnswers.isEmpty ? .success(()) : mapAnswers.removeFirst()
    }
    func unmapDMA(_ request: UnmapDMA) -> Result<UInt64, Errno> { unmapAnswer }
    func dirtyPages(_ request: DirtyPages) -> Result<Void, Errno> { .success(()) }
    func dirtyBitmap() -> [IOVARange]? { nil }
    func lockedMemory() -> Observation<UInt64> { locked }
    func mappingCount() -> Observation<UInt64> { .value(0) }
    func pageTableEntries(domain: String?) -> Observation<PTECounts> { .notObservable("scripted") }
    var closeProblems: [BackendProblem] = []
    var closed = 0
    func close() -> [BackendProblem] { closed += 1; return closeProblems }
}

func parse(_ text: String) -> Trace {
    guard case .success(let t) = parseTrace(bytes: Array(text.utf8), file: "t.trace") else { fatalError("test trace does not parse") }
    return t
}

@Suite("The replay engine")
struct ReplayEngineTests {
    @Test("setup runs before the first operation: d0 is attached, then SET_IOMMU")
    func setupOrder() {
        let b = ScriptedBackend()
        _ = Replayer(backends: [b]).run(parse("memlock 1M\nmap iova=0 vaddr=0 size=4K prot=rw => ok\n"))
        #expect(b.calls == ["memlock", "attach d0", "set type1v2", "map"])
    }

    @Test("an answer that matches holds; a different errno fails the file")
    func comparison() {
        let b = ScriptedBackend(mapAnswers: [.success(()), .failure(.EEXIST)])
        let report = Replayer(backends: [b]).run(parse("""
            map iova=0 vaddr=0 size=4K prot=rw => ok
            map iova=0 vaddr=0 size=4K prot=rw => EINVAL
            """))
        #expect(report.outcomes.map(\.passed) == [true, false])
        #expect(!report.ok)
        #expect(textReport([report]).contains("t.trace:2: map iova=0x0 vaddr=0x0 size=4K prot=rw: expected EINVAL, got EEXIST"))
    }

    @Test("only the keys written are compared")
    func partialKeys() {
        let b = ScriptedBackend()
        b.unmapAnswer = .success(8192)
        let report = Replayer(backends: [b]).run(parse("unmap iova=0 size=8K => ok\nunmap iova=0 size=8K => ok size=4K\n"))
        #expect(report.outcomes.map(\.passed) == [true, false])
    }

    @Test("an operation without an answer prints what it got and fails nothing")
    func noAnswer() {
        let report = Replayer(backends: [ScriptedBackend()]).run(parse("map iova=0 vaddr=0 size=4K prot=rw\n"))
        #expect(report.ok)
        #expect(textReport([report]).contains("t.trace:1: map iova=0x0 vaddr=0x0 size=4K prot=rw => ok"))
    }

    @Test("a check that cannot be observed is skipped, not passed or failed")
    func notObservable() {
        let report = Replayer(backends: [ScriptedBackend()]).run(parse("check ptes=4K:1\n"))
        #expect(report.outcomes.first?.skipped == true)
        #expect(report.ok)
        #expect(textReport([report]).hasSuffix("0 passed, 0 failed, 1 skipped\n"))
    }

    @Test("two backends that answer differently disagree, even with no answer written")
    func disagreement() {
        let a = ScriptedBackend(name: "kernel", mapAnswers: [.failure(.ENOMEM)])
        let b = ScriptedBackend(name: "model")
        let report = Replayer(backends: [a, b]).run(parse("map iova=0 vaddr=0 size=4K prot=rw\n"))
        #expect(!report.ok)
        #expect(textReport([report]).contains("kernel ENOMEM, model ok"))
    }

    @Test("the JSON and JUnit reports carry every answered operation")
    func machineReports() {
        let b = ScriptedBackend(mapAnswers: [.failure(.EEXIST)])
        let report = Replayer(backends: [b]).run(parse("map iova=0 vaddr=0 size=4K prot=rw => ok\n"))
        let json = jsonReport([report])
        #expect(json.contains("\"expected\":{\"status\":\"ok\"}"))
        #expect(json.contains("\"answer\":{\"status\":\"errno\",\"errno\":\"EEXIST\",\"errnoValue\":17}"))
        #expect(json.contains("\"held\":false"))
        let junit = junitReport([report])
        #expect(junit.contains("<failure message=\"expected ok, got fake EEXIST\"/>"))
        #expect(junit.contains("tests=\"1\" failures=\"1\""))
    }
}

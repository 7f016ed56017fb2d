import ScriptedSystem
import Testing
import VFIOCore
import VFIOKernel
@testable import VFIOLane
import VFIOReplay
import VFIOTrace

func parse(_ text: String, file: String = "t.trace") -> Trace {
    guard case .success(let t) = parseTrace(bytes: Array(text.utf8), file: file) else { fatalError("test trace does not parse") }
    return t
}

@Suite("Which traces a real machine runs")
struct SkipPolicyTests {
    let policy = SkipPolicy(running: KernelVersion(6, 12), groups: 3, hasBAR: false)

    @Test("a trace without anything the machine lacks runs")
    func runs() {
        #expect(policy.reason(parse("domain d0 pgsizes=4K\ndomain d1 pgsizes=4K\nmap iova=0 vaddr=0x1000 size=4K prot=rw\n")) == nil)
    }

    @Test("a '# lane: skip' comment keeps a trace off real hardware, with its reason; '# lane: not-applicable' says it does not apply")
    func marker() {
        #expect(policy.verdict(parse("#   lane: skip needs 8 GiB\nmap iova=0 vaddr=0 size=4K prot=rw\n")) == .skip("needs 8 GiB"))
        #expect(policy.verdict(parse("# lane: skip\n")) == .skip("marked lane: skip"))
        #expect(policy.verdict(parse("# lane: not-applicable needs an SMMU\n")) == .notApplicable("needs an SMMU"))
    }

    @Test("what a trace needs decides before its marker: an iommufd trace marked skip is not applicable where there is no /dev/iommu")
    func needsBeforeMarker() {
        var without = policy
        without.hasIOMMUFD = false
        let trace = parse("# lane: skip changes dma_entry_limit\ncontainer iommufd\n")
        #expect(without.verdict(trace) == .notApplicable("container iommufd needs /dev/iommu (CONFIG_IOMMUFD), and this kernel has none"))
        #expect(policy.verdict(trace) == .skip("changes dma_entry_limit"))
    }

    @Test("a trace pinned to another kernel does not apply; one pinned to this kernel runs")
    func pinned() {
        #expect(policy.verdict(parse("kernel 6.1\n")) == .notApplicable("pinned to kernel 6.1 (this is 6.12)"))
        #expect(policy.reason(parse("kernel 6.12\n")) == nil)
        let lenient = SkipPolicy(running: KernelVersion(6, 12), sameKernel: { _, _ in true })
        #expect(lenient.reason(parse("kernel 6.1\n")) == nil)
    }

    @Test("more groups than the machine has are skipped; an emulated group, or pfnmap memory without a BAR, do not apply")
    func hardware() {
        let four = (0..<4).map { "domain d\($0) pgsizes=4K\n" }.joined()
        #expect(policy.verdict(parse(four)) == .skip("4 groups, and this machine has 3"))
        #expect(policy.verdict(parse("domain m emulated=yes pgsizes=4K\n"))
                == .notApplicable("an emulated (mdev) group needs an mdev device, and the lane's machines have none"))
        #expect(policy.verdict(parse("memory vaddr=0x1000 size=4K pfnmap\n")) == .notApplicable("pfnmap memory needs a device BAR, and none is here"))
        let withBAR = SkipPolicy(running: KernelVersion(6, 12), groups: 3, hasBAR: true)
        #expect(withBAR.reason(parse("memory vaddr=0x1000 size=4K pfnmap\n")) == nil)
    }

    @Test("an iommufd container, the first or another one of the process, does not apply on a kernel without /dev/iommu")
    func iommufd() {
        var without = policy
        without.hasIOMMUFD = false
        let reason = "container iommufd needs /dev/iommu (CONFIG_IOMMUFD), and this kernel has none"
        #expect(without.verdict(parse("container iommufd\n")) == .notApplicable(reason))
        #expect(without.verdict(parse("container c1 iommufd\n")) == .notApplicable(reason))
        #expect(without.reason(parse("container c1 type1\n")) == nil)
        #expect(policy.reason(parse("container c1 iommufd\n")) == nil)
    }
}

@Suite("A report's trip between processes")
struct ReportCodecTests {
    func sample() -> FileReport {
        var r = FileReport(file: "a\tb.trace", kernels: [("kernel", "6.12.38"), ("model", "6.12")])
        r.outcomes.append(Outcome(line: 3, column: 1, statement: "map iova=0 vaddr=0x1000 size=4K prot=rw", expected: "ok",
                                  got: [Outcome.Got(backend: "kernel", text: "ok", held: true),
                                        Outcome.Got(backend: "model", text: "EINVAL\\n", held: false)]))
        r.outcomes[0].got[1].reason = "why\tso"
        r.outcomes[0].got[1].kernelLog = "vfio_pin_pages_remote: RLIMIT_MEMLOCK (4194304) exceeded"
        r.outcomes.append(Outcome(line: 4, column: 1, statement: "check ptes=4K:1", expected: nil,
                                  got: [Outcome.Got(backend: "kernel", text: "not observable (x)", held: nil, observed: false)]))
        r.problems = [
            ReportProblem(line: 2, .setup(backend: "kernel", message: "mmap: ENOMEM\nsecond line")),
            ReportProblem(.backend("model", .invariantBroken(after: "MAP_DMA", detail: "tree\tunordered"))),
            ReportProblem(.backend("kernel", .lockedAfterRelease(bytes: 8192))),
            ReportProblem(line: 5, .property(name: "failed-op-changes-nothing", detail: "locked 4K -> 8K")),
            ReportProblem(line: 1, .setupDifference("trace domain d0 ...")),
            ReportProblem(.aborted("died")),
        ]
        return r
    }

    @Test("every outcome and every kind of problem survives encoding, tabs, newlines and backslashes included")
    func roundTrip() throws {
        let r = sample()
        let back = try #require(ReportCodec.decode(ReportCodec.encode(r)))
        #expect(back.file == r.file)
        #expect(back.kernels.map { "\($0.backend) \($0.kernel)" } == r.kernels.map { "\($0.backend) \($0.kernel)" })
        #expect(back.outcomes.map(\.statement) == r.outcomes.map(\.statement))
        #expect(back.outcomes.map(\.expected) == r.outcomes.map(\.expected))
        #expect(back.outcomes.flatMap(\.got).map(\.text) == r.outcomes.flatMap(\.got).map(\.text))
        #expect(back.outcomes.flatMap(\.got).map(\.held) == r.outcomes.flatMap(\.got).map(\.held))
        #expect(back.outcomes.flatMap(\.got).map(\.observed) == r.outcomes.flatMap(\.got).map(\.observed))
        #expect(back.outcomes.flatMap(\.got).map(\.reason) == r.outcomes.flatMap(\.got).map(\.reason))
        #expect(back.outcomes.flatMap(\.got).map(\.kernelLog) == r.outcomes.flatMap(\.got).map(\.kernelLog))
        #expect(back.problems == r.problems)
        #expect(back.errors.count == 4 && back.notes.count == 2)
    }

    @Test("a report cut short (the writer died) or with an unknown record does not decode")
    func truncated() {
        let text = ReportCodec.encode(sample())
        #expect(ReportCodec.decode(String(text.dropLast("END\n".count))) == nil)
        #expect(ReportCodec.decode("F\tx\nZ\t1\nEND\n") == nil)
        #expect(ReportCodec.decode("F\tx\nP\t0\tleak\tkernel\tlots\nEND\n") == nil)
    }
}

@Suite("A process per trace")
struct IsolationTests {
    @Test("the child's report comes back whole")
    func comesBack() {
        let sys = ScriptedSystemCalls()
        let r = Isolation.run(file: "t.trace", sys: sys) { ReportCodecTests().sample() }
        #expect(r.problems == ReportCodecTests().sample().problems)
    }

    @Test("a child that dies makes the file an error naming the signal")
    func dies() {
        let sys = ScriptedSystemCalls()
        sys.child = { _ in .failure(.signalled(9)) }
        let r = Isolation.run(file: "t.trace", sys: sys) { FileReport(file: "t.trace", kernels: []) }
        #expect(r.file == "t.trace")
        #expect(r.errors.map(\.message) == ["the replay died of signal 9"])
        #expect(!r.ok)
    }

    @Test("a child that sends half a report makes the file an error")
    func halfReport() {
        let sys = ScriptedSystemCalls()
        sys.child = { _ in .success(Array("F\tt.trace\nO\t1\t1\tmap".utf8)) }
        let r = Isolation.run(file: "t.trace", sys: sys) { FileReport(file: "t.trace", kernels: []) }
        #expect(r.errors.map(\.message) == ["the replay process sent an incomplete report"])
    }
}

@Suite("Replays on a real machine")
struct ReplayRunTests {
    @Test("hardware comes from VFIO_GROUPS (or VFIO_GROUP), VFIO_IVSHMEM_BAR, VFIO_LANE_IOMMU and VFIO_LANE_PTES, read once by the caller")
    func environment() {
        var env: [String: String] = [:]
        #expect(Hardware(environment: { env[$0] }) == nil)
        env["VFIO_GROUP"] = "/dev/vfio/3"
        #expect(Hardware(environment: { env[$0] }) == Hardware(groups: ["/dev/vfio/3"]))
        env["VFIO_GROUPS"] = "/dev/vfio/3 /dev/vfio/4,/dev/vfio/5"
        env["VFIO_IVSHMEM_BAR"] = "/sys/bus/pci/devices/0000:00:05.0/resource2"
        env["VFIO_LANE_IOMMU"] = "intel-iommu-48"
        env["VFIO_LANE_PTES"] = "/dev/ttyS1"
        #expect(Hardware(environment: { env[$0] }) == Hardware(groups: ["/dev/vfio/3", "/dev/vfio/4", "/dev/vfio/5"],
                                                                bar: "/sys/bus/pci/devices/0000:00:05.0/resource2",
                                                                iommu: "intel-iommu-48", pageTableWalker: "/dev/ttyS1"))
    }

    @Test("a group that cannot be opened stops the run before any trace, with the reason")
    func noGroup() {
        let sys = ScriptedSystemCalls()
        let run = ReplayRun.kernel([parse("map iova=0 vaddr=0x1000 size=4K prot=rw\n")], hardware: Hardware(groups: ["/dev/vfio/3"]),
                                   withModel: true, sys: sys)
        guard case .failure(let e) = run else { Issue.record("expected a failure"); return }
        #expect(e.message == "kernel backend: no IOMMU group 3 (/sys/kernel/iommu_groups/3/devices is missing)")
    }
}

@Suite("Module parameters across the process per trace")
struct HostSafetyTests {
    static let limit = "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit"

    /// A host with viable group 7 whose dma_entry_limit is `limit`.
    func host(limit: String = "65535") -> ScriptedSystemCalls { .host(limit: limit) }

    @Test("a child that dies after its parent changed the limit for it still gets the value put back")
    func restoredAfterTheChildDies() throws {
        let sys = host()
        // Each child runs its trace (asking for 2), then dies of SIGKILL.
        var seenByChild: [String?] = []
        sys.child = { body in
            seenByChild.append(sys.files[Self.limit].map { String($0.filter(\.isNumber)) })
            _ = body()
            return .failure(.signalled(9))
        }
        let trace = parse("dma-entry-limit 2\nmemory vaddr=0x7f0000000000 size=4K\nmap iova=0 vaddr=0x7f0000000000 size=4K prot=rw\n")
        let run = try ReplayRun.kernel([trace, trace], hardware: Hardware(groups: ["/dev/vfio/7"]), withModel: false,
                                       allowModuleParams: true, sys: sys).get()
        #expect(run.reports.map { $0.errors.map(\.message) } == [["the replay died of signal 9"], ["the replay died of signal 9"]])
        // Put back as soon as each child is gone, not only at the end of the run.
        #expect(seenByChild == ["65535", "65535"])
        #expect(sys.log.filter { $0.hasPrefix("write \(Self.limit)") }
                == ["write \(Self.limit) 2", "write \(Self.limit) 65535", "write \(Self.limit) 2", "write \(Self.limit) 65535"])
        #expect(sys.files["/run/vfio-sim/module-params"] == nil)
    }

    @Test("without --allow-module-params a trace's dma-entry-limit is a setup error of that trace and nothing is written")
    func traceRefused() throws {
        let sys = host()
        let trace = parse("dma-entry-limit 2\nmemory vaddr=0x7f0000000000 size=4K\nmap iova=0 vaddr=0x7f0000000000 size=4K prot=rw\n")
        let run = try ReplayRun.kernel([trace], hardware: Hardware(groups: ["/dev/vfio/7"]), withModel: false, sys: sys).get()
        let message = try #require(run.reports.first?.errors.first?.message)
        #expect(message.contains("refusing to change vfio_iommu_type1.dma_entry_limit from 65535 to 2"))
        #expect(!sys.log.contains { $0.hasPrefix("write \(Self.limit)") })
    }

    @Test("a host whose limit is not the traces' 65535 is refused before any trace without permission, and set per trace with it")
    func hostValueDiffers() throws {
        let sys = host(limit: "4096")
        let trace = parse("memory vaddr=0x7f0000000000 size=4K\nmap iova=0 vaddr=0x7f0000000000 size=4K prot=rw\n")
        guard case .failure(let e) = ReplayRun.kernel([trace], hardware: Hardware(groups: ["/dev/vfio/7"]), withModel: false, sys: sys) else {
            Issue.record("ran on a host whose limit it may not set"); return
        }
        #expect(e.message.hasPrefix("vfio_iommu_type1.dma_entry_limit is 4096 on this machine and traces assume 65535: "
                                    + "vfio-sim changes a module parameter only with --allow-module-params"))
        #expect(!sys.log.contains { $0.hasPrefix("open /dev/vfio") })
        _ = try ReplayRun.kernel([trace], hardware: Hardware(groups: ["/dev/vfio/7"]), withModel: false,
                                 allowModuleParams: true, sys: sys).get()
        #expect(sys.log.filter { $0.hasPrefix("write \(Self.limit)") } == ["write \(Self.limit) 65535", "write \(Self.limit) 4096"])
    }
}

@Suite("Counting a trace's groups")
struct GroupCountTests {
    @Test("the d0 a first operation attaches counts as a group when no domain came before it")
    func implicitD0() {
        let policy = SkipPolicy(running: KernelVersion(6, 12), groups: 3)
        let trace = parse("map iova=0 vaddr=0x1000 size=4K prot=rw\ndomain a pgsizes=4K\ndomain b pgsizes=4K\ndomain c pgsizes=4K\n")
        #expect(policy.reason(trace) == "4 groups, and this machine has 3")
        #expect(SkipPolicy(running: KernelVersion(6, 12), groups: 4).reason(trace) == nil)
    }
}

@Suite("The lane's report of the kernel's log")
struct KernelLogReportTests {
    @Test("a model-versus-kernel report lists each line the model says the kernel logged, with file and line, for the lane to find in dmesg")
    func listsPredictedLines() {
        var r = FileReport(file: "/files/memlock-limit.trace", kernels: [("kernel", "6.12.118"), ("model", "6.12")])
        var o = Outcome(line: 9, column: 1, statement: "map iova=0x400000 vaddr=0x7f0000200000 size=4M prot=rw", expected: "ENOMEM",
                        got: [Outcome.Got(backend: "kernel", text: "ENOMEM", held: true), Outcome.Got(backend: "model", text: "ENOMEM", held: true)])
        o.got[1].kernelLog = "vfio_pin_pages_remote: RLIMIT_MEMLOCK (4194304) exceeded"
        r.outcomes.append(o)
        let (text, summary) = KernelLane.report([r], skipped: [], kernel: "6.12", iommu: "intel-iommu")
        #expect(text.contains("/files/memlock-limit.trace:9: kernel log: vfio_pin_pages_remote: RLIMIT_MEMLOCK (4194304) exceeded\n"))
        #expect(summary.ok)
    }
}

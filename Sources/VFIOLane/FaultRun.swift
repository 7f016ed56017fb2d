import VFIOCore
import VFIOKernel
import VFIOReplay
import VFIOTrace

/// `vfio-sim faults`: kernel replays killed at random points, and what each
/// kill leaves behind.
///
/// Each run is a supervising process (as `vfio-sim replay` is: it holds the
/// lock and changes `dma_entry_limit`) whose child replays one trace on the
/// kernel and, after its K-th ioctl, kills itself (SIGKILL, SIGTERM, SIGINT,
/// a trap) or its supervisor (SIGKILL, SIGTERM, SIGINT). After each kill:
/// the parameter has its original value and no record is left (after a
/// supervisor's SIGKILL, the next run restores it and says so); the group
/// has no container, so nothing stays pinned; the next run opens the group,
/// maps and unmaps with the locked memory expected, and leaves nothing
/// changed.
public struct FaultRun {
    public enum Fault: String, CaseIterable, Sendable {
        case replayKill = "SIGKILL to the replay"
        case replayTerm = "SIGTERM to the replay"
        case replayInt = "SIGINT to the replay"
        case replayTrap = "a trap in the replay"
        case supervisorKill = "SIGKILL to the supervisor"
        case supervisorTerm = "SIGTERM to the supervisor"
        case supervisorInt = "SIGINT to the supervisor"

        var signal: Int32? {
            switch self {
            case .replayKill, .supervisorKill: 9
            case .replayTerm, .supervisorTerm: 15
            case .replayInt, .supervisorInt: 2
            case .replayTrap: nil
            }
        }
        var hitsSupervisor: Bool { self == .supervisorKill || self == .supervisorTerm || self == .supervisorInt }
    }

    public struct Kill: Sendable {
        public var file: String
        public var fault: Fault
        public var afterIoctl: Int
        /// How the killed process ended.
        public var ended: String
        /// What was left behind; empty when the kill was survived.
        public var problems: [String]
        public var survived: Bool { problems.isEmpty }
        public var description: String {
            "\(file): \(fault.rawValue) after ioctl \(afterIoctl) (\(ended))"
                + (problems.isEmpty ? "" : ": " + problems.joined(separator: "; "))
        }
    }

    public var kills: [Kill] = []
    /// Restorations of values a killed supervisor left, as the next run said them.
    public var recoveries = 0
    public var survived: Int { kills.filter(\.survived).count }
    public var summary: String {
        "faults: \(survived)/\(kills.count) kills survived (entry limit restored, group reusable, nothing pinned)"
    }

    /// The next run after a kill: a group it must be able to open and use,
    /// a parameter it changes, and the locked memory it must see.
    public static let nextRun = """
        # vfio-sim faults: the run after a kill
        dma-entry-limit 1000
        memory vaddr=0x7f0000000000 size=64K
        map iova=0x100000 vaddr=0x7f0000000000 size=64K prot=rw => ok
        check locked=64K
        check mappings=1
        unmap iova=0x100000 size=64K => ok size=64K
        check locked=0
        check mappings=0

        """

    public static func run(_ traces: [Trace], hardware: Hardware, runs: Int, seed: UInt64,
                           sys: SystemCalls = LinuxSystemCalls(), onKill: (Kill) -> Void = { _ in }) -> Result<FaultRun, LaneError> {
        guard !traces.isEmpty else { return .failure(LaneError("faults needs at least one trace")) }
        guard case .success(let next) = parseTrace(bytes: Array(nextRun.utf8), file: "faults-next-run") else {
            return .failure(LaneError("the next-run trace does not parse"))
        }
        let p = ModuleParameter.dmaEntryLimit
        // A record a crashed run left is put back first, as any run does.
        var said: [String] = []
        switch HostSafety.begin(sys: sys, allowModuleParams: true, say: { said.append($0) }) {
        case .success(let g): g.end()
        case .failure(let e): return .failure(e)
        }
        guard let original = p.read(sys) else { return .failure(LaneError("cannot read \(p.path)")) }

        // How many ioctls each trace makes when nothing kills it.
        var counts: [Int] = []
        for trace in traces {
            let r = supervise(trace, hardware: hardware, fault: nil, after: .max, sys: sys)
            guard case .success(let bytes) = r, let n = Int(String(decoding: bytes, as: UTF8.self)), n > 0 else {
                return .failure(LaneError("\(trace.file): the replay without a fault failed (\(r))"))
            }
            counts.append(n)
        }

        var result = FaultRun()
        var rng = SeededRandom(seed: seed)
        for i in 0..<runs {
            let fault = Fault.allCases[i % Fault.allCases.count]
            let t = Int(rng.below(UInt64(traces.count)))
            let after = 1 + Int(rng.below(UInt64(counts[t])))
            let r = supervise(traces[t], hardware: hardware, fault: fault, after: after, sys: sys)
            var kill = Kill(file: traces[t].file, fault: fault, afterIoctl: after, ended: "", problems: [])
            noteEnd(r, of: fault, kill: &kill)
            // Whatever killed what, the supervisor's handler or its restore
            // after the child has put the value back, except after its own
            // SIGKILL: then the next run does.
            let now = p.read(sys)
            let recordLeft = sys.readText(ModuleParameterGuard.recordPath) != nil
            let leftChanged = now != original || recordLeft
            if fault != .supervisorKill {
                if now != original { kill.problems.append("\(p.rawValue) is \(now ?? "unreadable"), not \(original)") }
                if recordLeft { kill.problems.append("\(ModuleParameterGuard.recordPath) is still there") }
            }
            checkReleased(hardware.groups[0], sys: sys, kill: &kill)
            // The next run: restores what a killed supervisor left (and says
            // so), then uses the group.
            said = []
            switch ReplayRun.kernel([next], hardware: hardware, withModel: false, allowModuleParams: true,
                                    say: { said.append($0) }, sys: sys) {
            case .failure(let e): kill.problems.append("the next run could not start: \(e.message)")
            case .success(let run):
                for report in run.reports where !report.ok {
                    let wrong = report.outcomes.filter { $0.got.contains { $0.held == false } }.map { "line \($0.line): \($0.got.map(\.text).joined(separator: ", "))" }
                    kill.problems.append("the next run failed: " + (report.errors.map(\.message) + wrong).joined(separator: "; "))
                }
            }
            if leftChanged {
                if said.contains(where: { $0.contains("restored its original value") || $0.contains("it is back at its original") }) {
                    result.recoveries += 1
                } else {
                    kill.problems.append("the next run did not say it restored \(p.rawValue) (it said: \(said.joined(separator: " | ")))")
                }
            }
            if p.read(sys) != original { kill.problems.append("after the next run \(p.rawValue) is \(p.read(sys) ?? "unreadable")") }
            if sys.readText(ModuleParameterGuard.recordPath) != nil { kill.problems.append("after the next run the record is still there") }
            result.kills.append(kill)
            onKill(kill)
        }
        return .success(result)
    }

    /// Did the fault fire? The supervisor's own end, or its report of
    /// how the replay ended.
    static func noteEnd(_ r: Result<[UInt8], ChildFailure>, of fault: Fault, kill: inout Kill) {
        switch r {
        case .failure(let why):
            switch why {
            case .signalled(let sig): kill.ended = "the supervisor died of signal \(sig)"
            case .exited(let code): kill.ended = "the supervisor exited with status \(code)"
            case .couldNotStart(let reason): kill.ended = "the supervisor could not start: \(reason)"
            }
            if !fault.hitsSupervisor { kill.problems.append("the supervisor died, not the replay") }
        case .success(let bytes):
            kill.ended = String(decoding: bytes, as: UTF8.self)
            if fault.hitsSupervisor || !kill.ended.hasPrefix("replay: ") { kill.problems.append("the fault did not fire") }
        }
    }

    /// Nothing pinned: the dead replay's container is gone (the group
    /// is free and has none). Its process may take a moment to die.
    static func checkReleased(_ group: String, sys: SystemCalls, kill: inout Kill) {
        var status = KernelBackend.groupStatus(group, sys: sys)
        for _ in 0..<60 {
            if case .success(let flags) = status, !KernelBackend.hasContainer(flags) { break }
            sys.pause(milliseconds: 50)
            status = KernelBackend.groupStatus(group, sys: sys)
        }
        switch status {
        case .success(let flags) where KernelBackend.hasContainer(flags):
            kill.problems.append("\(group) still has a container (pages stay pinned)")
        case .failure(let e): kill.problems.append("\(group) cannot be opened: \(e)")
        default: break
        }
    }

    /// One supervised replay: a process that, as `vfio-sim replay` does,
    /// takes the lock and serves parameter changes to a child replaying
    /// `trace` on the kernel alone. That child counts its ioctls and after
    /// the `after`-th applies `fault`. The supervisor answers how the replay
    /// ended (`replay: ...`) or, with no fault, how many ioctls it made.
    static func supervise(_ trace: Trace, hardware: Hardware, fault: Fault?, after: Int,
                          sys: SystemCalls) -> Result<[UInt8], ChildFailure> {
        sys.inChild {
            let parameters = ModuleParameterGuard(sys: sys, allowed: true, say: { _ in })
            guard case .success = parameters.begin() else { return Array("supervisor: no lock".utf8) }
            defer { parameters.end() }
            let supervisor = sys.processID
            let r = sys.inChild(serving: { parameters.serve($0) }) {
                let faulty = FaultInjection(sys, process: sys, after: after, fault: fault, supervisor: supervisor)
                if let kb = try? KernelBackend(groupPaths: hardware.groups, barPath: hardware.bar, sys: sys,
                                               pageTableWalker: hardware.pageTableWalker, deviceIO: faulty) {
                    _ = Replayer(backends: [kb]).run(trace)
                }
                return Array(String(faulty.ioctls).utf8)
            }
            parameters.restore()
            if fault == nil { return (try? r.get()) ?? Array("replay failed: \(r)".utf8) }
            switch r {
            case .success: return Array("completed".utf8)
            case .failure(let why): return Array("replay: \(why)".utf8)
            }
        }
    }
}

/// The device seam of a replay that dies after its `after`-th ioctl: every
/// open, ioctl and read passes through to `base`; the fault strikes when
/// that ioctl has returned. Every other system call goes to the machine
/// unwrapped (`KernelBackend(deviceIO:)`).
final class FaultInjection: DeviceIO {
    let base: DeviceIO
    /// Who the fault strikes: this process or the supervisor.
    let process: ProcessControl
    let after: Int
    let fault: FaultRun.Fault?
    let supervisor: Int32
    private(set) var ioctls = 0

    init(_ base: DeviceIO, process: ProcessControl, after: Int, fault: FaultRun.Fault?, supervisor: Int32) {
        self.base = base; self.process = process; self.after = after; self.fault = fault; self.supervisor = supervisor
    }

    func counted<T>(_ r: T) -> T {
        ioctls += 1
        guard ioctls == after, let fault else { return r }
        if fault == .replayTrap { process.trap() }
        if let signal = fault.signal {
            _ = process.kill(fault.hitsSupervisor ? supervisor : process.processID, signal)
        }
        return r
    }

    func ioctl(_ fd: Int32, _ request: UInt, buffer: UnsafeMutableRawBufferPointer) -> Result<Int32, Errno> {
        counted(base.ioctl(fd, request, buffer: buffer))
    }
    func ioctl(_ fd: Int32, _ request: UInt, value: UInt) -> Result<Int32, Errno> { counted(base.ioctl(fd, request, value: value)) }
    func open(_ path: String, _ flags: Int32) -> Result<Int32, Errno> { base.open(path, flags) }
    func close(_ fd: Int32) { base.close(fd) }
    func pread(_ fd: Int32, count: Int, offset: UInt64) -> [UInt8]? { base.pread(fd, count: count, offset: offset) }
}

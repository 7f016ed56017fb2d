import VFIOCore

/// A module parameter vfio-sim may change for a trace. Only these: the
/// parent never writes a path a child or a file names.
public enum ModuleParameter: String, Sendable, CaseIterable {
    case dmaEntryLimit = "vfio_iommu_type1.dma_entry_limit"

    /// The value every trace assumes unless it says otherwise.
    public var traceDefault: String {
        switch self {
        case .dmaEntryLimit: "65535"
        }
    }

    public var path: String {
        switch self {
        case .dmaEntryLimit: "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit"
        }
    }

    /// Its value now, as sysfs shows it (digits only), or nil.
    public func read(_ sys: SystemCalls) -> String? {
        sys.readText(path).map { String($0.filter(\.isNumber)) }.flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// Changes module parameters for the traces of one run, and puts them
/// back, whatever ends the processes that use them.
///
/// It lives in the process that supervises the replays (the one that forks
/// a child per trace) and is the only writer of a module parameter:
///
/// - nothing changes unless `allowed` (`--allow-module-params`); a refusal
///   names the parameter, its value, and that every container opened
///   meanwhile gets it;
/// - `begin()` takes `/run/vfio-sim/lock` (waiting, and saying so, while
///   another run holds it), then restores any value a killed run left
///   behind, as its record in `/run/vfio-sim/module-params` shows, and says
///   so;
/// - a change is recorded there (parameter, original value, pid) before it
///   is made, and a signal handler (SIGINT, SIGTERM, SIGHUP) is armed to put
///   it back;
/// - `restore()` (after each child, however it ended) writes the original
///   back and removes the record; `end()` restores and unlocks.
public final class ModuleParameterGuard {
    public static let directory = "/run/vfio-sim"
    public static let recordPath = "/run/vfio-sim/module-params"
    public static let lockPath = "/run/vfio-sim/lock"

    let sys: SystemCalls
    public let allowed: Bool
    /// Where the guard's messages go (stderr in the command line).
    let say: (String) -> Void
    var lockFD: Int32 = -1
    /// The value each changed parameter had before this run changed it.
    public private(set) var originals: [(parameter: ModuleParameter, value: String)] = []

    public init(sys: SystemCalls, allowed: Bool, say: @escaping (String) -> Void) {
        self.sys = sys
        self.allowed = allowed
        self.say = say
    }

    deinit { end() }

    /// Takes the lock, then puts back what a killed run left behind.
    /// Without `wait`, a lock held by another run is a refusal.
    public func begin(wait: Bool = true) -> Result<Void, BackendError> {
        guard lockFD < 0 else { return .success(()) }
        _ = sys.makeDirectory("/run", mode: 0o755)
        if let e = sys.makeDirectory(Self.directory, mode: 0o700), e != .EEXIST {
            return .failure(BackendError("cannot create \(Self.directory): \(e)"))
        }
        switch sys.lockFile(Self.lockPath, wait: false) {
        case .success(let fd): lockFD = fd
        case .failure(.EAGAIN):
            guard wait else {
                return .failure(BackendError("another vfio-sim run on the kernel holds \(Self.lockPath); refusing to run beside it"))
            }
            say("vfio-sim: another vfio-sim run on the kernel holds \(Self.lockPath); waiting for it to finish")
            switch sys.lockFile(Self.lockPath, wait: true) {
            case .success(let fd): lockFD = fd
            case .failure(let e): return .failure(BackendError("cannot lock \(Self.lockPath): \(e)"))
            }
        case .failure(let e): return .failure(BackendError("cannot lock \(Self.lockPath): \(e)"))
        }
        recover()
        return .success(())
    }

    /// A record under the lock is a dead run's: every run that writes one
    /// holds the lock until it, and every process it forked, is gone.
    func recover() {
        guard let text = sys.readText(Self.recordPath) else { return }
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let words = line.split(separator: " ").map(String.init)
            guard words.count == 3, let p = ModuleParameter(rawValue: words[0]),
                  !words[1].isEmpty, words[1].allSatisfy(\.isNumber), let pid = Int32(words[2]) else {
                say("vfio-sim: ignoring an unreadable line in \(Self.recordPath): \(line)")
                continue
            }
            let who = "a vfio-sim run (pid \(pid), \(sys.processExists(pid) ? "no longer holding the lock" : "gone"))"
            let now = p.read(sys) ?? "unreadable"
            if now == words[1] {
                say("vfio-sim: \(who) recorded a change of \(p.rawValue); it is back at its original \(words[1])")
            } else if let e = sys.writeText(p.path, words[1]) {
                say("vfio-sim: error: \(who) left \(p.rawValue) at \(now); restoring its original \(words[1]) failed: \(e)")
                return  // the record stays for the next run
            } else {
                say("vfio-sim: \(who) left \(p.rawValue) at \(now); restored its original value \(words[1])")
            }
        }
        _ = sys.removeFile(Self.recordPath)
    }

    /// Answers a child's request.
    public func serve(_ request: ParentRequest) -> ParentAnswer {
        switch request {
        case .set(let p, let value):
            if let refusal = set(p, to: value) { return .refused(refusal.message) }
            return .ok
        }
    }

    /// Sets `p` to `value`: nothing to do when it has that value; refused
    /// unless allowed; recorded before it is made.
    public func set(_ p: ModuleParameter, to value: String) -> BackendError? {
        guard !value.isEmpty, value.count <= 10, value.allSatisfy(\.isNumber) else {
            return BackendError("\(value) is not a value for \(p.rawValue)")
        }
        guard let now = p.read(sys) else { return BackendError("cannot read \(p.path) (is vfio_iommu_type1 loaded?)") }
        if now == value { return nil }
        guard allowed else {
            return BackendError("refusing to change \(p.rawValue) from \(now) to \(value): it is global, and every VFIO container "
                                + "any process opens meanwhile gets the changed value; pass --allow-module-params to let "
                                + "vfio-sim change it and put it back")
        }
        guard lockFD >= 0 else { return BackendError("changing \(p.rawValue) needs the run's lock (\(Self.lockPath))") }
        if !originals.contains(where: { $0.parameter == p }) {
            // Armed first, recorded second, changed last: a signal at any
            // point finds the value original or puts it back, and a SIGKILL
            // after the record leaves what the next run needs.
            originals.append((p, now))
            armRestore()
            if let e = writeRecord() {
                originals.removeLast()
                armRestore()
                return BackendError("cannot record the change of \(p.rawValue) in \(Self.recordPath) (\(e)); not changing it")
            }
        }
        if let e = sys.writeText(p.path, value) { return BackendError("writing \(value) to \(p.path): \(e)") }
        return nil
    }

    func writeRecord() -> Errno? {
        let pid = sys.processID
        let lines = originals.map { "\($0.parameter.rawValue) \($0.value) \(pid)\n" }
        return sys.replaceFile(Self.recordPath, "# parameter original-value pid: module parameters a vfio-sim run changed\n" + lines.joined())
    }

    /// Puts every changed parameter back and removes the record. A value
    /// that cannot be written back keeps its record, for the next run.
    public func restore() {
        guard !originals.isEmpty else { return }
        var failed: [(parameter: ModuleParameter, value: String)] = []
        for (p, value) in originals {
            if p.read(sys) == value { continue }
            if let e = sys.writeText(p.path, value) {
                say("vfio-sim: error: cannot restore \(p.rawValue) to \(value): \(e)")
                failed.append((p, value))
            }
        }
        if failed.isEmpty {
            _ = sys.removeFile(Self.recordPath)
            originals = []
            armRestore()
        }
    }

    func armRestore() { sys.armRestore(originals.map { ($0.parameter.path, $0.value) }, record: Self.recordPath) }

    /// Restores, then lets the next run in.
    public func end() {
        restore()
        if lockFD >= 0 { sys.close(lockFD); lockFD = -1 }
    }
}

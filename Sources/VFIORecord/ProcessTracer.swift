import CVFIOSys
import VFIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How the traced program ended.
public enum ProgramExit: Sendable, Hashable {
    case exited(Int32)
    case signaled(Int32)
}

/// Why recording could not start.
public struct RecordError: Error, Sendable, Hashable {
    public var message: String
    public var errno: Errno?
}

/// What a recording produced: the events in order, how the program ended,
/// and notes for the person who ran it.
public struct Recording: Sendable {
    public var events: [RecordEvent]
    public var exit: ProgramExit?
    public var notes: [String]
}

/// Runs a program under ptrace and records every VFIO container and group
/// ioctl with the kernel's answer, following every thread and child.
///
/// Started by `record`, the program runs with a seccomp filter that stops
/// it only at the calls the recorder needs (a VFIO ioctl, open, close,
/// dup, fcntl); attached with `--pid`, it stops at every system call
/// (PTRACE_SYSCALL). Signals are delivered unchanged; a group-stop (SIGSTOP,
/// SIGTSTP) of a started program is not kept: the program runs on.
public struct ProcessTracer {
    /// A VFIO file the process has open.
    enum ObjectKind: Equatable {
        case container(path: String)
        case group(UInt32)
        case device
    }
    struct Object {
        var kind: ObjectKind
        /// fds naming it across every process (a group is released when
        /// the last goes).
        var refs: Int
    }
    /// A system call seen at entry, finished at exit.
    enum Pending {
        case open(path: String)
        case close(fd: Int32)
        case closeRange(first: UInt32, last: UInt32)
        case dup(old: Int32, new: Int32?)
        case ioctl(fd: Int32, object: Int, IoctlCall)
    }
    struct Thread {
        var tgid: Int32
        var pending: Pending?
        /// Its first stop (the SIGSTOP of a new thread) is still to come.
        var awaitingStop: Bool
    }

    var threads: [Int32: Thread] = [:]
    /// Each process's fds that name VFIO objects.
    var tables: [Int32: [Int32: Int]] = [:]
    var objects: [Int: Object] = [:]
    var nextObject = 1
    var events: [RecordEvent] = []
    var notes: [String] = []
    let numbers: cvfio_syscall_numbers
    /// Every system call stops (attached), or only the filter's (started).
    let syscallStops: Bool
    let mainPid: Int32
    var mainExit: ProgramExit? = nil

    init(mainPid: Int32, syscallStops: Bool) {
        var n = cvfio_syscall_numbers()
        cvfio_syscall_numbers(&n)
        numbers = n
        self.mainPid = mainPid
        self.syscallStops = syscallStops
    }

    /// Starts `command` (looked up on PATH) traced and records until every
    /// traced process is gone. A command that cannot start is an error
    /// carrying exec's errno.
    public static func record(command: [String]) -> Result<Recording, RecordError> {
        guard let file = command.first else { return .failure(RecordError(message: "no command to run", errno: nil)) }
        var cArgs: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) }
        cArgs.append(nil)
        defer { for p in cArgs { free(p) } }
        var pid = cvfio_spawn_traced(file, cArgs, 1)
        // A kernel without seccomp filters (CONFIG_SECCOMP_FILTER off, as
        // in a minimal build): every system call stops instead.
        let filtered = pid != -Int32(CVFIO_SPAWN_NO_FILTER)
        if !filtered { pid = cvfio_spawn_traced(file, cArgs, 0) }
        guard pid > 0 else {
            let e = Errno(rawValue: -pid)
            return .failure(RecordError(message: "cannot run '\(file)': \(strerrorText(-pid)) (\(e))", errno: e))
        }
        var tracer = ProcessTracer(mainPid: pid, syscallStops: !filtered)
        tracer.threads[pid] = Thread(tgid: pid, pending: nil, awaitingStop: false)
        tracer.tables[pid] = [:]
        // Stopped at the exec event: from here on the loop resumes it.
        _ = cvfio_resume(pid, 0, 0)
        tracer.loop()
        return .success(Recording(events: tracer.events, exit: tracer.mainExit, notes: tracer.notes))
    }

    /// Attaches to every thread of a running process and records until it
    /// exits. Fds it already holds are found in `/proc/PID/fd`.
    public static func attach(pid: Int32) -> Result<Recording, RecordError> {
        var tracer = ProcessTracer(mainPid: pid, syscallStops: true)
        let tids = ProcessReader.numbers(in: "/proc/\(pid)/task")
        guard !tids.isEmpty else { return .failure(RecordError(message: "no process \(pid)", errno: .ESRCH)) }
        for tid in tids {
            let r = cvfio_seize(tid)
            if r < 0 {
                if tid == pid { return .failure(RecordError(message: "cannot attach to \(pid): \(strerrorText(-r))", errno: Errno(rawValue: -r))) }
                continue
            }
            tracer.threads[tid] = Thread(tgid: pid, pending: nil, awaitingStop: false)
        }
        tracer.tables[pid] = [:]
        for fd in ProcessReader.fds(pid: pid) { tracer.discover(pid: pid, tid: pid, fd: fd) }
        // Seized threads run on; make each stop at its next system call.
        for tid in tracer.threads.keys { _ = interrupt(tid) }
        tracer.loop()
        return .success(Recording(events: tracer.events, exit: tracer.mainExit, notes: tracer.notes))
    }

    static func interrupt(_ tid: Int32) -> Int32 { cvfio_interrupt(tid) }

    mutating func loop() {
        var status: Int32 = 0
        while true {
            let tid = cvfio_wait_any(&status)
            if tid < 0 { break }
            if cvfio_wifexited(status) != 0 || cvfio_wifsignaled(status) != 0 {
                gone(tid, status: status)
                continue
            }
            guard cvfio_wifstopped(status) != 0 else { continue }
            if threads[tid] == nil { adopt(tid) }
            let sig = cvfio_wstopsig(status)
            let event = cvfio_wevent(status)
            if event != 0 {
                handleEvent(tid, event: event)
                continue
            }
            if sig == SIGTRAP | 0x80 {
                syscallStop(tid)
                continue
            }
            if sig == SIGSTOP, threads[tid]?.awaitingStop == true {
                threads[tid]?.awaitingStop = false
                _ = cvfio_resume(tid, resumeMode, 0)
                continue
            }
            // A signal for the program: delivered as sent. A group-stop
            // (GETSIGINFO fails) is let go.
            let deliver = cvfio_is_signal_delivery(tid) == 1 ? sig : 0
            _ = cvfio_resume(tid, resumeMode, deliver)
        }
    }

    var resumeMode: Int32 { syscallStops ? 1 : 0 }

    /// A thread the recorder had not heard of: a new thread or child whose
    /// first stop came before its parent's clone event.
    mutating func adopt(_ tid: Int32) {
        let ids = ProcessReader.status(tid).flatMap(ProcFiles.ids)
        let tgid = ids?.tgid ?? tid
        threads[tid] = Thread(tgid: tgid, pending: nil, awaitingStop: true)
        if tables[tgid] == nil {
            let parent = ids?.ppid ?? 0
            inherit(child: tgid, from: parent)
        }
    }

    /// A forked child has the parent's fds (a copy of its table).
    mutating func inherit(child: Int32, from parent: Int32) {
        let table = tables[parent] ?? [:]
        tables[child] = table
        for (_, object) in table { objects[object]?.refs += 1 }
    }

    mutating func handleEvent(_ tid: Int32, event: Int32) {
        var msg: UInt = 0
        switch event {
        case Int32(CVFIO_EVENT_FORK), Int32(CVFIO_EVENT_VFORK), Int32(CVFIO_EVENT_CLONE):
            if cvfio_event_msg(tid, &msg) == 0 {
                let child = Int32(truncatingIfNeeded: msg)
                if threads[child] == nil {
                    let tgid = event == Int32(CVFIO_EVENT_CLONE)
                        ? (ProcessReader.status(child).flatMap(ProcFiles.ids)?.tgid ?? child) : child
                    threads[child] = Thread(tgid: tgid, pending: nil, awaitingStop: true)
                    if tgid == child, tables[child] == nil, let parentTgid = threads[tid]?.tgid {
                        inherit(child: child, from: parentTgid)
                    }
                }
            }
        case Int32(CVFIO_EVENT_EXEC):
            // A non-leader thread's exec takes over the leader's id; the
            // fds left are those without close-on-exec.
            if let tgid = threads[tid]?.tgid {
                threads[tid]?.pending = nil
                for (fd, _) in tables[tgid] ?? [:] where ProcessReader.fdTarget(pid: tgid, fd: fd) == nil {
                    removeFD(tgid: tgid, fd: fd)
                }
            }
        case Int32(CVFIO_EVENT_SECCOMP):
            if syscallEntry(tid) {
                // See its exit too.
                _ = cvfio_resume(tid, 1, 0)
                return
            }
        case Int32(CVFIO_EVENT_STOP):
            _ = cvfio_resume(tid, resumeMode, 0)
            return
        case Int32(CVFIO_EVENT_EXIT):
            if exiting(tid) { return }
        default:
            break
        }
        _ = cvfio_resume(tid, resumeMode, 0)
    }

    mutating func syscallStop(_ tid: Int32) {
        var info = cvfio_syscall()
        guard cvfio_syscall_info(tid, &info) == 0 else { _ = cvfio_resume(tid, resumeMode, 0); return }
        switch info.op {
        case 1:
            // Its exit must stop too, whatever the mode.
            _ = cvfio_resume(tid, syscallEntry(tid, info: info) ? 1 : resumeMode, 0)
            return
        case 2:
            syscallExit(tid, info: info)
        default:
            break
        }
        _ = cvfio_resume(tid, resumeMode, 0)
    }

    /// At a system call's entry: whether its exit must be seen.
    mutating func syscallEntry(_ tid: Int32, info given: cvfio_syscall? = nil) -> Bool {
        var info = given ?? cvfio_syscall()
        if given == nil, cvfio_syscall_info(tid, &info) != 0 { return false }
        guard let tgid = threads[tid]?.tgid else { return false }
        let nr = info.nr
        let a = withUnsafeBytes(of: info.args) { Array($0.bindMemory(to: UInt64.self)) }
        let table = tables[tgid] ?? [:]
        func fd(_ v: UInt64) -> Int32 { Int32(truncatingIfNeeded: v) }
        var pending: Pending? = nil
        switch nr {
        case numbers.ioctl:
            pending = ioctlEntry(tid: tid, tgid: tgid, fd: fd(a[0]), request: UInt(a[1]), argument: a[2])
        case numbers.open where numbers.open >= 0:
            pending = openEntry(tid: tid, path: a[0])
        case numbers.openat, numbers.openat2:
            pending = openEntry(tid: tid, path: a[1])
        case numbers.close:
            if table[fd(a[0])] != nil { pending = .close(fd: fd(a[0])) }
        case numbers.close_range:
            let first = UInt32(truncatingIfNeeded: a[0]), last = UInt32(truncatingIfNeeded: a[1])
            if table.keys.contains(where: { UInt32(bitPattern: $0) >= first && UInt32(bitPattern: $0) <= last }) {
                pending = .closeRange(first: first, last: last)
            }
        case numbers.dup:
            if table[fd(a[0])] != nil { pending = .dup(old: fd(a[0]), new: nil) }
        case numbers.dup2 where numbers.dup2 >= 0, numbers.dup3:
            if table[fd(a[0])] != nil || table[fd(a[1])] != nil { pending = .dup(old: fd(a[0]), new: fd(a[1])) }
        case numbers.fcntl:
            // F_DUPFD (0) and F_DUPFD_CLOEXEC (1030) make a new fd.
            if (a[1] == 0 || a[1] == 1030), table[fd(a[0])] != nil { pending = .dup(old: fd(a[0]), new: nil) }
        default:
            break
        }
        threads[tid]?.pending = pending
        return pending != nil
    }

    /// An open is followed when its path could name a VFIO file; the fd it
    /// returns is then classified by what `/proc/PID/fd` says it is.
    func openEntry(tid: Int32, path: UInt64) -> Pending? {
        let p = ProcessReader.string(pid: tid, address: path)
        return p.contains("vfio") || p.contains("iommu") ? .open(path: p) : nil
    }

    mutating func ioctlEntry(tid: Int32, tgid: Int32, fd: Int32, request: UInt, argument: UInt64) -> Pending? {
        guard (request >> 8) & 0xff == UInt(VFIO.type) else { return nil }
        if tables[tgid]?[fd] == nil { discover(pid: tgid, tid: tid, fd: fd) }
        guard let object = tables[tgid]?[fd], let kind = objects[object]?.kind, kind != .device else { return nil }
        var call = IoctlCall(request: request, argument: argument, result: .success(0))
        if request == VFIO.groupGetDeviceFD {
            call.before = Array(ProcessReader.string(pid: tid, address: argument).utf8)
        } else if IoctlDecoding.hasArgsz(request) {
            let head = ProcessReader.memory(pid: tid, address: argument, count: 4)
            let argsz = IoctlDecoding.u32(head, 0)
            if let n = IoctlDecoding.argumentBytes(request: request, argsz: argsz) {
                call.before = ProcessReader.memory(pid: tid, address: argument, count: n)
            }
        } else if let n = IoctlDecoding.argumentBytes(request: request, argsz: 0) {
            call.before = ProcessReader.memory(pid: tid, address: argument, count: n)
        }
        if request == VFIO.iommuMapDMA || request == VFIO.iommuUnmapDMA {
            call.lockedBefore = ProcessReader.locked(tgid)
        }
        return .ioctl(fd: fd, object: object, call)
    }

    mutating func syscallExit(_ tid: Int32, info: cvfio_syscall) {
        guard let tgid = threads[tid]?.tgid, let pending = threads[tid]?.pending else { return }
        threads[tid]?.pending = nil
        let ok = info.is_error == 0
        let rval = info.rval
        switch pending {
        case .open:
            if ok { discover(pid: tgid, tid: tid, fd: Int32(truncatingIfNeeded: rval), fresh: true) }
        case .close(let fd):
            // Linux frees the fd even when close reports an error.
            removeFD(tgid: tgid, fd: fd)
        case .closeRange(let first, let last):
            if ok {
                for fd in (tables[tgid] ?? [:]).keys where UInt32(bitPattern: fd) >= first && UInt32(bitPattern: fd) <= last {
                    removeFD(tgid: tgid, fd: fd)
                }
            }
        case .dup(let old, let new):
            guard ok else { return }
            let newFD = new ?? Int32(truncatingIfNeeded: rval)
            if newFD == old { return }
            let object = tables[tgid]?[old]
            removeFD(tgid: tgid, fd: newFD)
            if let object { setFD(tgid: tgid, fd: newFD, object: object) }
        case .ioctl(_, let object, var call):
            call.result = ok ? .success(rval) : .failure(Errno(rawValue: Int32(truncatingIfNeeded: -rval)))
            finishIoctl(tid: tid, tgid: tgid, object: object, call: &call)
        }
    }

    mutating func finishIoctl(tid: Int32, tgid: Int32, object: Int, call: inout IoctlCall) {
        let request = call.request
        if IoctlDecoding.hasArgsz(request), !call.before.isEmpty {
            call.after = ProcessReader.memory(pid: tid, address: call.argument, count: call.before.count)
            if request == VFIO.iommuGetInfo, case .success = call.result {
                // The kernel may have written less than the buffer; what it
                // asked for is in argsz, and only min(argsz, buffer) counts.
                let wanted = min(IoctlDecoding.u32(call.before, 0), IoctlDecoding.u32(call.after, 0))
                if Int(wanted) < call.after.count { call.after = Array(call.after.prefix(Int(max(wanted, IOMMUInfo.headerSize)))) }
            }
        }
        if case .success = call.result, let (address, bytes) = IoctlDecoding.bitmapToRead(request: request, before: call.before) {
            call.bitmap = ProcessReader.memory(pid: tid, address: address, count: bytes)
        }
        if request == VFIO.iommuMapDMA || request == VFIO.iommuUnmapDMA {
            call.lockedAfter = ProcessReader.locked(tgid)
        }
        if request == VFIO.iommuMapDMA {
            let m = IoctlDecoding.mapDMA(call.before)
            if !m.flags.contains(.vaddr) { call.memory = ProcessReader.regions(tgid, vaddr: m.vaddr, size: m.size) }
        }
        if request == VFIO.iommuMapDMA || request == VFIO.setIOMMU {
            call.environment = ProcessReader.environment(tgid)
        }
        switch objects[object]?.kind {
        case .container?:
            events.append(.containerIoctl(container: object, call))
        case .group(let number)?:
            var target: Int? = nil
            if request == VFIO.groupSetContainer {
                let fd = Int32(bitPattern: IoctlDecoding.u32(call.before, 0))
                if tables[tgid]?[fd] == nil { discover(pid: tgid, tid: tid, fd: fd) }
                if let t = tables[tgid]?[fd], case .container? = objects[t]?.kind { target = t }
            }
            events.append(.groupIoctl(group: object, number: number, call, target: target))
            if request == VFIO.groupGetDeviceFD, case .success(let fd) = call.result {
                let id = newObject(.device)
                setFD(tgid: tgid, fd: Int32(truncatingIfNeeded: fd), object: id)
            }
        default:
            break
        }
    }

    /// Classifies an fd by what it points to; a VFIO file becomes an object.
    mutating func discover(pid: Int32, tid: Int32, fd: Int32, fresh: Bool = false) {
        guard let target = ProcessReader.fdTarget(pid: pid, fd: fd) else { return }
        let kind: ObjectKind?
        if target == "/dev/vfio/vfio" || target == "/dev/iommu" {
            kind = .container(path: target)
        } else if target.hasPrefix("/dev/vfio/"), let n = UInt32(target.dropFirst("/dev/vfio/".count)) {
            kind = .group(n)
        } else if target.hasPrefix("/dev/vfio/devices/") || target == "anon_inode:[vfio-device]" {
            kind = .device
        } else {
            kind = nil
        }
        removeFD(tgid: pid, fd: fd)
        guard let kind else { return }
        let id = newObject(kind)
        if case .container(let path) = kind {
            events.append(.containerOpened(container: id, path: path))
            if !fresh { notes.append("fd \(fd) of process \(pid) was already open on \(path): its earlier calls are not in the trace") }
        }
        setFD(tgid: pid, fd: fd, object: id)
    }

    mutating func newObject(_ kind: ObjectKind) -> Int {
        let id = nextObject
        nextObject += 1
        objects[id] = Object(kind: kind, refs: 0)
        return id
    }

    mutating func setFD(tgid: Int32, fd: Int32, object: Int) {
        tables[tgid, default: [:]][fd] = object
        objects[object]?.refs += 1
    }

    mutating func removeFD(tgid: Int32, fd: Int32) {
        guard let object = tables[tgid]?[fd] else { return }
        tables[tgid]?[fd] = nil
        release(object)
    }

    mutating func release(_ object: Int) {
        guard var o = objects[object] else { return }
        o.refs -= 1
        objects[object] = o
        if o.refs <= 0, case .group = o.kind { events.append(.groupReleased(group: object)) }
    }

    /// A thread about to exit (PTRACE_EVENT_EXIT). Any thread but the main
    /// process's leader is counted gone here and let go (PTRACE_DETACH), so
    /// it exits untraced: a traced zombie is visible only to its tracer
    /// until the tracer reaps it (`wait_consider_task`), while its pidfd
    /// already reads as exited. A parent that polls a child's pidfd and
    /// then calls `waitpid(WNOHANG)` (the kernel selftests' harness,
    /// `__wait_for_test`) would otherwise find nothing to reap and count
    /// the test failed. The main process is the recorder's own child and is
    /// reaped by it as before. Returns whether the thread was let go.
    mutating func exiting(_ tid: Int32) -> Bool {
        guard tid != mainPid else { return false }
        var msg: UInt = 0
        guard cvfio_event_msg(tid, &msg) == 0 else { return false }
        gone(tid, status: Int32(truncatingIfNeeded: msg))
        _ = cvfio_detach(tid)
        return true
    }

    /// A thread or process ended. The main process's end is the program's.
    mutating func gone(_ tid: Int32, status: Int32) {
        let tgid = threads[tid]?.tgid ?? tid
        threads[tid] = nil
        if tid == mainPid {
            mainExit = cvfio_wifexited(status) != 0 ? .exited(cvfio_wexitstatus(status)) : .signaled(cvfio_wtermsig(status))
        }
        // The process's fds close when its last thread is gone.
        if !threads.values.contains(where: { $0.tgid == tgid }), let table = tables[tgid] {
            tables[tgid] = nil
            for (_, object) in table { release(object) }
        }
    }
}

/// Dies of `signal` as the traced program did (no core file), so the
/// recorder's own parent sees the program's end.
public func dieOf(signal: Int32) -> Never { cvfio_die_of(signal) }

func strerrorText(_ e: Int32) -> String { String(cString: strerror(e)) }

/// The signal's C name (`SIGKILL`), or its number.
public func signalName(_ s: Int32) -> String {
    let names: [Int32: String] = [1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
                                  7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
                                  13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM"]
    return names[s] ?? "signal \(s)"
}

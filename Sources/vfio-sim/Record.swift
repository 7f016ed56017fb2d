import VFIOCore
import VFIOFileIO
import VFIOLane
import VFIOModel
import VFIORecord
import VFIOReplay
import VFIOTrace

/// `vfio-sim record` and `vfio-sim whatif`: their manual pages and their
/// wiring (kept here so main.swift only dispatches).
enum RecordHelp {
    static let record = """
    NAME
        vfio-sim record - run a program and record its VFIO type1 ioctls as traces

    SYNOPSIS
        vfio-sim record [--out FILE] [--] COMMAND [ARGS...]
        vfio-sim record [--out FILE] --pid PID

    DESCRIPTION
        Runs COMMAND under ptrace (every thread and child; static and dynamic
        programs) with a seccomp filter that stops it only at VFIO ioctls and
        the calls that make, copy and close fds. Every ioctl on a VFIO
        container (/dev/vfio/vfio, or /dev/iommu in VFIO compatibility mode)
        or group (/dev/vfio/N) is recorded with the kernel's answer, and
        written as a trace that `vfio-sim replay` runs: the kernel, the
        process's memlock, CAP_IPC_LOCK and dma_entry_limit, a domain per
        group as GET_INFO described it, memory statements (page size from
        smaps, physical runs from pagemap, pfnmap for device memory) for
        every region a map touched, every ioctl with `=> answer`, and
        `check locked=` (from VmLck) / `check mappings=` after each run of
        maps and unmaps.

        The program's output, signals and exit status pass through: record
        exits with the program's status, or dies of its signal. Notes go to
        standard error, prefixed `vfio-sim record: note:`.

        With --pid, record attaches to a running process (all its threads)
        and records until it exits; calls made before are not seen.

    OPTIONS
        --out FILE  The trace (default record.trace). A process that uses
                    several containers gives one trace per container, in
                    the order they were opened: FILE, FILE.2, FILE.3, ...
        --pid PID   Attach instead of starting a program.

    EXIT STATUS
        The program's; 2 when it cannot be started (not found, not
        executable) or the command line is wrong.

    EXAMPLE
        vfio-sim record --out testpmd.trace -- dpdk-testpmd -l 0 -a 0000:00:03.0 -- -i
        vfio-sim replay testpmd.trace
        vfio-sim whatif --memlock 64M testpmd.trace
    """

    static let whatif = """
    NAME
        vfio-sim whatif - replay traces with their setup changed

    SYNOPSIS
        vfio-sim whatif [--kernel VERSION] [--memlock SIZE|unlimited]
                        [--cap-ipc-lock on|off] [--dma-entry-limit N]
                        [--pgsizes LIST] [--explain] [--format text|json] FILE...

    DESCRIPTION
        Replays each trace (a recording, or any trace) on the model with the
        setup statements named replaced, without editing the file: the
        kernel version (the trace's own `kernel` statement is overridden),
        RLIMIT_MEMLOCK, CAP_IPC_LOCK, dma_entry_limit, or the page sizes of
        every domain. Every answer that changes is printed as
        FILE:LINE: STATEMENT: expected RECORDED, got NEW, with its reason
        and the kernel function it comes from. Values are written as in a
        trace (`64M`, `4K,2M`, `mask:0x1000`).

        The whole state is compared too, not only the answers written: the
        trace is also replayed with its own setup, and after every
        operation and at the end the two are compared on locked memory, the
        number of mappings and their ranges, the IOMMU entries by page size
        (per domain at the end) and dma_avail. What differs is printed, at
        the first operation after which the states part and at the end:

            FILE: the state differs from the trace's own setup
              first after line 8 (iteration 1 of 2048): map iova=...
                ptes       2M:1 (1 entries) → 4K:512 (512 entries)
              at end
                ptes       2M:2048 (2048 entries) → 4K:1048576 (1048576 entries)

    OPTIONS
        --format text|json
            json prints an array with one object per file, schema
            "vfiosim.whatif/1" (docs/REPORTS.md).
        --explain
            Every answer with its reason.

    EXIT STATUS
        0 no answer changed and the state is the same; 1 some answer
        changed or the state differs; 2 a file could not be read or
        parsed, or the command line is wrong.

    EXAMPLE
        vfio-sim whatif --kernel 5.10 --memlock 64M --dma-entry-limit 100 --pgsizes 4K testpmd.trace
    """
}

func recordCommand(_ args: [String]) throws(UsageError) -> Int32 {
    var out = "record.trace"
    var pid: Int32? = nil
    var command: [String] = []
    var arguments = Arguments(args)
    while let a = arguments.pop() {
        switch a {
        case "--help", "-h": printOut(RecordHelp.record + "\n"); return 0
        case "--out", "-o": out = try arguments.value(for: a)
        case "--pid": pid = try arguments.number(for: a, in: 1...Int32.max)
        case "--":
            while let w = arguments.pop() { command.append(w) }
        default:
            if a.hasPrefix("-") { throw UsageError(message: "unknown option '\(a)' (put the command after --)") }
            command = [a]
            while let w = arguments.pop() { command.append(w) }
        }
    }
    if pid != nil && !command.isEmpty { throw UsageError(message: "record takes a command or --pid, not both") }
    if pid == nil && command.isEmpty { throw UsageError(message: "record needs a command to run (vfio-sim record -- COMMAND ARGS...)") }

    let result = pid.map { ProcessTracer.attach(pid: $0) } ?? ProcessTracer.record(command: command)
    let recording: Recording
    switch result {
    case .failure(let e):
        printErr("vfio-sim: error: \(e.message)")
        return 2
    case .success(let r): recording = r
    }
    let what = pid.map { "process \($0)" } ?? command.joined(separator: " ")
    let header = ["Recorded by vfio-sim record from: \(what)"]
    let written = writeRecording(recording, header: header, out: out)
    switch recording.exit {
    case .exited(let code)?: return code
    case .signaled(let s)?: dieOf(signal: s)
    case nil: return written ? 0 : 2
    }
}

/// Writes one trace per container (FILE, FILE.2, …) and says on standard
/// error what the reader should know. False when a file could not be written.
func writeRecording(_ recording: Recording, header: [String], out: String) -> Bool {
    var builder = TraceBuilder(header: header)
    for e in recording.events { builder.add(e) }
    let traces = builder.finish()
    func note(_ s: String) { printErr("vfio-sim record: note: \(s)") }
    for n in recording.notes { note(n) }
    if case .signaled(let s)? = recording.exit {
        note("the program died of \(signalName(s)): the trace holds what it did up to then")
    }
    if traces.isEmpty {
        note("the program never used a VFIO container: \(out) holds no operations")
        let empty = Trace(file: out, statements: (header + ["no VFIO container was used"]).map { Statement(line: 0, column: 0, kind: .comment($0)) })
        if let problem = writeFile(out, printTrace(empty)) { printErr("vfio-sim: error: \(problem)"); return false }
        return true
    }
    var ok = true
    for (i, t) in traces.enumerated() {
        let path = i == 0 ? out : "\(out).\(i + 1)"
        let text = printTrace(t.trace)
        if let problem = writeFile(path, text) { printErr("vfio-sim: error: \(problem)"); ok = false; continue }
        for n in t.notes { note("\(path): \(n)") }
        // The recorder's own check: what it wrote must parse.
        if case .failure(let f) = parseTrace(text, file: path) {
            for d in f.diagnostics { printErr(d.description) }
            note("\(path) does not parse: a recorder bug, please report it")
        }
        let ops = t.trace.statements.filter { if case .comment = $0.kind { false } else { true } }.count
        note("container \(i + 1): \(path) (\(ops) statements)")
    }
    return ok
}

func whatifCommand(_ args: [String]) throws(UsageError) -> Int32 {
    var change = WhatIf()
    var explain = false
    var format = "text"
    var files: [String] = []
    var arguments = Arguments(args)
    while let a = arguments.pop() {
        switch a {
        case "--help", "-h": printOut(RecordHelp.whatif + "\n"); return 0
        case "--kernel", "--memlock", "--cap-ipc-lock", "--dma-entry-limit", "--pgsizes":
            let v = try arguments.value(for: a)
            if case .failure(let f) = change.set(String(a.dropFirst(2)), v) {
                throw UsageError(message: "\(a) \(v): " + (f.diagnostics.first?.message ?? "not understood"))
            }
        case "--explain": explain = true
        case "--format": format = try formatOption(try arguments.value(for: a))
        default:
            if a.hasPrefix("-") && a != "-" { throw UsageError(message: "unknown option '\(a)'") }
            files.append(a)
        }
    }
    if files.isEmpty { throw UsageError(message: "whatif needs at least one trace file") }
    if change.isEmpty { printErr("note: no change given: this is a plain replay") }
    let inputs = parseFiles(files)
    let comparisons = traces(inputs).map { WhatIfComparison.run($0, change: change, explain: explain) }
    if format == "json" {
        printOut(WhatIfComparison.json(comparisons))
    } else if !comparisons.isEmpty {
        var text = change.isEmpty ? "" : "what if: " + change.statements.joined(separator: "; ") + "\n"
        text += textReport(comparisons.map(\.report), explain: explain)
        for c in comparisons { text += c.stateText }
        printOut(text)
    }
    if comparisons.count < inputs.count { return 2 }
    return comparisons.allSatisfy(\.unchanged) ? 0 : 1
}

import VFIOCore
import VFIOReplay
import VFIOTrace

/// Which traces a real kernel can run, and the report of a model-versus-
/// kernel replay (`vfio-sim replay --backend both`).
public enum KernelLane {
    /// The comment that keeps a trace off real hardware: `# lane: skip REASON`.
    public static let skipMarker = "lane: skip"

    /// Why `trace` cannot run against the kernel `running`, or nil when it
    /// can:
    /// - a `# lane: skip REASON` comment line (more than one group, emulated
    ///   groups, device memory, more memory than the guest has, a hardware
    ///   property the machine lacks);
    /// - a `kernel VERSION` statement naming another version than the one
    ///   running: the trace's answers are that version's, and the model
    ///   must play the running kernel to be compared with it.
    public static func skipReason(_ trace: Trace, running: KernelVersion) -> String? {
        for st in trace.statements {
            guard case .comment(let text) = st.kind else { continue }
            let body = text.drop(while: { $0 == " " || $0 == "\t" })
            if body.hasPrefix(skipMarker) {
                let reason = body.dropFirst(skipMarker.count).trimmingBlanks()
                return reason.isEmpty ? "marked lane: skip" : reason
            }
        }
        for st in trace.statements {
            if case .kernel(let v) = st.kind, v != running {
                return "pinned to kernel \(v) (this is \(running))"
            }
        }
        return nil
    }

    /// What a both-backend run found, over every file.
    public struct Summary: Sendable {
        /// Operations and checks answered by both backends.
        public var compared = 0
        public var agreed = 0
        /// Checks the kernel cannot observe here (`check ptes=`).
        public var unobservable = 0
        public var skipped: [(file: String, reason: String)] = []
        public var files = 0
        public var errors = 0
        /// Files whose first domain differs from the kernel's IOMMU.
        public var setupDifferences = 0
        /// Written answers that both backends, agreeing, did not give.
        public var traceAnswerMisses = 0
        /// Files after which the kernel still charged locked memory.
        public var leaks = 0
        public var ok: Bool { errors == 0 && agreed == compared }
    }

    /// The text report of a model-versus-kernel run. Every disagreement and
    /// error is a line; setup differences, skipped files and written
    /// answers that neither backend gave (because the trace assumed another
    /// IOMMU or kernel version) are notes. The last line is
    ///
    ///     kernel 6.12 intel-iommu: N/M operations agree, U not observable, S of F files skipped
    ///
    /// `ok` is false on any disagreement or error.
    public static func report(_ reports: [FileReport], skipped: [(file: String, reason: String)],
                              kernel: String, iommu: String, verbose: Bool = false) -> (text: String, summary: Summary) {
        var s = Summary()
        s.skipped = skipped
        s.files = reports.count + skipped.count
        var out = ""
        for (file, reason) in skipped { out += "\(file): skipped: \(reason)\n" }
        for r in reports {
            for n in r.notes {
                if n.message.hasPrefix("leak:") { s.leaks += 1 } else { s.setupDifferences += 1 }
                out += n.line > 0 ? "\(r.file):\(n.line): note: \(n.message)\n" : "\(r.file): note: \(n.message)\n"
            }
            for e in r.errors {
                s.errors += 1
                out += e.line > 0 ? "\(r.file):\(e.line): error: \(e.message)\n" : "\(r.file): error: \(e.message)\n"
            }
            for o in r.outcomes {
                let answers = o.got.map { "\($0.backend) \($0.text)" }.joined(separator: ", ")
                if !o.compared {
                    if o.got.contains(where: { !$0.observed }) { s.unobservable += 1 }
                    if verbose { out += "\(r.file):\(o.line): \(o.statement): not compared (\(answers))\n" }
                    continue
                }
                s.compared += 1
                if !o.agree {
                    let expected = o.expected.map { " (trace: \($0))" } ?? ""
                    out += "\(r.file):\(o.line): disagree: \(o.statement): \(answers)\(expected)\n"
                    continue
                }
                s.agreed += 1
                if let expected = o.expected, o.failed {
                    s.traceAnswerMisses += 1
                    out += "\(r.file):\(o.line): note: \(o.statement): trace expects \(expected), kernel and model gave \(o.got.first?.text ?? "")\n"
                } else if verbose {
                    out += "\(r.file):\(o.line): \(o.statement) => \(o.got.first?.text ?? "") (agree)\n"
                }
            }
        }
        var line = "kernel \(kernel) \(iommu): \(s.agreed)/\(s.compared) operations agree"
        line += ", \(s.unobservable) not observable, \(s.skipped.count) of \(s.files) files skipped"
        if s.errors > 0 { line += ", \(s.errors) errors" }
        if s.leaks > 0 { line += ", \(s.leaks) kernel leaks" }
        out += line + "\n"
        return (out, s)
    }
}

extension Substring {
    func trimmingBlanks() -> String {
        var t = self
        while let c = t.first, c == " " || c == "\t" { t.removeFirst() }
        while let c = t.last, c == " " || c == "\t" { t.removeLast() }
        return String(t)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension KernelLane {
    /// Runs `body` in a child process and returns the report it made.
    ///
    /// Each trace gets a fresh process because some kernel state belongs to
    /// the process and outlives the container: locked memory the kernel
    /// failed to uncharge (6.12 leaks the pages of a mapping that ends at
    /// 2^64-1 when it is released) still counts against `RLIMIT_MEMLOCK`,
    /// so it would change the answers of every later trace. A child that
    /// crashes becomes an error of that file.
    public static func isolated(file: String, _ body: () -> FileReport) -> FileReport {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            var r = FileReport(file: file, kernels: [])
            r.errors.append((0, "pipe: \(String(cString: strerror(errno)))"))
            return r
        }
        fflush(nil)  // every stream: the child must not write the parent's buffers again
        let pid = fork()
        if pid == 0 {
            close(fds[0])
            let bytes = Array(encode(body()).utf8)
            var sent = 0
            while sent < bytes.count {
                let n = bytes[sent...].withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
                if n <= 0 { _exit(3) }
                sent += n
            }
            close(fds[1])
            _exit(0)
        }
        close(fds[1])
        var failure = FileReport(file: file, kernels: [])
        if pid < 0 {
            close(fds[0])
            failure.errors.append((0, "fork: \(String(cString: strerror(errno)))"))
            return failure
        }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += buf[0..<n]
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        let code = (status >> 8) & 0xff
        if signal == 0 && code == 0, let report = decode(String(decoding: data, as: UTF8.self)) { return report }
        failure.errors.append((0, signal != 0 ? "the replay died of signal \(signal)" : "the replay exited with status \(code)"))
        return failure
    }

    // A line-based form of `FileReport` for the trip through the pipe: one
    // record per line, fields separated by tabs, `\`, tab and newline
    // escaped.

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func unescape(_ s: Substring) -> String {
        var out = ""
        var it = s.unicodeScalars.makeIterator()
        while let c = it.next() {
            guard c == "\\", let n = it.next() else { out.unicodeScalars.append(c); continue }
            switch n {
            case "t": out += "\t"
            case "n": out += "\n"
            default: out.unicodeScalars.append(n)
            }
        }
        return out
    }

    static func encode(_ r: FileReport) -> String {
        func rec(_ kind: String, _ fields: [String]) -> String { ([kind] + fields.map(escape)).joined(separator: "\t") + "\n" }
        var out = rec("F", [r.file])
        for k in r.kernels { out += rec("K", [k.backend, k.kernel]) }
        for o in r.outcomes {
            out += rec("O", [String(o.line), String(o.column), o.statement, o.expected.map { "=" + $0 } ?? "-"])
            for g in o.got {
                out += rec("G", [g.backend, g.text, g.held.map { $0 ? "1" : "0" } ?? "-", g.observed ? "1" : "0"])
            }
        }
        for e in r.errors { out += rec("E", [String(e.line), e.message]) }
        for n in r.notes { out += rec("N", [String(n.line), n.message]) }
        return out + "END\n"
    }

    static func decode(_ text: String) -> FileReport? {
        var report: FileReport? = nil
        var complete = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(unescape)
            switch f[0] {
            case "F" where f.count == 2: report = FileReport(file: f[1], kernels: [])
            case "K" where f.count == 3: report?.kernels.append((f[1], f[2]))
            case "O" where f.count == 5:
                guard let l = Int(f[1]), let c = Int(f[2]) else { return nil }
                report?.outcomes.append(Outcome(line: l, column: c, statement: f[3],
                                                expected: f[4] == "-" ? nil : String(f[4].dropFirst()), got: []))
            case "G" where f.count == 5:
                guard var r = report, !r.outcomes.isEmpty else { return nil }
                r.outcomes[r.outcomes.count - 1].got.append(
                    Outcome.Got(backend: f[1], text: f[2], held: f[3] == "-" ? nil : f[3] == "1", observed: f[4] == "1"))
                report = r
            case "E" where f.count == 3: report?.errors.append((Int(f[1]) ?? 0, f[2]))
            case "N" where f.count == 3: report?.notes.append((Int(f[1]) ?? 0, f[2]))
            case "END": complete = true
            default: return nil
            }
        }
        return complete ? report : nil
    }
}

import VFIOCore
import VFIOReplay

/// A line-based form of `FileReport` for the trip from the process that
/// replayed a trace to the one that reports it: one record per line, fields
/// separated by tabs, with `\`, tab and newline escaped. Problems keep
/// their kind, so nothing is parsed back out of prose.
public enum ReportCodec {
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

    static func fields(_ p: ReportProblem) -> [String] {
        switch p.kind {
        case .setup(let backend, let message): ["setup", backend, message]
        case .backend(let backend, .invariantBroken(let after, let detail)): ["invariant", backend, after, detail]
        case .backend(let backend, .lockedAfterRelease(let bytes)): ["leak", backend, String(bytes)]
        case .property(let name, let detail): ["property", name, detail]
        case .setupDifference(let text): ["difference", text]
        case .aborted(let why): ["aborted", why]
        case .input(let column, let message): ["input", String(column), message]
        case .note(let text): ["note", text]
        }
    }

    static func problem(_ f: ArraySlice<String>) -> ReportProblem.Kind? {
        let f = Array(f)
        switch (f.first, f.count) {
        case ("setup", 3): return .setup(backend: f[1], message: f[2])
        case ("invariant", 4): return .backend(f[1], .invariantBroken(after: f[2], detail: f[3]))
        case ("leak", 3): return UInt64(f[2]).map { .backend(f[1], .lockedAfterRelease(bytes: $0)) }
        case ("property", 3): return .property(name: f[1], detail: f[2])
        case ("difference", 2): return .setupDifference(f[1])
        case ("aborted", 2): return .aborted(f[1])
        case ("input", 3): return Int(f[1]).map { .input(column: $0, message: f[2]) }
        case ("note", 2): return .note(f[1])
        default: return nil
        }
    }

    public static func encode(_ r: FileReport) -> String {
        func rec(_ kind: String, _ fields: [String]) -> String { ([kind] + fields.map(escape)).joined(separator: "\t") + "\n" }
        var out = rec("F", [r.file])
        for k in r.kernels { out += rec("K", [k.backend, k.kernel]) }
        for o in r.outcomes {
            out += rec("O", [String(o.line), String(o.column), o.statement, o.expected.map { "=" + $0 } ?? "-"])
            for g in o.got {
                out += rec("G", [g.backend, g.text, g.held.map { $0 ? "1" : "0" } ?? "-", g.observed ? "1" : "0", g.reason.map { "=" + $0 } ?? "-",
                                  g.kernelLog.map { "=" + $0 } ?? "-"])
            }
        }
        for p in r.problems { out += rec("P", [String(p.line)] + fields(p)) }
        return out + "END\n"
    }

    /// Nil when the text is not a whole report (the writer died midway).
    public static func decode(_ text: String) -> FileReport? {
        var report: FileReport? = nil
        var complete = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard !complete else { return nil }
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(unescape)
            switch f[0] {
            case "F" where f.count == 2 && report == nil: report = FileReport(file: f[1], kernels: [])
            case "K" where f.count == 3: report?.kernels.append((f[1], f[2]))
            case "O" where f.count == 5:
                guard let l = Int(f[1]), let c = Int(f[2]) else { return nil }
                report?.outcomes.append(Outcome(line: l, column: c, statement: f[3],
                                                expected: f[4] == "-" ? nil : String(f[4].dropFirst()), got: []))
            case "G" where (5...7).contains(f.count):
                guard var r = report, !r.outcomes.isEmpty else { return nil }
                var got = Outcome.Got(backend: f[1], text: f[2], held: f[3] == "-" ? nil : f[3] == "1", observed: f[4] == "1")
                if f.count >= 6, f[5] != "-" { got.reason = String(f[5].dropFirst()) }
                if f.count == 7, f[6] != "-" { got.kernelLog = String(f[6].dropFirst()) }
                r.outcomes[r.outcomes.count - 1].got.append(got)
                report = r
            case "P" where f.count >= 3:
                guard let l = Int(f[1]), let kind = problem(f[2...]) else { return nil }
                report?.problems.append(ReportProblem(line: l, kind))
            case "END": complete = true
            default: return nil
            }
        }
        return complete ? report : nil
    }

    /// Reports encoded one after another; nil when any is incomplete.
    public static func decodeAll(_ text: String) -> [FileReport]? {
        var out: [FileReport] = []
        var current = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            current += line + "\n"
            if line == "END" {
                guard let r = decode(current) else { return nil }
                out.append(r)
                current = ""
            }
        }
        return current.isEmpty ? out : nil
    }
}

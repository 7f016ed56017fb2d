import VFIOCore
import VFIOTrace

/// Totals over every file of a run.
public struct Totals: Sendable {
    public var files = 0
    public var operations = 0
    public var passed = 0
    public var failed = 0
    public var skipped = 0
    public var disagreements = 0
    public var errors = 0
    /// Files that could not be read or parsed (nothing of them ran).
    public var unparsed = 0

    public init(_ reports: [FileReport]) {
        files = reports.count
        for r in reports {
            let ops = r.outcomes.filter { !$0.isShow }
            operations += ops.count + r.heldNotKept
            passed += ops.filter(\.passed).count + r.heldNotKept
            failed += ops.filter(\.failed).count
            skipped += ops.filter(\.skipped).count
            disagreements += ops.filter { !$0.agree }.count
            errors += r.errors.count
            if r.errors.contains(where: \.isInput) { unparsed += 1 }
        }
    }
}

extension FileReport {
    /// The report of a file that could not be read (`why`) : nothing ran.
    public init(file: String, unreadable why: String) {
        self.init(file: file, kernels: [])
        problems = [ReportProblem(.input(column: 0, message: why))]
    }

    /// The report of a file that did not parse: every diagnostic, nothing ran.
    public init(file: String, unparsed failure: ParseFailure) {
        self.init(file: file, kernels: [])
        problems = failure.diagnostics.map { ReportProblem(line: $0.line, .input(column: $0.column, message: $0.message)) }
    }

    /// Whether the file was read and parsed (and so ran).
    public var ran: Bool { !problems.contains(where: \.isInput) }
}

extension Outcome.Got {
    /// The answer as a trace writes it, with sizes also said for people
    /// when the trace's spelling is not plain (`locked=0x1fffa0000 (8 GiB - 384 KiB)`).
    public var peopleText: String {
        switch observation {
        case .locked(let v)?: return "locked=" + sizeForPeople(v)
        default: break
        }
        if case .value(let a) = source, let size = a.fields.first(where: { $0.key == "size" }), case .size(let v) = size {
            let people = sizeForPeople(v)
            if people != formatSize(v) { return a.description + " (" + readableSize(v) + ")" }
        }
        return text
    }
}

/// The plain report: one line per differing answer, per operation written
/// without an answer, per error, note and `show`; each answer a user may
/// not expect followed by its reason (`    why: …`) and the line the kernel
/// logs for it (`    kernel log: …`); then the totals.
/// With `explain`, every operation is printed with its reason. Files that
/// could not be read or parsed are only counted: their diagnostics go to
/// standard error, where the caller printed them.
///
/// The runs of a `repeat=N` statement are summarised: for each different
/// answer, the first run that gave it (its iteration, iova and vaddr) with
/// its reason, and how many more gave the same answer.
public func textReport(_ reports: [FileReport], verbose: Bool = false, explain: Bool = false) -> String {
    var out = ""
    for r in reports {
        for p in r.problems where !p.isInput {
            out += p.located(in: r.file) + "\n"
        }
        var i = 0
        while i < r.outcomes.count {
            let o = r.outcomes[i]
            guard o.iteration != nil else {
                out += outcomeText(o, file: r.file, verbose: verbose, explain: explain)
                i += 1
                continue
            }
            // The runs of one repeat= statement follow each other.
            var end = i + 1
            while end < r.outcomes.count, r.outcomes[end].line == o.line, r.outcomes[end].iteration != nil,
                  r.outcomes[end].iteration!.index > r.outcomes[end - 1].iteration!.index { end += 1 }
            out += repeatedText(r.outcomes[i..<end], file: r.file, verbose: verbose, explain: explain)
            i = end
        }
    }
    out += summary(reports)
    return out
}

/// The answers of one outcome as the report writes them.
private func gotText(_ o: Outcome) -> String {
    o.got.count > 1 ? o.got.map { "\($0.backend) \($0.peopleText)" }.joined(separator: ", ") : (o.got.first?.peopleText ?? "")
}

/// The lines of one outcome (empty when the report leaves it out);
/// `note` follows the first line's answer.
private func outcomeText(_ o: Outcome, file: String, verbose: Bool, explain: Bool, note: String = "") -> String {
    var out = ""
    if let states = o.state {
        out += "\(file):\(o.line): \(o.statement)\n"
        for st in states {
            let prefix = states.count > 1 ? "    \(st.backend) " : "    "
            for line in st.lines { out += prefix + line + "\n" }
        }
        return out
    }
    let many = o.got.count > 1
    let got = gotText(o)
    if let expected = o.expected {
        if o.failed {
            out += "\(file):\(o.line): \(o.statement): expected \(expected), got \(got)\(note)\n"
        } else if !o.agree {
            out += "\(file):\(o.line): \(o.statement): \(got)\(note)\n"
        } else if verbose || explain {
            out += "\(file):\(o.line): \(o.statement) => \(got) (held)\(note)\n"
        } else {
            return ""
        }
    } else {
        out += "\(file):\(o.line): \(o.statement) => \(got)\(note)\n"
    }
    for g in o.got {
        if let why = g.reason { out += "    why" + (many ? " (\(g.backend))" : "") + ": \(why)\n" }
        if let log = g.kernelLog { out += "    kernel log" + (many ? " (\(g.backend))" : "") + ": \(log)\n" }
    }
    return out
}

/// The runs of one `repeat=N` statement: per different answer (at most
/// three, then a count of the rest), the first run that gave it, named by
/// its iteration, with how many more gave the same answer.
private func repeatedText(_ runs: ArraySlice<Outcome>, file: String, verbose: Bool, explain: Bool) -> String {
    // Only the runs the report prints, grouped by what they gave.
    var groups: [(first: Outcome, more: Int, last: UInt64)] = []
    var keys: [String] = []
    for o in runs where !outcomeText(o, file: file, verbose: verbose, explain: explain).isEmpty {
        let key = (o.failed ? "failed " : "") + gotText(o)
        if let k = keys.firstIndex(of: key) {
            groups[k].more += 1
            groups[k].last = o.iteration!.index
        } else {
            keys.append(key)
            groups.append((o, 0, o.iteration!.index))
        }
    }
    var out = ""
    for g in groups.prefix(3) {
        let (index, count) = g.first.iteration!
        var note = " (iteration \(index) of \(count))"
        if g.more > 0 {
            let how = g.first.failed ? "failed the same way" : "gave the same answer"
            note = " (iteration \(index) of \(count); \(g.more) more \(how), the last iteration \(g.last))"
        }
        out += outcomeText(g.first, file: file, verbose: verbose, explain: explain, note: note)
    }
    if groups.count > 3 {
        let rest = groups.dropFirst(3).reduce(0) { $0 + 1 + $1.more }
        out += "    \(rest) more iterations gave \(groups.count - 3) other answers\n"
    }
    return out
}

/// The last two lines of a text report: files, operations, errors; then
/// `N passed, N failed`.
public func summary(_ reports: [FileReport]) -> String {
    let t = Totals(reports)
    var summary = "\(t.files) file\(t.files == 1 ? "" : "s"), \(t.operations) operations"
    if t.disagreements > 0 { summary += ", \(t.disagreements) disagreements between backends" }
    if t.unparsed > 0 { summary += ", \(t.unparsed) not read or not parsed" }
    let others = t.errors - reports.filter { !$0.ran }.map { $0.errors.count }.reduce(0, +)
    if others > 0 { summary += ", \(others) errors" }
    return summary + "\n" + "\(t.passed) passed, \(t.failed) failed" + (t.skipped > 0 ? ", \(t.skipped) skipped" : "") + "\n"
}

// MARK: JSON

/// An answer as JSON: `{"status":"ok","size":2097152}`,
/// `{"status":"errno","errno":"EEXIST","errnoValue":17}`,
/// `{"status":"value","value":1}`; sizes and counts are numbers.
func jsonAnswer(_ a: Answer) -> String {
    var fields: [String] = []
    switch a.status {
    case .ok: fields.append("\"status\":\"ok\"")
    case .errno(let e): fields += ["\"status\":\"errno\"", "\"errno\":\(jsonString(e.description))", "\"errnoValue\":\(e.rawValue)"]
    case .value(let v): fields += ["\"status\":\"value\"", "\"value\":\(v)"]
    case .anyError: fields.append("\"status\":\"error\"")
    }
    for f in a.fields {
        switch f {
        case .size(let v): fields.append("\"size\":\(v)")
        case .pgsizes(let p): fields.append("\"pgsizes\":[\(p.sizes.map(String.init).joined(separator: ","))]")
        case .iova(let r): fields.append("\"iova\":" + (r.map { "[" + $0.map(jsonRange).joined(separator: ",") + "]" } ?? "null"))
        case .dmaAvail(let n): fields.append("\"dmaAvail\":" + (n.map(String.init) ?? "null"))
        case .argsz(let n): fields.append("\"argsz\":\(n)")
        case .dirty(let r): fields.append("\"dirty\":[" + r.map(jsonRange).joined(separator: ",") + "]")
        }
    }
    return "{" + fields.joined(separator: ",") + "}"
}

func jsonRange(_ r: IOVARange) -> String { "{\"start\":\(r.start),\"last\":\(r.last)}" }

func jsonPTEs(_ c: PTECounts) -> String {
    "{" + c.counts.keys.sorted().map { "\"\($0)\":\(c.counts[$0]!)" }.joined(separator: ",") + "}"
}

func jsonObservation(_ o: CheckObservation) -> String {
    switch o {
    case .locked(let v): "{\"locked\":\(v)}"
    case .mappings(let v): "{\"mappings\":\(v)}"
    case .ptes(let c): "{\"ptes\":\(jsonPTEs(c))}"
    case .pte(let leaf): "{\"pte\":\(leaf.map(String.init) ?? "null")}"
    }
}

func jsonState(_ st: ContainerState) -> String {
    func obs<V>(_ o: Observation<V>, _ f: (V) -> String) -> String {
        switch o {
        case .value(let v): f(v)
        case .notObservable: "null"
        }
    }
    var f: [String] = ["\"backend\":\(jsonString(st.backend))", "\"started\":\(st.started)"]
    f.append("\"locked\":" + obs(st.locked) { String($0) })
    f.append("\"memlock\":" + (st.memlock.map(String.init) ?? "null"))
    f.append("\"capIpcLock\":\(st.capIPCLock)")
    f.append("\"mappings\":" + obs(st.mappings) { String($0) })
    f.append("\"dmaEntryLimit\":\(st.dmaEntryLimit)")
    f.append("\"dmaAvail\":" + (st.dmaAvail.map(String.init) ?? "null"))
    f.append("\"iova\":" + (st.iova.map { "[" + $0.map(jsonRange).joined(separator: ",") + "]" } ?? "null"))
    f.append("\"pgsizes\":" + (st.pgsizes.map { "[" + $0.sizes.map(String.init).joined(separator: ",") + "]" } ?? "null"))
    f.append("\"ptes\":{" + st.ptes.map { "\(jsonString($0.domain)):" + obs($0.1, jsonPTEs) }.joined(separator: ",") + "}")
    f.append("\"ptesTotal\":" + obs(st.ptesTotal, jsonPTEs))
    return "{" + f.joined(separator: ",") + "}"
}

/// The schema name and version every file object of `replay --format json` carries.
public let replaySchema = "vfiosim.replay/1"

/// JSON (`vfiosim.replay/1`, docs/REPORTS.md): an array with one object per file, every operation with what was
/// expected, what each backend answered (structured: errno by name, sizes
/// and counts as numbers, and the trace's text) and why, whether it held;
/// each `show` with the state it read; the errors (a file that could not
/// be read or parsed has `"ran":false` and its diagnostics) and notes.
public func jsonReport(_ reports: [FileReport]) -> String {
    var files: [String] = []
    for r in reports {
        var ops: [String] = []
        for o in r.outcomes {
            if let states = o.state {
                ops.append("{\"line\":\(o.line),\"column\":\(o.column),\"statement\":\(jsonString(o.statement)),\"show\":[\(states.map(jsonState).joined(separator: ","))]}")
                continue
            }
            let got = o.got.indices.map { i -> String in
                let g = o.got[i]
                var answer = "null"
                if i < o.answers.count { answer = jsonAnswer(o.answers[i]) } else if let obs = g.observation { answer = jsonObservation(obs) }
                return "{\"backend\":\(jsonString(g.backend)),\"answer\":\(answer),\"text\":\(jsonString(g.text)),\"held\":\(g.held.map { String($0) } ?? "null"),\"reason\":\(g.reason.map(jsonString) ?? "null"),\"kernelLog\":\(g.kernelLog.map(jsonString) ?? "null")}"
            }
            var expected = "null"
            if case .value(let a)? = o.expectedSource { expected = jsonAnswer(a) }
            let held: String = o.expected == nil ? "null" : (o.failed ? "false" : (o.skipped ? "null" : "true"))
            let iteration = o.iteration.map { ",\"iteration\":\($0.index),\"iterations\":\($0.of)" } ?? ""
            ops.append("{\"line\":\(o.line),\"column\":\(o.column)\(iteration),\"statement\":\(jsonString(o.statement)),\"expected\":\(expected),\"expectedText\":\(o.expected.map(jsonString) ?? "null"),\"got\":[\(got.joined(separator: ","))],\"held\":\(held),\"agree\":\(o.agree)}")
        }
        func problem(_ p: ReportProblem) -> String {
            var column = ""
            if case .input(let c, _) = p.kind, c > 0 { column = ",\"column\":\(c)" }
            return "{\"line\":\(p.line)\(column),\"message\":\(jsonString(p.message)),\"text\":\(jsonString(p.located(in: r.file)))}"
        }
        let kernels = r.kernels.map { "{\"backend\":\(jsonString($0.backend)),\"kernel\":\(jsonString($0.kernel))}" }
        files.append("{\"file\":\(jsonString(r.file)),\"ok\":\(r.ok),\"ran\":\(r.ran),\"backends\":[\(kernels.joined(separator: ","))],\"operations\":[\(ops.joined(separator: ",\n  "))],\"errors\":[\(r.errors.map(problem).joined(separator: ","))],\"notes\":[\(r.notes.map(problem).joined(separator: ","))],\"schema\":\"\(replaySchema)\"}")
    }
    return "[\n" + files.joined(separator: ",\n") + "\n]\n"
}

/// One checked statement of a file: every operation of a `repeat=` line
/// together (they share the line), or one operation or check.
struct CheckedStatement {
    var outcomes: [Outcome]
    var first: Outcome { outcomes[0] }
    var failed: [Outcome] { outcomes.filter(\.failed) }
    var skipped: Bool { outcomes.allSatisfy(\.skipped) }

    /// The statements of `r` that have a written answer or are checks, in
    /// file order; the iterations of a `repeat=` line are one statement.
    static func of(_ r: FileReport) -> [CheckedStatement] {
        var out: [CheckedStatement] = []
        for o in r.outcomes where o.expected != nil && !o.isShow {
            // The implicit `iommu` answer shares the first operation's line.
            if let last = out.last, last.first.line == o.line, verb(last.first.statement) == verb(o.statement) {
                out[out.count - 1].outcomes.append(o)
            } else {
                out.append(CheckedStatement(outcomes: [o]))
            }
        }
        return out
    }

    static func verb(_ s: String) -> Substring { s.split(separator: " ", maxSplits: 1).first ?? "" }

    /// "map iova=… size=2M prot=rw", with "(repeat: 2048 operations)" for a repeated line.
    var name: String {
        outcomes.count > 1 ? "\(first.statement) (repeat: \(outcomes.count) operations)" : first.statement
    }
}

/// JUnit XML: a test suite per file, a test case per statement with a
/// written answer or check, passing or failing (a `repeat=` line is one
/// case; its failure names the first failing iteration and how many
/// failed), named `FILE:LINE: STATEMENT`; a failure's message carries the
/// reason. A file that could not be read or parsed is a suite with one
/// error per diagnostic. Needs the held outcomes kept
/// (`Replayer.keepsHeldOutcomes`): counted ones cannot be listed.
public func junitReport(_ reports: [FileReport]) -> String {
    let statements = reports.map(CheckedStatement.of)
    let tests = statements.map(\.count).reduce(0, +)
    let failures = statements.map { $0.filter { !$0.failed.isEmpty }.count }.reduce(0, +)
    let errors = reports.map(\.errors.count).reduce(0, +)
    var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    out += "<testsuites name=\"vfio-sim replay\" tests=\"\(tests + errors)\" failures=\"\(failures)\" errors=\"\(errors)\">\n"
    for (r, cases) in zip(reports, statements) {
        let failed = cases.filter { !$0.failed.isEmpty }.count
        out += "  <testsuite name=\"\(xmlEscape(r.file))\" tests=\"\(cases.count + r.errors.count)\" failures=\"\(failed)\" errors=\"\(r.errors.count)\">\n"
        for e in r.errors {
            let name = e.isInput ? "\(r.file):\(e.line): \(e.line == 0 ? "read" : "parse")" : "\(r.file):\(e.line): setup"
            out += "    <testcase classname=\"\(xmlEscape(r.file))\" name=\"\(xmlEscape(name))\"><error message=\"\(xmlEscape(e.located(in: r.file)))\"/></testcase>\n"
        }
        for c in cases {
            out += "    <testcase classname=\"\(xmlEscape(r.file))\" name=\"\(xmlEscape("\(r.file):\(c.first.line): \(c.name)"))\""
            if let o = c.failed.first {
                let got = o.got.map { "\($0.backend) \($0.peopleText)" }.joined(separator: ", ")
                let why = o.got.compactMap(\.reason).first.map { "; why: " + $0 } ?? ""
                var which = ""
                if c.outcomes.count > 1, let i = c.outcomes.firstIndex(where: \.failed) {
                    which = " (iteration \(i + 1) of \(c.outcomes.count), \(o.statement); \(c.failed.count) of \(c.outcomes.count) failed)"
                }
                out += "><failure message=\"expected \(xmlEscape(o.expected ?? "")), got \(xmlEscape(got))\(xmlEscape(which))\(xmlEscape(why))\"/></testcase>\n"
            } else if c.skipped {
                out += "><skipped message=\"\(xmlEscape(c.first.got.first?.text ?? ""))\"/></testcase>\n"
            } else {
                out += "/>\n"
            }
        }
        out += "  </testsuite>\n"
    }
    out += "</testsuites>\n"
    return out
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 {
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}

/// `s` with XML's special characters escaped (for JUnit reports and SVG).
public func xmlEscape(_ s: String) -> String {
    var out = ""
    for c in s {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}

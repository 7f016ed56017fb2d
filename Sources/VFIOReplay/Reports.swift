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

    public init(_ reports: [FileReport]) {
        files = reports.count
        for r in reports {
            operations += r.outcomes.count
            passed += r.outcomes.filter(\.passed).count
            failed += r.outcomes.filter(\.failed).count
            skipped += r.outcomes.filter(\.skipped).count
            disagreements += r.outcomes.filter { !$0.agree }.count
            errors += r.errors.count
        }
    }
}

/// The plain report: one line per differing answer, per operation written
/// without an answer, per error; then the totals.
public func textReport(_ reports: [FileReport], verbose: Bool = false) -> String {
    var out = ""
    for r in reports {
        for e in r.errors {
            out += e.line > 0 ? "\(r.file):\(e.line): error: \(e.message)\n" : "\(r.file): error: \(e.message)\n"
        }
        for o in r.outcomes {
            let many = o.got.count > 1
            let gotText = many ? o.got.map { "\($0.backend) \($0.text)" }.joined(separator: ", ") : (o.got.first?.text ?? "")
            if let expected = o.expected {
                if o.failed {
                    out += "\(r.file):\(o.line): \(o.statement): expected \(expected), got \(gotText)\n"
                } else if !o.agree {
                    out += "\(r.file):\(o.line): \(o.statement): \(gotText)\n"
                } else if verbose {
                    out += "\(r.file):\(o.line): \(o.statement) => \(gotText) (held)\n"
                }
            } else {
                out += "\(r.file):\(o.line): \(o.statement) => \(gotText)\n"
            }
        }
    }
    let t = Totals(reports)
    var summary = "\(t.files) file\(t.files == 1 ? "" : "s"), \(t.operations) operations"
    if t.disagreements > 0 { summary += ", \(t.disagreements) disagreements between backends" }
    if t.errors > 0 { summary += ", \(t.errors) errors" }
    out += summary + "\n"
    out += "\(t.passed) passed, \(t.failed) failed" + (t.skipped > 0 ? ", \(t.skipped) skipped" : "") + "\n"
    return out
}

/// JSON: an array with one object per file, every operation with what was
/// expected, what each backend answered and whether it held.
public func jsonReport(_ reports: [FileReport]) -> String {
    var files: [String] = []
    for r in reports {
        var ops: [String] = []
        for o in r.outcomes {
            let got = o.got.map {
                "{\"backend\":\(jsonString($0.backend)),\"answer\":\(jsonString($0.text)),\"held\":\($0.held.map { String($0) } ?? "null")}"
            }
            let held: String = o.expected == nil ? "null" : (o.failed ? "false" : (o.skipped ? "null" : "true"))
            ops.append("{\"line\":\(o.line),\"statement\":\(jsonString(o.statement)),\"expected\":\(o.expected.map(jsonString) ?? "null"),\"got\":[\(got.joined(separator: ","))],\"held\":\(held),\"agree\":\(o.agree)}")
        }
        let errors = r.errors.map { "{\"line\":\($0.line),\"message\":\(jsonString($0.message))}" }
        let kernels = r.kernels.map { "{\"backend\":\(jsonString($0.backend)),\"kernel\":\(jsonString($0.kernel))}" }
        files.append("{\"file\":\(jsonString(r.file)),\"ok\":\(r.ok),\"backends\":[\(kernels.joined(separator: ","))],\"operations\":[\(ops.joined(separator: ",\n  "))],\"errors\":[\(errors.joined(separator: ","))]}")
    }
    return "[\n" + files.joined(separator: ",\n") + "\n]\n"
}

/// JUnit XML: a test suite per file, a test case per operation that has a
/// written answer.
public func junitReport(_ reports: [FileReport]) -> String {
    let t = Totals(reports)
    var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    out += "<testsuites name=\"vfio-sim replay\" tests=\"\(t.passed + t.failed + t.skipped)\" failures=\"\(t.failed)\" errors=\"\(t.errors)\">\n"
    for r in reports {
        let cases = r.outcomes.filter { $0.expected != nil }
        let failures = cases.filter(\.failed).count
        out += "  <testsuite name=\"\(xmlEscape(r.file))\" tests=\"\(cases.count)\" failures=\"\(failures)\" errors=\"\(r.errors.count)\">\n"
        for e in r.errors {
            out += "    <testcase classname=\"\(xmlEscape(r.file))\" name=\"line \(e.line): setup\"><error message=\"\(xmlEscape(e.message))\"/></testcase>\n"
        }
        for o in cases {
            out += "    <testcase classname=\"\(xmlEscape(r.file))\" name=\"line \(o.line): \(xmlEscape(o.statement))\""
            if o.failed {
                let got = o.got.map { "\($0.backend) \($0.text)" }.joined(separator: ", ")
                out += "><failure message=\"expected \(xmlEscape(o.expected ?? "")), got \(xmlEscape(got))\"/></testcase>\n"
            } else if o.skipped {
                out += "><skipped message=\"\(xmlEscape(o.got.first?.text ?? ""))\"/></testcase>\n"
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

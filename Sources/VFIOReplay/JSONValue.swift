import VFIOCore

/// A JSON value for the machine reports (`--format json` of `plan`,
/// `compare`, `whatif`): built as a value, printed once. The libraries
/// below the command line use no Foundation, so this is the encoder;
/// object keys keep the order they are given, so the output reads like
/// the schema in `docs/REPORTS.md`. Bytes and counts are integers.
public indirect enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(UInt64)
    /// A finite number that need not be whole (seconds); written as Swift
    /// prints a `Double` (`0.03`, `5e-06`), which JSON reads.
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.text == b.text }
    public func hash(into h: inout Hasher) { h.combine(text) }

    /// An optional value, or `null`.
    public static func optional<T>(_ v: T?, _ f: (T) -> JSONValue) -> JSONValue { v.map(f) ?? .null }
    public static func optional(_ v: String?) -> JSONValue { v.map { .string($0) } ?? .null }
    public static func optional(_ v: UInt64?) -> JSONValue { v.map { .int($0) } ?? .null }

    /// Leaf entries by page size: `{"4096":512,"2097152":1}` (the key is the
    /// page size in bytes, ascending).
    public static func ptes(_ c: PTECounts) -> JSONValue {
        .object(c.entries.map { (String($0.size), .int($0.count)) })
    }

    /// One IOVA range: `{"start":N,"last":N}` (inclusive).
    public static func range(_ r: IOVARange) -> JSONValue {
        .object([("start", .int(r.start)), ("last", .int(r.last))])
    }

    /// The value as compact JSON text.
    public var text: String {
        var out = ""
        write(to: &out, indent: nil)
        return out
    }

    /// The value as JSON text, one key per line, indented by two spaces.
    public var pretty: String {
        var out = ""
        write(to: &out, indent: "")
        return out + "\n"
    }

    func write(to out: inout String, indent: String?) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let n): out += String(n)
        case .double(let d): out += d.isFinite ? String(d) : "null"
        case .string(let s): out += jsonString(s)
        case .array(let items):
            writeList(items.map { (nil, $0) }, open: "[", close: "]", to: &out, indent: indent)
        case .object(let fields):
            writeList(fields.map { (Optional($0.0), $0.1) }, open: "{", close: "}", to: &out, indent: indent)
        }
    }

    private func writeList(_ items: [(String?, JSONValue)], open: String, close: String, to out: inout String, indent: String?) {
        out += open
        if items.isEmpty { out += close; return }
        // Small values (numbers, strings, PTE maps) stay on one line.
        let inner = indent.map { $0 + "  " }
        let flat = indent == nil || items.allSatisfy { !$0.1.isContainer || $0.1.isFlatObject }
        for (i, (key, value)) in items.enumerated() {
            if i > 0 { out += "," }
            if !flat, let inner { out += "\n" + inner }
            if let key { out += jsonString(key) + ":" }
            value.write(to: &out, indent: flat ? nil : inner)
        }
        if !flat, let indent { out += "\n" + indent }
        out += close
    }

    private var isContainer: Bool {
        switch self {
        case .array, .object: true
        default: false
        }
    }

    /// An object or array of plain values only.
    private var isFlatObject: Bool {
        switch self {
        case .object(let f): f.count <= 4 && f.allSatisfy { !$0.1.isContainer }
        case .array(let a): a.isEmpty
        default: true
        }
    }
}

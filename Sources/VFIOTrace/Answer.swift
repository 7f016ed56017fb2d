import VFIOCore

/// What came back from an operation, or what a trace says must come back.
public struct Answer: Sendable, Hashable, CustomStringConvertible {
    public enum Status: Sendable, Hashable {
        /// `ok`, or an answer written with keys only (`info => dma-avail=3`).
        case ok
        case errno(Errno)
        /// `extension`: the ioctl's return value.
        case value(UInt64)
        /// `=> error`, written only: any errno (the kernel selftests'
        /// "the call failed"), but not `hang`, which never returns.
        case anyError

        /// Whether an answer with status `got` meets this written one.
        public func accepts(_ got: Status) -> Bool {
            if self == .anyError, case .errno(let e) = got { return e != .hang }
            return self == got
        }
    }
    public var status: Status
    /// Keys of the answer, in the order written. For an expected answer only
    /// the keys written are compared.
    public var fields: AnswerFields

    public init(_ status: Status, fields: AnswerFields = AnswerFields()) { self.status = status; self.fields = fields }
    public init(_ status: Status, fields: [AnswerField]) { self.status = status; self.fields = AnswerFields(fields) }

    public var description: String {
        var words: [String] = []
        switch status {
        case .ok: words.append("ok")
        case .errno(let e): words.append(e.description)
        case .value(let v): words.append(String(v))
        case .anyError: words.append("error")
        }
        words += fields.map(\.description)
        return words.joined(separator: " ")
    }
}

/// The keys of an answer, in order: a collection of `AnswerField`s.
///
/// Not an array: most answers carry one key or none (`ok size=2M`), and an
/// array would allocate for each such answer of a trace, and free it
/// again. The first field is stored inline, the rest (`info` answers) in
/// an array, which exists only once there is a second field (even an
/// empty array is a reference to retain when an answer is copied and to
/// release when it is destroyed). The first field is always inline and
/// the array never empty, so equal collections have equal storage and
/// the derived `==` and hash are by elements.
public struct AnswerFields: RandomAccessCollection, MutableCollection, ExpressibleByArrayLiteral, Sendable, Hashable {
    private var head: AnswerField?
    private var tail: [AnswerField]?

    public init() {}
    public init(_ fields: some Sequence<AnswerField>) { for f in fields { append(f) } }
    public init(arrayLiteral fields: AnswerField...) { self.init(fields) }

    public var startIndex: Int { 0 }
    public var endIndex: Int { head == nil ? 0 : 1 + (tail?.count ?? 0) }

    public subscript(i: Int) -> AnswerField {
        get {
            precondition(i >= 0 && i < endIndex, "AnswerFields index out of range")
            return i == 0 ? head! : tail![i - 1]
        }
        set {
            precondition(i >= 0 && i < endIndex, "AnswerFields index out of range")
            if i == 0 { head = newValue } else { tail![i - 1] = newValue }
        }
    }

    public mutating func append(_ field: AnswerField) {
        if head == nil {
            head = field
        } else if tail == nil {
            tail = [field]
        } else {
            tail!.append(field)
        }
    }
}

/// One `key=value` of an answer.
public enum AnswerField: Sendable, Hashable, CustomStringConvertible {
    /// `size=SIZE`: the size UNMAP reports back.
    case size(UInt64)
    /// `pgsizes=LIST`: `iova_pgsizes`.
    case pgsizes(PageSizes)
    /// `iova=RANGE,...`: the IOVA_RANGE capability (`none` when absent).
    case iova([IOVARange]?)
    /// `dma-avail=N` (`none` when the capability is absent).
    case dmaAvail(UInt32?)
    /// `argsz=N`: the size the kernel asks for (or left) in `argsz`.
    case argsz(UInt32)
    /// `dirty=RANGE,...` or `dirty=none`: the pages whose bits the kernel
    /// set in the caller's bitmap (GET_BITMAP, or an UNMAP with
    /// GET_DIRTY_BITMAP), as IOVA ranges, adjacent pages joined.
    case dirty([IOVARange])

    public var key: String {
        switch self {
        case .size: "size"
        case .pgsizes: "pgsizes"
        case .iova: "iova"
        case .dmaAvail: "dma-avail"
        case .argsz: "argsz"
        case .dirty: "dirty"
        }
    }

    public var description: String {
        switch self {
        case .size(let s): "size=\(formatSize(s))"
        case .pgsizes(let p): "pgsizes=\(formatPageSizes(p))"
        case .iova(let r): "iova=" + (r.map { $0.isEmpty ? "none" : $0.map(formatRange).joined(separator: ",") } ?? "none")
        case .dmaAvail(let n): "dma-avail=" + (n.map { String($0) } ?? "none")
        case .argsz(let n): "argsz=\(n)"
        case .dirty(let r): "dirty=" + (r.isEmpty ? "none" : r.map(formatRange).joined(separator: ","))
        }
    }
}


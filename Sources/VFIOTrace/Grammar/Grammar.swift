import VFIOCore

// The trace language's statements, each defined once: its verb, the keys
// it accepts (in the order messages list them, the parser reads them and
// the printer writes them), which are required, what kind of value each
// takes, the default the printer leaves out, what its answer may hold, and
// its rows of the reference (docs/TRACE_FORMAT.md, `vfio-sim help trace`).
//
// The parser reads every statement's keys through `StatementParser.readKeys`
// from that definition (unknown, duplicate, missing and `only with` keys,
// numbers and yes/no values); what no table can say (building a `MapDMA`,
// `thp` not with `phys=`) is the statement's own `read` function, in the
// file of its entry under Grammar/. The printer writes a statement's values
// through `printWords`, in the entry's key order and without the values
// equal to their defaults.
//
// To add a statement: a `Verb` case, its entry (keys, answer, rows, `read`
// and `words`) in a file under Grammar/, `Statement.Kind`'s case, then
// `scripts/gen-trace-help.sh` for the reference.

/// A verb of the language: the first word of a statement.
///
/// An enum rather than strings so that a line's verb is matched once, by
/// comparing its bytes with each name, and then switched on. The order of
/// the cases is the order of messages and of the reference's tables.
enum Verb: CaseIterable {
    case iommu, container, kernel, memlock, mlock, capIPCLock, dmaEntryLimit, domain, detach, memory
    case map, unmap, unmapAll, info, `extension`, dirty, check, show

    var name: StaticString {
        switch self {
        case .iommu: "iommu"
        case .container: "container"
        case .kernel: "kernel"
        case .memlock: "memlock"
        case .mlock: "mlock"
        case .capIPCLock: "cap-ipc-lock"
        case .dmaEntryLimit: "dma-entry-limit"
        case .domain: "domain"
        case .detach: "detach"
        case .memory: "memory"
        case .map: "map"
        case .unmap: "unmap"
        case .unmapAll: "unmap-all"
        case .info: "info"
        case .extension: "extension"
        case .dirty: "dirty"
        case .check: "check"
        case .show: "show"
        }
    }

    /// The statement's definition.
    var syntax: StatementSyntax {
        switch self {
        case .iommu: .iommu
        case .container: .container
        case .kernel: .kernel
        case .memlock: .memlock
        case .mlock: .mlock
        case .capIPCLock: .capIPCLock
        case .dmaEntryLimit: .dmaEntryLimit
        case .domain: .domain
        case .detach: .detach
        case .memory: .memory
        case .map: .map
        case .unmap: .unmap
        case .unmapAll: .unmapAll
        case .info: .info
        case .extension: .extension
        case .dirty: .dirty
        case .check: .check
        case .show: .show
        }
    }

    /// Verbs that are operations wherever they appear.
    var isOperation: Bool {
        switch self {
        case .map, .unmap, .unmapAll, .info, .extension, .dirty: true
        default: false
        }
    }

    /// Every verb, the ones tools write on most lines first (the search
    /// for a line's verb goes in this order).
    static let all: [Verb] = [.map, .unmap, .check] + Verb.allCases.filter { ![.map, .unmap, .check].contains($0) }

    /// The verb spelled `text`, if any.
    init?(_ text: Text) {
        guard let verb = Verb.all.first(where: { text == $0.name }) else { return nil }
        self = verb
    }

    /// `iommu, kernel, ...`, for messages.
    static var list: String { allCases.map(\.name.string).joined(separator: ", ") }
}

/// What a key's value is, as the generic reading checks it.
enum ValueKind {
    /// A bare word, no value (`thp`, `vaddr-only`).
    case bare
    /// A NUMBER, 64 bits.
    case number
    /// A NUMBER below 2^32 (a `__u32` field).
    case number32
    /// `yes` or `no`.
    case yesNo
    /// Read by the statement's own function (a list, a range, a name, a
    /// choice of words).
    case text
}

/// One key a statement accepts.
struct KeySyntax {
    let key: Key
    let kind: ValueKind
    /// Missing, the line is an error (`expected KEY=, found end of line`);
    /// with `needs`, only when that key is there.
    var required = false
    /// The key means something only with this one (`step=` with `repeat=`):
    /// without it, the line is an error.
    var needs: Key?
    /// The value, as the printer writes it, that the printer leaves out.
    var printedDefault: String?
    /// A raw field of the ioctl, for testing bad requests: the reference
    /// names these together ("Raw fields"), not in the statement's row.
    var raw = false

    init(_ key: Key, _ kind: ValueKind, required: Bool = false, needs: Key? = nil, printedDefault: String? = nil, raw: Bool = false) {
        self.key = key; self.kind = kind; self.required = required; self.needs = needs; self.printedDefault = printedDefault; self.raw = raw
    }
}

/// Reads a statement's words after its verb into its kind; the parser
/// gives it `declared`, what earlier lines said.
typealias StatementReader = @Sendable (inout StatementParser, inout Declared) throws(LineError) -> Statement.Kind

/// One statement of the language.
struct StatementSyntax: Sendable {
    let verb: Verb
    /// The keys after the operands, in the order messages list them, the
    /// parser reads them and the printer writes them.
    let keys: [KeySyntax]
    /// What its answer after `=>` may hold (a reader may narrow it: `unmap`
    /// takes `dirty=` only with `dirty`).
    let answer: AnswerRule
    /// Its table in the reference, and its rows there.
    let table: ReferenceTable
    let rows: [ReferenceRow]
    /// Keys of a form the statement reads with another key list (`dirty
    /// get`), for the reference's check that every key is documented.
    var otherForms: [StatementSyntax] = []
    /// The per-statement rules no table states.
    let read: StatementReader

    /// The key spelled `text` (`key=` of a `key=value` word, or a bare
    /// word), if the statement accepts it.
    @inline(__always) func key(_ text: Text) -> KeySyntax? {
        for k in keys where text == k.key.name { return k }
        return nil
    }

    /// `argsz=` or `one of iova=, size=`, for messages.
    var oneOf: String { VFIOTrace.oneOf(keys.map(\.key.name)) }

    /// Every statement, in the order of the reference.
    static var all: [StatementSyntax] { Verb.allCases.map(\.syntax) }
}

extension AnswerRule {
    /// An answer that is a status (`ok`, an errno, `error`) and may carry `fields`.
    static func status(_ verb: Verb, fields: [AnswerKey]) -> AnswerRule {
        var rule = AnswerRule.status(verb)
        for f in fields { rule.fields |= f.bit }
        return rule
    }
}

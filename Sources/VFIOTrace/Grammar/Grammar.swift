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
// `thp` not with `phys=`) is the statement's own reader (`readMap`, …), in
// the file of its entry under Grammar/, which `Verb.read` calls. The
// printer writes a statement's values through `printWords`, in the entry's
// key order and without the values equal to their defaults.
//
// To add a statement: a `Verb` case (its name, `syntax` and `read`), its
// entry, reader and printed values in a file under Grammar/,
// `Statement.Kind`'s case, then `scripts/gen-trace-help.sh` for the
// reference.

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

    /// Reads the statement's words after the verb: the statement's own
    /// function, next to its entry, by which it reads its keys.
    @inline(__always) func read(_ p: inout StatementParser, _ declared: inout Declared) throws(LineError) -> Statement.Kind {
        switch self {
        case .iommu: try p.readIOMMU(&declared)
        case .container: try p.readContainer(&declared)
        case .kernel: try p.readKernel(&declared)
        case .memlock: try p.readMemlock(&declared)
        case .mlock: try p.readMlock(&declared)
        case .capIPCLock: try p.readCapIPCLock(&declared)
        case .dmaEntryLimit: try p.readDMAEntryLimit(&declared)
        case .domain: try p.readDomain(&declared)
        case .detach: try p.readDetach(&declared)
        case .memory: try p.readMemory(&declared)
        case .map: try p.readMap(&declared)
        case .unmap: try p.readUnmap(&declared)
        case .unmapAll: try p.readUnmapAll(&declared)
        case .info: try p.readInfo(&declared)
        case .extension: try p.readExtension(&declared)
        case .dirty: try p.readDirty(&declared)
        case .check: try p.readCheck(&declared)
        case .show: try p.readShow(&declared)
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

/// One key a statement accepts. (Made only of plain values, so that
/// reading a line's keys through the list retains nothing.)
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
    var printedDefault: StaticString?
    /// A raw field of the ioctl, for testing bad requests: the reference
    /// names these together ("Raw fields"), not in the statement's row.
    var raw = false

    init(_ key: Key, _ kind: ValueKind, required: Bool = false, needs: Key? = nil, printedDefault: StaticString? = nil, raw: Bool = false) {
        self.key = key; self.kind = kind; self.required = required; self.needs = needs; self.printedDefault = printedDefault; self.raw = raw
    }
}

/// One statement of the language.
///
/// A class, so that finding a line's statement hands over one reference
/// rather than copying its lists.
final class StatementSyntax: Sendable {
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
    let otherForms: [StatementSyntax]
    /// The required keys and the keys that need another, as `Key.bit`s:
    /// `readKeys` looks at each only when the line lacks one or has the other.
    let required: UInt64
    let needing: UInt64

    init(verb: Verb, keys: [KeySyntax], answer: AnswerRule, table: ReferenceTable, rows: [ReferenceRow],
         otherForms: [StatementSyntax] = []) {
        self.verb = verb; self.keys = keys; self.answer = answer; self.table = table; self.rows = rows
        self.otherForms = otherForms
        required = keys.filter { $0.required && $0.needs == nil }.reduce(0) { $0 | $1.key.bit }
        needing = keys.filter { $0.needs != nil }.reduce(0) { $0 | $1.key.bit }
    }

    /// The key spelled `text` (`key=` of a `key=value` word, or a bare
    /// word), if the statement accepts it.
    func key(_ text: Text) -> KeySyntax? { keys.index(of: text, from: 0).map { keys[$0] } }

    /// `argsz=` or `one of iova=, size=`, for messages.
    var oneOf: String { VFIOTrace.oneOf(keys.map(\.key.name)) }

    /// Every statement, in the order of the reference.
    static var all: [StatementSyntax] { Verb.allCases.map(\.syntax) }
}

extension [KeySyntax] {
    /// Where the key spelled `text` is, looking from `start` on and then
    /// from the beginning.
    @inline(__always) func index(of text: Text, from start: Int) -> Int? {
        for i in start..<count where text == self[i].key.name { return i }
        for i in 0..<start where text == self[i].key.name { return i }
        return nil
    }
}

extension AnswerRule {
    /// An answer that is a status (`ok`, an errno, `error`) and may carry `fields`.
    static func status(_ verb: Verb, fields: [AnswerKey]) -> AnswerRule {
        var rule = AnswerRule.status(verb)
        for f in fields { rule.fields |= f.bit }
        return rule
    }
}

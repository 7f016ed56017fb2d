import VFIOCore

// The words of the trace language the parser matches besides the verbs
// (Grammar/Grammar.swift): answer keys, statement keys, and what each
// statement's answer may say.

/// The keys an answer may carry, in the order messages list them.
enum AnswerKey: Int, CaseIterable {
    case pgsizes, iova, dmaAvail, argsz, size, dirty

    var name: StaticString {
        switch self {
        case .pgsizes: "pgsizes"
        case .iova: "iova"
        case .dmaAvail: "dma-avail"
        case .argsz: "argsz"
        case .size: "size"
        case .dirty: "dirty"
        }
    }

    /// The bit of this key in `AnswerRule.fields`.
    var bit: UInt8 { 1 << UInt8(rawValue) }

    /// Every case, in a stored array (`allCases` may build a new one on
    /// each call).
    static let all = AnswerKey.allCases

    /// The answer key spelled `text`, if any.
    init?(_ text: Text) {
        guard let key = AnswerKey.all.first(where: { text == $0.name }) else { return nil }
        self = key
    }
}

/// What an answer after `=>` may hold on one statement.
struct AnswerRule {
    /// Nil when the statement takes an answer; else why not (for the message).
    var refusal: StaticString?
    /// The verb, for messages.
    var verb: Verb = .info
    /// Keys the answer may carry after `ok`: a set of `AnswerKey.bit`s (a
    /// bit set, not an array, so that making a rule per line allocates
    /// nothing).
    var fields: UInt8 = 0
    /// A bare number (`extension`), instead of `ok`.
    var value = false
    /// Keys without `ok` (`info => dma-avail=3`).
    var fieldsAlone = false
    /// `check pte`: the answer is a page size or `none`, and required.
    var leafSize = false

    /// (A literal, not a `String`: a rule is made per line, and a `String`
    /// made the statement parser that holds it one to retain and release.)
    static func none(_ why: StaticString) -> AnswerRule { AnswerRule(refusal: why) }
    static func status(_ verb: Verb) -> AnswerRule { AnswerRule(refusal: nil, verb: verb) }

    /// The key `text` names, if this answer may carry it.
    func field(_ text: Text) -> AnswerKey? {
        guard let key = AnswerKey(text), fields & key.bit != 0 else { return nil }
        return key
    }

    /// `size=` or `pgsizes=, iova=, dma-avail=, argsz=`, for messages.
    var fieldList: String {
        AnswerKey.allCases.filter { fields & $0.bit != 0 }.map { $0.name.string + "=" }.joined(separator: ", ")
    }
}

/// A `key=value` word.
struct KeyValue {
    var word: Token
    var value: Text
}

/// Every word a statement accepts after its operands: `key=` of a
/// `key=value` word, or a bare word. A `Key` is found once per word (by
/// `collect`), by comparing the word with the names its statement accepts.
enum Key: UInt8, CaseIterable {
    case argsz, iova, size, pgsize, bitmapSize, flags
    case pgsizes, leaves, aperture, reserved, fgsp, coherent, emulated, msiIsolated, iommu, instance
    case vaddr, page, phys, seed, pfnmap, thp
    case populated
    case prot, vaddrOnly, `repeat`, step, dirty
    case locked, mappings, ptes, domain, pte
    case showLocked, showMappings, showPtes, showIova

    var name: StaticString {
        switch self {
        case .argsz: "argsz="
        case .iova: "iova="
        case .size: "size="
        case .pgsize: "pgsize="
        case .bitmapSize: "bitmap-size="
        case .flags: "flags="
        case .pgsizes: "pgsizes="
        case .leaves: "leaves="
        case .aperture: "aperture="
        case .reserved: "reserved="
        case .fgsp: "fgsp="
        case .coherent: "coherent="
        case .emulated: "emulated="
        case .msiIsolated: "msi-isolated="
        case .iommu: "iommu="
        case .instance: "instance="
        case .vaddr: "vaddr="
        case .page: "page="
        case .phys: "phys="
        case .seed: "seed="
        case .pfnmap: "pfnmap"
        case .thp: "thp"
        case .populated: "populated="
        case .prot: "prot="
        case .vaddrOnly: "vaddr-only"
        case .repeat: "repeat="
        case .step: "step="
        case .dirty: "dirty"
        case .locked: "locked="
        case .mappings: "mappings="
        case .ptes: "ptes="
        case .domain: "domain="
        case .pte: "pte"
        case .showLocked: "locked"
        case .showMappings: "mappings"
        case .showPtes: "ptes"
        case .showIova: "iova"
        }
    }

    /// The bit of this key in `StatementParser.present`.
    var bit: UInt64 { 1 << UInt64(rawValue) }

    /// Every case, in a stored array (`allCases` may build a new one on
    /// each call).
    static let all = Key.allCases

    /// The key spelled `text` (`key=` of a `key=value` word, or a bare
    /// word), if any.
    init?(_ text: Text) {
        guard let key = Key.all.first(where: { text == $0.name }) else { return nil }
        self = key
    }
}

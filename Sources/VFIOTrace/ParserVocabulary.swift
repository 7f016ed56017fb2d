import VFIOCore

// The words of the trace language the parser matches: verbs, answer keys,
// statement keys, and what each verb's answer may say.

///
/// An enum rather than strings so that a line's verb is matched once, by
/// comparing bytes, and then switched on without hashing or allocating.
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

    /// Verbs that are operations wherever they appear.
    var isOperation: Bool {
        switch self {
        case .map, .unmap, .unmapAll, .info, .extension, .dirty: true
        default: false
        }
    }

    /// Every verb with its spelling, in a stored array (`allCases` may
    /// build a new one on each call, and this is searched once per line).
    static let spelled = Verb.allCases.map { ($0, Spelling($0.name)) }

    /// The verb spelled `text`, if any.
    @inline(__always) init?(_ text: Text) {
        guard let verb = Verb.named(Spelling(text)) else { return nil }
        self = verb
    }

    /// The verb spelled `s`, if any: a switch on the length and the
    /// packed bytes (the constants are `Spelling(name)` of each verb, which
    /// a test checks), instead of comparing with each verb in turn.
    static func named(_ s: Spelling) -> Verb? {
        switch s.count {
        case 3:
            switch s.low {
            case 0x70616d: return .map // map
            default: return nil
            }
        case 4:
            switch s.low {
            case 0x6f666e69: return .info // info
            case 0x776f6873: return .show // show
            default: return nil
            }
        case 5:
            switch s.low {
            case 0x756d6d6f69: return .iommu // iommu
            case 0x70616d6e75: return .unmap // unmap
            case 0x7974726964: return .dirty // dirty
            case 0x6b63656863: return .check // check
            case 0x6b636f6c6d: return .mlock // mlock
            default: return nil
            }
        case 6:
            switch s.low {
            case 0x6c656e72656b: return .kernel // kernel
            case 0x6e69616d6f64: return .domain // domain
            case 0x686361746564: return .detach // detach
            case 0x79726f6d656d: return .memory // memory
            default: return nil
            }
        case 7:
            switch s.low {
            case 0x6b636f6c6d656d: return .memlock // memlock
            default: return nil
            }
        case 9:
            switch s.low {
            case 0x656e6961746e6f63: return s.high == 0x72 ? .container : nil // container
            case 0x6c612d70616d6e75: return s.high == 0x6c ? .unmapAll : nil // unmap-all
            case 0x6f69736e65747865: return s.high == 0x6e ? .`extension` : nil // extension
            default: return nil
            }
        case 12:
            switch s.low {
            case 0x2d6370692d706163: return s.high == 0x6b636f6c ? .capIPCLock : nil // cap-ipc-lock
            default: return nil
            }
        case 15:
            switch s.low {
            case 0x72746e652d616d64: return s.high == 0x74696d696c2d79 ? .dmaEntryLimit : nil // dma-entry-limit
            default: return nil
            }
        default: return nil
        }
    }

    /// `iommu, kernel, ...`, for messages.
    static var list: String { allCases.map(\.name.string).joined(separator: ", ") }
}

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

    static let spelled = AnswerKey.allCases.map { ($0, Spelling($0.name)) }
    /// The answer key spelled `s`, if any: a switch on the length and the
    /// packed bytes (the constants are `Spelling(name)` of each key, which
    /// a test checks).
    static func named(_ s: Spelling) -> AnswerKey? {
        switch s.count {
        case 4:
            switch s.low {
            case 0x61766f69: return .iova // iova
            case 0x657a6973: return .size // size
            default: return nil
            }
        case 5:
            switch s.low {
            case 0x7a73677261: return .argsz // argsz
            case 0x7974726964: return .dirty // dirty
            default: return nil
            }
        case 7:
            switch s.low {
            case 0x73657a69736770: return .pgsizes // pgsizes
            default: return nil
            }
        case 9:
            switch s.low {
            case 0x696176612d616d64: return s.high == 0x6c ? .dmaAvail : nil // dma-avail
            default: return nil
            }
        default: return nil
        }
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
        guard let key = AnswerKey.named(Spelling(text)), fields & key.bit != 0 else { return nil }
        return key
    }

    /// `size=` or `pgsizes=, iova=, dma-avail=, argsz=`, for messages.
    var fieldList: String {
        AnswerKey.allCases.filter { fields & $0.bit != 0 }.map { $0.name.string + "=" }.joined(separator: ", ")
    }
}

/// Some of a line's tokens (the line's `LexedLine` holds them).
typealias Tokens = Slice<UnsafeBufferPointer<Token>>

/// A `key=value` word.
struct KeyValue {
    var word: Token
    var value: Text
}

/// Every word a statement accepts after its operands: `key=` of a
/// `key=value` word, or a bare word. A `Key` is found once per word (by
/// `collect`); looking one up afterwards tests a bit and reads a slot.
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

    /// The bit of this key in `StatementParser.found`.
    var bit: UInt64 { 1 << UInt64(rawValue) }

    /// The key spelled `s` (`key=` of a `key=value` word, or a bare word),
    /// if any: a switch on the length and the packed bytes (the constants
    /// are `Spelling(name)` of each key, which a test checks).
    static func named(_ s: Spelling) -> Key? {
        switch s.count {
        case 3:
            switch s.low {
            case 0x706874: return .thp // thp
            case 0x657470: return .pte // pte
            default: return nil
            }
        case 4:
            switch s.low {
            case 0x73657470: return .showPtes // ptes
            case 0x61766f69: return .showIova // iova
            default: return nil
            }
        case 5:
            switch s.low {
            case 0x3d61766f69: return .iova // iova=
            case 0x3d657a6973: return .size // size=
            case 0x3d70736766: return .fgsp // fgsp=
            case 0x3d65676170: return .page // page=
            case 0x3d73796870: return .phys // phys=
            case 0x3d64656573: return .seed // seed=
            case 0x3d746f7270: return .prot // prot=
            case 0x3d70657473: return .step // step=
            case 0x7974726964: return .dirty // dirty
            case 0x3d73657470: return .ptes // ptes=
            default: return nil
            }
        case 6:
            switch s.low {
            case 0x3d7a73677261: return .argsz // argsz=
            case 0x3d756d6d6f69: return .iommu // iommu=
            case 0x3d7367616c66: return .flags // flags=
            case 0x3d7264646176: return .vaddr // vaddr=
            case 0x70616d6e6670: return .pfnmap // pfnmap
            case 0x64656b636f6c: return .showLocked // locked
            default: return nil
            }
        case 7:
            switch s.low {
            case 0x3d657a69736770: return .pgsize // pgsize=
            case 0x3d73657661656c: return .leaves // leaves=
            case 0x3d746165706572: return .`repeat` // repeat=
            case 0x3d64656b636f6c: return .locked // locked=
            case 0x3d6e69616d6f64: return .domain // domain=
            default: return nil
            }
        case 8:
            switch s.low {
            case 0x3d73657a69736770: return .pgsizes // pgsizes=
            case 0x73676e697070616d: return .showMappings // mappings
            default: return nil
            }
        default: return longNamed(s)
        }
    }

    /// `named` for the spellings of 9 bytes or more (their second word,
    /// `high`, is compared too).
    static func longNamed(_ s: Spelling) -> Key? {
        switch s.count {
        case 9:
            switch s.low {
            case 0x6572757472657061: return s.high == 0x3d ? .aperture : nil // aperture=
            case 0x65636e6174736e69: return s.high == 0x3d ? .instance : nil // instance=
            case 0x6465767265736572: return s.high == 0x3d ? .reserved : nil // reserved=
            case 0x746e657265686f63: return s.high == 0x3d ? .coherent : nil // coherent=
            case 0x646574616c756d65: return s.high == 0x3d ? .emulated : nil // emulated=
            case 0x73676e697070616d: return s.high == 0x3d ? .mappings : nil // mappings=
            default: return nil
            }
        case 10:
            switch s.low {
            case 0x6e6f2d7264646176: return s.high == 0x796c ? .vaddrOnly : nil // vaddr-only
            case 0x6574616c75706f70: return s.high == 0x3d64 ? .populated : nil // populated=
            default: return nil
            }
        case 12:
            switch s.low {
            case 0x732d70616d746962: return s.high == 0x3d657a69 ? .bitmapSize : nil // bitmap-size=
            default: return nil
            }
        case 13:
            switch s.low {
            case 0x6c6f73692d69736d: return s.high == 0x3d64657461 ? .msiIsolated : nil // msi-isolated=
            default: return nil
            }
        default: return nil
        }
    }
}

/// What one statement accepts after its operands, in the order messages
/// list them, with the spellings `collect` compares words with.
struct WordList {
    let keys: [Key]
    /// The keys as `Key.bit`s.
    let allowed: UInt64
    init(_ keys: [Key]) { self.keys = keys; allowed = keys.reduce(0) { $0 | $1.bit } }

    /// The key spelled `spelling`, if the list has it.
    @inline(__always) func key(_ spelling: Spelling) -> Key? {
        guard let key = Key.named(spelling), allowed & key.bit != 0 else { return nil }
        return key
    }

    /// `argsz=` or `one of iova=, size=`.
    var oneOf: String { VFIOTrace.oneOf(keys.map(\.name)) }
}

/// For each `Key`, where its word is among the line's tokens: one byte per
/// key, valid only where `StatementParser.found` has the key's bit (so it
/// is never cleared).
struct KeySlots {
    var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    subscript(key: Key) -> Int {
        get { withUnsafeBytes(of: bytes) { Int($0[Int(key.rawValue)]) } }
        set { withUnsafeMutableBytes(of: &bytes) { $0[Int(key.rawValue)] = UInt8(truncatingIfNeeded: newValue) } }
    }
}

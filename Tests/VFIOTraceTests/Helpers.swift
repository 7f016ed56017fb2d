import VFIOCore
@testable import VFIOTrace

/// The statements of `text` (file `t.trace`), or nil when it does not parse.
func statements(_ text: String) -> [Statement]? {
    try? parseTrace(text, file: "t.trace").get().statements
}

/// The single statement kind `text` parses to, or nil.
func kind(_ text: String) -> Statement.Kind? {
    guard let s = statements(text), s.count == 1 else { return nil }
    return s[0].kind
}

/// Every diagnostic of `text` (file `t.trace`) as printed; empty when it parses.
func diagnostics(_ text: String) -> [String] {
    switch parseTrace(text, file: "t.trace") {
    case .success: return []
    case .failure(let f): return f.diagnostics.map(\.description)
    }
}

func diagnostics(bytes: [UInt8]) -> [String] {
    switch parseTrace(bytes: bytes, file: "t.trace") {
    case .success: return []
    case .failure(let f): return f.diagnostics.map(\.description)
    }
}

/// Statements without their positions: what a round trip must keep.
struct Shape: Hashable, CustomStringConvertible {
    var kind: Statement.Kind
    var expected: Answer?
    var comment: String?
    init(_ s: Statement) { kind = s.kind; expected = s.expected; comment = s.comment }
    var description: String { "\(kind) \(expected.map(\.description) ?? "-") \(comment ?? "-")" }
}

/// A map statement's request.
func mapDMA(iova: UInt64, vaddr: UInt64, size: UInt64, _ flags: MapDMA.Flags, argsz: UInt32 = MapDMA.structSize) -> Statement.Kind {
    .map(MapDMA(argsz: argsz, flags: flags, vaddr: vaddr, iova: iova, size: size))
}

let mib: UInt64 = 1 << 20
let gib: UInt64 = 1 << 30

import VFIOCore

// The answer after `=>`: its status, its keys, and `check pte`'s leaf size.

/// Whether `text` looks like an errno name that is not one: `E` then
/// capitals and digits.
func looksLikeErrno(_ text: Text) -> Bool {
    text.count > 1 && text.first == UInt8(ascii: "E") && text.allSatisfy {
        ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
    }
}

/// The answer of `check pte`: `=> SIZE` (a power of two: the leaf's page
/// size) or `=> none`; nil for none. The answer's words are
/// `tokens[answer]`.
func parseLeafAnswer(arrow: Token?, tokens: [Token], answer: Range<Int>, lineEnd: Int, secondArrow: Token?) throws(LineError) -> UInt64? {
    let (start, end) = (answer.lowerBound, answer.upperBound)
    guard let arrow else { throw LineError(lineEnd, "expected '=> SIZE' or '=> none' (check pte answers the leaf's page size), found end of line") }
    guard start < end else { throw LineError(arrow.text.end, "expected a page size or none, found end of line") }
    let first = tokens[start]
    if first.isArrow { throw LineError(first.text.start, "expected a page size or none, found '=>'") }
    if let second = secondArrow { throw LineError(second.text.start, "expected end of line, found '=>'") }
    if start + 1 < end, case let w = tokens[start + 1] { throw LineError(w.text.start, "expected end of line, found \(quoted(w.text))") }
    if first.text == "none" { return nil }
    guard let d = first.text.first, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") else {
        throw LineError(first.text.start, "expected a page size or none, found \(quoted(first.text))")
    }
    let size = try number(first.text)
    guard size != 0, size & (size - 1) == 0 else {
        throw LineError(first.text.start, "expected a page size (a power of two) or none, found \(quoted(first.text))")
    }
    return size
}

/// The answer after `=>`; `secondArrow` is the line's next `=>` after
/// `arrow`, if any (the lexer records it, so the tokens are not scanned).
/// The answer's words are `tokens[answer]` (positions, not a slice: a
/// slice retained the array).
func parseAnswer(rule: AnswerRule, arrow: Token, tokens: [Token], answer: Range<Int>, secondArrow: Token?) throws(LineError) -> Answer {
    let (start, end) = (answer.lowerBound, answer.upperBound)
    if let why = rule.refusal { throw LineError(arrow.text.start, "expected end of line (\(why.string)), found '=>'") }
    guard start < end else { throw LineError(arrow.text.end, "expected an answer, found end of line") }
    let first = tokens[start]
    if first.isArrow { throw LineError(first.text.start, "expected an answer, found '=>'") }
    if let second = secondArrow { throw LineError(second.text.start, "expected end of line, found '=>'") }
    // The fields are `tokens[rest..<end]`.
    var rest = start + 1
    let status: Answer.Status
    if first.text == "ok" && !rule.value {
        status = .ok
    } else if rule.fieldsAlone && first.hasEquals {
        status = .ok
        rest = start
    } else if rule.value, let d = first.text.first, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") {
        status = .value(try number(first.text))
    } else if let e = errno(named: first.text) {
        status = .errno(e)
    } else if first.text == "error" {
        status = .anyError
    } else if looksLikeErrno(first.text) {
        throw LineError(first.text.start, "expected a Linux errno name, found \(quoted(first.text))")
    } else {
        let what = rule.value ? "a number, an errno or error" : rule.fieldsAlone ? "ok, an errno, error or key=value fields" : "ok, an errno or error"
        throw LineError(first.text.start, "expected \(what), found \(quoted(first.text))")
    }
    if case .ok = status {} else if rest < end, case let w = tokens[rest] {
        throw LineError(w.text.start, "expected end of line, found \(quoted(w.text))")
    }
    var fields = AnswerFields()
    // Keys already given, as `AnswerKey.bit`s.
    var seen: UInt8 = 0
    for i in rest..<end {
        let w = tokens[i]
        guard w.hasEquals, let key = rule.field(w.key) else {
            if rule.fields == 0 {
                throw LineError(w.text.start, "expected end of line (the \(rule.verb.name) answer takes no keys), found \(quoted(w.text))")
            }
            throw LineError(w.text.start, "expected a key of the \(rule.verb.name) answer (\(rule.fieldList)), found \(quoted(w.text))")
        }
        let value = w.value
        guard seen & key.bit == 0 else {
            throw LineError(w.text.start, "expected at most one \(key.name)=, found \(quoted(w.text))")
        }
        seen |= key.bit
        switch key {
        case .size: fields.append(.size(try number(value)))
        case .pgsizes: fields.append(.pgsizes(try pageSizes(value)))
        case .iova: fields.append(.iova(try value == "none" ? nil : ranges(value)))
        case .dmaAvail: fields.append(.dmaAvail(try value == "none" ? nil : number32(value)))
        case .argsz: fields.append(.argsz(try number32(value)))
        case .dirty: fields.append(.dirty(try value == "none" ? [] : ranges(value)))
        }
    }
    return Answer(status, fields: fields)
}

/// Every errno name (`Errno.allNames`) with its errno, by the length of
/// the name, built once.
let errnoNames: [Int: [(name: [UInt8], errno: Errno)]] = Dictionary(grouping: Errno.allNames.compactMap { name in
    Errno(name: name).map { (name: Array(name.utf8), errno: $0) }
}, by: \.name.count)

/// `Errno(name:)`, without making a `String` for the errno names a trace
/// writes most: those of `Errno.allNames` are found by comparing bytes; any
/// other text (`hang`, which is no errno name but an answer, or a mistake)
/// goes to `Errno(name:)`, which has the last word.
func errno(named text: Text) -> Errno? {
    errnoNames[text.count]?.first { $0.name.elementsEqual(text.bytes) }?.errno ?? Errno(name: text.string)
}

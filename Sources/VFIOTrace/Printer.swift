import VFIOCore

/// Prints a trace in canonical form: one statement per line, each with its
/// keys in a fixed order, addresses in lower-case hex, sizes with a binary
/// suffix when exact, values equal to their default left out, answers after
/// ` => `, trailing comments after two spaces, standalone comments kept and
/// each run of blank lines printed as one.
///
/// Parsing the output gives the same statements (kinds, answers, comments)
/// as the trace printed, line numbers aside.
public func printTrace(_ trace: Trace) -> String {
    var out = ""
    var previousWasBlank = false
    for statement in trace.statements {
        if case .blank = statement.kind {
            if !previousWasBlank { out += "\n" }
            previousWasBlank = true
            continue
        }
        previousWasBlank = false
        out += printStatement(statement)
        out += "\n"
    }
    return out
}

/// One statement as one line, without the line end.
public func printStatement(_ statement: Statement) -> String {
    var w = words(of: statement.kind)
    if let r = statement.repetition {
        w.append("repeat=\(r.count)")
        if let step = r.step { w.append("step=" + formatSize(step)) }
    }
    if !statement.spellings.isEmpty { w = w.map { keepSpelling($0, statement.spellings) } }
    var line = w.joined(separator: " ")
    if let answer = statement.expected { line += " => " + answer.description }
    if let comment = statement.comment {
        line += line.isEmpty ? commentLine(comment) : "  " + commentLine(comment)
    }
    return line
}

/// `size=0x200000` for the canonical `size=2M` when the trace wrote it so:
/// a `key=value` word keeps the value as written when that spelling is a
/// plain number naming the same value (lists, ranges and words are
/// canonical).
func keepSpelling(_ word: String, _ spellings: [String: String]) -> String {
    guard let eq = word.firstIndex(of: "=") else { return word }
    let key = String(word[..<eq]), value = String(word[word.index(after: eq)...])
    guard let written = spellings[key], written != value,
          case .success(let a) = parseNumberString(written), case .success(let b) = parseNumberString(value), a == b
    else { return word }
    return key + "=" + written
}

private func commentLine(_ text: String) -> String { text.isEmpty ? "#" : "# " + text }

/// The words of a statement, in canonical order: each statement's own
/// function (next to its grammar entry) gives its values, `printWords`
/// writes them in the grammar's order.
func words(of kind: Statement.Kind) -> [String] {
    switch kind {
    case .comment(let text): return [commentLine(text)]
    case .blank: return []
    case .domain(let spec): return domainWords(spec)
    case .memory(let m): return memoryWords(m)
    case .map(let m): return mapWords(m)
    case .unmap(let u): return unmapWords(u)
    default: return setupWords(kind) ?? queryWords(kind) ?? checkWords(kind) ?? []
    }
}

/// `head` (the verb and its operands), then the keys of `syntax` that
/// `values` holds, in the statement's order: `key=value`, or a bare key
/// alone. A value equal to its key's default is left out, unless
/// `keepingDefaults` (a domain's keys written beside a preset).
func printWords(_ syntax: StatementSyntax, _ head: [String], _ values: [Key: String], keepingDefaults: Bool = false) -> [String] {
    var w = head
    for k in syntax.keys {
        guard let value = values[k.key] else { continue }
        if !keepingDefaults, let d = k.printedDefault, value == d.string { continue }
        w.append(k.kind == .bare ? k.key.name.string : k.key.name.string + value)
    }
    return w
}

/// One thing wrong with a trace, at a place in it.
///
/// Printed as compilers print theirs, `FILE:LINE:COLUMN: error: MESSAGE`,
/// so editors and terminals can jump to it. Every message reads
/// `expected …, found …`: what the language wants at that place, then what
/// the file has there.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    /// The path as given to `parseTrace`.
    public var file: String
    /// 1-based line.
    public var line: Int
    /// 1-based column, counted in Unicode scalars, of the text the message
    /// quotes after `found` (of the place where something is missing when it
    /// says `found end of line`).
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file; self.line = line; self.column = column; self.message = message
    }

    public var description: String { "\(file):\(line):\(column): error: \(message)" }
}

/// Why a trace did not parse: every error in the file, in file order (at
/// most one per line; parsing goes on with the next line after an error).
public struct ParseFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public init(diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    /// One diagnostic per line.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// An error inside one line, before the file and line are known.
///
/// It holds the byte offset in the file of the place it points at, not the
/// column: columns count Unicode scalars from the start of the line, which
/// only the line's owner can do, and only errors need it
/// (`column(at:lineStart:in:)`).
struct LineError: Error {
    var offset: Int
    var message: String
    init(_ offset: Int, _ message: String) { self.offset = offset; self.message = message }
}

/// Quotes text for a message: `'zz'`; `nothing` when empty. Text longer than
/// 60 scalars is cut, with `...`, so a huge word never makes a huge message.
func quoted<S: StringProtocol>(_ text: S) -> String {
    if text.isEmpty { return "nothing" }
    var out = "'"
    var count = 0
    for scalar in text.unicodeScalars {
        if count == 60 { out += "..."; break }
        out.unicodeScalars.append(scalar)
        count += 1
    }
    return out + "'"
}

/// `quoted` of a run of the file's bytes. Only the first 61 scalars are
/// decoded (enough to tell that there are more than 60), so quoting a huge
/// word costs no more than quoting a short one.
func quoted(_ text: Text) -> String {
    var end = text.start
    var scalars = 0
    while end < text.end {
        if text[end] & 0xC0 != 0x80 {
            if scalars == 61 { break }
            scalars += 1
        }
        end += 1
    }
    return quoted(text.prefix(upTo: end).string)
}

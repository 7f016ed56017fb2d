import VFIOTrace

// libFuzzer target `parse`: any bytes into `parseTrace`.
//
// Besides "no trap, no hang", every answer must be one the CLI can print
// and a user can act on:
// - a failure lists at least one diagnostic, at most one per line, in line
//   order, each on a line of the input (1-based) at a column on that line
//   (at most one past its last character), reading
//   `expected …, found …` on one line of bounded length;
// - a success prints (`vfio-sim fmt`) to text that parses back to the same
//   statements, and prints the same again (fmt is idempotent).
// A broken rule is a crash (fatalError), so libFuzzer keeps the input.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParse(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let result = parseTrace(bytes: bytes, file: "fuzz.trace")
    switch result {
    case .failure(let failure):
        checkDiagnostics(failure.diagnostics, bytes)
    case .success(let trace):
        checkRoundTrip(trace)
    }
    return 0
}

/// The length in characters (Unicode scalars, as columns count them) of
/// each line, without its `\n` or `\r\n`; a leading byte order mark is not
/// part of line 1. Bytes that are not UTF-8 count one each (the lexer stops
/// at the first one, so only a prefix matters).
func lineLengths(_ bytes: [UInt8]) -> [Int] {
    var lengths: [Int] = []
    var start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
    while start < bytes.count {
        var end = start
        while end < bytes.count && bytes[end] != 0x0A { end += 1 }
        var last = end
        if last > start && bytes[last - 1] == 0x0D { last -= 1 }
        var scalars = 0
        for i in start..<last where bytes[i] & 0xC0 != 0x80 { scalars += 1 }
        lengths.append(scalars)
        start = end + 1
    }
    return lengths
}

func checkDiagnostics(_ diagnostics: [Diagnostic], _ bytes: [UInt8]) {
    guard !diagnostics.isEmpty else { fatalError("parse failed with no diagnostic") }
    let lengths = lineLengths(bytes)
    var previousLine = 0
    for d in diagnostics {
        let text = d.description
        guard d.file == "fuzz.trace" else { fatalError("diagnostic names file \(d.file): \(text)") }
        guard d.line > previousLine else { fatalError("diagnostic out of order or twice on line \(d.line): \(text)") }
        previousLine = d.line
        guard d.line <= lengths.count else { fatalError("diagnostic on line \(d.line) of \(lengths.count): \(text)") }
        // Column 1 past the end is where `found end of line` points (a few
        // messages point past trailing blanks, at the arrow's end).
        guard d.column >= 1, d.column <= lengths[d.line - 1] + 1 else {
            fatalError("diagnostic column \(d.column) on a line of \(lengths[d.line - 1]) characters: \(text)")
        }
        guard d.message.hasPrefix("expected "), d.message.contains(", found ") else {
            fatalError("diagnostic does not read 'expected …, found …': \(text)")
        }
        guard !d.message.utf8.contains(0x0A), !d.message.utf8.contains(0x0D) else {
            fatalError("diagnostic spans lines: \(text)")
        }
        guard d.message.utf8.count <= 1024 else { fatalError("diagnostic of \(d.message.utf8.count) bytes: \(text.prefix(200))") }
    }
}

/// Statements without positions, blank lines dropped: what `fmt` keeps.
func shape(_ trace: Trace) -> [Statement] {
    trace.statements.compactMap { s in
        if case .blank = s.kind { return nil }
        var s = s
        s.line = 0
        s.column = 0
        return s
    }
}

func checkRoundTrip(_ trace: Trace) {
    let printed = printTrace(trace)
    switch parseTrace(printed, file: "fuzz.trace") {
    case .failure(let f):
        fatalError("fmt output does not parse: \(f)\n--- printed:\n\(printed)")
    case .success(let again):
        guard shape(again) == shape(trace) else {
            let a = shape(trace), b = shape(again)
            let i = (0..<min(a.count, b.count)).first { a[$0] != b[$0] } ?? min(a.count, b.count)
            fatalError("fmt changed statement \(i): \(i < a.count ? "\(a[i])" : "-") became \(i < b.count ? "\(b[i])" : "-")\n--- printed:\n\(printed)")
        }
        guard printTrace(again) == printed else { fatalError("fmt is not idempotent\n--- printed:\n\(printed)") }
    }
}

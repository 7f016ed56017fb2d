import Testing
import VFIOCore
@testable import VFIOTrace

@Test("a NUMBER is decimal, hex in any case, or decimal with one binary suffix", arguments: [
    ("0", UInt64(0)),
    ("4096", 4096),
    ("00010", 10),
    ("0x1000", 0x1000),
    ("0X1000", 0x1000),
    ("0xABCdef", 0xabcdef),
    ("0x0000000000000000000001", 1),
    ("4K", 4096),
    ("2M", 2 << 20),
    ("1G", 1 << 30),
    ("3T", 3 << 40),
    ("0K", 0),
    ("18446744073709551615", .max),
    ("0xffffffffffffffff", .max),
    ("16777215T", 16_777_215 << 40),
    ("17179869183G", 17_179_869_183 << 30),
])
func goodNumber(text: String, value: UInt64) {
    #expect(kind("memlock \(text)") == .memlock(value))
}

@Test("a NUMBER that does not fit in 64 bits is an error, never a wrap", arguments: [
    "18446744073709551616", "99999999999999999999999", "0x10000000000000000", "0x1ffffffffffffffff",
    "99999999T", "16777216T", "17179869184G", "18014398509481984K",
])
func overflowingNumber(text: String) {
    #expect(diagnostics("memlock \(text)") == ["t.trace:1:9: error: expected a value that fits in 64 bits, found '\(text)'"])
}

@Test("a hex NUMBER with a suffix is an error", arguments: ["0x1000K", "0x1M", "0xfG", "0x0T"])
func hexWithSuffix(text: String) {
    #expect(diagnostics("memlock \(text)") == ["t.trace:1:9: error: expected a hex number without a suffix, found '\(text)'"])
}

@Test("text that is not a NUMBER is an error", arguments: [
    "4k", "4KK", "K", "4 K", "-1", "+1", "0x", "0xK", "1.5", "0xg", "1e3", "4KiB", "0b101", "٣",
])
func notANumber(text: String) {
    let word = text.split(separator: " ").first!
    let expected = text.contains(" ")
        ? "t.trace:1:\(9 + word.count + 1): error: expected end of line, found 'K'"
        : "t.trace:1:9: error: expected a number or unlimited, found '\(text)'"
    #expect(diagnostics("memlock \(text)") == [expected])
}

@Test("a RANGE is START-END inclusive or START+SIZE", arguments: [
    ("0-0xfff", IOVARange(start: 0, last: 0xfff)),
    ("0x1000+4K", IOVARange(start: 0x1000, last: 0x1fff)),
    ("5-5", IOVARange(start: 5, last: 5)),
    ("0xfee00000+1M", IOVARange(start: 0xfee0_0000, last: 0xfeef_ffff)),
    ("0-0xffffffffffffffff", IOVARange.all),
    ("0xfffffffffffff000+4K", IOVARange(start: 0xffff_ffff_ffff_f000, last: .max)),
    ("0xffffffffffffffff+1", IOVARange(start: .max, last: .max)),
    ("1+0xffffffffffffffff", IOVARange(start: 1, last: .max)),
])
func goodRange(text: String, range: IOVARange) {
    guard case .domain(let spec)? = kind("domain d0 pgsizes=4K aperture=\(text)") else {
        Issue.record("did not parse: \(diagnostics("domain d0 pgsizes=4K aperture=\(text)"))")
        return
    }
    #expect(spec.aperture == range)
}

@Test("a RANGE whose end is below its start, whose size is 0 or which wraps past 2^64-1 is an error", arguments: [
    ("0x2000-0x1000", "31: error: expected a range whose end is not below its start, found '0x2000-0x1000'"),
    ("0x1000+0", "38: error: expected a nonzero range size, found '0'"),
    ("0xfffffffffffff000+8K", "31: error: expected a range that ends at or below 0xffffffffffffffff, found '0xfffffffffffff000+8K'"),
    ("2+0xffffffffffffffff", "31: error: expected a range that ends at or below 0xffffffffffffffff, found '2+0xffffffffffffffff'"),
    ("0x1000", "31: error: expected a range START-END or START+SIZE, found '0x1000'"),
    ("-5", "31: error: expected a range START-END or START+SIZE, found '-5'"),
    ("5-", "31: error: expected a range START-END or START+SIZE, found '5-'"),
    ("5+-1", "33: error: expected a number, found '-1'"),
    ("zz-5", "31: error: expected a number, found 'zz'"),
    ("0x1000-0x10000000000000000", "38: error: expected a value that fits in 64 bits, found '0x10000000000000000'"),
])
func badRange(text: String, expected: String) {
    #expect(diagnostics("domain d0 pgsizes=4K aperture=\(text)") == ["t.trace:1:" + expected])
}

@Test("an empty file is a valid empty trace")
func emptyFile() throws {
    let trace = try parseTrace(bytes: [], file: "empty.trace").get()
    #expect(trace == Trace(file: "empty.trace", statements: []))
    #expect(try parseTrace("", file: "e").get().statements.isEmpty)
}

@Test("CRLF line ends are accepted and give the same statements as LF")
func crlf() {
    let lf = "# title\niommu type1\n\nmap iova=0 vaddr=0 size=4K prot=rw => ok  # c\n"
    let crlf = lf.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n")
    #expect(statements(crlf) != nil)
    #expect(statements(crlf) == statements(lf))
    #expect(statements("info\r")?.map(\.kind) == [.info(argsz: nil)])
}

/// `text`'s UTF-8 followed by raw bytes.
private func bytes(_ text: String, _ tail: [UInt8]) -> [UInt8] { Array(text.utf8) + tail }

private let badUTF8: [([UInt8], String)] = [
    (bytes("info ", [0xff]), "t.trace:1:6: error: expected UTF-8 text, found byte 0xff"),
    (bytes("# caf", [0xc3]), "t.trace:1:6: error: expected UTF-8 text, found byte 0xc3"),
    (bytes("# caf", [0xc3, 0x41]), "t.trace:1:6: error: expected UTF-8 text, found byte 0xc3"),
    (bytes("info\n# ", [0xc0, 0xaf]), "t.trace:2:3: error: expected UTF-8 text, found byte 0xc0"),
    (bytes("# ", [0xed, 0xa0, 0x80]), "t.trace:1:3: error: expected UTF-8 text, found byte 0xed"),
    (bytes("# ", [0xf4, 0x90, 0x80, 0x80]), "t.trace:1:3: error: expected UTF-8 text, found byte 0xf4"),
    (bytes("# ", [0x80]), "t.trace:1:3: error: expected UTF-8 text, found byte 0x80"),
    // Columns count characters, not bytes: é is one column.
    (bytes("# é ✓ ", [0xfe]), "t.trace:1:7: error: expected UTF-8 text, found byte 0xfe"),
]

@Test("bytes that are not UTF-8 are an error naming the byte", arguments: badUTF8)
func notUTF8(bytes: [UInt8], expected: String) {
    #expect(diagnostics(bytes: bytes) == [expected])
}

@Test("NUL and other control characters are an error; tab is a blank", arguments: [
    ("info\0", "t.trace:1:5: error: expected a printable character, found control character 0x00"),
    ("info\r x", "t.trace:1:5: error: expected a printable character, found control character 0x0d"),
    ("# bell \u{7}", "t.trace:1:8: error: expected a printable character, found control character 0x07"),
    ("# \u{1b}[31m", "t.trace:1:3: error: expected a printable character, found control character 0x1b"),
    ("# del \u{7f}", "t.trace:1:7: error: expected a printable character, found control character 0x7f"),
    ("# next line \u{85}", "t.trace:1:13: error: expected a printable character, found control character U+0085"),
    ("\tinfo\t=>\tok", ""),
])
func controlCharacters(text: String, expected: String) {
    #expect(diagnostics(text) == (expected.isEmpty ? [] : [expected]))
}

@Test("text outside ASCII is fine in comments")
func unicodeComment() {
    #expect(statements("# café ✓ 🚀\ninfo # ünïcode")?.map(\.comment) == [nil, "ünïcode"])
    #expect(statements("# café ✓ 🚀")?.first?.kind == .comment("café ✓ 🚀"))
}

/// Two MiB per line: linear parsing takes seconds even in a debug build on a
/// loaded machine, quadratic parsing (~4·10^12 steps) would take hours, so
/// the generous limit separates the two without timing anything finely.
@Test("a line of many megabytes is parsed in linear time", .timeLimit(.minutes(5)))
func longLines() {
    let n = 2 << 20
    let comment = "# " + String(repeating: "a", count: n)
    #expect(statements(comment)?.first?.kind == .comment(String(repeating: "a", count: n)))
    let word = "memlock " + String(repeating: "9", count: n)
    #expect(diagnostics(word) == ["t.trace:1:9: error: expected a value that fits in 64 bits, found '\(String(repeating: "9", count: 60))...'"])
    let list = "domain d0 pgsizes=" + String(repeating: "4K,", count: n / 3) + "4K"
    #expect(statements(list) != nil)
    let junk = "info argsz=1" + String(repeating: " ", count: n) + "x"
    #expect(diagnostics(junk) == ["t.trace:1:\(13 + n): error: expected argsz=, found 'x'"])
    let words = "check " + String(repeating: "ptes=none ", count: n / 10)
    #expect(diagnostics(words) == ["t.trace:1:17: error: expected at most one ptes=, found 'ptes=none'"])
}

@Test("a UTF-8 byte order mark at the start of the file is skipped")
func byteOrderMark() {
    #expect(statements("\u{FEFF}iommu type1\n")?.map(\.kind) == [.iommu(.type1)])
    #expect(diagnostics("\u{FEFF}frob") == ["t.trace:1:1: error: expected one of \(verbList), found 'frob'"])
    #expect(statements("\u{FEFF}") == [])
}

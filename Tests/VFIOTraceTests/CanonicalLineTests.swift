import Foundation
import Testing
import VFIOCore
@testable import VFIOTrace

// The canonical-line shortcut (`CanonicalLine.swift`) reads the commonest
// lines without the lexer. It may only ever be a shortcut: every file must
// parse to the same statements, or fail with the same diagnostics, with it
// and without it. These tests compare the two on every shipped fixture and
// on thousands of one-byte edits of canonical lines, and check that the
// shortcut really takes the lines it is for (else the comparisons would
// prove nothing).

/// Parses `bytes` with the shortcut (`true`) or with the lexer and the
/// general parser alone (`false`).
private func parse(_ bytes: [UInt8], canonical: Bool) -> Result<Trace, ParseFailure> {
    parseTrace(bytes: bytes, file: "t.trace", keepingSpellings: false, takingCanonicalLines: canonical)
}

/// The same answer both ways: equal traces, or equal diagnostics.
private func sameBothWays(_ bytes: [UInt8], _ what: @autoclosure () -> String) {
    let fast = parse(bytes, canonical: true), reference = parse(bytes, canonical: false)
    switch (fast, reference) {
    case (.success(let a), .success(let b)):
        #expect(a == b, "\(what()): statements differ\n  shortcut:  \(a.statements)\n  reference: \(b.statements)")
    case (.failure(let a), .failure(let b)):
        #expect(a.diagnostics.map(\.description) == b.diagnostics.map(\.description), "\(what()): diagnostics differ")
    default:
        Issue.record("\(what()): one way parses, the other fails\n  shortcut:  \(fast)\n  reference: \(reference)")
    }
}

/// Whether the shortcut itself reads `line` (a whole line with its `\n`,
/// followed by more text so that no read near the end of the file bails).
private func shortcutTakes(_ line: String) -> Bool {
    let bytes = Array((line + "# padding\n").utf8)
    var parser = TraceParser()
    return bytes.withUnsafeBufferPointer { b in
        parser.statements = StatementBuffer()
        let taken = parser.takeCanonicalLine(b.baseAddress!, b.count, 0, number: 1) != nil
        _ = parser.statements.count > 0 ? parser.statements.moveToArray() : []
        return taken
    }
}

private let canonicalLines = [
    "map iova=0x100000000 vaddr=0x7f0000000000 size=2M prot=rw => ok",
    "map iova=0x80000000 vaddr=0x7f0010000000 size=64K prot=rw => EEXIST",
    "map iova=4096 vaddr=0x7f0000001000 size=4K prot=r => EINVAL",
    "map iova=0x0 vaddr=0x1000 size=0x1000 prot=w => ENOMEM",
    "map iova=0xffffffffffff0000 vaddr=0x7f0000000000 size=64K prot=none => ok",
    "unmap iova=0x100000000 size=2M => ok size=2M",
    "unmap iova=0x80000000 size=256K => ok size=0",
    "unmap iova=0x1000 size=4K => ok",
    "unmap iova=0x1000 size=4K => EINVAL",
    "check mappings=12",
    "check locked=6M",
    "check mappings=0",
]

@Suite struct CanonicalLineTests {
    @Test func keywordsArePackedFromTheirBytes() {
        let words: [(UInt64, StaticString)] = [
            (CanonicalWord.map, "map "), (CanonicalWord.unmap, "unmap "), (CanonicalWord.check, "check "),
            (CanonicalWord.iova, "iova="), (CanonicalWord.vaddr, "vaddr="), (CanonicalWord.size, "size="),
            (CanonicalWord.prot, "prot="), (CanonicalWord.arrow, "=> "), (CanonicalWord.mappings, "mappings"),
            (CanonicalWord.locked, "locked="),
        ]
        for (packed, text) in words {
            #expect(packed == Spelling(text).low, "\(text)")
        }
    }

    @Test func theShortcutTakesTheLinesToolsWrite() {
        for line in canonicalLines {
            #expect(shortcutTakes(line + "\n"), "\(line)")
        }
    }

    @Test func theShortcutLeavesEveryOtherShapeToTheGeneralParser() {
        let others = [
            "map iova=0x1000 vaddr=0x1000 size=4K prot=rw => ok  # comment",
            "map iova=0x1000 vaddr=0x1000 size=4K prot=rw => ok ",
            "map  iova=0x1000 vaddr=0x1000 size=4K prot=rw => ok",
            " map iova=0x1000 vaddr=0x1000 size=4K prot=rw => ok",
            "map vaddr=0x1000 iova=0x1000 size=4K prot=rw => ok",
            "map iova=0x1000 vaddr=0x1000 size=4K prot=rw repeat=2 => ok",
            "map iova=0x1000 vaddr=0x1000 size=4K prot=rw\t=> ok",
            "map iova=0x1000 vaddr=0x1000 size=4K prot=rw => ok\r",
            "map iova=0x1000 vaddr=0x1000 size=4K prot=rwx => ok",
            "map iova=0x1000 vaddr=0x1000 size=4K prot=rw => ok size=4K",
            "map iova=0x1000 vaddr=0x1000 size=4K prot=rw => hang",
            "map iova=0x1000 vaddr=0x1000 size=4K prot=rw => EWHATEVER",
            "map iova=0x1000 vaddr=0x1000 size=4K prot=rw",
            "map iova=0x10000000000000000 vaddr=0x1000 size=4K prot=rw => ok",
            "map iova=0x1K vaddr=0x1000 size=4K prot=rw => ok",
            "map iova=1_000 vaddr=0x1000 size=4K prot=rw => ok",
            "unmap iova=0x1000 size=4K => EINVAL size=4K",
            "unmap iova=0x1000 size=4K dirty pgsize=4K => ok",
            "unmap iova=0x1000 size=4K",
            "check ptes=4K:1",
            "check mappings=1 => ok",
            "check mappings=99999999999999999999",
            "check locked=18446744073709551615K",
        ]
        for line in others {
            #expect(!shortcutTakes(line + "\n"), "\(line)")
        }
    }

    @Test func everyFixtureParsesTheSameWithAndWithoutTheShortcut() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures")
        var files = 0
        for folder in ["", "recorded", "bad"] {
            let dir = folder.isEmpty ? root : root.appendingPathComponent(folder)
            let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".trace") }
            for name in names {
                let bytes = try [UInt8](Data(contentsOf: dir.appendingPathComponent(name)))
                sameBothWays(bytes, "\(folder)/\(name)")
                files += 1
            }
        }
        #expect(files > 100)
    }

    /// Every one-byte edit of every canonical line (a byte removed, doubled,
    /// or replaced by one of the bytes that matter to the lexer or to a
    /// number), between two other lines: the shortcut takes some edits and
    /// leaves the rest, and either way the file parses as it does without
    /// it.
    @Test func oneByteEditsParseTheSameWithAndWithoutTheShortcut() {
        let replacements: [UInt8] = Array(" \t#=>\r\n0179afgxXKMGTkE_-.,:".utf8) + [0x00, 0x7F, 0xC3]
        var edits = 0, taken = 0
        for line in canonicalLines {
            let bytes = Array(line.utf8)
            for i in 0...bytes.count {
                var variants: [[UInt8]] = []
                if i < bytes.count {
                    var removed = bytes; removed.remove(at: i); variants.append(removed)
                    var doubled = bytes; doubled.insert(bytes[i], at: i); variants.append(doubled)
                    for r in replacements where r != bytes[i] {
                        var replaced = bytes; replaced[i] = r; variants.append(replaced)
                    }
                } else {
                    for r in replacements { variants.append(bytes + [r]) }
                }
                for v in variants {
                    let file = Array("iommu type1v2\n".utf8) + v + Array("\ncheck mappings=0\n".utf8)
                    sameBothWays(file, "edit of '\(line)' at \(i): \(String(decoding: v, as: UTF8.self).debugDescription)")
                    if shortcutTakes(String(decoding: v, as: UTF8.self) + "\n") { taken += 1 }
                    edits += 1
                }
            }
        }
        // Some edits keep the line canonical (a digit for a digit).
        #expect(edits > 5000 && taken > 100, "\(edits) edits, \(taken) taken by the shortcut")
    }

    @Test func numbersAtTheirLimitsParseTheSameWithAndWithoutTheShortcut() {
        let values = ["0x0", "0xffffffffffffffff", "0x1ffffffffffffffff", "0X1000", "0x", "0", "00", "007",
                      "9999999999999999999", "18446744073709551615", "99999999999999999999",
                      "17179869183G", "17179869184G", "16777215T", "16777216T", "1K", "K", "0xK", "1k", "2M", "1G", "1T"]
        for v in values {
            for line in ["map iova=\(v) vaddr=0x1000 size=4K prot=rw => ok",
                         "map iova=0x1000 vaddr=0x1000 size=\(v) prot=rw => ok",
                         "unmap iova=0x1000 size=4K => ok size=\(v)",
                         "check mappings=\(v)", "check locked=\(v)"] {
                sameBothWays(Array((line + "\nshow\n").utf8), line)
                // At the very end of the file, with and without a line feed.
                sameBothWays(Array(line.utf8), line + " (at the end)")
                sameBothWays(Array((line + "\n").utf8), line + " (last line)")
            }
        }
    }

    @Test func aCanonicalOperationCountsAsTheFirstOperationForEveryRuleThatNeedsOne() {
        // `iommu` must come before the first operation of the file, `memlock`
        // and `domain ... => ok` before or after that of their container: a
        // canonical map or unmap is that operation as much as a lexed one
        // (found by the fuzz target `parse`: the shortcut once marked only
        // the container's first operation).
        for op in canonicalLines where !op.hasPrefix("check") {
            for late in ["iommu type1v2", "iommu type1", "container iommufd", "memlock 1M", "kernel 6.12",
                         "cap-ipc-lock", "dma-entry-limit 10", "domain d1 pgsizes=4K"] {
                let text = "memory vaddr=0x7f0000000000 size=2M\n\(op)\n\(late)\n"
                sameBothWays(Array(text.utf8), "\(late) after \(op)")
            }
        }
        let late = "map iova=0x100000 vaddr=0x7f0000000000 size=4K prot=rw => ok\niommu type1v2\n"
        guard case .failure(let failure) = parse(Array(late.utf8), canonical: true) else {
            Issue.record("iommu after a canonical map parsed"); return
        }
        #expect(failure.diagnostics.map(\.description) == ["t.trace:2:1: error: expected iommu before the first operation, found it after the operation on line 1"])
    }

    @Test func theStatementsOfTheShortcutAreThoseOfTheGeneralParser() throws {
        // What a canonical line means, spelled out: a check that both ways
        // agree would pass if both were wrong the same way.
        let text = canonicalLines.joined(separator: "\n") + "\n"
        let trace = try parseTrace(text, file: "t.trace").get()
        #expect(trace.statements.count == canonicalLines.count)
        #expect(trace.statements[0].kind == .map(MapDMA(flags: [.read, .write], vaddr: 0x7f00_0000_0000, iova: 0x1_0000_0000, size: 2 << 20)))
        #expect(trace.statements[0].expected == Answer(.ok))
        #expect(trace.statements[1].expected == Answer(.errno(.EEXIST)))
        #expect(trace.statements[2].kind == .map(MapDMA(flags: .read, vaddr: 0x7f00_0000_1000, iova: 4096, size: 4096)))
        #expect(trace.statements[4].kind == .map(MapDMA(flags: [], vaddr: 0x7f00_0000_0000, iova: 0xffff_ffff_ffff_0000, size: 64 << 10)))
        #expect(trace.statements[5].kind == .unmap(UnmapDMA(flags: [], iova: 0x1_0000_0000, size: 2 << 20)))
        #expect(trace.statements[5].expected == Answer(.ok, fields: [.size(2 << 20)]))
        #expect(trace.statements[10].kind == .check(.locked(6 << 20)))
        #expect(trace.statements.allSatisfy { $0.column == 1 })
        #expect(trace.statements.map(\.line) == Array(1...canonicalLines.count))
    }
}

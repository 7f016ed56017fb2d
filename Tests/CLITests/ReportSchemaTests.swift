import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

// The JSON reports against their schemas in docs/REPORTS.md: each command's
// output is parsed with JSONSerialization, and the fields it prints must be
// the ones the document lists (every printed field documented; every field
// documented and not marked optional printed by one of the runs below).

/// Schema name → (every documented path, the ones not marked optional),
/// read from the tables of docs/REPORTS.md under a `vfiosim.NAME/N` heading.
func documentedSchemas() throws -> [String: (all: Set<String>, required: Set<String>)] {
    let text = try String(contentsOf: packageRoot.appendingPathComponent("docs/REPORTS.md"), encoding: .utf8)
    var out: [String: (all: Set<String>, required: Set<String>)] = [:]
    var current: String? = nil
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasPrefix("## ") {
            current = line.split(separator: "`").first { $0.hasPrefix("vfiosim.") }.map(String.init)
            continue
        }
        guard let schema = current, line.hasPrefix("| `") else { continue }
        let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        guard cells.count >= 2 else { continue }
        let path = cells[0].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
        out[schema, default: ([], [])].all.insert(path)
        if !cells[1].contains("optional") { out[schema, default: ([], [])].required.insert(path) }
    }
    return out
}

/// Every path in a file object: `a.b` for keys, `a[]` for the objects of
/// an array, `a.*` where the document says any key goes there.
func fieldPaths(_ value: Any, _ prefix: String, documented: Set<String>, into paths: inout Set<String>) {
    if let object = value as? [String: Any] {
        for (key, v) in object {
            let wildcard = prefix.isEmpty ? nil : prefix + ".*"
            var path = wildcard.flatMap { documented.contains($0) ? $0 : nil } ?? (prefix.isEmpty ? key : prefix + "." + key)
            // An answer has one schema wherever it stands.
            for alias in ["operations[].expected.", "operations[].got[].answer."] where path.hasPrefix(alias) {
                path = "answer." + path.dropFirst(alias.count)
            }
            paths.insert(path)
            fieldPaths(v, path, documented: documented, into: &paths)
        }
    } else if let array = value as? [Any] {
        for element in array where element is [String: Any] || element is [Any] {
            fieldPaths(element, prefix + "[]", documented: documented, into: &paths)
        }
    }
}

@Suite("JSON reports match docs/REPORTS.md")
struct ReportSchemaTests {
    /// Each schema and the runs whose output, together, shows every field it documents.
    static let runs: [(schema: String, args: [[String]])] = [
        ("vfiosim.plan/1", [["plan", "--format", "json", "docs/examples/dpdk-2048-memlock-1g.trace", "docs/examples/dpdk-2048-entry-limit-1000.trace",
                             "docs/examples/qemu-8g-1g-pages.trace", "Fixtures/lane-virtio-top-release-6.12.trace"],
                            ["plan", "--time", "--format", "json", "Benchmarks/published/jordan-thp-128g-not-prealloc.trace",
                             "Benchmarks/published/lizhe-16g-hugetlb-6.18.trace"],
                            ["plan", "--time", "--threads", "2", "--format", "json", "docs/examples/four-containers-parallel.trace"]]),
        ("vfiosim.compare/1", [["compare", "--format", "json", "Fixtures/unmap-v2-bisect.trace", "Fixtures/lane-virtio-top-release-6.12.trace"]]),
        ("vfiosim.whatif/1", [["whatif", "--format", "json", "--pgsizes", "4K", "docs/examples/qemu-8g-1g-pages.trace"],
                              ["whatif", "--format", "json", "--memlock", "16M", "docs/examples/dpdk-v1-hugepages.trace"]]),
        ("vfiosim.replay/1", [["replay", "--format", "json", "docs/examples/dpdk-v1-hugepages.trace", "Fixtures/unmap-v2-bisect.trace"]]),
    ]

    @Test("each command's JSON parses, names its schema, prints only documented fields and every required one", arguments: runs.map(\.schema))
    func matches(schema: String) throws {
        let doc = try #require(try documentedSchemas()[schema], "docs/REPORTS.md has no table for \(schema)")
        var seen: Set<String> = []
        for args in Self.runs.first(where: { $0.schema == schema })!.args {
            let run = try runSim(args)
            #expect(run.status <= 1, "\(args.joined(separator: " ")): exit \(run.status)\n\(run.stderr)")
            let files = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]])
            #expect(!files.isEmpty)
            for f in files {
                #expect(f["schema"] as? String == schema)
                fieldPaths(f, "", documented: doc.all, into: &seen)
            }
        }
        #expect(seen.subtracting(doc.all).sorted() == [], "printed but not in docs/REPORTS.md")
        #expect(doc.required.subtracting(seen).sorted() == [], "in docs/REPORTS.md but never printed")
    }

    @Test("plan's JSON says what the DPDK plan needs and where its limits first stop it")
    func planNumbers() throws {
        let run = try runSim(["plan", "--format", "json", "docs/examples/dpdk-2048-memlock-1g.trace", "docs/examples/dpdk-2048-entry-limit-1000.trace"])
        let files = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]])
        #expect(files.count == 2)
        let needs = try #require(files[0]["needs"] as? [String: Any])
        let limits = try #require(files[0]["limits"] as? [String: Any])
        #expect(needs["peakLockedBytes"] as? Int == 4 << 30)
        #expect(limits["memlockBytes"] as? Int == 1 << 30 && limits["ulimitKiB"] as? Int == 4 << 20)
        let memlock = try #require(limits["memlockFailure"] as? [String: Any])
        #expect(memlock["errno"] as? String == "ENOMEM" && memlock["iteration"] as? Int == 513 && memlock["iterations"] as? Int == 2048)
        let entries = try #require((files[1]["limits"] as? [String: Any])?["entryFailure"] as? [String: Any])
        #expect((files[1]["needs"] as? [String: Any])?["peakMappings"] as? Int == 2048)
        #expect(entries["errno"] as? String == "ENOSPC" && entries["iteration"] as? Int == 1001)
    }

    @Test("plan's text says what the DPDK plan needs and where its limits first stop it")
    func planText() throws {
        let run = try runSim(["plan", "docs/examples/dpdk-2048-memlock-1g.trace", "docs/examples/dpdk-2048-entry-limit-1000.trace"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("needs 4 GiB locked (ulimit -l 4194304; 4294967296 bytes), at most after line 8; the trace allows 1 GiB: "
                                    + "maps from line 8 (iteration 513 of 2048) fail with ENOMEM, 1536 in all"))
        #expect(run.stdout.contains("needs 2048 entries (vfio_dma) at once, after line 8; dma-entry-limit 1000: "
                                    + "maps from line 8 (iteration 1001 of 2048) fail with ENOSPC, 1048 in all"))
    }

    @Test("whatif --pgsizes 4K on a 1G-backed plan: no written answer moves, the state does: exit 1, and it says what changed")
    func whatifState() throws {
        let run = try runSim(["whatif", "--pgsizes", "4K", "docs/examples/qemu-8g-1g-pages.trace"])
        #expect(run.status == 1)
        #expect(run.stdout.contains("docs/examples/qemu-8g-1g-pages.trace: the state differs from the trace's own setup\n"))
        #expect(run.stdout.contains("    ptes gpu   1G:8 (8 entries) → 4K:2097152 (2097152 entries)\n"))
        let same = try runSim(["whatif", "--kernel", "6.1", "docs/examples/qemu-8g-1g-pages.trace"])
        #expect(same.status == 0)
        #expect(same.stdout.contains("the state is the same as under the trace's own setup"))
    }

    @Test("JUnit lists every checked statement, passing ones too, with the counts a dashboard shows")
    func junitListsPassingCases() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vfio-sim-junit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let bad = dir.appendingPathComponent("bad.trace")
        try Data("""
            memory vaddr=0x7f0000000000 size=8M page=2M
            map iova=0 vaddr=0x7f0000000000 size=2M prot=rw repeat=4 => ok
            check mappings=5
            map iova=0x1000000 vaddr=0x7f0000000000 size=2M prot=rw repeat=3 step=0 => ok

            """.utf8).write(to: bad)
        let junit = dir.appendingPathComponent("j.xml").path
        let run = try runSim(["replay", "--junit", junit, "docs/examples/dpdk-v1-hugepages.trace", bad.path])
        #expect(run.status == 1)
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        let doc = try XMLDocument(xmlString: xml)
        let suites = try doc.nodes(forXPath: "//testsuite").compactMap { $0 as? XMLElement }
        #expect(suites.count == 2)
        // The example writes 10 answers and checks; all held.
        #expect(suites[0].attribute(forName: "tests")?.stringValue == "10")
        #expect(suites[0].attribute(forName: "failures")?.stringValue == "0")
        #expect(try suites[0].nodes(forXPath: "testcase").count == 10)
        #expect(xml.contains("name=\"docs/examples/dpdk-v1-hugepages.trace:13: check mappings=64\"/>"))
        // One case per statement: the repeat= lines are one case each.
        #expect(suites[1].attribute(forName: "tests")?.stringValue == "3")
        #expect(suites[1].attribute(forName: "failures")?.stringValue == "2")
        let cases = try suites[1].nodes(forXPath: "testcase").compactMap { $0 as? XMLElement }
        #expect(cases.map { $0.attribute(forName: "name")?.stringValue ?? "" } == [
            "\(bad.path):2: map iova=0x0 vaddr=0x7f0000000000 size=2M prot=rw (repeat: 4 operations)",
            "\(bad.path):3: check mappings=5",
            "\(bad.path):4: map iova=0x1000000 vaddr=0x7f0000000000 size=2M prot=rw (repeat: 3 operations)",
        ])
        #expect(cases[0].children?.isEmpty ?? true)
        let failure = try #require(try cases[2].nodes(forXPath: "failure").first as? XMLElement)
        #expect(failure.attribute(forName: "message")?.stringValue?.hasPrefix("expected ok, got model EEXIST (iteration 2 of 3, ") == true)
        #expect(failure.attribute(forName: "message")?.stringValue?.contains("2 of 3 failed)") == true)
        let top = try #require(doc.rootElement())
        #expect(top.attribute(forName: "tests")?.stringValue == "13" && top.attribute(forName: "failures")?.stringValue == "2")
    }
}

import Foundation
import Testing

// What the README and the manual pages tell a user to run works as they
// say, and `vfio-sim help trace` is the reference page of the repository.

/// The example commands of a text: lines of code blocks that run
/// `vfio-sim` (`swift run vfio-sim …`, `.build/debug/vfio-sim …`), leaving
/// out synopses (`[`, `FILE`, `...`) and what needs a real device or a
/// guest (`--backend kernel|both`, `--group`).
func exampleCommands(in text: String) -> [String] { examples(in: text).map(\.command) }

/// Each example command with the exit status it is shown with: 0, or N
/// when its trailing comment starts `# exit N` (a whatif whose state
/// changes is shown with `# exit 1`).
func examples(in text: String) -> [(command: String, status: Int32)] {
    text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { line in
        (line.hasPrefix("vfio-sim ") || line.hasPrefix("swift run vfio-sim ") || line.hasPrefix(".build/debug/vfio-sim "))
            && !["[", "FILE", "...", "…", "--backend kernel", "--backend both", "--group", "COMMAND"].contains(where: line.contains)
    }.map { line in
        // A trailing `# comment` is not part of the command.
        let parts = line.components(separatedBy: "  #")
        let comment = parts.dropFirst().joined().trimmingCharacters(in: .whitespaces)
        let status = comment.hasPrefix("exit ") ? Int32(comment.dropFirst(5).prefix { $0.isNumber }) ?? 0 : 0
        return (parts[0].trimmingCharacters(in: .whitespaces), status)
    }
}

/// Runs `command` as a shell in the package root, `vfio-sim` being the built one.
func runExample(_ command: String) throws -> SimRun {
    var cmd = command
    for prefix in ["swift run vfio-sim", ".build/debug/vfio-sim", "vfio-sim"] where cmd.hasPrefix(prefix) {
        cmd = "\"$VFIO_SIM_BIN\"" + cmd.dropFirst(prefix.count)
        break
    }
    setenv("VFIO_SIM_BIN", simBinary!, 1)
    return try runSim(["-c", cmd], limit: .seconds(300), executable: "/bin/sh")
}

let readme = (try? String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)) ?? ""

@Suite("The README and the manual", .enabled(if: simBinary != nil, "vfio-sim is not built: run swift build first, or set VFIO_SIM"))
struct DocumentationTests {
    @Test("the README names the reference page, and it is in the repository")
    func referenceExists() throws {
        #expect(readme.contains("docs/TRACE_FORMAT.md"))
        #expect(FileManager.default.fileExists(atPath: packageRoot.appendingPathComponent("docs/TRACE_FORMAT.md").path))
        #expect(readme.contains(".build/debug/vfio-sim"))
    }

    @Test("vfio-sim help trace prints docs/TRACE_FORMAT.md (regenerate with scripts/gen-trace-help.sh)")
    func helpTrace() throws {
        let page = try String(contentsOf: packageRoot.appendingPathComponent("docs/TRACE_FORMAT.md"), encoding: .utf8)
        let run = try runSim(["help", "trace"])
        #expect(run.status == 0)
        #expect(run.stdout == page)
    }

    @Test("docs/IOMMUFD.md ends with the table vfio-sim compare --markdown gives for the shipped fixtures (regenerate with scripts/gen-iommufd-table.sh)")
    func iommufdTable() throws {
        let doc = try String(contentsOf: packageRoot.appendingPathComponent("docs/IOMMUFD.md"), encoding: .utf8)
        let marker = "<!-- generated: vfio-sim compare --markdown Fixtures/*.trace -->\n\n"
        let at = try #require(doc.range(of: marker), "docs/IOMMUFD.md has no generated table")
        let run = try runExample("vfio-sim compare --markdown Fixtures/*.trace")
        #expect(run.status == 0)
        #expect(String(doc[at.upperBound...]) == run.stdout)
    }

    @Test("--version names the tool's version and the kernel releases it answers for, and the ones the lane boots")
    func version() throws {
        let run = try runSim(["--version"])
        #expect(run.status == 0)
        #expect(run.stdout.hasPrefix("vfio-sim 0."))
        #expect(run.stdout.contains("answers Linux 5.10 to 7.3") && run.stdout.contains("checked on 5.10, 6.1, 6.12, 6.18, 7.3"))
    }

    @Test("every help topic the main page lists has a page", arguments: ["replay", "plan", "compare", "fmt", "explore", "faults", "record", "whatif", "host", "lane-summary", "trace", "help"])
    func helpTopics(topic: String) throws {
        let run = try runSim(["help", topic])
        #expect(run.status == 0)
        #expect(!run.stdout.isEmpty)
    }

    @Test("every vfio-sim example of the README and the user guide runs and exits as shown (0, or the '# exit N' written after it)",
          arguments: ["README.md", "docs/USER_GUIDE.md", "docs/SCENARIOS.md"])
    func readmeExamples(_ page: String) throws {
        let text = try String(contentsOf: packageRoot.appendingPathComponent(page), encoding: .utf8)
        let shown = examples(in: text)
        #expect(shown.count >= 4)
        for (c, status) in shown {
            let run = try runExample(c)
            #expect(run.status == status, "\(c): exit \(run.status)\n\(run.stderr)")
        }
    }

    @Test("every example of the manual pages runs and exits 0", arguments: ["replay", "plan", "compare", "fmt", "explore", "host", "new", "help"])
    func helpExamples(topic: String) throws {
        let page = try runSim(["help", topic]).stdout
        guard let at = page.range(of: "EXAMPLE") else { return }
        for c in exampleCommands(in: String(page[at.upperBound...])) {
            let run = try runExample(c)
            #expect(run.status == 0, "\(c): exit \(run.status)\n\(run.stderr)")
        }
    }

    @Test("plan answers the DPDK question: memlock, mappings, PTEs, and the v1 unmap that removed nothing")
    func planDPDK() throws {
        let run = try runSim(["plan", "docs/examples/dpdk-v1-hugepages.trace"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("memlock   needs 144 MiB locked (ulimit -l 147456; 150994944 bytes), at most after line 22; the trace allows 256 MiB: enough"))
        #expect(run.stdout.contains("entries   needs 65 entries (vfio_dma) at once, after line 22; dma-entry-limit 65535: enough"))
        #expect(run.stdout.contains("=> ok size=0: v1: the first mapping the range touches starts before iova"))
    }

    @Test("plan answers the QEMU question: 8 GiB locked, 8 entries of 1 GiB in the one shared domain")
    func planQEMU() throws {
        let run = try runSim(["plan", "docs/examples/qemu-8g-1g-pages.trace"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("memlock   needs 8 GiB locked (ulimit -l 8388608; 8589934592 bytes)"))
        #expect(run.stdout.contains("ptes      all domains: 1G:8 (8 entries) at most; groups with the same IOMMU share one domain"))
    }
}

// MARK: Citations stay inside the repository

/// Where the repository's text lives: every file under these folders, and
/// the README. Build products, fuzz corpora and git's own files are not
/// the repository's text.
let citingRoots = ["Sources", "Tests", "scripts", "Fixtures", "Benchmarks", "docs", ".ci"]

/// Whether a folder is one a walk skips: `.build*` (SwiftPM, also
/// `.build-linux` and friends), `.fuzz` and `.git`.
func isSkippedFolder(_ name: String) -> Bool {
    name.hasPrefix(".build") || name == ".fuzz" || name == ".git"
}

/// Paths relative to the package root of the regular files under `folder`
/// (itself relative to the root), skipping `isSkippedFolder` folders.
func filesUnder(_ folder: String) -> [String] {
    let fm = FileManager.default
    var found: [String] = []
    var pending = [folder]
    while let dir = pending.popLast() {
        let url = packageRoot.appendingPathComponent(dir)
        guard let names = try? fm.contentsOfDirectory(atPath: url.path) else { continue }
        for name in names.sorted() {
            let rel = dir.isEmpty ? name : dir + "/" + name
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: packageRoot.appendingPathComponent(rel).path, isDirectory: &isDir) else { continue }
            if isDir.boolValue {
                if !isSkippedFolder(name) { pending.append(rel) }
            } else {
                found.append(rel)
            }
        }
    }
    return found
}

/// The words ending in `.md` that `text` mentions (`docs/RELEASES.md`,
/// `README.md`): a run of path characters (letters, digits, `_./-`)
/// ending in a name character, then `.md`, not followed by another name
/// character.
func markdownCitations(in text: String) -> Set<String> {
    let pathChar: (Character) -> Bool = { $0.isLetter || $0.isNumber || "_./-".contains($0) }
    let nameChar: (Character) -> Bool = { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
    var found: Set<String> = []
    var search = text.startIndex
    while let hit = text.range(of: ".md", range: search..<text.endIndex) {
        search = hit.upperBound
        if hit.upperBound < text.endIndex, nameChar(text[hit.upperBound]) { continue }
        var start = hit.lowerBound
        while start > text.startIndex, pathChar(text[text.index(before: start)]) { start = text.index(before: start) }
        guard start < hit.lowerBound, nameChar(text[text.index(before: hit.lowerBound)]) else { continue }
        found.insert(String(text[start..<hit.upperBound]))
    }
    return found
}

/// Whether `citation`, written in the file `citingFile`, names a file of
/// the repository: as a path from the root, as a path from the citing
/// file's folder, or (a bare name) as any file of that name in `names`.
func citationResolves(_ citation: String, from citingFile: String, names: Set<String>) -> Bool {
    let fm = FileManager.default
    let fromRoot = packageRoot.appendingPathComponent(citation).standardizedFileURL.path
    let folder = (citingFile as NSString).deletingLastPathComponent
    let fromFolder = packageRoot.appendingPathComponent(folder).appendingPathComponent(citation).standardizedFileURL.path
    let root = packageRoot.standardizedFileURL.path
    for path in [fromRoot, fromFolder] where path.hasPrefix(root + "/") && fm.fileExists(atPath: path) { return true }
    return !citation.contains("/") && names.contains(citation)
}

@Suite("Documents the repository cites are in the repository (issue #26)")
struct CitationTests {
    /// Every text file of the repository that may cite a document.
    static let citingFiles: [String] = ["README.md"] + citingRoots.flatMap(filesUnder)

    static func text(of file: String) -> String {
        let data = FileManager.default.contents(atPath: packageRoot.appendingPathComponent(file).path) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    @Test("markdownCitations finds paths and bare names, and nothing else")
    func finder() {
        #expect(markdownCitations(in: "see docs/RELEASES.md §6, README.md.") == ["docs/RELEASES.md", "README.md"])
        // Spelt in pieces: this file's own text is checked by the test below.
        let outside = "../x/NOTES" + ".md"
        #expect(markdownCitations(in: "(`\(outside)`) and *.md and a.mdx and .md alone") == [outside])
    }

    @Test("every *.md file named anywhere in the repository's text exists in the repository")
    func citationsResolve() {
        let names = Set(filesUnder("").map { ($0 as NSString).lastPathComponent })
        #expect(Self.citingFiles.count > 100)
        var broken: [String] = []
        for file in Self.citingFiles {
            for citation in markdownCitations(in: Self.text(of: file)).sorted()
            where !citationResolves(citation, from: file, names: names) {
                broken.append("\(file): \(citation)")
            }
        }
        #expect(broken.isEmpty, "cited but not in the repository:\n\(broken.joined(separator: "\n"))")
    }

    /// The `docs/…` paths `text` names, whatever they end in (examples,
    /// probes): a run of path characters after `docs/`, trailing dots and
    /// slashes dropped.
    static func docsPaths(in text: String) -> Set<String> {
        let pathChar: (Character) -> Bool = { $0.isLetter || $0.isNumber || "_./-".contains($0) }
        var found: Set<String> = []
        var search = text.startIndex
        while let hit = text.range(of: "docs/", range: search..<text.endIndex) {
            search = hit.upperBound
            if hit.lowerBound > text.startIndex, pathChar(text[text.index(before: hit.lowerBound)]) { continue }
            var end = hit.upperBound
            while end < text.endIndex, pathChar(text[end]) { end = text.index(after: end) }
            let path = String(text[hit.lowerBound..<end]).trimmingCharacters(in: CharacterSet(charactersIn: "./"))
            if path.count > "docs".count { found.insert(path) }
        }
        return found
    }

    @Test("every docs/… path named in Sources, scripts, Tests, Benchmarks and .ci exists in the repository")
    func docsPathsExist() {
        // Spelt in pieces: this file's own text is checked below.
        let missing = "docs" + "/examples/none.trace"
        #expect(Self.docsPaths(in: "see \(missing), (docs/LANE.md) and mydocs/x") == [missing, "docs/LANE.md"])
        var broken: [String] = []
        for file in Self.citingFiles where !file.hasPrefix("docs/") && !file.hasPrefix("Fixtures/") {
            for path in Self.docsPaths(in: Self.text(of: file)).sorted()
            where !FileManager.default.fileExists(atPath: packageRoot.appendingPathComponent(path).path) {
                broken.append("\(file): \(path)")
            }
        }
        #expect(broken.isEmpty, "named but not in the repository:\n\(broken.joined(separator: "\n"))")
    }

    /// The names of documents that live outside the repository, spelt in
    /// pieces so that this file does not mention them itself.
    static let outsideNames = [".." + "/shared", "TYPE1" + "_SPEC", "KERNEL" + "_LANE"]

    @Test("no file cites the starting documents kept outside the repository (docs/TYPE1_RULES.md and scripts/kernel-lane/README.md replace them)")
    func noOutsideDocuments() {
        var found: [String] = []
        for file in Self.citingFiles {
            let text = Self.text(of: file)
            for name in Self.outsideNames where text.contains(name) { found.append("\(file): \(name)") }
        }
        #expect(found.isEmpty, "\(found.joined(separator: "\n"))")
    }
}

import Foundation
import Testing

// What the README and the manual pages tell a user to run works as they
// say, and `vfio-sim help trace` is the reference page of the repository.

/// The example commands of a text: lines of code blocks that run
/// `vfio-sim` (`swift run vfio-sim …`, `.build/debug/vfio-sim …`), leaving
/// out synopses (`[`, `FILE`, `...`) and what needs a real device or a
/// guest (`--backend kernel|both`, `--group`).
func exampleCommands(in text: String) -> [String] {
    text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { line in
        (line.hasPrefix("vfio-sim ") || line.hasPrefix("swift run vfio-sim ") || line.hasPrefix(".build/debug/vfio-sim "))
            && !["[", "FILE", "...", "…", "--backend kernel", "--backend both", "--group", "COMMAND"].contains(where: line.contains)
    }.map { line in
        // A trailing `# comment` is not part of the command.
        line.components(separatedBy: "  #").first!.trimmingCharacters(in: .whitespaces)
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

    @Test("every help topic the main page lists has a page", arguments: ["replay", "plan", "compare", "fmt", "explore", "host", "trace", "help"])
    func helpTopics(topic: String) throws {
        let run = try runSim(["help", topic])
        #expect(run.status == 0)
        #expect(!run.stdout.isEmpty)
    }

    @Test("every vfio-sim example of the README runs and exits 0")
    func readmeExamples() throws {
        let commands = exampleCommands(in: readme)
        #expect(commands.count >= 4)
        for c in commands {
            let run = try runExample(c)
            #expect(run.status == 0, "\(c): exit \(run.status)\n\(run.stderr)")
        }
    }

    @Test("every example of the manual pages runs and exits 0", arguments: ["replay", "plan", "compare", "fmt", "explore", "host", "help"])
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
        #expect(run.stdout.contains("memlock   144 MiB at most"))
        #expect(run.stdout.contains("mappings  65 at most"))
        #expect(run.stdout.contains("=> ok size=0: v1: the first mapping the range touches starts before iova"))
    }

    @Test("plan answers the QEMU question: 8 GiB locked, 8 entries of 1 GiB in the one shared domain")
    func planQEMU() throws {
        let run = try runSim(["plan", "docs/examples/qemu-8g-1g-pages.trace"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("memlock   8 GiB at most"))
        #expect(run.stdout.contains("ptes      all domains: 1G:8 (8 entries) at most; groups with the same IOMMU share one domain"))
    }
}

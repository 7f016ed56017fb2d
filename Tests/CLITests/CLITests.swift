import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// The built `vfio-sim` under bad input: every file gets an answer, a report
// or `FILE:LINE:COLUMN: error: …` on stderr with exit status 2, and nothing
// of a file that does not parse runs. Runs the binary SwiftPM built next to
// the test bundle (or $VFIO_SIM); skipped, saying so, when there is none.

/// The package root, found from this file's path.
let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// `vfio-sim`: $VFIO_SIM, else next to the test bundle (`.build/debug/`),
/// else `.build/debug/vfio-sim` under the package.
let simBinary: String? = {
    var candidates: [String] = []
    if let env = ProcessInfo.processInfo.environment["VFIO_SIM"] { candidates.append(env) }
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    candidates.append(bundle.appendingPathComponent("vfio-sim").path)
    candidates.append(packageRoot.appendingPathComponent(".build/debug/vfio-sim").path)
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}()

struct SimRun {
    var status: Int32
    var stdout: String
    var stderr: String
    /// False when the run was killed at its time limit.
    var finished: Bool
}

/// Runs `vfio-sim ARGS` (or `executable ARGS`) in the package root, output to files (no pipe to
/// fill), killed after `limit`.
func runSim(_ args: [String], limit: Duration = .seconds(120), executable: String? = nil) throws -> SimRun {
    let tmp = FileManager.default.temporaryDirectory
    let out = tmp.appendingPathComponent("vfio-sim-\(UUID().uuidString).out")
    let err = tmp.appendingPathComponent("vfio-sim-\(UUID().uuidString).err")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: out)
        try? FileManager.default.removeItem(at: err)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable ?? simBinary!)
    process.arguments = args
    process.currentDirectoryURL = packageRoot
    var env = ProcessInfo.processInfo.environment
    env["SWIFT_BACKTRACE"] = "enable=no"
    process.environment = env
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    try process.run()
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while process.isRunning && clock.now < deadline { usleep(10_000) }
    let finished = !process.isRunning
    if !finished {
        kill(process.processIdentifier, SIGKILL)
    }
    process.waitUntilExit()
    return SimRun(status: process.terminationStatus,
                  stdout: String(decoding: try Data(contentsOf: out), as: UTF8.self),
                  stderr: String(decoding: try Data(contentsOf: err), as: UTF8.self),
                  finished: finished)
}

/// A file under the temporary directory holding `bytes`, removed by the caller.
func temporaryTrace(_ bytes: [UInt8], name: String = "t.trace") throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vfio-sim-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url
}

let cliBadNames: [String] = {
    let dir = packageRoot.appendingPathComponent("Fixtures/bad")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
    return names.filter { $0.hasSuffix(".trace") }.sorted()
}()

@Suite("vfio-sim on bad input", .enabled(if: simBinary != nil, "vfio-sim is not built next to the tests nor at .build/debug/vfio-sim: run swift build first, or set VFIO_SIM"))
struct CLITests {
    @Test("vfio-sim replay prints exactly the .expected diagnostics of each Fixtures/bad file and exits 2, running nothing",
          arguments: cliBadNames)
    func badCorpus(name: String) throws {
        let expected = try String(contentsOf: packageRoot.appendingPathComponent("Fixtures/bad/" + name.dropLast(".trace".count) + ".expected"),
                                  encoding: .utf8)
        let run = try runSim(["replay", "Fixtures/bad/\(name)"])
        #expect(run.stderr == expected)
        if expected.isEmpty {
            #expect(run.status == 0)
            #expect(run.stdout == "1 file, 0 operations\n0 passed, 0 failed\n")
        } else {
            #expect(run.status == 2)
            #expect(run.stdout == "")
        }
    }

    @Test("vfio-sim fmt refuses each Fixtures/bad file with the same diagnostics", arguments: cliBadNames)
    func fmtBadCorpus(name: String) throws {
        let expected = try String(contentsOf: packageRoot.appendingPathComponent("Fixtures/bad/" + name.dropLast(".trace".count) + ".expected"),
                                  encoding: .utf8)
        let run = try runSim(["fmt", "Fixtures/bad/\(name)"])
        #expect(run.stderr == expected)
        #expect(run.status == (expected.isEmpty ? 0 : 2))
    }

    @Test("explore: a seed range that would pass 2^64-1 is a usage error (exit 2), not a trap; the last seed that fits runs")
    func exploreSeedRangeFitsInU64() throws {
        let over = try runSim(["explore", "--runs", "10", "--jobs", "1", "--seed", "18446744073709551615"])
        #expect(over.status == 2)
        #expect(over.stderr.contains("would pass 2^64-1; the largest seed for 10 runs is 18446744073709551606"))
        let fits = try runSim(["explore", "--runs", "10", "--jobs", "2", "--seed", "18446744073709551606"])
        #expect(fits.status == 0)
        #expect(fits.stdout.contains("explored 10 sequences"))
    }

    @Test("explore: two shards' reports merge into one exploration, with --out and --report after the files, as the help writes them")
    func exploreShardsMerge() throws {
        let dir = NSTemporaryDirectory() + "vfio-sim-merge-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for i in 1...2 {
            let run = try runSim(["explore", "--seed", "7", "--runs", "40", "--ops", "20", "--jobs", "1", "--shard", "\(i)/2", "--report", "\(dir)/r\(i).txt"])
            #expect(run.status == 0, "\(run.stderr)")
        }
        let merged = try runSim(["explore", "--merge", "\(dir)/r1.txt", "\(dir)/r2.txt", "--out", "\(dir)/out", "--report", "\(dir)/all.txt"])
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(merged.stdout.contains("explored 40 sequences") && merged.stdout.contains("2 reports merged: seeds 7-46"))
        #expect(FileManager.default.fileExists(atPath: "\(dir)/all.txt"))
    }

    @Test("explore --container iommufd: its summary names the container, its report keeps it, and a merge with a type1 report is refused")
    func exploreIOMMUFD() throws {
        let dir = NSTemporaryDirectory() + "vfio-sim-iommufd-explore-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let run = try runSim(["explore", "--container", "iommufd", "--seed", "5", "--runs", "60", "--ops", "20", "--jobs", "2", "--report", "\(dir)/fd.txt"])
        #expect(run.status == 0, "\(run.stdout)\(run.stderr)")
        #expect(run.stdout.contains("explored 60 sequences") && run.stdout.contains("on the model (container iommufd): 0 with findings"))
        let type1 = try runSim(["explore", "--seed", "65", "--runs", "10", "--ops", "20", "--jobs", "1", "--report", "\(dir)/t1.txt"])
        #expect(type1.status == 0)
        let merged = try runSim(["explore", "--merge", "\(dir)/fd.txt", "\(dir)/t1.txt"])
        #expect(merged.status == 2 && merged.stderr.contains("--container"), "\(merged.stderr)")
        let bad = try runSim(["explore", "--container", "vfio"])
        #expect(bad.status == 2 && bad.stderr.contains("--container takes type1 or iommufd"))
    }

    @Test("a bad file among good ones: exit 2, its diagnostics, and the good files still run")
    func badAmongGood() throws {
        let run = try runSim(["replay", "Fixtures/memlock-limit.trace", "Fixtures/bad/unknown-errno.trace", "Fixtures/map-misaligned.trace"])
        #expect(run.status == 2)
        #expect(run.stdout.contains("3 files, "))
        #expect(run.stdout.contains(", 1 not read or not parsed\n"))
        #expect(run.stdout.hasSuffix(" passed, 0 failed\n"))
        #expect(run.stderr.hasPrefix("Fixtures/bad/unknown-errno.trace:3:59: error: expected a Linux errno name, found 'EBOGUS'\n"))
    }

    @Test("a missing file among good ones: JSON and JUnit are still written, naming its error")
    func reportsWithAnError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vfio-sim-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let junit = dir.appendingPathComponent("j.xml").path
        let run = try runSim(["replay", "--format", "json", "--junit", junit, "Fixtures/memlock-limit.trace", "no-such.trace"])
        #expect(run.status == 2)
        #expect(run.stdout.contains("{\"file\":\"no-such.trace\",\"ok\":false,\"ran\":false"))
        #expect(run.stdout.contains("{\"file\":\"Fixtures/memlock-limit.trace\",\"ok\":true,\"ran\":true"))
        let xml = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(xml.contains("<error message=\"no-such.trace: error: cannot open: No such file or directory\"/>"))
    }

    @Test("a directory passed as a file: exit 2, FILE: error: is a directory")
    func directory() throws {
        let run = try runSim(["replay", "Fixtures/bad"])
        #expect(run.status == 2)
        #expect(run.stderr == "Fixtures/bad: error: is a directory, not a trace file\n")
        #expect(run.stdout == "")
    }

    @Test("a file that does not exist: exit 2, FILE: error: cannot open")
    func missingFile() throws {
        let run = try runSim(["replay", "Fixtures/bad/no-such-file.trace"])
        #expect(run.status == 2)
        #expect(run.stderr == "Fixtures/bad/no-such-file.trace: error: cannot open: No such file or directory\n")
    }

    @Test("an unreadable file: exit 2, FILE: error: cannot open (or, as root, a file whose read fails)")
    func unreadableFile() throws {
        if geteuid() == 0 {
            // Root opens a mode-000 file; /proc/self/mem opens but reading
            // offset 0 fails with EIO.
            let run = try runSim(["replay", "/proc/self/mem"])
            #expect(run.status == 2)
            #expect(run.stderr == "/proc/self/mem: error: cannot read: Input/output error\n")
        } else {
            let url = try temporaryTrace(Array("info\n".utf8))
            defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
            chmod(url.path, 0)
            let run = try runSim(["replay", url.path])
            #expect(run.status == 2)
            #expect(run.stderr == "\(url.path): error: cannot open: Permission denied\n")
        }
        let run = try runSim(["replay", "Fixtures/bad/empty.trace/x.trace"])
        #expect(run.status == 2)
        #expect(run.stderr == "Fixtures/bad/empty.trace/x.trace: error: cannot open: Not a directory\n")
    }

    @Test("a 100 MB comment line is read and parsed; the bad line after it is named")
    func hundredMBLine() throws {
        var bytes = [UInt8](repeating: UInt8(ascii: "c"), count: (100 << 20) + 2)
        bytes[0] = UInt8(ascii: "#"); bytes[1] = 0x20
        bytes += Array("\ninfo =>\n".utf8)
        let url = try temporaryTrace(bytes)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let run = try runSim(["replay", url.path])
        #expect(run.status == 2)
        #expect(run.stderr == "\(url.path):2:8: error: expected an answer, found end of line\n")
    }

    @Test("a 100 MB word as a verb is quoted in 60 characters")
    func hundredMBWord() throws {
        let url = try temporaryTrace([UInt8](repeating: UInt8(ascii: "a"), count: 100 << 20))
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let run = try runSim(["replay", url.path])
        #expect(run.status == 2)
        let verbs = "iommu, container, kernel, memlock, mlock, cap-ipc-lock, dma-entry-limit, domain, detach, memory, map, unmap, unmap-all, info, extension, dirty, check, show"
        #expect(run.stderr == "\(url.path):1:1: error: expected one of \(verbs), found '\(String(repeating: "a", count: 60))...'\n")
    }

    @Test("100,000 repeated statements replay, each answer checked")
    func repeatedStatements() throws {
        var bytes: [UInt8] = []
        let line = Array("extension type1v2 => 1\n".utf8)
        for _ in 0..<100_000 { bytes += line }
        let url = try temporaryTrace(bytes)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let run = try runSim(["replay", url.path])
        #expect(run.status == 0)
        #expect(run.stdout == "1 file, 100000 operations\n100000 passed, 0 failed\n")
    }

    @Test("a trace with CRLF line ends replays as with LF")
    func crlfTrace() throws {
        let lf = [UInt8](try Data(contentsOf: packageRoot.appendingPathComponent("Fixtures/memlock-limit.trace")))
        var crlf: [UInt8] = []
        for b in lf { if b == 0x0A { crlf.append(0x0D) }; crlf.append(b) }
        let a = try temporaryTrace(lf, name: "m.trace"), b = try temporaryTrace(crlf, name: "m.trace")
        defer {
            try? FileManager.default.removeItem(at: a.deletingLastPathComponent())
            try? FileManager.default.removeItem(at: b.deletingLastPathComponent())
        }
        let runA = try runSim(["replay", "--verbose", a.path]), runB = try runSim(["replay", "--verbose", b.path])
        #expect(runA.status == 0 && runB.status == 0)
        #expect(runB.stdout.replacingOccurrences(of: b.path, with: a.path) == runA.stdout)
    }

    // MARK: Problems found by these tests, now fixed

    @Test("65,535 mappings (the default dma_entry_limit) replay with invariants on in bounded time")
    func manyMappings() throws {
        var text = "memory vaddr=0x7f0000000000 size=1G\n"
        for i in 0..<65_535 { text += "map iova=0x\(String(0x1_0000_0000 + UInt64(i) * 0x1000, radix: 16)) vaddr=0x7f0000000000 size=4K prot=rw => ok\n" }
        let url = try temporaryTrace(Array(text.utf8))
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let run = try runSim(["replay", url.path], limit: .seconds(60))
        #expect(run.finished)
        #expect(run.status == 0)
    }

    @Test("a FIFO with no writer gets an answer instead of blocking: it holds an empty trace")
    func fifo() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vfio-sim-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let fifo = dir.appendingPathComponent("f.trace").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let run = try runSim(["replay", fifo], limit: .seconds(10))
        #expect(run.finished)
        #expect(run.status == 0)
    }

    @Test("an endless file (/dev/zero) gets an answer instead of reading until memory runs out")
    func endlessFile() throws {
        let run = try runSim(["replay", "/dev/zero"], limit: .seconds(20))
        #expect(run.finished)
        #expect(run.status == 2)
        #expect(run.stderr.hasPrefix("/dev/zero: error: "))
    }

    @Test("vfio-sim faults changes nothing without --allow-module-params, a group, or a good --runs: exit 2, saying why")
    func faultsNeedsPermission() throws {
        let refused = try runSim(["faults", "Fixtures/map-dma-entry-limit.trace"])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("pass --allow-module-params"))
        for bad in [["faults", "--runs", "0", "--allow-module-params", "x.trace"],
                    ["faults", "--runs", "lots", "x.trace"], ["faults", "--allow-module-params"], ["faults", "--bogus"]] {
            let run = try runSim(bad)
            #expect(run.status == 2, "\(bad)")
            #expect(run.stderr.hasPrefix("vfio-sim: error: "), "\(bad)")
        }
    }
}

import Foundation
import Testing

// `vfio-sim host` on the machine the tests run on, whatever it has: a
// prologue on standard output and exit 0, with or without VFIO.

@Suite("vfio-sim host", .enabled(if: simBinary != nil, "vfio-sim is not built: run swift build first, or set VFIO_SIM"))
struct HostTests {
    @Test("host prints this machine's kernel and memlock lines, each saying where it was read, and exits 0")
    func prologueOfThisMachine() throws {
        let run = try runSim(["host"])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        let kernel = try #require(lines.first { $0.hasPrefix("kernel ") }, "no kernel line in\n\(run.stdout)")
        #expect(kernel.contains("  # uname(2) release"))
        let memlock = try #require(lines.first { $0.hasPrefix("memlock ") || $0.hasPrefix("# memlock: ") }, "no memlock line in\n\(run.stdout)")
        #expect(memlock.contains("getrlimit(RLIMIT_MEMLOCK)"))
        // Every statement names its source; the rest are comments.
        for line in lines where !line.hasPrefix("#") {
            #expect(line.contains("  # "), "\(line) does not say where it was read")
        }
        #expect(lines.contains { $0.hasPrefix("domain ") || $0.hasPrefix("# no domain") })
        #expect(run.stderr.isEmpty)
    }

    @Test("host takes only --probe: anything else is a usage error, exit 2", arguments: [["--bogus"], ["file.trace"]])
    func usage(args: [String]) throws {
        let run = try runSim(["host"] + args)
        #expect(run.status == 2)
        #expect(run.stdout.isEmpty)
        #expect(run.stderr.hasPrefix("vfio-sim: error: "))
    }
}

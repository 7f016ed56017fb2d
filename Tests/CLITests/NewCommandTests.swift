import Foundation
import Testing

@Suite("vfio-sim new, as a user runs it")
struct NewCommandTests {
    @Test("a QEMU guest on 2M pages: the trace written with -o replays with exit 0 and plan reads it")
    func qemuToFileReplays() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("new-\(UUID().uuidString).trace").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let made = try runSim(["new", "qemu", "--memory", "3G", "--backing", "2M", "--kernel", "6.12", "-o", path])
        #expect(made.status == 0, "\(made.stderr)")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("kernel 6.12\n"))
        #expect(text.contains("map iova=0x100000000 vaddr=0x7f0080000000 size=1G prot=rw => ok"))
        let replayed = try runSim(["replay", path])
        #expect(replayed.status == 0, "\(replayed.stdout)")
        let plan = try runSim(["plan", path])
        #expect(plan.status == 0)
        #expect(plan.stdout.contains("memlock"))
    }

    @Test("a 12 TiB QEMU guest on scattered 4K pages: new writes it, replay passes, plan --time counts 3221225536 4K entries")
    func twelveTiBGuest() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("new-\(UUID().uuidString).trace").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let made = try runSim(["new", "qemu", "--memory", "12T", "--backing", "4K", "--iommu", "intel48", "-o", path])
        #expect(made.status == 0, "\(made.stderr)")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("check ptes=4K:3221225536 domain=dev0"))
        #expect(try runSim(["replay", path]).status == 0)
        let plan = try runSim(["plan", "--time", path])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("dev0: 4K:3221225536 (3221225536 entries) at most"))
        #expect(plan.stdout.contains("kernel time: map "))
    }

    @Test("without -o the trace goes to standard output; DPDK IOVA as PA writes one map per hugepage")
    func dpdkToStdout() throws {
        let r = try runSim(["new", "dpdk", "--memory", "32M", "--iova-mode", "pa"])
        #expect(r.status == 0)
        #expect(r.stdout.components(separatedBy: "\n").filter { $0.hasPrefix("map ") && $0.hasSuffix("=> ok") }.count == 16)
        #expect(r.stdout.contains("iommu type1\n"))
    }

    @Test("a program without a template, a bad option value and a setup the program cannot have: exit 2 naming what is wrong")
    func usageErrors() throws {
        let none = try runSim(["new", "vpp"])
        #expect(none.status == 2)
        #expect(none.stderr.contains("no template for 'vpp'; try dpdk, qemu, spdk, cloud-hypervisor, pool"))
        let backing = try runSim(["new", "qemu", "--backing", "3M"])
        #expect(backing.status == 2)
        #expect(backing.stderr.contains("--backing takes 4K, thp, 2M or 1G, not '3M'"))
        let setup = try runSim(["new", "dpdk", "--devices", "2", "--containers", "2"])
        #expect(setup.status == 2)
        #expect(setup.stderr.contains("--containers is for qemu and cloud-hypervisor"))
        let kernel = try runSim(["new", "qemu", "--kernel", "4.19"])
        #expect(kernel.status == 2)
    }

    @Test("help new prints the page, and the main page lists the command")
    func help() throws {
        let page = try runSim(["help", "new"])
        #expect(page.status == 0)
        #expect(page.stdout.contains("vfio-sim new - write the DMA mapping plan"))
        let main = try runSim(["--help"])
        #expect(main.stdout.contains("vfio-sim new dpdk|qemu|spdk|cloud-hypervisor|pool"))
    }
}

@Suite("Fixtures/new-*.trace are what vfio-sim new writes")
struct NewFixtureTests {
    static let files: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("Fixtures").path)) ?? [])
        .filter { $0.hasPrefix("new-") && $0.hasSuffix(".trace") }.sorted()

    @Test("each template fixture is its own command's output: the command in its 'Written by' line writes the same statements", arguments: files)
    func regenerates(_ name: String) throws {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("Fixtures/" + name), encoding: .utf8)
        let marker = "# Written by: vfio-sim "
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix(marker) })
        let args = line.dropFirst(marker.count).split(separator: " ").map(String.init)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("regen-\(UUID().uuidString).trace").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let run = try runSim(args + ["-o", out])
        #expect(run.status == 0, "\(run.stderr)")
        func statements(_ t: String) -> [Substring] { t.split(separator: "\n").filter { !$0.hasPrefix("#") } }
        #expect(statements(try String(contentsOfFile: out, encoding: .utf8)) == statements(text))
    }

    @Test("the template fixtures exist (so the test above runs)")
    func present() { #expect(Self.files.count >= 4) }
}

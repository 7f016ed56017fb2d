import Testing
import VFIOCore
@testable import VFIOTrace

// The statements and keys added for users writing traces without the
// source: show, repeat=/step=, seed= with every layout, the rules that
// span lines, and fmt keeping a trace's spelling.

@Suite("show, repeat, seed and the rules across lines")
struct LanguageAdditionTests {
    @Test("show alone shows everything; show with words shows those, in any order")
    func show() {
        #expect(kind("show") == .show(.all))
        #expect(kind("show ptes locked") == .show([.locked, .ptes]))
        #expect(diagnostics("show locked locked") == ["t.trace:1:13: error: expected at most one locked, found 'locked'"])
        #expect(diagnostics("show memory") == ["t.trace:1:6: error: expected one of locked, mappings, ptes, iova, found 'memory'"])
        #expect(diagnostics("show => ok").first?.contains("show takes no answer") == true)
    }

    @Test("repeat=N stands for N operations, iova and vaddr advancing by size, or by step=")
    func repeatAdvances() throws {
        let st = try #require(statements("map iova=0x100000 vaddr=0x7f0000000000 size=2M prot=rw repeat=3 => ok")?.first)
        #expect(st.count == 3)
        guard case .map(let third) = st.repeated(2).kind else { Issue.record("not a map"); return }
        #expect(third.iova == 0x100000 + 2 * (2 << 20))
        #expect(third.vaddr == 0x7f0000000000 + 2 * (2 << 20))
        #expect(st.repeated(2).repetition == nil)
        let unmap = try #require(statements("unmap iova=0 size=4K repeat=4 step=64K")?.first)
        guard case .unmap(let last) = unmap.repeated(3).kind else { Issue.record("not an unmap"); return }
        #expect(last.iova == 3 * 65536)
    }

    @Test("a repeat that would carry an address past 2^64-1 is an error, not a wrap")
    func repeatNeverWraps() {
        #expect(diagnostics("map iova=0xffffffffffffe000 vaddr=0 size=4K prot=rw repeat=3")
            == ["t.trace:1:60: error: expected a repeat that keeps every address at or below 0xffffffffffffffff, found '3'"])
        #expect(diagnostics("unmap iova=0 size=4K repeat=0").count == 1)
        #expect(diagnostics("unmap iova=0 size=4K step=4K") == ["t.trace:1:22: error: expected step= only with repeat=, found 'step=4K'"])
    }

    @Test("fmt prints repeat= and step= back, and the trace parses to the same statements")
    func repeatRoundTrip() throws {
        let text = "map iova=0x0 vaddr=0x0 size=4K prot=rw repeat=64 step=8K => ok\n"
        let trace = try parseTrace(text, file: "t.trace").get()
        #expect(printTrace(trace) == text)
    }

    @Test("seed= is accepted with every phys= layout", arguments: ["phys=scattered", "phys=reversed", "phys=chunks:8K", "phys=0x40000000", ""])
    func seedEverywhere(layout: String) {
        #expect(diagnostics("memory vaddr=0x1000 size=64K \(layout) seed=5") == [])
    }

    @Test("fmt keeps a number's own spelling when it says the same value")
    func spellingKept() throws {
        let text = "unmap size=0x200000 iova=2097152 => ok size=2M\n"
        let kept = try parseTrace(text, file: "t.trace", keepingSpellings: true).get()
        #expect(printTrace(kept) == "unmap iova=2097152 size=0x200000 => ok size=2M\n")
        let canonical = try parseTrace(text, file: "t.trace").get()
        #expect(printTrace(canonical) == "unmap iova=0x200000 size=2M => ok size=2M\n")
    }

    @Test("a second iommu statement is an error naming the first")
    func secondIOMMU() {
        #expect(diagnostics("iommu type1v2\niommu type1\n") == ["t.trace:2:1: error: expected one iommu statement, found a second one (the first is on line 1)"])
    }

    @Test("a kernel version is MAJOR.MINOR from the oldest known one on; between two it is accepted",
          arguments: [("kernel 6.5", true), ("kernel 9.0", true), ("kernel 6.12.38+deb12-amd64", true), ("kernel 5.10", true),
                      ("kernel 5.4", false), ("kernel 6.1x", false), ("kernel 6", false)])
    func kernelVersions(line: String, accepted: Bool) {
        #expect(diagnostics(line).isEmpty == accepted)
    }

    @Test("a release parses with its patch level and uname suffix; the suffix does not make it another release")
    func releaseParsing() throws {
        let v = try #require(KernelVersion(parsing: "6.12.38+deb12-amd64"))
        #expect(v.major == 6 && v.minor == 12 && v.patch == 38 && v.suffix == "+deb12-amd64")
        #expect(v == KernelVersion(6, 12, 38))
        #expect(v.series == KernelVersion(6, 12))
        #expect(KernelVersion(6, 12, 38) < KernelVersion(6, 12, 118))
        #expect(KernelVersion(6, 12, 118) < KernelVersion(6, 12), "a series without a patch level is its newest release")
        #expect(KernelVersion(parsing: "5.15.0-91-generic")?.isDistributionBuild == true)
        #expect(KernelVersion(parsing: "6.12.38+deb12-amd64")?.isDistributionBuild == false)
        #expect(KernelVersion(parsing: "6.12.") == nil)
        #expect(KernelVersion(parsing: "6.12+") == nil)
    }

    @Test("a container's operations go on where they were when statements come back to it: detach after them takes an answer, iommu is too late")
    func containerComesBack() {
        let start = "memory vaddr=0x10000 size=64K\ndomain a pgsizes=4K\nmap iova=0 vaddr=0x10000 size=4K prot=rw\ncontainer c1\ndomain b pgsizes=4K\n"
        // c1 is new: its domain before its first operation is setup.
        #expect(diagnostics(start + "container c0\ndetach a => ok\n") == [])
        #expect(diagnostics(start + "container c0\niommu type1v2\n")
            == ["t.trace:7:1: error: expected iommu before the first operation, found it after the operation on line 3"])
        #expect(diagnostics(start + "detach b => ok\n")
            == ["t.trace:6:10: error: expected end of line (detach before the first operation takes no answer), found '=>'"])
    }

    @Test("a group attached twice is an error; after detach, or with an answer written, it is an operation")
    func duplicateDomain() {
        #expect(diagnostics("domain d0 pgsizes=4K\ndomain d0 pgsizes=4K\n")
            == ["t.trace:2:8: error: expected a group name not in the container, found 'd0' (attached on line 1; detach it first)"])
        #expect(diagnostics("domain d0 pgsizes=4K\ndetach d0\ndomain d0 pgsizes=4K\n") == [])
        #expect(diagnostics("domain d0 pgsizes=4K\ninfo\ndomain d0 pgsizes=4K => EINVAL\n") == [])
    }

    @Test("memory regions that overlap are an error naming the other region; touching ones are fine")
    func overlappingMemory() {
        #expect(diagnostics("memory vaddr=0x10000 size=64K\nmemory vaddr=0x1f000 size=8K\n")
            == ["t.trace:2:8: error: expected memory apart from the region on line 1 (0x10000-0x1ffff), found 'vaddr=0x1f000' size=8K"])
        #expect(diagnostics("memory vaddr=0x10000 size=64K\nmemory vaddr=0x20000 size=8K\nmemory vaddr=0x0 size=64K\n") == [])
    }

    @Test("check ptes domain= must name a group of the trace (d0 when it declares none)")
    func checkDomain() {
        #expect(diagnostics("check ptes=none domain=d0\n") == [])
        #expect(diagnostics("check ptes=none domain=dX\n")
            == ["t.trace:1:24: error: expected the name of a domain of this trace (declared: d0), found 'dX'"])
        #expect(diagnostics("domain a pgsizes=4K\ncheck ptes=none domain=d0\n")
            == ["t.trace:2:24: error: expected the name of a domain of this trace (declared: a), found 'd0'"])
    }
}

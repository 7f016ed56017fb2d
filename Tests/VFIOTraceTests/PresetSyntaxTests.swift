import Testing
import VFIOCore
@testable import VFIOTrace

/// How a trace names an IOMMU preset and an IOMMU unit.
@Suite("domain iommu= and instance=")
struct PresetSyntaxTests {
    @Test("iommu= names a preset and makes pgsizes= optional; only the keys written are explicit")
    func preset() throws {
        guard case .success(let trace) = parseTrace("domain d0 iommu=amd aperture=0-0xffffffff\n", file: "t.trace"),
              case .domain(let spec) = trace.statements.first?.kind else { Issue.record("did not parse"); return }
        #expect(spec.preset == .amd)
        #expect(spec.explicit == [.aperture])
        #expect(spec.aperture == IOVARange(start: 0, last: 0xffff_ffff))
    }

    @Test("an unknown preset is a located error listing the presets")
    func unknownPreset() {
        #expect(diagnostics("domain d0 iommu=arm\n")
            == ["t.trace:1:17: error: expected one of intel, intel48, amd, virtio, smmuv3, found 'arm'"])
    }

    @Test("without iommu= the page sizes are still required")
    func pgsizesRequired() {
        #expect(diagnostics("domain d0 aperture=0-0xffff\n").first?.contains("pgsizes=") == true)
    }

    @Test("instance= takes a unit number below 4096")
    func instance() {
        #expect(diagnostics("domain d0 iommu=smmuv3 instance=2\n") == [])
        #expect(diagnostics("domain d0 iommu=smmuv3 instance=4096\n")
            == ["t.trace:1:33: error: expected an IOMMU unit number below 4096, found '4096'"])
    }

    @Test("a preset domain prints back as written", arguments: [
        "domain d0 iommu=amd", "domain d0 iommu=intel48 aperture=0x0-0xffffffff", "domain d1 iommu=smmuv3 coherent=no instance=1",
    ])
    func roundTrip(line: String) throws {
        guard case .success(let trace) = parseTrace(line + "\n", file: "t.trace") else { Issue.record("did not parse"); return }
        #expect(printTrace(trace).split(separator: "\n").first.map(String.init) == line)
    }
}

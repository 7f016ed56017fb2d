import Testing
import VFIOCore
@testable import VFIOTrace

@Suite("What-if changes to a trace's setup")
struct WhatIfTests {
    let trace = try! parseTrace("""
    # a recording
    kernel 6.12
    memlock unlimited
    domain g12 pgsizes=4K,2M,1G leaves=4K,2M
    map iova=0 vaddr=0x100000 size=2M prot=rw => ok
    domain g13 pgsizes=4K,2M
    """, file: "t.trace").get()

    @Test("a named setup statement is replaced where it stands, and the operations and their written answers stay")
    func replaces() throws {
        var w = WhatIf()
        try w.set("memlock", "64M").get()
        try w.set("kernel", "5.10").get()
        let changed = w.apply(to: trace)
        #expect(changed.statements.count == trace.statements.count)
        #expect(changed.statements[1].kind == .kernel(KernelVersion(5, 10)))
        #expect(changed.statements[2].kind == .memlock(64 << 20))
        #expect(changed.statements[4] .kind == trace.statements[4].kind)
        #expect(changed.statements[4].expected == trace.statements[4].expected)
    }

    @Test("a statement the trace does not have is added before its first statement; pgsizes changes every domain and drops leaves=")
    func adds() throws {
        var w = WhatIf()
        try w.set("dma-entry-limit", "100").get()
        try w.set("pgsizes", "4K").get()
        let changed = w.apply(to: trace)
        #expect(changed.statements[1].kind == .dmaEntryLimit(100))
        let domains = changed.statements.compactMap { if case .domain(let d) = $0.kind { d } else { nil } }
        #expect(domains.map(\.pgsizes) == [PageSizes(rawValue: 0x1000), PageSizes(rawValue: 0x1000)])
        #expect(domains.allSatisfy { $0.leaves == nil })
    }

    @Test("pgsizes wins over a domain's preset: iommu=intel on any release answers with the page sizes asked")
    func pgsizesOverPreset() throws {
        let t = try parseTrace("kernel 6.12\ndomain dev0 iommu=intel\n", file: "p.trace").get()
        var w = WhatIf()
        try w.set("pgsizes", "4K").get()
        guard case .domain(let spec) = w.apply(to: t).statements[1].kind else { Issue.record("no domain"); return }
        let resolved = spec.resolved(for: KernelVersion(6, 12)).spec
        #expect(resolved.pgsizes == PageSizes([4096]))
        #expect(resolved.leaves == nil)
        #expect(resolved.aperture == IOMMUPreset.intel.values(for: KernelVersion(6, 12)).aperture)
    }

    @Test("a value is read as the trace language reads it, and a bad one fails with the language's message")
    func values() {
        var w = WhatIf()
        #expect((try? w.set("memlock", "unlimited").get()) != nil)
        #expect(w.memlock == .some(nil))
        guard case .failure(let f) = w.set("memlock", "12Q") else { Issue.record("12Q was accepted"); return }
        #expect(f.diagnostics.first?.message.contains("12Q") == true)
        guard case .failure = w.set("kernel", "4.19") else { Issue.record("4.19 was accepted"); return }
    }
}

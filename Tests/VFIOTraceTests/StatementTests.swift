import Testing
import VFIOCore
@testable import VFIOTrace

private let allDefaults = DomainSpec(name: "d0", pgsizes: PageSizes([4096, 2 << 20, 1 << 30]))

@Test("each setup statement parses to its kind", arguments: [
    ("iommu type1v2", Statement.Kind.iommu(.type1v2)),
    ("iommu type1", .iommu(.type1)),
    ("kernel 6.1", .kernel(KernelVersion(6, 1))),
    ("kernel 6.12.38+deb12-amd64", .kernel(KernelVersion(6, 12, 38, suffix: "+deb12-amd64"))),
    ("memlock 64M", .memlock(64 * mib)),
    ("memlock unlimited", .memlock(nil)),
    ("memlock 0", .memlock(0)),
    ("cap-ipc-lock on", .capIPCLock(true)),
    ("cap-ipc-lock off", .capIPCLock(false)),
    ("dma-entry-limit 65535", .dmaEntryLimit(65535)),
    ("dma-entry-limit 0xffffffff", .dmaEntryLimit(.max)),
    ("domain d0 pgsizes=4K,2M,1G", .domain(allDefaults)),
    ("domain d0 pgsizes=1G,4K,2M", .domain(allDefaults)),
    ("domain d0 pgsizes=4K,2M,1G reserved=0xfee00000+1M aperture=0-0xffffffffffff", .domain(allDefaults)),
    ("domain g.1_x-2 pgsizes=mask:0xfffffffffffff000",
     .domain(DomainSpec(name: "g.1_x-2", pgsizes: PageSizes(rawValue: 0xffff_ffff_ffff_f000)))),
    ("domain d1 pgsizes=4K aperture=0x1000-0xffffffff reserved=none fgsp=yes coherent=no emulated=yes msi-isolated=no",
     .domain(DomainSpec(name: "d1", pgsizes: PageSizes([4096]), aperture: IOVARange(start: 0x1000, last: 0xffff_ffff),
                        reserved: [], coherent: false, emulated: true, msiIsolated: false))),
    ("domain d2 pgsizes=4K reserved=0xfee00000-0xfeefffff,0x1000+4K",
     .domain(DomainSpec(name: "d2", pgsizes: PageSizes([4096]),
                        reserved: [IOVARange(start: 0xfee0_0000, last: 0xfeef_ffff), IOVARange(start: 0x1000, last: 0x1fff)]))),
    ("detach d0", .detach("d0")),
    ("memory vaddr=0x7f0000000000 size=4M", .memory(MemorySpec(vaddr: 0x7f00_0000_0000, size: 4 * mib))),
    ("memory vaddr=0x7f0000000000 size=4M page=2M phys=0x40000000",
     .memory(MemorySpec(vaddr: 0x7f00_0000_0000, size: 4 * mib, pageSize: 2 * mib, layout: .contiguous(base: 0x4000_0000)))),
    ("memory size=1G vaddr=0x40000000 page=1G phys=scattered",
     .memory(MemorySpec(vaddr: 0x4000_0000, size: gib, pageSize: gib, layout: .scattered(seed: 0x4000_0000)))),
    ("memory vaddr=0x1000 size=8K phys=scattered seed=7",
     .memory(MemorySpec(vaddr: 0x1000, size: 8192, layout: .scattered(seed: 7)))),
    ("memory vaddr=0x1000 size=8K phys=reversed",
     .memory(MemorySpec(vaddr: 0x1000, size: 8192, layout: .reversed(base: 0x1_0000_0000)))),
    ("memory vaddr=0x200000 size=8M page=2M phys=chunks:4M",
     .memory(MemorySpec(vaddr: 0x20_0000, size: 8 * mib, pageSize: 2 * mib, layout: .chunks(size: 4 * mib, base: 0x1_0000_0000)))),
    ("memory vaddr=0xe0000000 size=16M pfnmap", .memory(MemorySpec(vaddr: 0xe000_0000, size: 16 * mib, pfnmap: true))),
    ("memory vaddr=0x7f0000000000 size=1G phys=contiguous",
     .memory(MemorySpec(vaddr: 0x7f00_0000_0000, size: gib, placement: .contiguous))),
    ("memory vaddr=0x7f0000000000 size=1G page=2M phys=contiguous",
     .memory(MemorySpec(vaddr: 0x7f00_0000_0000, size: gib, pageSize: 2 * mib, placement: .contiguous))),
    ("memory thp vaddr=0x7f0000001000 size=8M", .memory(MemorySpec(vaddr: 0x7f00_0000_1000, size: 8 * mib, placement: .thp))),
    ("memory vaddr=0x7f0000000000 size=1T phys=contiguous", .memory(MemorySpec(vaddr: 0x7f00_0000_0000, size: 1024 * gib, placement: .contiguous))),
    ("memory vaddr=0xfffffffffffff000 size=4K", .memory(MemorySpec(vaddr: 0xffff_ffff_ffff_f000, size: 4096))),
])
func setupStatement(text: String, expected: Statement.Kind) {
    #expect(kind(text) == expected)
}

@Test("each operation parses to the request it makes", arguments: [
    ("map iova=0x200000 vaddr=0x7f0000000000 size=2M prot=rw", mapDMA(iova: 0x20_0000, vaddr: 0x7f00_0000_0000, size: 2 * mib, [.read, .write])),
    ("map prot=r size=4K vaddr=0x2000 iova=0x1000", mapDMA(iova: 0x1000, vaddr: 0x2000, size: 4096, .read)),
    ("map iova=0 vaddr=0 size=0 prot=w", mapDMA(iova: 0, vaddr: 0, size: 0, .write)),
    ("map iova=0 vaddr=0 size=4K prot=none", mapDMA(iova: 0, vaddr: 0, size: 4096, [])),
    ("map iova=0 vaddr=0x5000 size=4K vaddr-only", mapDMA(iova: 0, vaddr: 0x5000, size: 4096, .vaddr)),
    ("map iova=0 vaddr=0 size=4K prot=rw argsz=16", mapDMA(iova: 0, vaddr: 0, size: 4096, [.read, .write], argsz: 16)),
    ("map iova=0 vaddr=0 size=4K prot=rw flags=0x80", mapDMA(iova: 0, vaddr: 0, size: 4096, MapDMA.Flags(rawValue: 0x80))),
    ("unmap iova=0x200000 size=2M", .unmap(UnmapDMA(flags: [], iova: 0x20_0000, size: 2 * mib))),
    ("unmap iova=0 size=4K vaddr-only", .unmap(UnmapDMA(flags: .vaddr, iova: 0, size: 4096))),
    ("unmap iova=0 size=1M dirty pgsize=4K",
     .unmap(UnmapDMA(flags: .getDirtyBitmap, iova: 0, size: mib, bitmap: DMABitmap(pgsize: 4096, size: 32)))),
    ("unmap iova=0 size=4K dirty pgsize=4K", .unmap(UnmapDMA(flags: .getDirtyBitmap, iova: 0, size: 4096, bitmap: DMABitmap(pgsize: 4096, size: 8)))),
    ("unmap iova=0 size=1M dirty pgsize=4K bitmap-size=4",
     .unmap(UnmapDMA(flags: .getDirtyBitmap, iova: 0, size: mib, bitmap: DMABitmap(pgsize: 4096, size: 4)))),
    ("unmap iova=0 size=4K argsz=8 flags=0x10", .unmap(UnmapDMA(argsz: 8, flags: UnmapDMA.Flags(rawValue: 0x10), iova: 0, size: 4096))),
    ("unmap-all", .unmap(UnmapDMA(flags: .all, iova: 0, size: 0))),
    ("unmap-all vaddr-only", .unmap(UnmapDMA(flags: [.all, .vaddr], iova: 0, size: 0))),
    ("unmap-all iova=0x1000 size=4K argsz=24 flags=2", .unmap(UnmapDMA(flags: .all, iova: 0x1000, size: 4096))),
    ("info", .info(argsz: nil)),
    ("info argsz=16", .info(argsz: 16)),
    ("extension type1v2", .extension(.type1v2)),
    ("extension dma-cc", .extension(.dmaCC)),
    ("extension update-vaddr", .extension(.updateVaddr)),
    ("extension 42", .extension(Extension(rawValue: 42))),
    ("dirty start", .dirty(DirtyPages(flags: .start))),
    ("dirty stop", .dirty(DirtyPages(flags: .stop))),
    ("dirty start flags=4", .dirty(DirtyPages(flags: .getBitmap))),
])
func operation(text: String, expected: Statement.Kind) {
    #expect(kind(text) == expected)
}

@Test("each check parses to the observation it names", arguments: [
    ("check locked=2M", Statement.Kind.check(.locked(2 * mib))),
    ("check mappings=3", .check(.mappings(3))),
    ("check ptes=2M:1", .check(.ptes(PTECounts([2 * mib: 1]), domain: nil))),
    ("check ptes=4K:511,2M:1,1G:2 domain=d0", .check(.ptes(PTECounts([4096: 511, 2 * mib: 1, gib: 2]), domain: "d0"))),
    ("check domain=d0 ptes=none", .check(.ptes(PTECounts(), domain: "d0"))),
    ("check ptes=4K:0", .check(.ptes(PTECounts(), domain: nil))),
])
func check(text: String, expected: Statement.Kind) {
    #expect(kind(text) == expected)
}

@Test("an answer after => is read with its fields", arguments: [
    ("map iova=0 vaddr=0 size=4K prot=rw => ok", Answer(.ok)),
    ("map iova=0 vaddr=0 size=4K prot=rw => EEXIST", Answer(.errno(.EEXIST))),
    ("map iova=0 vaddr=0 size=4K prot=rw =>EINVAL", Answer(.errno(.EINVAL))),
    ("map iova=0 vaddr=0 size=4K prot=rw=>ENOSPC", Answer(.errno(.ENOSPC))),
    ("map iova=0 vaddr=0 size=4K prot=rw => EWOULDBLOCK", Answer(.errno(.EAGAIN))),
    ("map iova=0 vaddr=0 size=4K prot=rw => EHWPOISON", Answer(.errno(Errno(rawValue: 133)))),
    ("unmap iova=0 size=2M => ok size=2M", Answer(.ok, fields: [.size(2 * mib)])),
    ("unmap iova=0 size=2M => ok size=0", Answer(.ok, fields: [.size(0)])),
    ("unmap-all => ok size=0x3000", Answer(.ok, fields: [.size(0x3000)])),
    ("extension type1v2 => 1", Answer(.value(1))),
    ("extension nesting => 0", Answer(.value(0))),
    ("extension nesting => 0x1", Answer(.value(1))),
    ("extension 77 => EINVAL", Answer(.errno(.EINVAL))),
    ("info => dma-avail=65534", Answer(.ok, fields: [.dmaAvail(65534)])),
    ("info => ok pgsizes=4K,2M,1G iova=0-0xfedfffff,0xfef00000-0xffffffffffff dma-avail=none argsz=88",
     Answer(.ok, fields: [.pgsizes(PageSizes([4096, 2 << 20, 1 << 30])),
                          .iova([IOVARange(start: 0, last: 0xfedf_ffff), IOVARange(start: 0xfef0_0000, last: 0xffff_ffff_ffff)]),
                          .dmaAvail(nil), .argsz(88)])),
    ("info => iova=none pgsizes=mask:0xfffffffffffff000", Answer(.ok, fields: [.iova(nil), .pgsizes(PageSizes.pageMask)])),
    ("info => EFAULT", Answer(.errno(.EFAULT))),
    ("dirty start => ENOTSUP", Answer(.errno(.EOPNOTSUPP))),
    ("dirty get iova=0 size=8M pgsize=4K => ok dirty=0x200000-0x3fffff,0x600000-0x6fffff",
     Answer(.ok, fields: [.dirty([IOVARange(start: 0x20_0000, last: 0x3f_ffff), IOVARange(start: 0x60_0000, last: 0x6f_ffff)])])),
    ("dirty get iova=0 size=8M pgsize=4K => ok dirty=none", Answer(.ok, fields: [.dirty([])])),
    ("unmap iova=0 size=2M dirty pgsize=4K => ok size=2M dirty=0+2M", Answer(.ok, fields: [.size(2 * mib), .dirty([IOVARange(start: 0, last: 2 * mib - 1)])])),
    ("iommu type1 => ok", Answer(.ok)),
    ("iommu type1v2 => EBUSY", Answer(.errno(.EBUSY))),
])
func answer(text: String, expected: Answer) {
    #expect(statements(text)?.first?.expected == expected)
}

@Test("domain and detach after the first operation are operations and take an answer")
func domainAsOperation() {
    let s = statements("""
        domain d0 pgsizes=4K
        map iova=0 vaddr=0 size=4K prot=rw
        domain d1 pgsizes=4K => EINVAL
        detach d0 => ok
        """)
    #expect(s?.map(\.expected) == [nil, nil, Answer(.errno(.EINVAL)), Answer(.ok)])
}

@Test("an operation without => has no expected answer")
func noAnswer() {
    #expect(statements("info")?.first?.expected == nil)
}

@Test("comments and blank lines become statements; trailing comments attach to theirs")
func commentsAndBlanks() {
    let s = statements("""
        # A title.
        #no space
        #   indented  \t
        \t
        #
        info   # trailing
        info => ok # after the answer

        \t


        info#tight
        """)
    #expect(s?.map(\.kind) == [.comment("A title."), .comment("no space"), .comment("  indented"), .blank, .comment(""),
                                .info(argsz: nil), .info(argsz: nil), .blank, .info(argsz: nil)])
    #expect(s?.map(\.comment) == [nil, nil, nil, nil, nil, "trailing", "after the answer", nil, "tight"])
    #expect(s?.map(\.line) == [1, 2, 3, 4, 5, 6, 7, 8, 12])
}

@Test("a statement's line and column are those of its verb")
func positions() {
    let s = statements("\n\n   map iova=0 vaddr=0 size=4K prot=rw\n\t# x")
    #expect(s?.map(\.line) == [1, 3, 4])
    #expect(s?.map(\.column) == [1, 4, 2])
}

@Test("key=value words may come in any order")
func anyOrder() {
    #expect(kind("memory pfnmap page=2M size=4M vaddr=0x200000 phys=0x0") == kind("memory vaddr=0x200000 size=4M page=2M phys=0 pfnmap"))
    #expect(kind("unmap pgsize=4K dirty size=1M iova=0") == kind("unmap iova=0 size=1M dirty pgsize=4K"))
}

import Testing
import VFIOCore
@testable import VFIOTrace

/// The example of TRACE_FORMAT.md, as written there.
let formatExample = """
    # A hugepage-backed buffer, mapped and then unmapped in part (v2).
    iommu type1v2
    memlock 64M
    domain d0 pgsizes=4K,2M,1G reserved=0xfee00000+1M
    memory vaddr=0x7f0000000000 size=4M page=2M phys=0x40000000

    map iova=0x200000 vaddr=0x7f0000000000 size=2M prot=rw    => ok
    map iova=0x200000 vaddr=0x7f0000200000 size=2M prot=rw    => EEXIST
    check locked=2M
    check ptes=2M:1
    unmap iova=0x200000 size=4K                                => EINVAL   # v2: may not bisect a mapping
    unmap iova=0x200000 size=2M                                => ok size=2M
    unmap iova=0x200000 size=2M                                => ok size=0
    map iova=0xfee00000 vaddr=0x7f0000000000 size=2M prot=rw  => EINVAL   # overlaps the MSI window
    map iova=0x1000 vaddr=0x7f0000000000 size=6K prot=rw      => EINVAL   # size not a multiple of 4K

    """

/// One trace with every statement form and every value the printer may
/// leave out or must keep.
let everyForm = """
    #!no space after the hash
    #   leading spaces kept
    #
    iommu type1 => ok
    container iommufd
    kernel 6.12.38+deb12-amd64
    memlock unlimited
    memlock 0x1800
    cap-ipc-lock on
    dma-entry-limit 0
    domain d0 pgsizes=4K,2M,1G aperture=0-0xffffffffffff reserved=0xfee00000-0xfeefffff coherent=yes emulated=no msi-isolated=yes
    domain d1 pgsizes=mask:0xfffffffffffff000 aperture=0x1000-0xffffffff reserved=none coherent=no emulated=yes msi-isolated=no
    domain d2 pgsizes=512,4K reserved=0x0+4K,0xfee00000+1M
    domain d3 pgsizes=mask:0x1000
    memory vaddr=0x1000 size=8K
    memory vaddr=0x200000 size=4M page=2M phys=0x40000000 pfnmap
    memory vaddr=0x10000 size=8K phys=scattered
    memory vaddr=0x20000 size=8K phys=scattered seed=7
    memory vaddr=0x30000 size=8K page=4096 phys=reversed
    memory vaddr=0x40000000 size=2G page=1G phys=chunks:1G
    memory vaddr=0x100000000 size=1G phys=contiguous
    memory vaddr=0x140000000 size=1G page=1G phys=contiguous
    memory vaddr=0x180001000 size=8M thp
    memory vaddr=0x200000000 size=4M page=2M


    map iova=0x200000 vaddr=0x7f0000000000 size=2M prot=rw => ok  # a comment
    map iova=0 vaddr=0 size=0 prot=r
    map iova=0 vaddr=0 size=1 prot=w argsz=32
    map iova=0 vaddr=0 size=6K prot=none argsz=31
    map iova=0 vaddr=0 size=4K vaddr-only
    map iova=0 vaddr=0 size=4K prot=rw flags=0x7
    map iova=0 vaddr=0 size=4K prot=rw flags=0
    map iova=0 vaddr=0 size=4K vaddr-only flags=0xffffffff => EINVAL
    unmap iova=0x200000 size=2M => ok size=2M
    unmap iova=0 size=4K vaddr-only argsz=24
    unmap iova=0 size=1M dirty pgsize=4K
    unmap iova=0 size=1M dirty pgsize=4K bitmap-size=32 argsz=48
    unmap iova=0 size=1M dirty pgsize=4K bitmap-size=3 argsz=47
    unmap iova=0 size=1M dirty pgsize=0
    unmap iova=0 size=0 flags=2
    unmap iova=0 size=4K dirty pgsize=4K flags=3
    unmap iova=0 size=4K flags=7
    unmap-all => ok size=0
    unmap-all vaddr-only => EINVAL
    unmap-all iova=0x1000 size=4K argsz=16 flags=0x8
    unmap-all flags=0
    domain d4 pgsizes=4K => EINVAL
    detach d0 => ok
    info
    info argsz=16 => EINVAL
    info => pgsizes=4K,2M,1G iova=0-0xfedfffff,0xfef00000-0xffffffffffff dma-avail=65534 argsz=88
    info => ok iova=none dma-avail=none pgsizes=mask:0x3
    extension type1v2 => 1
    extension 99 => 0
    extension 3
    dirty start => ok
    dirty stop => ENOTTY
    dirty stop flags=1
    dirty start flags=7
    check locked=2M
    check mappings=0
    check ptes=none
    check ptes=4K:0,2M:1,1G:3 domain=d1
    check ptes=512:3  # sub-K pages
    check pte iova=0x200000 => 2M
    check pte iova=0x3ff000 domain=d1 => 4K  # one leaf
    check pte iova=0 => none
    map iova=0 vaddr=0 size=4K prot=rw => error
    unmap iova=0 size=4K => error
    extension 99 => error
    info argsz=1 => error
    """

private func shapes(_ text: String) -> [Shape]? { statements(text)?.map(Shape.init) }

private func reprint(_ text: String) -> String? {
    (try? parseTrace(text, file: "t.trace").get()).map(printTrace)
}

@Test("printing a parsed trace and parsing it again gives the same statements", arguments: [formatExample, everyForm, "", "\n\n\n", "info", "# only"])
func roundTrip(text: String) throws {
    let first = try parseTrace(text, file: "t.trace").get()
    let printed = printTrace(first)
    let second = try parseTrace(printed, file: "t.trace").get()
    #expect(second.statements.map(Shape.init) == first.statements.map(Shape.init))
    // The canonical form is a fixed point.
    #expect(printTrace(second) == printed)
}

@Test("the format example prints in canonical form")
func canonicalExample() {
    #expect(reprint(formatExample) == """
        # A hugepage-backed buffer, mapped and then unmapped in part (v2).
        iommu type1v2
        memlock 64M
        domain d0 pgsizes=4K,2M,1G
        memory vaddr=0x7f0000000000 size=4M page=2M phys=0x40000000

        map iova=0x200000 vaddr=0x7f0000000000 size=2M prot=rw => ok
        map iova=0x200000 vaddr=0x7f0000200000 size=2M prot=rw => EEXIST
        check locked=2M
        check ptes=2M:1
        unmap iova=0x200000 size=4K => EINVAL  # v2: may not bisect a mapping
        unmap iova=0x200000 size=2M => ok size=2M
        unmap iova=0x200000 size=2M => ok size=0
        map iova=0xfee00000 vaddr=0x7f0000000000 size=2M prot=rw => EINVAL  # overlaps the MSI window
        map iova=0x1000 vaddr=0x7f0000000000 size=6K prot=rw => EINVAL  # size not a multiple of 4K

        """)
}

@Test("each statement prints in canonical form, keys in a fixed order and defaults left out", arguments: [
    ("map   size=2M prot=rw iova=2097152  vaddr=0X7F0000000000", "map iova=0x200000 vaddr=0x7f0000000000 size=2M prot=rw"),
    ("map iova=0 vaddr=0 size=4096 prot=rw argsz=32 flags=3", "map iova=0x0 vaddr=0x0 size=4K prot=rw"),
    ("map iova=0 vaddr=0 size=4K prot=rw flags=7", "map iova=0x0 vaddr=0x0 size=4K prot=rw flags=0x7"),
    ("map iova=0 vaddr=0 size=4K vaddr-only argsz=0", "map iova=0x0 vaddr=0x0 size=4K vaddr-only argsz=0"),
    ("unmap size=1M dirty iova=0 pgsize=4096 bitmap-size=32", "unmap iova=0x0 size=1M dirty pgsize=4K"),
    ("unmap iova=0 size=0 flags=2", "unmap-all"),
    ("unmap-all flags=0", "unmap iova=0x0 size=0"),
    ("unmap-all vaddr-only size=4K", "unmap-all size=4K vaddr-only"),
    ("memory size=4M vaddr=0x200000 page=2M phys=scattered seed=2097152", "memory vaddr=0x200000 size=4M page=2M phys=scattered"),
    ("memory vaddr=0x1000 size=4096 page=4K", "memory vaddr=0x1000 size=4K"),
    ("memory phys=contiguous size=1G vaddr=0x7f0000000000", "memory vaddr=0x7f0000000000 size=1G phys=contiguous"),
    ("memory thp page=4K size=4M vaddr=0x7f0000000000", "memory vaddr=0x7f0000000000 size=4M thp"),
    // Populated is the default; only `no` is written.
    ("memory populated=no thp size=4M vaddr=0x7f0000000000", "memory vaddr=0x7f0000000000 size=4M thp populated=no"),
    ("memory vaddr=0x7f0000000000 size=2M page=2M populated=yes", "memory vaddr=0x7f0000000000 size=2M page=2M"),
    ("memory pfnmap size=4M vaddr=0x7f0000000000 page=2M", "memory vaddr=0x7f0000000000 size=4M page=2M pfnmap"),
    ("domain d0 msi-isolated=no pgsizes=2M,4K reserved=none", "domain d0 pgsizes=4K,2M reserved=none msi-isolated=no"),
    ("memlock 1073741824", "memlock 1G"),
    ("container   iommufd", "container iommufd"),
    ("container type1", "container type1"),
    ("dma-entry-limit 0x10", "dma-entry-limit 16"),
    ("kernel 6.12.38", "kernel 6.12.38"),
    ("kernel 6.12.38+deb12-amd64", "kernel 6.12.38+deb12-amd64"),
    ("extension 3", "extension type1v2"),
    ("check ptes=1G:1,4K:2 domain=d0", "check ptes=4K:2,1G:1 domain=d0"),
    ("info =>   dma-avail=1   argsz=0x10", "info => ok dma-avail=1 argsz=16"),
    ("info => EWOULDBLOCK", "info => EAGAIN"),
    ("info#x", "info  # x"),
    ("  #   x  ", "#   x"),
    ("#", "#"),
])
func canonicalStatement(text: String, printed: String) {
    #expect(reprint(text) == printed + "\n")
}

@Test("runs of blank lines print as one blank line")
func blankRuns() {
    #expect(reprint("\n\n\ninfo\n \n\t\n\ninfo\n\n") == "\ninfo\n\ninfo\n\n")
}

@Test("a statement prints alone without its line end")
func printOne() {
    let s = Statement(line: 9, column: 1, kind: .unmap(UnmapDMA(flags: .all, iova: 0, size: 0)), expected: Answer(.ok, fields: [.size(0x3000)]), comment: "c")
    #expect(printStatement(s) == "unmap-all => ok size=12K  # c")
    #expect(printTrace(Trace(file: "", statements: [s])) == "unmap-all => ok size=12K  # c\n")
}

import Testing
@testable import VFIOTrace

let verbList = "iommu, container, kernel, memlock, mlock, cap-ipc-lock, dma-entry-limit, domain, detach, memory, map, unmap, unmap-all, info, extension, dirty, check, show"

@Test("a bad statement gives one exact FILE:LINE:COLUMN diagnostic", arguments: [
    // Unknown verbs.
    ("frob x", "1:1: error: expected one of \(verbList), found 'frob'"),
    ("MAP iova=0", "1:1: error: expected one of \(verbList), found 'MAP'"),
    ("=> ok", "1:1: error: expected one of \(verbList), found '=>'"),
    ("  Info", "1:3: error: expected one of \(verbList), found 'Info'"),
    // iommu and kernel.
    ("iommu type3", "1:7: error: expected one of type1, type1v2, found 'type3'"),
    ("iommu", "1:6: error: expected one of type1, type1v2, found end of line"),
    ("iommu => ok", "1:7: error: expected one of type1, type1v2, found '=>'"),
    ("iommu type1 extra", "1:13: error: expected end of line, found 'extra'"),
    ("iommu type1 => ok size=0", "1:19: error: expected end of line (the iommu answer takes no keys), found 'size=0'"),
    ("kernel six", "1:8: error: expected a kernel version 5.10 or newer (6.8, 6.12.38, 6.12.38+deb12-amd64), found 'six'"),
    ("kernel 5.4", "1:8: error: expected a kernel version 5.10 or newer (6.8, 6.12.38, 6.12.38+deb12-amd64), found '5.4'"),
    ("kernel 6.1x", "1:8: error: expected a kernel version 5.10 or newer (6.8, 6.12.38, 6.12.38+deb12-amd64), found '6.1x'"),
    ("iommu type1\niommu type1v2", "2:1: error: expected one iommu statement, found a second one (the first is on line 1)"),
    ("kernel 6.1 => ok", "1:12: error: expected end of line (kernel takes no answer), found '=>'"),
    // container.
    ("container c1 vfio", "1:14: error: expected one of type1, iommufd, found 'vfio'"),
    ("container c1 iommufd\ncontainer c1 type1", "2:14: error: expected iommufd (container c1 was opened as iommufd), found 'type1'"),
    ("container c1 type1 extra", "1:20: error: expected end of line, found 'extra'"),
    ("container iova=1", "1:11: error: expected one of type1, iommufd, or a container name, found 'iova=1'"),
    ("container", "1:10: error: expected one of type1, iommufd, or a container name, found end of line"),
    ("mlock lots", "1:7: error: expected a size, found 'lots'"),
    ("container iommufd extra", "1:19: error: expected end of line, found 'extra'"),
    ("container iommufd => ok", "1:19: error: expected end of line (container takes no answer), found '=>'"),
    ("container iommufd\ncontainer type1", "2:1: error: expected one container statement, found a second one (the first is on line 1)"),
    ("domain d0 pgsizes=4K\ncontainer iommufd", "2:1: error: expected container before the first domain, found it after the domain on line 1"),
    ("info\ncontainer iommufd", "2:1: error: expected container before the first operation, found it after the operation on line 1"),
    // Other setup.
    ("memlock lots", "1:9: error: expected a number or unlimited, found 'lots'"),
    ("memlock 4M # x => ok", ""),
    ("memlock 4M => ok", "1:12: error: expected end of line (memlock takes no answer), found '=>'"),
    ("cap-ipc-lock yes", "1:14: error: expected one of on, off, found 'yes'"),
    ("cap-ipc-lock", "1:13: error: expected one of on, off, found end of line"),
    ("dma-entry-limit 4294967296", "1:17: error: expected a value that fits in 32 bits, found '4294967296'"),
    ("dma-entry-limit -1", "1:17: error: expected a number, found '-1'"),
    // domain and detach.
    ("domain pgsizes=4K", "1:8: error: expected a domain name, found 'pgsizes=4K'"),
    ("domain", "1:7: error: expected a domain name, found end of line"),
    ("domain d@0 pgsizes=4K", "1:8: error: expected a domain name of letters, digits, '_', '.' and '-', found 'd@0'"),
    ("domain d0", "1:10: error: expected pgsizes=, found end of line"),
    ("domain d0 coherent=no", "1:22: error: expected pgsizes=, found end of line"),
    ("domain d0 pgsizes=3K", "1:19: error: expected a power of two, found '3K'"),
    ("domain d0 pgsizes=0", "1:19: error: expected a power of two, found '0'"),
    ("domain d0 pgsizes=4K,,2M", "1:22: error: expected a number, found nothing"),
    ("domain d0 pgsizes=4K,", "1:22: error: expected a number, found nothing"),
    ("domain d0 pgsizes=mask:x", "1:24: error: expected a number, found 'x'"),
    ("domain d0 pgsizes=4K aperture=0x2000-0x1000", "1:31: error: expected a range whose end is not below its start, found '0x2000-0x1000'"),
    ("domain d0 pgsizes=4K reserved=0x1000", "1:31: error: expected a range START-END or START+SIZE, found '0x1000'"),
    ("domain d0 pgsizes=4K reserved=0x1000+0", "1:38: error: expected a nonzero range size, found '0'"),
    ("domain d0 pgsizes=4K reserved=0xffffffffffffffff+2",
     "1:31: error: expected a range that ends at or below 0xffffffffffffffff, found '0xffffffffffffffff+2'"),
    ("domain d0 pgsizes=4K reserved=0-0xfff,0x1000-zz", "1:46: error: expected a number, found 'zz'"),
    ("domain d0 pgsizes=4K fgsp=maybe", "1:27: error: expected one of yes, no, found 'maybe'"),
    ("domain d0 pgsizes=4K color=red",
     "1:22: error: expected one of iommu=, pgsizes=, leaves=, aperture=, reserved=, fgsp=, coherent=, emulated=, msi-isolated=, instance=, found 'color=red'"),
    ("domain d0 pgsizes=4K pgsizes=2M", "1:22: error: expected at most one pgsizes=, found 'pgsizes=2M'"),
    ("domain d0 pgsizes=4K => ok", "1:22: error: expected end of line (domain before the first operation takes no answer), found '=>'"),
    ("detach d0 => ok", "1:11: error: expected end of line (detach before the first operation takes no answer), found '=>'"),
    ("detach", "1:7: error: expected a domain name, found end of line"),
    ("detach d0 d1", "1:11: error: expected end of line, found 'd1'"),
    // memory.
    ("memory size=4K", "1:15: error: expected vaddr=, found end of line"),
    ("memory vaddr=0x1000", "1:20: error: expected size=, found end of line"),
    ("memory vaddr=0x1000 size=4K page=8K", "1:34: error: expected one of 4K, 2M, 1G, found '8K'"),
    ("memory vaddr=0x1000 size=2M page=2M", "1:14: error: expected a multiple of the page size 2M, found '0x1000'"),
    ("memory vaddr=0x200000 size=0 page=2M", "1:28: error: expected a nonzero size, found '0'"),
    ("memory vaddr=0x200000 size=3M page=2M", "1:28: error: expected a multiple of the page size 2M, found '3M'"),
    ("memory vaddr=0xfffffffffffff000 size=8K",
     "1:38: error: expected a size that ends the region at or below 0xffffffffffffffff, found '8K'"),
    ("memory vaddr=0x200000 size=2M page=2M phys=0x1000", "1:44: error: expected a multiple of the page size 2M, found '0x1000'"),
    ("memory vaddr=0 size=8K phys=0xfffffffffffff000",
     "1:29: error: expected an address that ends the region at or below 0xffffffffffffffff, found '0xfffffffffffff000'"),
    ("memory vaddr=0 size=4K phys=elsewhere", "1:29: error: expected an address, contiguous, scattered, reversed or chunks:SIZE, found 'elsewhere'"),
    ("memory vaddr=0 size=4K thp phys=contiguous", "1:28: error: expected thp or phys=, not both, found 'phys=contiguous'"),
    ("memory vaddr=0 size=4K phys=0x1000 thp", "1:36: error: expected thp or phys=, not both, found 'thp'"),
    ("memory vaddr=0 size=4M page=2M thp", "1:29: error: expected page=4K with thp (transparent hugepages back 4K pages), found '2M'"),
    ("memory vaddr=0 size=4K thp pfnmap", "1:28: error: expected thp or pfnmap, not both, found 'pfnmap'"),
    ("memory vaddr=0 size=4K thp thp", "1:28: error: expected at most one thp, found 'thp'"),
    ("memory vaddr=0 size=1T phys=chunks:12K",
     "1:29: error: expected at most 16777216 physically separate pieces of a size that is not a power of two, found 89478485 with 'chunks:12K'"),
    ("memory vaddr=0 size=8K phys=chunks:6K", "1:36: error: expected a multiple of the page size 4K, found '6K'"),
    ("memory vaddr=0 size=8K phys=chunks:0", "1:36: error: expected a nonzero chunk size, found '0'"),
    ("memory vaddr=0 size=4K\nmemory vaddr=0x1000 size=4K\nmemory vaddr=0 size=8K",
     "3:8: error: expected memory apart from the region on line 1 (0x0-0xfff), found 'vaddr=0' size=8K"),
    ("domain d0 pgsizes=4K\ndomain d0 pgsizes=4K", "2:8: error: expected a group name not in the container, found 'd0' (attached on line 1; detach it first)"),
    ("check ptes=none domain=d9", "1:24: error: expected the name of a domain of this trace (declared: d0), found 'd9'"),
    ("memory vaddr=0 size=4K pfnmap pfnmap", "1:31: error: expected at most one pfnmap, found 'pfnmap'"),
    ("memory vaddr=0 size=4K populated=maybe", "1:34: error: expected one of yes, no, found 'maybe'"),
    ("memory vaddr=0 size=4K pfnmap populated=no",
     "1:31: error: expected populated=no or pfnmap, not both (device memory is never faulted in), found 'populated=no'"),
    // map.
    ("map iova=zz vaddr=0 size=4K prot=rw", "1:10: error: expected a number, found 'zz'"),
    ("map iova= vaddr=0 size=4K prot=rw", "1:10: error: expected a number, found nothing"),
    ("map iova=0 vaddr=0 size=4K", "1:27: error: expected prot= or vaddr-only, found end of line"),
    ("map iova=0 vaddr=0 size=4K  # comment", "1:27: error: expected prot= or vaddr-only, found end of line"),
    ("map iova=0 vaddr=0 size=4K => ok", "1:28: error: expected prot= or vaddr-only, found '=>'"),
    ("map iova=0 vaddr=0 prot=rw", "1:27: error: expected size=, found end of line"),
    ("map iova=0 vaddr=0 size=4K prot=rw vaddr-only", "1:36: error: expected prot= or vaddr-only, not both, found 'vaddr-only'"),
    ("map iova=0 vaddr=0 size=4K vaddr-only prot=rw", "1:39: error: expected prot= or vaddr-only, not both, found 'prot=rw'"),
    ("map iova=0 vaddr=0 size=4K prot=x", "1:33: error: expected one of r, w, rw, none, found 'x'"),
    ("map iova=0 vaddr=0 size=4K prot=rw iova=0", "1:36: error: expected at most one iova=, found 'iova=0'"),
    ("map iova=0 vaddr=0 size=4K prot=rw bogus",
     "1:36: error: expected one of iova=, vaddr=, size=, prot=, vaddr-only, argsz=, flags=, repeat=, step=, found 'bogus'"),
    ("map iova=0 vaddr=0 size=4K prot=rw =1",
     "1:36: error: expected one of iova=, vaddr=, size=, prot=, vaddr-only, argsz=, flags=, repeat=, step=, found '=1'"),
    ("map iova=0 vaddr=0 size=4K prot=rw argsz=0x100000000", "1:42: error: expected a value that fits in 32 bits, found '0x100000000'"),
    ("map iova=0 vaddr=0 size=4K prot=rw flags=-", "1:42: error: expected a number, found '-'"),
    // unmap and unmap-all.
    ("unmap size=4K", "1:14: error: expected iova=, found end of line"),
    ("unmap iova=0 size=4K pgsize=4K", "1:22: error: expected pgsize= only with dirty, found 'pgsize=4K'"),
    ("unmap iova=0 size=4K bitmap-size=8", "1:22: error: expected bitmap-size= only with dirty, found 'bitmap-size=8'"),
    ("unmap iova=0 size=4K dirty", "1:27: error: expected pgsize=, found end of line"),
    ("unmap iova=0 size=4K dirty dirty pgsize=4K", "1:28: error: expected at most one dirty, found 'dirty'"),
    ("unmap-all dirty", "1:11: error: expected one of iova=, size=, vaddr-only, argsz=, flags=, found 'dirty'"),
    ("unmap-all size=4K => ok size=", "1:30: error: expected a number, found nothing"),
    // info, extension, dirty.
    ("info foo", "1:6: error: expected argsz=, found 'foo'"),
    ("info argsz=-1", "1:12: error: expected a number, found '-1'"),
    ("extension frob",
     "1:11: error: expected one of type1, spapr, type1v2, dma-cc, eeh, nesting, spapr-v2, noiommu, unmap-all, update-vaddr, or a number, found 'frob'"),
    ("extension 0x100000000", "1:11: error: expected a value that fits in 32 bits, found '0x100000000'"),
    ("extension type1 type1v2", "1:17: error: expected end of line, found 'type1v2'"),
    ("dirty go", "1:7: error: expected one of start, stop, get, found 'go'"),
    ("dirty", "1:6: error: expected one of start, stop, get, found end of line"),
    ("dirty start now", "1:13: error: expected flags=, found 'now'"),
    // check.
    ("check", "1:6: error: expected one of locked=, mappings=, ptes=, pte, found end of line"),
    ("check locked=2M mappings=1", "1:17: error: expected only one of locked=, mappings=, ptes=, found 'mappings=1'"),
    ("check locked=2M domain=d0", "1:17: error: expected domain= only with ptes= or pte, found 'domain=d0'"),
    ("check ptes=4K", "1:12: error: expected SIZE:COUNT, found '4K'"),
    ("check ptes=4K:1:2", "1:12: error: expected SIZE:COUNT, found '4K:1:2'"),
    ("check ptes=4K:1,4K:2", "1:17: error: expected each page size once, found '4K:2'"),
    ("check ptes=3K:1", "1:12: error: expected a power of two, found '3K'"),
    ("check ptes=4K:x", "1:15: error: expected a number, found 'x'"),
    ("check ptes=4K:1 domain=a/b", "1:24: error: expected a domain name of letters, digits, '_', '.' and '-', found 'a/b'"),
    ("check mappings=1 => ok", "1:18: error: expected end of line (check takes no answer), found '=>'"),
    // Answers.
    ("map iova=0 vaddr=0 size=4K prot=rw =>", "1:38: error: expected an answer, found end of line"),
    ("map iova=0 vaddr=0 size=4K prot=rw =>   # nothing", "1:38: error: expected an answer, found end of line"),
    ("map iova=0 vaddr=0 size=4K prot=rw => => ok", "1:39: error: expected an answer, found '=>'"),
    ("map iova=0 vaddr=0 size=4K prot=rw => ok => ok", "1:42: error: expected end of line, found '=>'"),
    ("map iova=0 vaddr=0 size=4K prot=rw => EFOO", "1:39: error: expected a Linux errno name, found 'EFOO'"),
    ("map iova=0 vaddr=0 size=4K prot=rw => einval", "1:39: error: expected ok, an errno or error, found 'einval'"),
    ("map iova=0 vaddr=0 size=4K prot=rw => 0", "1:39: error: expected ok, an errno or error, found '0'"),
    ("map iova=0 vaddr=0 size=4K prot=rw => ok size=4K", "1:42: error: expected end of line (the map answer takes no keys), found 'size=4K'"),
    ("unmap iova=0 size=4K => ok pgsizes=4K", "1:28: error: expected a key of the unmap answer (size=), found 'pgsizes=4K'"),
    // dirty= only where the call took a bitmap.
    ("unmap iova=0 size=4K => ok dirty=none", "1:28: error: expected a key of the unmap answer (size=), found 'dirty=none'"),
    ("unmap iova=0 size=4K dirty pgsize=4K => ok dirty=0-", "1:50: error: expected a range START-END or START+SIZE, found '0-'"),
    ("dirty start => ok dirty=none", "1:19: error: expected end of line (the dirty answer takes no keys), found 'dirty=none'"),
    ("unmap iova=0 size=4K => ok size=1 size=2", "1:35: error: expected at most one size=, found 'size=2'"),
    ("unmap iova=0 size=4K => EINVAL size=0", "1:32: error: expected end of line, found 'size=0'"),
    ("unmap iova=0 size=4K => size=0", "1:25: error: expected ok, an errno or error, found 'size=0'"),
    ("info => ok size=4K", "1:12: error: expected a key of the info answer (pgsizes=, iova=, dma-avail=, argsz=), found 'size=4K'"),
    ("info => dma-avail=x", "1:19: error: expected a number, found 'x'"),
    ("info => iova=0x1000", "1:14: error: expected a range START-END or START+SIZE, found '0x1000'"),
    ("info => argsz=1 argsz=2", "1:17: error: expected at most one argsz=, found 'argsz=2'"),
    ("info => maybe", "1:9: error: expected ok, an errno, error or key=value fields, found 'maybe'"),
    ("extension type1 => yes", "1:20: error: expected a number, an errno or error, found 'yes'"),
    ("extension type1 => ok", "1:20: error: expected a number, an errno or error, found 'ok'"),
    ("extension type1 => 1 1", "1:22: error: expected end of line, found '1'"),
    ("extension type1 => 99999999999999999999", "1:20: error: expected a value that fits in 64 bits, found '99999999999999999999'"),
])
func badStatement(text: String, expected: String) {
    #expect(diagnostics(text) == (expected.isEmpty ? [] : ["t.trace:" + expected]))
}

@Test("iommu and kernel after the first operation are errors naming that operation's line", arguments: [
    ("info\niommu type1", "t.trace:2:1: error: expected iommu before the first operation, found it after the operation on line 1"),
    ("# c\nkernel 6.1\nmap iova=0 vaddr=0 size=4K\n\n  kernel 6.1",
     "t.trace:5:3: error: expected kernel before the first operation, found it after the operation on line 3"),
])
func setupAfterOperation(text: String, expected: String) {
    // The bad map still counts as the first operation.
    #expect(diagnostics(text).last == expected)
}

@Test("every error in a file is reported, in order, one per line")
func severalErrors() {
    let text = """
        iommu type1v2
        memlock lots
        domain d0 pgsizes=4K
        map iova=zz vaddr=0 size=4K prot=rw => ok
        map iova=0 vaddr=0 size=4K prot=rw => ok
        unmap iova=0 => ok
        frob
        info => dma-avail=1 dma-avail=2
        check mappings=1 ptes=none
        """
    #expect(diagnostics(text) == [
        "t.trace:2:9: error: expected a number or unlimited, found 'lots'",
        "t.trace:4:10: error: expected a number, found 'zz'",
        "t.trace:6:14: error: expected size=, found '=>'",
        "t.trace:7:1: error: expected one of \(verbList), found 'frob'",
        "t.trace:8:21: error: expected at most one dma-avail=, found 'dma-avail=2'",
        "t.trace:9:18: error: expected only one of locked=, mappings=, ptes=, found 'ptes=none'",
    ])
}

@Test("a ParseFailure prints its diagnostics one per line")
func failureDescription() {
    guard case .failure(let f) = parseTrace("frob\ninfo\nmemlock x\n", file: "a/b.trace") else {
        Issue.record("parsed")
        return
    }
    #expect(f.diagnostics.map(\.line) == [1, 3])
    #expect(f.diagnostics[1] == Diagnostic(file: "a/b.trace", line: 3, column: 9, message: "expected a number or unlimited, found 'x'"))
    #expect(f.description == "a/b.trace:1:1: error: expected one of \(verbList), found 'frob'\na/b.trace:3:9: error: expected a number or unlimited, found 'x'")
}

@Test("a quoted word longer than 60 characters is cut in the message")
func longWordQuoted() {
    let word = String(repeating: "x", count: 100)
    #expect(diagnostics("memlock " + word) == ["t.trace:1:9: error: expected a number or unlimited, found '\(String(repeating: "x", count: 60))...'"])
}

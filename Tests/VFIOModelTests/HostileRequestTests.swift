import Testing
import VFIOCore
@testable import VFIOModel

// The model under hostile requests: every u64 corner of MAP and UNMAP, the
// limits at 0 and at their maximum, odd page-size bitmaps and one-page
// apertures. Nothing traps, and the model's invariants hold after every call.
//
// The expected answers come from two places:
//
// - `handMapCases` and `handUnmapCases` (below) are written by hand, one
//   case at a time, from docs/TYPE1_RULES.md §3.1 and §4.2, with the step that
//   decides each one. They are the independent statement: in particular
//   they pin the corners where the order of two checks decides the errno
//   (a wrap before the alignment or the prot rule on the newest kernel).
// - The cross products over every corner (`mapCorners`, `vaddrOnlyCorners`,
//   `unmapCorners`) get their answers from `kernelMapAnswer` and
//   `kernelUnmapAnswer`, a compact restatement of the same check order the
//   model follows:
//
//   map, 6.1 and 6.12:  size 0 / misaligned → EINVAL; wrap → EINVAL;
//                       outside every valid range → EINVAL; unpinnable → EFAULT
//   map, newest:        size 0 → EINVAL; wrap → EOVERFLOW; misaligned → EINVAL;
//                       outside → EINVAL; unpinnable → EFAULT
//   unmap:              misaligned iova, size 0 or misaligned → EINVAL;
//                       wrap → EINVAL (EOVERFLOW newest)
//
//   That restatement is not an independent oracle for the order (a mistake
//   made in both would pass); it covers thousands of combinations the
//   hand-written tables cannot, and checks that none traps or breaks an
//   invariant.

private let page: UInt64 = 4096
private let top: UInt64 = .max - page + 1              // 2^64 - page

/// Addresses at the corners of the u64 space and of the default domain.
let hostileAddresses: [UInt64] = [
    0, page, 0xFEE0_0000, 0xFFFF_FFFF_F000, 0x1_0000_0000_0000, 1 << 63,
    top - page, top, .max, 0x7F00_0000_0000,
]
/// Sizes at the corners: 0, below a page, a page, two, half the space,
/// 2^64 - 2 pages, 2^64 - page, 2^64 - 1.
let hostileSizes: [UInt64] = [0, 1, page - 1, page, 2 * page, 1 << 63, top - page, top, .max]

let hostileVersions = KernelProfile.known
/// The versions with UNMAP_ALL and VFIO_UPDATE_VADDR (5.12 on).
let hostileVaddrVersions = KernelProfile.known.filter { KernelProfile($0).hasUnmapAllAndVaddr }

/// Low memory at 0x7f0000000000 (16 MiB) and the top page-aligned MiB of the
/// address space, both physically contiguous.
func hostileContainer(_ version: KernelVersion, domain: DomainSpec = .default, memlock: UInt64? = nil,
                      capIPCLock: Bool = false, entryLimit: UInt32 = 65535) -> Type1Container {
    var c = Type1Container(profile: KernelProfile(version))
    c.memlock = memlock
    c.capIPCLock = capIPCLock
    c.dmaEntryLimit = entryLimit
    _ = c.memory.add(Spec(vaddr: 0x7F00_0000_0000, size: 16 << 20, layout: .contiguous(base: 1 << 32)))
    _ = c.memory.add(Spec(vaddr: .max - (1 << 20) + 1, size: 1 << 20, layout: .contiguous(base: 1 << 40)))
    _ = c.groupSetContainer(domain)
    _ = c.setIOMMU(.type1v2)
    return c
}

/// The kernel's answer to MAP_DMA's argument checks (the same with and
/// without VADDR), or nil when the arguments pass.
func kernelMapArgumentAnswer(iova: UInt64, vaddr: UInt64, size: UInt64, _ version: KernelVersion) -> Errno? {
    let newest = KernelProfile(version).overflowSeries
    if size == 0 { return .EINVAL }
    let wraps = iova.addingReportingOverflow(size - 1).overflow || vaddr.addingReportingOverflow(size - 1).overflow
    if newest && wraps { return .EOVERFLOW }
    if (size | iova | vaddr) & (page - 1) != 0 { return .EINVAL }
    if wraps { return .EINVAL }
    return nil
}

/// The kernel's answer to MAP_DMA (read/write) on a fresh container built
/// by `hostileContainer` with the default domain and no limit.
func kernelMapAnswer(iova: UInt64, vaddr: UInt64, size: UInt64, _ version: KernelVersion) -> Errno? {
    if let e = kernelMapArgumentAnswer(iova: iova, vaddr: vaddr, size: size, version) { return e }
    let last = iova + (size - 1)
    // The default domain's valid ranges: its 48-bit aperture minus the MSI window.
    let valid: [ClosedRange<UInt64>] = [0...0xFEDF_FFFF, 0xFEF0_0000...0xFFFF_FFFF_FFFF]
    if !valid.contains(where: { $0.contains(iova) && $0.contains(last) }) { return .EINVAL }
    let memory: [ClosedRange<UInt64>] = [0x7F00_0000_0000...(0x7F00_0000_0000 + (16 << 20) - 1), (.max - (1 << 20) + 1)...UInt64.max]
    let vlast = vaddr + (size - 1)
    if !memory.contains(where: { $0.contains(vaddr) && $0.contains(vlast) }) { return .EFAULT }
    return nil
}

/// The kernel's answer to UNMAP_DMA on a container without mappings: the
/// size written back (0), or the errno.
func kernelUnmapAnswer(iova: UInt64, size: UInt64, _ version: KernelVersion) -> Result<UInt64, Errno> {
    if iova & (page - 1) != 0 || size == 0 || size & (page - 1) != 0 { return .failure(.EINVAL) }
    if iova.addingReportingOverflow(size - 1).overflow {
        return .failure(KernelProfile(version).overflowErrno)
    }
    return .success(0)
}

extension Type1Container {
    /// Both "no trap" and "nothing broken": a broken invariant is a failure.
    func expectIntact(_ what: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) {
        let problem = _checkInvariants()
        #expect(problem == nil, "\(what()): \(problem?.detail ?? "")", sourceLocation: sourceLocation)
    }
}

/// A domain bitmap with sizes below 4K, and the entries one 4K page gets.
let smallBitmapCases: [(UInt64, [UInt64: UInt64])] = [
    (0x1, [1: 4096]),
    (0x800, [0x800: 2]),
    (0x1 | 0x1000 | 0x20_0000, [0x1000: 1]),
    (0xFFF, [0x800: 2]),
]

/// One MAP on a fresh `hostileContainer` (default domain: 4K/2M/1G, a
/// 48-bit aperture minus the MSI window 0xfee00000+1M; memory: 16 MiB at
/// 0x7f0000000000 and the top MiB of the address space), with the kernel's
/// answer on 6.1/6.12 and on the newest kernel, written by hand from
/// docs/TYPE1_RULES.md §3.1 (the step that decides is in `rule`).
struct HandMapCase: Sendable, CustomTestStringConvertible {
    var rule: String
    var flags: MapDMA.Flags
    var iova: UInt64
    var vaddr: UInt64
    var size: UInt64
    var old: Errno?
    var newest: Errno?
    var testDescription: String { rule }
}

private let low: UInt64 = 0x7F00_0000_0000
private let high: UInt64 = .max - (1 << 20) + 1
private let rw: MapDMA.Flags = [.read, .write]

let handMapCases: [HandMapCase] = [
    HandMapCase(rule: "step 4: size 0 is EINVAL", flags: rw, iova: 1 << 30, vaddr: low, size: 0, old: .EINVAL, newest: .EINVAL),
    HandMapCase(rule: "step 4 before 6: no access flags and size 0 is EINVAL", flags: [], iova: 1 << 30, vaddr: low, size: 0, old: .EINVAL, newest: .EINVAL),
    HandMapCase(rule: "step 5: iova + size - 1 wraps", flags: rw, iova: 0xFFFF_FFFF_FFFF_F000, vaddr: low, size: 0x2000, old: .EINVAL, newest: .EOVERFLOW),
    HandMapCase(rule: "step 5: vaddr + size - 1 wraps", flags: rw, iova: 1 << 30, vaddr: 0xFFFF_FFFF_FFFF_F000, size: 0x2000, old: .EINVAL, newest: .EOVERFLOW),
    HandMapCase(rule: "step 5 before 7: a misaligned iova that wraps is EOVERFLOW on the newest kernel", flags: rw, iova: 0xFFFF_FFFF_FFFF_F800, vaddr: low, size: 0x1000, old: .EINVAL, newest: .EOVERFLOW),
    HandMapCase(rule: "step 5 before 7: a misaligned size that wraps is EOVERFLOW on the newest kernel", flags: rw, iova: 0xFFFF_FFFF_FFFF_F000, vaddr: low, size: 0x1800, old: .EINVAL, newest: .EOVERFLOW),
    HandMapCase(rule: "step 5 before 6: no access flags with a wrapping iova is EOVERFLOW on the newest kernel", flags: [], iova: 0xFFFF_FFFF_FFFF_F000, vaddr: low, size: 0x2000, old: .EINVAL, newest: .EOVERFLOW),
    HandMapCase(rule: "step 6: no access flags is EINVAL", flags: [], iova: 1 << 30, vaddr: low, size: 0x1000, old: .EINVAL, newest: .EINVAL),
    HandMapCase(rule: "step 6: VADDR together with READ is EINVAL", flags: [.vaddr, .read], iova: 1 << 30, vaddr: low, size: 0x1000, old: .EINVAL, newest: .EINVAL),
    HandMapCase(rule: "step 7: a misaligned iova is EINVAL", flags: rw, iova: (1 << 30) + 0x800, vaddr: low, size: 0x1000, old: .EINVAL, newest: .EINVAL),
    HandMapCase(rule: "step 7: a misaligned vaddr is EINVAL", flags: rw, iova: 1 << 30, vaddr: low + 0x800, size: 0x1000, old: .EINVAL, newest: .EINVAL),
    HandMapCase(rule: "step 8: VADDR with no mapping to update is ENOENT", flags: .vaddr, iova: 1 << 30, vaddr: low, size: 0x1000, old: .ENOENT, newest: .ENOENT),
    HandMapCase(rule: "step 5 before 8: VADDR with a wrapping iova", flags: .vaddr, iova: 0xFFFF_FFFF_FFFF_F000, vaddr: low, size: 0x2000, old: .EINVAL, newest: .EOVERFLOW),
    HandMapCase(rule: "step 10: the page ending at 2^64-1 lies outside the 48-bit aperture", flags: rw, iova: 0xFFFF_FFFF_FFFF_F000, vaddr: low, size: 0x1000, old: .EINVAL, newest: .EINVAL),
    HandMapCase(rule: "step 10: inside the MSI window is EINVAL", flags: rw, iova: 0xFEE0_0000, vaddr: low, size: 0x1000, old: .EINVAL, newest: .EINVAL),
    HandMapCase(rule: "step 10: across the MSI window is EINVAL", flags: rw, iova: 0xFED0_0000, vaddr: low, size: 2 << 20, old: .EINVAL, newest: .EINVAL),
    HandMapCase(rule: "step 10: one page past the aperture is EINVAL", flags: rw, iova: 0x1_0000_0000_0000, vaddr: low, size: 0x1000, old: .EINVAL, newest: .EINVAL),
    HandMapCase(rule: "ok: right below the MSI window", flags: rw, iova: 0xFED0_0000, vaddr: low, size: 1 << 20, old: nil, newest: nil),
    HandMapCase(rule: "ok: right above the MSI window", flags: rw, iova: 0xFEF0_0000, vaddr: low, size: 0x1000, old: nil, newest: nil),
    HandMapCase(rule: "ok: the last page of the aperture", flags: rw, iova: 0xFFFF_FFFF_F000, vaddr: low, size: 0x1000, old: nil, newest: nil),
    HandMapCase(rule: "ok: the top MiB of the process's address space", flags: rw, iova: 1 << 30, vaddr: high, size: 1 << 20, old: nil, newest: nil),
    HandMapCase(rule: "§3.2: a vaddr with no memory behind it is EFAULT", flags: rw, iova: 1 << 30, vaddr: 0x1000, size: 0x1000, old: .EFAULT, newest: .EFAULT),
    HandMapCase(rule: "§3.2: a range that runs off the end of its memory is EFAULT", flags: rw, iova: 1 << 30, vaddr: low + (16 << 20) - 0x1000, size: 0x2000, old: .EFAULT, newest: .EFAULT),
]

/// One UNMAP on a fresh `hostileContainer` (no mappings), with the
/// kernel's answer on 6.1/6.12 and on the newest kernel, written by hand
/// from docs/TYPE1_RULES.md §4.2 and §4.4.
struct HandUnmapCase: Sendable, CustomTestStringConvertible {
    var rule: String
    var iova: UInt64
    var size: UInt64
    var old: Result<UInt64, Errno>
    var newest: Result<UInt64, Errno>
    var testDescription: String { rule }
}

let handUnmapCases: [HandUnmapCase] = [
    HandUnmapCase(rule: "step 3: a misaligned iova is EINVAL", iova: 0x800, size: 0x1000, old: .failure(.EINVAL), newest: .failure(.EINVAL)),
    HandUnmapCase(rule: "step 4: size 0 is EINVAL", iova: 1 << 30, size: 0, old: .failure(.EINVAL), newest: .failure(.EINVAL)),
    HandUnmapCase(rule: "step 4: a misaligned size is EINVAL", iova: 1 << 30, size: 0x1800, old: .failure(.EINVAL), newest: .failure(.EINVAL)),
    HandUnmapCase(rule: "step 3 before 4: a misaligned iova with a wrapping size is EINVAL", iova: 0x800, size: .max, old: .failure(.EINVAL), newest: .failure(.EINVAL)),
    HandUnmapCase(rule: "step 4: a misaligned size is EINVAL before the wrap", iova: 0xFFFF_FFFF_FFFF_F000, size: 0x1800, old: .failure(.EINVAL), newest: .failure(.EINVAL)),
    HandUnmapCase(rule: "step 4: iova + size - 1 wraps", iova: 0x2000, size: 0xFFFF_FFFF_FFFF_F000, old: .failure(.EINVAL), newest: .failure(.EOVERFLOW)),
    HandUnmapCase(rule: "step 4: two pages from the top page wrap", iova: 0xFFFF_FFFF_FFFF_F000, size: 0x2000, old: .failure(.EINVAL), newest: .failure(.EOVERFLOW)),
    HandUnmapCase(rule: "§4.4: a range ending exactly at 2^64-1 does not wrap; nothing matched, size 0", iova: 0x1000, size: 0xFFFF_FFFF_FFFF_F000, old: .success(0), newest: .success(0)),
    HandUnmapCase(rule: "§4.4: the top page, nothing mapped: size 0", iova: 0xFFFF_FFFF_FFFF_F000, size: 0x1000, old: .success(0), newest: .success(0)),
    HandUnmapCase(rule: "§4.4: nothing mapped there: success with size 0", iova: 1 << 30, size: 2 << 20, old: .success(0), newest: .success(0)),
]

@Suite("hostile requests")
struct HostileRequestTests {
    /// The hand-written cases' kernels: VADDR exists (5.12 on); "newest" is
    /// from the overflow series on (v6.18).
    static let handVersions = [KernelVersion(6, 1), KernelVersion(6, 12), KernelVersion(6, 18), KernelVersion(7, 3)]
    static let overflowSeries = KernelVersion(6, 18)

    @Test("MAP gets the answer written by hand from TYPE1_RULES §3.1, on 6.1, 6.12 and the newest kernels", arguments: handMapCases)
    func handWrittenMap(_ want: HandMapCase) {
        for version in Self.handVersions {
            var c = hostileContainer(version)
            let got = c.mapDMA(MapDMA(flags: want.flags, vaddr: want.vaddr, iova: want.iova, size: want.size)).errno
            let expected = version >= Self.overflowSeries ? want.newest : want.old
            #expect(got == expected, "\(want.rule) on \(version)")
            #expect(c.mappingCount == (expected == nil ? 1 : 0))
            c.expectIntact("\(want.rule) on \(version)")
        }
    }

    @Test("UNMAP gets the answer written by hand from TYPE1_RULES §4.2, on 6.1, 6.12 and the newest kernels", arguments: handUnmapCases)
    func handWrittenUnmap(_ want: HandUnmapCase) {
        for version in Self.handVersions {
            var c = hostileContainer(version)
            let got = c.unmapDMA(UnmapDMA(flags: [], iova: want.iova, size: want.size))
            #expect(got == (version >= Self.overflowSeries ? want.newest : want.old), "\(want.rule) on \(version)")
            c.expectIntact("\(want.rule) on \(version)")
        }
    }

    @Test("MAP at every u64 corner of iova, vaddr and size gets the kernel's errno, per version",
          arguments: hostileVersions)
    func mapCorners(version: KernelVersion) {
        let clean = hostileContainer(version)
        for iova in hostileAddresses {
            for vaddr in hostileAddresses + [.max - (1 << 20) + 1] {
                for size in hostileSizes {
                    var c = clean
                    let got = c.mapDMA(MapDMA(flags: [.read, .write], vaddr: vaddr, iova: iova, size: size)).errno
                    let want = kernelMapAnswer(iova: iova, vaddr: vaddr, size: size, version)
                    #expect(got == want, "map iova=\(formatHex(iova)) vaddr=\(formatHex(vaddr)) size=\(formatHex(size)) on \(version)")
                    #expect(c.mappingCount == (want == nil ? 1 : 0))
                    c.expectIntact("after map iova=\(formatHex(iova)) vaddr=\(formatHex(vaddr)) size=\(formatHex(size))")
                }
            }
        }
    }

    @Test("a VADDR-only MAP at every u64 corner fails as the kernel's does, before and after the wrap check",
          arguments: hostileVaddrVersions)
    func vaddrOnlyCorners(version: KernelVersion) {
        let clean = hostileContainer(version)
        for iova in hostileAddresses {
            for size in hostileSizes {
                var c = clean
                let got = c.mapDMA(MapDMA(flags: .vaddr, vaddr: 0x7F00_0000_0000, iova: iova, size: size)).errno
                // The argument checks of a read/write map, then no mapping to update: ENOENT.
                let want = kernelMapArgumentAnswer(iova: iova, vaddr: 0x7F00_0000_0000, size: size, version) ?? .ENOENT
                #expect(got == want, "map vaddr-only iova=\(formatHex(iova)) size=\(formatHex(size)) on \(version)")
                c.expectIntact("after map vaddr-only iova=\(formatHex(iova)) size=\(formatHex(size))")
            }
        }
    }

    @Test("UNMAP at every u64 corner of iova and size gets the kernel's answer, per version",
          arguments: hostileVersions)
    func unmapCorners(version: KernelVersion) {
        let clean = hostileContainer(version)
        for iova in hostileAddresses {
            for size in hostileSizes {
                var c = clean
                let got = c.unmapDMA(UnmapDMA(flags: [], iova: iova, size: size))
                #expect(got == kernelUnmapAnswer(iova: iova, size: size, version),
                        "unmap iova=\(formatHex(iova)) size=\(formatHex(size)) on \(version)")
                c.expectIntact("after unmap iova=\(formatHex(iova)) size=\(formatHex(size))")
            }
        }
    }

    @Test("UNMAP_ALL with any iova or size other than 0 is EINVAL; with 0 and 0 it empties the container",
          arguments: hostileVaddrVersions)
    func unmapAllCorners(version: KernelVersion) {
        for iova in hostileAddresses {
            for size in hostileSizes {
                var c = hostileContainer(version)
                #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0x7F00_0000_0000, iova: 1 << 30, size: 2 << 20)).errno == nil)
                let got = c.unmapDMA(UnmapDMA(flags: .all, iova: iova, size: size))
                if iova != 0 || size != 0 {
                    #expect(got.errno == .EINVAL, "unmap-all iova=\(formatHex(iova)) size=\(formatHex(size))")
                    #expect(c.mappingCount == 1)
                } else {
                    #expect(got == .success(2 << 20))
                    #expect(c.mappingCount == 0 && c.lockedBytes == 0)
                }
                c.expectIntact("after unmap-all iova=\(formatHex(iova)) size=\(formatHex(size))")
            }
        }
    }

    @Test("the page ending at 2^64-1 maps; UNMAP and UNMAP_ALL remove it since 6.18; before, a walk reaches it only from a lower mapping above it in the tree",
          arguments: hostileVaddrVersions)
    func topPage(version: KernelVersion) {
        let domain = DomainSpec(name: "d0", aperture: .all, reserved: [])
        var c = hostileContainer(version, domain: domain)
        #expect(c.mapDMA(MapDMA(flags: [.read, .write], vaddr: top, iova: top, size: page)).errno == nil)
        let newest = KernelProfile(version).overflowSeries
        if newest {
            // Before 6.18 the search does not see it (map-top-overlap-6.12).
            #expect(c.mapDMA(MapDMA(flags: [.read, .write], vaddr: top - page, iova: top - page, size: 2 * page)).errno == .EEXIST)
        }
        c.expectIntact("after mapping the top page")
        #expect(c.unmapDMA(UnmapDMA(flags: [], iova: top, size: page)) == .success(newest ? page : 0))
        #expect(c.mappingCount == (newest ? 0 : 1))
        c.expectIntact("after unmapping the top page")
        // Before 6.18 the tree searches cannot see a mapping ending at
        // 2^64-1 (`dma->iova + dma->size` is 0): UNMAP_ALL alone misses it...
        #expect(c.unmapDMA(UnmapDMA(flags: .all, iova: 0, size: 0)) == .success(0))
        #expect(c.mappingCount == (newest ? 0 : 1))
        c.expectIntact("after unmap-all")
        // ...and the top page, now the tree's root, hides a lower mapping
        // linked below it (vfio_find_dma_first_node turns right at it)...
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0x7F00_0000_0000, iova: 1 << 30, size: 2 << 20)).errno == nil)
        #expect(c.unmapDMA(UnmapDMA(flags: .all, iova: 0, size: 0)) == .success(newest ? 2 << 20 : 0))
        #expect(c.mappingCount == (newest ? 0 : 2))
        c.expectIntact("after the second unmap-all")
        if !newest {
            // ...but a walk that starts at a lower mapping above it in the
            // tree goes on to it. Emptied first by release, then the lower
            // mapping first (the root), the top page second.
            var d = hostileContainer(version, domain: domain)
            #expect(d.mapDMA(MapDMA(flags: [.read], vaddr: 0x7F00_0000_0000, iova: 1 << 30, size: 2 << 20)).errno == nil)
            #expect(d.mapDMA(MapDMA(flags: [.read, .write], vaddr: top, iova: top, size: page)).errno == nil)
            #expect(d.unmapDMA(UnmapDMA(flags: .all, iova: 0, size: 0)) == .success((2 << 20) + page))
            #expect(d.mappingCount == 0)
            // vfio_unmap_unpin's walk to iova + size (0) does nothing: the
            // top page stays pinned and charged.
            #expect(d.lockedBytes == page)
            d.expectIntact("after unmap-all from the lower mapping")
        }
    }

    @Test("a mapping of 2^64 minus a page from page 1, in an aperture of all 2^64, maps, counts and unmaps",
          arguments: hostileVersions)
    func almostEverything(version: KernelVersion) {
        var c = Type1Container(profile: KernelProfile(version))
        _ = c.memory.add(Spec(vaddr: page, size: top, layout: .contiguous(base: page)))
        _ = c.groupSetContainer(DomainSpec(name: "d0", aperture: .all, reserved: []))
        _ = c.setIOMMU(.type1v2)
        #expect(c.mapDMA(MapDMA(flags: [.read, .write], vaddr: page, iova: page, size: top)).errno == nil)
        #expect(c.lockedBytes == top)
        c.expectIntact("after the big map")
        #expect(c.unmapDMA(UnmapDMA(flags: [], iova: 0, size: page)) == .success(0))
        // iova + size wraps to 0: before the overflow series such an unmap found nothing.
        let newest = KernelProfile(version).overflowSeries
        #expect(c.unmapDMA(UnmapDMA(flags: [], iova: page, size: top)) == .success(newest ? top : 0))
        c.expectIntact("after the big unmap")
    }

    // MARK: Limits at their corners

    @Test("a memlock of 0 refuses the first normal page with ENOMEM; unpinnable memory is still EFAULT",
          arguments: hostileVersions)
    func memlockZero(version: KernelVersion) {
        var c = hostileContainer(version, memlock: 0)
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0x7F00_0000_0000, iova: 1 << 30, size: page)).errno == .ENOMEM)
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0x1000, iova: 1 << 30, size: page)).errno == .EFAULT)
        #expect(c.mappingCount == 0 && c.lockedBytes == 0)
        c.expectIntact("memlock 0")
        var d = hostileContainer(version, memlock: 0, capIPCLock: true)
        #expect(d.mapDMA(MapDMA(flags: [.read], vaddr: 0x7F00_0000_0000, iova: 1 << 30, size: 16 << 20)).errno == nil)
        #expect(d.lockedBytes == 16 << 20)
        d.expectIntact("memlock 0 with CAP_IPC_LOCK")
    }

    @Test("a memlock of unlimited or 2^64-1 bytes takes every page there is", arguments: [nil, UInt64.max, top])
    func memlockUnlimited(limit: UInt64?) {
        var c = hostileContainer(KernelVersion(7, 3), memlock: limit)
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0x7F00_0000_0000, iova: 1 << 30, size: 16 << 20)).errno == nil)
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: .max - (1 << 20) + 1, iova: 1 << 31, size: 1 << 20)).errno == nil)
        #expect(c.lockedBytes == 17 << 20)
        c.expectIntact("memlock \(limit.map { formatHex($0) } ?? "unlimited")")
    }

    @Test("a dma_entry_limit of 0 is ENOSPC at once; 2^32-1 counts down from 2^32-1", arguments: [UInt32(0), .max])
    func entryLimit(limit: UInt32) {
        var c = hostileContainer(KernelVersion(7, 3), entryLimit: limit)
        let got = c.mapDMA(MapDMA(flags: [.read], vaddr: 0x7F00_0000_0000, iova: 1 << 30, size: page)).errno
        #expect(got == (limit == 0 ? .ENOSPC : nil))
        #expect(c.dmaAvail == (limit == 0 ? 0 : limit - 1))
        #expect(c.unmapDMA(UnmapDMA(flags: .all, iova: 0, size: 0)) == .success(limit == 0 ? 0 : page))
        #expect(c.dmaAvail == limit)
        c.expectIntact("dma_entry_limit \(limit)")
    }

    // MARK: Page-size bitmaps

    @Test("sizes below 4K in a domain's bitmap leave the container at 4K; the domain maps with its own sizes",
          arguments: smallBitmapCases)
    func smallPageSizes(bitmap: UInt64, ptes: [UInt64: UInt64]) {
        var c = hostileContainer(KernelVersion(7, 3), domain: DomainSpec(name: "d0", pgsizes: PageSizes(rawValue: bitmap)))
        #expect(c.pgsizeBitmap & (page - 1) == 0 && c.pgsizeBitmap & page != 0)
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0x7F00_0000_0000, iova: 1 << 30, size: page)).errno == nil)
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0x7F00_0000_0800, iova: 2 << 30, size: page)).errno == .EINVAL)
        #expect(c.pageTableEntries(group: "d0") == ptes)
        c.expectIntact("bitmap \(formatHex(bitmap))")
        #expect(c.unmapDMA(UnmapDMA(flags: [], iova: 1 << 30, size: page)) == .success(page))
        #expect(c.pageTableEntries(group: "d0") == [:])
        c.expectIntact("bitmap \(formatHex(bitmap)) after unmap")
    }

    @Test("a bitmap of only 2^63 makes 2^63 the smallest page: smaller requests are EINVAL")
    func hugestPageOnly() {
        var c = hostileContainer(KernelVersion(7, 3),
                                 domain: DomainSpec(name: "d0", pgsizes: PageSizes(rawValue: 1 << 63), aperture: .all, reserved: []))
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0x7F00_0000_0000, iova: 1 << 30, size: page)).errno == .EINVAL)
        #expect(c.unmapDMA(UnmapDMA(flags: [], iova: 1 << 63, size: 1 << 63)) == .success(0))
        #expect(c.unmapDMA(UnmapDMA(flags: [], iova: 0, size: page)).errno == .EINVAL)
        c.expectIntact("bitmap 2^63")
    }

    @Test("two domains whose bitmaps do not intersect leave an empty container bitmap: MAP does not trap, the smallest page counts as 4K and each domain maps with its own sizes")
    func disjointBitmaps() {
        var c = hostileContainer(KernelVersion(7, 3), domain: DomainSpec(name: "d0", pgsizes: PageSizes([4096])))
        #expect(c.groupSetContainer(DomainSpec(name: "d1", pgsizes: PageSizes([2 << 20]))).errno == nil)
        #expect(c.pgsizeBitmap == 0)
        // 2M at a 2M-aligned IOVA and frame: 512 4K entries in d0, one 2M entry in d1.
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0x7F00_0000_0000, iova: 1 << 30, size: 2 << 20)).errno == nil)
        #expect(c.pageTableEntries(group: "d0") == [4096: 512])
        #expect(c.pageTableEntries(group: "d1") == [2 << 20: 1])
        #expect(c.lockedBytes == 2 << 20)
        // 4K passes the container's alignment check (4K) but not d1's smallest page: EINVAL, nothing kept.
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0x7F00_0020_0000, iova: 2 << 30, size: page)).errno == .EINVAL)
        #expect(c.mappingCount == 1 && c.lockedBytes == 2 << 20)
        #expect(c.unmapDMA(UnmapDMA(flags: [], iova: 1 << 30, size: 2 << 20)) == .success(2 << 20))
        #expect(c.mappingCount == 0 && c.lockedBytes == 0 && c.pageTableEntries(group: nil) == [:])
        c.expectIntact("disjoint bitmaps")
    }

    // MARK: Apertures of one page

    @Test("an aperture of one page, at 0, in the middle or at the top, holds that page and nothing else",
          arguments: [UInt64(0), 1 << 40, top])
    func onePageAperture(start: UInt64) {
        for version in hostileVersions {
            let domain = DomainSpec(name: "d0", aperture: IOVARange(start: start, last: start + (page - 1)), reserved: [])
            var c = hostileContainer(version, domain: domain)
            func m(_ iova: UInt64, _ size: UInt64) -> Errno? {
                c.mapDMA(MapDMA(flags: [.read, .write], vaddr: 0x7F00_0000_0000, iova: iova, size: size)).errno
            }
            let newest = KernelProfile(version).overflowSeries
            if start != 0 { #expect(m(start - page, page) == .EINVAL) }
            if start != top { #expect(m(start + page, page) == .EINVAL) }
            #expect(m(start, 2 * page) == (start == top ? (newest ? .EOVERFLOW : .EINVAL) : .EINVAL))
            #expect(m(start, page) == nil)
            // Before 6.18 the search cannot see the top page: mapped again.
            #expect(m(start, page) == (start == top && !newest ? nil : .EEXIST))
            c.expectIntact("one-page aperture at \(formatHex(start)) on \(version)")
            let removes = start != top || newest
            #expect(c.unmapDMA(UnmapDMA(flags: [], iova: start, size: page)) == .success(removes ? page : 0))
            c.expectIntact("after unmap, one-page aperture at \(formatHex(start)) on \(version)")
        }
    }

    @Test("an aperture of one page covered by a reserved region leaves no usable IOVA: SET_IOMMU fails with EINVAL")
    func onePageApertureReserved() {
        var c = Type1Container()
        _ = c.groupSetContainer(DomainSpec(name: "d0", aperture: IOVARange(start: page, last: 2 * page - 1),
                                           reserved: [IOVARange(start: 0, last: 2 * page - 1)]))
        #expect(c.setIOMMU(.type1v2).errno == .EINVAL)
        #expect(!c.isSet)
        c.expectIntact("no usable IOVA")
    }

    // MARK: Counts past 2^64

    @Test("1-byte IOMMU pages over 2^64 bytes of mappings: the PTE count does not trap and reads as 2^64-1")
    func pteCountPastTwoTo64() {
        var c = Type1Container()
        c.capIPCLock = true
        _ = c.memory.add(Spec(vaddr: page, size: top, layout: .contiguous(base: page)))
        _ = c.groupSetContainer(DomainSpec(name: "d0", pgsizes: PageSizes(rawValue: 1), aperture: .all, reserved: []))
        _ = c.setIOMMU(.type1v2)
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: page, iova: page, size: top)).errno == nil)
        #expect(c.pageTableEntries(group: "d0") == [1: top])
        // One more page: 2^64 - 4096 + 4096 entries of one byte, which reads as 2^64-1.
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: page, iova: 0, size: page)).errno == nil)
        #expect(c.pageTableEntries(group: "d0") == [1: .max])
        #expect(c.pageTableEntries(group: nil) == [1: .max])
        c.expectIntact("2^64 entries")
    }

    @Test("1-byte IOMMU pages in two domains: each holds 2^63 entries and the total over every domain reads as 2^64-1")
    func pteTotalPastTwoTo64() {
        var c = Type1Container()
        c.capIPCLock = true
        _ = c.memory.add(Spec(vaddr: 0, size: 1 << 63, layout: .contiguous(base: 0)))
        _ = c.groupSetContainer(DomainSpec(name: "d0", pgsizes: PageSizes(rawValue: 1), aperture: .all, reserved: []))
        _ = c.groupSetContainer(DomainSpec(name: "d1", pgsizes: PageSizes(rawValue: 1), aperture: .all, reserved: [], coherent: false))
        _ = c.setIOMMU(.type1v2)
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0, iova: 0, size: 1 << 63)).errno == nil)
        #expect(c.domains.count == 2)
        #expect(c.pageTableEntries(group: "d0") == [1: 1 << 63])
        #expect(c.pageTableEntries(group: "d1") == [1: 1 << 63])
        // 2^63 + 2^63 = 2^64 entries over both domains: reads as 2^64-1, not 0.
        #expect(c.pageTableEntries(group: nil) == [1: .max])
        c.expectIntact("2^63 entries in each of two domains")
    }

    @Test("UNMAP_ALL of mappings that cover all 2^64 bytes reports the size the kernel's u64 sum gives")
    func unmapAllOfEverything() {
        var c = Type1Container()
        c.capIPCLock = true
        _ = c.memory.add(Spec(vaddr: 0, size: 1 << 63, layout: .contiguous(base: 0)))
        _ = c.groupSetContainer(DomainSpec(name: "d0", pgsizes: PageSizes([4096]), aperture: .all, reserved: []))
        _ = c.setIOMMU(.type1v2)
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0, iova: 0, size: 1 << 63)).errno == nil)
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0, iova: 1 << 63, size: 1 << 63)).errno == nil)
        // `unmapped += dma->size` in a u64: 2^63 + 2^63 is 0 in the kernel too.
        #expect(c.unmapDMA(UnmapDMA(flags: .all, iova: 0, size: 0)) == .success(0))
        #expect(c.mappingCount == 0 && c.lockedBytes == 0)
        c.expectIntact("after unmapping all 2^64 bytes")
    }

    @Test("locked memory past 2^64 bytes is not reported as 0 (the same memory mapped twice is charged twice)")
    func lockedPastTwoTo64() {
        var c = Type1Container()
        c.capIPCLock = true
        _ = c.memory.add(Spec(vaddr: 0, size: 1 << 63, layout: .contiguous(base: 0)))
        _ = c.groupSetContainer(DomainSpec(name: "d0", pgsizes: PageSizes([4096]), aperture: .all, reserved: []))
        _ = c.setIOMMU(.type1v2)
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0, iova: 0, size: 1 << 63)).errno == nil)
        #expect(c.mapDMA(MapDMA(flags: [.read], vaddr: 0, iova: 1 << 63, size: 1 << 63)).errno == nil)
        #expect(c.lockedVm == 1 << 52)
        #expect(c.lockedBytes != 0)
    }
}

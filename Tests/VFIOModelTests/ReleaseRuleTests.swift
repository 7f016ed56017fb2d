import Testing
import VFIOCore
@testable import VFIOModel

/// Each release rule, seen through the model's answers at the release
/// before it and the release it came in (and at the stable releases of its
/// backports), so a wrong release in `ReleaseRule` fails here.
@Suite("release rules")
struct ReleaseRuleTests {
    static func release(_ text: String) -> KernelVersion { KernelVersion(parsing: text)! }

    /// A model at `text` with one default group and 16 MiB of 2 MiB pages.
    static func backend(_ text: String, iommufd: Bool = false) throws -> ModelBackend {
        let b = ModelBackend(profile: KernelProfile(release(text)))
        if iommufd { try b.setContainer(.iommufd) }
        _ = try b.addMemory(MemorySpec(vaddr: 0x7F00_0000_0000, size: 16 << 20, pageSize: 2 << 20, layout: .contiguous(base: 1 << 32)))
        _ = b.attachGroup(.default)
        _ = b.setIOMMU(.type1v2)
        return b
    }

    @Test("unmap-all and update-vaddr came with 5.12: 5.11 answers 0 and EINVAL, 5.12 and 5.15 answer 1 and ok",
          arguments: [("5.10", false), ("5.11", false), ("5.11.22", false), ("5.12", true), ("5.15", true), ("5.15.0-91-generic", true)])
    func unmapAll(text: String, has: Bool) throws {
        let b = try Self.backend(text)
        #expect(b.checkExtension(.unmapAll) == .success(has ? 1 : 0))
        #expect(b.checkExtension(.updateVaddr) == .success(has ? 1 : 0))
        #expect(b.mapDMA(MapDMA(flags: [.read, .write], vaddr: 0x7F00_0000_0000, iova: 0x10_0000, size: 2 << 20)).errno == nil)
        #expect(b.unmapDMA(UnmapDMA(flags: .vaddr, iova: 0x10_0000, size: 2 << 20)).errno == (has ? nil : .EINVAL))
        #expect(b.unmapDMA(UnmapDMA(flags: .all, iova: 0, size: 0)).errno == (has ? nil : .EINVAL))
        // Before 5.12 the refusal is explained as the unknown flag it is.
        if !has {
            #expect(b.explainLastAnswer()?.hasPrefix("VFIO_DMA_UNMAP_FLAG_ALL came with 5.12; kernel \(KernelProfile(Self.release(text))) rejects unknown flags") == true)
            _ = b.unmapDMA(UnmapDMA(flags: .vaddr, iova: 0x10_0000, size: 2 << 20))
            #expect(b.explainLastAnswer()?.hasPrefix("VFIO_DMA_UNMAP_FLAG_VADDR came with 5.12; kernel \(KernelProfile(Self.release(text))) rejects unknown flags") == true)
            _ = b.mapDMA(MapDMA(flags: .vaddr, vaddr: 0x7F00_0000_0000, iova: 0x10_0000, size: 2 << 20))
            #expect(b.explainLastAnswer()?.contains("has no VFIO_DMA_MAP_FLAG_VADDR") == true)
        }
    }

    @Test("update-vaddr answers 0 before SET_IOMMU from 6.3 and 6.1.16, 1 before them",
          arguments: [("5.15", UInt32(1)), ("6.1.15", 1), ("6.1.16", 0), ("6.1", 0), ("6.2", 1), ("6.3", 0), ("6.8", 0)])
    func updateVaddrBeforeSetIOMMU(text: String, answer: UInt32) {
        let b = ModelBackend(profile: KernelProfile(Self.release(text)))
        #expect(b.checkExtension(.updateVaddr) == .success(answer))
        _ = b.attachGroup(.default)
        _ = b.setIOMMU(.type1v2)
        #expect(b.checkExtension(.updateVaddr) == .success(1), "after SET_IOMMU with no emulated group it is 1 everywhere")
    }

    @Test("the unmap walk from the first node came with 5.12", arguments: [("5.11", false), ("5.12", true), ("6.8", true)])
    func unmapWalk(text: String, walks: Bool) {
        #expect(KernelProfile(Self.release(text)).unmapWalksFromFirstNode == walks)
    }

    @Test("iommufd's compat container came with 6.2: 6.1 refuses `container iommufd`, 6.2 and 6.8 run it",
          arguments: [("6.1", false), ("6.1.150", false), ("6.2", true), ("6.8", true), ("6.8.0-49-generic", true)])
    func iommufd(text: String, has: Bool) throws {
        let b = ModelBackend(profile: KernelProfile(Self.release(text)))
        var refused = false
        do { try b.setContainer(.iommufd) } catch { refused = true }
        #expect(refused == !has)
    }

    @Test("capabilities are padded to 8 bytes from 6.6: GET_INFO asks 84+16n bytes before, 88+16n after",
          arguments: [("6.1", UInt32(116)), ("6.5", 116), ("6.6", 120), ("6.8", 120), ("6.12", 120)])
    func padding(text: String, argsz: UInt32) throws {
        let b = try Self.backend(text)
        // The default group has two IOVA ranges (the MSI window cut out).
        let probe = try #require(try? b.getInfo(argsz: IOMMUInfo.headerSize).get())
        #expect(probe.argsz == argsz)
    }

    @Test("the nesting extension answers 1 through 6.12 and 0 from 6.13", arguments: [("6.12", 1), ("6.12.38+deb12-amd64", 1), ("6.13", 0), ("6.15", 0)])
    func nesting(text: String, answer: UInt32) throws {
        #expect(try Self.backend(text).checkExtension(.nesting) == .success(answer))
    }

    @Test("the overflow series came with 6.18: a wrapping map is EINVAL on 6.17, EOVERFLOW on 6.18",
          arguments: [("6.17", Errno.EINVAL), ("6.17.13", .EINVAL), ("6.18", .EOVERFLOW), ("7.0", .EOVERFLOW)])
    func overflow(text: String, errno: Errno) throws {
        let b = try Self.backend(text)
        #expect(b.mapDMA(MapDMA(flags: [.read, .write], vaddr: 0x7F00_0000_0000, iova: 0xFFFF_FFFF_FFFF_F000, size: 2 << 20)).errno == errno)
    }

    @Test("iommufd's empty-range unmap answers 0 from 6.18 and the stable releases that took the fix, ENOENT before",
          arguments: [("6.6.116", false), ("6.6.117", true), ("6.11", false), ("6.12.38+deb12-amd64", false), ("6.12.58", false),
                      ("6.12.59", true), ("6.12.118", true), ("6.12", true), ("6.17.8", false), ("6.17.9", true), ("6.18", true)])
    func iommufdEmptyUnmap(text: String, fixed: Bool) throws {
        let b = try Self.backend(text, iommufd: true)
        #expect(b.unmapDMA(UnmapDMA(flags: [], iova: 0x10_0000, size: 4096)).errno == (fixed ? nil : .ENOENT))
    }

    @Test("iommufd's map of 2^64-4K bytes from a high vaddr: EINVAL (the length, iopt_alloc_pages) up to 6.12, EOVERFLOW (the wrap, iopt_alloc_user_pages) from 6.13",
          arguments: [("6.2", Errno.EINVAL), ("6.12", .EINVAL), ("6.12.118", .EINVAL), ("6.13", .EOVERFLOW), ("7.3", .EOVERFLOW)])
    func iommufdOverflowBeforeLength(text: String, errno: Errno) throws {
        let b = try Self.backend(text, iommufd: true)
        let huge = MapDMA(flags: [.read, .write], vaddr: 0x7F00_0000_0000, iova: 0x10_0000, size: 0xFFFF_FFFF_FFFF_F000)
        #expect(b.mapDMA(huge).errno == errno)
        // A length past SIZE_MAX - PAGE_SIZE that does not wrap is EINVAL on every release.
        #expect(b.mapDMA(MapDMA(flags: [.read, .write], vaddr: 0x800, iova: 0x10_0000, size: 0xFFFF_FFFF_FFFF_F000)).errno == .EINVAL)
    }

    @Test("a rule holds from its mainline release, and in a backported series from the backport's patch level on")
    func holds() {
        let rule = ReleaseRule.iommufdEmptyUnmap
        #expect(rule.holds(in: KernelVersion(6, 18, 0)))
        #expect(!rule.holds(in: KernelVersion(6, 12, 58)))
        #expect(rule.holds(in: KernelVersion(6, 12, 59)))
        #expect(rule.holds(in: KernelVersion(6, 12)), "6.12 without a patch level is the newest 6.12.y")
        #expect(!rule.holds(in: KernelVersion(parsing: "6.12.0-1-generic")!), "a distribution build has no known backport")
        #expect(!rule.holds(in: KernelVersion(6, 7)), "a series with no backport stays without")
    }

    @Test("every rule names its commit and a mainline release inside what the model knows")
    func table() {
        for rule in ReleaseRule.all {
            #expect(!rule.commits.isEmpty, "\(rule.name)")
            #expect(rule.mainline.isKnown && rule.mainline <= KernelVersion.newestKnown, "\(rule.name)")
            #expect(rule.backports.allSatisfy { $0.patch != nil && $0.series < rule.mainline }, "\(rule.name)")
        }
    }
}

import Foundation
import CVFIOSys
import Testing
import VFIOCore

// VFIOCore writes the numbers of include/uapi/linux/vfio.h down itself (the
// model must not depend on a C header). The kernel backend sends them to a
// real kernel, so each one must be the header's: a wrong ioctl number is an
// ENOTTY at best, another request at worst. The header's values come from
// the C shim (`cvfio_uapi_value`), since Swift imports no `_IO(...)` macro.

/// The header's value of `name`, or nil when this system's header lacks it.
func header(_ name: cvfio_uapi_name) -> UInt64? {
    let v = cvfio_uapi_value(name)
    return v < 0 ? nil : UInt64(v)
}

/// A Swift constant and the header name it stands for.
struct UAPIConstant: Sendable, CustomTestStringConvertible {
    let name: String
    let which: cvfio_uapi_name
    let swift: UInt64
    var testDescription: String { name }
}

@Suite("VFIOCore's uapi numbers are <linux/vfio.h>'s (docs/TYPE1_RULES.md §1.1)")
struct UAPITests {
    static let ioctls: [UAPIConstant] = [
        .init(name: "VFIO_GET_API_VERSION", which: CVFIO_VFIO_GET_API_VERSION, swift: UInt64(VFIO.getAPIVersion)),
        .init(name: "VFIO_CHECK_EXTENSION", which: CVFIO_VFIO_CHECK_EXTENSION, swift: UInt64(VFIO.checkExtension)),
        .init(name: "VFIO_SET_IOMMU", which: CVFIO_VFIO_SET_IOMMU, swift: UInt64(VFIO.setIOMMU)),
        .init(name: "VFIO_GROUP_GET_STATUS", which: CVFIO_VFIO_GROUP_GET_STATUS, swift: UInt64(VFIO.groupGetStatus)),
        .init(name: "VFIO_GROUP_SET_CONTAINER", which: CVFIO_VFIO_GROUP_SET_CONTAINER, swift: UInt64(VFIO.groupSetContainer)),
        .init(name: "VFIO_GROUP_UNSET_CONTAINER", which: CVFIO_VFIO_GROUP_UNSET_CONTAINER, swift: UInt64(VFIO.groupUnsetContainer)),
        .init(name: "VFIO_GROUP_GET_DEVICE_FD", which: CVFIO_VFIO_GROUP_GET_DEVICE_FD, swift: UInt64(VFIO.groupGetDeviceFD)),
        .init(name: "VFIO_IOMMU_GET_INFO", which: CVFIO_VFIO_IOMMU_GET_INFO, swift: UInt64(VFIO.iommuGetInfo)),
        .init(name: "VFIO_IOMMU_MAP_DMA", which: CVFIO_VFIO_IOMMU_MAP_DMA, swift: UInt64(VFIO.iommuMapDMA)),
        .init(name: "VFIO_IOMMU_UNMAP_DMA", which: CVFIO_VFIO_IOMMU_UNMAP_DMA, swift: UInt64(VFIO.iommuUnmapDMA)),
        .init(name: "VFIO_IOMMU_DIRTY_PAGES", which: CVFIO_VFIO_IOMMU_DIRTY_PAGES, swift: UInt64(VFIO.iommuDirtyPages)),
    ]

    static let constants: [UAPIConstant] = [
        .init(name: "VFIO_TYPE", which: CVFIO_VFIO_TYPE, swift: UInt64(VFIO.type)),
        .init(name: "VFIO_BASE", which: CVFIO_VFIO_BASE, swift: UInt64(VFIO.base)),
        .init(name: "VFIO_API_VERSION", which: CVFIO_VFIO_API_VERSION, swift: UInt64(VFIO.apiVersion)),
        // CHECK_EXTENSION arguments and SET_IOMMU types.
        .init(name: "VFIO_TYPE1_IOMMU", which: CVFIO_VFIO_TYPE1_IOMMU, swift: UInt64(Extension.type1.rawValue)),
        .init(name: "VFIO_SPAPR_TCE_IOMMU", which: CVFIO_VFIO_SPAPR_TCE_IOMMU, swift: UInt64(Extension.spaprTCE.rawValue)),
        .init(name: "VFIO_TYPE1v2_IOMMU", which: CVFIO_VFIO_TYPE1v2_IOMMU, swift: UInt64(Extension.type1v2.rawValue)),
        .init(name: "VFIO_DMA_CC_IOMMU", which: CVFIO_VFIO_DMA_CC_IOMMU, swift: UInt64(Extension.dmaCC.rawValue)),
        .init(name: "VFIO_EEH", which: CVFIO_VFIO_EEH, swift: UInt64(Extension.eeh.rawValue)),
        .init(name: "VFIO_TYPE1_NESTING_IOMMU", which: CVFIO_VFIO_TYPE1_NESTING_IOMMU, swift: UInt64(Extension.nesting.rawValue)),
        .init(name: "VFIO_SPAPR_TCE_v2_IOMMU", which: CVFIO_VFIO_SPAPR_TCE_v2_IOMMU, swift: UInt64(Extension.spaprTCEv2.rawValue)),
        .init(name: "VFIO_NOIOMMU_IOMMU", which: CVFIO_VFIO_NOIOMMU_IOMMU, swift: UInt64(Extension.noIOMMU.rawValue)),
        .init(name: "VFIO_UNMAP_ALL", which: CVFIO_VFIO_UNMAP_ALL, swift: UInt64(Extension.unmapAll.rawValue)),
        .init(name: "VFIO_UPDATE_VADDR", which: CVFIO_VFIO_UPDATE_VADDR, swift: UInt64(Extension.updateVaddr.rawValue)),
        // Request flags.
        .init(name: "VFIO_DMA_MAP_FLAG_READ", which: CVFIO_VFIO_DMA_MAP_FLAG_READ, swift: UInt64(MapDMA.Flags.read.rawValue)),
        .init(name: "VFIO_DMA_MAP_FLAG_WRITE", which: CVFIO_VFIO_DMA_MAP_FLAG_WRITE, swift: UInt64(MapDMA.Flags.write.rawValue)),
        .init(name: "VFIO_DMA_MAP_FLAG_VADDR", which: CVFIO_VFIO_DMA_MAP_FLAG_VADDR, swift: UInt64(MapDMA.Flags.vaddr.rawValue)),
        .init(name: "VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP", which: CVFIO_VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
              swift: UInt64(UnmapDMA.Flags.getDirtyBitmap.rawValue)),
        .init(name: "VFIO_DMA_UNMAP_FLAG_ALL", which: CVFIO_VFIO_DMA_UNMAP_FLAG_ALL, swift: UInt64(UnmapDMA.Flags.all.rawValue)),
        .init(name: "VFIO_DMA_UNMAP_FLAG_VADDR", which: CVFIO_VFIO_DMA_UNMAP_FLAG_VADDR, swift: UInt64(UnmapDMA.Flags.vaddr.rawValue)),
        .init(name: "VFIO_IOMMU_DIRTY_PAGES_FLAG_START", which: CVFIO_VFIO_IOMMU_DIRTY_PAGES_FLAG_START,
              swift: UInt64(DirtyPages.Flags.start.rawValue)),
        .init(name: "VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP", which: CVFIO_VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP,
              swift: UInt64(DirtyPages.Flags.stop.rawValue)),
        .init(name: "VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP", which: CVFIO_VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP,
              swift: UInt64(DirtyPages.Flags.getBitmap.rawValue)),
        // GET_INFO's flags and capability ids.
        .init(name: "VFIO_IOMMU_INFO_PGSIZES", which: CVFIO_VFIO_IOMMU_INFO_PGSIZES, swift: UInt64(IOMMUInfo.flagPgsizes)),
        .init(name: "VFIO_IOMMU_INFO_CAPS", which: CVFIO_VFIO_IOMMU_INFO_CAPS, swift: UInt64(IOMMUInfo.flagCaps)),
        .init(name: "VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE", which: CVFIO_VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
              swift: UInt64(InfoCapability.idIOVARange)),
        .init(name: "VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION", which: CVFIO_VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
              swift: UInt64(InfoCapability.idMigration)),
        .init(name: "VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL", which: CVFIO_VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
              swift: UInt64(InfoCapability.idDMAAvail)),
    ]

    @Test("each ioctl number is the header's _IO(VFIO_TYPE, VFIO_BASE + n)", arguments: ioctls)
    func ioctlNumber(_ c: UAPIConstant) throws {
        let value = try #require(header(c.which), "\(c.name) is not in this system's <linux/vfio.h>")
        #expect(c.swift == value, "\(c.name): Swift \(c.swift), header \(value)")
    }

    @Test("each extension, flag and capability id is the header's", arguments: constants)
    func constant(_ c: UAPIConstant) throws {
        let value = try #require(header(c.which), "\(c.name) is not in this system's <linux/vfio.h>")
        #expect(c.swift == value, "\(c.name): Swift \(c.swift), header \(value)")
    }

    @Test("every name the shim knows is checked, once")
    func everyNameChecked() {
        let checked = (Self.ioctls + Self.constants).map(\.which.rawValue)
        #expect(Set(checked).count == checked.count)
        #expect(Set(checked) == Set((0..<CVFIO_UAPI_COUNT.rawValue).map { $0 }))
    }

    /// The `static let name = io(n)` lines of VFIOCore's UAPI.swift, read
    /// from the source: a number added there and not to `ioctls` above would
    /// reach a kernel unchecked.
    static func ioctlsWrittenDown() throws -> [String] {
        let uapi = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Sources/VFIOCore/UAPI.swift").standardizedFileURL
        let text = try String(contentsOf: uapi, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "=" })
            guard words.count >= 4, words[0] == "public", words[1] == "static", words[2] == "let",
                  words.last?.hasPrefix("io(") == true else { return nil }
            return String(words[3])
        }
    }

    @Test("every ioctl number UAPI.swift writes down is in the list checked against the header")
    func everyIoctlChecked() throws {
        let written = try Self.ioctlsWrittenDown()
        #expect(written.count >= 11, "found \(written) in UAPI.swift")
        #expect(written.count == Self.ioctls.count, "UAPI.swift: \(written); checked: \(Self.ioctls.map(\.name))")
    }

    @Test("the request structs have the sizes VFIOCore gives their argsz")
    func structSizes() {
        #expect(MemoryLayout<vfio_iommu_type1_dma_map>.size == Int(MapDMA.structSize))
        #expect(MemoryLayout<vfio_iommu_type1_dma_unmap>.size == Int(UnmapDMA.structSize))
        #expect(MemoryLayout<vfio_bitmap>.size == 24)
        #expect(MemoryLayout<vfio_iommu_type1_info>.size == Int(IOMMUInfo.headerSize))
        #expect(MemoryLayout<vfio_iommu_type1_dirty_bitmap>.size == 8)
        #expect(MemoryLayout<vfio_iommu_type1_dirty_bitmap_get>.size == 40)
    }
}

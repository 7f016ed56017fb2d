import ScriptedSystem
import Testing
import VFIOCore
@testable import VFIOKernel

/// `container iommufd` on the kernel backend, on a scripted machine: the
/// node it opens, the fd it gives the group, the device it opens so the
/// group attaches to the compat IOAS, and the order it lets go.
@Suite("The kernel backend with an iommufd container")
struct IOMMUFDKernelTests {
    /// A host with group 7 (device 0000:00:03.0) whose ioctls record the
    /// fd `VFIO_GROUP_SET_CONTAINER` was given and the device name
    /// `VFIO_GROUP_GET_DEVICE_FD` asked for, and answer device fd 99.
    func machine(deviceOpen: Result<Int32, Errno> = .success(99)) -> (ScriptedSystemCalls, Box) {
        let sys = ScriptedSystemCalls.host(groups: [7])
        let box = Box()
        sys.ioctlAnswer = { _, request, buffer, _ in
            if request == VFIO.groupGetStatus, let buffer { buffer.storeBytes(of: UInt32(1), toByteOffset: 4, as: UInt32.self) }
            if request == VFIO.groupSetContainer, let buffer { box.containerGiven.append(buffer.load(as: Int32.self)) }
            if request == VFIO.groupGetDeviceFD, let buffer {
                box.devicesAsked.append(String(decoding: buffer.prefix { $0 != 0 }, as: UTF8.self))
                return deviceOpen
            }
            return .success(0)
        }
        return (sys, box)
    }

    final class Box: @unchecked Sendable {
        var containerGiven: [Int32] = []
        var devicesAsked: [String] = []
    }

    @Test("container iommufd opens /dev/iommu, closes /dev/vfio/vfio and gives the /dev/iommu fd to VFIO_GROUP_SET_CONTAINER")
    func opensDevIommu() throws {
        let (sys, box) = machine()
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
        try kb.setContainer(.iommufd)
        #expect(kb.containerKind == .iommufd)
        #expect(sys.log.contains("open /dev/iommu"))
        #expect(sys.log.contains("close /dev/vfio/vfio"))
        let iommuFD = try #require(sys.fds.first { $0.value == "/dev/iommu" }?.key)
        #expect(errno(kb.attachGroup(DomainSpec(name: "d0"))) == nil)
        #expect(box.containerGiven == [iommuFD])
        kb.close()
    }

    @Test("with iommufd the group's device is opened after SET_CONTAINER (that attaches it to the IOAS) and closed before UNSET_CONTAINER")
    func devicesOpenedAndClosed() throws {
        let (sys, box) = machine()
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
        try kb.setContainer(.iommufd)
        #expect(errno(kb.attachGroup(DomainSpec(name: "d0"))) == nil)
        #expect(box.devicesAsked == ["0000:00:03.0"])
        let set = "ioctl /dev/vfio/7 0x" + String(VFIO.groupSetContainer, radix: 16)
        let get = "ioctl /dev/vfio/7 0x" + String(VFIO.groupGetDeviceFD, radix: 16)
        let setAt = try #require(sys.log.firstIndex(of: set))
        let getAt = try #require(sys.log.firstIndex(of: get))
        #expect(setAt < getAt)
        #expect(errno(kb.detachGroup("d0")) == nil)
        let closeAt = try #require(sys.log.lastIndex(of: "close 99"))
        let unsetAt = try #require(sys.log.lastIndex(of: "ioctl /dev/vfio/7 0x" + String(VFIO.groupUnsetContainer, radix: 16) + " 0"))
        #expect(closeAt < unsetAt)
        kb.close()
    }

    @Test("a device that does not attach fails the attach with its errno and leaves the group out of the container")
    func deviceOpenFails() throws {
        let (sys, _) = machine(deviceOpen: .failure(.EADDRINUSE))
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
        try kb.setContainer(.iommufd)
        #expect(errno(kb.attachGroup(DomainSpec(name: "d0"))) == .EADDRINUSE)
        #expect(sys.log.last == "ioctl /dev/vfio/7 0x" + String(VFIO.groupUnsetContainer, radix: 16) + " 0")
        // Out of the container: the unset at close is not repeated.
        let unsets = sys.log.filter { $0.hasSuffix("0x" + String(VFIO.groupUnsetContainer, radix: 16) + " 0") }.count
        kb.close()
        #expect(sys.log.filter { $0.hasSuffix("0x" + String(VFIO.groupUnsetContainer, radix: 16) + " 0") }.count == unsets)
    }

    @Test("with iommufd `check mappings=` is not observable: DMA_AVAIL is always U32_MAX, so the backend asks no GET_INFO to count")
    func mappingsNotObservable() throws {
        let (sys, _) = machine()
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
        try kb.setContainer(.iommufd)
        #expect(errno(kb.attachGroup(DomainSpec(name: "d0"))) == nil)
        let before = sys.log.count
        guard case .notObservable(let why) = kb.mappingCount() else { Issue.record("mappings observed through iommufd"); kb.close(); return }
        #expect(why.contains("U32_MAX"))
        #expect(!sys.log[before...].contains { $0.hasSuffix("0x" + String(VFIO.iommuGetInfo, radix: 16)) || $0.contains("0x" + String(VFIO.iommuGetInfo, radix: 16) + " ") })
        kb.close()
    }

    @Test("type1 containers never open a device (type1 attaches at SET_IOMMU)")
    func type1OpensNoDevice() throws {
        let (sys, box) = machine()
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
        try kb.setContainer(.type1)
        #expect(errno(kb.attachGroup(DomainSpec(name: "d0"))) == nil)
        #expect(box.devicesAsked.isEmpty)
        #expect(!sys.log.contains("open /dev/iommu"))
        kb.close()
    }

    @Test("a kernel without /dev/iommu refuses container iommufd as a setup error naming the node, and keeps type1")
    func noDevIommu() throws {
        let (sys, _) = machine()
        sys.refuse["/dev/iommu"] = .ENOENT
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
        #expect(throws: BackendError.self) { try kb.setContainer(.iommufd) }
        do { try kb.setContainer(.iommufd) } catch {
            #expect(error.message.hasPrefix("cannot open /dev/iommu: ENOENT"))
        }
        #expect(kb.containerKind == .type1)
        kb.close()
    }

    @Test("the kind cannot change once a group is in the container")
    func kindBeforeGroups() throws {
        let (sys, _) = machine()
        let kb = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
        #expect(errno(kb.attachGroup(DomainSpec(name: "d0"))) == nil)
        #expect(throws: BackendError.self) { try kb.setContainer(.iommufd) }
        kb.close()
    }
}

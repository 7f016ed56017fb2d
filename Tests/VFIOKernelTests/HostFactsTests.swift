import ScriptedSystem
import Testing
import VFIOCore
@testable import VFIOKernel

/// `vfio-sim host` on scripted machines: the exact prologue each one gets.
@Suite("The host prologue")
struct HostFactsTests {
    static let header = "# This machine as a trace prologue (vfio-sim host); each comment says where the value was read."
    static let limits = [
        header,
        "kernel 6.12.38+deb12-amd64  # uname(2) release",
        "memlock 8M  # getrlimit(RLIMIT_MEMLOCK), soft limit",
        "cap-ipc-lock off  # CapEff bit 14 (/proc/self/status)",
    ]
    static let memory = [
        "# thp: madvise (/sys/kernel/mm/transparent_hugepage/enabled)",
        "# hugepages 2M: 512 total, 510 free (/sys/kernel/mm/hugepages/hugepages-2048kB)",
        "# hugepages 1G: 0 total, 0 free (/sys/kernel/mm/hugepages/hugepages-1048576kB)",
    ]
    static let limitLine = "dma-entry-limit 65535  # /sys/module/vfio_iommu_type1/parameters/dma_entry_limit"
    /// QEMU's VT-d with `aw-bits=39` (MGAW 38, SAGAW 39) and `aw-bits=48`
    /// (MGAW 47, SAGAW 39 and 48), as their sysfs `cap` reads.
    static let vtd39 = "12008c22260206\n"
    static let vtd48 = "12008c222f0606\n"
    static let msi = "0x00000000fee00000 0x00000000feefffff msi\n"

    /// A machine without VFIO: an 8 MiB memlock, no CAP_IPC_LOCK, THP on
    /// madvise, 512 2M hugepages (510 free), no IOMMU groups.
    func plain() -> ScriptedSystemCalls {
        let sys = ScriptedSystemCalls()
        sys.isRoot = false
        sys.memlockLimit = .success(8 << 20)
        sys.files["/proc/self/status"] = "Name:\tvfio-sim\nCapInh:\t0000000000000000\nCapEff:\t0000000000000000\n"
        sys.files["/sys/kernel/mm/transparent_hugepage/enabled"] = "always [madvise] never\n"
        sys.directories["/sys/kernel/mm/hugepages"] = ["hugepages-1048576kB", "hugepages-2048kB"]
        for (dir, total, free) in [("hugepages-2048kB", 512, 510), ("hugepages-1048576kB", 0, 0)] {
            sys.files["/sys/kernel/mm/hugepages/\(dir)/nr_hugepages"] = "\(total)\n"
            sys.files["/sys/kernel/mm/hugepages/\(dir)/free_hugepages"] = "\(free)\n"
        }
        sys.directories["/sys/kernel/iommu_groups"] = []
        return sys
    }

    /// `plain()` with vfio_iommu_type1 loaded and `units` in /sys/class/iommu.
    func vfioMachine(units: [String]) -> ScriptedSystemCalls {
        let sys = plain()
        sys.files["/sys/module/vfio_iommu_type1/parameters/dma_entry_limit"] = "65535\n"
        sys.directories["/sys/class/iommu"] = units
        sys.directories["/dev/vfio"] = ["vfio"]
        return sys
    }

    /// Group `number` with `device` bound to `driver`, behind the unit the
    /// link names, with these reserved regions and its /dev/vfio node.
    func bind(_ sys: ScriptedSystemCalls, group number: Int, device: String, driver: String = "vfio-pci",
              iommu link: String?, reserved: String?, node: Bool = true) {
        let dir = "/sys/kernel/iommu_groups/\(number)"
        sys.directories["/sys/kernel/iommu_groups", default: []].append(String(number))
        sys.addGroup(number, devices: [device], driver: driver)
        if let link { sys.links["\(dir)/devices/\(device)/iommu"] = link }
        if let reserved { sys.files["\(dir)/reserved_regions"] = reserved }
        if node { sys.directories["/dev/vfio", default: []].append(String(number)) }
    }

    func prologue(_ sys: ScriptedSystemCalls, probe: Bool = false) -> [String] { HostFacts.gather(sys, probe: probe).prologue }

    @Test("a machine without VFIO: its limits, the module not loaded, memory as comments, and why there is no domain")
    func noVFIO() {
        let sys = plain()
        var expected: [String] = Self.limits
        expected.append("# dma-entry-limit: vfio_iommu_type1 not loaded (default 65535)")
        expected += Self.memory
        expected.append("# no domain: /sys/kernel/iommu_groups is empty (no IOMMU enabled)")
        #expect(prologue(sys) == expected)
        sys.directories["/sys/kernel/iommu_groups"] = nil
        #expect(prologue(sys).last == "# no domain: /sys/kernel/iommu_groups does not exist (no IOMMU enabled)")
        // Nothing is opened to find this out.
        #expect(sys.log.isEmpty)
    }

    @Test("groups whose devices are bound to other drivers give no domain line, and the comment says so")
    func nothingBound() {
        let sys = vfioMachine(units: ["dmar0"])
        bind(sys, group: 0, device: "0000:00:02.0", driver: "i915", iommu: "../../devices/virtual/iommu/dmar0", reserved: Self.msi)
        bind(sys, group: 1, device: "0000:00:1f.0", driver: "lpc_ich", iommu: "../../devices/virtual/iommu/dmar0", reserved: Self.msi)
        #expect(prologue(sys).last == "# no domain: no IOMMU group has a device bound to vfio-pci (/sys/kernel/iommu_groups: 2 groups)")
    }

    @Test("two groups on a 39-bit VT-d unit: iommu=intel, every reserved range listed with its type in the comment")
    func vtd39TwoGroups() {
        let sys = vfioMachine(units: ["dmar0"])
        sys.files["/sys/class/iommu/dmar0/intel-iommu/cap"] = Self.vtd39
        bind(sys, group: 7, device: "0000:00:03.0", iommu: "../../devices/virtual/iommu/dmar0", reserved: Self.msi)
        bind(sys, group: 8, device: "0000:00:04.0", iommu: "../../devices/virtual/iommu/dmar0",
             reserved: "0x00000000000e8000 0x00000000000e8fff direct\n" + Self.msi)
        let domains: [String] = [
            "domain g7 iommu=intel reserved=0xfee00000-0xfeefffff  # group 7: 0000:00:03.0 (vfio-pci); dmar0: 39-bit (MGAW 39 bits, SAGAW 39 bits, from /sys/class/iommu/dmar0/intel-iommu/cap); reserved: msi (/sys/kernel/iommu_groups/7/reserved_regions)",
            "domain g8 iommu=intel reserved=0xe8000-0xe8fff,0xfee00000-0xfeefffff  # group 8: 0000:00:04.0 (vfio-pci); dmar0: 39-bit (MGAW 39 bits, SAGAW 39 bits, from /sys/class/iommu/dmar0/intel-iommu/cap); reserved: direct, msi (/sys/kernel/iommu_groups/8/reserved_regions)",
        ]
        let expected: [String] = Self.limits + [Self.limitLine] + Self.memory + domains
        #expect(prologue(sys) == expected)
        #expect(!sys.log.contains { $0.hasPrefix("open") || $0.hasPrefix("ioctl") })
    }

    @Test("an AMD-Vi group: iommu=amd, its MSI window and HyperTransport hole as reserved ranges")
    func amd() {
        let sys = vfioMachine(units: ["ivhd0"])
        bind(sys, group: 12, device: "0000:00:04.0", iommu: "../../devices/pci0000:00/0000:00:00.2/iommu/ivhd0",
             reserved: Self.msi + "0x000000fd00000000 0x000000ffffffffff reserved\n")
        #expect(prologue(sys).last == "domain g12 iommu=amd reserved=0xfee00000-0xfeefffff,0xfd00000000-0xffffffffff  # group 12: 0000:00:04.0 (vfio-pci); ivhd0 (the device's iommu link); reserved: msi, reserved (/sys/kernel/iommu_groups/12/reserved_regions)")
    }

    @Test("two IOMMU units: instance= is the unit's index, intel48 for the 48-bit unit")
    func twoUnits() {
        let sys = vfioMachine(units: ["dmar0", "dmar1"])
        sys.files["/sys/class/iommu/dmar0/intel-iommu/cap"] = Self.vtd39
        sys.files["/sys/class/iommu/dmar1/intel-iommu/cap"] = Self.vtd48
        bind(sys, group: 3, device: "0000:00:03.0", iommu: "../../devices/virtual/iommu/dmar1", reserved: Self.msi)
        bind(sys, group: 5, device: "0000:00:05.0", iommu: "../../devices/virtual/iommu/dmar0", reserved: Self.msi)
        #expect(Array(prologue(sys).suffix(2)) == [
            "domain g3 iommu=intel48 instance=1 reserved=0xfee00000-0xfeefffff  # group 3: 0000:00:03.0 (vfio-pci); dmar1: 48-bit (MGAW 48 bits, SAGAW 39,48 bits, from /sys/class/iommu/dmar1/intel-iommu/cap); unit 1 of dmar0,dmar1; reserved: msi (/sys/kernel/iommu_groups/3/reserved_regions)",
            "domain g5 iommu=intel instance=0 reserved=0xfee00000-0xfeefffff  # group 5: 0000:00:05.0 (vfio-pci); dmar0: 39-bit (MGAW 39 bits, SAGAW 39 bits, from /sys/class/iommu/dmar0/intel-iommu/cap); unit 0 of dmar0,dmar1; reserved: msi (/sys/kernel/iommu_groups/5/reserved_regions)",
        ])
    }

    @Test("unit indices follow the numbers in the names: dmar2 comes before dmar10")
    func naturalUnitOrder() {
        #expect(["dmar10", "dmar2", "dmar1"].sorted(by: naturalOrder) == ["dmar1", "dmar2", "dmar10"])
        let sys = vfioMachine(units: ["dmar0", "dmar10", "dmar2"])
        sys.files["/sys/class/iommu/dmar10/intel-iommu/cap"] = Self.vtd39
        bind(sys, group: 4, device: "0000:00:04.0", iommu: "../../devices/virtual/iommu/dmar10", reserved: "")
        #expect(prologue(sys).last?.hasPrefix("domain g4 iommu=intel instance=2 reserved=none  #") == true)
    }

    @Test("the VT-d width is MGAW plus one, no wider than SAGAW's deepest table; a 57-bit unit is played as intel48 and the comment says so")
    func vtdWidth() throws {
        #expect(VTdCapability(text: Self.vtd39)?.domainWidth == 39)
        #expect(VTdCapability(text: "0x" + Self.vtd48)?.domainWidth == 48)
        // MGAW 57, SAGAW 48 and 57: five levels.
        let wide = try #require(VTdCapability(text: "d2008c40780c62"))
        #expect(wide.maximumGuestAddressWidth == 57 && wide.supportedWidths == [48, 57])
        #expect(IOMMUUnit(name: "dmar0", link: "dmar0", kind: .intel, vtdCapability: wide).preset! == ("intel48", "57-bit unit played as 48 bits"))
        // MGAW 48 but SAGAW only three levels: 39 bits.
        #expect(VTdCapability(raw: 0x2f << 16 | 0x2 << 8).domainWidth == 39)
        #expect(VTdCapability(text: "not hex") == nil && VTdCapability(text: "") == nil)
    }

    @Test("the unit's kind comes from the iommu link: dmar, ivhd, a virtio device, arm-smmu-v3", arguments: [
        ("../../devices/virtual/iommu/dmar0", "intel"),
        ("../../devices/pci0000:00/0000:00:00.2/iommu/ivhd0", "amd"),
        ("../../devices/pci0000:00/0000:00:03.0/virtio0/iommu/virtio0", "virtio"),
        ("../../devices/platform/arm-smmu-v3.0.auto/iommu/smmu3.0x0000000009050000", "smmuv3"),
        ("../../devices/platform/9050000.smmuv3/iommu/smmu3.0x0000000009050000", "smmuv3"),
    ])
    func unitKind(link: String, preset: String) { #expect(IOMMUUnit(link: link).preset?.name == preset) }

    @Test("bad sysfs text is reported, never guessed: an unreadable cap, foreign reserved lines, a non-number limit")
    func badInput() {
        let sys = vfioMachine(units: ["dmar0"])
        sys.files["/sys/class/iommu/dmar0/intel-iommu/cap"] = "garbage\n"
        sys.files["/sys/module/vfio_iommu_type1/parameters/dma_entry_limit"] = "lots\n"
        sys.files["/proc/self/status"] = "Name:\tvfio-sim\n"
        sys.files["/sys/kernel/mm/transparent_hugepage/enabled"] = "always madvise never\n"
        sys.directories["/sys/kernel/mm/hugepages"] = nil
        bind(sys, group: 7, device: "0000:00:03.0", iommu: "../../devices/virtual/iommu/dmar0",
             reserved: "0xfeefffff 0xfee00000 msi\nnonsense\n" + Self.msi)
        #expect(Array(prologue(sys).dropFirst(3)) == [
            "# cap-ipc-lock: no readable CapEff in /proc/self/status",
            "# dma-entry-limit: 'lots' is not a number (/sys/module/vfio_iommu_type1/parameters/dma_entry_limit)",
            "# thp: not available (/sys/kernel/mm/transparent_hugepage/enabled is missing or has no [mode])",
            "# hugepages: no pools (/sys/kernel/mm/hugepages is missing)",
            "domain g7 iommu=intel reserved=0xfee00000-0xfeefffff  # group 7: 0000:00:03.0 (vfio-pci); dmar0: /sys/class/iommu/dmar0/intel-iommu/cap unreadable, address width unknown, 39 bits assumed; reserved: msi (/sys/kernel/iommu_groups/7/reserved_regions); 2 lines of reserved_regions not understood, left out",
        ])
    }

    @Test("memlock is written as the trace format writes sizes: unlimited, a suffix, exact bytes; a failed getrlimit is a comment")
    func memlockSpelling() {
        let sys = plain()
        for (limit, line) in [(nil, "memlock unlimited"), (64 << 20, "memlock 64M"), (65537, "memlock 65537"),
                              ((64 << 20) + 1, "memlock 0x4000001")] as [(UInt64?, String)] {
            sys.memlockLimit = .success(limit)
            #expect(prologue(sys)[2] == line + "  # getrlimit(RLIMIT_MEMLOCK), soft limit")
        }
        sys.memlockLimit = .failure(.EPERM)
        #expect(prologue(sys)[2] == "# memlock: getrlimit(RLIMIT_MEMLOCK), soft limit failed: EPERM")
    }

    @Test("a group with no /dev/vfio node, no iommu link, or an IOMMU without a preset gets a comment, not a domain")
    func noDomainForGroup() {
        let sys = vfioMachine(units: ["foo0"])
        bind(sys, group: 1, device: "0000:00:01.0", iommu: "../../devices/virtual/iommu/foo0", reserved: "", node: false)
        bind(sys, group: 2, device: "0000:00:02.0", iommu: nil, reserved: "")
        bind(sys, group: 3, device: "0000:00:03.0", iommu: "../../devices/virtual/iommu/foo0", reserved: "")
        #expect(Array(prologue(sys).suffix(3)) == [
            "# no domain for group 1: 0000:00:01.0 bound to vfio-pci, but /dev/vfio/1 does not exist",
            "# no domain for group 2: 0000:00:02.0 has no iommu link (no IOMMU translates it)",
            "# no domain for group 3: its IOMMU foo0 (../../devices/virtual/iommu/foo0) has no preset; vfio-sim host --probe measures it",
        ])
    }

    /// `vfioMachine` whose kernel answers GET_INFO with a 39-bit VT-d domain
    /// (4K, 2M, 1G; the MSI window a hole between two IOVA ranges) and
    /// CHECK_EXTENSION(DMA_CC) with `coherent`.
    func probedMachine(coherent: Bool = true) -> ScriptedSystemCalls {
        let sys = vfioMachine(units: ["dmar0"])
        sys.isRoot = true
        sys.files["/sys/class/iommu/dmar0/intel-iommu/cap"] = Self.vtd39
        bind(sys, group: 7, device: "0000:00:03.0", iommu: "../../devices/virtual/iommu/dmar0", reserved: Self.msi)
        var info = [UInt8](repeating: 0, count: 24)
        let pgsizes: UInt64 = 0x4020_1000
        for i in 0..<8 { info[8 + i] = UInt8((pgsizes >> UInt64(8 * i)) & 0xff) }
        info[16] = 24
        var cap = InfoCapability.iovaRange([IOVARange(start: 0, last: 0xfedf_ffff), IOVARange(start: 0xfef0_0000, last: 0x7f_ffff_ffff)]).encoded
        cap[4...7] = [0, 0, 0, 0]
        info += cap
        sys.ioctlAnswer = { _, request, buffer, value in
            if request == VFIO.groupGetStatus, let buffer { buffer.storeBytes(of: UInt32(1), toByteOffset: 4, as: UInt32.self) }
            if request == VFIO.iommuGetInfo, let buffer { for (i, b) in info.enumerated() { buffer[i] = b } }
            if request == VFIO.checkExtension, value == UInt(Extension.dmaCC.rawValue) { return .success(coherent ? 1 : 0) }
            return .success(0)
        }
        return sys
    }

    @Test("--probe checks the preset against the kernel: a preset that agrees is written alone, one that differs gets the measured keys; the presets line counts them; the group is given back")
    func probe() {
        let sys = probedMachine(coherent: false)
        let agreeing = prologue(sys, probe: true)
        #expect(Array(agreeing.suffix(2)) == [
            "domain g7 iommu=intel  # group 7: 0000:00:03.0 (vfio-pci); dmar0: 39-bit (MGAW 39 bits, SAGAW 39 bits, from /sys/class/iommu/dmar0/intel-iommu/cap); preset intel agrees with what was measured on /dev/vfio/7 (VFIO_IOMMU_GET_INFO, CHECK_EXTENSION); reserved: msi (/sys/kernel/iommu_groups/7/reserved_regions)",
            "# presets: 1/1 agree with what was measured",
        ])
        #expect(sys.log.contains("open /dev/vfio/7") && sys.log.contains("close /dev/vfio/7"))
        // The process's limits are left as they are.
        #expect(!sys.log.contains { $0.hasPrefix("setrlimit") || $0.hasPrefix("capset") || $0.hasPrefix("write") })

        // QEMU's VT-d is not coherent; a unit that is differs from the preset.
        let differing = prologue(probedMachine(coherent: true), probe: true)
        #expect(Array(differing.suffix(2)) == [
            "domain g7 iommu=intel coherent=yes  # group 7: 0000:00:03.0 (vfio-pci); dmar0: 39-bit (MGAW 39 bits, SAGAW 39 bits, from /sys/class/iommu/dmar0/intel-iommu/cap); preset intel differs from what was measured on /dev/vfio/7 (VFIO_IOMMU_GET_INFO, CHECK_EXTENSION): coherent no (measured yes); the measured values are written; reserved: msi (/sys/kernel/iommu_groups/7/reserved_regions)",
            "# presets: 0/1 agree with what was measured (g7 differs)",
        ])
    }

    @Test("a group SET_IOMMU refuses for unisolated MSIs gets msi-isolated=no and the sysfs reserved regions; the preset, which isolates them, differs")
    func probeRefusedForMSI() {
        let sys = probedMachine()
        let answer = sys.ioctlAnswer
        sys.ioctlAnswer = { fd, request, buffer, value in
            request == VFIO.setIOMMU ? .failure(.EPERM) : answer(fd, request, buffer, value)
        }
        let lines = prologue(sys, probe: true)
        #expect(lines.dropLast().last?.hasPrefix("domain g7 iommu=intel msi-isolated=no reserved=0xfee00000-0xfeefffff  # ") == true)
        #expect(lines.last == "# presets: 0/1 agree with what was measured (g7 differs)")
    }

    @Test("with allow_unsafe_interrupts=Y MSI isolation is not compared, and a preset without it is written as taken (msi-isolated=yes)")
    func unsafeInterrupts() throws {
        let sys = probedMachine(coherent: false)
        sys.files[HostFacts.allowUnsafeInterruptsPath] = "Y\n"
        let facts = HostFacts.gather(sys, probe: true)
        #expect(facts.allowUnsafeInterrupts == true)
        guard case .some(_, let bound) = facts.groups, var group = bound.first else { Issue.record("no group"); return }
        #expect(facts.presetCheck(group)?.comparedMSI == false)
        #expect(facts.prologue.last == "# presets: 1/1 agree with what was measured")
        // The same group behind a virtio-iommu: its preset isolates no MSI.
        group.unit = IOMMUUnit(link: "../../devices/pci0000:00/0000:00:04.0/virtio1/iommu/virtio1")
        let check = try #require(facts.presetCheck(group))
        #expect(check.preset == .virtio && check.comparedMSI == false)
        #expect(!check.differences.contains { $0.key == "msi-isolated" })
        #expect(facts.domainLine(group).hasPrefix("domain g7 iommu=virtio pgsizes=4K,2M,1G "))
        #expect(facts.domainLine(group).contains(" msi-isolated=yes  # "))
        sys.files[HostFacts.allowUnsafeInterruptsPath] = "N\n"
        #expect(HostFacts.gather(sys, probe: false).allowUnsafeInterrupts == false)
    }

    @Test("--probe that cannot open the group keeps the preset and says why")
    func probeRefused() {
        let sys = probedMachine()
        sys.isRoot = false
        let line = prologue(sys, probe: true).last ?? ""
        #expect(line.hasPrefix("domain g7 iommu=intel reserved=0xfee00000-0xfeefffff  # "))
        #expect(line.contains("; --probe: the kernel backend needs root"))
        #expect(!sys.log.contains { $0.hasPrefix("open") })
    }
}

import ScriptedSystem
import Testing
import VFIOCore
@testable import VFIOKernel

/// What vfio-sim may do to a host's module parameters: nothing without
/// permission, nothing it cannot put back, whatever killed the run before.
@Suite("Module parameters on a host")
struct ModuleParameterTests {
    static let limit = "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit"
    static let record = "/run/vfio-sim/module-params"
    static let lock = "/run/vfio-sim/lock"

    /// A host whose dma_entry_limit is `limit`; this process is pid 4242.
    func host(limit: String = "65535") -> ScriptedSystemCalls { .host(limit: limit) }

    func writes(_ sys: ScriptedSystemCalls) -> [String] { sys.log.filter { $0.hasPrefix("write \(Self.limit)") } }

    @Test("a run that finds a value left behind by a killed run restores it and says so")
    func restoresWhatAKilledRunLeft() throws {
        // pid 777 changed the limit to 2, recorded 65535, and was killed.
        let sys = host(limit: "2")
        sys.files[Self.record] = "# parameter original-value pid\nvfio_iommu_type1.dma_entry_limit 65535 777\n"
        var said: [String] = []
        let g = ModuleParameterGuard(sys: sys, allowed: false, say: { said.append($0) })
        try g.begin().get()
        #expect(sys.files[Self.limit] == "65535")
        #expect(said == ["vfio-sim: a vfio-sim run (pid 777, gone) left vfio_iommu_type1.dma_entry_limit at 2; restored its original value 65535"])
        #expect(sys.files[Self.record] == nil)
        // Restored under the lock, which the guard took first.
        let lockAt = try #require(sys.log.firstIndex(of: "lock \(Self.lock)"))
        let writeAt = try #require(sys.log.firstIndex(of: "write \(Self.limit) 65535"))
        #expect(lockAt < writeAt)
        g.end()
    }

    @Test("a record whose value is already back is removed, and said; an unreadable one restores nothing")
    func recordAlreadyBack() throws {
        let sys = host()
        sys.files[Self.record] = "vfio_iommu_type1.dma_entry_limit 65535 777\n/etc/passwd x 1\n"
        var said: [String] = []
        let g = ModuleParameterGuard(sys: sys, allowed: true, say: { said.append($0) })
        try g.begin().get()
        #expect(writes(sys).isEmpty)
        #expect(said.count == 2)
        #expect(said[0].hasSuffix("recorded a change of vfio_iommu_type1.dma_entry_limit; it is back at its original 65535"))
        #expect(said[1] == "vfio-sim: ignoring an unreadable line in /run/vfio-sim/module-params: /etc/passwd x 1")
        #expect(sys.files[Self.record] == nil)
        g.end()
    }

    @Test("without permission a change is refused, naming the parameter, its value and that every container opened meanwhile gets it")
    func refusedWithoutPermission() throws {
        let sys = host()
        let g = ModuleParameterGuard(sys: sys, allowed: false, say: { _ in })
        try g.begin().get()
        let refusal = try #require(g.set(.dmaEntryLimit, to: "2"))
        #expect(refusal.message == "refusing to change vfio_iommu_type1.dma_entry_limit from 65535 to 2: it is global, and every VFIO "
                + "container any process opens meanwhile gets the changed value; pass --allow-module-params to let vfio-sim change it and put it back")
        #expect(writes(sys).isEmpty)
        #expect(sys.files[Self.record] == nil)
        // Asking for the value it already has changes nothing, so it is no change.
        #expect(g.set(.dmaEntryLimit, to: "65535") == nil)
        #expect(writes(sys).isEmpty)
        g.end()
    }

    @Test("an allowed change is armed and recorded (parameter, original, pid) before it is made, and undone by restore")
    func recordedBeforeMade() throws {
        let sys = host()
        let g = ModuleParameterGuard(sys: sys, allowed: true, say: { _ in })
        try g.begin().get()
        #expect(g.set(.dmaEntryLimit, to: "2") == nil)
        #expect(g.set(.dmaEntryLimit, to: "100") == nil)
        #expect(sys.files[Self.record]?.hasSuffix("vfio_iommu_type1.dma_entry_limit 65535 4242\n") == true)
        #expect(sys.restoreArmed.map(\.value) == ["65535"])
        let arm = try #require(sys.log.firstIndex(of: "arm restore \(Self.limit)=65535"))
        let record = try #require(sys.log.firstIndex(of: "record \(Self.record)"))
        let change = try #require(sys.log.firstIndex(of: "write \(Self.limit) 2"))
        #expect(arm < record && record < change)
        g.restore()
        #expect(sys.files[Self.limit] == "65535")
        #expect(sys.files[Self.record] == nil)
        #expect(sys.restoreArmed.isEmpty)
        g.end()
    }

    @Test("a child can ask only for parameters the parent knows, with numbers")
    func onlyKnownParameters() throws {
        let sys = host()
        let g = ModuleParameterGuard(sys: sys, allowed: true, say: { _ in })
        try g.begin().get()
        // A path is no request: the codec reads none from the line.
        #expect(ParentRequest(line: "set /proc/sys/kernel/panic 1") == nil)
        #expect(ParentRequest(line: "unset everything") == nil)
        guard case .refused = g.serve(.set(.dmaEntryLimit, value: "1;reboot")) else {
            Issue.record("a value that is not a number was set")
            return
        }
        #expect(writes(sys).isEmpty)
        #expect(g.serve(.set(.dmaEntryLimit, value: "7")) == .ok)
        #expect(sys.files[Self.limit] == "7")
        g.end()
        #expect(sys.files[Self.limit] == "65535")
    }

    @Test("while another run holds the lock, a run waits and says so, or refuses")
    func concurrentRuns() throws {
        let sys = host()
        sys.lockedByOthers = [Self.lock]
        let refusing = ModuleParameterGuard(sys: sys, allowed: true, say: { _ in })
        guard case .failure(let e) = refusing.begin(wait: false) else { Issue.record("took a lock another run holds"); return }
        #expect(e.message == "another vfio-sim run on the kernel holds /run/vfio-sim/lock; refusing to run beside it")
        // It changes nothing without the lock.
        #expect(refusing.set(.dmaEntryLimit, to: "2") != nil)
        #expect(writes(sys).isEmpty)

        var said: [String] = []
        sys.otherRunEnds = { sys.lockedByOthers = [] }
        let waiting = ModuleParameterGuard(sys: sys, allowed: true, say: { said.append($0) })
        try waiting.begin().get()
        #expect(said == ["vfio-sim: another vfio-sim run on the kernel holds /run/vfio-sim/lock; waiting for it to finish"])
        #expect(sys.log.contains("lock \(Self.lock) (wait)"))
        waiting.end()
    }

    @Test("the kernel backend never writes the parameter: it asks its parent, and says why when there is none or it refuses")
    func backendAsks() throws {
        let sys = host(limit: "4096")
        // No parent: the traces' 65535 cannot be had.
        do {
            _ = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
            Issue.record("opened without the limit the traces assume")
        } catch {
            #expect(error.message.hasPrefix("vfio_iommu_type1.dma_entry_limit is 4096 and the trace needs 65535: only a supervising vfio-sim process"))
        }
        #expect(sys.fds.isEmpty)
        // A probe sets no trace defaults and so needs nothing.
        let probe = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys, traceDefaults: false)
        probe.close()
        // A parent that refuses: its message is the backend's error.
        let g = ModuleParameterGuard(sys: sys, allowed: false, say: { _ in })
        try g.begin().get()
        sys.parent = { g.serve($0) }
        do {
            _ = try KernelBackend(groupPaths: ["/dev/vfio/7"], sys: sys)
            Issue.record("opened although the parent refused")
        } catch {
            #expect(error.message.hasPrefix("refusing to change vfio_iommu_type1.dma_entry_limit from 4096 to 65535"))
        }
        #expect(writes(sys).isEmpty)
        g.end()
    }
}

// Backends that measure while they answer, so the guest plans run through
// the one replay engine: the kernel's MAP/UNMAP calls timed, the model's
// pages and PTEs priced by the cost model.

import VFIOCore
import VFIOModel

/// A backend that hands every call to `base`; a measuring backend replaces
/// only the calls it measures.
protocol ForwardingBackend: Backend {
    var base: any Backend { get }
}

extension ForwardingBackend {
    var name: String { base.name }
    var kernel: String { base.kernel }
    func setKernel(_ version: KernelVersion) throws(BackendError) { try base.setKernel(version) }
    func setMemlock(_ bytes: UInt64?) throws(BackendError) { try base.setMemlock(bytes) }
    func setCapIPCLock(_ on: Bool) throws(BackendError) { try base.setCapIPCLock(on) }
    func setDMAEntryLimit(_ limit: UInt32) throws(BackendError) { try base.setDMAEntryLimit(limit) }
    func addMemory(_ spec: MemorySpec) throws(BackendError) -> MemoryRegion { try base.addMemory(spec) }
    func addObservedMemory(_ region: MemoryRegion) throws(BackendError) { try base.addObservedMemory(region) }
    func useContainer(_ name: String, kind: ContainerKind) throws(BackendError) { try base.useContainer(name, kind: kind) }
    func mlock(_ bytes: UInt64) throws(BackendError) { try base.mlock(bytes) }
    func attachGroup(_ spec: DomainSpec) -> Result<Void, Errno> { base.attachGroup(spec) }
    func detachGroup(_ name: String) -> Result<Void, Errno> { base.detachGroup(name) }
    func setIOMMU(_ type: Extension) -> Result<Void, Errno> { base.setIOMMU(type) }
    func checkExtension(_ ext: Extension) -> Result<UInt32, Errno> { base.checkExtension(ext) }
    func getInfo(argsz: UInt32) -> Result<IOMMUInfo, Errno> { base.getInfo(argsz: argsz) }
    func mapDMA(_ request: MapDMA) -> Result<Void, Errno> { base.mapDMA(request) }
    func unmapDMA(_ request: UnmapDMA) -> Result<UInt64, Errno> { base.unmapDMA(request) }
    func dirtyPages(_ request: DirtyPages) -> Result<Void, Errno> { base.dirtyPages(request) }
    func dirtyBitmap() -> [IOVARange]? { base.dirtyBitmap() }
    func lockedMemory() -> Observation<UInt64> { base.lockedMemory() }
    func mappingCount() -> Observation<UInt64> { base.mappingCount() }
    func pageTableEntries(domain: String?) -> Observation<PTECounts> { base.pageTableEntries(domain: domain) }
    func close() -> [BackendProblem] { base.close() }
}

/// Times each MAP_DMA and UNMAP_DMA of `base` (the kernel), in µs.
final class TimedBackend: ForwardingBackend {
    let base: any Backend
    private(set) var micros = 0.0
    private(set) var calls = 0
    private(set) var failed = 0
    init(_ base: any Backend) { self.base = base }

    func timed<T>(_ body: () -> Result<T, Errno>) -> Result<T, Errno> {
        let t0 = monotonicNanoseconds()
        let r = body()
        micros += Double(monotonicNanoseconds() - t0) / 1e3
        calls += 1
        if case .failure = r { failed += 1 }
        return r
    }
    func mapDMA(_ request: MapDMA) -> Result<Void, Errno> { timed { base.mapDMA(request) } }
    func unmapDMA(_ request: UnmapDMA) -> Result<UInt64, Errno> { timed { base.unmapDMA(request) } }
}

/// Prices each MAP_DMA and UNMAP_DMA of the model with the cost model: an
/// ioctl, plus the pages it pinned or unpinned and the PTEs it made or
/// removed, in µs.
final class PricedModelBackend: ForwardingBackend {
    let model: ModelBackend
    let costs: CostModel
    var base: any Backend { model }
    private(set) var micros = 0.0
    init(_ model: ModelBackend, costs: CostModel) { self.model = model; self.costs = costs }

    func ptes() -> UInt64 { pteTotal(model.inspect { $0.pteCounts(group: nil) }) }

    func mapDMA(_ request: MapDMA) -> Result<Void, Errno> {
        let (locked0, ptes0) = (model.inspect { $0.limitedBytes }, ptes())
        let r = model.mapDMA(request)
        micros += r.isSuccess ? costs.map.micros(pages: (model.inspect { $0.limitedBytes } - locked0) / 4096, ptes: ptes() - ptes0) : costs.map.ioctl
        return r
    }

    func unmapDMA(_ request: UnmapDMA) -> Result<UInt64, Errno> {
        let (locked0, ptes0) = (model.inspect { $0.limitedBytes }, ptes())
        let r = model.unmapDMA(request)
        micros += r.isSuccess ? costs.unmap.micros(pages: (locked0 - model.inspect { $0.limitedBytes }) / 4096, ptes: ptes0 - ptes()) : costs.unmap.ioctl
        return r
    }
}

extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
}

import VFIOCore

/// type1 as a `ContainerDriver`: `vfio_iommu_driver_ops_type1`.
extension Type1Container: ContainerDriver {
    public var kind: ContainerKind { .type1 }

    /// A process stuck in an ioctl makes no other call (and a detach stuck
    /// with the container's `group_lock` held would block this one).
    public func checkExtension(_ ext: Extension) -> Result<UInt32, Errno> {
        hang != nil ? .failure(.hang) : .success(vfioIommuType1CheckExtension(ext))
    }

    public func reason(for call: ContainerCall) -> String? {
        switch call {
        case .attach(let spec, let r): return explainAttach(spec, r)
        case .map(let m, let r): return explainMap(m, r)
        case .unmap(let u, let r, let before, let leaked): return explainUnmap(u, r, mappingsBefore: before, leakedBefore: leaked)
        case .detach(_, .success, _), .info(_, .success), .dirty(_, .success), .setIOMMU(_, .success): return nil
        case .detach(let name, .failure(let e), let wasIn): return explainDetach(name, e, wasInContainer: wasIn)
        case .checkExtension(let ext, let r): return explainExtension(ext, r)
        case .info(let argsz, .failure(let e)): return explainInfo(argsz: argsz, e)
        case .dirty(let d, .failure(let e)): return explainDirty(d, e)
        case .setIOMMU(let t, .failure(let e)): return explainSetIOMMU(t, e)
        }
    }

    public func kernelLog(for call: ContainerCall) -> String? {
        switch call {
        case .map(_, .failure(let e)): return kernelLogMap(e)
        case .attach(_, .failure(let e)), .setIOMMU(_, .failure(let e)): return kernelLogAttach(e)
        default: return nil
        }
    }

    public func checkInvariants() -> InvariantViolation? { _checkInvariants() }

    public var domainCount: Int { domains.count }
    public var chargedPages: UInt64 { ownLockedPages }
    public var limitedBytes: UInt64 { lockedBytes }
    public var availableEntries: UInt32? { isSet ? dmaAvail : nil }
    public var hidesTopMapping: Bool { !profile.inclusiveEndSearch && !topSlots.isEmpty }
    public var dirtyBitmap: [IOVARange]? { lastDirtyBitmap }

    public func mappings(meeting range: IOVARange?) -> [MappingView] {
        var out: [MappingView] = []
        var slot = range.map { dmaList.floor($0.start) ?? dmaList.first } ?? dmaList.first
        while let s = slot {
            let start = dmaList.key(s), size = dmaList.size(s)
            if let range, start > range.last { break }
            if range == nil || start &+ (size &- 1) >= range!.start {
                out.append(MappingView(iova: start, size: size, vaddr: dmaList.value(s).pinnedVaddr))
            }
            slot = dmaList.next(s)
        }
        return out
    }

    public func mapping(containing iova: UInt64) -> MappingView? {
        guard let s = dmaList.floor(iova) else { return nil }
        let view = MappingView(iova: dmaList.key(s), size: dmaList.size(s), vaddr: dmaList.value(s).pinnedVaddr)
        return view.last >= iova ? view : nil
    }
}

import VFIOCore

extension Type1Container {
    /// The mappings starting in `range` whose pages a dirty bitmap reports
    /// (`vfio_iova_dirty_bitmap` walks the mappings from the first one at or
    /// above `iova`; an UNMAP with GET_DIRTY_BITMAP reports each mapping it
    /// removes).
    ///
    /// `update_user_bitmap` sets every bit of a mapping that is mapped
    /// through an IOMMU while any group of the container cannot report
    /// dirty pages itself (`num_non_pinned_groups`: every IOMMU-backed
    /// group that never pinned pages through `vfio_pin_pages`, and the
    /// model has no such callers). Otherwise a mapping reports only the
    /// pages pinned for an emulated device (`vfio_dma_populate_bitmap`):
    /// none here.
    func dirtyMappings(in range: IOVARange) -> [(start: UInt64, size: UInt64)] {
        guard numNonPinnedGroups > 0 else { return [] }
        var out: [(UInt64, UInt64)] = []
        var next = dmaList.ceiling(range.start)
        while let slot = next, dmaList.key(slot) <= range.last {
            if dmaList.value(slot).flags.contains(.iommuMapped) { out.append((dmaList.key(slot), dmaList.size(slot))) }
            next = dmaList.next(slot)
        }
        return out
    }

    /// The bitmap the caller reads for `mappings`: their pages within
    /// `range` (bits past the range are not the caller's), adjacent ones
    /// joined.
    static func bitmapRanges(_ mappings: [(start: UInt64, size: UInt64)], within range: IOVARange) -> [IOVARange] {
        var out: [IOVARange] = []
        for m in mappings.sorted(by: { $0.start < $1.start }) {
            let (end, wraps) = m.start.addingReportingOverflow(m.size - 1)
            let last = min(wraps ? .max : end, range.last)
            guard m.start >= range.start, m.start <= last else { continue }
            if let prev = out.last, prev.last != .max, prev.last + 1 >= m.start {
                out[out.count - 1] = IOVARange(start: prev.start, last: max(prev.last, last))
            } else {
                out.append(IOVARange(start: m.start, last: last))
            }
        }
        return out
    }
}

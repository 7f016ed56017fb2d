import VFIOCore

/// `/proc/self/pagemap`: 8 bytes per 4 KiB page of the process, the page
/// frame number in bits 0–54 and "present" in bit 63 (the pfn reads as 0
/// without `CAP_SYS_ADMIN`).
public enum Pagemap {
    public static let entrySize = 8

    public struct Error: Swift.Error, Sendable, Hashable {
        /// Offset into the region of the first page that is not present.
        public var offset: UInt64
    }

    /// Appends the frames of `entries` (little-endian pagemap entries of
    /// consecutive pages starting `offset` bytes into a region) to `runs`,
    /// joining a page to the run before it when both its offset and its
    /// frame follow on: the physically contiguous stretches the kernel's
    /// pinning would batch.
    public static func appendRuns(_ entries: [UInt8], offset: UInt64, to runs: inout [PhysicalRun]) throws(Error) {
        let pages = entries.count / entrySize
        for i in 0..<pages {
            var entry: UInt64 = 0
            for b in 0..<entrySize { entry |= UInt64(entries[i * entrySize + b]) << UInt64(8 * b) }
            let pfn = entry & ((1 << 55) - 1)
            let at = offset + UInt64(i) * 4096
            guard entry >> 63 == 1, pfn != 0 else { throw Error(offset: at) }
            let phys = pfn << 12
            if let last = runs.last, last.phys &+ last.length == phys, last.offset &+ last.length == at {
                runs[runs.count - 1].length += 4096
            } else {
                runs.append(PhysicalRun(offset: at, phys: phys, length: 4096))
            }
        }
    }
}

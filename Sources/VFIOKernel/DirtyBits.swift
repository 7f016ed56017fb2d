import VFIOCore

/// A dirty bitmap as the kernel writes it into the caller's buffer: bit i
/// (of little-endian u64 words) for the page at `iova + i * pgsize`.
public enum DirtyBits {
    /// The IOVA ranges of the set bits among the first `pages`, adjacent
    /// pages joined; whole zero and whole full words are skipped a word at
    /// a time.
    public static func ranges(_ words: [UInt64], pages: UInt64, iova: UInt64, pgsize: UInt64) -> [IOVARange] {
        var out: [IOVARange] = []
        var runStart: UInt64? = nil
        func close(at page: UInt64) {
            guard let s = runStart else { return }
            runStart = nil
            let first = iova &+ s &* pgsize
            let (end, wraps) = iova.addingReportingOverflow(page &* pgsize)
            out.append(IOVARange(start: first, last: wraps || end == 0 ? .max : end - 1))
        }
        var page: UInt64 = 0
        while page < pages {
            let word = words[Int(page / 64)]
            let inWord = min(64, pages - page)
            if page % 64 == 0 && inWord == 64 && (word == 0 || word == .max) {
                if word == 0 { close(at: page) } else if runStart == nil { runStart = page }
                page += 64
                continue
            }
            if word >> (page % 64) & 1 == 1 {
                if runStart == nil { runStart = page }
            } else {
                close(at: page)
            }
            page += 1
        }
        close(at: pages)
        return out
    }
}

import VFIOCore

let kib: UInt64 = 1 << 10, mib: UInt64 = 1 << 20, gib: UInt64 = 1 << 30

/// Trace text as a program's plan produces it, one statement a line, with
/// the number of `map`/`unmap` operations written so far (a plan's map
/// phase ends after a given count).
public struct ScenarioWriter: Sendable {
    public private(set) var text = ""
    public private(set) var operations = 0
    /// Operation counts after which the model's state is to be written as
    /// `check` lines (`ScenarioAnswers` fills in the values).
    public private(set) var checkpoints: [Int] = []

    public init() {}

    public mutating func line(_ s: String) { text += s + "\n" }
    public mutating func comment(_ s: String) { text += "# " + s + "\n" }
    /// Text of whole lines, as it is.
    public mutating func append(_ lines: String) { text += lines }
    public mutating func reserve(lines: Int) { text.reserveCapacity(text.utf8.count + lines * 64) }

    public mutating func map(iova: UInt64, vaddr: UInt64, size: UInt64, prot: String = "rw") {
        text += "map iova=\(formatAddress(iova)) vaddr=\(formatAddress(vaddr)) size=\(formatSize(size)) prot=\(prot)\n"
        operations += 1
    }

    public mutating func unmap(iova: UInt64, size: UInt64) {
        text += "unmap iova=\(formatAddress(iova)) size=\(formatSize(size))\n"
        operations += 1
    }

    /// `domain`/`detach` after the first operation are operations too.
    public mutating func detach(_ group: String, comment: String? = nil) {
        text += "detach \(group)" + (comment.map { "  # " + $0 } ?? "") + "\n"
        operations += 1
    }

    /// Here the state is worth a `check`: locked memory, mappings, page
    /// table entries.
    public mutating func checkpoint() {
        if checkpoints.last != operations { checkpoints.append(operations) }
    }
}

/// `x` rounded up to a multiple of `to` (a power of two), nil past 2^64-1.
func roundUp(_ x: UInt64, _ to: UInt64) -> UInt64? {
    let (sum, over) = x.addingReportingOverflow(to - 1)
    return over ? nil : sum & ~(to - 1)
}

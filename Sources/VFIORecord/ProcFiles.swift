import VFIOCore

/// The `/proc` files the recorder reads about the traced process, parsed
/// from their text (so tests feed them text).
public enum ProcFiles {
    /// `Max locked memory` from `/proc/PID/limits`: the soft limit in
    /// bytes, nil for `unlimited`; `.none` when the line is missing.
    public static func memlock(limits text: String) -> UInt64?? {
        for line in text.split(separator: "\n") where line.hasPrefix("Max locked memory") {
            let words = line.dropFirst("Max locked memory".count).split(separator: " ")
            guard let soft = words.first else { return .none }
            if soft == "unlimited" { return .some(nil) }
            guard let n = UInt64(soft) else { return .none }
            return .some(n)
        }
        return .none
    }

    /// A `Key:` line of `/proc/PID/status`, its first word.
    static func statusField(_ text: String, _ key: String) -> Substring? {
        for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
            return line.dropFirst(key.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
        }
        return nil
    }

    /// `VmLck` of `/proc/PID/status` in bytes: the process's `locked_vm`,
    /// which VFIO's pinning charges (`vfio_lock_acct`).
    public static func lockedBytes(status text: String) -> UInt64? {
        guard let kb = statusField(text, "VmLck").flatMap({ UInt64($0) }) else { return nil }
        return kb.multipliedReportingOverflow(by: 1024).overflow ? nil : kb * 1024
    }

    /// `CAP_IPC_LOCK` (bit 14) in `CapEff`.
    public static func hasIPCLock(status text: String) -> Bool? {
        guard let hex = statusField(text, "CapEff"), let caps = UInt64(hex, radix: 16) else { return nil }
        return caps >> 14 & 1 == 1
    }

    /// `Tgid` and `PPid` of `/proc/TID/status`.
    public static func ids(status text: String) -> (tgid: Int32, ppid: Int32)? {
        guard let t = statusField(text, "Tgid").flatMap({ Int32($0) }),
              let p = statusField(text, "PPid").flatMap({ Int32($0) }) else { return nil }
        return (t, p)
    }

    /// One mapping of `/proc/PID/smaps`.
    public struct VMA: Sendable, Hashable {
        public var start: UInt64
        public var end: UInt64
        public var name: String
        public var kernelPageSize: UInt64
        /// `VmFlags` contains `pf`: `VM_PFNMAP`.
        public var pfnmap: Bool
    }

    /// The mappings of `/proc/PID/smaps`, in address order.
    public static func vmas(smaps text: String) -> [VMA] {
        var out: [VMA] = []
        for line in text.split(separator: "\n") {
            if let first = line.split(separator: " ", maxSplits: 1).first, first.contains("-"),
               !first.hasSuffix(":") {
                let bounds = first.split(separator: "-")
                guard bounds.count == 2, let s = UInt64(bounds[0], radix: 16), let e = UInt64(bounds[1], radix: 16) else { continue }
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                let name = fields.count >= 6 ? fields[5...].joined(separator: " ") : ""
                out.append(VMA(start: s, end: e, name: name, kernelPageSize: 4096, pfnmap: false))
            } else if line.hasPrefix("KernelPageSize:"), !out.isEmpty {
                let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if words.count >= 2, let kb = UInt64(words[1]) { out[out.count - 1].kernelPageSize = kb * 1024 }
            } else if line.hasPrefix("VmFlags:"), !out.isEmpty {
                out[out.count - 1].pfnmap = line.split(separator: " ").contains("pf")
            }
        }
        return out
    }

    /// The parts of `vmas` that `[vaddr, vaddr+size)` touches, each widened
    /// to whole pages of its VMA (the kernel pins whole pages).
    public static func touched(_ vmas: [VMA], vaddr: UInt64, size: UInt64) -> [(vma: VMA, start: UInt64, end: UInt64)] {
        guard size > 0 else { return [] }
        let (end, wraps) = vaddr.addingReportingOverflow(size)
        let last = wraps ? UInt64.max : end
        return vmas.compactMap { v in
            let s = max(v.start, vaddr), e = min(v.end, last)
            guard s < e else { return nil }
            let p = max(v.kernelPageSize, 4096)
            let alignedStart = max(v.start, s / p * p)
            let alignedEnd = min(v.end, (e / p + (e % p == 0 ? 0 : 1)) * p)
            return (v, alignedStart, alignedEnd)
        }
    }
}

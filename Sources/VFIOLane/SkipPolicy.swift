import VFIOCore
import VFIOTrace

/// Which traces a real machine can run.
public struct SkipPolicy: Sendable {
    /// The comment that keeps a trace off real hardware: `# lane: skip REASON`.
    public static let marker = "lane: skip"

    /// The running kernel's version.
    public var running: KernelVersion
    /// How many real groups the kernel backend has.
    public var groups: Int
    /// Whether a device BAR is there for `pfnmap` memory.
    public var hasBAR: Bool
    /// Whether a pinned `kernel V` names the running kernel: by default the
    /// same version; the lane passes the model's profile resolution.
    public var sameKernel: @Sendable (KernelVersion, KernelVersion) -> Bool
    /// Whether the machine has `/dev/iommu` (a kernel with `CONFIG_IOMMUFD`)
    /// for traces that say `container iommufd`.
    public var hasIOMMUFD: Bool = true

    public init(running: KernelVersion, groups: Int = 1, hasBAR: Bool = false,
                sameKernel: @escaping @Sendable (KernelVersion, KernelVersion) -> Bool = { $0 == $1 }) {
        self.running = running; self.groups = groups; self.hasBAR = hasBAR; self.sameKernel = sameKernel
    }

    /// Why `trace` cannot run here, or nil when it can:
    /// - a `# lane: skip REASON` comment line (more memory than the guest
    ///   has, a hardware property the machine lacks);
    /// - a `kernel VERSION` statement naming another kernel than the one
    ///   running: the trace's answers are that version's, and the model
    ///   must play the running kernel to be compared with it;
    /// - more groups than the machine has, an emulated (mdev) group, or
    ///   `pfnmap` memory without a BAR to map;
    /// - `container iommufd` or `container NAME iommufd` on a kernel without
    ///   `/dev/iommu`.
    public func reason(_ trace: Trace) -> String? {
        for st in trace.statements {
            guard case .comment(let text) = st.kind else { continue }
            let body = text.drop(while: { $0 == " " || $0 == "\t" })
            if body.hasPrefix(Self.marker) {
                let reason = body.dropFirst(Self.marker.count).trimmingBlanks()
                return reason.isEmpty ? "marked lane: skip" : reason
            }
        }
        var names: Set<String> = []
        var started = false
        for st in trace.statements {
            switch st.kind {
            case .map, .unmap, .info, .extension, .dirty, .check, .show:
                // The first operation attaches `d0` when no domain came before.
                if !started && names.isEmpty { names.insert("d0") }
                started = true
            case .kernel(let v) where !sameKernel(v, running):
                return "pinned to kernel \(v) (this is \(running))"
            case .domain(let d):
                if d.emulated { return "an emulated (mdev) group cannot be made real" }
                names.insert(d.name)
            case .container(.iommufd) where !hasIOMMUFD, .useContainer(_, .iommufd?) where !hasIOMMUFD:
                return "container iommufd needs /dev/iommu (CONFIG_IOMMUFD), and this kernel has none"
            case .memory(let m) where m.pfnmap && !hasBAR:
                return "pfnmap memory needs a device BAR, and none is here"
            default:
                continue
            }
        }
        if names.count > groups { return "\(names.count) groups, and this machine has \(groups)" }
        return nil
    }
}

extension Substring {
    func trimmingBlanks() -> String {
        var t = self
        while let c = t.first, c == " " || c == "\t" { t.removeFirst() }
        while let c = t.last, c == " " || c == "\t" { t.removeLast() }
        return String(t)
    }
}

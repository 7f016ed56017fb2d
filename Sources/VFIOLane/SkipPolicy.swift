import VFIOCore
import VFIOTrace

/// Which traces a real machine can run.
public struct SkipPolicy: Sendable {
    /// The comment that keeps a trace off real hardware: `# lane: skip REASON`.
    public static let marker = "lane: skip"
    /// The comment that says a trace does not apply to the lane's machines
    /// at all: `# lane: not-applicable REASON`.
    public static let notApplicableMarker = "lane: not-applicable"

    /// What the lane does with a trace.
    public enum Verdict: Sendable, Equatable {
        case run
        /// The trace applies to this configuration, but the lane cannot run
        /// it (more memory than the guest has, a kernel hang): counted
        /// against the configuration.
        case skip(String)
        /// The trace asks for what this kernel or machine does not have at
        /// all (iommufd on a kernel without it, an mdev device, another
        /// kernel's behaviour): not counted as skipped.
        case notApplicable(String)
    }

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
        switch verdict(trace) {
        case .run: nil
        case .skip(let why), .notApplicable(let why): why
        }
    }

    /// Whether the lane runs `trace` here, skips it, or it does not apply:
    /// not applicable are a `# lane: not-applicable` comment, another
    /// pinned kernel, an emulated (mdev) group, `pfnmap` memory without a
    /// BAR and iommufd without `/dev/iommu`; skipped are a `# lane: skip`
    /// comment and more groups than the machine has.
    public func verdict(_ trace: Trace) -> Verdict {
        // What the trace needs decides first: a marker says why a trace
        // that applies here cannot run, not whether it applies.
        var marked: Verdict? = nil
        var names: Set<String> = []
        var started = false
        for st in trace.statements {
            switch st.kind {
            case .comment(let text):
                if marked == nil { marked = Self.markerVerdict(text) }
            case .map, .unmap, .info, .extension, .dirty, .check, .show:
                // The first operation attaches `d0` when no domain came before.
                if !started && names.isEmpty { names.insert("d0") }
                started = true
            case .kernel(let v) where !sameKernel(v, running):
                return .notApplicable("pinned to kernel \(v) (this is \(running))")
            case .domain(let d):
                if d.emulated { return .notApplicable("an emulated (mdev) group needs an mdev device, and the lane's machines have none") }
                names.insert(d.name)
            case .container(.iommufd) where !hasIOMMUFD, .useContainer(_, .iommufd?) where !hasIOMMUFD:
                return .notApplicable("container iommufd needs /dev/iommu (CONFIG_IOMMUFD), and this kernel has none")
            case .memory(let m) where m.pfnmap && !hasBAR:
                return .notApplicable("pfnmap memory needs a device BAR, and none is here")
            default:
                continue
            }
        }
        if let marked { return marked }
        if names.count > groups { return .skip("\(names.count) groups, and this machine has \(groups)") }
        return .run
    }

    /// The verdict a `# lane: …` comment line gives, if it is one.
    static func markerVerdict(_ text: String) -> Verdict? {
        let body = text.drop(while: { $0 == " " || $0 == "\t" })
        if body.hasPrefix(notApplicableMarker) {
            let reason = body.dropFirst(notApplicableMarker.count).trimmingBlanks()
            return .notApplicable(reason.isEmpty ? "marked lane: not-applicable" : reason)
        }
        if body.hasPrefix(marker) {
            let reason = body.dropFirst(marker.count).trimmingBlanks()
            return .skip(reason.isEmpty ? "marked lane: skip" : reason)
        }
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

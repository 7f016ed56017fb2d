import VFIOCore

/// Which real group plays each domain of a trace, when a kernel backend
/// runs: the trace's n-th domain is replaced by the n-th hardware domain,
/// keeping its name, on every backend, so the model plays the kernel's
/// IOMMU. A name takes the first free slot when first named and gives it
/// back when its group is detached (the kernel backend binds its groups
/// the same way).
struct GroupBinding {
    /// The IOMMU domains of the real groups, in binding order.
    let hardwareDomains: [DomainSpec]
    /// Slot i: the trace name the i-th real group plays now.
    private var bound: [String?] = []
    /// Whether the one note of a setup difference was given.
    private var noted = false

    init(hardwareDomains: [DomainSpec]) { self.hardwareDomains = hardwareDomains }

    /// The domain the trace's `spec` plays (the real group's it is bound to,
    /// under the trace's name, when hardware domains are known), and, the
    /// first time they differ, how the trace's domain for `release` differs
    /// from it.
    mutating func play(_ spec: DomainSpec, release: KernelVersion) -> (spec: DomainSpec, difference: String?) {
        if !bound.contains(spec.name) {
            if let free = bound.firstIndex(of: nil) { bound[free] = spec.name } else { bound.append(spec.name) }
        }
        guard let index = bound.firstIndex(of: spec.name), index < hardwareDomains.count else { return (spec, nil) }
        var real = hardwareDomains[index]
        real.name = spec.name
        guard !noted, let difference = Replayer.setupDifference(trace: spec.resolved(for: release).spec, kernel: real) else {
            return (real, nil)
        }
        noted = true
        return (real, difference)
    }

    /// The group `name` was detached: its slot is free again.
    mutating func unbind(_ name: String) {
        if let i = bound.firstIndex(of: name) { bound[i] = nil }
    }
}

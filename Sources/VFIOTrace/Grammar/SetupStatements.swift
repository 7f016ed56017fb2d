import VFIOCore

// The setup statements that take one operand and no keys: `iommu`,
// `container`, `kernel`, `memlock`, `mlock`, `cap-ipc-lock`,
// `dma-entry-limit` and `detach`.

extension StatementSyntax {
    static let iommu = StatementSyntax(
        verb: .iommu, keys: [], answer: .status(.iommu), table: .setup,
        rows: [ReferenceRow(#"`iommu type1v2` / `iommu type1`"#, #"`VFIO_SET_IOMMU` with the v2 or v1 interface, issued when the first operation comes; may carry `=> ok` or an errno. At most one per trace"#, #"`type1v2`"#)])

    static let container = StatementSyntax(
        verb: .container, keys: [], answer: .none("container takes no answer"), table: .setup,
        rows: [
            ReferenceRow(#"`container type1` / `container iommufd`"#, #"which kernel code answers the type1 ioctls: `type1`, a container opened from `/dev/vfio/vfio`; `iommufd`, iommufd's compatibility layer (`/dev/iommu` passed to `VFIO_GROUP_SET_CONTAINER`, each group's device opened as it joins, kernels 6.2 and later; see "Container kinds"). At most one per trace"#, #"`type1`, or `--container`"#),
            ReferenceRow(#"`container NAME [type1\|iommufd]`"#, #"another container of the same process (QEMU with several address spaces, DPDK with several containers): later statements go to it, opened now if new; the first container is `c0`. Without a kind, the kind it was opened as (a new one: type1; `c0`: `container type1|iommufd` or the run's `--container`); a kind that differs is an error, and `container type1|iommufd` must come before any `container NAME`. The process has one memory, one `RLIMIT_MEMLOCK` and one `locked_vm`: every type1 container's pins count against the limit, the same page pinned by two containers counts twice. `check locked=` is the process's; `check mappings=`, `check ptes=`, `info` and `show` the current container's. The first container alone gets the implicit `d0`"#, ""),
        ])

    static let kernel = StatementSyntax(
        verb: .kernel, keys: [], answer: .none("kernel takes no answer"), table: .setup,
        rows: [ReferenceRow(#"`kernel RELEASE`"#, #"whose answers the model gives (see "Kernel releases"): `MAJOR.MINOR`, `MAJOR.MINOR.PATCH`, or a whole `uname -r` (`6.12.38+deb12-amd64`). Any release from 5.10 on is answered by the release history; one the lane does not boot says so in a note, one past the newest known (7.3) answers as 7.3 with a note; below 5.10, or anything else (`6.1x`), is an error"#, #"the newest behaviour modelled, or `--kernel`"#)])

    static let memlock = StatementSyntax(
        verb: .memlock, keys: [], answer: .none("memlock takes no answer"), table: .setup,
        rows: [ReferenceRow(#"`memlock SIZE` / `memlock unlimited`"#, #"the process's `RLIMIT_MEMLOCK`"#, #"`unlimited`"#)])

    static let mlock = StatementSyntax(
        verb: .mlock, keys: [], answer: .none("mlock takes no answer"), table: .setup,
        rows: [ReferenceRow(#"`mlock SIZE`"#, #"memory the process holds locked already (its own `mlock`, QEMU `mem-lock=on`): in `locked_vm` and against the limit for type1 (not for iommufd, which charges the user's `locked_vm`). Model only: the kernel backend refuses it"#, #"`0`"#)])

    static let capIPCLock = StatementSyntax(
        verb: .capIPCLock, keys: [], answer: .none("cap-ipc-lock takes no answer"), table: .setup,
        rows: [ReferenceRow(#"`cap-ipc-lock on` / `off`"#, #"whether the process holds `CAP_IPC_LOCK`: exempt from the limit, still counted in `locked`"#, #"`off`"#)])

    static let dmaEntryLimit = StatementSyntax(
        verb: .dmaEntryLimit, keys: [], answer: .none("dma-entry-limit takes no answer"), table: .setup,
        rows: [ReferenceRow(#"`dma-entry-limit N`"#, #"the `dma_entry_limit` module parameter (read when the container opens)"#, #"`65535`"#)])

    /// Before the first operation `detach` is setup; after it, an
    /// operation (`VFIO_GROUP_UNSET_CONTAINER`) with an answer.
    static let detach = StatementSyntax(
        verb: .detach, keys: [], answer: .status(.detach), table: .setup,
        rows: [ReferenceRow(#"`detach NAME`"#, #"the group leaves the container; the last one out releases it (every mapping removed)"#, "")])
}

extension StatementParser {
    /// `iommu TYPE`: once per trace, before the first operation.
    mutating func readIOMMU(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        let w = try operand("one of type1, type1v2")
        let type: IOMMUType
        if w.text == "type1" { type = .type1 } else if w.text == "type1v2" { type = .type1v2 } else {
            throw LineError(w.text.start, "expected one of type1, type1v2, found \(quoted(w.text))")
        }
        try end()
        try before(.iommu, declared.firstOperationInFile)
        if let first = declared.iommuLine {
            throw LineError(verbStart, "expected one iommu statement, found a second one (the first is on line \(first))")
        }
        declared.iommuLine = declared.line
        return .iommu(type)
    }

    /// `container KIND` (the first container's kind) or `container NAME [KIND]` (switch to another container).
    mutating func readContainer(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        let w = try operand("one of type1, iommufd, or a container name")
        let kind: ContainerKind
        if w.text == "type1" { kind = .type1 } else if w.text == "iommufd" { kind = .iommufd } else {
            // `container NAME [KIND]`: another container of the process.
            if w.hasEquals { throw LineError(w.text.start, "expected one of type1, iommufd, or a container name, found \(quoted(w.text))") }
            return try switchContainer(to: try domainName(w.text), &declared)
        }
        try end()
        try before(.container, firstOperation)
        if let first = declared.firstDomainLine {
            throw LineError(verbStart, "expected container before the first domain, found it after the domain on line \(first)")
        }
        if let first = declared.containerLine {
            throw LineError(verbStart, "expected one container statement, found a second one (the first is on line \(first))")
        }
        if let named = declared.firstNamedContainerLine {
            throw LineError(verbStart, "expected the first container's kind before `container NAME` on line \(named) (another container's kind is `container NAME \(kind)`), found `container \(kind)`")
        }
        declared.containerLine = declared.line
        declared.containers["c0"] = kind
        return .container(kind)
    }

    /// `container NAME [KIND]`: later statements go to container NAME.
    mutating func switchContainer(to name: String, _ declared: inout Declared) throws(LineError) -> Statement.Kind {
        // Unwritten, the kind is the one the container was opened
        // as (type1 for a new one; `c0`'s may come from the run).
        var named: ContainerKind? = nil
        if let k = nextWord {
            next += 1
            if k.text == "type1" { named = .type1 } else if k.text == "iommufd" { named = .iommufd } else {
                throw LineError(k.text.start, "expected one of type1, iommufd, found \(quoted(k.text))")
            }
            if let had = declared.containers[name], had != named {
                throw LineError(k.text.start, "expected \(had) (container \(name) was opened as \(had)), found \(quoted(k.text))")
            }
        }
        try end()
        if let named { declared.containers[name] = named }
        if declared.firstNamedContainerLine == nil { declared.firstNamedContainerLine = declared.line }
        declared.iommuLine = nil
        declared.switchedTo = name
        return .useContainer(name, named)
    }

    /// `kernel VERSION`: a known version, before the first operation.
    mutating func readKernel(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        let known = "a kernel version \(KernelVersion.oldestKnown) or newer (6.8, 6.12.38, 6.12.38+deb12-amd64)"
        let w = try operand(known)
        guard let version = strictVersion(w.text), version.isKnown else {
            throw LineError(w.text.start, "expected \(known), found \(quoted(w.text))")
        }
        try end()
        try before(.kernel, firstOperation)
        return .kernel(version)
    }

    mutating func readMemlock(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        let w = try operand("a number or unlimited")
        var limit: UInt64?
        if w.text != "unlimited" { limit = try VFIOTrace.number(w.text, expected: "a number or unlimited") }
        try end()
        return .memlock(limit)
    }

    mutating func readMlock(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        let w = try operand("a size")
        let bytes = try VFIOTrace.number(w.text, expected: "a size")
        try end()
        return .mlock(bytes)
    }

    /// `cap-ipc-lock on|off`.
    mutating func readCapIPCLock(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        let w = try operand("one of on, off")
        guard w.text == "on" || w.text == "off" else {
            throw LineError(w.text.start, "expected one of on, off, found \(quoted(w.text))")
        }
        try end()
        return .capIPCLock(w.text == "on")
    }

    mutating func readDMAEntryLimit(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        let w = try operand("a number")
        let limit = try VFIOTrace.number32(w.text)
        try end()
        return .dmaEntryLimit(limit)
    }

    /// `detach NAME`.
    mutating func readDetach(_ declared: inout Declared) throws(LineError) -> Statement.Kind {
        let w = try operand("a domain name")
        let group = try domainName(w.text)
        try end()
        declared.attached.removeAll { $0.name == group }
        if firstOperation == nil { rule = .none("detach before the first operation takes no answer") }
        return .detach(group)
    }
}

/// The printed words of the statements of this file.
func setupWords(_ kind: Statement.Kind) -> [String]? {
    switch kind {
    case .iommu(let type): ["iommu", type.rawValue]
    case .useContainer(let name, let kind): ["container", name] + (kind.map { [$0.description] } ?? [])
    case .container(let kind): ["container", kind.rawValue]
    case .kernel(let version): ["kernel", version.description]
    case .memlock(let limit): ["memlock", limit.map(formatSize) ?? "unlimited"]
    case .mlock(let bytes): ["mlock", formatSize(bytes)]
    case .capIPCLock(let on): ["cap-ipc-lock", on ? "on" : "off"]
    case .dmaEntryLimit(let n): ["dma-entry-limit", String(n)]
    case .detach(let name): ["detach", name]
    default: nil
    }
}

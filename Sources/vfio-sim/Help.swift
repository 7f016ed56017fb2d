import VFIOCore

/// The manual pages `vfio-sim --help` and `vfio-sim help COMMAND` print.
enum Help {
    /// Raised with each submission that changes what the model answers.
    static let versionNumber = "0.22.0"

    /// `vfio-sim --version`: the tool's version and the kernels it answers for.
    static let version = "vfio-sim \(versionNumber): answers Linux \(KernelVersion.oldestKnown) to \(KernelVersion.newestKnown) by release rules; "
        + "checked on \(KernelVersion.booted.map(\.description).joined(separator: ", ")) (the kernel lane)"

    static let main = """
    NAME
        vfio-sim - simulate and verify the Linux VFIO IOMMU type1 interface

    SYNOPSIS
        vfio-sim replay [--format text|json] [--junit PATH] [--kernel VERSION]
                        [--backend model|kernel|both] [--group /dev/vfio/N]
                        [--verbose] [--explain] [--no-invariants] [--allow-module-params]
                        [--container type1|iommufd] FILE...
        vfio-sim plan [--kernel VERSION] [--format text|json] [--time] [--cost-profile FILE] [--threads N] FILE...
        vfio-sim compare [--kernel VERSION] [--markdown | --format text|json] [--strict] FILE...
        vfio-sim fmt FILE
        vfio-sim explore [--seed N] [--ops M] [--runs K] [--backend model|both]
                         [--group /dev/vfio/N] [--out DIR] [--allow-module-params]
        vfio-sim faults --allow-module-params [--runs N] [--seed S]
                        [--group /dev/vfio/N] [--verbose] FILE...
        vfio-sim record [--out FILE] [--] COMMAND [ARGS...]   (or --pid PID)
        vfio-sim whatif [--kernel V] [--memlock SIZE] [--cap-ipc-lock on|off]
                        [--dma-entry-limit N] [--pgsizes LIST] [--format text|json] FILE...
        vfio-sim host [--probe]
        vfio-sim new dpdk|qemu|spdk|cloud-hypervisor|pool [--memory SIZE]
                     [--backing 4K|thp|2M|1G] [OPTIONS] [-o FILE]
        vfio-sim lane-summary --config NAME --iommu WORD --accel ACCEL REPORT
        vfio-sim help [replay|plan|compare|fmt|explore|faults|record|whatif|host|new|lane-summary|trace|help]
        vfio-sim --version

    DESCRIPTION
        vfio-sim answers VFIO type1 ioctls (VFIO_IOMMU_MAP_DMA, UNMAP_DMA,
        GET_INFO, CHECK_EXTENSION, DIRTY_PAGES, group attach and detach) the
        way Linux's vfio_iommu_type1 does: which call fails with which errno,
        how much memory is locked, how many IOMMU page-table entries of which
        size a mapping creates, what an unmap removes. Scenarios are written
        as .trace files with their expected answers: `vfio-sim help trace`
        prints the whole format (docs/TRACE_FORMAT.md).

    COMMANDS
        replay   Run trace files and compare every answer with the one written.
        plan     Per trace: the memlock it needs, its peak mappings against
                 dma_entry_limit, its PTEs per domain, and its hazards.
        compare  Run each trace under both container kinds (type1 and iommufd's
                 compat layer) and print every statement whose answer differs.
        fmt      Print a trace in canonical form.
        explore  Generate operation sequences, check properties, compare
                 backends, and shrink every finding to a minimal trace.
        faults   Kill kernel replays at random points and check what they
                 leave behind (the kernel lane's fault-injection check).
        record   Run a program under ptrace and write its VFIO type1 ioctls,
                 with the kernel's answers, as traces that replay.
        whatif   Replay traces with the kernel, memlock, CAP_IPC_LOCK,
                 dma_entry_limit or page sizes changed: which answers change.
        host     Print the prologue of a trace for this machine: kernel,
                 memlock, CAP_IPC_LOCK, dma_entry_limit, a domain per group
                 bound to vfio-pci, each line saying where it was read.
        lane-summary
                 The kernel lane's lines for a configuration, computed from
                 the reports its guest wrote (scripts/kernel-lane).
        new      Write the DMA mapping plan DPDK, QEMU, SPDK, cloud-hypervisor
                 or a userspace driver makes for a described setup, as a
                 trace with the model's answers.
        help     Show this page, the page of one command, or (help trace)
                 the trace format.

    EXIT STATUS
        0   every written answer held
        1   some answer differed (or the backends disagreed)
        2   a file could not be read or parsed, or the command line is wrong
    """

    static let replay = """
    NAME
        vfio-sim replay - run .trace files and compare the answers

    SYNOPSIS
        vfio-sim replay [OPTIONS] FILE...

    DESCRIPTION
        Each FILE is parsed completely first; a file that does not parse is
        reported as FILE:LINE:COLUMN: error: ... and nothing of it runs. The
        statements of a file that parses are then replayed in order against
        the backend. For every operation whose answer differs from the one
        written after `=>`, replay prints

            FILE:LINE: STATEMENT: expected ANSWER, got ANSWER

        and for an operation written without `=>` it prints what came back:

            FILE:LINE: STATEMENT => ANSWER

        An answer a user may not expect (an errno, an answer other than the
        one written, an unmap that removed another size than asked) is
        followed by its reason, the rule and the kernel function:

                why: v2 may not split a mapping: ... (vfio_dma_do_unmap)

        and, where the kernel writes a line to its log for that answer, the
        line to look for in dmesg:

                kernel log: vfio_pin_pages_remote: RLIMIT_MEMLOCK (1073741824) exceeded

        The runs of a repeat=N line are summarised: per different answer,
        the first run with its iteration, iova and vaddr, then "(iteration
        513 of 2048; 1535 more failed the same way, ...)".
        A `show` line prints the container's state there. Sizes are exact
        and readable (`0x1fffa0000 (8 GiB - 384 KiB)`). It ends with the
        totals and a line `N passed, N failed`. A file that cannot be read
        or parsed is reported on standard error and the others still run.

    OPTIONS
        --format text|json
            text (default) as above; json prints an array with one object per
            file: every operation with its expected answer and the answer of
            each backend, structured ({"status":"errno","errno":"EEXIST",
            "errnoValue":17}, sizes and counts as numbers) with the trace's
            text and the reason, whether it held; each show's state; the
            file's errors (a file that did not parse: "ran":false) and notes.
        --junit PATH
            Also write a JUnit XML report to PATH: a suite per file, a test
            case per statement with a written answer or check, passing or
            failing, named FILE:LINE: STATEMENT (a repeat= line is one case;
            its failure names the first failing iteration and how many
            failed); a failure's message carries the reason; a file that did
            not parse is a suite of errors.
        --lane-report PATH
            With --backend both: also write the kernel lane's report of the
            run to PATH (typed records, not prose: the counts of the summary
            line, each line of the text report with its kind, the skipped
            files and the lines the model predicts in the kernel's log),
            which vfio-sim lane-summary reads. On the model: the text
            report's lines with its closing summary apart (the recording
            lane's lane-summary recorded reads it).
        --kernel VERSION
            The kernel release whose answers the model gives, for traces
            that do not say with a `kernel` statement: any release from
            5.10 on, with a patch level or a `uname -r` suffix
            (6.12.38+deb12-amd64), answered by the release rules of
            docs/RELEASES.md. One the lane does not boot (5.10, 6.1, 6.12,
            6.18, 7.3) is noted as answered from the release history; one
            past 7.3 answers as 7.3, with a note. Default: 7.3.
        --backend model|kernel|both
            model (default): the pure-Swift model. kernel: real ioctls on
            /dev/vfio (root, a device bound to vfio-pci, --group). both: model
            and kernel side by side, the model playing the kernel's IOMMU
            and version; every disagreement is printed as
            FILE:LINE: disagree: STATEMENT: kernel X, model Y, and the last
            line is "kernel 6.12 intel-iommu: N/M operations agree, ...".
            Exit status 1 only on a disagreement or an error. On a kernel,
            traces with a "# lane: skip REASON" comment or a kernel line
            naming another version are skipped, and each trace runs in its
            own process.
        --group /dev/vfio/N
            The VFIO group the kernel backend uses for the trace's first
            domain. Default: $VFIO_GROUP.
        --container type1|iommufd
            Which kernel code answers the type1 ioctls, for traces that do
            not say with a `container` statement: type1 (default,
            /dev/vfio/vfio) or iommufd's compatibility layer (/dev/iommu
            passed to VFIO_GROUP_SET_CONTAINER; kernels 6.2 and later).
        --verbose
            Also print the operations whose answers held.
        --explain
            Print every operation with the reason for its answer.
        --no-invariants
            Do not walk the model's invariants after every operation (faster
            on very long traces).
        --allow-module-params
            Let a kernel replay change vfio_iommu_type1.dma_entry_limit for a
            trace that sets dma-entry-limit (or when the machine's value is
            not the 65535 traces assume). The parameter is global: every VFIO
            container any process opens meanwhile gets the changed value.
            This process changes it, records the original in
            /run/vfio-sim/module-params first, and puts it back after each
            trace, whatever ends the trace's process, and on SIGINT, SIGTERM
            or SIGHUP; the next run restores a value a killed run left.
            Without it such a change is refused. Kernel runs take
            /run/vfio-sim/lock and wait for one another.

    EXIT STATUS
        0 all answers held; 1 an answer differed or the backends disagreed;
        2 a file could not be read or parsed (the others still ran).

    EXAMPLE
        vfio-sim replay Fixtures/*.trace
        vfio-sim replay --kernel 6.1 --format json Fixtures/info-6.1-unpadded.trace
        vfio-sim replay --explain docs/examples/dpdk-v1-hugepages.trace
    """

    static let plan = """
    NAME
        vfio-sim plan - what a scenario needs, then what it risks

    SYNOPSIS
        vfio-sim plan [--kernel VERSION] [--format text|json] FILE...

    DESCRIPTION
        Replays each trace on the model with its limits lifted (memlock
        unlimited, dma-entry-limit at its largest) and prints what it needs:
        the most memory locked at once (the RLIMIT_MEMLOCK to set, and the
        `ulimit -l` value in KiB), the most mappings at once (vfio_dma
        entries against dma_entry_limit), the IOMMU page-table entries by
        page size per domain at their peak and at the end. Then, against the
        trace's own memlock and dma-entry-limit, whether they allow it, and
        where not, the first operation refused (with the iteration of a
        repeat= line) and how many were:

            memlock   needs 4 GiB locked (ulimit -l 4194304; 4294967296 bytes), at most after line 8;
                      the trace allows 1 GiB: maps from line 8 (iteration 513 of 2048) fail with ENOMEM, 1536 in all

        Then the hazards, each class once per line with its first occurrence,
        its reason and how many more met it: v1 unmaps that removed nothing,
        less or more than asked; v2 unmaps refused because they would cut a
        mapping; EEXIST, which a client may ignore; ENOSPC, ENOMEM and other
        errnos; mappings ending at 2^64-1 before 6.18 (the kernel's searches
        cannot see them); UNMAP_ALL that left mappings behind; pages still
        charged with no mapping after a teardown or the last group's detach;
        a call the kernel would never return from (hang: the scenario ends
        there); mappings still pinned at the end. For each memory region
        without phys= a "memory" line says which layout the model assumed.
        Answers written in the trace are not compared (replay does that);
        the plan says how many differed.

    OPTIONS
        --format text|json
            json prints an array with one object per file, schema
            "vfiosim.plan/1" (docs/REPORTS.md): bytes and counts as integers.
        --kernel VERSION
            The release whose answers the model gives, for traces without a
            `kernel` line.
        --time
            Also the kernel time of the MAP_DMA and UNMAP_DMA calls, made
            under the trace's limits, by the cost model (docs/COSTS.md):

                kernel time: map 0.0301 s, unmap 0.0443 s (profile published-bare-metal, release 7.3)

            with the counts it comes from (pages by backing, physically
            contiguous chunks, IOMMU entries, first-touch faults of
            populated=no memory) and its largest terms. Refused calls are
            charged one ioctl each and listed under hazards. The default
            profile is fitted to published bare-metal figures; how far to
            trust it is in docs/COSTS.md. JSON: kernelTime.map and
            kernelTime.unmap, seconds.
        --cost-profile FILE
            The cost profile to use (implies --time): a file of
            `BENCH name=cost_TERM value=NS unit=ns` lines, or what
            `vfio-bench kernel-costs --out FILE` writes on a host (its
            constants hold for the release it was measured on).
        --threads N
            With --time: also the time when the trace's containers map
            (and unmap) on N threads at once, each container on one thread
            (its calls hold its lock), the longest first. At best: the
            process's mmap_lock and memory bandwidth are left out. JSON:
            kernelTime.parallel {threads, containers, map, unmap}.

    EXIT STATUS
        0 every file planned; 2 a file could not be read or parsed (the
        others are still planned), or the command line is wrong.

    EXAMPLE
        vfio-sim plan docs/examples/dpdk-v1-hugepages.trace docs/examples/qemu-8g-1g-pages.trace
        vfio-sim plan --format json docs/examples/dpdk-2048-memlock-1g.trace
        vfio-sim plan --time Benchmarks/published/lizhe-16g-hugetlb-6.18.trace
    """

    static let compare = """
    NAME
        vfio-sim compare - what changes when a trace moves from type1 to iommufd

    SYNOPSIS
        vfio-sim compare [--kernel VERSION] [--markdown | --format text|json] [--strict] FILE...

    DESCRIPTION
        Replays each trace on the model twice side by side, once with the
        type1 container (/dev/vfio/vfio) and once with iommufd's type1
        compatibility layer (/dev/iommu), whatever the trace's `container`
        line says, at the trace's kernel (or --kernel). For every operation
        or check whose answers differ it prints

            FILE:LINE: STATEMENT
                type1    ANSWER
                         why: RULE (kernel_function)
                iommufd  ANSWER
                         why: RULE (kernel_function)

        then per file "N of M statements differ". Both kinds meet the same
        state until their first difference, so later rows may follow from
        earlier ones. A trace pinned to a kernel before 6.2 (no iommufd) is
        reported as not comparable. Written answers are not checked (replay
        does that). --markdown prints one Markdown table instead;
        --format json an array with one object per file, schema
        "vfiosim.compare/1" (docs/REPORTS.md). --strict makes a difference
        fail (for CI: "does my mapping plan behave the same under iommufd?").

    EXIT STATUS
        0 every file was compared (the differences are the answer; with
        --strict: and none differs); 1 with --strict, some statement
        differs or a trace could not be compared (a kernel without
        iommufd); 2 a file could not be read or parsed (the others are still
        compared), or the command line is wrong.

    EXAMPLE
        vfio-sim compare Fixtures/unmap-v2-bisect.trace
        vfio-sim compare --markdown Fixtures/iommufd-*.trace
        vfio-sim compare --strict Fixtures/unmap-v2-empty-range.trace
    """

    static let host = """
    NAME
        vfio-sim host - the prologue of a trace for this machine

    SYNOPSIS
        vfio-sim host [--probe] [--report PATH]

    DESCRIPTION
        Prints the setup statements of a trace as this machine answers them,
        each followed by a comment saying where it was read:

            kernel RELEASE               uname(2) release
            memlock SIZE|unlimited       getrlimit(RLIMIT_MEMLOCK), soft limit
            cap-ipc-lock on|off          CapEff bit 14 of /proc/self/status
            dma-entry-limit N            /sys/module/vfio_iommu_type1/parameters
            domain gN iommu=PRESET ...   one per IOMMU group with a device
                                         bound to vfio-pci and a /dev/vfio/N

        PRESET comes from the device's sysfs iommu link: dmar* is VT-d,
        intel (39-bit) or intel48 (48 bits or wider) by the width in
        /sys/class/iommu/dmarN/intel-iommu/cap (MGAW, SAGAW); ivhd* is amd;
        a virtio device is virtio; an arm-smmu-v3 unit is smmuv3. With more
        than one IOMMU unit, instance=K tells the units apart (K: the unit's
        index in /sys/class/iommu, names in numeric order). reserved= lists
        every range of the group's reserved_regions.

        What the format has no statement for is a comment: the transparent
        hugepage mode and the hugetlb pools. So is what could not be read
        (dma_entry_limit when vfio_iommu_type1 is not loaded) and why there
        is no domain line (no IOMMU, nothing bound to vfio-pci). Without
        --probe nothing is opened: no ioctl is made, nothing changes.

    OPTIONS
        --probe
            Also attach each group alone to a scratch container (root, the
            group free), measure it (VFIO_IOMMU_GET_INFO, CHECK_EXTENSION
            DMA_CC) and check its preset for the running release against
            that: a preset that agrees is written alone; each key where it
            differs is written as measured (pgsizes=, leaves=, aperture= and
            reserved=, coherent=, msi-isolated=). MSI isolation is not
            compared under allow_unsafe_interrupts=Y. A last comment counts
            the presets that agree (# presets: A/P agree ...). A group that
            cannot be probed keeps its preset and the comment says why.
        --report PATH
            Also write to PATH, as records for vfio-sim lane-summary, how
            many presets agree of those checked and the lines that differ.

    EXIT STATUS
        0 the prologue was printed (a machine without VFIO included); 2 the
        command line is wrong.

    EXAMPLE
        vfio-sim host
    """

    static let help = """
    NAME
        vfio-sim help - the manual

    SYNOPSIS
        vfio-sim help [replay|plan|compare|fmt|explore|faults|record|whatif|host|new|lane-summary|trace|help]

    DESCRIPTION
        Without a topic: the main page. With a command: its page. `trace`:
        the trace format reference (the text of docs/TRACE_FORMAT.md):
        every statement, key, default and answer, and the kernel profiles.

    EXAMPLE
        vfio-sim help trace
    """

    static let fmt = """
    NAME
        vfio-sim fmt - print a trace in canonical form

    SYNOPSIS
        vfio-sim fmt FILE

    DESCRIPTION
        Parses FILE and prints it back with one statement per line, keys in a
        fixed order, addresses in hex and sizes with K/M/G/T suffixes where
        exact. A number keeps the trace's own spelling when it still says the
        same value (size=0x200000 stays). Comments and blank lines are kept.
        The output parses to the same statements. Exit status 2 when FILE
        does not parse.
    """

    static let explore = """
    NAME
        vfio-sim explore - generated sequences, properties and shrinking

    SYNOPSIS
        vfio-sim explore [--seed N] [--ops M] [--runs K] [--jobs J] [--shard I/S]
                         [--backend model|both] [--group /dev/vfio/N] [--out DIR]
                         [--container type1|iommufd] [--allow-module-params]
                         [--per-process P] [--report FILE]
        vfio-sim explore --merge FILE... [--out DIR] [--report FILE]

    DESCRIPTION
        Generates K sequences of M operations (seeds N, N+1, ...): a setup
        (v1 or v2, memlock, CAP_IPC_LOCK, dma_entry_limit, one to three
        domains, memory of every page size and layout), then maps, unmaps,
        vaddr updates, dirty tracking, GET_INFO, attach and detach, valid and
        not, in a small address space. After every operation it checks the
        model's invariants, that a failed operation changed nothing, that an
        unmap reports what it removed and a v2 unmap of exactly one mapping
        its size; after the sequence, that UNMAP_ALL empties the container.
        A call the model answers hang (the kernel would never return) ends
        the sequence: the state it leaves must keep the invariants, nothing
        after it is checked, and the summary counts it as a hazard, never
        as a finding. With --backend both every sequence also runs on the kernel (--group)
        and every disagreement is a finding (sequences then use one group and
        memory the kernel backend can allocate).

        --container iommufd generates sequences for iommufd's type1
        compatibility (`container iommufd`, kernels 6.2 on; on a kernel it
        needs /dev/iommu): RLIMIT_MEMLOCK of a few pages, unaligned or
        filled by the first map, maps that overlap, run past the process's
        memory, ask for no access or meet reserved and out-of-aperture IOVAs,
        unmaps that cut, span several areas or meet none. Its properties are
        iommufd's: the IOAS's invariants (areas, their pins and charges), a
        failed operation other than an unmap changes nothing (iommufd's unmap
        is not atomic: what it removed must be what it reports), a map adds
        exactly its area and charges every page it pins to the user's
        locked_vm within the limit (none with CAP_IPC_LOCK), no entry limit,
        only 4K IOMMU entries after VFIO_TYPE1_IOMMU, and UNMAP_ALL leaves
        nothing. Shrinking keeps the container line. With --backend both it
        runs one job: iommufd charges the user's locked_vm, shared by every
        process of the user, so parallel jobs would see each other's charges.

        Each kind of finding is shrunk (operations dropped, numbers made
        simple) and printed as a trace with the answers the first backend
        gave; --out DIR saves it as DIR/explore-seed-N.trace, ready to become
        a fixture.

        On a kernel, sequences that set dma_entry_limit need
        --allow-module-params (see vfio-sim help replay). There a child
        process runs up to P sequences in a row (--per-process, default 50;
        1 gives each its own process), and a fresh one follows any sequence
        that may leave locked memory charged to the process.

        --jobs J runs the model-only exploration on J threads (default: every
        core); the result is the same as one job's. With --backend both, J
        worker processes (default: every core, at most one per group) each
        drive a group of their own side by side; sequences that set
        dma_entry_limit (global to the machine) run after them, alone. --shard I/S explores the
        I-th of S equal slices of the seeds, so a batch system (a CI job
        matrix, GNU parallel, Slurm) runs one exploration across machines;
        --report FILE writes what a run found, and --merge FILE... adds the
        shards' reports into the one exploration they make (seed ranges must
        not overlap; the findings of the lowest seeds are kept). The last
        lines give sequences and operations per second.

    EXIT STATUS
        0 nothing found; 1 a finding; 2 bad command line.
    """

    static let faults = """
    NAME
        vfio-sim faults - kill kernel replays and check what they leave behind

    SYNOPSIS
        vfio-sim faults --allow-module-params [--runs N] [--seed S]
                        [--group /dev/vfio/N] [--verbose] [--report PATH] FILE...

    DESCRIPTION
        Replays the trace files on the kernel (root, a group bound to
        vfio-pci), N times (default 56), each killed at a random point
        chosen from seed S (default 1): the replay process, after its K-th
        ioctl, by SIGKILL, SIGTERM, SIGINT or a trap, or the supervising
        process that changes dma_entry_limit, by SIGKILL, SIGTERM or SIGINT.
        After each kill it checks that dma_entry_limit has its original value
        and its record under /run/vfio-sim is gone (after a supervisor's
        SIGKILL: that the next run restores it and says so), that the group
        has no container (nothing stays pinned) and that the next run opens
        it, maps and unmaps 64 KiB with 64 KiB locked, and leaves nothing
        changed. It prints every kill that left something (with --verbose,
        every kill and how the killed process ended), then

            faults: K/N kills survived (entry limit restored, group reusable, nothing pinned)

        With --report PATH it also writes those counts and lines as records
        for vfio-sim lane-summary faults.

    EXIT STATUS
        0 every kill survived; 1 some did not; 2 bad command line or the
        machine could not be used.
    """

    static let laneSummary = """
    NAME
        vfio-sim lane-summary - the kernel lane's lines from its guest's reports

    SYNOPSIS
        vfio-sim lane-summary --config NAME --iommu WORD --accel ACCEL
                              [--explorations N] [--note TEXT] [--verbose]
                              [--payload-exit RC] [--stderr FILE] [--sections FILE] REPORT
        vfio-sim lane-summary skipped --configs "A B ..." (A=REPORT... | --lines FILE)
        vfio-sim lane-summary skipped-lines CONFIG REPORT
        vfio-sim lane-summary explore-report REPORT
        vfio-sim lane-summary faults --config NAME [--payload-exit RC] REPORT
        vfio-sim lane-summary merged-exploration EXPLORE-REPORT...
        vfio-sim lane-summary recorded --label TEXT --client TEXT --answers N
                              --replay-exit RC TALLY

    DESCRIPTION
        The kernel lane (scripts/kernel-lane, docs/LANE.md) boots a guest per
        configuration; everything the guest prints comes back as REPORT, cut
        into sections by lines "== NAME". The sections the lane reads are
        reports written for it, never the text written for people:
        "fixtures report" (replay --lane-report), "dmesg" (the guest's
        kernel log), "explore report" and "explore more report" (explore
        --report), "host report" (host --probe --report), "host replay
        report" and "faults report" (faults --report). This command prints
        the configuration's lines as lane.sh shows them:

            kernel 6.12 intel-iommu: N/M operations agree, U not observable, S of F files skipped (N more not applicable), presets: P/P agree, accel tcg
              kernel log: K/L predicted lines found
              explored N sequences, M operations on model and kernel: 0 with findings
              host prologue + body: N/M operations agree, ..., 0 disagreements or setup differences

        each disagreement, error and kernel leak under the first line, the
        lines the model predicted and dmesg lacks under the second, every
        finding and rate under the third. WORD replaces the guest's IOMMU
        word (sysfs cannot tell 39- from 48-bit VT-d); N is the number of
        explorations the boot was to run, each of which must be clean.
        --sections FILE also writes the lines to FILE as JSON, the
        explorations' apart: {"before":[...],"exploration":[...],"after":[...]}
        (job.sh keeps it; merge.sh replaces the exploration of shards).

        skipped prints the "skipped fixtures:" summary of several
        configurations (each fixture once: no list when every configuration
        skipped it, [ran on ...] when most did, else where it was skipped);
        skipped-lines prints one configuration's as NAME: REASON<TAB>CONFIG,
        the lines --lines reads. explore-report prints the boot's
        exploration report, as explore --merge reads it. faults prints the
        fault lane's lines for a configuration. merged-exploration prints
        the exploration lines of one configuration whose seeds ran as
        shards (job.sh, merge.sh): the shards' reports added up, each kind
        of finding once, at its lowest seed. recorded prints the recording
        lane's line for a recorded trace replayed on the model (replay
        --lane-report TALLY), with the replay's lines when it failed.

    EXIT STATUS
        0 the configuration passed; 1 it did not (a disagreement, an error,
        a missing kernel log line, a finding, a preset that differs, no
        result); 2 a wrong command line or an unreadable file.
    """
}

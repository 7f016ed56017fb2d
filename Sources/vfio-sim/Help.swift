/// The manual pages `vfio-sim --help` and `vfio-sim help COMMAND` print.
enum Help {
    static let main = """
    NAME
        vfio-sim - simulate and verify the Linux VFIO IOMMU type1 interface

    SYNOPSIS
        vfio-sim replay [--format text|json] [--junit PATH] [--kernel VERSION]
                        [--backend model|kernel|both] [--group /dev/vfio/N]
                        [--verbose] [--no-invariants] [--allow-module-params] FILE...
        vfio-sim fmt FILE
        vfio-sim explore [--seed N] [--ops M] [--runs K] [--backend model|both]
                         [--group /dev/vfio/N] [--out DIR] [--allow-module-params]
        vfio-sim faults --allow-module-params [--runs N] [--seed S]
                        [--group /dev/vfio/N] FILE...
        vfio-sim help [COMMAND]

    DESCRIPTION
        vfio-sim answers VFIO type1 ioctls (VFIO_IOMMU_MAP_DMA, UNMAP_DMA,
        GET_INFO, CHECK_EXTENSION, DIRTY_PAGES, group attach and detach) the
        way Linux's vfio_iommu_type1 does: which call fails with which errno,
        how much memory is locked, how many IOMMU page-table entries of which
        size a mapping creates, what an unmap removes. Scenarios are written
        as .trace files with their expected answers (see README.md).

    COMMANDS
        replay   Run trace files and compare every answer with the one written.
        fmt      Print a trace in canonical form.
        explore  Generate operation sequences, check properties, compare
                 backends, and shrink every finding to a minimal trace.
        faults   Kill kernel replays at random points and check what they
                 leave behind (the kernel lane's fault-injection check).
        help     Show this page, or the page of one command.

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

        It ends with the totals and a line `N passed, N failed`.

    OPTIONS
        --format text|json
            text (default) as above; json prints an array with one object per
            file: every operation with its expected answer, the answer of each
            backend and whether it held.
        --junit PATH
            Also write a JUnit XML report (one test case per operation that
            has a written answer) to PATH.
        --kernel VERSION
            The kernel whose answers the model gives (6.1, 6.12, 7.0, ...) for
            traces that do not say with a `kernel` statement. Default: the
            newest behaviour modelled.
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
        --verbose
            Also print the operations whose answers held.
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
        2 a file could not be read or parsed.

    EXAMPLE
        vfio-sim replay Fixtures/*.trace
        vfio-sim replay --kernel 6.1 --format json Fixtures/info/*.trace
    """

    static let fmt = """
    NAME
        vfio-sim fmt - print a trace in canonical form

    SYNOPSIS
        vfio-sim fmt FILE

    DESCRIPTION
        Parses FILE and prints it back with one statement per line, keys in a
        fixed order, addresses in hex and sizes with K/M/G/T suffixes where
        exact. Comments and blank lines are kept. The output parses to the
        same statements. Exit status 2 when FILE does not parse.
    """

    static let explore = """
    NAME
        vfio-sim explore - generated sequences, properties and shrinking

    SYNOPSIS
        vfio-sim explore [--seed N] [--ops M] [--runs K]
                         [--backend model|both] [--group /dev/vfio/N] [--out DIR]
                         [--allow-module-params]

    DESCRIPTION
        Generates K sequences of M operations (seeds N, N+1, ...): a setup
        (v1 or v2, memlock, CAP_IPC_LOCK, dma_entry_limit, one to three
        domains, memory of every page size and layout), then maps, unmaps,
        vaddr updates, dirty tracking, GET_INFO, attach and detach, valid and
        not, in a small address space. After every operation it checks the
        model's invariants, that a failed operation changed nothing, that an
        unmap reports what it removed and a v2 unmap of exactly one mapping
        its size; after the sequence, that UNMAP_ALL empties the container.
        With --backend both every sequence also runs on the kernel (--group)
        and every disagreement is a finding (sequences then use one group and
        memory the kernel backend can allocate).

        Each kind of finding is shrunk (operations dropped, numbers made
        simple) and printed as a trace with the answers the first backend
        gave; --out DIR saves it as DIR/explore-seed-N.trace, ready to become
        a fixture.

        On a kernel, sequences that set dma_entry_limit need
        --allow-module-params (see vfio-sim help replay).

    EXIT STATUS
        0 nothing found; 1 a finding; 2 bad command line.
    """

    static let faults = """
    NAME
        vfio-sim faults - kill kernel replays and check what they leave behind

    SYNOPSIS
        vfio-sim faults --allow-module-params [--runs N] [--seed S]
                        [--group /dev/vfio/N] [--verbose] FILE...

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

    EXIT STATUS
        0 every kill survived; 1 some did not; 2 bad command line or the
        machine could not be used.
    """
}

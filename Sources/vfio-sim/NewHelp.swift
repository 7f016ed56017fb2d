extension Help {
    static let new = """
    NAME
        vfio-sim new - write the DMA mapping plan a program makes, as a trace

    SYNOPSIS
        vfio-sim new dpdk|qemu|spdk|cloud-hypervisor|pool [--memory SIZE]
                     [--backing 4K|thp|2M|1G] [--phys scattered|contiguous]
                     [--iova-mode va|pa] [--machine q35|pc] [--devices N]
                     [--containers N] [--bar SIZE] [--coalesced] [--prealloc yes|no]
                     [--iommu intel|intel48|amd|virtio|smmuv3] [--kernel RELEASE]
                     [--memlock SIZE|unlimited] [--cap-ipc-lock on|off]
                     [--dma-entry-limit N] [--seed N] [-o FILE]

    DESCRIPTION
        Writes the VFIO calls the program makes for the setup described:
        its memory as `memory` statements, each group as a `domain` behind
        the IOMMU named, every MAP_DMA/UNMAP_DMA in the program's order, and
        at the end of the map phase and after the teardown `check` lines
        (locked memory, mappings, page-table entries). Every answer after
        `=>` is the model's for --kernel (default: the newest modelled), so
        `vfio-sim replay` passes on it, `vfio-sim plan` says what it needs
        and `vfio-sim replay --backend both` shows where a real kernel
        differs. Each trace's comments say where the program's shape comes
        from. Without -o the trace goes to standard output.

    PROGRAMS
        dpdk     The EAL's default container (the v1 interface, run as root):
                 2M or 1G hugepages in memseg lists (4K: --no-huge);
                 --iova-mode va maps each list's pages at once, pa every
                 hugepage at its physical address. Nothing is unmapped at
                 exit: the groups close.
        qemu     Guest RAM at its guest-physical addresses (q35 or pc: where
                 RAM stops below 4G), the BIOS read-only below 4G, the
                 firmware's ROM shadowing (an unmap and maps again around
                 768K-1M), each device's BAR for peer-to-peer with --bar;
                 memlock as libvirt sets it (RAM + 1G); each container maps
                 the RAM again.
        spdk     Buffers of 1-4 2M pages registered as allocated and freed in
                 another order; --coalesced registers a buffer at once and
                 unregisters it 2M at a time.
        cloud-hypervisor
                 Guest RAM below 3G and from 4G, one map per region, memlock
                 unlimited.
        pool     One mapping of a userspace driver's whole DMA pool.

    OPTIONS
        --memory SIZE       memory mapped (DPDK -m, guest RAM, pool); 1G
        --backing B         4K, thp (anonymous on transparent hugepages), 2M or
                            1G hugetlbfs; per program: dpdk/spdk 2M, qemu and
                            cloud-hypervisor thp, pool 4K
        --phys P            physical layout of the pages (default: as Linux
                            lays out that backing)
        --devices N         groups (1-64), each `domain devN iommu=...`
        --containers N      qemu, cloud-hypervisor: devices spread over N
                            containers, each mapping all RAM
        --bar SIZE          qemu, cloud-hypervisor: a BAR per device, mapped
                            (a GPU's: `plan --time` on 6.14 and 6.15 shows what
                            huge pfnmap changed)
        --prealloc yes|no   whether the memory is there before the first map;
                            not, the first MAP_DMA faults it in (`populated=no`:
                            no answer changes, `plan --time` does); qemu: yes
                            on hugetlbfs (libvirt), no on 4K and thp;
                            cloud-hypervisor: no; dpdk, spdk: always yes
        --iommu P           the preset every group sits behind; intel
        --kernel RELEASE    `kernel` line: whose answers (6.8, 5.15.0-91-generic)
        --memlock, --cap-ipc-lock, --dma-entry-limit
                            the process's limits, instead of the program's
        --seed N            placement of scattered pages and SPDK buffers; 1

    EXAMPLES
        vfio-sim new qemu --memory 16G --backing 1G -o /tmp/guest.trace
        vfio-sim plan /tmp/guest.trace
        vfio-sim new dpdk --memory 4G --iova-mode pa --kernel 6.8 --cap-ipc-lock off -o /tmp/dpdk.trace
        vfio-sim new qemu --memory 8G --devices 2 --containers 2 --memlock 18G -o /tmp/two.trace
    """
}

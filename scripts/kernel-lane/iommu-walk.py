#!/usr/bin/env python3
"""Host side of `check ptes=` in the kernel lane: counts the leaf entries of
a device's IOMMU page table (VT-d second level, or AMD-Vi's v1 table) by
reading guest memory through the QEMU monitor.

Usage: iommu-walk.py --monitor SOCK --serial SOCK [--trace-log FILE]
                     [--timeout SECS] [--log FILE]

Both sockets are QEMU servers (`-monitor unix:SOCK,server=on,wait=off`,
`-serial unix:SOCK,server=on,wait=off`); this program connects to them as
soon as they appear and serves the guest's requests until QEMU exits.

The guest (KernelBackend.pageTableEntries) writes on its serial port

    PTES <DMAR register base, hex> <bus> <devfn>

and gets back `OK 4096:N 2097152:N 1073741824:N` (sizes with no entries
left out) or `ERR why`; for `check pte iova=X` it writes

    PTE <DMAR register base, hex> <bus> <devfn> <iova, hex>

and gets back `OK <page size>` for the leaf entry that translates the IOVA,
`OK none` when no entry does, or `ERR why`. The walk is the one in the VT-d specification for
legacy (non-scalable) mode, the mode QEMU's intel-iommu runs by default:
RTADDR_REG (register base + 0x20) -> root entry of the bus -> context entry
of devfn -> second-level table (3 levels for a 39-bit address width, 4 for
48), a leaf being a present entry at level 1 (4K) or one with the PS bit at
level 2 (2M) or 3 (1G). An entry is present when it allows read or write.

On amd-iommu the guest names the unit as `amd:<MMIO base, hex>` and the
walk is the AMD I/O virtualization specification's (the v1 table, the one
QEMU's amd-iommu emulates and Linux uses for VFIO domains): the Device
Table Base Address register (MMIO base + 0) -> the device's 32-byte entry
at index bus<<8|devfn (valid and translation-valid bits, the paging mode
= the root level, the root pointer) -> levels of 512 entries. An entry is
present when its PR bit is set; its NextLevel field (bits 11:9) is 0 for a
leaf of the level's natural size (4K, 2M, 1G, ...), 7 for a leaf whose
size is written in its address (bits below the size's top bit set, that
bit clear): such a page spans several entries of its level, each holding
the same encoded address, and is counted once, as the IOMMU driver mapped
it (one page of that size).

On virtio-iommu the page table is QEMU's own: the driver sends MAP and
UNMAP requests and QEMU keeps each domain's mappings. The guest names the
unit as `virtio:0`, and the walker answers from QEMU's trace events
(`--trace-log`, the file QEMU's `-D` writes with `-trace
enable=virtio_iommu_map` and the others named in lane.sh): attach and
detach (which endpoint, bus<<8|devfn, is in which domain), map (a range
and its physical start), unmap_done (a mapping an UNMAP removed),
put_domain (a domain freed with its mappings). A MAP request is what the
driver's map_pages sent for one `iommu_pgsize` step: one page of a
power-of-two size, or several when their count was more than one; each
is split into the largest pages aligned in both IOVA and physical
address, as `iommu_pgsize` picks them from the all-sizes mask QEMU
offers.
"""
import argparse
import re
import socket
import sys
import time

ADDR = 0x000F_FFFF_FFFF_F000  # address bits 51:12 of every entry
LINE = re.compile(r"^([0-9a-fA-F]+):((?:\s+0x[0-9a-fA-F]+)+)\s*$")


class WalkError(Exception):
    pass


class Monitor:
    """The human monitor (HMP) over a unix socket."""

    def __init__(self, sock):
        self.sock = sock
        self.sock.settimeout(30)
        self.read_prompt()

    def read_prompt(self):
        buf = b""
        while not buf.endswith(b"(qemu) "):
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise WalkError("the QEMU monitor closed")
            buf += chunk
        return buf.decode("utf-8", "replace")

    def qwords(self, addr, count):
        """`count` little-endian u64s of guest-physical memory at `addr`."""
        self.sock.sendall(f"xp /{count}gx {addr:#x}\n".encode())
        out = self.read_prompt()
        values = []
        for line in out.replace("\r", "\n").split("\n"):
            m = LINE.match(line.strip())
            if m:
                values += [int(v, 16) for v in m.group(2).split()]
        if len(values) != count:
            raise WalkError(f"xp at {addr:#x} gave {len(values)} of {count} values")
        return values


def second_level(mon, base, bus, devfn):
    """(table address, levels) of the device's second-level page table, or
    None when the device translates nothing (no context, or blocked)."""
    rtaddr = mon.qwords(base + 0x20, 1)[0]
    if rtaddr & (1 << 11):
        raise WalkError("the root table is in scalable mode; only legacy mode is walked")
    root = mon.qwords((rtaddr & ADDR) + bus * 16, 2)
    if not root[0] & 1:
        return None  # no context table for the bus: nothing translated
    ctx = mon.qwords((root[0] & ADDR) + devfn * 16, 2)
    if not ctx[0] & 1:
        return None  # the device is blocked: no page table
    if (ctx[0] >> 2) & 3 == 2:
        raise WalkError("the device is in pass-through mode")
    levels = {1: 3, 2: 4, 3: 5}.get(ctx[1] & 7)
    if levels is None:
        raise WalkError(f"unknown address width {ctx[1] & 7}")
    return ctx[0] & ADDR, levels


def leaf(mon, base, bus, devfn, iova):
    """The page size of the leaf entry translating `iova`, or None."""
    top = second_level(mon, base, bus, devfn)
    if top is None:
        return None
    addr, levels = top
    if iova >> (12 + 9 * levels):
        return None  # above the address width: never translated
    for level in range(levels, 0, -1):
        e = mon.qwords(addr + ((iova >> (12 + 9 * (level - 1))) & 511) * 8, 1)[0]
        if not e & 3:
            return None
        if level == 1 or (level <= 3 and e & 0x80):
            return 4096 << (9 * (level - 1))
        addr = e & ADDR
    return None


def walk(mon, base, bus, devfn):
    counts = {}
    top = second_level(mon, base, bus, devfn)
    if top is None:
        return counts
    addr, levels = top

    def table(addr, level):
        for e in mon.qwords(addr, 512):
            if not e & 3:
                continue
            if level == 1:
                counts[4096] = counts.get(4096, 0) + 1
            elif level <= 3 and e & 0x80:
                size = 4096 << (9 * (level - 1))
                counts[size] = counts.get(size, 0) + 1
            else:
                table(e & ADDR, level - 1)

    table(addr, levels)
    return counts


AMD_ADDR = 0x000F_FFFF_FFFF_F000  # bits 51:12 of a device table entry, PDE or PTE


def amd_root(mon, base, bus, devfn):
    """(table address, levels) of the device's v1 page table, or None when
    the device translates nothing (entry not valid, or no translation)."""
    devtab = mon.qwords(base, 1)[0]
    entries = ((devtab & 0x1FF) + 1) * 4096 // 32
    devid = bus << 8 | devfn
    if devid >= entries:
        raise WalkError(f"device {devid:#x} is past the device table ({entries} entries)")
    dte = mon.qwords((devtab & AMD_ADDR) + devid * 32, 1)[0]
    if not dte & 1 or not dte & 2:
        return None  # not valid, or translation not valid: nothing translated
    mode = (dte >> 9) & 7
    if mode == 0:
        raise WalkError("the device is in pass-through mode (paging mode 0)")
    if mode == 7:
        raise WalkError("reserved paging mode 7")
    return dte & AMD_ADDR, mode


def amd_leaf_size(e, level):
    """The page size of a present leaf entry at `level`, or None when the
    entry points to a lower table."""
    nl = (e >> 9) & 7
    if nl == 0:
        return 4096 << (9 * (level - 1))
    if nl == 7:
        frame = (e & AMD_ADDR) >> 12
        ones = 0
        while frame & 1:
            ones += 1
            frame >>= 1
        return 4096 << (ones + 1)
    return None


def amd_next_level(e, level):
    """The level of the table a present non-leaf entry at `level` points
    to (its NextLevel field), which must be below `level`."""
    nl = (e >> 9) & 7
    if nl >= level:
        raise WalkError(f"entry at level {level} points to level {nl}")
    return nl


def amd_leaf(mon, base, bus, devfn, iova):
    """The page size of the leaf entry translating `iova`, or None."""
    top = amd_root(mon, base, bus, devfn)
    if top is None:
        return None
    addr, level = top
    if iova >> min(64, 12 + 9 * level):
        return None  # above what the root level covers
    while level >= 1:
        e = mon.qwords(addr + ((iova >> (12 + 9 * (level - 1))) & 511) * 8, 1)[0]
        if not e & 1:
            return None
        size = amd_leaf_size(e, level)
        if size is not None:
            return size
        addr, level = e & AMD_ADDR, amd_next_level(e, level)
    return None


def amd_walk(mon, base, bus, devfn):
    counts = {}
    top = amd_root(mon, base, bus, devfn)
    if top is None:
        return counts
    addr, levels = top

    def table(addr, level):
        for e in mon.qwords(addr, 512):
            if not e & 1:
                continue
            size = amd_leaf_size(e, level)
            if size is None:
                table(e & AMD_ADDR, amd_next_level(e, level))
                continue
            # A page larger than the level's entries fills size/natural of
            # them, each counted as that fraction of one page.
            natural = 4096 << (9 * (level - 1))
            counts[size] = counts.get(size, 0) + (natural / size if size > natural else 1)

    table(addr, levels)
    return {size: round(n) for size, n in counts.items()}


EVENT = re.compile(r"virtio_iommu_(map|unmap_done|attach|detach|put_domain) (.*)$")
FIELD = re.compile(r"(\w+)=(0x[0-9a-fA-F]+|\d+)")


class VirtioMappings:
    """QEMU's virtio-iommu domains, rebuilt from its trace log."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.domains = {}    # domain -> {virt_start: (virt_end, phys_start)}
        self.endpoints = {}  # endpoint (bus<<8|devfn) -> domain

    def catch_up(self):
        """Reads the events written since the last request."""
        if self.path is None:
            raise WalkError("no QEMU trace log (--trace-log) to read virtio-iommu's mappings from")
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError as e:
            raise WalkError(f"cannot read the trace log: {e}")
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            m = EVENT.search(raw.decode("ascii", "replace"))
            if m:
                self.apply(m.group(1), {k: int(v, 0) for k, v in FIELD.findall(m.group(2))})

    def apply(self, event, f):
        if event == "attach":
            self.endpoints[f["endpoint"]] = f["domain"]
            self.domains.setdefault(f["domain"], {})
        elif event == "detach":
            self.endpoints.pop(f["endpoint"], None)
        elif event == "put_domain":
            self.domains.pop(f["domain"], None)
        elif event == "map":
            self.domains.setdefault(f["domain"], {})[f["virt_start"]] = (f["virt_end"], f["phys_start"])
        elif event == "unmap_done":
            self.domains.get(f["domain"], {}).pop(f["virt_start"], None)

    def pages(self, bus, devfn):
        """(iova, size) of every page in the domain of the endpoint."""
        self.catch_up()
        domain = self.endpoints.get(bus << 8 | devfn)
        out = []
        for start, (end, phys) in sorted(self.domains.get(domain, {}).items()) if domain is not None else []:
            iova, left = start, end - start + 1
            while left:
                merged = iova | phys
                size = min(merged & -merged if merged else 1 << 63, 1 << (left.bit_length() - 1))
                out.append((iova, size))
                iova, phys, left = iova + size, phys + size, left - size
        return out


def virtio_walk(state, bus, devfn):
    counts = {}
    for _, size in state.pages(bus, devfn):
        counts[size] = counts.get(size, 0) + 1
    return counts


def virtio_leaf(state, bus, devfn, iova):
    for start, size in state.pages(bus, devfn):
        if start <= iova < start + size:
            return size
    return None


def unit(words, virtio):
    """The walk for the unit a request names: VT-d by register base,
    AMD-Vi by `amd:<MMIO base>`, virtio-iommu by `virtio:0`."""
    if words[1].startswith("virtio:"):
        return (lambda _, *a: virtio_walk(virtio, *a), lambda _, *a: virtio_leaf(virtio, *a)), (int(words[2]), int(words[3]))
    if words[1].startswith("amd:"):
        return (amd_walk, amd_leaf), (int(words[1][4:], 16), int(words[2]), int(words[3]))
    return (walk, leaf), (int(words[1], 16), int(words[2]), int(words[3]))


def connect(path, deadline):
    while True:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.time() > deadline:
                return None
            time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--monitor", required=True)
    ap.add_argument("--serial", required=True)
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for QEMU's sockets")
    ap.add_argument("--trace-log", help="QEMU's trace log, for virtio-iommu")
    ap.add_argument("--log")
    args = ap.parse_args()
    log = open(args.log, "a") if args.log else None

    def note(msg):
        if log:
            log.write(msg + "\n")
            log.flush()

    deadline = time.time() + args.timeout
    # run-in-guest.sh boots a second QEMU on the same sockets when the first
    # guest kernel panicked before the payload: after one QEMU closes them
    # the walker waits for the next (lane.sh ends it once the guest is done).
    while serve(args, note, deadline):
        note("QEMU closed the sockets; waiting for another boot")
    return 0


def serve(args, note, deadline):
    """Answers one QEMU's PTES requests; True when it exited, False when
    none came before the deadline."""
    serial = connect(args.serial, deadline)
    if serial is None:
        note("no QEMU serial socket")
        return False
    monsock = connect(args.monitor, deadline)
    if monsock is None:
        note("no QEMU monitor socket")
        return False
    try:
        mon = Monitor(monsock)
    except (WalkError, OSError) as e:
        # This QEMU went away before its monitor spoke: wait for the next.
        note(f"the QEMU monitor did not answer: {e}")
        serial.close()
        monsock.close()
        return True
    virtio = VirtioMappings(args.trace_log)
    pending = b""
    while True:
        chunk = serial.recv(4096)
        if not chunk:
            serial.close()
            monsock.close()
            return True  # QEMU exited
        pending += chunk
        while b"\n" in pending:
            raw, pending = pending.split(b"\n", 1)
            words = raw.decode("ascii", "replace").strip().split()
            if not ((len(words) == 4 and words[0] == "PTES") or (len(words) == 5 and words[0] == "PTE")):
                continue  # noise on the line (e.g. before the guest set raw mode)
            start = time.time()
            try:
                (walker, leaf_of), where = unit(words, virtio)
                if words[0] == "PTE":
                    size = leaf_of(mon, *where, int(words[4], 16))
                    reply = f"OK {size if size is not None else 'none'}"
                else:
                    counts = walker(mon, *where)
                    reply = "OK" + "".join(f" {size}:{n}" for size, n in sorted(counts.items()))
            except (WalkError, OSError, ValueError) as e:
                reply = f"ERR {e}"
            note(f"{' '.join(words)} -> {reply} ({(time.time() - start) * 1000:.0f} ms)")
            serial.sendall((reply + "\n").encode())


if __name__ == "__main__":
    sys.exit(main())

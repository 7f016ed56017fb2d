#!/usr/bin/env python3
"""Host side of `check ptes=` in the kernel lane: counts the leaf entries of
a device's VT-d second-level page table by reading guest memory through the
QEMU monitor.

Usage: vtd-walk.py --monitor SOCK --serial SOCK [--timeout SECS] [--log FILE]

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
                unit = (int(words[1], 16), int(words[2]), int(words[3]))
                if words[0] == "PTE":
                    size = leaf(mon, *unit, int(words[4], 16))
                    reply = f"OK {size if size is not None else 'none'}"
                else:
                    counts = walk(mon, *unit)
                    reply = "OK" + "".join(f" {size}:{n}" for size, n in sorted(counts.items()))
            except (WalkError, OSError, ValueError) as e:
                reply = f"ERR {e}"
            note(f"{' '.join(words)} -> {reply} ({(time.time() - start) * 1000:.0f} ms)")
            serial.sendall((reply + "\n").encode())


if __name__ == "__main__":
    sys.exit(main())

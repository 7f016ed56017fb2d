#!/usr/bin/env python3
"""The kernel lane's results as JSON, one file per job, and their merge.

    lane-json.py make --config C [--shard I/N] --explore "RUNS OPS SEED" --exit RC --accel ACCEL
                      --seconds S --lane-output FILE --skipped FILE --explore-report FILE --sections FILE
    lane-json.py lines --order "CONFIGS" [--binary VFIO_SIM] RESULT.json...
    lane-json.py skipped RESULT.json...
    lane-json.py junit RESULT.json... > junit.xml

`make` (job.sh) turns one job's lane output into a result: what lane.sh
printed for the configuration (its line, disagreements, exploration, host
replay; lane.sh --skipped-lines keeps the skipped-fixture summary out of
it) and the same lines with the exploration's apart (lane.sh --sections),
the skipped fixtures as `vfio-sim lane-summary skipped-lines` gives
them, the exploration's report (vfio-sim explore --report), the
accelerator and the exit status. Nothing here reads a report's prose: the
lines are carried as lane.sh printed them, and the shards' explorations
are added up by `vfio-sim lane-summary merged-exploration`.
`lines` (merge.sh) prints every configuration's lines as lane.sh prints
them, in lane.sh's order; the shards of one configuration become one: the
first shard's fixture lines (every shard ran the same fixtures; a shard
whose fixture lines differ is named), and one exploration, the shards'
reports added up by `vfio-sim lane-summary merged-exploration` (each kind
of finding once, at its lowest seed). Its exit status is 1 when a job failed. `skipped`
prints the skipped-fixture lines for `vfio-sim lane-summary skipped --lines`.
`junit` writes one test case per configuration.
"""
import json
import os
import subprocess
import sys
import tempfile
from xml.sax.saxutils import escape, quoteattr

FORMAT = 1


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def make(args):
    opts = dict(zip(args[0::2], args[1::2]))
    # lane.sh ran the one configuration, its skipped fixtures written apart.
    lines = read(opts["--lane-output"]).splitlines()
    accel = opts.get("--accel", "")
    report = opts.get("--explore-report", "")
    sections = opts.get("--sections", "")
    result = {
        "format": FORMAT,
        "config": opts["--config"],
        "shard": opts.get("--shard") or None,
        "explore": opts.get("--explore", ""),
        "exit": int(opts["--exit"]),
        "seconds": int(opts.get("--seconds", "0")),
        "accel": accel,
        "lines": lines,
        "skipped": [s for s in read(opts["--skipped"]).splitlines() if s] if opts.get("--skipped") else [],
        "explore_report": read(report) if report and os.path.exists(report) else "",
        "sections": json.loads(read(sections)) if sections and os.path.exists(sections) else None,
    }
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def load(paths):
    results = []
    for p in paths:
        try:
            r = json.loads(read(p))
        except (OSError, ValueError) as e:
            print(f"{p}: error: not a lane result: {e}", file=sys.stderr)
            sys.exit(2)
        if r.get("format") != FORMAT or "config" not in r or "lines" not in r:
            print(f"{p}: error: not a lane result of format {FORMAT}", file=sys.stderr)
            sys.exit(2)
        r["_path"] = p
        results.append(r)
    return results


def grouped(results, order):
    """Results by configuration: lane.sh's order first, then as given."""
    by = {}
    for r in results:
        by.setdefault(r["config"], []).append(r)
    names = [c for c in order.split() if c in by] + [c for c in by if c not in order.split()]
    for c in names:
        shards = sorted(by[c], key=lambda r: int((r.get("shard") or "1/1").split("/")[0]))
        yield c, shards


def split_explore(result):
    """(before, exploration, after): the lines lane-summary wrote apart
    (--sections); a result without them is all `before`."""
    sections = result.get("sections")
    if not sections:
        return result["lines"], [], []
    return sections["before"], sections["exploration"], sections["after"]


def merged_exploration(shards, binary):
    """The shards' explorations as one, through `vfio-sim lane-summary
    merged-exploration`, which prints them as lane.sh would."""
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, r in enumerate(shards):
            if not r.get("explore_report"):
                return None, f"shard {r.get('shard')} has no exploration report", True
            p = os.path.join(d, f"{i}.report")
            with open(p, "w", encoding="utf-8") as f:
                f.write(r["explore_report"])
            paths.append(p)
        out = subprocess.run([binary, "lane-summary", "merged-exploration", *paths], capture_output=True, text=True)
        if out.returncode not in (0, 1):
            return None, (out.stderr or out.stdout).strip(), True
        return out.stdout.splitlines(), None, out.returncode != 0


def lines(args):
    order, binary, paths = "", "vfio-sim", []
    it = iter(args)
    for a in it:
        if a == "--order":
            order = next(it)
        elif a == "--binary":
            binary = next(it)
        else:
            paths.append(a)
    failed = False
    for config, shards in grouped(load(paths), order):
        failed = failed or any(r["exit"] != 0 for r in shards)
        first = shards[0]["lines"]
        if len(shards) == 1:
            print("\n".join(first))
            continue
        before, _, after = split_explore(shards[0])
        for r in shards[1:]:
            b, _, a = split_explore(r)
            if b != before or a != after:
                print(f"  (shard {r.get('shard')} of {config} saw other fixture answers: {r['_path']})")
                failed = True
        explored, problem, found = merged_exploration(shards, binary)
        if problem:
            explored = [f"  exploration: no result ({problem})"]
        failed = failed or found
        print("\n".join(before + explored + after))
    return 1 if failed else 0


def skipped(args):
    seen = set()
    for r in load(args):
        # The shards of a configuration skip the same fixtures: once.
        if r["config"] in seen:
            continue
        seen.add(r["config"])
        for s in r.get("skipped", []):
            print(s)
    return 0


def junit(args):
    cases, failures = [], 0
    for config, shards in grouped(load(args), ""):
        ok = all(r["exit"] == 0 for r in shards)
        failures += 0 if ok else 1
        secs = sum(r.get("seconds", 0) for r in shards)
        body = "\n".join(l for r in shards for l in r["lines"])
        case = f'  <testcase classname="kernel-lane" name={quoteattr(config)} time="{secs}">'
        if not ok:
            first = next((l for l in shards[0]["lines"] if l.strip()), "no result")
            case += f"\n    <failure message={quoteattr(first)}>{escape(body)}</failure>\n  "
        else:
            case += f"\n    <system-out>{escape(body)}</system-out>\n  "
        cases.append(case + "</testcase>")
    print('<?xml version="1.0" encoding="UTF-8"?>')
    print(f'<testsuite name="kernel-lane" tests="{len(cases)}" failures="{failures}">')
    print("\n".join(cases))
    print("</testsuite>")
    return 0


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("make", "lines", "skipped", "junit"):
        print(__doc__, file=sys.stderr)
        return 2
    return {"make": make, "lines": lines, "skipped": skipped, "junit": junit}[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())

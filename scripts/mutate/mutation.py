#!/usr/bin/env python3
"""Reads scripts/mutate/mutations.txt and applies one mutation to a tree.

A mutation is a block:

    mutation ID
    file PATH                  (relative to the package root)
    rule WHAT THE ORIGINAL CODE ENCODES (one line, for the report)
    equivalent WHY             (optional: the change cannot alter any answer)
    --- old
    exact original lines
    --- new
    replacement lines (may be none: the old lines are deleted)
    --- end

Lines starting with '#' outside old/new are comments. The old text must
occur exactly once in the file, or the mutation does not apply.

Usage:
    mutation.py list MUTATIONS              one line per mutation: ID<TAB>equivalent reason (or empty)
    mutation.py apply MUTATIONS ID ROOT     apply ID to the tree at ROOT (exit 3: does not apply)
    mutation.py file MUTATIONS ID           the file ID changes
    mutation.py check MUTATIONS ROOT        every mutation matches ROOT exactly once (nothing written)
"""
import sys


class Mutation:
    def __init__(self, ident):
        self.ident = ident
        self.file = None
        self.rule = ""
        self.equivalent = ""
        self.old = None
        self.new = None


def parse(path):
    mutations = []
    current = None
    section = None   # None, "old", "new"
    buf = []
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if section is not None:
                if line == "--- new" and section == "old":
                    current.old = buf
                    buf, section = [], "new"
                elif line == "--- end" and section == "new":
                    current.new = buf
                    buf, section = [], None
                elif line.startswith("--- "):
                    sys.exit(f"{path}:{number}: unexpected '{line}' in the {section} text of {current.ident}")
                else:
                    buf.append(line)
                continue
            if not line.strip() or line.startswith("#"):
                continue
            word, _, rest = line.partition(" ")
            if word == "mutation":
                current = Mutation(rest.strip())
                if any(m.ident == current.ident for m in mutations):
                    sys.exit(f"{path}:{number}: mutation {current.ident} listed twice")
                mutations.append(current)
            elif current is None:
                sys.exit(f"{path}:{number}: '{word}' before the first 'mutation'")
            elif word == "file":
                current.file = rest.strip()
            elif word == "rule":
                current.rule = rest.strip()
            elif word == "equivalent":
                current.equivalent = rest.strip()
            elif line == "--- old":
                section, buf = "old", []
            else:
                sys.exit(f"{path}:{number}: cannot read '{line}'")
    if section is not None:
        sys.exit(f"{path}: the last mutation ({current.ident}) has no '--- end'")
    for m in mutations:
        if m.file is None or m.old is None or m.new is None:
            sys.exit(f"{path}: mutation {m.ident} needs a file, an old and a new text")
        if not m.old:
            sys.exit(f"{path}: mutation {m.ident} has an empty old text")
    return mutations


def find(mutations, ident):
    for m in mutations:
        if m.ident == ident:
            return m
    sys.exit(f"no mutation {ident}")


def mutated(m, root):
    """The mutated text of m's file, or an error message."""
    path = f"{root}/{m.file}"
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        return None, f"{m.file}: {e.strerror}"
    old = "\n".join(m.old) + "\n"
    new = "\n".join(m.new) + "\n" if m.new else ""
    n = text.count(old)
    if n != 1:
        return None, f"{m.file}: the original text occurs {n} times, not once"
    return text.replace(old, new), None


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    command, mutations = argv[1], parse(argv[2])
    if command == "list" and len(argv) == 3:
        for m in mutations:
            print(f"{m.ident}\t{m.equivalent}")
    elif command == "file" and len(argv) == 4:
        print(find(mutations, argv[3]).file)
    elif command == "apply" and len(argv) == 5:
        m = find(mutations, argv[3])
        text, error = mutated(m, argv[4])
        if error:
            print(error, file=sys.stderr)
            return 3
        with open(f"{argv[4]}/{m.file}", "w", encoding="utf-8") as f:
            f.write(text)
    elif command == "check" and len(argv) == 4:
        bad = 0
        for m in mutations:
            _, error = mutated(m, argv[3])
            if error:
                print(f"did not apply  {m.ident}: {error}")
                bad += 1
        print(f"{len(mutations) - bad}/{len(mutations)} mutations apply")
        return 3 if bad else 0
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""calls.py - which C files of a folder call functions defined in which others.

Reads the .c files of a folder as text: a function is defined where a line
in column 0 names it before '(' and its body opens; a call is that name
followed by '(' in another file (comments and strings removed first). A
name defined static is local to its file. Prints one line per file: the
files it calls. With --check, exits 1 and names the files of any circle.

Usage: tools/calls.py DIR [--check]
"""
import os
import re
import sys

DEF = re.compile(r"^(?!static\b)[A-Za-z_][\w \*]*?\b(\w+)\s*\([^;]*$")
STATIC_DEF = re.compile(r"^static\b[\w \*]*?\b(\w+)\s*\(")
CALL = re.compile(r"\b([A-Za-z_]\w*)\s*\(")


def strip(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r'"(\\.|[^"\\\n])*"', '""', text)
    return re.sub(r"'(\\.|[^'\\\n])*'", "''", text)


def graph(folder):
    files = sorted(f for f in os.listdir(folder) if f.endswith(".c"))
    text = {f: strip(open(os.path.join(folder, f), errors="replace").read()) for f in files}
    owner, local = {}, {f: set() for f in files}
    for f in files:
        for line in text[f].splitlines():
            m = STATIC_DEF.match(line)
            if m:
                local[f].add(m.group(1))
                continue
            m = DEF.match(line.split("{", 1)[0])
            if m and not line.startswith(("typedef", "struct", "enum", "#")):
                owner.setdefault(m.group(1), f)
    edges = {f: set() for f in files}
    for f in files:
        for name in CALL.findall(text[f]):
            g = owner.get(name)
            if g and g != f and name not in local[f]:
                edges[f].add(g)
    return edges


def circle(edges):
    state = {}

    def visit(f, path):
        state[f] = 1
        for g in sorted(edges[f]):
            if state.get(g) == 1:
                return path[path.index(g):] + [g] if g in path else [f, g]
            if g not in state:
                found = visit(g, path + [g])
                if found:
                    return found
        state[f] = 2
        return None

    for f in sorted(edges):
        if f not in state:
            found = visit(f, [f])
            if found:
                return found
    return None


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    edges = graph(sys.argv[1])
    for f in sorted(edges):
        print("%-12s -> %s" % (f, " ".join(sorted(edges[f])) or "-"))
    found = circle(edges)
    if found:
        print("circle: " + " -> ".join(found))
        sys.exit(1 if "--check" in sys.argv else 0)
    print("no circle")


if __name__ == "__main__":
    main()

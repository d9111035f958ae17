#!/usr/bin/env python3
"""test_config_keys.py CHASH_PROXY - docs/proxy.md's key table is the parser's.

`chash-proxy --config-keys` prints the markdown table of the pool keys from
the table in proxy/config.c that parsing reads. docs/proxy.md holds a copy
between two markers; it must equal that output exactly, so a key added,
removed or changed without the docs fails here. Every key of the table must
also be one that `-t` knows (no "unknown key"), and --help must name the
flag.
"""
import difflib
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, check_eq, proxy_binary  # noqa: E402

BIN = proxy_binary()
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(ROOT, "docs", "proxy.md")
BEGIN = "<!-- config-keys: begin (chash-proxy --config-keys) -->\n"
END = "<!-- config-keys: end -->\n"


def generated():
    p = subprocess.run([BIN, "--config-keys"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=10)
    check_eq(p.returncode, 0, "--config-keys: exit status (stderr %r)" % p.stderr)
    check_eq(p.stderr, b"", "--config-keys: nothing on stderr")
    return p.stdout.decode("utf-8")


def documented():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    check(text.count(BEGIN) == 1 and text.count(END) == 1,
          "docs/proxy.md has the markers once each: %r and %r" % (BEGIN, END))
    return text[text.index(BEGIN) + len(BEGIN):text.index(END)]


def key_names(table):
    rows = [ln for ln in table.splitlines() if ln.startswith("| `")]
    return [ln.split("`")[1] for ln in rows]


def main():
    table = generated()
    lines = table.splitlines()
    check(len(lines) >= 3, "a header, a rule and rows: %r" % table)
    check_eq(lines[0], "| key | value | default | protocol | from | meaning |", "header")
    doc = documented()
    if doc != table:
        diff = "".join(difflib.unified_diff(doc.splitlines(True), table.splitlines(True),
                                            "docs/proxy.md", "chash-proxy --config-keys"))
        raise AssertionError("docs/proxy.md's key table differs from `chash-proxy "
                             "--config-keys`; paste the output between the markers:\n" + diff)
    names = key_names(table)
    check_eq(len(names), len(lines) - 2, "one key per row")
    check_eq(len(set(names)), len(names), "no key twice")
    print("ok docs/proxy.md's table is the output of --config-keys (%d keys)" % len(names))

    # Each key the docs name is one the parser knows: a value of "@@" may be
    # wrong for it, but the complaint is about the value, not the key.
    with tempfile.TemporaryDirectory(prefix="chash-proxy-keys-") as tmp:
        path = os.path.join(tmp, "keys.yml")
        for name in names + ["no_such_key"]:
            lines = ["alpha:", "  listen: 127.0.0.1:22121", "  redis: true",
                     "  servers:", "   - 127.0.0.1:6379:1"]
            setting = "  %s: \"@@\"" % name
            if name in ("listen", "redis", "servers"):
                lines = [ln if not ln.startswith("  %s:" % name) else setting for ln in lines]
                if name == "servers":
                    lines = lines[:-1]
            else:
                lines.insert(3, setting)
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            p = subprocess.run([BIN, "-t", "-c", path], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=10)
            out = p.stdout.decode("utf-8", "replace")
            if name == "no_such_key":
                check("unknown key 'no_such_key'" in out, "an unknown key is named: %r" % out)
            else:
                check("unknown key" not in out, "%s is a key -t knows: %r" % (name, out))
    print("ok -t knows each of the %d keys" % len(names))

    p = subprocess.run([BIN, "--help"], stdout=subprocess.PIPE, timeout=10)
    check("--config-keys" in p.stdout.decode(), "--help names --config-keys")
    print("ok --help names --config-keys")


if __name__ == "__main__":
    main()

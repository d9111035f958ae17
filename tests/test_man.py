#!/usr/bin/env python3
"""test_man.py MANDIR CHASH CHASH_PROXY CHASH_H - the manual pages the build
wrote (tools/manpages.py): `man -l` renders each with no warning, and each
holds what it must: every option any `--help` of its program lists, every
configuration key (`chash-proxy --config-keys`), every function of the
header.
"""
import os
import re
import subprocess
import sys

MANDIR, CHASH, PROXY, HEADER = sys.argv[1:5]
FAILS = []


def check(cond, what):
    if not cond:
        FAILS.append(what)


def run(argv, env=None):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                       env=env)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def render(page):
    """The page as man shows it (plain text), with man's and groff's
    warnings checked: none allowed."""
    env = dict(os.environ, MANWIDTH="100", LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    rc, out, err = run(["man", "--warnings=all", "-E", "UTF-8", "-l", page], env)
    check(rc == 0, "man -l %s: exit %d" % (page, rc))
    check(err.strip() == "", "man -l %s warns:\n%s" % (page, err[:2000]))
    # man may mark bold with overstrikes when not on a terminal: drop them.
    text = re.sub(".\b", "", out)
    # Lines are filled and hyphenated: join words split at line ends.
    return re.sub(r"(\w)[\u2010-]\n\s*(\w)", r"\1\2", text)


def options(help_text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[A-Za-z])\b", help_text))


def words(text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[A-Za-z])\b", text))


def main():
    pages = {name: render(os.path.join(MANDIR, name))
             for name in ("chash.1", "chash-proxy.8", "libchash.3")}

    top = run([CHASH, "--help"])[1]
    wanted = options(top)
    for cmd in re.findall(r"^  (\w+)\s{2,}", top, re.M):
        text = run([CHASH, cmd, "--help"])[1]
        wanted |= options(text)
        check(cmd in pages["chash.1"], "chash.1: command %s" % cmd)
    missing = sorted(wanted - words(pages["chash.1"]))
    check(not missing, "chash.1 lacks options: %s" % missing)
    print("chash.1: %d options of %d help texts" % (len(wanted), 1 + top.count("\n  ")))

    proxy_opts = options(run([PROXY, "--help"])[1])
    missing = sorted(proxy_opts - words(pages["chash-proxy.8"]))
    check(not missing, "chash-proxy.8 lacks options: %s" % missing)
    keys = re.findall(r"^\| `([a-z_]+)`", run([PROXY, "--config-keys"])[1], re.M)
    check(len(keys) > 40, "chash-proxy --config-keys lists keys (%d)" % len(keys))
    body = pages["chash-proxy.8"]
    missing = [k for k in keys if not re.search(r"^ {7}%s\b" % re.escape(k), body, re.M)]
    check(not missing, "chash-proxy.8 lacks configuration keys: %s" % missing)
    print("chash-proxy.8: %d options, %d configuration keys" % (len(proxy_opts), len(keys)))

    functions = sorted(set(re.findall(r"CHASH_API[^;(]*?\b(chash_\w+)\s*\(",
                                      open(HEADER).read())))
    check(len(functions) > 40, "the header has functions (%d)" % len(functions))
    missing = [f for f in functions if not re.search(r"\b%s\(" % f, pages["libchash.3"])]
    check(not missing, "libchash.3 lacks functions: %s" % missing)
    print("libchash.3: %d functions" % len(functions))

    for f in FAILS:
        print("FAIL", f)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())

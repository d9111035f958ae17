#!/usr/bin/env python3
"""acl_categories.py - writes proxy/command_acl.h: each command's ACL
categories (@read, @write, @admin...), as a live redis-server reports them.

The proxy's `users:` rules (+@read, -@dangerous...) need to know which
commands each category holds. Their source of truth is redis-server itself:
COMMAND lists every command and subcommand with its categories (the
implicit ones too: @write, @read, @fast, @slow, @admin, @dangerous...).
This script asks one and writes the C include that proxy/command.c reads
at start-up; the proxy's own commands (PROXY, and the few entries of the
table redis-server 7.0 does not list) take theirs from PROXY_OWN below.

  tools/acl_categories.py                  start a redis-server, write the file
  tools/acl_categories.py --port N         ask the redis-server on 127.0.0.1:N
  tools/acl_categories.py --check [FILE]   exit 1 (with a diff) when FILE
                                           (default proxy/command_acl.h) is not
                                           what the server says

test_command_table.py runs --check against a real redis-server, and compares
what the proxy's table then holds (chash-proxy --commands=acl) with COMMAND.
"""
import difflib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "proxy", "command_acl.h")

# Redis's categories in its own order (ACL CAT), and their C names.
CATEGORIES = ["keyspace", "read", "write", "set", "sortedset", "list", "hash", "string",
              "bitmap", "hyperloglog", "geo", "stream", "pubsub", "admin", "fast", "slow",
              "blocking", "dangerous", "connection", "transaction", "scripting"]

# In the proxy's table, not in redis-server 7.0's COMMAND: name -> (categories, why).
PROXY_OWN = {
    "proxy": (["admin", "slow"], "the proxy's own command: administration"),
    "proxy|help": (["admin", "slow"], "PROXY's subcommands are all @admin"),
    "proxy|locate": (["admin", "slow"], "says which server holds a key"),
    "proxy|ring": (["admin", "slow"], "the servers, their state and shares"),
    "proxy|reload": (["admin", "slow", "dangerous"], "re-reads the configuration"),
    "debug|object": (["admin", "slow", "dangerous"], "DEBUG's, as redis 7.0 lists DEBUG whole"),
    "client|no-touch": (["slow", "connection"], "redis 7.2's (7.0 does not list it)"),
}


def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Reader:
    def __init__(self, sock):
        self.s, self.buf = sock, b""

    def line(self):
        while b"\r\n" not in self.buf:
            data = self.s.recv(1 << 20)
            if not data:
                raise EOFError("the server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self.line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b":"):
            return rest.decode() if t == b"+" else int(rest)
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.s.recv(1 << 20)
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("bad reply line %r" % line)


def ask(port, *args):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(enc(*args))
        return Reader(s).reply()
    finally:
        s.close()


def walk(entry, out):
    """COMMAND's entry (and its subcommands) into out: name -> categories."""
    name = entry[0]
    cats = [c.lstrip("+@") for c in entry[6]]
    unknown = set(cats) - set(CATEGORIES)
    if unknown:
        sys.exit("%s: categories this script does not know: %s" % (name, sorted(unknown)))
    out[name] = cats
    for sub in entry[9] or []:
        walk(sub, out)


def server_categories(port):
    version = [ln for ln in ask(port, "INFO", "server").splitlines()
               if ln.startswith("redis_version:")]
    out = {}
    for entry in ask(port, "COMMAND"):
        walk(entry, out)
    return version[0].split(":", 1)[1] if version else "?", out


def c_mask(cats):
    ordered = [c for c in CATEGORIES if c in cats]
    return " | ".join("CMD_ACL_" + c.upper() for c in ordered) or "0"


def render(version, redis):
    lines = [
        "/*",
        " * command_acl.h - the ACL categories of each command (redis-server %s's" % version,
        " * COMMAND), and of the proxy's own: read by command.c's command_init.",
        " *",
        " * Generated by tools/acl_categories.py from a live redis-server: do not",
        " * edit. test_command_table checks it against one.",
        " */",
    ]
    both = {}
    for name, cats in redis.items():
        both[name] = (cats, None)
    for name, (cats, why) in PROXY_OWN.items():
        if name in redis:
            sys.exit("%s is in PROXY_OWN and in redis-server's COMMAND: take it out of "
                     "PROXY_OWN" % name)
        both[name] = (cats, why)
    for name in sorted(both):
        cats, why = both[name]
        line = 'CMD_ACL("%s", %s)' % (name, c_mask(cats))
        lines.append(line if why is None else "%s /* the proxy's: %s */" % (line, why))
    return "\n".join(lines) + "\n"


def start_server():
    """A redis-server of our own on a free loopback port: (port, process, dir)."""
    if not shutil.which("redis-server"):
        sys.exit("redis-server not found (give --port N of a running one)")
    tmp = tempfile.mkdtemp(prefix="acl-categories-")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", tmp],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return port, p, tmp
        except OSError:
            time.sleep(0.01)
    p.kill()
    sys.exit("redis-server did not open port %d" % port)


def main():
    args = sys.argv[1:]
    port = None
    if "--port" in args:
        port = int(args[args.index("--port") + 1])
    check = "--check" in args
    path = OUT
    if check:
        rest = args[args.index("--check") + 1:]
        if rest and not rest[0].startswith("--"):
            path = rest[0]
    proc = tmp = None
    if port is None:
        port, proc, tmp = start_server()
    try:
        version, redis = server_categories(port)
    finally:
        if proc:
            proc.kill()
            proc.wait()
            shutil.rmtree(tmp, ignore_errors=True)
    text = render(version, redis)
    if check:
        with open(path, encoding="utf-8") as f:
            have = f.read()
        if have != text:
            sys.stdout.writelines(difflib.unified_diff(
                have.splitlines(True), text.splitlines(True), path, "redis-server %s" % version))
            sys.exit("%s differs from redis-server %s's COMMAND: run tools/acl_categories.py"
                     % (path, version))
        print("ok %s: %d commands, as redis-server %s says" % (path, len(redis), version))
        return
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s: %d commands of redis-server %s, %d of the proxy's" %
          (path, len(redis), version, len(PROXY_OWN)))


if __name__ == "__main__":
    main()

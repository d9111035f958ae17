#!/usr/bin/env python3
"""redis_cluster_oracle.py - where a real Redis Cluster puts keys, and what
`chash lookup --scheme redis-cluster` makes of its slot table.

Starts a cluster-mode redis-server on 127.0.0.1 (a free port, a scratch
directory, stopped by PID) and asks it CLUSTER KEYSLOT for random keys sent
as RESP bulk strings: printable and binary (NUL, bytes >= 0x80, CR LF),
hash tags, empty tags, a '{' without '}', nested and repeated braces, the
empty key. Writes them as "key HEX SLOT" lines for test_redis_cluster.

With --chash, also checks the CLI against the same server, printing each
key's slot and node:
  --cluster HOST:PORT   before any slot is assigned (every node "-"), with
                        half of them, with all (CLUSTER SHARDS); through a
                        stand-in that refuses SHARDS as Redis 6 did, so the
                        CLI falls back to CLUSTER SLOTS;
  --nodes FILE          CLUSTER NODES output of the lone node (named ":PORT",
                        as it knows no ip of its own), the same after
                        cluster-announce-ip 127.0.0.1, and its nodes.conf;
  errors                a port nobody listens on, a redis-server not in
                        cluster mode, a server that does not speak RESP, a
                        nodes file with a bad line: each a non-zero exit and
                        one line naming the address or the file's line.
Exits 1 on the first disagreement. Nothing leaves 127.0.0.1.

Usage: redis_cluster_oracle.py --seed N --out VECTORS [--keys K] [--chash PATH]
"""
import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import Children, Resp, free_port, port_is_free, wait_listening  # noqa

PRINTABLE = bytes(range(0x21, 0x7f))


def random_key(rng):
    """A key of one of the shapes whose slot rules differ."""
    def text(n, alphabet=PRINTABLE):
        return bytes(rng.choice(alphabet) for _ in range(n))

    def binary(n):
        return bytes(rng.choice([0, 0xff, 0x80, 0x7b, 0x7d, 13, 10, rng.randrange(256)])
                     for _ in range(n))

    shape = rng.randrange(10)
    n = rng.randrange(0, 24)
    if shape == 0:
        return text(n)
    if shape == 1:
        return binary(n)
    if shape == 2:  # a tag
        return text(rng.randrange(4)) + b"{" + text(rng.randrange(1, 10)) + b"}" + text(n)
    if shape == 3:  # an empty tag, perhaps a real one after it
        return text(rng.randrange(4)) + b"{}" + text(n) + rng.choice([b"", b"{x}"])
    if shape == 4:  # '{' and no '}' after it
        return b"}" * rng.randrange(2) + text(n) + b"{" + text(rng.randrange(6))
    if shape == 5:  # nested and repeated braces
        return rng.choice([b"{{", b"{", b"}{"]) + text(rng.randrange(5)) + \
            rng.choice([b"}}", b"}", b"}{}"]) + text(rng.randrange(5))
    if shape == 6:  # a binary tag
        return binary(rng.randrange(4)) + b"{" + binary(rng.randrange(1, 6)) + b"}" + binary(n)
    if shape == 7:
        return b""
    if shape == 8:  # long keys
        return text(rng.randrange(100, 400))
    return ("user:%d" % rng.randrange(10 ** 6)).encode()


def start_redis(ch, tmp, port, cluster=True):
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", tmp, "--logfile", "", "--loglevel", "warning"]
    if cluster:
        argv += ["--cluster-enabled", "yes",
                 "--cluster-config-file", os.path.join(tmp, "nodes.conf")]
    p = ch.start(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening("127.0.0.1", port, p)
    return p


def start_cluster_node(ch, tmp):
    """A cluster-mode redis-server and its port. Its cluster bus listens on
    port + 10000, which must be a free port too; another test may take
    either between our look and the server's bind, so try a few."""
    for attempt in range(8):
        port = free_port()
        if port + 10000 > 65535 or not port_is_free("127.0.0.1", port + 10000):
            continue
        try:
            return start_redis(ch, tmp, port), port
        except RuntimeError:
            if attempt == 7:
                raise
    raise RuntimeError("no free pair of ports P and P + 10000 on 127.0.0.1")


class StandIn:
    """A server on 127.0.0.1 that answers CLUSTER SHARDS as Redis 6 did and
    relays everything else to the real node; or, with garbage, answers bytes
    that are not RESP."""

    def __init__(self, real_port, garbage=False):
        self.real_port = real_port
        self.garbage = garbage
        self.asked = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.handle(conn)

    def handle(self, conn):
        buf = b""
        real = None
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
            # Commands here are two bulk strings: CLUSTER and a subcommand.
            while buf.count(b"\r\n") >= 5:
                parts = buf.split(b"\r\n", 5)
                sub, buf = parts[4].upper(), parts[5]
                self.asked.append(sub.decode())
                if self.garbage:
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                elif sub == b"SHARDS":
                    conn.sendall(b"-ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.\r\n")
                else:
                    real = real or Resp("127.0.0.1", self.real_port)
                    real.sock.sendall(Resp.encode("CLUSTER", sub))
                    conn.sendall(raw_reply(real))

    def close(self):
        self.sock.close()


def raw_reply(r):
    """One reply's bytes, as the server sent them."""
    out = []

    def line():
        while b"\r\n" not in r.buf:
            r._fill()
        ln, r.buf = r.buf.split(b"\r\n", 1)
        out.append(ln + b"\r\n")
        return ln

    def value():
        ln = line()
        kind, rest = ln[:1], ln[1:]
        if kind == b"$" and int(rest) >= 0:
            n = int(rest) + 2
            while len(r.buf) < n:
                r._fill()
            out.append(r.buf[:n])
            r.buf = r.buf[n:]
        elif kind == b"*":
            for _ in range(max(int(rest), 0)):
                value()
    value()
    return b"".join(out)


class Checker:
    def __init__(self, chash, tmp):
        self.chash = chash
        self.tmp = tmp
        self.passed = 0

    def fail(self, what):
        print("FAIL: %s" % what, file=sys.stderr)
        sys.exit(1)

    def run(self, args, stdin=b""):
        p = subprocess.run([self.chash, "lookup"] + args, input=stdin, capture_output=True,
                           timeout=60)
        return p.returncode, p.stdout, p.stderr

    def lookup(self, args, keys, slots, owner_of):
        """chash lookup over keys (one a line); each line must give the key,
        owner_of(slot) and the slot CLUSTER KEYSLOT gave."""
        rc, out, err = self.run(args, b"".join(k + b"\n" for k in keys))
        if rc != 0:
            self.fail("chash lookup %s: exit %d: %s" % (" ".join(args), rc, err.decode()))
        lines = out.split(b"\n")
        if lines[-1] != b"" or len(lines) - 1 != len(keys):
            self.fail("chash lookup %s: %d lines for %d keys" % (" ".join(args), len(lines) - 1,
                                                                len(keys)))
        for key, slot, ln in zip(keys, slots, lines):
            want = b"%s\t%s\t%d" % (key, owner_of(slot).encode(), slot)
            if ln != want:
                self.fail("chash lookup %s: got %r, want %r" % (" ".join(args), ln, want))
        self.passed += len(keys)

    def refused(self, args, code, *needles):
        rc, out, err = self.run(args, b"k\n")
        text = err.decode(errors="replace")
        if rc != code or text.count("\n") != 1 or not text.startswith("chash lookup: ") or \
                any(n not in text for n in needles):
            self.fail("chash lookup %s: exit %d, stderr %r; want exit %d and one line with %s"
                      % (" ".join(args), rc, text, code, needles))
        self.passed += 1


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return path


def check_cli(ch, tmp, chash, node, port, keys, slots):
    c = Checker(chash, tmp)
    me = "127.0.0.1:%d" % port
    at = ["--scheme", "redis-cluster", "--cluster", me]
    none = lambda s: "-"  # noqa: E731
    c.lookup(at, keys, slots, none)
    node.pipeline([("CLUSTER", "ADDSLOTSRANGE", "0", "8191")])
    # The lone node knows no ip of its own: named by the address asked.
    c.lookup(at, keys, slots, lambda s: me if s < 8192 else "-")
    node.pipeline([("CLUSTER", "ADDSLOTSRANGE", "8192", "16383")])
    c.lookup(["--cluster", me], keys, slots, lambda s: me)  # the scheme implied
    text = node.pipeline([("CLUSTER", "NODES")])[0]
    path = write(os.path.join(tmp, "lone.txt"), text)
    c.lookup(["--scheme", "redis-cluster", "--nodes", path], keys, slots, lambda s: ":%d" % port)
    node.pipeline([("CONFIG", "SET", "cluster-announce-ip", "127.0.0.1")])
    text = node.pipeline([("CLUSTER", "NODES")])[0]
    path = write(os.path.join(tmp, "known.txt"), text)
    c.lookup(["--scheme", "redis-cluster", "--nodes", path], keys, slots, lambda s: me)
    node.pipeline([("CLUSTER", "SAVECONFIG")])
    c.lookup(["--scheme", "redis-cluster", "--nodes-file", os.path.join(tmp, "nodes.conf")],
             keys, slots, lambda s: me)
    c.lookup(at, keys, slots, lambda s: me)

    # Redis 6 had no CLUSTER SHARDS: CLUSTER SLOTS instead.
    old = StandIn(port)
    try:
        c.lookup(["--scheme", "redis-cluster", "--cluster", "127.0.0.1:%d" % old.port],
                 keys[:50], slots[:50], lambda s: me)
    finally:
        old.close()
    if old.asked != ["SHARDS", "SLOTS"]:
        c.fail("the stand-in for Redis 6 was asked %s, want SHARDS then SLOTS" % old.asked)

    nobody = free_port()
    c.refused(at[:-1] + ["127.0.0.1:%d" % nobody], 1, "127.0.0.1:%d" % nobody, "cannot connect")
    plain_port = free_port()
    plain_dir = os.path.join(tmp, "plain")
    os.mkdir(plain_dir)
    plain = start_redis(ch, plain_dir, plain_port, cluster=False)
    try:
        c.refused(at[:-1] + ["127.0.0.1:%d" % plain_port], 1, "127.0.0.1:%d" % plain_port,
                  "not in cluster mode")
    finally:
        ch.stop(plain)
    junk = StandIn(port, garbage=True)
    try:
        c.refused(at[:-1] + ["127.0.0.1:%d" % junk.port], 1, "127.0.0.1:%d" % junk.port,
                  "not RESP")
    finally:
        junk.close()
    lines = text.decode().splitlines()
    bad = write(os.path.join(tmp, "bad.txt"),
                ("%s\n%s\n" % (lines[0], lines[0].replace("@", "@x", 1))).encode())
    c.refused(["--scheme", "redis-cluster", "--nodes", bad], 2, "%s:2:" % bad, "bus port")
    c.refused(["--scheme", "redis-cluster", "--nodes", os.path.join(tmp, "missing")], 2,
              "missing")
    return c.passed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--keys", type=int, default=5000)
    ap.add_argument("--chash")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    tmp = tempfile.mkdtemp(prefix="chash-redis-cluster-")
    ch = Children()
    try:
        _, port = start_cluster_node(ch, tmp)
        node = Resp("127.0.0.1", port)
        version = node.pipeline([("INFO", "server")])[0].split(b"redis_version:")[1]
        version = version.split(b"\r\n")[0].decode()
        keys = [random_key(rng) for _ in range(a.keys)]
        slots = [int(s) for s in node.pipeline([("CLUSTER", "KEYSLOT", k) for k in keys])]
        with open(a.out, "w") as f:
            f.write("# redis-server %s CLUSTER KEYSLOT, seed %d\n" % (version, a.seed))
            for k, s in zip(keys, slots):
                f.write("key %s %d\n" % (k.hex() or "-", s))
        print("redis_cluster_oracle: redis-server %s, %d keys asked CLUSTER KEYSLOT"
              % (version, len(keys)))
        if a.chash:
            # One key a line: no newline, and no tab, which would blur the columns.
            pairs = [(k, s) for k, s in zip(keys, slots)
                     if b"\n" not in k and b"\t" not in k and b"\r" not in k][:1000]
            checks = check_cli(ch, tmp, a.chash, node, port, [k for k, _ in pairs],
                               [s for _, s in pairs])
            print("redis_cluster_oracle: chash lookup agrees: %d key lookups and refusals"
                  % checks)
        node.close()
    finally:
        ch.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""twemproxy_oracle.py - record where the real nutcracker puts keys.

Starts redis-server instances on loopback addresses (127.0.0.X, free ports;
one on port 11211 when some 127.0.0.X:11211 is free, for the port rule), then
for each random pool writes a nutcracker YAML config, starts nutcracker in
front of them, SETs random keys through it, and asks every redis which keys
it holds (KEYS *). Nothing here computes a placement: every owner recorded is
the redis that nutcracker wrote the key to.

Usage: twemproxy_oracle.py --seed N --out VECTORS [--cases C] [--keys K]
                           [--chash PATH]
With --chash, also runs `chash lookup --scheme twemproxy --nodes-file` on each
generated nutcracker YAML (so the CLI's own YAML reading is checked) and
exits 1 on the first disagreement.
Output: tests/vectors/README.md ("compat vectors"). Needs Debian nutcracker
and redis-server.
"""
import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import Children, Resp, free_port, port_is_free, wait_listening, write_case  # noqa

HASHES = ["one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64",
          "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"]
TAGS = [b"{}", b"$$", b"[]", b"<>", b"::", b"ab"]
NAME_CHARS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:/"


def start_redis(ch, tmp, addr, port):
    """A redis on addr:port, or on the unix socket addr when port is None."""
    where = (["--port", "0", "--unixsocket", addr] if port is None
             else ["--port", str(port), "--bind", addr])
    p = ch.start(["redis-server"] + where + ["--save", "", "--appendonly", "no", "--dir", tmp,
                                             "--protected-mode", "no", "--logfile", "",
                                             "--loglevel", "warning"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(addr, port, p)
    return p


def random_key(rng, tag):
    mode = rng.random()
    n = rng.choice([0, 1, 2, 3, 4, 5, 7, 8, 11, 12, 13, 16, 20, 31, 40])
    if mode < 0.4:
        k = bytes(rng.randrange(0x21, 0x7f) for _ in range(n))
    elif mode < 0.8:
        k = bytes(rng.randrange(256) for _ in range(n))  # NUL and >= 0x80 too
    else:
        k = ("key:%d" % rng.randrange(10 ** 6)).encode()
    if tag and rng.random() < 0.5:
        inner = bytes(rng.randrange(0x21, 0x7f) for _ in range(rng.randrange(0, 6)))
        pos = rng.randrange(len(k) + 1)
        k = k[:pos] + tag[:1] + inner + (tag[1:] if rng.random() < 0.8 else b"") + k[pos:]
    return k


def yaml_quote(b):
    return '"' + b.decode().replace("\\", "\\\\").replace('"', '\\"') + '"'


def make_case(rng, backends, idx):
    n = rng.choice([1, 2, 3, 4, 5, 8, 10, 16, 24, 25, 30, len(backends)])
    n = min(n, len(backends))
    chosen = rng.sample(backends, n)
    wmode = rng.choice(["one", "same", "small", "wide"])
    same = rng.randrange(1, 20)
    weights = [1 if wmode == "one" else same if wmode == "same" else
               rng.randrange(1, 5) if wmode == "small" else rng.randrange(1, 200)
               for _ in range(n)]
    nmode = rng.choice(["none", "none", "all", "some"])
    names = []
    seen = set()
    for i in range(n):
        if nmode == "all" or (nmode == "some" and rng.random() < 0.5):
            while True:
                nm = bytes(rng.choice(NAME_CHARS) for _ in range(rng.randrange(1, 24)))
                if nm not in seen:
                    break
            seen.add(nm)
            names.append(nm)
        else:
            names.append(None)
    return {
        "idx": idx,
        "backends": chosen,
        "weights": weights,
        "names": names,
        "hash": rng.choice(HASHES),
        "tag": rng.choice(TAGS) if rng.random() < 0.35 else None,
        "dist": "modula" if rng.random() < 0.15 else "ketama",
    }


def server_name(addr, port, name):
    """nutcracker's server name (conf_add_server): explicit, or host / host:port;
    for a unix socket "/path:weight", the path and the colon after it."""
    if name is not None:
        return name
    if port is None:
        return (addr + ":").encode()
    return addr.encode() if port == 11211 else ("%s:%d" % (addr, port)).encode()


def md5_words(b):
    d = hashlib.md5(b).digest()
    return [int.from_bytes(d[4 * x:4 * x + 4], "little") for x in range(4)]


def tie_arc(a, b, tie_value):
    """The arc (lo, tie_value] of the pool {a, b} that ends at the tied point."""
    points = sorted(set(v for n in (a, b) for k in range(40) for v in md5_words(n + b"-%d" % k)))
    return points[points.index(tie_value) - 1], tie_value


def find_tie(rng):
    """Two server names whose ketama points ("name-k", 40 digests each at
    equal weights in a 2-server pool) share a value; searched, not assumed.
    A tie whose arc is too narrow to sample keys from is passed over."""
    seen = {}
    while True:
        name = ("t%d" % rng.randrange(10 ** 7)).encode()
        for k in range(40):
            for v in md5_words(name + b"-%d" % k):
                other = seen.get(v)
                if other is not None and other != name:
                    lo, hi = tie_arc(other, name, v)
                    if (hi - lo) & 0xFFFFFFFF >= 1 << 20:
                        return other, name, v
                seen[v] = name


def tie_keys(rng, a, b, tie_value, count=20):
    """Keys (hash: md5) that land on the tied point of the pool {a, b}."""
    lo, _ = tie_arc(a, b, tie_value)
    keys = []
    while len(keys) < count:
        k = ("k%x" % rng.getrandbits(48)).encode()
        h = md5_words(k)[0]
        if (lo < h <= tie_value) if lo < tie_value else (h > lo or h <= tie_value):
            keys.append(k)
    return keys


def run_case(ch, tmp, case, rng, key_count, listen_port, stats_port):
    lines = []
    for (addr, port, _), w, nm in zip(case["backends"], case["weights"], case["names"]):
        s = "%s:%d" % (addr, w) if port is None else "%s:%d:%d" % (addr, port, w)
        if nm is not None:
            s += " " + nm.decode()
        lines.append("   - %s\n" % yaml_quote(s.encode()))
    conf = ["pool_%d:\n" % case["idx"],
            "  listen: 127.0.0.1:%d\n" % listen_port,
            "  hash: %s\n" % case["hash"],
            "  distribution: %s\n" % case["dist"],
            "  redis: true\n",
            "  auto_eject_hosts: false\n",
            "  timeout: 5000\n"]
    if case["tag"]:
        conf.append("  hash_tag: %s\n" % yaml_quote(case["tag"]))
    conf.append("  servers:\n")
    conf.extend(lines)
    path = os.path.join(tmp, "case_%d.yml" % case["idx"])
    with open(path, "w") as f:
        f.write("".join(conf))
    for _, _, r in case["backends"]:
        r.pipeline([("FLUSHALL",)])
    nc = ch.start(["nutcracker", "-c", path, "-s", str(stats_port), "-a", "127.0.0.1",
                   "-o", os.path.join(tmp, "nutcracker.log"),
                   "-p", os.path.join(tmp, "nutcracker.pid")])
    try:
        wait_listening("127.0.0.1", listen_port, nc)
        keys = list(case.get("keys", []))
        seen = set(keys)
        while len(keys) < key_count:
            k = random_key(rng, case["tag"])
            if k not in seen:
                seen.add(k)
                keys.append(k)
        proxy = Resp("127.0.0.1", listen_port)
        replies = proxy.pipeline([("SET", k, b"v") for k in keys])
        proxy.close()
        if any(r != b"OK" for r in replies):
            raise RuntimeError("a SET through nutcracker failed")
    finally:
        ch.stop(nc)
    owner = {}
    for (addr, port, r), nm in zip(case["backends"], case["names"]):
        for k in r.pipeline([("KEYS", "*")])[0]:
            if k in owner:
                raise RuntimeError("key %r on two servers" % k)
            owner[k] = server_name(addr, port, nm)
    missing = [k for k in keys if k not in owner]
    if missing:
        raise RuntimeError("%d keys on no server" % len(missing))
    return path, [(k, owner[k]) for k in keys]


def check_cli(chash, path, owners):
    """`chash lookup` on the nutcracker YAML itself; keys with a newline or a
    tab cannot go through its line-per-key input, so they are left out."""
    usable = [(k, o) for k, o in owners if b"\n" not in k and b"\t" not in k and b"\r" not in k]
    if not usable:
        return 0
    out = subprocess.run([chash, "lookup", "--scheme", "twemproxy", "--nodes-file", path],
                         input=b"".join(k + b"\n" for k, _ in usable),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if out.returncode != 0:
        raise RuntimeError("chash lookup failed on %s: %s" % (path, out.stderr.decode()))
    got = out.stdout.split(b"\n")[:-1]
    if len(got) != len(usable):
        raise RuntimeError("chash lookup printed %d lines for %d keys" % (len(got), len(usable)))
    for (k, o), line in zip(usable, got):
        key, _, node = line.rpartition(b"\t")
        if key != k or node != o:
            raise RuntimeError("%s: key %r: chash lookup says %r, nutcracker %r"
                               % (path, k, node, o))
    return len(usable)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cases", type=int, default=40)
    ap.add_argument("--keys", type=int, default=400)
    ap.add_argument("--backends", type=int, default=32)
    ap.add_argument("--chash")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    tmp = tempfile.mkdtemp(prefix="chash-twemproxy-")
    ch = Children()
    started = time.monotonic()
    cli_keys = 0
    try:
        backends = []
        addrs = ["127.0.0.%d" % rng.randrange(2, 250) for _ in range(args.backends)]
        # One backend on port 11211 when a loopback address has it free.
        for x in range(2, 40):
            a = "127.0.0.%d" % rng.randrange(2, 250)
            if port_is_free(a, 11211):
                addrs[0] = a
                backends.append((a, 11211))
                break
        for a in addrs[len(backends):-1]:
            backends.append((a, free_port(a)))
        backends.append((os.path.join(tmp, "redis.sock"), None))  # a unix socket
        live = []
        for a, p in backends:
            start_redis(ch, tmp, a, p)
            live.append((a, p, Resp(a, p)))
        version = subprocess.run(["nutcracker", "--version"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT).stdout.decode().split("\n")[0]
        with open(args.out, "w") as f:
            f.write("# libchash compat vectors; format: tests/vectors/README.md\n")
            f.write("# generator: tools/compat/twemproxy_oracle.py --seed %d\n" % args.seed)
            f.write("# peer: %s, redis-server backends on loopback\n" % version)
            cases = [make_case(rng, live, i) for i in range(args.cases)]
            # A tie: two named servers with a common point, in both config
            # orders; nutcracker's name order must decide, not the config's.
            a, b, tie_value = find_tie(rng)
            keys = tie_keys(rng, a, b, tie_value)
            for order in ((a, b), (b, a)):
                cases.append({"idx": len(cases), "backends": live[:2], "weights": [1, 1],
                              "names": list(order), "hash": "md5", "tag": None,
                              "dist": "ketama", "keys": keys})
            for i, case in enumerate(cases):
                if "keys" in case:
                    f.write("# tied point 0x%08x between %s and %s\n"
                            % (tie_value, a.decode(), b.decode()))
                path, owners = run_case(ch, tmp, case, rng, len(case.get("keys", [])) or args.keys,
                                        free_port(), free_port())
                # nutcracker's own server order: sorted by name, shorter first.
                nodes = sorted(((server_name(a, p, nm), w) for (a, p, _), w, nm in
                                zip(case["backends"], case["weights"], case["names"])),
                               key=lambda nw: (len(nw[0]), nw[0]))
                write_case(f, "twemproxy", "modulo" if case["dist"] == "modula" else "ring",
                           case["hash"], case["tag"], nodes, owners,
                           "case %d: distribution %s, hash %s, hash_tag %s, %d servers"
                           % (i, case["dist"], case["hash"], case["tag"], len(nodes)))
                if args.chash:
                    cli_keys += check_cli(args.chash, path, owners)
        for _, _, r in live:
            r.close()
    finally:
        ch.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    print("twemproxy oracle: seed %d, %d cases x %d keys in %.1f s%s"
          % (args.seed, args.cases, args.keys, time.monotonic() - started,
             ", chash lookup agrees on %d keys" % cli_keys if args.chash else ""))


if __name__ == "__main__":
    main()

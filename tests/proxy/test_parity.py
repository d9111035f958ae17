#!/usr/bin/env python3
"""test_parity.py CHASH_PROXY - every key lands where nutcracker puts it.

One YAML file with many pools (distribution ketama and modula; hashes md5,
fnv1a_64, murmur, crc32a and the rest of nutcracker's; with and without
hash_tag; weighted servers; servers with and without names; unnamed
memcached servers on port 11211, known by their host alone) is run first
through nutcracker, then - the very same file - through chash-proxy, in
front of the same real redis-servers and memcached (flushed in between: an
unnamed server's identity on the ring is its host:port, so both proxies must
see the same ports). Thousands of random keys per pool (binary for redis,
any byte memcached takes in a key) are written through each proxy; then
every backend is read directly (SCAN for redis, get for memcached) and the
set of keys on each backend must be the same for both proxies.

The keys of a pool carry its prefix, so pools may share backends. Set
CHASH_TEST_SEED to replay a run.
"""
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Conn, check, check_eq, free_ports, proxy_binary, run  # noqa: E402

BIN = proxy_binary()
SEED = int(os.environ.get("CHASH_TEST_SEED", int(time.time())))
KEYS_PER_POOL = 2000

# (hash or None for the default, hash_tag or None, distribution,
#  [(backend index, weight, name or None)])
REDIS_POOLS = [
    ("md5", "{}", "ketama", [(0, 1, None), (1, 1, None), (2, 1, None)]),
    (None, None, "ketama", [(0, 1, None), (1, 2, None), (2, 1, None), (3, 3, None)]),
    ("fnv1a_64", "{}", "ketama", [(i, 1, "cache-%d" % i) for i in range(5)]),
    ("murmur", "{}", "ketama", [(0, 3, "m0"), (1, 1, "m1"), (2, 2, "m2"), (4, 1, "m4")]),
    ("murmur", None, "ketama", [(1, 1, None), (2, 1, None), (3, 1, None)]),
    ("crc32a", "$$", "ketama", [(0, 1, "alpha"), (2, 1, "beta"), (3, 5, "gamma")]),
    ("crc32a", None, "ketama", [(i, 1 + i, None) for i in range(5)]),
    ("crc32", "[]", "ketama", [(0, 1, None), (1, 1, None), (3, 1, None)]),
    ("one_at_a_time", None, "ketama", [(0, 1, "a"), (1, 1, "bb"), (2, 1, "ccc")]),
    ("fnv1_64", "{}", "ketama", [(1, 2, None), (3, 1, None), (4, 1, None)]),
    ("fnv1a_32", None, "ketama", [(0, 1, None), (2, 1, None), (4, 1, None)]),
    ("fnv1_32", None, "ketama", [(0, 1, "x1"), (1, 1, "x2"), (2, 1, "x3"), (3, 1, "x4")]),
    ("hsieh", "{}", "ketama", [(0, 1, None), (1, 1, None), (2, 1, None), (3, 1, None)]),
    ("jenkins", None, "ketama", [(1, 1, None), (2, 4, None), (3, 1, None)]),
    ("crc16", None, "ketama", [(0, 1, None), (2, 1, None), (3, 1, None)]),
    ("md5", "{}", "modula", [(0, 1, None), (1, 1, None), (2, 1, None)]),
    ("fnv1a_64", None, "modula", [(0, 1, "n0"), (1, 2, "n1"), (3, 1, "n3")]),
]
MC_POOLS = [
    ("md5", None, "ketama", [(0, 1, "mc0"), (1, 1, "mc1"), (2, 1, "mc2")]),
    (None, None, "ketama", [(0, 2, None), (1, 1, None), (2, 1, None), (3, 1, None)]),
    ("crc32a", "{}", "ketama", [(1, 1, None), (2, 1, None), (3, 1, None)]),
    ("murmur", None, "ketama", [(0, 1, None), (1, 3, "big"), (3, 1, "small")]),
    ("md5", "{}", "modula", [(0, 1, None), (1, 1, None), (2, 1, None), (3, 1, None)]),
]
# Unnamed servers on port 11211 are known by their host alone (libmemcached's
# rule): backends 4 and 5 listen on port 11211 of two loopback addresses, when
# those are free.
MC_POOLS_11211 = [
    ("md5", None, "ketama", [(4, 1, None), (5, 1, None), (0, 1, None)]),
    ("fnv1a_64", None, "ketama", [(4, 2, None), (5, 1, None), (1, 1, None), (2, 1, None)]),
]


def pool_yaml(name, listen, spec, addrs, is_redis):
    hash_name, tag, dist, servers = spec
    y = "%s:\n  listen: 127.0.0.1:%d\n" % (name, listen)
    if hash_name:
        y += "  hash: %s\n" % hash_name
    if tag:
        y += "  hash_tag: \"%s\"\n" % tag
    y += "  distribution: %s\n" % dist
    if is_redis:
        y += "  redis: true\n"
    y += "  servers:\n"
    for idx, weight, sname in servers:
        y += "   - %s:%d:%d%s\n" % (addrs[idx][0], addrs[idx][1], weight,
                                  " " + sname if sname else "")
    return y


def random_keys(rng, prefix, count, alphabet, tag):
    """Distinct keys, some of them with the pool's hash tag around a part
    (also empty tags and tags with no end, which hash the whole key)."""
    keys = set()
    while len(keys) < count:
        body = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        if tag and rng.random() < 0.3:
            inner = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
            end = tag[1:].encode() if rng.random() < 0.9 else b""
            body = body[:rng.randint(0, len(body))] + tag[:1].encode() + inner + end + body
        keys.add(prefix + body)
    return sorted(keys)


def scan_all(addr):
    c = Conn(addr[1], host=addr[0])
    keys, cursor = set(), b"0"
    while True:
        cursor, batch = c.call("SCAN", cursor, "COUNT", 1000)
        keys.update(batch)
        if cursor == b"0":
            break
    c.close()
    return keys


def redis_placement(addrs):
    """backend (host, port) -> the keys it holds."""
    return {a: scan_all(a) for a in addrs}


def mc_placement(addrs, all_keys):
    """backend (host, port) -> the keys (of all_keys) it holds, asked directly."""
    out = {}
    for p in addrs:
        c = Conn(p[1], host=p[0])
        found = set()
        for i in range(0, len(all_keys), 200):
            batch = all_keys[i:i + 200]
            c.send(b"get " + b" ".join(batch) + b"\r\n")
            reply = c.mc_reply(True)
            for line in reply.split(b"\r\n"):
                if line.startswith(b"VALUE "):
                    found.add(line.split(b" ")[1])
        out[p] = found
        c.close()
    return out


def write_redis(listen, keys, use_mset):
    c = Conn(listen)
    if use_mset:
        # half with SET, half with MSET split by the proxy
        half = len(keys) // 2
        cmds = [("SET", k, b"v") for k in keys[:half]]
        for i in range(half, len(keys), 50):
            cmds.append(("MSET",) + tuple(x for k in keys[i:i + 50] for x in (k, b"v")))
    else:
        cmds = [("SET", k, b"v") for k in keys]
    got = c.deep_pipeline(cmds)
    check_eq(got, [b"+OK"] * len(cmds), "writes through the proxy on %d" % listen)
    c.close()


def write_mc(listen, keys):
    c = Conn(listen)
    t = c.send_async(b"".join(b"set " + k + b" 0 0 1\r\nv\r\n" for k in keys))
    got = [c.mc_reply() for _ in keys]
    t.join()
    check_eq(got, [b"STORED\r\n"] * len(keys), "sets through the proxy on %d" % listen)
    c.close()


def flush_redis(addrs):
    for host, port in addrs:
        check_eq(Conn(port, host=host).call("FLUSHALL"), b"+OK", "FLUSHALL")


def flush_mc(addrs):
    for host, port in addrs:
        c = Conn(port, host=host)
        c.send(b"flush_all\r\n")
        check_eq(c.mc_reply(), b"OK\r\n", "flush_all")


def compare(pools, keys_of, side_a, side_b, what):
    """Per pool and backend: the same key set on both sides. Returns the
    number of keys compared."""
    compared = 0
    for pi, (spec, ports_of_pool) in enumerate(pools):
        prefix = b"p%02d|" % pi
        mismatches = []
        total_a = total_b = 0
        for port in ports_of_pool:
            a = {k for k in side_a[port] if k.startswith(prefix)}
            b = {k for k in side_b[port] if k.startswith(prefix)}
            total_a += len(a)
            total_b += len(b)
            for k in sorted(a ^ b)[:5]:
                mismatches.append((port, k, "nutcracker" if k in a else "chash-proxy"))
        check_eq(total_a, len(keys_of[pi]), "%s pool %d (%r): every key on one nutcracker backend"
                 % (what, pi, spec[:3]))
        check_eq(total_b, len(keys_of[pi]), "%s pool %d (%r): every key on one chash-proxy backend"
                 % (what, pi, spec[:3]))
        check_eq(mismatches, [], "%s pool %d (%r): keys placed differently (port, key, only on)"
                 % (what, pi, spec[:3]))
        # The pool really spreads: no backend is empty. (crc32 and crc16 give
        # 15- and 16-bit hashes: on a 32-bit ketama circle they all fall
        # before the first point or two, in nutcracker as here.)
        if spec[0] in ("crc32", "crc16") and spec[2] == "ketama":
            ports_of_pool = []
        for port in ports_of_pool:
            check(any(k.startswith(prefix) for k in side_b[port]),
                  "%s pool %d: backend %r holds keys" % (what, pi, port))
        compared += len(keys_of[pi])
    return compared


def run_both(env, yaml, listens, write, flush, placement):
    """nutcracker then chash-proxy on the same file; each side's placement."""
    nc = env.nutcracker(yaml, listens)
    write()
    side_nc = placement()
    env.stop(nc, force=True)
    flush()
    env.proxy(BIN, yaml, listens, workers=2)
    write()
    side_cp = placement()
    return side_nc, side_cp


def test_redis_parity(env):
    rng = random.Random(SEED)
    addrs = [("127.0.0.1", env.redis()[0]) for _ in range(5)]
    listens = free_ports(len(REDIS_POOLS))
    yaml = "".join(pool_yaml("pool%02d" % i, listens[i], spec, addrs, True)
                   for i, spec in enumerate(REDIS_POOLS))
    # Binary keys: every byte value, CR and LF included.
    alphabet = list(range(256))
    keys_of = [random_keys(rng, b"p%02d|" % i, KEYS_PER_POOL, alphabet, spec[1])
               for i, spec in enumerate(REDIS_POOLS)]
    state = {"mset": False}

    def write():
        for i, listen in enumerate(listens):
            write_redis(listen, keys_of[i], state["mset"])
        state["mset"] = True  # the second side (chash-proxy) also splits MSETs

    side_nc, side_cp = run_both(env, yaml, listens, write, lambda: flush_redis(addrs),
                                lambda: redis_placement(addrs))
    pools = [(spec, sorted({addrs[s[0]] for s in spec[3]})) for spec in REDIS_POOLS]
    n = compare(pools, keys_of, side_nc, side_cp, "redis")
    print("  redis: %d pools, %d keys compared, 0 mismatches (seed %d)"
          % (len(REDIS_POOLS), n, SEED))


def test_memcache_parity(env):
    rng = random.Random(SEED + 1)
    addrs = [("127.0.0.1", env.memcached()[0]) for _ in range(4)]
    specs = list(MC_POOLS)
    # Two loopback addresses nobody else is likely to use, checked free first.
    hosts = ["127.%d.%d.%d" % (rng.randrange(1, 255), rng.randrange(256), rng.randrange(1, 255))
             for _ in range(2)]
    try:
        for host in hosts:
            probe = socket.socket()
            probe.bind((host, 11211))
            probe.close()
            addrs.append((host, env.memcached(port=11211, host=host)[0]))
        specs += MC_POOLS_11211
    except (OSError, RuntimeError):
        print("  (port 11211 busy on %s: no pools of unnamed 11211 servers)" % hosts)
    listens = free_ports(len(specs))
    yaml = "".join(pool_yaml("mc%02d" % i, listens[i], spec, addrs, False)
                   for i, spec in enumerate(specs))
    # What a memcached ASCII key may hold: no space, no control bytes.
    alphabet = [b for b in range(0x21, 0x7f)] + list(range(0x80, 0x100))
    keys_of = [random_keys(rng, b"p%02d|" % i, KEYS_PER_POOL, alphabet, spec[1])
               for i, spec in enumerate(specs)]
    all_keys = [k for ks in keys_of for k in ks]

    def write():
        for i, listen in enumerate(listens):
            write_mc(listen, keys_of[i])

    side_nc, side_cp = run_both(env, yaml, listens, write, lambda: flush_mc(addrs),
                                lambda: mc_placement(addrs, all_keys))
    pools = [(spec, sorted({addrs[s[0]] for s in spec[3]})) for spec in specs]
    n = compare(pools, keys_of, side_nc, side_cp, "memcached")
    # And reads through the proxy find every key.
    for i, listen in enumerate(listens):
        c = Conn(listen)
        for j in range(0, len(keys_of[i]), 100):
            batch = keys_of[i][j:j + 100]
            c.send(b"get " + b" ".join(batch) + b"\r\n")
            hits = [ln.split(b" ")[1] for ln in c.mc_reply(True).split(b"\r\n")
                    if ln.startswith(b"VALUE ")]
            check_eq(hits, batch, "multi-get through chash-proxy, pool %d" % i)
    print("  memcached: %d pools, %d keys compared, 0 mismatches (seed %d)"
          % (len(specs), n, SEED))


if __name__ == "__main__":
    run([test_redis_parity, test_memcache_parity])

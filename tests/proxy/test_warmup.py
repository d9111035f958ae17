#!/usr/bin/env python3
"""test_warmup.py CHASH_PROXY - scale-out without a miss storm.

Ten real redis-servers hold 100,000 keys (a tenth with a TTL) written through
chash-proxy with `warmup:` set; readers keep reading random keys (GET and
MGET) and a writer keeps overwriting and deleting its own keys. The config
gains an 11th server (SIGHUP). Checks, during the warm-up window:
- the read hit rate stays within 1 point of the rate before the reload;
- every write and delete acknowledged to a client reads back as acknowledged,
  through the proxy and on the servers: no stale copy is left on a previous
  owner, no key lives on two servers;
- a moved key keeps its TTL;
and, as the baseline the bar is measured against, nutcracker restarted with
the 11th server on the same data loses about 1/11 of its hits.
"""
import hashlib
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Closed, Conn, check, check_eq, clients_left, free_port,  # noqa: E402
                     proxy_binary, run, stats_json, wait_servers)

BIN = proxy_binary()
KEYS = 100000
TTL_EVERY = 10          # k:i with i % TTL_EVERY == 0 expire in TTL_MS
TTL_MS = 3600 * 1000
WRITER_EVERY = 97       # k:i with i % WRITER_EVERY == 1 belong to the writer
WARMUP_MS = 60000
# Keys nobody else touches (FNV-1a puts "b:0", "b:1"... on one arc: spread them).
B_KEYS = ["b:%s" % hashlib.md5(b"%d" % i).hexdigest()[:12] for i in range(2000)]


def config(listen, ports, warmup=WARMUP_MS, name="zeta"):
    conf = ("%s:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: fnv1a_64\n"
            "  distribution: ketama\n  timeout: 2000\n" % (name, listen))
    if warmup:
        conf += "  warmup: %d\n" % warmup
    return conf + "  servers:\n" + "".join("   - 127.0.0.1:%d:1 r%d\n" % (p, i)
                                           for i, p in enumerate(ports))


def value(i):
    return b"v:%d" % i


def fill(listen, keys=KEYS):
    c = Conn(listen)
    for start in range(0, keys, 2000):
        cmds = []
        for i in range(start, min(keys, start + 2000)):
            if i % TTL_EVERY == 0:
                cmds.append(("SET", "k:%d" % i, value(i), "PX", TTL_MS))
            else:
                cmds.append(("SET", "k:%d" % i, value(i)))
        got = c.pipeline(cmds)
        check(all(g == b"+OK" for g in got), "initial writes")
    c.close()


class Readers:
    """Threads reading random keys (pipelined GETs, and MGETs); a key the
    writer deleted is not counted, every other miss is."""

    def __init__(self, listen, writer, threads=2, keys=KEYS):
        self.listen, self.writer, self.keys = listen, writer, keys
        self.lock = threading.Lock()
        self.hits = self.misses = self.errors = 0
        self.bad = []
        self.stop = False
        self.threads = [threading.Thread(target=self.loop, args=(n,)) for n in range(threads)]
        for t in self.threads:
            t.start()

    def take(self):
        """The counts since the last call."""
        with self.lock:
            out = (self.hits, self.misses, self.errors)
            self.hits = self.misses = self.errors = 0
        return out

    def loop(self, n):
        rng = random.Random(n)
        conn = Conn(self.listen)
        while not self.stop:
            ids = [rng.randrange(self.keys) for _ in range(40)]
            ids = [i for i in ids if i % WRITER_EVERY != 1]
            half = len(ids) // 2
            cmds = [("GET", "k:%d" % i) for i in ids[:half]]
            cmds.append(("MGET",) + tuple("k:%d" % i for i in ids[half:]))
            try:
                got = conn.pipeline(cmds)
            except (Closed, OSError) as e:
                self.bad.append("reader connection: %r" % e)
                return
            replies = got[:-1] + (got[-1] if isinstance(got[-1], list) else
                                  [got[-1]] * (len(ids) - half))
            hits = misses = errors = 0
            for i, r in zip(ids, replies):
                if r == value(i):
                    hits += 1
                elif r is None:
                    misses += 1
                else:
                    errors += 1
                    if len(self.bad) < 5:
                        self.bad.append("k:%d: %r" % (i, r))
            with self.lock:
                self.hits += hits
                self.misses += misses
                self.errors += errors

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()


class Writer(threading.Thread):
    """Overwrites and deletes its own keys (k:i, i % WRITER_EVERY == 1) and
    remembers what was acknowledged last."""

    def __init__(self, listen):
        super().__init__()
        self.listen = listen
        self.ids = list(range(1, KEYS, WRITER_EVERY))
        self.state = {i: value(i) for i in self.ids}  # None: deleted
        self.ops, self.bad, self.stop = 0, [], False

    def run(self):
        rng = random.Random(7)
        conn = Conn(self.listen)
        seq = 0
        while not self.stop:
            i = rng.choice(self.ids)
            seq += 1
            try:
                if rng.random() < 0.3:
                    got = conn.call("DEL", "k:%d" % i)
                    if not isinstance(got, int):
                        self.bad.append("DEL k:%d: %r" % (i, got))
                        continue
                    self.state[i] = None
                else:
                    v = b"w:%d:%d" % (i, seq)
                    got = conn.call("SET", "k:%d" % i, v)
                    if got != b"+OK":
                        self.bad.append("SET k:%d: %r" % (i, got))
                        continue
                    self.state[i] = v
            except (Closed, OSError) as e:
                self.bad.append("writer connection: %r" % e)
                return
            self.ops += 1

    def finish(self):
        self.stop = True
        self.join()


def hit_rate(readers, seconds):
    readers.take()
    time.sleep(seconds)
    hits, misses, errors = readers.take()
    total = hits + misses + errors
    check(total > 1000, "readers ran (%d reads)" % total)
    return hits / total, total, errors


def scan(port):
    c = Conn(port)
    keys = c.call("KEYS", "k:*")
    c.close()
    return set(keys)


def abandon(listen):
    """Clients that ask for moved keys and leave before the answer: the held
    commands are dropped, the proxy stays up (and clean under ASan)."""
    rng = random.Random(3)
    for _ in range(100):
        c = Conn(listen)
        c.send(b"".join(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k)
                        for k in (b"k:%d" % rng.randrange(KEYS) for _ in range(30))))
        c.close()
    check_eq(Conn(listen).call("PING"), b"+PONG", "the proxy after abandoned clients")


def busy_keys(listen, ports):
    """Keys that moved to r10 but were written on r10 directly meanwhile (as a
    client of another proxy already on the new ring would): the proxy must
    serve r10's value and delete the previous owner's copy (BUSYKEY)."""
    c = Conn(listen)
    moved = [k for k, r in zip(B_KEYS, c.pipeline([("PROXY", "LOCATE", k) for k in B_KEYS]))
             if r[0][0] == b"r10"][:20]
    check(len(moved) >= 5, "b: keys moved to r10: %d" % len(moved))
    r10 = Conn(ports[10])
    for k in moved:
        r10.call("SET", k, "direct")
    got = c.pipeline([("GET", k) for k in moved])
    check_eq(got, [b"direct"] * len(moved), "the new owner's value wins")
    left = sum(Conn(p).call("EXISTS", *moved) for p in ports[:10])
    check_eq(left, 0, "previous owners' copies deleted")
    c.close()
    return len(moved)


def test_warmup(env):
    ports = [env.redis()[0] for _ in range(11)]
    listen, stats = free_port(), free_port()
    proxy = env.proxy(BIN, config(listen, ports[:10]), [listen], workers=2, stats_port=stats)
    path = os.path.join(env.dir, "proxy-%d.yml" % listen)
    fill(listen)
    c = Conn(listen)
    check(all(g == b"+OK" for g in c.pipeline([("SET", k, "old") for k in B_KEYS])),
          "b: keys written")
    c.close()
    writer = Writer(listen)
    writer.start()
    readers = Readers(listen, writer)
    before, n_before, _ = hit_rate(readers, 2.0)

    with open(path, "w") as f:
        f.write(config(listen, ports))
    t0 = time.time()
    proxy.send_signal(signal.SIGHUP)
    check(wait_servers(listen, 11), "every worker on 11 servers")
    during, n_during, errors = hit_rate(readers, 4.0)
    check(time.time() - t0 < WARMUP_MS / 1000 - 10, "measured inside the window")
    readers.finish()
    writer.finish()
    print("  hit rate: %.3f %% before (%d reads), %.3f %% during the warm-up (%d reads); "
          "writer: %d acknowledged writes and deletes"
          % (100 * before, n_before, 100 * during, n_during, writer.ops))
    check_eq(readers.bad[:3], [], "reader errors")
    check_eq(writer.bad[:3], [], "writer errors")
    check_eq(errors, 0, "read errors")
    check(writer.ops > 100, "the writer ran")
    check(before > 0.999, "every key readable before: %.4f" % before)
    check(before - during <= 0.01, "hit rate drop %.3f points (bar: 1)" % (100 * (before - during)))
    abandon(listen)
    busy = busy_keys(listen, ports)

    doc = stats_json(stats)["zeta"]
    print("  warm-up stats: moved %d, absent %d, stale dropped %d, failed %d"
          % (doc["warmup_moved"], doc["warmup_absent"], doc["warmup_stale"],
             doc["warmup_failed"]))
    check(doc["warmup_moved"] > 100, "keys were moved")
    check_eq(doc["warmup_failed"], 0, "no failed move")
    check(doc["warmup_stale"] >= busy, "stale copies dropped: %d" % doc["warmup_stale"])

    # Every acknowledged write and delete reads back, through the proxy...
    c = Conn(listen)
    ids = writer.ids
    got = c.pipeline([("GET", "k:%d" % i) for i in ids])
    wrong = [(i, g, writer.state[i]) for i, g in zip(ids, got) if g != writer.state[i]]
    check_eq(wrong[:3], [], "acknowledged writes read back")
    # ... and on the servers: each key on one server at most, its owner, and
    # a writer's key nowhere but there.
    where = {}
    for n, port in enumerate(ports):
        for k in scan(port):
            check(k not in where, "%r on two servers (r%d and r%d)" % (k, where.get(k, -1), n))
            where[k] = n
    owner = {}
    for i, reply in zip(ids, c.pipeline([("PROXY", "LOCATE", "k:%d" % i) for i in ids])):
        owner[i] = int(reply[0][0][1:])  # "rN"
    deleted = [i for i in ids if writer.state[i] is None]
    check(all(b"k:%d" % i not in where for i in deleted), "deleted keys are gone everywhere")
    stale = 0
    for i in ids:
        k = b"k:%d" % i
        if writer.state[i] is None or k not in where:
            continue
        check_eq(where[k], owner[i], "server holding k:%d" % i)
        direct = Conn(ports[where[k]]).call("GET", k)
        if direct != writer.state[i]:
            stale += 1
    check_eq(stale, 0, "writer keys on servers hold the acknowledged value")

    # A moved key kept its TTL: find TTL keys now on r10 (they all moved).
    r10 = Conn(ports[10])
    ttl_keys = [k for k, n in where.items() if n == 10 and int(k[2:]) % TTL_EVERY == 0
                and int(k[2:]) % WRITER_EVERY != 1]
    check(len(ttl_keys) > 5, "moved keys with a TTL: %d" % len(ttl_keys))
    ttls = r10.pipeline([("PTTL", k) for k in ttl_keys])
    check(all(0 < t <= TTL_MS for t in ttls), "TTL kept: %r" % ttls[:5])
    c.close()
    print("  %d keys on r10 after the window's reads; TTL kept on %d moved keys"
          % (sum(1 for n in where.values() if n == 10), len(ttl_keys)))

    # The baseline: nutcracker, restarted with the 11th server.
    for port in ports:
        Conn(port).call("FLUSHALL")
    nc_listen = free_port()
    nc = env.nutcracker(config(nc_listen, ports[:10], warmup=0), [nc_listen])
    fill(nc_listen)
    readers = Readers(nc_listen, None)
    nc_before, _, _ = hit_rate(readers, 1.5)
    readers.finish()
    env.stop(nc)
    nc = env.nutcracker(config(nc_listen, ports, warmup=0), [nc_listen])
    readers = Readers(nc_listen, None)
    nc_after, _, _ = hit_rate(readers, 1.5)
    readers.finish()
    env.stop(nc)
    print("  nutcracker restarted with 11 servers: hit rate %.3f %% -> %.3f %% (drop %.2f "
          "points; 1/11 = 9.09)" % (100 * nc_before, 100 * nc_after,
                                    100 * (nc_before - nc_after)))
    check(nc_before - nc_after > 0.06, "nutcracker's restart loses about 1/11 of its hits")


def test_scale_in(env):
    """A server removed by a reload is asked for its keys while the window
    lasts (if it still runs): the hit rate holds, and when the window ends the
    proxy lets go of it."""
    ports = [env.redis()[0] for _ in range(6)]
    listen = free_port()
    keys = 30000
    window_ms = 4000
    proxy = env.proxy(BIN, config(listen, ports, warmup=window_ms), [listen], workers=2)
    path = os.path.join(env.dir, "proxy-%d.yml" % listen)
    fill(listen, keys)
    readers = Readers(listen, None, keys=keys)
    before, _, _ = hit_rate(readers, 1.0)
    with open(path, "w") as f:
        f.write(config(listen, ports[:5], warmup=window_ms))
    t0 = time.time()
    proxy.send_signal(signal.SIGHUP)
    check(wait_servers(listen, 5), "every worker on 5 servers")
    during, n_during, errors = hit_rate(readers, 1.5)
    check(time.time() - t0 < window_ms / 1000, "measured inside the window")
    readers.finish()
    print("  6 -> 5 servers: hit rate %.3f %% before, %.3f %% during the warm-up (%d reads)"
          % (100 * before, 100 * during, n_during))
    check_eq(readers.bad[:3], [], "reader errors")
    check_eq(errors, 0, "read errors")
    check(before - during <= 0.01, "hit rate drop %.3f points (bar: 1)" % (100 * (before - during)))
    # The window ends: the removed server's connections close.
    time.sleep(max(0.0, t0 + window_ms / 1000 + 0.5 - time.time()))
    left = clients_left(ports[5])
    check(left <= 0, "the removed server let go after the window (%d left)" % left)
    c = Conn(listen)
    check_eq(c.call("SET", "after", "1"), b"+OK", "the pool serves on")
    c.close()


def test_warmup_select(env):
    """A client on another database (SELECT 5): its keys move within that
    database, and nothing of database 0 is touched."""
    ports = [env.redis()[0] for _ in range(4)]
    listen = free_port()
    proxy = env.proxy(BIN, config(listen, ports[:3], warmup=20000), [listen])
    path = os.path.join(env.dir, "proxy-%d.yml" % listen)
    keys = ["sel:%d" % i for i in range(2000)]
    c5, c0 = Conn(listen), Conn(listen)
    check_eq(c5.call("SELECT", 5), b"+OK", "SELECT 5")
    check(all(g == b"+OK" for g in c5.pipeline([("SET", k, "five") for k in keys])), "db 5")
    check(all(g == b"+OK" for g in c0.pipeline([("SET", k, "zero") for k in keys[:100]])),
          "db 0")
    with open(path, "w") as f:
        f.write(config(listen, ports, warmup=20000))
    proxy.send_signal(signal.SIGHUP)
    check(wait_servers(listen, 4), "on 4 servers")
    c5, c0 = Conn(listen), Conn(listen)
    c5.call("SELECT", 5)
    check_eq(c5.pipeline([("GET", k) for k in keys]), [b"five"] * len(keys),
             "every key of db 5 found, moved ones from their previous owner")
    check_eq(c0.pipeline([("GET", k) for k in keys]), [b"zero"] * 100 + [None] * 1900,
             "db 0 as it was")
    moved = Conn(ports[3]).pipeline([("SELECT", 5), ("DBSIZE",)])
    check(moved[1] > 0, "keys moved into db 5 of the new server (%d)" % moved[1])


if __name__ == "__main__":
    run([test_warmup, test_scale_in, test_warmup_select])

#!/usr/bin/env python3
"""test_replication.py CHASH_PROXY - memcached pools with `replication: N`.

Four real memcached. 10,000 keys written through a pool with replication 2
are each on exactly two servers, the first two of the key's ring order
(`chash lookup --replicas 2` on the same configuration, when the CLI sits
beside the proxy; the first is also where replication 1 and nutcracker look
for it). Then one memcached is killed with SIGKILL and every key is read
back through three pools on the same four servers: replication 2, 1, and
nutcracker; the hit rates are printed (docs/proxy.md quotes them) and must
be 100 % for replication 2 and about 75 % for the other two. A bystander
doing set/get with verification on the replicated pool through the kill
sees no error.

Writes reach every copy (set, add, append, incr, touch, delete; ms, md);
deletes remove every copy; noreply and meta q leave no reply and the
replies that follow still match their requests; cas is refused; multi-key
get, gets and gat fall over key by key and keep key order.
"""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Conn, check, check_eq, free_port, proxy_binary, run  # noqa: E402

BIN = proxy_binary()
CLI = os.path.join(os.path.dirname(BIN), "..", "chash")
KEYS = 10000
RESULTS = {}


def pool_text(name, listen, ports, extra=""):
    text = ("%s:\n  listen: 127.0.0.1:%d\n  hash: fnv1a_64\n  distribution: ketama\n"
            "  timeout: 500\n%s  servers:\n" % (name, listen, extra))
    return text + "".join("   - 127.0.0.1:%d:1 mc%d\n" % (p, i) for i, p in enumerate(ports))


def mc_pipeline(conn, requests, retrieval):
    """Sends every request (from a thread, so a deep pipeline cannot block
    on our unread replies) and reads one reply each."""
    t = conn.send_async(b"".join(requests))
    got = [conn.mc_reply(retrieval) for _ in requests]
    t.join()
    return got


def contents(port, keys):
    """The keys (bytes) a server holds, asked directly."""
    c = Conn(port)
    held = set()
    for i in range(0, len(keys), 200):
        c.send(b"get " + b" ".join(keys[i:i + 200]) + b"\r\n")
        for line in c.mc_reply(True).split(b"\r\n"):
            if line.startswith(b"VALUE "):
                held.add(line.split(b" ")[1])
    c.close()
    return held


def hit_rate(port, keys, values):
    """Pipelined single-key gets: the share of keys that come back right."""
    c = Conn(port, timeout=30)
    got = mc_pipeline(c, [b"get " + k + b"\r\n" for k in keys], True)
    c.close()
    hits = 0
    others = {}
    for k, g in zip(keys, got):
        if not g.startswith(b"VALUE "):
            others[g[:60]] = others.get(g[:60], 0) + 1
        if g.startswith(b"VALUE "):
            check_eq(g, b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k, len(values[k]), values[k]),
                     "value of %s" % k)
            hits += 1
    if hits < len(keys):
        print("  port %d: %d hits; the rest: %s" % (port, hits, sorted(others.items())[:4]))
    return hits / len(keys)


class McBystander:
    """set then get of its own keys, in a thread; every reply must be right."""

    def __init__(self, port):
        self.c = Conn(port)
        self.stop = threading.Event()
        self.errors = []
        self.count = 0
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        i = 0
        while not self.stop.is_set():
            k, v = b"by:%d" % (i % 200), b"v%d" % i
            try:
                self.c.send(b"set %s 0 0 %d\r\n%s\r\nget %s\r\n" % (k, len(v), v, k))
                got = [self.c.mc_reply(), self.c.mc_reply(True)]
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
                return
            want = [b"STORED\r\n", b"VALUE %s 0 %d\r\n%s\r\nEND\r\n" % (k, len(v), v)]
            if got != want:
                self.errors.append("%s: %r" % (k, got))
            self.count += 1
            i += 1

    def done(self):
        self.stop.set()
        self.t.join(10)
        check(not self.errors, "bystander: %s" % self.errors[:3])
        check(self.count > 100, "bystander ran (%d rounds)" % self.count)


def test_kill_one_of_four(env):
    servers = [env.memcached() for _ in range(4)]
    ports = [p for p, _ in servers]
    listen2, listen1, listen_nc = free_port(), free_port(), free_port()
    conf2 = pool_text("repl", listen2, ports, "  replication: 2\n")
    env.proxy(BIN, conf2, [listen2], workers=2)
    env.proxy(BIN, pool_text("single", listen1, ports), [listen1])
    env.nutcracker(pool_text("nc", listen_nc, ports), [listen_nc])

    keys = [b"key:%d" % i for i in range(KEYS)]
    values = {k: b"value-%d" % i for i, k in enumerate(keys)}
    px = Conn(listen2, timeout=30)
    got = mc_pipeline(px, [b"set %s 0 0 %d\r\n%s\r\n" % (k, len(values[k]), values[k])
                           for k in keys], False)
    check_eq(set(got), {b"STORED\r\n"}, "every set STORED")

    # Each key on exactly two servers: the first two of its ring order.
    held = {p: contents(p, keys) for p in ports}
    where = {k: [i for i, p in enumerate(ports) if k in held[p]] for k in keys}
    check_eq({len(v) for v in where.values()}, {2}, "every key on exactly two servers")
    for p in ports:
        check(0.3 * KEYS < len(held[p]) < 0.7 * KEYS,
              "server %d holds about half the keys (%d)" % (p, len(held[p])))
    single = Conn(listen1)
    first = {}
    for i in range(0, KEYS, 500):  # the owner: where replication 1 reads
        for k, g in zip(keys[i:i + 500],
                        mc_pipeline(single, [b"get %s\r\n" % k for k in keys[i:i + 500]], True)):
            check(g.startswith(b"VALUE "), "replication 1 finds %s on its owner" % k)
    if os.path.exists(CLI):
        path = env.write("ring.yml", conf2)
        out = subprocess.run([CLI, "lookup", "--scheme", "twemproxy", "--nodes-file", path,
                              "--pool", "repl", "--replicas", "2"],
                             input=b"\n".join(keys) + b"\n", capture_output=True, check=True)
        lines = out.stdout.decode().splitlines()
        check_eq(len(lines), KEYS, "chash lookup answers every key")
        for line in lines:
            k, nodes = line.split("\t")
            names = nodes.split(",")
            first[k.encode()] = int(names[0][2:])
            check_eq(sorted(int(n[2:]) for n in names), where[k.encode()],
                     "%s on chash_lookup_n's first two" % k)
    # Multi-key get, gets and gat: every key, in key order.
    sample = keys[:300]
    for cmd in (b"get", b"gets", b"gat 0"):
        px.send(cmd + b" " + b" ".join(sample) + b"\r\n")
        reply = px.mc_reply(True)
        got = [line.split(b" ")[1] for line in reply.split(b"\r\n")
               if line.startswith(b"VALUE ")]
        check_eq(got, sample, "%s of 300 keys, in key order" % cmd)

    # Kill one memcached under a bystander.
    by = McBystander(listen2)
    time.sleep(0.3)
    victim_port, victim = servers[1]
    env.stop(victim, force=True)
    time.sleep(1.0)
    by.done()

    rates = {"replication 2": hit_rate(listen2, keys, values),
             "replication 1": hit_rate(listen1, keys, values),
             "nutcracker": hit_rate(listen_nc, keys, values)}
    for _ in range(2):  # the anchor, not under test: a second look past a hiccup
        if rates["nutcracker"] > 0.5:
            break
        time.sleep(1)
        rates["nutcracker"] = hit_rate(listen_nc, keys, values)
    # Multi-key gets over the dead server fall over key by key.
    hits = 0
    for i in range(0, KEYS, 100):
        px.send(b"get " + b" ".join(keys[i:i + 100]) + b"\r\n")
        reply = px.mc_reply(True)
        got = [line.split(b" ")[1] for line in reply.split(b"\r\n")
               if line.startswith(b"VALUE ")]
        check_eq(got, [k for k in keys[i:i + 100] if k in got], "key order")
        hits += len(got)
    rates["replication 2, get of 100 keys"] = hits / KEYS
    for name, rate in rates.items():
        print("hit rate after killing 1 of 4 memcached: %-32s %6.2f %%" % (name, 100 * rate))
    RESULTS.update(rates)
    dead_share = len(held[victim_port]) / 2 / KEYS
    check_eq(rates["replication 2"], 1.0, "replication 2 loses no hit")
    check_eq(rates["replication 2, get of 100 keys"], 1.0, "nor in multi-key gets")
    for name in ("replication 1", "nutcracker"):
        check(abs(rates[name] - (1 - dead_share)) < 0.05,
              "%s loses the dead server's share (%.3f, dead share %.3f)"
              % (name, rates[name], dead_share))
    if first:
        owned = sum(1 for k in keys if first[k] == 1) / KEYS
        check(abs((1 - owned) - rates["replication 1"]) < 0.001,
              "replication 1 misses exactly the dead owner's keys")

    # Writes while a server is dead: the live copy takes them.
    check_eq(mc_pipeline(px, [b"set %s 0 0 3\r\nnew\r\n" % k for k in keys[:200]], False),
             [b"STORED\r\n"] * 200, "sets with a copy dead")
    check_eq(hit_rate(listen2, keys[:200], {k: b"new" for k in keys[:200]}), 1.0,
             "and read back")


def test_writes_reach_every_copy(env):
    ports = [env.memcached()[0] for _ in range(4)]
    listen = free_port()
    env.proxy(BIN, pool_text("repl", listen, ports, "  replication: 3\n"), [listen])
    px = Conn(listen)
    keys = [b"w:%d" % i for i in range(300)]

    def copies(k):
        return [p for p in ports if k in contents(p, [k])]

    def direct(p, req, retrieval=False):
        c = Conn(p)
        c.send(req)
        got = c.mc_reply(retrieval)
        c.close()
        return got

    # noreply sets: nothing comes back, then the version reply matches.
    px.send(b"".join(b"set %s 0 0 1 noreply\r\nx\r\n" % k for k in keys) + b"version\r\n")
    check(px.mc_reply().startswith(b"VERSION "), "noreply sets leave no reply")
    for k in keys[:20]:
        check_eq(len(copies(k)), 3, "%s on three servers" % k)
    # Every copy sees append, incr, touch; the reply is one.
    k = keys[0]
    px.send(b"append %s 0 0 2\r\nyz\r\nset n 0 0 1\r\n5\r\nincr n 10\r\ntouch %s 100\r\n" % (k, k))
    check_eq([px.mc_reply() for _ in range(4)],
             [b"STORED\r\n", b"STORED\r\n", b"15\r\n", b"TOUCHED\r\n"], "one reply each")
    for p in copies(k):
        check_eq(direct(p, b"get %s\r\n" % k, True), b"VALUE %s 0 3\r\nxyz\r\nEND\r\n" % k,
                 "append on every copy")
    for p in copies(b"n"):
        check_eq(direct(p, b"get n\r\n", True), b"VALUE n 0 2\r\n15\r\nEND\r\n", "incr on %d" % p)
    check_eq(len(copies(b"n")), 3, "n on three servers")
    # add: NOT_STORED when there; cas refused (each copy has its own unique).
    px.send(b"add %s 0 0 1\r\nq\r\n" % k)
    check_eq(px.mc_reply(), b"NOT_STORED\r\n", "add of a key that is there")
    px.send(b"cas %s 0 0 1 1\r\nq\r\n" % k)
    check(px.mc_reply().startswith(b"CLIENT_ERROR cas is not supported"), "cas refused")
    px.send(b"gets %s\r\n" % k)
    check(px.mc_reply(True).startswith(b"VALUE %s 0 3 " % k), "gets still works")
    # delete: DELETED, then every copy is gone; again: NOT_FOUND.
    px.send(b"delete %s\r\ndelete %s\r\n" % (k, k))
    check_eq([px.mc_reply(), px.mc_reply()], [b"DELETED\r\n", b"NOT_FOUND\r\n"], "delete")
    check_eq(copies(k), [], "delete removed every copy")
    px.send(b"".join(b"delete %s noreply\r\n" % k for k in keys[1:]) + b"get %s\r\n" % keys[5])
    check_eq(px.mc_reply(True), b"END\r\n", "noreply deletes leave no reply")
    for k in keys[1:40]:
        check_eq(copies(k), [], "noreply delete removed every copy of %s" % k)
    # A delete that finds the key on one copy only still says DELETED.
    for p in copies(b"n")[:-1]:
        direct(p, b"delete n\r\n")
    px.send(b"delete n\r\n")
    check_eq(px.mc_reply(), b"DELETED\r\n", "DELETED when one copy had it")
    # Meta: ms with q leaves no reply, mg falls over, md reaches every copy.
    px.send(b"ms m 2 q\r\nhi\r\nmn\r\n")
    check_eq(px.mc_reply(), b"MN\r\n", "ms q: no reply")
    check_eq(len(copies(b"m")), 3, "ms on three servers")
    first_copy = copies(b"m")[0]
    direct(first_copy, b"delete m\r\n")
    px.send(b"mg m v\r\nmg nope v q\r\nmg nope v\r\nmn\r\n")
    check_eq([px.mc_reply() for _ in range(4)], [b"VA 2\r\n", b"hi\r\n", b"EN\r\n", b"MN\r\n"],
             "mg falls over to the next copy; a miss under q is dropped")
    px.send(b"md m q\r\nmd m\r\n")
    check_eq(px.mc_reply(), b"NF\r\n", "md q: HD dropped, then NF")
    check_eq(copies(b"m"), [], "md removed every copy")


def test_config_errors(env):
    ports = [free_port() for _ in range(2)]
    for extra, want in (("  replication: 3\n", "replication: 3 copies need at least 3 servers"),
                        ("  replication: 2\n  redis: true\n", "replication is for memcached"),
                        ("  replication: 2\n  preconnect: false\n",
                         "replication needs a distribution with a ring order")):
        text = pool_text("p", free_port(), ports, extra)
        if "preconnect" in extra:
            text = text.replace("distribution: ketama", "distribution: modula")
        path = env.write("bad.yml", text)
        out = subprocess.run([BIN, "-t", "-c", path], capture_output=True, text=True)
        check(out.returncode != 0, "%r refused" % extra)
        check(want in out.stdout + out.stderr, "%r: %r" % (want, out.stdout + out.stderr))


if __name__ == "__main__":
    run([test_config_errors, test_writes_reach_every_copy, test_kill_one_of_four])
    print("results: %s" % RESULTS)

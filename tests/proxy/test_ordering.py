#!/usr/bin/env python3
"""test_ordering.py CHASH_PROXY - no reply lost, none out of order.

Many clients at once, each with deep pipelines of mixed commands on its own
keys: single-key (SET, GET, INCR, APPEND, GETSET, LPUSH...), multi-key split
across servers (MGET, MSET, DEL, UNLINK, EXISTS, TOUCH), commands answered by
the proxy (PING, ECHO), and errors in between (refused and unknown commands,
WRONGTYPE, arity). Every reply is checked against a model of what redis
would answer, in order. Some clients write their pipeline in one go, others
in random pieces (commands split across reads). The proxy runs two workers
with two connections per server. Then the same for memcached (get/gets
multi-key, set, add, replace, append, prepend, incr, decr, delete, touch,
noreply). At the end, every key read back through the proxy and directly
from the servers matches the model.

Set CHASH_TEST_SEED to replay a run.
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Closed, Conn, check, check_eq, enc, free_port, proxy_binary, run  # noqa: E402

# What the proxy says of commands its table refuses (command.c).
REFUSED = {
    "BGSAVE": "ERR the proxy refuses 'bgsave': replication and persistence are managed on "
              "each server",
    "MONITOR": "ERR the proxy refuses 'monitor': it would watch one server's commands from "
               "every client",
    "SHUTDOWN": "ERR the proxy refuses 'shutdown': it would stop one server of the pool",
    "MIGRATE": "ERR the proxy refuses 'migrate': where a key lives is the ring's to decide",
}

BIN = proxy_binary()
SEED = int(os.environ.get("CHASH_TEST_SEED", int(time.time())))
CLIENTS = 20
ROUNDS = 4
DEPTH = 1500


def send_pieces(c, data, rng):
    """Writes data in random pieces from a thread (reads go on meanwhile)."""
    def go():
        i = 0
        while i < len(data):
            n = rng.choice([1, 7, 100, 4096, 65536])
            c.s.sendall(data[i:i + n])
            i += n
    t = threading.Thread(target=go, daemon=True)
    t.start()
    return t


# ---- redis ---------------------------------------------------------------------

class RedisModel:
    """Strings and lists, as redis answers for them."""

    def __init__(self, cid):
        self.cid = cid
        self.data = {}
        self.keys = ["c%d:k%d" % (cid, j) for j in range(60)]
        self.tagged = ["{c%d}:t%d" % (cid, j) for j in range(10)]

    def is_str(self, k):
        return isinstance(self.data.get(k), bytes)

    def next(self, rng):
        """One command and the reply the model expects."""
        d = self.data
        k = rng.choice(self.keys + self.tagged)
        op = rng.randrange(22)
        wrongtype = ("err", "WRONGTYPE Operation against a key holding the wrong kind of value")
        if op <= 2:
            v = rng.choice([b"", b"v%d" % rng.getrandbits(20), os.urandom(rng.randint(1, 300)),
                            b"x" * rng.choice([1000, 20000])])
            d[k] = v
            return ("SET", k, v), b"+OK"
        if op <= 5:
            if k in d and not self.is_str(k):
                return ("GET", k), wrongtype
            return ("GET", k), d.get(k)
        if op == 6:
            cur = d.get(k)
            if cur is not None and not isinstance(cur, bytes):
                return ("INCR", k), wrongtype
            if cur is not None:
                try:
                    n = int(cur)
                    if str(n).encode() != cur:
                        raise ValueError
                except ValueError:
                    return ("INCR", k), ("err", "ERR value is not an integer or out of range")
            else:
                n = 0
            d[k] = str(n + 1).encode()
            return ("INCR", k), n + 1
        if op == 7:
            add = b"+%d" % rng.randrange(100)
            if k in d and not self.is_str(k):
                return ("APPEND", k, add), wrongtype
            d[k] = d.get(k, b"") + add
            return ("APPEND", k, add), len(d[k])
        if op == 8:
            ks = rng.sample(self.keys, rng.randint(1, 12)) + [rng.choice(self.tagged)]
            rng.shuffle(ks)
            want = [d[x] if self.is_str(x) else None for x in ks]
            return ("MGET",) + tuple(ks), want
        if op == 9:
            ks = rng.sample(self.keys, rng.randint(1, 10))
            args = []
            for x in ks:
                v = b"m%d" % rng.getrandbits(16)
                args += [x, v]
                d[x] = v
            return ("MSET",) + tuple(args), b"+OK"
        if op == 10:
            ks = rng.sample(self.keys, rng.randint(1, 6))
            ks.append(rng.choice(ks))  # a duplicate counts once
            n = sum(1 for x in set(ks) if x in d)
            for x in ks:
                d.pop(x, None)
            return (rng.choice(["DEL", "UNLINK"]),) + tuple(ks), n
        if op == 11:
            ks = rng.sample(self.keys, rng.randint(1, 8))
            ks += ks[:2]  # EXISTS counts duplicates
            return (rng.choice(["EXISTS", "TOUCH"]),) + tuple(ks), sum(1 for x in ks if x in d)
        if op == 12:
            v = b"g%d" % rng.getrandbits(10)
            if k in d and not self.is_str(k):
                return ("GETSET", k, v), wrongtype
            old = d.get(k)
            d[k] = v
            return ("GETSET", k, v), old
        if op == 13:
            item = b"i%d" % rng.randrange(1000)
            if k in d and self.is_str(k):
                return ("LPUSH", k, item), wrongtype
            d.setdefault(k, []).insert(0, item)
            return ("LPUSH", k, item), len(d[k])
        if op == 14:
            if k in d and self.is_str(k):
                return ("LRANGE", k, 0, -1), wrongtype
            return ("LRANGE", k, 0, -1), list(d.get(k, []))
        if op == 15:
            return ("PING",), b"+PONG"
        if op == 16:
            msg = os.urandom(rng.randint(0, 50))
            return ("ECHO", msg), msg
        if op == 17:
            name = rng.choice(["NOSUCH", "BGSAVE", "MONITOR", "SHUTDOWN", "MIGRATE"])
            if name == "NOSUCH":
                return (name, "x"), ("err", "ERR unknown command 'NOSUCH', with args beginning "
                                            "with: 'x' ")
            return (name, "x"), ("err", REFUSED[name])
        if op == 18:
            return ("GET",), ("err", "ERR wrong number of arguments for 'get' command")
        if op == 19:
            t = rng.sample(self.tagged, 3)
            return ("MGET",) + tuple(t), [d[x] if self.is_str(x) else None for x in t]
        if op == 20:
            kind = "none" if k not in d else ("string" if self.is_str(k) else "list")
            return ("TYPE", k), b"+" + kind.encode()
        if k in d and not self.is_str(k):
            return ("STRLEN", k), wrongtype
        return ("STRLEN", k), len(d.get(k, b""))


def redis_client(listen, cid, errors, counts, models):
    rng = random.Random("%d:%d" % (SEED, cid))
    model = RedisModel(cid)
    models[cid] = model
    try:
        c = Conn(listen, timeout=30)
        for r in range(ROUNDS):
            cmds, wants = [], []
            for _ in range(DEPTH):
                cmd, want = model.next(rng)
                cmds.append(cmd)
                wants.append(want)
            data = b"".join(enc(*x) for x in cmds)
            t = send_pieces(c, data, rng) if cid % 3 == 0 else c.send_async(data)
            for i, (cmd, want) in enumerate(zip(cmds, wants)):
                got = c.reply()
                if got != want:
                    errors.append("client %d round %d #%d %r: got %r, want %r"
                                  % (cid, r, i, cmd[:3], got, want))
                    return
            t.join()
            counts[cid] = counts.get(cid, 0) + len(cmds)
        # The end state, read back through the proxy.
        for k in model.keys + model.tagged:
            v = model.data.get(k)
            got = c.call("LRANGE", k, 0, -1) if isinstance(v, list) else c.call("GET", k)
            if got != v:
                errors.append("client %d: final %s is %r, want %r" % (cid, k, got, v))
                return
        c.close()
    except Exception as e:  # noqa: BLE001
        errors.append("client %d: %r" % (cid, e))


def test_redis_ordering(env):
    ports = [env.redis()[0] for _ in range(4)]
    listen = free_port()
    conf = ("order:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: md5\n  hash_tag: \"{}\"\n"
            "  distribution: ketama\n  server_connections: 2\n  timeout: 10000\n  servers:\n"
            % listen)
    conf += "".join("   - 127.0.0.1:%d:1\n" % p for p in ports)
    env.proxy(BIN, conf, [listen], workers=2)
    errors, counts, models = [], {}, {}
    threads = [threading.Thread(target=redis_client, args=(listen, cid, errors, counts, models))
               for cid in range(CLIENTS)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    check(not any(t.is_alive() for t in threads), "every client finished")
    check_eq(errors[:3], [], "lost or misordered replies")
    total = sum(counts.values())
    check_eq(total, CLIENTS * ROUNDS * DEPTH, "every request answered")
    # Directly from the servers: each key once, with the model's value.
    holders = {}
    for p in ports:
        c = Conn(p)
        for model in models.values():
            for k in model.keys + model.tagged:
                v = model.data.get(k)
                if v is None:
                    continue
                got = c.call("LRANGE", k, 0, -1) if isinstance(v, list) else c.call("GET", k)
                if got not in (None, []):
                    holders.setdefault(k, []).append(p)
                    check_eq(got, v, "%s on server %d" % (k, p))
    live = sum(1 for m in models.values() for v in m.data.values() if v is not None)
    check_eq(len(holders), live, "every live key on a server")
    check(all(len(h) == 1 for h in holders.values()), "every key on exactly one server")
    check_eq(len({p for h in holders.values() for p in h}), len(ports), "keys on every server")
    print("  redis: %d clients x %d rounds x %d = %d requests in %.1fs, 0 lost or misordered"
          % (CLIENTS, ROUNDS, DEPTH, total, time.time() - t0))


# ---- memcached -------------------------------------------------------------------

class McModel:
    """Plain keys (set, add, replace, append, prepend) and counters (set to
    a number, incr, decr); get, delete and touch on both."""

    def __init__(self, cid):
        self.keys = [b"c%d:k%d" % (cid, j) for j in range(50)]
        self.counters = [b"c%d:n%d" % (cid, j) for j in range(10)]
        self.data = {}  # key -> (flags, value)

    def all_keys(self):
        return self.keys + self.counters

    def value_block(self, k):
        flags, v = self.data[k]
        return b"VALUE %s %d %d\r\n%s\r\n" % (k, flags, len(v), v)

    def next(self, rng):
        """(request, reply kind: False a line, True a retrieval, None no
        reply (noreply), the reply wanted)."""
        d = self.data
        k = rng.choice(self.keys)
        n = rng.choice(self.counters)
        op = rng.randrange(16)
        if op <= 2:
            v = rng.choice([b"", b"v%d" % rng.getrandbits(20), b"x" * rng.choice([100, 5000])])
            flags = rng.randrange(1 << 16)
            d[k] = (flags, v)
            return b"set %s %d 0 %d\r\n%s\r\n" % (k, flags, len(v), v), False, b"STORED\r\n"
        if op <= 4:
            ks = rng.sample(self.all_keys(), rng.randint(1, 15))
            ks.append(rng.choice(ks))
            want = b"".join(self.value_block(x) for x in ks if x in d) + b"END\r\n"
            return b"get " + b" ".join(ks) + b"\r\n", True, want
        if op == 5:
            want = b"STORED\r\n" if k not in d else b"NOT_STORED\r\n"
            if k not in d:
                d[k] = (0, b"added")
            return b"add %s 0 0 5\r\nadded\r\n" % k, False, want
        if op == 6:
            want = b"STORED\r\n" if k in d else b"NOT_STORED\r\n"
            if k in d:
                d[k] = (7, b"rep")
            return b"replace %s 7 0 3\r\nrep\r\n" % k, False, want
        if op == 7:
            if k in d:
                d[k] = (d[k][0], d[k][1] + b"+a")
                return b"append %s 0 0 2\r\n+a\r\n" % k, False, b"STORED\r\n"
            return b"append %s 0 0 2\r\n+a\r\n" % k, False, b"NOT_STORED\r\n"
        if op == 8:
            if k in d:
                d[k] = (d[k][0], b"p-" + d[k][1])
                return b"prepend %s 0 0 2\r\np-\r\n" % k, False, b"STORED\r\n"
            return b"prepend %s 0 0 2\r\np-\r\n" % k, False, b"NOT_STORED\r\n"
        if op == 9:
            v = b"%d" % rng.randrange(10 ** rng.randint(1, 6))
            d[n] = (0, v)
            return b"set %s 0 0 %d\r\n%s\r\n" % (n, len(v), v), False, b"STORED\r\n"
        if op in (10, 11):
            step = rng.randrange(1, 5000)
            cmd = b"incr" if op == 10 else b"decr"
            req = b"%s %s %d\r\n" % (cmd, n, step)
            if n not in d:
                return req, False, b"NOT_FOUND\r\n"
            num = int(d[n][1])
            if cmd == b"decr" and num >= 10:
                # memcached writes a shorter number in place, padded with
                # spaces - or not, when the item is busy: keep the length.
                lo = 10 ** (len(d[n][1]) - 1)
                if num == lo:
                    cmd = b"incr"
                else:
                    step = rng.randrange(1, num - lo + 1)
                req = b"%s %s %d\r\n" % (cmd, n, step)
            num = num + step if cmd == b"incr" else max(0, num - step)
            d[n] = (d[n][0], b"%d" % num)
            return req, False, b"%d\r\n" % num
        if op == 12:
            x = rng.choice([k, n])
            want = b"DELETED\r\n" if x in d else b"NOT_FOUND\r\n"
            d.pop(x, None)
            return b"delete %s\r\n" % x, False, want
        if op == 13:
            want = b"TOUCHED\r\n" if k in d else b"NOT_FOUND\r\n"
            return b"touch %s 0\r\n" % k, False, want
        if op == 14:
            v = b"q%d" % rng.randrange(100)
            d[k] = (1, v)
            return b"set %s 1 0 %d noreply\r\n%s\r\n" % (k, len(v), v), None, None
        return b"nosuchcommand %s\r\n" % k, False, b"ERROR\r\n"


def mc_client(listen, cid, errors, counts, models):
    rng = random.Random("%d:mc%d" % (SEED, cid))
    model = McModel(cid)
    models[cid] = model
    try:
        c = Conn(listen, timeout=30)
        for r in range(ROUNDS):
            steps = [model.next(rng) for _ in range(DEPTH)]
            data = b"".join(s[0] for s in steps)
            t = send_pieces(c, data, rng) if cid % 3 == 0 else c.send_async(data)
            n = 0
            for i, (req, kind, want) in enumerate(steps):
                if kind is None:
                    continue
                got = c.mc_reply(kind)
                n += 1
                if got != want:
                    at = next((j for j in range(min(len(got), len(want))) if got[j] != want[j]),
                              min(len(got), len(want)))
                    errors.append("client %d round %d #%d %r: differs at byte %d: got %r, want %r"
                                  % (cid, r, i, req[:40], at, got[max(0, at - 60):at + 60],
                                     want[max(0, at - 60):at + 60]))
                    return
            t.join()
            counts[cid] = counts.get(cid, 0) + len(steps)
        c.close()
    except Exception as e:  # noqa: BLE001
        errors.append("client %d: %r" % (cid, e))


def test_memcache_ordering(env):
    ports = [env.memcached()[0] for _ in range(4)]
    listen = free_port()
    conf = ("order:\n  listen: 127.0.0.1:%d\n  hash: fnv1a_64\n  distribution: ketama\n"
            "  server_connections: 2\n  timeout: 10000\n  servers:\n" % listen)
    conf += "".join("   - 127.0.0.1:%d:1 mc%d\n" % (p, i) for i, p in enumerate(ports))
    env.proxy(BIN, conf, [listen], workers=2)
    errors, counts, models = [], {}, {}
    threads = [threading.Thread(target=mc_client, args=(listen, cid, errors, counts, models))
               for cid in range(CLIENTS)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    check(not any(t.is_alive() for t in threads), "every client finished")
    check_eq(errors[:3], [], "lost or misordered replies")
    total = sum(counts.values())
    check_eq(total, CLIENTS * ROUNDS * DEPTH, "every request answered")
    # Directly from the servers: each live key on exactly one, as modelled.
    found = {}
    for p in ports:
        c = Conn(p)
        for model in models.values():
            c.send(b"get " + b" ".join(model.all_keys()) + b"\r\n")
            reply = c.mc_reply(True)
            got_keys = [ln.split(b" ")[1] for ln in reply.split(b"\r\n")
                        if ln.startswith(b"VALUE ")]
            for k in got_keys:
                found.setdefault(k, []).append(p)
                check(k in model.data and model.value_block(k) in reply,
                      "%r on server %d as modelled" % (k, p))
    live = sum(len(m.data) for m in models.values())
    check_eq(len(found), live, "every live key on a server")
    check(all(len(v) == 1 for v in found.values()), "every key on exactly one server")
    print("  memcached: %d clients x %d rounds x %d = %d requests in %.1fs, 0 lost or misordered"
          % (CLIENTS, ROUNDS, DEPTH, total, time.time() - t0))


# ---- SIGTERM under load -------------------------------------------------------------

def busy_client(listen, cid, stop, errors, counts):
    """Pipelines checked batches until the proxy closes the connection; every
    reply received before that must be right (a prefix of the answers)."""
    rng = random.Random("%d:busy%d" % (SEED, cid))
    model = RedisModel(100 + cid)
    got_n = 0
    try:
        c = Conn(listen, timeout=20)
        while True:
            batch = [model.next(rng) for _ in range(300)]
            t = c.send_async(b"".join(enc(*cmd) for cmd, _ in batch))
            for cmd, want in batch:
                try:
                    got = c.reply()
                except (Closed, ConnectionResetError):
                    counts[cid] = got_n
                    if not stop.is_set():
                        errors.append("client %d: closed before SIGTERM" % cid)
                    return
                if got != want:
                    errors.append("client %d: %r: got %r, want %r" % (cid, cmd[:3], got, want))
                    return
                got_n += 1
            t.join()
    except Exception as e:  # noqa: BLE001
        errors.append("client %d: %r" % (cid, e))


def test_sigterm_under_load(env):
    """SIGTERM while 12 clients pipeline: the proxy drains and exits 0, with
    no sanitizer report, and no client saw a wrong reply first."""
    ports = [env.redis()[0] for _ in range(3)]
    listen = free_port()
    conf = ("busy:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: md5\n  hash_tag: \"{}\"\n"
            "  server_connections: 2\n  servers:\n" % listen)
    conf += "".join("   - 127.0.0.1:%d:1\n" % p for p in ports)
    proc = env.proxy(BIN, conf, [listen], workers=2)
    log = env.proxies[-1][1]
    stop = threading.Event()
    errors, counts = [], {}
    threads = [threading.Thread(target=busy_client, args=(listen, cid, stop, errors, counts))
               for cid in range(12)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    stop.set()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(15)
    except subprocess.TimeoutExpired:
        rc = "still running 15 s after SIGTERM"
    env.proxies.pop()  # stopped here; check_proxies must not stop it again
    for t in threads:
        t.join(20)
    check_eq(rc, 0, "exit status after SIGTERM under load")
    text = open(log, errors="replace").read()
    check("Sanitizer" not in text and "runtime error" not in text,
          "sanitizer report:\n%s" % text[-4000:])
    check_eq(errors[:3], [], "replies before the close")
    check_eq(len(counts), len(threads), "every client saw the close")
    check(all(n > 0 for n in counts.values()), "every client was served first: %r" % counts)
    print("  SIGTERM under load: %d replies checked, then a clean close, exit 0"
          % sum(counts.values()))


if __name__ == "__main__":
    run([test_redis_ordering, test_memcache_ordering, test_sigterm_under_load])

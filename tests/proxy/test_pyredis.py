#!/usr/bin/python3
"""test_pyredis.py CHASH_PROXY - the application's client library, redis-py,
works through chash-proxy unchanged.

Needs Debian's python3-redis (redis-py 4.3.4) under /usr/bin/python3: ctest
runs it there (chash_proxy_pytest_debian); the python3 first on PATH may be
another interpreter without it.

Three redis-servers behind the proxy (hash_tag "{}", timeout 300 ms) and one
reference redis-server: each library call made through the proxy is made on
the reference holding the same data, and the results compared. Where sharding
changes the answer (a transaction, a script or a blocking pop whose keys live
on two servers) the library must get a clear error (a ResponseError) and
nothing may be written. Covered with redis-py's own API: pipelines,
transactions (pipeline(transaction=True), transaction() with WATCH and its
retry), pub/sub (get_message, listen, run_in_thread, health checks, PUBLISH
counts, PUBSUB NUMSUB / CHANNELS / NUMPAT), scan_iter and the h/s/zscan_iter,
Script objects (EVALSHA with the NOSCRIPT fallback, in pipelines too), EVAL,
blocking pops and XREAD BLOCK past the pool's timeout, Redis(db=N), the
connection-level calls the library makes (PING, ECHO, CLIENT SETNAME /
GETNAME / ID, INFO, DBSIZE, TIME, RANDOMKEY, CONFIG GET), and ~30 threads
mixing all of it. Every case has a bystander client on the same pool whose
SET/GET must all be right and never wait behind another client.

Each case runs even when an earlier one failed; the exit status is 1 if any
did.
"""
import os
import random
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Conn, SetGetBystander, check, check_eq, free_port, proxy_binary,  # noqa: E402
                     run)

try:
    import redis
    from redis.exceptions import (ExecAbortError, NoScriptError, ResponseError,  # noqa: E402
                                  WatchError)
except ImportError:
    sys.exit("test_pyredis.py needs Debian's python3-redis: run it with /usr/bin/python3")

BIN = proxy_binary()
# Every client's socket timeout: a reply that never comes fails the case
# instead of hanging it. Longer than any block a case asks for.
SOCKET_TIMEOUT = 15
POOL_TIMEOUT_MS = 300


def client(port, **kw):
    kw.setdefault("socket_timeout", SOCKET_TIMEOUT)
    return redis.Redis(host="127.0.0.1", port=port, **kw)


def Bystander(port, name):
    """The shared bystander, in db 15: db 0 then holds the same keys through
    the proxy as on the reference (its commands share the server connections
    all the same, each selecting its db)."""
    return SetGetBystander(port, name, db=15, pause=0.001)


class ServerWatch:
    """PINGs each server directly (not through the proxy) in a thread: the
    slowest answer of each, to tell a server that really stalled (a loaded
    machine) from a proxy that lost a reply, when a case sees the proxy's
    `Connection timed out`."""

    def __init__(self, ports):
        self.ports = ports
        self.slowest = [0.0] * len(ports)
        self.error = None
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        try:
            conns = [Conn(p) for p in self.ports]
            while not self.stop.is_set():
                for i, c in enumerate(conns):
                    t0 = time.time()
                    c.call("PING")
                    self.slowest[i] = max(self.slowest[i], time.time() - t0)
                time.sleep(0.01)
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)

    def done(self):
        self.stop.set()
        self.t.join(5)
        if self.error:
            return "servers watch failed: %s" % self.error
        return "servers' slowest direct PING: %s" % ", ".join(
            "%d: %.0f ms" % (p, 1000 * s) for p, s in zip(self.ports, self.slowest))


class Setup:
    """Three servers behind the proxy, a reference server, a bystander, and
    a watch on the servers."""

    def __init__(self, env, name, workers=1, pool_timeout=POOL_TIMEOUT_MS):
        self.ports = [env.redis()[0] for _ in range(3)]
        self.ref_port = env.redis()[0]
        self.listen = free_port()
        conf = ("p:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash_tag: \"{}\"\n"
                "  timeout: %d\n  servers:\n%s" % (
                    self.listen, pool_timeout,
                    "".join("   - 127.0.0.1:%d:1\n" % p for p in self.ports)))
        env.proxy(BIN, conf, [self.listen], workers=workers)
        self.px = self.proxy()
        self.ref = self.reference()
        self.by = Bystander(self.listen, name)
        self.watch = ServerWatch(self.ports)

    def proxy(self, **kw):
        return client(self.listen, **kw)

    def reference(self, **kw):
        return client(self.ref_port, **kw)

    def owner(self, key, db=0):
        """The server holding key, asked directly."""
        for p in self.ports:
            c = Conn(p)
            if db:
                c.call("SELECT", db)
            n = c.call("EXISTS", key)
            c.close()
            if n == 1:
                return p
        return None

    def place(self, name):
        """The server the ring gives name (as a key or a channel)."""
        self.px.set(name, 1)
        p = self.owner(name)
        self.px.delete(name)
        return p

    def spread(self, prefix, n=3):
        """n names, each on another server."""
        found = {}
        for _ in range(500):
            # Varied names: fnv1a_64 keeps names that differ only in their
            # last bytes close together on the ring.
            name = "%s%s" % (prefix, os.urandom(5).hex())
            found.setdefault(self.place(name), name)
            if len(found) >= n:
                return list(found.values())[:n]
        raise AssertionError("no %d names on different servers" % n)

    def apart(self):
        return self.spread("apart:", 2)

    def server_dbsizes(self, db=0):
        out = []
        for p in self.ports:
            c = Conn(p)
            if db:
                c.call("SELECT", db)
            out.append(c.call("DBSIZE"))
            c.close()
        return out

    def direct(self, port, cmd, db=0):
        c = Conn(port)
        if db:
            c.call("SELECT", db)
        got = c.call(*cmd)
        c.close()
        return got

    def get_in(self, key, db):
        """key's value in db, on whichever server holds it, or None."""
        for p in self.ports:
            v = self.direct(p, ("GET", key), db)
            if v is not None:
                return v
        return None

    def done(self):
        self.by.done(self.watch.done())


def norm(x):
    """A result with exceptions replaced by their type and text, so results
    that hold them compare."""
    if isinstance(x, BaseException):
        return ("error", type(x).__name__, str(x))
    if isinstance(x, list):
        return [norm(i) for i in x]
    if isinstance(x, tuple):
        return tuple(norm(i) for i in x)
    if isinstance(x, dict):
        return {k: norm(v) for k, v in x.items()}
    return x


def outcome(fn, r):
    try:
        return ("ok", norm(fn(r)))
    except redis.exceptions.RedisError as e:
        return norm(e)


def same(s, what, fn, px=None, ref=None):
    """fn on the proxy and on the reference: the same result, or the same
    error. Returns the proxy's."""
    got = outcome(fn, px or s.px)
    want = outcome(fn, ref or s.ref)
    check_eq(got, want, what)
    return got


def raises(fn, what, types=(ResponseError,)):
    """fn must raise one of types (not hang, not succeed); returns it."""
    try:
        got = fn()
    except types as e:
        return e
    raise AssertionError("%s: no error, got %r" % (what, got))


# ---- pipelines ---------------------------------------------------------------

def test_pipeline(env):
    s = Setup(env, "pipeline")

    def mixed(r):
        p = r.pipeline(transaction=False)
        p.mset({"k:%d" % i: "v%d" % i for i in range(300)})
        for i in range(40):
            p.set("s:%d" % i, i)
            p.incr("s:%d" % i)
            p.get("s:%d" % i)
            p.hset("h:%d" % i, mapping={"a": i, "b": "x"})
            p.hgetall("h:%d" % i)
            p.rpush("l:%d" % i, *range(5))
            p.lrange("l:%d" % i, 0, -1)
            p.sadd("set:%d" % i, "a", "b", "c")
            p.smembers("set:%d" % i)
            p.zadd("z:%d" % i, {"a": 1, "b": 2.5})
            p.zrange("z:%d" % i, 0, -1, withscores=True)
            p.expire("s:%d" % i, 1000)
            p.type("h:%d" % i)
            p.append("k:%d" % i, "+")
        many = ["k:%d" % i for i in range(400)]  # 100 of them missing
        p.mget(many)
        p.exists(*many)
        p.delete(*many[::3])
        p.mget(many)
        p.incr("k:1")  # WRONGTYPE-like error in the middle: not an integer
        p.get("k:1")
        p.unlink(*many[1::3])
        p.touch(*many)
        p.mget(many + ["s:%d" % i for i in range(40)])
        p.hmget("h:1", "a", "b", "nope")
        p.lpop("h:1")  # WRONGTYPE
        p.dbsize()
        p.echo("end")
        p.ping()
        return p.execute(raise_on_error=False)

    got = same(s, "mixed pipeline", mixed)
    check(any(isinstance(x, tuple) and x[0] == "error" for x in got[1]),
          "the pipeline held errors, in place")
    sizes = s.server_dbsizes()
    check(all(n > 0 for n in sizes), "keys on every server: %r" % sizes)
    check_eq(sum(sizes), s.ref.dbsize(), "every key once")

    # raise_on_error (the default): the first error is raised, the rest run.
    def raising(r):
        p = r.pipeline(transaction=False)
        p.set("e:1", "x").incr("e:1").set("e:2", "y").lpush("e:1", 1).get("e:2")
        return p.execute()
    same(s, "pipeline raising its first error", raising)
    same(s, "written before and after the error", lambda r: r.mget("e:1", "e:2"))

    # A deep one: 6,000 commands, MGETs of 50 keys over every server.
    def deep(r):
        p = r.pipeline(transaction=False)
        for i in range(2000):
            p.set("d:%d" % i, i)
            p.get("d:%d" % (i // 2))
            if i % 20 == 0:
                p.mget(["d:%d" % j for j in range(max(0, i - 50), i + 1)])
                p.delete("d:%d" % (i // 3), "d:%d" % (i // 5), "nokey")
        return p.execute()
    same(s, "deep pipeline", deep)

    # A pipeline object reused, as a context manager, in a db of its own.
    def reused(r):
        out = []
        with r.pipeline(transaction=False) as p:
            for round_ in range(3):
                for i in range(30):
                    p.incrby("ru:%d" % i, round_ + 1)
                p.mget(["ru:%d" % i for i in range(30)])
                out.append(p.execute())
        return out
    same(s, "pipeline reused", reused)
    same(s, "pipeline in db 4", reused, s.proxy(db=4), s.reference(db=4))
    check_eq(sum(s.server_dbsizes(4)), 30, "db 4 holds its 30 keys")
    s.done()


# ---- transactions ------------------------------------------------------------

def txn(r):
    p = r.pipeline(transaction=True)
    p.set("{acct}a", 10).incr("{acct}a").get("{acct}a")
    p.rpush("{acct}l", 1, 2, 3).lrange("{acct}l", 0, -1)
    p.mset({"{acct}x": 1, "{acct}y": 2}).mget("{acct}x", "{acct}y", "{acct}none")
    p.delete("{acct}x", "{acct}y").exists("{acct}x").ping().echo("e")
    return p.execute()


# transaction(): another client writes the watched key between WATCH and
# EXEC the first time; the library gets a WatchError and calls again.
def watched(r, other=None):
    calls = []
    # Another client of the same db (a new connection pool).
    other = other or redis.Redis(connection_pool=redis.ConnectionPool(
        **r.connection_pool.connection_kwargs))
    r.set("{w}bal", 5)
    other.delete("{w}log")

    def fn(pipe):
        v = int(pipe.get("{w}bal"))
        calls.append(v)
        if len(calls) == 1:
            other.incrby("{w}bal", 100)
        pipe.multi()
        pipe.set("{w}bal", v + 1)
        pipe.rpush("{w}log", v)
    res = r.transaction(fn, "{w}bal")
    return calls, res, r.get("{w}bal"), r.lrange("{w}log", 0, -1)


def test_transactions(env):
    s = Setup(env, "txn")

    same(s, "MULTI/EXEC on one hash tag", txn)

    # An error at EXEC time (not an integer): the others run, as on Redis.
    def runtime_error(r):
        p = r.pipeline(transaction=True)
        p.set("{acct}s", "str").incr("{acct}s").set("{acct}t", 1)
        return p.execute(raise_on_error=False)
    same(s, "error inside EXEC's reply", runtime_error)
    same(s, "written", lambda r: r.mget("{acct}s", "{acct}t"))

    # A queuing error (wrong arity): EXECABORT, nothing written.
    def queue_error(r):
        p = r.pipeline(transaction=True)
        p.set("{acct}q", 1)
        p.execute_command("SET", "{acct}q2")
        return p.execute()
    same(s, "queuing error", queue_error)
    same(s, "nothing written", lambda r: r.exists("{acct}q", "{acct}q2"))

    # Blocking pops, PUBLISH and EVAL inside MULTI: they do not block there.
    def inside(r):
        p = r.pipeline(transaction=True)
        p.rpush("{acct}bq", "x").blpop("{acct}bq", timeout=5).blpop("{acct}bq", timeout=5)
        p.publish("{acct}chan", "m").eval("return redis.call('INCR', KEYS[1])", 1, "{acct}n")
        return p.execute()
    t0 = time.time()
    same(s, "blocking pops, PUBLISH, EVAL in MULTI", inside)
    check(time.time() - t0 < 4, "nothing blocked inside MULTI")

    got = same(s, "transaction() retried after WatchError", watched)
    check_eq(got[1][0], [5, 105], "called twice, the second time with the new value")

    # The same by hand: WatchError surfaces, the retry then succeeds.
    def by_hand(r, other):
        out = []
        with r.pipeline() as pipe:
            for attempt in range(2):
                pipe.watch("{w}k")
                v = int(pipe.get("{w}k") or 0)
                if attempt == 0:
                    other.set("{w}k", 50)
                pipe.multi()
                pipe.set("{w}k", v + 1)
                try:
                    out.append(pipe.execute())
                except WatchError:
                    out.append("WatchError")
        return out, r.get("{w}k")
    got = same(s, "WATCH by hand", lambda r: by_hand(r, s.proxy() if r is s.px else
                                                     s.reference()))
    check_eq(got[1], (["WatchError", [True]], b"51"), "WatchError, then the retry")

    # Inside transaction(): reads of keys on other servers, writes on the
    # watched server; value_from_callable.
    a, b = s.apart()
    wk = "{%s}w" % a  # hash tag: a's server
    s.px.set(b, "bval")
    s.ref.set(b, "bval")

    def cross_read(r):
        def fn(pipe):
            other = pipe.get(b)
            pipe.multi()
            pipe.set(wk, other)
            return other
        return r.transaction(fn, wk, value_from_callable=True), r.get(wk)
    same(s, "transaction reading another server's key", cross_read)

    # Keys on two servers in one transaction: a clear error, nothing written.
    p = s.px.pipeline(transaction=True)
    p.set(a, 1).set(b, 2).incr(a)
    e = raises(p.execute, "transaction over two servers")
    check(isinstance(e, (ExecAbortError, ResponseError)) and not isinstance(e, WatchError),
          "a ResponseError: %r" % (e,))
    check("server" in str(e) and "hash tag" in str(e), "says why: %s" % e)
    check_eq(s.px.get(a), None, "nothing written to the first server")
    check_eq(s.px.get(b), b"bval", "nor to the second")
    check_eq(s.px.ping(), True, "the client goes on")
    # WATCH of keys on two servers (transaction()): refused at WATCH.
    called = []
    e = raises(lambda: s.px.transaction(lambda pipe: called.append(1), a, b),
               "WATCH over two servers")
    check(e.args and "CROSSSLOT" in str(e), "CROSSSLOT: %s" % e)
    check_eq(called, [], "the function never ran")
    # WATCH one server, write another inside MULTI: refused, nothing written.
    def writes_elsewhere(pipe):
        pipe.multi()
        pipe.set(wk, "no")
        pipe.set(b, "no")
    before = s.px.get(wk)
    e = raises(lambda: s.px.transaction(writes_elsewhere, wk), "MULTI writing elsewhere")
    check(not isinstance(e, WatchError) and "hash tag" in str(e), "says why: %s" % e)
    check_eq([s.px.get(wk), s.px.get(b)], [before, b"bval"], "nothing written")
    s.done()


def test_transactions_db(env):
    """Transactions of a Redis(db=3) client: they run in db 3, and so does
    everything after them, aborted or not."""
    s = Setup(env, "txndb")
    d3, r3 = s.proxy(db=3), s.reference(db=3)
    # transaction() with WATCH: the WATCH selects the db first.
    got = same(s, "transaction() in db 3", watched, d3, r3)
    check_eq(got[1][0], [5, 105], "called twice")
    check_eq(s.get_in("{w}bal", 3), b"106", "in db 3")
    # A MULTI/EXEC pipeline, on a fresh client and on one that used its
    # server connection before.
    for what, r, ref in [("fresh", s.proxy(db=3), s.reference(db=3)), ("used", d3, r3)]:
        same(s, "MULTI/EXEC in db 3 (%s client)" % what, txn, r, ref)
        check_eq(s.get_in("{acct}a", 3), b"11", "in db 3")
        check_eq(s.px.exists("{acct}a"), 0, "not in db 0")
    # Without keys: it runs on any one server, in db 3 too.
    same(s, "MULTI/EXEC without keys in db 3",
         lambda r: r.pipeline(transaction=True).ping().echo("x").execute(),
         s.proxy(db=3), s.reference(db=3))
    # An aborted transaction (keys on two servers), then a write: in db 3
    # (a new client: its first command for a's server is in the transaction).
    a, b = s.apart()
    fresh = s.proxy(db=3)
    p = fresh.pipeline(transaction=True)
    p.set(a, 1).set(b, 2)
    raises(p.execute, "transaction over two servers in db 3")
    fresh.set(a, "after")
    check_eq(s.get_in(a, 3), b"after",
             "the write after an aborted transaction is in db 3")
    check_eq(s.px.get(a), None, "and not in db 0")
    # A transaction the server aborts (a queuing error), then a write.
    fresh = s.proxy(db=3)
    p = fresh.pipeline(transaction=True)
    p.set("{acct}q", 1)
    p.execute_command("SET", "{acct}q2")
    raises(p.execute, "queuing error in db 3")
    fresh.set("{acct}after", "x")
    check_eq(s.get_in("{acct}after", 3), b"x", "the write after EXECABORT is in db 3")
    check_eq(s.px.get("{acct}after"), None, "and not in db 0")
    s.done()


# ---- pub/sub -----------------------------------------------------------------

def drain(p, n, seconds=10.0):
    """Up to n messages (get_message), until seconds pass."""
    out, end = [], time.time() + seconds
    while len(out) < n and time.time() < end:
        m = p.get_message(timeout=0.2)
        if m is not None:
            out.append(m)
    return out


def by_channel(msgs):
    """Messages grouped by (type, pattern, channel): each group's data in
    arrival order (a server's order; groups from different servers may
    interleave differently)."""
    out = {}
    for m in msgs:
        out.setdefault((m["type"], m["pattern"], m["channel"]), []).append(m["data"])
    return out


def test_pubsub(env):
    s = Setup(env, "pubsub")
    ch = s.spread("chan-")  # three channels, on three servers
    # The same subscribers on the proxy and on the reference.
    sides = {}
    for side, mk in (("px", s.proxy), ("ref", s.reference)):
        a, b, c = mk().pubsub(), mk().pubsub(), mk().pubsub()
        a.subscribe(*ch)
        b.subscribe(ch[0])
        b.psubscribe("chan-*")
        c.psubscribe("chan-*", "other*")
        sides[side] = (a, b, c)
    for i, name in enumerate("abc"):
        got = drain(sides["px"][i], 3 if name == "a" else 2)
        check_eq(got, drain(sides["ref"][i], len(got) + 1, 1.0), "confirmations of %s" % name)
    # PUBLISH counts every receiver: channel and pattern subscribers.
    for name in ch + ["other1", "nobody"]:
        same(s, "PUBLISH %s count" % name, lambda r: r.publish(name, "hello"))
    check_eq(same(s, "PUBLISH count", lambda r: r.publish(ch[0], "x")), ("ok", 4),
             "a, b twice (channel and pattern), c")
    # Many messages, interleaved over the channels, in a pipeline and one by one.
    n = 150
    want_counts = []
    for side in ("px", "ref"):
        r = s.px if side == "px" else s.ref
        p = r.pipeline(transaction=False)
        for i in range(n):
            p.publish(ch[i % 3], "m%d" % i)
        counts = p.execute()
        for i in range(n, n + 30):
            counts.append(r.publish(ch[i % 3], "m%d" % i))
        want_counts.append(counts)
    check_eq(want_counts[0], want_counts[1], "PUBLISH counts, pipelined and not")
    total = n + 30
    # a: every message once; b: ch[0]'s plus every pmessage; c: every
    # pmessage (with the "hello"s and the "x" before).
    expect = {0: 4 + total, 1: 6 + total // 3 + total, 2: 5 + total}
    for i in range(3):
        got = drain(sides["px"][i], expect[i])
        want = drain(sides["ref"][i], expect[i])
        check_eq(len(want), expect[i], "reference subscriber %d's messages" % i)
        check_eq(by_channel(got), by_channel(want), "subscriber %d: once each, in order" % i)
        check_eq(sides["px"][i].get_message(timeout=0.5), None, "no duplicate for %d" % i)
    # listen(): in a thread, until it has what was published.
    a_px = sides["px"][0]
    heard = []

    def listener():
        for m in a_px.listen():
            heard.append(m)
            if len(heard) == 30:
                return
    t = threading.Thread(target=listener, daemon=True)
    t.start()
    for i in range(30):
        s.px.publish(ch[i % 3], "l%d" % i)
    t.join(10)
    check_eq([m["data"] for m in heard if m["channel"] == ch[1].encode()],
             [b"l%d" % i for i in range(30) if i % 3 == 1], "listen() in order")
    check_eq(len(heard), 30, "listen() heard every message")
    for side in ("px", "ref"):
        for i in (1, 2):
            drain(sides[side][i], 100, 1.0)
        drain(sides["ref"][0], 100, 1.0)
    # Unsubscribing: confirmations and counts as on one server.
    for side in ("px", "ref"):
        a, b, c = sides[side]
        a.unsubscribe(ch[0])
        b.punsubscribe()
        c.punsubscribe("other*")
    for i in range(3):
        got = drain(sides["px"][i], 1)
        check_eq(got, drain(sides["ref"][i], 1), "unsubscribe confirmation %d" % i)
    for name in ch + ["other1"]:
        same(s, "PUBLISH %s count after unsubscribing" % name,
             lambda r: r.publish(name, "after"))
    # A subscriber that closes is no longer counted.
    for side in ("px", "ref"):
        sides[side][2].close()
    time.sleep(0.3)
    same(s, "PUBLISH after a subscriber closed", lambda r: r.publish(ch[2], "gone"))
    # A subscriber that unsubscribes from everything is an ordinary client again.
    a = sides["px"][0]
    a.unsubscribe()
    got = drain(a, 10, 1.5)
    check_eq(sorted(m["channel"] for m in got if m["type"] == "unsubscribe"),
             sorted(x.encode() for x in ch[1:]), "unsubscribed from the rest")
    # Health checks: the library PINGs a subscribed connection ("pong" reply).
    hc = s.proxy(health_check_interval=1).pubsub(ignore_subscribe_messages=True)
    hc.subscribe(ch[2])
    drain(hc, 1, 1.0)
    time.sleep(1.2)
    check_eq(hc.get_message(timeout=0.5), None, "health check answered, not a message")
    s.px.publish(ch[2], "after-ping")
    got = drain(hc, 1)
    check_eq([m["data"] for m in got], [b"after-ping"], "a message after the health check")
    check_eq(hc.ping("hi"), None, "PING while subscribed")
    got = drain(hc, 1)
    check_eq([(m["type"], m["data"]) for m in got], [("pong", b"hi")], "pong")
    hc.close()
    # run_in_thread: handlers called once per message, in order.
    got = []
    rt = s.proxy().pubsub()
    rt.subscribe(**{ch[1]: got.append})
    rt.psubscribe(**{"rt-*": got.append})
    th = rt.run_in_thread(sleep_time=0.01, daemon=True)
    deadline = time.time() + 5
    while time.time() < deadline and s.px.publish(ch[1], "probe") < 1:
        time.sleep(0.05)
    time.sleep(0.1)
    for i in range(50):
        check_eq(s.px.publish(ch[1], "t%d" % i), 1, "one receiver for run_in_thread")
        s.px.publish("rt-%d" % (i % 3), "p%d" % i)
    deadline = time.time() + 5
    while time.time() < deadline and len([m for m in got if m["data"] != b"probe"]) < 100:
        time.sleep(0.05)
    th.stop()
    th.join(5)
    check_eq([m["data"] for m in got if m["type"] == "message" and m["data"] != b"probe"],
             [b"t%d" % i for i in range(50)], "run_in_thread channel messages")
    check_eq([m["data"] for m in got if m["type"] == "pmessage"],
             [b"p%d" % i for i in range(50)], "run_in_thread pattern messages")
    time.sleep(0.3)
    check_eq(s.px.publish(ch[1], "x"), 0, "run_in_thread's subscriber gone once stopped")
    s.done()


def test_pubsub_numsub(env):
    """PUBSUB NUMSUB, CHANNELS and NUMPAT (pubsub_numsub, pubsub_channels,
    pubsub_numpat) as one server gives them, with subscribers on every
    server, as they come and go."""
    s = Setup(env, "numsub")
    ch = s.spread("chan-")
    sides = {}
    for side, mk in (("px", s.proxy), ("ref", s.reference)):
        subs = [mk().pubsub(ignore_subscribe_messages=True) for _ in range(4)]
        subs[0].subscribe(*ch)
        subs[1].subscribe(ch[0], ch[1], "solo")
        subs[2].psubscribe("chan-*", "other*")
        subs[3].subscribe(ch[0])
        subs[3].psubscribe("chan-*")
        for p in subs:
            drain(p, 10, 0.3)
        sides[side] = subs

    def compare(what):
        same(s, "NUMSUB " + what, lambda r: r.pubsub_numsub(*(ch + ["solo", "nobody"])))
        same(s, "NUMSUB of none " + what, lambda r: r.pubsub_numsub())
        same(s, "NUMSUB twice the same " + what, lambda r: r.pubsub_numsub(ch[0], ch[0]))
        same(s, "CHANNELS " + what, lambda r: sorted(r.pubsub_channels()))
        same(s, "CHANNELS chan-* " + what, lambda r: sorted(r.pubsub_channels("chan-*")))
        same(s, "CHANNELS nothing* " + what, lambda r: sorted(r.pubsub_channels("nothing*")))
        same(s, "NUMPAT " + what, lambda r: r.pubsub_numpat())
    compare("with four subscribers")
    for side in ("px", "ref"):
        subs = sides[side]
        subs[0].unsubscribe(ch[1])
        subs[2].punsubscribe("other*")
        subs[3].close()
        for p in subs[:3]:
            drain(p, 10, 0.3)
    time.sleep(0.3)
    compare("after unsubscribing and a close")
    for side in ("px", "ref"):
        for p in sides[side][:3]:
            p.close()
    time.sleep(0.3)
    compare("with none")
    s.done()


# ---- scans -------------------------------------------------------------------

def test_scan(env):
    s = Setup(env, "scan")

    def load(r):
        p = r.pipeline(transaction=False)
        for i in range(1500):
            p.set("str:%d" % i, i)
        for i in range(200):
            p.hset("hash:%d" % i, "f", i)
            p.sadd("set:%d" % i, i)
            p.zadd("zset:%d" % i, {"m": i})
            p.rpush("list:%d" % i, i)
        p.hset("bighash", mapping={"f%d" % i: i for i in range(1200)})
        p.sadd("bigset", *["m%d" % i for i in range(1200)])
        p.zadd("bigzset", {"z%d" % i: i for i in range(1200)})
        p.execute()
    load(s.px)
    load(s.ref)
    check(all(n > 0 for n in s.server_dbsizes()), "keys on every server")
    for kw in [{}, {"count": 7}, {"count": 1000}, {"match": "str:1*"},
               {"match": "*:1?", "count": 50}, {"_type": "hash"}, {"_type": "zset", "count": 3},
               {"match": "set:*", "_type": "set"}, {"match": "nothing*"}]:
        got = list(s.px.scan_iter(**kw))
        want = set(s.ref.scan_iter(**kw))
        check_eq(len(got), len(set(got)), "scan_iter(%r): each key once" % kw)
        check_eq(set(got), want, "scan_iter(%r): every key" % kw)
    for kind, key, match in [("h", "bighash", "f1*"), ("s", "bigset", "m1*"),
                             ("z", "bigzset", "z1*")]:
        for kw in [{}, {"count": 5}, {"match": match}, {"match": match, "count": 500}]:
            what = "%sscan_iter(%r)" % (kind, kw)
            got = list(getattr(s.px, kind + "scan_iter")(key, **kw))
            want = list(getattr(s.ref, kind + "scan_iter")(key, **kw))
            if kind == "s":
                check_eq(len(got), len(set(got)), what + ": each member once")
                check_eq(set(got), set(want), what)
            else:
                check_eq(len(got), len(dict(got)), what + ": each member once")
                check_eq(dict(got), dict(want), what)
    # A scan in another db sees that db's keys only.
    d5, r5 = s.proxy(db=5), s.reference(db=5)
    for r in (d5, r5):
        r.mset({"five:%d" % i: i for i in range(300)})
    check_eq(sorted(d5.scan_iter(count=20)), sorted(r5.scan_iter(count=20)), "scan in db 5")
    # The cursor is the proxy's: another connection can carry it on.
    cur, first = s.px.scan(0, count=100)
    rest = list(first)
    other = s.proxy()
    while cur:
        cur, page = other.scan(cur, count=100)
        rest += page
    check_eq(sorted(rest), sorted(s.ref.scan_iter()), "a scan carried on by another client")
    s.done()


# ---- scripts -----------------------------------------------------------------

def test_scripts(env):
    s = Setup(env, "scripts")
    body = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1]), #KEYS}"
    s.px.script_flush()
    s.ref.script_flush()
    scripts = {"px": s.px.register_script(body), "ref": s.ref.register_script(body)}
    sha = scripts["px"].sha
    check_eq([s.direct(p, ("SCRIPT", "EXISTS", sha)) for p in s.ports], [[0]] * 3,
             "no server knows the script yet")

    def call(r, keys, args):
        return scripts["px" if r is s.px else "ref"](keys=keys, args=args)
    # EVALSHA, NOSCRIPT, SCRIPT LOAD, EVALSHA: the library's fallback.
    same(s, "Script: NOSCRIPT fallback", lambda r: call(r, ["{s}a"], ["x"]))
    check_eq([s.direct(p, ("SCRIPT", "EXISTS", sha)) for p in s.ports], [[1]] * 3,
             "SCRIPT LOAD went to every server")
    for key in ["{s}a", "plain1", "plain2", "other"]:
        same(s, "Script on %s" % key, lambda r: call(r, [key], ["y"]))
    same(s, "Script with two keys on one server", lambda r: call(r, ["{s}a", "{s}b"], ["z"]))
    # A script the servers lost (SCRIPT FLUSH through the proxy): loaded again.
    check_eq(s.px.script_flush(), True, "SCRIPT FLUSH")
    same(s, "Script after SCRIPT FLUSH", lambda r: call(r, ["{s}a"], ["again"]))
    # EVAL with keys on one server; errors as the server gives them.
    same(s, "EVAL", lambda r: r.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "ev",
                                     "1"))
    same(s, "EVAL two keys, one tag",
         lambda r: r.eval("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('MGET', "
                          "KEYS[1], KEYS[2])", 2, "{e}1", "{e}2", "v"))
    same(s, "EVAL nested reply", lambda r: r.eval("return {1, {2, {3, KEYS[1]}}, 'y'}", 1, "n"))
    same(s, "EVAL error_reply", lambda r: r.eval("return redis.error_reply('my error')", 1, "n"))
    same(s, "EVAL runtime error",
         lambda r: r.eval("redis.call('SET', KEYS[1], 'x'); return redis.call('INCR', KEYS[1])",
                          1, "{s}str"))
    same(s, "EVALSHA of an unknown sha", lambda r: r.evalsha("f" * 40, 1, "n"))
    e = raises(lambda: s.px.evalsha("f" * 40, 1, "n"), "NOSCRIPT", (NoScriptError,))
    check("NOSCRIPT" in str(e) or "No matching script" in str(e), "NOSCRIPT: %s" % e)
    # The library's Lock: SET NX PX, and Lua scripts to release and extend.
    lock = s.px.lock("{l}lock", timeout=5, blocking_timeout=0.5)
    check_eq(lock.acquire(), True, "Lock acquired")
    check_eq(s.proxy().lock("{l}lock", blocking_timeout=0.3).acquire(), False,
             "held: another client cannot take it")
    check_eq(lock.owned(), True, "Lock owned")
    check_eq(lock.extend(5), True, "Lock extended (a script)")
    check(5000 < s.px.pttl("{l}lock") <= 10000, "extended TTL")
    check_eq(lock.reacquire(), True, "Lock reacquired (a script)")
    lock.release()
    check_eq(s.px.exists("{l}lock"), 0, "Lock released (a script)")
    with s.proxy().lock("{l}lock", timeout=5):
        check_eq(s.px.exists("{l}lock"), 1, "Lock as a context manager")
    check_eq(s.px.exists("{l}lock"), 0, "and released")
    # No key: the proxy cannot tell where it runs (docs/proxy.md); a clear error.
    e = raises(lambda: s.px.eval("return 1", 0), "EVAL without keys")
    check("at least one key" in str(e), "says why: %s" % e)
    # Keys on two servers: a clear error, nothing written.
    a, b = s.apart()
    set_both = "redis.call('SET', KEYS[1], 1); redis.call('SET', KEYS[2], 1); return 1"
    e = raises(lambda: s.px.eval(set_both, 2, a, b), "EVAL over two servers")
    check("CROSSSLOT" in str(e), "CROSSSLOT: %s" % e)
    check_eq(s.px.exists(a, b), 0, "nothing written")
    sc = s.px.register_script(set_both)
    e = raises(lambda: sc(keys=[a, b]), "Script over two servers")
    check("CROSSSLOT" in str(e), "CROSSSLOT: %s" % e)
    check_eq(s.px.exists(a, b), 0, "nothing written")
    # A script in db 2 writes in db 2.
    d2 = s.proxy(db=2)
    d2.register_script(body)(keys=["{s}db"], args=["x"])
    check_eq(s.get_in("{s}db", 2), b"1", "in db 2")
    check_eq(s.px.exists("{s}db"), 0, "not in db 0")
    # In a pipeline, the library checks with SCRIPT EXISTS and loads first.
    s.px.script_flush()
    s.ref.script_flush()

    def piped(r):
        p = r.pipeline()
        scripts["px" if r is s.px else "ref"](keys=["{s}p"], args=["1"], client=p)
        p.get("{s}p")
        scripts["px" if r is s.px else "ref"](keys=["{s}p"], args=["2"], client=p)
        return p.execute()
    same(s, "Script in a transaction pipeline", piped)

    def piped_plain(r):
        p = r.pipeline(transaction=False)
        for k in ["q1", "q2", "q3", "q4"]:
            scripts["px" if r is s.px else "ref"](keys=[k], args=["1"], client=p)
        return p.execute()
    same(s, "Script in a plain pipeline", piped_plain)
    same(s, "script_exists", lambda r: r.script_exists(sha, "0" * 40))
    s.done()


# ---- blocking ----------------------------------------------------------------

def test_blocking(env):
    s = Setup(env, "blocking")
    # Longer than the pool's timeout (300 ms): the client's own timeout applies.
    for what, secs, fn in [
            ("BLPOP", 1.5, lambda r: r.blpop("q:none", timeout=1.5)),
            ("BRPOP", 1, lambda r: r.brpop(["{q}a", "{q}b"], timeout=1)),
            ("BRPOPLPUSH", 1, lambda r: r.brpoplpush("{b}src", "{b}dst", timeout=1)),
            ("BLMOVE", 1, lambda r: r.blmove("{b}src", "{b}dst", 1, "LEFT", "RIGHT")),
            ("BZPOPMIN", 1, lambda r: r.bzpopmin("z:none", timeout=1)),
            ("XREAD BLOCK", 1.2, lambda r: r.xread({"st:none": "$"}, block=1200))]:
        t0 = time.time()
        got = outcome(fn, s.px)
        took = time.time() - t0
        check_eq(got, outcome(fn, s.ref), "%s timed out" % what)
        check(secs - 0.05 <= took < secs + 1.0, "%s waited its own %.1fs: %.2fs" %
              (what, secs, took))
    # Woken by another client's push.
    for what, fn, feed in [
            ("BRPOP", lambda r: r.brpop(["{q}a", "{q}b"], timeout=5),
             lambda r: r.rpush("{q}b", "job")),
            ("BLPOP", lambda r: r.blpop("q:wake", timeout=0),
             lambda r: r.lpush("q:wake", "j1", "j2")),
            ("BRPOPLPUSH", lambda r: r.brpoplpush("{b}src", "{b}dst", timeout=5),
             lambda r: r.rpush("{b}src", "m")),
            ("BLMOVE", lambda r: r.blmove("{b}src", "{b}dst", 5, "RIGHT", "LEFT"),
             lambda r: r.rpush("{b}src", "n")),
            ("BZPOPMIN", lambda r: r.bzpopmin(["{z}1", "{z}2"], timeout=5),
             lambda r: r.zadd("{z}2", {"low": 1, "high": 2})),
            ("XREAD BLOCK", lambda r: r.xread({"st:1": "$"}, block=5000),
             lambda r: r.xadd("st:1", {"f": "v"}, id="1-1")),
            ("XREAD BLOCK two streams", lambda r: r.xread({"{st}a": "$", "{st}b": "$"},
                                                          block=5000),
             lambda r: r.xadd("{st}b", {"g": "w"}, id="2-1"))]:
        res = {}
        for side, mk in (("px", s.proxy), ("ref", s.reference)):
            r, feeder = mk(), mk()
            t = threading.Thread(target=lambda side=side, r=r: res.__setitem__(
                side, outcome(fn, r)), daemon=True)
            t.start()
            time.sleep(0.6)  # past the pool's timeout
            check(t.is_alive(), "%s blocks (%s)" % (what, side))
            feed(feeder)
            t.join(5)
            check(not t.is_alive(), "%s woken (%s)" % (what, side))
        check_eq(res["px"], res["ref"], "%s woken by a push" % what)
    same(s, "lists after the blocking moves", lambda r: [r.lrange("{b}dst", 0, -1),
                                                          r.lrange("q:wake", 0, -1),
                                                          r.zrange("{z}2", 0, -1)])
    # Blocking pops inside a pipeline, between commands for every server:
    # one answered by an RPUSH before it, one that times out (longer than
    # the pool's timeout), one woken by nobody but an RPUSH after it that
    # must wait for it (the same server, in order).
    def piped(r):
        p = r.pipeline(transaction=False)
        p.mset({"pb:%d" % i: i for i in range(30)})
        p.rpush("{pq}a", "one")
        p.blpop("{pq}a", timeout=1)
        p.mget(["pb:%d" % i for i in range(30)])
        p.blpop("{pq}b", timeout=0.8)
        p.rpush("{pq}b", "late")
        p.incr("pb:1")
        p.brpoplpush("{pq}b", "{pq}c", timeout=1)
        p.lrange("{pq}c", 0, -1)
        p.delete(*["pb:%d" % i for i in range(30)])
        return p.execute()
    same(s, "blocking pops in a pipeline", piped)
    # Keys on two servers: a clear error.
    a, b = s.apart()
    e = raises(lambda: s.px.blpop([a, b], timeout=1), "BLPOP over two servers")
    check("CROSSSLOT" in str(e), "CROSSSLOT: %s" % e)
    # 20 clients blocked at once: a bystander is not delayed, nor the rest.
    block = 3.0
    waiters = [s.proxy() for _ in range(20)]
    results = [None] * 20

    def wait(i):
        t0 = time.time()
        results[i] = (waiters[i].blpop("many:%d" % i, timeout=block), time.time() - t0)
    ts = [threading.Thread(target=wait, args=(i,), daemon=True) for i in range(20)]
    for t in ts:
        t.start()
    time.sleep(0.3)
    watcher = s.proxy()
    slowest, n = 0.0, 0
    end = time.time() + 1.5
    while time.time() < end:
        t0 = time.time()
        watcher.set("watch:%d" % (n % 10), n)
        check_eq(watcher.get("watch:%d" % (n % 10)), str(n).encode(), "bystander read")
        slowest = max(slowest, time.time() - t0)
        n += 1
    check(slowest < block / 4, "bystander's slowest SET+GET %.3fs with 20 blocked" % slowest)
    check(all(t.is_alive() for t in ts), "all 20 still blocked")
    for i in range(0, 20, 2):
        s.px.rpush("many:%d" % i, "x%d" % i)
    for t in ts:
        t.join(block + 5)
    for i in range(20):
        got, took = results[i]
        if i % 2 == 0:
            check_eq(got, (b"many:%d" % i, b"x%d" % i), "waiter %d woken" % i)
            check(took < block, "waiter %d woken before its timeout" % i)
        else:
            check_eq(got, None, "waiter %d timed out" % i)
            check(took >= block - 0.1, "waiter %d waited its %.1fs (%.2f)" % (i, block, took))
    # Blocking in db 6: a push to db 6 wakes it, one to db 0 does not.
    d6 = s.proxy(db=6)
    res = []
    t = threading.Thread(target=lambda: res.append(d6.blpop("dbq", timeout=5)), daemon=True)
    t.start()
    time.sleep(0.5)
    s.px.rpush("dbq", "db0")
    time.sleep(0.3)
    check(t.is_alive(), "a push in db 0 does not wake a pop in db 6")
    s.proxy(db=6).rpush("dbq", "db6")
    t.join(5)
    check_eq(res, [(b"dbq", b"db6")], "the push in db 6 does")
    check_eq(s.px.lrange("dbq", 0, -1), [b"db0"], "db 0's item stays")
    s.done()


# ---- databases ---------------------------------------------------------------

def test_db(env):
    s = Setup(env, "db")
    one, two, zero = s.proxy(db=1), s.proxy(db=2), s.px
    one.set("k", "one")
    two.set("k", "two")
    check_eq([zero.get("k"), one.get("k"), two.get("k")], [None, b"one", b"two"],
             "each db its own k")
    keys = ["m%d" % i for i in range(60)]
    one.mset({k: "1" for k in keys})
    check_eq(two.mget(keys), [None] * 60, "db 2 sees none of db 1's keys")
    check_eq(zero.mget(keys), [None] * 60, "db 0 neither")
    check_eq(one.mget(keys), [b"1"] * 60, "db 1 sees them")
    r1, r2 = s.reference(db=1), s.reference(db=2)
    r1.set("k", "one")
    r2.set("k", "two")
    r1.mset({k: "1" for k in keys})
    same(s, "DBSIZE db 1", lambda r: r.dbsize(), one, r1)
    same(s, "DBSIZE db 2", lambda r: r.dbsize(), two, r2)
    same(s, "EXISTS across dbs", lambda r: r.exists("k", *keys), two, r2)
    # Reconnecting: the library SELECTs again.
    one.connection_pool.disconnect()
    check_eq(one.get("k"), b"one", "db 1 after a reconnect")
    # FLUSHDB empties that db only, on every server.
    check_eq(one.flushdb(), True, "FLUSHDB in db 1")
    check_eq([one.dbsize(), two.dbsize()], [0, 1], "db 1 empty, db 2 not")
    check_eq(sum(s.server_dbsizes(1)), 0, "db 1 empty on every server")
    check_eq(two.get("k"), b"two", "db 2's k kept")
    # Many clients on many dbs at once, each with its own connection pool.
    out, errors = {}, []

    def worker(db):
        try:
            r = s.proxy(db=db)
            p = r.pipeline(transaction=False)
            for i in range(100):
                p.set("w%d" % i, db)
            p.execute()
            out[db] = r.mget(["w%d" % i for i in range(100)])
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
    ts = [threading.Thread(target=worker, args=(db,)) for db in range(3, 12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    check_eq(errors, [], "db workers")
    for db in range(3, 12):
        check_eq(out.get(db), [str(db).encode()] * 100, "db %d's own values" % db)
    # Channels are not per db (as on Redis): a db 7 client reaches db 0's subscriber.
    sub = zero.pubsub(ignore_subscribe_messages=True)
    sub.subscribe("dbchan")
    drain(sub, 1, 0.5)
    check_eq(s.proxy(db=7).publish("dbchan", "from7"), 1, "publish from db 7")
    check_eq([m["data"] for m in drain(sub, 1)], [b"from7"], "received in db 0")
    sub.close()
    sub7 = s.proxy(db=7).pubsub(ignore_subscribe_messages=True)
    sub7.subscribe("dbchan")
    drain(sub7, 1, 0.5)
    check_eq(zero.publish("dbchan", "from0"), 1, "a db 7 subscriber counted")
    check_eq([m["data"] for m in drain(sub7, 1)], [b"from0"], "received in db 7")
    sub7.close()
    # SELECT of a db the servers do not have: the library's error.
    got = same(s, "db 99", lambda r: r.get("k"), s.proxy(db=99), s.reference(db=99))
    check(got[0] == "error" and "out of range" in got[2], "DB index is out of range: %r" %
          (got,))
    s.done()


# ---- connection-level calls ----------------------------------------------------

def test_connection(env):
    """PING, ECHO, DBSIZE, TIME, CONFIG GET as the library calls them."""
    s = Setup(env, "conn")
    for what, fn in [("PING", lambda r: r.ping()), ("ECHO", lambda r: r.echo("hi there")),
                     ("DBSIZE empty", lambda r: r.dbsize()),
                     ("CONFIG GET databases", lambda r: r.config_get("databases")),
                     ("CONFIG GET maxmemory*", lambda r: r.config_get("maxmemory*"))]:
        same(s, what, fn)
    conf = s.px.config_get()
    check(isinstance(conf, dict) and "maxmemory" in conf and "appendonly" in conf,
          "CONFIG GET * as a dict")
    secs, usecs = s.px.time()
    check(abs(secs + usecs / 1e6 - time.time()) < 5 and 0 <= usecs < 1000000, "TIME")
    for r in (s.px, s.ref):
        r.mset({"rk:%d" % i: i for i in range(200)})
    same(s, "DBSIZE", lambda r: r.dbsize())
    # After all that, the connection still answers in order.
    p = s.px.pipeline(transaction=False)
    p.ping().echo("a").config_get("databases").dbsize().time().echo("b")
    got = p.execute()
    check_eq([got[0], got[1], got[2], got[3], got[5]], [True, b"a", {"databases": "16"}, 200,
                                                        b"b"],
             "connection calls pipelined")
    s.done()


def test_client(env):
    """CLIENT SETNAME / GETNAME / ID as the library calls them."""
    s = Setup(env, "client")
    # CLIENT SETNAME / GETNAME / ID, and client_name= (sent on connect).
    check_eq(s.px.client_getname(), None, "no name yet")
    check_eq(s.px.client_setname("app-one"), True, "CLIENT SETNAME")
    check_eq(s.px.client_getname(), "app-one", "CLIENT GETNAME")
    named = s.proxy(client_name="app-two")
    check_eq(named.client_getname(), "app-two", "client_name= sent on connect")
    ids = [s.px.client_id(), named.client_id(), s.proxy().client_id()]
    check(all(isinstance(i, int) for i in ids) and len(set(ids)) == 3,
          "CLIENT ID: an integer per connection: %r" % ids)
    check_eq(s.px.client_id(), ids[0], "the same connection, the same id")
    e = raises(lambda: s.px.client_setname("has space"), "CLIENT SETNAME with a space")
    check_eq(str(e), str(raises(lambda: s.ref.client_setname("has space"), "reference")),
             "the same error as Redis")
    p = s.px.pipeline(transaction=False)
    p.ping().client_setname("piped").client_getname().client_id().echo("b")
    got = p.execute()
    check_eq(got[:3] + got[4:], [True, True, "piped", b"b"], "CLIENT calls pipelined")
    check_eq(got[3], ids[0], "CLIENT ID pipelined")
    # client_info() / client_list(): the library parses them (client_info
    # reads redis-server's integer fields: id, age, idle, db, sub, psub,
    # multi, qbuf, qbuf-free, obl, argv-mem, oll, omem, tot-mem).
    d4 = s.proxy(db=4, client_name="in-four")
    try:
        info = d4.client_info()
    except Exception as e:  # noqa: BLE001
        raise AssertionError("client_info() fails: %r (CLIENT INFO: %r)" % (
            e, Conn(s.listen).call("CLIENT", "INFO")))
    check_eq([info.get("id"), info.get("name"), info.get("db")],
             [d4.client_id(), "in-four", 4], "client_info(): id, name, db")
    mine = [c for c in s.px.client_list() if c.get("id") == str(ids[0])]
    check_eq([c.get("name") for c in mine], ["piped"], "client_list() has this client")
    s.done()


def test_info_randomkey(env):
    """INFO as a dict, RANDOMKEY from every server."""
    s = Setup(env, "info")
    same(s, "RANDOMKEY empty", lambda r: r.randomkey())
    # Varied names (fnv1a_64 keeps names differing in their last bytes close
    # on the ring), so that every server has some.
    keys = {("rk:%s" % os.urandom(6).hex()).encode() for _ in range(200)}
    for r in (s.px, s.ref):
        r.mset({k: 1 for k in keys})
    check(all(n > 0 for n in s.server_dbsizes()), "keys on every server")
    seen = set()
    for _ in range(60):
        k = s.px.randomkey()
        check(k in keys, "RANDOMKEY %r: one of the keys" % k)
        seen.add(s.owner(k.decode()))
    check_eq(len(seen), 3, "RANDOMKEY picks from every server")
    # INFO: a dict, with the servers' keyspace added up.
    info = s.px.info()
    check(isinstance(info, dict) and info, "INFO parsed as a dict")
    check("redis_version" in info, "INFO has redis_version: %r" % sorted(info)[:20])
    check_eq(info.get("db0", {}).get("keys"), len(keys), "INFO's db0 keys: every server's")
    ks = s.px.info("keyspace")
    check_eq(ks.get("db0", {}).get("keys"), s.ref.info("keyspace")["db0"]["keys"],
             "INFO keyspace")
    check("connected_clients" in s.px.info("clients"), "INFO clients")
    s.done()


# ---- concurrency -------------------------------------------------------------

def test_concurrency(env):
    """~30 threads, each its own redis.Redis: plain traffic, transactions,
    subscribers and publishers, blocking consumers and producers, for a few
    seconds, on a proxy with two workers."""
    # A longer pool timeout than the other cases': 30 threads on a small
    # machine can stall a server past 300 ms (seen at load 23 on 2 CPUs: a
    # direct PING took 361 ms, and the proxy rightly answered `Connection
    # timed out`). The blocking pops still outlast it.
    s = Setup(env, "conc", workers=2, pool_timeout=1000)
    stop = threading.Event()
    errors = []
    lock = threading.Lock()

    def guard(fn, *args):
        def go():
            try:
                fn(*args)
            except Exception:  # noqa: BLE001
                with lock:
                    errors.append("%s%r: %s" % (fn.__name__, args, traceback.format_exc()))
                stop.set()
        t = threading.Thread(target=go, daemon=True)
        t.start()
        return t

    def expect(cond, what):
        if not cond:
            raise AssertionError(what)

    # Plain traffic: every value read is the thread's own, in order.
    plain_out = {}

    def plain(n):
        r = s.proxy()
        mine = "{p%d}" % n
        last = 0
        shared = 0
        i = 0
        while not stop.is_set():
            v = "%d:%d" % (n, i)
            r.set(mine + "k", v)
            got = r.get(mine + "k")
            expect(got == v.encode(), "plain %d read %r, wrote %r" % (n, got, v))
            c = r.incr("cnt:%d" % n)
            expect(c == last + 1, "plain %d INCR %d after %d" % (n, c, last))
            last = c
            r.incr("shared")
            shared += 1
            if i % 5 == 0:
                p = r.pipeline(transaction=False)
                keys = ["p%d:m:%d" % (n, j) for j in range(20)]
                p.mset({k: "%d:%d:%s" % (n, i, k) for k in keys})
                p.mget(keys)
                p.incr("cnt:%d" % n)
                p.get(mine + "k")
                p.delete(*keys[::2])
                p.mget(keys)
                got = p.execute()
                expect(got[1] == [("%d:%d:%s" % (n, i, k)).encode() for k in keys],
                       "plain %d MGET %r" % (n, got[1][:3]))
                expect(got[2] == last + 1, "plain %d piped INCR" % n)
                last = got[2]
                expect(got[3] == v.encode(), "plain %d piped GET %r" % (n, got[3]))
                expect(got[4] == 10, "plain %d DEL %r" % (n, got[4]))
                expect(got[5] == [None if j % 2 == 0 else ("%d:%d:%s" % (n, i, k)).encode()
                                  for j, k in enumerate(keys)], "plain %d MGET after DEL" % n)
            i += 1
        plain_out[n] = (last, shared)

    # Transactions: transfers between shared accounts (WATCH, retried on
    # WatchError), and MULTI pairs that must stay equal.
    accounts = ["{bank}acct:%d" % i for i in range(5)]
    s.px.mset({a: 1000 for a in accounts})
    txn_out = {}

    def txn(n):
        r = s.proxy()
        rng = random.Random(n)
        done = 0
        while not stop.is_set():
            src, dst = rng.sample(accounts, 2)
            amount = rng.randint(1, 20)

            def transfer(pipe):
                a, b = int(pipe.get(src)), int(pipe.get(dst))
                pipe.multi()
                pipe.set(src, a - amount)
                pipe.set(dst, b + amount)
            r.transaction(transfer, src, dst)
            p = r.pipeline(transaction=True)
            p.incr("{t%d}a" % n).incr("{t%d}b" % n).mget("{t%d}a" % n, "{t%d}b" % n)
            x, y, both = p.execute()
            expect(x == y and both == [str(x).encode()] * 2, "txn %d pair %r %r %r" %
                   (n, x, y, both))
            done += 1
        txn_out[n] = done

    # Pub/sub: subscribers ready before the publishers start.
    channels = ["news:%d" % i for i in range(3)]
    subs_spec = [  # (channels, patterns)
        (channels, []), ([channels[0]], []), ([], ["news:*"]), ([channels[1]], ["news:*"])]
    receivers = [sum(1 for chs, pats in subs_spec if c in chs) +
                 sum(1 for chs, pats in subs_spec if pats) for c in channels]
    per_pub = 300
    pubs = 2
    ready = threading.Barrier(len(subs_spec) + pubs + 3)  # subscribers, publishers, producers
    sub_out = {}

    def subscriber(n):
        chs, pats = subs_spec[n]
        p = s.proxy().pubsub(ignore_subscribe_messages=True)
        if chs:
            p.subscribe(*chs)
        if pats:
            p.psubscribe(*pats)
        confirmed = 0
        while confirmed < len(chs) + len(pats):
            m = p.parse_response(block=True)
            expect(m[0] in (b"subscribe", b"psubscribe"), "confirmation %r" % (m,))
            confirmed += 1
        ready.wait(10)
        want = sum(per_pub * pubs // 3 for c in channels if c in chs) + \
            (per_pub * pubs if pats else 0)
        got = []
        end = time.time() + 30
        while len(got) < want and time.time() < end:
            m = p.get_message(timeout=0.5)
            if m:
                got.append(m)
        expect(p.get_message(timeout=0.3) is None, "subscriber %d: a message too many" % n)
        sub_out[n] = (want, got)
        p.close()

    pub_counts = []

    def publisher(n):
        r = s.proxy()
        ready.wait(10)
        for i in range(per_pub):
            c = channels[i % 3]
            got = r.publish(c, "%d:%d" % (n, i))
            pub_counts.append((c, got))
            if i % 10 == 0:
                time.sleep(0.002)

    # Blocking pops fed by producers: every item popped exactly once.
    queues = {"a": ["{qa}0", "{qa}1"], "b": ["{qb}0", "{qb}1"]}
    allq = queues["a"] + queues["b"]
    per_prod = 250
    producers_done = threading.Event()
    popped = {}

    def producer(n):
        r = s.proxy()
        ready.wait(10)
        for i in range(per_prod):
            r.rpush(allq[i % 4], "%d:%d" % (n, i))
            if i % 5 == 0:
                time.sleep(0.003)

    def consumer(n):
        r = s.proxy()
        mine = queues["a" if n < 2 else "b"]
        got = []
        while True:
            res = r.blpop(mine, timeout=1.5)
            if res is None:
                if producers_done.is_set():
                    break
                continue
            expect(res[0] in [q.encode() for q in mine], "consumer %d got %r" % (n, res))
            got.append((res[0].decode(), res[1].decode()))
        popped[n] = got

    start = time.time()
    threads = [guard(plain, n) for n in range(13)]
    threads += [guard(txn, n) for n in range(3)]
    subs = [guard(subscriber, n) for n in range(len(subs_spec))]
    pubt = [guard(publisher, n) for n in range(pubs)]
    prods = [guard(producer, n) for n in range(3)]
    cons = [guard(consumer, n) for n in range(4)]
    for t in pubt + prods:
        t.join(60)
    producers_done.set()
    time.sleep(max(0.0, start + 4.0 - time.time()))  # plain and transactions go on
    stop.set()
    for t in threads + subs + cons:
        t.join(60)
    stalls = s.watch.done()
    check_eq(errors[:3], [], "thread errors (%d; %s)" % (len(errors), stalls))
    # INCR totals add up; each client's own counter is where it left it.
    check_eq(len(plain_out), 13, "every plain thread finished")
    for n, (last, shared) in plain_out.items():
        check_eq(int(s.px.get("cnt:%d" % n)), last, "plain %d's counter" % n)
    check_eq(int(s.px.get("shared")), sum(sh for _, sh in plain_out.values()), "shared INCRs")
    check_eq(sum(int(v) for v in s.px.mget(accounts)), 5000, "transfers kept the total")
    check(all(txn_out.get(n, 0) > 0 for n in range(3)), "transactions ran: %r" % txn_out)
    for n in range(3):
        a, b = s.px.mget("{t%d}a" % n, "{t%d}b" % n)
        check(a == b and int(a) == txn_out[n], "txn %d's pair" % n)
    # PUBLISH counted the true receivers; each subscriber got each message
    # once, in each publisher's order per channel.
    check_eq(len(pub_counts), per_pub * pubs, "every publish answered")
    bad = [(c, n) for c, n in pub_counts if n != receivers[channels.index(c)]]
    check_eq(bad[:5], [], "PUBLISH counts (want %r)" % receivers)
    for n, (want, got) in sorted(sub_out.items()):
        check_eq(len(got), want, "subscriber %d's message count" % n)
        groups = by_channel(got)
        for (kind, pat, chan), datas in groups.items():
            for pub in range(pubs):
                seq = [int(d.split(b":")[1]) for d in datas if d.startswith(b"%d:" % pub)]
                c = channels.index(chan.decode())
                check_eq(seq, [i for i in range(per_pub) if i % 3 == c],
                         "subscriber %d %s %s from publisher %d" % (n, kind, chan, pub))
    check_eq(len(sub_out), len(subs_spec), "every subscriber finished")
    # Every item popped once, in each producer's order per queue.
    items = [it for got in popped.values() for _, it in got]
    check_eq(len(popped), 4, "every consumer finished")
    check_eq(len(items), len(set(items)), "no item popped twice")
    check_eq(sorted(items), sorted("%d:%d" % (p, i) for p in range(3) for i in range(per_prod)),
             "every item popped")
    for n, got in popped.items():
        for q in allq:
            for prod in range(3):
                seq = [int(it.split(":")[1]) for qq, it in got if qq == q and
                       it.startswith("%d:" % prod)]
                check_eq(seq, sorted(seq), "consumer %d: producer %d's order on %s" %
                         (n, prod, q))
    check_eq(s.px.exists(*allq), 0, "queues empty")
    print("  concurrency: %d plain rounds, %d transactions, %d messages, %d items popped" % (
        sum(last for last, _ in plain_out.values()), sum(txn_out.values()),
        sum(len(got) for _, got in sub_out.values()), len(items)))
    print("  " + stalls)
    s.by.done(stalls)


TESTS = [test_pipeline, test_transactions, test_transactions_db, test_pubsub, test_pubsub_numsub, test_scan,
         test_scripts, test_blocking, test_db, test_connection, test_client,
         test_info_randomkey, test_concurrency]

if __name__ == "__main__":
    only = os.environ.get("PYREDIS_ONLY")  # e.g. PYREDIS_ONLY=test_scan,test_db
    failed = []
    for t in TESTS:
        if only and t.__name__ not in only.split(","):
            continue
        try:
            run([t])
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            failed.append(t.__name__)
    if failed:
        print("FAILED: %s" % " ".join(failed))
        sys.exit(1)
    print("all passed")

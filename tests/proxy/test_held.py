#!/usr/bin/env python3
"""test_held.py CHASH_PROXY - what needs a server connection of the client's
own, through chash-proxy in front of three real redis-servers: transactions
(MULTI/EXEC/DISCARD/WATCH), blocking commands, per-client SELECT, pub/sub,
WAIT and RESET.

Replies are compared with the same commands sent to one direct redis-server
(the reference); where sharding changes the answer (keys on two servers)
the proxy's error is checked, and that nothing was written. Every case has
a bystander client on the same pool whose writes and reads must all be
right, in order, and never wait behind a blocked or transacting client.
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Conn, SetGetBystander as Bystander, check, check_eq, enc,  # noqa: E402
                     free_port, proxy_binary, run)

BIN = proxy_binary()


def setup(env, extra_conf="", servers=3):
    ports = [env.redis()[0] for _ in range(servers)]
    ref_port = env.redis()[0]
    listen = free_port()
    conf = "p:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash_tag: \"{}\"\n  timeout: 300\n" \
           "  servers:\n%s%s" % (listen, "".join("   - 127.0.0.1:%d:1\n" % p for p in ports),
                                 extra_conf)
    env.proxy(BIN, conf, [listen])
    return listen, ports, ref_port


def owner(ports, key):
    """The server holding key (asked after a SET through the proxy)."""
    for p in ports:
        if Conn(p).call("EXISTS", key) == 1:
            return p
    return None


def keys_apart(px, ports):
    """Two keys the proxy puts on different servers."""
    seen = {}
    for i in range(200):
        # Varied keys: fnv1a_64 (the default hash) keeps keys that differ
        # only in their last bytes close together on the ring.
        k = "apart:%s" % os.urandom(6).hex()
        px.call("SET", k, "x")
        seen.setdefault(owner(ports, k), k)
        px.call("DEL", k)
        if len(seen) >= 2:
            a, b = list(seen.values())[:2]
            return a, b
    raise AssertionError("no two keys on different servers")


def test_transactions(env):
    listen, ports, ref_port = setup(env)
    px, ref = Conn(listen), Conn(ref_port)
    by = Bystander(listen, "txn")
    # The same transactions, interactively and pipelined, as one server runs them.
    cases = [
        [("MULTI",), ("SET", "{t}a", 1), ("INCR", "{t}a"), ("GET", "{t}a"), ("EXEC",)],
        [("MULTI",), ("PING",), ("ECHO", "e"), ("SET", "{u}k", "v"), ("GET", "{u}k"), ("EXEC",)],
        [("MULTI",), ("PING",), ("EXEC",)],
        [("MULTI",), ("EXEC",)],
        [("MULTI",), ("SET", "{t}b"), ("SET", "{t}c", 1), ("EXEC",), ("GET", "{t}c")],
        [("MULTI",), ("INCR", "{t}a"), ("DISCARD",), ("GET", "{t}a")],
        [("EXEC",), ("DISCARD",), ("MULTI",), ("MULTI",), ("INCR", "{t}a"), ("EXEC",)],
        [("MULTI",), ("SET", "{t}s", "x"), ("INCR", "{t}s"), ("GET", "{t}s"), ("EXEC",)],
        [("MULTI",), ("MGET", "{t}a", "{t}s"), ("DEL", "{t}s", "{t}a"), ("EXEC",)],
        [("MULTI",), ("WATCH", "{t}a"), ("SET", "{t}a", 5), ("EXEC",)],
    ]
    for cmds in cases:
        want = [ref.call(*c) for c in cmds]
        check_eq([px.call(*c) for c in cmds], want, "interactive %r" % (cmds,))
        want = ref.pipeline(cmds)
        check_eq(px.pipeline(cmds), want, "pipelined %r" % (cmds,))
    # Keys on two servers: the second is refused, EXEC discards everything.
    a, b = keys_apart(px, ports)
    got = px.pipeline([("MULTI",), ("SET", a, 1), ("SET", b, 2), ("EXEC",), ("EXISTS", a),
                       ("EXISTS", b)])
    check_eq(got[:2], [b"+OK", b"+QUEUED"], "first key queued")
    check(got[2][0] == "err" and "another" in got[2][1], "second server refused: %r" % (got[2],))
    check_eq(got[3], ("err", "EXECABORT Transaction discarded because of previous errors."),
             "EXECABORT")
    check_eq(got[4:], [0, 0], "nothing written")
    # A command for every server is refused inside a transaction.
    got = px.pipeline([("MULTI",), ("DBSIZE",), ("SET", "{t}z", 1), ("EXEC",), ("GET", "{t}z")])
    check(got[1][0] == "err", "DBSIZE in MULTI refused")
    check_eq(got[3:], [("err", "EXECABORT Transaction discarded because of previous errors."),
                       None], "aborted")
    # MGET across servers inside MULTI: CROSSSLOT, then EXECABORT.
    got = px.pipeline([("MULTI",), ("MGET", a, b), ("EXEC",)])
    check(got[1][0] == "err" and got[1][1].startswith("CROSSSLOT"), "MGET apart: %r" % (got,))
    check(got[2][1].startswith("EXECABORT"), "EXECABORT after CROSSSLOT")
    # WATCH: untouched executes; touched by another client returns nil.
    other = Conn(listen)
    check_eq(px.pipeline([("WATCH", "{w}k"), ("MULTI",), ("SET", "{w}k", 1), ("EXEC",)]),
             [b"+OK", b"+OK", b"+QUEUED", [b"+OK"]], "WATCH untouched")
    check_eq(px.call("WATCH", "{w}k"), b"+OK", "WATCH")
    check_eq(other.call("SET", "{w}k", 2), b"+OK", "another client writes the key")
    check_eq(px.pipeline([("MULTI",), ("SET", "{w}k", 3), ("EXEC",), ("GET", "{w}k")]),
             [b"+OK", b"+QUEUED", None, b"2"], "WATCH touched: nil, not written")
    # WATCH then UNWATCH: the transaction runs.
    check_eq(px.pipeline([("WATCH", "{w}k"), ("UNWATCH",), ("MULTI",), ("SET", "{w}k", 4),
                          ("EXEC",)]), [b"+OK", b"+OK", b"+OK", b"+QUEUED", [b"+OK"]], "UNWATCH")
    # WATCH of keys on two servers: refused, with the reason.
    got = px.call("WATCH", a, b)
    check(got[0] == "err" and got[1].startswith("CROSSSLOT"), "WATCH apart: %r" % (got,))
    # The client's own write after WATCH, from the same client, aborts as on Redis.
    check_eq(px.pipeline([("WATCH", "{w}k"), ("SET", "{w}k", 9), ("MULTI",), ("GET", "{w}k"),
                          ("EXEC",)]),
             ref.pipeline([("WATCH", "{w}k"), ("SET", "{w}k", 9), ("MULTI",), ("GET", "{w}k"),
                           ("EXEC",)]), "own write after WATCH")
    # Isolation: a client mid-transaction does not hold up others on its server.
    check_eq(px.pipeline([("MULTI",), ("SET", "{t}iso", "in")]), [b"+OK", b"+QUEUED"], "open")
    check_eq(other.pipeline([("SET", "{t}iso", "out"), ("GET", "{t}iso")]), [b"+OK", b"out"],
             "another client on the same keys meanwhile")
    check_eq(px.pipeline([("EXEC",), ("GET", "{t}iso")]), [[b"+OK"], b"in"], "EXEC after")
    # A client that closes mid-transaction leaves nothing behind.
    gone = Conn(listen)
    gone.pipeline([("MULTI",), ("SET", "{t}gone", 1)])
    gone.close()
    time.sleep(0.2)
    check_eq(px.call("EXISTS", "{t}gone"), 0, "closed mid-transaction: nothing written")
    by.done()


def test_blocking(env):
    listen, ports, ref_port = setup(env)
    by = Bystander(listen, "block")
    blocked = Conn(listen, timeout=10)
    # Blocks longer than the pool timeout (300 ms): answered by its own timeout.
    t0 = time.time()
    check_eq(blocked.call("BLPOP", "q1", 1), None, "BLPOP timed out by its own timeout")
    check(time.time() - t0 >= 0.9, "BLPOP waited its second")
    # Blocked with no timeout while others work; a push wakes it.
    blocked.send(enc("BRPOP", "q2", 0))
    time.sleep(0.5)
    pusher = Conn(listen)
    check_eq(pusher.call("RPUSH", "q2", "job"), 1, "RPUSH")
    check_eq(blocked.reply(), [b"q2", b"job"], "BRPOP woken")
    # Several blocking commands on one client, in order, then plain ones.
    cmds = [("RPUSH", "{b}src", "a", "b", "c"), ("BLMOVE", "{b}src", "{b}dst", "LEFT", "RIGHT", 0),
            ("BRPOPLPUSH", "{b}src", "{b}dst", 0), ("LRANGE", "{b}dst", 0, -1),
            ("BLMPOP", 1, 1, "{b}dst", "LEFT"), ("GET", "nokey"), ("BLPOP", "{b}src", 0)]
    check_eq(blocked.pipeline(cmds), Conn(ref_port).pipeline(cmds), "blocking in order")
    px = Conn(listen)
    a, b = keys_apart(px, ports)
    got = px.call("BLPOP", a, b, 0)
    check(got[0] == "err" and got[1].startswith("CROSSSLOT"), "BLPOP apart: %r" % (got,))
    # Sorted sets and streams.
    px.call("ZADD", "zq", 1, "m")
    check_eq(blocked.call("BZPOPMIN", "zq", 0), [b"zq", b"m", b"1"], "BZPOPMIN")
    blocked.send(enc("XREAD", "BLOCK", 0, "STREAMS", "st", "$"))
    time.sleep(0.3)
    check(isinstance(px.call("XADD", "st", "1-1", "f", "v"), bytes), "XADD")
    check_eq(blocked.reply(), [[b"st", [[b"1-1", [b"f", b"v"]]]]], "XREAD BLOCK woken")
    check_eq(px.call("XREAD", "COUNT", 1, "STREAMS", "st", "0"),
             [[b"st", [[b"1-1", [b"f", b"v"]]]]], "XREAD without BLOCK")
    # Many clients blocked at once: none holds up another.
    waiters = [Conn(listen, timeout=10) for _ in range(20)]
    for i, w in enumerate(waiters):
        w.send(enc("BLPOP", "many%d" % i, 0))
    time.sleep(0.3)
    for i in reversed(range(20)):
        px.call("LPUSH", "many%d" % i, "x%d" % i)
    for i, w in enumerate(waiters):
        check_eq(w.reply(), [b"many%d" % i, b"x%d" % i], "waiter %d" % i)
    # A blocked client that goes away: the server unblocks it.
    gone = Conn(listen)
    gone.send(enc("BLPOP", "gone", 0))
    time.sleep(0.3)
    blocked_now = sum(int(Conn(p).call("INFO", "clients").split(b"blocked_clients:")[1]
                          .split(b"\r\n")[0]) for p in ports)
    check_eq(blocked_now, 1, "one blocked client on the servers")
    gone.close()
    time.sleep(0.3)
    blocked_now = sum(int(Conn(p).call("INFO", "clients").split(b"blocked_clients:")[1]
                          .split(b"\r\n")[0]) for p in ports)
    check_eq(blocked_now, 0, "its server connection closed with it")
    check_eq(px.call("LPUSH", "gone", "x"), 1, "nobody took the item")
    by.done()


def test_select(env):
    listen, ports, ref_port = setup(env)
    by = Bystander(listen, "select")
    c1, c2 = Conn(listen), Conn(listen)
    check_eq(c1.call("SELECT", 1), b"+OK", "SELECT 1")
    check_eq(c1.call("SET", "k", "one"), b"+OK", "SET in db 1")
    check_eq(c2.call("GET", "k"), None, "db 0 does not see it")
    check_eq(c2.call("SET", "k", "zero"), b"+OK", "SET in db 0")
    check_eq(c1.call("GET", "k"), b"one", "db 1 keeps its own")
    p = owner(ports, "k")
    check_eq(Conn(p).pipeline([("GET", "k"), ("SELECT", 1), ("GET", "k")]),
             [b"zero", b"+OK", b"one"], "on the server: db 0 and db 1")
    check_eq(c1.call("SELECT", 99), ("err", "ERR DB index is out of range"), "SELECT 99")
    check_eq(c1.call("GET", "k"), b"one", "still db 1")
    check_eq(c1.call("SELECT", "x"), ("err", "ERR value is not an integer or out of range"),
             "SELECT x")
    # Pipelined switches, and commands split over servers, in each database.
    keys = ["m%d" % i for i in range(12)]
    got = c1.pipeline([("SELECT", 2)] + [("SET", k, "2") for k in keys] + [("SELECT", 3)] +
                      [("SET", k, "3") for k in keys] + [("MGET",) + tuple(keys), ("SELECT", 2),
                                                        ("MGET",) + tuple(keys), ("DBSIZE",)])
    check_eq(got[-4], [b"3"] * 12, "MGET in db 3")
    check_eq(got[-2], [b"2"] * 12, "MGET in db 2")
    check_eq(got[-1], 12, "DBSIZE of db 2")
    check_eq(c2.call("MGET", *keys), [None] * 12, "db 0 has none of them")
    # Transactions in another database: MULTI's connection is on it first.
    for cmds in ([("SELECT", 7), ("MULTI",), ("SET", "{s}a", 1), ("PING",), ("EXEC",)],
                 [("SELECT", 7), ("MULTI",), ("SET", "{s}k", "in"), ("DISCARD",),
                  ("SET", "{s}k", "after"), ("GET", "{s}k")],
                 [("SELECT", 8), ("MULTI",), ("SET", "{s}x"), ("EXEC",), ("SET", "{s}k2", 1),
                  ("SELECT", 0), ("GET", "{s}k2")]):
        check_eq(Conn(listen).pipeline(cmds), Conn(ref_port).pipeline(cmds), "%r" % (cmds,))
    holders = [q for q in ports if Conn(q).pipeline([("SELECT", 7), ("EXISTS", "{s}k")])[1]]
    check_eq(len(holders), 1, "one server has {s}k in db 7")
    check_eq(Conn(holders[0]).pipeline([("SELECT", 7), ("GET", "{s}k"), ("SELECT", 0), ("GET", "{s}k")]),
             [b"+OK", b"after", b"+OK", None], "the write after DISCARD is in db 7")
    # Many clients on different databases at once.
    def worker(db, out):
        c = Conn(listen)
        c.call("SELECT", db)
        for i in range(100):
            c.call("SET", "w%d" % i, db)
        out[db] = [c.call("GET", "w%d" % i) for i in range(100)]
    out = {}
    ts = [threading.Thread(target=worker, args=(db, out)) for db in range(4, 10)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for db in range(4, 10):
        check_eq(out[db], [str(db).encode()] * 100, "db %d's own values" % db)
    by.done()


def test_pubsub(env):
    listen, ports, ref_port = setup(env)
    by = Bystander(listen, "pubsub")
    px = Conn(listen)
    # Channels that live on different servers.
    chans = []
    for i in range(100):
        ch = "ch%s" % os.urandom(4).hex()
        px.call("SET", ch, 1)
        if owner(ports, ch) not in [owner(ports, c) for c in chans]:
            chans.append(ch)
        px.call("DEL", ch)
        if len(chans) == 3:
            break
    check_eq(len(chans), 3, "channels on three servers")
    sub, rsub = Conn(listen), Conn(ref_port)
    cmd = ("SUBSCRIBE",) + tuple(chans) + (chans[0],)
    sub.send(enc(*cmd))
    rsub.send(enc(*cmd))
    for _ in range(4):
        check_eq(sub.reply(), rsub.reply(), "subscribe confirmation")
    check_eq(sub.call("PSUBSCRIBE", "ch*"), rsub.call("PSUBSCRIBE", "ch*"), "psubscribe")
    check_eq(sub.call("PING"), rsub.call("PING"), "PING while subscribed")
    check_eq(sub.call("PING", "m"), rsub.call("PING", "m"), "PING msg while subscribed")
    check_eq(sub.call("GET", "x"), rsub.call("GET", "x"), "GET refused while subscribed")
    # PUBLISH's count is the number of receivers: the channel and the pattern.
    pub = Conn(listen)
    for ch in chans:
        check_eq(pub.call("PUBLISH", ch, "hi " + ch), 2, "PUBLISH %s count" % ch)
        got = [sub.reply(), sub.reply()]
        check(sorted(g[0] for g in got) == [b"message", b"pmessage"], "both: %r" % (got,))
        check_eq([g[-1] for g in got], [("hi " + ch).encode()] * 2, "payload")
    check_eq(pub.call("PUBLISH", "other", "x"), 0, "nobody on 'other'")
    # Order per channel, many messages.
    n = 500
    pub.pipeline([("PUBLISH", chans[1], "m%d" % i) for i in range(n)])
    got = [sub.reply() for _ in range(2 * n)]
    msgs = [g[-1] for g in got if g[0] == b"message"]
    check_eq(msgs, [b"m%d" % i for i in range(n)], "message order kept")
    # Unsubscribing: counts as one server gives them.
    check_eq(sub.call("PUNSUBSCRIBE", "ch*"), rsub.call("PUNSUBSCRIBE", "ch*"), "punsubscribe")
    sub.send(enc("UNSUBSCRIBE", chans[0], "nosuch"))
    rsub.send(enc("UNSUBSCRIBE", chans[0], "nosuch"))
    for _ in range(2):
        check_eq(sub.reply(), rsub.reply(), "unsubscribe confirmation")
    sub.send(enc("UNSUBSCRIBE"))
    rsub.send(enc("UNSUBSCRIBE"))
    got, want = [sub.reply(), sub.reply()], [rsub.reply(), rsub.reply()]
    # In the order of the subscriber's set (a server's is its dict's), the
    # count going down.
    check_eq(sorted(g[1] for g in got), sorted(w[1] for w in want), "unsubscribe all")
    check_eq([g[2] for g in got], [w[2] for w in want], "unsubscribe all: counts")
    check_eq(sub.call("UNSUBSCRIBE"), rsub.call("UNSUBSCRIBE"), "unsubscribe with none left")
    # Out of subscriber mode: ordinary commands again.
    check_eq(sub.pipeline([("SET", "after", 1), ("GET", "after")]), [b"+OK", b"1"], "after")
    check_eq(pub.call("PUBLISH", chans[0], "late"), 0, "no one listens any more")
    # Sharded pub/sub.
    ssub = Conn(listen)
    check_eq(ssub.call("SSUBSCRIBE", "sh1"), Conn(ref_port).call("SSUBSCRIBE", "sh1"),
             "SSUBSCRIBE")
    check_eq(pub.call("SPUBLISH", "sh1", "s"), 1, "SPUBLISH count")
    check_eq(ssub.reply(), [b"smessage", b"sh1", b"s"], "smessage")
    # A subscriber that goes away: publishes count it no more.
    ssub.close()
    time.sleep(0.2)
    check_eq(pub.call("SPUBLISH", "sh1", "s"), 0, "gone")
    by.done()


def test_reset_wait(env):
    listen, ports, ref_port = setup(env)
    by = Bystander(listen, "reset")
    px, ref = Conn(listen), Conn(ref_port)
    cmds = [("SELECT", 5), ("SET", "r", "5"), ("CLIENT", "SETNAME", "n"), ("MULTI",),
            ("SET", "r", "x"), ("RESET",), ("GET", "r"), ("EXEC",), ("SELECT", 5), ("GET", "r"),
            ("CLIENT", "GETNAME")]
    check_eq(px.pipeline(cmds), ref.pipeline(cmds), "RESET ends MULTI, SELECT, the name")
    # RESET turns replies back on, and answers.
    off = enc("CLIENT", "REPLY", "OFF") + enc("GET", "r") + enc("RESET") + enc("PING")
    px.send(off)
    ref.send(off)
    check_eq([px.reply(), px.reply()], [ref.reply(), ref.reply()], "RESET after REPLY OFF")
    sub = Conn(listen)
    sub.call("SUBSCRIBE", "rc")
    check_eq(sub.call("RESET"), b"+RESET", "RESET while subscribed")
    check_eq(sub.call("GET", "r"), None, "ordinary again")
    check_eq(Conn(listen).call("PUBLISH", "rc", "x"), 0, "RESET unsubscribed")
    # WAIT with no replicas: 0 at once, from every server.
    check_eq(px.pipeline([("SET", "wk", 1), ("WAIT", 0, 0), ("WAIT", 1, 100)]),
             ref.pipeline([("SET", "wk", 1), ("WAIT", 0, 0), ("WAIT", 1, 100)]), "WAIT")
    check_eq(px.call("WAIT", 1), ref.call("WAIT", 1), "WAIT arity")
    by.done()


def test_wait_replica(env):
    """WAIT counts the replicas that have this client's writes: with the
    replica stopped (SIGSTOP), a write is not acknowledged and WAIT says 0
    after its timeout; running again, 1."""
    import signal
    listen, ports, ref_port = setup(env, servers=1)
    rport, rproc = env.redis(["--replicaof", "127.0.0.1", str(ports[0])])
    px = Conn(listen)
    deadline = time.time() + 10
    while time.time() < deadline and px.call("WAIT", 1, 100) != 1:
        time.sleep(0.1)
    check_eq(px.pipeline([("SET", "wr", 1), ("WAIT", 1, 2000)]), [b"+OK", 1], "replicated")
    rproc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(0.1)
        t0 = time.time()
        # A new client: its SET goes on a shared connection, its WAIT on a
        # connection of its own that has written nothing.
        fresh = Conn(listen)
        check_eq(fresh.pipeline([("SET", "wr", 2), ("WAIT", 1, 500)]), [b"+OK", 0],
                 "not acknowledged while the replica is stopped")
        check(time.time() - t0 >= 0.45, "WAIT waited its timeout")
    finally:
        rproc.send_signal(signal.SIGCONT)
    check_eq(px.call("WAIT", 1, 5000), 1, "acknowledged once it runs")


def test_hostile_holders(env):
    """Clients that hold server connections cannot take what others need: a
    subscriber that never reads is closed past max_client_buffer; clients
    blocking past the descriptor budget get an error, not a hang, and the
    proxy keeps serving; a bystander sees nothing of it."""
    ports = [env.redis()[0] for _ in range(3)]
    listen = free_port()
    conf = "p:\n  listen: 127.0.0.1:%d\n  redis: true\n  max_client_buffer: 1048576\n" \
           "  servers:\n%s" % (listen, "".join("   - 127.0.0.1:%d:1\n" % p for p in ports))
    # 100 descriptors: 73 kept for servers and the process, 27 for clients
    # and the connections they hold.
    env.proxy(BIN, conf, [listen], nofile=100)
    by = Bystander(listen, "hostile")
    mute = Conn(listen)
    mute.call("SUBSCRIBE", "flood")
    pub = Conn(listen)
    payload = "x" * 4096
    for _ in range(2000):  # 40 MB into a subscriber that reads nothing
        pub.pipeline([("PUBLISH", "flood", payload)] * 5)
    closed = mute.is_closed(timeout=3)
    check(closed, "a subscriber that does not read is closed")
    check_eq(pub.call("PUBLISH", "flood", "x"), 0, "and unsubscribed from its server")
    # Blocked clients past the budget: some get an error, none hangs.
    waiters, errors = [], 0
    for i in range(20):
        w = Conn(listen, timeout=5)
        w.send(enc("BLPOP", "budget%d" % i, 2))
        waiters.append(w)
    for w in waiters:
        got = w.reply()
        if isinstance(got, tuple):
            errors += 1
            check("cannot open a server connection" in got[1], "the reason: %r" % (got,))
        else:
            check_eq(got, None, "timed out by its own timeout")
    check(errors > 0, "past the budget: refused (%d of 20)" % errors)
    check(errors < 20, "within it: served")
    for w in waiters:
        w.close()
    time.sleep(0.3)
    c = Conn(listen)
    check_eq(c.pipeline([("SET", "after", 1), ("BLPOP", "after-list", "0.1")]), [b"+OK", None],
             "the budget comes back once they close")
    by.done()


def test_held_faults(env):
    """A server that dies under a transaction, a blocked client and a
    subscriber: EXECABORT, an error, and a closed subscriber - nothing
    half-done; the other servers' clients see nothing."""
    listen, ports, ref_port = setup(env)
    px = Conn(listen)
    # Keys on the server that will die, and one on another.
    doomed = ports[0]
    k = None
    for i in range(300):
        cand = "{f:%s}" % os.urandom(6).hex()
        px.call("SET", cand, 1)
        if owner(ports, cand) == doomed:
            k = cand
            break
    check(k is not None, "a key on the doomed server")
    # The bystander's keys live on another server: it must see nothing.
    tag = None
    for i in range(300):
        cand = "t%s" % os.urandom(6).hex()
        px.call("SET", "{%s}" % cand, 1)
        if owner(ports, "{%s}" % cand) != doomed:
            tag = cand
            break
    by = Bystander(listen, "faults", tag=tag)
    txn = Conn(listen)
    check_eq(txn.pipeline([("MULTI",), ("INCR", k)]), [b"+OK", b"+QUEUED"], "transaction open")
    blocked = Conn(listen, timeout=10)
    blocked.send(enc("BLPOP", k + ":list", 0))
    sub = Conn(listen)
    ch = None
    for i in range(300):
        cand = "c:%s" % os.urandom(6).hex()
        px.call("SET", cand, 1)
        if owner(ports, cand) == doomed:
            ch = cand
            break
    sub.call("SUBSCRIBE", ch)
    time.sleep(0.2)
    victim = [p for p in env.procs if ("%d" % doomed) in " ".join(p.args)][0]
    env.stop(victim, force=True)
    got = blocked.reply()
    check(isinstance(got, tuple) and got[0] == "err", "blocked client: an error, %r" % (got,))
    check(txn.call("EXEC")[1].startswith("EXECABORT"), "transaction: EXECABORT")
    check(sub.is_closed(timeout=3), "subscriber closed")
    by.done()


def test_held_reload(env):
    """A reload: the blocked command is answered, the transaction aborted at
    EXEC, the subscriber closed; new ones work on the new pools."""
    import signal
    listen, ports, ref_port = setup(env)
    px = Conn(listen)
    by = Bystander(listen, "reload")
    txn = Conn(listen)
    check_eq(txn.pipeline([("WATCH", "{r}a"), ("MULTI",), ("INCR", "{r}a")]),
             [b"+OK", b"+OK", b"+QUEUED"], "transaction open")
    blocked = Conn(listen, timeout=10)
    blocked.send(enc("BLPOP", "rl", 0))
    sub = Conn(listen)
    sub.call("SUBSCRIBE", "rch")
    time.sleep(0.2)
    proxy = env.proxies[0][0]
    path = os.path.join(env.dir, "proxy-%d.yml" % listen)
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("timeout: 300", "timeout: 400"))
    proxy.send_signal(signal.SIGHUP)
    time.sleep(0.5)
    check_eq(px.call("RPUSH", "rl", "x"), 1, "push after the reload")
    check_eq(blocked.reply(), [b"rl", b"x"], "the blocked command answered")
    check(txn.call("EXEC")[1].startswith("EXECABORT"), "transaction aborted")
    check_eq(txn.call("GET", "{r}a"), None, "not run")
    check(sub.is_closed(timeout=3), "subscriber closed")
    sub2 = Conn(listen)
    sub2.call("SUBSCRIBE", "rch")
    check_eq(px.call("PUBLISH", "rch", "m"), 1, "a new subscriber after the reload")
    check_eq(sub2.reply(), [b"message", b"rch", b"m"], "receives")
    check_eq(txn.pipeline([("MULTI",), ("INCR", "{r}a"), ("EXEC",)]),
             [b"+OK", b"+QUEUED", [1]], "a new transaction")
    by.done()


def test_held_regressions(env):
    """What a hostile review found (each against one redis-server): a reply
    that looks like a message is not one when a command waits for it; RESET
    lets nothing after it overtake what held connections carry; confirmations
    come under CLIENT REPLY OFF; subscribers closing while messages flood
    leave the proxy whole."""
    listen, ports, ref_port = setup(env)
    by = Bystander(listen, "regress")
    # An LRANGE sent before SUBSCRIBE on a held connection, answering
    # ["message", "a"]: its reply, not a message.
    for port in (listen, ref_port):
        Conn(port).call("DEL", "{t}L")
    cmds = [("BLPOP", "{t}none", "0.01"), ("RPUSH", "{t}L", "message", "a"),
            ("LRANGE", "{t}L", 0, -1), ("SUBSCRIBE", "{t}ch")]
    check_eq(Conn(listen).pipeline(cmds), Conn(ref_port).pipeline(cmds),
             "LRANGE's reply before SUBSCRIBE")
    # RESET: the write before it lands before the write after it.
    cmds = [("GET", "x"), ("WATCH", "{t}k"), ("SET", "{t}k", "before"), ("RESET",),
            ("SET", "{t}k", "after"), ("GET", "{t}k")]
    check_eq(Conn(listen).pipeline(cmds), Conn(ref_port).pipeline(cmds), "RESET in order")
    time.sleep(0.2)
    check_eq(Conn(listen).call("GET", "{t}k"), b"after", "the later write stays")
    cmds = [("DEL", "{t}l"), ("BLPOP", "{t}l", "0.3"), ("RESET",), ("RPUSH", "{t}l", "mine"),
            ("LPOP", "{t}l")]
    check_eq(Conn(listen).pipeline(cmds), Conn(ref_port).pipeline(cmds),
             "BLPOP does not take what is pushed after RESET")
    # CLIENT REPLY OFF: subscribe confirmations still come, as from Redis.
    cmds = enc("CLIENT", "REPLY", "OFF") + enc("SUBSCRIBE", "qc") + enc("UNSUBSCRIBE", "qc")
    got = []
    for port in (listen, ref_port):
        c = Conn(port)
        c.send(cmds)
        got.append([c.reply(), c.reply()])
    check_eq(got[0], got[1], "confirmations under CLIENT REPLY OFF")
    # Subscribers that close while messages flood.
    pub = Conn(listen)
    stop = threading.Event()

    def flood():
        while not stop.is_set():
            pub.pipeline([("PUBLISH", "fl", "x" * 100)] * 100)
    t = threading.Thread(target=flood, daemon=True)
    t.start()
    for _ in range(40):  # a use-after-free showed in one run of two at 40 rounds
        subs = [Conn(listen) for _ in range(30)]
        for s in subs:
            s.send(enc("SUBSCRIBE", "fl"))
        time.sleep(0.05)
        for i, s in enumerate(subs):
            if i % 2:
                s.send(enc("RESET"))
            s.close()
    stop.set()
    t.join(10)
    check(env.proxies[0][0].poll() is None, "the proxy lives on")
    check_eq(Conn(listen).call("PING"), b"+PONG", "and answers")
    by.done()


if __name__ == "__main__":
    run([test_transactions, test_blocking, test_select, test_pubsub, test_reset_wait,
         test_wait_replica, test_hostile_holders, test_held_faults, test_held_reload,
         test_held_regressions])

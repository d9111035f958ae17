#!/usr/bin/env python3
"""test_memcache_meta.py CHASH_PROXY - memcached 1.6's other text commands
through chash-proxy in front of three real memcached: the meta commands
(mg ms md ma me mn, with q, opaque tokens, base64 keys), flush_all,
verbosity and stats.

Each reply is compared byte for byte with the same bytes sent to one
memcached holding the same data, one step at a time and all pipelined;
stats is checked against the sums of the servers' own stats; a server down
makes flush_all an error that names it; and a client sending bad meta input
never disturbs a bystander on the same pool.
"""
import base64
import os
import random
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Conn, check, check_eq, free_port, proxy_binary, run  # noqa: E402

BIN = proxy_binary()


def pool(env, servers=3, extra=""):
    ports = [env.memcached()[0] for _ in range(servers)]
    listen = free_port()
    conf = ("beta:\n  listen: 127.0.0.1:%d\n  hash: md5\n  distribution: ketama\n%s"
            "  servers:\n" % (listen, extra))
    conf += "".join("   - 127.0.0.1:%d:1 mc%d\n" % (p, i) for i, p in enumerate(ports))
    return ports, listen, conf


def mn_count(step):
    """How many MN replies a step's bytes ask for: its mn lines."""
    return sum(1 for ln in step.split(b"\r\n") if ln == b"mn" or ln.startswith(b"mn "))


def until_mn(conn, count=1):
    """The bytes up to and including the count-th MN line (no value in these
    tests holds an MN line)."""
    out = b""
    seen = 0
    while seen < count:
        line = conn.line() + b"\r\n"
        out += line
        if line == b"MN\r\n":
            seen += 1
        elif line.startswith(b"VA "):
            out += conn.exact(int(line.split()[1]) + 2)
    return out


K251 = b"k" * 251
FLAGS18 = b" ".join(bytes([c]) for c in b"abcdefghijklmnoprs")
B64 = base64.b64encode(b"bin\x00key\xff").rstrip(b"=")

# Steps: bytes ending in "mn\r\n", so that every step has a reply to wait
# for whatever q leaves out. No step reads a CAS value, a last-access time
# or a TTL that is counting down: those differ between two servers.
STEPS = [
    # storing: classic and meta, quiet and not
    b"set a 0 0 1\r\n1\r\nms b 3 F5\r\nbee\r\nms c 2 q\r\ncc\r\nmn\r\n",
    b"ms c 2 q MA\r\n++\r\nms nope 2 q MR\r\nxx\r\nms d 0 q ME\r\n\r\nms d 1 q ME\r\nx\r\nmn\r\n",
    b"ms o 3 O123 k q\r\nooo\r\nms o 3 O124 k\r\nppp\r\nmn\r\n",
    # reading: hits, misses, flags echoed, opaque tokens
    b"mg a v\r\nmg b v f k s O9\r\nmg nope v\r\nmg nope v q\r\nmg b v q Oxyz k\r\nmg c v t\r\n"
    b"get a b c d nope\r\nmg nope k q O1\r\nmn\r\n",
    b"mg a\r\nmg a q\r\nmg nope q\r\nmg a k v u h\r\nmn\r\n",
    # vivify: the first caller wins, the next sees Z
    b"mg viv q N30 v\r\nmg viv q N30 v\r\nmg viv v q\r\nmn\r\n",
    # deleting: q hides HD only
    b"set x 0 0 1\r\nx\r\nmd x q\r\nmd x q\r\nmd x\r\nmd b q C1\r\nmn\r\n",
    b"set y 0 0 1\r\ny\r\nmd y q I T30\r\nmg y v\r\nmd y\r\nmn\r\n",
    # arithmetic: q hides HD and VA of an update, but not a created item's
    b"ma n\r\nma n q\r\nma n N0 J10 v\r\nma n q v\r\nma n v D5\r\nma n q N0 J3 v\r\n"
    b"ma n MD D100 v\r\nma fresh q N0 J3 v\r\nma fresh q N0 J3 v\r\nma fresh v\r\nmn\r\n",
    b"set t 0 0 1\r\nx\r\nma t\r\nma t q\r\nma n M- q\r\nma n v k O5\r\nmn\r\n",
    # base64 keys land where the plain key does
    b"ms Zm9v 2 b\r\nhi\r\nmg foo v\r\nget foo\r\nmg Zm9v b v k\r\nmg Zm9v! b v\r\n"
    b"mg Zg== b v\r\nmn\r\n",
    b"ms " + B64 + b" 3 b k\r\nbin\r\nmg " + B64 + b" b v k\r\nmd " + B64 + b" b q\r\n"
    b"mg " + B64 + b" b v\r\nmn\r\n",
    # me: a miss, a refusal (its hit shows the server's CAS: compared apart)
    b"me nope\r\nme\r\nme nope b\r\nme !!!! b\r\nmn\r\n",
    # mn ignores its arguments; the proxy answers it in its turn
    b"mn extra args\r\nmg a v\r\nmn\r\n",
]

# Refused by memcached, and by the proxy with the same reply.
BAD_STEPS = [
    b"mg\r\nmd\r\nma\r\nms\r\nme\r\nmn\r\n",
    b"mg " + K251 + b" v\r\nmd " + K251 + b"\r\nma " + K251 + b"\r\nme " + K251 + b"\r\nmn\r\n",
    b"mg foo " + FLAGS18 + b"\r\nmd foo " + FLAGS18 + b"\r\nma foo " + FLAGS18 + b"\r\nmn\r\n",
    b"ms foo\r\nms foo abc\r\nms foo -1\r\nms foo 2147483646\r\nms foo 2x\r\nmn\r\n",
    b"mg foo Z\r\nmg foo q q\r\nmg foo v v\r\nmg foo \x80\r\nmd foo q q\r\nma foo q q\r\nmn\r\n",
    b"ms foo 2 q q\r\nxx\r\nms foo 2 MX\r\nxx\r\nms foo 2 MX q\r\nxx\r\nms foo 2 Fx\r\nxx\r\nmn\r\n",
    b"ma n Mx\r\nma n Dx\r\nma n q Jx N0\r\nmg foo v O" + b"9" * 40 + b"\r\nmn\r\n",
    b"mg Zg b v\r\nmg Z b v\r\nmg Z b v q\r\nms Z 2 b q\r\nxx\r\nmn\r\n",
    b"mx foo\r\nm\r\nmnx\r\nmg foo noreply\r\nmn\r\n",
]

SETTINGS = [
    b"flush_all 0\r\nflush_all noreply\r\nflush_all abc\r\nflush_all abc noreply\r\n"
    b"flush_all 0 2\r\nflush_all 1 2 3\r\nflush_all noreply 1\r\nflush_all\r\nmn\r\n",
    b"verbosity\r\nverbosity 1\r\nverbosity 1 noreply\r\nverbosity x\r\n"
    b"verbosity x noreply\r\nverbosity 0 2\r\nverbosity 1 2 3\r\nverbosity 0\r\nmn\r\n",
    b"stats reset\r\nstats reset x\r\nstats bogus\r\nmn\r\n",
]


def flush(ports):
    for p in ports:
        c = Conn(p)
        c.send(b"flush_all\r\n")
        check_eq(c.mc_reply(), b"OK\r\n", "flush %d" % p)
        c.close()


def test_parity(env):
    """Every step alone, then all of them pipelined, against one memcached."""
    ports, listen, conf = pool(env)
    ref_port = env.memcached()[0]
    env.proxy(BIN, conf, [listen])
    for pipelined in (False, True):
        steps = STEPS + BAD_STEPS + SETTINGS
        ref, px = Conn(ref_port), Conn(listen)
        if pipelined:
            ref.send(b"".join(steps))
            px.send(b"".join(steps))
        for step in steps:
            if not pipelined:
                ref.send(step)
                px.send(step)
            want = until_mn(ref, mn_count(step))
            got = until_mn(px, mn_count(step))
            check_eq(got, want, "reply to %r (pipelined=%s)" % (step[:70], pipelined))
        # me on a hit: all but the CAS (each server counts its own)
        for c in (ref, px):
            c.send(b"set mek 0 0 2\r\nhi\r\nme mek\r\nme " +
                    base64.b64encode(b"mek") + b" b\r\n")
            check_eq(c.mc_reply(), b"STORED\r\n", "set for me")
        lines = [[ref.line(), ref.line()], [px.line(), px.line()]]
        for i in range(2):
            mask = [b" ".join(w for w in ln.split() if not w.startswith(b"cas=")) for ln in lines[i]]
            lines[i] = mask
        check_eq(lines[1], lines[0], "me hit")
        check(lines[1][0].startswith(b"ME mek exp=-1 la=0 "), "me hit: %r" % lines[1][0])
        ref.close()
        px.close()
        flush(ports + [ref_port])


def test_deviations(env):
    """Where the proxy answers differently from memcached, by design."""
    ports, listen, conf = pool(env)
    env.proxy(BIN, conf, [listen])
    px = Conn(listen)
    # memcached answers an ms line it cannot take before reading its data
    # (bad key, too many flags), then runs the data as a command; the proxy
    # drops the data, whose length it knows: one reply.
    px.send(b"ms " + K251 + b" 9\r\nflush_all\r\nms foo 9 " + FLAGS18 +
            b"\r\nflush_all\r\nmn\r\n")
    check_eq(until_mn(px), b"CLIENT_ERROR bad command line format\r\n"
             b"CLIENT_ERROR options flags too long\r\nMN\r\n", "ms data dropped")
    # stats with an argument, but reset, is about one server
    for arg in (b"items", b"slabs", b"settings", b"sizes", b"conns", b"detail on"):
        px.send(b"stats " + arg + b"\r\n")
        check_eq(px.mc_reply(), b"SERVER_ERROR stats with an argument is per server: "
                 b"the proxy serves stats and stats reset\r\n", "stats " + arg.decode())
    px.send(b"stats nonsense\r\n")
    check_eq(px.mc_reply(), b"ERROR\r\n", "unknown stats argument, as memcached")


def server_stats(port):
    c = Conn(port)
    c.send(b"stats\r\n")
    out = {}
    for line in iter(c.line, b"END"):
        _, name, value = line.split(b" ", 2)
        out[name.decode()] = value.decode()
    c.close()
    return out


SUMMED = ["curr_items", "total_items", "bytes", "get_hits", "get_misses", "cmd_get",
          "cmd_set", "cmd_touch", "delete_hits", "delete_misses", "incr_hits", "incr_misses",
          "evictions", "limit_maxbytes", "get_expired", "touch_hits", "hash_bytes",
          "max_connections"]


def test_stats(env):
    ports, listen, conf = pool(env)
    proc = env.proxy(BIN, conf, [listen])
    px = Conn(listen)
    for i in range(200):
        px.send(b"ms k%d 4 q\r\nv%03d\r\n" % (i, i % 1000))
    px.send(b"".join(b"mg k%d v q\r\n" % i for i in range(0, 300, 3)) + b"mn\r\n")
    until_mn(px)
    px.send(b"".join(b"get k%d\r\n" % i for i in range(250, 260)))
    for _ in range(10):
        px.mc_reply(True)
    px.send(b"md k1\r\nincr k2 1\r\nmn\r\n")
    until_mn(px)
    direct = [server_stats(p) for p in ports]
    px.send(b"stats\r\n")
    got = {}
    order = []
    for line in iter(px.line, b"END"):
        check(line.startswith(b"STAT "), "a STAT line: %r" % line)
        _, name, value = line.split(b" ", 2)
        got[name.decode()] = value.decode()
        order.append(name.decode())
    for name in SUMMED:
        check_eq(int(got[name]), sum(int(d[name]) for d in direct), "summed %s" % name)
    check(int(got["curr_items"]) == 199 and int(got["get_hits"]) > 60, "the pool's items")
    check_eq(got["pid"], str(proc.pid), "pid is the proxy's")
    check(got["version"].startswith("chash-proxy-"), "version is the proxy's")
    check_eq(got["curr_connections"], "1", "curr_connections: the pool's clients")
    check_eq(got["threads"], "1", "threads: the proxy's workers")
    check_eq(int(got["hash_power_level"]), max(int(d["hash_power_level"]) for d in direct),
             "hash_power_level: the largest")
    check_eq(got["accepting_conns"], "1", "accepting_conns")
    check("libevent" not in got, "libevent left out")
    check_eq(got["proxy_servers"], "3", "proxy_servers")
    check(int(got["proxy_requests"]) >= 300, "proxy_requests")
    check_eq(order[:4], ["pid", "uptime", "time", "version"], "memcached's order")
    check(order.index("curr_items") < order.index("proxy_servers"), "proxy's counters last")
    # stats reset: RESET once every server did
    px.send(b"stats reset\r\n")
    check_eq(px.mc_reply(), b"RESET\r\n", "stats reset")
    for p in ports:
        check_eq(server_stats(p)["get_hits"], "0", "reset on %d" % p)


def kill_server(env, port):
    for p in env.procs:
        if "memcached" in p.args[0] and str(port) in p.args:
            env.stop(p, force=True)


def test_server_down(env):
    """flush_all, verbosity and stats need every server: one down is an
    error naming it, never a silent partial answer. The other commands go
    on for the keys of the live servers."""
    ports, listen, conf = pool(env, extra="  timeout: 500\n")
    env.proxy(BIN, conf, [listen])
    px = Conn(listen)
    px.send(b"flush_all\r\nverbosity 0\r\n")
    check_eq(px.mc_reply() + px.mc_reply(), b"OK\r\nOK\r\n", "all up")
    kill_server(env, ports[1])
    for cmd in (b"flush_all\r\n", b"flush_all 0\r\n", b"verbosity 1\r\n", b"stats\r\n",
                b"stats reset\r\n"):
        px.send(cmd)
        reply = px.mc_reply()
        check(reply.startswith(b"SERVER_ERROR server mc1"), "%r: %r" % (cmd, reply))
    px.send(b"flush_all noreply\r\nmn\r\n")
    check_eq(until_mn(px), b"MN\r\n", "noreply: nothing, even for an error")
    # meta commands: the live servers' keys work, the dead one's fail alone
    px.send(b"".join(b"ms m%d 1 q\r\nx\r\n" % i for i in range(40)) + b"mn\r\n")
    out = until_mn(px)
    errors = out.count(b"SERVER_ERROR")
    check(0 < errors < 40 and out.endswith(b"MN\r\n"), "quiet sets: %d errors" % errors)
    px.send(b"version\r\n")
    check(px.mc_reply().startswith(b"VERSION"), "client still open")


HOSTILE = [
    b"mg\r\n", b"ms\r\n", b"ms k\r\n", b"ms k abc\r\n", b"ms k -5\r\n",
    b"ms k 99999999999999999999\r\n", b"mg k " + FLAGS18 + b"\r\n",
    b"ms k 4 " + FLAGS18 + b"\r\nmn\r\n\r\n", b"mg " + K251 + b" v q\r\n",
    b"ms " + K251 + b" 4 q\r\nmg a\r\n", b"mg k q q q\r\n", b"ms k 1 q q\r\nx\r\n",
    b"ma k q q N0\r\n", b"mg k \xff\xfe\r\n", b"mg k O" + b"x" * 100 + b" q\r\n",
    b"mg !!!! b q\r\n", b"ms ==== 1 b q\r\nx\r\n", b"me " + K251 + b"\r\n", b"md k Zz q\r\n",
    b"mg k\x00x v\r\n", b"ms k\x00 1 q\r\nx\r\n", b"mn " + b"x " * 40 + b"\r\n",
    b"stats slabs\r\n", b"stats " + b"a " * 50 + b"\r\n", b"flush_all x y z w\r\n",
    b"verbosity\r\n", b"ma k q MD D99999999999999999999999\r\n", b"mg k v N-5 q\r\n",
]


def test_hostile_bystander(env):
    """A client sends bad meta input, quiet and not, in pieces; a bystander
    on the same pool pipelines quiet writes and reads with mn markers and
    classic commands. The bystander sees every reply in order, every write
    read back, no error; the hostile client sees memcached's answers and
    stays open."""
    ports, listen, conf = pool(env)
    env.proxy(BIN, conf, [listen])
    stop = threading.Event()
    failures = []
    batches = [0]

    def hostile():
        rng = random.Random(7)
        try:
            c = Conn(listen)
            while not stop.is_set():
                batch = b"".join(rng.choice(HOSTILE) for _ in range(20)) + b"version\r\n"
                for i in range(0, len(batch), 7):  # in small pieces
                    c.send(batch[i:i + 7])
                while not c.line().startswith(b"VERSION"):
                    pass
                batches[0] += 1
            c.send(b"version\r\n")
            if not c.mc_reply().startswith(b"VERSION"):
                failures.append("hostile client not answered")
        except Exception as e:  # noqa: BLE001
            failures.append("hostile: %r" % e)

    t = threading.Thread(target=hostile, daemon=True)
    t.start()
    by = Conn(listen)
    model = {}
    for rnd in range(300):
        keys = [b"by%d" % ((rnd * 7 + i) % 50) for i in range(10)]
        req = b""
        for i, k in enumerate(keys):
            v = b"%d-%d" % (rnd, i)
            model[k] = v
            req += (b"ms %s %d q T0\r\n%s\r\n" % (k, len(v), v) if i % 2 else
                    b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, len(v), v))
        req += b"mg nope%d v q\r\n" % rnd
        req += b"".join(b"mg %s v k q O%d\r\n" % (k, i) for i, k in enumerate(keys))
        req += b"mn\r\nget " + b" ".join(keys) + b"\r\n"
        by.send(req)
        got = until_mn(by)
        want = b"".join(b"VA %d k%s O%d\r\n%s\r\n" % (len(model[k]), k, i, model[k])
                        for i, k in enumerate(keys)) + b"MN\r\n"
        check_eq(got, want, "bystander round %d (meta)" % rnd)
        vals = by.mc_reply(True)
        want = b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (k, len(model[k]), model[k])
                        for k in dict.fromkeys(keys)) + b"END\r\n"
        check_eq(vals, want, "bystander round %d (get)" % rnd)
    stop.set()
    t.join(10)
    check(not t.is_alive(), "hostile client finished")
    check_eq(failures, [], "hostile client")
    check(batches[0] >= 5, "hostile batches: %d" % batches[0])


if __name__ == "__main__":
    run([test_parity, test_deviations, test_stats, test_server_down, test_hostile_bystander])

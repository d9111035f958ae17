#!/usr/bin/env python3
"""test_memcache.py CHASH_PROXY - chash-proxy in front of three real memcached.

Every supported command, with and without noreply, alone and pipelined,
against one direct memcached as the reference; multi-key get/gets/gat/gats
split across servers and merged in key order; a server going down.
"""
import os
import sys

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


# (request bytes, is the reply a VALUE...END run); cas values are filled in
# from an earlier gets, so they are the same on both sides.
def script(with_errors):
    """with_errors: also bad lines; memcached answers those differently when
    they arrive pipelined behind other commands, so they are compared one at
    a time only (and checked against fixed replies pipelined)."""
    s = []
    s.append((b"set a 0 0 1\r\n1\r\n", False))
    s.append((b"set b 5 0 3\r\nbee\r\n", False))
    s.append((b"get a\r\n", True))
    s.append((b"get a b nope a\r\n", True))
    s.append((b"add a 0 0 1\r\nx\r\n", False))
    s.append((b"add c 0 0 2\r\ncc\r\n", False))
    s.append((b"replace a 0 0 2\r\naa\r\n", False))
    s.append((b"replace zz 0 0 2\r\naa\r\n", False))
    s.append((b"append a 0 0 2\r\n++\r\n", False))
    s.append((b"prepend a 0 0 2\r\n--\r\n", False))
    s.append((b"get a\r\n", True))
    s.append((b"incr n 1\r\n", False))
    s.append((b"set n 0 0 2\r\n10\r\n", False))
    s.append((b"incr n 5\r\n", False))
    s.append((b"decr n 100\r\n", False))
    s.append((b"incr a 1\r\n", False))
    s.append((b"touch a 100\r\n", False))
    s.append((b"touch nope 100\r\n", False))
    s.append((b"gat 100 a b nope\r\n", True))
    s.append((b"delete b\r\n", False))
    s.append((b"delete b\r\n", False))
    s.append((b"delete c 0\r\n", False))
    s.append((b"set q 0 0 1 noreply\r\nq\r\n", None))
    s.append((b"add q 0 0 1 noreply\r\nr\r\n", None))
    s.append((b"append q 0 0 1 noreply\r\n!\r\n", None))
    s.append((b"incr n 1 noreply\r\n", None))
    s.append((b"touch q 5 noreply\r\n", None))
    s.append((b"get q n\r\n", True))
    s.append((b"delete q noreply\r\n", None))
    s.append((b"get q\r\n", True))
    s.append((b"set big 0 0 100000\r\n" + b"x" * 100000 + b"\r\n", False))
    s.append((b"get big a big\r\n", True))
    if with_errors:
        s += BAD
    s.append((b"get a\r\n", True))
    return s


BAD = [(b"bogus\r\n", False), (b"incr n notanumber\r\n", False),
       (b"get " + b"k" * 251 + b"\r\n", False), (b"set k 0 0 notanumber\r\n", False),
       (b"get \r\n", False)]
BAD_REPLIES = [b"ERROR\r\n", b"CLIENT_ERROR invalid numeric delta argument\r\n",
               b"CLIENT_ERROR bad command line format\r\n",
               b"CLIENT_ERROR bad command line format\r\n", b"ERROR\r\n"]


def play(conn, steps, pipelined):
    out = []
    if pipelined:
        conn.send(b"".join(req for req, _ in steps))
    for req, retrieval in steps:
        if not pipelined:
            conn.send(req)
        if retrieval is None:
            continue
        out.append(conn.mc_reply(retrieval))
    return out


def cas_round(conn):
    conn.send(b"set c1 0 0 1\r\nv\r\ngets c1\r\n")
    conn.mc_reply()
    reply = conn.mc_reply(True)
    cas = reply.split(b"\r\n")[0].split()[4]
    conn.send(b"cas c1 0 0 1 " + cas + b"\r\nw\r\ncas c1 0 0 1 " + cas + b"\r\nz\r\n"
              b"cas nope 0 0 1 1\r\nz\r\ngets c1\r\n")
    return [conn.mc_reply(), conn.mc_reply(), conn.mc_reply(),
            conn.mc_reply(True).split(b" ")[:3]]


def test_every_command(env):
    ports, listen, conf = pool(env)
    ref_port = env.memcached()[0]
    env.proxy(BIN, conf, [listen])
    for pipelined in (False, True):
        ref = Conn(ref_port)
        px = Conn(listen)
        steps = script(not pipelined)
        want = play(ref, steps, pipelined)
        got = play(px, steps, pipelined)
        for (req, _), g, w in zip([x for x in steps if x[1] is not None], got, want):
            check_eq(g, w, "reply to %r (pipelined=%s)" % (req[:60], pipelined))
        check_eq(cas_round(px), cas_round(ref), "cas")
        check_eq(play(px, BAD + [(b"get a\r\n", True)], True)[:-1], BAD_REPLIES,
                 "bad lines, pipelined")
        # memcached answers a storage line with a bad key and then runs the
        # data as a command (two replies); we skip the data: one reply.
        px.send(b"set " + b"k" * 251 + b" 0 0 10\r\ndelete a\r\n\r\nget a\r\n")
        check_eq(px.mc_reply(), b"CLIENT_ERROR bad command line format\r\n", "bad key")
        check(px.mc_reply(True).startswith(b"VALUE a "), "data not run as a command")
        ref.send(b"version\r\n")
        check(ref.mc_reply().startswith(b"VERSION "), "version (reference)")
        px.send(b"version\r\n")
        check(px.mc_reply().startswith(b"VERSION "), "version")
        px.send(b"quit\r\n")
        check(px.is_closed(), "quit closes")
        check_eq(px.buf, b"", "quit has no reply")
        ref.send(b"flush_all\r\n")
        ref.mc_reply()
        for p in ports:
            c = Conn(p)
            c.send(b"flush_all\r\n")
            c.mc_reply()
    # the values really are spread
    px = Conn(listen)
    for i in range(300):
        px.send(b"set key%d 0 0 4 noreply\r\nv%03d\r\n" % (i, i))
    keys = [b"key%d" % i for i in range(299, -1, -1)] + [b"missing"]
    for cmd in (b"get", b"gets", b"gat 0", b"gats 0"):
        px.send(cmd + b" " + b" ".join(keys) + b"\r\n")
        reply = px.mc_reply(True)
        got = [line.split(b" ")[1] for line in reply.split(b"\r\n") if line.startswith(b"VALUE")]
        check_eq(got, keys[:-1], "%s merged in key order" % cmd.decode())
    for p in ports:
        c = Conn(p)
        c.send(b"stats\r\n")
        items = [ln for ln in iter(c.line, b"END") if ln.startswith(b"STAT curr_items ")]
        check(int(items[0].split()[2]) > 50, "server %d holds keys" % p)


def test_server_down(env):
    ports, listen, conf = pool(env, extra="  timeout: 300\n")
    env.proxy(BIN, conf, [listen])
    px = Conn(listen)
    for i in range(60):
        px.send(b"set k%d 0 0 2\r\nv%d\r\n" % (i, i % 10))
        check_eq(px.mc_reply(), b"STORED\r\n", "set")
    victim = ports[0]
    for p in env.procs:
        if "memcached" in p.args[0] and str(victim) in p.args:
            env.stop(p, force=True)
    keys = [b"k%d" % i for i in range(60)]
    px.send(b"get " + b" ".join(keys) + b"\r\n")
    reply = px.mc_reply(True)
    hits = [line.split(b" ")[1] for line in reply.split(b"\r\n") if line.startswith(b"VALUE")]
    check(0 < len(hits) < 60, "the live servers' keys still come back (%d)" % len(hits))
    check(reply.endswith(b"END\r\n"), "ends with END")
    ordered = [k for k in keys if k in hits]
    check_eq(hits, ordered, "in key order")
    # a single key on the dead server is a SERVER_ERROR, and the client stays
    dead_key = next(k for k in keys if k not in hits)
    px.send(b"get " + dead_key + b"\r\n")
    check(px.mc_reply(True).startswith(b"SERVER_ERROR"), "SERVER_ERROR for a dead server")
    px.send(b"version\r\n")
    check(px.mc_reply().startswith(b"VERSION"), "client still open")


if __name__ == "__main__":
    run([test_every_command, test_server_down])

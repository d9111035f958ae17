#!/usr/bin/env python3
"""test_badinput.py CHASH_PROXY - a corpus of bad input, one client at a time,
while other clients pipeline on the same proxy.

Redis and memcached pools, with default limits and with small ones. Each
case opens its own client and must get an error reply (in its turn, the
connection open where the protocol can go on) or a clean close of that
client only, within a timeout (a hang fails). Meanwhile a bystander client
per pool pipelines checked commands without pause: every one of its replies
must be right and in order, and no batch may stall. The proxy runs one
worker, so every client shares one event loop. After every case the proxy
must still be running; at the end it must exit 0 on SIGTERM with no
sanitizer report (harness.check_proxies).

Set CHASH_TEST_SEED to replay the random parts.
"""
import os
import random
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Closed, Conn, check, check_eq, enc, free_ports, is_sanitized,  # noqa: E402
                     proxy_binary, run)

BIN = proxy_binary()
SEED = int(os.environ.get("CHASH_TEST_SEED", int(time.time())))
IS_ASAN = is_sanitized(BIN)
CASE_TIMEOUT = 10.0 if IS_ASAN else 5.0
CASES = {"count": 0}


# ---- bystanders --------------------------------------------------------------

class Bystander(threading.Thread):
    """Pipelines batches of commands on its own keys and checks every reply
    against a model, until stopped."""

    def __init__(self, port, is_redis, name):
        super().__init__(daemon=True)
        self.port, self.is_redis, self.name = port, is_redis, name
        self.errors = []
        self.rounds = 0
        self.replies = 0
        self.slowest = 0.0
        self.stopping = threading.Event()

    def stop(self):
        self.stopping.set()
        self.join(30)
        check(not self.is_alive(), "bystander %s stopped" % self.name)

    def run(self):
        rng = random.Random("%d:%s" % (SEED, self.name))
        try:
            c = Conn(self.port, timeout=CASE_TIMEOUT)
            model = {}
            while not self.stopping.is_set():
                t0 = time.time()
                if self.is_redis:
                    self.redis_round(c, rng, model)
                else:
                    self.mc_round(c, rng, model)
                self.slowest = max(self.slowest, time.time() - t0)
                self.rounds += 1
            c.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append("round %d: %r" % (self.rounds, e))

    def fail(self, what):
        if len(self.errors) < 5:
            self.errors.append("round %d: %s" % (self.rounds, what))

    def redis_round(self, c, rng, model):
        keys = ["bys:%s:%d" % (self.name, i) for i in range(40)]
        cmds, wants = [], []
        for _ in range(150):
            op = rng.randrange(8)
            k = rng.choice(keys)
            if op == 0:
                v = "%x" % rng.getrandbits(40)
                cmds.append(("SET", k, v))
                wants.append(b"+OK")
                model[k] = v.encode()
            elif op == 1:
                cmds.append(("GET", k))
                wants.append(model.get(k))
            elif op == 2:
                ks = rng.sample(keys, 5)
                cmds.append(("MGET",) + tuple(ks))
                wants.append([model.get(x) for x in ks])
            elif op == 3:
                ks = rng.sample(keys, 3)
                cmds.append(("DEL",) + tuple(ks))
                wants.append(sum(1 for x in ks if x in model))
                for x in ks:
                    model.pop(x, None)
            elif op == 4:
                pairs = rng.sample(keys, 4)
                args = []
                for x in pairs:
                    v = "m%x" % rng.getrandbits(30)
                    args += [x, v]
                    model[x] = v.encode()
                cmds.append(("MSET",) + tuple(args))
                wants.append(b"+OK")
            elif op == 5:
                cmds.append(("DEBUG", "SLEEP", "0"))
                wants.append(("err", "ERR the proxy refuses 'debug': DEBUG acts on one server "
                                     "(DEBUG OBJECT key is served)"))
            elif op == 6:
                cmds.append(("PING",))
                wants.append(b"+PONG")
            else:
                ks = rng.sample(keys, 6)
                cmds.append(("EXISTS",) + tuple(ks))
                wants.append(sum(1 for x in ks if x in model))
        got = c.deep_pipeline(cmds)
        self.replies += len(got)
        for cmd, g, w in zip(cmds, got, wants):
            if g != w:
                self.fail("%r: got %r, want %r" % (cmd, g, w))

    def mc_round(self, c, rng, model):
        keys = [b"bys:%s:%d" % (self.name.encode(), i) for i in range(40)]
        reqs, wants = [], []
        for _ in range(150):
            op = rng.randrange(6)
            k = rng.choice(keys)
            if op == 0:
                v = b"%x" % rng.getrandbits(40)
                reqs.append((b"set %s 0 0 %d\r\n%s\r\n" % (k, len(v), v), False))
                wants.append(b"STORED\r\n")
                model[k] = v
            elif op == 1:
                ks = rng.sample(keys, 5)
                reqs.append((b"get " + b" ".join(ks) + b"\r\n", True))
                wants.append(b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (x, len(model[x]), model[x])
                                      for x in ks if x in model) + b"END\r\n")
            elif op == 2:
                reqs.append((b"delete %s\r\n" % k, False))
                wants.append(b"DELETED\r\n" if k in model else b"NOT_FOUND\r\n")
                model.pop(k, None)
            elif op == 3:
                reqs.append((b"bogus %s\r\n" % k, False))
                wants.append(b"ERROR\r\n")
            elif op == 4:
                reqs.append((b"get %s\r\n" % k, True))
                wants.append((b"VALUE %s 0 %d\r\n%s\r\n" % (k, len(model[k]), model[k])
                              if k in model else b"") + b"END\r\n")
            else:
                reqs.append((b"set %s 0 0 1 noreply\r\nz\r\n" % k, None))
                model[k] = b"z"
        t = c.send_async(b"".join(r for r, _ in reqs))
        got = [c.mc_reply(kind) for _, kind in reqs if kind is not None]
        t.join()
        self.replies += len(got)
        for (req, _), g, w in zip([x for x in reqs if x[1] is not None], got, wants):
            if g != w:
                self.fail("%r: got %r, want %r" % (req[:40], g, w))


# ---- helpers -------------------------------------------------------------------

def alive(proc, what):
    check(proc.poll() is None, "proxy alive after %s (exit %s)" % (what, proc.returncode))


def read_until_closed(c, timeout=CASE_TIMEOUT, limit=64 << 20):
    """All bytes until the proxy closes; a hang, or more than limit bytes,
    fails."""
    c.s.settimeout(timeout)
    data = bytearray(c.buf)
    c.buf = b""
    try:
        while True:
            chunk = c.s.recv(1 << 20)
            if not chunk:
                return bytes(data)
            data += chunk
            if len(data) > limit:
                raise AssertionError("more than %d bytes and no close" % limit)
    except ConnectionResetError:
        return bytes(data)
    except socket.timeout:
        raise AssertionError("the proxy neither answered nor closed within %.0fs" % timeout)


def resp_errors(data):
    """Splits replies; every one must be a well-formed RESP value."""
    c = Conn.__new__(Conn)
    c.buf = data
    c.s = None
    out = []

    def fill():
        raise Closed()
    c._fill = fill
    while c.buf:
        try:
            out.append(c.reply())
        except Closed:
            raise AssertionError("a truncated reply: %r" % c.buf[:80])
    return out


def expect_error(port, data, prefix, stays_open, before=(), what=""):
    """Sends data; the replies `before` come first, then an error starting
    with prefix; then the connection is open (PING answers) or closed."""
    try:
        expect_error_once(port, data, prefix, stays_open, before, what)
    except socket.timeout:
        raise AssertionError("%s: no answer within %.0fs" % (what, CASE_TIMEOUT))


def expect_error_once(port, data, prefix, stays_open, before, what):
    CASES["count"] += 1
    c = Conn(port, timeout=CASE_TIMEOUT)
    t = c.send_async(data)
    for want in before:
        check_eq(c.reply(), want, "%s: reply before the error" % what)
    r = c.reply()
    check(isinstance(r, tuple) and r[1].startswith(prefix),
          "%s: error %r expected, got %r" % (what, prefix, r if not isinstance(r, bytes)
                                             else r[:80]))
    if stays_open:
        t.join()
        check_eq(c.call("PING"), b"+PONG", "%s: connection still open" % what)
        check_eq(c.call("SET", "after:" + what, "x"), b"+OK", "%s: and working" % what)
    else:
        read_until_closed(c)
    c.close()


def expect_close(port, data, what, is_redis=True, shut=True):
    """Sends data (then EOF): the proxy answers with well-formed replies, if
    any, and closes within the timeout. Returns the replies."""
    CASES["count"] += 1
    c = Conn(port, timeout=CASE_TIMEOUT)
    t = c.send_async(data)
    t.join()
    if shut and c.send_error is None:
        try:
            c.s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    data = read_until_closed(c)
    c.close()
    if is_redis:
        return resp_errors(data)
    return data


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def mutate(rng, data):
    """A small random change to a valid request stream."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        i = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(i, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[i:i] = rng.choice([b"\r", b"\n", b"\r\n", b"*", b"$", b"-", b"0", b"9" * 12,
                                    b"*2147483648\r\n", b"$-2\r\n", b" ", b"\x00"])
        elif op == 2 and data:
            del data[i:i + rng.randint(1, 8)]
        elif op == 3:
            data = data[:i]
        elif op == 4:
            data[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        else:
            data += data[:i]
    return bytes(data)


# ---- redis ---------------------------------------------------------------------

def redis_setup(env):
    ports = [env.redis()[0] for _ in range(3)]
    std, lim = free_ports(2)
    servers = "".join("   - 127.0.0.1:%d:1\n" % p for p in ports)
    conf = ("std:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: md5\n  timeout: 4000\n"
            "  servers:\n%s" % (std, servers))
    conf += ("lim:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: md5\n  timeout: 4000\n"
             "  max_bulk_length: 100000\n  max_arguments: 1000\n  max_key_length: 300\n"
             "  max_pipeline: 32\n  max_client_buffer: 2000000\n  client_connections: 8\n"
             "  servers:\n%s" % (lim, servers))
    proc = env.proxy(BIN, conf, [std, lim], workers=1)
    return ports, std, lim, proc


def test_redis_corpus(env):
    ports, std, lim, proc = redis_setup(env)
    rng = random.Random(SEED)
    big_key = "big"
    check_eq(Conn(std).call("SET", big_key, b"y" * 262144), b"+OK", "a 256 KB value")
    check_eq(Conn(std).call("SET", "mid", b"m" * 16384), b"+OK", "a 16 KB value")
    bys = [Bystander(std, True, "std"), Bystander(lim, True, "lim")]
    for b in bys:
        b.start()
    time.sleep(0.2)

    # client_connections first, while only the bystander is on "lim".
    CASES["count"] += 1
    held = [Conn(lim) for _ in range(7)]
    for h in held:
        check_eq(h.call("PING"), b"+PONG", "a client within client_connections")
    extra = Conn(lim, timeout=CASE_TIMEOUT)
    check_eq(extra.reply(), ("err", "ERR max number of clients reached"), "client over the limit")
    check(extra.is_closed(CASE_TIMEOUT), "the refused client is closed")
    held.pop().close()
    deadline = time.time() + CASE_TIMEOUT
    while True:  # the proxy notices the close in its next turn
        again = Conn(lim, timeout=CASE_TIMEOUT)
        try:
            r = again.call("PING")
        except Closed:
            r = None
        if r == b"+PONG" or time.time() > deadline:
            break
        time.sleep(0.05)
    check_eq(r, b"+PONG", "a slot freed by a close is reusable")
    again.close()
    for h in held:
        check_eq(h.call("PING"), b"+PONG", "the other clients are still served")
        h.close()
    alive(proc, "client_connections")

    # Refused and unknown commands mid-pipeline: an error in its turn, the
    # rest right.
    CASES["count"] += 1
    c = Conn(std, timeout=CASE_TIMEOUT)
    cmds = [("SET", "u1", "a"), ("DEBUG", "SLEEP", "0"), ("GET", "u1"),
            ("CLUSTER", "MEET", "h", "1"),
            ("APPEND", "u1", "b"), ("SHUTDOWN",), ("MIGRATE", "h", "1", "k", "0", "1"),
            ("GET", "u1"), ("CLIENT", "KILL", "x"), ("MONITOR",), ("MGET", "u1", "nope"),
            ("BGSAVE",), (b"\x00\xff bin",), ("PING",)]
    got = c.pipeline(cmds)
    want = [b"+OK", "debug", b"a", "cluster|meet", 2, "shutdown", "migrate", b"ab", "client|kill",
            "monitor", [b"ab", None], "bgsave", None, b"+PONG"]
    for cmd, g, w in zip(cmds, got, want):
        if w is None:
            check_eq(g, ("err", "ERR unknown command '?? bin', with args beginning with: "),
                     "unknown %r" % (cmd,))
        elif isinstance(w, str):
            check(g[0] == "err" and g[1].startswith("ERR the proxy refuses '%s': " % w),
                  "refused %r: %r" % (cmd, g))
        else:
            check_eq(g, w, "reply to %r mid-pipeline" % (cmd,))
    check_eq(c.call("GET", "u1"), b"ab", "connection still open after unsupported commands")
    c.close()

    # Lengths that are too big, negative or not numbers: error, then close.
    framing = [
        ("$99999999999", b"*1\r\n$99999999999\r\n", "ERR Protocol error"),
        ("$99999999999 after a command", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$99999999999\r\n",
         "ERR Protocol error"),
        ("*2147483648", b"*2147483648\r\n", "ERR Protocol error"),
        ("*99999999999999999999", b"*99999999999999999999\r\n", "ERR Protocol error"),
        ("*-5", b"*-5\r\n", "ERR Protocol error"),
        ("$-5", b"*2\r\n$3\r\nGET\r\n$-5\r\n", "ERR Protocol error"),
        ("$-1 argument", b"*2\r\n$3\r\nGET\r\n$-1\r\n", "ERR Protocol error"),
        ("*1 then no $", b"*1\r\n+PING\r\n", "ERR Protocol error"),
        ("$abc", b"*1\r\n$abc\r\n", "ERR Protocol error"),
        ("*abc", b"*abc\r\n", "ERR Protocol error"),
        ("*1 without CR", b"*1\n$4\r\nPING\r\n", "ERR Protocol error"),
        ("$4 without CR", b"*1\r\n$4\nPING\r\n", "ERR Protocol error"),
        ("bulk without CRLF", b"*1\r\n$4\r\nPINGxx", "ERR Protocol error"),
        ("bulk with LF only", b"*1\r\n$4\r\nPING\n\n", "ERR Protocol error"),
        ("*1 with a space", b"*1 \r\n$4\r\nPING\r\n", "ERR Protocol error"),
        ("length with +", b"*+1\r\n$4\r\nPING\r\n", "ERR Protocol error"),
        ("deep nesting", b"*1\r\n" * 100000 + b"$4\r\nPING\r\n", "ERR Protocol error"),
        ("nested arrays", b"*2\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
         "ERR Protocol error"),
        ("an endless length line", b"*1\r\n$" + b"9" * 100000, "ERR Protocol error"),
        ("inline too long", b"GET " + b"k" * 200000, "ERR Protocol error"),
    ]
    # Lengths Redis itself refuses (it closes the connection): the proxy
    # forwards a command as received, so it must refuse them too, or a server
    # connection every client shares would be dropped.
    as_redis = [
        ("$ with a leading zero", b"*2\r\n$03\r\nGET\r\n$1\r\nk\r\n"),
        ("* with a leading zero", b"*02\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
        ("$00", b"*2\r\n$3\r\nGET\r\n$00\r\n\r\n"),
        ("*-0", b"*-0\r\n*1\r\n$4\r\nPING\r\n"),
    ]
    for what, data in as_redis:
        expect_error(ports[0], data, "ERR Protocol error", False, what="redis-server: " + what)
        framing.append((what, data, "ERR Protocol error"))
    for what, data, prefix in framing:
        expect_error(std, data, prefix, False, what=what)
        alive(proc, what)
    # ... after good commands in the same write: their replies come first.
    expect_error(std, enc("SET", "f1", "v") + enc("GET", "f1") + b"*1\r\n$-7\r\n",
                 "ERR Protocol error", False, before=[b"+OK", b"v"], what="error after work")
    # "*-1" and "*0" are nothing, as in redis; empty inline lines too.
    CASES["count"] += 1
    c = Conn(std, timeout=CASE_TIMEOUT)
    c.send(b"*-1\r\n*0\r\n\r\n\r\n" * 1000 + enc("PING"))
    check_eq(c.reply(), b"+PONG", "null and empty requests are skipped")
    c.close()

    # Argument errors: an error reply, the connection stays open.
    megakey = "K" * (1 << 20)
    args = [
        ("1 MB key", enc("SET", megakey, "v"), "ERR key longer"),
        ("1 MB key in GET", enc("GET", megakey), "ERR key longer"),
        ("1 MB key in MGET", enc("MGET", "a", megakey, "b"), "ERR key longer"),
        ("1 MB key in MSET", enc("MSET", "a", "1", megakey, "2"), "ERR key longer"),
        ("odd-arity MSET", enc("MSET", "a", "1", "b"), "ERR wrong number of arguments"),
        ("MSET with one argument", enc("MSET", "a"), "ERR wrong number of arguments"),
        ("MSET alone", enc("MSET"), "ERR wrong number of arguments"),
        ("MGET alone", enc("MGET"), "ERR wrong number of arguments"),
        ("DEL alone", enc("DEL"), "ERR wrong number of arguments"),
        ("GET alone", enc("GET"), "ERR wrong number of arguments"),
        ("inline GET alone", b"GET\r\n", "ERR wrong number of arguments"),
        ("EVAL numkeys huge", enc("EVAL", "return 1", "99999999999999999999", "k"), "ERR"),
        ("EVAL numkeys negative", enc("EVAL", "return 1", "-3", "k"), "ERR"),
        ("EVAL numkeys over argc", enc("EVAL", "return 1", "5", "k"), "ERR"),
        ("ZUNIONSTORE numkeys huge", enc("ZUNIONSTORE", "d", "4294967297", "k"), "ERR"),
        ("SELECT huge", enc("SELECT", "99999999999999999999"), "ERR"),
        ("SELECT words", enc("SELECT", "zero"), "ERR"),
        ("HELLO junk", enc("HELLO", "2", "SETNAME"), "ERR"),
        ("HELLO 3", enc("HELLO", "3"), "NOPROTO"),
        ("HELLO -1", enc("HELLO", "-1"), "NOPROTO"),
        ("AUTH without a password set", enc("AUTH", "x"), "ERR"),
        ("PING with 3 args", enc("PING", "a", "b"), "ERR wrong number of arguments"),
        ("a 1 MB command name", enc("X" * (1 << 20)), "ERR unknown command"),
        ("an empty command name", enc(""), "ERR unknown command"),
        ("cross-server SINTER", enc("SINTER", *["s%d" % i for i in range(20)]), "CROSSSLOT"),
        ("wrong type", enc("SET", "wt", "1") + enc("LPUSH", "wt", "x"), "WRONGTYPE"),
    ]
    for what, data, prefix in args:
        before = [b"+OK"] if what == "wrong type" else []
        expect_error(std, data, prefix, True, before=before, what=what)
        alive(proc, what)
    # A long command name is echoed cut short.
    c = Conn(std, timeout=CASE_TIMEOUT)
    r = c.call("X" * (1 << 20))
    check(len(r[1]) < 200, "a long name is not echoed in full (%d bytes)" % len(r[1]))
    c.close()

    # The small limits of "lim".
    limits = [
        ("bulk over max_bulk_length", b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100001\r\n",
         "ERR Protocol error", False),
        ("key over max_key_length", enc("GET", "k" * 301), "ERR key longer", True),
        ("too many arguments", b"*1001\r\n", "ERR Protocol error", False),
        ("too many MGET keys", enc("MGET", *["k%d" % i for i in range(1000)]),
         "ERR Protocol error", False),
        ("too many inline arguments", b"MGET" + b" k" * 1001 + b"\r\n", "ERR Protocol error",
         False),
        ("request over max_client_buffer",
         b"*30\r\n" + (b"$90000\r\n" + b"v" * 90000 + b"\r\n") * 30, "ERR Protocol error", False),
    ]
    for what, data, prefix, stays_open in limits:
        expect_error(lim, data, prefix, stays_open, what=what)
        alive(proc, what)
    # At the limits, not over them: fine.
    CASES["count"] += 1
    c = Conn(lim, timeout=CASE_TIMEOUT)
    check_eq(c.call("SET", "k" * 300, "v" * 100000), b"+OK", "key and value at the limits")
    check_eq(len(c.call("MGET", *["k%d" % i for i in range(999)])), 999, "999 keys")
    c.close()

    # Pipeline depth: 5000 commands in one write against max_pipeline 32 -
    # reading pauses and resumes, nothing is lost.
    CASES["count"] += 1
    c = Conn(lim, timeout=CASE_TIMEOUT)
    cmds = []
    for i in range(2500):
        cmds += [("SET", "d%d" % (i % 300), i), ("GET", "d%d" % (i % 300))]
    got = c.deep_pipeline(cmds)
    check_eq(got, [x for i in range(2500) for x in (b"+OK", b"%d" % i)],
             "5000 pipelined past max_pipeline")
    c.close()

    # A client that asks and never reads: closed when it holds more than
    # max_client_buffer of replies; the proxy's memory stays bounded.
    CASES["count"] += 1
    before = rss_kb(proc.pid)
    c = Conn(lim, timeout=CASE_TIMEOUT)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    t = c.send_async(enc("GET", big_key) * 2000)  # 500 MB of replies
    time.sleep(1.0)
    grown = rss_kb(proc.pid) - before
    read_until_closed(c, 30, limit=100 * 262144)
    t.join()
    if not IS_ASAN:  # ASan keeps freed memory in quarantine
        check(grown < 64 * 1024, "proxy grew %d kB for a client that never reads" % grown)
    c.close()
    alive(proc, "a client that never reads")
    # Within the limit (6 x 256 KB < 2 MB), the same replies come in full.
    c = Conn(lim, timeout=CASE_TIMEOUT)
    got = c.deep_pipeline([("GET", big_key)] * 6)
    check(all(g == b"y" * 262144 for g in got), "big replies within max_client_buffer")
    c.close()

    # Clients that go away with requests in flight (FIN and RST).
    for how in ("fin", "rst"):
        for port in (std, lim):
            CASES["count"] += 1
            c = Conn(port)
            c.send(b"".join(enc("MGET", "a", "b", "c", "d") + enc("GET", "mid")
                            for _ in range(300)))
            if how == "rst":
                c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
    time.sleep(0.2)
    alive(proc, "clients gone with requests in flight")
    # ... or half way through a command.
    for data in (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc", b"*3\r\n$3\r\nSE", b"GET k"):
        expect_close(std, data, "EOF inside a command")

    # Binary garbage and mutated requests: errors or a close, never a hang.
    valid = (enc("SET", "g1", "v") + enc("MGET", "g1", "g2", "g3") + enc("GET", "g1") +
             enc("MSET", "g4", "1", "g5", "2") + enc("DEL", "g4", "g5") + b"PING\r\n")
    for i in range(60):
        if i < 10:
            data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8192)))
        else:
            data = mutate(rng, valid * rng.randint(1, 3))
        replies = expect_close(std if i % 2 else lim, data, "garbage %d" % i)
        check(len(replies) < 100, "garbage %d: a sane number of replies" % i)
    alive(proc, "garbage")

    for b in bys:
        b.stop()
        check_eq(b.errors, [], "bystander %s: every reply right and in order" % b.name)
        check(b.rounds >= 5, "bystander %s kept going (%d rounds)" % (b.name, b.rounds))
        check(b.slowest < CASE_TIMEOUT, "bystander %s never stalled (%.2fs)" % (b.name, b.slowest))
    print("  redis: %d cases; bystanders %d and %d replies, slowest batch %.2fs"
          % (CASES["count"], bys[0].replies, bys[1].replies, max(b.slowest for b in bys)))


# ---- memcached -------------------------------------------------------------------

def mc_call(c, data, retrieval=False):
    c.send(data)
    return c.mc_reply(retrieval)


def test_memcache_corpus(env):
    ports = [env.memcached()[0] for _ in range(3)]
    ref_port = env.memcached()[0]
    std, lim = free_ports(2)
    servers = "".join("   - 127.0.0.1:%d:1\n" % p for p in ports)
    conf = "mstd:\n  listen: 127.0.0.1:%d\n  hash: md5\n  timeout: 4000\n  servers:\n%s" % (
        std, servers)
    conf += ("mlim:\n  listen: 127.0.0.1:%d\n  hash: md5\n  timeout: 4000\n"
             "  max_bulk_length: 100000\n  max_arguments: 100\n  max_pipeline: 32\n"
             "  max_client_buffer: 2000000\n  client_connections: 6\n  servers:\n%s"
             % (lim, servers))
    proc = env.proxy(BIN, conf, [std, lim], workers=1)
    rng = random.Random(SEED + 7)
    bys = [Bystander(std, False, "mstd"), Bystander(lim, False, "mlim")]
    for b in bys:
        b.start()
    time.sleep(0.2)
    start = CASES["count"]

    # client_connections: 5 more beside the bystander, the 7th refused.
    CASES["count"] += 1
    held = [Conn(lim) for _ in range(5)]
    for h in held:
        check(mc_call(h, b"version\r\n").startswith(b"VERSION "), "a client within the limit")
    extra = Conn(lim, timeout=CASE_TIMEOUT)
    check_eq(extra.mc_reply(), b"SERVER_ERROR max number of clients reached\r\n",
             "client over the limit")
    check(extra.is_closed(CASE_TIMEOUT), "the refused client is closed")
    for h in held:
        h.close()

    # Line errors that memcached answers and goes on from: the same replies
    # as a direct memcached, each on a fresh connection, which stays open.
    same_as_memcached = [
        b"get \r\n", b"get\r\n", b"gets\r\n", b"bogus\r\n", b"\r\n", b"GET a\r\n",
        b"get " + b"k" * 251 + b"\r\n", b"incr n notanumber\r\n", b"incr n -1\r\n",
        b"incr n 99999999999999999999999\r\n", b"touch k\r\n", b"touch k soon\r\n",
        b"delete a b c\r\n", b"delete k 1\r\n", b"set k 0 0 -1\r\n", b"decr\r\n", b"gat\r\n",
        b"gat abc k\r\n", b"incr\r\n", b"get a  b\r\n", b"get a\tb\r\n",
        b"set k 0 0 01\r\nv\r\n", b"delete\r\n", b"set k 0 0\r\n", b"cas k 0 0 1\r\nv\r\n",
        b"set k 0 0 1 2 3\r\nv\r\n", b"gats 1\r\n", b"gat x\r\n", b"gats x k\r\n",
        b"incr k\r\n", b"incr nokey 1\r\n", b"delete k 0\r\n", b"delete k noreply extra\r\n",
        b"set k 0 0 1 noreply\r\na\r\nget k\r\n", b"append k 0 0 1\r\nz\r\nget k\r\n",
        b"quit extra\r\n", b"set k 0 0 x\r\nab\r\n",
    ]
    # Where the proxy answers its own error (memcached may differ: it takes
    # extra tokens, waits for 100 GB of data, has commands the proxy does not
    # route): some error, and the connection goes on. (flush_all, stats and
    # the meta commands are served: test_memcache_meta.py.)
    own_errors = [
        b"set k 0 0 99999999999\r\n", b"touch k 1 2\r\n", b"verbosity\r\n",
        b"stats items\r\n", b"shutdown\r\n", b"slabs automove 1\r\n",
    ]
    # Departures from memcached on purpose (docs/proxy.md), answered exactly so:
    # a bad storage line's data block is dropped, not run as a command (a value
    # "delete k" would delete k); a data block longer than announced closes the
    # client; flags beyond 32 bits are refused, not cut.
    departures = [
        (b"set k x 0 8\r\ndelete k\r\n", [b"CLIENT_ERROR bad command line format"]),
        (b"set " + b"k" * 251 + b" 0 0 1\r\nv\r\n", [b"CLIENT_ERROR bad command line format"]),
        (b"set k 0 0 1\r\nab\r\n", [b"CLIENT_ERROR bad data chunk", "closed"]),
        (b"set k 4294967296 0 1\r\na\r\n", [b"CLIENT_ERROR bad command line format"]),
        # memcached reads a line only up to a NUL: "set a" would get ERROR and
        # the data line another, one reply too many on the shared connection
        (b"set a\x00b 0 0 1\r\nv\r\n", [b"CLIENT_ERROR bad command line format"]),
        (b"get a\x00b c\r\n", [b"CLIENT_ERROR bad command line format"]),
        (b"incr a\x00b 1\r\n", [b"CLIENT_ERROR bad command line format"]),
    ]

    def replies_then_version(port, data):
        c = Conn(port, timeout=CASE_TIMEOUT)
        c.send(b"set k 0 0 1\r\n5\r\n")
        check_eq(c.line(), b"STORED", "k set before %r" % data[:40])
        c.send(data + b"version\r\n")
        out = []
        while True:
            try:
                line = c.line()
            except Closed:
                out.append("closed")
                break
            if line.startswith(b"VERSION "):
                break
            out.append(line)
        c.close()
        return out

    for data in same_as_memcached:
        CASES["count"] += 1
        w = replies_then_version(ref_port, data)
        g = replies_then_version(std, data)
        check_eq(g, w, "reply to %r, as memcached's" % data[:40])
        alive(proc, repr(data[:40]))
    for data, want in departures:
        CASES["count"] += 1
        check_eq(replies_then_version(std, data), want, "the proxy's own answer to %r" % data[:40])
        alive(proc, repr(data[:40]))
    check_eq(mc_call(Conn(std), b"get k\r\n", True)[:6], b"VALUE ",
             "a data block 'delete k' did not run")
    # After lines with a NUL, every server connection is still in step: each
    # key's value comes back, from each server.
    c = Conn(std, timeout=CASE_TIMEOUT)
    c.send(b"".join(b"set a\x00%d 0 0 1\r\nv\r\nset s%d 0 0 2\r\n%02d\r\n" % (i, i, i)
                    for i in range(30)))
    for i in range(30):
        check_eq(c.mc_reply(), b"CLIENT_ERROR bad command line format\r\n", "NUL line %d" % i)
        check_eq(c.mc_reply(), b"STORED\r\n", "set s%d after a NUL line" % i)
    for i in range(30):
        check_eq(mc_call(c, b"get s%d\r\n" % i, True), b"VALUE s%d 0 2\r\n%02d\r\nEND\r\n" % (i, i),
                 "s%d in step" % i)
    c.close()
    for data in own_errors:
        CASES["count"] += 1
        g = replies_then_version(std, data)
        # (a storage line too bad to trust its length runs its data line as
        # a command, as memcached does: a second error)
        check(1 <= len(g) <= data.count(b"\n"), "one reply per line to %r: %r" % (data[:40], g))
        check(all(x == b"ERROR" or x.startswith((b"CLIENT_ERROR ", b"SERVER_ERROR ")) for x in g),
              "errors for %r: %r" % (data[:40], g))
        alive(proc, repr(data[:40]))

    # An unknown command mid-pipeline: an error in its turn.
    CASES["count"] += 1
    c = Conn(std, timeout=CASE_TIMEOUT)
    c.send(b"set u 0 0 1\r\n1\r\nbogus\r\nget u\r\nstats items\r\nincr u 5\r\nshutdown\r\n"
           b"get u nope\r\n")
    got = [c.mc_reply(), c.mc_reply(), c.mc_reply(True), c.mc_reply(), c.mc_reply(),
           c.mc_reply(), c.mc_reply(True)]
    check_eq(got[0], b"STORED\r\n", "set")
    check_eq(got[1], b"ERROR\r\n", "unknown command")
    check_eq(got[2], b"VALUE u 0 1\r\n1\r\nEND\r\n", "get after it")
    check(got[3].startswith(b"SERVER_ERROR") or got[3] == b"ERROR\r\n", "stats: %r" % got[3])
    check_eq(got[4], b"6\r\n", "incr")
    check(got[5].startswith(b"SERVER_ERROR") or got[5] == b"ERROR\r\n", "shutdown")
    check_eq(got[6], b"VALUE u 0 1\r\n6\r\nEND\r\n", "multi-get at the end")
    c.close()

    # Values over max_bulk_length: SERVER_ERROR, the data skipped, open.
    for size in (100001, 1 << 20):
        CASES["count"] += 1
        c = Conn(lim, timeout=CASE_TIMEOUT)
        t = c.send_async(b"set big 0 0 %d\r\n" % size + b"v" * size + b"\r\nget big\r\n")
        check_eq(c.mc_reply(), b"SERVER_ERROR object too large for cache\r\n", "value too big")
        check_eq(c.mc_reply(True), b"END\r\n", "its data is skipped, not run")
        t.join()
        c.close()
    CASES["count"] += 1
    c = Conn(lim, timeout=CASE_TIMEOUT)
    check_eq(mc_call(c, b"set big 0 0 100000\r\n" + b"v" * 100000 + b"\r\n"), b"STORED\r\n",
             "a value at the limit")
    too_many = b"get " + b" ".join(b"k%d" % i for i in range(101)) + b"\r\n"
    check_eq(mc_call(c, too_many, True), b"CLIENT_ERROR too many keys\r\n", "101 keys")
    hundred = b"get " + b" ".join(b"k%d" % i for i in range(100)) + b"\r\n"
    check_eq(mc_call(c, hundred, True), b"END\r\n", "100 keys")
    c.close()

    # Framing errors: an error, then close.
    framing = [
        ("bad data chunk", b"set k 0 0 5\r\nabcdefgh\r\n"),
        ("data without CR", b"set k 0 0 1\r\nv\n\n"),
        ("a 1 MB key", b"get " + b"k" * (1 << 20) + b"\r\n"),
        ("an endless line", b"get " + b"k " * (1 << 20)),
    ]
    for what, data in framing:
        CASES["count"] += 1
        c = Conn(std, timeout=CASE_TIMEOUT)
        c.send_async(data)
        r = read_until_closed(c)
        check(r.startswith((b"CLIENT_ERROR", b"SERVER_ERROR")), "%s: error %r" % (what, r[:80]))
        c.close()
        alive(proc, what)

    # Pipeline depth: 3000 requests in one write against max_pipeline 32.
    CASES["count"] += 1
    c = Conn(lim, timeout=CASE_TIMEOUT)
    reqs = b"".join(b"set d%d 0 0 %d\r\n%d\r\nget d%d\r\n" % (i % 50, len(b"%d" % i), i, i % 50)
                    for i in range(1500))
    t = c.send_async(reqs)
    for i in range(1500):
        check_eq(c.mc_reply(), b"STORED\r\n", "set %d" % i)
        v = b"%d" % i
        check_eq(c.mc_reply(True), b"VALUE d%d 0 %d\r\n%s\r\nEND\r\n" % (i % 50, len(v), v),
                 "get %d" % i)
    t.join()
    c.close()

    # A client that never reads is closed at max_client_buffer: 32 requests
    # in flight (max_pipeline) of a 512 KB value (stored on every server
    # directly) are far more than 2 MB and the sockets' buffers.
    CASES["count"] += 1
    huge = b"h" * (512 << 10)
    for p in ports:
        check_eq(mc_call(Conn(p), b"set huge 0 0 %d\r\n%s\r\n" % (len(huge), huge)),
                 b"STORED\r\n", "a 512 KB value")
    c = Conn(lim, timeout=CASE_TIMEOUT)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    t = c.send_async(b"get huge\r\n" * 1000)  # 500 MB of replies
    time.sleep(1.0)
    read_until_closed(c, 30, limit=40 << 20)
    t.join()
    c.close()
    alive(proc, "a client that never reads")

    # Clients gone mid-flight, EOF mid-command, garbage.
    for port in (std, lim):
        CASES["count"] += 1
        c = Conn(port)
        c.send(b"get a b c d e f g\r\nset x 0 0 1\r\n1\r\n" * 300)
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    for data in (b"set k 0 0 10\r\nabc", b"get k", b"set k 0 0 1"):
        expect_close(std, data, "EOF inside a command", is_redis=False)
    valid = (b"set g1 0 0 1\r\nv\r\nget g1 g2 g3\r\ngets g1\r\nincr g1 1\r\ndelete g2\r\n"
             b"gat 10 g1 g3\r\ntouch g1 10\r\nappend g1 0 0 2\r\nxx\r\n")
    for i in range(60):
        if i < 10:
            data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8192)))
        else:
            data = mutate(rng, valid * rng.randint(1, 3))
        expect_close(std if i % 2 else lim, data, "garbage %d" % i, is_redis=False)
    alive(proc, "garbage")

    for b in bys:
        b.stop()
        check_eq(b.errors, [], "bystander %s: every reply right and in order" % b.name)
        check(b.rounds >= 5, "bystander %s kept going (%d rounds)" % (b.name, b.rounds))
    print("  memcached: %d cases; bystanders %d and %d replies, slowest batch %.2fs"
          % (CASES["count"] - start, bys[0].replies, bys[1].replies,
             max(b.slowest for b in bys)))


if __name__ == "__main__":
    print("CHASH_TEST_SEED=%d (set it to replay this run)" % SEED)
    run([test_redis_corpus, test_memcache_corpus])

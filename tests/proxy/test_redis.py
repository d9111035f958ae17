#!/usr/bin/env python3
"""test_redis.py CHASH_PROXY - chash-proxy in front of three real redis-servers.

Every supported command runs through the proxy and against one direct
redis-server (the reference), alone and pipelined, and the replies must be
identical; then splits and merges, hash tags, connection commands, AUTH and
SELECT injection, unsupported commands mid-pipeline, many clients at once,
per-key MGET errors with a server down, timeouts and ejection.
"""
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Closed, Conn, check, check_eq, enc, free_port, is_sanitized,  # noqa: E402
                     proxy_binary, run)

BIN = proxy_binary()

# Deterministic commands (no randomness, clock or hash-seed order in the
# reply); multi-key ones use the {t} hash tag.
COMMANDS = [
    ("SET", "s1", "hello"), ("GET", "s1"), ("APPEND", "s1", " world"), ("STRLEN", "s1"),
    ("GETRANGE", "s1", 0, 4), ("SETRANGE", "s1", 0, "J"), ("GET", "s1"), ("SUBSTR", "s1", 0, 2),
    ("SET", "n", 10), ("INCR", "n"), ("INCRBY", "n", 5), ("DECR", "n"), ("DECRBY", "n", 2),
    ("INCRBYFLOAT", "n", "1.5"), ("GET", "n"), ("SETNX", "s1", "x"), ("SETNX", "s2", "y"),
    ("GETSET", "s2", "z"), ("GETDEL", "s2"), ("GET", "s2"), ("SETEX", "s3", 100, "v"),
    ("PSETEX", "s4", 100000, "v"), ("EXPIRE", "s3", 1000), ("PERSIST", "s3"), ("TTL", "s3"),
    ("PTTL", "s3"), ("EXPIRETIME", "s3"), ("PEXPIRETIME", "s3"), ("EXPIREAT", "s5", 1),
    ("PEXPIREAT", "s5", 1), ("PEXPIRE", "s5", 100), ("TYPE", "s3"), ("TYPE", "nokey"),
    ("GETEX", "s1"), ("SET", "s6", "v", "NX"), ("SET", "s6", "w", "XX", "GET"),
    ("SETBIT", "b", 7, 1), ("GETBIT", "b", 7), ("BITCOUNT", "b"), ("BITPOS", "b", 1),
    ("BITFIELD", "b", "GET", "u8", 0), ("BITFIELD_RO", "b", "GET", "u4", 0),
    ("HSET", "h", "f1", "v1", "f2", "v2"), ("HGET", "h", "f1"), ("HMGET", "h", "f1", "f2", "f3"),
    ("HGETALL", "h"), ("HKEYS", "h"), ("HVALS", "h"), ("HLEN", "h"), ("HEXISTS", "h", "f1"),
    ("HDEL", "h", "f2"), ("HINCRBY", "h", "c", 3), ("HINCRBYFLOAT", "h", "d", "1.5"),
    ("HSETNX", "h", "f1", "x"), ("HSTRLEN", "h", "f1"), ("HMSET", "h", "a", 1, "b", 2),
    ("HSCAN", "h", 0), ("HRANDFIELD", "nohash"),
    ("RPUSH", "l", "a", "b", "c"), ("LPUSH", "l", "z"), ("LRANGE", "l", 0, -1), ("LLEN", "l"),
    ("LINDEX", "l", 1), ("LSET", "l", 0, "y"), ("LINSERT", "l", "BEFORE", "b", "q"),
    ("LREM", "l", 1, "q"), ("LTRIM", "l", 0, 2), ("LPOP", "l"), ("RPOP", "l"), ("LPOS", "l", "b"),
    ("LPUSHX", "l", "w"), ("RPUSHX", "l", "w"), ("LRANGE", "l", 0, -1),
    ("SADD", "si", 3, 1, 2), ("SMEMBERS", "si"), ("SCARD", "si"), ("SISMEMBER", "si", 1),
    ("SMISMEMBER", "si", 1, 9), ("SREM", "si", 3), ("SADD", "one", "x"), ("SPOP", "one"),
    ("SRANDMEMBER", "nosuchset"), ("SSCAN", "si", 0), ("SORT", "si"), ("SORT_RO", "si"),
    ("ZADD", "z", 1, "a", 2, "b", 3, "c"), ("ZRANGE", "z", 0, -1, "WITHSCORES"),
    ("ZREVRANGE", "z", 0, -1), ("ZRANGEBYSCORE", "z", 1, 2), ("ZREVRANGEBYSCORE", "z", 3, 1),
    ("ZRANK", "z", "b"), ("ZREVRANK", "z", "b"), ("ZSCORE", "z", "a"), ("ZMSCORE", "z", "a", "q"),
    ("ZINCRBY", "z", 2, "a"), ("ZCARD", "z"), ("ZCOUNT", "z", 0, 10), ("ZLEXCOUNT", "z", "-", "+"),
    ("ZRANGEBYLEX", "z", "-", "+"), ("ZREVRANGEBYLEX", "z", "+", "-"), ("ZREM", "z", "c"),
    ("ZSCAN", "z", 0), ("ZPOPMIN", "z"), ("ZPOPMAX", "z"), ("ZADD", "z", 5, "e", 6, "f"),
    ("ZREMRANGEBYRANK", "z", 0, 0), ("ZREMRANGEBYSCORE", "z", 0, 1),
    ("ZREMRANGEBYLEX", "z", "-", "+"), ("ZRANDMEMBER", "nozset"),
    ("PFADD", "hl", "a", "b", "c"), ("PFCOUNT", "hl"),
    ("GEOADD", "g", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
    ("GEODIST", "g", "Palermo", "Catania"), ("GEOHASH", "g", "Palermo"), ("GEOPOS", "g", "Palermo"),
    ("GEOSEARCH", "g", "FROMMEMBER", "Palermo", "BYRADIUS", 200, "km", "ASC"),
    ("GEORADIUS", "g", 15, 37, 200, "km", "ASC"), ("GEORADIUSBYMEMBER", "g", "Palermo", 10, "km"),
    ("GEORADIUS_RO", "g", 15, 37, 200, "km", "ASC"),
    ("GEORADIUSBYMEMBER_RO", "g", "Palermo", 10, "km"),
    ("XADD", "x", "1-1", "f", "v"), ("XADD", "x", "2-1", "f", "w"), ("XLEN", "x"),
    ("XRANGE", "x", "-", "+"), ("XREVRANGE", "x", "+", "-"), ("XDEL", "x", "1-1"),
    ("XGROUP", "CREATE", "x", "grp", "0"), ("XACK", "x", "grp", "2-1"), ("XPENDING", "x", "grp"),
    ("XTRIM", "x", "MAXLEN", 1), ("XSETID", "x", "5-0"),
    ("DUMP", "s1"), ("RESTORE", "s1copy", 0, None), ("GET", "s1copy"),
    # several keys on one server thanks to the hash tag
    ("SADD", "{t}a", 1, 2, 3), ("SADD", "{t}b", 2, 3, 4), ("SINTER", "{t}a", "{t}b"),
    ("SUNION", "{t}a", "{t}b"), ("SDIFF", "{t}a", "{t}b"), ("SINTERSTORE", "{t}c", "{t}a", "{t}b"),
    ("SUNIONSTORE", "{t}u", "{t}a", "{t}b"), ("SDIFFSTORE", "{t}d", "{t}a", "{t}b"),
    ("SINTERCARD", 2, "{t}a", "{t}b"), ("SMOVE", "{t}a", "{t}b", 1), ("SMEMBERS", "{t}b"),
    ("RPUSH", "{t}l", 1, 2), ("RPOPLPUSH", "{t}l", "{t}l2"), ("LMOVE", "{t}l2", "{t}l", "LEFT",
                                                                   "RIGHT"),
    ("LRANGE", "{t}l", 0, -1), ("LMPOP", 2, "{t}l", "{t}l2", "LEFT"),
    ("RENAME", "{t}c", "{t}e"), ("RENAMENX", "{t}e", "{t}f"), ("COPY", "{t}f", "{t}g"),
    ("ZADD", "{t}z1", 1, "a", 2, "b"), ("ZADD", "{t}z2", 5, "a"),
    ("ZUNIONSTORE", "{t}z3", 2, "{t}z1", "{t}z2"), ("ZINTERSTORE", "{t}z4", 2, "{t}z1", "{t}z2"),
    ("ZDIFFSTORE", "{t}z5", 2, "{t}z1", "{t}z2"), ("ZUNION", 2, "{t}z1", "{t}z2", "WITHSCORES"),
    ("ZINTER", 2, "{t}z1", "{t}z2"), ("ZDIFF", 2, "{t}z1", "{t}z2"),
    ("ZINTERCARD", 2, "{t}z1", "{t}z2"), ("ZRANGESTORE", "{t}z6", "{t}z1", 0, -1),
    ("ZMPOP", 1, "{t}z6", "MIN"),
    ("PFADD", "{t}h1", "a"), ("PFADD", "{t}h2", "b"), ("PFMERGE", "{t}h3", "{t}h1", "{t}h2"),
    ("PFCOUNT", "{t}h1", "{t}h2"), ("SET", "{t}b1", "ab"), ("SET", "{t}b2", "cd"),
    ("BITOP", "AND", "{t}b3", "{t}b1", "{t}b2"), ("GET", "{t}b3"), ("LCS", "{t}b1", "{t}b2"),
    ("MSETNX", "{t}m1", 1, "{t}m2", 2), ("GEOSEARCHSTORE", "{t}g2", "{t}g", "FROMLONLAT", 15, 37,
                                         "BYRADIUS", 10, "km"),
    ("EVAL", "return redis.call('get', KEYS[1])", 1, "s1"),
    ("EVAL", "return {KEYS[1], KEYS[2], ARGV[1]}", 2, "{t}x", "{t}y", "arg"),
    ("EVAL_RO", "return redis.call('get', KEYS[1])", 1, "s1"),
    # split across servers and merged
    ("MSET",) + tuple(x for i in range(40) for x in ("k%d" % i, "v%d" % i)),
    ("MGET",) + tuple("k%d" % i for i in range(0, 44, 3)) + ("k5", "k5"),
    ("EXISTS", "k1", "k2", "k1", "nope", "k39"), ("TOUCH", "k1", "k2", "nope"),
    ("DEL", "k1", "k2", "nope", "k3"), ("UNLINK", "k4", "k5", "k4"), ("MGET", "k4", "k6", "k7"),
    ("MGET", "k8"), ("DEL", "k9"),
    ("PING",), ("PING", "hi"), ("ECHO", "echo me"), ("SELECT", 0),
]


def run_seq(conn, commands):
    """One command at a time; RESTORE gets the payload of the last DUMP."""
    out = []
    dumped = None
    for c in commands:
        if c[0] == "RESTORE":
            c = c[:3] + (dumped,)
        r = conn.call(*c)
        if c[0] == "DUMP":
            dumped = r
        out.append(r)
    return out


def flush(ports):
    for p in ports:
        c = Conn(p)
        check_eq(c.call("FLUSHALL"), b"+OK", "flushall")
        c.close()


def three_redis_pool(env, extra="", servers=3, port=None, hash_name="md5"):
    """A ketama pool; md5 spreads short, similar keys (k1, k2...) where
    nutcracker's default fnv1a_64 clusters them."""
    ports = [env.redis()[0] for _ in range(servers)]
    listen = port or free_port()
    conf = ("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: %s\n"
            "  hash_tag: \"{}\"\n  distribution: ketama\n%s  servers:\n"
            % (listen, hash_name, extra))
    conf += "".join("   - 127.0.0.1:%d:1\n" % p for p in ports)
    return ports, listen, conf


def test_every_command(env):
    ports, listen, conf = three_redis_pool(env)
    ref_port = env.redis()[0]
    env.proxy(BIN, conf, [listen])
    ref = Conn(ref_port)
    cmds = COMMANDS
    # one at a time
    px = Conn(listen)
    want = run_seq(ref, cmds)
    got = run_seq(px, cmds)
    for c, g, w in zip(cmds, got, want):
        check_eq(g, w, "reply to %r" % (c,))
    # every server got some keys
    for p in ports:
        c = Conn(p)
        check(c.call("DBSIZE") > 0, "server %d holds keys" % p)
    # pipelined, all in one write
    cmds = [c for c in cmds if c[0] != "RESTORE"]
    flush(ports + [ref_port])
    want = ref.pipeline(cmds)
    got = px.pipeline(cmds)
    for c, g, w in zip(cmds, got, want):
        check_eq(g, w, "pipelined reply to %r" % (c,))
    # byte by byte
    flush(ports + [ref_port])
    want = ref.pipeline(cmds[:30])
    slow = Conn(listen)
    data = b"".join(enc(*c) for c in cmds[:30])
    for i in range(len(data)):
        slow.send(data[i:i + 1])
    got = [slow.reply() for _ in cmds[:30]]
    check_eq(got, want, "byte-by-byte pipeline")
    # inline commands
    px.send(b"SET inl  value\r\nGET inl\r\nPING\r\n\r\nMGET inl k1\n")
    check_eq([px.reply() for _ in range(4)], [b"+OK", b"value", b"+PONG", [b"value", None]],
             "inline")


def test_split_and_tags(env):
    ports, listen, conf = three_redis_pool(env)
    env.proxy(BIN, conf, [listen])
    px = Conn(listen)
    n = 1000
    args = []
    for i in range(n):
        args += ["key:%d" % i, "val:%d" % i]
    check_eq(px.call("MSET", *args), b"+OK", "wide MSET")
    counts = [Conn(p).call("DBSIZE") for p in ports]
    check_eq(sum(counts), n, "keys stored once")
    check(min(counts) > n // 6, "keys spread: %r" % counts)
    keys = ["key:%d" % i for i in range(n - 1, -1, -1)] + ["missing"]
    got = px.call("MGET", *keys)
    check_eq(got, [b"val:%d" % i for i in range(n - 1, -1, -1)] + [None], "wide MGET order")
    check_eq(px.call("EXISTS", *keys), n, "EXISTS sum")
    check_eq(px.call("DEL", *keys[:500]), 500, "DEL sum")
    check_eq(px.call("EXISTS", *keys), n - 500, "EXISTS after DEL")
    # hash tags: every {user:7} key on one server
    tagged = ["{user:7}:%d" % i for i in range(50)]
    px.call("MSET", *[x for k in tagged for x in (k, "x")])
    holders = [p for p in ports if Conn(p).call("EXISTS", *tagged) > 0]
    check_eq(len(holders), 1, "a hash tag maps to one server")
    check_eq(Conn(holders[0]).call("EXISTS", *tagged), 50, "all tagged keys there")
    check_eq(px.call("SINTERSTORE", "{user:7}:s", "{user:7}:1", "{user:7}:2")[0], "err",
             "wrong type passes through")
    # multi-key commands across servers are refused, clearly
    # (two keys the proxy itself places on different servers: ports, and so
    # placement, differ from run to run)
    owner = {}
    for i in range(1, 100):
        owner.setdefault(px.call("PROXY", "LOCATE", "key:%d" % i)[0][0], "key:%d" % i)
    apart = sorted(owner.values())[:2]
    check_eq(len(apart), 2, "keys on two servers")
    r = px.call("SINTER", *apart)
    check(isinstance(r, tuple) and r[1].startswith("CROSSSLOT"), "cross-server SINTER: %r" % (r,))
    r = px.call("RENAME", "key:100", "key:101")
    check(r == b"+OK" or r[1].startswith("CROSSSLOT"), "RENAME: %r" % (r,))
    # odd-arity MSET, no-key EVAL
    check_eq(px.call("MSET", "a", "1", "b")[0], "err", "odd MSET")
    check_eq(px.call("EVAL", "return 1", 0)[0], "err", "EVAL without keys")
    check_eq(px.call("PING"), b"+PONG", "still open")


def test_connection_commands(env):
    ports, listen, conf = three_redis_pool(env)
    env.proxy(BIN, conf, [listen])
    px = Conn(listen)
    hello = px.call("HELLO", "2")
    check(isinstance(hello, list) and hello[0] == b"server" and hello[5] == 2, "HELLO 2")
    check_eq(px.call("HELLO")[4], b"proto", "HELLO")
    check(px.call("HELLO", "3")[1].startswith("NOPROTO"), "HELLO 3")
    check_eq(px.call("SELECT", "0"), b"+OK", "SELECT configured db")
    check_eq(px.call("SELECT", "1"), b"+OK", "SELECT another db (test_held.py tests them)")
    check_eq(px.call("SELECT", "0"), b"+OK", "and back")
    check(px.call("AUTH", "x")[1].startswith("ERR AUTH"), "AUTH without password")
    # refused and unknown commands mid-pipeline: an error in its turn, connection open
    got = px.pipeline([("SET", "a", "1"), ("DEBUG", "SLEEP", "0"), ("GET", "a"), ("MONITOR",),
                       ("BGSAVE",), ("CLUSTER", "MEET", "h", "1"), ("CONFIG", "NOSUCH"),
                       ("GET", "a"), ("NOSUCH\r\nCMD",), ("PING",)])
    check_eq(got[0], b"+OK", "SET")
    check_eq(got[1], ("err", "ERR the proxy refuses 'debug': DEBUG acts on one server (DEBUG "
                             "OBJECT key is served)"), "DEBUG SLEEP")
    check_eq(got[2], b"1", "GET after DEBUG")
    for i in (3, 4, 5):
        check(got[i][1].startswith("ERR the proxy refuses '"), "refused %r" % (got[i],))
    check_eq(got[6], ("err", "ERR unknown subcommand 'NOSUCH'. Try CONFIG HELP."), "CONFIG NOSUCH")
    check_eq(got[7], b"1", "GET after them")
    check_eq(got[8], ("err", "ERR unknown command 'NOSUCH??CMD', with args beginning with: "),
             "sanitised name")
    check_eq(got[9], b"+PONG", "PING at the end")
    check_eq(px.call("GET")[0], "err", "GET without key")
    # Command names in any case; a name that only starts like one is not it.
    got = px.pipeline([("gEt", "a"), ("bitfield_RO", "a", "GET", "u8", "0"), ("GET\0", "a"),
                       ("GETX", "a"), ("GE", "a"), ("x" * 25, "a"), ("sEt", "a", "2"),
                       ("get", "a")])
    check_eq(got[0], b"1", "gEt")
    check_eq(got[1], [49], "bitfield_RO")
    for i in (2, 3, 4, 5):
        check(got[i][1].startswith("ERR unknown command"), "not a command: %r" % (got[i],))
    check_eq(got[6:], [b"+OK", b"2"], "sEt, get")
    check_eq(px.call("QUIT"), b"+OK", "QUIT")
    check(px.is_closed(), "closed after QUIT")
    # QUIT after pipelined work still delivers every earlier reply
    c = Conn(listen)
    c.send(enc("SET", "q", "1") + enc("GET", "q") + enc("QUIT") + enc("GET", "q"))
    check_eq([c.reply(), c.reply(), c.reply()], [b"+OK", b"1", b"+OK"], "QUIT in pipeline")
    check(c.is_closed(), "closed after pipelined QUIT")
    check(c.buf == b"", "nothing after QUIT")
    # a half-closed client still gets its replies
    c = Conn(listen)
    c.send(enc("SET", "h", "2") + enc("GET", "h"))
    c.s.shutdown(socket.SHUT_WR)
    check_eq([c.reply(), c.reply()], [b"+OK", b"2"], "half-closed client")
    check(c.is_closed(), "closed after EOF")


def test_auth_and_db(env):
    ports = [env.redis(["--requirepass", "s3cret"])[0] for _ in range(2)]
    listen = free_port()
    conf = ("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  redis_auth: s3cret\n"
            "  redis_db: 3\n  preconnect: true\n  servers:\n" % listen)
    conf += "".join("   - 127.0.0.1:%d:1\n" % p for p in ports)
    env.proxy(BIN, conf, [listen])
    px = Conn(listen)
    check(px.call("GET", "a")[1].startswith("NOAUTH"), "NOAUTH before AUTH")
    check(px.call("AUTH", "wrong")[1].startswith("WRONGPASS"), "wrong password")
    check(px.call("AUTH", "s3cre")[1].startswith("WRONGPASS"), "prefix of the password")
    check(px.call("AUTH", "s3cret!")[1].startswith("WRONGPASS"), "longer password")
    check(px.call("AUTH", "bob", "s3cret")[1].startswith("WRONGPASS"), "other user")
    check_eq(px.call("AUTH", "s3cret"), b"+OK", "AUTH")
    for i in range(20):
        check_eq(px.call("SET", "db3:%d" % i, i), b"+OK", "SET after AUTH")
    # the servers got AUTH and SELECT 3 first: the keys are in db 3
    total = 0
    for p in ports:
        c = Conn(p)
        c.call("AUTH", "s3cret")
        check_eq(c.call("DBSIZE"), 0, "db 0 empty")
        c.call("SELECT", 3)
        total += c.call("DBSIZE")
    check_eq(total, 20, "keys in db 3")
    check_eq(px.call("SELECT", 3), b"+OK", "SELECT 3")
    # Another database, on servers with a password: AUTH comes first there.
    check_eq(px.pipeline([("SELECT", 0), ("SET", "db0key", "z"), ("SELECT", 3),
                          ("GET", "db0key")]), [b"+OK", b"+OK", b"+OK", None], "SELECT 0")
    c2 = Conn(listen)
    check(c2.call("HELLO", "2")[1].startswith("NOAUTH"), "HELLO without AUTH")
    check_eq(c2.call("HELLO", "2", "AUTH", "default", "s3cret")[0], b"server", "HELLO AUTH")
    check_eq(c2.call("GET", "db3:4"), b"4", "GET after HELLO AUTH")


def worker_clients(listen, count, rounds, errors):
    try:
        c = Conn(listen)
        for r in range(rounds):
            cmds = []
            for i in range(count):
                cmds.append(("SET", "c:%d:%d" % (id(c), i), "%d:%d" % (r, i)))
                cmds.append(("GET", "c:%d:%d" % (id(c), i)))
                if i % 10 == 0:
                    cmds.append(("MGET", "c:%d:%d" % (id(c), i), "c:%d:%d" % (id(c), i // 2)))
            got = c.pipeline(cmds)
            for cmd, g in zip(cmds, got):
                if cmd[0] == "SET" and g != b"+OK":
                    errors.append((cmd, g))
                elif cmd[0] == "GET" and g != b"%d:%s" % (r, cmd[1].split(":")[2].encode()):
                    errors.append((cmd, g))
                elif cmd[0] == "MGET":
                    i = int(cmd[1].split(":")[2])
                    if g != [b"%d:%d" % (r, i), b"%d:%d" % (r, i // 2)]:
                        errors.append((cmd, g))
        c.close()
    except Exception as e:  # noqa: BLE001
        errors.append(repr(e))


def test_many_clients_pipelined(env):
    ports, listen, conf = three_redis_pool(env, "  server_connections: 2\n", servers=4)
    env.proxy(BIN, conf, [listen], workers=2)
    errors = []
    threads = [threading.Thread(target=worker_clients, args=(listen, 500, 4, errors))
               for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check_eq(errors[:3], [], "lost or misordered replies")
    # 20000 requests in one write
    c = Conn(listen)
    cmds = [("INCR", "ctr:%d" % (i % 97)) for i in range(20000)]
    got = c.pipeline(cmds)
    seen = {}
    for cmd, g in zip(cmds, got):
        seen[cmd[1]] = seen.get(cmd[1], 0) + 1
        if g != seen[cmd[1]]:
            check(False, "INCR order: %r gave %r" % (cmd, g))
    check_eq(len(got), 20000, "20000 replies")


def test_server_down(env):
    ports, listen, conf = three_redis_pool(env, "  timeout: 300\n")
    env.proxy(BIN, conf, [listen])
    px = Conn(listen)
    keys = ["k%d" % i for i in range(60)]
    px.call("MSET", *[x for k in keys for x in (k, k.upper())])
    owner = {}
    for p in ports:
        c = Conn(p)
        for k in keys:
            if c.call("EXISTS", k):
                owner[k] = p
    victim = ports[1]
    for p in env.procs:
        if "redis-server" in p.args[0] and str(victim) in p.args:
            env.stop(p, force=True)
    got = px.call("MGET", *keys)
    check_eq(len(got), len(keys), "MGET length with a server down")
    for k, g in zip(keys, got):
        if owner[k] == victim:
            check(isinstance(g, tuple) and g[0] == "err", "error element for %s: %r" % (k, g))
        else:
            check_eq(g, k.upper().encode(), "value for %s" % k)
    r = px.call("GET", next(k for k in keys if owner[k] == victim))
    check_eq(r[0], "err", "GET on the down server")
    check(isinstance(px.call("DEL", *keys), tuple), "DEL with a server down is an error")
    check_eq(px.call("PING"), b"+PONG", "client still open")


def test_timeout_and_eject(env):
    # A server that accepts and never answers.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    hole_port = hole.getsockname()[1]
    live = env.redis()[0]
    listen = free_port()
    conf = ("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  timeout: 200\n  hash: md5\n"
            "  auto_eject_hosts: true\n  server_failure_limit: 1\n"
            "  server_retry_timeout: 60000\n  servers:\n   - 127.0.0.1:%d:1\n"
            "   - 127.0.0.1:%d:1\n" % (listen, hole_port, live))
    env.proxy(BIN, conf, [listen])
    px = Conn(listen)
    t0 = time.time()
    results = px.pipeline([("GET", "k%d" % i) for i in range(40)])
    took = time.time() - t0
    timed_out = [r for r in results if isinstance(r, tuple)]
    check(timed_out, "some keys went to the silent server")
    check(all(r[1] == "ERR Connection timed out" for r in timed_out), "timeout errors")
    check(took < 2.0, "timed out promptly (%.2fs)" % took)
    # ejected now: every key goes to the live server
    got = px.pipeline([("SET", "k%d" % i, i) for i in range(40)])
    check_eq(got, [b"+OK"] * 40, "after ejection")
    check_eq(Conn(live).call("DBSIZE"), 40, "all keys on the live server")
    hole.close()


def test_late_request(env):
    """A late request fails alone: the server connection stays up, a request
    sent behind it on the same connection is answered, and the late reply,
    when it comes, is dropped rather than given to the next request."""
    port, server = env.redis()
    listen = free_port()
    conf = ("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  timeout: 1000\n"
            "  server_failure_limit: 100\n  servers:\n   - 127.0.0.1:%d:1\n" % (listen, port))
    env.proxy(BIN, conf, [listen])
    a, b = Conn(listen), Conn(listen)
    check_eq(a.call("SET", "ka", "old"), b"+OK", "SET before")
    check_eq(b.call("SET", "kb", "vb"), b"+OK", "SET before")
    accepted = Conn(port).call("INFO", "stats")
    before = int(accepted.split(b"total_connections_received:")[1].split(b"\r\n")[0])
    server.send_signal(signal.SIGSTOP)
    try:
        t0 = time.time()
        a.send(enc("GET", "ka"))
        time.sleep(0.6)
        b.send(enc("GET", "kb"))  # same server connection, 0.6 s later
        late = a.reply()
        took = time.time() - t0
    finally:
        server.send_signal(signal.SIGCONT)
    check_eq(late, ("err", "ERR Connection timed out"), "the late request")
    check(0.95 < took < 1.9, "timed out after about 1 s: %.2f s" % took)
    check_eq(b.reply(), b"vb", "the request behind it, answered once the server is back")
    check_eq(a.call("SET", "ka", "new"), b"+OK", "the next request gets its own reply")
    check_eq(a.call("GET", "ka"), b"new", "and the next")
    accepted = Conn(port).call("INFO", "stats")
    after = int(accepted.split(b"total_connections_received:")[1].split(b"\r\n")[0])
    # The two INFO connections are ours; the proxy made no new connection.
    check_eq(after - before, 1, "connections accepted by the server meanwhile")


def test_inline_quotes(env):
    """Inline commands are split as redis-server splits them (quotes and
    escapes): the same lines to the proxy and to a real redis-server give the
    same replies, and an unbalanced quote the same error."""
    ports, listen, conf = three_redis_pool(env)
    env.proxy(BIN, conf, [listen])
    real = env.redis()[0]
    lines = [b'ECHO "a b"', b"ECHO 'c d'", b'ECHO "\\x41\\x7a\\n\\t\\"q"', b"ECHO 'it\\'s'",
             b"ECHO 'a\\nb'", b'ECHO "\\x4g"', b'ECHO x"y z"', b'ECHO ""', b"ECHO \t spaced  ",
             b'SET "k 1" "v\\r\\n1"', b"GET 'k 1'", b'SET k2 "\\xff\\x00"', b"GET k2"]
    for line in lines:
        got = []
        for port in (real, listen):
            c = Conn(port)
            c.send(line + b"\r\n")
            got.append(c.reply())
            c.close()
        check_eq(got[1], got[0], "proxy vs redis-server for %r" % line)
    for line in (b'SET "a b', b"SET 'a", b'SET "a"b', b"SET 'a'b"):
        got = []
        for port in (real, listen):
            c = Conn(port)
            c.send(line + b"\r\n")
            got.append((c.reply(), c.is_closed()))
            c.close()
        check_eq(got[1], got[0], "proxy vs redis-server for %r" % line)
        check(got[1][1], "closed after %r" % line)


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_memory_after_burst(env):
    """Memory returns to the system after a burst (nutcracker #538 keeps it):
    20 clients pipeline 20 GETs and 5 SETs of 1 MB values at once; two
    seconds after they leave, the proxy's RSS is back near where it began."""
    ports = [env.redis()[0] for _ in range(4)]
    listen = free_port()
    conf = ("m:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n" % listen +
            "".join("   - 127.0.0.1:%d:1\n" % p for p in ports))
    proxy = env.proxy(BIN, conf, [listen], workers=2)
    c = Conn(listen)
    value = b"x" * (1 << 20)
    for i in range(20):
        c.call("SET", "big%d" % i, value)
    base = rss_kb(proxy.pid)
    errors = []

    def burst(n):
        # Everything sent, then a pause before reading: the proxy must hold
        # the replies (20 MB a client), so the burst is sure to grow it.
        cc = Conn(listen, timeout=60)
        cmds = ([("GET", "big%d" % j) for j in range(20)] +
                [("SET", "s%d:%d" % (n, j), value) for j in range(5)])
        sender = cc.send_async(b"".join(enc(*x) for x in cmds))
        time.sleep(0.5)
        got = [cc.reply() for _ in cmds]
        sender.join()
        if got != [value] * 20 + [b"+OK"] * 5:
            errors.append(n)
        cc.close()

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    peak = 0
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_kb(proxy.pid))
        time.sleep(0.02)
    for t in threads:
        t.join()
    check_eq(errors, [], "burst replies")
    time.sleep(2)
    after = rss_kb(proxy.pid)
    print("  RSS: %d kB before a burst, %d kB at its peak, %d kB 2 s after"
          % (base, peak, after))
    if not is_sanitized(BIN):  # ASan keeps freed memory in quarantine
        check(peak > base + 48 * 1024, "the burst made the proxy grow")
        check(after < base + 24 * 1024, "memory returned: %d kB over the start" % (after - base))


def test_every_server(env):
    """Commands for the whole keyspace go to every server, each reply
    compared with one redis-server holding the same data: DBSIZE (summed),
    FLUSHDB and FLUSHALL (+OK when every server is), SCRIPT LOAD (the sha
    every server agreed on; EVALSHA then works on keys of any server),
    SCRIPT FLUSH; TIME and LASTSAVE from one server. A server that is down
    makes them an error, never a wrong count."""
    ports, listen, conf = three_redis_pool(env, extra="  server_failure_limit: 1\n"
                                           "  server_retry_timeout: 60000\n")
    ref = Conn(env.redis()[0])
    proc = env.proxy(BIN, conf, [listen])
    px = Conn(listen)
    keys = ["fan:%d" % i for i in range(300)]
    for k in keys:
        check_eq(px.call("SET", k, "v"), b"+OK", "SET")
        ref.call("SET", k, "v")
    check_eq(px.call("DBSIZE"), ref.call("DBSIZE"), "DBSIZE summed over servers")
    check(all(Conn(p).call("DBSIZE") > 0 for p in ports), "keys on every server")
    script = "return redis.call('GET', KEYS[1])"
    sha = ref.call("SCRIPT", "LOAD", script)
    check_eq(px.call("SCRIPT", "LOAD", script), sha, "SCRIPT LOAD: the sha")
    for k in keys[:30]:
        check_eq(px.call("EVALSHA", sha, 1, k), b"v", "EVALSHA on %s's server" % k)
    check_eq(px.call("SCRIPT", "FLUSH"), b"+OK", "SCRIPT FLUSH")
    got = px.call("EVALSHA", sha, 1, keys[0])
    check(isinstance(got, tuple) and got[1].startswith("NOSCRIPT"), "flushed: %r" % (got,))
    t = px.call("TIME")
    check(isinstance(t, list) and len(t) == 2 and int(t[0]) > 1.7e9, "TIME: %r" % (t,))
    check(isinstance(px.call("LASTSAVE"), int), "LASTSAVE")
    check_eq(px.call("FLUSHDB", "ASYNC"), ref.call("FLUSHDB", "ASYNC"), "FLUSHDB ASYNC")
    check_eq(px.call("DBSIZE"), 0, "empty after FLUSHDB")
    check_eq(px.call("FLUSHDB", "x"), ref.call("FLUSHDB", "x"), "the server's own error")
    px.call("SET", "again", "1")
    check_eq(px.call("FLUSHALL"), b"+OK", "FLUSHALL")
    check(all(Conn(p).call("DBSIZE") == 0 for p in ports), "every server flushed")
    check_eq(px.call("DBSIZE", "extra")[0], "err", "DBSIZE arity from the servers")
    # One server gone: an error, not a smaller count.
    px.call("SET", "k1", "1")
    env.stop([p for p in env.procs if p.args[2] == str(ports[1])][0], force=True)
    got = px.call("DBSIZE")
    check(isinstance(got, tuple) and got[0] == "err", "DBSIZE with a server down: %r" % (got,))
    got = px.call("FLUSHALL")
    check(isinstance(got, tuple) and got[0] == "err", "FLUSHALL with a server down: %r" % (got,))
    check_eq(px.call("PING"), b"+PONG", "still serving")
    check(proc.poll() is None, "proxy running")


def test_keys_and_scan(env):
    """KEYS joins every server's keys; SCAN walks the servers one after the
    other with a cursor that names the server (no state in the proxy: a new
    connection can carry on), MATCH, COUNT and TYPE passed on; each compared
    with one redis-server holding the same keys."""
    ports, listen, conf = three_redis_pool(env)
    ref = Conn(env.redis()[0])
    env.proxy(BIN, conf, [listen], workers=2)
    px = Conn(listen)
    keys = ["sk:%d" % i for i in range(500)]
    for k in keys:
        px.call("SET", k, "v")
        ref.call("SET", k, "v")
    px.call("RPUSH", "sk:list", "x")
    ref.call("RPUSH", "sk:list", "x")
    check(all(Conn(p).call("DBSIZE") > 0 for p in ports), "keys on every server")
    for pattern in ("*", "sk:1*", "sk:?", "nothing*"):
        check_eq(sorted(px.call("KEYS", pattern)), sorted(ref.call("KEYS", pattern)),
                 "KEYS %s" % pattern)
    for opts in ((), ("COUNT", "7"), ("MATCH", "sk:2*", "COUNT", "100"), ("TYPE", "list")):
        seen, cursor, steps = set(), b"0", 0
        while True:
            # Every other step on a fresh connection: the cursor is all the state.
            conn = px if steps % 2 == 0 else Conn(listen)
            cursor, batch = conn.call("SCAN", cursor, *opts)
            seen.update(batch)
            steps += 1
            if cursor == b"0" or steps > 10000:
                break
        want = set()
        cursor = b"0"
        while True:
            cursor, batch = ref.call("SCAN", cursor, *opts)
            want.update(batch)
            if cursor == b"0":
                break
        check_eq(sorted(seen), sorted(want), "SCAN %r: every key, across servers" % (opts,))
        check(steps >= 3, "SCAN %r walked %d steps over 3 servers" % (opts, steps))
    check_eq(px.call("SCAN", "abc"), ("err", "ERR invalid cursor"), "a cursor that is not one")
    check_eq(px.call("SCAN", str(5)), ("err", "ERR invalid cursor"), "a server past the pool")
    check_eq(px.call("SCAN")[0], "err", "SCAN without a cursor")


if __name__ == "__main__":
    run([test_every_command, test_split_and_tags, test_connection_commands, test_auth_and_db,
         test_many_clients_pipelined, test_server_down, test_timeout_and_eject,
         test_late_request, test_inline_quotes, test_memory_after_burst, test_every_server,
         test_keys_and_scan])

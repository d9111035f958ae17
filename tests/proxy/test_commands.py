#!/usr/bin/env python3
"""test_commands.py CHASH_PROXY - the commands chash-proxy sends to every
server and merges, the ones it answers itself (CLIENT), and the ones about a
key that describe it (MEMORY USAGE, OBJECT, DEBUG OBJECT), through the proxy
in front of three real redis-servers.

Each reply is compared with the same command sent to one direct redis-server
holding the same data (the reference, written through both); where sharding
changes the answer the proxy's own is checked against what each server says
when asked directly (INFO's summed counters, CONFIG SET reaching every
server, SLOWLOG's entries). Every case has a bystander client on the same
pool whose writes and reads must all come back right.
"""
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Conn, SetGetBystander, check, check_eq, enc, free_port,  # noqa: E402
                     proxy_binary, run)

BIN = proxy_binary()
BYSTANDER_DB = 9  # its keys stay out of db 0, which the cases compare


def Bystander(port, tag=None):
    """The shared SET/GET bystander, in its own database (db 0 is what the
    cases compare); its rounds' speed is not checked here, where cases make
    servers busy on purpose."""
    return SetGetBystander(port, "commands", tag=tag, db=BYSTANDER_DB, max_wait=None)


def pool_conf(name, listen, ports, extra=""):
    conf = ("%s:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: md5\n  hash_tag: \"{}\"\n"
            "  distribution: ketama\n%s  servers:\n" % (name, listen, extra))
    return conf + "".join("   - 127.0.0.1:%d:1\n" % p for p in ports)


def setup(env, extra="", second=None):
    """Three servers behind the proxy, one reference; returns (ports, listen,
    reference connection, proxy connection, bystander). `second`: the extra
    keys of a second pool on the same servers, whose port is listen2."""
    debug = ["--enable-debug-command", "yes"]
    ports = [env.redis(debug)[0] for _ in range(3)]
    ref = Conn(env.redis(debug)[0])
    listen = free_port()
    conf = pool_conf("alpha", listen, ports, extra)
    listens = [listen]
    if second is not None:
        listen2 = free_port()
        conf += pool_conf("beta", listen2, ports, second)
        listens.append(listen2)
    env.proxy(BIN, conf, listens)
    px = Conn(listen)
    return ports, listens if second is not None else listen, ref, px, Bystander(listen)


def both(px, ref, *cmd):
    """The command through the proxy and on the reference: the two replies."""
    return px.call(*cmd), ref.call(*cmd)


def same(px, ref, *cmd):
    got, want = both(px, ref, *cmd)
    check_eq(got, want, "reply to %r" % (cmd,))
    return got


def is_err(r, start=""):
    return isinstance(r, tuple) and r[0] == "err" and r[1].startswith(start)


def server_name(port):
    return "127.0.0.1:%d" % port


def load_keys(px, ref, count=60):
    """Keys of a few types, through the proxy and on the reference."""
    for i in range(count):
        for c in (px, ref):
            c.call("SET", "k:%d" % i, "v%d" % i)
    for c in (px, ref):
        c.call("RPUSH", "list", "a", "b")
        c.call("SET", "num", "12345")
        c.call("SET", "big", "x" * 100)
        c.call("HSET", "h", "f", "v")
        c.call("SET", "ttl", "v", "EX", "1000")


def info_sections(text):
    """INFO text as {section: {field: value}}, in order."""
    out = {}
    section = None
    for line in text.decode().split("\r\n"):
        if line.startswith("# "):
            section = line[2:]
            out[section] = {}
        elif line and section is not None:
            k, _, v = line.partition(":")
            out[section][k] = v
    return out


# ---- the cases ------------------------------------------------------------------

def test_scripts(env):
    """SCRIPT LOAD/EXISTS/FLUSH/KILL: EXISTS says 1 only where every server
    has the script; KILL with no script is NOTBUSY, and kills a busy script
    from another client although the script holds the server connection the
    clients share."""
    ports, listen, ref, px, by = setup(env)
    sha = same(px, ref, "SCRIPT", "LOAD", "return 1")
    same(px, ref, "SCRIPT", "EXISTS", sha, "0" * 40)
    same(px, ref, "SCRIPT", "EXISTS", sha)
    same(px, ref, "SCRIPT", "EXISTS")  # arity: every server's same error
    same(px, ref, "SCRIPT", "KILL")
    same(px, ref, "SCRIPT", "KILL", "x")
    same(px, ref, "FUNCTION", "KILL")
    # A script one server has and the others not: not there for the pool.
    direct = Conn(ports[1])
    only = direct.call("SCRIPT", "LOAD", "return 2")
    check_eq(px.call("SCRIPT", "EXISTS", only, sha), [0, 1], "EXISTS on one server only")
    same(px, ref, "SCRIPT", "FLUSH")
    same(px, ref, "SCRIPT", "EXISTS", sha, only)
    # A busy script on one server, killed from another client.
    for c in (px, ref):
        check_eq(c.call("CONFIG", "SET", "busy-reply-threshold", "100"), b"+OK", "threshold")
    for port, conn in ((listen, px), (None, ref)):
        runner = Conn(listen) if port else Conn(ref.s.getpeername()[1])
        runner.send(enc("EVAL", "while true do end", 1, "busy"))
        time.sleep(0.4)
        t0 = time.time()
        check_eq(conn.call("SCRIPT", "KILL"), b"+OK", "SCRIPT KILL of a busy script")
        check(time.time() - t0 < 2, "the KILL did not wait for the script")
        r = runner.reply()
        check(is_err(r, "ERR Script killed by user with SCRIPT KILL"), "killed: %r" % (r,))
    same(px, ref, "SCRIPT", "KILL")
    # The KILL's own server connections are closed once answered.
    time.sleep(0.2)
    for p in ports:
        clients = Conn(p).call("CLIENT", "LIST").decode().count("\n")
        check(clients <= 3, "server %d: %d connections" % (p, clients))
    by.done()


FUNCTIONS = ("#!lua name=mylib\n"
             "redis.register_function('myget', function(keys, args) "
             "return redis.call('GET', keys[1]) end)\n"
             "redis.register_function{function_name='myro', callback=function(keys, args) "
             "return args[1] end, flags={'no-writes'}}\n")


def functions_sorted(reply):
    """FUNCTION LIST with each library's functions in name order: a server
    lists them in its hash table's order, which its random seed picks."""
    if not isinstance(reply, list):
        return reply
    out = []
    for lib in reply:
        lib = list(lib)
        i = lib.index(b"functions") + 1
        lib[i] = sorted(lib[i], key=lambda f: f[1])
        out.append(lib)
    return out


def same_functions(px, ref, *cmd):
    got, want = both(px, ref, "FUNCTION", "LIST", *cmd)
    check_eq(functions_sorted(got), functions_sorted(want), "FUNCTION LIST %r" % (cmd,))


def test_functions(env):
    """FUNCTION LOAD/LIST/DUMP/FLUSH/RESTORE/DELETE/STATS/KILL, and FCALL of
    a loaded function on keys of every server."""
    ports, listen, ref, px, by = setup(env)
    load_keys(px, ref)
    same(px, ref, "FUNCTION", "LOAD", FUNCTIONS)
    same(px, ref, "FUNCTION", "LOAD", FUNCTIONS)  # exists already, on every server
    same(px, ref, "FUNCTION", "LOAD", "junk")
    same_functions(px, ref)
    same_functions(px, ref, "WITHCODE", "LIBRARYNAME", "my")
    same(px, ref, "FUNCTION", "STATS")
    for i in range(0, 60, 7):
        same(px, ref, "FCALL", "myget", 1, "k:%d" % i)
    same(px, ref, "FCALL_RO", "myro", 1, "k:1", "arg")
    dump = px.call("FUNCTION", "DUMP")
    check(isinstance(dump, bytes) and len(dump) > 20, "FUNCTION DUMP")
    same(px, ref, "FUNCTION", "RESTORE", dump)  # the library is there: the same error
    same(px, ref, "FUNCTION", "FLUSH")
    same_functions(px, ref)
    same(px, ref, "FUNCTION", "RESTORE", dump)
    same_functions(px, ref)
    for p in ports:
        check_eq(len(Conn(p).call("FUNCTION", "LIST")), 1, "restored on server %d" % p)
    same(px, ref, "FUNCTION", "RESTORE", "junk")
    same(px, ref, "FUNCTION", "DELETE", "mylib")
    same(px, ref, "FUNCTION", "DELETE", "mylib")
    same(px, ref, "FUNCTION", "KILL")
    same(px, ref, "FUNCTION", "FLUSH", "ASYNC")
    # A library on one server only: LOAD and DELETE disagree, and the error
    # names the server that did not do what the others did.
    check_eq(Conn(ports[1]).call("FUNCTION", "LOAD", FUNCTIONS), b"mylib", "direct load")
    r = px.call("FUNCTION", "LOAD", FUNCTIONS)
    check_eq(r, ("err", "ERR server %s: Library 'mylib' already exists" % server_name(ports[1])),
             "LOAD where one server has it")
    check_eq(px.call("FUNCTION", "DELETE", "mylib"), b"+OK", "DELETE: every server has it now")
    Conn(ports[2]).call("FUNCTION", "LOAD", FUNCTIONS)
    r = px.call("FUNCTION", "DELETE", "mylib")
    check_eq(r, ("err", "ERR server %s: Library not found" % server_name(ports[0])),
             "DELETE where one server has it")
    by.done()


INFO_DROPPED = {"process_id", "run_id", "tcp_port", "executable", "config_file", "lru_clock"}


def test_info(env):
    """INFO: the proxy's section, then the servers' merged, for the sections
    asked exactly as redis-server picks them; the counters are the sums of
    what each server says when asked directly."""
    ports, listen, ref, px, by = setup(env)
    load_keys(px, ref)
    for i in range(40):
        px.call("GET", "k:%d" % i)
        px.call("GET", "missing:%d" % i)
    for args in ((), ("server",), ("keyspace", "CPU"), ("all",), ("everything",),
                 ("default",), ("nothing",), ("Server", "clients", "proxy"), ("proxy",),
                 ("commandstats",), ("errorstats",), ("latencystats",)):
        got, want = both(px, ref, "INFO", *args)
        check(isinstance(got, bytes), "INFO %r: %r" % (args, got))
        g, w = info_sections(got), info_sections(want)
        has_proxy = not args or any(a.lower() in ("default", "all", "everything", "proxy")
                                    for a in args)
        check_eq("Proxy" in g, has_proxy, "INFO %r: the proxy's section" % (args,))
        if has_proxy:
            check_eq(list(g)[0], "Proxy", "INFO %r: the proxy's section first" % (args,))
        check_eq([s for s in g if s != "Proxy"], list(w), "INFO %r: sections" % (args,))
        if "Server" in w:
            check_eq(set(g["Server"]), set(w["Server"]) - INFO_DROPPED,
                     "INFO %r: Server fields" % (args,))
            check_eq(g["Server"]["redis_version"], w["Server"]["redis_version"], "version")
        if not g:
            check_eq(got, b"", "INFO %r: nothing" % (args,))
    g = info_sections(px.call("INFO", "proxy"))["Proxy"]
    check_eq(g["proxy_pool"], "alpha", "proxy_pool")
    check_eq((g["proxy_servers"], g["proxy_servers_live"]), ("3", "3"), "servers")
    check(int(g["proxy_client_connections"]) >= 2, "clients: %r" % g)
    check(int(g["proxy_requests"]) > 100, "requests: %r" % g)
    # The counters: the sum over the servers asked directly. The bystander
    # holds still; asking a server directly counts one more INFO there.
    by.hold()
    merged = info_sections(px.call("INFO", "all"))
    direct = [info_sections(Conn(p).call("INFO", "all")) for p in ports]
    for field in ("keyspace_hits", "keyspace_misses", "expired_keys", "evicted_keys",
                  "total_error_replies", "rejected_connections"):
        check_eq(int(merged["Stats"][field]), sum(int(d["Stats"][field]) for d in direct),
                 "%s summed" % field)
    check_eq(int(merged["Stats"]["total_commands_processed"]),
             sum(int(d["Stats"]["total_commands_processed"]) - 1 for d in direct),
             "total_commands_processed summed")
    check_eq(merged["Keyspace"]["db0"].split(",")[:2],
             ["keys=%d" % (px.call("DBSIZE")), "expires=1"], "db0 keys and expires")
    check_eq(merged["Keyspace"]["db0"].split(",")[:2], ref.call("INFO", "keyspace").decode()
             .split("db0:")[1].split("\r\n")[0].split(",")[:2], "db0 as the reference has it")
    calls = sum(int(re.search(r"calls=(\d+)", d["Commandstats"]["cmdstat_get"]).group(1))
                for d in direct)
    check(merged["Commandstats"]["cmdstat_get"].startswith("calls=%d," % calls),
          "cmdstat_get: %r" % merged["Commandstats"]["cmdstat_get"])
    used = sum(int(d["Memory"]["used_memory"]) for d in direct)
    check(abs(int(merged["Memory"]["used_memory"]) - used) < used // 10, "used_memory summed")
    check(merged["Memory"]["used_memory_human"].endswith("M"), "used_memory_human recomputed")
    uptime = min(int(d["Server"]["uptime_in_seconds"]) for d in direct)
    check(uptime - 1 <= int(merged["Server"]["uptime_in_seconds"]) <= uptime, "uptime: least")
    check("mem_fragmentation_ratio" not in merged["Memory"], "ratios left out")
    check_eq(merged["Latencystats"], {}, "percentiles left out")
    by.go()
    same(px, ref, "INFO", "nothing", "at", "ALL_")
    by.done()


def test_config_and_stats(env):
    """CONFIG GET from one server; CONFIG SET, RESETSTAT on every server
    (each checked directly); SLOWLOG GET merged newest first, LEN summed,
    RESET everywhere."""
    ports, listen, ref, px, by = setup(env)
    load_keys(px, ref)
    same(px, ref, "CONFIG", "GET", "maxmemory-policy")
    got, want = both(px, ref, "CONFIG", "GET", "maxmemory*")
    pairs = lambda r: dict(zip(r[::2], r[1::2]))  # noqa: E731 (a server's hash order)
    check_eq(pairs(got), pairs(want), "CONFIG GET maxmemory*")
    same(px, ref, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    for p in ports:
        check_eq(Conn(p).call("CONFIG", "GET", "maxmemory-policy"),
                 [b"maxmemory-policy", b"allkeys-lru"], "CONFIG SET reached server %d" % p)
    same(px, ref, "CONFIG", "SET", "maxmemory-policy", "bogus")
    same(px, ref, "CONFIG", "SET", "maxmemory-policy")
    same(px, ref, "CONFIG", "GET")
    same(px, ref, "CONFIG", "REWRITE")  # no config file: the servers' error
    by.hold()
    same(px, ref, "CONFIG", "RESETSTAT")
    for p in ports:
        stats = info_sections(Conn(p).call("INFO", "stats"))["Stats"]
        check_eq(stats["keyspace_hits"], "0", "RESETSTAT reached server %d" % p)
    by.go()
    # SLOWLOG: every command logged for a while.
    same(px, ref, "CONFIG", "SET", "slowlog-log-slower-than", "0")
    for i in range(30):
        px.call("GET", "k:%d" % i)
        time.sleep(0.002)
    same(px, ref, "CONFIG", "SET", "slowlog-log-slower-than", "-1")
    by.hold()
    total = px.call("SLOWLOG", "LEN")
    check_eq(total, sum(Conn(p).call("SLOWLOG", "LEN") for p in ports), "SLOWLOG LEN summed")
    entries = px.call("SLOWLOG", "GET")
    check_eq(len(entries), 10, "SLOWLOG GET: 10 by default")
    times = [e[1] for e in px.call("SLOWLOG", "GET", "-1")]
    check_eq(len(times), total, "SLOWLOG GET -1: all")
    check_eq(times, sorted(times, reverse=True), "newest first")
    check_eq(len(px.call("SLOWLOG", "GET", "3")), 3, "SLOWLOG GET 3")
    check_eq(px.call("SLOWLOG", "GET", "0"), [], "SLOWLOG GET 0")
    check(all(len(e) == 6 and isinstance(e[3], list) for e in entries), "entry shape")
    same(px, ref, "SLOWLOG", "GET", "x")
    same(px, ref, "SLOWLOG", "GET", "-2")
    by.go()
    same(px, ref, "SLOWLOG", "RESET")
    for p in ports:
        check_eq(Conn(p).call("SLOWLOG", "LEN"), 0, "SLOWLOG RESET reached server %d" % p)
    same(px, ref, "SLOWLOG", "HELP")
    same(px, ref, "CONFIG", "SET", "maxmemory-policy", "noeviction")
    by.done()


def test_keys_and_one_server(env):
    """RANDOMKEY (an existing key, of every server in time; nil on an empty
    pool), the commands about one key routed to its server (MEMORY USAGE,
    OBJECT, DEBUG OBJECT), COMMAND from one server, PUBSUB merged."""
    ports, listen, ref, px, by = setup(env)
    load_keys(px, ref)
    seen = set()
    for _ in range(60):
        k = px.call("RANDOMKEY")
        check_eq(px.call("EXISTS", k), 1, "RANDOMKEY %r exists" % k)
        seen.add(k)
    owners = {px.call("PROXY", "LOCATE", k)[0][0] for k in seen}
    check(len(owners) >= 2, "RANDOMKEY draws from several servers: %r" % owners)
    same(px, ref, "RANDOMKEY", "x")
    for key in ("k:1", "k:2", "list", "num", "big", "h", "nokey"):
        same(px, ref, "MEMORY", "USAGE", key)
        same(px, ref, "MEMORY", "USAGE", key, "SAMPLES", "0")
        same(px, ref, "OBJECT", "ENCODING", key)
        same(px, ref, "OBJECT", "REFCOUNT", key)
        same(px, ref, "OBJECT", "FREQ", key)  # no LFU policy: the same error
        got, want = both(px, ref, "OBJECT", "IDLETIME", key)
        check_eq(type(got), type(want), "OBJECT IDLETIME %s" % key)
        got, want = both(px, ref, "DEBUG", "OBJECT", key)
        if isinstance(want, bytes):
            # The address and the clock are the server's own.
            strip = re.compile(rb"at:0x[0-9a-f]+ |lru:\d+ |lru_seconds_idle:\d+")
            check_eq(strip.sub(b"", got), strip.sub(b"", want), "DEBUG OBJECT %s" % key)
        else:
            check_eq(got, want, "DEBUG OBJECT %s" % key)
    same(px, ref, "COMMAND", "COUNT")
    same(px, ref, "COMMAND", "INFO", "get", "set")
    same(px, ref, "COMMAND", "GETKEYS", "SET", "a", "b")
    same(px, ref, "COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2")
    same(px, ref, "COMMAND", "DOCS", "get")
    same(px, ref, "COMMAND", "GETKEYS")
    # PUBSUB: subscribers through the proxy (each channel on its server)
    # and on the reference.
    subs = []
    for chans in (("ch:1", "ch:2"), ("ch:2", "ch:3", "ch:4"), ("ch:5",)):
        for port in (listen, ref.s.getpeername()[1]):
            s = Conn(port)
            s.send(enc("SUBSCRIBE", *chans))
            for _ in chans:
                s.reply()
            subs.append(s)
    for port in (listen, ref.s.getpeername()[1]):
        s = Conn(port)
        s.send(enc("PSUBSCRIBE", "news.*"))
        s.reply()
        subs.append(s)
    same(px, ref, "PUBSUB", "NUMSUB", "ch:1", "ch:2", "ch:3", "none", "ch:2")
    same(px, ref, "PUBSUB", "NUMSUB")
    same(px, ref, "PUBSUB", "SHARDNUMSUB", "ch:1")
    same(px, ref, "PUBSUB", "NUMPAT")
    got, want = both(px, ref, "PUBSUB", "CHANNELS")
    check_eq(sorted(got), sorted(want), "PUBSUB CHANNELS")
    got, want = both(px, ref, "PUBSUB", "CHANNELS", "ch:[12]")
    check_eq(sorted(got), sorted(want), "PUBSUB CHANNELS pattern")
    same(px, ref, "PUBSUB", "SHARDCHANNELS")
    # An empty pool.
    same(px, ref, "FLUSHDB")
    same(px, ref, "RANDOMKEY")
    by.done()


def client_fields(line):
    return dict(f.split("=", 1) for f in line.decode().strip().split(" "))


def test_client(env):
    """CLIENT, answered by the proxy about the client's connection to it;
    REPLY OFF / ON / SKIP pipelined drop exactly the replies redis-server
    drops."""
    ports, listen, ref, px, by = setup(env)
    for cmd in (("CLIENT", "GETNAME"), ("CLIENT", "SETNAME", "has space"),
                ("CLIENT", "SETNAME", "new\nline"), ("CLIENT", "SETNAME", "caf\xe9"),
                ("CLIENT", "SETNAME", "app-1"), ("CLIENT", "GETNAME"), ("CLIENT", "SETNAME"),
                ("CLIENT", "GETNAME", "x"), ("CLIENT", "SETNAME", ""), ("CLIENT", "GETNAME"),
                ("CLIENT", "ID", "x"), ("CLIENT", "INFO", "x"), ("CLIENT", "NO-EVICT", "on"),
                ("CLIENT", "NO-EVICT", "OFF"), ("CLIENT", "NO-EVICT", "maybe"),
                ("CLIENT", "NO-EVICT"), ("CLIENT", "REPLY"), ("CLIENT", "REPLY", "maybe"),
                ("CLIENT", "REPLY", "ON"), ("CLIENT", "LIST", "TYPE"), ("CLIENT", "LIST", "ID"),
                ("CLIENT", "LIST", "TYPE", "bogus"), ("CLIENT", "LIST", "ID", "x"),
                ("CLIENT", "LIST", "TYPE", "normal", "ID", "1"),
                ("CLIENT", "LIST", "ID", "1", "TYPE", "normal"),
                ("CLIENT", "LIST", "TYPE", "master"), ("CLIENT", "LIST", "TYPE", "replica"),
                ("CLIENT", "LIST", "TYPE", "pubsub"), ("CLIENT", "HELP", "x"),
                ("CLIENT", "NOSUCH"), ("CLIENT",),
                ("HELLO", "2", "SETNAME", "bad name"), ("CLIENT", "GETNAME"),
                ("HELLO", "2", "SETNAME", "hello-name", "bogus"), ("CLIENT", "GETNAME")):
        same(px, ref, *cmd)
    cid = px.call("CLIENT", "ID")
    check(isinstance(cid, int), "CLIENT ID")
    check_eq(px.call("HELLO", "2")[7], cid, "HELLO's id is CLIENT ID's")
    px.call("CLIENT", "SETNAME", "me")
    px.call("SELECT", 3)
    info = px.call("CLIENT", "INFO")
    want = client_fields(ref.call("CLIENT", "INFO"))
    got = client_fields(info)
    check(info.endswith(b"\n") and info.count(b"\n") == 1, "one line: %r" % info)
    check_eq(list(got), list(want), "CLIENT INFO: redis-server's fields, in its order")
    check_eq((got["id"], got["name"], got["db"], got["cmd"], got["flags"], got["multi"],
              got["sub"], got["user"], got["resp"]),
             (str(cid), "me", "3", "client|info", "N", "-1", "0", "default", "2"), "CLIENT INFO")
    check_eq(got["laddr"], "127.0.0.1:%d" % listen, "laddr")
    check_eq(got["addr"], "%s:%d" % px.s.getsockname(), "addr")
    px.call("CLIENT", "NO-EVICT", "on")
    check_eq(client_fields(px.call("CLIENT", "INFO"))["flags"], "e", "flags after NO-EVICT")
    px.call("SELECT", 0)
    # LIST: this pool's clients on this worker (one worker here), oldest first.
    lines = px.call("CLIENT", "LIST").decode().splitlines()
    ids = [int(client_fields(ln.encode())["id"]) for ln in lines]
    check(cid in ids and len(ids) >= 2, "CLIENT LIST has us and the bystander: %r" % lines)
    check_eq(ids, sorted(ids), "oldest first")
    byline = [client_fields(ln.encode()) for ln in lines if int(ln.split()[0][3:]) != cid][0]
    check(byline["cmd"] in ("set", "get"), "the bystander's last command: %r" % byline)
    check_eq(byline["db"], str(BYSTANDER_DB), "the bystander's db")
    one = px.call("CLIENT", "LIST", "ID", cid, cid + 1000, "-5", cid)
    check_eq(one.count(b"\n"), 2, "LIST ID: ours, twice")
    check_eq(px.call("CLIENT", "LIST", "TYPE", "NORMAL").count(b"\n"), len(lines), "TYPE normal")
    sub = Conn(listen)
    sub.send(enc("SUBSCRIBE", "c1"))
    sub.reply()
    pub = px.call("CLIENT", "LIST", "TYPE", "pubsub").decode().splitlines()
    check_eq(len(pub), 1, "TYPE pubsub")
    check_eq([client_fields(pub[0].encode())[k] for k in ("flags", "sub", "psub", "ssub")],
             ["P", "1", "0", "0"], "a subscriber's flags and counts")
    help_lines = px.call("CLIENT", "HELP")
    check(isinstance(help_lines, list) and help_lines[0].startswith(b"+CLIENT"), "HELP")
    # REPLY, pipelined: what redis-server drops, the proxy drops.
    cmds = [("SET", "x", "1"), ("CLIENT", "REPLY", "SKIP"), ("SET", "x", "2"), ("GET", "x"),
            ("CLIENT", "REPLY", "OFF"), ("SET", "x", "3"), ("GET", "x"), ("NOSUCH",),
            ("MGET", "x", "k:1"), ("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "ON"),
            ("GET", "x"), ("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "SKIP"),
            ("GET", "x"), ("GET", "x"), ("CLIENT", "REPLY", "SKIP"), ("CLIENT", "REPLY", "ON"),
            ("MGET", "x", "y", "z"), ("CLIENT", "REPLY", "SKIP"), ("PING",), ("DBSIZE",),
            ("CLIENT", "REPLY", "SKIP"), ("GET",), ("INFO", "nothing"), ("PING", "end")]
    replies = []
    for c in (px, ref):
        c.send(b"".join(enc(*cmd) for cmd in cmds))
        c.send(enc("PING", "fence"))
        got = []
        while True:
            r = c.reply()
            if r == b"fence":
                break
            got.append(r)
        replies.append(got)
    check_eq(replies[0], replies[1], "CLIENT REPLY pipelined")
    check_eq(replies[0][-1], b"end", "replies after SKIP come back")
    check_eq(px.call("GET", "x"), b"3", "the writes under OFF were made")
    by.done()


def test_admin_refused(env):
    """refuse_admin_commands: a second pool on the same servers refuses the
    administrative commands with the reason; the first serves them."""
    ports, (listen, listen2), ref, px, by = setup(env, second="  refuse_admin_commands: true\n")
    beta = Conn(listen2)
    by2 = Bystander(listen2)
    reason = "the pool refuses administrative commands (refuse_admin_commands)"
    for cmd, name in ((("FLUSHALL",), "flushall"), (("FLUSHDB",), "flushdb"),
                      (("SWAPDB", "0", "1"), "swapdb"), (("KEYS", "*"), "keys"),
                      (("CONFIG", "SET", "maxmemory", "0"), "config|set"),
                      (("CONFIG", "REWRITE"), "config|rewrite")):
        check_eq(beta.call(*cmd), ("err", "ERR the proxy refuses '%s': %s" % (name, reason)),
                 "beta refuses %r" % (cmd,))
    check_eq(beta.call("SET", "kept", "1"), b"+OK", "beta serves keys")
    check_eq(beta.call("CONFIG", "GET", "maxmemory"), [b"maxmemory", b"0"], "CONFIG GET served")
    check(isinstance(beta.call("DBSIZE"), int), "DBSIZE served")
    check(isinstance(beta.call("INFO", "keyspace"), bytes), "INFO served")
    # The refused commands did nothing; alpha serves them.
    check_eq(px.call("GET", "kept"), b"1", "nothing flushed")
    check_eq(px.call("KEYS", "kept"), [b"kept"], "alpha: KEYS")
    check_eq(px.call("CONFIG", "SET", "maxmemory", "0"), b"+OK", "alpha: CONFIG SET")
    check_eq(px.call("FLUSHDB"), b"+OK", "alpha: FLUSHDB")
    check_eq(beta.call("GET", "kept"), None, "flushed by alpha")
    by2.done()
    by.done()


def test_server_trouble(env):
    """A server that is gone: every merged reply is an error that names it,
    the connection stays up, commands the proxy answers itself still work,
    and a bystander whose keys live on another server sees nothing."""
    ports, listen, ref, px, by = setup(env, extra="  server_failure_limit: 1\n"
                                       "  server_retry_timeout: 60000\n")
    by.done()
    home = px.call("PROXY", "LOCATE", "{by}x")[0][0].decode()
    victim = [p for p in ports if server_name(p) != home][0]
    by = Bystander(listen, tag="by")
    load_keys(px, ref)
    for p in env.procs:
        if "redis-server" in p.args[0] and str(victim) in p.args:
            env.stop(p, force=True)
    name = server_name(victim)
    for cmd in (("INFO",), ("INFO", "keyspace"), ("SCRIPT", "EXISTS", "0" * 40),
                ("RANDOMKEY",), ("PUBSUB", "NUMSUB", "a"), ("SLOWLOG", "GET"), ("DBSIZE",),
                ("CONFIG", "SET", "maxmemory", "0"), ("SCRIPT", "KILL"), ("FUNCTION", "KILL"),
                ("SCRIPT", "LOAD", "return 1"), ("KEYS", "*")):
        r = px.call(*cmd)
        check(is_err(r) and name in r[1], "%r with a server gone: %r" % (cmd, r))
    check(isinstance(px.call("CLIENT", "ID"), int), "CLIENT still answered")
    check_eq(px.call("CLIENT", "SETNAME", "still"), b"+OK", "CLIENT SETNAME")
    check_eq(px.call("PING"), b"+PONG", "still serving")
    by.done()


class OddServer:
    """A server that speaks RESP but answers with what the command never
    gives (another version, a confused server): each command name (with its
    subcommand) gets a fixed reply."""

    REPLIES = {
        "INFO": b"+OK\r\n",
        "INFO GARBAGE": (b"$%d\r\n%s\r\n" % (len(b"# Server\r\nweird line\r\nk:1=2,=,,x\r\n:\r\n"
                                                  b"big:99999999999999999999999\r\n# \r\n"
                                                  b"used_memory_human:\r\ndb0:keys=x"),
                                              b"# Server\r\nweird line\r\nk:1=2,=,,x\r\n:\r\n"
                                              b"big:99999999999999999999999\r\n# \r\n"
                                              b"used_memory_human:\r\ndb0:keys=x")),
        "SCRIPT EXISTS": b":1\r\n",
        "SCRIPT KILL": b"+PONG\r\n",
        "SCRIPT LOAD": b"$40\r\n" + b"0" * 40 + b"\r\n",
        "PUBSUB NUMSUB": b"*1\r\n:1\r\n",
        "PUBSUB CHANNELS": b"$1\r\nx\r\n",
        "RANDOMKEY": b":1\r\n",
        "SLOWLOG GET": b"*1\r\n*1\r\n:1\r\n",
        "SLOWLOG LEN": b":-3\r\n",
        "DBSIZE": b"$1\r\nx\r\n",
        "CONFIG SET": b"+NOPE\r\n",
        "KEYS": b":1\r\n",
        "PING": b"+PONG\r\n",
        "SELECT": b"+OK\r\n",
    }

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        data = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            data += chunk
            while True:
                args, data = self.command(data)
                if args is None:
                    break
                name = b" ".join(args[:2]).decode().upper()
                reply = self.REPLIES.get(name, self.REPLIES.get(name.split(" ")[0],
                                                                 b"-ERR odd\r\n"))
                conn.sendall(reply)

    @staticmethod
    def command(data):
        """One RESP command off the front of data: (args, rest), or (None,
        data) when it is not all there."""
        if not data.startswith(b"*") or b"\r\n" not in data:
            return None, data
        head, rest = data.split(b"\r\n", 1)
        args = []
        for _ in range(int(head[1:])):
            if b"\r\n" not in rest:
                return None, data
            line, rest = rest.split(b"\r\n", 1)
            n = int(line[1:])
            if len(rest) < n + 2:
                return None, data
            args.append(rest[:n])
            rest = rest[n + 2:]
        return args, rest


def test_odd_replies(env):
    """A server whose replies are not what the command gives: every merge
    says so with the server's name and none crashes; an INFO text with
    junk lines merges what it can."""
    ports = [env.redis()[0] for _ in range(2)]
    odd = OddServer()
    listen = free_port()
    env.proxy(BIN, pool_conf("alpha", listen, [ports[0], odd.port, ports[1]]), [listen])
    px = Conn(listen)
    home = px.call("PROXY", "LOCATE", "{by}x")[0][0].decode()
    tag = "by"
    for i in range(200):  # a tag that lives on a real server
        if home != server_name(odd.port):
            break
        tag = "by%d" % i
        home = px.call("PROXY", "LOCATE", "{%s}x" % tag)[0][0].decode()
    by = Bystander(listen, tag=tag)
    name = server_name(odd.port)
    for cmd in (("INFO",), ("SCRIPT", "EXISTS", "0" * 40), ("SCRIPT", "KILL"),
                ("PUBSUB", "NUMSUB", "a"), ("PUBSUB", "CHANNELS"), ("RANDOMKEY",),
                ("SLOWLOG", "GET"), ("SLOWLOG", "LEN"), ("DBSIZE",),
                ("CONFIG", "SET", "maxmemory", "0"), ("KEYS", "*")):
        check_eq(px.call(*cmd), ("err", "ERR unexpected reply from server %s" % name),
                 "%r from an odd server" % (cmd,))
    r = px.call("SCRIPT", "LOAD", "return 1")
    check(is_err(r, "ERR the servers of the pool answered differently: server %s" % name),
          "SCRIPT LOAD: %r" % (r,))
    r = px.call("FUNCTION", "DELETE", "x")
    check(is_err(r, "ERR server "), "the first error, named: %r" % (r,))
    r = px.call("INFO", "garbage")
    check(isinstance(r, bytes), "INFO with junk lines: %r" % (r,))
    check_eq(px.call("PING"), b"+PONG", "still serving")
    by.done()


if __name__ == "__main__":
    run([test_scripts, test_functions, test_info, test_config_and_stats,
         test_keys_and_one_server, test_client, test_admin_refused, test_server_trouble,
         test_odd_replies])

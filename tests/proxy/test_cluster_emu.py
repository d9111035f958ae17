#!/usr/bin/python3
"""test_cluster_emu.py CHASH_PROXY - the proxy looks like a Redis Cluster to
cluster-aware clients (proxy/clustercmd.c).

Needs Debian's python3-redis (redis-py 4.3.4, redis.cluster.RedisCluster)
under /usr/bin/python3 (ctest: chash_proxy_pytest_debian), redis-server and
redis-cli; the fleet case also etcd and etcdctl (skipped without them).

- shapes: CLUSTER SLOTS, SHARDS, NODES, INFO, MYID, LINKS, KEYSLOT, READONLY,
  READWRITE, ASKING and their errors side by side with a real
  `redis-server --cluster-enabled yes` owning every slot: the same structure
  field by field (names, order, types, INFO's fields and CRLFs, NODES' line
  format), the proxy's own values (itself, 0-16383, cport 0), KEYSLOT's
  numbers and every error text equal. The node id: 40 lowercase hex digits,
  one value from every worker and connection, another for another pool and
  for another proxy on the host. A pool on 0.0.0.0 reached at 127.0.0.1
  names 127.0.0.1 (and at 127.0.0.2, 127.0.0.2).
- pyredis_cluster: redis-py's RedisCluster through a proxy in front of three
  ordinary (ketama) redis-servers: SET/GET/MGET/MSET/DEL/INCR and a
  pipeline over 400 keys, all read back, the keys spread over the three
  servers; a plain client on the same pool sees no error meanwhile.
- redis_cli: `redis-cli -c` sets and gets through the proxy.
- hostile: CLUSTER without a subcommand, wrong arities, unknown and binary
  subcommands, a 4 MB key in KEYSLOT, keys of binary bytes, CLUSTER inside
  MULTI and while subscribed, inline CLUSTER, a deep pipeline of CLUSTER
  SLOTS: Redis's error texts (the proxy's where the proxy refuses), and a
  bystander on the pool unharmed.
- fleet: proxies on etcd (--etcd, pools put in etcd by etcdctl): two give
  the same CLUSTER SLOTS, SHARDS and NODES (but the myself flag) covering
  0..16383 with half each, shaped like a real two-node cluster's; RedisCluster
  through one of them reaches both; a third on 0.0.0.0 is named by its host
  name and the map splits in three; one stopped, the others split in two.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Conn, SetGetBystander, check, check_eq, enc, free_port,  # noqa: E402
                     free_ports, proxy_binary, run, wait_port)

try:
    import redis
    from redis.cluster import RedisCluster
except ImportError:
    sys.exit("test_cluster_emu.py needs Debian's python3-redis: run it with /usr/bin/python3")

BIN = proxy_binary()
SLOTS = 16384
# Map keys of CLUSTER SHARDS (flat name, value lists in RESP2): kept as text
# by skeleton(), every other string is its type.
FIELD_NAMES = {b"slots", b"nodes", b"id", b"port", b"tls-port", b"ip", b"endpoint", b"hostname",
               b"role", b"replication-offset", b"health"}
NODE_LINE = re.compile(r"^([0-9a-f]{40}) ([^ :]*|[0-9a-f:.]*):(\d+)@(\d+)(,\S+)? "
                       r"((?:myself,)?master) - (\d+) (\d+) (\d+) connected (\d+)-(\d+)$")
ID = re.compile(r"^[0-9a-f]{40}$")


def skeleton(v):
    """A reply's structure: lists kept, integers as 'int', strings as 'bulk'
    unless they are a map key or a status."""
    if isinstance(v, list):
        return [skeleton(x) for x in v]
    if isinstance(v, int):
        return "int"
    if isinstance(v, bytes):
        return v if v in FIELD_NAMES or v.startswith(b"+") else "bulk"
    if v is None:
        return None
    return ("err",)


BUS_PORTS = {}  # a real node's port -> its cluster bus port


def cluster_node(env, slots=((0, SLOTS - 1),)):
    """A real cluster-enabled redis-server owning `slots`; its port."""
    port, bus = free_ports(2)  # the bus on a port of ours, not port + 10000
    env.redis(["--cluster-enabled", "yes", "--cluster-port", str(bus), "--cluster-config-file",
               os.path.join(env.dir, "nodes-%d.conf" % port), "--cluster-announce-ip",
               "127.0.0.1"], port=port)
    BUS_PORTS[port] = bus
    c = Conn(port)
    for first, last in slots:
        check_eq(c.call("CLUSTER", "ADDSLOTSRANGE", first, last), b"+OK", "ADDSLOTSRANGE")
    c.close()
    return port


def wait_cluster_ok(port, nodes=1, timeout=20.0):
    deadline = time.time() + timeout
    info = b""
    while time.time() < deadline:
        c = Conn(port)
        info = c.call("CLUSTER", "INFO")
        c.close()
        if b"cluster_state:ok" in info and b"cluster_known_nodes:%d" % nodes in info:
            return
        time.sleep(0.1)
    raise AssertionError("real cluster node %d not ok: %r" % (port, info))


def info_fields(text):
    """CLUSTER INFO's text: CRLF lines, a final CRLF; [(name, value)]."""
    check(text.endswith(b"\r\n"), "CLUSTER INFO ends with CRLF: %r" % text[-20:])
    lines = text[:-2].split(b"\r\n")
    check(all(b"\n" not in ln and b"\r" not in ln for ln in lines),
          "CLUSTER INFO lines end with CRLF only")
    return [tuple(ln.decode().split(":", 1)) for ln in lines]


def node_lines(text):
    """CLUSTER NODES' text: one line a node, each ending with LF."""
    s = text.decode()
    check(s.endswith("\n"), "CLUSTER NODES ends with a newline")
    out = []
    for ln in s[:-1].split("\n"):
        m = NODE_LINE.match(ln)
        check(m is not None, "CLUSTER NODES line %r" % ln)
        out.append(m.groups())
    return out


def pool_conf(name, listen_host, listen, servers, extra=""):
    return ("%s:\n  listen: %s:%d\n  redis: true\n  distribution: ketama\n  hash: fnv1a_64\n"
            "  timeout: 2000\n%s  servers:\n%s" % (
                name, listen_host, listen, extra,
                "".join("   - 127.0.0.1:%d:1 s%d\n" % (p, i) for i, p in enumerate(servers))))


def myid(port, host="127.0.0.1"):
    c = Conn(port, host=host)
    got = c.call("CLUSTER", "MYID")
    c.close()
    return got


def test_shapes(env):
    ref = cluster_node(env)
    wait_cluster_ok(ref)
    backend, _ = env.redis()
    alpha, beta = free_ports(2)
    env.proxy(BIN, pool_conf("alpha", "0.0.0.0", alpha, [backend]) +
              pool_conf("beta", "127.0.0.1", beta, [backend]), [alpha, beta], workers=3)
    r, c = Conn(ref), Conn(alpha)
    by = SetGetBystander(alpha, "shapes")

    # The same structure as the real node's, field by field.
    for cmd in (("CLUSTER", "SLOTS"), ("CLUSTER", "SHARDS")):
        want, got = r.call(*cmd), c.call(*cmd)
        check_eq(skeleton(got), skeleton(want), " ".join(cmd) + " shaped as redis-server's")
    me = c.call("CLUSTER", "MYID")
    check(ID.match(me.decode()) is not None, "MYID is 40 lowercase hex digits: %r" % me)
    check(ID.match(r.call("CLUSTER", "MYID").decode()) is not None, "the real node's too")
    check_eq(c.call("CLUSTER", "SLOTS"), [[0, SLOTS - 1, [b"127.0.0.1", alpha, me, []]]],
             "SLOTS: the proxy, where the client reached it, owns every slot")
    shards = c.call("CLUSTER", "SHARDS")
    check_eq(shards, [[b"slots", [0, SLOTS - 1], b"nodes", [[
        b"id", me, b"port", alpha, b"ip", b"127.0.0.1", b"endpoint", b"127.0.0.1",
        b"role", b"master", b"replication-offset", 0, b"health", b"online"]]]], "SHARDS")
    mine, theirs = node_lines(c.call("CLUSTER", "NODES")), node_lines(r.call("CLUSTER", "NODES"))
    check_eq(len(theirs), 1, "the real node's NODES: one line")
    check_eq(mine, [(me.decode(), "127.0.0.1", str(alpha), "0", None, "myself,master", "0",
                     "0", "0", "0", str(SLOTS - 1))], "NODES: the proxy, cport 0, epoch 0")
    check_eq(theirs[0][5], "myself,master", "the real node's flags")
    want, got = info_fields(r.call("CLUSTER", "INFO")), info_fields(c.call("CLUSTER", "INFO"))
    check_eq([k for k, _ in got], [k for k, _ in want], "CLUSTER INFO's fields, in order")
    check_eq(dict(got)["cluster_state"], "ok", "cluster_state")
    check_eq([dict(got)[k] for k in ("cluster_slots_assigned", "cluster_slots_ok",
                                     "cluster_known_nodes", "cluster_size")],
             [str(SLOTS), str(SLOTS), "1", "1"], "CLUSTER INFO's counts")
    for cmd in (("CLUSTER", "LINKS"), ("READONLY",), ("READWRITE",), ("ASKING",),
                ("readonly",), ("cluster", "links")):
        check_eq(c.call(*cmd), r.call(*cmd), " ".join(cmd))
    check(isinstance(c.call("CLUSTER", "HELP"), list), "CLUSTER HELP")
    # KEYSLOT: the real node's numbers (hash tags, binary, empty, large).
    keys = [b"foo", b"123456789", b"{user1}.a", b"{user1}.b", b"{}x", b"a{b", b"a}b{c",
            b"{a}{b}", b"{{a}}", b"", b"{", b"}", b"\x00\xff\r\n", b"{\x00}z", b"\xff" * 1000,
            b"x" * 70000]
    for k in keys:
        check_eq(c.call("CLUSTER", "KEYSLOT", k), r.call("CLUSTER", "KEYSLOT", k),
                 "KEYSLOT %r" % k[:20])
    # Errors: redis-server's texts.
    for cmd in (("CLUSTER",), ("cluster",), ("CLUSTER", "FOO"), ("cluster", "nosuch", "x"),
                ("CLUSTER", "KEYSLOT"), ("CLUSTER", "KEYSLOT", "a", "b"),
                ("CLUSTER", "SLOTS", "x"), ("CLUSTER", "SHARDS", "x"), ("CLUSTER", "NODES", "x"),
                ("CLUSTER", "INFO", "x"), ("CLUSTER", "MYID", "x"), ("CLUSTER", "LINKS", "x"),
                ("CLUSTER", "HELP", "x"), ("READONLY", "x"), ("READWRITE", "x"),
                ("ASKING", "x"), ("cluster", "keyslot")):
        want = r.call(*cmd)
        check(isinstance(want, tuple), "the real node refuses %r" % (cmd,))
        check_eq(c.call(*cmd), want, "error for %r" % (cmd,))
    # What a proxy cannot honestly do: refused with its reason.
    for sub, args in (("countkeysinslot", ["1"]), ("getkeysinslot", ["1", "10"]),
                      ("meet", ["127.0.0.1", "1"]), ("addslots", ["1"]),
                      ("setslot", ["1", "stable"]),
                      ("failover", []), ("reset", []), ("replicas", [me]), ("forget", [me])):
        got = c.call("CLUSTER", sub, *args)
        check(isinstance(got, tuple) and
              got[1].startswith("ERR the proxy refuses 'cluster|%s': " % sub),
              "CLUSTER %s refused: %r" % (sub, got))

    # One id from every worker and connection; INFO says cluster_enabled.
    workers = set()
    for _ in range(30):
        x = Conn(alpha)
        check_eq(x.call("CLUSTER", "MYID"), me, "MYID on a new connection")
        info = x.call("INFO")
        workers |= {ln for ln in info.split(b"\r\n") if ln.startswith(b"proxy_worker:")}
        check(b"\r\ncluster_enabled:1\r\n" in info, "INFO: cluster_enabled:1")
        x.close()
    check(len(workers) >= 2, "connections reached several workers: %r" % workers)
    other = myid(beta)
    check(ID.match(other.decode()) and other != me, "another pool, another id: %r" % other)
    # Another proxy on the host, the same pools on other ports: other ids.
    alpha2, beta2 = free_ports(2)
    env.proxy(BIN, pool_conf("alpha", "0.0.0.0", alpha2, [backend]) +
              pool_conf("beta", "127.0.0.1", beta2, [backend]), [alpha2, beta2], workers=1)
    check(myid(alpha2) not in (me, other) and myid(beta2) not in (me, other),
          "another proxy, other ids")
    # A pool on 0.0.0.0 names the address the client reached.
    try:
        x = Conn(alpha, host="127.0.0.2")
    except OSError:
        x = None
        print("  (no 127.0.0.2 here: that check skipped)")
    if x:
        check_eq(x.call("CLUSTER", "SLOTS")[0][2][:2], [b"127.0.0.2", alpha],
                 "reached at 127.0.0.2")
        check_eq(node_lines(x.call("CLUSTER", "NODES"))[0][1], "127.0.0.2", "NODES' ip")
        check_eq(x.call("CLUSTER", "MYID"), me, "the same id by any address")
        x.close()
    check_eq(myid(alpha), me, "the id stays")
    by.done()
    c.close()
    r.close()


def test_pyredis_cluster(env):
    servers = [env.redis()[0] for _ in range(3)]
    listen = free_port()
    env.proxy(BIN, pool_conf("p", "127.0.0.1", listen, servers), [listen], workers=2)
    by = SetGetBystander(listen, "rc")
    rc = RedisCluster(host="127.0.0.1", port=listen, socket_timeout=15)
    nodes = rc.get_nodes()
    check_eq([(n.host, n.port, n.server_type) for n in nodes],
             [("127.0.0.1", listen, "primary")], "RedisCluster sees the proxy as its one node")
    keys = ["key:%d" % i for i in range(400)]
    for i, k in enumerate(keys):
        check(rc.set(k, "v%d" % i), "SET %s" % k)
    check_eq([rc.get(k) for k in keys], [b"v%d" % i for i in range(400)], "GET each key")
    check_eq(rc.mget_nonatomic(keys), [b"v%d" % i for i in range(400)], "MGET (by slot)")
    check(rc.mset_nonatomic({k: "w" + k for k in keys[:200]}), "MSET (by slot)")
    check_eq(rc.mget_nonatomic(keys[:200]), [("w" + k).encode() for k in keys[:200]],
             "MGET after MSET")
    tagged = ["{user7}.%d" % i for i in range(20)]
    check(rc.mset({k: k for k in tagged}), "MSET of one slot")
    check_eq(rc.mget(tagged), [k.encode() for k in tagged], "MGET of one slot")
    for n in range(300):
        rc.incr("ctr:%d" % (n % 20))
    check_eq([int(rc.get("ctr:%d" % i)) for i in range(20)], [15] * 20, "INCR counts")
    pipe = rc.pipeline()
    for k in keys[200:300]:
        pipe.set(k, "p" + k)
        pipe.get(k)
    got = pipe.execute()
    check_eq(got[1::2], [("p" + k).encode() for k in keys[200:300]], "a cluster pipeline")
    check_eq(rc.delete(*keys[::2]), 200, "DEL of 200 keys over every slot")
    check_eq(rc.exists(*keys), 200, "EXISTS: the other 200 are left")
    check_eq(rc.mget_nonatomic(keys[:10]),
             [None if i % 2 == 0 else b"w" + keys[i].encode() for i in range(10)],
             "deleted keys read as nil")
    # The proxy placed them: every server holds some.
    sizes = [redis.Redis(port=p).dbsize() for p in servers]
    check(all(s > 20 for s in sizes), "keys spread over the servers: %r" % sizes)
    rc.close()
    by.done()


def test_redis_cli(env):
    if not shutil.which("redis-cli"):
        print("  (no redis-cli: skipped)")
        return
    servers = [env.redis()[0] for _ in range(2)]
    listen = free_port()
    env.proxy(BIN, pool_conf("p", "0.0.0.0", listen, servers), [listen])

    def cli(*args):
        r = subprocess.run(["redis-cli", "-c", "-p", str(listen)] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
        return r.stdout.decode().strip()
    for i in range(20):
        check_eq(cli("set", "cli:%d" % i, "v%d" % i), "OK", "redis-cli -c set")
    for i in range(20):
        check_eq(cli("get", "cli:%d" % i), "v%d" % i, "redis-cli -c get")
    check_eq(cli("cluster", "keyslot", "foo"), "12182", "redis-cli -c cluster keyslot")
    check(cli("cluster", "nodes").endswith("connected 0-16383"), "redis-cli -c cluster nodes")


def test_hostile(env):
    ref = cluster_node(env)
    wait_cluster_ok(ref)
    servers = [env.redis()[0] for _ in range(2)]
    listen = free_port()
    env.proxy(BIN, pool_conf("p", "127.0.0.1", listen, servers), [listen], workers=2)
    by = SetGetBystander(listen, "hostile")
    r, c = Conn(ref), Conn(listen)
    me = c.call("CLUSTER", "MYID")
    same_as_redis = [("CLUSTER",), ("CLUSTER", "SLOTS", "a", "b"), ("CLUSTER", "KEYSLOT"),
                     ("CLUSTER", "KEYSLOT", "k", "x", "y"), ("cluster", "INFO", ""),
                     ("CLUSTER", "NOSUCH"), ("CLUSTER", ""), ("READONLY", "a", "b"),
                     ("CLUSTER", "SLOTS" + "x" * 40), ("CLUSTER", "MYID") + ("x",) * 1000]
    for cmd in same_as_redis:
        want = r.call(*cmd)
        check_eq(c.call(*cmd), want, "error for %r" % (cmd[:3],))
    # Binary and long subcommand names: Redis's words, the name made safe.
    for sub in (b"\x00\xffslots", b"slots\r\nPING", b"s" * 5000):
        got = c.call("CLUSTER", sub)
        check(isinstance(got, tuple) and got[1].startswith("ERR unknown subcommand '") and
              got[1].endswith("'. Try CLUSTER HELP.") and "\n" not in got[1],
              "binary subcommand %r: %r" % (sub[:12], got))
    # Keys of any bytes and size: the real node's slots.
    for k in (b"\x00", b"{\xff\x00}abc", b"\r\n", b"k" * (4 << 20), b"{" + b"t" * 100000 + b"}"):
        check_eq(c.call("CLUSTER", "KEYSLOT", k), r.call("CLUSTER", "KEYSLOT", k),
                 "KEYSLOT of %d bytes" % len(k))
    # Inline, and a deep pipeline.
    c.send(b"CLUSTER KEYSLOT foo\r\nCLUSTER MYID\r\n")
    check_eq([c.reply(), c.reply()], [12182, me], "inline CLUSTER")
    got = c.deep_pipeline([("CLUSTER", "SLOTS"), ("CLUSTER", "NODES"), ("CLUSTER", "SHARDS"),
                           ("CLUSTER", "KEYSLOT", "x"), ("GET", "nope")] * 300)
    check(all(g == got[i % 5] for i, g in enumerate(got)), "300 rounds, the same answers")
    check_eq(got[4], None, "GET in between")
    # Inside MULTI: refused, the transaction aborted; subscribed: refused.
    check_eq(c.call("MULTI"), b"+OK", "MULTI")
    got = c.call("CLUSTER", "SLOTS")
    check(isinstance(got, tuple), "CLUSTER SLOTS inside MULTI refused: %r" % (got,))
    check(c.call("EXEC")[1].startswith("EXECABORT"), "EXEC aborts")
    s = Conn(listen)
    s.call("SUBSCRIBE", "ch")
    got = s.call("CLUSTER", "SLOTS")
    check(isinstance(got, tuple) and "only (P|S)SUBSCRIBE" in got[1], "subscribed: %r" % (got,))
    s.close()
    # A client that sends half a command and goes.
    h = socket.create_connection(("127.0.0.1", listen))
    h.sendall(enc("CLUSTER", "KEYSLOT", "x" * 1000)[:500])
    h.close()
    check_eq(c.call("CLUSTER", "MYID"), me, "still answering")
    check_eq(c.call("PING"), b"+PONG", "the connection is fine")
    by.done()
    c.close()
    r.close()


# ---- the fleet ------------------------------------------------------------------

class Fleet:
    """One etcd member, three redis-servers, pool `alpha` put in etcd by
    etcdctl (P/pools/alpha, then P/epoch), proxies started with --etcd."""

    def __init__(self, env):
        from etcdfleet import EtcdFleet
        self.env = env
        self.etcd = EtcdFleet(env, members=1)
        self.servers = [env.redis()[0] for _ in range(3)]
        self.prefix = "/chash-cluster-%d" % self.etcd.client_ports[0]
        pool = ("listen: 127.0.0.1:%d\nredis: true\ndistribution: ketama\nhash: fnv1a_64\n"
                "timeout: 2000\nservers:\n%s" % (
                    free_port(), "".join(" - 127.0.0.1:%d:1 r%d\n" % (p, i)
                                         for i, p in enumerate(self.servers))))
        self.etcd.etcdctl("put", self.prefix + "/pools/alpha", pool)
        self.etcd.etcdctl("put", self.prefix + "/epoch", "1")
        self.procs = {}

    def start(self, name, host, port):
        argv = [BIN, "--etcd", self.etcd.endpoints(), "--etcd-prefix", self.prefix,
                "--etcd-id", name, "--etcd-lease-ttl", "3", "--workers", "2", "-s", "0",
                "--listen", "alpha=%s:%d" % (host, port)]
        log = "proxy-%s-%d.log" % (name, port)
        p = self.env.spawn(argv, None, log)
        self.env.proxies.append((p, os.path.join(self.env.dir, log)))
        wait_port(port, p, timeout=20)
        self.procs[name] = p

    def stop(self, name):
        """SIGTERM: the proxy revokes its lease and leaves the fleet at once;
        checked as Env.check_proxies would (exit 0, no sanitizer report)."""
        p = self.procs.pop(name)
        entry = [e for e in self.env.proxies if e[0] is p][0]
        self.env.proxies.remove(entry)
        self.env.stop(p)
        check_eq(p.returncode, 0, "%s stops cleanly" % name)
        text = open(entry[1], errors="replace").read()
        check("Sanitizer" not in text and "runtime error" not in text,
              "sanitizer report in %s:\n%s" % (entry[1], text[-4000:]))


def call(port, *cmd):
    c = Conn(port)
    got = c.call(*cmd)
    c.close()
    return got


def wait_nodes(ports, count, timeout=20.0):
    """Until CLUSTER SLOTS through every port lists `count` nodes."""
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        got = [call(p, "CLUSTER", "SLOTS") for p in ports]
        if all(len(g) == count for g in got):
            return got
        time.sleep(0.1)
    raise AssertionError("CLUSTER SLOTS never listed %d nodes: %r" % (count, got))


def ranges(n):
    return [(k * SLOTS // n, (k + 1) * SLOTS // n - 1) for k in range(n)]


def requests(port):
    info = call(port, "INFO", "proxy")
    for ln in info.split(b"\r\n"):
        if ln.startswith(b"proxy_requests:"):
            return int(ln.split(b":")[1])
    raise AssertionError("no proxy_requests in INFO proxy")


class MapReader:
    """CLUSTER SLOTS and NODES on one connection in a loop, in a thread: each
    map must cover 0..16383 in order with ranges(n) for its n nodes, and
    NODES must agree with it."""

    def __init__(self, port):
        self.c = Conn(port)
        self.stop = threading.Event()
        self.errors, self.sizes, self.count = [], set(), 0
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop.is_set():
            try:
                slots, nodes = self.c.pipeline([("CLUSTER", "SLOTS"), ("CLUSTER", "NODES")])
                lines = node_lines(nodes)
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
                return
            n = len(slots)
            self.sizes.add(n)
            if [(e[0], e[1]) for e in slots] != ranges(n):
                self.errors.append("SLOTS %r" % slots)
            if not all(ID.match(e[2][2].decode()) for e in slots):
                self.errors.append("ids in %r" % slots)
            if len(lines) not in (n - 1, n, n + 1) or \
                    sum(ln[5] == "myself,master" for ln in lines) != 1:
                self.errors.append("NODES %r" % lines)  # a publication in between: +-1
            self.count += 1

    def done(self, sizes):
        self.stop.set()
        self.t.join(10)
        check(not self.errors, "map reader: %s" % self.errors[:3])
        check(self.count > 10 and self.sizes <= sizes,
              "map reader: %d maps of sizes %r" % (self.count, self.sizes))
        self.c.close()


def test_fleet(env):
    if not (shutil.which("etcd") and shutil.which("etcdctl")):
        print("  (no etcd: the fleet case skipped)")
        return
    # A real two-node cluster, for the shapes.
    a = cluster_node(env, [(0, 8191)])
    b = cluster_node(env, [(8192, SLOTS - 1)])
    check_eq(call(a, "CLUSTER", "MEET", "127.0.0.1", b, BUS_PORTS[b]), b"+OK", "MEET")
    f = Fleet(env)
    p0, p1, p2 = free_ports(3)
    f.start("p0", "127.0.0.1", p0)
    f.start("p1", "127.0.0.1", p1)
    s0, s1 = wait_nodes([p0, p1], 2)
    check_eq(s0, s1, "two proxies: the same CLUSTER SLOTS")
    id0, id1 = call(p0, "CLUSTER", "MYID"), call(p1, "CLUSTER", "MYID")
    check(id0 != id1 and ID.match(id0.decode()) and ID.match(id1.decode()), "two ids")
    check_eq([(e[0], e[1]) for e in s0], ranges(2), "half the slots each")
    check_eq([e[2][:3] for e in s0], [[b"127.0.0.1", p0, id0], [b"127.0.0.1", p1, id1]],
             "sorted by member id: p0 then p1, at their --listen addresses")
    check_eq(call(p0, "CLUSTER", "SHARDS"), call(p1, "CLUSTER", "SHARDS"), "the same SHARDS")
    n0, n1 = (node_lines(call(p, "CLUSTER", "NODES")) for p in (p0, p1))
    def strip(lines):
        return [ln[:5] + (ln[5].replace("myself,", ""),) + ln[6:] for ln in lines]
    check_eq(strip(n0), strip(n1), "the same NODES but for the myself flag")
    check_eq([ln[5] for ln in n0], ["myself,master", "master"], "p0 is myself on p0")
    check_eq([ln[5] for ln in n1], ["master", "myself,master"], "p1 is myself on p1")
    info = dict(info_fields(call(p1, "CLUSTER", "INFO")))
    check_eq((info["cluster_known_nodes"], info["cluster_size"]), ("2", "2"), "INFO counts")
    wait_cluster_ok(a, nodes=2)
    wait_cluster_ok(b, nodes=2)
    for cmd in (("CLUSTER", "SLOTS"), ("CLUSTER", "SHARDS")):
        check_eq(skeleton(call(p0, *cmd)), skeleton(call(a, *cmd)),
                 " ".join(cmd) + " shaped as a real two-node cluster's")
    check_eq([ln[5] for ln in sorted(node_lines(call(a, "CLUSTER", "NODES")),
                                     key=lambda ln: int(ln[9]))],
             ["myself,master", "master"], "the real cluster's NODES flags")

    # RedisCluster through p1 reaches both, and every key reads back.
    before = [requests(p0), requests(p1)]
    rc = RedisCluster(host="127.0.0.1", port=p1, socket_timeout=15)
    check_eq(sorted((n.host, n.port) for n in rc.get_nodes()),
             sorted([("127.0.0.1", p0), ("127.0.0.1", p1)]), "RedisCluster's nodes")
    keys = ["fk:%d" % i for i in range(300)]
    for k in keys:
        rc.set(k, k)
    for n in range(100):
        rc.incr("fctr:%d" % (n % 10))
    check_eq(rc.mget_nonatomic(keys), [k.encode() for k in keys], "read back through the fleet")
    check_eq([int(rc.get("fctr:%d" % i)) for i in range(10)], [10] * 10, "INCR counts")
    after = [requests(p0), requests(p1)]
    check(all(y - x > 150 for x, y in zip(before, after)),
          "both proxies served the cluster client: requests %r -> %r" % (before, after))
    # Any proxy serves any key: a plain client on p0 reads what went via p1.
    plain = redis.Redis(port=p0)
    check_eq(plain.mget(keys), [k.encode() for k in keys], "a stale map is never wrong")

    # A third proxy on 0.0.0.0: named by its host name; three ranges. Two
    # clients ask p0 for its map all along, while members come and go.
    readers = [MapReader(p0) for _ in range(2)]
    f.start("p2", "0.0.0.0", p2)
    s0, s1, s2 = wait_nodes([p0, p1, p2], 3)
    check_eq(s0, s1, "p0 and p1: the same SLOTS")
    check_eq([(e[0], e[1], e[2][1], e[2][2]) for e in s2],
             [(e[0], e[1], e[2][1], e[2][2]) for e in s0], "p2: the same ranges, ports, ids")
    check_eq([(e[0], e[1]) for e in s0], ranges(3), "a third each")
    host = socket.gethostname().encode()
    check_eq(s0[2][2][0], host, "a member on 0.0.0.0 is given by its host name")
    check_eq(s2[2][2][0], b"127.0.0.1", "...but by itself, where it was reached")
    node = call(p0, "CLUSTER", "SHARDS")[2][3][0]
    check_eq(node[6:10], [b"endpoint", host, b"hostname", host], "SHARDS: endpoint, hostname")
    check_eq(node[4:6], [b"ip", b""], "SHARDS: no ip known")
    check(node_lines(call(p0, "CLUSTER", "NODES"))[2][4] == "," + host.decode(),
          "NODES: ,hostname after the address")

    # p1 leaves: the others split in two; the cluster client carries on.
    f.stop("p1")
    s0, s2 = wait_nodes([p0, p2], 2)
    check_eq([(e[0], e[1], e[2][2]) for e in s0], [(e[0], e[1], e[2][2]) for e in s2],
             "p0 and p2 agree")
    check_eq([(e[0], e[1]) for e in s0], ranges(2), "halves again")
    check_eq([e[2][1] for e in s0], [p0, p2], "p0 and p2")
    rc2 = RedisCluster(host="127.0.0.1", port=p0, socket_timeout=15)
    check_eq(rc2.mget_nonatomic(keys), [k.encode() for k in keys], "read back after p1 left")
    for rd in readers:
        rd.done({2, 3})
    rc.close()
    rc2.close()
    plain.close()
    f.etcd.close()


if __name__ == "__main__":
    tests = [test_shapes, test_pyredis_cluster, test_redis_cli, test_hostile, test_fleet]
    only = os.environ.get("CLUSTER_EMU_ONLY")  # e.g. CLUSTER_EMU_ONLY=test_fleet
    run([t for t in tests if not only or t.__name__ in only.split(",")])

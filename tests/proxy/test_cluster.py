"""test_cluster.py - chash-proxy in front of a real Redis Cluster
(`distribution: redis-cluster`): three primaries with a replica each
(rediscluster.py), under a load of writes and reads through the proxy, each
acknowledged write checked against the cluster itself.

- routing: keys land on their slot's primary; MGET/MSET/DEL/EXISTS split
  by slot and merged; multi-key commands of one tag run; read_from:
  replica reads from the replicas (READONLY);
- reshard: a quarter of the slots (4096) move with `redis-cli --cluster
  reshard` under load: client errors and lost acknowledged writes must be
  0 (the proxy follows -MOVED and -ASK);
- failover: kill -9 a primary: with failover_wait its requests wait for
  the cluster's promotion (at most the write in flight fails), without it
  they fail until then; writes to the other ranges never fail;
- bad seeds: no cluster behind the seeds - a clear error, the proxy's other
  pool unharmed;
- a hostile node (a fake one: no real node does this) that redirects a key
  to itself for ever, or to an address no map names, or garbles -MOVED:
  each such request ends with an error in bounded time, the proxy never
  connects where the map does not say, a bystander on the same pool sees
  nothing;
- redis-py's RedisCluster through the proxy (python3-redis: Debian's
  /usr/bin/python3 runs this file).
"""
import json
import sys
import threading
import time

from harness import (Conn, FakeServer, SetGetBystander, check, check_eq, free_port,
                     proxy_binary, run, stats_json)
from rediscluster import (Cluster, Reader, Writer, acked, errors, outage, slot_of,
                          tag_for_slots)

FIGURES = {}


def start(env, cl, extra="", workers=2):
    listen, stats = free_port(), free_port()
    conf = ("cl:\n  listen: 127.0.0.1:%d\n  redis: true\n  distribution: redis-cluster\n"
            "  timeout: 5000\n%s%s" % (listen, extra, cl.seeds_yaml()))
    env.proxy(proxy_binary(), conf, [listen], workers=workers, stats_port=stats)
    return listen, stats


def shards_of(stats):
    """{primary address: [replica addresses]} of the pool's shards."""
    pool = stats_json(stats)["cl"]
    return {v["primary"]: sorted(r["addr"] for r in v.get("replicas", []))
            for k, v in pool.items() if isinstance(v, dict) and v.get("primary")}


def until(cond, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            got = cond()
        except OSError:  # the stats port a moment after the listener
            got = None
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("timed out: %s" % what)


def test_routing(env):
    cl = Cluster(env)
    listen, stats = start(env, cl)
    want = {"127.0.0.1:%d" % p: sorted("127.0.0.1:%d" % r for r in cl.replicas[p])
            for p in cl.primaries}
    until(lambda: shards_of(stats) == want, 10, "the proxy's shards are the cluster's: %s"
          % want)
    c = Conn(listen)
    keys = ["k:%d" % i for i in range(400)]
    check_eq(c.pipeline([("SET", k, "v-" + k) for k in keys]), [b"+OK"] * len(keys),
             "SETs through the proxy")
    got = cl.get_many(keys)
    check_eq([k for k in keys if got[k] != ("v-" + k).encode()], [],
             "keys on their slot's primary (read from the cluster itself)")
    check_eq(c.call("MGET", *keys), [("v-" + k).encode() for k in keys], "MGET over 400 slots")
    for k in keys[:20]:
        got = c.call("PROXY", "LOCATE", k)
        check_eq(got[0][1], b"127.0.0.1:%d" % cl.owner(k), "PROXY LOCATE %s" % k)
    ring = c.call("PROXY", "RING")
    check(ring[0].startswith(b"pool cl distribution redis-cluster") and len(ring) == 5,
          "PROXY RING: a line per shard: %r" % ring)
    check_eq(c.call("MSET", *sum([[k, "m-" + k] for k in keys[:100]], [])), b"+OK", "MSET")
    check_eq(c.call("EXISTS", *keys[:100], "nope"), 100, "EXISTS over slots")
    check_eq(c.call("MGET", keys[0], keys[99]), [b"m-k:0", b"m-k:99"], "MSET's values")
    check_eq(c.call("DEL", *keys[:50]), 50, "DEL over slots")
    # One tag, one slot: a multi-key command runs on its node.
    check_eq(c.call("SADD", "{u1}a", "x", "y"), 2, "SADD")
    check_eq(c.call("SADD", "{u1}b", "y", "z"), 2, "SADD")
    check_eq(c.call("SUNIONSTORE", "{u1}c", "{u1}a", "{u1}b"), 3, "SUNIONSTORE in one slot")
    # Two slots: refused, by the proxy (two nodes) or the node (one).
    a, b = "x", next("x%d" % i for i in range(1000) if slot_of("x%d" % i) != slot_of("x"))
    got = c.call("RENAME", a, b)
    check(isinstance(got, tuple) and got[1].startswith("CROSSSLOT"),
          "RENAME over two slots: %r" % (got,))
    got = c.call("DBSIZE")
    check_eq(got, 350 + 3, "DBSIZE summed over the primaries")
    c.close()
    # read_from: replica - the replicas answer (READONLY on their
    # connections), with what the primaries have once replicated.
    listen_r, stats_r = start(env, cl, "  read_from: replica\n")
    # Replication is asynchronous (a WAIT on a fresh connection waits for
    # nothing: it has written nothing), so the replicas are read until they
    # have caught up, for at most 10 s.
    r = Conn(listen_r)
    want = [("m-" if k in keys[:100] else "v-") + k for k in keys[50:]]

    def stale():
        got = r.pipeline([("GET", k) for k in keys[50:]])
        return [k for k, g, w in zip(keys[50:], got, want) if g != w.encode()]
    deadline = time.time() + 10
    left = stale()
    while left and time.time() < deadline:
        time.sleep(0.1)
        left = stale()
    check_eq(left, [], "reads from the replicas, once replicated")
    r.close()
    pool = stats_json(stats_r)["cl"]
    reads = sum(v.get("reads_replica", 0) for v in pool.values() if isinstance(v, dict))
    check(reads >= 350, "reads counted on replicas: %d" % reads)


def test_reshard(env):
    cl = Cluster(env)
    listen, stats = start(env, cl)
    src, dst, other = cl.primaries
    moving = [(cl.slots[src][0][0], cl.slots[src][0][0] + 4095)]
    w_move = Writer(listen, "wm", tag=tag_for_slots(moving))
    w_any = Writer(listen, "wa")
    w_other = Writer(listen, "wo", tag=cl.tag_on(other))
    reader = Reader(listen, w_any)
    by = SetGetBystander(listen, "b", tag=cl.tag_on(other), max_wait=3.0)
    time.sleep(0.5)
    t0 = time.time()
    job = cl.reshard(src, dst, 4096)
    job.wait(timeout=240)
    took = time.time() - t0
    time.sleep(1.0)
    for w in (w_move, w_any, w_other):
        w.stop()
    reader.stop()
    by.done("(a bystander on the third primary)")
    done = acked(w_move, w_any, w_other)
    sent = sum(len(w.log) for w in (w_move, w_any, w_other))
    errs = [x for w in (w_move, w_any, w_other) for x in errors(w)]
    check_eq(errs[:5], [], "client errors during the reshard")
    check(len(acked(w_move, after=t0, before=t0 + took)) > 20,
          "writes to the moving slots acknowledged during the reshard")
    lost = cl.verify_acked(done)
    check_eq(lost[:5], [], "acknowledged writes lost")
    check_eq(reader.wrong()[:5], [], "reads that did not see the acknowledged value")
    cl.refresh()
    check(all(cl.slot_map[s] == dst for s in range(moving[0][0], moving[0][1] + 1)),
          "the slots moved")
    pool = stats_json(stats)["cl"]
    FIGURES.setdefault("reshard 4096 slots s", []).append(round(took, 1))
    FIGURES.setdefault("writes during it", []).append(sent)
    FIGURES.setdefault("MOVED followed", []).append(pool["cluster_moved"])
    FIGURES.setdefault("ASK followed", []).append(pool["cluster_ask"])
    check(pool["cluster_moved"] + pool["cluster_ask"] > 0, "redirects were followed: %s"
          % {k: v for k, v in pool.items() if k.startswith("cluster")})


def test_failover(env):
    cl = Cluster(env)
    listen_w, stats_w = start(env, cl, "  failover_wait: 10000\n")
    listen_e, _ = start(env, cl, "  failover_wait: 0\n")
    dead, other = cl.primaries[0], cl.primaries[1]
    dead_slots, other_slots = cl.slots[dead], cl.slots[other]
    tag_dead, tag_other = cl.tag_on(dead), cl.tag_on(other)
    # A write may wait out the whole failover (failover_wait): a client
    # timeout longer than that.
    ww = Writer(listen_w, "ww", tag=tag_dead, timeout=20)
    we = Writer(listen_e, "we", tag=tag_dead, timeout=20)
    wo = Writer(listen_w, "wo", tag=tag_other, timeout=20)
    woe = Writer(listen_e, "woe", tag=tag_other, timeout=20)
    by = SetGetBystander(listen_w, "b", tag=tag_other, max_wait=3.0)
    time.sleep(0.5)
    t_kill = cl.kill_primary(dead)
    t_up, new = cl.wait_failover(dead, timeout=30)
    until(lambda: [x for x in ww.log if x.t_sent > t_up and x.error is None], 15,
          "writes of the dead range acknowledged again (failover_wait)")
    until(lambda: [x for x in we.log if x.t_sent > t_up and x.error is None], 15,
          "writes of the dead range acknowledged again (no failover_wait)")
    time.sleep(1.0)
    for w in (ww, we, wo, woe):
        w.stop()
    by.done("(a bystander on another primary)")
    check_eq(errors(wo)[:3], [], "writes to another primary's range (failover_wait)")
    check_eq(errors(woe)[:3], [], "writes to another primary's range (no failover_wait)")
    bad_w = errors(ww, after=t_kill)
    check(len(bad_w) <= 1, "failover_wait: at most the write in flight at the kill failed: %s"
          % [x.error for x in bad_w])
    first_w = [x for x in ww.log if x.t_sent > t_kill and x.error is None]
    first_e_bad, back_e = outage(we, t_kill - 1.0)
    check(first_e_bad is not None, "without failover_wait the dead range fails for a while")
    check(back_e is not None, "and comes back")
    FIGURES.setdefault("cluster failover (kill -> promoted) s", []).append(
        round(t_up - t_kill, 2))
    FIGURES.setdefault("failover_wait: first write back after the kill s", []).append(
        round(first_w[0].t_done - t_kill, 2))
    FIGURES.setdefault("no failover_wait: errors for s", []).append(
        round(back_e.t_sent - t_kill, 2))
    FIGURES.setdefault("no failover_wait: failed writes", []).append(len(errors(we)))
    lost = cl.verify_acked(acked(ww, we, wo, woe))
    # Redis replicates asynchronously: the promoted replica may lack the
    # primary's last writes. Reported, not asserted (the cluster's loss).
    FIGURES.setdefault("acknowledged writes the promoted replica lacked", []).append(len(lost))
    check(all(x[0].startswith("{%s}" % tag_dead) for x in lost),
          "only the dead range can lack writes: %s" % lost[:3])
    pool = stats_json(stats_w)["cl"]
    shard = [v for v in pool.values() if isinstance(v, dict)
             and v.get("primary") == "127.0.0.1:%d" % new]
    check(len(shard) == 1 and shard[0]["failovers"] == 1,
          "stats: the shard follows the promoted replica: %s" % shard)


def test_bad_seeds(env):
    plain, _ = env.redis()
    listen, stats = free_port(), free_port()
    other = free_port()
    conf = ("cl:\n  listen: 127.0.0.1:%d\n  redis: true\n  distribution: redis-cluster\n"
            "  servers:\n   - 127.0.0.1:%d:1\n   - 127.0.0.1:%d:1\n"
            "plain:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n"
            "   - 127.0.0.1:%d:1\n" % (listen, plain, free_port(), other, plain))
    env.proxy(proxy_binary(), conf, [listen, other], stats_port=stats)
    by = SetGetBystander(other, "b")
    c = Conn(listen)
    got = c.call("GET", "k")
    check(isinstance(got, tuple) and got[1].startswith("CLUSTERDOWN"),
          "a pool without a slot map: %r" % (got,))
    check_eq(c.call("PING"), b"+PONG", "the connection stays usable")
    c.close()
    time.sleep(0.3)
    by.done("(a pool beside one whose seeds are no cluster)")
    log = open(env.proxies[0][1], errors="replace").read()
    check("cluster support disabled" in log, "the log says why: %s" % log[-600:])


def test_tryagain(env):
    """A multi-key command whose slot is half migrated gets -TRYAGAIN from
    the node: the proxy asks again until the migration ends, then follows
    the -MOVED; the client sees its values."""
    cl = Cluster(env)
    listen, stats = start(env, cl)
    src, dst = cl.primaries[0], cl.primaries[1]
    tag = cl.tag_on(src)
    slot = slot_of("{%s}" % tag)
    a, b = "{%s}a" % tag, "{%s}b" % tag
    c = Conn(listen)
    check_eq(c.call("MSET", a, "1", b, "2"), b"+OK", "MSET of one slot")
    s, d = Conn(src), Conn(dst)
    check_eq(d.call("CLUSTER", "SETSLOT", slot, "IMPORTING", cl.ids[src]), b"+OK", "importing")
    check_eq(s.call("CLUSTER", "SETSLOT", slot, "MIGRATING", cl.ids[dst]), b"+OK", "migrating")
    check_eq(s.call("MIGRATE", "127.0.0.1", dst, "", 0, 5000, "KEYS", a), b"+OK", "MIGRATE a")
    by = SetGetBystander(listen, "b", tag=cl.tag_on(dst), max_wait=1.0)
    got = []
    t = threading.Thread(target=lambda: got.append(c.call("MGET", a, b)), daemon=True)
    t.start()
    time.sleep(0.4)
    check(t.is_alive(), "the MGET waits while its slot is half moved")
    check_eq(s.call("MIGRATE", "127.0.0.1", dst, "", 0, 5000, "KEYS", b), b"+OK", "MIGRATE b")
    for node in cl.primaries:
        x = Conn(node)
        check_eq(x.call("CLUSTER", "SETSLOT", slot, "NODE", cl.ids[dst]), b"+OK", "slot moved")
        x.close()
    t.join(5)
    check_eq(got, [[b"1", b"2"]], "MGET's values once the slot moved")
    by.done("(another primary's keys)")
    pool = stats_json(stats)["cl"]
    check(pool["cluster_retried"] > 0, "stats: -TRYAGAIN retried: %s" % pool["cluster_retried"])
    for x in (c, s, d):
        x.close()


def bulk(b):
    return b"$%d\r\n%s\r\n" % (len(b), b)


def test_hostile_node(env):
    store = {}
    far = []

    def answer(req):
        name = req[0].upper() if req else b""
        if name == b"CLUSTER":
            node = (b"*14\r\n" + bulk(b"id") + bulk(b"f" * 40) + bulk(b"port") +
                    b":%d\r\n" % fake.port + bulk(b"ip") + bulk(b"127.0.0.1") +
                    bulk(b"endpoint") + bulk(b"127.0.0.1") + bulk(b"role") + bulk(b"master") +
                    bulk(b"replication-offset") + b":0\r\n" + bulk(b"health") + bulk(b"online"))
            return (b"*1\r\n*4\r\n" + bulk(b"slots") + b"*2\r\n:0\r\n:16383\r\n" +
                    bulk(b"nodes") + b"*1\r\n" + node)
        if name == b"INFO":
            return bulk(b"role:master\r\nmaster_repl_offset:0\r\n")
        key = req[1] if len(req) > 1 else b""
        slot = slot_of(key)
        if key.startswith(b"loop"):
            return b"-MOVED %d 127.0.0.1:%d\r\n" % (slot, fake.port)
        if key.startswith(b"far"):
            far.append(key)
            return b"-ASK %d 10.255.255.1:6379\r\n" % slot
        if key.startswith(b"bad"):
            return b"-MOVED x\r\n"
        if name == b"SET":
            store[key] = req[2]
            return b"+OK\r\n"
        if name == b"GET":
            return bulk(store[key]) if key in store else b"$-1\r\n"
        return b"+OK\r\n"

    fake = FakeServer(True, answer)
    listen, stats = free_port(), free_port()
    conf = ("cl:\n  listen: 127.0.0.1:%d\n  redis: true\n  distribution: redis-cluster\n"
            "  timeout: 5000\n  servers:\n   - 127.0.0.1:%d:1\n" % (listen, fake.port))
    env.proxy(proxy_binary(), conf, [listen], stats_port=stats)
    until(lambda: shards_of(stats), 10, "the fake node's map taken")
    by = SetGetBystander(listen, "b", max_wait=1.0)
    c = Conn(listen)
    t0 = time.time()
    got = c.call("GET", "loop1")
    check(isinstance(got, tuple) and got[1].startswith("MOVED"),
          "a redirect loop ends with the node's error: %r" % (got,))
    check(time.time() - t0 < 1.0, "and soon")
    t0 = time.time()
    got = c.call("GET", "far1")
    took = time.time() - t0
    check(isinstance(got, tuple) and "no node serving slot" in got[1],
          "a redirect to an address no map names ends with an error: %r" % (got,))
    check(took < 4.0, "after the wait for a map (%.1fs)" % took)
    got = c.call("GET", "bad1")
    check(isinstance(got, tuple) and got[1] == "MOVED x", "a garbled -MOVED reaches the client "
          "as it is: %r" % (got,))
    check_eq(c.pipeline([("SET", "k", "v"), ("GET", "k")]), [b"+OK", b"v"],
             "the connection goes on")
    c.close()
    by.done("(the same pool as the hostile keys)")
    pool = stats_json(stats)["cl"]
    check(pool["cluster_redirect_failed"] >= 2, "stats count the redirects that failed: %s"
          % pool["cluster_redirect_failed"])
    fake.close()


def test_pyredis_cluster(env):
    try:
        from redis.cluster import RedisCluster
    except ImportError:
        sys.exit("python3-redis with redis.cluster is needed (Debian's /usr/bin/python3)")
    cl = Cluster(env)
    listen, _ = start(env, cl)
    rc = RedisCluster(host="127.0.0.1", port=listen)
    keys = ["py:%d" % i for i in range(300)]
    for k in keys:
        check(rc.set(k, "v-" + k), "RedisCluster SET through the proxy")
    check_eq([rc.get(k) for k in keys], [("v-" + k).encode() for k in keys],
             "RedisCluster GET through the proxy")
    check_eq(rc.incr("{py}n"), 1, "INCR")
    check_eq(rc.delete(*keys[:10]), 10, "DEL")
    got = cl.get_many(keys[10:])
    check_eq([k for k in keys[10:] if got[k] != ("v-" + k).encode()], [],
             "RedisCluster's writes are in the cluster")
    # The same workload while the cluster behind the proxy moves slots:
    # the client, which thinks the proxy is the whole cluster, sees nothing.
    done, failed = {}, []
    stop = threading.Event()

    def write():
        i = 0
        while not stop.is_set():
            k, v = "rc:%d" % i, "v%d" % i
            try:
                if rc.set(k, v):
                    done[k] = v
                else:
                    failed.append((k, "not OK"))
            except Exception as e:  # noqa: BLE001 - every failure is a finding
                failed.append((k, repr(e)))
            i += 1
    t = threading.Thread(target=write, daemon=True)
    t.start()
    job = cl.reshard(cl.primaries[2], cl.primaries[0], 1024)
    job.wait(timeout=240)
    time.sleep(0.5)
    stop.set()
    t.join(30)
    rc.close()
    check_eq(failed[:3], [], "RedisCluster's writes through the proxy during a reshard")
    check(len(done) > 50, "RedisCluster wrote during the reshard: %d" % len(done))
    check_eq(cl.verify_acked(done)[:3], [], "RedisCluster's acknowledged writes lost")
    FIGURES.setdefault("RedisCluster writes during a 1024-slot reshard", []).append(len(done))


if __name__ == "__main__":
    names = sys.argv[2:]
    cases = [test_routing, test_reshard, test_failover, test_tryagain, test_bad_seeds,
             test_hostile_node, test_pyredis_cluster]
    run([t for t in cases if not names or t.__name__ in names])
    print("figures:", json.dumps(FIGURES))

#!/usr/bin/env python3
"""test_sentinel.py CHASH_PROXY - shards that are Sentinel groups, replicas
and read_from, min_replicas_ack (issue 14).

Real redis-server primaries and replicas and real redis-sentinel processes
on loopback (redisfleet.py), down-after-milliseconds 1000. A pool's servers
are named for their Sentinel master names: the name is the key's ring
identity, the address only the first guess. Every case that breaks
something has a bystander on the other shard, which must see no error.

- kill_primary: SIGKILL shard-a's primary under writes (min_replicas_ack 1,
  two replicas a shard): after Sentinel's +switch-master the proxy's writes
  to shard-a succeed again with no restart, no acknowledged write is lost,
  keys written before are read after (same shard, same values); stats
  show the new primary and one failover. A second proxy with
  failover_wait: no request sent after the kill gets an error. A third
  with read_from prefer_replica: reads of shard-a get no error throughout.
- stop_primary: SIGSTOP shard-a's primary, SIGCONT once Sentinel switched:
  every write acknowledged after the switch is on the new primary, none
  reaches the thawed one while it still says it is a primary, and it
  rejoins as a replica.
- sentinels_down: five sentinels elect, the proxy is told of three: the
  first dead before it starts and, after a first failover, another it
  listens to killed; with one sentinel left it follows a second failover.
- sentinel_auth: sentinels with requirepass: the right sentinel_password
  follows a failover; a wrong one, or none, is a clear log line and the
  proxy serves the first-guess addresses.
- read_from: replica and prefer_replica reads land on replicas (their
  commandstats and the proxy's reads_replica); with min_replicas_ack 1 a
  replica read after an acknowledged write is never stale; with the replica
  killed, then restarted, then stopped, prefer_replica reads get no error
  from the moment of the fault (the failed ones retried on the primary)
  and then go to the primary; replica-mode reads get a clear error.
- noreplicas: min_replicas_ack 1 and shard-a's only replica killed: writes
  to shard-a answer -NOREPLICAS (never +OK), reads still work.
- static_replicas: `replicas:` with no sentinel: read_from replica reads hit
  the listed replicas.
- replica_lag: a listed replica paused (CLIENT PAUSE WRITE: it answers, but
  applies nothing) more than replica_max_lag behind: prefer_replica reads
  go to the primary and are never stale; caught up, it is used again.
"""
import os
import random
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Closed, Conn, SetGetBystander, check, check_eq, free_port,  # noqa: E402
                     proxy_binary, run, stats_json, tag_of, wait_port)
from redisfleet import Fleet, info  # noqa: E402

BIN = proxy_binary()
FIGURES = {}
# The pool's timeout: long enough that a loaded machine's live server is
# never taken for a failed one (test_failure's reasoning).
TIMEOUT_MS = 1000
CHECK_MS = 500  # topology_check_interval


def pool(fleet, listen, extra="", sentinels=True, only=None):
    text = ("sigma:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: md5\n"
            "  distribution: ketama\n  hash_tag: \"{}\"\n  timeout: %d\n"
            "  topology_check_interval: %d\n%s" % (listen, TIMEOUT_MS, CHECK_MS, extra))
    if sentinels:
        text += fleet.sentinels_yaml(only=only)
    return text + fleet.servers_yaml()


def start(env, fleet, extra="", workers=1, sentinels=True, only=None):
    """A proxy on the fleet; (listen port, stats port)."""
    listen, stats = free_port(), free_port()
    # The stats port opens after the listener: the proxy asks the sentinels
    # and servers once before it serves (topology_init).
    wait_port(stats, env.proxy(BIN, pool(fleet, listen, extra, sentinels, only), [listen],
                               workers=workers, stats_port=stats))
    return listen, stats


def wait_topology(stats, fleet, what=""):
    """Until the proxy's stats show each shard's primary as Sentinel has
    it and every running replica usable (the proxy asks the sentinels and
    the servers once it runs; read_from: replica refuses reads until it
    knows a usable replica). Returns how long that took."""
    t0 = time.time()

    def known():
        doc = stats_json(stats)["sigma"]
        for name in fleet.names:
            s = doc[name]
            primary = fleet.primary_of(name)
            if s.get("primary") != "127.0.0.1:%d" % primary:
                return False
            usable = {r["addr"] for r in s.get("replicas", []) if r.get("usable")}
            want = {"127.0.0.1:%d" % p for p in fleet.replica_ports[name] +
                    [fleet.first_primary[name]]
                    if p != primary and fleet.proc[p].poll() is None and p not in fleet.stopped}
            if not want <= usable:
                return False
        return True
    until(known, 10, "the proxy's view of the shards %s" % what)
    FIGURES.setdefault("proxy knows the topology s", []).append(round(time.time() - t0, 2))
    return time.time() - t0


def proxy_log(env, listen):
    with open(os.path.join(env.dir, "proxy-%d.log" % listen), errors="replace") as f:
        return f.read()


def server_log(env, port, since, most=60):
    """The last `most` lines a redis-server logged from `since` (a time)
    on, but for the connections a second's checks open and close: with
    loglevel verbose, the clients it saw close and those it closed itself
    (a protocol error). Sentinel's CLIENT KILL leaves no line."""
    noise = re.compile(r" - (Accepted |DB \d+: |Client closed connection id=\d+ \S+ \S+ \S+ "
                       r"\S* ?age=0 )")
    out = []
    try:
        with open(os.path.join(env.dir, "redis-%d.log" % port), errors="replace") as f:
            for line in f:
                m = re.match(r"\d+:\w (\d+ \w+ \d+ \d+:\d+:\d+)\.(\d+) ", line)
                if m and not noise.search(line) and (
                        time.mktime(time.strptime(m.group(1), "%d %b %Y %H:%M:%S"))
                        + int(m.group(2)) / 1000.0 >= since):
                    out.append(line.rstrip())
    except OSError:
        pass
    return "\n".join(out[-most:]) or "(no line)"


def until(fn, timeout, what):
    """fn()'s first true value, polled until `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError("%s: not within %.0fs" % (what, timeout))
        time.sleep(0.05)


def shard_stats(stats, name):
    return stats_json(stats)["sigma"][name]


def cmd_calls(fleet, port, cmd="get"):
    """How many times a server ran `cmd` (INFO commandstats); 0 for one
    that is down or stopped (it runs nothing)."""
    if fleet.proc[port].poll() is not None or port in fleet.stopped:
        return 0
    got = info(port, "commandstats", fleet.redis_password).get("cmdstat_" + cmd)
    return int(got.split(",")[0].split("=")[1]) if got else 0


def missing_on(fleet, port, values):
    """Keys of `values` a server does not hold with that value."""
    c = fleet.conn(port, timeout=10)
    keys = sorted(values)
    out = []
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        for k, got in zip(chunk, c.deep_pipeline([("GET", k) for k in chunk])):
            if got != values[k].encode():
                out.append((k, got))
    c.close()
    return out


class Writer:
    """SETs of unique keys of one shard (hash tag `tag`) through the proxy,
    one at a time, in a thread; each recorded as (sent, answered, key,
    value, reply). A broken connection is an error and a new connection."""

    def __init__(self, port, tag, name, pause=0.002):
        self.port, self.tag, self.name, self.pause = port, tag, name, pause
        self.log = []
        self.stop_ev = threading.Event()
        self.c = None
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        i = 0
        while not self.stop_ev.is_set():
            k, v = "{%s}w:%s:%d" % (self.tag, self.name, i), "v%d" % i
            t0 = time.time()
            try:
                if self.c is None:
                    # Longer than failover_wait plus the pool's timeout.
                    self.c = Conn(self.port, timeout=20)
                got = self.c.call("SET", k, v)
            except (OSError, Closed) as e:
                got = ("err", "connection: %r" % e)
                if self.c:
                    self.c.close()
                self.c = None
                time.sleep(0.05)
            self.log.append((t0, time.time(), k, v, got))
            i += 1
            time.sleep(self.pause)

    def stop(self):
        self.stop_ev.set()
        self.t.join(30)
        check(not self.t.is_alive(), "writer %s stops" % self.name)
        if self.c:
            self.c.close()

    def acked(self, after=0.0):
        """{key: value} of the writes answered +OK, sent at or after `after`."""
        return {k: v for t0, _, k, v, got in list(self.log) if got == b"+OK" and t0 >= after}

    def errors(self, after=0.0):
        return [(round(t0, 3), got) for t0, _, _, _, got in list(self.log)
                if got != b"+OK" and t0 >= after]

    def first_ok(self, after):
        """When the first +OK of a write sent after `after` came back."""
        for t0, t1, _, _, got in list(self.log):
            if t0 > after and got == b"+OK":
                return t1
        return None


class Reader:
    """GETs of keys whose values are known (`values`) through the proxy,
    one at a time, in a thread; each recorded as (sent, key, reply)."""

    def __init__(self, port, values):
        self.values = values
        self.keys = sorted(values)
        self.log = []
        self.stop_ev = threading.Event()
        self.c = Conn(port, timeout=20)
        self.rng = random.Random(3)
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop_ev.is_set():
            k = self.rng.choice(self.keys)
            t0 = time.time()
            try:
                got = self.c.call("GET", k)
            except (OSError, Closed) as e:
                self.log.append((t0, k, ("err", "connection: %r" % e)))
                return
            self.log.append((t0, k, got))
            time.sleep(0.002)

    def stop(self):
        self.stop_ev.set()
        self.t.join(30)
        self.c.close()

    def wrong(self, after=0.0):
        return [(round(t0 - after, 3), k, g) for t0, k, g in self.log
                if t0 >= after and g != self.values[k].encode()]


class ReadBystander(SetGetBystander):
    """A bystander for pools that read from replicas, where a GET right
    after a SET may read a replica that has not got it yet: it reads keys
    written (and replicated) before it started, checking each value, and
    SETs keys of its own, each of which must answer +OK."""

    def __init__(self, port, name, tag, fleet, keys=50, **kw):
        self.values = {"{%s}rb:%s:%d" % (tag, name, i): "r%d" % i for i in range(keys)}
        c = Conn(port)
        check_eq(c.pipeline([("SET", k, v) for k, v in self.values.items()]),
                 [b"+OK"] * keys, "read bystander %s: its keys" % name)
        c.close()
        wait_synced(fleet)
        self.rng = random.Random(7)
        super().__init__(port, name, tag=tag, **kw)

    def loop(self):
        keys = sorted(self.values)
        i = 0
        while not self.stop.is_set():
            if self.held.is_set():
                self.idle.set()
                time.sleep(0.005)
                continue
            self.idle.clear()
            k = self.rng.choice(keys)
            w = "{%s}rbw:%s:%d" % (self.tag, self.name, i % 50)
            t0 = time.time()
            try:
                got = self.c.pipeline([("GET", k), ("SET", w, "x%d" % i)])
            except Exception as e:  # noqa: BLE001
                self.errors.append(repr(e))
                return
            self.slowest = max(self.slowest, time.time() - t0)
            if got != [self.values[k].encode(), b"+OK"]:
                self.errors.append("%s, %s: %r" % (k, w, got))
            self.count += 1
            i += 1
            if self.pause:
                time.sleep(self.pause)


def wait_synced(fleet, timeout=10.0):
    """Until every linked replica that is not stopped has applied its
    primary's stream up to where it was at the call (writes may go on)."""
    targets = []
    for name in fleet.names:
        p = fleet.role(fleet.primary_of(name)) or {}
        for k, v in p.items():
            if re.match(r"slave\d+$", k):
                f = dict(x.split("=") for x in v.split(","))
                if int(f["port"]) not in fleet.stopped:
                    targets.append((int(f["port"]), int(p["master_repl_offset"])))

    def synced():
        return all(int((fleet.role(port) or {}).get("slave_repl_offset", -1)) >= want
                   for port, want in targets)
    until(synced, timeout, "replicas caught up with %s" % targets)


def failover(fleet, watch, name, how="kill"):
    """Kills (or stops) shard `name`'s primary; (old port, time of the
    fault, time of Sentinel's +switch-master, new port)."""
    old = fleet.primary_of(name)
    if how == "kill":
        fleet.kill(old)
    else:
        fleet.signal(old, signal.SIGSTOP)
    t_fault = time.time()
    t_switch, new = watch.wait_switch(name, after=t_fault, timeout=30)
    check(t_switch is not None, "Sentinel switched %s's primary (events: %s)"
          % (name, [e[2:] for e in watch.events][-10:]))
    check(new != old, "a new primary for %s" % name)
    FIGURES.setdefault("sentinel failover s", []).append(round(t_switch - t_fault, 2))
    return old, t_fault, t_switch, new


# ---- cases -----------------------------------------------------------------

def test_kill_primary(env):
    # Two replicas a shard: once one is promoted, the other still acks
    # min_replicas_ack: 1 (with one, every write would get -NOREPLICAS).
    fleet = Fleet(env, replicas=2)
    listen, stats = start(env, fleet, "  min_replicas_ack: 1\n  min_replicas_ack_timeout: 500\n",
                          workers=2)
    listen_w, stats_w = start(env, fleet, "  failover_wait: 8000\n")
    listen_r, _ = start(env, fleet, "  read_from: prefer_replica\n")
    ta, tb = tag_of(listen, "shard-a"), tag_of(listen, "shard-b")
    old_a = fleet.first_primary["shard-a"]
    before = stats_json(stats)["sigma"]
    for name in fleet.names:
        check_eq(before[name].get("primary"), "127.0.0.1:%d" % fleet.first_primary[name],
                 "stats: %s's primary before the failover" % name)
        check_eq(before[name].get("failovers"), 0, "stats: %s's failovers before" % name)

    # Keys of both shards before the failover, with their ring identity.
    c = Conn(listen)
    keys = ["k:%d" % i for i in range(400)]
    check_eq(c.pipeline([("SET", k, "old-" + k) for k in keys]), [b"+OK"] * len(keys),
             "writes before the failover")
    owner = {k: c.call("PROXY", "LOCATE", k)[0][0] for k in keys}
    check_eq(set(owner.values()), {b"shard-a", b"shard-b"}, "keys on both shards")

    watch = fleet.watch()
    by = SetGetBystander(listen, "b", tag=tb, max_wait=3.0)
    by_w = SetGetBystander(listen_w, "bw", tag=tb, max_wait=3.0)
    by_r = ReadBystander(listen_r, "br", tb, fleet, max_wait=3.0)
    w = Writer(listen, ta, "a")
    ww = Writer(listen_w, ta, "aw")
    reader = Reader(listen_r, {k: "old-" + k for k in keys if owner[k] == b"shard-a"})
    time.sleep(0.5)
    old, t_kill, t_switch, new = failover(fleet, watch, "shard-a")
    check_eq(old, old_a, "the first guess was the primary")
    back = until(lambda: w.first_ok(t_switch), 10, "writes to shard-a succeed again")
    back_w = until(lambda: ww.first_ok(t_kill), 15, "writes to shard-a succeed again "
                   "(failover_wait)")
    FIGURES.setdefault("writes back after the switch s (min_replicas_ack 1)", []).append(
        round(back - t_switch, 2))
    FIGURES.setdefault("writes back after the kill s (failover_wait 8000)", []).append(
        round(back_w - t_kill, 2))
    time.sleep(1.0)
    w.stop()
    ww.stop()
    reader.stop()
    by.done("(min_replicas_ack 1 proxy)")
    by_w.done("(failover_wait proxy)")
    by_r.done("(prefer_replica proxy)")
    watch.close()

    # min_replicas_ack 1: every acknowledged write was on a replica, and
    # Sentinel promotes the replica furthest ahead.
    acked = w.acked()
    check(len(w.acked(after=back - 0.001)) > 10, "writes acknowledged after the failover")
    check_eq(missing_on(fleet, new, acked), [], "acknowledged writes lost (on the new primary)")
    got = c.pipeline([("GET", k) for k in sorted(acked)])
    check_eq([k for k, g in zip(sorted(acked), got) if g != acked[k].encode()], [],
             "acknowledged writes not read back through the proxy")
    # failover_wait: a request sent after the kill waits for the new
    # primary instead of failing.
    check_eq(ww.errors(after=t_kill), [], "failover_wait: errors of writes sent after the kill")
    check(len(ww.errors()) <= 1, "failover_wait: at most the write in flight at the kill failed:"
          " %s" % ww.errors())
    # Same ring identity: the keys written before are where they were.
    check_eq({k: c.call("PROXY", "LOCATE", k)[0][0] for k in keys}, owner,
             "keys' shards after the failover")
    got = c.pipeline([("GET", k) for k in keys])
    check_eq([k for k, g in zip(keys, got) if g != ("old-" + k).encode()], [],
             "keys written before the failover read after it")
    c.close()

    after = stats_json(stats)["sigma"]
    check_eq(after["shard-a"].get("primary"), "127.0.0.1:%d" % new, "stats: shard-a's primary")
    check_eq(after["shard-a"].get("failovers"), 1, "stats: shard-a's failovers")
    check_eq(after["shard-b"].get("primary"), "127.0.0.1:%d" % fleet.first_primary["shard-b"],
             "stats: shard-b's primary")
    check_eq(after["shard-b"].get("failovers"), 0, "stats: shard-b's failovers")
    waited = stats_json(stats_w)["sigma"]["shard-a"]
    check(waited.get("failover_waited", 0) > 0, "stats: failover_waited counted: %s" % waited)
    # docs/proxy.md: with prefer_replica, reads keep working while a
    # shard's primary is down.
    check(len([1 for t0, _, _ in reader.log if t_kill < t0 < t_switch]) > 10,
          "reads of shard-a while it had no primary")
    wrong = reader.wrong(after=t_kill)
    check_eq(wrong[:5], [], "prefer_replica reads of shard-a from the kill on (switch at "
             "+%.2fs; %d of %d wrong, the last at +%.2fs)"
             % (t_switch - t_kill, len(wrong), len(reader.log), wrong[-1][0] if wrong else 0))


def test_stop_primary(env):
    fleet = Fleet(env)
    listen, stats = start(env, fleet)
    ta, tb = tag_of(listen, "shard-a"), tag_of(listen, "shard-b")
    watch = fleet.watch()
    by = SetGetBystander(listen, "b", tag=tb, max_wait=3.0)
    w = Writer(listen, ta, "a")
    time.sleep(0.5)
    old, t_stop, t_switch, new = failover(fleet, watch, "shard-a", how="stop")
    back = until(lambda: w.first_ok(t_switch), 10, "writes to shard-a succeed again")
    FIGURES.setdefault("writes back after the switch s (SIGSTOP)", []).append(
        round(back - t_switch, 2))
    # Thawed, the old primary still says it is one until a sentinel
    # converts it (some 8 s): a write the proxy sent it now would be
    # acknowledged and then lost to the resync.
    t_cont = time.time()
    fleet.cont(old)
    strays = []
    looks = 0
    while True:
        before = fleet.role(old) or {}
        mark = time.time()
        if before.get("role") != "master":
            break
        looks += 1
        recent = w.acked(after=t_switch)
        # A sentinel converting it ends with CLIENT KILL TYPE normal: a
        # look cut off by that proves nothing and is taken again.
        held = []
        try:
            c = fleet.conn(old)
            held = [k for k, g in zip(sorted(recent), c.pipeline([("EXISTS", k)
                                                                   for k in sorted(recent)]))
                    if g == 1] if recent else []
            c.close()
        except (OSError, Closed):
            pass
        after = fleet.role(old) or {}
        if after.get("role") == "master" and held:
            strays.extend(held)
        if time.time() - t_cont > 30:
            break
        time.sleep(0.2)
    check(looks > 0, "the thawed old primary was seen saying it is one (%r)" % before)
    check_eq(strays[:5], [], "writes acknowledged after the switch found on the thawed old "
             "primary while it said it was one (%.1fs, %d looks)" % (mark - t_cont, looks))
    fleet.wait_role(old, "slave", master_port=new, timeout=30)
    FIGURES.setdefault("old primary a replica again after SIGCONT s", []).append(
        round(time.time() - t_cont, 1))
    time.sleep(0.5)
    w.stop()
    by.done()
    watch.close()
    post = w.acked(after=t_switch)
    check(len(post) > 10, "writes acknowledged after the switch")
    check_eq(missing_on(fleet, new, post)[:5], [],
             "writes acknowledged after the switch missing on the new primary")
    wait_synced(fleet)
    check_eq(missing_on(fleet, old, post)[:5], [], "and on the old one, now its replica")
    s = shard_stats(stats, "shard-a")
    check_eq(s.get("primary"), "127.0.0.1:%d" % new, "stats: shard-a's primary")
    check_eq(s.get("failovers"), 1, "stats: shard-a's failovers")


def listening_sentinels(fleet, watch):
    """Sentinels on which someone other than our watcher subscribes."""
    ours = {c.s.getsockname()[1] for c in watch.conns}
    out = []
    for sp in fleet.live_sentinels():
        listing = fleet.ask(sp, "CLIENT", "LIST").decode()
        for line in listing.splitlines():
            f = dict(x.split("=", 1) for x in line.split(" ") if "=" in x)
            if int(f.get("sub", 0)) + int(f.get("psub", 0)) > 0 and \
                    int(f["addr"].rsplit(":", 1)[1]) not in ours:
                out.append(sp)
                break
    return out


def bystander_done(env, watch, by, since, name, primary, what):
    """by.done for a bystander on shard `name` (its primary at `primary`)
    started at `since`; its failure says what Sentinel did to that shard
    meanwhile (a SLAVEOF to a server goes with a CLIENT KILL of its
    clients) and what the primary logged."""
    try:
        by.done("(%s; Sentinel on %s: %s)" % (what, name, watch.story(name, since)))
    except AssertionError as e:
        raise AssertionError("%s\n--- redis-%d.log (%s's primary) from the bystander's start:\n%s"
                             % (e, primary, name, server_log(env, primary, since))) from None


def test_sentinels_down(env):
    # Five sentinels elect; the proxy is told of three, the first dead
    # before it starts and, later, the one it listens to first killed: it
    # is left one sentinel, while three of five still elect.
    fleet = Fleet(env, sentinels=5)
    listed = fleet.sentinel_ports[:3]
    fleet.kill_sentinel(listed[0])
    listen, stats = start(env, fleet, only=listed)
    ta, tb = tag_of(listen, "shard-a"), tag_of(listen, "shard-b")
    watch = fleet.watch()
    t_by = time.time()
    by = SetGetBystander(listen, "b", tag=tb, max_wait=3.0)
    w = Writer(listen, ta, "a")
    time.sleep(0.5)
    _, _, t_switch, new_a = failover(fleet, watch, "shard-a")
    until(lambda: w.first_ok(t_switch), 10, "writes to shard-a succeed again (one sentinel "
          "down from the start)")
    time.sleep(0.5)
    w.stop()
    bystander_done(env, watch, by, t_by, "shard-b", fleet.first_primary["shard-b"],
                   "shard-a's failover")
    check_eq(missing_on(fleet, new_a, w.acked(after=t_switch))[:5], [],
             "writes acknowledged after the switch on shard-a's new primary")

    listening = listening_sentinels(fleet, watch)
    print("  proxy subscribed on sentinels %s; live %s, listed %s"
          % (listening, fleet.live_sentinels(), listed))
    victims = ([p for p in listed if p in listening] or listed[1:])[:1]
    for sp in victims:
        fleet.kill_sentinel(sp)
    t_by = time.time()
    by = SetGetBystander(listen, "a", tag=ta, max_wait=3.0)
    w = Writer(listen, tb, "b")
    time.sleep(1.0)
    _, _, t_switch, new_b = failover(fleet, watch, "shard-b")
    until(lambda: w.first_ok(t_switch), 10, "writes to shard-b succeed again (sentinel %s "
          "killed mid-test)" % victims)
    time.sleep(0.5)
    w.stop()
    bystander_done(env, watch, by, t_by, "shard-a", new_a, "shard-b's failover")
    watch.close()
    check_eq(missing_on(fleet, new_b, w.acked(after=t_switch))[:5], [],
             "writes acknowledged after the switch on shard-b's new primary")
    s = stats_json(stats)["sigma"]
    check_eq([s[n].get("primary") for n in fleet.names],
             ["127.0.0.1:%d" % new_a, "127.0.0.1:%d" % new_b], "stats: the new primaries")


def test_sentinel_auth(env):
    fleet = Fleet(env, sentinel_password="s3cret-pw")
    listen, stats = start(env, fleet, "  sentinel_password: s3cret-pw\n")
    bad, _ = start(env, fleet, "  sentinel_password: wrong-pw\n")
    nopw, _ = start(env, fleet)
    ta, tb = tag_of(listen, "shard-a"), tag_of(listen, "shard-b")
    # A wrong password, or none: said clearly, and the first guesses serve.
    for port, what in ((bad, "a wrong sentinel_password"), (nopw, "no sentinel_password")):
        line = until(lambda: [l for l in proxy_log(env, port).splitlines()
                              if re.search(r"(?i)sentinel", l)
                              and re.search(r"(?i)auth|password|WRONGPASS|NOAUTH", l)],
                     10, "a log line about the sentinels' password (%s)" % what)
        print("  %s logs: %s" % (what, line[0].strip()))
        c = Conn(port)
        for t in (ta, tb):
            check_eq(c.pipeline([("SET", "{%s}x" % t, "1"), ("GET", "{%s}x" % t)]),
                     [b"+OK", b"1"], "the first guesses serve with %s" % what)
        c.close()

    watch = fleet.watch()
    by = SetGetBystander(listen, "b", tag=tb, max_wait=3.0)
    by_bad = SetGetBystander(bad, "bb", tag=tb, max_wait=3.0)
    w = Writer(listen, ta, "a")
    time.sleep(0.5)
    _, _, t_switch, new = failover(fleet, watch, "shard-a")
    until(lambda: w.first_ok(t_switch), 10, "writes to shard-a succeed again (sentinel auth)")
    time.sleep(0.5)
    w.stop()
    by.done()
    by_bad.done("(wrong sentinel_password)")
    watch.close()
    check_eq(missing_on(fleet, new, w.acked(after=t_switch))[:5], [],
             "writes acknowledged after the switch on the new primary")
    check_eq(shard_stats(stats, "shard-a").get("primary"), "127.0.0.1:%d" % new,
             "stats: shard-a's primary")


def read_all(listen, values):
    """GETs of every key through the proxy: [(key, reply)] of those that
    did not return the value."""
    c = Conn(listen)
    keys = sorted(values)
    got = c.pipeline([("GET", k) for k in keys])
    c.close()
    return [(k, g) for k, g in zip(keys, got) if g != values[k].encode()]


def test_read_from(env):
    fleet = Fleet(env)
    prefer, st_p = start(env, fleet, "  read_from: prefer_replica\n")
    replica, st_r = start(env, fleet, "  read_from: replica\n  min_replicas_ack: 1\n")
    wait_topology(st_p, fleet, "(prefer_replica)")
    wait_topology(st_r, fleet, "(replica)")
    ta, tb = tag_of(prefer, "shard-a"), tag_of(prefer, "shard-b")
    pa, pb = fleet.first_primary["shard-a"], fleet.first_primary["shard-b"]
    ra, rb = fleet.replica_ports["shard-a"][0], fleet.replica_ports["shard-b"][0]

    # min_replicas_ack 1 with one replica: an acknowledged write is on the
    # replica, so a replica read right after it sees it.
    # (The GET is sent once the SET is answered: pipelined behind it, it
    # may reach the replica first; counted below, not checked.)
    c = Conn(replica)
    stale = []
    piped = 0
    for i in range(200):
        k = "{%s}ryw:%d" % (ta if i % 2 else tb, i)
        check_eq(c.call("SET", k, "v%d" % i), b"+OK", "write with min_replicas_ack 1")
        got = c.call("GET", k)
        if got != b"v%d" % i:
            stale.append((k, got))
        got = c.pipeline([("SET", k, "w%d" % i), ("GET", k)])
        check_eq(got[0], b"+OK", "pipelined write with min_replicas_ack 1")
        piped += got[1] != b"w%d" % i
    c.close()
    check_eq(stale[:5], [], "replica reads after writes acknowledged by a replica")
    FIGURES["read_from replica, min_replicas_ack 1: GETs pipelined behind their SET "
            "that were stale, of 200"] = piped

    values = {"{%s}r:%d" % (ta if i % 2 else tb, i): "val%d" % i for i in range(200)}
    c = Conn(prefer)
    check_eq(c.pipeline([("SET", k, v) for k, v in values.items()]), [b"+OK"] * 200, "writes")
    c.close()
    wait_synced(fleet)
    on_a = sum(1 for k in values if k.startswith("{%s}" % ta))
    servers = (pa, pb, ra, rb)

    def reads(listen, stats, want_calls, what):
        """Reads every key through `listen`; the GETs each server ran and
        the proxy's counters must be as `want_calls` says."""
        calls0 = [cmd_calls(fleet, p) for p in servers]
        s0 = stats_json(stats)["sigma"]
        check_eq(read_all(listen, values)[:5], [], "%s: reads" % what)
        calls = [cmd_calls(fleet, p) - b for p, b in zip(servers, calls0)]
        check_eq(calls, want_calls, "%s: GETs on primary a, b, replica a, b" % what)
        s1 = stats_json(stats)["sigma"]
        for name, n_primary, n_replica in (("shard-a", want_calls[0], want_calls[2]),
                                           ("shard-b", want_calls[1], want_calls[3])):
            check_eq([s1[name].get(f, 0) - s0[name].get(f, 0)
                      for f in ("reads_primary", "reads_replica")],
                     [n_primary, n_replica], "%s: %s's reads_primary, reads_replica"
                     % (what, name))

    for listen, stats, mode in ((prefer, st_p, "prefer_replica"), (replica, st_r, "replica")):
        by = ReadBystander(listen, "b-" + mode, tb, fleet, max_wait=3.0)
        by.hold()
        reads(listen, stats, [0, 0, on_a, 200 - on_a], "read_from %s" % mode)
        by.go()
        by.done("(read_from %s, every server up)" % mode)

    def without_replica_a(how):
        """With shard-a's replica down (`how`), once Sentinel has seen it:
        prefer_replica reads shard-a's keys on the primary, replica mode
        refuses them clearly; shard-b's reads are untouched."""
        until(lambda: any(p == ra and "s_down" in f for p, f in fleet.replicas_of("shard-a")),
              10, "Sentinel sees shard-a's replica down (%s)" % how)
        time.sleep(3 * CHECK_MS / 1000.0)
        by = ReadBystander(prefer, "b2-" + how, tb, fleet, max_wait=3.0)
        by.hold()
        reads(prefer, st_p, [on_a, 0, 0, 200 - on_a], "prefer_replica, replica down (%s)" % how)
        by.go()
        refused0 = shard_stats(st_r, "shard-a").get("reads_refused", 0)
        c = Conn(replica)
        got = c.call("GET", "{%s}r:1" % ta)
        c.close()
        check(isinstance(got, tuple) and "replica" in got[1].lower(),
              "read_from replica with no usable replica (%s): a clear error, got %r"
              % (how, got))
        FIGURES.setdefault("read_from replica, no replica", got)
        check_eq(shard_stats(st_r, "shard-a").get("reads_refused", 0) - refused0, 1,
                 "stats: reads_refused")
        by.done("(shard-a's replica %s)" % how)

    keys_a = [k for k in values if k.startswith("{%s}" % ta)]

    def read_window(what, seconds=2.5):
        """prefer_replica reads of shard-a's keys from the moment its
        replica fails: a read the replica fails is sent again to the
        primary, so none fails (docs/proxy.md, read_from)."""
        t0 = time.time()
        retried0 = shard_stats(st_p, "shard-a").get("reads_retried", 0)
        failed = []
        c = Conn(prefer)
        n = 0
        while time.time() - t0 < seconds:
            k = random.choice(keys_a)
            g = c.call("GET", k)
            n += 1
            if g != values[k].encode():
                failed.append((round(time.time() - t0, 2), g))
        c.close()
        retried = shard_stats(st_p, "shard-a").get("reads_retried", 0) - retried0
        FIGURES["prefer_replica reads retried on the primary, replica %s" % what] = retried
        check_eq(failed[:3], [], "prefer_replica reads (%d) from the moment shard-a's replica "
                 "was %s" % (n, what))
        return retried

    fleet.kill(ra)
    read_window("killed")
    without_replica_a("killed")

    # Back: the replica is used again.
    fleet.restart(ra, replicaof=pa)
    fleet.wait_role(ra, "slave", master_port=pa)
    wait_synced(fleet)
    until(lambda: not [1 for p, f in fleet.replicas_of("shard-a") if p == ra and "s_down" in f],
          10, "Sentinel sees shard-a's replica again")

    def replica_used():
        before = cmd_calls(fleet, ra)
        read_all(prefer, {k: values[k] for k in keys_a[:20]})
        return cmd_calls(fleet, ra) - before == 20
    until(replica_used, 10, "prefer_replica reads shard-a's replica again once it is back")

    # Stopped: its connections hang rather than fail; the first read sent
    # there waits out the pool's timeout, then goes to the primary.
    fleet.signal(ra, signal.SIGSTOP)
    check(read_window("stopped") >= 1, "stats: reads_retried counts the reads the frozen "
          "replica did not answer")
    without_replica_a("stopped")
    fleet.cont(ra)


def test_noreplicas(env):
    fleet = Fleet(env)
    listen, stats = start(env, fleet, "  min_replicas_ack: 1\n  min_replicas_ack_timeout: 500\n")
    ta, tb = tag_of(listen, "shard-a"), tag_of(listen, "shard-b")
    c = Conn(listen)
    check_eq(c.call("SET", "{%s}k" % ta, "before"), b"+OK", "a write with its replica up")
    by = SetGetBystander(listen, "b", tag=tb, max_wait=3.0)
    fleet.kill(fleet.replica_ports["shard-a"][0])
    failed0 = shard_stats(stats, "shard-a").get("write_ack_failed", 0)
    slowest = 0.0
    for i in range(10):
        t0 = time.time()
        got = c.call("SET", "{%s}k:%d" % (ta, i), "v")
        slowest = max(slowest, time.time() - t0)
        check(isinstance(got, tuple) and got[1].startswith("NOREPLICAS"),
              "a write with shard-a's replica dead: want -NOREPLICAS..., got %r" % (got,))
    print("  -%s" % got[1])
    FIGURES["NOREPLICAS write, slowest s (timeout 0.5)"] = round(slowest, 2)
    # A sanity bound, not a speed test: about the ack timeout, not the
    # pool's or a client's.
    check(slowest < 5.0, "NOREPLICAS within about min_replicas_ack_timeout (%.2fs)" % slowest)
    check_eq(shard_stats(stats, "shard-a").get("write_ack_failed", 0) - failed0, 10,
             "stats: write_ack_failed")
    check_eq(c.call("GET", "{%s}k" % ta), b"before", "reads on shard-a still work")
    check_eq(c.call("SET", "{%s}k" % tb, "b"), b"+OK", "writes on shard-b still acknowledged")
    c.close()
    by.done()


def test_static_replicas(env):
    fleet = Fleet(env, sentinels=0)
    listen, stats = start(env, fleet, "  read_from: replica\n" + fleet.replicas_yaml(),
                          sentinels=False)
    ta, tb = tag_of(listen, "shard-a"), tag_of(listen, "shard-b")
    values = {"{%s}s:%d" % (ta if i % 2 else tb, i): "v%d" % i for i in range(100)}
    c = Conn(listen)
    check_eq(c.pipeline([("SET", k, v) for k, v in values.items()]), [b"+OK"] * 100, "writes")
    c.close()
    wait_synced(fleet)
    servers = [fleet.first_primary["shard-a"], fleet.first_primary["shard-b"],
               fleet.replica_ports["shard-a"][0], fleet.replica_ports["shard-b"][0]]
    on_a = sum(1 for k in values if k.startswith("{%s}" % ta))

    def attempt():
        calls0 = [cmd_calls(fleet, p) for p in servers]
        s0 = stats_json(stats)["sigma"]
        check_eq(read_all(listen, values)[:5], [], "replica reads")
        calls = [cmd_calls(fleet, p) - b for p, b in zip(servers, calls0)]
        s1 = stats_json(stats)["sigma"]
        return calls, [s1[n].get("reads_replica", 0) - s0[n].get("reads_replica", 0)
                       for n in fleet.names]
    # The proxy may first have to ask the primaries how far behind the
    # replicas are (topology_check_interval).
    time.sleep(2 * CHECK_MS / 1000.0)
    calls, counted = attempt()
    check_eq(calls, [0, 0, on_a, 100 - on_a], "GETs on primary a, b, replica a, b")
    check_eq(counted, [on_a, 100 - on_a], "stats: reads_replica")


def test_replica_lag(env):
    # No sentinel: the replicas are listed, and a replica's lag is all
    # that can make it unusable here.
    fleet = Fleet(env, sentinels=0)
    listen, stats = start(env, fleet, "  read_from: prefer_replica\n  replica_max_lag: 1000\n"
                          + fleet.replicas_yaml(), sentinels=False)
    wait_topology(stats, fleet, "(static replicas)")
    ta, tb = tag_of(listen, "shard-a"), tag_of(listen, "shard-b")
    pa, ra = fleet.first_primary["shard-a"], fleet.replica_ports["shard-a"][0]
    values = {"{%s}lag:%d" % (ta, i): "old%d" % i for i in range(50)}
    c = Conn(listen)
    check_eq(c.pipeline([("SET", k, v) for k, v in values.items()]), [b"+OK"] * 50, "writes")
    wait_synced(fleet)
    by = ReadBystander(listen, "b", tb, fleet, max_wait=3.0)
    # CLIENT PAUSE WRITE on the replica: it still answers reads (and
    # PINGs), but applies nothing from its primary, so it falls behind.
    r = fleet.conn(ra)
    check_eq(r.call("CLIENT", "PAUSE", "20000", "WRITE"), b"+OK", "the replica paused")
    new = {k: "new%d-%s" % (i, "x" * 100) for i, k in enumerate(values)}
    check_eq(c.pipeline([("SET", k, v) for k, v in new.items()]), [b"+OK"] * 50,
             "writes the replica does not apply")
    behind = int(fleet.role(pa)["master_repl_offset"]) - int(
        fleet.role(ra)["slave_repl_offset"])
    check(behind > 1000, "the replica is more than replica_max_lag behind (%d bytes)" % behind)
    # The proxy measures the lag every topology_check_interval.
    time.sleep(3 * CHECK_MS / 1000.0)
    calls = cmd_calls(fleet, ra), cmd_calls(fleet, pa)
    check_eq(read_all(listen, new)[:5], [], "reads with the replica %d bytes behind" % behind)
    check_eq((cmd_calls(fleet, ra) - calls[0], cmd_calls(fleet, pa) - calls[1]), (0, 50),
             "GETs on shard-a's replica, primary")
    lagging = [x for x in shard_stats(stats, "shard-a").get("replicas", [])
               if x.get("addr") == "127.0.0.1:%d" % ra]
    check(lagging and not lagging[0].get("usable"), "stats: the replica not usable: %s" % lagging)
    check_eq(r.call("CLIENT", "UNPAUSE"), b"+OK", "the replica unpaused")
    r.close()
    wait_synced(fleet)

    def replica_used():
        before = cmd_calls(fleet, ra)
        check_eq(read_all(listen, new)[:5], [], "reads once the replica caught up")
        return cmd_calls(fleet, ra) - before == 50
    until(replica_used, 10, "prefer_replica reads the replica again once it caught up")
    c.close()
    by.done()


if __name__ == "__main__":
    run([test_static_replicas, test_replica_lag, test_noreplicas, test_read_from,
         test_stop_primary, test_sentinels_down, test_sentinel_auth, test_kill_primary])
    for k, v in FIGURES.items():
        print("%s: %s" % (k, v))

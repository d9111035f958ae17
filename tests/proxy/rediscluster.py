"""rediscluster.py - a real Redis Cluster on loopback for the proxy's tests:
N primaries with R replicas each (`redis-server --cluster-enabled yes`, made
one cluster by `redis-cli --cluster create`), started by harness.Env and
stopped by PID, with a small MOVED/ASK-following client, workload threads
that record every write, and a check of acknowledged writes against the
cluster itself.

    cl = Cluster(env)                         # 3 primaries, 1 replica each: ready
    cl.primaries, cl.replicas, cl.slots       # port lists, {primary: [replica]}, ranges
    cl.seeds_yaml()                           # "  servers:\\n   - 127.0.0.1:P:1\\n"...
    cl.owner("k"); cl.get_direct("k")         # who serves k now; its value there
    w = Writer(port, "w1", follow=True)       # SETs of unique keys, recorded
    job = cl.reshard(cl.primaries[0], cl.primaries[1], 4096); job.wait()
    t_kill = cl.kill_primary(p); t_up, new = cl.wait_failover(p)
    w.stop(); cl.verify_acked(acked(w))       # [] when no acknowledged write is lost

What was found against the real programs (redis-server and redis-cli
7.0.15, Debian 12, on a 2-core VM that other work shares; "noise" below is
3-4 busy-looping processes, and/or a dd writing 256 MB with fsync in a loop):
- `redis-cli --cluster create` takes 1.0 or 2.0 s on loopback (it checks
  once a second whether the nodes have met). When it returns every node may
  already say cluster_state:ok and `--cluster check` is happy, yet a node's
  CLUSTER NODES / CLUSTER SHARDS still lists the replicas as slotless
  primaries (roles travel by gossip), no replica's link is up, and one node
  was seen saying cluster_state:fail for 0.6 s more. wait_ready() waits for
  all of it: ready 0.8-1.3 s after create returns (2-3 s in all).
  repl-diskless-sync-delay 0, or each replica waits 5 s for its first sync.
- The cluster bus listens on port + 10000 by default: with ports picked
  below the ephemeral range (harness.free_ports) that lands in it, and a
  node died at start with "Could not create server TCP listening socket
  127.0.0.1:39558: bind: Address already in use" (3 runs of 12). Each node
  gets its own free --cluster-port instead (CLUSTER NODES: 127.0.0.1:P@B);
  redis-cli --cluster create/check/reshard work with it.
- CLUSTER SHARDS calls a replica whose replication offset is 0 (nothing
  written to its shard yet) health "loading", not "online".
- Failover after SIGKILL: the others flag the primary `fail?` (PFAIL) about
  node_timeout after an unanswered ping, FAIL (a majority of primaries
  agreed, by gossip) 0.2-0.9 s later, and its replica is elected 0.5-1 s
  after that (it waits 500 ms + random 0-500 ms + 1 s per rank), all in
  2 ms once it asks. Kill to promotion (seen polling CLUSTER NODES every
  50 ms), under ~5000 writes/s, over runs:
      node timeout 1000 ms: 2.0-2.8 s (median 2.3; the same under noise)
                   1500 ms: 2.5-3.6 s     2000 ms: 3.4-4.7 s
                   3000 ms: 4.5-6.0 s
  No node was ever marked FAIL that was not killed: 2 clusters x 120 s
  under writes with 4 busy loops, 1 cluster x 90 s under writes, a reshard,
  3 busy loops and the fsync loop (the worst PING round trip seen on any
  node: 0.15 s), and every self-test run, noisy or not, at 1000 ms.
  NODE_TIMEOUT_MS is therefore 1000: quick, with some 6x margin.
- cluster-require-full-coverage is yes by default: then from the moment a
  node marks the primary FAIL until the promotion (0.9 s measured), that
  node answers -CLUSTERDOWN The cluster is down to every command on every
  slot: writes to the other primaries' ranges fail too. Nodes here run with
  `cluster-require-full-coverage no` unless full_coverage=True: only the
  dead primary's range fails.
- cluster-replica-validity-factor 0: a replica always tries to fail over
  (with the default 10 it refuses once its link has been down for more
  than about 10 x node_timeout + repl-ping-replica-period: a primary
  stopped long enough, SIGSTOP, is then never replaced).
- What a client sees during the failover: on the dead primary's port the
  write in flight gets a reset (or EOF), every reconnect is refused at once
  (no timeout on loopback); the other nodes keep answering -MOVED to the
  dead port until the promotion, then -MOVED to the new primary (the other
  primary redirects to it within the 50 ms the poll needs to see the
  promotion); with full coverage, -CLUSTERDOWN as above. A client that
  re-reads CLUSTER SHARDS after a refused connection writes again 0-40 ms
  after the promotion. After it, CLUSTER SHARDS lists the old primary as a
  shard of its own: role master, health fail, no slots.
- Acknowledged writes lost by the failover: 0 in every run (loopback
  replication keeps up), but replication is asynchronous: a test must not
  count on 0 for the killed range (use WAIT for that).
- A killed primary restarted on its port and nodes-P.conf comes back as a
  replica of the node that replaced it at once (the first pong brings the
  newer config epoch) and resyncs; restart() waits: 0.1-0.3 s.
- `redis-cli --cluster reshard` tolerates concurrent writes and reads: in
  every run (some 25), 4096 slots moved under ~5000 SETs/s of new keys on
  all slots and GETs of acknowledged ones, through a MOVED/ASK-following
  client: no write or read failed, no acknowledged write was lost. It takes
  6-10 s on a quiet machine, 17-60 s under noise (every CLUSTER SETSLOT
  rewrites nodes-P.conf; some 10 round trips a slot). The client followed
  3000-4000 -MOVED and 0-4 -ASK a run (a slot is open for migration for
  about a millisecond), no -TRYAGAIN (single-key commands).
- refresh() trusts one live node's CLUSTER SHARDS, which may lag a change
  by a gossip round; wait_ready() compares every node's CLUSTER NODES.
- Nodes and reshards are started under `setpriv --pdeathsig KILL`: a test
  killed by a ctest timeout does not leave six orphan nodes behind.
"""
import os
import random
import shutil
import socket
import subprocess
import threading
import time
from collections import namedtuple

from harness import Closed, Conn, check, free_ports

SLOTS = 16384
_SETPRIV = shutil.which("setpriv")
NODE_TIMEOUT_MS = 1000

# ---- slots -------------------------------------------------------------------


def _crc16_table():
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def crc16(data):
    """CRC16/XMODEM (polynomial 0x1021, initial 0, not reflected): Redis
    Cluster's key hash. crc16(b"123456789") == 0x31C3."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc


def hash_part(key):
    """The bytes of a key that are hashed: between the first '{' and the
    first '}' after it, when that is not empty; else the whole key."""
    if isinstance(key, str):
        key = key.encode()
    s = key.find(b"{")
    if s >= 0:
        e = key.find(b"}", s + 1)
        if e > s + 1:
            return key[s + 1:e]
    return key


def slot_of(key):
    """The cluster slot of a key (str or bytes), computed here."""
    return crc16(hash_part(key)) % SLOTS


def tag_for_slots(ranges, prefix="t"):
    """A hash tag ("t17") whose keys fall in one of `ranges` [(start, end)]."""
    for i in range(100000):
        s = slot_of("%s%d" % (prefix, i))
        if any(a <= s <= b for a, b in ranges):
            return "%s%d" % (prefix, i)
    raise AssertionError("no tag falls in %s" % (ranges,))


# ---- replies -------------------------------------------------------------------


def err_text(reply):
    """An error reply's text, or None for any other reply."""
    if isinstance(reply, tuple) and reply and reply[0] == "err":
        return reply[1]
    return None


def redirect(reply):
    """('MOVED'|'ASK', slot, port) for a redirection reply, else None."""
    text = err_text(reply)
    if text and (text.startswith("MOVED ") or text.startswith("ASK ")):
        kind, slot, addr = text.split(" ")[:3]
        return kind, int(slot), int(addr.rsplit(":", 1)[1].split("@")[0])
    return None


def conn_error(e):
    """A connection failure in a word or two: "refused", "reset",
    "closed" (the peer closed), "timeout", or the exception's name."""
    if isinstance(e, ConnectionRefusedError):
        return "refused"
    if isinstance(e, (ConnectionResetError, BrokenPipeError)):
        return "reset"
    if isinstance(e, Closed):
        return "closed"
    if isinstance(e, socket.timeout):
        return "timeout"
    return e.__class__.__name__


def call(port, *args, timeout=2.0):
    """One command on a fresh connection; the reply."""
    c = Conn(port, timeout=timeout)
    try:
        return c.call(*args)
    finally:
        c.close()


def parse_nodes(text):
    """CLUSTER NODES text as {id: dict(port, flags (set), master (id or
    None), epoch, link, slots [(start, end)], open (migrating/importing
    markers))}."""
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 8:
            continue
        addr = f[1].split(",")[0].split("@")[0]
        slots, opened = [], []
        for s in f[8:]:
            if s.startswith("["):
                opened.append(s)
            elif "-" in s:
                a, b = s.split("-")
                slots.append((int(a), int(b)))
            else:
                slots.append((int(s), int(s)))
        out[f[0]] = {"id": f[0], "port": int(addr.rsplit(":", 1)[1]) if ":" in addr else 0,
                     "flags": set(f[2].split(",")), "master": None if f[3] == "-" else f[3],
                     "epoch": int(f[6]), "link": f[7], "slots": slots, "open": opened}
    return out


def parse_shards(reply):
    """CLUSTER SHARDS as [{"slots": [(start, end)], "nodes": [{field: value}]}]
    with str fields and int/str values."""
    out = []
    for shard in reply:
        d = dict(zip(shard[0::2], shard[1::2]))
        flat = d[b"slots"]
        nodes = []
        for n in d[b"nodes"]:
            nodes.append({k.decode(): (v.decode() if isinstance(v, bytes) else v)
                          for k, v in zip(n[0::2], n[1::2])})
        out.append({"slots": [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)],
                    "nodes": nodes})
    return out


def info(port, section="replication", timeout=2.0):
    """INFO SECTION (or CLUSTER INFO for section="cluster") as a dict of str."""
    got = (call(port, "CLUSTER", "INFO", timeout=timeout) if section == "cluster"
           else call(port, "INFO", section, timeout=timeout))
    if err_text(got):
        raise RuntimeError("INFO %s on %d: %s" % (section, port, err_text(got)))
    out = {}
    for line in got.decode().splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


# ---- a cluster client ---------------------------------------------------------


class ClusterClient:
    """A tiny cluster-aware client for one thread: a slots map from CLUSTER
    SHARDS, a connection per node, -MOVED updates the slot and goes there,
    -ASK sends ASKING then the command to the named node once, -TRYAGAIN
    waits 20 ms and retries. A connection error is returned as an error
    reply ("connection to P: ...") and the map is read again (from another
    node) before the next command; so is any -CLUSTERDOWN."""

    MAX_REDIRECTS = 16

    def __init__(self, seeds, timeout=5.0):
        self.seeds = [seeds] if isinstance(seeds, int) else list(seeds)
        self.known = list(self.seeds)
        self.timeout = timeout
        self.map = [None] * SLOTS
        self.conns = {}
        self.stale = True
        self.bad = set()            # ports whose last connection failed
        self.counts = {"MOVED": 0, "ASK": 0, "TRYAGAIN": 0, "refresh": 0}

    def conn(self, port):
        c = self.conns.get(port)
        if c is None:
            c = Conn(port, timeout=self.timeout)
            self.conns[port] = c
        return c

    def drop(self, port):
        c = self.conns.pop(port, None)
        if c:
            c.close()

    def refresh(self):
        """Reads the slots map from the first node that answers (those
        whose last connection failed last). False when none did."""
        order = [p for p in self.known if p not in self.bad] + [
            p for p in self.known if p in self.bad]
        for port in order:
            try:
                got = self.conn(port).call("CLUSTER", "SHARDS")
            except (OSError, Closed):
                self.drop(port)
                self.bad.add(port)
                continue
            if err_text(got):
                continue
            self.counts["refresh"] += 1
            new = [None] * SLOTS
            for shard in parse_shards(got):
                prim = [n for n in shard["nodes"] if n.get("role") == "master"]
                for n in shard["nodes"]:
                    if n["port"] not in self.known:
                        self.known.append(n["port"])
                if prim:
                    for a, b in shard["slots"]:
                        new[a:b + 1] = [prim[0]["port"]] * (b - a + 1)
            self.map = new
            self.stale = False
            return True
        return False

    def call(self, key, *args):
        """Runs args (a command on `key`) where key's slot lives; the reply
        (an error reply is ('err', text))."""
        if self.stale:
            self.refresh()
        slot = slot_of(key)
        port = self.map[slot] or self.seeds[0]
        asking = False
        for _ in range(self.MAX_REDIRECTS):
            try:
                c = self.conn(port)
                if asking:
                    got = c.pipeline([("ASKING",), args])[1]
                else:
                    got = c.call(*args)
            except (OSError, Closed) as e:
                self.drop(port)
                self.bad.add(port)
                self.stale = True
                return ("err", "connection to %d: %s" % (port, conn_error(e)))
            self.bad.discard(port)
            asking = False
            r = redirect(got)
            if r is None:
                text = err_text(got) or ""
                if text.startswith("TRYAGAIN"):
                    self.counts["TRYAGAIN"] += 1
                    time.sleep(0.02)
                    continue
                if text.startswith("CLUSTERDOWN"):
                    self.stale = True
                return got
            kind, rslot, port = r
            self.counts[kind] += 1
            if port not in self.known:
                self.known.append(port)
            if kind == "MOVED":
                self.map[rslot] = port
            else:
                asking = True
        return ("err", "too many redirections for %r" % (key,))

    def close(self):
        for port in list(self.conns):
            self.drop(port)


# ---- the cluster ---------------------------------------------------------------


class Reshard:
    """A `redis-cli --cluster reshard` running in the background."""

    def __init__(self, proc, log, argv):
        self.proc, self.log, self.argv = proc, log, argv
        self.t_start = time.time()
        self.t_end = None

    @property
    def duration(self):
        return (self.t_end or time.time()) - self.t_start

    @property
    def output(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    @property
    def returncode(self):
        return self.proc.poll()

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout=120.0, check_ok=True):
        """Until it ends (an AssertionError after `timeout`, or when it
        failed and check_ok); returns self."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("reshard still running after %.0fs: %s\n%s"
                                 % (timeout, " ".join(self.argv), self.output[-2000:]))
        self.t_end = self.t_end or time.time()
        if check_ok:
            check(self.proc.returncode == 0 and "[ERR]" not in self.output,
                  "reshard failed (exit %s): %s\n%s" % (self.proc.returncode,
                                                        " ".join(self.argv),
                                                        self.output[-2000:]))
        return self


class Cluster:
    """`primaries` primaries with `replicas` replicas each, one Redis
    Cluster, on free loopback ports; ready (wait_ready) when the constructor
    returns.

    Attributes (refresh() reads them again from a live node's CLUSTER
    SHARDS): ports (every node started, in start order), ids {port: node
    id}, port_of {id: port}, primaries [port] (by their first slot),
    replicas {primary: [replica ports]}, primary_of {replica: primary},
    slots {primary: [(start, end)]}, health {port: "online"|"fail"|...},
    slot_map [port] (a primary per slot), dead (ports killed and not
    restarted), proc {port: Popen}."""

    def __init__(self, env, primaries=3, replicas=1, node_timeout_ms=NODE_TIMEOUT_MS,
                 full_coverage=False, extra=(), ready_timeout=30.0):
        self.env = env
        self.node_timeout_ms = node_timeout_ms
        self.full_coverage = full_coverage
        self.extra = list(extra)
        self.proc = {}
        self.dead = set()
        n = primaries * (1 + replicas)
        picked = free_ports(2 * n)
        self.ports = picked[:n]
        # The bus port, by default port + 10000: often in the kernel's
        # ephemeral range, or taken; chosen like the others instead.
        self.bus_port = dict(zip(self.ports, picked[n:]))
        self.ids, self.port_of = {}, {}
        self.primaries, self.replicas, self.primary_of = [], {}, {}
        self.slots, self.health, self.slot_map = {}, {}, [None] * SLOTS
        self.reshards = 0
        for port in self.ports:
            self.start(port)
        t0 = time.time()
        self.cli("create", *["127.0.0.1:%d" % p for p in self.ports],
                 "--cluster-replicas", str(replicas), "--cluster-yes", timeout=60)
        self.t_create = time.time() - t0
        self.wait_ready(timeout=ready_timeout)
        self.t_ready = time.time() - t0
        check(len(self.primaries) == primaries, "%d primaries: %s" % (primaries, self.primaries))
        for p in self.primaries:
            check(len(self.replicas[p]) == replicas, "primary %d has %d replicas: %s"
                  % (p, replicas, self.replicas))

    # ---- processes -------------------------------------------------------

    def argv(self, port):
        return ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-port", str(self.bus_port[port]),
                "--cluster-config-file", os.path.join(self.env.dir, "nodes-%d.conf" % port),
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--cluster-replica-validity-factor", "0",
                "--cluster-require-full-coverage", "yes" if self.full_coverage else "no",
                "--repl-diskless-sync-delay", "0",
                "--save", "", "--appendonly", "no",
                "--dir", self.env.dir, "--dbfilename", "dump-%d.rdb" % port] + self.extra

    def spawn(self, argv, port, log):
        """env.spawn, under `setpriv --pdeathsig KILL` when there is one: a
        test killed by ctest's timeout (or ^C) takes its nodes with it,
        instead of leaving six orphans ticking their cluster cron. The
        signal follows the *thread* that started the process: start nodes
        and reshards from the main thread (or one that outlives them)."""
        if _SETPRIV:
            argv = [_SETPRIV, "--pdeathsig", "KILL", "--"] + argv
        return self.env.spawn(argv, port, log)

    def start(self, port):
        """Starts (or restarts, on its nodes-P.conf) the node on `port`."""
        self.proc[port] = self.spawn(self.argv(port), port, "redis-%d.log" % port)
        self.dead.discard(port)

    def live(self):
        return [p for p in self.ports if p not in self.dead and self.proc[p].poll() is None]

    def cli(self, *args, timeout=60.0):
        """`redis-cli --cluster ARGS`; its output (an AssertionError when it
        fails)."""
        argv = ["redis-cli", "--cluster"] + [str(a) for a in args]
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout, cwd=self.env.dir)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("%s: no end within %.0fs\n%s" % (
                " ".join(argv), timeout, (e.output or b"").decode(errors="replace")[-2000:]))
        out = r.stdout.decode(errors="replace")
        check(r.returncode == 0, "%s: exit %d\n%s" % (" ".join(argv), r.returncode, out[-3000:]))
        return out

    def kill(self, port):
        """SIGKILL a node; the time it was gone."""
        self.env.stop(self.proc[port], force=True)
        self.dead.add(port)
        return time.time()

    def kill_primary(self, port):
        """SIGKILL a node that is a primary now; the time it was gone."""
        self.refresh()
        check(port in self.primaries, "%d is a primary (primaries %s)" % (port, self.primaries))
        return self.kill(port)

    def restart(self, port, timeout=30.0):
        """Starts a killed node again on its port and nodes file; waits
        until the cluster is ready again (it comes back as a replica of
        whoever took its slots, or as the primary it was when nobody did).
        Its role: "replica" or "primary"."""
        check(port in self.dead, "%d was killed" % port)
        self.start(port)
        self.wait_ready(timeout=timeout)
        return "replica" if port in self.primary_of else "primary"

    # ---- views -----------------------------------------------------------

    def nodes(self, port, timeout=2.0):
        """CLUSTER NODES as a node sees it (parse_nodes)."""
        got = call(port, "CLUSTER", "NODES", timeout=timeout)
        if err_text(got):
            raise RuntimeError("CLUSTER NODES on %d: %s" % (port, err_text(got)))
        return parse_nodes(got)

    def refresh(self, via=None):
        """Reads ids, roles, slots and health from CLUSTER SHARDS of `via`
        (default: the first live node that answers)."""
        last = None
        for port in ([via] if via else self.live()):
            try:
                got = call(port, "CLUSTER", "SHARDS")
            except (OSError, Closed) as e:
                last = e
                continue
            if err_text(got):
                last = err_text(got)
                continue
            self._read_shards(parse_shards(got))
            return self
        raise AssertionError("no node answered CLUSTER SHARDS: %r" % (last,))

    def _read_shards(self, shards):
        primaries, replicas, primary_of, slots, health = [], {}, {}, {}, {}
        slot_map = [None] * SLOTS
        for shard in shards:
            prim = [n for n in shard["nodes"] if n["role"] == "master"]
            for n in shard["nodes"]:
                self.ids[n["port"]] = n["id"]
                self.port_of[n["id"]] = n["port"]
                health[n["port"]] = n["health"]
            if not prim or (prim[0]["health"] == "fail" and not shard["slots"]):
                continue  # a failed node that lost its slots: no primary of anything
            p = prim[0]["port"]
            primaries.append(p)
            slots[p] = sorted(shard["slots"])
            replicas[p] = sorted(n["port"] for n in shard["nodes"] if n["role"] != "master")
            for r in replicas[p]:
                primary_of[r] = p
            for a, b in shard["slots"]:
                slot_map[a:b + 1] = [p] * (b - a + 1)
        primaries.sort(key=lambda p: slots[p][0][0] if slots[p] else SLOTS)
        self.primaries, self.replicas, self.primary_of = primaries, replicas, primary_of
        self.slots, self.health, self.slot_map = slots, health, slot_map

    def slot_count(self, port):
        return sum(b - a + 1 for a, b in self.slots.get(port, []))

    def keyslot(self, key, port=None):
        """CLUSTER KEYSLOT asked of a node."""
        return call(port or self.live()[0], "CLUSTER", "KEYSLOT", key)

    slot_of = staticmethod(slot_of)

    def owner(self, key):
        """The port of the primary that serves key's slot now (as a live
        node's CLUSTER SHARDS has it)."""
        self.refresh()
        return self.slot_map[slot_of(key)]

    def tag_on(self, port):
        """A hash tag whose keys live on primary `port` now."""
        return tag_for_slots(self.slots[port])

    def get_direct(self, key):
        """GET key from the cluster itself, following MOVED and ASK."""
        return self.get_many([key])[key]

    def get_many(self, keys, batch=500):
        """{key: GET reply} read from the cluster itself: each slot's
        primary by the current map, pipelined; a key answered with a
        redirection is asked again where it points (ASKING for -ASK)."""
        self.refresh()
        out = {}
        client = ClusterClient(self.live())
        client.map = list(self.slot_map)
        client.stale = False
        try:
            by_port = {}
            for k in keys:
                by_port.setdefault(self.slot_map[slot_of(k)], []).append(k)
            for port, ks in by_port.items():
                for i in range(0, len(ks), batch):
                    chunk = ks[i:i + batch]
                    try:
                        got = client.conn(port).deep_pipeline([("GET", k) for k in chunk])
                    except (OSError, Closed):
                        client.drop(port)
                        got = [("err", "connection")] * len(chunk)
                    for k, g in zip(chunk, got):
                        if redirect(g) or err_text(g):
                            g = client.call(k, "GET", k)  # one at a time, following
                        out[k] = g
        finally:
            client.close()
        return out

    # ---- waiting ---------------------------------------------------------

    def _unready(self):
        """None when the cluster is ready, else what is not."""
        live = self.live()
        views = {}
        for port in live:
            try:
                ci = info(port, "cluster")
                if ci.get("cluster_state") != "ok":
                    return "node %d: cluster_state:%s" % (port, ci.get("cluster_state"))
                views[port] = self.nodes(port)
            except (OSError, Closed, RuntimeError) as e:
                return "node %d: %r" % (port, e)
        live_ids = set()
        for port in live:
            me = [n for n in views[port].values() if "myself" in n["flags"]]
            if not me:
                return "node %d: no myself in CLUSTER NODES" % port
            live_ids.add(me[0]["id"])

        def shape(view):
            out = {}
            for nid, n in view.items():
                if nid not in live_ids:
                    continue
                role = "master" if "master" in n["flags"] else "slave"
                out[nid] = (role, n["master"], tuple(n["slots"]), tuple(n["open"]),
                            bool(n["flags"] & {"fail", "fail?", "handshake", "noaddr"}))
            return out
        first = shape(views[live[0]])
        if len(first) != len(live):
            return "node %d knows %d of %d live nodes" % (live[0], len(first), len(live))
        for port in live:
            s = shape(views[port])
            if s != first:
                diff = {nid[:8]: (first.get(nid), s.get(nid)) for nid in set(first) | set(s)
                        if first.get(nid) != s.get(nid)}
                return "nodes %d and %d disagree: %s" % (live[0], port, diff)
            bad = [nid[:8] for nid, v in s.items() if v[4] or v[3]]
            if bad:
                return "node %d: flags fail/pfail/handshake or open slots on %s" % (port, bad)
        for port in live:
            me = [n for n in views[port].values() if "myself" in n["flags"]][0]
            if "slave" in me["flags"]:
                r = info(port)
                if r.get("master_link_status") != "up" or r.get("master_sync_in_progress") != "0":
                    return "replica %d: link %s" % (port, r.get("master_link_status"))
        return None

    def wait_ready(self, timeout=30.0):
        """Until every live node says cluster_state:ok, all agree on every
        live node's role, primary and slots (no failure flag, no open slot),
        every live replica's link is up, and `redis-cli --cluster check`
        is happy; then refresh(). Returns the seconds it took."""
        t0 = time.time()
        deadline = t0 + timeout
        while True:
            last = self._unready()
            if last is None:
                out = self._check_output()
                if "[ERR]" not in out and "[WARNING]" not in out.replace(
                        "[WARNING] Some slaves are in the same host", ""):
                    break
                last = "redis-cli --cluster check:\n" + out[-1500:]
            if time.time() > deadline:
                raise AssertionError("cluster not ready after %.0fs: %s" % (timeout, last))
            time.sleep(0.05)
        self.refresh()
        return time.time() - t0

    def _check_output(self):
        argv = ["redis-cli", "--cluster", "check", "127.0.0.1:%d" % self.live()[0]]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return r.stdout.decode(errors="replace") + ("" if r.returncode == 0 else
                                                    "[ERR] exit %d" % r.returncode)

    def wait_failover(self, old_port, timeout=30.0, poll=0.05):
        """Polls CLUSTER NODES on every live node every `poll` s until one
        shows another node as primary of old_port's first slot range (as
        refresh() last saw it: call it, or kill_primary, before the kill).
        Returns (time it was first seen, the new primary's port); each
        node's first sighting is kept in self.failover_seen {port: time}."""
        ranges = self.slots.get(old_port)
        check(bool(ranges), "%d served slots when last refreshed" % old_port)
        slot = ranges[0][0]
        deadline = time.time() + timeout
        self.failover_seen = {}
        first = None
        last = {}
        while True:
            for port in self.live():
                if port in self.failover_seen:
                    continue
                try:
                    view = self.nodes(port, timeout=1.0)
                except (OSError, Closed, RuntimeError) as e:
                    last[port] = repr(e)
                    continue
                now = time.time()
                holders = [n for n in view.values() if "master" in n["flags"]
                           and n["port"] != old_port
                           and any(a <= slot <= b for a, b in n["slots"])]
                old = [n for n in view.values() if n["port"] == old_port]
                last[port] = sorted(old[0]["flags"]) if old else "no such node"
                if holders:
                    self.failover_seen[port] = now
                    if first is None:
                        first = (now, holders[0]["port"])
            if first is not None:
                self.failover_at = first
                return first
            if time.time() > deadline:
                raise AssertionError("no node promoted for %d's slots within %.0fs; its flags "
                                     "as each node sees them: %s" % (old_port, timeout, last))
            time.sleep(poll)

    # ---- resharding ------------------------------------------------------

    def reshard(self, from_port, to_port, slots, pipeline=None, extra=()):
        """`redis-cli --cluster reshard` moving `slots` slots from one
        primary to another, in the background (its output in env.dir,
        stopped by PID with the rest); a Reshard: wait(), duration,
        output."""
        self.refresh()
        argv = ["redis-cli", "--cluster", "reshard", "127.0.0.1:%d" % from_port,
                "--cluster-from", self.ids[from_port], "--cluster-to", self.ids[to_port],
                "--cluster-slots", str(slots), "--cluster-yes"]
        if pipeline:
            argv += ["--cluster-pipeline", str(pipeline)]
        argv += list(extra)
        self.reshards += 1
        log = "reshard-%d.log" % self.reshards
        proc = self.spawn(argv, None, log)
        return Reshard(proc, os.path.join(self.env.dir, log), argv)

    # ---- checking --------------------------------------------------------

    def verify_acked(self, acked_values):
        """[(key, acknowledged value, what the cluster has)] for each
        acknowledged write ({key: value}) the cluster does not hold."""
        got = self.get_many(sorted(acked_values))
        return [(k, v, got[k]) for k, v in sorted(acked_values.items())
                if got[k] != (v.encode() if isinstance(v, str) else v)]

    def log_lines(self, port):
        path = os.path.join(self.env.dir, "redis-%d.log" % port)
        if not os.path.exists(path):
            return []
        with open(path, errors="replace") as f:
            return f.read().splitlines()

    def marked_failing(self):
        """Ports (node ids, for a node never seen) some node's log marked
        FAIL ("Marking node ID as failing", "FAIL message received from
        .. about ID"): the killed ones, and any node that only looked dead
        (too slow for the node timeout)."""
        out = set()
        for port in self.ports:
            for line in self.log_lines(port):
                nid = None
                if "Marking node " in line and " as failing" in line:
                    nid = line.split("Marking node ", 1)[1].split()[0]
                elif "FAIL message received from " in line and " about " in line:
                    nid = line.rsplit(" about ", 1)[1].split()[0]
                if nid:
                    out.add(self.port_of.get(nid, nid))
        return out

    def elections_won(self):
        """[port] of each "Failover election won" in the nodes' logs."""
        return sorted(p for p in self.ports for line in self.log_lines(p)
                      if "Failover election won" in line)

    # ---- pool text -------------------------------------------------------

    def seeds_yaml(self, indent="  "):
        """A pool's servers: list, one line per primary now."""
        self.refresh()
        return indent + "servers:\n" + "".join(
            "%s - 127.0.0.1:%d:1\n" % (indent, p) for p in self.primaries)


# ---- workload ------------------------------------------------------------------

Write = namedtuple("Write", "t_sent t_done key value error")
Read = namedtuple("Read", "t_sent t_done key value got error")


class _Endpoint:
    """What a workload thread talks to: a plain connection to `port` (a
    proxy, or one redis-server), reconnected after an error; or, with
    follow=True, a ClusterClient seeded with `port` (an int or a list)."""

    def __init__(self, port, follow, timeout):
        self.port, self.follow, self.timeout = port, follow, timeout
        self.client = ClusterClient(port, timeout) if follow else None
        self.c = None

    def call(self, key, *args):
        if self.follow:
            return self.client.call(key, *args)
        try:
            if self.c is None:
                self.c = Conn(self.port, timeout=self.timeout)
            return self.c.call(*args)
        except (OSError, Closed) as e:
            if self.c:
                self.c.close()
            self.c = None
            return ("err", "connection: %s" % conn_error(e))

    def close(self):
        if self.client:
            self.client.close()
        if self.c:
            self.c.close()


class Writer:
    """SETs of unique keys ("PREFIX:i", "{TAG}PREFIX:i" with a tag) with
    unique values in a loop, one at a time, in a thread; each recorded in
    self.log as a Write(t_sent, t_done, key, value, error), error None for
    +OK, else the error text ("connection: ..." when the connection
    broke). After an error it waits `pause_error` s. follow=True: a
    ClusterClient (MOVED/ASK followed, not errors) seeded with `port`."""

    def __init__(self, port, prefix, tag=None, follow=False, pause=0.0, pause_error=0.02,
                 timeout=5.0):
        self.prefix, self.tag, self.pause, self.pause_error = prefix, tag, pause, pause_error
        self.ep = _Endpoint(port, follow, timeout)
        self.log = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def key(self, i):
        k = "%s:%d" % (self.prefix, i)
        return "{%s}%s" % (self.tag, k) if self.tag else k

    def loop(self):
        i = 0
        while not self.stop_ev.is_set():
            k, v = self.key(i), "%s-v%d" % (self.prefix, i)
            t0 = time.time()
            got = self.ep.call(k, "SET", k, v)
            e = None if got == b"+OK" else (err_text(got) or "reply %r" % (got,))
            self.log.append(Write(t0, time.time(), k, v, e))
            i += 1
            if e is not None and self.pause_error:
                time.sleep(self.pause_error)
            elif self.pause:
                time.sleep(self.pause)

    def stop(self):
        self.stop_ev.set()
        self.t.join(30)
        check(not self.t.is_alive(), "writer %s stops" % self.prefix)
        self.ep.close()
        return self


class Reader:
    """GETs of keys whose values are known, one at a time, in a thread:
    `source` is {key: value}, or a Writer (a random one of its
    acknowledged writes so far). Each recorded in self.log as a
    Read(t_sent, t_done, key, value, got, error); wrong() lists the
    reads that did not answer the value."""

    def __init__(self, port, source, follow=False, pause=0.0, timeout=5.0, seed=1):
        self.source, self.pause = source, pause
        self.ep = _Endpoint(port, follow, timeout)
        self.rng = random.Random(seed)
        self.log = []
        self.stop_ev = threading.Event()
        if isinstance(source, dict):
            self.items = sorted(source.items())
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def pick(self):
        if isinstance(self.source, dict):
            return self.rng.choice(self.items)
        log = self.source.log
        for _ in range(20):
            if not log:
                break
            w = log[self.rng.randrange(len(log))]
            if w.error is None:
                return w.key, w.value
        return None

    def loop(self):
        while not self.stop_ev.is_set():
            kv = self.pick()
            if kv is None:
                time.sleep(0.01)
                continue
            k, v = kv
            t0 = time.time()
            got = self.ep.call(k, "GET", k)
            self.log.append(Read(t0, time.time(), k, v, got, err_text(got)))
            if self.pause:
                time.sleep(self.pause)

    def wrong(self, after=0.0, before=float("inf")):
        return [r for r in list(self.log) if after <= r.t_sent < before
                and r.got != r.value.encode()]

    def stop(self):
        self.stop_ev.set()
        self.t.join(30)
        check(not self.t.is_alive(), "reader stops")
        self.ep.close()
        return self


def acked(*writers, after=0.0, before=float("inf")):
    """{key: value} of the writes answered +OK, sent in [after, before)."""
    out = {}
    for w in writers:
        for x in list(w.log):
            if x.error is None and after <= x.t_sent < before:
                out[x.key] = x.value
    return out


def errors(writer, after=0.0, before=float("inf"), slots=None):
    """The failed Writes sent in [after, before) (of keys in `slots`, a set
    or ranges [(start, end)], when given)."""
    return [x for x in writes(writer, after, before, slots) if x.error is not None]


def writes(writer, after=0.0, before=float("inf"), slots=None):
    """Every Write sent in [after, before) (of keys in `slots`)."""
    test = _slot_test(slots)
    return [x for x in list(writer.log) if after <= x.t_sent < before and test(x.key)]


def _slot_test(slots):
    if slots is None:
        return lambda k: True
    if isinstance(slots, (set, frozenset)):
        return lambda k: slot_of(k) in slots
    ranges = list(slots)
    return lambda k: any(a <= slot_of(k) <= b for a, b in ranges)


def outage(writer, t_fault, slots=None):
    """(first failed Write sent at or after t_fault, first acknowledged
    Write sent after the last failure) for keys in `slots`; (None, None)
    when none failed."""
    ws = writes(writer, t_fault, slots=slots)
    bad = [i for i, x in enumerate(ws) if x.error is not None]
    if not bad:
        return None, None
    back = [x for x in ws[bad[-1] + 1:] if x.error is None]
    return ws[bad[0]], back[0] if back else None


def verify_acked(cluster, acked_values):
    """Cluster.verify_acked, as a function."""
    return cluster.verify_acked(acked_values)

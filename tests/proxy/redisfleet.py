"""redisfleet.py - a Redis fleet on loopback for failover tests and benches:
shards of one redis-server primary and R replicas each (`--replicaof`),
watched by three redis-sentinel processes, all started by harness.Env and
stopped by PID.

    fleet = Fleet(env, shards=2, replicas=1)      # ready: see wait_ready
    fleet.servers_yaml()                          # the pool's servers: list
    fleet.sentinels_yaml()
    watch = fleet.watch()                         # +switch-master times
    t0 = time.time(); old = fleet.kill_primary("shard-a")
    t_switch, new = watch.wait_switch("shard-a", after=t0)

What was found against the real programs (redis 7.0.15, Debian):
- each sentinel rewrites its config file (myid, known replicas and
  sentinels, the epoch), so each has its own, in env.dir;
- replicas on 127.0.0.1 are announced as 127.0.0.1 (the primary reports the
  address their link comes from): no replica-announce-ip needed;
- a sentinel learns a primary's replicas from its first INFO, and the other
  sentinels from their hello messages on the primaries and replicas (every
  2 s), so the fleet is ready some 2-4 s after the sentinels start;
- a primary that comes back after a failover (SIGCONT, or a restart on its
  port) keeps saying it is a primary until a sentinel converts it, some 8 s
  later (Sentinel waits 4 publish periods for newer configurations first).
"""
import os
import signal
import socket
import threading
import time

from harness import Conn, check, free_ports

SHARD_NAMES = ["shard-a", "shard-b", "shard-c", "shard-d", "shard-e", "shard-f"]


def info(port, section="replication", password=None, timeout=2.0):
    """INFO SECTION of a server (or a sentinel) as a dict of str."""
    c = Conn(port, timeout=timeout)
    try:
        if password:
            c.call("AUTH", password)
        text = c.call("INFO", section)
    finally:
        c.close()
    if isinstance(text, tuple):
        raise RuntimeError("INFO on %d: %s" % (port, text[1]))
    out = {}
    for line in text.decode().splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k] = v
    return out


def pairs(reply):
    """A Sentinel field list [k1, v1, k2, v2...] as a dict of str."""
    return {reply[i].decode(): reply[i + 1].decode() for i in range(0, len(reply), 2)}


class Watcher:
    """Subscribed (PSUBSCRIBE *) on every sentinel, from a thread each:
    records each event as (time, sentinel port, channel, payload). A
    sentinel that dies just ends its thread."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.events = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.conns = []
        self.threads = []
        ready = []
        for port in fleet.live_sentinels():
            c = Conn(port)
            if fleet.sentinel_password:
                check(c.call("AUTH", fleet.sentinel_password) == b"+OK", "AUTH on sentinel")
            c.send(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$1\r\n*\r\n")
            got = c.reply()
            check(isinstance(got, list) and got[0] == b"psubscribe", "PSUBSCRIBE: %r" % (got,))
            c.s.settimeout(None)  # blocks until a message or close()'s shutdown
            ready.append((port, c))
        for port, c in ready:
            t = threading.Thread(target=self._loop, args=(port, c), daemon=True)
            t.start()
            self.conns.append(c)
            self.threads.append(t)

    def _loop(self, port, c):
        while True:
            try:
                msg = c.reply()
            except Exception:  # noqa: BLE001 - closed, by us or by the sentinel's death
                return
            if not isinstance(msg, list) or len(msg) != 4 or msg[0] != b"pmessage":
                continue
            with self.cond:
                self.events.append((time.time(), port, msg[2].decode(), msg[3].decode()))
                self.cond.notify_all()

    def find(self, channel, name=None, after=0.0):
        """Events on `channel` (naming shard `name`, when given) recorded
        at or after `after`, earliest first."""
        with self.lock:
            return [e for e in self.events
                    if e[2] == channel and e[0] >= after
                    and (name is None or name in e[3].split(" "))]

    def find_all(self, name, after=0.0):
        """Every event naming shard `name` at or after `after`, each once
        (the first sentinel to publish it), earliest first."""
        seen = set()
        out = []
        with self.lock:
            for e in self.events:
                if e[0] >= after and name in e[3].split(" ") and (e[2], e[3]) not in seen:
                    seen.add((e[2], e[3]))
                    out.append(e)
        return out

    def story(self, name, after=0.0):
        """What each sentinel said about shard `name`'s servers from
        `after` on, as text for a failure message: "HH:MM:SS.mmm @PORT
        CHANNEL PAYLOAD; ..." (the proxy log's clock; events about the
        sentinels themselves left out)."""
        with self.lock:
            got = [e for e in self.events if e[0] >= after and name in e[3].split(" ")
                   and not e[3].startswith("sentinel ")]
        return "; ".join("%s.%03d @%d %s %s" % (time.strftime("%H:%M:%S", time.localtime(t)),
                                                int(t * 1000) % 1000, port, ch, text)
                         for t, port, ch, text in got) or "none"

    def wait_switch(self, name, after=0.0, timeout=30.0):
        """(time, new primary port) of the first +switch-master for `name`
        published by any sentinel at or after `after`: Sentinel's own
        failover, the floor a proxy can follow it at. (None, None) when
        none comes within `timeout`."""
        deadline = time.time() + timeout
        with self.cond:
            while True:
                hits = [e for e in self.events if e[2] == "+switch-master" and e[0] >= after
                        and e[3].split(" ")[0] == name]
                if hits:
                    t, _, _, payload = hits[0]
                    return t, int(payload.split(" ")[4])
                left = deadline - time.time()
                if left <= 0:
                    return None, None
                self.cond.wait(min(left, 0.5))

    def close(self):
        for c in self.conns:
            try:
                c.s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(5)
        for c in self.conns:
            c.close()


class Fleet:
    """`shards` shards named shard-a, shard-b..., each a primary with
    `replicas` replicas, and `sentinels` sentinels watching every shard
    with quorum `quorum`. `redis_password`: requirepass and masterauth on
    every server (sentinels get auth-pass); `sentinel_password`: the
    sentinels' own requirepass. The constructor returns once every sentinel
    knows every replica and every other sentinel (wait_ready)."""

    def __init__(self, env, shards=2, replicas=1, sentinels=3, quorum=2, down_after=1000,
                 failover_timeout=6000, redis_password=None, sentinel_password=None,
                 ready_timeout=40.0):
        self.env = env
        self.names = SHARD_NAMES[:shards]
        self.redis_password = redis_password
        self.sentinel_password = sentinel_password
        self.down_after = down_after
        self.first_primary = {}   # name -> port: the primary at start, the pool's first guess
        self.replica_ports = {}   # name -> [port] at start
        self.proc = {}            # redis port -> Popen
        self.sentinel_proc = {}   # sentinel port -> Popen
        self.stopped = set()      # ports under SIGSTOP
        auth = self._auth()
        ports = free_ports(shards * (1 + replicas) + sentinels)
        it = iter(ports)
        for name in self.names:
            p = next(it)
            self.proc[p] = env.redis(auth, port=p)[1]
            self.first_primary[name] = p
            self.replica_ports[name] = []
            for _ in range(replicas):
                r = next(it)
                self.proc[r] = env.redis(auth + ["--replicaof", "127.0.0.1", str(p)], port=r)[1]
                self.replica_ports[name].append(r)
        # Sentinels learn the replicas from the primary's INFO: start them
        # once every link is up, so their first INFO has them all.
        self.wait_links(timeout=ready_timeout)
        self.sentinel_ports = [next(it) for _ in range(sentinels)]
        for sp in self.sentinel_ports:
            self.start_sentinel(sp, quorum, failover_timeout)
        if sentinels:
            # A sentinel younger than down-after-milliseconds has once marked
            # its pre-seeded peers s_down for a moment, and taken a second
            # longer to mark a killed primary down: let them settle first.
            time.sleep(self.down_after / 1000.0 + 0.3)
            self.wait_ready(timeout=ready_timeout)

    # ---- processes -------------------------------------------------------

    def _auth(self):
        # repl-diskless-sync-delay: redis 7 waits 5 s by default for more
        # replicas before a full sync (every start, every failover).
        # loglevel verbose: a server's log then says when a client closed
        # and why it closed one (a protocol error); Sentinel's CLIENT KILL,
        # and a SLAVEOF NO ONE to a primary, leave no line at any level.
        out = ["--repl-diskless-sync-delay", "0", "--loglevel", "verbose"]
        if self.redis_password:
            out += ["--requirepass", self.redis_password, "--masterauth", self.redis_password]
        return out

    def start_sentinel(self, port, quorum=2, failover_timeout=6000):
        lines = ["port %d" % port, "bind 127.0.0.1", "daemonize no", "dir %s" % self.env.dir,
                 'logfile ""']
        if self.sentinel_password:
            # Also what this sentinel authenticates to the others with.
            lines.append("requirepass %s" % self.sentinel_password)
        # Ids chosen here and every sentinel told of the others: hello
        # messages would take 2-4 s to introduce them.
        lines.append("sentinel myid %s" % self._sentinel_id(port))
        for name in self.names:
            lines.append("sentinel monitor %s 127.0.0.1 %d %d"
                         % (name, self.first_primary[name], quorum))
            for other in self.sentinel_ports:
                if other != port:
                    lines.append("sentinel known-sentinel %s 127.0.0.1 %d %s"
                                 % (name, other, self._sentinel_id(other)))
            lines.append("sentinel down-after-milliseconds %s %d" % (name, self.down_after))
            lines.append("sentinel failover-timeout %s %d" % (name, failover_timeout))
            lines.append("sentinel parallel-syncs %s 1" % name)
            if self.redis_password:
                lines.append("sentinel auth-pass %s %s" % (name, self.redis_password))
        path = self.env.write("sentinel-%d.conf" % port, "\n".join(lines) + "\n")
        self.sentinel_proc[port] = self.env.spawn(["redis-sentinel", path], port,
                                                  "sentinel-%d.log" % port)

    @staticmethod
    def _sentinel_id(port):
        return "%040x" % port

    def live_sentinels(self):
        return [p for p in self.sentinel_ports if self.sentinel_proc[p].poll() is None]

    def kill_sentinel(self, port):
        self.env.stop(self.sentinel_proc[port], force=True)

    def signal(self, port, sig):
        os.kill(self.proc[port].pid, sig)
        if sig == signal.SIGSTOP:
            self.stopped.add(port)
        elif sig == signal.SIGCONT:
            self.stopped.discard(port)

    def kill(self, port):
        """SIGKILL a redis-server (works on a stopped one too)."""
        self.env.stop(self.proc[port], force=True)
        self.stopped.discard(port)

    def kill_primary(self, name):
        """SIGKILL the shard's current primary (asked of a sentinel); its port."""
        port = self.primary_of(name)
        self.kill(port)
        return port

    def stop_primary(self, name):
        """SIGSTOP the shard's current primary; its port (cont() it later)."""
        port = self.primary_of(name)
        self.signal(port, signal.SIGSTOP)
        return port

    def cont(self, port):
        self.signal(port, signal.SIGCONT)

    def restart(self, port, replicaof=None):
        """Starts a killed server again on its port, as a replica of
        `replicaof` when given."""
        extra = self._auth() + (["--replicaof", "127.0.0.1", str(replicaof)] if replicaof else [])
        self.proc[port] = self.env.redis(extra, port=port)[1]

    def close_stopped(self):
        """Thaws what is stopped, so Env.close's SIGKILL is not the first
        thing it sees (a stopped process takes SIGKILL too; this is tidier
        for the logs)."""
        for port in list(self.stopped):
            self.cont(port)

    # ---- talking -------------------------------------------------------

    def conn(self, port, timeout=5.0):
        """A connection to a redis-server, authenticated."""
        c = Conn(port, timeout=timeout)
        if self.redis_password:
            check(c.call("AUTH", self.redis_password) == b"+OK", "AUTH on %d" % port)
        return c

    def sentinel(self, port=None, timeout=2.0):
        """A connection to a sentinel (the first live one by default)."""
        port = port or self.live_sentinels()[0]
        c = Conn(port, timeout=timeout)
        if self.sentinel_password:
            check(c.call("AUTH", self.sentinel_password) == b"+OK", "AUTH on sentinel %d" % port)
        return c

    def ask(self, port, *args):
        c = self.sentinel(port)
        try:
            return c.call(*args)
        finally:
            c.close()

    def primary_of(self, name, sentinel=None):
        """The shard's primary port as a sentinel has it (with no sentinel:
        the first primary)."""
        if not self.sentinel_ports:
            return self.first_primary[name]
        got = self.ask(sentinel or self.live_sentinels()[0],
                       "SENTINEL", "get-master-addr-by-name", name)
        check(isinstance(got, list) and len(got) == 2, "get-master-addr-by-name: %r" % (got,))
        return int(got[1])

    def replicas_of(self, name, sentinel=None):
        """[(port, flags)] of the shard's replicas as a sentinel has them."""
        got = self.ask(sentinel or self.live_sentinels()[0], "SENTINEL", "replicas", name)
        return [(int(d["port"]), d["flags"]) for d in map(pairs, got)]

    def role(self, port):
        """INFO replication of a server, or None when it does not answer."""
        try:
            return info(port, password=self.redis_password, timeout=1.0)
        except (OSError, RuntimeError):
            return None

    # ---- waiting -------------------------------------------------------

    def wait_links(self, timeout=20.0):
        """Until every replica that should be has its link to its primary up
        and has caught up."""
        deadline = time.time() + timeout
        for name in self.names:
            primary = self.primary_of(name) if self.sentinel_proc else self.first_primary[name]
            for r in self.replica_ports[name] + [self.first_primary[name]]:
                if r == primary or self.proc[r].poll() is not None or r in self.stopped:
                    continue
                while True:
                    got = self.role(r) or {}
                    if (got.get("master_link_status") == "up"
                            and int(got.get("master_port", 0)) == primary):
                        break
                    if time.time() > deadline:
                        raise AssertionError("replica %d of %s never linked to %d: %r"
                                             % (r, name, primary, got))
                    time.sleep(0.05)

    def wait_ready(self, timeout=40.0, primaries=None):
        """Until every live sentinel names the same primary for each shard
        (`primaries`: name -> port, when known), lists each live replica
        with no s_down/disconnected flag, and knows every other live
        sentinel. Sentinel failovers need the replicas known; a proxy's
        SENTINEL replicas answer too."""
        deadline = time.time() + timeout
        last = None
        while True:
            last = self._unready(primaries)
            if last is None:
                return
            if time.time() > deadline:
                raise AssertionError("sentinels not ready after %.0fs: %s" % (timeout, last))
            time.sleep(0.1)

    def _unready(self, primaries):
        live = self.live_sentinels()
        want_primary = {}
        for name in self.names:
            try:
                seen = {self.primary_of(name, s) for s in live}
            except (OSError, AssertionError) as e:
                return "%s: %r" % (name, e)
            if len(seen) != 1:
                return "%s: sentinels disagree on the primary: %s" % (name, seen)
            want_primary[name] = seen.pop()
            if primaries and primaries.get(name) not in (None, want_primary[name]):
                return "%s: primary %d, want %d" % (name, want_primary[name], primaries[name])
        for s in live:
            for name in self.names:
                primary = want_primary[name]
                want = {p for p in self.replica_ports[name] + [self.first_primary[name]]
                        if p != primary and self.proc[p].poll() is None
                        and p not in self.stopped}
                got = self.replicas_of(name, s)
                ok = {p for p, flags in got if "s_down" not in flags
                      and "disconnected" not in flags}
                if not want <= ok:
                    return "sentinel %d, %s: replicas %r, want %s" % (s, name, got, sorted(want))
                others = self.ask(s, "SENTINEL", "sentinels", name)
                ports = {int(pairs(d)["port"]) for d in others
                         if "s_down" not in pairs(d)["flags"]}
                if not set(live) - {s} <= ports:
                    return "sentinel %d, %s: knows sentinels %s of %s" % (s, name, sorted(ports),
                                                                          live)
        return None

    def wait_role(self, port, role, master_port=None, timeout=30.0):
        """Until a server says `role` (master/slave), of `master_port` when
        given, with its link up; the last INFO seen."""
        deadline = time.time() + timeout
        while True:
            got = self.role(port) or {}
            if got.get("role") == role and (
                    master_port is None or (int(got.get("master_port", 0)) == master_port
                                            and got.get("master_link_status") == "up")):
                return got
            if time.time() > deadline:
                raise AssertionError("server %d never became %s (of %s): %r"
                                     % (port, role, master_port, got))
            time.sleep(0.1)

    def watch(self):
        return Watcher(self)

    # ---- pool text -----------------------------------------------------

    def servers_yaml(self, indent="  "):
        """The pool's servers: each shard's first primary, named for the
        shard (the Sentinel master name, and the ring identity)."""
        return indent + "servers:\n" + "".join(
            "%s - 127.0.0.1:%d:1 %s\n" % (indent, self.first_primary[n], n) for n in self.names)

    def sentinels_yaml(self, indent="  ", only=None):
        return indent + "sentinels:\n" + "".join(
            "%s - 127.0.0.1:%d\n" % (indent, p) for p in (only or self.sentinel_ports))

    def replicas_yaml(self, indent="  "):
        return indent + "replicas:\n" + "".join(
            "%s - 127.0.0.1:%d %s\n" % (indent, r, n)
            for n in self.names for r in self.replica_ports[n])

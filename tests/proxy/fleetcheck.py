"""fleetcheck.py - a checker for a fleet of chash-proxies under change
(issue 15): clients that read and write through every proxy of the fleet,
and what they saw, judged once the load stops.

    chk = Checker([listen0, listen1, listen2], keys=2000, threads=6)
    chk.prefill()                 # every key written once (seq 0)
    chk.start()
    ... change the fleet, break etcd, freeze a proxy ...
    chk.stop()
    rep = chk.report()            # lost, stale, errors, ops (see report())

The model: each key has one writer (thread key % threads) that SETs it to
an increasing sequence number ("s<seq>:k<key>"); any thread reads any key.
Every client request goes to the next proxy in rotation (thread t's n-th
request to proxy (t + n) % P), so every key is written and read through
every proxy. Recorded: each acknowledged write (key, seq, the time its +OK
arrived), each write that failed (key, seq: it may or may not have been
applied), each read (key, the time it was sent, the seq it returned or
nil), each error (time, proxy, message). Times are time.monotonic().

Judged:
- stale read: a read that returned a seq older than a write acknowledged
  before the read was sent (nil is older than any seq). One that returned
  the seq of a failed write (a late write: a request the client gave up on,
  applied after a newer acknowledged one) is counted apart, as
  stale_by_unacked: a client's timeout cannot take back a request the
  proxy already read.
- lost: after the load, every key read through every proxy; a proxy that
  returns a seq older than the last acknowledged one (or nil) lost that
  write. lost_by_unacked: ... and it returned a failed write's seq.
- errors: error replies, timeouts, closed or refused connections, by
  message (numbers in messages folded to N so alike ones group); a
  timeout or a broken connection closes that connection, the next request
  to that proxy opens another.
"""
import bisect
import collections
import json
import os
import random
import re
import socket
import threading
import time

from harness import Closed, Conn


def _fold(msg):
    """An error message with its numbers folded, so alike errors group."""
    return re.sub(r"\d+", "N", msg)[:120]


class Checker:
    """Load through `ports` (the proxies' listen ports of one pool); see the
    module's docstring. `timeout`: each client's socket timeout (seconds);
    `write_share`: the share of requests that are writes; `pause`: seconds
    each thread sleeps between requests (0: as fast as it can)."""

    def __init__(self, ports, keys=2000, threads=6, timeout=5.0, write_share=0.5, pause=0.0,
                 seed=1, router=None):
        self.ports = list(ports)
        # router: proxies that share one listen port (SO_REUSEPORT), told
        # apart by Router; else ports[p] is proxy p's own.
        self.router = router
        self.keys = keys
        self.threads_n = threads
        self.timeout = timeout
        self.write_share = write_share
        self.pause = pause
        self.seed = seed
        # Per key, written only by its owner thread: ack times and seqs
        # (both increasing), the seqs of failed writes, the next seq.
        self.ack_t = [[] for _ in range(keys)]
        self.ack_seq = [[] for _ in range(keys)]
        self.failed = [set() for _ in range(keys)]
        self.next_seq = [1] * keys
        # Per thread lists (no lock): reads (key, t_sent, seq or -1, proxy),
        # errors (t, proxy, op, message).
        self.reads = [[] for _ in range(threads)]
        self.errs = [[] for _ in range(threads)]
        self.writes_acked = [0] * threads
        self.bad_values = []
        self.stop_ev = threading.Event()
        self.pause_ev = threading.Event()  # set: threads idle (see hold())
        self.workers = []
        self.t_start = self.t_stop = None
        self.final = None

    @staticmethod
    def key(k):
        return "fk:%d" % k

    @staticmethod
    def value(k, seq):
        return b"s%d:k%d" % (seq, k)

    def parse(self, k, got):
        """The seq a read returned: -1 for nil, None for anything else."""
        if got is None:
            return -1
        if isinstance(got, bytes) and got.startswith(b"s"):
            seq, _, rest = got[1:].partition(b":")
            if rest == b"k%d" % k and seq.isdigit():
                return int(seq)
        return None

    # ---- load ----------------------------------------------------------

    def prefill(self, proxy=0):
        """Every key set to seq 0 through one proxy (pipelined), recorded
        as acknowledged."""
        c = self.connect(proxy, 30)
        for start in range(0, self.keys, 500):
            ks = range(start, min(self.keys, start + 500))
            got = c.pipeline([("SET", self.key(k), self.value(k, 0)) for k in ks])
            now = time.monotonic()
            for k, g in zip(ks, got):
                if g != b"+OK":
                    raise AssertionError("prefill %s: %r" % (self.key(k), g))
                self.ack_t[k].append(now)
                self.ack_seq[k].append(0)
        c.close()

    def start(self):
        self.t_start = time.monotonic()
        for t in range(self.threads_n):
            w = threading.Thread(target=self._loop, args=(t,), daemon=True)
            self.workers.append(w)
            w.start()

    def stop(self):
        self.stop_ev.set()
        for w in self.workers:
            w.join(self.timeout + 10)
        self.t_stop = time.monotonic()

    def connect(self, p, timeout=None):
        timeout = timeout or self.timeout
        if self.router:
            return self.router.connect(p, timeout)
        return Conn(self.ports[p], timeout=timeout)

    def _error(self, t, proxy, op, msg):
        self.errs[t].append((time.monotonic(), proxy, op, msg))

    def _loop(self, t):
        rng = random.Random(self.seed * 1000 + t)
        own = list(range(t, self.keys, self.threads_n))
        conns = [None] * len(self.ports)
        n = 0
        while not self.stop_ev.is_set():
            p = (t + n) % len(self.ports)
            n += 1
            is_write = rng.random() < self.write_share
            k = rng.choice(own) if is_write else rng.randrange(self.keys)
            seq = None
            if is_write:
                seq = self.next_seq[k]
                self.next_seq[k] += 1
                cmd = ("SET", self.key(k), self.value(k, seq))
            else:
                cmd = ("GET", self.key(k))
            t0 = time.monotonic()
            try:
                if conns[p] is None:
                    conns[p] = self.connect(p)
                got = conns[p].call(*cmd)
            except socket.timeout:
                got = ("exc", "timeout")
            except ConnectionRefusedError:
                got = ("exc", "connection refused")
            except (Closed, ConnectionResetError, BrokenPipeError):
                got = ("exc", "connection closed")
            except OSError as e:
                got = ("exc", "socket: %s" % e.strerror)
            if isinstance(got, tuple):  # an error reply or a broken connection
                if got[0] == "exc" and conns[p] is not None:
                    conns[p].close()
                    conns[p] = None
                self._error(t, p, cmd[0], _fold(got[1]))
                if is_write:
                    self.failed[k].add(seq)
                if got[0] == "exc":
                    time.sleep(0.05)  # a refused connect must not spin
                continue
            if is_write:
                if got == b"+OK":
                    self.ack_t[k].append(time.monotonic())
                    self.ack_seq[k].append(seq)
                    self.writes_acked[t] += 1
                else:
                    self.failed[k].add(seq)
                    self._error(t, p, "SET", "unexpected reply %r" % (got,))
            else:
                s = self.parse(k, got)
                if s is None:
                    self.bad_values.append((self.key(k), got))
                    self._error(t, p, "GET", "unexpected reply")
                else:
                    self.reads[t].append((k, t0, s, p))
            if self.pause:
                time.sleep(self.pause)
        for c in conns:
            if c is not None:
                c.close()

    # ---- judgement -----------------------------------------------------

    def final_reads(self):
        """Every key read through every proxy (pipelined); [proxy][key] ->
        seq (-1 nil, None: an error or a bad value)."""
        out = []
        for p, port in enumerate(self.ports):
            row = [None] * self.keys
            try:
                c = self.connect(p, max(self.timeout, 10))
                for start in range(0, self.keys, 500):
                    ks = range(start, min(self.keys, start + 500))
                    got = c.pipeline([("GET", self.key(k)) for k in ks])
                    for k, g in zip(ks, got):
                        row[k] = None if isinstance(g, tuple) else self.parse(k, g)
                c.close()
            except (OSError, Closed):
                pass
            out.append(row)
        self.final = out
        return out

    def errors_between(self, t0, t1, proxy=None):
        """Errors whose time is in [t0, t1] (monotonic), by message."""
        out = collections.Counter()
        for lst in self.errs:
            for t, p, op, msg in lst:
                if t0 <= t <= t1 and (proxy is None or p == proxy):
                    out["%s %s" % (op, msg)] += 1
        return out

    def report(self):
        """What the load saw (call after stop() and final_reads())."""
        stale = stale_unacked = 0
        stale_by_proxy = collections.Counter()
        examples = []
        reads = 0
        for lst in self.reads:
            for k, t0, s, p in lst:
                reads += 1
                i = bisect.bisect_left(self.ack_t[k], t0) - 1
                if i < 0:
                    continue
                want = self.ack_seq[k][i]
                if s >= want:
                    continue
                if s in self.failed[k]:
                    stale_unacked += 1
                    continue
                stale += 1
                stale_by_proxy[p] += 1
                if len(examples) < 5:
                    examples.append({"key": self.key(k), "proxy": p, "got": s, "acked": want,
                                     "at_s": round(t0 - self.t_start, 3)})
        lost = lost_unacked = unreadable = 0
        lost_keys = set()
        lost_by_proxy = collections.Counter()
        if self.final is not None:
            for p, row in enumerate(self.final):
                for k, s in enumerate(row):
                    if s is None:
                        unreadable += 1
                        continue
                    last = self.ack_seq[k][-1]
                    if s >= last:
                        continue
                    if s in self.failed[k]:
                        lost_unacked += 1
                        continue
                    lost += 1
                    lost_keys.add(k)
                    lost_by_proxy[p] += 1
                    if len(examples) < 10:
                        examples.append({"key": self.key(k), "proxy": p, "final": s,
                                         "acked": last})
        errors = collections.Counter()
        errors_by_proxy = collections.Counter()
        for lst in self.errs:
            for _, p, op, msg in lst:
                errors["%s %s" % (op, msg)] += 1
                errors_by_proxy[p] += 1
        acked = sum(self.writes_acked)
        return {
            "seconds": round((self.t_stop or time.monotonic()) - self.t_start, 2),
            "writes_acked": acked,
            "writes_failed": sum(len(f) for f in self.failed),
            "reads": reads,
            "lost": lost,
            "lost_keys": len(lost_keys),
            "lost_by_unacked": lost_unacked,
            "lost_by_proxy": dict(lost_by_proxy),
            "stale": stale,
            "stale_by_unacked": stale_unacked,
            "stale_by_proxy": dict(stale_by_proxy),
            "final_unreadable": unreadable,
            "errors": sum(errors.values()),
            "errors_by_message": dict(errors.most_common()),
            "errors_by_proxy": dict(errors_by_proxy),
            "bad_values": len(self.bad_values),
            "examples": examples,
        }


class Router:
    """Connections to one proxy of several that listen on the same port
    (SO_REUSEPORT: the kernel picks a listener per connection), as a
    client behind a load balancer that names its target would have them.
    A new connection's proxy is found in /proc: the server side of the
    connection (/proc/net/tcp, by the client's port) is a socket the
    proxy's process holds once it accepted it. A connection that landed on
    another proxy is kept for that one (a few) or closed; one not accepted
    within `accept_s` (its proxy is frozen) is closed. `pids()`: the
    proxies' current PIDs, by index."""

    def __init__(self, port, pids, accept_s=0.5, spare_max=8):
        self.port = port
        self.pids = pids
        self.accept_s = accept_s
        self.spare_max = spare_max
        self.lock = threading.Lock()
        self.spare = collections.defaultdict(list)
        self.landed = collections.Counter()  # connections made, by proxy (None: unaccepted)

    def _server_inode(self, client_port):
        """The inode of the proxy's side of our connection (0: not accepted
        yet, None: not found)."""
        local = "0100007F:%04X" % self.port
        remote = "0100007F:%04X" % client_port
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                x = line.split()
                if x[1] == local and x[2] == remote:
                    return int(x[9])
        return None

    def _owner(self, inode):
        target = "socket:[%d]" % inode
        for i, pid in enumerate(self.pids()):
            if pid is None:
                continue
            d = "/proc/%d/fd" % pid
            try:
                names = os.listdir(d)
            except OSError:
                continue
            for n in names:
                try:
                    if os.readlink(os.path.join(d, n)) == target:
                        return i
                except OSError:
                    continue
        return None

    def which(self, conn):
        """The index of the proxy that accepted conn, or None (not within
        accept_s)."""
        client_port = conn.s.getsockname()[1]
        deadline = time.monotonic() + self.accept_s
        while True:
            inode = self._server_inode(client_port)
            if inode:
                owner = self._owner(inode)
                if owner is not None:
                    return owner
            if time.monotonic() > deadline:
                return None
            time.sleep(0.002)

    def connect(self, p, timeout):
        """A connection to proxy p; socket.timeout when none could be made
        within `timeout` (p is frozen or gone)."""
        with self.lock:
            if self.spare[p]:
                c = self.spare[p].pop()
                c.s.settimeout(timeout)
                return c
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c = Conn(self.port, timeout=timeout)
            owner = self.which(c)
            with self.lock:
                self.landed[owner] += 1
                if owner == p:
                    return c
                if owner is not None and len(self.spare[owner]) < self.spare_max:
                    self.spare[owner].append(c)
                    continue
            c.close()
        raise socket.timeout("no connection to proxy %d within %.1fs" % (p, timeout))


class StatsPoller:
    """Every proxy's stats "fleet" object, polled every `every` seconds in a
    thread per proxy (a frozen proxy's stats port answers nothing: its
    poller waits `timeout` and tries again). samples[i]: [(t, fleet dict
    or None)]."""

    def __init__(self, stats_ports, every=0.1, timeout=1.0):
        self.ports = list(stats_ports)
        self.every, self.timeout = every, timeout
        self.samples = [[] for _ in self.ports]
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(i,), daemon=True)
                        for i in range(len(self.ports))]
        for t in self.threads:
            t.start()

    def _loop(self, i):
        while not self.stop_ev.is_set():
            self.samples[i].append((time.monotonic(), fleet_stats(self.ports[i], self.timeout)))
            self.stop_ev.wait(self.every)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(self.timeout + 2)

    def first_on(self, epoch, since, proxy):
        """The first time at or after `since` that `proxy` said it serves
        `epoch` or later (and is not holding), or None."""
        for t, f in self.samples[proxy]:
            if t >= since and f and int(f.get("epoch", 0)) >= epoch \
                    and f.get("state") != "holding":
                return t
        return None

    def all_on(self, epoch, since):
        """Seconds from `since` until every proxy said it serves `epoch`
        (None: one never did)."""
        ts = [self.first_on(epoch, since, i) for i in range(len(self.ports))]
        if any(t is None for t in ts):
            return None
        return round(max(ts) - since, 3)

    def between(self, t0, t1, proxy):
        return [(t, f) for t, f in self.samples[proxy] if t0 <= t <= t1 and f]


def fleet_stats(port, timeout=1.0):
    """The "fleet" object of a proxy's stats document, or None (no answer
    within `timeout`, or no such object)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        return json.loads(data).get("fleet")
    except (OSError, ValueError):
        return None


def table(rows, cols):
    """A plain text table of dicts: one line per row, `cols` [(key, title)]."""
    widths = [max([len(title)] + [len(_cell(r.get(key))) for r in rows])
              for key, title in cols]
    out = ["  ".join(title.ljust(w) for (key, title), w in zip(cols, widths))]
    for r in rows:
        out.append("  ".join(_cell(r.get(key)).ljust(w) for (key, _), w in zip(cols, widths)))
    return "\n".join(out)


def _cell(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.2f" % v
    return str(v)

#!/usr/bin/env python3
"""test_fleet.py CHASH_PROXY CHASH_CLI - a fleet of chash-proxies on etcd
(issue 15) changing its pools under load and under faults.

Each case: a real 3-member etcd cluster (etcdfleet.py), 5 redis-servers,
one redis pool (ketama, warmup 30000: a moved key is taken from its
previous owner with MIGRATE on first use) bootstrapped on 4 of them by
`chash fleet apply --yes` at epoch 1, and 3 chash-proxies started with
--etcd on the same prefix (lease TTL 3 s), each on a listen port of its
own. fleetcheck.Checker loads them: 6 threads, 2000 keys, a single
writer per key with an increasing seq, any reader, every key read and
written through all 3 proxies; client timeout 5 s (a timeout is an
error). Judged per case: acknowledged writes lost (a final read through
each proxy older than the last acknowledged write), stale reads (older
than a write acknowledged before the read was sent), client errors, and
seconds until every proxy is on the new epoch (the apply's all_on_epoch_s
and the proxies' own stats).

- membership: 4 -> 5 -> 4 servers (two applies) under load: 0 lost, 0
  stale, 0 errors.
- buckets: 100 buckets by the keys' last two digits pinned to 4 units, a
  cut flow moving half of them (0-24, 50-74) to a fifth under load: the
  plan exact beforehand, 0 lost, 0 stale, 0 errors, every key on its unit.
- health: on_failure: error; a server frozen while only p0's clients use
  it: every worker of p1 and p2 fails its keys at once (the fleet's
  verdict, P/health/), the other servers' keys untouched, and all take it
  back together when it answers.
- late_joiner: a proxy started right after a 4 -> 5 change reads every
  key written before it (it warms up from P/previous like the others).
- orphan_switch: a change left in phase switch by a dead coordinator is
  aborted and deleted by the proxies after their hold limit; a later apply
  commits.
- secure: etcd over https with client certificates and a user limited to
  the prefix: the CLI and a proxy get in; a wrong password or no
  certificate is refused at start; no password in any output.
- leader_killed: the etcd leader killed (SIGKILL) as soon as P/change
  appears; the apply commits or aborts (reported, with its reason); a
  change it leaves behind is ended with `chash fleet abort` (reported as
  left_change); then every proxy on one epoch, the member restarted, and
  a later apply commits. 0 lost, 0 stale.
- etcd_down: all 3 etcd members frozen (SIGSTOP) for 8 s under load: no
  client error while etcd is away, the stats say etcd_reachable false with
  view_age_ms growing; thawed, the proxies catch up and an apply commits.
- proxy_frozen: one proxy frozen (SIGSTOP) and an apply run: it commits
  without it once its lease expired; thawed, it serves nothing by the old
  epoch (no stale read, no lost write through it) and ends on the new one.

Each proxy gets its own listen port (--listen alpha=ADDR); a proxy without
that option would share the pool's port (SO_REUSEPORT) and the clients
tell the proxies apart by /proc (fleetcheck.Router). The figures are
printed as a table and written as JSON to $FLEET_RESULTS_JSON when set
(CHASH_FLEET_ONLY=case,... runs some). bench/fleet.py runs the same cases
N rounds.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Conn, check, check_eq, free_ports, raw_stats, run, stats_json,  # noqa: E402
                     wait_port)
from etcdfleet import ETCDCTL, EtcdFleet, make_certs  # noqa: E402
from fleetcheck import Checker, Router, StatsPoller, fleet_stats, table  # noqa: E402

KEYS = 2000
THREADS = 6
CLIENT_TIMEOUT = 5.0
LEASE_TTL = 3
PROXIES = 3
RESULTS = []

COLUMNS = [("case", "case"), ("outcome", "outcome"), ("lost", "lost"), ("stale", "stale"),
           ("errors", "errors"), ("apply_all_on_s", "apply all_on_epoch_s"),
           ("stats_all_on_s", "stats all-on s"), ("writes_acked", "writes"),
           ("reads", "reads"), ("warmup_moved", "moved"), ("lost_by_unacked", "lost(late)"),
           ("stale_by_unacked", "stale(late)")]


def binaries():
    if len(sys.argv) < 3:
        sys.exit("usage: %s CHASH_PROXY CHASH_CLI" % sys.argv[0])
    return os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])


class ProxyFleet:
    """etcd, redis-servers, the pools bootstrapped, and proxies on them."""

    def __init__(self, env, proxy_bin, cli_bin, servers=5, initial=4, proxies=PROXIES,
                 lease_ttl=LEASE_TTL, pools=None):
        self.env, self.proxy_bin, self.cli_bin = env, proxy_bin, cli_bin
        # pools(self, arg): the pools file apply(arg) stores; by default
        # pools_yaml, arg the number of servers.
        self.pools = pools or ProxyFleet.pools_yaml
        self.proxy_help = subprocess.run([proxy_bin, "--help"], stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT).stdout.decode()
        # Without a per-proxy listen option, the proxies share the pool's
        # listen port (SO_REUSEPORT, as --workers 2 sets it) and the clients
        # tell them apart (fleetcheck.Router).
        self.shared_listen = "--listen" not in self.proxy_help
        self.etcd = EtcdFleet(env)
        started = [env.redis() for _ in range(servers)]
        self.redis = [port for port, _ in started]
        self.redis_procs = [proc for _, proc in started]
        ports = free_ports(2 * proxies + 1)
        self.pool_listen = ports[0]  # the pool's listen in etcd
        self.listen = [ports[0]] * proxies if self.shared_listen else ports[1:1 + proxies]
        self.stats = ports[1 + proxies:]
        self.router = Router(self.pool_listen, self.pids) if self.shared_listen else None
        self.prefix = "/chash-test-%d" % self.etcd.client_ports[0]
        self.lease_ttl = lease_ttl
        self.procs = [None] * proxies
        self.frozen = set()
        self.epoch = 0
        got = self.apply(initial)
        check_eq(got["result"], "committed", "bootstrap apply: %r" % got)
        check_eq(got.get("epoch"), 1, "bootstrap epoch")
        self.epoch = 1
        for i in range(proxies):
            self.start_proxy(i)
        self.wait_members(1, timeout=20)

    # ---- pools and the CLI ----------------------------------------------

    def pools_yaml(self, n):
        """The pools file for the first n servers."""
        return ("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: fnv1a_64\n"
                "  distribution: ketama\n  timeout: 2000\n  warmup: 30000\n"
                "  server_retry_timeout: 1000\n  server_failure_limit: 3\n"
                "  servers:\n" % self.pool_listen
                + "".join("   - 127.0.0.1:%d:1 r%d\n" % (p, i)
                          for i, p in enumerate(self.redis[:n])))

    def cli(self, *args, timeout=60):
        """`chash fleet ARGS --etcd ... --etcd-prefix ...`: (rc, stdout,
        stderr)."""
        argv = [self.cli_bin, "fleet"] + [str(a) for a in args] + [
            "--etcd", self.etcd.endpoints(), "--etcd-prefix", self.prefix]
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout, cwd=self.env.dir)
        return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def apply(self, n, timeout_s=15):
        """`chash fleet apply --yes --json` of the first n servers; its JSON
        with "rc", "wall_s" and "t0" (monotonic start) added."""
        path = self.env.write("pools-%s-%d.yml" % (n, time.time_ns()), self.pools(self, n))
        t0 = time.monotonic()
        rc, out, err = self.cli("apply", path, "--yes", "--json", "--timeout", timeout_s,
                                timeout=timeout_s + 60)
        wall = time.monotonic() - t0
        try:
            doc = json.loads(out) if out.strip() else {}
        except ValueError:
            doc = {}
        if not isinstance(doc, dict) or "result" not in doc:
            # No JSON: the apply failed outright (e.g. etcd did not answer).
            doc = {"result": "failed", "stdout": out[-2000:]}
        doc.update(rc=rc, wall_s=round(wall, 3), t0=t0, stderr=err[-2000:])
        if doc["result"] in ("committed", "unchanged"):
            check_eq(rc, 0, "apply exit status (%s)" % doc["result"])
        else:
            check_eq(rc, 1, "apply exit status (%s)" % doc["result"])
        if doc["result"] == "committed":
            self.epoch = doc["epoch"]
        return doc

    def status(self):
        """`chash fleet status --json`, parsed (None: no answer)."""
        rc, out, err = self.cli("status", "--json", timeout=30)
        if rc != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    def members(self):
        """{proxy id: epoch} of the proxies `chash fleet status` lists."""
        st = self.status()
        if not st:
            return {}
        lst = st.get("proxies", [])
        if isinstance(lst, dict):
            lst = [dict(v, id=k) for k, v in lst.items()]
        return {m.get("id"): int(m.get("epoch", 0)) for m in lst}

    def stored_epoch(self):
        """P/epoch as etcd holds it (etcdctl), 0 when absent."""
        got = self.etcd.get_prefix(self.prefix + "/epoch")
        v = got.get((self.prefix + "/epoch").encode())
        return int(v[0]) if v else 0

    def wait_members(self, epoch, timeout=20, ids=None):
        """Until `chash fleet status` lists every proxy (or `ids`) on epoch."""
        ids = ids if ids is not None else ["p%d" % i for i in range(len(self.procs))]
        deadline = time.monotonic() + timeout
        got = {}
        while time.monotonic() < deadline:
            got = self.members()
            if all(got.get(i) == epoch for i in ids):
                return
            time.sleep(0.2)
        raise AssertionError("proxies on epoch %d by `chash fleet status`: %r" % (epoch, got))

    # ---- proxies -------------------------------------------------------

    def start_proxy(self, i):
        argv = [self.proxy_bin, "--etcd", self.etcd.endpoints(), "--etcd-prefix", self.prefix,
                "--etcd-id", "p%d" % i, "--etcd-lease-ttl", str(self.lease_ttl),
                "--workers", "2", "-s", str(self.stats[i])]
        if "--fleet-isolated" in self.proxy_help:
            argv += ["--fleet-isolated", "serve"]
        if not self.shared_listen:
            argv += ["--listen", "alpha=127.0.0.1:%d" % self.listen[i]]
        log = "proxy-%d.log" % self.stats[i]
        p = self.env.spawn(argv, None, log)
        self.env.proxies.append((p, os.path.join(self.env.dir, log)))
        self.procs[i] = p
        wait_port(self.listen[i], p, timeout=20)
        wait_port(self.stats[i], p, timeout=20)
        return p

    def pids(self):
        return [p.pid if p is not None and p.poll() is None else None for p in self.procs]

    def freeze(self, i):
        os.kill(self.procs[i].pid, signal.SIGSTOP)
        self.frozen.add(i)

    def thaw(self, i):
        os.kill(self.procs[i].pid, signal.SIGCONT)
        self.frozen.discard(i)

    def fleet_stats(self, i):
        return fleet_stats(self.stats[i])

    def epochs(self):
        """Each proxy's epoch by its stats (None: no answer)."""
        out = []
        for i in range(len(self.procs)):
            f = self.fleet_stats(i)
            out.append(int(f["epoch"]) if f else None)
        return out

    def wait_epoch(self, epoch, timeout=20):
        """Until every proxy's stats say it serves epoch; seconds taken."""
        t0 = time.monotonic()
        got = None
        while time.monotonic() - t0 < timeout:
            got = [self.fleet_stats(i) for i in range(len(self.procs))]
            if all(f and int(f["epoch"]) == epoch and f.get("state") == "serving" for f in got):
                return time.monotonic() - t0
            time.sleep(0.1)
        raise AssertionError("proxies on epoch %d by their stats: %r" % (epoch, got))

    def close(self):
        for i in list(self.frozen):
            self.thaw(i)
        self.etcd.close()


class Load:
    """A Checker on the fleet's proxies plus a StatsPoller."""

    def __init__(self, fleet, **kw):
        self.fleet = fleet
        self.chk = Checker(fleet.listen, keys=KEYS, threads=THREADS, timeout=CLIENT_TIMEOUT,
                           router=fleet.router, **kw)
        self.chk.prefill()
        self.stats = StatsPoller(fleet.stats)
        self.chk.start()

    def finish(self, settle=0.5):
        time.sleep(settle)
        self.chk.stop()
        self.stats.stop()
        self.chk.final_reads()
        rep = self.chk.report()
        # Keys the proxies moved from a previous owner (warm-up's MIGRATE):
        # the moved share of the keys was exercised.
        rep["warmup_moved"] = 0
        for port in self.fleet.stats:
            try:
                rep["warmup_moved"] += int(stats_json(port)["alpha"].get("warmup_moved", 0))
            except (OSError, ValueError, KeyError):
                pass
        return rep


def record(case, rep, **extra):
    row = {"case": case}
    row.update({k: rep[k] for k in ("lost", "stale", "errors", "writes_acked", "reads",
                                    "lost_by_unacked", "stale_by_unacked", "final_unreadable",
                                    "warmup_moved")})
    row.update(extra)
    row["errors_by_message"] = rep["errors_by_message"]
    row["examples"] = rep["examples"]
    RESULTS.append(row)
    print("  %s: %s" % (case, json.dumps({k: v for k, v in row.items() if k != "case"},
                                         sort_keys=True)))
    return row


def check_sound(row):
    """No acknowledged write lost, no stale read, every key readable."""
    check_eq(row["lost"], 0, "%s: acknowledged writes lost (%r)" % (row["case"],
                                                                    row["examples"]))
    check_eq(row["stale"], 0, "%s: stale reads (%r)" % (row["case"], row["examples"]))
    check_eq(row["final_unreadable"], 0, "%s: keys unreadable at the end" % row["case"])


# ---- the cases ----------------------------------------------------------
# Each scenario_* returns its row (figures) and checks only what must hold
# for the figures to mean anything; test_* adds the bars. bench/fleet.py
# calls the scenario_* functions.

def scenario_membership(env, proxy_bin, cli_bin):
    fleet = ProxyFleet(env, proxy_bin, cli_bin)
    try:
        load = Load(fleet)
        time.sleep(2)
        up = fleet.apply(5)
        check_eq(up["result"], "committed", "4 -> 5: %r" % up)
        time.sleep(3)
        down = fleet.apply(4)
        check_eq(down["result"], "committed", "5 -> 4: %r" % down)
        time.sleep(3)
        rep = load.finish()
        on = [load.stats.all_on(d["epoch"], d["t0"]) for d in (up, down)]
        return record("membership", rep, outcome="committed",
                      apply_all_on_s=max(up.get("all_on_epoch_s") or 0,
                                         down.get("all_on_epoch_s") or 0),
                      stats_all_on_s=None if None in on else max(on),
                      applies=[{k: d.get(k) for k in ("epoch", "proxies", "prepare_s",
                                                      "switch_s", "all_on_epoch_s", "wall_s")}
                               for d in (up, down)])
    finally:
        fleet.close()


def test_membership(env):
    row = scenario_membership(env, *binaries())
    check_sound(row)
    check_eq(row["errors"], 0, "membership: client errors %r" % row["errors_by_message"])
    check(row["stats_all_on_s"] is not None, "every proxy on each new epoch by its stats")
    check(row["warmup_moved"] > 0, "keys were moved from their previous owner")


def _watch_change(fleet, on_put):
    """etcdctl watch on P/change in the background; on_put() is called
    from its reader thread at its first PUT event (at once: a whole change
    may take 30 ms). Returns the process."""
    env = dict(os.environ, ETCDCTL_API="3")
    p = subprocess.Popen([ETCDCTL, "--endpoints", fleet.etcd.endpoints(), "watch",
                          fleet.prefix + "/change"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=env)
    fleet.env.procs.append(p)

    def read():
        for line in p.stdout:
            if line.strip() == b"PUT":
                on_put()
                return
    threading.Thread(target=read, daemon=True).start()
    return p


# Units: 100 buckets by the keys' last two digits (fk:N), a quarter on
# each of r0..r3 and none on r4; the cut flow moves half of them, 0-24 and
# 50-74, to r4 (as Alipay's LDC moves a city's buckets to another unit).
BUCKET_TABLES = {"before": ["0-24 r0", "25-49 r1", "50-74 r2", "75-99 r3"],
                 "cut": ["0-24 r4", "25-49 r1", "50-74 r4", "75-99 r3"]}


def bucket_pools(fleet, table):
    return ("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  distribution: buckets\n"
            "  buckets: 100\n  bucket_by: digits\n  bucket_table: [%s]\n"
            "  timeout: 2000\n  warmup: 30000\n  server_retry_timeout: 1000\n"
            "  server_failure_limit: 3\n  servers:\n" % (
                fleet.pool_listen, ", ".join('"%s"' % r for r in BUCKET_TABLES[table]))
            + "".join("   - 127.0.0.1:%d:1 r%d\n" % (p, i) for i, p in enumerate(fleet.redis)))


def scenario_buckets(env, proxy_bin, cli_bin):
    fleet = ProxyFleet(env, proxy_bin, cli_bin, initial="before", pools=bucket_pools)
    try:
        path = env.write("cut.yml", bucket_pools(fleet, "cut"))
        rc, out, err = fleet.cli("plan", path, "--json")
        check_eq(rc, 0, "plan: %s" % err)
        (plan,) = json.loads(out)["pools"]
        check_eq((plan["buckets_moved"], plan["bucket_moves"]),
                 (50, ["buckets 0-24: r0 -> r4", "buckets 50-74: r2 -> r4"]),
                 "the exact plan of the cut flow")
        load = Load(fleet)
        time.sleep(2)
        cut = fleet.apply("cut")
        check_eq(cut["result"], "committed", "cut flow: %r" % cut)
        time.sleep(3)
        rep = load.finish()
        # Every key on the unit its bucket now names, by asking the servers.
        owner = {b: int(r.split()[1][1:]) for r in BUCKET_TABLES["cut"]
                 for b in range(int(r.split()[0].split("-")[0]),
                                int(r.split()[0].split("-")[1]) + 1)}
        misplaced = 0
        conns = [Conn(port) for port in fleet.redis]
        via = [Conn(port) for port in fleet.listen]
        for k in range(KEYS):
            # Read through a proxy first: warm-up moves a key on first use.
            via[k % len(via)].call("GET", Checker.key(k))
            misplaced += conns[owner[k % 100]].call("EXISTS", Checker.key(k)) != 1
        for c in conns + via:
            c.s.close()
        return record("buckets", rep, outcome=cut["result"],
                      apply_all_on_s=cut.get("all_on_epoch_s"),
                      stats_all_on_s=load.stats.all_on(cut["epoch"], cut["t0"]),
                      misplaced=misplaced)
    finally:
        fleet.close()


def test_buckets(env):
    row = scenario_buckets(env, *binaries())
    check_sound(row)
    check_eq(row["errors"], 0, "buckets: client errors %r" % row["errors_by_message"])
    check_eq(row["misplaced"], 0, "keys not on the unit their bucket names")
    check(row["warmup_moved"] > 0, "keys were moved from their previous unit")


def health_pools(fleet, n):
    """on_failure: error, one failure marks a server down, probes every
    500 ms: what the fleet decides once for every proxy."""
    return ("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: fnv1a_64\n"
            "  distribution: ketama\n  timeout: 1000\n  on_failure: error\n"
            "  server_failure_limit: 1\n  server_retry_timeout: 500\n  servers:\n"
            % fleet.pool_listen
            + "".join("   - 127.0.0.1:%d:1 r%d\n" % (p, i) for i, p in enumerate(fleet.redis[:n])))


def scenario_health(env, proxy_bin, cli_bin):
    """A server frozen: only proxy p0's clients ask it, so only p0 sees it
    fail; every worker of p1 and p2 must fail its keys at once too (no 1 s
    timeout against the frozen server), and all take it back together."""
    fleet = ProxyFleet(env, proxy_bin, cli_bin, initial=4, pools=health_pools)
    conns = []
    try:
        direct = [Conn(port) for port in fleet.redis[:4]]
        conns += direct
        keys = ["hk:%d" % i for i in range(200)]
        via0 = Conn(fleet.listen[0])
        conns.append(via0)
        for k in keys:
            check_eq(via0.call("SET", k, "v"), b"+OK", "SET through p0")
        victim = 3
        mine = [k for k in keys if direct[victim].call("EXISTS", k) == 1]
        check(len(mine) > 5, "keys on the server to freeze: %d" % len(mine))
        # Several connections to each of p1 and p2: both workers of each.
        others = [Conn(fleet.listen[i]) for i in (1, 2) for _ in range(6)]
        conns += others
        os.kill(fleet.redis_procs[victim].pid, signal.SIGSTOP)
        t_stop = time.monotonic()
        try:
            first = via0.call("GET", mine[0])  # times out (1 s): p0 marks it down
            check("down" in str(first) or "timed out" in str(first) or "time" in str(first),
                  "p0's first request to the frozen server fails: %r" % (first,))
            # p1 and p2 must not see a failure of their own (that would mark
            # it down anyway): wait for p0's verdict in etcd, then ask them.
            t_fail = time.monotonic()
            seen_at = None
            while time.monotonic() - t_fail < 5:
                if fleet.etcd.get_prefix(fleet.prefix + "/health/"):
                    seen_at = time.monotonic() - t_fail
                    break
                time.sleep(0.02)
            check(seen_at is not None, "p0 publishes its verdict in etcd")
            time.sleep(0.3)
            slow, wrong = 0, []
            for c in others:
                for k in mine[:5]:
                    t = time.monotonic()
                    got = c.call("GET", k)
                    slow += time.monotonic() - t > 0.5
                    if "is down" not in str(got):
                        wrong.append(got)
            check_eq((slow, wrong), (0, []), "every worker of p1 and p2: the key fails at once")
            # Keys of the other servers are untouched.
            other_keys = [k for k in keys if k not in mine][:20]
            check(all(others[0].call("GET", k) == b"v" for k in other_keys),
                  "the other servers' keys are served")
            held = fleet.etcd.get_prefix(fleet.prefix + "/health/")
            check_eq(sorted(k.decode() for k in held),
                     [fleet.prefix + "/health/alpha/r%d/p0" % victim],
                     "P/health names the server and the proxy that saw it fail")
        finally:
            os.kill(fleet.redis_procs[victim].pid, signal.SIGCONT)
        t_cont = time.monotonic()
        back_at = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if all(c.call("GET", mine[0]) == b"v" for c in others):
                back_at = time.monotonic() - t_cont
                break
            time.sleep(0.1)
        check(back_at is not None, "every worker of p1 and p2 takes the server back")
        row = {"case": "health", "outcome": "down and up for all",
               "verdict_in_etcd_s": round(seen_at, 3), "up_for_all_s": round(back_at, 3),
               "lost": 0, "stale": 0, "errors": 0, "examples": []}
        RESULTS.append(row)
        print("  health: %s" % json.dumps(row, sort_keys=True))
        return row
    finally:
        for c in conns:
            c.s.close()
        fleet.close()


def test_health(env):
    scenario_health(env, *binaries())


def scenario_late_joiner(env, proxy_bin, cli_bin):
    """A proxy that starts during a change's warm-up window moves keys from
    their previous owners too (P/previous): every key written before a
    4 -> 5 change and not touched since reads back through it."""
    fleet = ProxyFleet(env, proxy_bin, cli_bin)
    try:
        c0 = Conn(fleet.listen[0])
        values = {}
        for k in range(KEYS):
            values[k] = b"late:%d" % k
            check_eq(c0.call("SET", Checker.key(k), values[k]), b"+OK", "SET through p0")
        c0.s.close()
        up = fleet.apply(5)
        check_eq(up["result"], "committed", "4 -> 5: %r" % up)
        listen, stats = free_ports(2)
        argv = [proxy_bin, "--etcd", fleet.etcd.endpoints(), "--etcd-prefix", fleet.prefix,
                "--etcd-id", "late", "--etcd-lease-ttl", str(fleet.lease_ttl), "--workers", "2",
                "-s", str(stats), "--listen", "alpha=127.0.0.1:%d" % listen]
        p = env.spawn(argv, None, "proxy-late.log")
        env.proxies.append((p, os.path.join(env.dir, "proxy-late.log")))
        wait_port(listen, p, timeout=20)
        c = Conn(listen)
        wrong = [k for k in range(KEYS) if c.call("GET", Checker.key(k)) != values[k]]
        c.s.close()
        moved = int(stats_json(stats)["alpha"].get("warmup_moved", 0))
        row = {"case": "late_joiner", "outcome": "started after the commit",
               "lost": len(wrong), "stale": 0, "errors": 0, "examples": wrong[:5],
               "warmup_moved": moved}
        RESULTS.append(row)
        print("  late_joiner: %s" % json.dumps(row, sort_keys=True))
        return row
    finally:
        fleet.close()


def test_late_joiner(env):
    row = scenario_late_joiner(env, *binaries())
    check_eq(row["lost"], 0, "keys a proxy started after the change cannot read: %r"
             % row["examples"])
    check(row["warmup_moved"] > 0, "the late proxy moved keys from their previous owners")


def test_orphan_switch(env):
    """A coordinator that dies after setting phase switch: the proxies hold
    the pool, answer, and after their hold limit (2 x TTL + 2 s) abort the
    change and delete its record themselves, so the fleet can change again
    without `chash fleet abort`."""
    proxy_bin, cli_bin = binaries()
    fleet = ProxyFleet(env, proxy_bin, cli_bin)
    try:
        pools = {"alpha": fleet.pools_yaml(5).split("\n", 1)[1].replace("\n  ", "\n")[2:]}
        change = {"epoch": 2, "from": 1, "phase": "switch", "by": "a dead coordinator",
                  "pools": pools}
        fleet.etcd.etcdctl("put", fleet.prefix + "/change", json.dumps(change))
        t0 = time.monotonic()
        deadline = t0 + 4 * LEASE_TTL + 10
        while time.monotonic() < deadline:
            if not fleet.etcd.get_prefix(fleet.prefix + "/change"):
                break
            time.sleep(0.2)
        gone = time.monotonic() - t0
        check(not fleet.etcd.get_prefix(fleet.prefix + "/change"),
              "the proxies ended the orphaned change themselves")
        check(gone >= 2 * LEASE_TTL, "not before their hold limit (%.1f s)" % gone)
        fleet.wait_epoch(1)
        check_eq(fleet.members(), {"p0": 1, "p1": 1, "p2": 1}, "every proxy serving epoch 1")
        got = fleet.apply(5)
        check_eq(got["result"], "committed", "a later apply: %r" % got)
        fleet.wait_epoch(2)
        print("  orphan_switch: ended by the proxies %.1f s after it appeared" % gone)
        # Pools edited by hand after the commit: a proxy starting now would
        # route unlike the others, so it refuses to start and says why.
        fleet.etcd.etcdctl("put", fleet.prefix + "/pools/alpha", pools["alpha"].replace(
            "   - 127.0.0.1:%d:1 r4\n" % fleet.redis[4], ""))
        r = subprocess.run([proxy_bin, "--etcd", fleet.etcd.endpoints(), "--etcd-prefix",
                            fleet.prefix, "--etcd-id", "late", "-s", "0", "--listen",
                            "alpha=127.0.0.1:%d" % free_ports(1)[0]],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        check(r.returncode != 0 and b"changed after epoch 2" in r.stderr,
              "a start on hand-edited pools is refused: %r" % r.stderr[-300:])
        check_eq(fleet.epochs(), [2, 2, 2], "the running proxies stay on epoch 2")
    finally:
        fleet.close()


def test_secure(env):
    """etcd over https with client certificates and a user whose role only
    reaches the fleet's prefix: `chash fleet apply` and a proxy get in with
    the same options; a wrong password is refused at start with a clear
    message; no password appears in any output."""
    proxy_bin, cli_bin = binaries()
    secret, root_secret, wrong = "fleetpw-K3x9", "rootpw-Zq81", "wrongpw-T77"
    certs = make_certs(env.dir)
    # etcd 3.4's JSON gateway refuses, once auth is on, a client certificate
    # that has a CommonName (its fix of CVE-2018-16886): one without.
    d = os.path.dirname(certs["ca"])
    for argv in (["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", d + "/nocn.key", "-out", d + "/nocn.csr", "-subj", "/O=chash-fleet"],
                 ["x509", "-req", "-in", d + "/nocn.csr", "-CA", certs["ca"], "-CAkey",
                  d + "/ca.key", "-CAcreateserial", "-out", d + "/nocn.pem", "-days", "1",
                  "-extfile", d + "/client.ext"]):
        subprocess.run(["openssl"] + argv, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    etcd = EtcdFleet(env, members=1, tls=certs)
    prefix = "/secure"
    try:
        etcd.enable_auth(root_secret, users=[("fleet", secret, prefix)])
        good, bad = env.write("pw", secret + "\n"), env.write("pw-wrong", wrong + "\n")
        common = ["--etcd", etcd.endpoints(), "--etcd-prefix", prefix, "--etcd-user", "fleet",
                  "--etcd-cacert", certs["ca"], "--etcd-cert", d + "/nocn.pem",
                  "--etcd-key", d + "/nocn.key"]
        redis_port = env.redis()[0]
        listen, stats = free_ports(2)
        pools = env.write("secure.yml", "alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n"
                          "  servers:\n   - 127.0.0.1:%d:1 r0\n" % (listen, redis_port))
        r = subprocess.run([cli_bin, "fleet", "apply", pools, "--yes", "--json"] + common,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                           env=dict(os.environ, CHASH_ETCD_PASSWORD=secret))
        outputs = [r.stdout.decode(), r.stderr.decode()]
        check_eq(r.returncode, 0, "apply as the fleet's user over TLS: %s" % r.stderr.decode())
        check_eq(json.loads(r.stdout)["result"], "committed", "apply's result")
        p = env.spawn([proxy_bin] + common + ["--etcd-password-file", good, "--workers", "1",
                                              "-s", str(stats)], None, "proxy-secure.log")
        env.proxies.append((p, os.path.join(env.dir, "proxy-secure.log")))
        wait_port(listen, p, timeout=20)
        c = Conn(listen)
        check_eq(c.call("SET", "k", "v"), b"+OK", "SET through the proxy")
        check_eq(c.call("GET", "k"), b"v", "GET through the proxy")
        c.s.close()
        wait_port(stats, p, timeout=20)
        check_eq(int(fleet_stats(stats)["epoch"]), 1, "the proxy serves epoch 1")
        # /metrics: the same state for Prometheus, each family with its help.
        text = raw_stats(stats, b"GET /metrics HTTP/1.0\r\n\r\n").decode()
        got = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
               if line.startswith("chash_proxy_fleet_")}
        check_eq({k: got.get(k) for k in ("chash_proxy_fleet_epoch", "chash_proxy_fleet_etcd_up",
                                           "chash_proxy_fleet_isolated",
                                           "chash_proxy_fleet_holding")},
                 {"chash_proxy_fleet_epoch": 1.0, "chash_proxy_fleet_etcd_up": 1.0,
                  "chash_proxy_fleet_isolated": 0.0, "chash_proxy_fleet_holding": 0.0},
                 "the fleet's metrics")
        check(0 <= got.get("chash_proxy_fleet_view_age_seconds", -1) < 5, "view age in seconds")
        check("# HELP chash_proxy_fleet_view_age_seconds " in text and
              "# TYPE chash_proxy_fleet_changes_total counter" in text, "HELP and TYPE lines")
        r = subprocess.run([proxy_bin] + common + ["--etcd-password-file", bad, "--workers",
                                                   "1", "-s", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        err = r.stderr.decode()
        outputs += [r.stdout.decode(), err]
        check(r.returncode != 0, "a wrong password: the proxy does not start")
        check("auth" in err.lower(), "and says why: %r" % err)
        r = subprocess.run([proxy_bin, "--etcd", etcd.endpoints(), "--etcd-prefix", prefix,
                            "--etcd-user", "fleet", "--etcd-password-file", good, "-s", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        outputs += [r.stdout.decode(), r.stderr.decode()]
        check(r.returncode != 0, "without the CA and client certificate: refused")
        for name in os.listdir(env.dir):
            path = os.path.join(env.dir, name)
            if name.endswith(".log"):
                outputs.append(open(path, errors="replace").read())
        for secret_text in (secret, root_secret, wrong):
            check(not any(secret_text in o for o in outputs),
                  "no password in any output (%s)" % secret_text[:6])
    finally:
        etcd.close()


def scenario_leader_killed(env, proxy_bin, cli_bin):
    fleet = ProxyFleet(env, proxy_bin, cli_bin)
    try:
        load = Load(fleet)
        time.sleep(2)
        leader = fleet.etcd.leader()
        seen = threading.Event()
        killed = {}

        def kill():
            killed["t"] = time.monotonic()
            os.kill(fleet.etcd.procs[leader].pid, signal.SIGKILL)
            seen.set()
        watch = _watch_change(fleet, kill)
        time.sleep(0.5)  # the watch is open
        result = {}

        def go():
            try:
                result["doc"] = fleet.apply(5)
            except Exception as e:  # noqa: BLE001
                result["error"] = repr(e)
        t = threading.Thread(target=go)
        t.start()
        check(seen.wait(30), "P/change appeared")
        t_kill = killed["t"]
        fleet.etcd.procs[leader].wait(10)
        t.join(120)
        watch.kill()
        check("doc" in result, "the apply ended: %r" % result)
        doc = result["doc"]
        # Whatever the apply said, the fleet converges on what etcd holds.
        # A change the apply left behind (it failed with etcd's leader gone
        # rather than abort) is what an operator ends with `chash fleet
        # abort`: done here, and reported.
        left = None
        st = fleet.status()
        if st and st.get("change"):
            left = st["change"].get("phase")
            rc, out, err = fleet.cli("abort", "--reason", "test: left by a failed apply")
            check(rc == 0 or "moved" in out + err, "abort: %s %s" % (out, err))
        epoch = fleet.stored_epoch()
        check(epoch in (1, 2), "stored epoch %d" % epoch)
        if doc["result"] in ("committed", "aborted"):
            check_eq(epoch, 2 if doc["result"] == "committed" else 1,
                     "etcd's epoch agrees with the apply's %s" % doc["result"])
        converge = fleet.wait_epoch(epoch, timeout=30)
        converge_s = time.monotonic() - t_kill
        fleet.etcd.restart(leader)
        later = fleet.apply(4 if epoch == 2 else 5)
        check_eq(later["result"], "committed", "a later apply: %r" % later)
        fleet.wait_epoch(later["epoch"], timeout=20)
        time.sleep(2)
        rep = load.finish()
        return record("leader_killed", rep, outcome=doc["result"] + (
            " (%s)" % doc.get("reason") if doc.get("reason") else ""), left_change=left,
            epoch_after=epoch,
            apply_all_on_s=doc.get("all_on_epoch_s"),
            stats_all_on_s=round(converge_s, 3), converge_after_apply_s=round(converge, 3),
            apply_wall_s=doc["wall_s"], later_all_on_s=later.get("all_on_epoch_s"))
    finally:
        fleet.close()


def test_leader_killed(env):
    row = scenario_leader_killed(env, *binaries())
    check_sound(row)
    # Errors: not asserted to be 0. A proxy's request that reaches a
    # follower just after the leader died waits ~7 s in etcd (etcdfleet.py),
    # and a switch that is held meanwhile may hold clients longer than their
    # 5 s timeout; the figure is reported. Bounded loosely: a hold never
    # turns into a stream of errors.
    check(row["errors"] <= 2 * THREADS * PROXIES, "leader_killed: client errors %r"
          % row["errors_by_message"])


def scenario_etcd_down(env, proxy_bin, cli_bin, seconds=8.0):
    fleet = ProxyFleet(env, proxy_bin, cli_bin)
    try:
        load = Load(fleet)
        time.sleep(2)
        t_down = time.monotonic()
        for i in range(fleet.etcd.count):
            fleet.etcd.freeze(i)
        time.sleep(seconds)
        t_up = time.monotonic()
        for i in range(fleet.etcd.count):
            fleet.etcd.thaw(i)
        fleet.etcd.wait_healthy()
        # The proxies see etcd again (their view fresh) before the apply.
        back = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            fs = [fleet.fleet_stats(i) for i in range(PROXIES)]
            if all(f and f.get("etcd_reachable") for f in fs):
                back = time.monotonic() - t_up
                break
            time.sleep(0.1)
        check(back is not None, "proxies reach etcd again: %r" % fs)
        # Their leases may have expired while etcd was frozen: each is
        # listed again (registered anew) before the change.
        fleet.wait_members(1, timeout=20)
        doc = fleet.apply(5)
        check_eq(doc["result"], "committed", "an apply after etcd is back: %r" % doc)
        time.sleep(2)
        rep = load.finish()
        during = load.chk.errors_between(t_down, t_up)
        # What the stats said while etcd was away (after the lease's TTL,
        # which is when a proxy may first have noticed).
        unreachable, ages, states = [], [], set()
        for i in range(PROXIES):
            samples = load.stats.between(t_down + LEASE_TTL + 1, t_up, i)
            unreachable.append(any(not f.get("etcd_reachable") for _, f in samples))
            a = [int(f.get("view_age_ms", 0)) for _, f in samples]
            ages.append((min(a), max(a)) if a else None)
            states |= {f.get("state") for _, f in samples}
        return record("etcd_down", rep, outcome="committed after",
                      errors_while_down=sum(during.values()),
                      errors_while_down_by_message=dict(during),
                      unreachable_seen=unreachable, view_age_ms=ages, states=sorted(states),
                      reachable_again_s=round(back, 3),
                      proxies_in_change=doc.get("proxies"),
                      apply_all_on_s=doc.get("all_on_epoch_s"),
                      stats_all_on_s=load.stats.all_on(doc["epoch"], doc["t0"]))
    finally:
        fleet.close()


def test_etcd_down(env):
    row = scenario_etcd_down(env, *binaries())
    check_sound(row)
    check_eq(row["errors_while_down"], 0, "etcd_down: client errors while etcd is away %r"
             % row["errors_while_down_by_message"])
    check_eq(row["errors"], 0, "etcd_down: client errors %r" % row["errors_by_message"])
    check(all(row["unreachable_seen"]), "stats: etcd_reachable false while etcd is away: %r"
          % row["unreachable_seen"])
    for i, a in enumerate(row["view_age_ms"]):
        check(a is not None and a[1] - a[0] >= 2000, "proxy %d's view_age_ms grew while "
              "etcd was away: %r" % (i, a))
    check(row["stats_all_on_s"] is not None, "every proxy on the new epoch by its stats")


def scenario_proxy_frozen(env, proxy_bin, cli_bin):
    fleet = ProxyFleet(env, proxy_bin, cli_bin)
    frozen = PROXIES - 1
    try:
        load = Load(fleet)
        time.sleep(2)
        t_freeze = time.monotonic()
        fleet.freeze(frozen)
        doc = fleet.apply(5)
        check_eq(doc["result"], "committed", "apply with a proxy frozen: %r" % doc)
        t_thaw = time.monotonic()
        fleet.thaw(frozen)
        # It comes back on the new epoch, and registers again.
        back = fleet.wait_epoch(doc["epoch"], timeout=30)
        fleet.wait_members(doc["epoch"], timeout=20)
        time.sleep(3)
        rep = load.finish()
        return record("proxy_frozen", rep, outcome=doc["result"],
                      proxies_in_change=doc.get("proxies"),
                      frozen_s=round(t_thaw - t_freeze, 3),
                      apply_all_on_s=doc.get("all_on_epoch_s"),
                      stats_all_on_s=round(t_thaw - doc["t0"] + back, 3),
                      frozen_back_on_epoch_s=round(back, 3),
                      errors_frozen_proxy=rep["errors_by_proxy"].get(frozen, 0),
                      errors_other_proxies=sum(v for p, v in rep["errors_by_proxy"].items()
                                               if p != frozen),
                      stale_frozen_proxy=rep["stale_by_proxy"].get(frozen, 0),
                      lost_frozen_proxy=rep["lost_by_proxy"].get(frozen, 0))
    finally:
        fleet.close()


def test_proxy_frozen(env):
    row = scenario_proxy_frozen(env, *binaries())
    check_sound(row)
    check_eq(row["stale_frozen_proxy"], 0, "stale reads through the thawed proxy")
    check(row["proxies_in_change"] in (None, PROXIES - 1),
          "the change went on without the frozen proxy: %r" % row["proxies_in_change"])
    # Errors: the frozen proxy's clients wait for it; a request sent to it
    # just after the freeze waits the lease (3 s) plus the change and its
    # permit check after the thaw, close to the clients' 5 s timeout, so some
    # time out: reported, not asserted to be 0. The other proxies' clients
    # see none.
    check_eq(row["errors_other_proxies"], 0, "proxy_frozen: errors through the live proxies "
             "%r" % row["errors_by_message"])


def report():
    print()
    print(table(RESULTS, COLUMNS))
    path = os.environ.get("FLEET_RESULTS_JSON")
    if path:
        with open(path, "w") as f:
            json.dump(RESULTS, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    binaries()
    only = [n for n in os.environ.get("CHASH_FLEET_ONLY", "").split(",") if n]
    tests = [test_membership, test_buckets, test_health, test_late_joiner, test_orphan_switch,
             test_secure,
             test_leader_killed, test_etcd_down, test_proxy_frozen]
    if only:
        tests = [t for t in tests if t.__name__[5:] in only]
    try:
        run(tests)
    finally:
        report()

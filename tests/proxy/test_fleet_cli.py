#!/usr/bin/env python3
"""test_fleet_cli.py CHASH - `chash fleet` (cli/cmd_fleet.c), the coordinator
of proxy/fleetproto.h's protocol, against a real 3-member etcd on loopback
(etcdfleet.py: free ports, stopped by PID) and simulated proxies: each
registers P/proxies/ID on a lease of its own and answers P/change through
etcd's JSON gateway as fleetproto.h says a proxy does (or refuses, or stays
silent), from a thread of this test.

- bootstrap: apply with nothing stored and no proxies writes the pools at
  epoch 1 in one txn; status --json shows them; the same file again is
  "unchanged".
- plan: per pool status and servers; the moved share of a ketama pool is
  exactly `chash plan`'s (same hash ranges); a modula pool's sampled share is
  exactly what `chash lookup` says of the same 100,000 keys.
- commit: two proxies answer prepare then switch; the commit moves P/epoch
  and the pools, deletes P/change; every proxy saw prepare, switch, commit
  in that order; the report's timings.
- refusal: a proxy says no to prepare: aborted with its reason, epoch and
  pools unchanged, P/change gone.
- silent: a live proxy that never answers: aborted at --timeout, naming it.
- lease expired: a silent proxy whose lease runs out stops being waited for:
  committed without it.
- in progress: a second apply is refused while P/change exists; `chash fleet
  abort` ends it (and says so when there is nothing to end).
- abort during apply: `chash fleet abort` while apply waits: apply reports
  that someone else aborted.
- usage: no --etcd, a bad file, no tty without --yes: exit 2.
"""
import base64
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Env  # noqa: E402
from etcdfleet import EtcdFleet  # noqa: E402

if len(sys.argv) < 2:
    sys.exit("usage: test_fleet_cli.py CHASH")
CHASH = sys.argv.pop(1)

POOLS_A = """\
# the cache tier
alpha:
  listen: 127.0.0.1:22121
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
   - 127.0.0.1:6379:1 s1
   - 127.0.0.1:6380:1 s2   # newer box
   - 127.0.0.1:6381:1 s3
   - 127.0.0.1:6382:1 s4
beta: {listen: 127.0.0.1:22122, distribution: modula,
       servers: [127.0.0.1:11211:1, 127.0.0.1:11212:1]}
"""
# alpha gains s5, beta a third server: the pool set stays.
POOLS_B = POOLS_A.replace("   - 127.0.0.1:6382:1 s4\n",
                          "   - 127.0.0.1:6382:1 s4\n   - 127.0.0.1:6383:1 s5\n").replace(
    "127.0.0.1:11212:1]", "127.0.0.1:11212:1, 127.0.0.1:11213:1]")
POOLS_C = POOLS_B + "gamma: {listen: 127.0.0.1:22123, servers: [127.0.0.1:11214:1]}\n"

ENV = None
FLEET = None


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def unb64(text):
    return base64.b64decode(text or "")


class Gateway:
    """etcd's JSON gateway, as a proxy talks to it."""

    def __init__(self, url):
        self.url = url

    def call(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read().decode())

    def get_prefix(self, prefix):
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        got = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end)})
        return {unb64(kv["key"]).decode(): (unb64(kv.get("value")).decode(),
                                             int(kv.get("mod_revision", 0)))
                for kv in got.get("kvs", [])}

    def get(self, key):
        return self.get_prefix(key).get(key)

    def put(self, key, value, lease=0):
        body = {"key": b64(key), "value": b64(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self.call("/v3/kv/put", body)["header"]["revision"])

    def delete(self, key):
        self.call("/v3/kv/deleterange", {"key": b64(key)})

    def grant(self, ttl):
        return int(self.call("/v3/lease/grant", {"TTL": str(ttl)})["ID"])

    def keepalive(self, lease):
        self.call("/v3/lease/keepalive", {"ID": str(lease)})


class SimProxy:
    """A proxy of the fleet as fleetproto.h describes one, minus the
    serving: registered under P/proxies/ID on its lease, it answers each
    phase of P/change once (mode "ok"), refuses one phase ("refuse:PHASE"),
    or never answers ("silent"); after a commit (P/change gone, P/epoch
    moved) it takes the new epoch and says so in its record. keepalive
    False: its lease is left to expire."""

    def __init__(self, gw, prefix, pid, mode="ok", ttl=5, keepalive=True, error="bad pool"):
        self.gw, self.prefix, self.id, self.mode = gw, prefix, "px-%d" % pid, mode
        self.error = error
        self.ttl, self.keepalive = ttl, keepalive
        self.lease = gw.grant(ttl)
        self.events = []  # (phase or "commit", epoch)
        self.answered = set()  # P/change mod_revisions answered
        epoch = gw.get(prefix + "/epoch")
        self.epoch = int(epoch[0]) if epoch else 0
        self.register("serving")
        self.stopped = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def register(self, state):
        self.gw.put("%s/proxies/%s" % (self.prefix, self.id), json.dumps({
            "id": self.id, "host": "sim", "pid": os.getpid(), "listen": "alpha=127.0.0.1:22121",
            "epoch": self.epoch, "state": state, "started_unix": int(time.time())}), self.lease)

    def loop(self):
        last_keepalive = time.monotonic()
        while not self.stopped.is_set():
            try:
                self.step()
                if self.keepalive and time.monotonic() - last_keepalive > self.ttl / 3:
                    self.gw.keepalive(self.lease)
                    last_keepalive = time.monotonic()
            except Exception as e:  # etcd busy: try again
                self.events.append(("error", str(e)))
            time.sleep(0.01)

    def step(self):
        change = self.gw.get(self.prefix + "/change")
        if change:
            c, mod = json.loads(change[0]), change[1]
            phase = c["phase"]
            if phase in ("prepare", "switch") and mod not in self.answered:
                self.answered.add(mod)
                self.events.append((phase, c["epoch"]))
                if self.mode == "silent":
                    return
                ok = self.mode != "refuse:" + phase
                answer = {"epoch": c["epoch"], "phase": phase, "ok": ok}
                if not ok:
                    answer["error"] = self.error
                if phase == "switch":
                    self.register("holding")
                self.gw.put("%s/ready/%s" % (self.prefix, self.id), json.dumps(answer),
                            self.lease)
            return
        epoch = self.gw.get(self.prefix + "/epoch")
        if epoch and int(epoch[0]) > self.epoch:
            self.epoch = int(epoch[0])
            self.events.append(("commit", self.epoch))
            self.register("serving")

    def stop(self):
        """Gone at once: its lease revoked, its keys with it."""
        self.stopped.set()
        self.t.join(5)
        try:
            self.gw.call("/v3/lease/revoke", {"ID": str(self.lease)})
        except Exception:
            pass  # expired already


def chash(*args, stdin=subprocess.DEVNULL, timeout=120):
    r = subprocess.run([CHASH] + [str(a) for a in args], stdin=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


class FleetCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        global ENV, FLEET
        ENV = Env()
        FLEET = EtcdFleet(ENV)

    @classmethod
    def tearDownClass(cls):
        FLEET.close()
        ENV.close()

    def setUp(self):
        self.prefix = "/t/" + self._testMethodName
        self.gw = Gateway(FLEET.url(0))
        self.sims = []

    def tearDown(self):
        for s in self.sims:
            s.stop()

    def write(self, name, text):
        path = os.path.join(ENV.dir, "%s-%s" % (self._testMethodName, name))
        with open(path, "w") as f:
            f.write(text)
        return path

    def fleet(self, *args, **kw):
        return chash("fleet", args[0], "--etcd", FLEET.endpoints(), "--etcd-prefix",
                     self.prefix, *args[1:], **kw)

    def fleet_json(self, *args, expect=0):
        rc, out, err = self.fleet(*args, "--json")
        self.assertEqual(rc, expect, "chash fleet %s: exit %d\n%s\n%s" % (args, rc, out, err))
        return json.loads(out), err

    def bootstrap(self, text=POOLS_A):
        got, _ = self.fleet_json("apply", "--yes", self.write("boot.yml", text))
        self.assertEqual(got["result"], "committed")
        self.assertEqual(got["epoch"], 1)

    def sim(self, **kw):
        s = SimProxy(self.gw, self.prefix, len(self.sims) + 1, **kw)
        self.sims.append(s)
        return s

    def held(self):
        return {k[len(self.prefix):]: v[0] for k, v in self.gw.get_prefix(self.prefix + "/").items()}

    # ---- cases ---------------------------------------------------------

    def test_bootstrap_status(self):
        rc, out, err = self.fleet("status")
        self.assertEqual(rc, 0, err)
        self.assertIn("epoch 0", out)
        got, err = self.fleet_json("apply", "--yes", self.write("a.yml", POOLS_A))
        self.assertEqual((got["result"], got["epoch"], got["proxies"]), ("committed", 1, 0))
        self.assertEqual([p["status"] for p in got["plan"]], ["added", "added"])
        held = self.held()
        self.assertEqual(held["/epoch"], "1")
        self.assertNotIn("/change", held)
        self.assertTrue(held["/pools/alpha"].startswith("listen: 127.0.0.1:22121\n"))
        self.assertIn("   - 127.0.0.1:6380:1 s2   # newer box\n".replace("   -", " -"),
                      held["/pools/alpha"])
        self.assertTrue(held["/pools/beta"].startswith("{listen: 127.0.0.1:22122"))
        st, _ = self.fleet_json("status")
        self.assertEqual(sorted(st), ["change", "epoch", "pools", "prefix", "proxies",
                                      "revision"])
        self.assertEqual((st["prefix"], st["epoch"], st["change"], st["proxies"]),
                         (self.prefix, 1, None, []))
        self.assertEqual([(p["name"], p["servers"], p["distribution"]) for p in st["pools"]],
                         [("alpha", 4, "ketama"), ("beta", 2, "modula")])
        again, _ = self.fleet_json("apply", "--yes", self.write("a2.yml", POOLS_A))
        self.assertEqual((again["result"], again["epoch"]), ("unchanged", 1))
        # A proxy shows in status, on the epoch or not.
        s = self.sim()
        st, _ = self.fleet_json("status")
        self.assertEqual([(p["id"], p["epoch"], p["state"], p["on_epoch"]) for p in st["proxies"]],
                         [(s.id, 1, "serving", True)])
        rc, out, _ = self.fleet("status")
        self.assertIn("1 of 1 proxies on epoch 1", out)

    def test_plan(self):
        self.bootstrap()
        got, _ = self.fleet_json("plan", self.write("c.yml", POOLS_C))
        self.assertEqual(got["epoch"], 1)
        self.assertEqual(got["changed"], 3)
        by = {p["name"]: p for p in got["pools"]}
        self.assertEqual({n: p["status"] for n, p in by.items()},
                         {"alpha": "changed", "beta": "changed", "gamma": "added"})
        a = by["alpha"]
        self.assertEqual((a["servers_before"], a["servers_after"], a["exact"]), (4, 5, True))
        # Independently: `chash plan` on the same membership, nutcracker's
        # ketama with fnv1a_64 (the pool's hash): the same ranges.
        na = self.write("na", "".join("s%d 1\n" % i for i in range(1, 5)))
        nb = self.write("nb", "".join("s%d 1\n" % i for i in range(1, 6)))
        rc, out, err = chash("plan", "--scheme", "twemproxy", "--hash", "fnv1a_64", "--from", na,
                             "--to", nb, "--json")
        self.assertEqual(rc, 0, err)
        ref = json.loads(out)
        self.assertEqual(a["hash_ranges"], ref["range_count"])
        self.assertEqual(a["moved_hashes"],
                         sum(r["last"] - r["first"] + 1 for r in ref["ranges"]))
        self.assertAlmostEqual(a["moved_fraction"], ref["moved_fraction"], places=8)
        # modula: sampled from the keys key:0 .. key:99999; `chash lookup`
        # of the same keys with the same servers says how many move.
        b = by["beta"]
        self.assertEqual((b["servers_before"], b["servers_after"], b["exact"], b["samples"]),
                         (2, 3, False, 100000))
        keys = "".join("key:%d\n" % i for i in range(100000)).encode()
        owners = []
        for names in ("127.0.0.1:11211,127.0.0.1:11212",
                      "127.0.0.1:11211,127.0.0.1:11212,127.0.0.1:11213"):
            r = subprocess.run([CHASH, "lookup", "--scheme", "twemproxy", "--algo", "modulo",
                                "--names", names], input=keys, stdout=subprocess.PIPE, check=True)
            owners.append([line.split(b"\t")[1] for line in r.stdout.splitlines()])
        moved = sum(1 for x, y in zip(*owners) if x != y)
        self.assertEqual(round(b["moved_fraction"] * 100000), moved)
        self.assertEqual((by["gamma"]["servers_before"], by["gamma"]["servers_after"]), (0, 1))
        rc, out, err = self.fleet("plan", self.write("c2.yml", POOLS_C))
        self.assertEqual(rc, 0, err)
        self.assertIn("alpha            changed   4 -> 5 servers, %.4f%% of the key space moves "
                      "(%d hash ranges)" % (100 * a["moved_fraction"], a["hash_ranges"]), out)
        self.assertIn("pools added or removed", out)

    def test_plan_buckets(self):
        """A cut flow: the plan names each run of buckets that changes hands
        (25-49 go from u1 to u3, by the two tables), and nothing else."""
        units = ("units:\n  listen: 127.0.0.1:22130\n  redis: true\n  distribution: buckets\n"
                 "  buckets: 100\n  bucket_by: digits\n  bucket_table: [%s]\n"
                 "  bucket_overrides: [\"vip7 u2\"]\n  servers:\n"
                 "    - 127.0.0.1:6390:1 u1\n    - 127.0.0.1:6391:1 u2\n"
                 "    - 127.0.0.1:6392:1 u3\n")
        before = units % '"0-49 u1", "50-99 u2 u3:3"'
        after = units % '"0-24 u1", "25-49 u3", "50-99 u2 u3:3"'
        got, _ = self.fleet_json("apply", "--yes", self.write("u1.yml", before))
        self.assertEqual(got["result"], "committed")
        got, _ = self.fleet_json("plan", self.write("u2.yml", after))
        (u,) = got["pools"]
        self.assertEqual((u["status"], u["exact"], u["buckets"], u["buckets_moved"],
                          u["keys_moved"], u["moved_fraction"]),
                         ("changed", True, 100, 25, 0, 0.25))
        self.assertEqual(u["bucket_moves"], ["buckets 25-49: u1 -> u3"])
        rc, out, err = self.fleet("plan", self.write("u3.yml", after))
        self.assertEqual(rc, 0, err)
        self.assertIn("25 of 100 buckets move (1 runs), 0 overridden keys move", out)
        self.assertIn("      buckets 25-49: u1 -> u3\n", out)

    def test_commit(self):
        self.bootstrap()
        sims = [self.sim(), self.sim()]
        got, err = self.fleet_json("apply", "--yes", "--timeout", "10",
                                   self.write("b.yml", POOLS_B))
        self.assertEqual((got["result"], got["epoch"], got["proxies"], got["reason"]),
                         ("committed", 2, 2, None), err)
        for k in ("prepare_s", "switch_s", "all_on_epoch_s"):
            self.assertTrue(0 <= got[k] < 10, (k, got[k]))
        for line in ("prepare: 2 proxies ready in", "switch: 2 proxies holding in",
                     "epoch 2 committed; all 2 proxies on it"):
            self.assertIn(line, err)
        held = self.held()
        self.assertEqual(held["/epoch"], "2")
        self.assertNotIn("/change", held)
        self.assertIn("s5", held["/pools/alpha"])
        self.assertIn("127.0.0.1:11213:1", held["/pools/beta"])
        for s in sims:
            self.assertEqual([e for e in s.events if e[0] != "error"],
                             [("prepare", 2), ("switch", 2), ("commit", 2)])
        st, _ = self.fleet_json("status")
        self.assertTrue(all(p["on_epoch"] and p["epoch"] == 2 for p in st["proxies"]))
        # The text report, on a second change back.
        rc, out, err = self.fleet("apply", "--yes", self.write("a.yml", POOLS_A))
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"epoch 3 committed; all 2 proxies on it \d+\.\d{3} s after the "
                              r"commit")

    def test_refusing_proxy(self):
        self.bootstrap()
        self.sim()
        bad = self.sim(mode="refuse:prepare", error="pool alpha: cannot resolve 'x'")
        before = self.held()
        got, err = self.fleet_json("apply", "--yes", "--timeout", "10",
                                   self.write("b.yml", POOLS_B), expect=1)
        self.assertEqual((got["result"], got["epoch"]), ("aborted", 1))
        self.assertIn("proxy %s refused prepare: pool alpha: cannot resolve 'x'" % bad.id,
                      got["reason"])
        self.assertIsNone(got["switch_s"])
        held = self.held()
        self.assertEqual(held["/epoch"], "1")
        self.assertNotIn("/change", held)
        self.assertEqual(held["/pools/alpha"], before["/pools/alpha"])
        # A refusal at the switch aborts too.
        for s in self.sims:
            s.stop()
        self.sims = []
        self.sim(mode="refuse:switch", error="held too long")
        got, err = self.fleet_json("apply", "--yes", self.write("b2.yml", POOLS_B), expect=1)
        self.assertIn("refused switch: held too long", got["reason"])
        self.assertIsNotNone(got["prepare_s"])
        self.assertEqual(self.held()["/epoch"], "1")

    def test_silent_proxy(self):
        self.bootstrap()
        self.sim()
        quiet = self.sim(mode="silent")
        t0 = time.monotonic()
        got, err = self.fleet_json("apply", "--yes", "--timeout", "1.5",
                                   self.write("b.yml", POOLS_B), expect=1)
        took = time.monotonic() - t0
        self.assertEqual(got["result"], "aborted")
        self.assertIn("no answer to prepare within 1.5 s from 1 proxies: %s" % quiet.id,
                      got["reason"])
        self.assertTrue(1.5 <= took < 6, took)
        held = self.held()
        self.assertEqual(held["/epoch"], "1")
        self.assertNotIn("/change", held)

    def test_lease_expires(self):
        self.bootstrap()
        ok = self.sim()
        gone = self.sim(mode="silent", ttl=2, keepalive=False)
        got, err = self.fleet_json("apply", "--yes", "--timeout", "15",
                                   self.write("b.yml", POOLS_B))
        self.assertEqual((got["result"], got["epoch"], got["proxies"]), ("committed", 2, 1), err)
        # It was waited for until its lease went (2 s from its grant).
        self.assertTrue(0.5 < got["prepare_s"] < 6, got["prepare_s"])
        self.assertIn(("commit", 2), ok.events)
        self.assertNotIn("/proxies/" + gone.id, self.held())

    def test_in_progress_and_abort(self):
        self.bootstrap()
        rc, out, err = self.fleet("abort")
        self.assertEqual(rc, 0, err)
        self.assertIn("no change in progress", out)
        change = {"epoch": 2, "from": 1, "phase": "prepare", "by": "someone", "pools": {}}
        self.gw.put(self.prefix + "/change", json.dumps(change))
        rc, out, err = self.fleet("apply", "--yes", self.write("b.yml", POOLS_B))
        self.assertEqual(rc, 1)
        self.assertIn("a change is already in progress: epoch 2 (from 1), phase prepare, by "
                      "someone", err)
        self.assertIn("chash fleet abort", err)
        st, _ = self.fleet_json("status")
        self.assertEqual((st["change"]["epoch"], st["change"]["phase"], st["change"]["by"]),
                         (2, "prepare", "someone"))
        got, _ = self.fleet_json("abort", "--reason", "test over")
        self.assertEqual((got["result"], got["change_epoch"], got["reason"]),
                         ("aborted", 2, "test over"))
        held = self.held()
        self.assertNotIn("/change", held)
        self.assertEqual(held["/epoch"], "1")
        # Now it goes through (no proxies: straight through the phases).
        got, _ = self.fleet_json("apply", "--yes", self.write("b2.yml", POOLS_B))
        self.assertEqual((got["result"], got["epoch"]), ("committed", 2))

    def test_abort_during_apply(self):
        self.bootstrap()
        self.sim(mode="silent")
        p = subprocess.Popen([CHASH, "fleet", "apply", "--etcd", FLEET.endpoints(),
                              "--etcd-prefix", self.prefix, "--yes", "--json", "--timeout",
                              "30", self.write("b.yml", POOLS_B)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        ENV.procs.append(p)
        deadline = time.monotonic() + 10
        while self.gw.get(self.prefix + "/change") is None:
            self.assertLess(time.monotonic(), deadline, "P/change never appeared")
            time.sleep(0.02)
        got, _ = self.fleet_json("abort", "--reason", "operator says no")
        self.assertEqual(got["result"], "aborted")
        out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 1, err)
        res = json.loads(out)
        self.assertEqual(res["result"], "aborted")
        # It saw the abort, or only P/change gone (the abort is two writes).
        self.assertRegex(res["reason"], r"the change was aborted by someone else"
                                        r"(: operator says no| \(P/change deleted\))")
        self.assertNotIn("/change", self.held())

    def test_usage(self):
        rc, _, err = chash("fleet", "status")
        self.assertEqual(rc, 2)
        self.assertIn("--etcd", err)
        rc, _, err = chash("fleet", "frob", "--etcd", "http://127.0.0.1:1")
        self.assertEqual(rc, 2)
        bad = self.write("bad.yml", "alpha:\n  listen: 127.0.0.1:1\n  servers: [x]\n")
        rc, _, err = self.fleet("apply", "--yes", bad)
        self.assertEqual(rc, 2)
        self.assertIn("bad.yml:", err)
        rc, _, err = self.fleet("plan", self.write("shared.yml", "a: {listen: 127.0.0.1:1, "
                                "servers: &s [127.0.0.1:2:1]}\nb: {listen: 127.0.0.1:3, "
                                "servers: *s}\n"))
        self.assertEqual(rc, 2)
        self.assertIn("alias *s refers to an anchor outside the pool", err)
        rc, _, err = self.fleet("apply", self.write("a.yml", POOLS_A))
        self.assertEqual(rc, 2)
        self.assertIn("give --yes", err)
        rc, _, err = chash("fleet", "status", "--etcd", "http://127.0.0.1:1")
        self.assertEqual(rc, 1)
        self.assertIn("127.0.0.1:1", err)


if __name__ == "__main__":
    unittest.main(verbosity=2)

#!/usr/bin/env python3
"""test_etcd.py CHASH_PROXY - the etcd v3 client (proxy/etcd.h) against a
real etcd cluster (Debian's etcd-server 3.4, three members on loopback:
etcdfleet.py), the foundation of issue 15's fleet. test_etcd_client (its
path in $CHASH_ETCD_CLIENT) runs one command a case; this side breaks the
cluster and cross-checks with etcdctl.

- kv: put/get/delete of keys and values holding every byte value, an empty
  value, a 1,000,000-byte value, prefixes ending in 0xff, the empty prefix;
  a response over max_response_bytes is an error; what the client read is
  what `etcdctl get --prefix -w json` shows.
- cas: compare-and-swap on mod_revision (0: absent) and on value, the
  current key on failure, a fenced put; two writers with their own handles
  released together, 40 rounds: exactly one wins each.
- txn: etcd_txn with every compare (mod_revision, value, absent) and op
  (put on a lease, delete, delete prefix), one revision for all its ops;
  a compare that fails does nothing; etcd's refusals (a key twice, a
  missing lease) are errors that say so.
- lease: keep-alive every 500 ms keeps a leased key for three TTLs; left
  alone the key is gone within TTL + 1 s (and not before the TTL); the
  gone lease answers TTL 0, revoke and put on it are "not found".
- watch: a watch from revision R while a writer creates 600 keys, with the
  raft leader killed (kill -9) and restarted, the member the watch is on
  killed and restarted, and then frozen (SIGSTOP) and thawed: the watch
  sees every key etcd holds, with its mod_revision and value, exactly once,
  in revision order (0 gaps, 0 duplicates); the writer's acknowledged
  revisions are etcd's.
- outage: 2 of 3 members killed: get, put and lease grant fail with an
  error naming every endpoint within (endpoints + 1) x timeout, the watch
  reports it; one member back: calls succeed and the watch opened before
  the outage delivers the next put.
- auth: with auth enabled (root user and role, an app role on a prefix) a
  wrong password and no password are clear errors, the right one works,
  the role's limits are "permission denied" (for a watch too); idle past
  --auth-token-ttl, the client is refused once and authenticates again,
  for a call and for a watch.
- tls: https with a client certificate (etcd --client-cert-auth); without
  the certificate, or without the CA, a clear error.
"""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import check, check_eq, run  # noqa: E402
from etcdfleet import EtcdFleet, make_certs  # noqa: E402

CLIENT = os.environ.get("CHASH_ETCD_CLIENT")
if not CLIENT:
    sys.exit("test_etcd.py: set CHASH_ETCD_CLIENT to the test_etcd_client binary")
FIGURES = {}


def client(*args, timeout=120):
    """Runs test_etcd_client ARGS to completion; its stdout lines."""
    r = subprocess.run([CLIENT] + [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0:
        raise AssertionError("test_etcd_client %s exited %d:\n%s\n%s" % (
            args[0], r.returncode, out[-3000:], r.stderr.decode(errors="replace")[-3000:]))
    return out.splitlines()


def figures(lines, case):
    for line in lines:
        if line.startswith("FIGURE "):
            name, value = line[7:].split(" ", 1)
            FIGURES["%s.%s" % (case, name)] = value


class Running:
    """test_etcd_client running in the background: its lines, as they come,
    with the monotonic time each arrived."""

    def __init__(self, env, *args, stdin=False):
        self.p = subprocess.Popen([CLIENT] + [str(a) for a in args], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)
        env.procs.append(self.p)  # killed with the rest if the case fails
        self.lines = []
        self.cond = threading.Condition()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.p.stdout:
            with self.cond:
                self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for(self, pred, timeout=60.0, what="a line", after=0.0):
        """Until some line that came after `after` (monotonic time)
        satisfies pred; returns it."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, line in self.lines:
                    if t >= after and pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and not self.t.is_alive()):
                    raise AssertionError("%s never came; exit %s; stderr:\n%s\nlast lines: %s" % (
                        what, self.p.poll(), self.stderr(), [x[1] for x in self.lines[-8:]]))
                self.cond.wait(min(left, 0.5))

    def count(self, prefix):
        with self.cond:
            return sum(1 for _, line in self.lines if line.startswith(prefix))

    def last(self, prefix):
        with self.cond:
            for _, line in reversed(self.lines):
                if line.startswith(prefix):
                    return line
        return None

    def say(self, text):
        self.p.stdin.write(text.encode() + b"\n")
        self.p.stdin.flush()

    def stderr(self):
        return self.p.stderr.read().decode(errors="replace") if self.p.poll() is not None else ""

    def finish(self, timeout=120):
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise AssertionError("test_etcd_client did not finish; last lines: %s"
                                 % [x[1] for x in self.lines[-8:]])
        self.t.join(10)
        if os.environ.get("CHASH_ETCD_VERBOSE"):
            for t, line in self.lines:
                if not line.startswith(("EV ", "ACK ", "KV ")):
                    print("    %.3f %s: %s" % (t, self.p.args[1], line))
        if rc != 0:
            raise AssertionError("test_etcd_client exited %d:\n%s\nlast lines: %s" % (
                rc, self.stderr(), [x[1] for x in self.lines[-15:]]))
        return [line for _, line in self.lines]


def unhex(text):
    return b"" if text == "-" else bytes.fromhex(text)


def case_kv(env):
    fleet = EtcdFleet(env)
    lines = client("kv", fleet.endpoints(), "/t/kv")
    read = {}
    for line in lines:
        if line.startswith("KV "):
            _, k, v, rev = line.split(" ")
            read[unhex(k)] = (unhex(v), int(rev))
    check_eq(len(read), 256, "keys the client read back")
    held = {k: (v, rev) for k, (v, rev, _) in fleet.get_prefix("/t/kv/keep/").items()}
    check_eq(held, read, "etcdctl's /t/kv/keep/ against the client's")
    check_eq(fleet.get_prefix("/t/kv/bin/"), {}, "deleted key")
    check_eq(len(fleet.get_prefix("/t/kv/big")[b"/t/kv/big"][0]), 1000000, "big value")


def case_cas(env):
    fleet = EtcdFleet(env)
    lines = client("cas", fleet.endpoints(), "/t/cas")
    figures(lines, "cas")
    held = fleet.get_prefix("/t/cas/")
    check_eq(held[b"/t/cas/cas"][0], b"f\x00ur", "the swapped value")
    check_eq(held[b"/t/cas/cas-fenced"][0], b"fenced", "the fenced put")
    check_eq(len([k for k in held if k.startswith(b"/t/cas/race/")]), 20, "race keys")


def case_txn(env):
    fleet = EtcdFleet(env)
    lines = client("txn", fleet.endpoints(), "/t/txn")
    figures(lines, "txn")
    held = fleet.get_prefix("/t/txn/")
    check_eq(sorted(held), [b"/t/txn/a", b"/t/txn/b"], "keys left (leased one revoked)")
    check_eq(held[b"/t/txn/a"][0], b"two", "created again after the delete")
    check_eq(held[b"/t/txn/b"][0], b"first", "the CAS winner")


def case_lease(env):
    fleet = EtcdFleet(env)
    lines = client("lease", fleet.endpoints(), "/t/lease", 2)
    figures(lines, "lease")
    check_eq(fleet.get_prefix("/t/lease/"), {}, "leased keys left")


def case_watch(env):
    fleet = EtcdFleet(env)
    leader = fleet.leader()
    followers = [i for i in range(3) if i != leader]
    # The watch starts on a follower, so killing the leader and killing the
    # watch's own member are two faults.
    watch_eps = fleet.endpoints(followers + [leader])
    start = json.loads(fleet.etcdctl("get", "/t/w", "-w", "json"))["header"]["revision"]
    count = 600
    watcher = Running(env, "watch", watch_eps, "/t/w", start + 1, 1000)
    watcher.wait_for(lambda l: l.startswith("CREATED"), what="the watch's creation")
    writer = Running(env, "writer", fleet.endpoints(), "/t/w", count)

    def acked(n):
        writer.wait_for(lambda l: l.startswith("ACK %d " % n), what="ACK %d" % n)

    def watch_member():
        line = watcher.last("LOG etcd: watch at ")
        url = line.split(" ")[4]
        return [i for i in range(3) if fleet.url(i) == url][0]

    faults = []
    acked(100)
    faults.append(("leader killed", time.monotonic()))
    fleet.kill(leader)
    acked(200)
    fleet.restart(leader)
    acked(300)
    victim = watch_member()
    faults.append(("watch's member killed", time.monotonic()))
    fleet.kill(victim)
    acked(400)
    fleet.restart(victim)
    acked(450)
    frozen = watch_member()
    t_freeze = time.monotonic()
    faults.append(("watch's member frozen", t_freeze))
    fleet.freeze(frozen)
    # Frozen, the member still accepts connections and sends nothing: only
    # the status probe (after 1 s of silence, 1 s to answer) finds it out.
    left = "LOG etcd: watch left %s " % fleet.url(frozen)
    watcher.wait_for(lambda l: l.startswith(left), after=t_freeze, what="the watch leaving "
                     "the frozen member")
    FIGURES["watch.frozen_member_left_after_ms"] = int((time.monotonic() - t_freeze) * 1000)
    acked(550)
    fleet.thaw(frozen)
    wlines = writer.finish()
    vlines = watcher.finish()
    figures(wlines, "watch")
    figures(vlines, "watch")

    acks = {}
    for line in wlines:
        if line.startswith("ACK "):
            _, i, rev = line.split(" ")
            acks[int(i)] = int(rev)
    check_eq(sorted(acks), list(range(count + 1)), "acknowledged writes")
    events = []
    for t, line in watcher.lines:
        if line.startswith("EV "):
            _, ms, rev, kind, k, v = line.split(" ")
            events.append((int(ms), int(rev), kind, unhex(k), unhex(v)))
    held = fleet.get_prefix("/t/w/")
    seen_keys = [e[3] for e in events]
    duplicates = len(seen_keys) - len(set(seen_keys))
    gaps = len(set(held) - set(seen_keys))
    extra = len(set(seen_keys) - set(held))
    FIGURES["watch.events"] = len(events)
    FIGURES["watch.duplicates"] = duplicates
    FIGURES["watch.gaps"] = gaps
    check_eq(duplicates, 0, "keys the watch delivered twice")
    check_eq(gaps, 0, "keys etcd holds that the watch never delivered")
    check_eq(extra, 0, "keys the watch delivered that etcd does not hold")
    revs = [e[1] for e in events]
    check(revs == sorted(revs) and len(set(revs)) == len(revs), "events in revision order")
    check(all(e[2] == "PUT" for e in events), "only puts")
    for ms, rev, kind, k, v in events:
        check_eq((v, rev), held[k][:2], "event of %r against etcdctl" % k)
    for i, rev in acks.items():
        k = b"/t/w/stop" if i == count else b"/t/w/k%05d" % i
        check_eq(held[k][1], rev, "acknowledged revision of %r" % k)
    check(int(FIGURES["watch.watch_reopened"]) >= 2,
          "the watch left the killed and the frozen member (%s)" % FIGURES["watch.watch_reopened"])
    # How long the watch went without an event after each fault (the
    # writer kept writing throughout, so silence is the watch's own).
    for name, t in faults:
        after = [ms for ms, *_ in events if ms >= t * 1000]
        if after:
            FIGURES["watch.first_event_after_%s_ms" % name.replace(" ", "_").replace("'", "")] = \
                int(after[0] - t * 1000)
    gaps_ms = [b[0] - a[0] for a, b in zip(events, events[1:])]
    FIGURES["watch.longest_silence_ms"] = max(gaps_ms)


def case_outage(env):
    fleet = EtcdFleet(env)
    timeout_ms = 1000
    p = Running(env, "outage", fleet.endpoints(), "/t/o", timeout_ms, stdin=True)
    p.wait_for(lambda l: l == "READY", what="READY")
    leader = fleet.leader()
    down = [leader, (leader + 1) % 3]
    for i in down:
        fleet.kill(i)
    p.say("down")
    p.wait_for(lambda l: l == "DOWN-CHECKED", what="DOWN-CHECKED", timeout=90)
    fleet.restart(down[1])
    p.say("up")
    lines = p.finish()
    figures(lines, "outage")
    get_line = [l for l in lines if l.startswith("DOWN get ")][0]
    FIGURES["outage.get_error"] = get_line
    survivor = [i for i in range(3) if i not in down][0]
    # The survivor says "no leader" once it knows; until its election
    # timeout passes it still waits for the dead leader, and our timeout ends
    # the attempt.
    said = get_line.split(fleet.url(survivor))[1].split(";")[0]
    check("no leader" in said or "timed out" in said, "the survivor's reason: %s" % get_line)
    for i in down:
        check("onnect" in get_line.split(fleet.url(i))[1].split(";")[0],
              "a killed member refused the connection: %s" % get_line)


def case_auth(env):
    ttl = 2
    fleet = EtcdFleet(env, extra=["--auth-token-ttl", str(ttl)])
    fleet.enable_auth("root-pw", users=[("app", "app-pw", "/t/a/app/")])
    lines = client("auth", fleet.endpoints(), "/t/a", "root-pw", ttl)
    for line in lines:
        if line.startswith("AUTH "):
            FIGURES["auth." + line.split(":")[0][5:].replace(" ", "_")] = line.split(": ", 1)[1]
    held = fleet.get_prefix("/t/a/")
    check_eq(held[b"/t/a/auth"][0], b"v1", "root's put")
    check_eq(held[b"/t/a/app/x"][0], b"ok", "app's put")
    check_eq(len(held), 2, "keys under /t/a/ (the refused put wrote nothing)")


def case_tls(env):
    certs = make_certs(env.dir)
    fleet = EtcdFleet(env, members=1, tls=certs)
    lines = client("tls", fleet.endpoints(), "/t/tls", certs["ca"], certs["client_cert"],
                   certs["client_key"])
    for line in lines:
        if line.startswith("TLS "):
            FIGURES["tls." + line.split(":")[0][4:].replace(" ", "_")] = line.split(": ", 1)[1]
    check_eq(fleet.get_prefix("/t/tls")[b"/t/tls/tls"][0], b"secure", "the put over https")


def main():
    tests = [case_kv, case_cas, case_txn, case_lease, case_watch, case_outage, case_auth, case_tls]
    only = sys.argv[2:]
    if only:
        tests = [t for t in tests if t.__name__[5:] in only]
    run(tests)
    for name in sorted(FIGURES):
        print("  %s: %s" % (name, FIGURES[name]))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""bench/failover.py - a shard's primary fails under load: how long until its
writes succeed again through chash-proxy following Sentinel, against
Sentinel's own failover time and against nutcracker, which cannot follow a
failover (the anchor). On loopback only; every process is started here and
stopped by PID.

    python3 bench/failover.py --proxy build/proxy/chash-proxy [--json FILE]
                              [--rounds N] [--only SUBSTRING] [--cap SECONDS]

Each run: a fresh fleet of 2 shards (shard-a, shard-b), each a redis-server
primary with one replica, and 3 redis-sentinel (down-after 1000 ms,
quorum 2; tests/proxy/redisfleet.py). A pool with hash_tag "{}" over the
shards (named for their Sentinel master names: the ring identity); clients
(--clients per shard, default 2) each SET unique keys of their shard (a tag
known to land there, from PROXY LOCATE) and GET back the key they wrote just
before. After --warmup seconds the primary of shard-a is killed (SIGKILL) or
frozen (SIGSTOP, thawed after the run). The load goes on until shard-a's
writes have succeeded for --tail seconds, or --cap seconds after the fault
when they never do (nutcracker). Then every acknowledged (+OK) write is read
back from the shards' current primaries (asked of a sentinel) and through
the proxy.

Measured per run (medians over --rounds):
  sentinel_s     fault -> the first +switch-master a sentinel publishes
                 for shard-a: Sentinel's own failover, the floor
  writes_back_s  fault -> the first +OK of a SET of a shard-a key sent
                 after the fault (None: not within --cap)
  last_err_s     fault -> the last error a shard-a client saw
  a_errors       errors (error replies, timeouts, closed connections)
                 on shard-a's keys, writes and reads
  a_read_errors  ... of them GETs (what read_from: prefer_replica may spare
                 while the primary is gone)
  other_errors   the same on shard-b's keys: must be 0
  acked          SETs answered +OK
  lost           acknowledged writes whose value the current primary does
                 not have
  lost_proxy     ... that a GET through the proxy does not return (after
                 the replicas caught up), other than by an error
  unreadable     GETs through the proxy at the end that got an error
  stale          GETs during the load of the key the same client had
                 written just before that returned nothing or another value
                 (replica reads may; primary reads must not)
  switches       +switch-master events for shard-a (distinct ones): 1, or
                 more when Sentinel failed over again (the run's JSON has
                 Sentinel's events, and each client's timeline)

Settings: chash-proxy with sentinels for read_from primary / prefer_replica
x min_replicas_ack 0 / 1 x failover_wait 0 / 5000; chash-proxy with the
same servers and no sentinels (`static`, an anchor: a proxy that does not
follow); nutcracker (`auto_eject_hosts: false`). Each under both faults.
"""
import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "proxy"))
from harness import Closed, Conn, Env, free_port, stats_json  # noqa: E402
from redisfleet import Fleet  # noqa: E402

TIMEOUT_MS = 1000


def settings():
    out = []
    for wait in (0, 5000):
        for read_from in ("primary", "prefer_replica"):
            for ack in (0, 1):
                out.append({"name": "chash %s ack%d wait%d" % (read_from, ack, wait),
                            "kind": "chash", "read_from": read_from, "ack": ack,
                            "wait": wait})
    out.append({"name": "chash static", "kind": "static"})
    out.append({"name": "nutcracker", "kind": "nutcracker"})
    return out


def pool_text(fleet, listen, s):
    text = ("bench:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: fnv1a_64\n"
            "  distribution: ketama\n  hash_tag: \"{}\"\n  timeout: %d\n"
            % (listen, TIMEOUT_MS))
    if s["kind"] == "nutcracker":
        text += "  auto_eject_hosts: false\n"
    if s["kind"] == "chash":
        text += fleet.sentinels_yaml()
        text += ("  read_from: %s\n  min_replicas_ack: %d\n  min_replicas_ack_timeout: 500\n"
                 "  failover_wait: %d\n  topology_check_interval: 1000\n"
                 % (s["read_from"], s["ack"], s["wait"]))
    return text + fleet.servers_yaml()


def find_tags(binary, names):
    """A hash tag whose keys land on each shard, from PROXY LOCATE of a
    chash-proxy over servers so named (placement depends on the names, the
    hash and the distribution only; nutcracker places them alike)."""
    env = Env()
    try:
        listen = free_port()
        text = ("t:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: fnv1a_64\n"
                "  distribution: ketama\n  hash_tag: \"{}\"\n  servers:\n" % listen)
        text += "".join("   - 127.0.0.1:%d:1 %s\n" % (free_port(), n) for n in names)
        env.proxy(binary, text, [listen])
        c = Conn(listen)
        tags = {}
        for i in range(1000):
            owner = c.call("PROXY", "LOCATE", "{t%d}x" % i)[0][0].decode()
            tags.setdefault(owner, "t%d" % i)
            if len(tags) == len(names):
                break
        c.close()
        return tags
    finally:
        env.close()


class Client(threading.Thread):
    """SET of unique keys of one shard, each followed by a GET of the key
    written before; every operation recorded as (sent, answered, kind,
    key, outcome) with outcome 'ok', 'stale' or the error's text."""

    def __init__(self, port, shard, tag, cid, stop, pause):
        super().__init__(daemon=True)
        self.port, self.shard, self.tag, self.cid = port, shard, tag, cid
        self.stop, self.pause = stop, pause
        self.ops = []
        self.acked = {}
        self.c = None

    def connect(self):
        if self.c is None:
            try:
                # Longer than any failover_wait plus the pool's timeout: an
                # answer the proxy gives late is still its answer.
                self.c = Conn(self.port, timeout=TIMEOUT_MS / 1000.0 + 9)
            except OSError as e:
                return repr(e)
        return None

    def op(self, kind, *args):
        t0 = time.time()
        err = self.connect()
        if err:
            time.sleep(0.05)
            return t0, err
        try:
            got = self.c.call(*args)
        except (OSError, Closed) as e:
            # A reply that may still come would answer the next request.
            self.c.close()
            self.c = None
            return t0, "connection: %r" % e
        return t0, got

    def run(self):
        i = 0
        last = None
        while not self.stop.is_set():
            key = "{%s}c%d:%d" % (self.tag, self.cid, i)
            val = "v%d-%d" % (self.cid, i)
            t0, got = self.op("set", "SET", key, val)
            if got == b"+OK":
                self.acked[key] = val
                self.ops.append((t0, time.time(), "set", key, "ok"))
                last = key
            else:
                self.ops.append((t0, time.time(), "set", key, str(got)))
            if last is not None:
                t0, got = self.op("get", "GET", last)
                if isinstance(got, bytes):
                    outcome = "ok" if got == self.acked[last].encode() else "stale"
                elif got is None:
                    outcome = "stale"
                else:
                    outcome = str(got)
                self.ops.append((t0, time.time(), "get", last, outcome))
            i += 1
            if self.pause:
                time.sleep(self.pause)
        if self.c:
            self.c.close()


def read_back(port, keys, values):
    """(missing, errors) of keys read by pipelined GETs on port."""
    c = Conn(port, timeout=30)
    missing = errors = 0
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        for k, got in zip(chunk, c.deep_pipeline([("GET", k) for k in chunk])):
            if isinstance(got, tuple):
                errors += 1
            elif got != values[k].encode():
                missing += 1
    c.close()
    return missing, errors


def wait_replicas_caught_up(fleet, timeout=10.0):
    """Until every live replica's offset is its primary's (replica reads
    through the proxy then see every write)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        behind = False
        for name in fleet.names:
            p = fleet.role(fleet.primary_of(name)) or {}
            want = int(p.get("master_repl_offset", -1))
            for k, v in p.items():
                if k.startswith("slave") and "offset=" in v:
                    f = dict(x.split("=") for x in v.split(","))
                    if int(f["offset"]) != want:
                        behind = True
        if not behind:
            return True
        time.sleep(0.1)
    return False


def one_run(args, s, fault, tags):
    env = Env()
    fleet = None
    try:
        fleet = Fleet(env, shards=2, replicas=args.replicas)
        listen = free_port()
        text = pool_text(fleet, listen, s)
        stats_port = 0
        if s["kind"] == "nutcracker":
            env.nutcracker(text, [listen])
        else:
            path = env.write("check.yml", text)
            out = subprocess.run([args.proxy, "-t", "-c", path], capture_output=True, text=True)
            if out.returncode != 0:
                return {"refused": (out.stdout + out.stderr).strip()[-300:]}
            stats_port = free_port()
            env.proxy(args.proxy, text, [listen], workers=args.workers, stats_port=stats_port)
        watch = fleet.watch()
        stop = threading.Event()
        clients = []
        for shard in fleet.names:
            for j in range(args.clients):
                clients.append(Client(listen, shard, tags[shard], len(clients), stop,
                                      args.pause))
        for c in clients:
            c.start()
        time.sleep(args.warmup)
        victim = fleet.primary_of("shard-a")
        if fault == "kill":
            fleet.kill(victim)  # returns once the process is reaped
        else:
            fleet.signal(victim, signal.SIGSTOP)
        # After the signal: a write sent before it may be answered after it.
        t_fault = time.time()
        t_switch, new_primary = watch.wait_switch("shard-a", after=t_fault, timeout=args.cap)
        # Until shard-a's writes have succeeded for --tail seconds (or --cap).
        deadline = t_fault + args.cap
        back = None
        while time.time() < deadline:
            back = first_ok_after(clients, "shard-a", t_fault)
            if back is not None and time.time() > back + args.tail:
                break
            time.sleep(0.1)
        stop.set()
        for c in clients:
            c.join(TIMEOUT_MS / 1000.0 + 15)
        t_end = time.time()
        stats = None
        if stats_port:
            try:
                stats = stats_json(stats_port)
            except (OSError, ValueError) as e:
                stats = {"error": repr(e)}
        caught_up = wait_replicas_caught_up(fleet)
        r = measure(clients, fleet, listen, t_fault, t_switch, back)
        # Sentinel's own story of the shard: a second +switch-master (a
        # promoted replica itself failed over) changes what the run means.
        r["sentinel_events"] = [[round(t - t_fault, 3), port, ch, text]
                                for t, port, ch, text in watch.find_all("shard-a", t_fault)]
        r["switches"] = len({e[3] for e in r["sentinel_events"] if e[2] == "+switch-master"})
        r.update({"fault": fault, "victim": victim, "new_primary": new_primary,
                  "replicas_caught_up": caught_up, "load_s": round(t_end - t_fault, 2)})
        if stats is not None:
            r["stats"] = stats
        watch.close()
        return r
    finally:
        if fleet:
            fleet.close_stopped()
        if not args.keep:
            env.close()
        else:
            for p in env.procs:
                p.kill()
            print("  logs in %s" % env.dir)


def first_ok_after(clients, shard, t_fault):
    best = None
    for c in clients:
        if c.shard != shard:
            continue
        for t0, t1, kind, _, outcome in list(c.ops):
            if kind == "set" and t0 > t_fault and outcome == "ok":
                best = t1 if best is None else min(best, t1)
                break
    return best


def timeline(clients, shard, t_fault, back):
    """What shard's clients saw from the fault until a second after their
    writes came back, each client's SETs and GETs apart, runs of one
    outcome merged: [client, kind, from s, to s (relative to the fault),
    outcome, operations] - where the time to come back went."""
    end = (back or t_fault + 60) + 1.0
    out = []
    for c in clients:
        if c.shard != shard:
            continue
        for want in ("set", "get"):
            row = None
            for t0, t1, kind, _, outcome in c.ops:
                if kind != want or t1 < t_fault or t0 > end:
                    continue
                if row and row[4] == outcome[:60]:
                    row[3] = round(t1 - t_fault, 3)
                    row[5] += 1
                else:
                    row = [c.cid, kind, round(t0 - t_fault, 3), round(t1 - t_fault, 3),
                           outcome[:60], 1]
                    out.append(row)
    return out


def measure(clients, fleet, listen, t_fault, t_switch, back):
    r = {"sentinel_s": None if t_switch is None else round(t_switch - t_fault, 3),
         "writes_back_s": None if back is None else round(back - t_fault, 3)}
    a_err = other_err = stale = a_read_err = 0
    last_err = None
    samples = {}
    for c in clients:
        for t0, t1, kind, key, outcome in c.ops:
            if outcome == "stale":
                stale += 1
            elif outcome != "ok":
                samples.setdefault(c.shard, {}).setdefault(outcome[:80], 0)
                samples[c.shard][outcome[:80]] += 1
                if c.shard == "shard-a":
                    a_err += 1
                    a_read_err += kind == "get"
                    last_err = t1 if last_err is None else max(last_err, t1)
                else:
                    other_err += 1
    r["timeline"] = timeline(clients, "shard-a", t_fault, back)
    values = {}
    for c in clients:
        values.update(c.acked)
    keys = sorted(values)
    lost = 0
    for name in fleet.names:
        mine = [k for c in clients if c.shard == name for k in c.acked]
        missing, errors = read_back(fleet.primary_of(name), mine, values)
        lost += missing + errors
    missing, errors = read_back(listen, keys, values)
    r.update({"last_err_s": None if last_err is None else round(last_err - t_fault, 3),
              "a_errors": a_err, "a_read_errors": a_read_err, "other_errors": other_err,
              "acked": len(keys),
              "lost": lost, "lost_proxy": missing, "unreadable": errors, "stale": stale,
              "ops": sum(len(c.ops) for c in clients),
              "error_samples": {k: sorted(v.items(), key=lambda x: -x[1])[:4]
                                for k, v in samples.items()}})
    return r


FIELDS = ["sentinel_s", "writes_back_s", "last_err_s", "a_errors", "a_read_errors",
          "other_errors", "acked",
          "lost", "lost_proxy", "unreadable", "stale", "switches"]


def median(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return statistics.median(vals)


def summarize(runs):
    out = {}
    for f in FIELDS:
        vals = [r.get(f) for r in runs]
        if f == "writes_back_s" and any(v is None for v in vals):
            # "not within the cap" is the answer when any round never came back
            out[f] = None if all(v is None for v in vals) else median(vals)
            out["writes_back_missing"] = sum(1 for v in vals if v is None)
        else:
            out[f] = median(vals)
    return out


def fmt(v, cap, field=""):
    if v is None:
        return "none" if field == "last_err_s" else "> %gs" % cap
    if isinstance(v, float):
        return "%.2f" % v
    return str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy", required=True, help="the chash-proxy binary")
    ap.add_argument("--json", help="write every run and the medians here")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only", action="append", default=[],
                    help="run the settings whose name contains this (repeatable)")
    ap.add_argument("--faults", default="kill,stop")
    ap.add_argument("--cap", type=float, default=20.0,
                    help="seconds after the fault to wait for shard-a's writes")
    ap.add_argument("--tail", type=float, default=3.0,
                    help="seconds of load once shard-a's writes are back")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--replicas", type=int, default=1,
                    help="replicas a shard (min_replicas_ack 1 needs 2 to write after a "
                         "failover: the promoted replica's old peer)")
    ap.add_argument("--clients", type=int, default=2, help="client threads per shard")
    ap.add_argument("--pause", type=float, default=0.001, help="seconds between a client's rounds")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the logs of every run")
    args = ap.parse_args()
    args.proxy = os.path.abspath(args.proxy)

    tags = find_tags(args.proxy, ["shard-a", "shard-b"])
    chosen = [s for s in settings() if not args.only or any(o in s["name"] for o in args.only)]
    faults = args.faults.split(",")
    results = {}
    for rnd in range(args.rounds):
        # A different order each round, so the machine's noise falls on all.
        order = [(s, f) for s in chosen for f in faults]
        random.Random(rnd).shuffle(order)
        for s, fault in order:
            t0 = time.time()
            r = one_run(args, s, fault, tags)
            key = "%s | %s" % (s["name"], fault)
            results.setdefault(key, []).append(r)
            brief = {k: r.get(k) for k in FIELDS if k in r} if "refused" not in r else r
            print("round %d %-36s %.0fs %s" % (rnd + 1, key, time.time() - t0, brief),
                  flush=True)

    print()
    head = ["setting", "fault", "sentinel s", "writes back s", "last err s", "A errors",
            "of them reads", "B errors", "acked", "lost", "lost (proxy)", "unreadable",
            "stale reads",
            "switches"]
    rows = []
    summary = {}
    for s in chosen:
        for fault in faults:
            runs = results.get("%s | %s" % (s["name"], fault), [])
            if not runs:
                continue
            if any("refused" in r for r in runs):
                rows.append([s["name"], fault, "config refused: " +
                             runs[0].get("refused", "").splitlines()[-1][:70]])
                summary["%s | %s" % (s["name"], fault)] = {"refused": runs[0].get("refused")}
                continue
            m = summarize(runs)
            summary["%s | %s" % (s["name"], fault)] = m
            rows.append([s["name"], fault] + [fmt(m[f], args.cap, f) for f in FIELDS])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\n%d round(s), medians; 2 shards x (primary + %d replica(s)), 3 sentinels, "
          "down-after 1000 ms; %d client(s) per shard; pool timeout %d ms"
          % (args.rounds, args.replicas, args.clients, TIMEOUT_MS))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "tags": tags, "summary": summary,
                       "runs": results}, f, indent=1, default=str)


if __name__ == "__main__":
    main()

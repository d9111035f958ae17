#!/usr/bin/env python3
"""bench/fleet.py - a fleet of chash-proxies on etcd (issue 15) changing its
pools under load and under faults, N rounds of each of tests/proxy/
test_fleet.py's cases; the medians as a table and JSON. On loopback only;
every process is started here and stopped by PID.

    python3 bench/fleet.py --proxy build/proxy/chash-proxy --cli build/chash
                           [--rounds N] [--only CASE,...] [--json FILE]

Cases (test_fleet.py's docstring has the setup: 3 etcd members, 5
redis-servers, 3 proxies, 6 client threads over 2000 keys through every
proxy): membership (4 -> 5 -> 4 servers), leader_killed (the etcd leader
killed as P/change appears), etcd_down (all of etcd frozen 8 s),
proxy_frozen (a proxy frozen through an apply).

Per case, medians over the rounds that ran to the end:
  lost            acknowledged writes a final read (through each proxy)
                  does not return
  stale           reads older than a write acknowledged before they were sent
  errors          client errors (error replies, timeouts of 5 s, closed
                  connections)
  apply_all_on_s  the apply's own all_on_epoch_s
  stats_all_on_s  from the apply's start (leader_killed: from the kill;
                  proxy_frozen: including the freeze) until every proxy's
                  stats say it serves the new epoch
and how each round's change ended (outcome), the rounds that failed and why.
Benchmarks print figures; they assert nothing.
"""
import argparse
import collections
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "proxy"))
import test_fleet  # noqa: E402
from fleetcheck import table  # noqa: E402
from harness import Env  # noqa: E402

CASES = {"membership": test_fleet.scenario_membership,
         "buckets": test_fleet.scenario_buckets,
         "health": test_fleet.scenario_health,
         "leader_killed": test_fleet.scenario_leader_killed,
         "etcd_down": test_fleet.scenario_etcd_down,
         "proxy_frozen": test_fleet.scenario_proxy_frozen}
FIGURES = ["lost", "stale", "errors", "apply_all_on_s", "stats_all_on_s", "writes_acked",
           "reads", "lost_by_unacked", "stale_by_unacked", "verdict_in_etcd_s", "up_for_all_s"]


def median(values):
    values = [v for v in values if isinstance(v, (int, float))]
    if not values:
        return None
    m = statistics.median(values)
    return int(m) if float(m).is_integer() and all(isinstance(v, int) for v in values) else m


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy", required=True, help="the chash-proxy binary")
    ap.add_argument("--cli", required=True, help="the chash binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="", help="cases, comma-separated")
    ap.add_argument("--json", help="write every round and the medians here")
    args = ap.parse_args()
    proxy, cli = os.path.abspath(args.proxy), os.path.abspath(args.cli)
    names = [n for n in args.only.split(",") if n] or list(CASES)
    rounds = {n: [] for n in names}
    failures = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names:
            env = Env()
            t0 = time.time()
            try:
                row = CASES[name](env, proxy, cli)
                row["round"] = r
                rounds[name].append(row)
            except Exception as e:  # noqa: BLE001
                failures[name].append("round %d: %r (logs in %s)" % (r, e, env.dir))
                print("  %s round %d failed: %r (logs kept in %s)" % (name, r, e, env.dir))
                for p in env.procs:
                    if p.poll() is None:
                        p.kill()
                continue
            for p in env.procs:
                if p.poll() is None:
                    p.kill()
            env.close()
            print("  %s round %d: %.1fs" % (name, r, time.time() - t0), flush=True)
    summary = []
    for name in names:
        rows = rounds[name]
        med = {"case": name, "rounds": len(rows), "failed": len(failures[name])}
        for f in FIGURES:
            med[f] = median([row.get(f) for row in rows])
        # How the changes ended, by kind ("aborted (why)" counts as aborted;
        # every round's reason is in the JSON).
        kinds = collections.Counter(str(row.get("outcome")).split(" (")[0] for row in rows)
        med["outcome"] = ", ".join("%s x%d" % kv for kv in sorted(kinds.items())) or None
        summary.append(med)
    print()
    print(table(summary, [("case", "case"), ("rounds", "rounds"), ("failed", "failed"),
                          ("outcome", "outcome")]
                + [(f, f) for f in FIGURES]))
    for name in names:
        for f in failures[name]:
            print("%s: %s" % (name, f))
    doc = {"medians": summary, "rounds": rounds, "failures": failures}
    print(json.dumps({"medians": summary}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True, default=str)


if __name__ == "__main__":
    main()

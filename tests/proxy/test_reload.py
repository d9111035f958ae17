#!/usr/bin/env python3
"""test_reload.py CHASH_PROXY - live reconfiguration under load.

Ten real redis-servers hold 100,000 keys written through chash-proxy; a
load generator keeps reading and writing. The config gains an 11th server
and the proxy is told by SIGHUP; then by PROXY RELOAD the 11th goes away
again. Checks: no client error and no connection reset throughout; the
keys that now miss are those that moved, within 10 % of 1/11 and equal to
the exact plan the reload reported (up to the sample); bad or incompatible
configs are refused with the reason and the old one keeps serving.
"""
import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Closed, Conn, check, check_eq, clients_left, free_port,  # noqa: E402
                     proxy_binary, run, stats_json, wait_servers)

BIN = proxy_binary()
KEYS = 100000


def config(listen, ports):
    conf = ("zeta:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: md5\n"
            "  distribution: ketama\n  servers:\n" % listen)
    return conf + "".join("   - 127.0.0.1:%d:1 r%d\n" % (p, i) for i, p in enumerate(ports))


class Load:
    """Two clients reading and writing their own keys the whole time;
    anything but the expected reply, or a dropped connection, counts."""

    def __init__(self, listen):
        self.errors, self.resets, self.ops = [], 0, 0
        self.stop = False
        self.threads = [threading.Thread(target=self.loop, args=(listen, i)) for i in range(2)]
        for t in self.threads:
            t.start()

    def loop(self, listen, n):
        conn = Conn(listen)
        i = 0
        while not self.stop:
            key = "load:%d:%d" % (n, i % 500)
            try:
                got = conn.pipeline([("SET", key, i), ("GET", key)])
            except (Closed, OSError):
                self.resets += 1
                conn = Conn(listen)
                continue
            if got != [b"+OK", str(i).encode()]:
                self.errors.append(got)
            self.ops += 1
            i += 1

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join()


def misses(listen):
    c = Conn(listen)
    missing = 0
    for start in range(0, KEYS, 2000):
        got = c.pipeline([("GET", "k:%d" % i) for i in range(start, min(KEYS, start + 2000))])
        missing += sum(1 for g in got if g is None)
        check(all(g is None or isinstance(g, bytes) for g in got), "GET replies")
    c.close()
    return missing


def plan_fraction(text):
    m = re.search(r"(\d+) hash ranges moved, ([0-9.]+)% of the key space", text)
    check(m is not None, "a plan in %r" % text)
    return int(m.group(1)), float(m.group(2)) / 100


def test_reload(env):
    ports = [env.redis()[0] for _ in range(11)]
    listen = free_port()
    stats = free_port()
    proxy = env.proxy(BIN, config(listen, ports[:10]), [listen], workers=2, stats_port=stats)
    path = os.path.join(env.dir, "proxy-%d.yml" % listen)
    c = Conn(listen)
    for start in range(0, KEYS, 2000):
        got = c.pipeline([("SET", "k:%d" % i, i) for i in range(start, min(KEYS, start + 2000))])
        check(all(g == b"+OK" for g in got), "initial writes")
    check_eq(misses(listen), 0, "every key readable before")
    load = Load(listen)
    time.sleep(0.3)

    held = Conn(listen)  # a client from before the reload, closed after it
    check_eq(held.call("GET", "k:1"), b"1", "held client")
    time.sleep(0.2)
    before = stats_json(stats)["zeta"]

    # 10 -> 11 by SIGHUP.
    with open(path, "w") as f:
        f.write(config(listen, ports))
    proxy.send_signal(signal.SIGHUP)
    check(wait_servers(listen, 11), "every worker on 11 servers")
    last = Conn(listen).call("PROXY", "RING")[-1].decode()
    check("10 -> 11 servers" in last, "the reload's plan in PROXY RING: %r" % last)
    ranges, exact = plan_fraction(last)
    moved = misses(listen)
    print("  10 -> 11: plan %d ranges, %.4f%% of the key space; measured %d of %d keys "
          "moved (%.4f%%)" % (ranges, 100 * exact, moved, KEYS, 100 * moved / KEYS))
    check(abs(moved / KEYS - 1 / 11) <= 0.1 / 11, "moved within 10%% of 1/11: %d" % moved)
    # 100,000 samples of a fraction near 0.09: 3 sigma is about 0.27 points.
    check(abs(moved / KEYS - exact) < 0.003, "measured = plan, up to sampling")
    check_eq(Conn(ports[10]).call("DBSIZE") > 0, True, "the new server takes writes")

    # The statistics go on across the reload: counters do not restart, and
    # the client gauge follows the clients (closing one from before the
    # reload must not wrap it below zero).
    held.close()
    time.sleep(0.3)
    after = stats_json(stats)["zeta"]
    check(after["r0"]["requests"] >= before["r0"]["requests"] > 0,
          "r0 requests carried: %d -> %d" % (before["r0"]["requests"], after["r0"]["requests"]))
    check(0 < after["client_connections"] < 100,
          "client gauge across the reload: %d" % after["client_connections"])
    check(after["r10"]["requests"] > 0, "the new server counted")

    # A broken file: refused with its line number, the old config serves on.
    with open(path, "w") as f:
        f.write(config(listen, ports) + "  bogus: 1\n")
    time.sleep(0.21)  # one reload every 200 ms at most
    got = Conn(listen).call("PROXY", "RELOAD")
    check(isinstance(got, tuple) and "refused" in got[1] and ".yml:" in got[1],
          "bad config refused with its line: %r" % (got,))
    with open(path, "w") as f:
        f.write(config(free_port(), ports))
    time.sleep(0.21)
    got = Conn(listen).call("PROXY", "RELOAD")
    check(isinstance(got, tuple) and "listen" in got[1], "listen change refused: %r" % (got,))
    check(wait_servers(listen, 11), "still 11 servers")

    # 11 -> 10 by PROXY RELOAD: r10 drains and leaves.
    with open(path, "w") as f:
        f.write(config(listen, ports[:10]))
    time.sleep(0.21)
    got = Conn(listen).call("PROXY", "RELOAD")
    check(isinstance(got, list), "reload answer: %r" % (got,))
    check(any(b"11 -> 10 servers" in line for line in got), "plan lines: %r" % got)
    check(wait_servers(listen, 10), "every worker on 10 servers")
    check_eq(misses(listen), 0, "the first keys are where they were")
    time.sleep(0.3)
    load.finish()
    print("  load: %d operations, %d errors, %d resets" % (load.ops, len(load.errors),
                                                           load.resets))
    check(load.ops > 100, "load ran")
    check_eq(load.errors[:3], [], "no client errors during reloads")
    check_eq(load.resets, 0, "no connection resets during reloads")
    # r10's connections close once drained.
    left = clients_left(ports[10])
    check(left <= 0, "the removed server's connections closed (%d left)" % left)


if __name__ == "__main__":
    run([test_reload])

#!/usr/bin/env python3
"""test_buckets.py CHASH_PROXY - distribution: buckets against real redis-servers.

An LDC-style pool ("units", issue 15 item 5): 100 buckets by the last two
digits of a user id, four servers. Checks:
- table: buckets 0-49 on u1 but bucket 7 on u4, 50-99 split 1:3 between u2
  (50-61) and u3 (62-99), and user1234 overridden to u4: every key written
  through the proxy is on exactly the server the table says, read directly
  from each redis-server; keys with a hash tag go by the tag's digits and
  follow a tagged override; PROXY LOCATE agrees;
- cut flow: a reload (SIGHUP, with warmup) that moves half the buckets
  (25-49 u1 -> u3, 75-99 u2 -> u4) logs the exact plan, every key still
  reads back through the proxy, keys of moved buckets end up on their new
  server only, and keys of the other buckets never leave theirs.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Conn, check, check_eq, free_port, proxy_binary, run  # noqa: E402

BIN = proxy_binary()
USERS = 1000


def config(listen, ports, table, overrides=(), warmup=0):
    conf = ("ldc:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash_tag: \"{}\"\n"
            "  distribution: buckets\n  buckets: 100\n  bucket_by: digits\n"
            "  timeout: 2000\n" % listen)
    if warmup:
        conf += "  warmup: %d\n" % warmup
    conf += "  bucket_table:\n" + "".join("   - \"%s\"\n" % t for t in table)
    if overrides:
        conf += "  bucket_overrides:\n" + "".join("   - \"%s\"\n" % o for o in overrides)
    return conf + "  servers:\n" + "".join("   - 127.0.0.1:%d:1 u%d\n" % (p, i + 1)
                                           for i, p in enumerate(ports))


def keys():
    """Every key of the test and its user id: plain and tagged."""
    out = []
    for i in range(USERS):
        out.append(("user%d" % i, i))
        out.append(("{user%d}:cart" % i, i))
    return out


def on_servers(ports):
    """Server name -> the set of keys it holds, read from it directly."""
    held = {}
    for i, port in enumerate(ports):
        c = Conn(port)
        held["u%d" % (i + 1)] = {k.decode() for k in c.call("KEYS", "*")}
        c.close()
    return held


def check_placement(ports, where, what):
    held = on_servers(ports)
    for name, got in held.items():
        want = {k for k, _ in keys() if where(k) == name}
        missing, extra = sorted(want - got)[:5], sorted(got - want)[:5]
        check(not missing and not extra,
              "%s: %s holds %d keys, the table says %d (missing %s, extra %s)"
              % (what, name, len(got), len(want), missing, extra))
    return held


def locate(listen, key):
    c = Conn(listen)
    reply = c.call("PROXY", "LOCATE", key)
    c.close()
    return [entry[0].decode() for entry in reply]


def fill(listen):
    c = Conn(listen)
    cmds = [("SET", k, "v%d" % i) for k, i in keys()]
    check(all(r == b"+OK" for r in c.pipeline(cmds)), "every SET acknowledged")
    c.close()


def test_table(env):
    ports = [env.redis()[0] for _ in range(4)]
    listen = free_port()
    table = ["0-6 u1", "7 u4", "8-49 u1", "50-99 u2 u3:3"]
    env.proxy(BIN, config(listen, ports, table, ["user1234 u4", "user300 u2"]), [listen])

    def where(key):
        part = key[1:key.index("}")] if key.startswith("{") else key
        if part == "user300":
            return "u2"
        bucket = int(part[4:]) % 100
        return ("u4" if bucket == 7 else "u1" if bucket < 50 else
                "u2" if bucket <= 61 else "u3")

    fill(listen)
    held = check_placement(ports, where, "the table")
    print("  keys per unit: %s" % ", ".join("%s %d" % (n, len(k)) for n, k in sorted(held.items())))
    # 50 buckets split 1:3: floor(50 / 4) = 12 buckets on u2, 38 on u3.
    check_eq(len(held["u2"]), 12 * 10 * 2 + 2, "u2: buckets 50-61 and user300's two keys")
    check_eq(locate(listen, "user1234")[0], "u4", "LOCATE: the override wins")
    check_eq(locate(listen, "{user1234}:x")[0], "u4", "LOCATE: the override covers its tag")
    check_eq(locate(listen, "user107")[0], "u4", "LOCATE: bucket 7")
    check_eq(locate(listen, "user99")[0], "u3", "LOCATE: bucket 99")
    c = Conn(listen)
    check_eq(c.call("GET", "user300"), b"v300", "the overridden key reads back")
    c.close()


def test_cut_flow(env):
    ports = [env.redis()[0] for _ in range(4)]
    listen = free_port()
    before = ["0-49 u1", "50-99 u2"]
    after = ["0-24 u1", "25-49 u3", "50-74 u2", "75-99 u4"]
    proxy = env.proxy(BIN, config(listen, ports, before, warmup=30000), [listen], workers=2)
    path = os.path.join(env.dir, "proxy-%d.yml" % listen)

    def bucket(key):
        part = key[1:key.index("}")] if key.startswith("{") else key
        return int(part[4:]) % 100

    def old_owner(key):
        return "u1" if bucket(key) < 50 else "u2"

    def new_owner(key):
        return ["u1", "u3", "u2", "u4"][bucket(key) // 25]

    fill(listen)
    check_placement(ports, old_owner, "before the reload")
    with open(path, "w") as f:
        f.write(config(listen, ports, after, warmup=30000))
    proxy.send_signal(signal.SIGHUP)
    deadline = time.time() + 10
    while time.time() < deadline and locate(listen, "user99")[0] != "u4":
        time.sleep(0.05)
    check_eq(locate(listen, "user99")[0], "u4", "the reload took")
    # Every worker reads every key: the warm-up moves each moved key from
    # its previous owner as it is read.
    for _ in range(4):
        c = Conn(listen)
        got = c.pipeline([("GET", k) for k, _ in keys()])
        c.close()
        lost = [k for (k, i), g in zip(keys(), got) if g != b"v%d" % i]
        check(not lost, "every key reads back after the cut (lost: %s)" % lost[:5])
    held = check_placement(ports, new_owner, "after the reload")
    moved = sum(1 for k, _ in keys() if old_owner(k) != new_owner(k))
    check_eq(moved, len(keys()) // 2, "half the keys are in moved buckets")
    check_eq(sum(len(v) for v in held.values()), len(keys()), "no key lost, none twice")
    log = open(os.path.join(env.dir, "proxy-%d.log" % listen), errors="replace").read()
    for line in ("buckets 25-49: u1 -> u3", "buckets 75-99: u2 -> u4",
                 "50 buckets moved in 2 runs"):
        check(line in log, "the reload log has the plan: %r\n%s" % (line, log[-2000:]))


if __name__ == "__main__":
    run([test_table, test_cut_flow])

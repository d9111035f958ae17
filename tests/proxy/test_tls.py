#!/usr/bin/env python3
"""test_tls.py CHASH_PROXY - issue 17's TLS, both sides, with real programs:
redis-server and memcached with TLS ports, redis-cli --tls, python3-redis
(ssl=True; Debian's, so this runs under /usr/bin/python3), openssl s_client
and Python's ssl module as clients. Certificates come from tlscerts.py.

- clients: a matrix of pools (no client certificate asked, required,
  optional, TLS 1.3 only) against clients (no certificate, the right CA's,
  another CA's; TLS 1.1, 1.2, 1.3), each with its expected outcome;
  plaintext on a TLS port refused with a line it can read; memcached over
  TLS; large values both ways; a TLS bystander on the pool that never sees
  an error while the others fail;
- servers: good, expired, for another host, from another CA, one that
  requires the proxy's certificate, one of another TLS version: the good
  ones serve, the others are not used and every error says why; a pool
  mixing a good server and an expired one, with a bystander on the good;
- hostile handshakes: idle connections, half-sent ClientHellos past
  tls_max_handshakes, a ClientHello a byte at a time, garbage, and a flood
  of complete handshakes, under a bystander; all closed by
  tls_handshake_timeout; the memory they held, printed;
- reload: certificate files replaced in place and PROXY RELOAD: new
  clients see the new certificate, connected ones go on; a broken
  certificate refuses the reload and the old one serves;
- no private key text in any log.
"""
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Conn, SetGetBystander, check, check_eq, enc, free_port,  # noqa: E402
                     free_ports, is_sanitized, proxy_binary, run, stats_json, tag_of)
from tlscerts import Certs  # noqa: E402

import redis  # noqa: E402  (Debian's python3-redis)

BIN = proxy_binary()
# The slowest round a bystander may see: its requests share the server
# connection with the cases' (3 MB values, deep pipelines); a sanitized
# build is several times slower.
MAX_WAIT = 6.0 if is_sanitized(BIN) else 2.0


def pool(name, port, servers, extra="", is_redis=True):
    return ("%s:\n  listen: 127.0.0.1:%d\n  redis: %s\n%s  servers:\n%s"
            % (name, port, "true" if is_redis else "false", extra,
               "".join("   - %s\n" % s for s in servers)))


def tls_keys(certs, leaf="server"):
    return "  tls_cert_file: %s\n  tls_key_file: %s\n" % (certs.crt(leaf), certs.key(leaf))


def proxy_log(env):
    out = ""
    for name in sorted(os.listdir(env.dir)):
        if name.startswith("proxy-") and name.endswith(".log"):
            out += open(os.path.join(env.dir, name), errors="replace").read()
    return out


def ping(port, ctx):
    """PING over TLS with ctx: "PONG", or the failure as text."""
    try:
        c = Conn(port, tls=ctx, timeout=5.0)
        got = c.call("PING")
        c.close()
        return got.decode().lstrip("+") if isinstance(got, bytes) else repr(got)
    except (OSError, ssl.SSLError, Exception) as e:  # noqa: BLE001
        return "failed: %s" % e


def cli(port, *args, certs=None, cert=None):
    argv = ["redis-cli", "-p", str(port), "--tls", "--cacert", certs.crt("ca")]
    if cert:
        argv += ["--cert", certs.crt(cert), "--key", certs.key(cert)]
    r = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=20)
    return r.returncode, (r.stdout + r.stderr).strip()


def s_client(port, certs, version, weak=False):
    """openssl s_client with one TLS version: the protocol it got, or None."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-brief",
            "-CAfile", certs.crt("ca"), "-" + version]
    if weak:  # Debian's default security level refuses to offer TLS 1.1 at all
        argv += ["-cipher", "DEFAULT@SECLEVEL=0"]
    r = subprocess.run(argv, input="PING\r\n", capture_output=True, text=True, timeout=20)
    m = re.search(r"Protocol version: (\S+)", r.stdout + r.stderr)
    return m.group(1) if m and r.returncode == 0 else None


def no_key_material(env):
    text = proxy_log(env)
    check("PRIVATE KEY" not in text and "BEGIN" not in text, "no PEM text in the proxy's log")


# ---- clients ---------------------------------------------------------------

def test_clients(env):
    certs = Certs(env.dir)
    rport, _ = env.redis()
    mport, _ = env.memcached()
    pa, pb, pc, pd, pm = free_ports(5)
    stats = free_port()
    ca = certs.crt("ca")
    conf = (pool("open", pa, ["127.0.0.1:%d:1 r1" % rport], tls_keys(certs)) +
            pool("required", pb, ["127.0.0.1:%d:1 r1" % rport], tls_keys(certs) +
                 "  tls_auth_clients: yes\n  tls_ca_cert_file: %s\n" % ca) +
            pool("optional", pc, ["127.0.0.1:%d:1 r1" % rport], tls_keys(certs) +
                 "  tls_auth_clients: optional\n  tls_ca_cert_file: %s\n" % ca) +
            pool("only13", pd, ["127.0.0.1:%d:1 r1" % rport], tls_keys(certs) +
                 "  tls_protocols: TLSv1.3\n") +
            pool("mc", pm, ["127.0.0.1:%d:1 m1" % mport], tls_keys(certs), is_redis=False))
    env.proxy(BIN, conf, [pa, pb, pc, pd, pm], workers=2, stats_port=stats)
    by = SetGetBystander(pa, "tls", tls=certs.client_context(), max_wait=MAX_WAIT)

    # Who may connect: (pool, client certificate) -> served or not.
    matrix = [
        (pa, "open", None, True), (pa, "open", "client", True),
        (pb, "required", None, False), (pb, "required", "client", True),
        (pb, "required", "client_other_ca", False),
        (pc, "optional", None, True), (pc, "optional", "client", True),
        (pc, "optional", "client_other_ca", False),
    ]
    for port, name, cert, ok in matrix:
        got = ping(port, certs.client_context(cert=cert))
        print("  %-9s client cert %-16s -> %s" % (name, cert, got[:90]))
        check_eq(got == "PONG", ok, "pool %s, client certificate %s: %s" % (name, cert, got))
        rc, out = cli(port, "SET", "{k}cli", name, certs=certs, cert=cert)
        check_eq(rc == 0 and out == "OK", ok, "redis-cli --tls, pool %s, cert %s: %s"
                 % (name, cert, out))

    # Versions: TLS 1.1 never; 1.2 and 1.3 unless the pool says otherwise.
    for port, name, version, weak, want in [
            (pa, "open", "tls1_1", True, None), (pa, "open", "tls1_2", False, "TLSv1.2"),
            (pa, "open", "tls1_3", False, "TLSv1.3"), (pd, "only13", "tls1_2", False, None),
            (pd, "only13", "tls1_3", False, "TLSv1.3")]:
        got = s_client(port, certs, version, weak)
        print("  %-9s s_client -%s -> %s" % (name, version, got))
        check_eq(got, want, "openssl s_client -%s to pool %s" % (version, name))
    for version, want in ((ssl.TLSVersion.TLSv1_2, "PONG"), (ssl.TLSVersion.TLSv1_3, "PONG")):
        got = ping(pd, certs.client_context(minimum=version, maximum=version))
        check_eq(got == "PONG", version == ssl.TLSVersion.TLSv1_3,
                 "python ssl %s to pool only13: %s" % (version, got))

    # Plaintext on a TLS port: one line it can read, then closed.
    c = Conn(pa)
    c.send(b"PING\r\n")
    check_eq(c.reply(), ("err", "ERR this port takes TLS connections only"),
             "plaintext to a TLS listener")
    check(c.is_closed(), "closed after the refusal")
    m = Conn(pm)
    m.send(b"get x\r\n")
    check_eq(m.line(), b"SERVER_ERROR this port takes TLS connections only",
             "plaintext to a memcached TLS listener")

    # python3-redis with ssl=True: commands, a pipeline, values of many
    # records both ways.
    r = redis.Redis(host="127.0.0.1", port=pa, ssl=True, ssl_ca_certs=ca,
                    ssl_cert_reqs="required", socket_timeout=10)
    check_eq(r.set("py:a", "1"), True, "redis-py SET over TLS")
    check_eq(r.get("py:a"), b"1", "redis-py GET over TLS")
    big = os.urandom(3 << 20)
    check_eq(r.set("py:big", big), True, "redis-py SET of 3 MB over TLS")
    check_eq(r.get("py:big"), big, "redis-py GET of 3 MB over TLS")
    p = r.pipeline(transaction=False)
    for i in range(2000):
        p.set("py:%d" % i, "v%d" % i)
    for i in range(2000):
        p.get("py:%d" % i)
    got = p.execute()
    check_eq(got, [True] * 2000 + [b"v%d" % i for i in range(2000)], "a 4000-deep pipeline")
    r.close()
    rb = redis.Redis(host="127.0.0.1", port=pb, ssl=True, ssl_ca_certs=ca,
                     ssl_certfile=certs.crt("client"), ssl_keyfile=certs.key("client"))
    check_eq(rb.get("py:a"), b"1", "redis-py with a client certificate")
    rb.close()

    # memcached over TLS.
    s = certs.client_context().wrap_socket(socket.create_connection(("127.0.0.1", pm), 5),
                                           server_hostname="localhost")
    s.sendall(b"set tk 0 0 5\r\nhello\r\nget tk\r\n")
    got = b""
    while not got.endswith(b"END\r\n"):
        got += s.recv(4096)
    check_eq(got, b"STORED\r\nVALUE tk 0 5\r\nhello\r\nEND\r\n", "memcached over TLS")
    s.close()

    by.done("(TLS clients failing around it)")
    st = stats_json(stats)
    check(st["open"]["tls_handshakes"] > 0, "stats: handshakes counted")
    errors = sum(st[n]["tls_handshake_errors"] for n in ("open", "required", "optional", "only13"))
    check(errors >= 6, "stats: failed handshakes counted (%d)" % errors)
    no_key_material(env)


# ---- servers ---------------------------------------------------------------

def tls_redis(env, certs, leaf, extra=()):
    """A redis-server speaking TLS only, with leaf's certificate."""
    port = free_port()
    argv = ["--tls-port", str(port), "--port", "0", "--tls-cert-file", certs.crt(leaf),
            "--tls-key-file", certs.key(leaf), "--tls-ca-cert-file", certs.crt("ca"),
            "--tls-auth-clients", "no"] + list(extra)
    p = env.spawn(["redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--dir", env.dir, "--dbfilename", "dump-%d.rdb" % port] + argv, port,
                  "redis-%d.log" % port)
    return port, p


def test_servers(env):
    certs = Certs(env.dir)
    ca = certs.crt("ca")
    good, _ = tls_redis(env, certs, "server")
    expired, _ = tls_redis(env, certs, "expired")
    wrong, _ = tls_redis(env, certs, "wrong_host")
    other, _ = tls_redis(env, certs, "other_ca")
    needs, _ = tls_redis(env, certs, "server", ["--tls-auth-clients", "yes"])
    only12, _ = tls_redis(env, certs, "server", ["--tls-protocols", "TLSv1.2"])
    mport = free_port()
    mc_argv = ["memcached", "-p", str(mport), "-U", "0", "-l", "127.0.0.1", "-t", "1", "-Z",
               "-o", "ssl_chain_cert=%s,ssl_key=%s" % (certs.crt("server"),
                                                      certs.key("server"))]
    if os.geteuid() == 0:
        mc_argv += ["-u", "root"]
    env.spawn(mc_argv, mport, "memcached-%d.log" % mport)

    tls = "  server_tls: true\n  server_tls_ca_cert_file: %s\n" % ca
    client_cert = "  server_tls_cert_file: %s\n  server_tls_key_file: %s\n" % (
        certs.crt("client"), certs.key("client"))
    # (pool, server port, extra keys, None: serves / a reason its errors give,
    # a regular expression). Without the certificate it requires, a TLS 1.3
    # server sends its alert after the proxy thinks the handshake is done,
    # and closes: the proxy reads the alert, or (when the close's reset
    # comes first) the reset.
    cases = [
        ("good", good, "", None),
        ("byname", good, "  server_tls_name: localhost\n", None),
        ("expired", expired, "", "certificate has expired"),
        ("wronghost", wrong, "", "IP address mismatch"),
        ("wrongname", good, "  server_tls_name: other.example\n", "hostname mismatch"),
        ("otherca", other, "", "unable to get local issuer certificate"),
        ("clientcert", needs, client_cert, None),
        ("nocert", needs, "", "certificate required|Connection reset by peer"),
        ("version", only12, "  tls_protocols: TLSv1.3\n", "protocol version"),
    ]
    ports = free_ports(len(cases) + 2)
    conf = ""
    for (name, sport, extra, _), lp in zip(cases, ports):
        conf += pool(name, lp, ["127.0.0.1:%d:1 s1" % sport],
                     tls + extra + "  server_failure_limit: 100\n")
    # A pool of a good server and an expired one: the good one's keys serve.
    mixed, mcp = ports[-2], ports[-1]
    conf += pool("mixed", mixed, ["127.0.0.1:%d:1 s1" % good, "127.0.0.1:%d:1 s2" % expired],
                 tls + "  on_failure: error\n  server_failure_limit: 1\n  hash_tag: \"{}\"\n")
    conf += pool("mc", mcp, ["127.0.0.1:%d:1 m1" % mport], tls, is_redis=False)
    env.proxy(BIN, conf, ports)

    for (name, _, _, why), lp in zip(cases, ports):
        c = Conn(lp)
        got = c.pipeline([("SET", "k", name), ("GET", "k")])
        c.close()
        print("  %-10s -> %s" % (name, got[0] if why is None else got[0][1][:110]))
        if why is None:
            check_eq(got, [b"+OK", name.encode()], "pool %s serves over TLS" % name)
        else:
            check(isinstance(got[0], tuple) and re.search(why, got[0][1]),
                  "pool %s: the error says '%s': %r" % (name, why, got[0]))
    # A client's own server connections (transactions, blocking commands,
    # pub/sub) are TLS too.
    good_port = ports[0]
    c = Conn(good_port)
    check_eq(c.pipeline([("MULTI",), ("SET", "tx", "1"), ("INCR", "tx"), ("EXEC",)]),
             [b"+OK", b"+QUEUED", b"+QUEUED", [b"+OK", 2]], "MULTI/EXEC over server TLS")
    check_eq(c.call("BLPOP", "nolist", "0.2"), None, "BLPOP times out over server TLS")
    sub = Conn(good_port)
    check_eq(sub.call("SUBSCRIBE", "ch"), [b"subscribe", b"ch", 1], "SUBSCRIBE over server TLS")
    check_eq(c.call("PUBLISH", "ch", "hi"), 1, "PUBLISH reaches the subscriber")
    check_eq(sub.reply(), [b"message", b"ch", b"hi"], "the message, through TLS both ways")
    sub.close()
    c.close()
    log = proxy_log(env)
    for name, _, _, why in cases:
        if why:
            check(re.search(r"pool %s: server s1: TLS to 127\.0\.0\.1:\d+: .*(%s)" % (name, why),
                            log),
                  "the log says why pool %s's server is not used (%s)" % (name, why))

    t_good, t_bad = tag_of(mixed, "s1"), tag_of(mixed, "s2")
    by = SetGetBystander(mixed, "mixed", tag=t_good, max_wait=MAX_WAIT)
    c = Conn(mixed)
    for i in range(20):
        got = c.call("SET", "{%s}x%d" % (t_bad, i), "v")
        check(isinstance(got, tuple) and ("certificate has expired" in got[1] or
                                          "is down" in got[1]),
              "a key of the expired server: an error that says why (%r)" % (got,))
    check_eq(c.call("SET", "{%s}y" % t_good, "v"), b"+OK", "the good server's keys serve")
    c.close()
    time.sleep(0.5)
    by.done("(the pool's other server has an expired certificate)")

    m = Conn(mcp)
    m.send(b"set mk 0 0 2\r\nhi\r\n")
    check_eq(m.mc_reply(), b"STORED\r\n", "memcached over TLS: set")
    m.send(b"get mk\r\n")
    check_eq(m.mc_reply(retrieval=True), b"VALUE mk 0 2\r\nhi\r\nEND\r\n", "memcached: get")
    m.close()
    no_key_material(env)


def rcli(port, certs, *args):
    """redis-cli over TLS to a server; its output (stripped)."""
    r = subprocess.run(["redis-cli", "--tls", "--cacert", certs.crt("ca"), "-p", str(port)] +
                       [str(a) for a in args], capture_output=True, text=True, timeout=30)
    return (r.stdout + r.stderr).strip()


def wait_for(fn, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def test_server_topology(env):
    """server_tls where the proxy finds servers itself: a Redis Cluster
    whose nodes (and bus) speak TLS only, and a primary with a listed
    replica, both TLS; the topology's own connections (CLUSTER SHARDS,
    INFO replication) are TLS too, and every node is checked by its IP
    address (the certificates carry IP:127.0.0.1)."""
    certs = Certs(env.dir)
    common = ["--tls-cert-file", certs.crt("server"), "--tls-key-file", certs.key("server"),
              "--tls-ca-cert-file", certs.crt("ca"), "--tls-auth-clients", "no",
              "--tls-replication", "yes"]
    picked = free_ports(6)
    nodes = picked[:3]
    for port, bus in zip(nodes, picked[3:]):  # the bus port chosen too (not port + 10000)
        env.spawn(["redis-server", "--bind", "127.0.0.1", "--port", "0", "--tls-port", str(port),
                   "--save", "", "--appendonly", "no", "--dir", env.dir, "--cluster-enabled",
                   "yes", "--cluster-port", str(bus), "--cluster-config-file",
                   "nodes-%d.conf" % port, "--tls-cluster", "yes",
                   "--cluster-node-timeout", "3000"] + common, port, "redis-%d.log" % port)
    out = rcli(nodes[0], certs, "--cluster", "create",
               *["127.0.0.1:%d" % n for n in nodes], "--cluster-yes")
    check("All 16384 slots covered" in out, "a TLS cluster made: %s" % out[-300:])
    for n in nodes:
        wait_for(lambda: "cluster_state:ok" in rcli(n, certs, "CLUSTER", "INFO"), 20,
                 "node %d to say cluster_state:ok" % n)
    primary, replica = free_port(), free_port()
    for port, extra in ((primary, []), (replica, ["--replicaof", "127.0.0.1", str(primary)])):
        env.spawn(["redis-server", "--bind", "127.0.0.1", "--port", "0", "--tls-port", str(port),
                   "--save", "", "--appendonly", "no", "--dir", env.dir] + common + extra,
                  port, "redis-%d.log" % port)
    wait_for(lambda: "master_link_status:up" in rcli(replica, certs, "INFO", "replication"), 20,
             "the TLS replica's link")

    lc, lr = free_ports(2)
    stats = free_port()
    tls = "  server_tls: true\n  server_tls_ca_cert_file: %s\n" % certs.crt("ca")
    conf = (pool("cl", lc, ["127.0.0.1:%d:1" % n for n in nodes],
                 "  distribution: redis-cluster\n" + tls) +
            pool("rp", lr, ["127.0.0.1:%d:1 p1" % primary],
                 tls + "  read_from: replica\n  replicas:\n   - 127.0.0.1:%d p1\n" % replica))
    env.proxy(BIN, conf, [lc, lr], stats_port=stats)
    c = Conn(lc)
    keys = ["k:%d" % i for i in range(300)]
    check_eq(c.pipeline([("SET", k, "v-" + k) for k in keys]), [b"+OK"] * len(keys),
             "300 keys written through the proxy to a TLS cluster")
    check_eq(c.pipeline([("GET", k) for k in keys]), [("v-" + k).encode() for k in keys],
             "and read back")
    c.close()
    # Each key is where the cluster says, read from its own node.
    owners = {}
    for k in keys[:30]:
        slot = int(rcli(nodes[0], certs, "CLUSTER", "KEYSLOT", k))
        got = rcli(nodes[0], certs, "-c", "GET", k)
        owners[slot] = got
        check_eq(got, "v-" + k, "key %s on the node owning slot %d" % (k, slot))
    st = stats_json(stats)
    used = [n for n, v in st["cl"].items() if isinstance(v, dict) and v.get("requests", 0) > 0]
    check_eq(len(used), 3, "the proxy sent to all 3 TLS nodes (%s)" % used)

    r = Conn(lr)
    check_eq(r.call("SET", "rk", "1"), b"+OK", "a write to the TLS primary")
    wait_for(lambda: rcli(replica, certs, "GET", "rk") == "1", 10, "the write on the replica")
    got = wait_for(lambda: stats_json(stats)["rp"]["p1"].get("reads_replica", 0) > 0 or
                   (r.call("GET", "rk") and False), 10, "a read served by the TLS replica")
    check(got, "reads went to the TLS replica, found and measured over TLS")
    r.close()
    no_key_material(env)


def test_sentinel(env):
    """server_tls with Sentinel: a primary and its replica, and three
    sentinels, all speaking TLS only; the proxy asks and subscribes to the
    sentinels over TLS, and follows a kill -9 of the primary to the
    promoted replica."""
    certs = Certs(env.dir)
    common = ["--tls-cert-file", certs.crt("server"), "--tls-key-file", certs.key("server"),
              "--tls-ca-cert-file", certs.crt("ca"), "--tls-auth-clients", "no",
              "--tls-replication", "yes"]
    primary, replica = free_ports(2)
    procs = {}
    for port, extra in ((primary, []), (replica, ["--replicaof", "127.0.0.1", str(primary)])):
        procs[port] = env.spawn(["redis-server", "--bind", "127.0.0.1", "--port", "0",
                                 "--tls-port", str(port), "--save", "", "--appendonly", "no",
                                 "--dir", env.dir, "--repl-diskless-sync-delay", "0"] + common +
                                extra, port, "redis-%d.log" % port)
    wait_for(lambda: "master_link_status:up" in rcli(replica, certs, "INFO", "replication"), 20,
             "the TLS replica's link")
    sentinels = free_ports(3)
    for sp in sentinels:
        lines = ["port 0", "tls-port %d" % sp, "bind 127.0.0.1", "daemonize no",
                 "dir %s" % env.dir, 'logfile ""',
                 "tls-cert-file %s" % certs.crt("server"), "tls-key-file %s" % certs.key("server"),
                 "tls-ca-cert-file %s" % certs.crt("ca"), "tls-auth-clients no",
                 "tls-replication yes",
                 "sentinel monitor m1 127.0.0.1 %d 2" % primary,
                 "sentinel down-after-milliseconds m1 1000",
                 "sentinel failover-timeout m1 6000"]
        path = os.path.join(env.dir, "sentinel-%d.conf" % sp)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        env.spawn(["redis-sentinel", path], sp, "sentinel-%d.log" % sp)
    # Every sentinel knows the replica and the other two (hello messages).
    for sp in sentinels:
        wait_for(lambda: rcli(sp, certs, "SENTINEL", "master", "m1").count("\n") > 10 and
                 "num-other-sentinels\n2" in rcli(sp, certs, "SENTINEL", "master", "m1") and
                 "num-slaves\n1" in rcli(sp, certs, "SENTINEL", "master", "m1"), 30,
                 "sentinel %d to see the replica and the others" % sp)
    lp, stats = free_ports(2)
    conf = pool("se", lp, ["127.0.0.1:%d:1 m1" % primary],
                "  server_tls: true\n  server_tls_ca_cert_file: %s\n  failover_wait: 15000\n"
                "  sentinels:\n" % certs.crt("ca") +
                "".join("   - 127.0.0.1:%d\n" % sp for sp in sentinels))
    env.proxy(BIN, conf, [lp], stats_port=stats)
    c = Conn(lp, timeout=20)
    check_eq(c.call("SET", "s:1", "before"), b"+OK", "a write before the failover")
    env.stop(procs[primary], force=True)
    t0 = time.time()
    check_eq(c.call("SET", "s:2", "after"), b"+OK",
             "a write during the failover waits for the new primary (failover_wait)")
    print("  sentinel over TLS: the write waited %.1f s for the promotion" % (time.time() - t0))
    check_eq(c.call("GET", "s:1"), b"before", "the promoted replica has the earlier write")
    c.close()
    check_eq(rcli(replica, certs, "GET", "s:2"), "after", "the write is on the promoted replica")
    got = stats_json(stats)["se"]["m1"].get("primary")
    check_eq(got, "127.0.0.1:%d" % replica, "stats: the primary Sentinel named, over TLS")
    no_key_material(env)


# ---- hostile handshakes ----------------------------------------------------

def client_hello():
    """The first flight of a real TLS client, as bytes."""
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def closed_within(socks, seconds):
    """How many of socks the peer closed within `seconds`."""
    deadline = time.time() + seconds
    closed = 0
    for s in socks:
        s.settimeout(max(0.01, deadline - time.time()))
        try:
            while True:
                data = s.recv(4096)
                if not data:
                    closed += 1
                    break
        except socket.timeout:
            pass
        except OSError:
            closed += 1
    return closed


def connect_many(port, count):
    out = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), 5)
        out.append(s)
    return out


def test_hostile_handshakes(env):
    certs = Certs(env.dir)
    rport, _ = env.redis()
    lp = free_port()
    stats = free_port()
    conf = pool("hs", lp, ["127.0.0.1:%d:1 r1" % rport], tls_keys(certs) +
                "  tls_handshake_timeout: 1500\n  tls_max_handshakes: 50\n"
                "  max_client_buffer: 4194304\n")
    px = env.proxy(BIN, conf, [lp], workers=2, stats_port=stats)
    ctx = certs.client_context()
    by = SetGetBystander(lp, "hs", tls=ctx, max_wait=MAX_WAIT)
    time.sleep(0.3)
    base = rss_kb(px.pid)
    hello = client_hello()
    check(len(hello) > 100 and hello[0] == 0x16, "a ClientHello to send (%d bytes)" % len(hello))

    # 1. Idle connections that never send a byte, and half-sent ClientHellos
    #    (past the 2 x 50 handshakes the workers allow).
    t0 = time.time()
    idle = connect_many(lp, 300)
    half = connect_many(lp, 200)
    for s in half:
        s.sendall(hello[:len(hello) // 2])
    time.sleep(0.5)
    peak = rss_kb(px.pid)
    early = closed_within(half, 0.3)
    print("  %d idle + %d half-open handshakes: RSS %d -> %d KB (%.1f KB each); %d of the "
          "half-open closed at once (tls_max_handshakes 50 x 2 workers)"
          % (len(idle), len(half), base, peak, (peak - base) / 500.0, early))
    check(early >= 200 - 2 * 50, "past tls_max_handshakes, handshakes are closed at once "
          "(%d of 200)" % early)
    # 2. A ClientHello a byte every 100 ms: still bounded by the timeout.
    slow = socket.create_connection(("127.0.0.1", lp), 5)
    t_slow = time.time()

    def dribble():
        for b in hello:
            try:
                slow.send(bytes([b]))
            except OSError:
                return
            time.sleep(0.1)
    threading.Thread(target=dribble, daemon=True).start()
    # 3. Garbage that looks like a handshake record.
    junk = connect_many(lp, 20)
    for s in junk:
        s.sendall(b"\x16\x03\x01\x00\x10" + bytes(random.getrandbits(8) for _ in range(64)))
    check_eq(closed_within(junk, 3.0), len(junk), "garbage handshakes closed")
    # 4. A flood of complete handshakes (each then closes), in threads.
    done = []

    def flood():
        n = 0
        for _ in range(30):
            try:
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", lp), 5),
                                    server_hostname="localhost")
                s.close()
                n += 1
            except OSError:
                pass
        done.append(n)
    threads = [threading.Thread(target=flood) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    print("  complete handshakes in a flood: %d of 120" % sum(done))
    check(sum(done) >= 60, "complete handshakes go through beside the hostile ones")
    # Everything half-open is closed by tls_handshake_timeout (1.5 s).
    left = 2.5 - (time.time() - t0)
    check_eq(closed_within(idle, max(left, 0.1) + 1.0), len(idle),
             "idle connections closed by the handshake timeout")
    check_eq(closed_within(half, 1.0), len(half), "half-open handshakes closed")
    check_eq(closed_within([slow], max(0.1, t_slow + 2.5 - time.time())), 1,
             "a byte-a-while handshake closed")
    for s in idle + half + junk + [slow]:
        s.close()
    time.sleep(0.3)
    after = rss_kb(px.pid)
    print("  RSS after they are gone: %d KB (base %d)" % (after, base))
    check(ping(lp, ctx) == "PONG", "a new TLS client after the storm")
    # The per-client limits hold under TLS too: one that asks for replies
    # faster than it reads, past max_client_buffer, is closed.
    hog = Conn(lp, tls=ctx, timeout=10)
    check_eq(hog.call("SET", "{hog}v", b"v" * (1 << 20)), b"+OK", "a 1 MB value over TLS")
    hog.send(b"".join(enc("GET", "{hog}v") for _ in range(64)))
    check(hog.is_closed(timeout=5.0), "a TLS client past max_client_buffer is closed")
    hog.close()
    by.done("(hostile handshakes)")
    st = stats_json(stats)["hs"]
    print("  stats: tls_handshakes %d, tls_handshake_errors %d"
          % (st["tls_handshakes"], st["tls_handshake_errors"]))
    check(st["tls_handshake_errors"] >= 200 + 20 + 1, "stats: the failed handshakes counted")
    check(st["client_connections"] <= 2, "no hostile client left (%d)" % st["client_connections"])


# ---- reload ------------------------------------------------------------------

def peer_der(port, ctx):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), 5),
                        server_hostname="localhost")
    der = s.getpeercert(binary_form=True)
    s.close()
    return der


def der_of(path):
    return ssl.PEM_cert_to_DER_cert(open(path).read())


def test_reload(env):
    certs = Certs(env.dir)
    rport, _ = env.redis()
    lp = free_port()
    live_crt, live_key = os.path.join(env.dir, "live.crt"), os.path.join(env.dir, "live.key")
    shutil.copy(certs.crt("server"), live_crt)
    shutil.copy(certs.key("server"), live_key)
    conf = pool("rl", lp, ["127.0.0.1:%d:1 r1" % rport],
                "  tls_cert_file: %s\n  tls_key_file: %s\n" % (live_crt, live_key))
    env.proxy(BIN, conf, [lp])
    ctx = certs.client_context()
    check_eq(peer_der(lp, ctx), der_of(certs.crt("server")), "the first certificate")
    old = Conn(lp, tls=ctx)
    check_eq(old.call("SET", "r", "1"), b"+OK", "a client before the reload")
    by = SetGetBystander(lp, "rl", tls=ctx, max_wait=MAX_WAIT)

    # Renewed in place: the configuration file is unchanged.
    shutil.copy(certs.crt("server_b"), live_crt)
    shutil.copy(certs.key("server_b"), live_key)
    admin = Conn(lp, tls=ctx)
    got = admin.call("PROXY", "RELOAD")
    check(isinstance(got, list) and got[0].startswith(b"reloaded"),
          "PROXY RELOAD after the certificate changed: %r" % (got,))
    check_eq(peer_der(lp, ctx), der_of(certs.crt("server_b")),
             "a new client gets the renewed certificate")
    check_eq(old.call("GET", "r"), b"1", "the client from before goes on")

    # A broken certificate: the reload is refused, the last good one serves.
    with open(live_crt, "w") as f:
        f.write("not a certificate\n")
    time.sleep(0.25)  # reloads are taken at most every 200 ms
    got = admin.call("PROXY", "RELOAD")
    check(isinstance(got, tuple) and "tls" in got[1] and "live.crt" in got[1],
          "a broken certificate refuses the reload, saying which: %r" % (got,))
    check_eq(peer_der(lp, ctx), der_of(certs.crt("server_b")), "the last good one serves")
    # An encrypted key: OpenSSL would ask a terminal for its passphrase (a
    # daemon would wait for ever); refused at once, saying so.
    shutil.copy(certs.crt("server_b"), live_crt)
    subprocess.run(["openssl", "pkey", "-in", certs.key("server_b"), "-aes256", "-passout",
                    "pass:enc-pass-77", "-out", live_key], check=True)
    time.sleep(0.25)
    got = admin.call("PROXY", "RELOAD")
    check(isinstance(got, tuple) and "is encrypted" in got[1],
          "an encrypted key refuses the reload, saying so: %r" % (got,))
    check_eq(peer_der(lp, ctx), der_of(certs.crt("server_b")), "the last good one serves on")
    # TLS taken off the pool by a reload while a client has connected but
    # not yet sent its first byte: it is closed (it asked for TLS); new
    # clients speak plaintext; the TLS clients connected before go on.
    waiting = socket.create_connection(("127.0.0.1", lp), 5)
    time.sleep(0.25)
    with open(os.path.join(env.dir, "proxy-%d.yml" % lp), "w") as f:
        f.write(pool("rl", lp, ["127.0.0.1:%d:1 r1" % rport]))
    got = admin.call("PROXY", "RELOAD")
    check(isinstance(got, list) and got[0].startswith(b"reloaded"), "TLS off: %r" % (got,))
    waiting.sendall(client_hello())
    waiting.settimeout(5)
    try:
        check_eq(waiting.recv(100), b"", "the client that waited for TLS is closed")
    except ConnectionResetError:
        pass
    waiting.close()
    plain = Conn(lp)
    check_eq(plain.call("GET", "r"), b"1", "plaintext once TLS is off")
    plain.close()
    check_eq(old.call("GET", "r"), b"1", "a TLS client from before goes on")
    admin.close()
    old.close()
    by.done("(certificate reloads)")
    no_key_material(env)


if __name__ == "__main__":
    run([test_clients, test_servers, test_server_topology, test_sentinel, test_hostile_handshakes,
         test_reload])

#!/usr/bin/env python3
"""test_stats.py CHASH_PROXY - what chash-proxy says about itself.

The stats port in both of its languages: nutcracker's (connect, say nothing,
read one JSON document) and HTTP (GET /metrics in Prometheus text format,
GET /stats, 404 otherwise), with the counters checked against the traffic
the test sent; and the PROXY command (LOCATE, RING) checked against where
keys really are on the real redis-servers behind it.
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Conn, SetGetBystander, check, check_eq, enc, free_port, proxy_binary,  # noqa: E402
                     raw_stats, run, wait_port)

BIN = proxy_binary()


def pool(env, servers=3, workers=2, extra=()):
    ports = [env.redis()[0] for _ in range(servers)]
    listen, stats = free_port(), free_port()
    conf = ("gamma:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: md5\n"
            "  distribution: ketama\n  servers:\n" % listen)
    conf += "".join("   - 127.0.0.1:%d:%d r%d\n" % (p, 1 + i % 2, i) for i, p in enumerate(ports))
    proc = env.proxy(BIN, conf, [listen], workers=workers, stats_port=stats, extra=extra)
    wait_port(stats, proc)  # the stats port opens after the listeners
    return ports, listen, stats


def http_get(port, path, headers=b""):
    data = raw_stats(port, b"GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path.encode(), headers))
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:])
    check_eq(int(headers["Content-Length"]), len(body), "Content-Length of %s" % path)
    return status, headers, body


SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? ([0-9.]+)$')


def parse_prometheus(text):
    """{(name, labels): value}, checking every sample has HELP and TYPE."""
    helps, types, samples = set(), {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            check(kind in ("counter", "gauge", "histogram"), "metric type %s" % kind)
            types[name] = kind
        else:
            m = SAMPLE.match(line)
            check(m is not None, "a sample line: %r" % line)
            name = m.group(1)
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            if family not in types:
                family = name
            check(family in helps and family in types, "HELP and TYPE before %s" % name)
            if types[family] == "counter":
                check(name.endswith("_total"), "counter %s ends in _total" % name)
            value = float(m.group(3))
            samples[(name, m.group(2) or "")] = int(value) if value.is_integer() else value
    return samples


def test_stats_port(env):
    ports, listen, stats = pool(env)
    # The harness's readiness probe made one connection; once a worker has
    # accepted it and seen it close, count from there.
    conns = ("chash_proxy_connections_total", "")
    gone = ("chash_proxy_client_eof_total", '{pool="gamma"}')
    for _ in range(300):
        before = parse_prometheus(http_get(stats, "/metrics")[2].decode())
        if before[conns] == 1 and before[gone] == 1:
            break
        time.sleep(0.01)
    check_eq((before[conns], before[gone]), (1, 1), "the readiness probe, accepted and gone")
    keys = ["stat:%d" % i for i in range(300)]
    clients = [Conn(listen) for _ in range(4)]
    for i, k in enumerate(keys):
        check_eq(clients[i % 4].call("SET", k, i), b"+OK", "SET through the proxy")
    got = clients[0].call("MGET", *keys[:50])
    check_eq(got, [str(i).encode() for i in range(50)], "MGET")
    for c in clients:
        c.close()
    # What each server really received, from the servers themselves.
    per_server = {}
    for i, p in enumerate(ports):
        per_server["r%d" % i] = Conn(p).call("DBSIZE")
    check_eq(sum(per_server.values()), len(keys), "every key on some server")

    # nutcracker's way: connect and listen.
    doc = json.loads(raw_stats(stats))
    check_eq(doc["service"], "chash-proxy", "service")
    check("gamma" in doc, "pool in the JSON")
    check_eq(sorted(k for k in doc["gamma"] if k.startswith("r")), ["r0", "r1", "r2"],
             "servers in the JSON")
    sets = sum(doc["gamma"][s]["requests"] for s in ("r0", "r1", "r2"))
    # 300 SETs and one fragment of the MGET per server holding any of its keys
    check(len(keys) < sets <= len(keys) + 3, "server requests %d for 300 SET + MGET" % sets)

    # Closing is seen by the workers a moment later.
    open_clients = ("chash_proxy_client_connections", '{pool="gamma"}')
    for _ in range(200):
        status, headers, body = http_get(stats, "/metrics")
        samples = parse_prometheus(body.decode())
        if samples[open_clients] == 0:
            break
        time.sleep(0.01)
    check_eq(status, 200, "/metrics status")
    check(headers["Content-Type"].startswith("text/plain"), "Prometheus content type")
    total = 0
    for s in ("r0", "r1", "r2"):
        v = samples[("chash_proxy_server_requests_total", '{pool="gamma",server="%s"}' % s)]
        check_eq(v, doc["gamma"][s]["requests"], "metrics and JSON agree on %s" % s)
        total += v
    check_eq(samples[("chash_proxy_connections_total", "")] -
             before[("chash_proxy_connections_total", "")], 4, "connections accepted")
    check_eq(samples[open_clients], 0, "clients open")
    # Reply latency: a histogram per server, as many observations as replies.
    lat = "chash_proxy_server_latency_seconds"
    for s in ("r0", "r1", "r2"):
        labels = 'pool="gamma",server="%s"' % s
        count = samples[(lat + "_count", "{%s}" % labels)]
        check_eq(count, doc["gamma"][s]["responses"], "latency count = replies of %s" % s)
        buckets = sorted((float(k[1].split('le="')[1].rstrip('"}').replace("+Inf", "inf")), v)
                         for k, v in samples.items()
                         if k[0] == lat + "_bucket" and k[1].startswith("{%s," % labels))
        check_eq(len(buckets), 14, "buckets of %s" % s)
        check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), "cumulative buckets")
        check_eq(buckets[-1][1], count, "+Inf bucket = count")
        check(0 < samples[(lat + "_sum", "{%s}" % labels)] < count, "latency sum, seconds")
    check_eq(samples[("chash_proxy_client_eof_total", '{pool="gamma"}')],
             samples[("chash_proxy_connections_total", "")], "every client closed by EOF")
    check(samples[("chash_proxy_fragments_total", '{pool="gamma"}')] >= 2, "MGET fragments")
    per_cmd = "chash_proxy_command_requests_total"
    check_eq(samples[(per_cmd, '{pool="gamma",command="set"}')], len(keys), "SETs by command")
    check_eq(samples[(per_cmd, '{pool="gamma",command="mget"}')], 1, "MGETs by command")
    check(not any(k[0] == per_cmd and "command=\"get\"" in k[1] for k in samples),
          "commands never sent are left out")

    status, headers, body = http_get(stats, "/stats")
    check_eq(status, 200, "/stats status")
    check_eq(json.loads(body)["gamma"]["r0"]["requests"], doc["gamma"]["r0"]["requests"],
             "/stats is the JSON")
    status, _, _ = http_get(stats, "/nope")
    check_eq(status, 404, "unknown path")
    # A client that sends garbage that is not HTTP gets the JSON, as a
    # nutcracker client would.
    check("gamma" in json.loads(raw_stats(stats, b"hello\n")), "non-HTTP bytes")


# Families read by another test, not triggered here.
READ_ELSEWHERE = {
    "chash_proxy_warmup_moved_total": "test_warmup.py (JSON warmup_moved)",
    "chash_proxy_warmup_absent_total": "test_warmup.py (JSON warmup_absent)",
    "chash_proxy_warmup_stale_total": "test_warmup.py (JSON warmup_stale)",
    "chash_proxy_warmup_failed_total": "test_warmup.py (JSON warmup_failed)",
    "chash_proxy_server_latency_seconds": "test_stats_port",
    "chash_proxy_uptime_seconds": "not an event: seconds since start",
    "chash_proxy_configs_retained": "test_hostile.py reload_loop",
    "chash_proxy_shard_reads_primary_total": "test_sentinel.py (JSON reads_primary)",
    "chash_proxy_shard_reads_replica_total": "test_sentinel.py (JSON reads_replica)",
    "chash_proxy_shard_reads_refused_total": "test_sentinel.py (JSON reads_refused)",
    "chash_proxy_shard_reads_retried_total": "test_sentinel.py (JSON reads_retried)",
    "chash_proxy_shard_write_ack_failed_total": "test_sentinel.py (JSON write_ack_failed)",
    "chash_proxy_shard_failover_waits_total": "test_sentinel.py (JSON failover_waited)",
    "chash_proxy_shard_failover_wait_expired_total":
        "test_sentinel.py (JSON failover_wait_expired)",
    "chash_proxy_cluster_moved_total": "test_cluster.py reshard (JSON cluster_moved)",
    "chash_proxy_cluster_ask_total": "test_cluster.py reshard (JSON cluster_ask)",
    "chash_proxy_cluster_retried_total": "test_cluster.py tryagain (JSON cluster_retried)",
    "chash_proxy_cluster_redirect_failed_total":
        "test_cluster.py hostile_node (JSON cluster_redirect_failed)",
    "chash_proxy_client_memory_shed_total": "test_hostile.py memory_cap (JSON "
                                            "client_memory_shed)",
    "chash_proxy_auth_failed_total": "test_acl.py (JSON auth_failed)",
    "chash_proxy_tls_handshakes_total": "test_tls.py (JSON tls_handshakes)",
    "chash_proxy_tls_handshake_errors_total": "test_tls.py (JSON tls_handshake_errors)",
}


def metrics(stats):
    return parse_prometheus(http_get(stats, "/metrics")[2].decode())


def wait_metric(stats, name, labels, what, timeout=5.0):
    """Polls /metrics until name{labels} is above 0; returns the samples."""
    deadline = time.time() + timeout
    while True:
        samples = metrics(stats)
        if samples.get((name, labels), 0) > 0 or time.time() > deadline:
            check(samples.get((name, labels), 0) > 0, "%s%s > 0: %s" % (name, labels, what))
            return samples


def test_every_metric(env):
    """Each family /metrics exports goes above zero when its event happens
    (or is named in READ_ELSEWHERE): a metric that is exported but never
    counted, or a new one without a test, fails here."""
    r0, r1 = env.redis(), env.redis()
    gone = free_port()  # nothing listens there: connections are refused
    listen, stats = free_port(), free_port()
    conf = ("delta:\n  listen: 127.0.0.1:%d\n  redis: true\n  timeout: 1000\n"
            "  server_failure_limit: 1\n  server_retry_timeout: 60000\n  on_failure: error\n"
            "  servers:\n   - 127.0.0.1:%d:1 r0\n   - 127.0.0.1:%d:1 r1\n"
            "   - 127.0.0.1:%d:1 r2\n" % (listen, r0[0], r1[0], gone))
    wait_port(stats, env.proxy(BIN, conf, [listen], stats_port=stats))
    c = Conn(listen)
    key_on = {}
    for i in range(300):
        owner = c.call("PROXY", "LOCATE", "m:%d" % i)[0][0].decode()
        key_on.setdefault(owner, "m:%d" % i)
    check_eq(sorted(key_on), ["r0", "r1", "r2"], "a key on every server")
    seen = {}

    def saw(name, labels, what):
        samples = wait_metric(stats, name, labels, what)
        seen[name] = what
        return samples

    pool_l = '{pool="delta"}'
    srv = lambda s: '{pool="delta",server="%s"}' % s  # noqa: E731
    # Requests, replies and their bytes; a split MGET; open connections.
    check_eq(c.call("SET", key_on["r0"], "v"), b"+OK", "SET on r0")
    check_eq(c.call("SET", key_on["r1"], "v"), b"+OK", "SET on r1")
    check_eq(c.call("MGET", key_on["r0"], key_on["r1"]), [b"v", b"v"], "MGET over two servers")
    saw("chash_proxy_requests_total", pool_l, "requests received")
    saw("chash_proxy_fragments_total", pool_l, "MGET split")
    saw("chash_proxy_client_connections", pool_l, "a client is connected")
    saw("chash_proxy_connections_total", "", "clients accepted")
    saw("chash_proxy_command_requests_total", '{pool="delta",command="set"}', "SETs")
    for name, what in (("server_requests_total", "requests sent"),
                       ("server_request_bytes_total", "bytes sent"),
                       ("server_responses_total", "replies read"),
                       ("server_response_bytes_total", "bytes read"),
                       ("server_connections", "a connection is open")):
        saw("chash_proxy_" + name, srv("r0"), what)
    # A blocked client holds a server connection alone.
    lists = [k for k in ("l:%s" % os.urandom(6).hex() for _ in range(300))
             if c.call("PROXY", "LOCATE", k)[0][0] == b"r1"]
    held = Conn(listen)
    held.send(enc("BLPOP", lists[0], 1))
    saw("chash_proxy_held_connections", pool_l, "a blocked client")
    check_eq(held.reply(), None, "BLPOP timed out")
    held.close()
    # The proxy's own errors.
    check_eq(c.call("NOSUCHCOMMAND")[0], "err", "unknown command")
    saw("chash_proxy_local_errors_total", pool_l, "an unknown command")
    bad = Conn(listen)
    bad.send(b"*x\r\n")
    check(bad.is_closed(), "a protocol error closes the client")
    saw("chash_proxy_client_errors_total", pool_l, "a protocol error")
    bad.close()
    # A server that refuses connections: a server error, an ejection, a
    # request failed for the server's fault.
    check_eq(c.call("GET", key_on["r2"])[0], "err", "GET on a server that is not there")
    saw("chash_proxy_server_errors_total", srv("r2"), "connection refused")
    saw("chash_proxy_server_ejects_total", pool_l, "failure limit 1")
    saw("chash_proxy_forward_errors_total", pool_l, "the GET failed")
    # A frozen server: a large write waits in the proxy, a request waits for
    # its reply, and both time out.
    env_r1 = r1[1]
    env_r1.send_signal(signal.SIGSTOP)
    try:
        big = Conn(listen)
        big.send_async(enc("SET", key_on["r1"], b"x" * (32 << 20)))
        saw("chash_proxy_server_in_queue_bytes", srv("r1"), "32 MB to a stopped server")
        saw("chash_proxy_server_out_queue", srv("r1"), "a request awaits its reply")
        check_eq(big.reply()[0], "err", "the SET times out")
        saw("chash_proxy_server_timeouts_total", srv("r1"), "no reply within the timeout")
        big.close()
    finally:
        env_r1.send_signal(signal.SIGCONT)
    # A server that closes: EOF on its connection.
    env.stop(r0[1], force=True)
    saw("chash_proxy_server_eof_total", srv("r0"), "the server was killed")
    c.close()
    saw("chash_proxy_client_eof_total", pool_l, "the client closed")

    families = {line.split()[2] for line in http_get(stats, "/metrics")[2].decode().splitlines()
                if line.startswith("# HELP ")}
    untested = sorted(families - set(seen) - set(READ_ELSEWHERE))
    check_eq(untested, [], "exported families that no test sees counted")
    check_eq(sorted(set(seen) - families), [], "families this test expects are exported")


def test_stats_token(env):
    """--stats-token-file: only requests with the bearer token are answered;
    nutcracker's bare connection gets nothing; the token never shows."""
    token = "s3cr3t-stats-%d" % os.getpid()
    path = env.write("token", token + "\n")
    _, listen, stats = pool(env, servers=1, extra=["--stats-token-file", path])
    by = SetGetBystander(listen, "b")
    for headers in (b"", b"Authorization: Bearer wrong\r\n",
                    b"Authorization: Basic %s\r\n" % token.encode(),
                    b"Authorization: Bearer %s\r\n" % token[:-1].encode(),
                    b"Authorization: Bearer %sx\r\n" % token.encode()):
        status, head, body = http_get(stats, "/metrics", headers)
        check_eq(status, 401, "GET /metrics with %r" % headers)
        check_eq(head.get("WWW-Authenticate"), "Bearer", "401 says how")
        check(token.encode() not in body, "the 401 does not echo the token")
    check_eq(raw_stats(stats), b"", "a bare connection (nutcracker's) gets nothing")
    status, _, body = http_get(stats, "/metrics",
                               b"authorization:   bearer %s \r\n" % token.encode())
    check_eq(status, 200, "the token, any case, spaces around")
    check(b"chash_proxy_requests_total" in body, "the metrics")
    status, _, body = http_get(stats, "/stats", b"Authorization: Bearer %s\r\n" % token.encode())
    check_eq(status, 200, "JSON with the token")
    check(token.encode() not in body, "the stats do not show the token")
    by.done("(beside the stats port's refusals)")
    log = open(env.proxies[0][1], errors="replace").read()
    check(token not in log, "the log does not show the token")
    # A token file that cannot be read, or is empty, stops the start.
    for bad, why in ((os.path.join(env.dir, "none"), "No such file"),
                     (env.write("empty", "\n"), "the token is empty")):
        p = subprocess.run([BIN, "-c", env.write("c.yml", "a:\n  listen: 127.0.0.1:%d\n"
                                                  "  servers:\n   - 127.0.0.1:1:1\n"
                                                  % free_port()),
                            "-s", str(free_port()), "--stats-token-file", bad],
                           capture_output=True, text=True, timeout=10)
        check(p.returncode != 0 and why in p.stderr, "a bad token file: %r" % p.stderr)


def test_proxy_command(env):
    ports, listen, _ = pool(env, servers=4, workers=1)
    px = Conn(listen)
    lines = px.call("PROXY", "RING")
    check_eq(len(lines), 6, "a header line, one line a server, the last reload")
    check_eq(lines[-1], b"last reload: none", "no reload yet")
    lines = lines[:-1]
    check(lines[0].startswith(b"pool gamma distribution ketama hash md5 servers 4 up 4"),
          "RING header: %r" % lines[0])
    shares = 0.0
    for i, line in enumerate(lines[1:]):
        f = line.decode().split()
        check_eq(f[0], "r%d" % i, "server name")
        check_eq(f[1], "127.0.0.1:%d" % ports[i], "server address")
        check_eq(f[3], str(1 + i % 2), "weight")
        check_eq(f[4], "up", "state")
        shares += float(f[6].rstrip("%"))
    check(abs(shares - 100.0) < 0.01, "shares sum to 100%% (%.4f)" % shares)

    by_name = {"r%d" % i: p for i, p in enumerate(ports)}
    for i in range(200):
        key = "loc:%d" % i
        check_eq(px.call("SET", key, i), b"+OK", "SET")
        where = px.call("PROXY", "LOCATE", key)
        check_eq(len(where), 4, "every server in the preference list")
        check_eq(len({w[0] for w in where}), 4, "distinct servers")
        owner = where[0][0].decode()
        check_eq(where[0][1], b"127.0.0.1:%d" % by_name[owner], "owner address")
        check_eq(Conn(by_name[owner]).call("EXISTS", key), 1, "LOCATE names the real owner")
    check_eq(px.call("PROXY", "NOPE")[0], "err", "unknown subcommand")
    check_eq(px.call("PROXY")[0], "err", "no subcommand")
    check_eq(px.call("PING"), b"+PONG", "connection still fine")


if __name__ == "__main__":
    run([test_stats_port, test_every_metric, test_stats_token, test_proxy_command])
